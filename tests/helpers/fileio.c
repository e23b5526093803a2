// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fileio - file I/O for the functional tests, with answers fit for golden
 * output (byte counts, "ok", errno names; never addresses or timings)
 *
 *   fileio pwrite FILE OFF LEN SEED   one pwrite(2) of the pattern SEED
 *   fileio pread FILE OFF LEN SEED    one pread(2); check it against SEED
 *                                     (SEED "-": do not check)
 *   fileio fill FILE SEED             write all of FILE with the pattern
 *   fileio verify FILE SEED           check all of FILE against it
 *   fileio sum FILE                   print the FNV-1a hash of FILE
 *   fileio open FILE FLAGS            open(2) with FLAGS, a comma list of
 *                                     r w rw trunc creat excl append;
 *                                     print "ok" or the errno name
 *   fileio oracle FILE MODE OPS SEED  OPS random operations, each checked
 *                                     against a model of the file (an
 *                                     fsx-lite oracle), then the hash;
 *                                     MODE rw: pread (some at or past EOF)
 *                                     and pwrite (inside the file); MODE
 *                                     mmap: pread, pwrite, mapped reads and
 *                                     mapped writes, all inside the file
 *   fileio loop FILE MODE SECS        I/O in a loop (MODE: read, write or
 *                                     mmap) until it fails; print "started"
 *                                     once under way, then the errno name
 *                                     (or SIGBUS); "timeout" after SECS
 *   fileio drop FILE                  drop FILE's pages from the page cache
 *                                     (POSIX_FADV_DONTNEED)
 *   fileio mapstore FILE OFF STRING WOFF WLEN
 *                                     store STRING at OFF through a shared
 *                                     mapping (no msync), then pwrite WLEN
 *                                     bytes at WOFF with the mapping still
 *                                     there; print the pwrite's result and
 *                                     what read(2) and the mapping then see
 *   fileio hold FILE                  open FILE read-write, print "open",
 *                                     wait for SIGTERM or SIGINT, close
 *
 * FILE may be "fd:N": descriptor N, which the caller holds open (reading
 * /dev/fd/N would open the file anew).
 *
 * OFF and LEN: decimal, 0x hex, or with a K, M or G suffix.  Exit status:
 * 0 when the command ran (its output says how it went), 1 when a check
 * failed, 2 on bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pattern.h"

#define PROG "fileio"
#define CHUNK (1u << 20)

static uint64_t num(const char *s)
{
	return pattern_number(PROG, s);
}

/* FILE "fd:N" is descriptor N, inherited open: no new open(2). */
static int open_or_die(const char *path, int flags, uint64_t *ret_size)
{
	struct stat st;
	int fd = !strncmp(path, "fd:", 3) ? atoi(path + 3) : open(path, flags);

	if (fd < 0) {
		printf("open: %s\n", errname(errno));
		exit(1);
	}
	if (ret_size) {
		if (fstat(fd, &st) < 0) {
			printf("fstat: %s\n", errname(errno));
			exit(1);
		}
		*ret_size = (uint64_t)st.st_size;
	}
	return fd;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p) {
		fprintf(stderr, PROG ": out of memory\n");
		exit(1);
	}
	return p;
}

static int cmd_pwrite(char **argv)
{
	uint64_t off = num(argv[1]), len = num(argv[2]), seed = num(argv[3]);
	int fd = open_or_die(argv[0], O_WRONLY, NULL);
	uint8_t *buf = xmalloc(len);
	ssize_t n;

	pattern_fill(seed, off, buf, len);
	n = pwrite(fd, buf, len, (off_t)off);
	if (n < 0)
		printf("pwrite %s+%s: %s\n", argv[1], argv[2], errname(errno));
	else
		printf("pwrite %s+%s: %zd\n", argv[1], argv[2], n);
	free(buf);
	return close(fd) ? 1 : 0;
}

static int cmd_pread(char **argv)
{
	uint64_t off = num(argv[1]), len = num(argv[2]);
	bool check = strcmp(argv[3], "-") != 0;
	uint64_t seed = check ? num(argv[3]) : 0;
	int fd = open_or_die(argv[0], O_RDONLY, NULL);
	uint8_t *buf = xmalloc(len);
	long long bad;
	ssize_t n;
	int rc = 0;

	n = pread(fd, buf, len, (off_t)off);
	if (n < 0) {
		printf("pread %s+%s: %s\n", argv[1], argv[2], errname(errno));
	} else if (!check) {
		printf("pread %s+%s: %zd\n", argv[1], argv[2], n);
	} else {
		bad = pattern_check(seed, off, buf, (size_t)n);
		printf("pread %s+%s: %zd %s", argv[1], argv[2], n,
		       bad < 0 ? "ok\n" : "MISMATCH");
		if (bad >= 0) {
			printf(" at file offset %#llx\n",
			       (unsigned long long)off + (unsigned long long)bad);
			rc = 1;
		}
	}
	free(buf);
	close(fd);
	return rc;
}

static int cmd_fill(char **argv)
{
	uint64_t size, seed = num(argv[1]);
	int fd = open_or_die(argv[0], O_WRONLY, &size);
	uint8_t *buf = xmalloc(CHUNK);

	for (uint64_t off = 0; off < size; off += CHUNK) {
		size_t len = size - off < CHUNK ? size - off : CHUNK;
		ssize_t n;

		pattern_fill(seed, off, buf, len);
		n = pwrite(fd, buf, len, (off_t)off);
		if (n != (ssize_t)len) {
			printf("fill: %s at %#llx\n",
			       n < 0 ? errname(errno) : "short write",
			       (unsigned long long)off);
			free(buf);
			return 1;
		}
	}
	free(buf);
	if (close(fd)) {
		printf("fill: close: %s\n", errname(errno));
		return 1;
	}
	return 0;
}

static int cmd_verify(char **argv)
{
	uint64_t size, seed = num(argv[1]);
	int fd = open_or_die(argv[0], O_RDONLY, &size);
	uint8_t *buf = xmalloc(CHUNK);

	for (uint64_t off = 0; off < size; off += CHUNK) {
		size_t len = size - off < CHUNK ? size - off : CHUNK;
		ssize_t n = pread(fd, buf, len, (off_t)off);
		long long bad;

		if (n != (ssize_t)len) {
			printf("verify: %s at %#llx\n",
			       n < 0 ? errname(errno) : "short read",
			       (unsigned long long)off);
			free(buf);
			return 1;
		}
		bad = pattern_check(seed, off, buf, len);
		if (bad >= 0) {
			printf("verify: MISMATCH at file offset %#llx\n",
			       (unsigned long long)(off + (uint64_t)bad));
			free(buf);
			return 1;
		}
	}
	free(buf);
	close(fd);
	printf("verify: %llu bytes ok\n", (unsigned long long)size);
	return 0;
}

static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

#define FNV_INIT 0xcbf29ce484222325ULL

static int cmd_sum(char **argv)
{
	uint64_t size, h = FNV_INIT;
	int fd = open_or_die(argv[0], O_RDONLY, &size);
	uint8_t *buf = xmalloc(CHUNK);

	for (uint64_t off = 0; off < size; off += CHUNK) {
		size_t len = size - off < CHUNK ? size - off : CHUNK;
		ssize_t n = pread(fd, buf, len, (off_t)off);

		if (n != (ssize_t)len) {
			printf("sum: %s at %#llx\n",
			       n < 0 ? errname(errno) : "short read",
			       (unsigned long long)off);
			free(buf);
			return 1;
		}
		h = fnv(h, buf, len);
	}
	free(buf);
	close(fd);
	printf("sum %016llx\n", (unsigned long long)h);
	return 0;
}

static int cmd_open(char **argv)
{
	char *flags = strdup(argv[1]), *save = NULL, *w;
	int f = 0, fd;

	for (w = strtok_r(flags, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
		if (!strcmp(w, "r"))
			f |= O_RDONLY;
		else if (!strcmp(w, "w"))
			f |= O_WRONLY;
		else if (!strcmp(w, "rw"))
			f |= O_RDWR;
		else if (!strcmp(w, "trunc"))
			f |= O_TRUNC;
		else if (!strcmp(w, "creat"))
			f |= O_CREAT;
		else if (!strcmp(w, "excl"))
			f |= O_EXCL;
		else if (!strcmp(w, "append"))
			f |= O_APPEND;
		else {
			fprintf(stderr, PROG ": bad flag '%s'\n", w);
			free(flags);
			return 2;
		}
	}
	free(flags);
	fd = open(argv[0], f, 0600);
	if (fd < 0) {
		printf("open %s: %s\n", argv[1], errname(errno));
		return 0;
	}
	printf("open %s: ok\n", argv[1]);
	close(fd);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* oracle                                                                   */
/* ------------------------------------------------------------------------ */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

/* Mostly small, sometimes large, sometimes across a page or an extent. */
static uint64_t rnd_len(uint64_t size)
{
	uint64_t max;

	switch (rnd() % 4) {
	case 0:
		max = 16;
		break;
	case 1:
		max = 4096 + 16;
		break;
	case 2:
		max = 64 << 10;
		break;
	default:
		max = 1536 << 10;
		break;
	}
	if (max > size)
		max = size;
	return 1 + rnd() % max;
}

/* An offset in the file, or now and then at or past its end. */
static uint64_t rnd_off(uint64_t size)
{
	uint64_t off;

	if (rnd() % 16 == 0)
		return size - 1 - rnd() % 4096 + rnd() % 8192;
	if (rnd() % 8 == 0) {	/* a page or 2 MiB boundary, give or take */
		off = ((rnd() % size) & ~0xfffULL) + rnd() % 8;
		return off >= 4 ? off - 4 : off;
	}
	return rnd() % size;
}

struct oracle {
	int fd;
	uint8_t *model, *buf, *map;
	uint64_t size;
	unsigned long op;
	bool mmap;	/* mapped I/O too; no read past EOF */
};

static int oracle_fail(struct oracle *o, const char *what, uint64_t off,
		       uint64_t len, const char *got)
{
	printf("op %lu: %s %#llx+%#llx: %s\n", o->op, what,
	       (unsigned long long)off, (unsigned long long)len, got);
	return 1;
}

static int oracle_read(struct oracle *o, uint64_t off, uint64_t len)
{
	uint64_t want = off >= o->size ? 0 :
			(len < o->size - off ? len : o->size - off);
	ssize_t n = pread(o->fd, o->buf, len, (off_t)off);

	if (n < 0)
		return oracle_fail(o, "pread", off, len, errname(errno));
	if ((uint64_t)n != want)
		return oracle_fail(o, "pread", off, len, "wrong length");
	if (n && memcmp(o->buf, o->model + off, (size_t)n))
		return oracle_fail(o, "pread", off, len, "wrong data");
	return 0;
}

static int oracle_write(struct oracle *o, uint64_t off, uint64_t len)
{
	bool past = off > o->size || len > o->size - off;
	ssize_t n;

	pattern_fill(rnd(), off, o->buf, len);
	n = pwrite(o->fd, o->buf, len, (off_t)off);
	if (past) {
		if (n >= 0)
			return oracle_fail(o, "pwrite past EOF", off, len,
					   "succeeded");
		if (errno != EFBIG)
			return oracle_fail(o, "pwrite past EOF", off, len,
					   errname(errno));
		return 0;
	}
	if (n < 0)
		return oracle_fail(o, "pwrite", off, len, errname(errno));
	if ((uint64_t)n != len)
		return oracle_fail(o, "pwrite", off, len, "short write");
	memcpy(o->model + off, o->buf, len);
	return 0;
}

static void clamp(const struct oracle *o, uint64_t *off, uint64_t *len)
{
	if (*off >= o->size)
		*off = o->size - 1;
	if (*len > o->size - *off)
		*len = o->size - *off;
}

static int oracle_mapread(struct oracle *o, uint64_t off, uint64_t len)
{
	clamp(o, &off, &len);
	if (memcmp(o->map + off, o->model + off, len))
		return oracle_fail(o, "mapread", off, len, "wrong data");
	return 0;
}

static int oracle_mapwrite(struct oracle *o, uint64_t off, uint64_t len)
{
	clamp(o, &off, &len);
	pattern_fill(rnd(), off, o->model + off, len);
	memcpy(o->map + off, o->model + off, len);
	if (rnd() % 4 == 0 && msync(o->map, o->size, MS_SYNC))
		return oracle_fail(o, "msync", 0, o->size, errname(errno));
	return 0;
}

static int oracle_step(struct oracle *o)
{
	uint64_t off = rnd_off(o->size), len = rnd_len(o->size);
	unsigned int kind = rnd() % (o->mmap ? 4 : 2);

	/* Writes past EOF have a test of their own (they must fail). */
	if (o->mmap || kind == 1)
		clamp(o, &off, &len);

	if (getenv("FILEIO_TRACE"))	/* to debug a failure */
		fprintf(stderr, "op %lu: %s %#llx+%#llx\n", o->op,
			(const char *[]){ "pread", "pwrite", "mapread",
					  "mapwrite" }[kind],
			(unsigned long long)off, (unsigned long long)len);
	switch (kind) {
	case 0:
		return oracle_read(o, off, len);
	case 1:
		return oracle_write(o, off, len);
	case 2:
		return oracle_mapread(o, off, len);
	default:
		return oracle_mapwrite(o, off, len);
	}
}

static int cmd_oracle(char **argv)
{
	struct oracle o = { .mmap = !strcmp(argv[1], "mmap") };
	unsigned long ops = (unsigned long)num(argv[2]);
	int rc = 0;

	if (!o.mmap && strcmp(argv[1], "rw")) {
		fprintf(stderr, PROG ": bad oracle mode '%s'\n", argv[1]);
		return 2;
	}
	rng_state = num(argv[3]) * 0x9e3779b97f4a7c15ULL | 1;
	o.fd = open_or_die(argv[0], O_RDWR, &o.size);
	if (!o.size) {
		printf("oracle: empty file\n");
		return 1;
	}
	o.model = xmalloc(o.size);
	o.buf = xmalloc(o.size + (2 << 20));
	/* Start from what is there: the model is the file's content. */
	if (pread(o.fd, o.model, o.size, 0) != (ssize_t)o.size) {
		printf("oracle: cannot read the file\n");
		rc = 1;
		goto out;
	}
	if (o.mmap) {
		o.map = mmap(NULL, o.size, PROT_READ | PROT_WRITE, MAP_SHARED,
			     o.fd, 0);
		if (o.map == MAP_FAILED) {
			printf("oracle: mmap: %s\n", errname(errno));
			rc = 1;
			goto out;
		}
	}
	for (o.op = 1; o.op <= ops && !rc; o.op++)
		rc = oracle_step(&o);
	if (o.mmap && !rc && msync(o.map, o.size, MS_SYNC))
		rc = oracle_fail(&o, "msync", 0, o.size, errname(errno));
	if (o.mmap)
		munmap(o.map, o.size);
	/* Last, the whole file through read(2), after the mapping is gone. */
	if (!rc && (pread(o.fd, o.buf, o.size, 0) != (ssize_t)o.size ||
		    memcmp(o.buf, o.model, o.size)))
		rc = oracle_fail(&o, "final read", 0, o.size, "wrong data");
	close(o.fd);
	if (!rc)
		printf("oracle: %lu ops ok, sum %016llx\n", ops,
		       (unsigned long long)fnv(FNV_INIT, o.model, o.size));
out:
	free(o.model);
	free(o.buf);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* loop and hold                                                            */
/* ------------------------------------------------------------------------ */

static sigjmp_buf bus_jmp;

static void on_sigbus(int sig)
{
	(void) sig;
	siglongjmp(bus_jmp, 1);
}

static bool expired(const struct timespec *start, uint64_t secs)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)(now.tv_sec - start->tv_sec) >= secs;
}

static int loop_mmap(int fd, uint64_t size, uint64_t secs,
		     const struct timespec *start)
{
	volatile uint8_t *map;
	volatile uint64_t sum = 0;
	volatile uint64_t off = 0;	/* volatile: live across siglongjmp */
	volatile bool started = false;

	map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		printf("mmap: %s\n", errname(errno));
		return 1;
	}
	close(fd);	/* only the mapping pins now */
	signal(SIGBUS, on_sigbus);
	if (sigsetjmp(bus_jmp, 1)) {
		printf("SIGBUS\n");
		return 0;
	}
	while (!expired(start, secs)) {
		sum += map[off];
		map[off + 1] = (uint8_t)sum;
		off = (off + 4096) % size;
		if (!started && off == 0) {
			printf("started\n");
			fflush(stdout);
			started = true;
		}
	}
	printf("timeout\n");
	return 1;
}

static int cmd_loop(char **argv)
{
	const char *mode = argv[1];
	uint64_t size, secs = num(argv[2]), off = 0;
	bool wr = !strcmp(mode, "write");
	struct timespec start;
	uint8_t buf[4096];
	int fd;

	if (!wr && strcmp(mode, "read") && strcmp(mode, "mmap")) {
		fprintf(stderr, PROG ": bad loop mode '%s'\n", mode);
		return 2;
	}
	fd = open_or_die(argv[0], O_RDWR, &size);
	clock_gettime(CLOCK_MONOTONIC, &start);
	if (!strcmp(mode, "mmap"))
		return loop_mmap(fd, size, secs, &start);
	memset(buf, 0x5a, sizeof(buf));
	for (unsigned long i = 0; !expired(&start, secs); i++) {
		ssize_t n = wr ? pwrite(fd, buf, sizeof(buf), (off_t)off) :
				 pread(fd, buf, sizeof(buf), (off_t)off);

		if (n < 0) {
			printf("%s\n", errname(errno));
			return 0;
		}
		if (i == 0) {
			printf("started\n");
			fflush(stdout);
		}
		off = (off + sizeof(buf)) % size;
	}
	printf("timeout\n");
	return 1;
}

static int cmd_hold(char **argv)
{
	sigset_t set;
	int fd, sig;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	fd = open_or_die(argv[0], O_RDWR, NULL);
	printf("open\n");
	fflush(stdout);
	sigwait(&set, &sig);
	close(fd);
	return 0;
}

static int cmd_drop(char **argv)
{
	int fd = open_or_die(argv[0], O_RDONLY, NULL);
	int rc = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);

	if (rc)
		printf("fadvise: %s\n", errname(rc));
	close(fd);
	return rc ? 1 : 0;
}

/* Text as is, anything else as '.', then a newline. */
static void print_text(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		putchar(p[i] >= ' ' && p[i] <= '~' ? p[i] : '.');
	putchar('\n');
}

static int cmd_mapstore(char **argv)
{
	uint64_t size, off = num(argv[1]), woff = num(argv[3]);
	uint64_t wlen = num(argv[4]);
	size_t len = strlen(argv[2]);
	int fd = open_or_die(argv[0], O_RDWR, &size);
	char *map, *buf = xmalloc(wlen > len ? wlen : len);
	ssize_t n;

	if (off > size || len > size - off) {
		fprintf(stderr, PROG ": past the end\n");
		free(buf);
		return 2;
	}
	map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		printf("mmap: %s\n", errname(errno));
		free(buf);
		return 1;
	}
	memcpy(map + off, argv[2], len);
	pattern_fill(9, woff, (uint8_t *)buf, wlen);
	n = pwrite(fd, buf, wlen, (off_t)woff);
	if (n < 0)
		printf("pwrite %s+%s: %s\n", argv[3], argv[4], errname(errno));
	else
		printf("pwrite %s+%s: %zd\n", argv[3], argv[4], n);
	n = pread(fd, buf, len, (off_t)off);
	printf("read(2): ");
	print_text(buf, n < 0 ? 0 : (size_t)n);
	printf("mapping: ");
	print_text(map + off, len);
	munmap(map, size);
	free(buf);
	close(fd);
	return 0;
}

struct command {
	const char *name;
	int argc;
	int (*fn)(char **argv);
};

static const struct command commands[] = {
	{ "pwrite", 4, cmd_pwrite },
	{ "pread", 4, cmd_pread },
	{ "fill", 2, cmd_fill },
	{ "verify", 2, cmd_verify },
	{ "sum", 1, cmd_sum },
	{ "open", 2, cmd_open },
	{ "oracle", 4, cmd_oracle },
	{ "loop", 3, cmd_loop },
	{ "hold", 1, cmd_hold },
	{ "drop", 1, cmd_drop },
	{ "mapstore", 5, cmd_mapstore },
};

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t i = 0; argc > 1 && i < sizeof(commands) /
					    sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name) &&
		    argc - 2 == commands[i].argc)
			return commands[i].fn(argv + 2);
	fprintf(stderr, "usage: " PROG " pwrite|pread FILE OFF LEN SEED\n"
		"       " PROG " fill|verify FILE SEED\n"
		"       " PROG " sum FILE\n"
		"       " PROG " open FILE FLAGS\n"
		"       " PROG " oracle FILE rw|mmap OPS SEED\n"
		"       " PROG " loop FILE read|write|mmap SECS\n"
		"       " PROG " hold|drop FILE\n"
		"       " PROG " mapstore FILE OFF STRING WOFF WLEN\n");
	return 2;
}
