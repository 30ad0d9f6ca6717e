/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * io_tracer.h - record which blocks of a running guest's COW files change.
 *
 * The UML kernel hands every disk request to its ubd I/O thread, a host
 * process that does the pwrite()s.  While a backup copies a COW file from
 * under the running guest, a thread of ours traces that process's system
 * calls (ptrace, PTRACE_O_TRACESYSGOOD) and, at the entry of each write to
 * one of the COW files, marks the 4 KiB blocks it is about to change.  The
 * pause then only has to copy the blocks written since the copy began.
 *
 * A write the tracker cannot place (ftruncate, copy_file_range, mmap, an
 * I/O thread that went away...) makes it give up, and the caller falls back
 * to comparing everything.  If we die, the kernel detaches the traced
 * process, which goes on untouched.
 */
#ifndef UBDK_IOTRACK_H
#define UBDK_IOTRACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define IOTRACK_BLOCK 4096U

struct iotrack_file {
	dev_t dev;
	ino_t ino;
	uint64_t size;          /* the file's size: blocks beyond are clamped */
};

struct iotrack;

/*
 * Trace the helper processes of the guest whose kernel process is pid and
 * watch writes to the files.  Returns 0, or -errno with a reason in why
 * (e.g. ptrace not permitted).
 */
int iotrack_start(struct iotrack **out, pid_t pid, const struct iotrack_file *files,
		  int nfiles, char *why, size_t whylen);
/*
 * The blocks of file i marked since the last call (or the start), as a
 * bitmap of ceil(size / 4096) bits, bit b at word b / 64, bit b % 64; the
 * caller frees it.  NULL on allocation failure.
 */
uint64_t *iotrack_take(struct iotrack *t, int i, uint64_t *nblocks);
/* Still reliable?  If not, why says why. */
bool iotrack_ok(struct iotrack *t, char *why, size_t whylen);
/* Writes seen so far (all files). */
uint64_t iotrack_writes(struct iotrack *t);
/* Detach and free.  Safe on NULL. */
void iotrack_stop(struct iotrack *t);

#endif
