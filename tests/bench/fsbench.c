// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fsbench - time one pass of file I/O, for tests/bench/bench-fs
 *
 *   fsbench [-c] seqread   FILE BS             read()s of BS bytes, whole file
 *   fsbench [-c] seqwrite  FILE BS             write()s of BS bytes, whole
 *                                              file, then fdatasync()
 *   fsbench [-c] randread  FILE BS COUNT SEED  COUNT pread()s of BS bytes at
 *                                              distinct random BS-aligned
 *                                              offsets
 *   fsbench [-c] randwrite FILE BS COUNT SEED  the same with pwrite(), then
 *                                              fdatasync()
 *   fsbench [-c] mmapread  FILE [CHUNK]        MAP_SHARED mapping of the whole
 *                                              file, memcpy() out of it CHUNK
 *                                              bytes (default 1 MiB) at a time
 *   fsbench [-c] mmapwrite FILE [CHUNK]        the same with memset(), then
 *                                              msync(MS_SYNC)
 *   fsbench mkfiles DIR N SIZE                 create N files of SIZE bytes
 *                                              (sparse), named as dcdfs names
 *                                              untagged extents of SIZE bytes
 *
 * What is timed (CLOCK_MONOTONIC) is the I/O loop and the fdatasync() or
 * msync() that ends a write; opening, mapping and closing are not, so a file
 * system that is slow to open is not charged for it here.  Every mode moves
 * real data (a write pattern that changes with each run; reads are folded
 * into a checksum) and none uses O_DIRECT.
 *
 * -c makes the pass cold: the file's page cache is dropped first with
 * posix_fadvise(POSIX_FADV_DONTNEED), which touches that file only (no root,
 * no global drop_caches) and drops every clean page of it.  On dcdfs that is
 * all of them: writes go through to the daemon, so cached pages are never
 * dirty.  On tmpfs the page cache is the file, so nothing is dropped and cold
 * is the same as warm.  How much of the file is still cached afterwards is
 * measured with mincore() and printed, so a pass that was not cold shows.
 *
 * Output, one line:
 *	MODE MIB_PER_S MiB/s OPS_PER_S IOPS SECONDS s [resident=PERCENT%]
 * (resident with -c only).  Exit status 0, 1 with a message on stderr if
 * something failed, 2 for bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024.0 * 1024.0)
#define DEFAULT_CHUNK (1u << 20)

/* One timed pass over one file. */
struct pass {
	const char *mode;
	const char *path;
	bool write;
	bool cold;
	int fd;
	uint64_t size;		/* of the file */
	char *buf;		/* the I/O buffer, bs bytes */
	size_t bs;
	double resident;	/* % of the file cached after -c, or -1 */
	double t0;
	uint64_t sum;		/* of the bytes read, so reads are not idle */
};

/* Where the checksum goes, so that the compiler keeps the reads. */
static volatile uint64_t sink;

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fsbench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* A number, with an optional K, M or G suffix (powers of 1024). */
static uint64_t number(const char *s)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		die("bad number '%s'", s);
	switch (*end) {
	case 'k':
	case 'K':
		v <<= 10;
		end++;
		break;
	case 'm':
	case 'M':
		v <<= 20;
		end++;
		break;
	case 'g':
	case 'G':
		v <<= 30;
		end++;
		break;
	}
	if (*end)
		die("bad number '%s'", s);
	return v;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* xorshift64*: the same sequence for the same seed. */
static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dULL;
}

/* Percentage of the file's pages in the page cache, from mincore(). */
static double resident(const struct pass *p)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	size_t n = (p->size + pg - 1) / pg, in = 0;
	unsigned char *vec = malloc(n);
	void *map;

	if (!vec)
		die("no memory for %zu pages", n);
	map = mmap(NULL, p->size, PROT_READ, MAP_SHARED, p->fd, 0);
	if (map == MAP_FAILED)
		die("cannot map '%s': %s", p->path, strerror(errno));
	if (mincore(map, p->size, vec) < 0)
		die("cannot look at the cache of '%s': %s", p->path,
		    strerror(errno));
	for (size_t i = 0; i < n; i++)
		in += vec[i] & 1;
	(void) munmap(map, p->size);
	free(vec);
	return 100.0 * (double)in / (double)n;
}

/* A write pattern that differs from one run to the next. */
static void fill_pattern(char *buf, size_t size)
{
	uint64_t s = (uint64_t)(now() * 1e6) ^ (uint64_t)getpid();

	for (size_t i = 0; i + 8 <= size; i += 8) {
		uint64_t v = rng_next(&s);

		memcpy(buf + i, &v, 8);
	}
}

/* Open @path, get the buffer ready and, with -c, drop the file's cache. */
static void pass_begin(struct pass *p, const char *path, size_t bs)
{
	struct stat st;
	int rc;

	p->path = path;
	p->bs = bs;
	p->resident = -1;
	if (!bs)
		die("the block size must not be 0");
	p->fd = open(path, p->write ? O_RDWR : O_RDONLY);
	if (p->fd < 0 || fstat(p->fd, &st) < 0)
		die("cannot open '%s': %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode) || st.st_size == 0)
		die("cannot use '%s': not a regular file with data", path);
	p->size = (uint64_t)st.st_size;
	if (posix_memalign((void **)&p->buf, 4096, bs))
		die("no memory for a %zu-byte buffer", bs);
	/* Fault the buffer in now, not in the timed loop. */
	memset(p->buf, 0x5a, bs);
	if (p->write)
		fill_pattern(p->buf, bs);
	if (p->cold) {
		rc = posix_fadvise(p->fd, 0, 0, POSIX_FADV_DONTNEED);
		if (rc)
			die("cannot drop the cache of '%s': %s", path,
			    strerror(rc));
		p->resident = resident(p);
	}
	p->t0 = now();
}

/* Stop the clock (after fdatasync() for a write), print, close. */
static void pass_end(struct pass *p, uint64_t bytes, uint64_t ops)
{
	double secs;

	if (p->write && fdatasync(p->fd) < 0)
		die("cannot sync '%s': %s", p->path, strerror(errno));
	secs = now() - p->t0;
	sink = p->sum;
	printf("%s %.1f MiB/s %.0f IOPS %.6f s", p->mode,
	       (double)bytes / MIB / secs, (double)ops / secs, secs);
	if (p->resident >= 0)
		printf(" resident=%.1f%%", p->resident);
	putchar('\n');
	(void) close(p->fd);
	free(p->buf);
}

/* One read or write of @n bytes at @off; dies unless all of it is done. */
static void io(struct pass *p, size_t n, uint64_t off)
{
	ssize_t r = p->write ? pwrite(p->fd, p->buf, n, (off_t)off) :
			       pread(p->fd, p->buf, n, (off_t)off);

	if (r != (ssize_t)n)
		die("cannot %s %zu bytes of '%s' at %" PRIu64 ": %s",
		    p->write ? "write" : "read", n, p->path, off,
		    r < 0 ? strerror(errno) : "short count");
	p->sum += (uint8_t)p->buf[n - 1];
}

static int do_seq(struct pass *p, char **argv)
{
	uint64_t off, ops = 0;

	pass_begin(p, argv[0], (size_t)number(argv[1]));
	for (off = 0; off < p->size; off += p->bs, ops++)
		io(p, p->size - off < p->bs ? (size_t)(p->size - off) : p->bs,
		   off);
	pass_end(p, p->size, ops);
	return 0;
}

/* @count distinct @bs-aligned offsets below @size, in a random order. */
static uint64_t *random_offsets(uint64_t size, size_t bs, uint64_t count,
				uint64_t seed)
{
	uint64_t slots = size / bs, *v;
	uint8_t *used;

	if (!count || count > slots)
		die("COUNT must be 1..%" PRIu64 " for this file and BS", slots);
	v = malloc(count * sizeof(*v));
	used = calloc((slots + 7) / 8, 1);
	if (!v || !used)
		die("no memory for %" PRIu64 " offsets", count);
	seed = seed * 2654435761u + 1;
	for (uint64_t i = 0; i < count;) {
		uint64_t s = rng_next(&seed) % slots;

		if (used[s / 8] & (1u << (s % 8)))
			continue;
		used[s / 8] |= (uint8_t)(1u << (s % 8));
		v[i++] = s * bs;
	}
	free(used);
	return v;
}

static int do_rand(struct pass *p, char **argv)
{
	uint64_t count = number(argv[2]), *offs;
	struct stat st;

	/* The offsets are drawn before the clock starts. */
	if (stat(argv[0], &st) < 0)
		die("cannot stat '%s': %s", argv[0], strerror(errno));
	offs = random_offsets((uint64_t)st.st_size, (size_t)number(argv[1]),
			      count, number(argv[3]));
	pass_begin(p, argv[0], (size_t)number(argv[1]));
	for (uint64_t i = 0; i < count; i++)
		io(p, p->bs, offs[i]);
	pass_end(p, count * p->bs, count);
	free(offs);
	return 0;
}

static int do_mmap(struct pass *p, char **argv, int argc)
{
	size_t chunk = argc > 1 ? (size_t)number(argv[1]) : DEFAULT_CHUNK;
	uint64_t off, ops = 0;
	int val = (int)(now() * 1000) & 0xff;
	char *map;

	pass_begin(p, argv[0], chunk);
	map = mmap(NULL, p->size, PROT_READ | (p->write ? PROT_WRITE : 0),
		   MAP_SHARED, p->fd, 0);
	if (map == MAP_FAILED)
		die("cannot map '%s': %s", p->path, strerror(errno));
	p->t0 = now();
	for (off = 0; off < p->size; off += chunk, ops++) {
		size_t n = p->size - off < chunk ? (size_t)(p->size - off) :
						   chunk;

		if (p->write) {
			memset(map + off, val, n);
		} else {
			memcpy(p->buf, map + off, n);
			p->sum += (uint8_t)p->buf[n - 1];
		}
	}
	if (p->write && msync(map, p->size, MS_SYNC) < 0)
		die("cannot msync '%s': %s", p->path, strerror(errno));
	p->write = false;	/* synced: pass_end() has nothing to sync */
	pass_end(p, p->size, ops);
	(void) munmap(map, p->size);
	return 0;
}

static int do_mkfiles(char **argv)
{
	uint64_t n = number(argv[1]), size = number(argv[2]);
	int dfd = open(argv[0], O_RDONLY | O_DIRECTORY);

	if (dfd < 0)
		die("cannot open '%s': %s", argv[0], strerror(errno));
	for (uint64_t i = 0; i < n; i++) {
		char name[64];
		int fd;

		snprintf(name, sizeof(name), "extent-%016" PRIx64, i * size);
		fd = openat(dfd, name, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0 || ftruncate(fd, (off_t)size) < 0)
			die("cannot create '%s/%s': %s", argv[0], name,
			    strerror(errno));
		(void) close(fd);
	}
	(void) close(dfd);
	return 0;
}

static const char *const modes[] = {
	"seqread", "seqwrite", "randread", "randwrite", "mmapread", "mmapwrite",
};

static bool known_mode(const char *mode)
{
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (!strcmp(mode, modes[i]))
			return true;
	return false;
}

static void __attribute__((noreturn)) usage(void)
{
	fprintf(stderr,
		"usage: fsbench [-c] seqread|seqwrite FILE BS\n"
		"       fsbench [-c] randread|randwrite FILE BS COUNT SEED\n"
		"       fsbench [-c] mmapread|mmapwrite FILE [CHUNK]\n"
		"       fsbench mkfiles DIR N SIZE\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct pass p = { 0 };

	if (argc > 1 && !strcmp(argv[1], "-c")) {
		p.cold = true;
		argc--;
		argv++;
	}
	if (argc < 3)
		usage();
	p.mode = argv[1];
	argc -= 2;
	argv += 2;
	if (!strcmp(p.mode, "mkfiles") && argc == 3 && !p.cold)
		return do_mkfiles(argv);
	if (!known_mode(p.mode))
		usage();
	p.write = strstr(p.mode, "write") != NULL;
	if (!strncmp(p.mode, "seq", 3) && argc == 2)
		return do_seq(&p, argv);
	if (!strncmp(p.mode, "rand", 4) && argc == 4)
		return do_rand(&p, argv);
	if (!strncmp(p.mode, "mmap", 4) && (argc == 1 || argc == 2))
		return do_mmap(&p, argv, argc);
	usage();
}
