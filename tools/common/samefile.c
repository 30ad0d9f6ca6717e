/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "samefile.h"

bool same_file(const char *path, const struct stat *st, bool follow_links)
{
	struct stat o;

	if (!path || (follow_links ? stat(path, &o) : lstat(path, &o)) != 0)
		return false;
	return o.st_dev == st->st_dev && o.st_ino == st->st_ino;
}
