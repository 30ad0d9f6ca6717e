// SPDX-License-Identifier: GPL-2.0
/*
 * ubd_map_host.c - map-on-read, the I/O thread's half (docs/sharing.md).
 *
 * A page offered by the kernel side whose sectors all read from the
 * backing file is mapped there read-only (MAP_SHARED, so that every guest
 * reading the master shares the host's page-cache page); one whose sectors
 * all read as zeros gets the host's zero page (a private read-only
 * anonymous mapping).  Either way physmem's page is punched out.  The
 * kernel side records the page as substituted when the request completes;
 * until then nothing else touches it (it is locked for the read).
 */
/* _GNU_SOURCE comes with the kernel's host flags. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>

#include "ubd_map_host.h"

#define MAP_PAGE 4096UL

static int map_page(struct ubdk_cow *cow, int mem_fd, struct ubdh_map *m)
{
	struct ubdk_run runs[2];
	uint64_t end;
	size_t n;
	int done = UBDH_MAP_DONE;
	void *p;

	if (ubdk_cow_plan_read(cow, m->dev_off, MAP_PAGE, runs, 2, &n, &end,
			       NULL) < 0 || n != 1 ||
	    end != m->dev_off + MAP_PAGE)
		return UBDH_MAP_COPY;
	switch (runs[0].src) {
	case UBDK_RUN_BACKING:
		/* The host reads around a page an mmap faults in (read_ahead_kb
		 * of the master's disk, 8 MiB on the benchmark's host: a guest
		 * booted to a login prompt left 117 MiB of the master in the
		 * host's cache, against 21 MiB when copying); asked for first,
		 * the page alone is read. */
		(void)posix_fadvise(ubdk_cow_backing_fd(cow), (off_t)m->dev_off,
				    MAP_PAGE, POSIX_FADV_WILLNEED);
		/* A run of backing sectors starts before the backing's end:
		 * the page past it reads zeros, as the library's copy. */
		p = mmap(m->addr, MAP_PAGE, PROT_READ,
			 MAP_SHARED | MAP_FIXED | MAP_POPULATE,
			 ubdk_cow_backing_fd(cow), (off_t)m->dev_off);
		break;
	case UBDK_RUN_ZERO:
		p = mmap(m->addr, MAP_PAGE, PROT_READ,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_POPULATE,
			 -1, 0);
		done = UBDH_MAP_ZERO;
		break;
	default:
		return UBDH_MAP_COPY;
	}
	if (p == MAP_FAILED) {
		/*
		 * The host checks vm.max_map_count before it takes the old
		 * mapping down; should a later step have failed, physmem goes
		 * back (merging with its neighbours, it needs no new map).
		 */
		mmap(m->addr, MAP_PAGE, PROT_READ | PROT_WRITE | PROT_EXEC,
		     MAP_SHARED | MAP_FIXED, mem_fd, (off_t)m->mem_off);
		return UBDH_MAP_FAILED;
	}
	/* Best effort: a page left in physmem only costs memory. */
	(void)fallocate(mem_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			(off_t)m->mem_off, MAP_PAGE);
	return done;
}

/* Copy the pieces gathered in req->scratch, which read from *start on. */
static int copy_pieces(struct ubdk_cow *cow, struct ubdh_req *req, int *n,
		       unsigned long long *start)
{
	unsigned long long bytes = 0;
	int i, ret;

	if (!*n)
		return 0;
	for (i = 0; i < *n; i++)
		bytes += req->scratch[i].len;
	ret = ubdk_cow_preadv(cow, (const struct ubdk_iov *)req->scratch, *n,
			      *start, NULL);
	*start += bytes;
	*n = 0;
	return ret;
}

/* The next mapped page from req->map[*k] on, or NULL. */
static char *next_mapped(const struct ubdh_req *req, int *k)
{
	while (*k < req->nmap && req->map[*k].state != UBDH_MAP_DONE &&
	       req->map[*k].state != UBDH_MAP_ZERO)
		(*k)++;
	return *k < req->nmap ? req->map[*k].addr : NULL;
}

int ubdh_map_read(struct ubdk_cow *cow, struct ubdh_req *req)
{
	unsigned long long start = req->off;
	int i, k = 0, n = 0, ret;

	for (i = 0; i < req->nmap; i++)
		req->map[i].state = map_page(cow, req->mem_fd, &req->map[i]);
	/* The rest, as runs of pieces between mapped pages.  A segment holds
	 * whole pages or none of the mapped ones (the kernel offers whole
	 * bvec pages, in the segments' order). */
	for (i = 0; i < req->nseg; i++) {
		char *base = req->seg[i].base;
		unsigned long len = req->seg[i].len;

		while (len) {
			char *next = next_mapped(req, &k);
			unsigned long piece = len;

			if (next && next >= base && next < base + len)
				piece = next - base;
			if (piece) {
				req->scratch[n].base = base;
				req->scratch[n++].len = piece;
				base += piece;
				len -= piece;
			}
			if (!len)
				break;
			ret = copy_pieces(cow, req, &n, &start);
			if (ret < 0)
				return ret;
			base += MAP_PAGE;
			len -= MAP_PAGE;
			start += MAP_PAGE;
			k++;
		}
	}
	return copy_pieces(cow, req, &n, &start);
}

long ubdh_map_budget(void)
{
	char buf[256];
	long max = 0, used = 0, reserve;
	ssize_t n;
	FILE *f;

	f = fopen("/proc/sys/vm/max_map_count", "re");
	if (!f)
		return 0;
	if (fscanf(f, "%ld", &max) != 1)
		max = 0;
	fclose(f);
	f = fopen("/proc/self/maps", "re");
	if (!f)
		return 0;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		for (ssize_t i = 0; i < n; i++)
			used += buf[i] == '\n';
	fclose(f);
	/* Room for the kernel's own later mappings (vmalloc maps a page at a
	 * time): an eighth of the limit, at least 4096.  The kernel counts
	 * the budget in runs of pages sharing one host mapping, each adding
	 * at most two mappings. */
	reserve = max / 8 > 4096 ? max / 8 : 4096;
	return max - used - reserve > 0 ? (max - used - reserve) / 2 : 0;
}
