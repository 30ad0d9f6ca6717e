/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Changed-block tracking: a sparse two-level bitmap of the blocks written
 * since a checkpoint, and its two files, the record ("<cow>.cbt") and the
 * map ("<cow>.cbt-map"), laid out in docs/cbt.md.
 *
 * The index has one pointer per 2^15 blocks (a 4 KiB leaf of bits); a leaf
 * exists only once one of its blocks is marked, so memory follows the
 * blocks written.  Everything is taken with ubdk_os_map(): inside UML the
 * marking runs on the I/O thread, and the checkpoint may run in mconsole's
 * stop loop with signals blocked, where neither may call the kernel's
 * allocator.  Marking and ubdk_cbt_mark_open() make no messages either.
 */
#include "internal.h"
#include "ubdk_cbt.h"
#include "ubdk_os.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define LEAF_BYTES 4096U
#define LEAF_WORDS (LEAF_BYTES / 8)
#define LEAF_SHIFT 15                      /* bits per leaf: 2^15 */
#define LEAF_BITS (1ULL << LEAF_SHIFT)
/* Bytes written or read at once. */
#define IO_BYTES 65536U

static const char MAGIC_RECORD[8] = { 'U', 'B', 'D', 'K', 'C', 'B', 'T', 'R' };
static const char MAGIC_MAP[8] = { 'U', 'B', 'D', 'K', 'C', 'B', 'T', 'M' };

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

static const uint32_t crc_table[256] = {
	0x00000000U, 0x77073096U, 0xee0e612cU, 0x990951baU, 0x076dc419U, 0x706af48fU,
	0xe963a535U, 0x9e6495a3U, 0x0edb8832U, 0x79dcb8a4U, 0xe0d5e91eU, 0x97d2d988U,
	0x09b64c2bU, 0x7eb17cbdU, 0xe7b82d07U, 0x90bf1d91U, 0x1db71064U, 0x6ab020f2U,
	0xf3b97148U, 0x84be41deU, 0x1adad47dU, 0x6ddde4ebU, 0xf4d4b551U, 0x83d385c7U,
	0x136c9856U, 0x646ba8c0U, 0xfd62f97aU, 0x8a65c9ecU, 0x14015c4fU, 0x63066cd9U,
	0xfa0f3d63U, 0x8d080df5U, 0x3b6e20c8U, 0x4c69105eU, 0xd56041e4U, 0xa2677172U,
	0x3c03e4d1U, 0x4b04d447U, 0xd20d85fdU, 0xa50ab56bU, 0x35b5a8faU, 0x42b2986cU,
	0xdbbbc9d6U, 0xacbcf940U, 0x32d86ce3U, 0x45df5c75U, 0xdcd60dcfU, 0xabd13d59U,
	0x26d930acU, 0x51de003aU, 0xc8d75180U, 0xbfd06116U, 0x21b4f4b5U, 0x56b3c423U,
	0xcfba9599U, 0xb8bda50fU, 0x2802b89eU, 0x5f058808U, 0xc60cd9b2U, 0xb10be924U,
	0x2f6f7c87U, 0x58684c11U, 0xc1611dabU, 0xb6662d3dU, 0x76dc4190U, 0x01db7106U,
	0x98d220bcU, 0xefd5102aU, 0x71b18589U, 0x06b6b51fU, 0x9fbfe4a5U, 0xe8b8d433U,
	0x7807c9a2U, 0x0f00f934U, 0x9609a88eU, 0xe10e9818U, 0x7f6a0dbbU, 0x086d3d2dU,
	0x91646c97U, 0xe6635c01U, 0x6b6b51f4U, 0x1c6c6162U, 0x856530d8U, 0xf262004eU,
	0x6c0695edU, 0x1b01a57bU, 0x8208f4c1U, 0xf50fc457U, 0x65b0d9c6U, 0x12b7e950U,
	0x8bbeb8eaU, 0xfcb9887cU, 0x62dd1ddfU, 0x15da2d49U, 0x8cd37cf3U, 0xfbd44c65U,
	0x4db26158U, 0x3ab551ceU, 0xa3bc0074U, 0xd4bb30e2U, 0x4adfa541U, 0x3dd895d7U,
	0xa4d1c46dU, 0xd3d6f4fbU, 0x4369e96aU, 0x346ed9fcU, 0xad678846U, 0xda60b8d0U,
	0x44042d73U, 0x33031de5U, 0xaa0a4c5fU, 0xdd0d7cc9U, 0x5005713cU, 0x270241aaU,
	0xbe0b1010U, 0xc90c2086U, 0x5768b525U, 0x206f85b3U, 0xb966d409U, 0xce61e49fU,
	0x5edef90eU, 0x29d9c998U, 0xb0d09822U, 0xc7d7a8b4U, 0x59b33d17U, 0x2eb40d81U,
	0xb7bd5c3bU, 0xc0ba6cadU, 0xedb88320U, 0x9abfb3b6U, 0x03b6e20cU, 0x74b1d29aU,
	0xead54739U, 0x9dd277afU, 0x04db2615U, 0x73dc1683U, 0xe3630b12U, 0x94643b84U,
	0x0d6d6a3eU, 0x7a6a5aa8U, 0xe40ecf0bU, 0x9309ff9dU, 0x0a00ae27U, 0x7d079eb1U,
	0xf00f9344U, 0x8708a3d2U, 0x1e01f268U, 0x6906c2feU, 0xf762575dU, 0x806567cbU,
	0x196c3671U, 0x6e6b06e7U, 0xfed41b76U, 0x89d32be0U, 0x10da7a5aU, 0x67dd4accU,
	0xf9b9df6fU, 0x8ebeeff9U, 0x17b7be43U, 0x60b08ed5U, 0xd6d6a3e8U, 0xa1d1937eU,
	0x38d8c2c4U, 0x4fdff252U, 0xd1bb67f1U, 0xa6bc5767U, 0x3fb506ddU, 0x48b2364bU,
	0xd80d2bdaU, 0xaf0a1b4cU, 0x36034af6U, 0x41047a60U, 0xdf60efc3U, 0xa867df55U,
	0x316e8eefU, 0x4669be79U, 0xcb61b38cU, 0xbc66831aU, 0x256fd2a0U, 0x5268e236U,
	0xcc0c7795U, 0xbb0b4703U, 0x220216b9U, 0x5505262fU, 0xc5ba3bbeU, 0xb2bd0b28U,
	0x2bb45a92U, 0x5cb36a04U, 0xc2d7ffa7U, 0xb5d0cf31U, 0x2cd99e8bU, 0x5bdeae1dU,
	0x9b64c2b0U, 0xec63f226U, 0x756aa39cU, 0x026d930aU, 0x9c0906a9U, 0xeb0e363fU,
	0x72076785U, 0x05005713U, 0x95bf4a82U, 0xe2b87a14U, 0x7bb12baeU, 0x0cb61b38U,
	0x92d28e9bU, 0xe5d5be0dU, 0x7cdcefb7U, 0x0bdbdf21U, 0x86d3d2d4U, 0xf1d4e242U,
	0x68ddb3f8U, 0x1fda836eU, 0x81be16cdU, 0xf6b9265bU, 0x6fb077e1U, 0x18b74777U,
	0x88085ae6U, 0xff0f6a70U, 0x66063bcaU, 0x11010b5cU, 0x8f659effU, 0xf862ae69U,
	0x616bffd3U, 0x166ccf45U, 0xa00ae278U, 0xd70dd2eeU, 0x4e048354U, 0x3903b3c2U,
	0xa7672661U, 0xd06016f7U, 0x4969474dU, 0x3e6e77dbU, 0xaed16a4aU, 0xd9d65adcU,
	0x40df0b66U, 0x37d83bf0U, 0xa9bcae53U, 0xdebb9ec5U, 0x47b2cf7fU, 0x30b5ffe9U,
	0xbdbdf21cU, 0xcabac28aU, 0x53b39330U, 0x24b4a3a6U, 0xbad03605U, 0xcdd70693U,
	0x54de5729U, 0x23d967bfU, 0xb3667a2eU, 0xc4614ab8U, 0x5d681b02U, 0x2a6f2b94U,
	0xb40bbe37U, 0xc30c8ea1U, 0x5a05df1bU, 0x2d02ef8dU,
};

uint32_t ubdk_crc32(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	crc = ~crc;
	while (len--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

static const char *const reason_names[UBDK_CBT_REASON__COUNT] = {
	[UBDK_CBT_CONSISTENT] = "consistent",
	[UBDK_CBT_MISSING] = "missing",
	[UBDK_CBT_UNCLEAN] = "unclean",
	[UBDK_CBT_COW_CHANGED] = "cow-changed",
	[UBDK_CBT_HEADER_CHANGED] = "header-changed",
	[UBDK_CBT_CORRUPT] = "corrupt",
	[UBDK_CBT_LOST] = "lost",
	[UBDK_CBT_IO_ERROR] = "io-error",
};

const char *ubdk_cbt_reason_name(int reason)
{
	if (reason < 0 || reason >= UBDK_CBT_REASON__COUNT)
		return "unknown";
	return reason_names[reason];
}

bool ubdk_cbt_name_ok(const char *name)
{
	size_t i;

	for (i = 0; name[i]; i++) {
		char c = name[i];

		if (i >= UBDK_CBT_NAME_MAX - 1)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == ':' || c == '@' || c == '+' || c == '-'))
			return false;
	}
	return true;
}

static bool gran_ok(uint32_t g)
{
	return g >= UBDK_CBT_GRANULARITY_MIN && g <= UBDK_CBT_GRANULARITY_MAX &&
	       !(g & (g - 1));
}

static unsigned log2_u32(uint32_t v)
{
	unsigned n = 0;

	while (v > 1) {
		v >>= 1;
		n++;
	}
	return n;
}

/* --- the tracker ------------------------------------------------------- */

static struct ubdk_cbt *alloc_cbt(uint64_t size, uint32_t gran)
{
	struct ubdk_cbt *c = ubdk_os_map(sizeof(*c));

	if (!c)
		return NULL;
	memset(c, 0, sizeof(*c));
	c->size = size;
	c->gran = gran;
	c->shift = log2_u32(gran);
	c->nblocks = (size >> c->shift) + ((size & (gran - 1)) != 0);
	c->nleaves = (c->nblocks + LEAF_BITS - 1) >> LEAF_SHIFT;
	if (c->nleaves == 0)
		c->nleaves = 1;
	c->leaves_len = (size_t)c->nleaves * sizeof(c->leaves[0]);
	c->leaves = ubdk_os_map(c->leaves_len);
	if (!c->leaves) {
		ubdk_os_unmap(c, sizeof(*c));
		return NULL;
	}
	/* ubdk_os_map gives zeroed memory (anonymous mappings). */
	return c;
}

int ubdk_cbt_new(uint64_t device_size, uint32_t granularity,
		 const char *name, int reason, struct ubdk_cbt **out,
		 struct ubdk_err *err)
{
	struct ubdk_cbt *c;

	*out = NULL;
	if (!granularity)
		granularity = UBDK_CBT_GRANULARITY;
	if (!gran_ok(granularity))
		return ubdk_fail(err, UBDK_E_INVALID_ARG, EINVAL,
				 "CBT granularity %u is not a power of two "
				 "between 4096 and 2^30", granularity);
	if (!device_size)
		return ubdk_fail(err, UBDK_E_INVALID_ARG, EINVAL,
				 "CBT for an empty device");
	if (name && !ubdk_cbt_name_ok(name))
		return ubdk_fail(err, UBDK_E_INVALID_ARG, EINVAL,
				 "bad checkpoint name (0 to 63 of "
				 "A-Z a-z 0-9 . _ : @ + -)");
	if (reason < 0 || reason >= UBDK_CBT_REASON__COUNT)
		return ubdk_fail(err, UBDK_E_INVALID_ARG, EINVAL,
				 "bad CBT reason %d", reason);
	c = alloc_cbt(device_size, granularity);
	if (!c)
		return ubdk_fail(err, UBDK_E_NOMEM, ENOMEM,
				 "no memory for a CBT map");
	if (name)
		strcpy(c->name, name);
	c->reason = reason;
	*out = c;
	return 0;
}

void ubdk_cbt_free(struct ubdk_cbt *c)
{
	uint64_t i;

	if (!c)
		return;
	for (i = 0; i < c->nleaves; i++)
		if (c->leaves[i])
			ubdk_os_unmap(c->leaves[i], LEAF_BYTES);
	ubdk_os_unmap(c->leaves, c->leaves_len);
	ubdk_os_unmap(c, sizeof(*c));
}

/* Set bits [a, b) of one leaf (a < b <= LEAF_BITS); count the new ones. */
static void leaf_set(struct ubdk_cbt *c, uint64_t *w, uint64_t a, uint64_t b)
{
	while (a < b) {
		uint64_t i = a / 64, lo = a % 64;
		uint64_t hi = b - i * 64 >= 64 ? 64 : b - i * 64;
		uint64_t mask = (hi == 64 ? ~0ULL : (1ULL << hi) - 1) &
				~((1ULL << lo) - 1);

		c->count += (uint64_t)__builtin_popcountll(mask & ~w[i]);
		w[i] |= mask;
		a = i * 64 + hi;
	}
}

int ubdk_cbt_mark(struct ubdk_cbt *c, uint64_t off, uint64_t len)
{
	uint64_t first, last;

	if (!len || off >= c->size)
		return 0;
	if (len > c->size - off)
		len = c->size - off;
	first = off >> c->shift;
	last = (off + len - 1) >> c->shift;
	while (first <= last) {
		uint64_t leaf = first >> LEAF_SHIFT;
		uint64_t a = first & (LEAF_BITS - 1);
		uint64_t b = last - (first - a) + 1;

		if (b > LEAF_BITS)
			b = LEAF_BITS;
		if (!c->leaves[leaf]) {
			c->leaves[leaf] = ubdk_os_map(LEAF_BYTES);
			if (!c->leaves[leaf]) {
				/* The change is not recorded: say so. */
				c->reason = UBDK_CBT_LOST;
				return -ENOMEM;
			}
			c->nalloc++;
		}
		leaf_set(c, c->leaves[leaf], a, b);
		first += b - a;
	}
	return 0;
}

bool ubdk_cbt_test(const struct ubdk_cbt *c, uint64_t n)
{
	const uint64_t *w;

	if (n >= c->nblocks)
		return false;
	w = c->leaves[n >> LEAF_SHIFT];
	n &= LEAF_BITS - 1;
	return w && (w[n / 64] >> (n % 64) & 1);
}

uint64_t ubdk_cbt_count(const struct ubdk_cbt *c)
{
	return c->count;
}

uint64_t ubdk_cbt_mem(const struct ubdk_cbt *c)
{
	return sizeof(*c) + c->leaves_len + c->nalloc * LEAF_BYTES;
}

/* First block >= pos whose bit is `value`, or nblocks. */
static uint64_t find(const struct ubdk_cbt *c, uint64_t pos, bool value)
{
	while (pos < c->nblocks) {
		const uint64_t *w = c->leaves[pos >> LEAF_SHIFT];
		uint64_t base = pos & ~(LEAF_BITS - 1);
		uint64_t i = (pos - base) / 64;

		if (!w) {
			if (!value)
				return pos;
			pos = base + LEAF_BITS;
			continue;
		}
		for (; i < LEAF_WORDS; i++) {
			uint64_t word = value ? w[i] : ~w[i];

			if (i == (pos - base) / 64)
				word &= ~0ULL << ((pos - base) % 64);
			if (word) {
				pos = base + i * 64 +
				      (uint64_t)__builtin_ctzll(word);
				return pos < c->nblocks ? pos : c->nblocks;
			}
		}
		pos = base + LEAF_BITS;
	}
	return c->nblocks;
}

int ubdk_cbt_next(const struct ubdk_cbt *c, uint64_t *pos, uint64_t *start,
		  uint64_t *count)
{
	uint64_t s = find(c, *pos, true), e;

	if (s >= c->nblocks) {
		*pos = c->nblocks;
		return 0;
	}
	e = find(c, s, false);
	*start = s;
	*count = e - s;
	*pos = e;
	return 1;
}

void ubdk_cbt_get_info(const struct ubdk_cbt *c, struct ubdk_cbt_info *info)
{
	memset(info, 0, sizeof(*info));
	info->version = UBDK_CBT_VERSION;
	info->reason = (uint32_t)c->reason;
	info->granularity = c->gran;
	info->device_size = c->size;
	info->generation = c->generation;
	info->blocks = c->count;
	strcpy(info->name, c->name);
}

void ubdk_cbt_set_reason(struct ubdk_cbt *c, int reason)
{
	if (reason > 0 && reason < UBDK_CBT_REASON__COUNT)
		c->reason = reason;
}

int ubdk_cbt_checkpoint(struct ubdk_cbt *c, const char *name,
			struct ubdk_cbt **sealed, struct ubdk_err *err)
{
	struct ubdk_cbt *s;
	uint64_t **fresh;

	*sealed = NULL;
	if (!name || !ubdk_cbt_name_ok(name))
		return ubdk_fail(err, UBDK_E_INVALID_ARG, EINVAL,
				 "bad checkpoint name (0 to 63 of "
				 "A-Z a-z 0-9 . _ : @ + -)");
	s = ubdk_os_map(sizeof(*s));
	fresh = ubdk_os_map(c->leaves_len);
	if (!s || !fresh) {
		if (s)
			ubdk_os_unmap(s, sizeof(*s));
		if (fresh)
			ubdk_os_unmap(fresh, c->leaves_len);
		return ubdk_fail(err, UBDK_E_NOMEM, ENOMEM,
				 "no memory for a CBT checkpoint");
	}
	*s = *c;
	c->leaves = fresh;
	c->count = 0;
	c->nalloc = 0;
	c->reason = UBDK_CBT_CONSISTENT;
	c->generation++;
	strcpy(c->name, name);
	*sealed = s;
	return 0;
}

int ubdk_cbt_identity_of(const struct ubdk_cow *cow,
			 struct ubdk_cbt_identity *id, struct ubdk_err *err)
{
	const struct ubdk_header *hdr = ubdk_cow_header(cow);
	struct ubdk_os_stat st;
	int ret;

	ret = ubdk_os_fstat(ubdk_cow_fd(cow), &st);
	if (ret < 0)
		return ubdk_fail(err, UBDK_E_SYS, -ret, "%s: cannot stat: %s",
				 ubdk_cow_path(cow), strerror(-ret));
	id->cow_size = st.size;
	id->cow_mtime_ns = st.mtime_ns;
	id->backing_size = hdr->size;
	id->backing_mtime = hdr->mtime;
	return 0;
}

/* --- files ------------------------------------------------------------- */

/* The 256-byte header (docs/cbt.md). */
static void put_header(uint8_t *h, int kind, const struct ubdk_cbt_info *in)
{
	memset(h, 0, UBDK_CBT_HEADER_LEN);
	memcpy(h, kind == UBDK_CBT_KIND_MAP ? MAGIC_MAP : MAGIC_RECORD, 8);
	ubdk_put_le32(h + 8, UBDK_CBT_VERSION);
	ubdk_put_le32(h + 12, UBDK_CBT_HEADER_LEN);
	ubdk_put_le32(h + 16, in->state);
	ubdk_put_le32(h + 20, in->reason);
	ubdk_put_le32(h + 24, in->granularity);
	ubdk_put_le64(h + 32, in->device_size);
	ubdk_put_le64(h + 40, in->generation);
	ubdk_put_le64(h + 48, in->id.cow_size);
	ubdk_put_le64(h + 56, (uint64_t)in->id.cow_mtime_ns);
	ubdk_put_le64(h + 64, in->id.backing_size);
	ubdk_put_le32(h + 72, in->id.backing_mtime);
	ubdk_put_le64(h + 80, in->blocks);
	ubdk_put_le64(h + 88, in->runs);
	memcpy(h + 96, in->name, strlen(in->name));
	memcpy(h + 160, in->from, strlen(in->from));
}

static uint64_t count_runs(const struct ubdk_cbt *c)
{
	uint64_t pos = 0, s, n, runs = 0;

	while (ubdk_cbt_next(c, &pos, &s, &n))
		runs++;
	return runs;
}

/* "<path><suffix>" in a mapped buffer of UBDK_PATH_MAX + 16 bytes. */
#define NAME_BUF (UBDK_PATH_MAX + 16)

/*
 * Write header and runs of c (NULL: none) to path through path.tmp and a
 * rename; fsync when asked.
 */
static int write_file(const char *path, int kind,
		      const struct ubdk_cbt_info *info,
		      const struct ubdk_cbt *c, bool sync,
		      struct ubdk_err *err)
{
	uint8_t *buf;
	char *tmp;
	uint64_t pos = 0, s, n, off = 0;
	size_t have;
	uint32_t crc;
	int fd = -1, ret;

	if (strlen(path) + 5 > NAME_BUF)
		return ubdk_fail(err, UBDK_E_PATH_TOO_LONG, ENAMETOOLONG,
				 "%s: name too long", path);
	buf = ubdk_os_map(IO_BYTES + NAME_BUF);
	if (!buf)
		return ubdk_fail(err, UBDK_E_NOMEM, ENOMEM,
				 "%s: no memory to write it", path);
	tmp = (char *)buf + IO_BYTES;
	strcpy(tmp, path);
	strcat(tmp, ".tmp");
	ret = ubdk_os_open(tmp, UBDK_OS_RDWR | UBDK_OS_CREATE | UBDK_OS_TRUNC,
			   0644, &fd);
	if (ret < 0) {
		ubdk_fail(err, UBDK_E_SYS, -ret, "%s: cannot create: %s", tmp,
			  strerror(-ret));
		goto out;
	}
	put_header(buf, kind, info);
	crc = ubdk_crc32(0, buf, UBDK_CBT_HEADER_LEN);
	have = UBDK_CBT_HEADER_LEN;
	while (c && ubdk_cbt_next(c, &pos, &s, &n)) {
		if (have + UBDK_CBT_RUN_LEN > IO_BYTES) {
			ret = ubdk_os_pwrite(fd, buf, have, off);
			if (ret < 0)
				goto write_fail;
			off += have;
			have = 0;
		}
		ubdk_put_le64(buf + have, s);
		ubdk_put_le64(buf + have + 8, n);
		crc = ubdk_crc32(crc, buf + have, UBDK_CBT_RUN_LEN);
		have += UBDK_CBT_RUN_LEN;
	}
	if (have + 4 > IO_BYTES) {
		ret = ubdk_os_pwrite(fd, buf, have, off);
		if (ret < 0)
			goto write_fail;
		off += have;
		have = 0;
	}
	ubdk_put_le32(buf + have, crc);
	have += 4;
	ret = ubdk_os_pwrite(fd, buf, have, off);
	if (ret < 0)
		goto write_fail;
	if (sync) {
		ret = ubdk_os_fsync(fd);
		if (ret < 0)
			goto write_fail;
	}
	ret = ubdk_os_close(fd);
	fd = -1;
	if (ret < 0)
		goto write_fail;
	ret = ubdk_os_rename(tmp, path);
	if (ret < 0) {
		ubdk_fail(err, UBDK_E_SYS, -ret, "%s: cannot rename to %s: %s",
			  tmp, path, strerror(-ret));
		goto out;
	}
	goto out;
write_fail:
	ubdk_fail(err, UBDK_E_SYS, -ret, "%s: cannot write: %s", tmp,
		  strerror(-ret));
out:
	if (fd >= 0)
		ubdk_os_close(fd);
	/* Never leave a half-written temporary behind. */
	if (ret < 0)
		ubdk_os_unlink(tmp);
	ubdk_os_unmap(buf, IO_BYTES + NAME_BUF);
	return ret;
}

int ubdk_cbt_save(const struct ubdk_cbt *c, const char *path, int state,
		  const struct ubdk_cbt_identity *id, struct ubdk_err *err)
{
	struct ubdk_cbt_info info;

	if (state != UBDK_CBT_STATE_OPEN && state != UBDK_CBT_STATE_CLEAN)
		return ubdk_fail(err, UBDK_E_INVALID_ARG, EINVAL,
				 "%s: bad record state %d", path, state);
	ubdk_cbt_get_info(c, &info);
	info.state = (uint32_t)state;
	info.id = *id;
	info.runs = count_runs(c);
	return write_file(path, UBDK_CBT_KIND_RECORD, &info, c, true, err);
}

int ubdk_cbt_mark_open(const struct ubdk_cbt *c, const char *path, bool sync)
{
	/* On the stack: the I/O thread may take no memory but mappings, and
	 * this is small (the frame stays well under the kernel's 1 KiB). */
	uint8_t buf[UBDK_CBT_HEADER_LEN + 4];
	struct ubdk_cbt_info info;
	int fd, ret, ret2;

	ubdk_cbt_get_info(c, &info);
	info.state = UBDK_CBT_STATE_OPEN;
	info.blocks = 0;
	put_header(buf, UBDK_CBT_KIND_RECORD, &info);
	ubdk_put_le32(buf + UBDK_CBT_HEADER_LEN,
		      ubdk_crc32(0, buf, UBDK_CBT_HEADER_LEN));
	/* In place: a crash half-way leaves a record that fails its
	 * checksum or is empty, untrusted either way. */
	ret = ubdk_os_open(path, UBDK_OS_RDWR | UBDK_OS_CREATE | UBDK_OS_TRUNC,
			   0644, &fd);
	if (ret < 0)
		return ret;
	ret = ubdk_os_pwrite(fd, buf, sizeof(buf), 0);
	if (!ret && sync)
		ret = ubdk_os_fsync(fd);
	ret2 = ubdk_os_close(fd);
	return ret ? ret : ret2;
}

int ubdk_cbt_write_map(const struct ubdk_cbt *s, const char *to,
		       const char *path, const struct ubdk_cbt_identity *id,
		       struct ubdk_err *err)
{
	struct ubdk_cbt_info info;

	if (!to || !ubdk_cbt_name_ok(to))
		return ubdk_fail(err, UBDK_E_INVALID_ARG, EINVAL,
				 "bad checkpoint name");
	ubdk_cbt_get_info(s, &info);
	strcpy(info.from, info.name);
	strcpy(info.name, to);
	/* The map ends at checkpoint generation + 1. */
	info.generation++;
	info.id = *id;
	info.runs = count_runs(s);
	return write_file(path, UBDK_CBT_KIND_MAP, &info, s, false, err);
}

/* --- reading ------------------------------------------------------------- */

struct ubdk_cbt_file {
	int fd;
	struct ubdk_cbt_info info;
	uint64_t nblocks;
	uint64_t next;             /* runs returned */
	uint64_t buf_off;          /* file offset of buf[0] */
	size_t buf_len;
	uint8_t buf[IO_BYTES];
	char path[];
};

static int file_fail(const struct ubdk_cbt_file *f, struct ubdk_err *err,
		     int code, const char *what)
{
	return ubdk_fail(err, code, code == UBDK_E_SYS ? EIO : EINVAL,
			 "%s: %s", f->path, what);
}

/* A NUL-terminated valid name from a 64-byte field, else false. */
static bool get_name(const uint8_t *p, char *out)
{
	size_t i;

	for (i = 0; i < UBDK_CBT_NAME_MAX; i++)
		if (!p[i])
			break;
	if (i == UBDK_CBT_NAME_MAX)
		return false;
	memcpy(out, p, i);
	out[i] = '\0';
	for (; i < UBDK_CBT_NAME_MAX; i++)
		if (p[i])
			return false;
	return ubdk_cbt_name_ok(out);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	while (n--)
		if (*p++)
			return false;
	return true;
}

/* Bytes [off, off + len) of the file into f->buf (len <= IO_BYTES). */
static int fill(struct ubdk_cbt_file *f, uint64_t off, size_t len,
		struct ubdk_err *err)
{
	size_t got;
	int ret = ubdk_os_pread(f->fd, f->buf, len, off, &got);

	if (ret < 0)
		return ubdk_fail(err, UBDK_E_SYS, -ret, "%s: cannot read: %s",
				 f->path, strerror(-ret));
	if (got != len)
		return file_fail(f, err, UBDK_E_CBT_FIELD,
				 "shorter than its header says (changed "
				 "while read?)");
	f->buf_off = off;
	f->buf_len = len;
	return 0;
}

/* Header fields, after the checksum matched. */
static int check_header(struct ubdk_cbt_file *f, const uint8_t *h, int kind,
			struct ubdk_err *err)
{
	struct ubdk_cbt_info *in = &f->info;
	char what[128];

	in->state = ubdk_get_le32(h + 16);
	in->reason = ubdk_get_le32(h + 20);
	in->granularity = ubdk_get_le32(h + 24);
	in->device_size = ubdk_get_le64(h + 32);
	in->generation = ubdk_get_le64(h + 40);
	in->id.cow_size = ubdk_get_le64(h + 48);
	in->id.cow_mtime_ns = (int64_t)ubdk_get_le64(h + 56);
	in->id.backing_size = ubdk_get_le64(h + 64);
	in->id.backing_mtime = ubdk_get_le32(h + 72);
	in->blocks = ubdk_get_le64(h + 80);
	in->runs = ubdk_get_le64(h + 88);
	if (!gran_ok(in->granularity)) {
		snprintf(what, sizeof(what), "granularity %u is not a power "
			 "of two between 4096 and 2^30", in->granularity);
		return file_fail(f, err, UBDK_E_CBT_FIELD, what);
	}
	if (kind == UBDK_CBT_KIND_RECORD ?
	    in->state != UBDK_CBT_STATE_OPEN &&
	    in->state != UBDK_CBT_STATE_CLEAN :
	    in->state != UBDK_CBT_STATE_NONE) {
		snprintf(what, sizeof(what), "bad state %u", in->state);
		return file_fail(f, err, UBDK_E_CBT_FIELD, what);
	}
	if (in->reason >= UBDK_CBT_REASON__COUNT) {
		snprintf(what, sizeof(what), "bad reason %u", in->reason);
		return file_fail(f, err, UBDK_E_CBT_FIELD, what);
	}
	if (!in->device_size)
		return file_fail(f, err, UBDK_E_CBT_FIELD,
				 "device size 0");
	if (!get_name(h + 96, in->name) || !get_name(h + 160, in->from))
		return file_fail(f, err, UBDK_E_CBT_FIELD,
				 "bad checkpoint name");
	if (kind == UBDK_CBT_KIND_RECORD && in->from[0])
		return file_fail(f, err, UBDK_E_CBT_FIELD,
				 "a record with a 'from' name");
	if (!all_zero(h + 28, 4) || !all_zero(h + 76, 4) ||
	    !all_zero(h + 224, 32))
		return file_fail(f, err, UBDK_E_CBT_FIELD,
				 "reserved bytes not zero");
	f->nblocks = (in->device_size >> log2_u32(in->granularity)) +
		     ((in->device_size & (in->granularity - 1)) != 0);
	if (in->blocks > f->nblocks || in->runs > in->blocks) {
		snprintf(what, sizeof(what), "%llu blocks in %llu runs on a "
			 "device of %llu blocks",
			 (unsigned long long)in->blocks,
			 (unsigned long long)in->runs,
			 (unsigned long long)f->nblocks);
		return file_fail(f, err, UBDK_E_CBT_FIELD, what);
	}
	return 0;
}

/* A run against the one before it (prev_end: its end) and the device. */
static const char *bad_run(const struct ubdk_cbt_file *f, uint64_t s,
			   uint64_t n, uint64_t prev_end)
{
	if (!n)
		return "a run of 0 blocks";
	if (s < prev_end)
		return "runs not sorted or overlapping";
	if (s >= f->nblocks || n > f->nblocks - s)
		return "a run past the device's end";
	return NULL;
}

int ubdk_cbt_file_open(const char *path, int kind, struct ubdk_cbt_file **out,
		       struct ubdk_cbt_info *info, struct ubdk_err *err)
{
	struct ubdk_cbt_file *f;
	struct ubdk_os_stat st;
	uint8_t h[UBDK_CBT_HEADER_LEN];
	uint64_t off, end, prev = 0, sum = 0, i;
	const char *bad = NULL;
	char what[160];
	uint32_t crc;
	int ret;

	*out = NULL;
	f = ubdk_os_alloc(sizeof(*f) + strlen(path) + 1);
	if (!f)
		return ubdk_fail(err, UBDK_E_NOMEM, ENOMEM,
				 "%s: no memory to read it", path);
	memset(f, 0, sizeof(*f));
	strcpy(f->path, path);
	f->fd = -1;
	ret = ubdk_os_open(path, UBDK_OS_RDONLY, 0, &f->fd);
	if (ret < 0) {
		f->fd = -1;
		ubdk_fail(err, UBDK_E_SYS, -ret, "%s: cannot open: %s", path,
			  strerror(-ret));
		goto fail;
	}
	ret = ubdk_os_fstat(f->fd, &st);
	if (ret < 0) {
		ubdk_fail(err, UBDK_E_SYS, -ret, "%s: cannot stat: %s", path,
			  strerror(-ret));
		goto fail;
	}
	ret = -EINVAL;
	if (st.type != UBDK_OS_REG) {
		file_fail(f, err, UBDK_E_NOT_REGULAR, "not a regular file");
		goto fail;
	}
	if (st.size < UBDK_CBT_HEADER_LEN + 4) {
		file_fail(f, err, UBDK_E_SHORT_HEADER,
			  "too short for a CBT record or map");
		goto fail;
	}
	ret = fill(f, 0, UBDK_CBT_HEADER_LEN, err);
	if (ret < 0)
		goto fail;
	memcpy(h, f->buf, sizeof(h));
	ret = -EINVAL;
	if (memcmp(h, MAGIC_RECORD, 8) && memcmp(h, MAGIC_MAP, 8)) {
		file_fail(f, err, UBDK_E_BAD_MAGIC,
			  "bad magic (not a CBT record or map)");
		goto fail;
	}
	f->info.kind = memcmp(h, MAGIC_MAP, 8) ? UBDK_CBT_KIND_RECORD :
						 UBDK_CBT_KIND_MAP;
	if (kind && f->info.kind != kind) {
		file_fail(f, err, UBDK_E_BAD_MAGIC, kind == UBDK_CBT_KIND_MAP ?
			  "bad magic (a CBT record, not a map)" :
			  "bad magic (a CBT map, not a record)");
		goto fail;
	}
	f->info.version = ubdk_get_le32(h + 8);
	if (f->info.version != UBDK_CBT_VERSION) {
		snprintf(what, sizeof(what), "unsupported version %u",
			 f->info.version);
		file_fail(f, err, UBDK_E_BAD_VERSION, what);
		goto fail;
	}
	if (ubdk_get_le32(h + 12) != UBDK_CBT_HEADER_LEN) {
		snprintf(what, sizeof(what), "header length %u, not %u",
			 ubdk_get_le32(h + 12), UBDK_CBT_HEADER_LEN);
		file_fail(f, err, UBDK_E_CBT_FIELD, what);
		goto fail;
	}
	f->info.runs = ubdk_get_le64(h + 88);
	if (f->info.runs > (st.size - UBDK_CBT_HEADER_LEN - 4) /
			   UBDK_CBT_RUN_LEN ||
	    st.size != UBDK_CBT_HEADER_LEN + 4 +
		       f->info.runs * UBDK_CBT_RUN_LEN) {
		snprintf(what, sizeof(what), "%llu bytes, but its header "
			 "says %llu runs (cut short or changed?)",
			 (unsigned long long)st.size,
			 (unsigned long long)f->info.runs);
		file_fail(f, err, UBDK_E_CBT_FIELD, what);
		goto fail;
	}
	/* The checksum first: a damaged file is called that, whatever
	 * field the damage hit.  Runs are checked on the way. */
	crc = ubdk_crc32(0, h, sizeof(h));
	end = UBDK_CBT_HEADER_LEN + f->info.runs * UBDK_CBT_RUN_LEN;
	f->info.granularity = ubdk_get_le32(h + 24);
	f->info.device_size = ubdk_get_le64(h + 32);
	f->nblocks = gran_ok(f->info.granularity) ?
		     (f->info.device_size >> log2_u32(f->info.granularity)) +
		     ((f->info.device_size & (f->info.granularity - 1)) != 0) :
		     0;
	for (off = UBDK_CBT_HEADER_LEN; off < end; off += f->buf_len) {
		size_t len = end - off > IO_BYTES ? IO_BYTES :
			     (size_t)(end - off);

		len -= len % UBDK_CBT_RUN_LEN;
		ret = fill(f, off, len, err);
		if (ret < 0)
			goto fail;
		crc = ubdk_crc32(crc, f->buf, len);
		for (i = 0; i < len && !bad; i += UBDK_CBT_RUN_LEN) {
			uint64_t s = ubdk_get_le64(f->buf + i);
			uint64_t n = ubdk_get_le64(f->buf + i + 8);

			bad = bad_run(f, s, n, prev);
			prev = s + n;
			sum += n;
		}
	}
	ret = fill(f, end, 4, err);
	if (ret < 0)
		goto fail;
	ret = -EINVAL;
	if (ubdk_get_le32(f->buf) != crc) {
		file_fail(f, err, UBDK_E_CHECKSUM, "checksum mismatch");
		goto fail;
	}
	ret = check_header(f, h, f->info.kind, err);
	if (ret < 0)
		goto fail;
	ret = -EINVAL;
	if (bad) {
		file_fail(f, err, UBDK_E_CBT_FIELD, bad);
		goto fail;
	}
	if (sum != f->info.blocks) {
		snprintf(what, sizeof(what), "runs hold %llu blocks, the "
			 "header says %llu", (unsigned long long)sum,
			 (unsigned long long)f->info.blocks);
		file_fail(f, err, UBDK_E_CBT_FIELD, what);
		goto fail;
	}
	f->buf_len = 0;
	f->buf_off = UBDK_CBT_HEADER_LEN;
	if (info)
		*info = f->info;
	*out = f;
	return 0;
fail:
	ubdk_cbt_file_close(f);
	return ret;
}

int ubdk_cbt_file_next(struct ubdk_cbt_file *f, uint64_t *start,
		       uint64_t *count, struct ubdk_err *err)
{
	uint64_t off, end = UBDK_CBT_HEADER_LEN + f->info.runs * UBDK_CBT_RUN_LEN;
	size_t at;
	int ret;

	if (f->next >= f->info.runs)
		return 0;
	off = UBDK_CBT_HEADER_LEN + f->next * UBDK_CBT_RUN_LEN;
	if (off < f->buf_off || off + UBDK_CBT_RUN_LEN > f->buf_off + f->buf_len) {
		size_t len = end - off > IO_BYTES ? IO_BYTES :
			     (size_t)(end - off);

		ret = fill(f, off, len - len % UBDK_CBT_RUN_LEN, err);
		if (ret < 0)
			return ret;
	}
	at = (size_t)(off - f->buf_off);
	*start = ubdk_get_le64(f->buf + at);
	*count = ubdk_get_le64(f->buf + at + 8);
	f->next++;
	return 1;
}

void ubdk_cbt_file_close(struct ubdk_cbt_file *f)
{
	if (!f)
		return;
	if (f->fd >= 0)
		ubdk_os_close(f->fd);
	ubdk_os_free(f);
}

/* --- loading the record ---------------------------------------------------- */

static int untrusted(struct ubdk_cbt_identity const *now, uint32_t gran,
		     const struct ubdk_cbt_info *keep, int reason,
		     struct ubdk_cbt **out, struct ubdk_err *why)
{
	struct ubdk_err e;
	int ret;

	ret = ubdk_cbt_new(now->backing_size, gran, keep ? keep->name : NULL,
			   reason, out, &e);
	if (ret < 0) {
		if (why)
			*why = e;
		return ret;
	}
	if (keep)
		(*out)->generation = keep->generation;
	return 0;
}

int ubdk_cbt_load(const char *path, const struct ubdk_cbt_identity *now,
		  uint32_t granularity, struct ubdk_cbt **out,
		  struct ubdk_err *why)
{
	struct ubdk_cbt_file *f;
	struct ubdk_cbt_info info;
	struct ubdk_cbt *c;
	uint64_t s, n;
	int ret, reason = 0;

	*out = NULL;
	if (!granularity)
		granularity = UBDK_CBT_GRANULARITY;
	if (why)
		memset(why, 0, sizeof(*why));
	ret = ubdk_cbt_file_open(path, UBDK_CBT_KIND_RECORD, &f, &info, why);
	if (ret == -ENOMEM)
		return ret;
	if (ret < 0)
		return untrusted(now, granularity, NULL,
				 why && why->errnum == ENOENT ?
				 UBDK_CBT_MISSING : UBDK_CBT_CORRUPT, out, why);
	if (info.state != UBDK_CBT_STATE_CLEAN) {
		reason = UBDK_CBT_UNCLEAN;
		ubdk_fail(why, UBDK_E_CBT_FIELD, EINVAL, "%s: left open: the "
			  "last session did not end cleanly", path);
	} else if (info.device_size != now->backing_size ||
		   info.id.backing_size != now->backing_size ||
		   info.id.backing_mtime != now->backing_mtime) {
		reason = UBDK_CBT_HEADER_CHANGED;
		ubdk_fail(why, UBDK_E_CBT_FIELD, EINVAL, "%s: describes a COW "
			  "over another backing file (size or mtime in the "
			  "header changed)", path);
	} else if (info.id.cow_size != now->cow_size ||
		   info.id.cow_mtime_ns != now->cow_mtime_ns) {
		reason = UBDK_CBT_COW_CHANGED;
		ubdk_fail(why, UBDK_E_CBT_FIELD, EINVAL, "%s: the COW file "
			  "changed since the record was written (size or "
			  "mtime differ)", path);
	}
	if (reason) {
		ubdk_cbt_file_close(f);
		return untrusted(now, info.granularity, &info, reason, out,
				 why);
	}
	ret = ubdk_cbt_new(info.device_size, info.granularity, info.name,
			   (int)info.reason, &c, why);
	if (ret < 0) {
		ubdk_cbt_file_close(f);
		return ret;
	}
	c->generation = info.generation;
	while ((ret = ubdk_cbt_file_next(f, &s, &n, why)) == 1) {
		ret = ubdk_cbt_mark(c, s << c->shift, n << c->shift);
		if (ret < 0)
			break;
	}
	ubdk_cbt_file_close(f);
	if (ret == -ENOMEM) {
		ubdk_cbt_free(c);
		return ret;
	}
	if (ret < 0) {
		/* Read error half-way: trust nothing. */
		ubdk_cbt_free(c);
		return untrusted(now, info.granularity, &info,
				 UBDK_CBT_CORRUPT, out, why);
	}
	if (why)
		memset(why, 0, sizeof(*why));
	*out = c;
	return 0;
}
