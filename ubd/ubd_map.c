// SPDX-License-Identifier: GPL-2.0
/*
 * ubd_map.c - map-on-read, the block-layer side (docs/sharing.md).
 *
 * With the 'm' flag, a read's whole, page-aligned pages of the page cache
 * are offered to the I/O thread, which maps those whose sectors all come
 * from the backing file (or are zeros) read-only over the page's linear
 * map address (ubd_map_host.c).  The arch side (kernel/patches/0003, 0004)
 * keeps them read-only everywhere: processes map the backing file itself,
 * read-only, through the fd named here (ubd_map_file_open); a kernel
 * write, a writable user mapping, a vmalloc mapping and freeing put
 * physmem back first.
 */
#include <linux/mm.h>
#include <linux/page-flags.h>

#include <as-layout.h>
#include <mem.h>

#include "ubd_host.h"
#include "ubd_map.h"

int ubd_map_setup(void)
{
	static bool told;
	long budget = ubdh_map_budget();
	int err = physmem_subst_init(budget);

	/* The first call sets the budget for good. */
	if (!err && !told) {
		pr_info("ubd: map-on-read maps at most %ld runs at once "
			"(host vm.max_map_count)\n", budget);
		told = true;
	}
	return err;
}

void ubd_map_file_open(int owner, const struct ubdh_dev *hdev,
		       const struct ubd_map_stats *st)
{
	int exec = 0, fd = ubdh_backing_map_fd(hdev, &exec);

	physmem_subst_set_file(owner, fd, st->opens, exec);
}

void ubd_map_file_close(int owner)
{
	physmem_subst_set_file(owner, -1, 0, 0);
}

void ubd_map_unshare(const struct bio_vec *bv)
{
	/* The thread must never write to a read-only page. */
	physmem_subst_write_fault((unsigned long)page_address(bv->bv_page) +
				  bv->bv_offset);
}

/*
 * Only page-cache pages that no process maps: user mappings (and vmalloc
 * ones) would each take the page back to physmem at once; slab and
 * anonymous pages may be handed to host calls that write to them, and
 * buffers outside the page cache may be vmapped already (XFS, dm-bufio),
 * an alias that would keep showing physmem.
 */
static bool ubd_map_page_ok(struct page *page)
{
	struct folio *folio = page_folio(page);

	return folio->mapping && !folio_test_anon(folio) &&
		!folio_test_slab(folio) && !folio_mapped(folio) &&
		(unsigned long)page_address(page) < high_physmem;
}

void ubd_map_offer(struct ubdh_req *req, const struct bio_vec *bv,
		   u64 dev_off, u64 dev_size, struct ubd_map_stats *st)
{
	struct ubdh_map *m;
	unsigned long long mem_off;
	int fd;

	if (bv->bv_offset || bv->bv_len != PAGE_SIZE ||
	    dev_off % PAGE_SIZE || dev_off + PAGE_SIZE > dev_size ||
	    req->nmap == UBDH_MAX_SEGS || !ubd_map_page_ok(bv->bv_page))
		return;
	fd = phys_mapping(page_to_phys(bv->bv_page), &mem_off);
	if (fd < 0 || (req->nmap && fd != req->mem_fd))
		return;
	if (!physmem_subst_reserve()) {
		atomic_long_inc(&st->fallbacks);
		return;
	}
	req->mem_fd = fd;
	m = &req->map[req->nmap++];
	m->addr = page_address(bv->bv_page);
	m->dev_off = dev_off;
	m->mem_off = mem_off;
	m->state = UBDH_MAP_COPY;
}

void ubd_map_done(struct ubdh_req *req, int owner, struct ubd_map_stats *st)
{
	int i;

	for (i = 0; i < req->nmap; i++) {
		struct ubdh_map *m = &req->map[i];
		/* Consecutive only within one open of the backing file. */
		unsigned long file_page = (m->dev_off >> PAGE_SHIFT) + 1 +
			(st->opens << PHYSMEM_SUBST_OPEN_SHIFT);

		if (m->state == UBDH_MAP_DONE || m->state == UBDH_MAP_ZERO) {
			physmem_subst_set(uml_to_phys(m->addr), owner,
					  m->state == UBDH_MAP_ZERO ? 0 :
					  file_page);
			atomic_long_inc(&st->mapped);
			continue;
		}
		physmem_subst_unreserve();
		if (m->state == UBDH_MAP_FAILED)
			atomic_long_inc(&st->fallbacks);
	}
	atomic_long_add(req->nruns, &st->runs);
	req->nmap = 0;
	req->nruns = 0;
}
