/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ubd_host.h - between the two halves of the ubd driver.
 *
 * ubd_kern.c is kernel code: it talks to the block layer.  ubd_host.c is
 * host code (built against the host's libc, like every *_user.c of UML): it
 * opens the device's files through ubdkit's COW library and runs the I/O
 * thread, a host thread sharing the kernel's address space, which serves
 * requests (through the library for COW devices) sent as pointers over a
 * socket pair and sends them back done.
 *
 * Only plain C types here: this header is compiled on both sides.
 */
#ifndef UBDK_UBD_HOST_H
#define UBDK_UBD_HOST_H

/* Request operations. */
enum {
	UBDH_OP_READ,
	UBDH_OP_WRITE,
	UBDH_OP_FLUSH,
	UBDH_OP_DISCARD,
	UBDH_OP_ZEROES,
	/* Write back the device's changed bitmap chunks and forget the
	 * device; sent before it is closed. */
	UBDH_OP_QUIESCE,
};

/* Longest request, in segments (one page each at most). */
#define UBDH_MAX_SEGS 128

/* Laid out as a struct iovec (and the library's struct ubdk_iov). */
struct ubdh_seg {
	void *base;
	unsigned long len;
};

struct ubdh_dev;

/*
 * Map-on-read (docs/sharing.md): a whole page of a read that the kernel
 * side offers to map from the backing file instead of copying.
 */
enum {
	UBDH_MAP_COPY,               /* not mapped: its sectors were copied */
	UBDH_MAP_DONE,               /* mapped read-only from the backing file,
	                                physmem's page punched */
	UBDH_MAP_ZERO,               /* the same from the host's zero page */
	UBDH_MAP_FAILED,             /* could be mapped, the host refused */
};
struct ubdh_map {
	void *addr;                  /* the page in the kernel's linear map */
	unsigned long long dev_off;  /* its device byte offset */
	unsigned long long mem_off;  /* its offset in physmem (req->mem_fd) */
	int state;                   /* UBDH_MAP_*, set by the thread */
};

/* One request, owned by the kernel side until the thread sends it back. */
struct ubdh_req {
	struct ubdh_dev *dev;
	void *cookie;                /* the kernel side's own pointer */
	unsigned long long off;      /* device byte offset */
	unsigned long long len;      /* bytes */
	int op;
	int error;                   /* 0 or a positive errno */
	int nseg;
	struct ubdh_seg seg[UBDH_MAX_SEGS];
	struct ubdh_seg scratch[UBDH_MAX_SEGS]; /* the thread's own use */
	/* Reads of a COW device: pages offered for mapping, in the order of
	 * the segments. */
	int nmap;
	int nruns;                   /* host mappings the thread made for
	                                them (one per run of neighbours) */
	int mem_fd;                  /* physmem */
	struct ubdh_map map[UBDH_MAX_SEGS];
};

/* How to open a device (the command-line flags). */
struct ubdh_opts {
	int writable;                /* not 'r' */
	int sync;                    /* 's': every write reaches the disk */
	int no_cow;                  /* 'd': never treat the file as a COW */
	int shared;                  /* 'c': no host locks */
};

/* What opening found. */
struct ubdh_info {
	unsigned long long size;     /* device bytes */
	unsigned int sectorsize;     /* logical block size to expose */
	int writable;                /* may differ from asked: read-only host file */
	int cow;                     /* the file is a COW file */
	int created;                 /* a new COW file was made */
	int switched;                /* the header now names the given backing */
	int trim;                    /* discard and write-zeroes can work */
	int cbt;                     /* changed blocks are tracked */
};

#define UBDH_MSG_MAX 512

/*
 * Size of the device a file (and backing file) will make, and its logical
 * block size (a COW file's sector size, else 512), without opening it for
 * I/O or locking it.  Returns 0 or a negative errno.
 */
int ubdh_probe_size(const char *file, const char *backing, int no_cow,
		    unsigned long long *size, unsigned int *sectorsize,
		    char *msg, int msglen);

/*
 * Open a device: the file (created as a COW of backing when missing), its
 * locks, its checks, the backing-path switch.  Called in kernel context,
 * on the caller's stack (the library keeps no large buffers there).  On
 * failure, a negative errno and a one-line reason in msg.
 */
int ubdh_open(const char *file, const char *backing,
	      const struct ubdh_opts *opts, struct ubdh_dev **out,
	      struct ubdh_info *info, char *msg, int msglen);
/* The backing file in use, or NULL. */
const char *ubdh_backing(const struct ubdh_dev *dev);
/* Bytes of host memory the COW library holds for the device's bitmap. */
unsigned long long ubdh_bitmap_mem(const struct ubdh_dev *dev);
/*
 * Map-on-read into processes: the COW device's backing file descriptor
 * when it is open read-only, else -1; *exec: it can be mapped PROT_EXEC.
 */
int ubdh_backing_map_fd(const struct ubdh_dev *dev, int *exec);
/*
 * Changed-block tracking (docs/cbt.md), callable in kernel context while
 * the I/O thread runs, also from mconsole's stop loop (no sleeping, no
 * kernel memory).  Each writes one line to out: the status, or the
 * checkpoint's result, or why not.  -ENODEV: the device has no tracking.
 */
int ubdh_cbt_status(struct ubdh_dev *dev, char *out, int outlen);
int ubdh_cbt_checkpoint(struct ubdh_dev *dev, const char *name, char *out,
			int outlen);
/* Why tracking was found inconsistent at open, or NULL. */
const char *ubdh_cbt_why(const struct ubdh_dev *dev);
/* Close (after UBDH_OP_QUIESCE went through the thread). */
void ubdh_close(struct ubdh_dev *dev);
/* At shutdown, with the thread stopped: write back the changed bitmap
 * chunks, and end the CBT session cleanly (COW flushed, record CLEAN). */
void ubdh_write_back(struct ubdh_dev *dev);

/*
 * How many runs of mapped pages (pages sharing one host mapping) there may
 * be at once: each may split the kernel's host mapping of physmem in three,
 * and the host's vm.max_map_count must keep room for the kernel's own
 * mappings, whose failure is fatal.  Read from the host now; 0 when it
 * cannot tell.
 */
long ubdh_map_budget(void);

/*
 * Start the I/O thread on a stack whose top is sp; *fd_out is the kernel's
 * end of the socket pair.  Returns the thread's pid or a negative errno.
 */
int ubdh_start_thread(unsigned long sp, int *fd_out);
void ubdh_stop_thread(int pid);

#endif
