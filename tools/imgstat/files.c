/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "imgstat.h"
int mode_files(struct out *o, struct img *im, const struct opts *op)
{
	(void)o; (void)im; (void)op;
	return ST_FAILED;
}
