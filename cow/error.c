/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>

static const char *const code_names[UBDK_E__COUNT] = {
	[UBDK_OK] = "ok",
	[UBDK_E_SYS] = "system",
	[UBDK_E_NOMEM] = "no-memory",
	[UBDK_E_INVALID_ARG] = "invalid-argument",
	[UBDK_E_SHORT_HEADER] = "short-header",
	[UBDK_E_BAD_MAGIC] = "bad-magic",
	[UBDK_E_BAD_VERSION] = "bad-version",
	[UBDK_E_COW_FORMAT] = "bad-cow-format",
	[UBDK_E_SECTORSIZE] = "bad-sectorsize",
	[UBDK_E_ALIGNMENT] = "bad-alignment",
	[UBDK_E_OVERFLOW] = "overflow",
	[UBDK_E_BACKING_UNTERMINATED] = "backing-unterminated",
	[UBDK_E_BACKING_EMPTY] = "backing-empty",
	[UBDK_E_SHORT_BITMAP] = "short-bitmap",
	[UBDK_E_SHORT_DATA] = "short-data",
	[UBDK_E_SIZE_MISMATCH] = "size-mismatch",
	[UBDK_E_MTIME_MISMATCH] = "mtime-mismatch",
	[UBDK_E_LOCKED] = "locked",
	[UBDK_E_PATH_TOO_LONG] = "path-too-long",
	[UBDK_E_RANGE] = "out-of-range",
	[UBDK_E_READ_ONLY] = "read-only",
	[UBDK_E_NOT_REGULAR] = "not-regular",
	[UBDK_E_EMPTY_BACKING] = "empty-backing",
	[UBDK_E_CHECKSUM] = "checksum-mismatch",
	[UBDK_E_CBT_FIELD] = "bad-cbt-field",
};

const char *ubdk_errcode_name(int code)
{
	if (code < 0 || code >= UBDK_E__COUNT || !code_names[code])
		return "unknown";
	return code_names[code];
}

int ubdk_fail(struct ubdk_err *err, int code, int errnum, const char *fmt, ...)
{
	va_list ap;

	if (err) {
		err->code = code;
		err->errnum = errnum;
		err->file = UBDK_FILE_NONE;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return -errnum;
}

const char *ubdk_version(void)
{
	return UBDK_VERSION_STRING;
}

int ubdk_version_number(void)
{
	return UBDK_VERSION_MAJOR * 10000 + UBDK_VERSION_MINOR * 100 +
	       UBDK_VERSION_PATCH;
}
