/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "format/sparse.h"
#include "format/stream.h"

#include <errno.h>
#include <unistd.h>

int sparse_unit(void *ctx, const uint8_t *data, size_t len)
{
	struct sparse_out *s = ctx;
	const size_t BLK = 4096;
	size_t i = 0;
	int ret;

	if (!data) {
		s->off += len;
		return 0;
	}
	while (i < len) {
		size_t start, end;

		while (i < len && unit_is_zero(data + i, len - i < BLK ? len - i : BLK))
			i += BLK;
		if (i >= len)
			break;
		start = i;
		while (i < len && !unit_is_zero(data + i, len - i < BLK ? len - i : BLK))
			i += BLK;
		end = i < len ? i : len;
		ret = stream_write_all(s->fd, data + start, end - start, (off_t)(s->off + start));
		if (ret < 0)
			return ret;
		s->written += end - start;
	}
	s->off += len;
	return 0;
}

int sparse_finish(struct sparse_out *s)
{
	return ftruncate(s->fd, (off_t)s->off) < 0 ? -errno : 0;
}
