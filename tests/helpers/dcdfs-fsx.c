// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * dcdfs-fsx - a random read/write/mmap coherence checker for one existing
 * file of fixed size, in the spirit of fsx's lite mode (written for dcdfs)
 *
 *   dcdfs-fsx [-qvzRW] [-N OPS] [-S SEED] [-o MAXLEN] [-b OFF,OFF...]
 *             [-c P] [-D P] [-f N] [-l LOG] [-s STATE [-p N]] FILE
 *   dcdfs-fsx [-qv] -r LOG FILE
 *
 *   -N OPS     run OPS operations, numbered 1 to OPS (default 10000)
 *   -S SEED    the seed of the sequence (default 1; 0: from the clock)
 *   -o MAXLEN  the longest read or write (default 256K)
 *   -b OFFS    file offsets where extents meet (a comma list): one op in
 *              three straddles one of them
 *   -c P       close and reopen the file, one op in P (default: never)
 *   -D P       drop the file's page cache (POSIX_FADV_DONTNEED), one op in
 *              P, so that reads go to the daemon again (default: never)
 *   -f N       compare the whole file with the model every N ops
 *              (default 500; 0: only at the end)
 *   -R, -W     no mapped reads, no mapped writes
 *   -z         fill the file with the seed's data first; without it the
 *              model starts as what the file holds
 *   -l LOG     log every op to LOG as the run goes (appended on resume)
 *   -r LOG     replay LOG: its ops, with the same data, on FILE (a file of
 *              the same size; for a log without -z, holding what the
 *              first run's file held at its start)
 *   -s STATE   with -p N: after op N, save the model, the ops so far and
 *              the position in STATE and exit.  When STATE exists, resume from it instead
 *              (the options that decide the ops come from STATE): first
 *              check the whole file against the saved model, then go on;
 *              STATE is removed when the run completes
 *   -q         quiet: only the last line (and pause/resume lines)
 *   -v         trace every op on stderr
 *
 * Numbers: decimal, 0x hex, or with a K, M or G suffix.
 *
 * Output: "dcdfs-fsx: N ops ok, sum HASH", HASH being the FNV-1a hash of
 * the whole file (what "fileio sum" prints).  On a failure, a report on
 * stdout: the seed, the first wrong byte, expected and actual bytes, which
 * ops wrote them, the last ops and where the full log is.  Exit status: 0
 * all ops ok (or paused), 1 a check failed, 2 bad usage or unusable file.
 */

/*
 * DOC: the model, and what it guarantees
 *
 * The model is a copy of the whole file in memory: what each byte must
 * hold.  The file's size never changes (dcdfs files cannot grow or
 * shrink): writes and mapped ops stay inside it; reads may start at or past
 * the end and must return exactly the bytes up to it.  Every op is checked
 * when it returns: a read or a mapped read must give the model's bytes; a
 * write, and a mapped write with its msync(MS_SYNC), must succeed in full,
 * and then update the model; open, close, msync and fadvise must succeed.
 * Every -f N ops the whole file is compared through read(2).  At the end it
 * is compared through read(2), through one mapping of the whole file, and
 * through read(2) once more after dropping the page cache, so that the last
 * comparison reads what the daemon holds.
 *
 * Mapped ops map only the pages around the op (4 KiB pages, MAP_SHARED),
 * from a page-aligned file offset; a mapped write ends with msync(MS_SYNC)
 * before munmap.  A SIGBUS under a mapped op is a failure, reported as any
 * other.
 */

/*
 * DOC: how ops and data are derived, and why
 *
 * Op number SEQ is drawn from a generator seeded with (seed, SEQ) alone,
 * and the byte a write (or mapped write) puts at file offset X is
 * data_byte(data_seed(seed, SEQ), X), a hash of the three.  The -z fill is
 * op 0.  Nothing depends on the ops before, therefore:
 *   - a run paused (-s/-p) and resumed does the very ops an uninterrupted
 *     run does, and ends with the same sum;
 *   - a log replays exactly from its seed and its lines, even with lines
 *     taken out of it to narrow a failure down;
 *   - a wrong byte can be traced back to the op whose data it is.
 *
 * The log is text: a header "# dcdfs-fsx log 1: seed=S size=Z fill=F",
 * then one line per op, written before the op runs (a hang or a crash
 * leaves it there): "SEQ KIND OFFSET LENGTH" (KIND: read, write, mapread,
 * mapwrite, reopen, drop, verify; OFFSET and LENGTH in hex).  Lines that
 * start with '#' are comments.  Without -l, a failing run writes its log
 * to $TMPDIR (default /tmp) and says where.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
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

#include "pattern.h"

#define PROG "dcdfs-fsx"
#define PAGE 4096ULL
#define CHUNK (1ULL << 20)	/* unit of the whole-file comparisons */
#define MAX_BOUNDS 64
#define REPORT_OPS 20		/* ops of the log a report shows */
#define REPORT_BYTES 16		/* bytes of expected and actual data shown */
#define EXIT_FAILED 1
#define EXIT_USAGE 2
#define LOG_HEADER "# " PROG " log 1: seed=%" PRIu64 " size=%" PRIu64 \
		   " fill=%d\n"
#define LOG_HEADER_SCAN "# " PROG " log 1: seed=%" SCNu64 " size=%" \
			SCNu64 " fill=%d"

enum op_kind {
	OP_READ,
	OP_WRITE,
	OP_MAPREAD,
	OP_MAPWRITE,
	OP_REOPEN,
	OP_DROP,
	OP_VERIFY,
	_OP_MAX
};

static const char *const op_names[_OP_MAX] = {
	[OP_READ] = "read",	  [OP_WRITE] = "write",
	[OP_MAPREAD] = "mapread", [OP_MAPWRITE] = "mapwrite",
	[OP_REOPEN] = "reopen",	  [OP_DROP] = "drop",
	[OP_VERIFY] = "verify",
};

/* The relative frequencies of the I/O ops (the others have options). */
static const unsigned int op_weight[_OP_MAX] = {
	[OP_READ] = 3, [OP_WRITE] = 3, [OP_MAPREAD] = 2, [OP_MAPWRITE] = 2,
};

/* One op; seq 0 is a check outside the sequence (resume, end). */
struct op {
	uint64_t seq;
	uint64_t off;
	uint64_t len;
	enum op_kind kind;
};

/* What decides the sequence of ops: saved in the state file as it is. */
struct config {
	uint64_t seed;
	uint64_t nops;
	uint64_t maxlen;
	uint64_t closeprob;	/* reopen one op in closeprob; 0: never */
	uint64_t dropprob;	/* drop the page cache one op in dropprob */
	uint64_t verify_every;	/* a whole-file verify every so many ops */
	uint64_t nbounds;
	uint64_t bounds[MAX_BOUNDS];
	bool no_mapread;
	bool no_mapwrite;
	bool fill;
};

struct stats {
	uint64_t ops[_OP_MAX];
	uint64_t short_reads;	/* reads that reached the end of the file */
	uint64_t across;	/* I/O ops that straddle a -b boundary */
};

/* What only this invocation decides: output, log, replay, pause. */
struct opts {
	const char *replay;	/* -r LOG */
	const char *state;	/* -s STATE */
	uint64_t pause_at;	/* -p N; 0: no pause */
	bool gen_opts;		/* an option of struct config was given */
};

struct fsx {
	struct config cfg;
	struct stats st;
	const char *path;
	int fd;
	uint64_t size;
	uint8_t *model;		/* what each byte of the file must hold */
	uint8_t *buf;		/* data going in or coming back */
	struct op *hist;	/* the ops so far (saved in the state file) */
	size_t nhist;
	size_t hist_cap;
	FILE *log;		/* -l LOG, open; NULL without -l */
	const char *logpath;	/* -l or -r LOG */
	const char *phase;	/* names checks outside the sequence */
	bool quiet;
	bool verbose;
};

static inline uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p) {
		fprintf(stderr, PROG ": out of memory\n");
		exit(EXIT_USAGE);
	}
	return p;
}

static __attribute__((format(printf, 1, 2), noreturn))
void usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, PROG ": ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(EXIT_USAGE);
}

/* ------------------------------------------------------------------------ */
/* The sequence: each op from (seed, seq) alone                             */
/* ------------------------------------------------------------------------ */

struct rng {
	uint64_t s;
};

/* splitmix64: a good 64-bit mix, and a generator when stepped. */
static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t rng_next(struct rng *r)
{
	r->s += 0x9e3779b97f4a7c15ULL;
	return mix64(r->s);
}

/* A number in [0, n); 0 when n is 0. */
static uint64_t below(struct rng *r, uint64_t n)
{
	return n ? rng_next(r) % n : 0;
}

static struct rng op_rng(uint64_t seed, uint64_t seq)
{
	return (struct rng){ .s = mix64(seed * 0x2545f4914f6cdd1dULL + seq) };
}

/* The seed of op @seq's data. */
static uint64_t data_seed(uint64_t seed, uint64_t seq)
{
	return mix64(seed ^ mix64(seq + 0x5eed));
}

/*
 * The data: 8 bytes at a time, each 8-byte-aligned word of the file a hash
 * of (data seed, word index).  Like pattern.h's pattern, data written at
 * one offset cannot pass for data written at another, nor one op's for
 * another's; unlike it, cheap enough for megabytes per op.
 */
static uint64_t data_word(uint64_t dseed, uint64_t word)
{
	return mix64(dseed ^ word * 0x9e3779b97f4a7c15ULL);
}

static uint8_t data_byte(uint64_t dseed, uint64_t off)
{
	return (uint8_t)(data_word(dseed, off >> 3) >> (8 * (off & 7)));
}

static void data_fill(uint64_t dseed, uint64_t off, uint8_t *buf, size_t len)
{
	size_t i = 0;

	for (; i < len && (off + i) & 7; i++)
		buf[i] = data_byte(dseed, off + i);
	for (; i + 8 <= len; i += 8) {
		uint64_t w = data_word(dseed, (off + i) >> 3);

		for (int k = 0; k < 8; k++)	/* one store on little endian */
			buf[i + k] = (uint8_t)(w >> (8 * k));
	}
	for (; i < len; i++)
		buf[i] = data_byte(dseed, off + i);
}

static enum op_kind gen_kind(struct rng *r, const struct config *cfg)
{
	unsigned int w[_OP_MAX], total = 0, pick;
	int k;

	for (k = 0; k < _OP_MAX; k++)
		w[k] = op_weight[k];
	if (cfg->no_mapread)
		w[OP_MAPREAD] = 0;
	if (cfg->no_mapwrite)
		w[OP_MAPWRITE] = 0;
	for (k = 0; k < _OP_MAX; k++)
		total += w[k];
	pick = (unsigned int)below(r, total);
	for (k = 0; pick >= w[k]; k++)
		pick -= w[k];
	return (enum op_kind)k;
}

/* Unaligned most of the time; a few bytes, whole pages, a page or so. */
static uint64_t gen_len(struct rng *r, const struct config *cfg, uint64_t size)
{
	uint64_t max = min_u64(cfg->maxlen, size), len;

	switch (below(r, 8)) {
	case 0:
	case 1:
		len = 1 + below(r, 64);
		break;
	case 2:
		len = PAGE * (1 + below(r, max / PAGE));
		break;
	case 3:
		len = PAGE - 8 + below(r, 17);
		break;
	default:
		len = 1 + below(r, max);
		break;
	}
	return len < max ? len : max;
}

/*
 * An offset that makes [off, off + *len) hold bytes on both sides of one of
 * the boundaries (*len grows to 2 if need be).
 */
static uint64_t gen_straddle(struct rng *r, const struct config *cfg,
			     uint64_t *len)
{
	uint64_t b = cfg->bounds[below(r, cfg->nbounds)];

	if (*len < 2)
		*len = 2;
	return b - 1 - below(r, min_u64(*len - 1, b));
}

/* For reads: at the end, past it, or across it (a short read). */
static uint64_t gen_near_eof(struct rng *r, uint64_t size, uint64_t len)
{
	switch (below(r, 4)) {
	case 0:
		return size;
	case 1:
		return size + 1 + below(r, CHUNK);
	default:
		return size - 1 - below(r, min_u64(len, size));
	}
}

static uint64_t gen_off(struct rng *r, const struct fsx *f,
			enum op_kind kind, uint64_t *len)
{
	uint64_t pages = f->size / PAGE, off;

	if (f->cfg.nbounds && below(r, 3) == 0)
		return gen_straddle(r, &f->cfg, len);
	if (kind == OP_READ && below(r, 8) == 0)
		return gen_near_eof(r, f->size, *len);
	switch (below(r, 8)) {
	case 0:		/* page aligned */
		return below(r, pages) * PAGE;
	case 1:		/* a page boundary, give or take 8 bytes */
		off = below(r, pages + 1) * PAGE + below(r, 17);
		return off >= 8 ? off - 8 : off;
	default:
		return below(r, f->size);
	}
}

static void gen_op(const struct fsx *f, uint64_t seq, struct op *op)
{
	struct rng r = op_rng(f->cfg.seed, seq);

	*op = (struct op){ .seq = seq };
	if (f->cfg.verify_every && seq % f->cfg.verify_every == 0) {
		op->kind = OP_VERIFY;
		op->len = f->size;
		return;
	}
	if (f->cfg.closeprob && below(&r, f->cfg.closeprob) == 0) {
		op->kind = OP_REOPEN;
		return;
	}
	if (f->cfg.dropprob && below(&r, f->cfg.dropprob) == 0) {
		op->kind = OP_DROP;
		return;
	}
	op->kind = gen_kind(&r, &f->cfg);
	op->len = gen_len(&r, &f->cfg, f->size);
	op->off = gen_off(&r, f, op->kind, &op->len);
	/* Only reads may go past the end: the rest slide back inside. */
	if (op->kind != OP_READ && op->off + op->len > f->size)
		op->off = f->size - op->len;
}

static bool straddles(const struct config *cfg, const struct op *op)
{
	for (uint64_t i = 0; i < cfg->nbounds; i++)
		if (op->off < cfg->bounds[i] &&
		    op->off + op->len > cfg->bounds[i])
			return true;
	return false;
}

/* ------------------------------------------------------------------------ */
/* The log                                                                  */
/* ------------------------------------------------------------------------ */

static void log_op(FILE *out, const struct op *op)
{
	fprintf(out, "%" PRIu64 " %s %#" PRIx64 " %#" PRIx64 "\n", op->seq,
		op_names[op->kind], op->off, op->len);
}

static void log_header(const struct fsx *f, FILE *out)
{
	fprintf(out, LOG_HEADER, f->cfg.seed, f->size, f->cfg.fill);
	fprintf(out, "# seq op offset length\n");
}

/* -l LOG: a new log, or the same one appended to when resuming. */
static void log_open(struct fsx *f, bool append, uint64_t first)
{
	f->log = fopen(f->logpath, append ? "a" : "w");
	if (!f->log)
		usage_error("cannot open '%s': %s", f->logpath,
			    strerror(errno));
	if (ftell(f->log) == 0)
		log_header(f, f->log);
	else
		fprintf(f->log, "# resumed at op %" PRIu64 "\n", first);
	fflush(f->log);
}

/* Without -l, a report still points to a full log: $TMPDIR/this one. */
static const char *log_dump(const struct fsx *f)
{
	static char path[4096];
	const char *dir = getenv("TMPDIR");
	FILE *out;
	int fd;

	snprintf(path, sizeof(path), "%s/" PROG ".XXXXXX.log",
		 dir && *dir ? dir : "/tmp");
	fd = mkstemps(path, 4);
	if (fd < 0)
		return NULL;
	out = fdopen(fd, "w");
	if (!out) {
		close(fd);
		return NULL;
	}
	log_header(f, out);
	for (size_t i = 0; i < f->nhist; i++)
		log_op(out, &f->hist[i]);
	return fclose(out) ? NULL : path;
}

static void hist_add(struct fsx *f, const struct op *op)
{
	if (f->nhist == f->hist_cap) {
		f->hist_cap = f->hist_cap ? 2 * f->hist_cap : 1024;
		f->hist = realloc(f->hist, f->hist_cap * sizeof(*f->hist));
		if (!f->hist)
			usage_error("out of memory");
	}
	f->hist[f->nhist++] = *op;
}

/* ------------------------------------------------------------------------ */
/* Reports                                                                  */
/* ------------------------------------------------------------------------ */

static bool writes(const struct op *op)
{
	return op->kind == OP_WRITE || op->kind == OP_MAPWRITE;
}

static void print_op(const char *prefix, const struct op *op)
{
	printf("%s%" PRIu64 " %s %#" PRIx64 "+%#" PRIx64 "\n", prefix,
	       op->seq, op_names[op->kind], op->off, op->len);
}

static void print_data_of(const char *prefix, const struct op *op)
{
	printf("%sthe data of op %" PRIu64 " (%s %#" PRIx64 "+%#" PRIx64
	       ")\n", prefix, op->seq, op_names[op->kind], op->off, op->len);
}

/* The first lines: what failed, and on what. */
static __attribute__((format(printf, 3, 4)))
void report_begin(const struct fsx *f, const struct op *op,
		  const char *fmt, ...)
{
	va_list ap;

	if (op->seq)
		printf(PROG ": FAILED at op %" PRIu64 " (%s %#" PRIx64
		       "+%#" PRIx64 "): ", op->seq, op_names[op->kind],
		       op->off, op->len);
	else
		printf(PROG ": FAILED in the %s: ", f->phase);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n  seed %" PRIu64 ", file %s, size %#" PRIx64 "\n",
	       f->cfg.seed, f->path, f->size);
}

/* The last lines: the last ops, where the full log is, how to replay. */
static int report_end(const struct fsx *f)
{
	size_t first = f->nhist > REPORT_OPS ? f->nhist - REPORT_OPS : 0;
	const char *log = f->logpath ? f->logpath : log_dump(f);

	printf("  last ops (seq op offset+length):\n");
	for (size_t i = first; i < f->nhist; i++)
		print_op("    ", &f->hist[i]);
	if (log)
		printf("  full log: %s\n  replay: " PROG " -r %s %s\n", log,
		       log, f->path);
	fflush(stdout);
	return EXIT_FAILED;
}

static int fail_errno(const struct fsx *f, const struct op *op,
		      const char *call, int err)
{
	report_begin(f, op, "%s: %s", call, errname(err));
	return report_end(f);
}

static int fail_count(const struct fsx *f, const struct op *op,
		      const char *call, ssize_t got, uint64_t want)
{
	report_begin(f, op, "%s returned %zd, not %" PRIu64, call, got, want);
	return report_end(f);
}

/* A mapped access faulted (the memory is gone: revoked, or a bug). */
static int fail_sigbus(const struct fsx *f, const struct op *op)
{
	report_begin(f, op, "SIGBUS");
	return report_end(f);
}

static void print_bytes(const char *label, const uint8_t *p, size_t n)
{
	printf("  %s", label);
	for (size_t i = 0; i < n; i++)
		printf(" %02x", p[i]);
	printf("\n");
}

/* "^^" under each of the @n bytes where @got is not @want. */
static void print_marks(const uint8_t *got, const uint8_t *want, size_t n)
{
	while (n && got[n - 1] == want[n - 1])
		n--;
	printf("  wrong:   ");
	for (size_t i = 0; i < n; i++)
		printf(" %s", got[i] == want[i] ? "  " : "^^");
	printf("\n");
}

/* Index just past the ops of the history that ran before @op. */
static size_t hist_before(const struct fsx *f, const struct op *op)
{
	/* An op of the sequence is in the history; a check outside is not. */
	return op->seq ? f->nhist - 1 : f->nhist;
}

/* The -z fill, op 0, for the reports. */
static const struct op fill_op = { .kind = OP_WRITE, .len = UINT64_MAX };

/* Does @got (@n bytes at @off) agree with @w's data where @w wrote? */
static bool data_of(const struct fsx *f, const struct op *w, uint64_t off,
		    const uint8_t *got, size_t n)
{
	uint64_t seed = data_seed(f->cfg.seed, w->seq);

	if (off < w->off || off >= w->off + w->len)
		return false;
	for (size_t k = 0; k < n && off + k < w->off + w->len; k++)
		if (got[k] != data_byte(seed, off + k))
			return false;
	return true;
}


/*
 * Which op's data @got (@n wrong bytes at @off, n <= 8) is: the newest
 * write before @op that agrees with it, the -z fill, or NULL.  A hint: one
 * byte alone agrees with an unrelated write once in 256.
 */
static const struct op *whose_data(const struct fsx *f, const struct op *op,
				   uint64_t off, const uint8_t *got, size_t n)
{
	for (size_t i = hist_before(f, op); i-- > 0;)
		if (writes(&f->hist[i]) && data_of(f, &f->hist[i], off, got, n))
			return &f->hist[i];
	if (f->cfg.fill && data_of(f, &fill_op, off, got, n))
		return &fill_op;
	return NULL;
}

/* The newest write before @op that covers @off: whose data is expected. */
static const struct op *last_write(const struct fsx *f, const struct op *op,
				   uint64_t off)
{
	for (size_t i = hist_before(f, op); i-- > 0;) {
		const struct op *w = &f->hist[i];

		if (writes(w) && off >= w->off && off < w->off + w->len)
			return w;
	}
	return NULL;
}

static void report_origin(const struct fsx *f, const struct op *op,
			  uint64_t bad, const uint8_t *got, size_t nbad)
{
	const struct op *w = last_write(f, op, bad);
	const struct op *who = whose_data(f, op, bad, got, nbad);

	if (w)
		print_data_of("  expected: ", w);
	else
		printf("  expected: %s\n", f->cfg.fill ?
		       "the data of the fill (op 0)" :
		       "what the file held at the start");
	if (who == &fill_op)
		printf("  actual: the data of the fill (op 0)\n");
	else if (who)
		print_data_of("  actual: ", who);
	else
		printf("  actual: the data of no write of this run\n");
}

/* Where @got and @want differ: the first and last index, and how many. */
struct diff {
	uint64_t first;
	uint64_t last;
	uint64_t count;
	uint64_t run;		/* wrong bytes in a row from the first */
};

static void find_diff(const uint8_t *got, const uint8_t *want, uint64_t len,
		      struct diff *d)
{
	*d = (struct diff){ 0 };
	while (got[d->first] == want[d->first])
		d->first++;
	for (uint64_t i = d->first; i < len; i++) {
		if (got[i] == want[i])
			continue;
		d->last = i;
		d->count++;
		if (i == d->first + d->run)
			d->run++;
	}
}

/* @got, @len bytes read at file offset @off, is not the model's data. */
static int fail_data(const struct fsx *f, const struct op *op, uint64_t off,
		     const uint8_t *got, uint64_t len)
{
	const uint8_t *want = f->model + off;
	uint64_t start, n;
	struct diff d;

	find_diff(got, want, len, &d);
	/* REPORT_BYTES around the first wrong byte, inside what was read. */
	n = min_u64(REPORT_BYTES, len);
	start = d.first > n / 2 ? d.first - n / 2 : 0;
	if (start > len - n)
		start = len - n;
	report_begin(f, op, "wrong data");
	printf("  %#" PRIx64 " bytes compared from file offset %#" PRIx64
	       ": %" PRIu64 " wrong\n", len, off, d.count);
	printf("  first wrong byte at file offset %#" PRIx64 ", last at %#"
	       PRIx64 "\n", off + d.first, off + d.last);
	printf("  bytes from file offset %#" PRIx64 ":\n", off + start);
	print_bytes("expected:", want + start, n);
	print_bytes("actual:  ", got + start, n);
	print_marks(got + start, want + start, n);
	report_origin(f, op, off + d.first, got + d.first,
		      (size_t)min_u64(d.run, 8));
	return report_end(f);
}

static int check_data(const struct fsx *f, const struct op *op, uint64_t off,
		      const uint8_t *got, uint64_t len)
{
	if (!memcmp(got, f->model + off, len))
		return 0;
	return fail_data(f, op, off, got, len);
}

/* ------------------------------------------------------------------------ */
/* Mapped access under a SIGBUS guard                                      */
/* ------------------------------------------------------------------------ */

static sigjmp_buf bus_env;
static volatile sig_atomic_t bus_armed;

static void on_sigbus(int sig)
{
	if (!bus_armed) {
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	siglongjmp(bus_env, 1);
}

/* memcpy that returns false instead of dying of SIGBUS. */
static bool guarded_copy(void *dst, const void *src, size_t n)
{
	if (sigsetjmp(bus_env, 1)) {
		bus_armed = 0;
		return false;
	}
	bus_armed = 1;
	memcpy(dst, src, n);
	bus_armed = 0;
	return true;
}

/* The pages around [off, off + len), MAP_SHARED. */
struct window {
	uint8_t *map;
	uint64_t start;
	size_t len;
};

static int map_window(const struct fsx *f, uint64_t off, uint64_t len,
		      int prot, struct window *w)
{
	w->start = off & ~(PAGE - 1);
	w->len = off + len - w->start;
	w->map = mmap(NULL, w->len, prot, MAP_SHARED, f->fd, (off_t)w->start);
	if (w->map == MAP_FAILED)
		return -errno;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* The ops                                                                  */
/* ------------------------------------------------------------------------ */

static int op_read(struct fsx *f, const struct op *op)
{
	uint64_t want = op->off >= f->size ? 0 :
			min_u64(op->len, f->size - op->off);
	ssize_t n = pread(f->fd, f->buf, op->len, (off_t)op->off);

	if (n < 0)
		return fail_errno(f, op, "pread", errno);
	if ((uint64_t)n != want)
		return fail_count(f, op, "pread", n, want);
	if (want < op->len)
		f->st.short_reads++;
	return check_data(f, op, op->off, f->buf, want);
}

static int op_write(struct fsx *f, const struct op *op)
{
	ssize_t n;

	data_fill(data_seed(f->cfg.seed, op->seq), op->off, f->buf, op->len);
	n = pwrite(f->fd, f->buf, op->len, (off_t)op->off);
	if (n < 0)
		return fail_errno(f, op, "pwrite", errno);
	if ((uint64_t)n != op->len)
		return fail_count(f, op, "pwrite", n, op->len);
	memcpy(f->model + op->off, f->buf, op->len);
	return 0;
}

static int op_mapread(struct fsx *f, const struct op *op)
{
	struct window w;
	bool ok;
	int rc;

	rc = map_window(f, op->off, op->len, PROT_READ, &w);
	if (rc < 0)
		return fail_errno(f, op, "mmap", -rc);
	ok = guarded_copy(f->buf, w.map + (op->off - w.start), op->len);
	(void) munmap(w.map, w.len);
	if (!ok)
		return fail_sigbus(f, op);
	return check_data(f, op, op->off, f->buf, op->len);
}

static int op_mapwrite(struct fsx *f, const struct op *op)
{
	struct window w;
	int rc, err = 0;
	bool ok;

	rc = map_window(f, op->off, op->len, PROT_READ | PROT_WRITE, &w);
	if (rc < 0)
		return fail_errno(f, op, "mmap", -rc);
	data_fill(data_seed(f->cfg.seed, op->seq), op->off, f->buf, op->len);
	ok = guarded_copy(w.map + (op->off - w.start), f->buf, op->len);
	if (ok && msync(w.map, w.len, MS_SYNC))
		err = errno;
	(void) munmap(w.map, w.len);
	if (!ok)
		return fail_sigbus(f, op);
	if (err)
		return fail_errno(f, op, "msync", err);
	memcpy(f->model + op->off, f->buf, op->len);
	return 0;
}

static int op_reopen(struct fsx *f, const struct op *op)
{
	int rc = close(f->fd);

	f->fd = -1;
	if (rc)
		return fail_errno(f, op, "close", errno);
	f->fd = open(f->path, O_RDWR);
	if (f->fd < 0)
		return fail_errno(f, op, "open", errno);
	return 0;
}

static int op_drop(struct fsx *f, const struct op *op)
{
	int rc = posix_fadvise(f->fd, 0, 0, POSIX_FADV_DONTNEED);

	return rc ? fail_errno(f, op, "posix_fadvise", rc) : 0;
}

/* The whole file through read(2), a chunk at a time. */
static int op_verify(struct fsx *f, const struct op *op)
{
	for (uint64_t off = 0; off < f->size; off += CHUNK) {
		uint64_t len = min_u64(CHUNK, f->size - off);
		ssize_t n = pread(f->fd, f->buf, len, (off_t)off);
		int rc;

		if (n < 0)
			return fail_errno(f, op, "pread", errno);
		if ((uint64_t)n != len)
			return fail_count(f, op, "pread", n, len);
		rc = check_data(f, op, off, f->buf, len);
		if (rc)
			return rc;
	}
	return 0;
}

/* The whole file through one mapping of it. */
static int verify_map(struct fsx *f, const struct op *op)
{
	struct window w;
	int rc = 0;

	rc = map_window(f, 0, f->size, PROT_READ, &w);
	if (rc < 0)
		return fail_errno(f, op, "mmap", -rc);
	for (uint64_t off = 0; off < f->size && !rc; off += CHUNK) {
		uint64_t len = min_u64(CHUNK, f->size - off);

		if (!guarded_copy(f->buf, w.map + off, len))
			rc = fail_sigbus(f, op);
		else
			rc = check_data(f, op, off, f->buf, len);
	}
	(void) munmap(w.map, w.len);
	return rc;
}

typedef int (*op_fn)(struct fsx *f, const struct op *op);

static const op_fn op_fns[_OP_MAX] = {
	[OP_READ] = op_read,	     [OP_WRITE] = op_write,
	[OP_MAPREAD] = op_mapread,   [OP_MAPWRITE] = op_mapwrite,
	[OP_REOPEN] = op_reopen,     [OP_DROP] = op_drop,
	[OP_VERIFY] = op_verify,
};

/* Log the op first (a hang or a crash leaves it in the log), then do it. */
static int do_op(struct fsx *f, const struct op *op)
{
	hist_add(f, op);
	if (f->log) {
		log_op(f->log, op);
		fflush(f->log);
	}
	if (f->verbose)
		log_op(stderr, op);
	f->st.ops[op->kind]++;
	if (op->kind <= OP_MAPWRITE && straddles(&f->cfg, op))
		f->st.across++;
	return op_fns[op->kind](f, op);
}

/* ------------------------------------------------------------------------ */
/* Start, end, pause and resume                                             */
/* ------------------------------------------------------------------------ */

static int open_file(struct fsx *f)
{
	struct stat st;

	f->fd = open(f->path, O_RDWR);
	if (f->fd < 0 || fstat(f->fd, &st) < 0) {
		fprintf(stderr, PROG ": cannot open '%s': %s\n", f->path,
			strerror(errno));
		return EXIT_USAGE;
	}
	f->size = (uint64_t)st.st_size;
	if (!f->size) {
		fprintf(stderr, PROG ": '%s' is empty\n", f->path);
		return EXIT_USAGE;
	}
	f->model = xmalloc(f->size);
	return 0;
}

/* Room for the longest op and for a chunk of a whole-file comparison. */
static void alloc_buf(struct fsx *f, uint64_t maxlen)
{
	f->buf = xmalloc(maxlen > CHUNK ? maxlen : CHUNK);
}

/* The model's first state: the file as it is, or the -z fill (op 0). */
static int init_model(struct fsx *f)
{
	struct op op = { .kind = OP_WRITE };
	uint64_t seed = data_seed(f->cfg.seed, 0);

	f->phase = f->cfg.fill ? "fill" : "first read";
	for (op.off = 0; op.off < f->size; op.off += CHUNK) {
		uint8_t *m = f->model + op.off;
		ssize_t n;

		op.len = min_u64(CHUNK, f->size - op.off);
		if (f->cfg.fill) {
			data_fill(seed, op.off, m, op.len);
			n = pwrite(f->fd, m, op.len, (off_t)op.off);
		} else {
			n = pread(f->fd, m, op.len, (off_t)op.off);
		}
		if (n < 0)
			return fail_errno(f, &op, f->cfg.fill ? "pwrite" :
					  "pread", errno);
		if ((uint64_t)n != op.len)
			return fail_count(f, &op, f->cfg.fill ? "pwrite" :
					  "pread", n, op.len);
	}
	return 0;
}

/* FNV-1a, as fileio sum prints it. */
static uint64_t model_sum(const struct fsx *f)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (uint64_t i = 0; i < f->size; i++) {
		h ^= f->model[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static void print_stats(const struct fsx *f)
{
	const char *sep = "";

	printf(PROG ":");
	for (int k = 0; k < _OP_MAX; k++, sep = ",") {
		printf("%s %s %" PRIu64, sep, op_names[k], f->st.ops[k]);
		if (k == OP_READ)
			printf(" (%" PRIu64 " short)", f->st.short_reads);
	}
	if (f->cfg.nbounds)
		printf("; %" PRIu64 " across boundaries", f->st.across);
	printf("\n");
}

/* read(2), then one mapping, then read(2) of what the daemon holds. */
static int final_check(struct fsx *f, uint64_t nops)
{
	struct op op = { .kind = OP_VERIFY, .len = f->size };
	int rc;

	f->phase = "final check";
	rc = op_verify(f, &op);
	if (!rc)
		rc = verify_map(f, &op);
	if (!rc)
		rc = op_drop(f, &op);
	if (!rc)
		rc = op_verify(f, &op);
	if (rc)
		return rc;
	if (!f->quiet)
		print_stats(f);
	printf(PROG ": %" PRIu64 " ops ok, sum %016" PRIx64 "\n", nops,
	       model_sum(f));
	return 0;
}

/*
 * The state file: this header, the ops so far (for the reports of the
 * resumed run), then the model.  Written and read by the same build of the
 * checker: the header is the struct as it is.
 */
struct state_header {
	char magic[8];
	uint64_t header_size;
	uint64_t size;		/* of the file */
	uint64_t next;		/* the op to resume at */
	uint64_t nhist;
	struct config cfg;
	struct stats st;
};

static const char state_magic[8] = "dcdfsfx";

static int save_state(const struct fsx *f, const char *path, uint64_t next)
{
	struct state_header h = {
		.header_size = sizeof(h), .size = f->size, .next = next,
		.nhist = f->nhist, .cfg = f->cfg, .st = f->st,
	};
	FILE *out = fopen(path, "w");
	bool ok;

	memcpy(h.magic, state_magic, sizeof(h.magic));
	if (!out) {
		fprintf(stderr, PROG ": cannot create '%s': %s\n", path,
			strerror(errno));
		return EXIT_USAGE;
	}
	ok = fwrite(&h, sizeof(h), 1, out) == 1 &&
	     fwrite(f->hist, sizeof(*f->hist), f->nhist, out) == f->nhist &&
	     fwrite(f->model, f->size, 1, out) == 1;
	if (fclose(out) || !ok) {
		fprintf(stderr, PROG ": cannot write '%s'\n", path);
		return EXIT_USAGE;
	}
	return 0;
}

static bool load_hist(struct fsx *f, FILE *in, uint64_t nhist)
{
	struct op op;

	for (uint64_t i = 0; i < nhist; i++) {
		if (fread(&op, sizeof(op), 1, in) != 1)
			return false;
		hist_add(f, &op);
	}
	return true;
}

/* Fill f->cfg, f->st, the history and the model from @path: the next op. */
static uint64_t load_state(struct fsx *f, const char *path)
{
	struct state_header h;
	FILE *in = fopen(path, "r");
	bool ok;

	if (!in)
		usage_error("cannot open '%s': %s", path, strerror(errno));
	ok = fread(&h, sizeof(h), 1, in) == 1 &&
	     !memcmp(h.magic, state_magic, sizeof(h.magic)) &&
	     h.header_size == sizeof(h);
	if (ok && h.size != f->size)
		usage_error("'%s' is for a file of %" PRIu64 " bytes, not %"
			    PRIu64, path, h.size, f->size);
	ok = ok && load_hist(f, in, h.nhist) &&
	     fread(f->model, f->size, 1, in) == 1;
	fclose(in);
	if (!ok)
		usage_error("'%s' is not a state file of this " PROG, path);
	f->cfg = h.cfg;
	f->st = h.st;
	return h.next;
}

/* Ops @first to the last (or to the pause), then the final check. */
static int run_ops(struct fsx *f, const struct opts *o, uint64_t first)
{
	struct op op;
	int rc;

	f->phase = NULL;
	for (uint64_t seq = first; seq <= f->cfg.nops; seq++) {
		gen_op(f, seq, &op);
		rc = do_op(f, &op);
		if (rc)
			return rc;
		if (seq != o->pause_at)
			continue;
		rc = save_state(f, o->state, seq + 1);
		if (!rc)
			printf(PROG ": paused after op %" PRIu64 " of %" PRIu64
			       "\n", seq, f->cfg.nops);
		return rc;
	}
	rc = final_check(f, f->cfg.nops);
	/* Done: a state file left behind would resume a finished run. */
	if (!rc && o->state && unlink(o->state) && errno != ENOENT) {
		fprintf(stderr, PROG ": cannot remove '%s': %s\n", o->state,
			strerror(errno));
		rc = EXIT_USAGE;
	}
	return rc;
}

static int run_fresh(struct fsx *f, const struct opts *o)
{
	int rc;

	alloc_buf(f, f->cfg.maxlen);
	if (f->logpath)
		log_open(f, false, 1);
	if (!f->quiet)
		printf(PROG ": seed %" PRIu64 ", %" PRIu64 " ops on %" PRIu64
		       " bytes\n", f->cfg.seed, f->cfg.nops, f->size);
	rc = init_model(f);
	return rc ? rc : run_ops(f, o, 1);
}

/* The file was left alone, or remounted: it must still be the model. */
static int run_resumed(struct fsx *f, const struct opts *o)
{
	struct op op = { .kind = OP_VERIFY };
	uint64_t next = load_state(f, o->state);
	int rc;

	if (o->pause_at && (o->pause_at < next || o->pause_at >= f->cfg.nops))
		usage_error("-p %" PRIu64 ": not between op %" PRIu64
			    " and the last", o->pause_at, next);
	alloc_buf(f, f->cfg.maxlen);
	if (f->logpath)
		log_open(f, true, next);
	op.len = f->size;
	f->phase = "resume check";
	rc = op_verify(f, &op);
	if (rc)
		return rc;
	printf(PROG ": resumed at op %" PRIu64 " of %" PRIu64
	       ": the file matches the saved model\n", next, f->cfg.nops);
	return run_ops(f, o, next);
}

/* ------------------------------------------------------------------------ */
/* Replay                                                                   */
/* ------------------------------------------------------------------------ */

static bool parse_kind(const char *name, enum op_kind *ret_kind)
{
	for (int k = 0; k < _OP_MAX; k++)
		if (!strcmp(name, op_names[k])) {
			*ret_kind = (enum op_kind)k;
			return true;
		}
	return false;
}

/* An op the log may hold: I/O other than reads inside the file. */
static bool op_valid(const struct fsx *f, const struct op *op)
{
	if (op->kind == OP_READ)
		return op->len > 0 && op->len <= (1ULL << 30) &&
		       op->off < (1ULL << 62);
	if (op->kind == OP_WRITE || op->kind == OP_MAPREAD ||
	    op->kind == OP_MAPWRITE)
		return op->len > 0 && op->off < f->size &&
		       op->len <= f->size - op->off;
	return true;
}

static bool parse_op(const struct fsx *f, const char *line, struct op *op)
{
	char name[16];

	if (sscanf(line, "%" SCNu64 " %15s %" SCNx64 " %" SCNx64, &op->seq,
		   name, &op->off, &op->len) != 4 ||
	    !parse_kind(name, &op->kind) || !op->seq)
		return false;
	return op_valid(f, op);
}

/* The header gives seed and fill; every other line but comments an op. */
static void read_log(struct fsx *f, FILE *in, const char *path)
{
	char line[256];
	uint64_t size, lineno = 1;
	struct op op;
	int fill;

	if (!fgets(line, sizeof(line), in) ||
	    sscanf(line, LOG_HEADER_SCAN, &f->cfg.seed, &size, &fill) != 3)
		usage_error("'%s' is not a log of " PROG, path);
	if (size != f->size)
		usage_error("'%s' is the log of a file of %" PRIu64
			    " bytes, not %" PRIu64, path, size, f->size);
	f->cfg.fill = fill;
	while (fgets(line, sizeof(line), in)) {
		lineno++;
		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (!parse_op(f, line, &op))
			usage_error("%s:%" PRIu64 ": bad op", path, lineno);
		hist_add(f, &op);
		f->cfg.maxlen = op.len > f->cfg.maxlen ? op.len : f->cfg.maxlen;
	}
}

static int run_replay(struct fsx *f, const struct opts *o)
{
	FILE *in = fopen(o->replay, "r");
	struct op *ops;
	size_t nops;
	int rc;

	if (!in)
		usage_error("cannot open '%s': %s", o->replay, strerror(errno));
	f->cfg.maxlen = 0;
	read_log(f, in, o->replay);
	fclose(in);
	alloc_buf(f, f->cfg.maxlen);
	/* The ops become the history again as they run. */
	ops = f->hist;
	nops = f->nhist;
	f->hist = NULL;
	f->nhist = f->hist_cap = 0;
	f->logpath = o->replay;
	if (!f->quiet)
		printf(PROG ": replay of seed %" PRIu64 ", %zu ops on %" PRIu64
		       " bytes\n", f->cfg.seed, nops, f->size);
	rc = init_model(f);
	f->phase = NULL;
	for (size_t i = 0; i < nops && !rc; i++)
		rc = do_op(f, &ops[i]);
	free(ops);
	return rc ? rc : final_check(f, nops);
}

/* ------------------------------------------------------------------------ */
/* Options                                                                  */
/* ------------------------------------------------------------------------ */

static uint64_t num(const char *s)
{
	return pattern_number(PROG, s);
}

static void parse_bounds(struct config *cfg, char *list)
{
	char *save = NULL;

	for (char *w = strtok_r(list, ",", &save); w;
	     w = strtok_r(NULL, ",", &save)) {
		if (cfg->nbounds == MAX_BOUNDS)
			usage_error("more than %d boundaries", MAX_BOUNDS);
		cfg->bounds[cfg->nbounds++] = num(w);
	}
}

static void check_config(const struct fsx *f)
{
	if (!f->cfg.nops)
		usage_error("-N 0: nothing to do");
	if (!f->cfg.maxlen)
		usage_error("-o 0: ops need a length");
	for (uint64_t i = 0; i < f->cfg.nbounds; i++)
		if (!f->cfg.bounds[i] || f->cfg.bounds[i] >= f->size)
			usage_error("boundary %#" PRIx64 " is not inside the"
				    " file", f->cfg.bounds[i]);
}

static bool parse_gen_opt(struct config *cfg, int c, char *arg)
{
	switch (c) {
	case 'N':
		cfg->nops = num(arg);
		break;
	case 'S':
		cfg->seed = num(arg);
		break;
	case 'o':
		cfg->maxlen = num(arg);
		break;
	case 'b':
		parse_bounds(cfg, arg);
		break;
	case 'c':
		cfg->closeprob = num(arg);
		break;
	case 'D':
		cfg->dropprob = num(arg);
		break;
	case 'f':
		cfg->verify_every = num(arg);
		break;
	case 'R':
		cfg->no_mapread = true;
		break;
	case 'W':
		cfg->no_mapwrite = true;
		break;
	case 'z':
		cfg->fill = true;
		break;
	default:
		return false;
	}
	return true;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: " PROG " [-qvzRW] [-N OPS] [-S SEED] [-o MAXLEN]"
		" [-b OFF,...]\n"
		"                 [-c P] [-D P] [-f N] [-l LOG]"
		" [-s STATE [-p N]] FILE\n"
		"       " PROG " [-qv] -r LOG FILE\n");
	exit(EXIT_USAGE);
}

static void parse_args(int argc, char **argv, struct fsx *f, struct opts *o)
{
	int c;

	while ((c = getopt(argc, argv, "N:S:o:b:c:D:f:RWzl:r:s:p:qv")) != -1) {
		if (parse_gen_opt(&f->cfg, c, optarg)) {
			o->gen_opts = true;
			continue;
		}
		switch (c) {
		case 'l':
			f->logpath = optarg;
			break;
		case 'r':
			o->replay = optarg;
			break;
		case 's':
			o->state = optarg;
			break;
		case 'p':
			o->pause_at = num(optarg);
			break;
		case 'q':
			f->quiet = true;
			break;
		case 'v':
			f->verbose = true;
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1)
		usage();
	f->path = argv[optind];
	if (o->replay && (o->gen_opts || o->state || f->logpath))
		usage_error("-r takes only -q and -v: the log decides");
	if (o->pause_at && !o->state)
		usage_error("-p needs -s STATE");
}

static bool state_exists(const struct opts *o)
{
	return o->state && access(o->state, F_OK) == 0;
}

static void check_fresh(const struct fsx *f, const struct opts *o)
{
	check_config(f);
	if (o->state && (!o->pause_at || o->pause_at >= f->cfg.nops))
		usage_error("-s without a -p before the last op");
}

int main(int argc, char **argv)
{
	struct fsx f = {
		.cfg = { .seed = 1, .nops = 10000, .maxlen = 256 << 10,
			 .verify_every = 500 },
		.fd = -1,
	};
	struct opts o = { 0 };
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	parse_args(argc, argv, &f, &o);
	if (!f.cfg.seed)
		f.cfg.seed = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 16;
	rc = open_file(&f);
	if (rc)
		return rc;
	signal(SIGBUS, on_sigbus);
	if (o.replay) {
		rc = run_replay(&f, &o);
	} else if (state_exists(&o)) {
		if (o.gen_opts)
			usage_error("resuming: the ops come from '%s'",
				    o.state);
		rc = run_resumed(&f, &o);
	} else {
		check_fresh(&f, &o);
		rc = run_fresh(&f, &o);
	}
	if (f.fd >= 0)
		close(f.fd);
	if (f.log)
		fclose(f.log);
	free(f.model);
	free(f.buf);
	free(f.hist);
	return rc;
}
