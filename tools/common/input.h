/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * input.h - open a file named by the user or by untrusted data (a COW
 * header, a guest's reply, a manifest) for reading.
 *
 * A plain open() of a FIFO blocks until a writer comes, possibly forever,
 * and opening a character device may have effects (a tape rewinds).  So
 * the name is checked before the open, the open is O_NONBLOCK, and the
 * descriptor is checked again afterwards (the name may have changed).
 */
#ifndef UBDK_INPUT_H
#define UBDK_INPUT_H

#include <errno.h>
#include <sys/stat.h>

/* What input_open() returns for a FIFO, socket or character device. */
#define INPUT_E_TYPE (-EMEDIUMTYPE)

/*
 * Open path read-only (O_CLOEXEC, O_NONBLOCK cleared once open) if it is a
 * regular file or a block device, and fill *st.  Returns the descriptor,
 * -EISDIR for a directory, INPUT_E_TYPE for any other type, or -errno.
 */
int input_open(const char *path, struct stat *st);

/* Describe an input_open() error: "not a regular file or block device"... */
const char *input_strerror(int err);

#endif /* UBDK_INPUT_H */
