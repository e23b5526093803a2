// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * dcdfs-storm - a fabric manager storm, client processes and race loops
 *
 *   dcdfs-storm fm [OPTS] DEV MNT       FM storm: adds and releases with
 *                                       dcdctl (tagged and untagged,
 *                                       prescriptive, by tag and forced)
 *   dcdfs-storm client [OPTS] MNT       open, mmap, read, write, close and
 *                                       rm files at random
 *   dcdfs-storm verify ACKLOG MNT       every acknowledged write reads back
 *   dcdfs-storm race KIND [OPTS] DEV MNT
 *                                       KIND: open-release, rm-open or
 *                                       mmap-forced, -n times
 *
 * Options: -s SEED, -t SECONDS (storm length), -i ID (client id, 0-15),
 * -n ROUNDS, -x DCDCTL (path of dcdctl), -a ACKLOG (durable writes), -c
 * (crash mode: the mount may die under the client, which then stops
 * quietly), -l LOW (the FM adds at region offsets from LOW, default 16M),
 * -z SIZE (the region size, default 256M).
 *
 * Classes of files, by name, so that every process knows what may happen
 * to a file without asking anybody:
 * - durable: tag starting with 'd'.  The test creates them below LOW;
 *   nobody releases them; clients log their acknowledged writes to them;
 * - forceable: tag starting with 'f', or untagged at an offset in the upper
 *   half of the region.  Only these may be force-released by the FM, so
 *   only on these are EIO and SIGBUS tolerated, and only when the file
 *   says it is revoked;
 * - the rest: released only by rm or by a (refusable) FM release.
 *
 * A client writes its own pattern in its own slot of a file (ID * 64 KiB)
 * while it holds the file open, and checks it reads back before letting
 * go: a pinned allocation must keep its memory.  It also checks that the
 * file says "active" or "release-pending" meanwhile.  The FM checks that a
 * release "dcdctl release --wait" reports done has taken the name away.
 *
 * Output: one line per problem, "VIOLATION: ...", on stdout, and a summary
 * line on stderr; the exit status is 1 if there was any violation.
 */
#include <dirent.h>
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
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define MIB (1ULL << 20)
#define BLOCK (2 * MIB)
#define SLOT (64u << 10)
#define REC 4096u		/* one durable record */
#define MAX_NAMES 512

struct opts {
	unsigned int seed;
	unsigned int secs;
	unsigned int id;
	unsigned int rounds;
	const char *dcdctl;
	const char *acklog;
	bool crash;
	bool verbose;
	uint64_t low;
	uint64_t size;
	const char *dev;
	const char *mnt;
};

static struct opts o = {
	.seed = 1, .secs = 10, .rounds = 20, .dcdctl = "dcdctl",
	.low = 16 * MIB, .size = 256 * MIB,
};
static unsigned int violations;
static uint64_t rng;

static uint64_t rnd(void)
{
	/* xorshift64*: reproducible from the seed */
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 2685821657736338717ULL;
}

static unsigned int below(unsigned int n)
{
	return n ? (unsigned int)(rnd() % n) : 0;
}

static __attribute__((format(printf, 1, 2))) void
violation(const char *fmt, ...)
{
	va_list ap;

	printf("VIOLATION: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	violations++;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void pause_us(unsigned int max)
{
	if (max)
		usleep(below(max));
}

/* ------------------------------------------------------------------------ */
/* Names                                                                    */
/* ------------------------------------------------------------------------ */

static bool is_durable(const char *name)
{
	return name[0] == 'd';
}

static bool is_forceable(const char *name)
{
	unsigned long long off;

	if (sscanf(name, "extent-%llx", &off) == 1)
		return off >= o.size / 2;
	return name[0] == 'f';
}

/* Up to MAX_NAMES names of the mount; returns how many, -1 if it is gone. */
static int list_names(char names[][64])
{
	struct dirent *d;
	DIR *dir;
	int n = 0;

	dir = opendir(o.mnt);
	if (!dir)
		return -1;
	while ((d = readdir(dir)) && n < MAX_NAMES) {
		if (d->d_name[0] == '.' || strlen(d->d_name) >= 64)
			continue;
		strcpy(names[n++], d->d_name);
	}
	if (errno == ENOTCONN)
		n = -1;
	closedir(dir);
	return n;
}

static void path_of(char *buf, size_t size, const char *name)
{
	if (snprintf(buf, size, "%s/%s", o.mnt, name) >= (int)size)
		buf[0] = '\0';
}

/* ------------------------------------------------------------------------ */
/* Running dcdctl                                                           */
/* ------------------------------------------------------------------------ */

/* Start dcdctl with ARGV (after "dcdctl -d DEV"); returns its pid. */
static pid_t dcdctl_start(const char *const *argv)
{
	const char *av[32] = { o.dcdctl, NULL };
	size_t n = 1;
	pid_t pid;

	for (size_t i = 0; argv[i] && n < 28; i++)
		av[n++] = argv[i];
	av[n++] = "-d";
	av[n++] = o.dev;
	av[n] = NULL;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);

		dup2(fd, STDOUT_FILENO);
		execv(o.dcdctl, (char *const *)av);
		_exit(127);
	}
	return pid;
}

static int dcdctl_wait(pid_t pid)
{
	int st;

	if (pid < 0 || waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Run dcdctl; with -v, say what and how it ended on stderr. */
static int dcdctl(const char *const *argv)
{
	int rc = dcdctl_wait(dcdctl_start(argv));

	if (o.verbose) {
		fprintf(stderr, "%.3f dcdctl", now());
		for (size_t i = 0; argv[i]; i++)
			fprintf(stderr, " %s", argv[i]);
		fprintf(stderr, " => %d\n", rc);
	}
	return rc;
}

static void format_range(char *buf, size_t size, uint64_t off, uint64_t len)
{
	snprintf(buf, size, "0x%" PRIx64 ":0x%" PRIx64, off, len);
}

/* ------------------------------------------------------------------------ */
/* The FM storm                                                             */
/* ------------------------------------------------------------------------ */

struct fm_stats {
	unsigned int adds, added, releases, released, refused, failed, forced;
};

static void random_tag(char *buf, size_t size, char class)
{
	snprintf(buf, size, "%c%07x-0000-4000-8000-%012" PRIx64, class,
		 below(1u << 24), rnd() & 0xffffffffffffu);
}

static uint64_t random_block(void)
{
	return o.low + (uint64_t)below((unsigned int)((o.size - o.low) /
						      BLOCK)) * BLOCK;
}

static void fm_add(struct fm_stats *st)
{
	char r[3][48], tag[48];
	const char *av[12] = { "add", "--wait=5" };
	/* No host to answer once the daemon is killed: do not wait then. */
	unsigned int n = o.crash ? 1 : 2, nr = 1 + below(3);
	bool tagged = below(2);

	if (tagged) {
		random_tag(tag, sizeof(tag), below(2) ? 'f' : 'a');
		av[n++] = "--tag";
		av[n++] = tag;
	} else {
		nr = 1;
	}
	for (unsigned int i = 0; i < nr; i++) {
		format_range(r[i], sizeof(r[i]), random_block(),
			     below(4) ? BLOCK : 2 * BLOCK);
		av[n++] = r[i];
	}
	av[n] = NULL;
	st->adds++;
	/* Overlaps are refused (1): the storm does not keep a model. */
	if (dcdctl(av) == 0)
		st->added++;
}

/* What the FM knows of a file: its first extent and its tag. */
static int fm_pick(char *name, uint64_t *off, uint64_t *len, bool *tagged)
{
	static char names[MAX_NAMES][64];
	char path[4096], buf[256];
	int n = list_names(names), k;
	ssize_t l;

	if (n <= 0)
		return -1;
	for (k = 0; k < 8; k++) {
		strcpy(name, names[below((unsigned int)n)]);
		if (!is_durable(name))
			break;
	}
	if (k == 8)
		return -1;
	path_of(path, sizeof(path), name);
	l = getxattr(path, "user.dcd.extents", buf, sizeof(buf) - 1);
	if (l <= 0)
		return -1;
	buf[l] = '\0';
	if (sscanf(buf, "0x%" SCNx64 ":0x%" SCNx64, off, len) != 2)
		return -1;
	*tagged = !strncmp(name, "extent-", 7) ? false : true;
	return 0;
}

static void fm_release(struct fm_stats *st)
{
	const char *av[12] = { "release" };
	char name[64], range[48], path[4096];
	uint64_t off, len;
	unsigned int n = 1;
	bool tagged, forced;
	int rc;

	if (fm_pick(name, &off, &len, &tagged) < 0)
		return;
	forced = is_forceable(name) && below(3) == 0;
	if (forced)
		av[n++] = "--forced";
	else
		av[n++] = o.crash ? "--wait=1" : "--wait=10";
	if (tagged && below(2)) {
		av[n++] = "--tag";
		av[n++] = name;
	} else {
		format_range(range, sizeof(range), off, len);
		av[n++] = range;
	}
	av[n] = NULL;
	rc = dcdctl(av);
	path_of(path, sizeof(path), name);
	if (forced) {
		st->forced++;
		return;
	}
	st->releases++;
	switch (rc) {
	case 0:
		st->released++;
		/* Done means the name is gone, kernel caches included. */
		if (!o.crash && access(path, F_OK) == 0)
			violation("fm: '%s' is still there after its release",
				  name);
		break;
	case 3:
		st->refused++;
		break;
	case 1:
		st->failed++;	/* an rm got there first */
		break;
	default:
		if (!o.crash)
			violation("fm: release of '%s' exited %d", name, rc);
		st->failed++;
	}
}

static int run_fm(void)
{
	struct fm_stats st = { 0 };
	double end = now() + o.secs;

	while (now() < end) {
		if (below(5) < 2)
			fm_add(&st);
		else
			fm_release(&st);
		pause_us(20000);
	}
	fprintf(stderr, "fm: %u adds (%u accepted), %u releases (%u done, %u"
		" refused, %u failed), %u forced\n", st.adds, st.added,
		st.releases, st.released, st.refused, st.failed, st.forced);
	return violations ? 1 : 0;
}

/* ------------------------------------------------------------------------ */
/* Clients                                                                  */
/* ------------------------------------------------------------------------ */

static sigjmp_buf bus_env;
static volatile sig_atomic_t bus_armed;

static void on_sigbus(int sig)
{
	(void) sig;
	if (bus_armed)
		siglongjmp(bus_env, 1);
	signal(SIGBUS, SIG_DFL);
	raise(SIGBUS);
}

/* Copy under a SIGBUS guard; false if the mapping faulted. */
static bool guarded_copy(void *dst, const void *src, size_t len)
{
	if (sigsetjmp(bus_env, 1)) {
		bus_armed = 0;
		return false;
	}
	bus_armed = 1;
	memcpy(dst, src, len);
	bus_armed = 0;
	return true;
}

static void fill(unsigned char *buf, size_t len, uint64_t key)
{
	uint64_t x = key * 0x9e3779b97f4a7c15ULL + 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (unsigned char)x;
	}
}

static uint64_t checksum(const unsigned char *buf, size_t len)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < len; i++)
		h = (h ^ buf[i]) * 1099511628211ULL;
	return h;
}

/* The state a file says it is in, through the open descriptor. */
static void fd_state(int fd, char *buf, size_t size)
{
	ssize_t n = fgetxattr(fd, "user.dcd.state", buf, size - 1);

	if (n < 0)
		snprintf(buf, size, "(%s)", strerror(errno));
	else
		buf[n] = '\0';
}

static bool mount_gone(int err)
{
	return err == ENOTCONN || err == ECONNABORTED;
}

/*
 * Something failed on a file the client holds: tolerated on a forceable
 * file that says it is revoked, and in crash mode once the mount is gone.
 * Returns true if the client should stop.
 */
static bool suspect(int fd, const char *name, const char *what, int err)
{
	char state[64];

	if (o.crash && (mount_gone(err) || access(o.mnt, F_OK) < 0))
		return true;
	fd_state(fd, state, sizeof(state));
	if (o.crash && state[0] == '(')
		return true;
	/*
	 * A forced release takes the memory first and tells the host after:
	 * the file says so a moment later.
	 */
	for (int i = 0; i < 200 && is_forceable(name) &&
			strcmp(state, "revoked"); i++) {
		usleep(10000);
		fd_state(fd, state, sizeof(state));
		/* Killed before it could say so: crash mode tolerates it. */
		if (o.crash && state[0] == '(')
			return true;
	}
	if (!strcmp(state, "revoked") && is_forceable(name))
		return false;
	violation("client %u: %s on held '%s': %s (state %s)", o.id, what,
		  name, err ? strerror(err) : "wrong data", state);
	fprintf(stderr, "%.3f client %u: %s on '%s' (%s)\n", now(), o.id,
		what, name, state);
	return false;
}

struct hold {
	const char *name;
	int fd;
	unsigned char *map;
	size_t size;
	uint64_t off;		/* this client's slot */
	unsigned char buf[REC], got[REC];
};

/* One write and read-back of the slot, by syscalls or by the mapping. */
static bool hold_round(struct hold *h, uint64_t key)
{
	bool mapped = h->map && below(2);
	ssize_t n;

	fill(h->buf, REC, key);
	if (mapped) {
		if (!guarded_copy(h->map + h->off, h->buf, REC))
			return !suspect(h->fd, h->name, "SIGBUS writing", 0);
		if (!guarded_copy(h->got, h->map + h->off, REC))
			return !suspect(h->fd, h->name, "SIGBUS reading", 0);
	} else {
		n = pwrite(h->fd, h->buf, REC, (off_t)h->off);
		if (n != REC)
			return !suspect(h->fd, h->name, "write",
					n < 0 ? errno : EIO);
		n = pread(h->fd, h->got, REC, (off_t)h->off);
		if (n != REC)
			return !suspect(h->fd, h->name, "read",
					n < 0 ? errno : EIO);
	}
	if (memcmp(h->buf, h->got, REC))
		return !suspect(h->fd, h->name, mapped ? "mapped data" : "data",
				0);
	return true;
}

static void hold_check_state(struct hold *h)
{
	char state[64];

	fd_state(h->fd, state, sizeof(state));
	if (!strcmp(state, "active") || !strcmp(state, "release-pending"))
		return;
	if (!strcmp(state, "revoked") && is_forceable(h->name))
		return;
	if (o.crash && state[0] == '(')
		return;
	violation("client %u: held '%s' says '%s'", o.id, h->name, state);
}

/* Open a file, hold it for a few rounds of writes and reads, let go. */
static bool client_hold(const char *name)
{
	struct hold h = { .name = name, .off = (uint64_t)o.id * SLOT };
	char path[4096];
	struct stat st;
	bool go_on = true;

	path_of(path, sizeof(path), name);
	h.fd = open(path, O_RDWR);
	if (h.fd < 0)
		return !(o.crash && mount_gone(errno));
	if (fstat(h.fd, &st) < 0 || (uint64_t)st.st_size < h.off + REC) {
		close(h.fd);
		return true;
	}
	h.size = (size_t)st.st_size;
	if (below(2)) {
		h.map = mmap(NULL, h.size, PROT_READ | PROT_WRITE, MAP_SHARED,
			     h.fd, 0);
		if (h.map == MAP_FAILED)
			h.map = NULL;
	}
	for (unsigned int r = 1 + below(4); go_on && r; r--) {
		go_on = hold_round(&h, rnd());
		hold_check_state(&h);
		pause_us(3000);
	}
	if (h.map)
		munmap(h.map, h.size);
	close(h.fd);
	return go_on;
}

static bool client_rm(const char *name)
{
	char path[4096];

	path_of(path, sizeof(path), name);
	if (unlink(path) == 0 || errno == EBUSY || errno == ENOENT)
		return true;
	if (o.crash && mount_gone(errno))
		return false;
	violation("client %u: rm '%s': %s", o.id, name, strerror(errno));
	return true;
}

/*
 * One durable write: a record in one of two halves of the slot (so that
 * a write the daemon died under cannot spoil the last acknowledged one),
 * made durable by fsync or msync, then logged with its checksum.
 */
static bool client_durable(const char *name, FILE *log, uint64_t *seq)
{
	/* Records per durable file: the halves alternate in each file. */
	static struct { char name[64]; uint64_t n; } files[8];
	unsigned char buf[REC];
	char path[4096];
	uint64_t off;
	size_t k;
	bool ok = false, mapped = below(2);
	int fd;

	for (k = 0; k < 7 && files[k].name[0] && strcmp(files[k].name, name);
	     k++)
		;
	snprintf(files[k].name, sizeof(files[k].name), "%s", name);
	off = (uint64_t)o.id * SLOT + (files[k].n & 1) * REC;
	path_of(path, sizeof(path), name);
	fd = open(path, O_RDWR);
	if (fd < 0)
		return !(o.crash && mount_gone(errno));
	fill(buf, REC, ((uint64_t)o.id << 48) ^ *seq ^ o.seed);
	if (mapped) {
		unsigned char *p = mmap(NULL, off + REC, PROT_READ | PROT_WRITE,
					MAP_SHARED, fd, 0);

		if (p != MAP_FAILED) {
			ok = guarded_copy(p + off, buf, REC) &&
			     msync(p, off + REC, MS_SYNC) == 0;
			munmap(p, off + REC);
		}
	} else {
		ok = pwrite(fd, buf, REC, (off_t)off) == REC && fsync(fd) == 0;
	}
	close(fd);
	if (!ok)
		return !o.crash;
	fprintf(log, "%s %" PRIu64 " %" PRIu64 " %016" PRIx64 " %s\n", name,
		off, *seq, checksum(buf, REC), mapped ? "msync" : "fsync");
	fflush(log);
	(*seq)++;
	files[k].n++;
	return true;
}

static int run_client(void)
{
	static char names[MAX_NAMES][64];
	double end = now() + o.secs;
	unsigned int holds = 0, rms = 0, durables = 0;
	uint64_t seq = 0;
	FILE *log = NULL;
	bool go_on = true;

	signal(SIGBUS, on_sigbus);
	if (o.acklog) {
		log = fopen(o.acklog, "a");
		if (!log) {
			perror(o.acklog);
			return 2;
		}
	}
	while (go_on && now() < end) {
		int n = list_names(names);
		const char *name;
		unsigned int k = below(10);

		if (n < 0) {
			if (!o.crash)
				violation("client %u: cannot list the mount",
					  o.id);
			break;
		}
		if (n == 0) {
			pause_us(5000);
			continue;
		}
		name = names[below((unsigned int)n)];
		if (is_durable(name)) {
			if (log && below(4) == 0) {
				go_on = client_durable(name, log, &seq);
				durables++;
			}
		} else if (k < 8) {
			go_on = client_hold(name);
			holds++;
		} else {
			go_on = client_rm(name);
			rms++;
		}
		pause_us(2000);
	}
	if (log)
		fclose(log);
	fprintf(stderr, "client %u: %u holds, %u rm, %u durable writes\n",
		o.id, holds, rms, durables);
	return violations ? 1 : 0;
}

/* ------------------------------------------------------------------------ */
/* Verifying acknowledged writes                                            */
/* ------------------------------------------------------------------------ */

struct ack {
	char name[64];
	uint64_t off, seq, sum;
};

/*
 * The last acknowledged record of each client in each file must read
 * back.  Only the last: a write the daemon died under may have spoiled
 * the other half of the slot, which held an older record.
 */
static int run_verify(const char *acklog)
{
	static struct ack acks[4096];
	size_t nr = 0, checked = 0;
	char line[256], path[4096];
	unsigned char buf[REC];
	FILE *f = fopen(acklog, "r");

	if (!f)
		return 0;	/* nothing acknowledged */
	while (fgets(line, sizeof(line), f)) {
		struct ack a;
		size_t i;

		if (sscanf(line, "%63s %" SCNu64 " %" SCNu64 " %" SCNx64,
			   a.name, &a.off, &a.seq, &a.sum) != 4)
			continue;
		for (i = 0; i < nr; i++)
			if (!strcmp(acks[i].name, a.name) &&
			    acks[i].off / SLOT == a.off / SLOT)
				break;
		if (i == nr && nr < 4096)
			nr++;
		if (i < nr)
			acks[i] = a;
	}
	fclose(f);
	for (size_t i = 0; i < nr; i++) {
		int fd;

		path_of(path, sizeof(path), acks[i].name);
		fd = open(path, O_RDONLY);
		if (fd < 0) {
			violation("verify: '%s': %s", acks[i].name,
				  strerror(errno));
			continue;
		}
		if (pread(fd, buf, REC, (off_t)acks[i].off) != REC ||
		    checksum(buf, REC) != acks[i].sum)
			violation("verify: '%s' at %" PRIu64 ": acknowledged"
				  " write %" PRIu64 " lost", acks[i].name,
				  acks[i].off, acks[i].seq);
		close(fd);
		checked++;
	}
	fprintf(stderr, "verify: %zu acknowledged records checked\n", checked);
	return violations ? 1 : 0;
}

/* ------------------------------------------------------------------------ */
/* Race loops                                                               */
/* ------------------------------------------------------------------------ */

/* Poll until PATH is gone (RELEASE reaches the daemon after close). */
static bool wait_gone(const char *path, double secs)
{
	double end = now() + secs;

	while (access(path, F_OK) == 0) {
		if (now() > end)
			return false;
		usleep(2000);
	}
	return true;
}

static int add_one(uint64_t off, char *path, size_t size)
{
	char range[48];
	const char *av[] = { "add", "--wait", range, NULL };

	format_range(range, sizeof(range), off, BLOCK);
	snprintf(path, size, "%s/extent-%016" PRIx64, o.mnt, off);
	if (dcdctl(av) != 0) {
		violation("race: cannot add %s", range);
		return -1;
	}
	return 0;
}

/* Open and hold PATH for a moment; check the data and the state. */
static bool race_hold(const char *path, uint64_t key, bool map)
{
	const char *name = strrchr(path, '/') + 1;
	struct hold h = { .name = name, .size = BLOCK };

	h.fd = open(path, O_RDWR);
	if (h.fd < 0) {
		if (errno != ENOENT)
			violation("race: open '%s': %s", name, strerror(errno));
		return false;
	}
	if (map) {
		h.map = mmap(NULL, BLOCK, PROT_READ | PROT_WRITE, MAP_SHARED,
			     h.fd, 0);
		if (h.map == MAP_FAILED)
			h.map = NULL;
	}
	for (int i = 0; i < 3; i++) {
		hold_round(&h, key + (uint64_t)i);
		hold_check_state(&h);
		pause_us(500);
	}
	if (h.map)
		munmap(h.map, BLOCK);
	close(h.fd);
	return true;
}

static void race_trace(unsigned int round, int rc, bool opened)
{
	if (o.verbose)
		fprintf(stderr, "round %u: dcdctl => %d, %s\n", round, rc,
			opened ? "opened" : "not opened");
}

/* FM release of an unpinned or pinned file: done (0) or refused (3). */
static void race_open_release(unsigned int round)
{
	char path[4096], range[48];
	const char *av[] = { "release", "--wait", range, NULL };
	uint64_t off = o.low + (round % 8) * BLOCK;
	bool opened;
	pid_t pid;
	int rc;

	if (add_one(off, path, sizeof(path)) < 0)
		return;
	format_range(range, sizeof(range), off, BLOCK);
	pid = dcdctl_start(av);
	pause_us(15000);
	opened = race_hold(path, round, below(2));
	rc = dcdctl_wait(pid);
	race_trace(round, rc, opened);
	if (rc != 0 && rc != 3)
		violation("race %u: release exited %d", round, rc);
	/* Done, or due at the last unpin, which is behind us. */
	if (!wait_gone(path, 10))
		violation("race %u: '%s' outlives its release", round, path);
}

/* rm while another process opens: EBUSY while held, never released under it. */
static void race_rm_open(unsigned int round)
{
	uint64_t off = o.low + (round % 8) * BLOCK;
	bool opened = false;
	char path[4096];
	pid_t pid;
	int rc;

	if (add_one(off, path, sizeof(path)) < 0)
		return;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		double end = now() + 10;

		pause_us(15000);
		while (unlink(path) < 0 && now() < end) {
			if (errno == ENOENT)
				_exit(0);
			if (errno != EBUSY)
				_exit(2);
			usleep(100);
		}
		_exit(now() < end ? 0 : 3);
	}
	for (int i = 0; i < 3; i++)
		opened |= race_hold(path, round, below(2));
	rc = dcdctl_wait(pid);
	race_trace(round, rc, opened);
	if (rc != 0)
		violation("race %u: rm did not succeed", round);
	if (!wait_gone(path, 10))
		violation("race %u: '%s' outlives its rm", round, path);
}

/*
 * A forced release under a mapping: half the time the file is open and
 * mapped first, then the FM forces it away while the client goes on; the
 * rest of the time the open races the release.  Accesses fail (SIGBUS,
 * EIO) only once the file says it is revoked.
 */
static void race_mmap_forced(unsigned int round)
{
	uint64_t off = o.size / 2 + (round % 8) * BLOCK;
	char path[4096], range[48];
	const char *av[] = { "release", "--forced", range, NULL };
	struct hold h = { .name = path, .size = BLOCK };
	bool opened = false;
	pid_t pid;
	int rc;

	if (add_one(off, path, sizeof(path)) < 0)
		return;
	h.name = strrchr(path, '/') + 1;
	format_range(range, sizeof(range), off, BLOCK);
	h.fd = below(2) ? open(path, O_RDWR) : -1;
	if (h.fd >= 0) {
		h.map = mmap(NULL, BLOCK, PROT_READ | PROT_WRITE, MAP_SHARED,
			     h.fd, 0);
		if (h.map == MAP_FAILED)
			h.map = NULL;
		opened = hold_round(&h, round);
	}
	pid = dcdctl_start(av);
	if (h.fd >= 0) {
		for (int i = 0; i < 20; i++) {
			hold_round(&h, round + (uint64_t)i);
			hold_check_state(&h);
			pause_us(3000);
		}
		if (h.map)
			munmap(h.map, BLOCK);
		close(h.fd);
	} else {
		pause_us(30000);
		for (int i = 0; i < 3; i++)
			opened |= race_hold(path, round, true);
	}
	rc = dcdctl_wait(pid);
	race_trace(round, rc, opened);
	if (rc != 0)
		violation("race %u: forced release failed", round);
	if (!wait_gone(path, 10))
		violation("race %u: '%s' outlives its forced release", round,
			  path);
}

static int run_race(const char *kind)
{
	void (*fn)(unsigned int);

	if (!strcmp(kind, "open-release"))
		fn = race_open_release;
	else if (!strcmp(kind, "rm-open"))
		fn = race_rm_open;
	else if (!strcmp(kind, "mmap-forced"))
		fn = race_mmap_forced;
	else
		return 2;
	signal(SIGBUS, on_sigbus);
	for (unsigned int i = 0; i < o.rounds; i++)
		fn(i);
	fprintf(stderr, "race %s: %u rounds, %u violations\n", kind, o.rounds,
		violations);
	return violations ? 1 : 0;
}

/* ------------------------------------------------------------------------ */

static uint64_t size_arg(const char *s)
{
	char *end;
	uint64_t v = strtoull(s, &end, 0);

	if (*end == 'K')
		v <<= 10;
	else if (*end == 'M')
		v <<= 20;
	else if (*end == 'G')
		v <<= 30;
	return v;
}

static int usage(void)
{
	fprintf(stderr, "usage: dcdfs-storm fm|client|verify|race ... (see the"
		" source)\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *cmd, *kind = NULL;
	int opt;

	if (argc < 2)
		return usage();
	cmd = argv[1];
	argv++;
	argc--;
	if (!strcmp(cmd, "race")) {
		if (argc < 2)
			return usage();
		kind = argv[1];
		argv++;
		argc--;
	}
	while ((opt = getopt(argc, argv, "s:t:i:n:x:a:cl:z:v")) != -1) {
		switch (opt) {
		case 's': o.seed = (unsigned int)strtoul(optarg, NULL, 0); break;
		case 't': o.secs = (unsigned int)strtoul(optarg, NULL, 0); break;
		case 'i': o.id = (unsigned int)strtoul(optarg, NULL, 0) % 16; break;
		case 'n': o.rounds = (unsigned int)strtoul(optarg, NULL, 0); break;
		case 'x': o.dcdctl = optarg; break;
		case 'a': o.acklog = optarg; break;
		case 'c': o.crash = true; break;
		case 'v': o.verbose = true; break;
		case 'l': o.low = size_arg(optarg); break;
		case 'z': o.size = size_arg(optarg); break;
		default: return usage();
		}
	}
	rng = ((uint64_t)o.seed << 8 | o.id) * 0x9e3779b97f4a7c15ULL | 1;
	if (!strcmp(cmd, "client") && optind + 1 == argc) {
		o.mnt = argv[optind];
		return run_client();
	}
	if (!strcmp(cmd, "verify") && optind + 2 == argc) {
		o.mnt = argv[optind + 1];
		return run_verify(argv[optind]);
	}
	if (optind + 2 != argc)
		return usage();
	o.dev = argv[optind];
	o.mnt = argv[optind + 1];
	if (!strcmp(cmd, "fm"))
		return run_fm();
	if (kind)
		return run_race(kind);
	return usage();
}
