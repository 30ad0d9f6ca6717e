/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * samefile.h - whether a path names a file already looked at: how every
 * tool refuses to write over its own input (uml_moo, uml_mkcow, uml_backup
 * restore).
 */
#ifndef UBDK_TOOLS_SAMEFILE_H
#define UBDK_TOOLS_SAMEFILE_H

#include <stdbool.h>
#include <sys/stat.h>

/*
 * Whether path names the file st describes (same device and inode).
 * follow_links: path's symbolic links are followed (stat), else a link is
 * itself the file (lstat).  false when path is NULL or cannot be looked at.
 */
bool same_file(const char *path, const struct stat *st, bool follow_links);

#endif
