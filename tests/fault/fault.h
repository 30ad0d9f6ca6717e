/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The failure plan of tests/fault/fault_os.c. */
#ifndef UBDK_FAULT_H
#define UBDK_FAULT_H

#include <stdbool.h>

enum fault_kind {
	FAULT_NONE,
	FAULT_PREAD,      /* header and bitmap reads */
	FAULT_PREADV,     /* merged-view reads */
	FAULT_PWRITE,     /* bitmap write-back, headers */
	FAULT_PWRITEV,    /* data writes */
	FAULT_FSYNC,
};

struct fault_plan {
	int kind;         /* enum fault_kind */
	int nth;          /* fail the nth call of that kind (from 1) */
	int errnum;       /* with this errno; 0 = no failure */
	bool short_write; /* PWRITEV: half the first piece lands first */
	int seen;         /* calls of that kind so far */
	int fired;        /* failures injected */
};

/* The one plan; tests set it and reset it between steps. */
extern struct fault_plan fault_plan;

static inline void fault_set(int kind, int nth, int errnum, bool short_write)
{
	fault_plan = (struct fault_plan){ .kind = kind, .nth = nth,
					  .errnum = errnum,
					  .short_write = short_write };
}

#endif /* UBDK_FAULT_H */
