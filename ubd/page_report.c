// SPDX-License-Identifier: GPL-2.0
/*
 * Free page reporting: memory the guest frees goes back to the host.
 *
 * A UML guest's "physical" memory is a tmpfs file on the host that the
 * kernel maps (arch/um/kernel/physmem.c); every page the guest ever touched
 * stays allocated in it, so a guest that read a big file once holds that
 * much host memory until it exits, even after it dropped its caches.  The
 * page allocator's free page reporting (mm/page_reporting.c) hands us
 * blocks that sit free in the buddy lists; we punch them out of the file.
 * The next use of such a page faults in a fresh zeroed page on the host,
 * which is all a free page's contents may be (init_on_free zeroes anyway).
 *
 * Page poisoning would find our zeroes instead of its pattern and report
 * corruption, so reporting stays off with it on.
 */
#include <linux/init.h>
#include <linux/mm.h>
#include <linux/page_reporting.h>
#include <linux/printk.h>
#include <linux/scatterlist.h>
#include <linux/workqueue.h>

#include <mem.h>
#include <os.h>

/*
 * Blocks of 2^3 pages (32 KiB) and up, well below the default pageblock
 * (4 MiB on UML): after a guest drops its caches the free memory is
 * scattered between pages still in use, and reporting also waits for this
 * much free memory above the low watermark times PAGE_REPORTING_CAPACITY
 * (1 MiB here, 128 MiB at the pageblock order, more than a small guest
 * ever has free while it works).  Smaller blocks would cost one host
 * fallocate() per page for little more memory.  Tunable at run time in
 * /sys/module/page_reporting/parameters/page_reporting_order.
 */
#define UBDK_REPORT_ORDER 3

static void ubdk_report_stop(struct work_struct *work);
static DECLARE_WORK(ubdk_report_stop_work, ubdk_report_stop);

static int ubdk_report(struct page_reporting_dev_info *prdev,
		       struct scatterlist *sgl, unsigned int nents)
{
	struct scatterlist *sg;
	unsigned int i;

	for_each_sg(sgl, sg, nents, i) {
		unsigned long long offset;
		int fd = phys_mapping(page_to_phys(sg_page(sg)), &offset);
		int err;

		if (fd < 0)
			return -EINVAL;
		err = os_falloc_punch(fd, offset, sg->length);
		if (err == -EOPNOTSUPP || err == -ENOSYS) {
			/* physmem is not on tmpfs (TMPDIR elsewhere): give up. */
			pr_warn("ubdk: cannot give freed memory back to the host (%d); page reporting off\n",
				err);
			schedule_work(&ubdk_report_stop_work);
		}
		/* Not marked reported: offered again later. */
		if (err)
			return err;
	}
	return 0;
}

static struct page_reporting_dev_info ubdk_reporting = {
	.report = ubdk_report,
	.order = UBDK_REPORT_ORDER,
};

/* Outside the callback: unregistering waits for the reporting work. */
static void ubdk_report_stop(struct work_struct *work)
{
	page_reporting_unregister(&ubdk_reporting);
}

static int __init ubdk_page_report_init(void)
{
	int err;

	if (page_poisoning_enabled_static()) {
		pr_info("ubdk: page poisoning on: freed memory stays with the guest\n");
		return 0;
	}
	err = page_reporting_register(&ubdk_reporting);
	if (err)
		pr_warn("ubdk: page reporting not registered (%d)\n", err);
	return 0;
}
late_initcall(ubdk_page_report_init);
