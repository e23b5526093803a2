// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests for the simulated Dynamic Capacity Device (core/simdev*.c).
 *
 * What is tested:
 * - creation: geometry rules, a device appears complete or not at all, an
 *   existing path is refused and left alone, the accessors;
 * - opening: missing, foreign, damaged and newer devices are refused with
 *   their documented errno and nothing in them is written;
 * - every fabric-manager add and release rule, each refused whole with no
 *   change to the capacity account, the extent list or the event list, and
 *   a detail from dcdfs_strerror() that names the offending extent;
 * - add chains and the host's answer (subset accept, drop, zeroed memory),
 *   tag groups, prescriptive, tag-based, refused, forced and host-initiated
 *   releases;
 * - memory: data kept across a reopen, zeroed when capacity is reused, and
 *   revoked (SIGBUS) by a forced release;
 * - conservation (free + held + pending = region size) and
 *   dcdfs_simdev_check() after every step of a scripted sequence;
 * - host attachment exclusivity across processes, destroy vs attached
 *   hosts, event waiting, doorbells and the event history.
 *
 * Each test gets a fresh 64 MiB device (two regions of 32 MiB, 2 MiB
 * blocks) in a private mkdtemp() directory under /dev/shm, destroyed and
 * removed by the teardown even when the test fails.  Tests that fork close
 * their SQLite connections first, so that none crosses a fork; children
 * never use cmocka and always _exit().
 *
 * Tests named "regression" guard defects these tests found; the comment
 * above each says what was wrong.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include <cmocka.h>

#include <dcdfs/libdcdfs.h>

#include "simdev.h"

#define MiB (1ULL << 20)
#define BLOCK (2 * MiB)
#define DEV_SIZE (64 * MiB)
#define NR_REGIONS 2
#define REGION_SIZE (DEV_SIZE / NR_REGIONS)
#define MAX_HANDLES 4
#define MAX_LIST 64
#define SNAP_MAX 32
#define CHILD_TIMEOUT_MS 10000

static const uint8_t tag_a[DCDFS_TAG_SIZE] = {
	0x6a, 0x1d, 0x3c, 0x5e, 0x8f, 0x0b, 0x4b, 0x7a,
	0x9f, 0x51, 0x0c, 0x2e, 0x8d, 0x4a, 0x7b, 0x10,
};
static const uint8_t tag_b[DCDFS_TAG_SIZE] = {
	0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x47, 0x88,
	0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01,
};
static const uint8_t tag_c[DCDFS_TAG_SIZE] = {
	0xc0, 0xff, 0xee, 0x00, 0x12, 0x34, 0x45, 0x67,
	0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67,
};

/* ------------------------------------------------------------------------ */
/* Fixture                                                                  */
/* ------------------------------------------------------------------------ */

struct fixture {
	struct dcdfs_ctx *ctx;
	char dir[PATH_MAX];		/* private temporary directory */
	char path[PATH_MAX];		/* the device: dir/dev */
	struct dcdfs_simdev *dev;	/* on path: the FM, often host 0 */
	struct dcdfs_simdev *extra[MAX_HANDLES]; /* closed by the teardown */
	pid_t child;			/* a forked helper, or -1 */
	int to_child;			/* pipe ends of the parent */
	int from_child;
	volatile unsigned char *map;	/* a mapping the child touches */
};

static struct dcdfs_simdev_config dev_config(void)
{
	return (struct dcdfs_simdev_config){
		.size = DEV_SIZE,
		.nr_regions = NR_REGIONS,
		.block_size = BLOCK,
		.numa_node = -1,
	};
}

static int rm_entry(const char *path, const struct stat *st, int type,
		    struct FTW *ftw)
{
	(void) st;
	(void) type;
	(void) ftw;
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

static void rm_rf(const char *path)
{
	(void) nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void child_kill(struct fixture *f)
{
	if (f->child > 0) {
		(void) kill(f->child, SIGKILL);
		(void) waitpid(f->child, NULL, 0);
	}
	f->child = -1;
	if (f->to_child >= 0)
		(void) close(f->to_child);
	if (f->from_child >= 0)
		(void) close(f->from_child);
	f->to_child = -1;
	f->from_child = -1;
}

static void fixture_free(struct fixture *f)
{
	child_kill(f);
	for (int i = 0; i < MAX_HANDLES; i++)
		dcdfs_simdev_close(f->extra[i]);
	dcdfs_simdev_close(f->dev);
	if (f->dir[0])
		rm_rf(f->dir);
	dcdfs_unref(f->ctx);
	free(f);
}

static int setup(void **state)
{
	struct dcdfs_simdev_config cfg = dev_config();
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->child = -1;
	f->to_child = -1;
	f->from_child = -1;
	strcpy(f->dir, "/dev/shm/dcdfs-test-simdev-XXXXXX");
	if (!mkdtemp(f->dir)) {
		f->dir[0] = '\0';
		fixture_free(f);
		return -1;
	}
	if (snprintf(f->path, sizeof(f->path), "%s/dev", f->dir) < 0) {
		fixture_free(f);
		return -1;
	}
	if (dcdfs_new(&f->ctx) < 0 ||
	    dcdfs_simdev_create(f->ctx, f->path, &cfg, &f->dev) < 0) {
		fixture_free(f);
		return -1;
	}
	*state = f;
	return 0;
}

/* Close everything, destroy the device (the test may have) and clean up. */
static int teardown(void **state)
{
	struct fixture *f = *state;
	int rc;

	child_kill(f);
	for (int i = 0; i < MAX_HANDLES; i++) {
		dcdfs_simdev_close(f->extra[i]);
		f->extra[i] = NULL;
	}
	dcdfs_simdev_close(f->dev);
	f->dev = NULL;
	rc = dcdfs_simdev_destroy(f->ctx, f->path);
	if (rc < 0 && rc != -ENOENT)
		print_error("teardown: cannot destroy '%s': %s\n", f->path,
			    dcdfs_strerror(rc));
	fixture_free(f);
	return rc < 0 && rc != -ENOENT ? -1 : 0;
}

static void dev_close(struct fixture *f)
{
	dcdfs_simdev_close(f->dev);
	f->dev = NULL;
}

static void dev_reopen(struct fixture *f)
{
	assert_int_equal(dcdfs_simdev_open(f->ctx, f->path, &f->dev), 0);
}

/* Another handle on the device, closed by the teardown. */
static struct dcdfs_simdev *handle_open(struct fixture *f)
{
	for (int i = 0; i < MAX_HANDLES; i++) {
		if (f->extra[i])
			continue;
		assert_int_equal(dcdfs_simdev_open(f->ctx, f->path,
						   &f->extra[i]), 0);
		return f->extra[i];
	}
	fail_msg("too many handles");
	return NULL;
}

static void handle_close(struct fixture *f, struct dcdfs_simdev *h)
{
	for (int i = 0; i < MAX_HANDLES; i++) {
		if (f->extra[i] == h) {
			dcdfs_simdev_close(h);
			f->extra[i] = NULL;
		}
	}
}

static void attach_ok(struct dcdfs_simdev *h, unsigned int host,
		      unsigned int region)
{
	int rc = simdev_host_attach(h, host, region);

	if (rc)
		fail_msg("attach %u/%u: %s", host, region, dcdfs_strerror(rc));
}

/* A new handle attached as @host on @region. */
static struct dcdfs_simdev *host_open(struct fixture *f, unsigned int host,
				      unsigned int region)
{
	struct dcdfs_simdev *h = handle_open(f);

	attach_ok(h, host, region);
	return h;
}

/* @ret (PATH_MAX bytes) = @dir/@name. */
static void join(char *ret, const char *dir, const char *name)
{
	int n = snprintf(ret, PATH_MAX, "%s/%s", dir, name);

	assert_true(n > 0 && n < PATH_MAX);
}

/* @dir/@name, created as a directory. */
static void make_dir(const char *dir, const char *name, char *ret)
{
	join(ret, dir, name);
	assert_int_equal(mkdir(ret, 0700), 0);
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

static void copy_file(const char *from, const char *to)
{
	static char buf[1 << 16];
	int in = open(from, O_RDONLY | O_CLOEXEC);
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ssize_t n;

	assert_true(in >= 0 && out >= 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		assert_int_equal(write(out, buf, (size_t)n), n);
	assert_int_equal(n, 0);
	assert_int_equal(close(in), 0);
	assert_int_equal(close(out), 0);
}

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The detail of the last failure contains @what. */
static void assert_detail(int rc, const char *what)
{
	const char *s = dcdfs_strerror(rc);

	if (!s || !strstr(s, what))
		fail_msg("detail '%s' does not mention '%s'", s ? s : "(null)",
			 what);
}

/*
 * The detail of the last refusal checked by an assert_*_refused() helper,
 * saved before the helper's own calls replace it.
 */
static char refusal[512];

static void save_refusal(int rc)
{
	snprintf(refusal, sizeof(refusal), "%s", dcdfs_strerror(rc));
}

static void assert_refusal_mentions(const char *what)
{
	if (!strstr(refusal, what))
		fail_msg("detail '%s' does not mention '%s'", refusal, what);
}

/* ------------------------------------------------------------------------ */
/* Directory snapshots: "nothing was written"                               */
/* ------------------------------------------------------------------------ */

struct snap_entry {
	char name[256];		/* relative to the snapshot's root */
	mode_t mode;
	off_t size;
	struct timespec mtime;
	uint64_t hash;		/* FNV-1a of a regular file's bytes */
};

struct snap {
	size_t nr;
	struct snap_entry e[SNAP_MAX];
};

static uint64_t file_hash(const char *path)
{
	unsigned char buf[4096];
	uint64_t h = 1469598103934665603ULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	assert_true(fd >= 0);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; i < n; i++)
			h = (h ^ buf[i]) * 1099511628211ULL;
	(void) close(fd);
	return h;
}

static void snap_dir(struct snap *s, const char *root, const char *rel);

static void snap_add(struct snap *s, const char *root, const char *rel)
{
	char path[PATH_MAX];
	struct snap_entry *e;
	struct stat st;

	join(path, root, rel);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(s->nr < SNAP_MAX);
	e = &s->e[s->nr++];
	snprintf(e->name, sizeof(e->name), "%s", rel);
	e->mode = st.st_mode;
	e->size = S_ISDIR(st.st_mode) ? 0 : st.st_size;
	e->mtime = st.st_mtim;
	e->hash = S_ISREG(st.st_mode) ? file_hash(path) : 0;
	if (S_ISDIR(st.st_mode))
		snap_dir(s, root, rel);
}

static void snap_dir(struct snap *s, const char *root, const char *rel)
{
	char path[PATH_MAX], child[PATH_MAX];
	struct dirent *de;
	DIR *d;

	join(path, root, rel);
	d = opendir(path);
	assert_non_null(d);
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		join(child, rel, de->d_name);
		snap_add(s, root, child);
	}
	closedir(d);
}

static int cmp_snap_entry(const void *a, const void *b)
{
	return strcmp(((const struct snap_entry *)a)->name,
		      ((const struct snap_entry *)b)->name);
}

static void snap_take(const char *root, struct snap *s)
{
	s->nr = 0;
	snap_add(s, root, ".");
	qsort(s->e, s->nr, sizeof(s->e[0]), cmp_snap_entry);
}

static void snap_print(const char *what, const struct snap *s)
{
	for (size_t i = 0; i < s->nr; i++)
		print_error("%s: %s size %lld\n", what, s->e[i].name,
			    (long long)s->e[i].size);
}

static bool same_time(struct timespec a, struct timespec b)
{
	return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

/*
 * Same names, types, sizes, contents and file mtimes; directory mtimes too
 * with @dir_times (a file created and removed again changes those).
 */
static void assert_snap_equal(const struct snap *a, const struct snap *b,
			      bool dir_times)
{
	if (a->nr != b->nr) {
		snap_print("before", a);
		snap_print("after", b);
		fail_msg("%zu entries before, %zu after", a->nr, b->nr);
	}
	for (size_t i = 0; i < a->nr; i++) {
		const struct snap_entry *x = &a->e[i], *y = &b->e[i];
		bool times = dir_times || !S_ISDIR(x->mode);

		if (strcmp(x->name, y->name) || x->mode != y->mode ||
		    x->size != y->size || x->hash != y->hash ||
		    (times && !same_time(x->mtime, y->mtime)))
			fail_msg("'%s' changed (now '%s')", x->name, y->name);
	}
}

/* The names in @s, in order, are exactly @names. */
static void assert_snap_names(const struct snap *s, const char *const *names,
			      size_t nr)
{
	if (s->nr != nr) {
		snap_print("found", s);
		fail_msg("%zu entries, expected %zu", s->nr, nr);
	}
	for (size_t i = 0; i < nr; i++)
		assert_string_equal(s->e[i].name, names[i]);
}

/* ------------------------------------------------------------------------ */
/* Device helpers                                                           */
/* ------------------------------------------------------------------------ */

static inline struct dcdfs_extent ext(unsigned int region, uint64_t offset,
				      uint64_t length)
{
	return (struct dcdfs_extent){
		.region = region, .offset = offset, .length = length,
	};
}

static uint64_t add_ok(struct dcdfs_simdev *dev,
		       const struct dcdfs_fm_request *req)
{
	uint64_t id = 0;
	int rc = dcdfs_simdev_fm_add(dev, req, &id);

	if (rc)
		fail_msg("add: %s", dcdfs_strerror(rc));
	assert_true(id > 0);
	return id;
}

/* Offer one untagged extent @e to @host. */
static uint64_t offer(struct dcdfs_simdev *dev, unsigned int host,
		      struct dcdfs_extent e)
{
	struct dcdfs_fm_request req = {
		.host = host, .region = e.region,
		.extents = &e, .nr_extents = 1,
	};

	return add_ok(dev, &req);
}

static void accept_ok(struct dcdfs_simdev *h, uint64_t id,
		      const struct dcdfs_extent *v, size_t nr)
{
	int rc = simdev_host_accept(h, id, v, nr);

	if (rc)
		fail_msg("accept %" PRIu64 ": %s", id, dcdfs_strerror(rc));
}

/* Offer @v as one chain to the host attached on @h, which accepts it all. */
static uint64_t hold(struct dcdfs_simdev *h, const uint8_t *tag,
		     const struct dcdfs_extent *v, size_t nr)
{
	struct dcdfs_fm_request req = {
		.host = h->host, .region = h->region, .tag = tag,
		.extents = v, .nr_extents = nr,
	};
	uint64_t id = add_ok(h, &req);

	accept_ok(h, id, v, nr);
	return id;
}

static struct dcdfs_extent hold1(struct dcdfs_simdev *h, uint64_t offset,
				 uint64_t length)
{
	struct dcdfs_extent e = ext(h->region, offset, length);

	hold(h, NULL, &e, 1);
	return e;
}

static uint64_t release_ok(struct dcdfs_simdev *dev,
			   const struct dcdfs_fm_request *req)
{
	uint64_t id = 0;
	int rc = dcdfs_simdev_fm_release(dev, req, &id);

	if (rc)
		fail_msg("release: %s", dcdfs_strerror(rc));
	assert_true(id > 0);
	return id;
}

/* Ask @host for the extents of @v (one range each), prescriptively. */
static uint64_t ask(struct dcdfs_simdev *dev, unsigned int host,
		    const struct dcdfs_extent *v, size_t nr, bool forced)
{
	struct dcdfs_fm_request req = {
		.host = host, .region = v[0].region, .forced = forced,
		.extents = v, .nr_extents = nr,
	};

	return release_ok(dev, &req);
}

static void host_release_ok(struct dcdfs_simdev *h,
			    const struct dcdfs_extent *v, size_t nr)
{
	int rc = simdev_host_release(h, v, nr);

	if (rc)
		fail_msg("host release: %s", dcdfs_strerror(rc));
}

static struct dcdfs_event_info event_get(struct dcdfs_simdev *dev,
					 uint64_t id)
{
	struct dcdfs_event_info info;
	int rc = dcdfs_simdev_get_event(dev, id, &info);

	if (rc)
		fail_msg("event %" PRIu64 ": %s", id, dcdfs_strerror(rc));
	assert_true(info.id == id);
	return info;
}

static void assert_event(struct dcdfs_simdev *dev, uint64_t id,
			 enum dcdfs_event_state state, unsigned int nr_done)
{
	struct dcdfs_event_info info = event_get(dev, id);

	if (info.state != state || info.nr_done != nr_done)
		fail_msg("event %" PRIu64 ": state %d nr_done %u, expected"
			 " state %d nr_done %u", id, info.state, info.nr_done,
			 state, nr_done);
}

struct ext_list {
	size_t nr;
	struct dcdfs_extent_info v[MAX_LIST];
};

static int collect_extent(const struct dcdfs_extent_info *info, void *arg)
{
	struct ext_list *l = arg;

	if (l->nr == MAX_LIST)
		return -E2BIG;
	l->v[l->nr++] = *info;
	return 0;
}

static void list_extents(struct dcdfs_simdev *dev, int host,
			 struct ext_list *l)
{
	l->nr = 0;
	assert_int_equal(dcdfs_simdev_foreach_extent(dev, host,
						     collect_extent, l), 0);
}

static const struct dcdfs_extent_info *find_extent(const struct ext_list *l,
						   unsigned int region,
						   uint64_t offset)
{
	for (size_t i = 0; i < l->nr; i++)
		if (l->v[i].extent.region == region &&
		    l->v[i].extent.offset == offset)
			return &l->v[i];
	return NULL;
}

/* @e is on the device in @state; @event as the extent list reports it. */
static void assert_extent(struct dcdfs_simdev *dev, struct dcdfs_extent e,
			  enum dcdfs_extent_state state, uint64_t event)
{
	const struct dcdfs_extent_info *x;
	struct ext_list l;

	list_extents(dev, -1, &l);
	x = find_extent(&l, e.region, e.offset);
	if (!x) {
		fail_msg("no extent at %u:0x%" PRIx64, e.region, e.offset);
		return;
	}
	if (x->extent.length != e.length || x->state != state ||
	    x->event != event)
		fail_msg("extent %u:0x%" PRIx64 ": length 0x%" PRIx64
			 " state %d event %" PRIu64 ", expected state %d event"
			 " %" PRIu64, e.region, e.offset, x->extent.length,
			 x->state, x->event, state, event);
}

static void assert_no_extent(struct dcdfs_simdev *dev, struct dcdfs_extent e)
{
	struct ext_list l;

	list_extents(dev, -1, &l);
	if (find_extent(&l, e.region, e.offset))
		fail_msg("extent %u:0x%" PRIx64 " still exists", e.region,
			 e.offset);
}

static void assert_usage(struct dcdfs_simdev *dev, unsigned int region,
			 uint64_t free_, uint64_t held, uint64_t pending)
{
	uint64_t f, h, p;

	assert_int_equal(dcdfs_simdev_get_usage(dev, region, &f, &h, &p), 0);
	if (f != free_ || h != held || p != pending)
		fail_msg("region %u: free 0x%" PRIx64 " held 0x%" PRIx64
			 " pending 0x%" PRIx64 ", expected 0x%" PRIx64
			 " 0x%" PRIx64 " 0x%" PRIx64, region, f, h, p, free_,
			 held, pending);
}

/*
 * free + held + pending is the region's size, held and pending agree with
 * the extent list, and the device passes its own check.
 */
static void assert_conserved(struct dcdfs_simdev *dev)
{
	uint64_t sum[NR_REGIONS][2] = { { 0 } };
	struct ext_list l;
	int rc;

	list_extents(dev, -1, &l);
	for (size_t i = 0; i < l.nr; i++) {
		const struct dcdfs_extent_info *x = &l.v[i];

		assert_true(x->extent.region < NR_REGIONS);
		sum[x->extent.region][x->state == DCDFS_EXTENT_PENDING] +=
			x->extent.length;
	}
	for (unsigned int r = 0; r < NR_REGIONS; r++)
		assert_usage(dev, r, REGION_SIZE - sum[r][0] - sum[r][1],
			     sum[r][0], sum[r][1]);
	rc = dcdfs_simdev_check(dev);
	if (rc)
		fail_msg("check: %s", dcdfs_strerror(rc));
}

/* Pending events (NEW or REFUSED) of every host. */
struct event_list {
	size_t nr;
	struct dcdfs_event_info v[MAX_LIST];
};

static int collect_event(const struct dcdfs_event_info *info, void *arg)
{
	struct event_list *l = arg;

	if (l->nr == MAX_LIST)
		return -E2BIG;
	l->v[l->nr++] = *info;
	return 0;
}

static void list_events(struct dcdfs_simdev *dev, int host,
			struct event_list *l)
{
	l->nr = 0;
	assert_int_equal(dcdfs_simdev_foreach_event(dev, host, collect_event,
						    l), 0);
}

/* Everything a refused request must leave alone. */
struct dev_state {
	uint64_t usage[NR_REGIONS][3];
	struct ext_list extents;
	struct event_list events;
	size_t nr_mem;
};

static size_t mem_count(struct dcdfs_simdev *dev)
{
	DIR *d = opendir(dcdfs_simdev_get_memory_path(dev));
	struct dirent *de;
	size_t n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static void state_take(struct dcdfs_simdev *dev, struct dev_state *s)
{
	memset(s, 0, sizeof(*s));
	for (unsigned int r = 0; r < NR_REGIONS; r++)
		assert_int_equal(dcdfs_simdev_get_usage(dev, r,
							&s->usage[r][0],
							&s->usage[r][1],
							&s->usage[r][2]), 0);
	list_extents(dev, -1, &s->extents);
	list_events(dev, -1, &s->events);
	s->nr_mem = mem_count(dev);
}

static bool extent_info_equal(const struct dcdfs_extent_info *a,
			      const struct dcdfs_extent_info *b)
{
	return a->host == b->host && a->state == b->state &&
	       a->event == b->event && a->extent.region == b->extent.region &&
	       a->extent.offset == b->extent.offset &&
	       a->extent.length == b->extent.length &&
	       a->extent.seq == b->extent.seq &&
	       a->extent.tagged == b->extent.tagged &&
	       !memcmp(a->extent.tag, b->extent.tag, DCDFS_TAG_SIZE);
}

static bool event_info_equal(const struct dcdfs_event_info *a,
			     const struct dcdfs_event_info *b)
{
	return a->id == b->id && a->kind == b->kind && a->state == b->state &&
	       a->host == b->host && a->region == b->region &&
	       a->tagged == b->tagged && a->nr_extents == b->nr_extents &&
	       a->nr_done == b->nr_done &&
	       !memcmp(a->tag, b->tag, DCDFS_TAG_SIZE);
}

static void assert_state_equal(const struct dev_state *a,
			       const struct dev_state *b, const char *what)
{
	if (memcmp(a->usage, b->usage, sizeof(a->usage)))
		fail_msg("%s: the capacity account changed", what);
	if (a->extents.nr != b->extents.nr)
		fail_msg("%s: %zu extents before, %zu after", what,
			 a->extents.nr, b->extents.nr);
	for (size_t i = 0; i < a->extents.nr; i++)
		if (!extent_info_equal(&a->extents.v[i], &b->extents.v[i]))
			fail_msg("%s: extent %zu changed", what, i);
	if (a->events.nr != b->events.nr)
		fail_msg("%s: %zu events before, %zu after", what,
			 a->events.nr, b->events.nr);
	for (size_t i = 0; i < a->events.nr; i++)
		if (!event_info_equal(&a->events.v[i], &b->events.v[i]))
			fail_msg("%s: event %zu changed", what, i);
	if (a->nr_mem != b->nr_mem)
		fail_msg("%s: %zu memory files before, %zu after", what,
			 a->nr_mem, b->nr_mem);
}

/* The host's pending events; the caller frees them. */
static size_t host_events(struct dcdfs_simdev *h, bool all,
			  struct backend_event **ret)
{
	size_t nr = 0;

	assert_int_equal(simdev_host_events(h, all, ret, &nr), 0);
	return nr;
}

/* ------------------------------------------------------------------------ */
/* Memory helpers                                                           */
/* ------------------------------------------------------------------------ */

static int mem_open_ok(struct dcdfs_simdev *dev, struct dcdfs_extent e)
{
	struct stat st;
	int fd = simdev_mem_open(dev, &e);

	if (fd < 0)
		fail_msg("memory of 0x%" PRIx64 ": %s", e.offset,
			 dcdfs_strerror(fd));
	assert_int_equal(fstat(fd, &st), 0);
	assert_true((uint64_t)st.st_size == e.length);
	return fd;
}

static bool mem_is_zero(struct dcdfs_simdev *dev, struct dcdfs_extent e)
{
	static const unsigned char zero[4096];
	int fd = mem_open_ok(dev, e);
	const unsigned char *p;
	bool ok = true;

	p = mmap(NULL, e.length, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(p != MAP_FAILED);
	for (uint64_t off = 0; ok && off < e.length; off += sizeof(zero))
		ok = !memcmp(p + off, zero, sizeof(zero));
	assert_int_equal(munmap((void *)p, e.length), 0);
	assert_int_equal(close(fd), 0);
	return ok;
}

static unsigned char pattern(unsigned char seed, uint64_t i)
{
	return (unsigned char)(seed ^ (i * 131) ^ (i >> 13));
}

/* Write or verify a pattern through pwrite()/pread(). */
static bool mem_pattern(struct dcdfs_simdev *dev, struct dcdfs_extent e,
			unsigned char seed, bool write)
{
	static unsigned char buf[1 << 16], got[1 << 16];
	int fd = mem_open_ok(dev, e);
	bool ok = true;

	for (uint64_t off = 0; ok && off < e.length; off += sizeof(buf)) {
		for (size_t i = 0; i < sizeof(buf); i++)
			buf[i] = pattern(seed, off + i);
		if (write) {
			assert_int_equal(pwrite(fd, buf, sizeof(buf),
						(off_t)off), sizeof(buf));
			continue;
		}
		assert_int_equal(pread(fd, got, sizeof(got), (off_t)off),
				 sizeof(got));
		ok = !memcmp(buf, got, sizeof(buf));
	}
	assert_int_equal(close(fd), 0);
	return ok;
}

/* ------------------------------------------------------------------------ */
/* Child processes                                                          */
/* ------------------------------------------------------------------------ */

typedef int (*child_fn)(struct fixture *f, int in, int out);

static int send_u64(int fd, uint64_t v)
{
	return write(fd, &v, sizeof(v)) == (ssize_t)sizeof(v) ? 0 : -1;
}

static int recv_u64(int fd, uint64_t *v, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	if (poll(&pfd, 1, timeout_ms) != 1)
		return -1;
	return read(fd, v, sizeof(*v)) == (ssize_t)sizeof(*v) ? 0 : -1;
}

/*
 * Fork a child running @fn(f, in, out) with a pipe each way, and _exit()
 * with what it returns.  No SQLite connection may be open across the fork
 * unless the child never touches the database.
 */
static void child_start(struct fixture *f, child_fn fn)
{
	int to[2], from[2];

	assert_int_equal(pipe2(to, O_CLOEXEC), 0);
	assert_int_equal(pipe2(from, O_CLOEXEC), 0);
	fflush(stdout);
	fflush(stderr);
	f->child = fork();
	assert_true(f->child >= 0);
	if (f->child == 0) {
		(void) close(to[1]);
		(void) close(from[0]);
		_exit(fn(f, to[0], from[1]));
	}
	(void) close(to[0]);
	(void) close(from[1]);
	f->to_child = to[1];
	f->from_child = from[0];
}

/* Reap the child; return its wait status. */
static int child_wait(struct fixture *f)
{
	int status = 0;

	assert_int_equal(waitpid(f->child, &status, 0), f->child);
	f->child = -1;
	(void) close(f->to_child);
	(void) close(f->from_child);
	f->to_child = -1;
	f->from_child = -1;
	return status;
}

static void assert_child_ok(struct fixture *f)
{
	int status = child_wait(f);

	if (!WIFEXITED(status) || WEXITSTATUS(status))
		fail_msg("child failed: status 0x%x", status);
}

/* ------------------------------------------------------------------------ */
/* Creation                                                                 */
/* ------------------------------------------------------------------------ */

static void assert_accessors(struct dcdfs_simdev *dev, const char *path)
{
	char real[PATH_MAX], mem[PATH_MAX];
	uuid_t u;

	assert_non_null(realpath(path, real));
	assert_string_equal(dcdfs_simdev_get_path(dev), real);
	join(mem, real, "mem");
	assert_string_equal(dcdfs_simdev_get_memory_path(dev), mem);
	assert_int_equal(uuid_parse(dcdfs_simdev_get_uuid(dev), u), 0);
	assert_true(dcdfs_simdev_get_size(dev) == DEV_SIZE);
	assert_int_equal(dcdfs_simdev_get_nr_regions(dev), NR_REGIONS);
	assert_true(dcdfs_simdev_get_block_size(dev) == BLOCK);
	for (unsigned int r = 0; r < NR_REGIONS; r++) {
		assert_true(dcdfs_simdev_get_region_size(dev, r) ==
			    REGION_SIZE);
		assert_usage(dev, r, REGION_SIZE, 0, 0);
	}
	assert_true(dcdfs_simdev_get_region_size(dev, NR_REGIONS) == 0);
	assert_int_equal(dcdfs_simdev_get_usage(dev, NR_REGIONS, NULL, NULL,
						NULL), -EINVAL);
	assert_int_equal(dcdfs_simdev_get_numa_node(dev), -1);
	assert_int_equal(dcdfs_simdev_check(dev), 0);
}

/* A new device is complete: database, doorbells, locks and memory. */
static void test_create_layout(void **state)
{
	static const char *const names[] = {
		".", "./new", "./new/bell", "./new/device.db", "./new/lock",
		"./new/mem",
	};
	struct dcdfs_simdev_config cfg = dev_config();
	struct fixture *f = *state;
	char sub[PATH_MAX], path[PATH_MAX];
	struct dcdfs_simdev *dev;
	struct snap s;

	make_dir(f->dir, "t", sub);
	join(path, sub, "new");
	assert_int_equal(dcdfs_simdev_create(f->ctx, path, &cfg, NULL), 0);
	snap_take(sub, &s);
	assert_snap_names(&s, names, sizeof(names) / sizeof(names[0]));
	assert_true(S_ISREG(s.e[3].mode));
	assert_true(S_ISDIR(s.e[2].mode) && S_ISDIR(s.e[4].mode) &&
		    S_ISDIR(s.e[5].mode));

	assert_int_equal(dcdfs_simdev_open(f->ctx, path, &dev), 0);
	assert_accessors(dev, path);
	/* Every device has an identity of its own. */
	assert_string_not_equal(dcdfs_simdev_get_uuid(dev),
				dcdfs_simdev_get_uuid(f->dev));
	dcdfs_simdev_close(dev);
	assert_accessors(f->dev, f->path);
	assert_int_equal(dcdfs_simdev_destroy(f->ctx, path), 0);
	assert_false(exists(path));
	assert_int_equal(dcdfs_simdev_open(f->ctx, path, &dev), -ENOENT);
}

/* nr_regions 0 and block_size 0 mean one region of 2 MiB blocks. */
static void test_create_defaults(void **state)
{
	struct dcdfs_simdev_config cfg = { .size = DEV_SIZE, .numa_node = -1 };
	struct fixture *f = *state;
	char path[PATH_MAX];
	struct dcdfs_simdev *dev;

	join(path, f->dir, "defaults");
	assert_int_equal(dcdfs_simdev_create(f->ctx, path, &cfg, &dev), 0);
	assert_int_equal(dcdfs_simdev_get_nr_regions(dev), 1);
	assert_true(dcdfs_simdev_get_block_size(dev) ==
		    DCDFS_SIMDEV_DEFAULT_BLOCK);
	assert_true(dcdfs_simdev_get_region_size(dev, 0) == DEV_SIZE);
	dcdfs_simdev_close(dev);

	/* The smallest block (a page) and the most regions are fine. */
	join(path, f->dir, "small");
	cfg.nr_regions = DCDFS_SIMDEV_MAX_REGIONS;
	cfg.block_size = (uint64_t)sysconf(_SC_PAGESIZE);
	assert_int_equal(dcdfs_simdev_create(f->ctx, path, &cfg, &dev), 0);
	assert_int_equal(dcdfs_simdev_get_nr_regions(dev),
			 DCDFS_SIMDEV_MAX_REGIONS);
	assert_true(dcdfs_simdev_get_region_size(dev, 7) == DEV_SIZE / 8);
	dcdfs_simdev_close(dev);
}

/* Create must fail with @rc and leave @sub exactly as it was. */
static void assert_create_refused(struct fixture *f, const char *sub,
				  const struct dcdfs_simdev_config *cfg,
				  int rc, const char *what)
{
	char path[PATH_MAX];
	struct dcdfs_simdev *dev = NULL;
	struct snap before, after;
	int got;

	join(path, sub, "dev");
	snap_take(sub, &before);
	got = dcdfs_simdev_create(f->ctx, path, cfg, &dev);
	if (got != rc)
		fail_msg("%s: rc %d, expected %d", what, got, rc);
	assert_null(dev);
	assert_true(strcmp(dcdfs_strerror(got), strerror(-got)));
	snap_take(sub, &after);
	assert_snap_equal(&before, &after, false);
	assert_false(exists(path));
}

static void test_create_bad_geometry(void **state)
{
	static const struct {
		const char *what;
		uint64_t size;
		unsigned int nr_regions;
		uint64_t block_size;
	} bad[] = {
		{ "zero size", 0, 1, BLOCK },
		{ "size not a multiple of the block", DEV_SIZE + 4096, 1,
		  BLOCK },
		{ "size not a multiple of regions * block", 66 * MiB, 2,
		  BLOCK },
		{ "block not a power of two", 48 * MiB, 1, 3 * MiB },
		{ "block below the page size", DEV_SIZE, 1, 2048 },
		{ "block of one byte", DEV_SIZE, 1, 1 },
		{ "nine regions", 72 * MiB, 9, BLOCK },
		{ "size beyond INT64_MAX", 1ULL << 63, 1, BLOCK },
	};
	struct fixture *f = *state;
	char sub[PATH_MAX];

	make_dir(f->dir, "t", sub);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct dcdfs_simdev_config cfg = {
			.size = bad[i].size, .nr_regions = bad[i].nr_regions,
			.block_size = bad[i].block_size, .numa_node = -1,
		};

		assert_create_refused(f, sub, &cfg, -EINVAL, bad[i].what);
	}
}

static void test_create_numa(void **state)
{
	struct dcdfs_simdev_config cfg = dev_config();
	struct fixture *f = *state;
	char sub[PATH_MAX], path[PATH_MAX];
	struct dcdfs_simdev *dev;
	int rc;

	make_dir(f->dir, "t", sub);
	cfg.numa_node = 4096;
	assert_create_refused(f, sub, &cfg, -ENODEV, "node 4096");
	cfg.numa_node = -2;
	assert_create_refused(f, sub, &cfg, -EINVAL, "node -2");

	/* Node 0 has memory wherever NUMA is available at all. */
	cfg.numa_node = 0;
	join(path, sub, "node0");
	rc = dcdfs_simdev_create(f->ctx, path, &cfg, &dev);
	if (rc == -ENODEV) {
		assert_false(exists(path));
		return;
	}
	assert_int_equal(rc, 0);
	assert_int_equal(dcdfs_simdev_get_numa_node(dev), 0);
	dcdfs_simdev_close(dev);
}

/* An existing path is refused unless it is an empty directory. */
static void test_create_exists(void **state)
{
	struct dcdfs_simdev_config cfg = dev_config();
	struct fixture *f = *state;
	char sub[PATH_MAX], path[PATH_MAX], file[PATH_MAX];
	struct snap before, after;
	struct dcdfs_simdev *dev;

	make_dir(f->dir, "t", sub);
	make_dir(sub, "busy", path);
	join(file, path, "keep");
	write_file(file, "data", 4);
	snap_take(sub, &before);
	assert_int_equal(dcdfs_simdev_create(f->ctx, path, &cfg, NULL),
			 -EEXIST);
	assert_detail(-EEXIST, "exists");
	snap_take(sub, &after);
	assert_snap_equal(&before, &after, false);
	/* The directory itself is not even touched. */
	assert_true(same_time(before.e[1].mtime, after.e[1].mtime));

	join(file, sub, "file");
	write_file(file, "x", 1);
	snap_take(sub, &before);
	assert_int_equal(dcdfs_simdev_create(f->ctx, file, &cfg, NULL),
			 -EEXIST);
	snap_take(sub, &after);
	assert_snap_equal(&before, &after, false);

	make_dir(sub, "empty", path);
	assert_int_equal(dcdfs_simdev_create(f->ctx, path, &cfg, &dev), 0);
	assert_int_equal(dcdfs_simdev_check(dev), 0);
	dcdfs_simdev_close(dev);
}

static void test_create_bad_memory(void **state)
{
	struct dcdfs_simdev_config cfg = dev_config();
	struct fixture *f = *state;
	char sub[PATH_MAX];

	make_dir(f->dir, "t", sub);
	cfg.memory = "relative/memory";
	assert_create_refused(f, sub, &cfg, -EINVAL, "relative memory");
	cfg.memory = "/proc";
	assert_create_refused(f, sub, &cfg, -EINVAL, "memory not on tmpfs");
}

/* --memory puts the memory in PATH/dcdfs-UUID; destroy removes it. */
static void test_create_external_memory(void **state)
{
	struct dcdfs_simdev_config cfg = dev_config();
	struct fixture *f = *state;
	char sub[PATH_MAX], pool[PATH_MAX], path[PATH_MAX];
	char mem[PATH_MAX + 64];
	struct dcdfs_simdev *dev;

	make_dir(f->dir, "t", sub);
	make_dir(sub, "pool", pool);
	join(path, sub, "extdev");
	cfg.memory = pool;
	assert_int_equal(dcdfs_simdev_create(f->ctx, path, &cfg, &dev), 0);
	assert_true(snprintf(mem, sizeof(mem), "%s/dcdfs-%s", pool,
			     dcdfs_simdev_get_uuid(dev)) < (int)sizeof(mem));
	assert_string_equal(dcdfs_simdev_get_memory_path(dev), mem);
	assert_true(exists(mem));
	attach_ok(dev, 0, 0);
	hold1(dev, 0, BLOCK);
	assert_int_equal(mem_count(dev), 1);
	assert_int_equal(dcdfs_simdev_check(dev), 0);
	dcdfs_simdev_close(dev);

	assert_int_equal(dcdfs_simdev_destroy(f->ctx, path), 0);
	assert_false(exists(path));
	assert_false(exists(mem));
	assert_true(exists(pool));
}

/*
 * Regression: core/simdev.c, dcdfs_simdev_create() with a path ending in '/'
 * ("T/dev/", which does not exist): mkdir_parents() creates "T/dev" itself,
 * the temporary directory becomes "T/dev/..tmp-XXXXXX" (inside it), the
 * rename fails and the call returns -EEXIST ("exists and is not an empty
 * directory"), leaving an empty "T/dev" behind.  It should create the device
 * at "T/dev" (or refuse with -EINVAL and create nothing).
 */
static void test_create_trailing_slash_regression(void **state)
{
	struct dcdfs_simdev_config cfg = dev_config();
	struct fixture *f = *state;
	char sub[PATH_MAX], path[PATH_MAX];
	struct dcdfs_simdev *dev;
	int rc;

	make_dir(f->dir, "t", sub);
	join(path, sub, "slash/");
	rc = dcdfs_simdev_create(f->ctx, path, &cfg, NULL);
	if (rc == -EINVAL) {
		join(path, sub, "slash");
		assert_false(exists(path));
		return;
	}
	if (rc)
		fail_msg("create '%s': %s", path, dcdfs_strerror(rc));
	join(path, sub, "slash");
	assert_int_equal(dcdfs_simdev_open(f->ctx, path, &dev), 0);
	dcdfs_simdev_close(dev);
}

/*
 * Regression: core/simdev.c, dcdfs_simdev_destroy() decides whether the
 * memory lives inside the device directory with
 * strncmp(mem_path, path, strlen(path)), a string prefix test.  A device
 * "T/d" created with memory "T/d-pool" has its memory in
 * "T/d-pool/dcdfs-UUID", which starts with "T/d", so destroy believes it was
 * removed with the device and leaves the directory (and any memory files in
 * it) behind.  The test should compare whole path components.
 */
static void test_destroy_memory_prefix_regression(void **state)
{
	struct dcdfs_simdev_config cfg = dev_config();
	struct fixture *f = *state;
	char sub[PATH_MAX], pool[PATH_MAX], path[PATH_MAX];
	char mem[PATH_MAX];
	struct dcdfs_simdev *dev;

	make_dir(f->dir, "t", sub);
	make_dir(sub, "d-pool", pool);
	join(path, sub, "d");
	cfg.memory = pool;
	assert_int_equal(dcdfs_simdev_create(f->ctx, path, &cfg, &dev), 0);
	assert_true(snprintf(mem, sizeof(mem), "%s",
			     dcdfs_simdev_get_memory_path(dev)) <
		    (int)sizeof(mem));
	dcdfs_simdev_close(dev);
	assert_true(exists(mem));

	assert_int_equal(dcdfs_simdev_destroy(f->ctx, path), 0);
	assert_false(exists(path));
	if (exists(mem))
		fail_msg("destroy left the memory '%s' behind", mem);
}

/* ------------------------------------------------------------------------ */
/* Opening                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * Open must fail with @rc and leave @dir as it was: same files, bytes and
 * mtimes, no -wal or -shm; with @dir_times, not even a file created and
 * removed again.
 */
static void assert_open_refused(struct fixture *f, const char *dir, int rc,
				bool dir_times)
{
	struct dcdfs_simdev *dev = NULL;
	struct snap before, after;
	int got;

	snap_take(dir, &before);
	got = dcdfs_simdev_open(f->ctx, dir, &dev);
	if (got != rc)
		fail_msg("open '%s': %d (%s), expected %d", dir, got,
			 dcdfs_strerror(got), rc);
	assert_null(dev);
	snap_take(dir, &after);
	assert_snap_equal(&before, &after, dir_times);
}

static void test_open_missing(void **state)
{
	struct fixture *f = *state;
	char sub[PATH_MAX], path[PATH_MAX];
	struct dcdfs_simdev *dev = NULL;
	struct snap before, after;

	make_dir(f->dir, "t", sub);
	join(path, sub, "nothing");
	snap_take(sub, &before);
	assert_int_equal(dcdfs_simdev_open(f->ctx, path, &dev), -ENOENT);
	assert_null(dev);
	snap_take(sub, &after);
	assert_snap_equal(&before, &after, true);

	/* A file is not a device. */
	join(path, sub, "file");
	write_file(path, "x", 1);
	snap_take(sub, &before);
	assert_int_equal(dcdfs_simdev_open(f->ctx, path, &dev), -ENODEV);
	snap_take(sub, &after);
	assert_snap_equal(&before, &after, true);
	assert_int_equal(dcdfs_simdev_destroy(f->ctx, path), -ENODEV);
	assert_true(exists(path));
}

static void test_open_no_database(void **state)
{
	struct fixture *f = *state;
	char dir[PATH_MAX], file[PATH_MAX];

	make_dir(f->dir, "plain", dir);
	join(file, dir, "other");
	write_file(file, "other", 5);
	assert_open_refused(f, dir, -ENODEV, true);
	assert_detail(-ENODEV, "not a dcdfs device");
	assert_int_equal(dcdfs_simdev_destroy(f->ctx, dir), -ENODEV);
	assert_true(exists(file));
}

/* An SQLite database of another application, named device.db. */
static void make_foreign_db(const char *dir, const char *sql)
{
	char db_path[PATH_MAX];
	sqlite3 *db;

	join(db_path, dir, "device.db");
	assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static void test_open_foreign_database(void **state)
{
	struct fixture *f = *state;
	char dir[PATH_MAX];

	make_dir(f->dir, "foreign", dir);
	make_foreign_db(dir, "PRAGMA journal_mode = WAL;"
			"PRAGMA application_id = 305419896;"
			"PRAGMA user_version = 1;"
			"CREATE TABLE config(key TEXT, value);"
			"INSERT INTO config VALUES ('size', '1');");
	assert_open_refused(f, dir, -ENODEV, true);
	assert_detail(-ENODEV, "foreign");

	/* A plain SQLite file, no application id at all. */
	make_dir(f->dir, "plaindb", dir);
	make_foreign_db(dir, "CREATE TABLE t(x); INSERT INTO t VALUES (1);");
	assert_open_refused(f, dir, -ENODEV, true);
}

static void test_open_garbage(void **state)
{
	struct fixture *f = *state;
	char dir[PATH_MAX], db[PATH_MAX], real[PATH_MAX];
	unsigned char junk[8192];

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (unsigned char)(i * 37 + 11);
	make_dir(f->dir, "garbage", dir);
	join(db, dir, "device.db");
	write_file(db, junk, sizeof(junk));
	assert_open_refused(f, dir, -EUCLEAN, true);

	/* A real device database cut short inside its header. */
	make_dir(f->dir, "short", dir);
	join(db, dir, "device.db");
	join(real, f->path, "device.db");
	copy_file(real, db);
	assert_int_equal(truncate(db, 50), 0);
	assert_open_refused(f, dir, -EUCLEAN, true);

	/* An empty file. */
	assert_int_equal(truncate(db, 0), 0);
	assert_open_refused(f, dir, -EUCLEAN, true);
}

/* A copy of the fixture's device: database, doorbells, locks, memory. */
static void copy_device(struct fixture *f, const char *name, char *ret)
{
	char from[PATH_MAX], to[PATH_MAX], d[PATH_MAX];

	dev_close(f);
	make_dir(f->dir, name, ret);
	make_dir(ret, "bell", d);
	make_dir(ret, "lock", d);
	make_dir(ret, "mem", d);
	join(from, f->path, "device.db");
	join(to, ret, "device.db");
	copy_file(from, to);
	dev_reopen(f);
}

static void patch_be32(const char *dir, off_t offset, uint32_t v)
{
	unsigned char b[4] = { v >> 24, v >> 16, v >> 8, v };
	char db[PATH_MAX];
	int fd;

	join(db, dir, "device.db");
	fd = open(db, O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, b, sizeof(b), offset), sizeof(b));
	assert_int_equal(close(fd), 0);
}

/* A database whose pages beyond the first are gone. */
static void test_open_truncated(void **state)
{
	struct fixture *f = *state;
	char dir[PATH_MAX], db[PATH_MAX];
	struct dcdfs_simdev *dev;

	copy_device(f, "cut", dir);
	assert_int_equal(dcdfs_simdev_open(f->ctx, dir, &dev), 0);
	dcdfs_simdev_close(dev);
	join(db, dir, "device.db");
	assert_int_equal(truncate(db, 4096), 0);
	/*
	 * SQLite has to open this one to find out; it may create and remove
	 * its -wal and -shm files, so only the files are compared.
	 */
	assert_open_refused(f, dir, -EUCLEAN, false);
	assert_detail(-EUCLEAN, "damaged");
}

/* user_version (offset 60, big-endian) is the format version. */
static void test_open_versions(void **state)
{
	struct fixture *f = *state;
	char dir[PATH_MAX];
	struct dcdfs_simdev *dev;

	copy_device(f, "copy", dir);
	/* The copy itself is a good device... */
	assert_int_equal(dcdfs_simdev_open(f->ctx, dir, &dev), 0);
	assert_int_equal(dcdfs_simdev_check(dev), 0);
	dcdfs_simdev_close(dev);

	/* ...until it claims a newer format... */
	patch_be32(dir, 60, DCDFS_SIMDEV_FORMAT + 1);
	assert_open_refused(f, dir, -EPROTONOSUPPORT, true);
	assert_detail(-EPROTONOSUPPORT, "format version");
	patch_be32(dir, 60, 0xffffffff);
	assert_open_refused(f, dir, -EPROTONOSUPPORT, true);

	/* ...or none, or another application's id. */
	patch_be32(dir, 60, 0);
	assert_open_refused(f, dir, -EUCLEAN, true);
	patch_be32(dir, 60, DCDFS_SIMDEV_FORMAT);
	patch_be32(dir, 68, SIMDEV_APP_ID + 1);
	assert_open_refused(f, dir, -ENODEV, true);
	patch_be32(dir, 68, SIMDEV_APP_ID);
	assert_int_equal(dcdfs_simdev_open(f->ctx, dir, &dev), 0);
	dcdfs_simdev_close(dev);
}

/*
 * Regression: core/simdev.c, dcdfs_simdev_open() on a device.db with the
 * right application_id and format version but without its tables (damaged
 * metadata): prepare_all_locked() fails with SQLITE_ERROR ("no such table"),
 * which sql_rc() maps to -EIO ("SQL logic error").  The documented errno
 * for damaged metadata is -EUCLEAN.
 */
static void test_open_missing_schema_regression(void **state)
{
	struct fixture *f = *state;
	char dir[PATH_MAX];

	make_dir(f->dir, "noschema", dir);
	make_foreign_db(dir, "PRAGMA application_id = 1145259078;"
			"PRAGMA user_version = 1;"
			"CREATE TABLE unrelated(x);");
	assert_open_refused(f, dir, -EUCLEAN, false);
}

/* ------------------------------------------------------------------------ */
/* Fabric-manager adds                                                      */
/* ------------------------------------------------------------------------ */

struct bad_request {
	const char *what;
	unsigned int host;
	unsigned int region;
	bool forced;
	const uint8_t *tag;
	struct dcdfs_extent ext[2];
	size_t nr;
	int rc;
	const char *detail;	/* in dcdfs_strerror(), or NULL */
};

static const struct bad_request bad_adds[] = {
	{ "zero length", 0, 0, false, NULL, { { .offset = 16 * MiB } }, 1,
	  -EINVAL, "extent 0x1000000:0x0: zero length" },
	{ "misaligned offset", 0, 0, false, NULL,
	  { { .offset = 16 * MiB + 4096, .length = BLOCK } }, 1, -EINVAL,
	  "extent 0x1001000:0x200000 is not aligned" },
	{ "misaligned length", 0, 0, false, NULL,
	  { { .offset = 16 * MiB, .length = BLOCK + 4096 } }, 1, -EINVAL,
	  "extent 0x1000000:0x201000 is not aligned" },
	{ "past the region end", 0, 0, false, NULL,
	  { { .offset = 30 * MiB, .length = 4 * MiB } }, 1, -ERANGE,
	  "extent 0x1e00000:0x400000 lies outside region 0" },
	{ "at the region end", 0, 1, false, NULL,
	  { { .offset = 32 * MiB, .length = BLOCK } }, 1, -ERANGE,
	  "extent 0x2000000:0x200000 lies outside region 1" },
	{ "offset + length overflows", 0, 0, false, NULL,
	  { { .offset = 0xffffffffffe00000ULL, .length = 4 * MiB } }, 1,
	  -ERANGE, "extent 0xffffffffffe00000:0x400000 lies outside" },
	{ "overlap within the request", 0, 0, false, NULL,
	  { { .offset = 16 * MiB, .length = 4 * MiB },
	    { .offset = 18 * MiB, .length = BLOCK } }, 2, -EINVAL,
	  "extents 0x1000000:0x400000 and 0x1200000:0x200000 of the request"
	  " overlap" },
	{ "the same extent twice", 0, 0, false, NULL,
	  { { .offset = 16 * MiB, .length = BLOCK },
	    { .offset = 16 * MiB, .length = BLOCK } }, 2, -EINVAL,
	  "of the request overlap" },
	{ "a held extent", 0, 0, false, NULL,
	  { { .offset = 4 * MiB, .length = 4 * MiB } }, 1, -EEXIST,
	  "extent 0x400000:0x400000 overlaps 0x400000:0x400000 held by"
	  " host 0" },
	{ "ends inside a held extent", 0, 0, false, NULL,
	  { { .offset = 2 * MiB, .length = 4 * MiB } }, 1, -EEXIST,
	  "extent 0x200000:0x400000 overlaps 0x400000:0x400000 held by"
	  " host 0" },
	{ "starts inside a held extent", 0, 0, false, NULL,
	  { { .offset = 6 * MiB, .length = 4 * MiB } }, 1, -EEXIST,
	  "extent 0x600000:0x400000 overlaps 0x400000:0x400000 held by"
	  " host 0" },
	{ "inside a held extent", 0, 0, false, NULL,
	  { { .offset = 6 * MiB, .length = BLOCK } }, 1, -EEXIST,
	  "extent 0x600000:0x200000 overlaps 0x400000:0x400000" },
	{ "covers a held extent", 0, 0, false, NULL,
	  { { .offset = 2 * MiB, .length = 8 * MiB } }, 1, -EEXIST,
	  "extent 0x200000:0x800000 overlaps 0x400000:0x400000" },
	{ "offered to the same host", 0, 0, false, NULL,
	  { { .offset = 12 * MiB, .length = BLOCK } }, 1, -EEXIST,
	  "extent 0xc00000:0x200000 overlaps 0xc00000:0x200000 already offered"
	  " to host 0" },
	{ "covers an offered extent", 0, 0, false, NULL,
	  { { .offset = 10 * MiB, .length = 6 * MiB } }, 1, -EEXIST,
	  "extent 0xa00000:0x600000 overlaps 0xc00000:0x200000 already" },
	{ "held by another host", 0, 0, false, NULL,
	  { { .offset = 18 * MiB, .length = BLOCK } }, 1, -EEXIST,
	  "extent 0x1200000:0x200000 overlaps 0x1200000:0x200000 held by"
	  " host 1" },
	{ "offered to another host", 1, 0, false, NULL,
	  { { .offset = 12 * MiB, .length = BLOCK } }, 1, -EEXIST,
	  "already offered to host 0" },
	{ "held by another host, tagged", 2, 0, false, tag_a,
	  { { .offset = 4 * MiB, .length = BLOCK } }, 1, -EEXIST,
	  "extent 0x400000:0x200000 overlaps 0x400000:0x400000 held by"
	  " host 0" },
	{ "one good extent, one overlapping", 0, 0, false, NULL,
	  { { .offset = 24 * MiB, .length = BLOCK },
	    { .offset = 4 * MiB, .length = BLOCK } }, 2, -EEXIST,
	  "extent 0x400000:0x200000 overlaps" },
	{ "host out of range", DCDFS_SIMDEV_MAX_HOST + 1, 0, false, NULL,
	  { { .offset = 16 * MiB, .length = BLOCK } }, 1, -EINVAL,
	  "host 65536 is out of range" },
	{ "no such region", 0, NR_REGIONS, false, NULL,
	  { { .offset = 0, .length = BLOCK } }, 1, -EINVAL,
	  "region 2 does not exist" },
	{ "no extents", 0, 0, false, NULL, { { 0 } }, 0, -EINVAL,
	  "at least one extent" },
	{ "forced", 0, 0, true, NULL,
	  { { .offset = 16 * MiB, .length = BLOCK } }, 1, -EINVAL,
	  "cannot be forced" },
};

/*
 * Region 0: host 0 holds 4M-8M and is offered 12M-14M, host 1 holds
 * 18M-20M.  Returns the attached handle of host 0 (f->dev).
 */
static struct dcdfs_simdev *add_layout(struct fixture *f)
{
	struct dcdfs_simdev *h1;

	attach_ok(f->dev, 0, 0);
	hold1(f->dev, 4 * MiB, 4 * MiB);
	offer(f->dev, 0, ext(0, 12 * MiB, BLOCK));
	h1 = host_open(f, 1, 0);
	hold1(h1, 18 * MiB, BLOCK);
	assert_conserved(f->dev);
	return f->dev;
}

/* Submit @r (an add or a release) and check it changes nothing. */
static void assert_request_refused(struct dcdfs_simdev *dev,
				   const struct bad_request *r, bool add)
{
	struct dcdfs_fm_request req = {
		.host = r->host, .region = r->region, .tag = r->tag,
		.forced = r->forced, .extents = r->ext, .nr_extents = r->nr,
	};
	struct dev_state before, after;
	uint64_t id = 0;
	int rc;

	state_take(dev, &before);
	rc = add ? dcdfs_simdev_fm_add(dev, &req, &id) :
		   dcdfs_simdev_fm_release(dev, &req, &id);
	if (rc != r->rc)
		fail_msg("%s: rc %d (%s), expected %d", r->what, rc,
			 dcdfs_strerror(rc), r->rc);
	if (r->detail && !strstr(dcdfs_strerror(rc), r->detail))
		fail_msg("%s: detail '%s' lacks '%s'", r->what,
			 dcdfs_strerror(rc), r->detail);
	state_take(dev, &after);
	assert_state_equal(&before, &after, r->what);
	assert_int_equal(dcdfs_simdev_check(dev), 0);
}

static void test_add_rules(void **state)
{
	struct fixture *f = *state;
	struct dcdfs_simdev *dev = add_layout(f);
	struct dcdfs_fm_request req = { .nr_extents = 1 };
	struct dev_state before, after;

	for (size_t i = 0; i < sizeof(bad_adds) / sizeof(bad_adds[0]); i++)
		assert_request_refused(dev, &bad_adds[i], true);

	/* NULL extents with a count; NULL request or device. */
	state_take(dev, &before);
	assert_int_equal(dcdfs_simdev_fm_add(dev, &req, NULL), -EINVAL);
	state_take(dev, &after);
	assert_state_equal(&before, &after, "NULL extents");
	assert_int_equal(dcdfs_simdev_fm_add(dev, NULL, NULL), -EINVAL);
	assert_int_equal(dcdfs_simdev_fm_add(NULL, &req, NULL), -EINVAL);

	/* Capacity next to what is taken, or in the other region, is free. */
	offer(dev, 0, ext(0, 8 * MiB, 4 * MiB));
	offer(dev, 0, ext(0, 14 * MiB, 4 * MiB));
	offer(dev, 1, ext(1, 4 * MiB, 4 * MiB));
	offer(dev, DCDFS_SIMDEV_MAX_HOST, ext(0, 30 * MiB, BLOCK));
	assert_conserved(dev);
}

/*
 * Regression: core/simdev-fm.c, dcdfs_simdev_fm_add() with req->tag pointing
 * at the null UUID: the extents are stored with a 16-byte zero tag, and the
 * extent list and the event report tagged = true with the null tag.  A null
 * tag means untagged (struct dcdfs_extent, dcdfs_parse_tag()), so the host
 * builds a "tag group" named 00000000-0000-0000-0000-000000000000.  The add
 * should either be refused (-EINVAL) or store the extents untagged.
 */
static void test_add_null_tag_regression(void **state)
{
	static const uint8_t null_tag[DCDFS_TAG_SIZE];
	struct fixture *f = *state;
	struct dcdfs_extent e = ext(0, 0, BLOCK);
	struct dcdfs_fm_request req = {
		.tag = null_tag, .extents = &e, .nr_extents = 1,
	};
	struct ext_list l;
	uint64_t id = 0;
	int rc;

	rc = dcdfs_simdev_fm_add(f->dev, &req, &id);
	if (rc == -EINVAL)
		return;
	assert_int_equal(rc, 0);
	list_extents(f->dev, 0, &l);
	assert_int_equal(l.nr, 1);
	if (l.v[0].extent.tagged || event_get(f->dev, id).tagged)
		fail_msg("an add with the null tag made a tagged extent");
}

/* ------------------------------------------------------------------------ */
/* Add chains and the host's answer                                         */
/* ------------------------------------------------------------------------ */

static const struct dcdfs_extent chain[] = {
	{ .region = 0, .offset = 10 * MiB, .length = BLOCK, .seq = 2 },
	{ .region = 0, .offset = 0, .length = BLOCK, .seq = 0 },
	{ .region = 0, .offset = 2 * MiB, .length = 4 * MiB, .seq = 1 },
};
#define CHAIN_LEN (sizeof(chain) / sizeof(chain[0]))

static uint64_t post_chain(struct dcdfs_simdev *dev)
{
	struct dcdfs_fm_request req = {
		.host = 0, .region = 0, .extents = chain,
		.nr_extents = CHAIN_LEN,
	};

	return add_ok(dev, &req);
}

static int stop_at_first(const struct dcdfs_event_info *info, void *arg)
{
	*(uint64_t *)arg = info->id;
	return 42;
}

/* An add is one NEW event whose extents are PENDING, in arrival order. */
static void test_chain_pending(void **state)
{
	struct fixture *f = *state;
	struct dcdfs_event_info info;
	struct backend_event *ev;
	uint64_t id, seen = 0;
	struct ext_list l;

	id = post_chain(f->dev);
	info = event_get(f->dev, id);
	assert_int_equal(info.kind, DCDFS_EVENT_ADD);
	assert_int_equal(info.state, DCDFS_EVENT_NEW);
	assert_true(info.host == 0 && info.region == 0 && !info.tagged);
	assert_true(info.nr_extents == CHAIN_LEN && info.nr_done == 0);
	for (size_t i = 0; i < CHAIN_LEN; i++)
		assert_extent(f->dev, chain[i], DCDFS_EXTENT_PENDING, id);
	assert_usage(f->dev, 0, REGION_SIZE - 8 * MiB, 0, 8 * MiB);
	assert_usage(f->dev, 1, REGION_SIZE, 0, 0);
	assert_int_equal(mem_count(f->dev), 0);

	/* The extent list is in offset order and filters by host. */
	list_extents(f->dev, -1, &l);
	assert_int_equal(l.nr, 3);
	assert_true(l.v[0].extent.offset == 0 && l.v[1].extent.offset ==
		    2 * MiB && l.v[2].extent.offset == 10 * MiB);
	assert_true(l.v[1].extent.seq == 1 && l.v[2].extent.seq == 2);
	list_extents(f->dev, 1, &l);
	assert_int_equal(l.nr, 0);
	assert_int_equal(dcdfs_simdev_foreach_event(f->dev, -1, stop_at_first,
						    &seen), 42);
	assert_true(seen == id);

	/* The host sees the chain in arrival order. */
	attach_ok(f->dev, 0, 0);
	assert_int_equal(host_events(f->dev, false, &ev), 1);
	assert_true(ev[0].info.id == id && ev[0].nr_extents == CHAIN_LEN);
	for (size_t i = 0; i < CHAIN_LEN; i++)
		assert_true(ev[0].extents[i].offset == chain[i].offset &&
			    ev[0].extents[i].length == chain[i].length &&
			    ev[0].extents[i].seq == chain[i].seq);
	backend_events_free(ev, 1);
	assert_conserved(f->dev);
}

/* Accepted extents are held with zeroed memory; the rest are free again. */
static void test_chain_accept_subset(void **state)
{
	struct fixture *f = *state;
	struct dcdfs_extent take[] = { chain[0], chain[2] };
	struct dcdfs_extent *held;
	struct backend_event *ev;
	size_t nr_held;
	uint64_t id;

	id = post_chain(f->dev);
	attach_ok(f->dev, 0, 0);
	accept_ok(f->dev, id, take, 2);
	assert_event(f->dev, id, DCDFS_EVENT_DONE, 2);
	assert_extent(f->dev, chain[0], DCDFS_EXTENT_HELD, 0);
	assert_extent(f->dev, chain[2], DCDFS_EXTENT_HELD, 0);
	assert_no_extent(f->dev, chain[1]);
	assert_usage(f->dev, 0, REGION_SIZE - 6 * MiB, 6 * MiB, 0);
	assert_true(mem_is_zero(f->dev, chain[0]));
	assert_true(mem_is_zero(f->dev, chain[2]));
	assert_int_equal(mem_count(f->dev), 2);

	/* Get DC Extent List: held extents in arrival order. */
	assert_int_equal(simdev_host_extents(f->dev, &held, &nr_held), 0);
	assert_int_equal(nr_held, 2);
	assert_true(held[0].offset == chain[0].offset &&
		    held[1].offset == chain[2].offset && held[1].seq == 1);
	free(held);
	assert_int_equal(host_events(f->dev, true, &ev), 0);
	backend_events_free(ev, 0);

	/* The dropped capacity can be offered again. */
	offer(f->dev, 1, chain[1]);
	assert_conserved(f->dev);
}

static void assert_accept_refused(struct dcdfs_simdev *h, uint64_t id,
				  const struct dcdfs_extent *v, size_t nr,
				  int rc)
{
	struct dev_state before, after;
	int got;

	state_take(h, &before);
	got = simdev_host_accept(h, id, v, nr);
	save_refusal(got);
	if (got != rc)
		fail_msg("accept %" PRIu64 ": %d (%s), expected %d", id, got,
			 dcdfs_strerror(got), rc);
	state_take(h, &after);
	assert_state_equal(&before, &after, "accept");
}

static void test_chain_accept_errors(void **state)
{
	struct fixture *f = *state;
	struct dcdfs_extent stranger = ext(0, 20 * MiB, BLOCK);
	struct dcdfs_extent twins[] = { chain[0], chain[0] };
	struct dcdfs_extent other_region = chain[0];
	uint64_t id, other, rel;
	struct dcdfs_simdev *h1;

	id = post_chain(f->dev);
	other = offer(f->dev, 1, ext(0, 16 * MiB, BLOCK));
	attach_ok(f->dev, 0, 0);
	h1 = host_open(f, 1, 0);
	hold1(h1, 24 * MiB, BLOCK);
	rel = ask(f->dev, 1, &(struct dcdfs_extent){ .offset = 24 * MiB,
						     .length = BLOCK }, 1,
		  false);

	other_region.region = 1;
	assert_accept_refused(f->dev, id, &stranger, 1, -EINVAL);
	assert_refusal_mentions("extent 0x1400000:0x200000 is not offered");
	assert_accept_refused(f->dev, id, twins, 2, -EINVAL);
	assert_accept_refused(f->dev, id, &other_region, 1, -EINVAL);
	assert_accept_refused(f->dev, id, NULL, 1, -EINVAL);
	assert_accept_refused(f->dev, id + 1000, chain, 1, -ENOENT);
	/* Another host's add, a release: not this host's pending adds. */
	assert_accept_refused(f->dev, other, chain, 0, -ENOENT);
	assert_accept_refused(h1, rel, NULL, 0, -ENOENT);
	assert_event(f->dev, id, DCDFS_EVENT_NEW, 0);

	accept_ok(f->dev, id, chain, CHAIN_LEN);
	assert_event(f->dev, id, DCDFS_EVENT_DONE, CHAIN_LEN);
	assert_accept_refused(f->dev, id, chain, CHAIN_LEN, -ENOENT);
	assert_accept_refused(f->dev, id, NULL, 0, -ENOENT);
	assert_conserved(f->dev);
}

/* An empty answer drops the whole chain. */
static void test_chain_empty_accept(void **state)
{
	struct fixture *f = *state;
	uint64_t id;

	id = post_chain(f->dev);
	attach_ok(f->dev, 0, 0);
	accept_ok(f->dev, id, NULL, 0);
	assert_event(f->dev, id, DCDFS_EVENT_DONE, 0);
	for (size_t i = 0; i < CHAIN_LEN; i++)
		assert_no_extent(f->dev, chain[i]);
	assert_usage(f->dev, 0, REGION_SIZE, 0, 0);
	assert_int_equal(mem_count(f->dev), 0);
	assert_conserved(f->dev);
}

/* ------------------------------------------------------------------------ */
/* Tag groups                                                               */
/* ------------------------------------------------------------------------ */

/*
 * Host 0 holds tag A at 0-2M, 4M-6M (one chain) and 8M-10M (another),
 * untagged 12M-14M, tag B at 16M-18M, and is offered tag C at 20M-22M;
 * host 1 holds tag A at 24M-26M.
 */
static void tag_layout(struct fixture *f)
{
	struct dcdfs_extent a[] = { ext(0, 0, BLOCK), ext(0, 4 * MiB, BLOCK) };
	struct dcdfs_extent a2 = ext(0, 8 * MiB, BLOCK);
	struct dcdfs_extent b = ext(0, 16 * MiB, BLOCK);
	struct dcdfs_extent c = ext(0, 20 * MiB, BLOCK);
	struct dcdfs_fm_request req = {
		.tag = tag_c, .extents = &c, .nr_extents = 1,
	};
	struct dcdfs_simdev *h1;

	attach_ok(f->dev, 0, 0);
	hold(f->dev, tag_a, a, 2);
	hold(f->dev, tag_a, &a2, 1);
	hold1(f->dev, 12 * MiB, BLOCK);
	hold(f->dev, tag_b, &b, 1);
	add_ok(f->dev, &req);
	h1 = host_open(f, 1, 0);
	a2.offset = 24 * MiB;
	hold(h1, tag_a, &a2, 1);
	assert_conserved(f->dev);
}

/* A tag-based release covers every held extent of the tag, and only those. */
static void test_tag_release(void **state)
{
	struct fixture *f = *state;
	struct dcdfs_fm_request req = { .host = 0, .tag = tag_a };
	const struct dcdfs_extent_info *x;
	struct dcdfs_event_info info;
	struct backend_event *ev;
	struct ext_list l;
	uint64_t id;

	tag_layout(f);
	list_extents(f->dev, 0, &l);
	assert_true(l.v[0].extent.tagged &&
		    !memcmp(l.v[0].extent.tag, tag_a, DCDFS_TAG_SIZE));
	x = find_extent(&l, 0, 12 * MiB);
	assert_true(x && !x->extent.tagged);

	id = release_ok(f->dev, &req);
	info = event_get(f->dev, id);
	assert_int_equal(info.kind, DCDFS_EVENT_RELEASE);
	assert_int_equal(info.state, DCDFS_EVENT_NEW);
	assert_true(info.tagged && !memcmp(info.tag, tag_a, DCDFS_TAG_SIZE));
	assert_int_equal(info.nr_extents, 3);
	assert_extent(f->dev, ext(0, 0, BLOCK), DCDFS_EXTENT_RELEASE_PENDING,
		      id);
	assert_extent(f->dev, ext(0, 4 * MiB, BLOCK),
		      DCDFS_EXTENT_RELEASE_PENDING, id);
	assert_extent(f->dev, ext(0, 8 * MiB, BLOCK),
		      DCDFS_EXTENT_RELEASE_PENDING, id);
	assert_extent(f->dev, ext(0, 12 * MiB, BLOCK), DCDFS_EXTENT_HELD, 0);
	assert_extent(f->dev, ext(0, 24 * MiB, BLOCK), DCDFS_EXTENT_HELD, 0);

	/* The offer of tag C, then the release. */
	assert_int_equal(host_events(f->dev, false, &ev), 2);
	assert_true(ev[1].info.id == id && ev[1].nr_extents == 3);
	host_release_ok(f->dev, ev[1].extents, ev[1].nr_extents);
	backend_events_free(ev, 2);
	assert_event(f->dev, id, DCDFS_EVENT_DONE, 3);
	assert_usage(f->dev, 0, REGION_SIZE - 8 * MiB, 6 * MiB, BLOCK);
	assert_conserved(f->dev);
}

static const struct bad_request bad_tag_releases[] = {
	{ "a tag nobody holds", 0, 0, false, tag_c, { { 0 } }, 0, -ENOENT,
	  "host 0 holds no extent tagged c0ffee00-1234-4567-89ab-cdef01234567"
	  " in region 0" },
	{ "a tag held by another host only", 1, 0, false, tag_b, { { 0 } }, 0,
	  -ENOENT, "host 1 holds no extent tagged" },
	{ "a tag held in the other region", 0, 1, false, tag_a, { { 0 } }, 0,
	  -ENOENT, "in region 1" },
	{ "tag A, an untagged extent", 0, 0, false, tag_a,
	  { { .offset = 12 * MiB, .length = BLOCK } }, 1, -EINVAL,
	  "extent 0xc00000:0x200000 does not carry the tag" },
	{ "tag A, an extent of tag B", 0, 0, false, tag_a,
	  { { .offset = 16 * MiB, .length = BLOCK } }, 1, -EINVAL,
	  "extent 0x1000000:0x200000 does not carry the tag" },
	{ "tag A, tagged then untagged", 0, 0, false, tag_a,
	  { { .offset = 8 * MiB, .length = BLOCK },
	    { .offset = 12 * MiB, .length = BLOCK } }, 2, -EINVAL,
	  "does not carry the tag" },
	{ "forced, a tag nobody holds", 0, 0, true, tag_c, { { 0 } }, 0,
	  -ENOENT, "holds no extent tagged" },
};

static void test_tag_release_errors(void **state)
{
	struct fixture *f = *state;
	struct dcdfs_extent a = ext(0, 4 * MiB, BLOCK);
	struct dcdfs_fm_request req = {
		.tag = tag_a, .extents = &a, .nr_extents = 1,
	};
	uint64_t id;

	tag_layout(f);
	for (size_t i = 0;
	     i < sizeof(bad_tag_releases) / sizeof(bad_tag_releases[0]); i++)
		assert_request_refused(f->dev, &bad_tag_releases[i], false);

	/* Prescriptive with the right tag: just that extent. */
	id = release_ok(f->dev, &req);
	assert_int_equal(event_get(f->dev, id).nr_extents, 1);
	assert_extent(f->dev, a, DCDFS_EXTENT_RELEASE_PENDING, id);
	assert_extent(f->dev, ext(0, 0, BLOCK), DCDFS_EXTENT_HELD, 0);
	assert_conserved(f->dev);
}

/* ------------------------------------------------------------------------ */
/* Releases                                                                 */
/* ------------------------------------------------------------------------ */

static const struct bad_request bad_releases[] = {
	{ "starts inside an extent", 0, 0, false, NULL,
	  { { .offset = 2 * MiB, .length = 4 * MiB } }, 1, -ENOENT,
	  "range 0x200000:0x400000: no extent of host 0 starts at 0x200000" },
	{ "ends inside an extent", 0, 0, false, NULL,
	  { { .offset = 0, .length = BLOCK } }, 1, -EINVAL,
	  "range 0x0:0x200000 ends inside extent 0x0:0x400000" },
	{ "ends inside the second extent", 0, 0, false, NULL,
	  { { .offset = 0, .length = 5 * MiB } }, 1, -EINVAL,
	  "ends inside extent 0x400000:0x200000" },
	{ "runs on into free capacity", 0, 0, false, NULL,
	  { { .offset = 4 * MiB, .length = 6 * MiB } }, 1, -ENOENT,
	  "no extent of host 0 starts at 0x800000" },
	{ "an offered extent", 0, 0, false, NULL,
	  { { .offset = 10 * MiB, .length = BLOCK } }, 1, -ENOENT,
	  "extent 0xa00000:0x200000 is offered to, not held by, host 0" },
	{ "another host's extent", 0, 0, false, NULL,
	  { { .offset = 12 * MiB, .length = BLOCK } }, 1, -ENOENT,
	  "extent 0xc00000:0x200000 is held by host 1" },
	{ "host 0's extent, asked of host 1", 1, 0, false, NULL,
	  { { .offset = 0, .length = 4 * MiB } }, 1, -ENOENT,
	  "extent 0x0:0x400000 is held by host 0" },
	{ "free capacity", 0, 0, false, NULL,
	  { { .offset = 20 * MiB, .length = BLOCK } }, 1, -ENOENT,
	  "starts at 0x1400000" },
	{ "the other region", 0, 1, false, NULL,
	  { { .offset = 0, .length = 4 * MiB } }, 1, -ENOENT,
	  "no extent of host 0 starts at 0x0" },
	{ "one good range, one offered", 0, 0, false, NULL,
	  { { .offset = 0, .length = 4 * MiB },
	    { .offset = 10 * MiB, .length = BLOCK } }, 2, -ENOENT,
	  "is offered to, not held by" },
	{ "zero length", 0, 0, false, NULL, { { .offset = 0 } }, 1, -EINVAL,
	  "extent 0x0:0x0: zero length" },
	{ "past the region end", 0, 0, false, NULL,
	  { { .offset = 30 * MiB, .length = 4 * MiB } }, 1, -ERANGE,
	  "extent 0x1e00000:0x400000 lies outside" },
	{ "offset + length overflows", 0, 0, false, NULL,
	  { { .offset = UINT64_MAX - 4095, .length = 8192 } }, 1, -ERANGE,
	  "lies outside" },
	{ "overlapping ranges", 0, 0, false, NULL,
	  { { .offset = 0, .length = 4 * MiB },
	    { .offset = 2 * MiB, .length = 4 * MiB } }, 2, -EINVAL,
	  "of the request overlap" },
	{ "neither extents nor a tag", 0, 0, false, NULL, { { 0 } }, 0,
	  -EINVAL, "needs extents or a tag" },
	{ "host out of range", DCDFS_SIMDEV_MAX_HOST + 1, 0, false, NULL,
	  { { .offset = 0, .length = 4 * MiB } }, 1, -EINVAL,
	  "out of range" },
	{ "no such region", 0, NR_REGIONS, false, NULL,
	  { { .offset = 0, .length = 4 * MiB } }, 1, -EINVAL,
	  "does not exist" },
	{ "forced, starts inside an extent", 0, 0, true, NULL,
	  { { .offset = 2 * MiB, .length = 4 * MiB } }, 1, -ENOENT,
	  "starts at 0x200000" },
	{ "forced, ends inside an extent", 0, 0, true, NULL,
	  { { .offset = 0, .length = BLOCK } }, 1, -EINVAL, "ends inside" },
	{ "forced, an offered extent", 0, 0, true, NULL,
	  { { .offset = 10 * MiB, .length = BLOCK } }, 1, -ENOENT,
	  "offered to, not held by" },
	{ "forced, another host's extent", 0, 0, true, NULL,
	  { { .offset = 12 * MiB, .length = BLOCK } }, 1, -ENOENT,
	  "held by host 1" },
};

/*
 * Region 0: host 0 holds 0-4M (one extent), 4M-6M and 6M-8M, and is
 * offered 10M-12M; host 1 holds 12M-14M.
 */
static void release_layout(struct fixture *f)
{
	struct dcdfs_simdev *h1;

	attach_ok(f->dev, 0, 0);
	hold1(f->dev, 0, 4 * MiB);
	hold1(f->dev, 4 * MiB, BLOCK);
	hold1(f->dev, 6 * MiB, BLOCK);
	offer(f->dev, 0, ext(0, 10 * MiB, BLOCK));
	h1 = host_open(f, 1, 0);
	hold1(h1, 12 * MiB, BLOCK);
	assert_conserved(f->dev);
}

static void test_release_rules(void **state)
{
	struct fixture *f = *state;
	struct dcdfs_extent bc = ext(0, 4 * MiB, 4 * MiB);
	struct dcdfs_fm_request req = { .nr_extents = 1 };
	struct dcdfs_event_info info;
	uint64_t id;

	release_layout(f);
	for (size_t i = 0; i < sizeof(bad_releases) / sizeof(bad_releases[0]);
	     i++)
		assert_request_refused(f->dev, &bad_releases[i], false);
	assert_int_equal(dcdfs_simdev_fm_release(f->dev, &req, NULL),
			 -EINVAL);
	assert_int_equal(dcdfs_simdev_fm_release(f->dev, NULL, NULL),
			 -EINVAL);

	/* One range may cover several whole extents. */
	id = ask(f->dev, 0, &bc, 1, false);
	info = event_get(f->dev, id);
	assert_int_equal(info.kind, DCDFS_EVENT_RELEASE);
	assert_int_equal(info.state, DCDFS_EVENT_NEW);
	assert_true(info.nr_extents == 2 && info.nr_done == 0 && !info.tagged);
	assert_extent(f->dev, ext(0, 4 * MiB, BLOCK),
		      DCDFS_EXTENT_RELEASE_PENDING, id);
	assert_extent(f->dev, ext(0, 6 * MiB, BLOCK),
		      DCDFS_EXTENT_RELEASE_PENDING, id);
	assert_extent(f->dev, ext(0, 0, 4 * MiB), DCDFS_EXTENT_HELD, 0);
	assert_conserved(f->dev);
}

/* Refused: REFUSED and release-pending until the host lets go. */
static void test_release_refused(void **state)
{
	struct fixture *f = *state;
	struct dcdfs_extent v[] = { ext(0, 0, BLOCK), ext(0, 2 * MiB, BLOCK) };
	struct dcdfs_extent range = ext(0, 0, 4 * MiB);
	struct dcdfs_event_info info;
	struct backend_event *ev;
	uint64_t id;

	attach_ok(f->dev, 0, 0);
	hold(f->dev, NULL, v, 2);
	id = ask(f->dev, 0, &range, 1, false);
	assert_event(f->dev, id, DCDFS_EVENT_NEW, 0);
	assert_int_equal(host_events(f->dev, false, &ev), 1);
	assert_true(ev[0].info.kind == DCDFS_EVENT_RELEASE &&
		    ev[0].nr_extents == 2 &&
		    ev[0].extents[1].offset == 2 * MiB);
	backend_events_free(ev, 1);

	assert_int_equal(simdev_host_refuse(f->dev, id), 0);
	assert_event(f->dev, id, DCDFS_EVENT_REFUSED, 0);
	assert_int_equal(dcdfs_simdev_wait_event(f->dev, id, 0, &info), 0);
	assert_int_equal(info.state, DCDFS_EVENT_REFUSED);
	assert_extent(f->dev, v[0], DCDFS_EXTENT_RELEASE_PENDING, id);
	assert_extent(f->dev, v[1], DCDFS_EXTENT_RELEASE_PENDING, id);
	assert_usage(f->dev, 0, REGION_SIZE - 4 * MiB, 4 * MiB, 0);
	assert_int_equal(host_events(f->dev, false, &ev), 0);
	backend_events_free(ev, 0);
	assert_int_equal(host_events(f->dev, true, &ev), 1);
	assert_true(ev[0].info.state == DCDFS_EVENT_REFUSED);
	backend_events_free(ev, 1);
	assert_conserved(f->dev);

	/* The host lets go of one, then of the other. */
	host_release_ok(f->dev, &v[0], 1);
	assert_event(f->dev, id, DCDFS_EVENT_REFUSED, 1);
	assert_no_extent(f->dev, v[0]);
	assert_extent(f->dev, v[1], DCDFS_EXTENT_RELEASE_PENDING, id);
	host_release_ok(f->dev, &v[1], 1);
	assert_event(f->dev, id, DCDFS_EVENT_DONE, 2);
	assert_usage(f->dev, 0, REGION_SIZE, 0, 0);
	assert_int_equal(simdev_host_refuse(f->dev, id), -ENOENT);
	assert_int_equal(host_events(f->dev, true, &ev), 0);
	backend_events_free(ev, 0);
	assert_conserved(f->dev);
}

/* A host release completes NEW events too, every one asking for it. */
static void test_release_completed_by_host(void **state)
{
	struct fixture *f = *state;
	struct dcdfs_extent v[] = { ext(0, 0, BLOCK), ext(0, 2 * MiB, BLOCK) };
	struct dcdfs_extent all = ext(0, 0, 4 * MiB);
	uint64_t id1, id2, id3;
	struct event_list l;

	attach_ok(f->dev, 0, 0);
	hold1(f->dev, 0, BLOCK);
	hold1(f->dev, 2 * MiB, BLOCK);
	id1 = ask(f->dev, 0, &v[0], 1, false);
	id2 = ask(f->dev, 0, &v[0], 1, false);	/* the FM asks again */
	id3 = ask(f->dev, 0, &all, 1, false);
	assert_true(id1 < id2 && id2 < id3);
	/* The extent list names the oldest release. */
	assert_extent(f->dev, v[0], DCDFS_EXTENT_RELEASE_PENDING, id1);
	assert_extent(f->dev, v[1], DCDFS_EXTENT_RELEASE_PENDING, id3);

	host_release_ok(f->dev, &v[0], 1);
	assert_event(f->dev, id1, DCDFS_EVENT_DONE, 1);
	assert_event(f->dev, id2, DCDFS_EVENT_DONE, 1);
	assert_event(f->dev, id3, DCDFS_EVENT_NEW, 1);
	list_events(f->dev, -1, &l);
	assert_true(l.nr == 1 && l.v[0].id == id3);
	host_release_ok(f->dev, &v[1], 1);
	assert_event(f->dev, id3, DCDFS_EVENT_DONE, 2);
	list_events(f->dev, -1, &l);
	assert_int_equal(l.nr, 0);
	assert_conserved(f->dev);
}

static void assert_host_release_refused(struct dcdfs_simdev *h,
					const struct dcdfs_extent *v,
					size_t nr, int rc)
{
	struct dev_state before, after;
	int got;

	state_take(h, &before);
	got = simdev_host_release(h, v, nr);
	save_refusal(got);
	if (got != rc)
		fail_msg("host release: %d (%s), expected %d", got,
			 dcdfs_strerror(got), rc);
	state_take(h, &after);
	assert_state_equal(&before, &after, "host release");
}

/* A host release is all or none: every extent must be held, whole. */
static void test_host_release_rules(void **state)
{
	struct fixture *f = *state;
	struct dcdfs_extent a = ext(0, 0, BLOCK), b = ext(0, 2 * MiB, 4 * MiB);
	struct dcdfs_extent mixed[] = { a, ext(0, 16 * MiB, BLOCK) };
	struct dcdfs_extent dup[] = { a, b };
	struct dcdfs_simdev *h1;

	attach_ok(f->dev, 0, 0);
	hold1(f->dev, a.offset, a.length);
	hold1(f->dev, b.offset, b.length);
	offer(f->dev, 0, ext(0, 8 * MiB, BLOCK));
	h1 = host_open(f, 1, 0);
	hold1(h1, 12 * MiB, BLOCK);

	assert_host_release_refused(f->dev, mixed, 2, -ENOENT);
	assert_refusal_mentions("extent 0x1000000:0x200000 is not held by"
				" host 0");
	assert_host_release_refused(f->dev, &(struct dcdfs_extent){
		.offset = 8 * MiB, .length = BLOCK }, 1, -ENOENT);
	assert_host_release_refused(f->dev, &(struct dcdfs_extent){
		.offset = 12 * MiB, .length = BLOCK }, 1, -ENOENT);
	assert_host_release_refused(h1, &a, 1, -ENOENT);
	assert_host_release_refused(f->dev, &(struct dcdfs_extent){
		.offset = 2 * MiB, .length = BLOCK }, 1, -ENOENT);
	assert_host_release_refused(f->dev, &(struct dcdfs_extent){
		.offset = 4 * MiB, .length = BLOCK }, 1, -ENOENT);
	assert_host_release_refused(f->dev, &(struct dcdfs_extent){
		.region = 1, .offset = 0, .length = BLOCK }, 1, -ENOENT);
	assert_host_release_refused(f->dev, &a, 0, -EINVAL);
	assert_host_release_refused(f->dev, NULL, 1, -EINVAL);

	host_release_ok(f->dev, dup, 2);
	assert_usage(f->dev, 0, REGION_SIZE - 4 * MiB, BLOCK, BLOCK);
	assert_host_release_refused(f->dev, &a, 1, -ENOENT);
	assert_conserved(f->dev);
}

/* The host gives back whole allocations on its own: no event at all. */
static void test_host_release_own(void **state)
{
	struct fixture *f = *state;
	struct dcdfs_extent group[] = {
		ext(0, 4 * MiB, BLOCK), ext(0, 8 * MiB, BLOCK),
	};
	struct dcdfs_extent u;
	struct dcdfs_extent *held;
	struct event_list l;
	size_t nr_held;
	uint64_t last;

	attach_ok(f->dev, 0, 0);
	u = hold1(f->dev, 0, BLOCK);
	last = hold(f->dev, tag_a, group, 2);
	assert_true(mem_pattern(f->dev, u, 1, true));
	assert_int_equal(mem_count(f->dev), 3);

	host_release_ok(f->dev, &u, 1);
	assert_usage(f->dev, 0, REGION_SIZE - 4 * MiB, 4 * MiB, 0);
	host_release_ok(f->dev, group, 2);
	assert_usage(f->dev, 0, REGION_SIZE, 0, 0);
	assert_int_equal(mem_count(f->dev), 0);
	list_events(f->dev, -1, &l);
	assert_int_equal(l.nr, 0);
	assert_int_equal(dcdfs_simdev_get_event(f->dev, last + 1,
						&l.v[0]), -ENOENT);
	assert_int_equal(simdev_host_extents(f->dev, &held, &nr_held), 0);
	assert_int_equal(nr_held, 0);
	free(held);
	assert_conserved(f->dev);
}

/* ------------------------------------------------------------------------ */
/* Forced releases                                                          */
/* ------------------------------------------------------------------------ */

static int child_touch(struct fixture *f, int in, int out)
{
	(void) in;
	(void) out;
	(void) signal(SIGBUS, SIG_DFL);
	/* Dies here with SIGBUS: the memory is gone. */
	return f->map[0] == 0x5a ? 10 : 11;
}

/* The capacity is free at once and the memory revoked; then the host acks. */
static void test_forced_release(void **state)
{
	struct fixture *f = *state;
	struct dcdfs_extent e = ext(0, 6 * MiB, BLOCK);
	struct backend_event *ev;
	struct stat st;
	uint64_t id;
	int fd, status;

	attach_ok(f->dev, 0, 0);
	hold1(f->dev, e.offset, e.length);
	fd = mem_open_ok(f->dev, e);
	f->map = mmap(NULL, e.length, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		      0);
	assert_true(f->map != MAP_FAILED);
	f->map[0] = 0x5a;

	id = ask(f->dev, 0, &e, 1, true);
	assert_usage(f->dev, 0, REGION_SIZE, 0, 0);
	assert_no_extent(f->dev, e);
	assert_int_equal(mem_count(f->dev), 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, 0);
	child_start(f, child_touch);
	status = child_wait(f);
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGBUS)
		fail_msg("the mapping still works: status 0x%x", status);
	assert_int_equal(munmap((void *)f->map, e.length), 0);
	assert_int_equal(close(fd), 0);

	assert_event(f->dev, id, DCDFS_EVENT_NEW, 0);
	assert_int_equal(event_get(f->dev, id).kind,
			 DCDFS_EVENT_FORCED_RELEASE);
	assert_int_equal(host_events(f->dev, false, &ev), 1);
	assert_true(ev[0].info.kind == DCDFS_EVENT_FORCED_RELEASE &&
		    ev[0].nr_extents == 1 && ev[0].extents[0].offset ==
		    e.offset && ev[0].extents[0].length == e.length);
	backend_events_free(ev, 1);
	assert_conserved(f->dev);

	assert_int_equal(simdev_host_refuse(f->dev, id), -ENOENT);
	assert_int_equal(simdev_host_release(f->dev, &e, 1), -ENOENT);
	assert_int_equal(simdev_host_ack(f->dev, id), 0);
	assert_event(f->dev, id, DCDFS_EVENT_DONE, 1);
	assert_int_equal(simdev_host_ack(f->dev, id), -ENOENT);
	assert_conserved(f->dev);
}

/* Forced by tag; forced over a refused release, which it completes. */
static void test_forced_release_more(void **state)
{
	struct fixture *f = *state;
	struct dcdfs_extent group[] = {
		ext(0, 4 * MiB, BLOCK), ext(0, 8 * MiB, BLOCK),
	};
	struct dcdfs_extent e = ext(0, 0, BLOCK);
	struct dcdfs_fm_request req = {
		.host = 0, .tag = tag_a, .forced = true,
	};
	uint64_t refused, forced, id;

	attach_ok(f->dev, 0, 0);
	hold1(f->dev, e.offset, e.length);
	hold(f->dev, tag_a, group, 2);

	refused = ask(f->dev, 0, &e, 1, false);
	assert_int_equal(simdev_host_refuse(f->dev, refused), 0);
	assert_int_equal(simdev_host_ack(f->dev, refused), -ENOENT);
	forced = ask(f->dev, 0, &e, 1, true);
	assert_event(f->dev, refused, DCDFS_EVENT_DONE, 1);
	assert_event(f->dev, forced, DCDFS_EVENT_NEW, 0);
	assert_conserved(f->dev);

	id = release_ok(f->dev, &req);
	assert_int_equal(event_get(f->dev, id).nr_extents, 2);
	assert_true(event_get(f->dev, id).tagged);
	assert_usage(f->dev, 0, REGION_SIZE, 0, 0);
	assert_int_equal(mem_count(f->dev), 0);
	assert_conserved(f->dev);
	assert_int_equal(simdev_host_ack(f->dev, id), 0);
	assert_event(f->dev, id, DCDFS_EVENT_DONE, 2);
	assert_int_equal(simdev_host_ack(f->dev, forced), 0);
	assert_conserved(f->dev);
}

/* ------------------------------------------------------------------------ */
/* Memory                                                                   */
/* ------------------------------------------------------------------------ */

/* Data survives a reopen; reused capacity reads zero. */
static void test_data_survives(void **state)
{
	struct fixture *f = *state;
	struct dcdfs_extent e = ext(0, 4 * MiB, 4 * MiB);
	struct dcdfs_extent half = ext(0, 4 * MiB, BLOCK);
	struct dcdfs_extent *held;
	size_t nr_held;

	attach_ok(f->dev, 0, 0);
	hold1(f->dev, e.offset, e.length);
	assert_true(mem_is_zero(f->dev, e));
	assert_true(mem_pattern(f->dev, e, 0x5a, true));

	dev_close(f);
	dev_reopen(f);
	assert_true(mem_pattern(f->dev, e, 0x5a, false));
	attach_ok(f->dev, 0, 0);
	assert_int_equal(simdev_host_extents(f->dev, &held, &nr_held), 0);
	assert_true(nr_held == 1 && held[0].offset == e.offset &&
		    held[0].length == e.length);
	free(held);
	assert_true(mem_pattern(f->dev, e, 0x5a, false));

	/* Released and offered again: zero, whole or in part. */
	host_release_ok(f->dev, &e, 1);
	hold1(f->dev, e.offset, e.length);
	assert_true(mem_is_zero(f->dev, e));
	assert_true(mem_pattern(f->dev, e, 0x33, true));
	host_release_ok(f->dev, &e, 1);
	hold1(f->dev, half.offset, half.length);
	assert_true(mem_is_zero(f->dev, half));
	assert_conserved(f->dev);
}

/* ------------------------------------------------------------------------ */
/* Conservation                                                             */
/* ------------------------------------------------------------------------ */

static void step_accept(struct fixture *f, struct dcdfs_simdev *h,
			uint64_t id, const struct dcdfs_extent *v, size_t nr)
{
	accept_ok(h, id, v, nr);
	assert_conserved(f->dev);
}

static void step_release(struct fixture *f, struct dcdfs_simdev *h,
			 const struct dcdfs_extent *v, size_t nr)
{
	host_release_ok(h, v, nr);
	assert_conserved(f->dev);
}

static uint64_t step_ask(struct fixture *f, unsigned int host,
			 struct dcdfs_extent e, bool forced)
{
	uint64_t id = ask(f->dev, host, &e, 1, forced);

	assert_conserved(f->dev);
	return id;
}

static void test_conservation(void **state)
{
	struct fixture *f = *state;
	struct dcdfs_simdev *h0 = f->dev, *h1, *h2;
	struct dcdfs_extent c[] = {
		ext(0, 0, BLOCK), ext(0, 2 * MiB, BLOCK),
		ext(0, 8 * MiB, 4 * MiB),
	};
	struct dcdfs_extent keep[] = { c[0], c[2] };
	struct dcdfs_extent t = ext(0, 4 * MiB, BLOCK), r1 = ext(1, 0, 8 * MiB);
	struct dcdfs_fm_request req = {
		.host = 0, .extents = c, .nr_extents = 3,
	};
	struct dcdfs_fm_request treq = {
		.host = 1, .tag = tag_a, .extents = &t, .nr_extents = 1,
	};
	uint64_t id, ev1, ev2;

	attach_ok(h0, 0, 0);
	h1 = host_open(f, 1, 0);
	h2 = host_open(f, 0, 1);
	assert_conserved(f->dev);

	id = add_ok(f->dev, &req);
	assert_conserved(f->dev);
	step_accept(f, h0, id, keep, 2);
	id = add_ok(f->dev, &treq);
	assert_conserved(f->dev);
	step_accept(f, h1, id, &t, 1);
	ev2 = offer(f->dev, 0, r1);
	assert_conserved(f->dev);
	ev1 = step_ask(f, 0, c[2], false);
	assert_int_equal(simdev_host_refuse(h0, ev1), 0);
	assert_conserved(f->dev);
	treq.extents = NULL;
	treq.nr_extents = 0;
	treq.forced = true;
	id = release_ok(f->dev, &treq);
	assert_conserved(f->dev);
	assert_int_equal(simdev_host_ack(h1, id), 0);
	assert_conserved(f->dev);
	step_accept(f, h2, ev2, NULL, 0);
	step_release(f, h0, &c[2], 1);
	assert_event(f->dev, ev1, DCDFS_EVENT_DONE, 1);
	step_release(f, h0, &c[0], 1);
	id = offer(f->dev, 0, ext(1, 0, BLOCK));
	step_accept(f, h2, id, &(struct dcdfs_extent){ .region = 1,
						       .length = BLOCK }, 1);
	id = step_ask(f, 0, ext(1, 0, BLOCK), true);
	assert_int_equal(simdev_host_ack(h2, id), 0);
	assert_conserved(f->dev);
	assert_usage(f->dev, 0, REGION_SIZE, 0, 0);
	assert_usage(f->dev, 1, REGION_SIZE, 0, 0);
}

/* ------------------------------------------------------------------------ */
/* Attaching                                                                */
/* ------------------------------------------------------------------------ */

static void test_attach_rules(void **state)
{
	struct fixture *f = *state;
	struct dcdfs_simdev *h = handle_open(f);
	struct backend_event *ev;
	struct dcdfs_extent *v;
	size_t nr;

	/* Host commands need an attached host. */
	assert_int_equal(simdev_host_events(h, true, &ev, &nr), -EINVAL);
	assert_int_equal(simdev_host_extents(h, &v, &nr), -EINVAL);
	assert_int_equal(simdev_host_accept(h, 1, NULL, 0), -EINVAL);
	assert_int_equal(simdev_host_refuse(h, 1), -EINVAL);
	assert_int_equal(simdev_host_ack(h, 1), -EINVAL);
	assert_int_equal(simdev_host_release(h, chain, 1), -EINVAL);

	assert_int_equal(simdev_host_attach(h, DCDFS_SIMDEV_MAX_HOST + 1, 0),
			 -EINVAL);
	assert_int_equal(simdev_host_attach(h, 0, NR_REGIONS), -EINVAL);
	assert_detail(-EINVAL, "region 2 does not exist");
	attach_ok(h, 0, 0);
	assert_int_equal(simdev_host_attach(h, 0, 0), -EINVAL);
	assert_int_equal(simdev_host_attach(h, 1, 0), -EINVAL);

	/* Other hosts, or the same host on another region, are fine. */
	host_open(f, 1, 0);
	host_open(f, 0, 1);
	host_open(f, DCDFS_SIMDEV_MAX_HOST, 1);

	assert_int_equal(dcdfs_simdev_destroy(f->ctx, f->path), -EBUSY);
	assert_detail(-EBUSY, "in use by a host");
	assert_conserved(f->dev);
	for (int i = 0; i < MAX_HANDLES; i++)
		handle_close(f, f->extra[i]);
	dev_close(f);
	assert_int_equal(dcdfs_simdev_destroy(f->ctx, f->path), 0);
	assert_false(exists(f->path));
}

/* Hold host 0 on region 0 until the parent says so. */
static int child_hold_host(struct fixture *f, int in, int out)
{
	struct dcdfs_simdev *dev;
	uint64_t v;
	int rc;

	rc = dcdfs_simdev_open(f->ctx, f->path, &dev);
	if (rc)
		return 1;
	rc = simdev_host_attach(dev, 0, 0);
	if (send_u64(out, (uint64_t)(int64_t)rc) < 0)
		return 2;
	(void) recv_u64(in, &v, CHILD_TIMEOUT_MS);
	dcdfs_simdev_close(dev);
	return 0;
}

static void test_attach_other_process(void **state)
{
	struct fixture *f = *state;
	struct dcdfs_simdev *h;
	uint64_t rc;

	dev_close(f);
	child_start(f, child_hold_host);
	assert_int_equal(recv_u64(f->from_child, &rc, CHILD_TIMEOUT_MS), 0);
	assert_int_equal((int64_t)rc, 0);

	dev_reopen(f);
	assert_int_equal(simdev_host_attach(f->dev, 0, 0), -EBUSY);
	assert_detail(-EBUSY, "already in use by another process");
	host_open(f, 1, 0);
	host_open(f, 0, 1);
	assert_int_equal(dcdfs_simdev_destroy(f->ctx, f->path), -EBUSY);

	/* Once the other process is gone, host 0 is free. */
	assert_int_equal(send_u64(f->to_child, 1), 0);
	assert_child_ok(f);
	h = handle_open(f);
	attach_ok(h, 0, 0);
	assert_conserved(f->dev);
}

/*
 * Regression: core/simdev-host.c, simdev_host_attach() takes the shared
 * device lock (dev->dev_lock_fd) before the host lock, and when the host
 * lock is busy (-EBUSY), or quick_check fails, returns without closing it.
 * The handle is not attached, yet it keeps lock/device locked: destroy
 * fails with -EBUSY "in use by a host" while no host is attached, and each
 * retry of the attach opens (and leaks) another lock fd.  A failed attach
 * should release what it took.
 */
static void test_attach_failure_keeps_no_lock_regression(void **state)
{
	struct fixture *f = *state;
	struct dcdfs_simdev *h1, *h2;
	int rc;

	h1 = host_open(f, 0, 0);
	h2 = handle_open(f);
	assert_int_equal(simdev_host_attach(h2, 0, 0), -EBUSY);
	handle_close(f, h1);
	dev_close(f);
	/* h2 is open but not attached: nothing should keep destroy away. */
	rc = dcdfs_simdev_destroy(f->ctx, f->path);
	if (rc)
		fail_msg("destroy after a failed attach: %s",
			 dcdfs_strerror(rc));
	handle_close(f, h2);
}

/* ------------------------------------------------------------------------ */
/* Waiting and waking                                                       */
/* ------------------------------------------------------------------------ */

static void test_wait_timeout(void **state)
{
	struct fixture *f = *state;
	struct dcdfs_event_info info;
	int64_t t0, dt;
	uint64_t id;

	id = offer(f->dev, 0, ext(0, 0, BLOCK));
	t0 = now_us();
	assert_int_equal(dcdfs_simdev_wait_event(f->dev, id, 150, &info),
			 -ETIMEDOUT);
	dt = now_us() - t0;
	assert_true(dt >= 140000 && dt < 1000000);
	assert_true(info.id == id && info.state == DCDFS_EVENT_NEW);
	assert_int_equal(dcdfs_simdev_wait_event(f->dev, id, 0, &info),
			 -ETIMEDOUT);
	assert_int_equal(dcdfs_simdev_wait_event(f->dev, id + 1, 1000, &info),
			 -ENOENT);

	/* An answered event returns at once. */
	attach_ok(f->dev, 0, 0);
	accept_ok(f->dev, id, NULL, 0);
	t0 = now_us();
	assert_int_equal(dcdfs_simdev_wait_event(f->dev, id, 5000, &info), 0);
	assert_true(now_us() - t0 < 100000);
	assert_true(info.state == DCDFS_EVENT_DONE && info.nr_done == 0);
}

/* Accept event (read from the pipe) as host 0, report when it was done. */
static int child_accept(struct fixture *f, int in, int out)
{
	struct dcdfs_extent e = ext(0, 0, BLOCK);
	struct dcdfs_simdev *dev;
	uint64_t id;

	if (recv_u64(in, &id, CHILD_TIMEOUT_MS) < 0)
		return 1;
	if (dcdfs_simdev_open(f->ctx, f->path, &dev) < 0)
		return 2;
	if (simdev_host_attach(dev, 0, 0) < 0)
		return 3;
	usleep(50000);	/* the parent is waiting by now */
	if (simdev_host_accept(dev, id, &e, 1) < 0)
		return 4;
	if (send_u64(out, (uint64_t)now_us()) < 0)
		return 5;
	dcdfs_simdev_close(dev);
	return 0;
}

static void test_wait_answered(void **state)
{
	struct fixture *f = *state;
	struct dcdfs_event_info info;
	int64_t t0, t1;
	uint64_t id, answered;

	dev_close(f);
	child_start(f, child_accept);
	dev_reopen(f);
	id = offer(f->dev, 0, ext(0, 0, BLOCK));
	t0 = now_us();
	assert_int_equal(send_u64(f->to_child, id), 0);
	assert_int_equal(dcdfs_simdev_wait_event(f->dev, id, 10000, &info),
			 0);
	t1 = now_us();
	assert_int_equal(recv_u64(f->from_child, &answered, CHILD_TIMEOUT_MS),
			 0);
	assert_child_ok(f);
	assert_true(info.state == DCDFS_EVENT_DONE && info.nr_done == 1);
	assert_true(t1 - t0 >= 50000);
	/* Woken by the doorbell, not by the once-a-second look. */
	if (t1 - (int64_t)answered > 200000)
		fail_msg("woken %" PRId64 " us after the answer",
			 t1 - (int64_t)answered);
	assert_conserved(f->dev);
}

/* On the go byte, post an add for host 0; report when it started. */
static int child_post_add(struct fixture *f, int in, int out)
{
	struct dcdfs_extent e = ext(0, 0, BLOCK);
	struct dcdfs_fm_request req = { .extents = &e, .nr_extents = 1 };
	struct dcdfs_simdev *dev;
	uint64_t go, id;
	int64_t t0;

	if (recv_u64(in, &go, CHILD_TIMEOUT_MS) < 0)
		return 1;
	if (dcdfs_simdev_open(f->ctx, f->path, &dev) < 0)
		return 2;
	t0 = now_us();
	if (dcdfs_simdev_fm_add(dev, &req, &id) < 0)
		return 3;
	if (send_u64(out, (uint64_t)t0) < 0 || send_u64(out, id) < 0)
		return 4;
	dcdfs_simdev_close(dev);
	return 0;
}

static void test_event_fd_wakeup(void **state)
{
	struct fixture *f = *state;
	struct pollfd pfd = { .events = POLLIN };
	struct backend_event *ev;
	uint64_t posted, id;
	int64_t woken;

	dev_close(f);
	child_start(f, child_post_add);
	dev_reopen(f);
	attach_ok(f->dev, 0, 0);
	pfd.fd = simdev_host_event_fd(f->dev);
	assert_true(pfd.fd >= 0);
	assert_int_equal(poll(&pfd, 1, 0), 0);

	assert_int_equal(send_u64(f->to_child, 1), 0);
	assert_int_equal(poll(&pfd, 1, CHILD_TIMEOUT_MS), 1);
	woken = now_us();
	assert_int_equal(recv_u64(f->from_child, &posted, CHILD_TIMEOUT_MS),
			 0);
	assert_int_equal(recv_u64(f->from_child, &id, CHILD_TIMEOUT_MS), 0);
	assert_child_ok(f);
	/* From the start of the add (commit included) to the wake-up. */
	if (woken - (int64_t)posted > 50000)
		fail_msg("woken %" PRId64 " us after the add",
			 woken - (int64_t)posted);

	simdev_host_event_drain(f->dev);
	assert_int_equal(poll(&pfd, 1, 0), 0);
	assert_int_equal(host_events(f->dev, false, &ev), 1);
	assert_true(ev[0].info.id == id);
	backend_events_free(ev, 1);

	/* Another host's event does not ring this host's bell. */
	offer(f->dev, 1, ext(0, 8 * MiB, BLOCK));
	assert_int_equal(poll(&pfd, 1, 20), 0);
	offer(f->dev, 0, ext(0, 4 * MiB, BLOCK));
	assert_int_equal(poll(&pfd, 1, 1000), 1);
}

/* Answered events are forgotten after 1024 more; pending ones never. */
static void test_event_history(void **state)
{
	struct fixture *f = *state;
	struct dcdfs_event_info info;
	uint64_t pending, first, id = 0;
	const unsigned int n = SIMDEV_EVENT_HISTORY + 100;

	pending = offer(f->dev, 1, ext(1, 0, BLOCK));
	attach_ok(f->dev, 0, 0);
	first = offer(f->dev, 0, ext(0, 0, BLOCK));
	accept_ok(f->dev, first, NULL, 0);
	for (unsigned int i = 1; i < n; i++) {
		id = offer(f->dev, 0, ext(0, 0, BLOCK));
		accept_ok(f->dev, id, NULL, 0);
	}
	assert_true(id == first + n - 1);

	assert_event(f->dev, pending, DCDFS_EVENT_NEW, 0);
	assert_int_equal(dcdfs_simdev_get_event(f->dev, first, &info),
			 -ENOENT);
	assert_int_equal(dcdfs_simdev_get_event(f->dev,
						id - SIMDEV_EVENT_HISTORY,
						&info), -ENOENT);
	assert_event(f->dev, id - SIMDEV_EVENT_HISTORY + 1, DCDFS_EVENT_DONE,
		     0);
	assert_event(f->dev, id, DCDFS_EVENT_DONE, 0);
	assert_int_equal(dcdfs_simdev_wait_event(f->dev, first, 0, &info),
			 -ENOENT);
	/* Numbers are never reused. */
	assert_true(offer(f->dev, 0, ext(0, 0, BLOCK)) == id + 1);
	assert_conserved(f->dev);
}

#define TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_create_layout),
		TEST(test_create_defaults),
		TEST(test_create_bad_geometry),
		TEST(test_create_numa),
		TEST(test_create_exists),
		TEST(test_create_bad_memory),
		TEST(test_create_external_memory),
		TEST(test_create_trailing_slash_regression),
		TEST(test_destroy_memory_prefix_regression),
		TEST(test_open_missing),
		TEST(test_open_no_database),
		TEST(test_open_foreign_database),
		TEST(test_open_garbage),
		TEST(test_open_truncated),
		TEST(test_open_versions),
		TEST(test_open_missing_schema_regression),
		TEST(test_add_rules),
		TEST(test_add_null_tag_regression),
		TEST(test_chain_pending),
		TEST(test_chain_accept_subset),
		TEST(test_chain_accept_errors),
		TEST(test_chain_empty_accept),
		TEST(test_tag_release),
		TEST(test_tag_release_errors),
		TEST(test_release_rules),
		TEST(test_release_refused),
		TEST(test_release_completed_by_host),
		TEST(test_host_release_rules),
		TEST(test_host_release_own),
		TEST(test_forced_release),
		TEST(test_forced_release_more),
		TEST(test_data_survives),
		TEST(test_conservation),
		TEST(test_attach_rules),
		TEST(test_attach_other_process),
		TEST(test_attach_failure_keeps_no_lock_regression),
		TEST(test_wait_timeout),
		TEST(test_wait_answered),
		TEST(test_event_fd_wakeup),
		TEST(test_event_history),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
