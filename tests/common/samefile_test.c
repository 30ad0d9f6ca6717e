/* SPDX-License-Identifier: GPL-2.0-or-later */
/* tools/common/samefile.c: a path against a file looked at, links followed or not. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "samefile.h"

int main(void)
{
	char dir[] = "/tmp/samefile.XXXXXX", a[PATH_MAX], b[PATH_MAX], hard[PATH_MAX],
	     slink[PATH_MAX];
	struct stat sa, sl;
	int fd;

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(a, sizeof(a), "%s/a", dir);
	snprintf(b, sizeof(b), "%s/b", dir);
	snprintf(hard, sizeof(hard), "%s/hard", dir);
	snprintf(slink, sizeof(slink), "%s/link", dir);
	fd = open(a, O_CREAT | O_WRONLY, 0600);
	CHECK(fd >= 0, "create a");
	close(fd);
	fd = open(b, O_CREAT | O_WRONLY, 0600);
	CHECK(fd >= 0, "create b");
	close(fd);
	CHECK(link(a, hard) == 0, "hard link");
	CHECK(symlink("a", slink) == 0, "symlink");
	CHECK(stat(a, &sa) == 0 && lstat(slink, &sl) == 0, "stat");

	/* The file itself and a hard link to it, either way. */
	CHECK(same_file(a, &sa, true) && same_file(a, &sa, false), "a is not itself");
	CHECK(same_file(hard, &sa, true) && same_file(hard, &sa, false), "hard link differs");
	/* Another file never. */
	CHECK(!same_file(b, &sa, true) && !same_file(b, &sa, false), "b is a");
	/* A symbolic link is its target when followed, else itself. */
	CHECK(same_file(slink, &sa, true), "link followed is not a");
	CHECK(!same_file(slink, &sa, false), "link not followed is a");
	CHECK(same_file(slink, &sl, false) && !same_file(slink, &sl, true), "link as itself");
	/* Nothing there, or no name: false. */
	CHECK(unlink(b) == 0, "unlink b");
	CHECK(!same_file(b, &sa, true) && !same_file(b, &sa, false), "missing file matched");
	CHECK(!same_file(NULL, &sa, true), "NULL matched");
	/* A dangling link matches only as itself. */
	CHECK(unlink(a) == 0 && unlink(hard) == 0, "unlink a");
	CHECK(!same_file(slink, &sa, true) && same_file(slink, &sl, false), "dangling link");

	unlink(slink);
	rmdir(dir);
	if (failures)
		return 1;
	printf("samefile: all passed\n");
	return 0;
}
