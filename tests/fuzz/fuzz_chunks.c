// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: chunk tables (tools/backup/format/chunks.c, table_decode) are
 * read from backup directories anyone may have touched.  Any input must
 * decode or be refused with a message, never crash; a decoded table must
 * encode back to the same bytes.  Each input is also tried with its end
 * digest made right, so that mutations reach the entries instead of all
 * stopping at the digest check.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chunks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void try_decode(const uint8_t *data, size_t size)
{
	struct chunk_table t;
	char msg[256];

	if (table_decode(data, size, &t, msg, sizeof(msg))) {
		size_t len;
		uint8_t *again = table_encode(&t, &len);

		if (again && (len != size || memcmp(again, data, size)))
			abort();
		free(again);
		table_free(&t);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *fixed;

	try_decode(data, size);
	if (size < 16)
		return 0;
	fixed = malloc(size);
	if (!fixed)
		return 0;
	memcpy(fixed, data, size);
	chunk_digest(fixed, size - 16, fixed + size - 16);
	try_decode(fixed, size);
	free(fixed);
	return 0;
}
