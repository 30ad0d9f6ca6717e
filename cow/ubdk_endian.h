/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ubdk_endian.h - fixed byte-order fields, for the COW and CBT formats in
 * the library and the backup formats in the tools: one copy.  Plain C11,
 * header-only, no OS calls (the library's files include it in the UML
 * kernel too).  Not installed.
 */
#ifndef UBDK_ENDIAN_H
#define UBDK_ENDIAN_H

#include <stdbool.h>
#include <stdint.h>

static inline uint32_t ubdk_get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t ubdk_get_be64(const uint8_t *p)
{
	return (uint64_t)ubdk_get_be32(p) << 32 | ubdk_get_be32(p + 4);
}

static inline uint32_t ubdk_get_le32(const uint8_t *p)
{
	return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[1] << 8 | p[0];
}

static inline uint64_t ubdk_get_le64(const uint8_t *p)
{
	return (uint64_t)ubdk_get_le32(p + 4) << 32 | ubdk_get_le32(p);
}

static inline void ubdk_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline void ubdk_put_be64(uint8_t *p, uint64_t v)
{
	ubdk_put_be32(p, (uint32_t)(v >> 32));
	ubdk_put_be32(p + 4, (uint32_t)v);
}

static inline void ubdk_put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline void ubdk_put_le64(uint8_t *p, uint64_t v)
{
	ubdk_put_le32(p, (uint32_t)v);
	ubdk_put_le32(p + 4, (uint32_t)(v >> 32));
}

static inline bool ubdk_host_is_le(void)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	return false;
#else
	return true;
#endif
}

#endif /* UBDK_ENDIAN_H */
