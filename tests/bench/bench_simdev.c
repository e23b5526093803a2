// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Benchmark of the simulated Dynamic Capacity Device (core/simdev*.c).
 *
 * Usage: bench_simdev [N]	(default 100000)
 *
 * On a fresh device under /dev/shm with room for N extents of 2 MiB: N
 * fabric-manager adds of one extent each, N host accepts of those adds,
 * then N host releases, one extent at a time; dcdfs_simdev_check() is
 * timed with all N extents held and once more at the end.  For each kind
 * of operation it prints the median and mean time per operation and the
 * mean over the first and the last 10% of the operations: with O(log n)
 * operations the last 10% (run against ~N extents) cost about what the
 * first 10% cost.  The device is destroyed at the end.
 *
 * A benchmark, not a test: it asserts nothing about time.  Its exit status
 * is non-zero only if an operation fails.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <dcdfs/libdcdfs.h>

#include "simdev.h"

#define MiB (1ULL << 20)
#define BLOCK (2 * MiB)
#define DEFAULT_N 100000

enum op_kind {
	OP_ADD,
	OP_ACCEPT,
	OP_RELEASE,
	_OP_MAX,
};

static const char *const op_names[_OP_MAX] = {
	[OP_ADD] = "fm add",
	[OP_ACCEPT] = "host accept",
	[OP_RELEASE] = "host release",
};

struct bench {
	struct dcdfs_ctx *ctx;
	char dir[PATH_MAX];		/* temporary directory */
	char path[PATH_MAX];		/* the device: dir/dev */
	struct dcdfs_simdev *fm;	/* the fabric manager's handle */
	struct dcdfs_simdev *host;	/* host 0 on region 0 */
	size_t n;
	uint64_t *events;		/* add event of extent i */
	uint64_t *ns[_OP_MAX];		/* time of operation i, ns */
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

static int fail(const char *what, size_t i, int rc)
{
	fprintf(stderr, "bench_simdev: %s %zu failed: %s\n", what, i,
		dcdfs_strerror(rc));
	return rc;
}

static struct dcdfs_extent extent(size_t i)
{
	return (struct dcdfs_extent){ .offset = i * BLOCK, .length = BLOCK };
}

static int run_adds(struct bench *b)
{
	for (size_t i = 0; i < b->n; i++) {
		struct dcdfs_extent e = extent(i);
		struct dcdfs_fm_request req = {
			.extents = &e, .nr_extents = 1,
		};
		uint64_t t0 = now_ns();
		int rc = dcdfs_simdev_fm_add(b->fm, &req, &b->events[i]);

		b->ns[OP_ADD][i] = now_ns() - t0;
		if (rc)
			return fail("fm add", i, rc);
	}
	return 0;
}

static int run_accepts(struct bench *b)
{
	for (size_t i = 0; i < b->n; i++) {
		struct dcdfs_extent e = extent(i);
		uint64_t t0 = now_ns();
		int rc = simdev_host_accept(b->host, b->events[i], &e, 1);

		b->ns[OP_ACCEPT][i] = now_ns() - t0;
		if (rc)
			return fail("host accept", i, rc);
	}
	return 0;
}

static int run_releases(struct bench *b)
{
	for (size_t i = 0; i < b->n; i++) {
		struct dcdfs_extent e = extent(i);
		uint64_t t0 = now_ns();
		int rc = simdev_host_release(b->host, &e, 1);

		b->ns[OP_RELEASE][i] = now_ns() - t0;
		if (rc)
			return fail("host release", i, rc);
	}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double mean_us(const uint64_t *v, size_t from, size_t to)
{
	uint64_t sum = 0;

	for (size_t i = from; i < to; i++)
		sum += v[i];
	return to > from ? (double)sum / (double)(to - from) / 1000.0 : 0.0;
}

/* Median, mean, first and last 10%, in microseconds. */
static void report(const struct bench *b, enum op_kind op)
{
	size_t tenth = b->n / 10 ? b->n / 10 : 1;
	uint64_t *sorted = malloc(b->n * sizeof(*sorted));
	double median;

	if (!sorted) {
		printf("%-14s (out of memory)\n", op_names[op]);
		return;
	}
	memcpy(sorted, b->ns[op], b->n * sizeof(*sorted));
	qsort(sorted, b->n, sizeof(*sorted), cmp_u64);
	median = (double)sorted[b->n / 2] / 1000.0;
	free(sorted);
	printf("%-14s %10.1f %10.1f %10.1f %10.1f %8.2f\n", op_names[op],
	       median, mean_us(b->ns[op], 0, b->n),
	       mean_us(b->ns[op], 0, tenth),
	       mean_us(b->ns[op], b->n - tenth, b->n),
	       mean_us(b->ns[op], b->n - tenth, b->n) /
		       mean_us(b->ns[op], 0, tenth));
}

static int timed_check(struct bench *b, const char *when)
{
	uint64_t t0 = now_ns();
	int rc = dcdfs_simdev_check(b->fm);
	uint64_t dt = now_ns() - t0;

	if (rc)
		return fail("check", 0, rc);
	printf("dcdfs_simdev_check (%s): %.1f ms\n", when,
	       (double)dt / 1e6);
	return 0;
}

static int setup(struct bench *b)
{
	struct dcdfs_simdev_config cfg = {
		.size = b->n * BLOCK, .nr_regions = 1, .block_size = BLOCK,
		.numa_node = -1,
	};
	int rc;

	b->events = calloc(b->n, sizeof(*b->events));
	for (int op = 0; op < _OP_MAX; op++)
		b->ns[op] = calloc(b->n, sizeof(*b->ns[op]));
	if (!b->events || !b->ns[OP_ADD] || !b->ns[OP_ACCEPT] ||
	    !b->ns[OP_RELEASE])
		return -ENOMEM;
	rc = dcdfs_new(&b->ctx);
	if (rc)
		return rc;
	strcpy(b->dir, "/dev/shm/dcdfs-bench-XXXXXX");
	if (!mkdtemp(b->dir)) {
		b->dir[0] = '\0';
		return -errno;
	}
	snprintf(b->path, sizeof(b->path), "%s/dev", b->dir);
	rc = dcdfs_simdev_create(b->ctx, b->path, &cfg, &b->fm);
	if (!rc)
		rc = dcdfs_simdev_open(b->ctx, b->path, &b->host);
	if (!rc)
		rc = simdev_host_attach(b->host, 0, 0);
	if (rc)
		fprintf(stderr, "bench_simdev: cannot set up '%s': %s\n",
			b->path, dcdfs_strerror(rc));
	return rc;
}

static void cleanup(struct bench *b)
{
	dcdfs_simdev_close(b->host);
	dcdfs_simdev_close(b->fm);
	if (b->dir[0]) {
		int rc = dcdfs_simdev_destroy(b->ctx, b->path);

		if (rc && rc != -ENOENT)
			fprintf(stderr, "bench_simdev: cannot destroy"
				" '%s': %s\n", b->path, dcdfs_strerror(rc));
		(void) rmdir(b->dir);
	}
	dcdfs_unref(b->ctx);
	free(b->events);
	for (int op = 0; op < _OP_MAX; op++)
		free(b->ns[op]);
}

static int run(struct bench *b)
{
	uint64_t t0 = now_ns();
	int rc;

	printf("bench_simdev: %zu extents of 2 MiB, one per add, on %s\n",
	       b->n, b->path);
	rc = run_adds(b);
	if (!rc)
		rc = run_accepts(b);
	if (!rc)
		rc = timed_check(b, "all held");
	if (!rc)
		rc = run_releases(b);
	if (!rc)
		rc = timed_check(b, "final, all free");
	if (rc)
		return rc;
	printf("\nmicroseconds per operation (first/last 10%%: %zu"
	       " operations each)\n", b->n / 10 ? b->n / 10 : 1);
	printf("%-14s %10s %10s %10s %10s %8s\n", "operation", "median",
	       "mean", "first 10%", "last 10%", "last/1st");
	for (int op = 0; op < _OP_MAX; op++)
		report(b, op);
	printf("\ntotal %.1f s\n", (double)(now_ns() - t0) / 1e9);
	return 0;
}

int main(int argc, char **argv)
{
	struct bench b = { .n = DEFAULT_N };
	unsigned long long n;
	char *end;
	int rc;

	if (argc > 2 || (argc == 2 && (!*argv[1] || *argv[1] == '-'))) {
		fprintf(stderr, "usage: bench_simdev [N]\n");
		return 2;
	}
	if (argc == 2) {
		errno = 0;
		n = strtoull(argv[1], &end, 10);
		if (errno || *end || n == 0 || n > (1ULL << 32)) {
			fprintf(stderr, "bench_simdev: bad count '%s'\n",
				argv[1]);
			return 2;
		}
		b.n = (size_t)n;
	}
	rc = setup(&b);
	if (!rc)
		rc = run(&b);
	cleanup(&b);
	return rc ? 1 : 0;
}
