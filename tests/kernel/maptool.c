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

int main(int argc, char **argv)
{
	if (argc != 5)
		goto usage;
	if (!strcmp(argv[1], "coherent"))
		return coherent(argv[2], strtoll(argv[3], NULL, 0), argv[4]);
	if (!strcmp(argv[1], "mwrite"))
		return mwrite(argv[2], strtoll(argv[3], NULL, 0), argv[4]);
	if (!strcmp(argv[1], "stride"))
		return stride(argv[2], strtol(argv[3], NULL, 0));
usage:
	fprintf(stderr, "usage: maptool coherent|mwrite FILE OFF TEXT\n"
		"       maptool stride FILE STEP -\n");
	return 2;
}
