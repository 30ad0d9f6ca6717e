/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "sparse.h"
#include "stream.h"

#include <errno.h>
#include <unistd.h>

int sparse_unit(void *ctx, const uint8_t *data, size_t len)
{
	struct sparse_out *s = ctx;
	const size_t BLK = 4096;
	size_t i = 0;

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
		for (size_t done = start; done < end;) {
			ssize_t w = pwrite(s->fd, data + done, end - done,
					   (off_t)(s->off + done));

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return -errno;
			if (w == 0)
				return -ENOSPC;
			done += (size_t)w;
			s->written += (uint64_t)w;
		}
	}
	s->off += len;
	return 0;
}

int sparse_finish(struct sparse_out *s)
{
	return ftruncate(s->fd, (off_t)s->off) < 0 ? -errno : 0;
}
