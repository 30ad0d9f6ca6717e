/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cbt_internal.h - what the tracker (cbt.c) and its files (cbt_file.c)
 * share: the tracker's layout and the granularity rules.
 */
#ifndef UBDK_CBT_INTERNAL_H
#define UBDK_CBT_INTERNAL_H

#include "ubdk_static.h"

#include <stdbool.h>
#include <stdint.h>

#define LEAF_BYTES 4096U
#define LEAF_WORDS (LEAF_BYTES / 8)
#define LEAF_SHIFT 15                      /* bits per leaf: 2^15 */
#define LEAF_BITS (1ULL << LEAF_SHIFT)

struct ubdk_cbt {
	uint64_t size;             /* device bytes */
	uint32_t gran;
	unsigned shift;            /* log2(gran) */
	uint64_t nblocks;
	uint64_t nleaves;
	uint64_t **leaves;         /* nleaves pointers, NULL: all clear */
	size_t leaves_len;         /* bytes mapped for the index */
	uint64_t count;            /* set blocks */
	uint64_t nalloc;           /* leaves mapped */
	uint64_t generation;
	int reason;
	char name[UBDK_CBT_NAME_MAX];
};

bool ubdk_cbt_gran_ok(uint32_t g);
unsigned ubdk_cbt_log2(uint32_t v);

#endif
