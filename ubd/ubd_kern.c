// SPDX-License-Identifier: GPL-2.0
/*
 * ubd_kern.c - the block-layer side of ubdkit's ubd driver.
 *
 * User-Mode Linux block devices /dev/ubda../dev/ubdp (major 98) backed by
 * host files, with the stock driver's command line:
 *
 *	ubd<n>[rsdctm]=<file>[(,|:)<backing>][(,|:)<serial>]
 *
 * and mconsole "config ubd<n>=..." / "remove ubd<n>" for hot-plug.  Each
 * request is handed, as a pointer to its blk-mq payload, to the host side
 * (ubd_host.c), whose I/O thread does the I/O through ubdkit's COW library
 * and hands the pointer back; the socket it comes back on raises UBD_IRQ,
 * whose handler completes the request.
 */
#include <linux/ata.h>
#include <linux/blk-mq.h>
#include <linux/blkdev.h>
#include <linux/completion.h>
#include <linux/ctype.h>
#include <linux/hdreg.h>
#include <linux/init.h>
#include <linux/interrupt.h>
#include <linux/major.h>
#include <linux/mutex.h>
#include <linux/platform_device.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include <init.h>
#include <irq_kern.h>
#include <kern_util.h>
#include <os.h>
#include "mconsole_kern.h"

#include "ubd_host.h"
#include "cow/cbt_reply_codes.h"
#include "ubd_map.h"

#define UBD_SHIFT 4
#define MAX_DEV 16
#define DRIVER_NAME "uml-blkdev"
#define UBD_QUEUE_DEPTH 64
/* The I/O thread's stack: 2^order pages. */
#define UBD_STACK_ORDER 2

/* What the command line or mconsole asked for one unit. */
struct ubd_conf {
	char *file;
	char *backing;
	char *serial;
	char *owned;		/* kstrdup()ed config string, or NULL */
	bool readonly, sync, no_cow, shared, no_trim, map;
};

struct ubd {
	int unit;
	struct ubd_conf *conf;
	u64 size;
	unsigned int sectorsize;
	/* Protected by ubd_open_lock. */
	int count;
	struct ubdh_dev *hdev;
	struct ubdh_info info;
	/* Map-on-read ('m', docs/sharing.md) is on. */
	bool map;
	struct ubd_map_stats map_stats;

	/* Requests queued but not yet sent to the I/O thread: sent in one
	 * write when the block layer says the batch is complete. */
	spinlock_t lock;
	int nstaged;
	struct ubdh_req *staged[UBD_QUEUE_DEPTH];

	struct gendisk *disk;
	struct blk_mq_tag_set tag_set;
	struct platform_device pdev;
};

/* Configuration, adding and removing units. */
static DEFINE_MUTEX(ubd_lock);
/* Opening and closing the host files (taken inside ubd_lock, never around). */
static DEFINE_MUTEX(ubd_open_lock);

static struct ubd_conf ubd_confs[MAX_DEV];
static struct ubd *ubd_devs[MAX_DEV];
static bool ubd_global_sync = IS_ENABLED(CONFIG_BLK_DEV_UBD_SYNC);
static bool ubd_started;

/* The kernel's end of the socket pair to the I/O thread. */
static int thread_fd = -1;
static int io_pid = -1;

static int parse_unit(char **ptr)
{
	char *str = *ptr, *end;
	int n = -1;

	if (isdigit(*str)) {
		n = simple_strtoul(str, &end, 0);
		if (end == str)
			return -1;
		*ptr = end;
	} else if (*str >= 'a' && *str <= 'z') {
		n = *str - 'a';
		*ptr = str + 1;
	}
	return n;
}

/*
 * Parse "<n>[flags]=file[,backing][,serial]" (the part after "ubd") into
 * ubd_confs.  str is kept: the names point into it.  *unit is -1 for a
 * general option ("=sync").
 */
static int ubd_parse(char *str, int *unit, char **error)
{
	struct ubd_conf conf = { };
	struct ubd_conf *c;
	int n, i;
	char *s;

	*unit = -1;
	if (*str == '=') {
		if (!strcmp(str + 1, "sync")) {
			ubd_global_sync = true;
			return 0;
		}
		pr_warn("ubd: fake major not supported any more\n");
		return 0;
	}
	n = parse_unit(&str);
	if (n < 0) {
		*error = "Couldn't parse device number";
		return -EINVAL;
	}
	if (n >= MAX_DEV) {
		*error = "Device number out of range";
		return -EINVAL;
	}
	for (i = 0; *str != '='; i++, str++) {
		if (i == 6) {
			*error = "Too many flags specified";
			return -EINVAL;
		}
		switch (*str) {
		case 'r':
			conf.readonly = true;
			break;
		case 's':
			conf.sync = true;
			break;
		case 'd':
			conf.no_cow = true;
			break;
		case 'c':
			conf.shared = true;
			break;
		case 't':
			conf.no_trim = true;
			break;
		case 'm':
			conf.map = true;
			break;
		case '\0':
			*error = "Missing '='";
			return -EINVAL;
		default:
			*error = "Expected '=' or flag letter (r, s, c, t, m or d)";
			return -EINVAL;
		}
	}
	str++;
	s = strsep(&str, ",:");
	conf.file = *s ? s : NULL;
	s = strsep(&str, ",:");
	conf.backing = s && *s ? s : NULL;
	s = strsep(&str, ",:");
	conf.serial = s && *s ? s : NULL;
	if (conf.backing && conf.no_cow) {
		*error = "Can't specify both 'd' and a cow file";
		return -EINVAL;
	}
	if (!conf.file) {
		*error = "No file given";
		return -EINVAL;
	}

	mutex_lock(&ubd_lock);
	c = &ubd_confs[n];
	if (c->file) {
		mutex_unlock(&ubd_lock);
		*error = "Device is already configured";
		return -EBUSY;
	}
	*c = conf;
	mutex_unlock(&ubd_lock);
	*unit = n;
	return 0;
}

static int ubd_setup(char *str)
{
	char *error;
	int unit;

	if (ubd_parse(str, &unit, &error))
		pr_err("Failed to initialize device with \"%s\" : %s\n", str,
		       error);
	return 1;
}

__setup("ubd", ubd_setup);
__uml_help(ubd_setup,
"ubd<n><flags>=<filename>[(:|,)<filename2>][(:|,)<serial>]\n"
"    Attach host file <filename> as block device /dev/ubd<n> (n is 0-15 or\n"
"    a-p).  With two names, the first is a COW file on the backing file\n"
"    <filename2>, created when missing; with one, a COW file is detected.\n"
"    Flags: r read-only, s synchronous writes, d no COW detection,\n"
"    c shared (no host locks), t no discard, m map-on-read: pages read\n"
"    whole from the backing file are the host's pages of it, mapped\n"
"    read-only, not copies (one copy of a master for all guests;\n"
"    counters in /sys/block/ubd<n>/).  ubdkit's driver.\n\n"
);

/* --- requests ------------------------------------------------------------ */

static blk_status_t ubd_status(struct request *rq, int error)
{
	switch (error) {
	case 0:
		return BLK_STS_OK;
	case ENOSYS:
	case EOPNOTSUPP:
		/* The host file system cannot: stop asking, as stock does. */
		if (req_op(rq) == REQ_OP_DISCARD)
			blk_queue_max_discard_sectors(rq->q, 0);
		else if (req_op(rq) == REQ_OP_WRITE_ZEROES)
			blk_queue_max_write_zeroes_sectors(rq->q, 0);
		return BLK_STS_NOTSUPP;
	case ENOSPC:
		return BLK_STS_NOSPC;
	}
	return BLK_STS_IOERR;
}

static void ubd_done(struct ubdh_req *req)
{
	struct request *rq;
	struct ubd *ubd;

	if (req->op == UBDH_OP_QUIESCE) {
		complete(req->cookie);
		return;
	}
	rq = blk_mq_rq_from_pdu(req);
	ubd = rq->q->queuedata;
	if (req->nmap)
		ubd_map_done(req, ubd->unit + 1, &ubd->map_stats);
	blk_mq_end_request(blk_mq_rq_from_pdu(req),
			   ubd_status(blk_mq_rq_from_pdu(req), req->error));
}

static irqreturn_t ubd_intr(int irq, void *dev_id)
{
	static struct ubdh_req *done[UBD_QUEUE_DEPTH];
	static size_t have;
	int n, i, whole;

	for (;;) {
		n = os_read_file(thread_fd, (char *)done + have,
				 sizeof(done) - have);
		if (n <= 0)
			break;
		have += n;
		whole = have / sizeof(done[0]);
		for (i = 0; i < whole; i++)
			ubd_done(done[i]);
		have -= whole * sizeof(done[0]);
		memmove(done, &done[whole], have);
	}
	if (n < 0 && n != -EAGAIN)
		pr_err("ubd: reading from the I/O thread failed: %d\n", n);
	return IRQ_HANDLED;
}

static int ubd_send_all(struct ubdh_req **reqs, int n)
{
	size_t len = n * sizeof(reqs[0]), done = 0;
	int ret;

	/*
	 * The socket never fills up (at most UBD_QUEUE_DEPTH requests per
	 * device are in flight), so a short write only means "again".
	 */
	while (done < len) {
		ret = os_write_file(thread_fd, (char *)reqs + done, len - done);
		if (ret > 0) {
			done += ret;
			continue;
		}
		if (ret != -EAGAIN && ret != -EINTR) {
			pr_err("ubd: writing to the I/O thread failed: %d\n",
			       ret);
			return ret ? ret : -EIO;
		}
	}
	return 0;
}

static int ubd_send(struct ubdh_req *req)
{
	return ubd_send_all(&req, 1);
}

/* Send the staged requests; fail them if that is impossible. */
static void ubd_commit(struct ubd *ubd)
{
	struct ubdh_req *reqs[UBD_QUEUE_DEPTH];
	unsigned long flags;
	int n, i;

	spin_lock_irqsave(&ubd->lock, flags);
	n = ubd->nstaged;
	memcpy(reqs, ubd->staged, n * sizeof(reqs[0]));
	ubd->nstaged = 0;
	spin_unlock_irqrestore(&ubd->lock, flags);
	if (n && ubd_send_all(reqs, n))
		for (i = 0; i < n; i++) {
			/* Gives back the pages' map budget. */
			ubd_map_done(reqs[i], ubd->unit + 1, &ubd->map_stats);
			blk_mq_end_request(blk_mq_rq_from_pdu(reqs[i]),
					   BLK_STS_IOERR);
		}
}

static void ubd_commit_rqs(struct blk_mq_hw_ctx *hctx)
{
	ubd_commit(hctx->queue->queuedata);
}

static blk_status_t ubd_queue_rq(struct blk_mq_hw_ctx *hctx,
				 const struct blk_mq_queue_data *bd)
{
	struct ubd *ubd = hctx->queue->queuedata;
	struct request *rq = bd->rq;
	struct ubdh_req *req = blk_mq_rq_to_pdu(rq);
	struct req_iterator iter;
	struct bio_vec bvec;
	u64 dev_off;
	bool full, map;
	int n = 0;

	switch (req_op(rq)) {
	case REQ_OP_READ:
		req->op = UBDH_OP_READ;
		break;
	case REQ_OP_WRITE:
		req->op = UBDH_OP_WRITE;
		break;
	case REQ_OP_FLUSH:
		req->op = UBDH_OP_FLUSH;
		break;
	case REQ_OP_DISCARD:
		req->op = UBDH_OP_DISCARD;
		break;
	case REQ_OP_WRITE_ZEROES:
		req->op = UBDH_OP_ZEROES;
		break;
	default:
		return BLK_STS_NOTSUPP;
	}
	req->dev = ubd->hdev;
	req->cookie = NULL;
	req->off = (u64)blk_rq_pos(rq) << SECTOR_SHIFT;
	req->len = blk_rq_bytes(rq);
	req->error = 0;
	req->nmap = 0;
	req->nruns = 0;
	map = req->op == UBDH_OP_READ && ubd->map && ubd->info.cow;
	dev_off = req->off;
	if (req->op == UBDH_OP_READ || req->op == UBDH_OP_WRITE) {
		rq_for_each_segment(bvec, rq, iter) {
			void *base = bvec_virt(&bvec);

			if (req->op == UBDH_OP_READ)
				ubd_map_unshare(&bvec);
			if (map)
				ubd_map_offer(req, &bvec, dev_off, ubd->size,
					      &ubd->map_stats);
			dev_off += bvec.bv_len;

			/* Pieces of one physical segment are contiguous. */
			if (n && req->seg[n - 1].base + req->seg[n - 1].len ==
			    base) {
				req->seg[n - 1].len += bvec.bv_len;
				continue;
			}
			if (WARN_ON_ONCE(n == UBDH_MAX_SEGS))
				return BLK_STS_IOERR;
			req->seg[n].base = base;
			req->seg[n].len = bvec.bv_len;
			n++;
		}
	}
	req->nseg = n;

	blk_mq_start_request(rq);
	spin_lock_irq(&ubd->lock);
	ubd->staged[ubd->nstaged++] = req;
	full = ubd->nstaged == UBD_QUEUE_DEPTH;
	spin_unlock_irq(&ubd->lock);
	if (bd->last || full)
		ubd_commit(ubd);
	return BLK_STS_OK;
}

static const struct blk_mq_ops ubd_mq_ops = {
	.queue_rq = ubd_queue_rq,
	.commit_rqs = ubd_commit_rqs,
};

/* Have the I/O thread write back and forget what it holds for the device. */
static void ubd_quiesce(struct ubd *ubd)
{
	DECLARE_COMPLETION_ONSTACK(done);
	struct ubdh_req *req;

	ubd_commit(ubd);
	req = kzalloc(sizeof(*req), GFP_KERNEL);
	if (!req) {
		/* Nothing in flight (the device is closing): safe to close
		 * without the thread, which then never sees it again. */
		pr_warn("ubd: no memory to quiesce ubd%c\n", 'a' + ubd->unit);
		return;
	}
	req->dev = ubd->hdev;
	req->op = UBDH_OP_QUIESCE;
	req->cookie = &done;
	if (ubd_send(req)) {
		kfree(req);
		return;
	}
	wait_for_completion(&done);
	if (req->error)
		pr_err("ubd%c: writing its COW bitmap failed: %d\n",
		       'a' + ubd->unit, req->error);
	kfree(req);
}

/* --- opening ------------------------------------------------------------- */

/*
 * Runs on the opener's kernel stack (16 KiB): every host-side frame of the
 * driver and the library is under 1 KiB (the kernel's -Wframe-larger-than
 * applies to them, as errors), the deepest open path about 1.3 KiB of them
 * (ubdh_open, ubdk_cow_open, its backing-file open and error message) plus
 * libc's vsnprintf.
 */
static int ubd_open_host(struct ubd *ubd)
{
	struct ubd_conf *c = ubd->conf;
	struct ubdh_opts opts = {
		.writable = !c->readonly,
		.sync = c->sync || ubd_global_sync,
		.no_cow = c->no_cow,
		.shared = c->shared,
	};
	char *msg;
	int err;

	msg = kzalloc(UBDH_MSG_MAX, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	err = ubdh_open(c->file, c->backing, &opts, &ubd->hdev, &ubd->info,
			msg, UBDH_MSG_MAX);
	if (err) {
		pr_err("ubd%c: Can't open \"%s\": %s (errno = %d)\n",
		       'a' + ubd->unit, c->file, msg, -err);
	} else {
		ubd->map_stats.opens++;
		if (ubd->map && ubd->info.cow)
			ubd_map_file_open(ubd->unit + 1, ubd->hdev,
					  &ubd->map_stats);
		if (ubd->info.created)
			pr_info("Creating \"%s\" as COW file for \"%s\"\n",
				c->file, c->backing);
		if (ubd->info.switched)
			pr_info("Switching backing file to '%s'\n", c->backing);
		if (ubdh_cbt_why(ubd->hdev))
			pr_info("ubd%c: changed-block tracking starts "
				"inconsistent: %s\n", 'a' + ubd->unit,
				ubdh_cbt_why(ubd->hdev));
	}
	kfree(msg);
	return err;
}

static int ubd_open(struct block_device *bdev, fmode_t mode)
{
	struct ubd *ubd = bdev->bd_disk->private_data;
	int err = 0;

	mutex_lock(&ubd_open_lock);
	if (ubd->count == 0) {
		err = ubd_open_host(ubd);
		if (err)
			goto out;
	}
	ubd->count++;
	set_disk_ro(bdev->bd_disk, !ubd->info.writable);
out:
	mutex_unlock(&ubd_open_lock);
	return err;
}

static void ubd_release(struct gendisk *disk, fmode_t mode)
{
	struct ubd *ubd = disk->private_data;

	mutex_lock(&ubd_open_lock);
	if (--ubd->count == 0) {
		ubd_quiesce(ubd);
		if (ubd->map)
			ubd_map_file_close(ubd->unit + 1);
		ubdh_close(ubd->hdev);
		ubd->hdev = NULL;
	}
	mutex_unlock(&ubd_open_lock);
}

static int ubd_getgeo(struct block_device *bdev, struct hd_geometry *geo)
{
	struct ubd *ubd = bdev->bd_disk->private_data;

	geo->heads = 128;
	geo->sectors = 32;
	geo->cylinders = ubd->size / (128 * 32 * 512);
	return 0;
}

static int ubd_ioctl(struct block_device *bdev, fmode_t mode,
		     unsigned int cmd, unsigned long arg)
{
	struct ubd *ubd = bdev->bd_disk->private_data;
	u16 id[ATA_ID_WORDS];

	if (cmd != HDIO_GET_IDENTITY)
		return -EINVAL;
	memset(id, 0, sizeof(id));
	id[ATA_ID_CYLS] = ubd->size / (128 * 32 * 512);
	id[ATA_ID_HEADS] = 128;
	id[ATA_ID_SECTORS] = 32;
	if (copy_to_user((char __user *)arg, id, sizeof(id)))
		return -EFAULT;
	return 0;
}

static const struct block_device_operations ubd_fops = {
	.owner = THIS_MODULE,
	.open = ubd_open,
	.release = ubd_release,
	.ioctl = ubd_ioctl,
	.compat_ioctl = blkdev_compat_ptr_ioctl,
	.getgeo = ubd_getgeo,
};

static ssize_t serial_show(struct device *dev, struct device_attribute *attr,
			   char *buf)
{
	struct ubd *ubd = dev_to_disk(dev)->private_data;

	return sprintf(buf, "%s", ubd->conf->serial ? ubd->conf->serial : "");
}
static DEVICE_ATTR_RO(serial);

/* Bytes of host memory the COW library holds for the open device's bitmap
 * (0 when closed or not a COW): it follows the sectors written. */
static ssize_t cow_bitmap_mem_show(struct device *dev,
				   struct device_attribute *attr, char *buf)
{
	struct ubd *ubd = dev_to_disk(dev)->private_data;
	unsigned long long mem = 0;

	mutex_lock(&ubd_open_lock);
	if (ubd->hdev)
		mem = ubdh_bitmap_mem(ubd->hdev);
	mutex_unlock(&ubd_open_lock);
	return sprintf(buf, "%llu\n", mem);
}
static DEVICE_ATTR_RO(cow_bitmap_mem);

/* The changed-block tracking status line (as mconsole "cbt ubdN"), or
 * "closed" when the device is not open. */
static ssize_t cbt_show(struct device *dev, struct device_attribute *attr,
			char *buf)
{
	struct ubd *ubd = dev_to_disk(dev)->private_data;
	int err = 0;

	mutex_lock(&ubd_open_lock);
	if (ubd->hdev)
		err = ubdh_cbt_status(ubd->hdev, buf, PAGE_SIZE - 1);
	else
		strcpy(buf, "closed");
	mutex_unlock(&ubd_open_lock);
	(void)err;
	return strlen(buf) + sprintf(buf + strlen(buf), "\n");
}
static DEVICE_ATTR_RO(cbt);

/* Map-on-read (docs/sharing.md): on or off, and its counters since boot. */
static ssize_t map_on_read_show(struct device *dev,
				struct device_attribute *attr, char *buf)
{
	struct ubd *ubd = dev_to_disk(dev)->private_data;

	return sysfs_emit(buf, "%d\n", ubd->map);
}
static DEVICE_ATTR_RO(map_on_read);

/* Pages mapped from the backing file (or the zero page) on read. */
static ssize_t pages_mapped_show(struct device *dev,
				 struct device_attribute *attr, char *buf)
{
	struct ubd *ubd = dev_to_disk(dev)->private_data;

	return sysfs_emit(buf, "%ld\n",
			  atomic_long_read(&ubd->map_stats.mapped));
}
static DEVICE_ATTR_RO(pages_mapped);

/* Host mappings made for them: one per run of pages that are neighbours
 * both in physmem and on the device. */
static ssize_t map_runs_show(struct device *dev,
			     struct device_attribute *attr, char *buf)
{
	struct ubd *ubd = dev_to_disk(dev)->private_data;

	return sysfs_emit(buf, "%ld\n",
			  atomic_long_read(&ubd->map_stats.runs));
}
static DEVICE_ATTR_RO(map_runs);

/* Mapped pages taken back into physmem because the kernel wrote to them. */
static ssize_t pages_unmapped_on_write_show(struct device *dev,
					    struct device_attribute *attr,
					    char *buf)
{
	struct ubd *ubd = dev_to_disk(dev)->private_data;

	return sysfs_emit(buf, "%lu\n", physmem_subst_writes(ubd->unit + 1));
}
static DEVICE_ATTR_RO(pages_unmapped_on_write);

/* ... because a process needed them writable, or vmalloc mapped them. */
static ssize_t pages_unmapped_on_map_show(struct device *dev,
					  struct device_attribute *attr,
					  char *buf)
{
	struct ubd *ubd = dev_to_disk(dev)->private_data;

	return sysfs_emit(buf, "%lu\n", physmem_subst_maps(ubd->unit + 1));
}
static DEVICE_ATTR_RO(pages_unmapped_on_map);

/* Host mappings of the backing file made for processes (read-only ptes of
 * mapped pages: program text, libraries, read-only file mappings). */
static ssize_t pages_user_mapped_show(struct device *dev,
				      struct device_attribute *attr, char *buf)
{
	struct ubd *ubd = dev_to_disk(dev)->private_data;

	return sysfs_emit(buf, "%lu\n",
			  physmem_subst_user_maps(ubd->unit + 1));
}
static DEVICE_ATTR_RO(pages_user_mapped);

/* Pages that could have been mapped and were copied: the budget was used
 * up (vm.max_map_count) or the host refused the mapping. */
static ssize_t map_fallbacks_show(struct device *dev,
				  struct device_attribute *attr, char *buf)
{
	struct ubd *ubd = dev_to_disk(dev)->private_data;

	return sysfs_emit(buf, "%ld\n",
			  atomic_long_read(&ubd->map_stats.fallbacks));
}
static DEVICE_ATTR_RO(map_fallbacks);

static struct attribute *ubd_attrs[] = {
	&dev_attr_serial.attr,
	&dev_attr_cow_bitmap_mem.attr,
	&dev_attr_cbt.attr,
	&dev_attr_map_on_read.attr,
	&dev_attr_pages_mapped.attr,
	&dev_attr_map_runs.attr,
	&dev_attr_pages_unmapped_on_write.attr,
	&dev_attr_pages_unmapped_on_map.attr,
	&dev_attr_pages_user_mapped.attr,
	&dev_attr_map_fallbacks.attr,
	NULL,
};

static const struct attribute_group ubd_attr_group = {
	.attrs = ubd_attrs,
};

static const struct attribute_group *ubd_attr_groups[] = {
	&ubd_attr_group,
	NULL,
};

/* --- adding and removing units ------------------------------------------ */

static void ubd_pdev_release(struct device *dev)
{
	kfree(container_of(dev, struct ubd, pdev.dev));
}

static void ubd_forget_conf(int n)
{
	kfree(ubd_confs[n].owned);
	memset(&ubd_confs[n], 0, sizeof(ubd_confs[n]));
}

/* Called with ubd_lock held. */
static int ubd_add(int n, char **error)
{
	struct ubd_conf *c = &ubd_confs[n];
	unsigned long long size;
	unsigned int ss;
	struct gendisk *disk;
	struct request_queue *q;
	struct ubd *ubd;
	char *msg;
	int err;

	msg = kzalloc(UBDH_MSG_MAX, GFP_KERNEL);
	if (!msg) {
		*error = "Out of memory";
		return -ENOMEM;
	}
	err = ubdh_probe_size(c->file, c->backing, c->no_cow, &size, &ss, msg,
			      UBDH_MSG_MAX);
	if (err) {
		pr_err("ubd%c: %s (errno = %d)\n", 'a' + n, msg, -err);
		kfree(msg);
		*error = "Couldn't determine size of device's file";
		return err;
	}
	kfree(msg);

	ubd = kzalloc(sizeof(*ubd), GFP_KERNEL);
	if (!ubd) {
		*error = "Out of memory";
		return -ENOMEM;
	}
	ubd->unit = n;
	ubd->conf = c;
	spin_lock_init(&ubd->lock);
	ubd->size = round_up(size, SECTOR_SIZE);
	ubd->sectorsize = ss;
	if (c->map) {
		err = ubd_map_setup();
		if (err)
			pr_warn("ubd%c: no map-on-read (errno = %d)\n",
				'a' + n, -err);
		ubd->map = !err;
	}

	ubd->tag_set.ops = &ubd_mq_ops;
	ubd->tag_set.nr_hw_queues = 1;
	ubd->tag_set.queue_depth = UBD_QUEUE_DEPTH;
	ubd->tag_set.numa_node = NUMA_NO_NODE;
	ubd->tag_set.flags = BLK_MQ_F_SHOULD_MERGE;
	ubd->tag_set.cmd_size = sizeof(struct ubdh_req);
	ubd->tag_set.driver_data = ubd;
	err = blk_mq_alloc_tag_set(&ubd->tag_set);
	if (err) {
		kfree(ubd);
		*error = "Couldn't allocate the tag set";
		return err;
	}
	disk = blk_mq_alloc_disk(&ubd->tag_set, ubd);
	if (IS_ERR(disk)) {
		err = PTR_ERR(disk);
		blk_mq_free_tag_set(&ubd->tag_set);
		kfree(ubd);
		*error = "Couldn't allocate the disk";
		return err;
	}
	ubd->disk = disk;
	q = disk->queue;
	blk_queue_write_cache(q, true, false);
	blk_queue_max_segments(q, UBDH_MAX_SEGS);
	blk_queue_segment_boundary(q, PAGE_SIZE - 1);
	blk_queue_max_segment_size(q, PAGE_SIZE);
	blk_queue_max_hw_sectors(q, UBDH_MAX_SEGS * (PAGE_SIZE >> SECTOR_SHIFT));
	blk_queue_flag_set(QUEUE_FLAG_NONROT, q);
	/* A COW file's bits and slots are per its sector size. */
	blk_queue_logical_block_size(q, ubd->sectorsize);
	if (!c->no_trim) {
		q->limits.discard_granularity = ubd->sectorsize;
		blk_queue_max_discard_sectors(q, UINT_MAX >> SECTOR_SHIFT);
		blk_queue_max_write_zeroes_sectors(q,
						   UINT_MAX >> SECTOR_SHIFT);
	}

	disk->major = UBD_MAJOR;
	disk->first_minor = n << UBD_SHIFT;
	disk->minors = 1 << UBD_SHIFT;
	disk->fops = &ubd_fops;
	disk->private_data = ubd;
	snprintf(disk->disk_name, sizeof(disk->disk_name), "ubd%c", 'a' + n);
	set_capacity(disk, ubd->size >> SECTOR_SHIFT);

	ubd->pdev.name = DRIVER_NAME;
	ubd->pdev.id = n;
	ubd->pdev.dev.release = ubd_pdev_release;
	err = platform_device_register(&ubd->pdev);
	if (err) {
		put_disk(disk);
		blk_mq_free_tag_set(&ubd->tag_set);
		platform_device_put(&ubd->pdev);
		*error = "Couldn't register the platform device";
		return err;
	}
	ubd_devs[n] = ubd;
	err = device_add_disk(&ubd->pdev.dev, disk, ubd_attr_groups);
	if (err) {
		ubd_devs[n] = NULL;
		put_disk(disk);
		blk_mq_free_tag_set(&ubd->tag_set);
		platform_device_unregister(&ubd->pdev);
		*error = "Couldn't add the disk";
		return err;
	}
	return 0;
}

/* Called with ubd_lock held. */
static int ubd_remove_unit(int n, char **error)
{
	struct ubd *ubd = ubd_devs[n];
	int busy;

	if (!ubd) {
		*error = "Device is not configured";
		return -ENODEV;
	}
	mutex_lock(&ubd_open_lock);
	busy = ubd->count > 0;
	mutex_unlock(&ubd_open_lock);
	if (busy) {
		*error = "Device is busy";
		return -EBUSY;
	}
	ubd_devs[n] = NULL;
	del_gendisk(ubd->disk);
	put_disk(ubd->disk);
	blk_mq_free_tag_set(&ubd->tag_set);
	platform_device_unregister(&ubd->pdev);
	ubd_forget_conf(n);
	return 0;
}

/* --- mconsole ------------------------------------------------------------ */

static int ubd_config(char *str, char **error)
{
	int n, err;

	str = kstrdup(str, GFP_KERNEL);
	if (!str) {
		*error = "Failed to allocate memory";
		return -ENOMEM;
	}
	err = ubd_parse(str, &n, error);
	if (err || n < 0) {
		kfree(str);
		return err;
	}
	mutex_lock(&ubd_lock);
	ubd_confs[n].owned = str;
	err = ubd_started ? ubd_add(n, error) : 0;
	if (err)
		ubd_forget_conf(n);
	mutex_unlock(&ubd_lock);
	return err;
}

static int ubd_get_config(char *name, char *str, int size, char **error)
{
	const char *backing = NULL;
	struct ubd_conf *c;
	int n, len = 0;

	n = parse_unit(&name);
	if (n < 0 || n >= MAX_DEV) {
		*error = "ubd_get_config : device number out of range";
		return -1;
	}
	mutex_lock(&ubd_lock);
	c = &ubd_confs[n];
	if (!c->file) {
		CONFIG_CHUNK(str, size, len, "", 1);
		goto out;
	}
	backing = c->backing;
	mutex_lock(&ubd_open_lock);
	if (!backing && ubd_devs[n] && ubd_devs[n]->hdev)
		backing = ubdh_backing(ubd_devs[n]->hdev);
	CONFIG_CHUNK(str, size, len, c->file, 0);
	if (backing) {
		CONFIG_CHUNK(str, size, len, ",", 0);
		CONFIG_CHUNK(str, size, len, backing, 1);
	} else {
		CONFIG_CHUNK(str, size, len, "", 1);
	}
	mutex_unlock(&ubd_open_lock);
out:
	mutex_unlock(&ubd_lock);
	return len;
}

static int ubd_id(char **str, int *start_out, int *end_out)
{
	*start_out = 0;
	*end_out = MAX_DEV - 1;
	return parse_unit(str);
}

static int ubd_mc_remove(int n, char **error)
{
	int err;

	mutex_lock(&ubd_lock);
	err = ubd_remove_unit(n, error);
	mutex_unlock(&ubd_lock);
	return err;
}

/*
 * mconsole "cbt ubdN" and "cbt ubdN checkpoint NAME" (docs/cbt.md), a
 * command kernel/wire.sh adds to mconsole's table.  It runs in mconsole's
 * work item, or, while the guest is stopped, in the stop loop, with
 * signals blocked: there nothing may sleep, so the locks are only tried
 * (a holder could not run to release them) and a busy device says so.
 */
void mconsole_cbt(struct mc_request *req)
{
	bool stopped = irqs_disabled();
	char *p = req->request.data + strlen("cbt"), *name = NULL, *out;
	struct ubd *ubd;
	int n, err;

	p = skip_spaces(p);
	if (strncmp(p, "ubd", 3)) {
		mconsole_reply(req, UBDK_CBT_REPLY_ERR_USAGE
			       "usage: cbt ubdN [checkpoint NAME]", 1, 0);
		return;
	}
	p += 3;
	n = parse_unit(&p);
	if (n < 0 || n >= MAX_DEV || (*p && !isspace(*p))) {
		mconsole_reply(req, UBDK_CBT_REPLY_ERR_BAD_DEVICE "cbt: bad device",
			       1, 0);
		return;
	}
	p = skip_spaces(p);
	if (*p) {
		if (strncmp(p, "checkpoint", 10) || !isspace(p[10])) {
			mconsole_reply(req, UBDK_CBT_REPLY_ERR_USAGE
				       "usage: cbt ubdN [checkpoint NAME]", 1, 0);
			return;
		}
		name = strim(p + 10);
	}
	/* Kernel memory is fine here, even stopped: GFP_ATOMIC. */
	out = kzalloc(UBDH_MSG_MAX + 4096, GFP_ATOMIC);
	if (!out) {
		mconsole_reply(req, UBDK_CBT_REPLY_ERR_NO_MEMORY
			       "cbt: out of memory", 1, 0);
		return;
	}
	if (stopped) {
		if (!mutex_trylock(&ubd_lock)) {
			mconsole_reply(req, UBDK_CBT_REPLY_ERR_BUSY
				       "cbt: busy, try again", 1, 0);
			goto out;
		}
		if (!mutex_trylock(&ubd_open_lock)) {
			mutex_unlock(&ubd_lock);
			mconsole_reply(req, UBDK_CBT_REPLY_ERR_BUSY
				       "cbt: busy, try again", 1, 0);
			goto out;
		}
	} else {
		mutex_lock(&ubd_lock);
		mutex_lock(&ubd_open_lock);
	}
	ubd = ubd_devs[n];
	if (!ubd)
		err = snprintf(out, UBDH_MSG_MAX, UBDK_CBT_REPLY_ERR_NOT_CONFIGURED
			       "ubd%c: not configured",
			       'a' + n) ? -ENODEV : 0;
	else if (!ubd->hdev)
		err = snprintf(out, UBDH_MSG_MAX, UBDK_CBT_REPLY_ERR_NOT_OPEN
			       "ubd%c: not open (its "
			       "record is on the host: see docs/cbt.md)",
			       'a' + n) ? -ENODEV : 0;
	else if (name)
		err = ubdh_cbt_checkpoint(ubd->hdev, name, out,
					  UBDH_MSG_MAX + 4096);
	else
		err = ubdh_cbt_status(ubd->hdev, out, UBDH_MSG_MAX + 4096);
	mutex_unlock(&ubd_open_lock);
	mutex_unlock(&ubd_lock);
	mconsole_reply(req, out, err ? 1 : 0, 0);
out:
	kfree(out);
}

static struct mc_device ubd_mc = {
	.list = LIST_HEAD_INIT(ubd_mc.list),
	.name = "ubd",
	.config = ubd_config,
	.get_config = ubd_get_config,
	.id = ubd_id,
	.remove = ubd_mc_remove,
};

/* --- start and stop ------------------------------------------------------ */

static struct platform_driver ubd_driver = {
	.driver = {
		.name = DRIVER_NAME,
	},
};

static int __init ubd_init(void)
{
	unsigned long stack;
	char *error;
	int i, err;

	if (register_blkdev(UBD_MAJOR, "ubd"))
		return -EBUSY;
	stack = alloc_stack(UBD_STACK_ORDER, 0);
	if (!stack) {
		pr_err("ubd: no memory for the I/O thread's stack\n");
		return -ENOMEM;
	}
	io_pid = ubdh_start_thread(stack + (PAGE_SIZE << UBD_STACK_ORDER),
				   &thread_fd);
	if (io_pid < 0) {
		pr_err("ubd: failed to start the I/O thread (errno = %d)\n",
		       -io_pid);
		io_pid = -1;
		return -EIO;
	}
	err = um_request_irq(UBD_IRQ, thread_fd, IRQ_READ, ubd_intr, 0, "ubd",
			     ubd_devs);
	if (err < 0) {
		pr_err("ubd: um_request_irq failed (errno = %d)\n", -err);
		return err;
	}
	platform_driver_register(&ubd_driver);
	mconsole_register_dev(&ubd_mc);

	mutex_lock(&ubd_lock);
	ubd_started = true;
	/* As stock: unit 0 defaults to ./root_fs, when there is one. */
	if (!ubd_confs[0].file) {
		unsigned long long size;
		unsigned int ss;

		if (!ubdh_probe_size("root_fs", NULL, 0, &size, &ss, NULL, 0))
			ubd_confs[0].file = "root_fs";
	}
	for (i = 0; i < MAX_DEV; i++) {
		if (!ubd_confs[i].file)
			continue;
		err = ubd_add(i, &error);
		if (err) {
			pr_err("Failed to initialize ubd device %d :%s\n", i,
			       error);
			ubd_forget_conf(i);
		}
	}
	mutex_unlock(&ubd_lock);
	return 0;
}
late_initcall(ubd_init);

/*
 * Halt, reboot or poweroff: stop the I/O thread, then write back the COW
 * bitmap chunks still held in memory, so that every completed write keeps
 * its bits even without a flush (as with the stock driver, which writes
 * them at once).
 */
static void ubd_exit(void)
{
	int i;

	ubdh_stop_thread(io_pid);
	for (i = 0; i < MAX_DEV; i++)
		if (ubd_devs[i] && ubd_devs[i]->hdev)
			ubdh_write_back(ubd_devs[i]->hdev);
}
__uml_exitcall(ubd_exit);
