// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * mmapio - read and write a file through a MAP_SHARED mapping
 *
 *   mmapio write FILE OFFSET STRING   store STRING at OFFSET, msync
 *   mmapio read FILE OFFSET LENGTH    print LENGTH bytes from OFFSET
 *   mmapio hold FILE                  map it, close the fd, and wait for
 *                                     SIGTERM or SIGINT; then unmap
 *
 * For the demo and the functional tests: the mapping is of the whole file.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static void *map_file(const char *path, int prot, size_t *ret_size)
{
	struct stat st;
	void *p;
	int fd;

	fd = open(path, prot & PROT_WRITE ? O_RDWR : O_RDONLY);
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "mmapio: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	p = mmap(NULL, (size_t)st.st_size, prot, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		fprintf(stderr, "mmapio: mmap %s: %s\n", path, strerror(errno));
		exit(1);
	}
	close(fd);
	*ret_size = (size_t)st.st_size;
	return p;
}

static size_t number(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 0);

	if (*end) {
		fprintf(stderr, "mmapio: bad number '%s'\n", s);
		exit(2);
	}
	return (size_t)v;
}

int main(int argc, char **argv)
{
	size_t size, off, len;
	sigset_t set;
	char *p;
	int sig;

	if (argc == 5 && !strcmp(argv[1], "write")) {
		p = map_file(argv[2], PROT_READ | PROT_WRITE, &size);
		off = number(argv[3]);
		len = strlen(argv[4]);
		if (off > size || len > size - off) {
			fprintf(stderr, "mmapio: past the end\n");
			return 1;
		}
		memcpy(p + off, argv[4], len);
		return msync(p, size, MS_SYNC) ? 1 : 0;
	}
	if (argc == 5 && !strcmp(argv[1], "read")) {
		p = map_file(argv[2], PROT_READ, &size);
		off = number(argv[3]);
		len = number(argv[4]);
		if (off > size || len > size - off) {
			fprintf(stderr, "mmapio: past the end\n");
			return 1;
		}
		fwrite(p + off, 1, len, stdout);
		putchar('\n');
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "hold")) {
		sigemptyset(&set);
		sigaddset(&set, SIGTERM);
		sigaddset(&set, SIGINT);
		sigprocmask(SIG_BLOCK, &set, NULL);
		p = map_file(argv[2], PROT_READ | PROT_WRITE, &size);
		printf("mapped\n");
		fflush(stdout);
		sigwait(&set, &sig);
		munmap(p, size);
		return 0;
	}
	fprintf(stderr, "usage: mmapio write FILE OFFSET STRING\n"
			"       mmapio read FILE OFFSET LENGTH\n"
			"       mmapio hold FILE\n");
	return 2;
}
