/* SPDX-License-Identifier: GPL-2.0-or-later */
/* session.h - the guest's side of a live backup: who it is, how we talk to it, what it did. */
#ifndef UBDK_SESSION_H
#define UBDK_SESSION_H

#include <stdbool.h>

#include "guest/guest.h"
#include "guest/mconsole.h"
#include "guest/watchdog.h"

struct guest_session {
	struct guest g;
	struct mconsole mc;
	struct watchdog wd;             /* resumes the guest if we die */
	char kernel[256];               /* its `version` */
	bool synced, drained;           /* `sysrq s`, and dirty data written out */
	long long dirty_kb;
	const char *io_idle;            /* how its I/O thread was seen idle */
	const char *after;              /* once stopped: what the guest does now */
};

#endif
