/* SPDX-License-Identifier: GPL-2.0-or-later */
/* SHA-256 (FIPS 180-4), with the x86 SHA extensions when the CPU has them. */
#ifndef UBDK_SHA256_H
#define UBDK_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct sha256 {
	uint32_t h[8];
	uint64_t len;
	uint8_t buf[64];
	size_t n;
};

void sha256_init(struct sha256 *c);
void sha256_update(struct sha256 *c, const void *p, size_t n);
void sha256_final(struct sha256 *c, uint8_t out[32]);
/* Lower-case hex, NUL-terminated. */
void sha256_hex(const uint8_t d[32], char out[65]);
/* "sha-ni" or "generic": what sha256_update uses on this machine. */
const char *sha256_impl(void);

#endif
