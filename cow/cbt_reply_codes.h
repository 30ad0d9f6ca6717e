/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cbt_reply_codes.h - the codes an error reply of the mconsole `cbt`
 * command starts with (cbt_reply.h).  String constants only: the kernel
 * half of the driver, which cannot include the library's headers, writes
 * its replies with them.
 */
#ifndef UBDK_CBT_REPLY_CODES_H
#define UBDK_CBT_REPLY_CODES_H

#define UBDK_CBT_REPLY_ERR_USAGE "error=usage "
#define UBDK_CBT_REPLY_ERR_BAD_DEVICE "error=bad-device "
#define UBDK_CBT_REPLY_ERR_NOT_CONFIGURED "error=not-configured "
#define UBDK_CBT_REPLY_ERR_NOT_OPEN "error=not-open "
#define UBDK_CBT_REPLY_ERR_NO_TRACKING "error=no-tracking "
#define UBDK_CBT_REPLY_ERR_BUSY "error=busy "
#define UBDK_CBT_REPLY_ERR_NO_MEMORY "error=no-memory "
#define UBDK_CBT_REPLY_ERR_BAD_NAME "error=bad-name "
#define UBDK_CBT_REPLY_ERR_FAILED "error=failed "

#endif
