/*
 * maptool - file mappings for the map-on-read boot tests (run in a guest).
 *   maptool coherent FILE OFF TEXT
 *	maps FILE read-only and shared, reads the page at OFF, has a child
 *	pwrite() TEXT there, and prints COHERENT-OK when the mapping shows it
 *	(COHERENT-BAD and the bytes otherwise).
 *   maptool mwrite FILE OFF TEXT
 *	writes TEXT at OFF through a shared writable mapping, msync()s it.
 *   maptool stride FILE STEP -
 *	reads one 4 KiB page in every STEP, without readahead, so that no
 *	two pages read are neighbours in the file.
 *   maptool mshared FILE OFF TEXT
 *	a shared writable mapping writes TEXT over a page that read-only
 *	mappings show: this process maps FILE read-only and reads the page;
 *	a child maps it read-only and read-write, reads the page through
 *	both, writes TEXT through the second and msync()s; the child's
 *	read-only mapping, this one and pread() must all show TEXT: prints
 *	MSHARED-OK (MSHARED-BAD and what was seen otherwise).
 *   maptool mprivate FILE OFF TEXT
 *	a child writes TEXT through a private writable mapping of a page
 *	that this process maps read-only and shared: the child sees TEXT,
 *	this process and pread() the old bytes: prints MPRIVATE-OK (or
 *	MPRIVATE-BAD).
 *   maptool hold FILE -
 *	maps FILE read-only and shared, reads all of it, prints
 *	"HOLD data=ADDR text=ADDR sum=SUM" (where the file and this
 *	program's code are mapped, an FNV-1a sum of the bytes), then waits
 *	for a line on its input and prints "HELD sum=SUM" of the bytes again.
 *   maptool sum FILE -
 *	prints "SUM sum=SUM" of FILE, as hold sums it.
 * Exit 0 when done, 1 on a failed check, 2 on a usage or system error.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void die(const char *what)
{
	perror(what);
	exit(2);
}

static char *map(const char *file, int prot, off_t *size)
{
	struct stat st;
	char *p;
	int fd = open(file, prot & PROT_WRITE ? O_RDWR : O_RDONLY);

	if (fd < 0 || fstat(fd, &st))
		die(file);
	p = mmap(NULL, st.st_size, prot, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		die("mmap");
	close(fd);
	*size = st.st_size;
	return p;
}

static int coherent(const char *file, off_t off, const char *text)
{
	size_t len = strlen(text);
	volatile char sink = 0;
	off_t size;
	char *p = map(file, PROT_READ, &size);
	pid_t pid;
	int st, fd;

	if (off + (off_t)len > size)
		die("offset");
	sink += p[off];		/* the page is now mapped in this process */
	(void)sink;
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		fd = open(file, O_WRONLY);
		if (fd < 0 || pwrite(fd, text, len, off) != (ssize_t)len)
			_exit(2);
		_exit(close(fd) ? 2 : 0);
	}
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
		die("writer");
	if (memcmp(p + off, text, len)) {
		printf("COHERENT-BAD %.*s\n", (int)len, p + off);
		return 1;
	}
	printf("COHERENT-OK\n");
	return 0;
}

static int mwrite(const char *file, off_t off, const char *text)
{
	size_t len = strlen(text);
	off_t size;
	char *p = map(file, PROT_READ | PROT_WRITE, &size);

	if (off + (off_t)len > size)
		die("offset");
	memcpy(p + off, text, len);
	if (msync(p, size, MS_SYNC))
		die("msync");
	return 0;
}

static int stride(const char *file, long step)
{
	char buf[4096];
	off_t off;
	long n = 0;
	int fd = open(file, O_RDONLY);

	if (fd < 0 || step < 1)
		die(file);
	if (posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM))
		die("posix_fadvise");
	for (off = 0; pread(fd, buf, sizeof(buf), off) > 0;
	     off += step * (off_t)sizeof(buf))
		n++;
	printf("STRIDE-READ %ld\n", n);
	return 0;
}

/* Fills buf with len bytes at off of a read-only shared mapping of file,
 * which stays mapped (and its page read). */
static const char *touch_ro(const char *file, off_t off, size_t len)
{
	volatile char sink = 0;
	off_t size;
	const char *p = map(file, PROT_READ, &size);

	if (off + (off_t)len > size)
		die("offset");
	sink += p[off];
	(void)sink;
	return p + off;
}

/* The bytes at off of file as read(2) returns them, in buf. */
static void pread_at(const char *file, off_t off, char *buf, size_t len)
{
	int fd = open(file, O_RDONLY);

	if (fd < 0 || pread(fd, buf, len, off) != (ssize_t)len)
		die("pread");
	close(fd);
}

/* Runs fn in a child; its exit status (2 when it did not exit). */
static int in_child(int (*fn)(const char *, off_t, const char *),
		    const char *file, off_t off, const char *text)
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		die("fork");
	if (pid == 0)
		_exit(fn(file, off, text));
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		return 2;
	return WEXITSTATUS(st);
}

static int mshared_child(const char *file, off_t off, const char *text)
{
	size_t len = strlen(text);
	const char *ro = touch_ro(file, off, len);
	volatile char sink = 0;
	off_t size;
	char *rw = map(file, PROT_READ | PROT_WRITE, &size);

	sink += rw[off];	/* a read first: a read-only pte, then a write */
	(void)sink;
	memcpy(rw + off, text, len);
	if (msync(rw, size, MS_SYNC))
		die("msync");
	if (memcmp(rw + off, text, len) || memcmp(ro, text, len)) {
		printf("MSHARED-BAD child rw=%.*s ro=%.*s\n", (int)len,
		       rw + off, (int)len, ro);
		return 1;
	}
	return 0;
}

static int mshared(const char *file, off_t off, const char *text)
{
	size_t len = strlen(text);
	const char *ro = touch_ro(file, off, len);
	char buf[256];
	int ret;

	if (len > sizeof(buf))
		die("text");
	ret = in_child(mshared_child, file, off, text);
	if (ret)
		return ret;
	pread_at(file, off, buf, len);
	if (memcmp(ro, text, len) || memcmp(buf, text, len)) {
		printf("MSHARED-BAD ro=%.*s read=%.*s\n", (int)len, ro,
		       (int)len, buf);
		return 1;
	}
	printf("MSHARED-OK\n");
	return 0;
}

static int mprivate_child(const char *file, off_t off, const char *text)
{
	size_t len = strlen(text);
	volatile char sink = 0;
	struct stat st;
	char *p;
	int fd = open(file, O_RDONLY);

	if (fd < 0 || fstat(fd, &st))
		die(file);
	p = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		die("mmap");
	sink += p[off];
	(void)sink;
	memcpy(p + off, text, len);
	return memcmp(p + off, text, len) != 0;
}

static int mprivate(const char *file, off_t off, const char *text)
{
	size_t len = strlen(text);
	const char *ro = touch_ro(file, off, len);
	char before[256], after[256];
	int ret;

	if (len > sizeof(before))
		die("text");
	pread_at(file, off, before, len);
	if (!memcmp(before, text, len))
		die("text already there");
	ret = in_child(mprivate_child, file, off, text);
	if (ret) {
		printf("MPRIVATE-BAD child\n");
		return ret;
	}
	pread_at(file, off, after, len);
	if (memcmp(ro, before, len) || memcmp(after, before, len)) {
		printf("MPRIVATE-BAD ro=%.*s read=%.*s\n", (int)len, ro,
		       (int)len, after);
		return 1;
	}
	printf("MPRIVATE-OK\n");
	return 0;
}

static unsigned long long fnv(const unsigned char *p, off_t len)
{
	unsigned long long h = 14695981039346656037ULL;
	off_t i;

	for (i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

static int hold(const char *file, int wait)
{
	off_t size;
	const unsigned char *p = (const unsigned char *)map(file, PROT_READ,
							    &size);
	char line[16];

	if (!wait) {
		printf("SUM sum=%016llx\n", fnv(p, size));
		return 0;
	}
	printf("HOLD data=%p text=%p sum=%016llx\n", (const void *)p,
	       (void *)(unsigned long)&hold, fnv(p, size));
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		die("stdin");
	printf("HELD sum=%016llx\n", fnv(p, size));
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "hold"))
		return hold(argv[2], 1);
	if (argc == 4 && !strcmp(argv[1], "sum"))
		return hold(argv[2], 0);
	if (argc != 5)
		goto usage;
	if (!strcmp(argv[1], "coherent"))
		return coherent(argv[2], strtoll(argv[3], NULL, 0), argv[4]);
	if (!strcmp(argv[1], "mwrite"))
		return mwrite(argv[2], strtoll(argv[3], NULL, 0), argv[4]);
	if (!strcmp(argv[1], "stride"))
		return stride(argv[2], strtol(argv[3], NULL, 0));
	if (!strcmp(argv[1], "mshared"))
		return mshared(argv[2], strtoll(argv[3], NULL, 0), argv[4]);
	if (!strcmp(argv[1], "mprivate"))
		return mprivate(argv[2], strtoll(argv[3], NULL, 0), argv[4]);
usage:
	fprintf(stderr, "usage: maptool coherent|mwrite|mshared|mprivate "
		"FILE OFF TEXT\n"
		"       maptool stride FILE STEP -\n"
		"       maptool hold|sum FILE -\n");
	return 2;
}
