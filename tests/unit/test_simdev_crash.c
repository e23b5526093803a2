// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Crash test for the simulated Dynamic Capacity Device (core/simdev*.c).
 *
 * What is tested: that every change of the device survives kill -9 at any
 * instant.  Each round forks a child that plays fabric manager and four
 * hosts (hosts 0 and 1 on regions 0 and 1) on one shared device, doing a
 * random sequence of adds (tagged and untagged, some refused), releases
 * (prescriptive, tag-based, some forced), accepts of random subsets,
 * refusals, acknowledgements, host releases and re-attachments, and kills
 * it with SIGKILL after a random delay of 0-30 ms (in one round in four
 * before it has even finished opening the device).  The parent then opens
 * the device and checks that dcdfs_simdev_check() passes, that
 * free + held + pending equals the region size for every region (and
 * agrees with the extent list), and that every held extent's memory file
 * exists with the extent's size.  At the end the device is drained: every
 * pending event is answered and everything released, and all capacity must
 * be free again.
 *
 * The random sequence comes from a seeded PRNG: the seed is printed at the
 * start and in every failure; DCDFS_TEST_SEED=N replays it (the kill times
 * still vary).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <dcdfs/libdcdfs.h>

#include "simdev.h"

#define MiB (1ULL << 20)
#define BLOCK (2 * MiB)
#define NR_REGIONS 2
#define BLOCKS_PER_REGION 16
#define REGION_SIZE (BLOCKS_PER_REGION * BLOCK)
/* Handle i is host i & 1 on region i >> 1. */
#define NR_HANDLES 4
#define ROUNDS 60
#define MAX_DELAY_US 30000
#define MAX_OPS 100000
#define READY_TIMEOUT_MS 10000

static const uint8_t tag_a[DCDFS_TAG_SIZE] = {
	0x6a, 0x1d, 0x3c, 0x5e, 0x8f, 0x0b, 0x4b, 0x7a,
	0x9f, 0x51, 0x0c, 0x2e, 0x8d, 0x4a, 0x7b, 0x10,
};
static const uint8_t tag_b[DCDFS_TAG_SIZE] = {
	0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x47, 0x88,
	0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01,
};
static const uint8_t *const tags[] = { NULL, tag_a, tag_b };

/* splitmix64: small, fast and the same everywhere. */
struct rng {
	uint64_t s;
};

static uint64_t rng_next(struct rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static unsigned int rng_below(struct rng *r, unsigned int n)
{
	return (unsigned int)(rng_next(r) % n);
}

static bool rng_chance(struct rng *r, unsigned int percent)
{
	return rng_below(r, 100) < percent;
}

struct fixture {
	struct dcdfs_ctx *ctx;
	char dir[PATH_MAX];		/* private temporary directory */
	char path[PATH_MAX];		/* the device: dir/dev */
	uint64_t seed;
	struct rng rng;			/* seeds and delays */
	pid_t child;			/* killed by the teardown */
};

/* ------------------------------------------------------------------------ */
/* The child: a random fabric manager and four hosts                        */
/* ------------------------------------------------------------------------ */

struct player {
	struct dcdfs_ctx *ctx;
	const char *path;
	struct dcdfs_simdev *h[NR_HANDLES];
	struct rng rng;
};

/* Report an unexpected result; the exit status says which operation. */
static int bad(const char *op, int rc)
{
	fprintf(stderr, "crash child: %s: %d (%s)\n", op, rc,
		dcdfs_strerror(rc));
	return 1;
}

static int handle_open(struct player *p, int i)
{
	int rc = dcdfs_simdev_open(p->ctx, p->path, &p->h[i]);

	if (rc)
		return bad("open", rc);
	rc = simdev_host_attach(p->h[i], (unsigned int)i & 1,
				(unsigned int)i >> 1);
	return rc ? bad("attach", rc) : 0;
}

static struct dcdfs_extent random_extent(struct rng *r)
{
	return (struct dcdfs_extent){
		.offset = rng_below(r, BLOCKS_PER_REGION) * BLOCK,
		.length = (1 + rng_below(r, 2)) * BLOCK,
		.seq = (uint16_t)rng_below(r, 4),
	};
}

/* One or two random extents; overlaps and overruns are refused. */
static int op_fm_add(struct player *p)
{
	struct dcdfs_extent v[2] = {
		random_extent(&p->rng), random_extent(&p->rng),
	};
	struct dcdfs_fm_request req = {
		.host = rng_below(&p->rng, 2),
		.region = rng_below(&p->rng, NR_REGIONS),
		.tag = tags[rng_below(&p->rng, 3)],
		.extents = v,
		.nr_extents = 1 + rng_below(&p->rng, 2),
	};
	int rc = dcdfs_simdev_fm_add(p->h[0], &req, NULL);

	if (rc && rc != -EEXIST && rc != -EINVAL && rc != -ERANGE)
		return bad("fm add", rc);
	return 0;
}

struct pick {
	struct rng *rng;
	unsigned int host, region;
	unsigned int seen;
	struct dcdfs_extent found;
};

/* Reservoir-sample one held extent of a host and region. */
static int pick_held(const struct dcdfs_extent_info *info, void *arg)
{
	struct pick *k = arg;

	if (info->state == DCDFS_EXTENT_PENDING ||
	    info->extent.region != k->region)
		return 0;
	if (rng_below(k->rng, ++k->seen) == 0)
		k->found = info->extent;
	return 0;
}

static int op_fm_release(struct player *p)
{
	struct pick k = { .rng = &p->rng };
	struct dcdfs_fm_request req = { .forced = rng_chance(&p->rng, 25) };
	int rc;

	k.host = req.host = rng_below(&p->rng, 2);
	k.region = req.region = rng_below(&p->rng, NR_REGIONS);
	if (rng_chance(&p->rng, 30)) {
		req.tag = tags[1 + rng_below(&p->rng, 2)];
		rc = dcdfs_simdev_fm_release(p->h[0], &req, NULL);
		return rc && rc != -ENOENT ? bad("fm release tag", rc) : 0;
	}
	rc = dcdfs_simdev_foreach_extent(p->h[0], (int)k.host, pick_held, &k);
	if (rc)
		return bad("foreach extent", rc);
	if (!k.seen)
		return 0;
	req.extents = &k.found;
	req.nr_extents = 1;
	if (k.found.tagged && rng_chance(&p->rng, 50))
		req.tag = k.found.tag;
	rc = dcdfs_simdev_fm_release(p->h[0], &req, NULL);
	return rc ? bad("fm release", rc) : 0;
}

/* Accept a random subset of the chain (possibly none of it). */
static int answer_add(struct player *p, struct dcdfs_simdev *h,
		      const struct backend_event *ev)
{
	struct dcdfs_extent *v = calloc(ev->nr_extents + 1, sizeof(*v));
	size_t nr = 0;
	int rc;

	if (!v)
		return bad("calloc", -ENOMEM);
	for (size_t i = 0; i < ev->nr_extents; i++)
		if (rng_chance(&p->rng, 70))
			v[nr++] = ev->extents[i];
	rc = simdev_host_accept(h, ev->info.id, v, nr);
	free(v);
	return rc ? bad("accept", rc) : 0;
}

static int answer_event(struct player *p, struct dcdfs_simdev *h,
			const struct backend_event *ev)
{
	int rc;

	switch (ev->info.kind) {
	case DCDFS_EVENT_ADD:
		return answer_add(p, h, ev);
	case DCDFS_EVENT_FORCED_RELEASE:
		rc = simdev_host_ack(h, ev->info.id);
		return rc ? bad("ack", rc) : 0;
	case DCDFS_EVENT_RELEASE:
		break;
	}
	if (ev->info.state == DCDFS_EVENT_NEW && rng_chance(&p->rng, 50)) {
		rc = simdev_host_refuse(h, ev->info.id);
		return rc ? bad("refuse", rc) : 0;
	}
	rc = simdev_host_release(h, ev->extents, ev->nr_extents);
	return rc ? bad("release for event", rc) : 0;
}

/* One host answers its oldest pending event. */
static int op_host_answer(struct player *p)
{
	struct dcdfs_simdev *h = p->h[rng_below(&p->rng, NR_HANDLES)];
	struct backend_event *ev = NULL;
	size_t nr = 0;
	int rc;

	rc = simdev_host_events(h, rng_chance(&p->rng, 50), &ev, &nr);
	if (rc)
		return bad("events", rc);
	rc = nr ? answer_event(p, h, &ev[0]) : 0;
	backend_events_free(ev, nr);
	return rc;
}

/* A host gives back one held extent, or its whole tag group. */
static int op_host_release(struct player *p)
{
	struct dcdfs_simdev *h = p->h[rng_below(&p->rng, NR_HANDLES)];
	struct dcdfs_extent *v = NULL, *group;
	size_t nr = 0, n = 0, pick;
	int rc;

	rc = simdev_host_extents(h, &v, &nr);
	if (rc)
		return bad("extents", rc);
	if (!nr) {
		free(v);
		return 0;
	}
	pick = rng_below(&p->rng, (unsigned int)nr);
	group = &v[pick];
	if (v[pick].tagged && rng_chance(&p->rng, 50)) {
		/* Compact the group's members to the front of v. */
		struct dcdfs_extent t = v[pick];

		for (size_t i = 0; i < nr; i++)
			if (v[i].tagged &&
			    !memcmp(v[i].tag, t.tag, DCDFS_TAG_SIZE))
				v[n++] = v[i];
		group = v;
	} else {
		n = 1;
	}
	rc = simdev_host_release(h, group, n);
	free(v);
	return rc ? bad("host release", rc) : 0;
}

/* Detach and re-attach one host: crashes during open and attach too. */
static int op_reopen(struct player *p)
{
	int i = (int)rng_below(&p->rng, NR_HANDLES);

	dcdfs_simdev_close(p->h[i]);
	p->h[i] = NULL;
	return handle_open(p, i);
}

static int play_one(struct player *p)
{
	unsigned int dice = rng_below(&p->rng, 100);

	if (dice < 30)
		return op_fm_add(p);
	if (dice < 60)
		return op_host_answer(p);
	if (dice < 75)
		return op_fm_release(p);
	if (dice < 95)
		return op_host_release(p);
	return op_reopen(p);
}

static int child_main(const char *path, uint64_t seed, int ready_fd)
{
	struct player p = { .path = path, .rng = { seed } };
	char ready = 1;
	int rc;

	if (dcdfs_new(&p.ctx) < 0)
		return 2;
	for (int i = 0; i < NR_HANDLES; i++)
		if (handle_open(&p, i))
			return 3;
	if (write(ready_fd, &ready, 1) != 1)
		return 4;
	for (int op = 0; op < MAX_OPS; op++) {
		rc = play_one(&p);
		if (rc)
			return 10;
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* The parent: kill, then verify                                            */
/* ------------------------------------------------------------------------ */

struct tally {
	uint64_t held[NR_REGIONS];
	uint64_t pending[NR_REGIONS];
	char *msg;
	size_t len;
	struct dcdfs_simdev *dev;
};

/* The memory file of a held extent exists and has the extent's size. */
static int check_memory(struct tally *t, const struct dcdfs_extent *e)
{
	char name[32], path[PATH_MAX];
	struct stat st;
	int fd;

	mem_file_name(e->region, e->offset, name, sizeof(name));
	snprintf(path, sizeof(path), "%s/%s",
		 dcdfs_simdev_get_memory_path(t->dev), name);
	if (stat(path, &st) < 0) {
		snprintf(t->msg, t->len, "held extent %u:0x%" PRIx64
			 " has no memory file '%s'", e->region, e->offset,
			 path);
		return -1;
	}
	if ((uint64_t)st.st_size != e->length) {
		snprintf(t->msg, t->len, "memory '%s' is %lld bytes, the"
			 " extent 0x%" PRIx64, path, (long long)st.st_size,
			 e->length);
		return -1;
	}
	fd = simdev_mem_open(t->dev, e);
	if (fd < 0) {
		snprintf(t->msg, t->len, "simdev_mem_open '%s': %s", path,
			 dcdfs_strerror(fd));
		return -1;
	}
	(void) close(fd);
	return 0;
}

static int tally_extent(const struct dcdfs_extent_info *info, void *arg)
{
	struct tally *t = arg;
	const struct dcdfs_extent *e = &info->extent;

	if (e->region >= NR_REGIONS) {
		snprintf(t->msg, t->len, "extent in region %u", e->region);
		return -1;
	}
	if (info->state == DCDFS_EXTENT_PENDING) {
		t->pending[e->region] += e->length;
		return 0;
	}
	t->held[e->region] += e->length;
	return check_memory(t, e);
}

static int check_usage(struct tally *t)
{
	uint64_t f, h, p;
	int rc;

	for (unsigned int r = 0; r < NR_REGIONS; r++) {
		rc = dcdfs_simdev_get_usage(t->dev, r, &f, &h, &p);
		if (rc) {
			snprintf(t->msg, t->len, "usage: %s",
				 dcdfs_strerror(rc));
			return -1;
		}
		if (f + h + p != REGION_SIZE || h != t->held[r] ||
		    p != t->pending[r]) {
			snprintf(t->msg, t->len, "region %u: free 0x%" PRIx64
				 " held 0x%" PRIx64 " pending 0x%" PRIx64
				 ", extents say held 0x%" PRIx64 " pending 0x%"
				 PRIx64, r, f, h, p, t->held[r],
				 t->pending[r]);
			return -1;
		}
	}
	return 0;
}

/* Open the device and check everything; 0, or -1 with @msg set. */
static int verify_open(struct dcdfs_simdev *dev, char *msg, size_t len)
{
	struct tally t = { .msg = msg, .len = len, .dev = dev };
	int rc;

	rc = dcdfs_simdev_check(dev);
	if (rc) {
		snprintf(msg, len, "check: %s", dcdfs_strerror(rc));
		return -1;
	}
	rc = dcdfs_simdev_foreach_extent(dev, -1, tally_extent, &t);
	if (rc) {
		if (rc != -1)
			snprintf(msg, len, "foreach: %s", dcdfs_strerror(rc));
		return -1;
	}
	return check_usage(&t);
}

static int verify(struct fixture *f, char *msg, size_t len)
{
	struct dcdfs_simdev *dev;
	int rc;

	rc = dcdfs_simdev_open(f->ctx, f->path, &dev);
	if (rc) {
		snprintf(msg, len, "open: %s", dcdfs_strerror(rc));
		return -1;
	}
	rc = verify_open(dev, msg, len);
	dcdfs_simdev_close(dev);
	return rc;
}

/* Wait for the child's ready byte (or its death). */
static void wait_ready(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char c;

	if (poll(&pfd, 1, READY_TIMEOUT_MS) == 1)
		if (read(fd, &c, 1) < 0)
			c = 0;
}

/* Run a child, kill it at a random instant; return its wait status. */
static int crash_child(struct fixture *f, int round)
{
	uint64_t seed = rng_next(&f->rng);
	unsigned int delay = rng_below(&f->rng, MAX_DELAY_US + 1);
	int ready[2], status = 0;

	assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
	fflush(stdout);
	fflush(stderr);
	f->child = fork();
	assert_true(f->child >= 0);
	if (f->child == 0) {
		(void) close(ready[0]);
		_exit(child_main(f->path, seed, ready[1]));
	}
	(void) close(ready[1]);
	if (round % 4)
		wait_ready(ready[0]);
	usleep(delay);
	(void) kill(f->child, SIGKILL);
	assert_int_equal(waitpid(f->child, &status, 0), f->child);
	f->child = -1;
	(void) close(ready[0]);
	return status;
}

/* ------------------------------------------------------------------------ */
/* Draining: the device is still fully usable                               */
/* ------------------------------------------------------------------------ */

static int drain_events(struct dcdfs_simdev *h)
{
	struct backend_event *ev = NULL;
	size_t nr = 0;
	int rc;

	rc = simdev_host_events(h, true, &ev, &nr);
	for (size_t i = 0; !rc && i < nr; i++) {
		const struct backend_event *e = &ev[i];

		if (e->info.kind == DCDFS_EVENT_ADD)
			rc = simdev_host_accept(h, e->info.id, e->extents,
						e->nr_extents);
		else if (e->info.kind == DCDFS_EVENT_FORCED_RELEASE)
			rc = simdev_host_ack(h, e->info.id);
		else
			rc = simdev_host_release(h, e->extents, e->nr_extents);
		/* A release may have completed a later event already. */
		if (rc == -ENOENT && e->info.kind == DCDFS_EVENT_RELEASE)
			rc = 0;
	}
	backend_events_free(ev, nr);
	return rc;
}

static int drain_host(struct fixture *f, unsigned int host,
		      unsigned int region)
{
	struct dcdfs_extent *v = NULL;
	struct dcdfs_simdev *h;
	size_t nr = 0;
	int rc;

	rc = dcdfs_simdev_open(f->ctx, f->path, &h);
	if (rc)
		return rc;
	rc = simdev_host_attach(h, host, region);
	if (!rc)
		rc = drain_events(h);
	if (!rc)
		rc = simdev_host_extents(h, &v, &nr);
	if (!rc && nr)
		rc = simdev_host_release(h, v, nr);
	free(v);
	dcdfs_simdev_close(h);
	return rc;
}

static void assert_drained(struct fixture *f)
{
	struct dcdfs_simdev *dev;
	uint64_t free_;
	char msg[512];
	int rc;

	for (int i = 0; i < NR_HANDLES; i++) {
		rc = drain_host(f, (unsigned int)i & 1, (unsigned int)i >> 1);
		if (rc)
			fail_msg("seed %" PRIu64 ": draining host %d: %s",
				 f->seed, i & 1, dcdfs_strerror(rc));
	}
	if (verify(f, msg, sizeof(msg)))
		fail_msg("seed %" PRIu64 ": after draining: %s", f->seed, msg);
	assert_int_equal(dcdfs_simdev_open(f->ctx, f->path, &dev), 0);
	for (unsigned int r = 0; r < NR_REGIONS; r++) {
		assert_int_equal(dcdfs_simdev_get_usage(dev, r, &free_, NULL,
							NULL), 0);
		if (free_ != REGION_SIZE)
			fail_msg("seed %" PRIu64 ": region %u not free after"
				 " draining", f->seed, r);
	}
	dcdfs_simdev_close(dev);
}

/* ------------------------------------------------------------------------ */
/* The test                                                                 */
/* ------------------------------------------------------------------------ */

static int rm_entry(const char *path, const struct stat *st, int type,
		    struct FTW *ftw)
{
	(void) st;
	(void) type;
	(void) ftw;
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

static uint64_t pick_seed(void)
{
	const char *env = getenv("DCDFS_TEST_SEED");
	struct timespec ts;

	if (env && *env)
		return strtoull(env, NULL, 0);
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000007ULL ^ (uint64_t)ts.tv_nsec ^
	       (uint64_t)getpid() << 32;
}

static void fixture_free(struct fixture *f)
{
	if (f->child > 0) {
		(void) kill(f->child, SIGKILL);
		(void) waitpid(f->child, NULL, 0);
	}
	if (f->dir[0])
		(void) nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	dcdfs_unref(f->ctx);
	free(f);
}

static int setup(void **state)
{
	struct dcdfs_simdev_config cfg = {
		.size = NR_REGIONS * REGION_SIZE,
		.nr_regions = NR_REGIONS,
		.block_size = BLOCK,
		.numa_node = -1,
	};
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->child = -1;
	f->seed = pick_seed();
	f->rng.s = f->seed;
	strcpy(f->dir, "/dev/shm/dcdfs-test-crash-XXXXXX");
	if (!mkdtemp(f->dir)) {
		f->dir[0] = '\0';
		fixture_free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/dev", f->dir);
	if (dcdfs_new(&f->ctx) < 0 ||
	    dcdfs_simdev_create(f->ctx, f->path, &cfg, NULL) < 0) {
		fixture_free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	int rc;

	if (f->child > 0) {
		(void) kill(f->child, SIGKILL);
		(void) waitpid(f->child, NULL, 0);
		f->child = -1;
	}
	rc = dcdfs_simdev_destroy(f->ctx, f->path);
	fixture_free(f);
	return rc < 0 ? -1 : 0;
}

static void test_crash(void **state)
{
	struct fixture *f = *state;
	char msg[512];
	int status;

	printf("# seed %" PRIu64 " (DCDFS_TEST_SEED=%" PRIu64 " replays it)\n",
	       f->seed, f->seed);
	for (int round = 0; round < ROUNDS; round++) {
		status = crash_child(f, round);
		if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
			if (!WIFEXITED(status) || WEXITSTATUS(status))
				fail_msg("seed %" PRIu64 " round %d: the child"
					 " failed by itself (status 0x%x)",
					 f->seed, round, status);
		}
		if (verify(f, msg, sizeof(msg)))
			fail_msg("seed %" PRIu64 " round %d: %s", f->seed,
				 round, msg);
	}
	assert_drained(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_crash, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
