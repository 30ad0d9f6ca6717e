// SPDX-License-Identifier: GPL-2.0
/*
 * ubd_host_cbt.c - changed-block tracking of a writable COW device
 * (docs/cbt.md), host side: the record beside the COW loaded at open and
 * written CLEAN at the end of a session, the blocks marked by the I/O
 * thread before each write's data, and mconsole's status and checkpoint,
 * whose lines the cbt reply codec (cow/cbt_reply.c) writes.
 */
/* _GNU_SOURCE comes with the kernel's host flags. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ubd_host_dev.h"
#include "cbt_reply.h"
#include "ubdk_os.h"

/*
 * Load the record beside the COW: trusted only if CLEAN and describing
 * the COW as it is now; otherwise tracking starts afresh, inconsistent
 * (ubdk_cbt_load decides, and says why).  Fails only without memory.
 */
int ubdh_cbt_open(struct ubdh_dev *dev, const char *file, struct ubdk_err *err)
{
	struct ubdk_cbt_identity id;
	size_t len;
	int ret;

	dev->cbt_path = ubdk_os_alloc(UBDK_PATH_MAX + 16);
	dev->cbt_why = ubdk_os_zalloc(UBDK_ERR_MSG_MAX);
	if (!dev->cbt_path || !dev->cbt_why)
		return -ENOMEM;
	/* Absolute: mconsole replies name the map to the host. */
	ret = ubdk_absolutize(file, dev->cbt_path, UBDK_PATH_MAX, err);
	if (ret < 0)
		return ret;
	len = strlen(dev->cbt_path);
	memcpy(dev->cbt_path + len, UBDK_CBT_RECORD_SUFFIX,
	       sizeof(UBDK_CBT_RECORD_SUFFIX));
	ret = ubdk_cbt_identity_of(dev->cow, &id, err);
	if (ret < 0)
		return ret;
	ret = ubdk_cbt_load(dev->cbt_path, &id, 0, &dev->cbt, dev->cbt_why,
			    UBDK_ERR_MSG_MAX, err);
	if (ret < 0)
		return ret;
	/* Trusted: the record on disk is CLEAN and is what we hold. */
	if (!dev->cbt_why[0])
		dev->cbt_on_disk_clean = 1;
	return 0;
}

/*
 * The end of a session (device closed, or the kernel halting with the
 * thread stopped): the COW flushed, then the record written CLEAN with the
 * COW's identity after that flush.  Nothing is written when the record on
 * disk already is that (nothing written, no checkpoint this session).
 */
void ubdh_cbt_close(struct ubdh_dev *dev)
{
	struct ubdk_cbt_identity id;

	if (!dev->cbt || dev->cbt_on_disk_clean)
		return;
	if (ubdk_cow_flush(dev->cow, NULL) < 0 ||
	    ubdk_cbt_identity_of(dev->cow, &id, NULL) < 0)
		return;   /* the record stays OPEN: untrusted next time */
	if (ubdk_cbt_save(dev->cbt, dev->cbt_path, UBDK_CBT_STATE_CLEAN, &id,
			  NULL) == 0) {
		dev->cbt_on_disk_clean = 1;
		dev->cbt_on_disk_open = 0;
	}
}

/* In the I/O thread, before a write's or discard's data: the record on
 * disk says OPEN from the session's first write on, then the blocks. */
void ubdh_cbt_mark(struct ubdh_dev *dev, unsigned long long off,
		   unsigned long long len)
{
	if (!dev->cbt)
		return;
	if (!dev->cbt_on_disk_open) {
		/* Without an OPEN record a crash could leave the old CLEAN
		 * one (its COW identity would still differ, but the promise
		 * is kept by both). */
		if (ubdk_cbt_mark_open(dev->cbt, dev->cbt_path, true) < 0)
			ubdk_cbt_set_reason(dev->cbt, UBDK_CBT_IO_ERROR);
		dev->cbt_on_disk_open = 1;
		dev->cbt_on_disk_clean = 0;
	}
	ubdk_cbt_mark(dev->cbt, off, len);
}

static int status_line(struct ubdh_dev *dev, char *out, int outlen)
{
	struct ubdk_cbt_reply r = { .kind = UBDK_CBT_REPLY_STATUS };
	struct ubdk_cbt_info ci;

	ubdk_cbt_get_info(dev->cbt, &ci);
	memcpy(r.name, ci.name, sizeof(r.name));
	r.reason = ci.reason;
	r.granularity = ci.granularity;
	r.blocks = ci.blocks;
	r.size = ci.device_size;
	r.generation = ci.generation;
	r.mem = ubdk_cbt_mem(dev->cbt);
	return ubdk_cbt_reply_format(out, (size_t)outlen, &r);
}

int ubdh_cbt_status(struct ubdh_dev *dev, char *out, int outlen)
{
	int ret;

	if (!dev->cbt) {
		snprintf(out, (size_t)outlen, UBDK_CBT_REPLY_ERR_NO_TRACKING
			 "no changed-block tracking (a read-only device or not "
			 "a COW)");
		return -ENODEV;
	}
	dev_lock(dev);
	ret = status_line(dev, out, outlen);
	dev_unlock(dev);
	return ret < 0 ? -EIO : 0;
}

const char *ubdh_cbt_why(const struct ubdh_dev *dev)
{
	return dev->cbt && dev->cbt_why && dev->cbt_why[0] ? dev->cbt_why :
	       NULL;
}

/*
 * Checkpoint NAME, with the thread kept off the device: every completed
 * write's bits into the COW file (its data is there already), the map of
 * the blocks changed since the previous checkpoint into "<cow>.cbt-map"
 * (from the tracker as it stands: nothing can mark it meanwhile), then the
 * tracker starts again under NAME.  A request the thread served before is
 * in that map; one it serves after, in the next.  No kernel memory and no
 * sleeping: this may run in mconsole's stop loop.
 */
int ubdh_cbt_checkpoint(struct ubdh_dev *dev, const char *name, char *out,
			int outlen)
{
	struct ubdk_cbt_identity id;
	struct ubdk_cbt_info ci;
	struct ubdk_cbt *sealed;
	struct ubdk_err *err;
	char *map;
	size_t len;
	int ret;

	if (!dev->cbt)
		return ubdh_cbt_status(dev, out, outlen);
	if (!ubdk_cbt_name_ok(name) || !name[0]) {
		snprintf(out, (size_t)outlen, UBDK_CBT_REPLY_ERR_BAD_NAME
			 "bad checkpoint name: 1 to 63 of A-Z a-z 0-9 . _ : @ + -");
		return -EINVAL;
	}
	err = ubdk_os_map(sizeof(*err) + UBDK_PATH_MAX + 16);
	if (!err) {
		snprintf(out, (size_t)outlen, UBDK_CBT_REPLY_ERR_NO_MEMORY
			 "no memory");
		return -ENOMEM;
	}
	map = (char *)(err + 1);
	len = strlen(dev->cbt_path) - strlen(UBDK_CBT_RECORD_SUFFIX);
	memcpy(map, dev->cbt_path, len);
	memcpy(map + len, UBDK_CBT_MAP_SUFFIX, sizeof(UBDK_CBT_MAP_SUFFIX));

	dev_lock(dev);
	ubdk_cbt_get_info(dev->cbt, &ci);
	ret = ubdk_cow_writeback(dev->cow, err);
	if (!ret)
		ret = ubdk_cbt_identity_of(dev->cow, &id, err);
	if (!ret)
		ret = ubdk_cbt_write_map(dev->cbt, name, map, &id, err);
	if (!ret) {
		ret = ubdk_cbt_checkpoint(dev->cbt, name, &sealed, err);
		if (ret < 0)
			ubdk_os_unlink(map);   /* the tracker did not move on */
		else
			ubdk_cbt_free(sealed);
	}
	if (!ret) {
		/*
		 * The record on disk gets the new name.  Not yet OPEN (no
		 * write this session): made OPEN, fsynced, or the CLEAN one
		 * would outlive a crash with the previous checkpoint in it.
		 * Already OPEN: rewritten without fsync (the pause stays
		 * short; whichever version a crash keeps is untrusted).
		 */
		if (ubdk_cbt_mark_open(dev->cbt, dev->cbt_path,
				       !dev->cbt_on_disk_open) < 0)
			ubdk_cbt_set_reason(dev->cbt, UBDK_CBT_IO_ERROR);
		dev->cbt_on_disk_open = 1;
	}
	if (!ret)
		dev->cbt_on_disk_clean = 0;
	dev_unlock(dev);

	if (ret < 0) {
		snprintf(out, (size_t)outlen, UBDK_CBT_REPLY_ERR_FAILED "%s",
			 err->msg);
	} else {
		struct ubdk_cbt_reply r = { .kind = UBDK_CBT_REPLY_CHECKPOINT,
					    .reason = ci.reason,
					    .granularity = ci.granularity,
					    .blocks = ci.blocks,
					    .size = ci.device_size,
					    .generation = ci.generation + 1,
					    .map = map, .map_len = strlen(map) };

		memcpy(r.from, ci.name, sizeof(r.from));
		snprintf(r.name, sizeof(r.name), "%s", name);
		ubdk_cbt_reply_format(out, (size_t)outlen, &r);
	}
	ubdk_os_unmap(err, sizeof(*err) + UBDK_PATH_MAX + 16);
	return ret;
}
