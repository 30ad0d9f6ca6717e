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

/* The merged view's runs over a request, walked as its pages ask. */
struct plan {
	struct ubdk_cow *cow;
	uint64_t ss;                 /* sector size */
	uint64_t pos, end;           /* sectors: the next run's start, the end */
	struct ubdk_run run;
	int have;
};

/*
 * Where the whole page at dev_off reads from: UBDK_RUN_BACKING or
 * UBDK_RUN_ZERO when one run holds all its sectors, else -1 (COW sectors,
 * mixed sources, or an unreadable bitmap: the copy reports that).  Pages
 * are asked for in increasing order.
 */
static int page_source(struct plan *p, uint64_t dev_off)
{
	uint64_t first = dev_off / p->ss;
	uint64_t stop = (dev_off + MAP_PAGE + p->ss - 1) / p->ss;

	while (!p->have || p->run.start + p->run.count <= first) {
		if (p->pos < first)
			p->pos = first;
		if (ubdk_cow_next_run(p->cow, &p->pos, p->end, &p->run,
				      NULL) <= 0)
			return -1;
		p->have = 1;
	}
	if (p->run.start > first || p->run.start + p->run.count < stop ||
	    (p->run.src != UBDK_RUN_BACKING && p->run.src != UBDK_RUN_ZERO))
		return -1;
	return p->run.src;
}

/* Do the pages a and b share one host mapping if both are mapped? */
static int neighbours(const struct ubdh_map *a, const struct ubdh_map *b)
{
	return (char *)b->addr == (char *)a->addr + MAP_PAGE &&
		b->mem_off == a->mem_off + MAP_PAGE &&
		b->dev_off == a->dev_off + MAP_PAGE;
}

/*
 * Map the n pages from m on, neighbours that all read from src, with one
 * host mapping, and punch physmem under them.  Sets their states.
 */
static void map_run(struct ubdk_cow *cow, struct ubdh_req *req,
		    struct ubdh_map *m, int n, int src)
{
	int fd = ubdk_cow_backing_fd(cow), mem_fd = req->mem_fd, i;
	int state = UBDH_MAP_DONE;
	size_t len = (size_t)n * MAP_PAGE;
	void *p;

	if (src == UBDK_RUN_BACKING) {
		/*
		 * Pages the host has not cached yet come in exactly: a fault
		 * on one would read the file's whole read-ahead window around
		 * it (mmap read-around), most of it never read by the guest.
		 * A run of backing sectors starts before the backing's end:
		 * the page past it reads zeros, as the library's copy.
		 */
		(void)readahead(fd, (off_t)m->dev_off, len);
		p = mmap(m->addr, len, PROT_READ,
			 MAP_SHARED | MAP_FIXED | MAP_POPULATE, fd,
			 (off_t)m->dev_off);
	} else {
		p = mmap(m->addr, len, PROT_READ,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_POPULATE,
			 -1, 0);
		state = UBDH_MAP_ZERO;
	}
	if (p == MAP_FAILED) {
		/*
		 * The host checks vm.max_map_count before it takes the old
		 * mapping down; should a later step have failed, physmem goes
		 * back (merging with its neighbours, it needs no new map).
		 */
		mmap(m->addr, len, PROT_READ | PROT_WRITE | PROT_EXEC,
		     MAP_SHARED | MAP_FIXED, mem_fd, (off_t)m->mem_off);
		state = UBDH_MAP_FAILED;
	} else {
		/* Best effort: a page left in physmem only costs memory. */
		(void)fallocate(mem_fd,
				FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				(off_t)m->mem_off, (off_t)len);
		req->nruns++;
	}
	for (i = 0; i < n; i++)
		m[i].state = state;
}

/*
 * Map the offered pages: the request's runs are planned once, and pages
 * that are neighbours in physmem and on the device, reading from the same
 * source, share one mapping and one punch.
 */
static void map_pages(struct ubdk_cow *cow, struct ubdh_req *req)
{
	struct plan plan = {
		.cow = cow,
		.ss = ubdk_cow_header(cow)->sectorsize,
	};
	int i = 0, n, src;

	plan.pos = req->off / plan.ss;
	plan.end = (req->off + req->len + plan.ss - 1) / plan.ss;
	while (i < req->nmap) {
		src = page_source(&plan, req->map[i].dev_off);
		if (src < 0) {
			req->map[i++].state = UBDH_MAP_COPY;
			continue;
		}
		n = 1;
		while (i + n < req->nmap &&
		       neighbours(&req->map[i + n - 1], &req->map[i + n]) &&
		       page_source(&plan, req->map[i + n].dev_off) == src)
			n++;
		map_run(cow, req, &req->map[i], n, src);
		i += n;
	}
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

	map_pages(cow, req);
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
