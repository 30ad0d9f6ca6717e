/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cbt_reply.c - the `cbt` reply line (cbt_reply.h, docs/cbt.md).
 */
#include "cbt_reply.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const char *const error_prefix[UBDK_CBT_REPLY__COUNT] = {
	[UBDK_CBT_REPLY_USAGE] = UBDK_CBT_REPLY_ERR_USAGE,
	[UBDK_CBT_REPLY_BAD_DEVICE] = UBDK_CBT_REPLY_ERR_BAD_DEVICE,
	[UBDK_CBT_REPLY_NOT_CONFIGURED] = UBDK_CBT_REPLY_ERR_NOT_CONFIGURED,
	[UBDK_CBT_REPLY_NOT_OPEN] = UBDK_CBT_REPLY_ERR_NOT_OPEN,
	[UBDK_CBT_REPLY_NO_TRACKING] = UBDK_CBT_REPLY_ERR_NO_TRACKING,
	[UBDK_CBT_REPLY_BUSY] = UBDK_CBT_REPLY_ERR_BUSY,
	[UBDK_CBT_REPLY_NO_MEMORY] = UBDK_CBT_REPLY_ERR_NO_MEMORY,
	[UBDK_CBT_REPLY_BAD_NAME] = UBDK_CBT_REPLY_ERR_BAD_NAME,
	[UBDK_CBT_REPLY_FAILED] = UBDK_CBT_REPLY_ERR_FAILED,
};

int ubdk_cbt_reply_format(char *out, size_t outlen,
			  const struct ubdk_cbt_reply *r)
{
	const char *state = r->reason ? "inconsistent" : "consistent";
	const char *rkey = r->reason ? " reason=" : "";
	const char *rname = r->reason ? ubdk_cbt_reason_name((int)r->reason) : "";

	switch (r->kind) {
	case UBDK_CBT_REPLY_STATUS:
		return snprintf(out, outlen, "checkpoint=%s state=%s%s%s "
				"granularity=%u blocks=%llu size=%llu "
				"generation=%llu mem=%llu", r->name, state,
				rkey, rname, (unsigned)r->granularity,
				(unsigned long long)r->blocks,
				(unsigned long long)r->size,
				(unsigned long long)r->generation,
				(unsigned long long)r->mem);
	case UBDK_CBT_REPLY_CHECKPOINT:
		/* map last: it runs to the end of the line, spaces and all. */
		return snprintf(out, outlen, "from=%s to=%s state=%s%s%s "
				"granularity=%u blocks=%llu size=%llu "
				"generation=%llu map=%.*s", r->from, r->name,
				state, rkey, rname, (unsigned)r->granularity,
				(unsigned long long)r->blocks,
				(unsigned long long)r->size,
				(unsigned long long)r->generation,
				(int)r->map_len, r->map ? r->map : "");
	default:
		if (r->error <= UBDK_CBT_REPLY_OK || r->error >= UBDK_CBT_REPLY__COUNT)
			return snprintf(out, outlen, "%s%.*s",
					error_prefix[UBDK_CBT_REPLY_FAILED],
					(int)r->msg_len, r->msg ? r->msg : "");
		return snprintf(out, outlen, "%s%.*s", error_prefix[r->error],
				(int)r->msg_len, r->msg ? r->msg : "");
	}
}

/* Decimal digits only, no sign, no overflow. */
static bool parse_u64(const char *p, size_t n, uint64_t *v)
{
	*v = 0;
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned)(p[i] - '0');

		if (d > 9 || *v > (UINT64_MAX - d) / 10)
			return false;
		*v = *v * 10 + d;
	}
	return true;
}

static bool parse_name(const char *p, size_t n, char *out)
{
	if (n >= UBDK_CBT_NAME_MAX)
		return false;
	memcpy(out, p, n);
	out[n] = '\0';
	return ubdk_cbt_name_ok(out);
}

static bool parse_reason(const char *p, size_t n, uint32_t *reason)
{
	for (int k = 1; k < UBDK_CBT_REASON__COUNT; k++) {
		const char *name = ubdk_cbt_reason_name(k);

		if (strlen(name) == n && !memcmp(name, p, n)) {
			*reason = (uint32_t)k;
			return true;
		}
	}
	return false;
}

static int parse_error(const char *p, size_t len, struct ubdk_cbt_reply *r)
{
	for (int e = 1; e < UBDK_CBT_REPLY__COUNT; e++) {
		size_t pl = strlen(error_prefix[e]);

		/* The code ends at the prefix's space, or with the line. */
		if ((len >= pl && !memcmp(p, error_prefix[e], pl)) ||
		    (len == pl - 1 && !memcmp(p, error_prefix[e], len))) {
			r->kind = UBDK_CBT_REPLY_ERROR;
			r->error = e;
			r->msg = len >= pl ? p + pl : p + len;
			r->msg_len = len >= pl ? len - pl : 0;
			return 0;
		}
	}
	return -EINVAL;
}

/* The fields a reply must have, as bits of `seen`. */
enum {
	F_NAME = 1 << 0, F_FROM = 1 << 1, F_STATE = 1 << 2, F_REASON = 1 << 3,
	F_GRAN = 1 << 4, F_BLOCKS = 1 << 5, F_SIZE = 1 << 6, F_GEN = 1 << 7,
	F_MEM = 1 << 8, F_MAP = 1 << 9,
	F_COMMON = F_NAME | F_STATE | F_GRAN | F_BLOCKS | F_SIZE | F_GEN,
};

static bool key_is(const char *k, size_t kl, const char *want)
{
	return strlen(want) == kl && !memcmp(k, want, kl);
}

int ubdk_cbt_reply_parse(const char *text, struct ubdk_cbt_reply *r)
{
	size_t len = strlen(text), pos = 0;
	unsigned seen = 0;
	bool inconsistent = false, ok = true;
	uint64_t v;

	memset(r, 0, sizeof(*r));
	while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
		len--;
	if (len >= 6 && !memcmp(text, "error=", 6))
		return parse_error(text, len, r);
	if (len >= 11 && !memcmp(text, "checkpoint=", 11))
		r->kind = UBDK_CBT_REPLY_STATUS;
	else if (len >= 5 && !memcmp(text, "from=", 5))
		r->kind = UBDK_CBT_REPLY_CHECKPOINT;
	else
		return -EINVAL;
	while (ok && pos < len) {
		const char *k = text + pos, *eq = memchr(k, '=', len - pos);
		const char *val, *end;
		size_t kl, vl;

		if (!eq)
			return -EINVAL;
		kl = (size_t)(eq - k);
		val = eq + 1;
		if (r->kind == UBDK_CBT_REPLY_CHECKPOINT && key_is(k, kl, "map")) {
			r->map = val;
			r->map_len = (size_t)(text + len - val);
			seen |= F_MAP;
			break;
		}
		end = memchr(val, ' ', (size_t)(text + len - val));
		if (!end)
			end = text + len;
		vl = (size_t)(end - val);
		pos = (size_t)(end - text) + (end < text + len);
		if (key_is(k, kl, r->kind == UBDK_CBT_REPLY_STATUS ? "checkpoint" : "to")) {
			ok = parse_name(val, vl, r->name);
			seen |= F_NAME;
		} else if (r->kind == UBDK_CBT_REPLY_CHECKPOINT && key_is(k, kl, "from")) {
			ok = parse_name(val, vl, r->from);
			seen |= F_FROM;
		} else if (key_is(k, kl, "state")) {
			inconsistent = vl == 12 && !memcmp(val, "inconsistent", 12);
			ok = inconsistent || (vl == 10 && !memcmp(val, "consistent", 10));
			seen |= F_STATE;
		} else if (key_is(k, kl, "reason")) {
			ok = parse_reason(val, vl, &r->reason);
			seen |= F_REASON;
		} else if (key_is(k, kl, "granularity")) {
			ok = parse_u64(val, vl, &v) && v <= UINT32_MAX;
			r->granularity = (uint32_t)v;
			seen |= F_GRAN;
		} else if (key_is(k, kl, "blocks")) {
			ok = parse_u64(val, vl, &r->blocks);
			seen |= F_BLOCKS;
		} else if (key_is(k, kl, "size")) {
			ok = parse_u64(val, vl, &r->size);
			seen |= F_SIZE;
		} else if (key_is(k, kl, "generation")) {
			ok = parse_u64(val, vl, &r->generation);
			seen |= F_GEN;
		} else if (r->kind == UBDK_CBT_REPLY_STATUS && key_is(k, kl, "mem")) {
			ok = parse_u64(val, vl, &r->mem);
			seen |= F_MEM;
		}
	}
	if (!ok)
		return -EINVAL;
	/* A reason goes with an inconsistent state, and only with one. */
	if (inconsistent != !!(seen & F_REASON))
		return -EINVAL;
	if (r->kind == UBDK_CBT_REPLY_STATUS)
		return (seen & (F_COMMON | F_MEM)) == (F_COMMON | F_MEM) ? 0 : -EINVAL;
	return (seen & (F_COMMON | F_FROM | F_MAP)) == (F_COMMON | F_FROM | F_MAP) ?
	       0 : -EINVAL;
}
