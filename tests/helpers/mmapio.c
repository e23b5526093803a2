// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * mmapio - read and write a file through a MAP_SHARED mapping
 *
 *   mmapio write FILE OFFSET STRING   store STRING at OFFSET, msync
 *   mmapio store FILE OFFSET STRING   the same without msync: the pages
 *                                     stay dirty in the page cache
 *   mmapio read FILE OFFSET LENGTH    print LENGTH bytes from OFFSET
 *   mmapio hold FILE                  map it, close the fd, and wait for
 *                                     SIGTERM or SIGINT; then unmap
 *   mmapio fill FILE OFFSET LENGTH SEED
 *                                     store the test pattern SEED (see
 *                                     pattern.h) at OFFSET, msync
 *   mmapio check FILE OFFSET LENGTH SEED
 *                                     compare the mapping with the pattern;
 *                                     print "ok" or where it differs
 *   mmapio probe FILE                 map it, close the fd, print "mapped",
 *                                     wait for SIGUSR1, then read every
 *                                     page: print "readable" or "SIGBUS"
 *
 * Numbers: decimal, 0x hex, or with a K, M or G suffix.
 *
 * For the demo and the functional tests: the mapping is of the whole file.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pattern.h"

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
	return (size_t)pattern_number("mmapio", s);
}

static void check_range(size_t off, size_t len, size_t size)
{
	if (off > size || len > size - off) {
		fprintf(stderr, "mmapio: past the end\n");
		exit(1);
	}
}

static int fill(char **argv)
{
	size_t size, off = number(argv[3]), len = number(argv[4]);
	uint64_t seed = number(argv[5]);
	char *p = map_file(argv[2], PROT_READ | PROT_WRITE, &size);

	check_range(off, len, size);
	pattern_fill(seed, off, (uint8_t *)p + off, len);
	return msync(p, size, MS_SYNC) ? 1 : 0;
}

static int check(char **argv)
{
	size_t size, off = number(argv[3]), len = number(argv[4]);
	uint64_t seed = number(argv[5]);
	char *p = map_file(argv[2], PROT_READ, &size);
	long long bad;

	check_range(off, len, size);
	bad = pattern_check(seed, off, (uint8_t *)p + off, len);
	if (bad < 0) {
		printf("mmap check %s+%s: ok\n", argv[3], argv[4]);
		return 0;
	}
	printf("mmap check %s+%s: MISMATCH at file offset %#zx\n", argv[3],
	       argv[4], off + (size_t)bad);
	return 1;
}

static sigjmp_buf bus_jmp;

static void on_sigbus(int sig)
{
	(void) sig;
	siglongjmp(bus_jmp, 1);
}

static int probe(const char *path)
{
	sigset_t set;
	size_t size;
	char *p;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	p = map_file(path, PROT_READ | PROT_WRITE, &size);
	printf("mapped\n");
	fflush(stdout);
	sigwait(&set, &sig);
	if (sig != SIGUSR1)
		return 1;
	signal(SIGBUS, on_sigbus);
	if (sigsetjmp(bus_jmp, 1)) {
		printf("SIGBUS\n");
		return 0;
	}
	for (size_t off = 0; off < size; off += 4096)
		(void) ((volatile unsigned char *)p)[off];
	printf("readable\n");
	return 0;
}

int main(int argc, char **argv)
{
	size_t size, off, len;
	sigset_t set;
	char *p;
	int sig;

	if (argc == 5 && (!strcmp(argv[1], "write") ||
			  !strcmp(argv[1], "store"))) {
		p = map_file(argv[2], PROT_READ | PROT_WRITE, &size);
		off = number(argv[3]);
		len = strlen(argv[4]);
		if (off > size || len > size - off) {
			fprintf(stderr, "mmapio: past the end\n");
			return 1;
		}
		memcpy(p + off, argv[4], len);
		if (!strcmp(argv[1], "store"))
			return 0;
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
	if (argc == 6 && !strcmp(argv[1], "fill"))
		return fill(argv);
	if (argc == 6 && !strcmp(argv[1], "check"))
		return check(argv);
	if (argc == 3 && !strcmp(argv[1], "probe"))
		return probe(argv[2]);
	fprintf(stderr, "usage: mmapio write|store FILE OFFSET STRING\n"
			"       mmapio read FILE OFFSET LENGTH\n"
			"       mmapio hold FILE\n"
			"       mmapio fill|check FILE OFFSET LENGTH SEED\n"
			"       mmapio probe FILE\n");
	return 2;
}
