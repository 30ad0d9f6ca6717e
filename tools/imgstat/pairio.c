/* SPDX-License-Identifier: GPL-2.0-or-later */
/* pairio.c - the read-only ext2fs I/O manager over struct img. */
#define _GNU_SOURCE
#include "pairio.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ext2fs/ext2fs.h>

#define PIO_SLOTS 16
#define PIO_PREFIX "imgstat-pair:"

struct pio_slot {
	struct img *im;
	int source;
};

static struct pio_slot slots[PIO_SLOTS];

struct pio_priv {
	struct img *im;
	int source;
	uint64_t offset;          /* "offset=" option: start of the filesystem */
	uint64_t size;            /* bytes readable from offset 0 */
	struct struct_io_stats stats;
};

int pio_register(struct img *im, int source, char *name, size_t len)
{
	for (int i = 0; i < PIO_SLOTS; i++) {
		if (!slots[i].im) {
			slots[i].im = im;
			slots[i].source = source;
			snprintf(name, len, PIO_PREFIX "%d", i);
			return 0;
		}
	}
	return -ENOSPC;
}

static int slot_of(const char *name)
{
	char *end;
	long i;

	if (!name || strncmp(name, PIO_PREFIX, strlen(PIO_PREFIX)) != 0)
		return -1;
	i = strtol(name + strlen(PIO_PREFIX), &end, 10);
	if (*end || i < 0 || i >= PIO_SLOTS || !slots[i].im)
		return -1;
	return (int)i;
}

void pio_unregister(const char *name)
{
	int i = slot_of(name);

	if (i >= 0)
		slots[i].im = NULL;
}

static errcode_t pio_open(const char *name, int flags, io_channel *channel)
{
	io_channel io = NULL;
	struct pio_priv *p = NULL;
	errcode_t ret;
	int i = slot_of(name);

	if (i < 0)
		return EXT2_ET_BAD_DEVICE_NAME;
	if (flags & IO_FLAG_RW)
		return EROFS;
	ret = ext2fs_get_memzero(sizeof(*io), &io);
	if (ret)
		return ret;
	ret = ext2fs_get_memzero(sizeof(*p), &p);
	if (ret)
		goto fail;
	ret = ext2fs_get_mem(strlen(name) + 1, &io->name);
	if (ret)
		goto fail;
	strcpy(io->name, name);
	p->im = slots[i].im;
	p->source = slots[i].source;
	if (p->source == PIO_BACKING)
		p->size = p->im->bfd >= 0 ? (uint64_t)p->im->bst.st_size : 0;
	else
		p->size = p->im->size;
	p->stats.num_fields = 2;
	io->magic = EXT2_ET_MAGIC_IO_CHANNEL;
	io->manager = pio_manager;
	io->block_size = 1024;
	io->refcount = 1;
	io->private_data = p;
	*channel = io;
	return 0;
fail:
	if (io)
		ext2fs_free_mem(&io->name);
	ext2fs_free_mem(&p);
	ext2fs_free_mem(&io);
	return ret;
}

static errcode_t pio_close(io_channel io)
{
	if (--io->refcount > 0)
		return 0;
	ext2fs_free_mem(&io->private_data);
	ext2fs_free_mem(&io->name);
	ext2fs_free_mem(&io);
	return 0;
}

static errcode_t pio_set_blksize(io_channel io, int blksize)
{
	if (blksize <= 0)
		return EXT2_ET_INVALID_ARGUMENT;
	io->block_size = blksize;
	return 0;
}

/* Read [off, off + len) of the source; zeros past its end. */
static errcode_t pio_read(struct pio_priv *p, void *buf, size_t len,
			  uint64_t off)
{
	size_t avail = 0;
	int ret = 0;

	if (off < p->size)
		avail = p->size - off < len ? (size_t)(p->size - off) : len;
	if (avail) {
		if (p->source == PIO_BACKING) {
			ssize_t got = img_read_fd(p->im->bfd, buf, avail, off);

			if (got < 0)
				return (errcode_t)-got;
		} else {
			ret = img_pread(p->im, buf, avail, off);
			if (ret < 0)
				return -ret;
		}
	}
	if (avail < len) {
		memset((char *)buf + avail, 0, len - avail);
		return EXT2_ET_SHORT_READ;
	}
	p->stats.bytes_read += len;
	return 0;
}

static errcode_t pio_read_blk64(io_channel io, unsigned long long block,
				int count, void *data)
{
	struct pio_priv *p = io->private_data;
	size_t len = count < 0 ? (size_t)-count :
		     (size_t)count * (size_t)io->block_size;
	errcode_t ret;

	ret = pio_read(p, data, len, p->offset + block * (uint64_t)io->block_size);
	if (ret && io->read_error)
		ret = io->read_error(io, (unsigned long)block, count, data, len,
				     0, ret);
	return ret;
}

static errcode_t pio_read_blk(io_channel io, unsigned long block, int count,
			      void *data)
{
	return pio_read_blk64(io, block, count, data);
}

static errcode_t pio_write_blk(io_channel io, unsigned long block, int count,
			       const void *data)
{
	(void)io, (void)block, (void)count, (void)data;
	return EROFS;
}

static errcode_t pio_write_blk64(io_channel io, unsigned long long block,
				 int count, const void *data)
{
	(void)io, (void)block, (void)count, (void)data;
	return EROFS;
}

static errcode_t pio_write_byte(io_channel io, unsigned long offset, int size,
				const void *data)
{
	(void)io, (void)offset, (void)size, (void)data;
	return EROFS;
}

static errcode_t pio_discard(io_channel io, unsigned long long block,
			     unsigned long long count)
{
	(void)io, (void)block, (void)count;
	return EROFS;
}

static errcode_t pio_flush(io_channel io)
{
	(void)io;
	return 0;
}

static errcode_t pio_set_option(io_channel io, const char *option,
				const char *arg)
{
	struct pio_priv *p = io->private_data;
	char *end;
	unsigned long long v;

	if (strcmp(option, "offset") != 0)
		return EXT2_ET_INVALID_ARGUMENT;
	if (!arg)
		return EXT2_ET_INVALID_ARGUMENT;
	errno = 0;
	v = strtoull(arg, &end, 0);
	if (errno || *end)
		return EXT2_ET_INVALID_ARGUMENT;
	p->offset = v;
	return 0;
}

static errcode_t pio_get_stats(io_channel io, io_stats *stats)
{
	struct pio_priv *p = io->private_data;

	if (stats)
		*stats = &p->stats;
	return 0;
}

static errcode_t pio_readahead(io_channel io, unsigned long long block,
			       unsigned long long count)
{
	(void)io, (void)block, (void)count;
	return 0;
}

static struct struct_io_manager pio_struct = {
	.magic = EXT2_ET_MAGIC_IO_MANAGER,
	.name = "uml_imgstat pair I/O manager",
	.open = pio_open,
	.close = pio_close,
	.set_blksize = pio_set_blksize,
	.read_blk = pio_read_blk,
	.write_blk = pio_write_blk,
	.flush = pio_flush,
	.write_byte = pio_write_byte,
	.set_option = pio_set_option,
	.get_stats = pio_get_stats,
	.read_blk64 = pio_read_blk64,
	.write_blk64 = pio_write_blk64,
	.discard = pio_discard,
	.cache_readahead = pio_readahead,
	.zeroout = pio_discard,
};

io_manager pio_manager = &pio_struct;
