// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * mapbench - memory bandwidth through three mappings of the same memory
 *
 *   mapbench SIZE PASSES RAW FILE
 *
 * RAW is the allocation's memory file itself (the simulated device's
 * memory, mapped without dcdfs); FILE is the dcdfs file of that allocation.
 * Three mappings of SIZE bytes are compared: "raw" (mmap of RAW), "direct"
 * (dcdfs_map() of FILE) and "fuse" (mmap of FILE: the page cache).
 *
 * For each: the faults taken by the first touch of every page (minor
 * faults counted, and how much smaps shows in 2 MiB pages), then PASSES
 * timed passes of each loop, sides alternating within a pass (each pass
 * starts with the next side, so that none is always first):
 *   seq-read   sum of every 64-bit word
 *   seq-write  memset() of the whole range, then msync()
 *   rand-read  64-byte loads at 8M random cache-line offsets (fuse: 512K)
 *   rand-write 64-byte stores at the same offsets, then msync()
 * Each line gives the median, in MiB/s (sequential) or million
 * accesses/s (random), and its ratio to raw.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <dcdfs/map.h>

#include "smaps.h"

#define NR_SIDES 3
#define NR_LOOPS 4
#define RAND_OPS (8u << 20)

static const char *const sides[NR_SIDES] = { "raw", "direct", "fuse" };
static const char *const loops[NR_LOOPS] = {
	"seq-read", "seq-write", "rand-read", "rand-write",
};

static volatile uint64_t sink;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "mapbench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static uint64_t seq_read(const uint64_t *p, size_t words)
{
	uint64_t a = 0, b = 0, c = 0, d = 0;

	for (size_t i = 0; i < words; i += 4) {
		a += p[i];
		b += p[i + 1];
		c += p[i + 2];
		d += p[i + 3];
	}
	return a + b + c + d;
}

static uint64_t rand_loop(uint8_t *p, size_t size, bool write,
			  unsigned int ops)
{
	size_t lines = size / 64;
	uint64_t x = 0x9e3779b97f4a7c15ULL, sum = 0;

	for (unsigned int i = 0; i < ops; i++) {
		uint64_t *l;

		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		l = (uint64_t *)(p + (x >> 20) % lines * 64);
		if (write) {
			for (int k = 0; k < 8; k++)
				l[k] = x + (uint64_t)k;
		} else {
			for (int k = 0; k < 8; k++)
				sum += l[k];
		}
	}
	return sum;
}

/*
 * One timed loop; returns MiB/s or millions of accesses per second.  The
 * page cache side makes a sixteenth of the random accesses: its stores run
 * at a few hundred thousand a second, and the figure is a rate.
 */
static double run_loop(int loop, uint8_t *p, size_t size, bool fuse)
{
	unsigned int ops = fuse ? RAND_OPS / 16 : RAND_OPS;
	double t0 = now(), t;

	switch (loop) {
	case 0:
		sink += seq_read((const uint64_t *)p, size / 8);
		break;
	case 1:
		memset(p, (int)(sink & 0xff) | 1, size);
		break;
	default:
		sink += rand_loop(p, size, loop == 3, ops);
	}
	/*
	 * Stores count once they are in the memory: for the page cache that
	 * is at msync(), and its write-back must not run under the next
	 * side's pass.  For the other two msync() has nothing to write.
	 */
	if (loop == 1 || loop == 3)
		msync(p, size, MS_SYNC);
	t = now() - t0;
	return loop < 2 ? (double)size / (1 << 20) / t : ops / 1e6 / t;
}

/* First touch: write then read every page; report the faults it took. */
static void warm(const char *side, uint8_t *p, size_t size)
{
	struct rusage r0, r1;
	double t0 = now(), t;
	long faults;

	getrusage(RUSAGE_SELF, &r0);
	for (size_t i = 0; i < size; i += 4096)
		p[i] = 1;
	getrusage(RUSAGE_SELF, &r1);
	t = now() - t0;
	faults = r1.ru_minflt - r0.ru_minflt;
	printf("%-7s first touch: %ld faults for %zu MiB (%.1f KiB per fault),"
	       " %lu MiB in 2 MiB pages, %.0f ms\n", side, faults, size >> 20,
	       faults ? (double)size / 1024 / (double)faults : 0.0,
	       smaps_huge_kb(p, size) >> 10, t * 1e3);
	sink += seq_read((const uint64_t *)p, size / 8);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char *argv[])
{
	uint8_t *map[NR_SIDES];
	double *v[NR_SIDES][NR_LOOPS];
	size_t size;
	int passes, raw_fd, fd, rc;
	void *p;

	if (argc != 5) {
		fprintf(stderr, "usage: mapbench SIZE PASSES RAW FILE\n");
		return 2;
	}
	size = strtoull(argv[1], NULL, 0);
	passes = atoi(argv[2]);
	if (!size || size % (2u << 20) || passes < 1) {
		fprintf(stderr, "mapbench: bad size or passes\n");
		return 2;
	}
	raw_fd = open(argv[3], O_RDWR);
	fd = open(argv[4], O_RDWR);
	if (raw_fd < 0 || fd < 0)
		die("open");
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, raw_fd, 0);
	if (p == MAP_FAILED)
		die("mmap raw");
	map[0] = p;
	rc = dcdfs_map(fd, 0, size, PROT_READ | PROT_WRITE, &p);
	if (rc) {
		errno = -rc;
		die("dcdfs_map");
	}
	map[1] = p;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		die("mmap fuse");
	map[2] = p;

	for (int s = 0; s < NR_SIDES; s++)
		warm(sides[s], map[s], size);
	for (int s = 0; s < NR_SIDES; s++)
		for (int l = 0; l < NR_LOOPS; l++)
			v[s][l] = calloc((size_t)passes, sizeof(double));
	for (int i = 0; i < passes; i++)
		for (int l = 0; l < NR_LOOPS; l++)
			for (int k = 0; k < NR_SIDES; k++) {
				int s = (i + k) % NR_SIDES;

				v[s][l][i] = run_loop(l, map[s], size, s == 2);
			}

	printf("\n%-11s %14s %14s %14s %8s %8s\n", "loop", "raw", "direct",
	       "fuse", "dir/raw", "fuse/raw");
	for (int l = 0; l < NR_LOOPS; l++) {
		double med[NR_SIDES];

		for (int s = 0; s < NR_SIDES; s++) {
			qsort(v[s][l], (size_t)passes, sizeof(double),
			      cmp_double);
			med[s] = v[s][l][passes / 2];
		}
		printf(l < 2 ? "%-11s %9.0f %-4s %9.0f %-4s %9.0f %-4s %8.3f %8.3f\n" :
			       "%-11s %9.2f %-4s %9.2f %-4s %9.2f %-4s %8.3f %8.3f\n",
		       loops[l], med[0], l < 2 ? "MB/s" : "M/s", med[1],
		       l < 2 ? "MB/s" : "M/s", med[2], l < 2 ? "MB/s" : "M/s",
		       med[1] / med[0], med[2] / med[0]);
	}
	printf("(MB/s: MiB per second; M/s: million 64-byte accesses per"
	       " second; median of %d passes)\n", passes);
	dcdfs_unmap(map[1], size);
	munmap(map[0], size);
	munmap(map[2], size);
	return 0;
}
