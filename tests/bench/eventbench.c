// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * eventbench - fabric-manager events as a dcdfs mount sees them, for
 * tests/bench/bench-fs
 *
 *   eventbench latency [-p USEC] DEV MNT COUNT OFFSET
 *	COUNT times (after a few warm-up rounds that are not counted): the
 *	FM adds one 2 MiB extent (dcdfs_simdev_fm_add()) and the file
 *	MNT/extent-<offset> is stat()ed in a tight loop until it exists; the
 *	FM's add event is then waited for (not timed), and the FM asks for
 *	the extent back (dcdfs_simdev_fm_release(), unpinned, so the host
 *	gives it back at once) and the file is stat()ed until it fails with
 *	ENOENT.  Each round uses the next 2 MiB of the region from OFFSET.
 *	The clock (CLOCK_MONOTONIC) starts just before the library call, so
 *	the FM's own transaction is included.  Prints, for "add" and
 *	"release", the median, 90th and 99th percentile and the maximum in
 *	milliseconds, then the same for the library call alone (the FM's
 *	share of it):
 *	    add N MEDIAN P90 P99 MAX
 *	    release N MEDIAN P90 P99 MAX
 *	    add-call N MEDIAN P90 P99 MAX
 *	    release-call N MEDIAN P90 P99 MAX
 *	-p pauses USEC microseconds between two stat() calls instead of
 *	spinning, which leaves the CPU to the daemon on small machines.
 *
 *   eventbench populate DEV MNT COUNT OFFSET
 *	Offer COUNT untagged 2 MiB extents at OFFSET, OFFSET + 2 MiB, ...:
 *	each is an allocation, a file, of its own.  They go in More-chains of
 *	up to 1000 extents (one dcdfs_simdev_fm_add() each), which is what
 *	makes 100 000 files quick to set up; the host accepts them all.
 *	Returns once statvfs(MNT) counts at least as many files as there
 *	were before plus COUNT (f_files is the number of allocations), and
 *	prints how long that took.
 *
 * OFFSET and COUNT take the sizes dcdctl takes (e.g. 200G).  The simulated
 * device's blocks must be 2 MiB or smaller, since every extent is 2 MiB (the
 * host drops extents that are not 2 MiB aligned).  Exit status 0, 1 with a
 * message on stderr if something failed, 2 for bad usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <dcdfs/libdcdfs.h>

#define EXTENT (2ULL << 20)
#define CHAIN 1000
#define WARMUP 10
#define TIMEOUT_S 30.0

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "eventbench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static uint64_t number(const char *s)
{
	uint64_t v;

	if (dcdfs_parse_size(s, &v) < 0)
		die("bad number '%s'", s);
	return v;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct dcdfs_simdev *open_dev(const char *path, struct dcdfs_ctx **ctx)
{
	struct dcdfs_simdev *dev;
	int rc = dcdfs_new(ctx);

	if (rc < 0)
		die("cannot create a library context: %s", strerror(-rc));
	rc = dcdfs_simdev_open(*ctx, path, &dev);
	if (rc < 0)
		die("cannot open the device '%s': %s", path,
		    dcdfs_strerror(rc));
	if (dcdfs_simdev_get_block_size(dev) > EXTENT)
		die("cannot use the device '%s': its blocks are larger than"
		    " 2 MiB", path);
	return dev;
}

static void fm(struct dcdfs_simdev *dev, bool add, uint64_t offset,
	       uint64_t nr, uint64_t *ret_event)
{
	struct dcdfs_extent *v = calloc(nr, sizeof(*v));
	struct dcdfs_fm_request req = { .extents = v, .nr_extents = nr };
	int rc;

	if (!v)
		die("no memory for %" PRIu64 " extents", nr);
	for (uint64_t i = 0; i < nr; i++) {
		v[i].offset = offset + i * EXTENT;
		v[i].length = EXTENT;
	}
	rc = add ? dcdfs_simdev_fm_add(dev, &req, ret_event) :
		   dcdfs_simdev_fm_release(dev, &req, ret_event);
	if (rc < 0)
		die("cannot %s %" PRIu64 " extent(s) at %#" PRIx64 ": %s",
		    add ? "add" : "release", nr, offset, dcdfs_strerror(rc));
	free(v);
}

/* Wait for the host's answer; it must have taken (or given back) it all. */
static void settle(struct dcdfs_simdev *dev, uint64_t event, unsigned int nr)
{
	struct dcdfs_event_info info;
	int rc = dcdfs_simdev_wait_event(dev, event, (int)(TIMEOUT_S * 1000),
					 &info);

	if (rc < 0)
		die("cannot wait for event %" PRIu64 ": %s", event,
		    dcdfs_strerror(rc));
	if (info.state != DCDFS_EVENT_DONE || info.nr_done != nr)
		die("cannot go on: the host did %u of the %u extent(s) of"
		    " event %" PRIu64, info.nr_done, nr, event);
}

/* Pause between two stat() calls, in microseconds; 0 spins. */
static unsigned int poll_pause_us;

/* stat() @path until it exists (@exists) or is gone; seconds after @t0. */
static double poll_stat(const char *path, bool exists, double t0)
{
	struct stat st;

	for (;;) {
		int rc = stat(path, &st);
		double t = now();

		if (exists && rc == 0)
			return t - t0;
		if (!exists && rc < 0 && errno == ENOENT)
			return t - t0;
		if (rc < 0 && errno != ENOENT)
			die("cannot stat '%s': %s", path, strerror(errno));
		if (t - t0 > TIMEOUT_S)
			die("cannot go on: '%s' is still %s after %.0f s",
			    path, exists ? "missing" : "there", TIMEOUT_S);
		if (poll_pause_us)
			usleep(poll_pause_us);
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted @v. */
static double pct(const double *v, size_t n, double p)
{
	size_t rank = (size_t)(p / 100.0 * (double)n + 0.999999);

	return v[rank ? rank - 1 : 0];
}

static void summary(const char *what, double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	printf("%s %zu %.3f %.3f %.3f %.3f\n", what, n, pct(v, n, 50) * 1e3,
	       pct(v, n, 90) * 1e3, pct(v, n, 99) * 1e3, v[n - 1] * 1e3);
}

/* The series latency() measures, in the order it prints them. */
enum series {
	S_ADD,		/* add: call to stat() success */
	S_RELEASE,	/* release: call to stat() ENOENT */
	S_ADD_CALL,	/* dcdfs_simdev_fm_add() alone */
	S_RELEASE_CALL,	/* dcdfs_simdev_fm_release() alone */
	_S_MAX,
};

static const char *const series_names[_S_MAX] = {
	[S_ADD] = "add",
	[S_RELEASE] = "release",
	[S_ADD_CALL] = "add-call",
	[S_RELEASE_CALL] = "release-call",
};

/* Add the extent at @off, see its file, release it, see it gone. */
static void one_round(struct dcdfs_simdev *dev, const char *mnt, uint64_t off,
		      double ret[_S_MAX])
{
	char path[4096];
	uint64_t event;
	double t0;

	snprintf(path, sizeof(path), "%s/extent-%016" PRIx64, mnt, off);
	t0 = now();
	fm(dev, true, off, 1, &event);
	ret[S_ADD_CALL] = now() - t0;
	ret[S_ADD] = poll_stat(path, true, t0);
	settle(dev, event, 1);

	t0 = now();
	fm(dev, false, off, 1, &event);
	ret[S_RELEASE_CALL] = now() - t0;
	ret[S_RELEASE] = poll_stat(path, false, t0);
	settle(dev, event, 1);
}

static int latency(char **argv)
{
	uint64_t count = number(argv[2]), base = number(argv[3]);
	struct dcdfs_simdev *dev;
	double *v[_S_MAX];
	struct dcdfs_ctx *ctx;

	if (!count)
		die("COUNT must not be 0");
	for (int k = 0; k < _S_MAX; k++) {
		v[k] = calloc(count, sizeof(*v[k]));
		if (!v[k])
			die("no memory for %" PRIu64 " samples", count);
	}
	dev = open_dev(argv[0], &ctx);
	for (uint64_t i = 0; i < WARMUP + count; i++) {
		double r[_S_MAX];

		one_round(dev, argv[1], base + i * EXTENT, r);
		for (int k = 0; i >= WARMUP && k < _S_MAX; k++)
			v[k][i - WARMUP] = r[k];
	}
	for (int k = 0; k < _S_MAX; k++) {
		summary(series_names[k], v[k], count);
		free(v[k]);
	}
	dcdfs_simdev_close(dev);
	dcdfs_unref(ctx);
	return 0;
}

static uint64_t nr_files(const char *mnt)
{
	struct statvfs sv;

	if (statvfs(mnt, &sv) < 0)
		die("cannot statvfs '%s': %s", mnt, strerror(errno));
	return sv.f_files;
}

static int populate(char **argv)
{
	uint64_t count = number(argv[2]), base = number(argv[3]);
	uint64_t want = nr_files(argv[1]) + count, event = 0;
	struct dcdfs_simdev *dev;
	struct dcdfs_ctx *ctx;
	double t0 = now();

	dev = open_dev(argv[0], &ctx);
	for (uint64_t i = 0; i < count; i += CHAIN) {
		uint64_t nr = count - i < CHAIN ? count - i : CHAIN;

		fm(dev, true, base + i * EXTENT, nr, &event);
	}
	while (nr_files(argv[1]) < want) {
		if (now() - t0 > 10 * TIMEOUT_S)
			die("cannot go on: '%s' has %" PRIu64 " of %" PRIu64
			    " files after %.0f s", argv[1], nr_files(argv[1]),
			    want, 10 * TIMEOUT_S);
		usleep(10000);
	}
	/* The last chain answered means all of them were. */
	settle(dev, event, (unsigned int)((count - 1) % CHAIN + 1));
	printf("populated %" PRIu64 " in %.3f s\n", count, now() - t0);
	dcdfs_simdev_close(dev);
	dcdfs_unref(ctx);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 8 && !strcmp(argv[1], "latency") &&
	    !strcmp(argv[2], "-p")) {
		poll_pause_us = (unsigned int)number(argv[3]);
		return latency(argv + 4);
	}
	if (argc == 6 && !strcmp(argv[1], "latency"))
		return latency(argv + 2);
	if (argc == 6 && !strcmp(argv[1], "populate"))
		return populate(argv + 2);
	fprintf(stderr,
		"usage: eventbench latency [-p USEC] DEV MNT COUNT OFFSET\n"
		"       eventbench populate DEV MNT COUNT OFFSET\n");
	return 2;
}
