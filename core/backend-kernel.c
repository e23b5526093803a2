// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * DOC: kernel backend - a host running the CXL DCD patch series
 *
 * The kernel accepts and releases extents itself; userspace sees the result
 * in sysfs and nothing else (no uevents), so:
 *
 * - extents are found by scanning dax_regionN/extentN.K; an extent seen in
 *   two scans in a row that the host did not hold is an add the kernel has
 *   accepted already (a "done" add), one that vanished a release the kernel
 *   completed (a "done" release).  Waiting for two scans keeps a tag group
 *   caught half-created from being split;
 * - the kernel refuses a release only while a DAX device claims the extent,
 *   so a pin is a claimed DAX device (mem_open/mem_close); the host drops
 *   mappings at the last unpin (keep_idle_maps false) so the claim ends
 *   with the last user;
 * - a refused release is visible only as a cxl_dynamic_capacity trace
 *   record, read from a tracefs instance of our own when there is one;
 * - the host cannot release extents: rm runs the release helper, if any,
 *   and the extent goes when the orchestrator has the FM release it.
 *
 * Claims made are written to a file next to the state store, so that the
 * DAX devices of a daemon that died holding them are torn down by the next.
 *
 * One mutex serialises the ops: the host's event thread and the FUSE
 * threads (open, close, rm) call in concurrently.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <dcdfs/libdcdfs.h>

#include "backend.h"
#include "cleanup.h"
#include "config.h"
#include "ksysfs.h"
#include "private.h"

#define DEFAULT_POLL_MS 200
#define PATH_LEN 4096

extern char **environ;

/*
 * An extent and the K of its extentN.K at the scan that found it.  K is no
 * identity (the kernel reuses it), but the kernel numbers the extents of
 * a More chain as it surfaces them, in arrival order, which is the order
 * it lays a tag group out in a DAX device: new extents are told in K order.
 */
struct kext {
	struct dcdfs_extent e;
	unsigned int id;
};

/* A set of extents, sorted by offset. */
struct kset {
	struct kext *v;
	size_t nr, cap;
};

struct kclaim {
	uint64_t offset;	/* of the allocation's first extent */
	uint64_t resource;	/* what the device had when claimed */
	uint64_t size;
	char dev[32];		/* daxN.M; empty once the kernel destroyed it */
};

struct kernel_backend {
	struct dcdfs_backend be;	/* first: the ops get this pointer */
	char *root;			/* sysfs root */
	char *devdir;
	char *helper;			/* release helper, or NULL */
	char *state_path;
	char *claims_path;
	char region[32];		/* "regionN" */
	unsigned int id;		/* N */
	enum kabi abi;
	uint64_t base, size, dpa;	/* region HPA, size; decoder DPA base */
	bool have_dpa;
	int numa_node;
	int poll_ms;

	/* lock serialises every op and protects everything below. */
	pthread_mutex_t lock;
	struct kset known;		/* extents reported to the host */
	struct kset candidates;		/* new in the last scan, not yet told */
	uint64_t next_event;
	struct kclaim *claims;
	size_t nr_claims;
	char **bad;			/* extentN.K skipped at the last scan */
	size_t nr_bad;
	int trace_fd;			/* trace_pipe of our instance, or -1 */
	char *trace_instance;
	char trace_partial[512];	/* a line not yet complete */
};

static struct kernel_backend *to_k(struct dcdfs_backend *be)
{
	return (struct kernel_backend *)be;
}

static int kpath(const struct kernel_backend *k, char *buf, const char *fmt,
		 ...) __attribute__((format(printf, 3, 4)));

/* ROOT/bus/cxl/devices/ + the formatted rest. */
static int kpath(const struct kernel_backend *k, char *buf, const char *fmt,
		 ...)
{
	va_list ap;
	int n, m;

	n = snprintf(buf, PATH_LEN, "%s/bus/cxl/devices/", k->root);
	va_start(ap, fmt);
	m = vsnprintf(buf + n, PATH_LEN - (size_t)n, fmt, ap);
	va_end(ap);
	return (size_t)(n + m) < PATH_LEN ? 0 : -ENAMETOOLONG;
}

/* Read attribute ROOT/bus/cxl/devices/dax_regionN/OBJ/ATTR as a number. */
static int read_dax_u64(const struct kernel_backend *k, const char *obj,
			const char *attr, uint64_t *ret)
{
	char path[PATH_LEN], buf[64];
	int rc = kpath(k, path, "dax_region%u/%s/%s", k->id, obj, attr);

	if (!rc)
		rc = sysfs_read_attr(path, buf, sizeof(buf));
	return rc < 0 ? rc : ksysfs_parse_u64(buf, ret);
}

static int write_dax(const struct kernel_backend *k, const char *obj,
		     const char *attr, const char *value)
{
	char path[PATH_LEN];
	int rc = kpath(k, path, "dax_region%u/%s/%s", k->id, obj, attr);

	return rc < 0 ? rc : sysfs_write_attr(path, value);
}

static int write_driver(const struct kernel_backend *k, const char *attr,
			const char *dev)
{
	char path[PATH_LEN];

	if ((size_t)snprintf(path, sizeof(path),
			     "%s/bus/dax/drivers/device_dax/%s", k->root,
			     attr) >= sizeof(path))
		return -ENAMETOOLONG;
	return sysfs_write_attr(path, dev);
}

/* ------------------------------------------------------------------------ */
/* Extent sets                                                              */
/* ------------------------------------------------------------------------ */

static bool same_extent(const struct dcdfs_extent *a,
			const struct dcdfs_extent *b)
{
	return a->offset == b->offset && a->length == b->length &&
	       a->tagged == b->tagged &&
	       (!a->tagged || !memcmp(a->tag, b->tag, DCDFS_TAG_SIZE));
}

static const struct dcdfs_extent *kset_find(const struct kset *s,
					    const struct dcdfs_extent *e)
{
	size_t lo = 0, hi = s->nr;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (s->v[mid].e.offset < e->offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < s->nr && same_extent(&s->v[lo].e, e) ? &s->v[lo].e : NULL;
}

static int kset_push(struct kset *s, const struct kext *x)
{
	if (s->nr == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct kext *v = realloc(s->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->nr++] = *x;
	return 0;
}

static int cmp_offset(const void *a, const void *b)
{
	const struct kext *x = a, *y = b;

	return x->e.offset < y->e.offset ? -1 : x->e.offset > y->e.offset;
}

static int cmp_id(const void *a, const void *b)
{
	const struct kext *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/* qsort() wants a non-null array, even of nothing. */
static void kset_sort_by(struct kset *s,
			 int (*cmp)(const void *, const void *))
{
	if (s->nr > 1)
		qsort(s->v, s->nr, sizeof(*s->v), cmp);
}

static void kset_sort(struct kset *s)
{
	kset_sort_by(s, cmp_offset);
}

static void kset_clear(struct kset *s)
{
	free(s->v);
	*s = (struct kset){ 0 };
}

/* ------------------------------------------------------------------------ */
/* Scanning                                                                 */
/* ------------------------------------------------------------------------ */

static void claims_save(struct kernel_backend *k);

static void free_names(char **v, size_t nr)
{
	for (size_t i = 0; i < nr; i++)
		free(v[i]);
	free(v);
}

/*
 * Skip a bad extent; say so when it was not skipped at the last scan
 * already, so that one bad extent is one line, not one a scan.
 */
static void skip_bad(struct kernel_backend *k, const char *path,
		     const char *name, int why, char ***bad, size_t *nr_bad)
{
	char **v, *dup;
	size_t i;

	for (i = 0; i < k->nr_bad && strcmp(k->bad[i], name); i++)
		;
	if (i == k->nr_bad)
		err(k->be.ctx, "skipping '%s': %s\n", path,
		    why == -ERANGE ? "outside its region" :
				     "unreadable attributes");
	dup = strdup(name);
	v = dup ? realloc(*bad, (*nr_bad + 1) * sizeof(*v)) : NULL;
	if (!v) {
		free(dup);	/* said again at the next scan, at worst */
		return;
	}
	v[(*nr_bad)++] = dup;
	*bad = v;
}

/* Every extent of the region now, sorted; bad ones skipped, and said so. */
static int scan(struct kernel_backend *k, struct kset *ret)
{
	char dir[PATH_LEN], sub[PATH_LEN + 64];
	struct dirent *de;
	unsigned int a, b;
	char **bad = NULL;
	size_t nr_bad = 0;
	DIR *d;
	int rc = kpath(k, dir, "dax_region%u", k->id);

	if (rc < 0)
		return rc;
	d = opendir(dir);
	if (!d)
		return set_error(-errno, "cannot read '%s': %s", dir,
				 strerror(errno));
	*ret = (struct kset){ 0 };
	while (!rc && (de = readdir(d))) {
		struct kext x;
		char tail;

		if (sscanf(de->d_name, "extent%u.%u%c", &a, &b, &tail) != 2)
			continue;
		if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", dir,
				     de->d_name) >= sizeof(sub))
			continue;
		rc = ksysfs_read_extent(sub, k->size, &x.e);
		if (rc == -ENOENT) {	/* vanished while we looked */
			rc = 0;
			continue;
		}
		if (rc < 0) {
			skip_bad(k, sub, de->d_name, rc, &bad, &nr_bad);
			rc = 0;
			continue;
		}
		x.e.region = k->id;
		x.id = b;
		rc = kset_push(ret, &x);
	}
	closedir(d);
	if (rc < 0) {
		free_names(bad, nr_bad);
		kset_clear(ret);
		return rc;
	}
	free_names(k->bad, k->nr_bad);
	k->bad = bad;
	k->nr_bad = nr_bad;
	kset_sort(ret);
	return 0;
}

static bool same_tag(const struct dcdfs_extent *a, const uint8_t *tag)
{
	return a->tagged && !memcmp(a->tag, tag, DCDFS_TAG_SIZE);
}

/* Is every new extent of @e's tag group the same in @now and in @before? */
static bool group_stable(const struct kset *now, const struct kset *before,
			 const struct dcdfs_extent *e)
{
	size_t in_now = 0, in_before = 0;

	if (!e->tagged)
		return kset_find(before, e) != NULL;
	for (size_t i = 0; i < now->nr; i++) {
		if (!same_tag(&now->v[i].e, e->tag))
			continue;
		if (!kset_find(before, &now->v[i].e))
			return false;
		in_now++;
	}
	for (size_t i = 0; i < before->nr; i++)
		in_before += same_tag(&before->v[i].e, e->tag);
	return in_now == in_before;
}

static struct backend_event *new_event(struct kernel_backend *k,
				       struct backend_event **v, size_t *nr,
				       enum dcdfs_event_kind kind, bool done)
{
	struct backend_event *nv = realloc(*v, (*nr + 1) * sizeof(**v));

	if (!nv)
		return NULL;
	*v = nv;
	nv = &nv[(*nr)++];
	memset(nv, 0, sizeof(*nv));
	nv->info.id = ++k->next_event;
	nv->info.kind = kind;
	nv->info.state = DCDFS_EVENT_NEW;
	nv->info.region = k->id;
	nv->done = done;
	return nv;
}

static int event_push(struct backend_event *ev, const struct dcdfs_extent *e)
{
	struct dcdfs_extent *v = realloc(ev->extents, (ev->nr_extents + 1) *
						      sizeof(*v));

	if (!v)
		return -ENOMEM;
	ev->extents = v;
	v[ev->nr_extents++] = *e;
	ev->info.nr_extents = (unsigned int)ev->nr_extents;
	return 0;
}

/*
 * The kernel released @e although we claimed it: only a teardown of the
 * whole DAX region does that, destroying our device with it.  Its name
 * may be given to another claim soon: forget it, so that the last close
 * of the revoked allocation tears nothing down.
 */
static void claims_orphan(struct kernel_backend *k,
			  const struct dcdfs_extent *e)
{
	for (size_t i = 0; i < k->nr_claims; i++) {
		if (k->claims[i].offset != e->offset || !k->claims[i].dev[0])
			continue;
		info(k->be.ctx, "%s went with extent 0x%" PRIx64 "\n",
		     k->claims[i].dev, e->offset);
		k->claims[i].dev[0] = '\0';
		claims_save(k);
	}
}

/* Known extents that vanished: one done release. */
static int diff_gone(struct kernel_backend *k, const struct kset *now,
		     struct backend_event **v, size_t *nr)
{
	struct backend_event *ev = NULL;
	struct kset keep = { 0 };
	int rc = 0;

	for (size_t i = 0; !rc && i < k->known.nr; i++) {
		const struct dcdfs_extent *e = &k->known.v[i].e;

		if (kset_find(now, e)) {
			rc = kset_push(&keep, &k->known.v[i]);
			continue;
		}
		claims_orphan(k, e);
		if (!ev)
			ev = new_event(k, v, nr, DCDFS_EVENT_RELEASE, true);
		rc = ev ? event_push(ev, e) : -ENOMEM;
	}
	if (rc < 0) {
		kset_clear(&keep);
		return rc;
	}
	kset_clear(&k->known);
	k->known = keep;
	return 0;
}

/* New extents seen twice, whole tag groups: one done add, in K order. */
static int diff_new(struct kernel_backend *k, const struct kset *now,
		    struct backend_event **v, size_t *nr)
{
	struct backend_event *ev = NULL;
	struct kset fresh = { 0 }, told = { 0 };
	int rc = 0;

	for (size_t i = 0; !rc && i < now->nr; i++)
		if (!kset_find(&k->known, &now->v[i].e))
			rc = kset_push(&fresh, &now->v[i]);
	for (size_t i = 0; !rc && i < fresh.nr; i++)
		if (group_stable(&fresh, &k->candidates, &fresh.v[i].e))
			rc = kset_push(&told, &fresh.v[i]);
	kset_sort_by(&told, cmp_id);
	for (size_t i = 0; !rc && i < told.nr; i++) {
		if (!ev)
			ev = new_event(k, v, nr, DCDFS_EVENT_ADD, true);
		rc = ev ? event_push(ev, &told.v[i].e) : -ENOMEM;
		if (!rc)
			rc = kset_push(&k->known, &told.v[i]);
	}
	kset_clear(&told);
	kset_sort(&k->known);
	kset_clear(&k->candidates);
	k->candidates = fresh;
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Trace records                                                            */
/* ------------------------------------------------------------------------ */

static const char trace_event[] = "events/cxl/cxl_dynamic_capacity/enable";

static void trace_close(struct kernel_backend *k)
{
	char path[PATH_LEN];

	if (k->trace_fd >= 0)
		(void) close(k->trace_fd);
	k->trace_fd = -1;
	if (!k->trace_instance)
		return;
	snprintf(path, sizeof(path), "%s/%s", k->trace_instance, trace_event);
	if (sysfs_write_attr(path, "0") < 0 || rmdir(k->trace_instance) < 0)
		dbg(k->be.ctx, "cannot remove tracefs instance '%s'\n",
		    k->trace_instance);
	free(k->trace_instance);
	k->trace_instance = NULL;
}

/*
 * Instances of daemons that died (SIGKILL, a crash) stay, enabled, their
 * ring buffers filling: remove those of dcdfs whose process is gone.
 */
static void trace_reap(struct kernel_backend *k)
{
	char dir[PATH_LEN], path[PATH_LEN + 300];
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/kernel/tracing/instances", k->root);
	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d))) {
		char tail;
		int pid;

		if (sscanf(de->d_name, "dcdfs-%d%c", &pid, &tail) != 1 ||
		    pid <= 0 || kill(pid, 0) == 0 || errno != ESRCH)
			continue;
		snprintf(path, sizeof(path), "%s/%s/%s", dir, de->d_name,
			 trace_event);
		if (sysfs_write_attr(path, "0") < 0)
			dbg(k->be.ctx, "cannot disable '%s'\n", path);
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (rmdir(path) == 0)
			info(k->be.ctx, "removed tracefs instance '%s', left"
			     " by a previous dcdfs\n", de->d_name);
	}
	closedir(d);
}

/* An instance of our own: enabling the event there disturbs nobody. */
static void trace_open(struct kernel_backend *k)
{
	char path[PATH_LEN];
	int rc;

	trace_reap(k);

	if (asprintf(&k->trace_instance, "%s/kernel/tracing/instances/dcdfs-%d",
		     k->root, (int)getpid()) < 0) {
		k->trace_instance = NULL;
		return;
	}
	if (mkdir(k->trace_instance, 0700) < 0 && errno != EEXIST) {
		info(k->be.ctx, "no tracefs instance (%s): refused releases"
		     " will not show as release-pending\n", strerror(errno));
		free(k->trace_instance);
		k->trace_instance = NULL;
		return;
	}
	snprintf(path, sizeof(path), "%s/%s", k->trace_instance, trace_event);
	rc = sysfs_write_attr(path, "1");
	snprintf(path, sizeof(path), "%s/trace_pipe", k->trace_instance);
	if (!rc)
		k->trace_fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (rc < 0 || k->trace_fd < 0 || !k->have_dpa) {
		info(k->be.ctx, "cannot follow cxl_dynamic_capacity: refused"
		     " releases will not show as release-pending\n");
		trace_close(k);
	}
}

/*
 * A release record: the FM asked for every known extent the range overlaps
 * (v4-v9 flag each of them; v10+ match the range and the tag, and take the
 * whole tag group, one allocation here).  Records carry the range the FM
 * asked for, not necessarily a whole extent.
 */
static int trace_record(struct kernel_backend *k, const char *line,
			struct backend_event **v, size_t *nr,
			struct backend_event **ev)
{
	uint64_t start, end;
	struct ktrace t;
	int rc = 0;

	if (ksysfs_parse_trace(line, &t) < 0 || t.type != KTRACE_RELEASE ||
	    t.dpa < k->dpa)
		return 0;
	start = t.dpa - k->dpa;
	if (add_overflows(start, t.length, &end))
		return 0;
	for (size_t i = 0; !rc && i < k->known.nr; i++) {
		const struct dcdfs_extent *e = &k->known.v[i].e;

		if (e->offset >= end || e->offset + e->length <= start)
			continue;
		if (k->abi >= KABI_V10 && (e->tagged != t.tagged ||
		    (t.tagged && memcmp(e->tag, t.tag, DCDFS_TAG_SIZE))))
			continue;
		if (!*ev)
			*ev = new_event(k, v, nr, DCDFS_EVENT_RELEASE, false);
		rc = *ev ? event_push(*ev, e) : -ENOMEM;
	}
	return rc;
}

static int trace_read(struct kernel_backend *k, struct backend_event **v,
		      size_t *nr)
{
	struct backend_event *ev = NULL;
	char buf[4096], *line, *nl;
	size_t have = strlen(k->trace_partial);
	ssize_t n;
	int rc = 0;

	if (k->trace_fd < 0)
		return 0;
	memcpy(buf, k->trace_partial, have);
	while ((n = read(k->trace_fd, buf + have,
			 sizeof(buf) - have - 1)) > 0) {
		buf[have + (size_t)n] = '\0';
		for (line = buf; !rc && (nl = strchr(line, '\n'));
		     line = nl + 1) {
			*nl = '\0';
			rc = trace_record(k, line, v, nr, &ev);
		}
		have = strlen(line);
		/* A line longer than the buffer is not ours: drop it. */
		if (have >= sizeof(k->trace_partial))
			have = 0;
		memmove(buf, line, have);
	}
	memcpy(k->trace_partial, buf, have);
	k->trace_partial[have] = '\0';
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Ops                                                                      */
/* ------------------------------------------------------------------------ */

static void kernel_info(struct dcdfs_backend *be, struct backend_info *ret)
{
	struct kernel_backend *k = to_k(be);

	ret->capacity = k->size;
	ret->block_size = 2ULL << 20;
	ret->numa_node = k->numa_node;
	ret->state_path = k->state_path;
	ret->poll_ms = k->poll_ms;
	ret->host_releases = false;
	ret->keep_idle_maps = false;
}

static int kernel_event_fd(struct dcdfs_backend *be)
{
	(void) be;
	return -1;	/* no wake-ups: scans, every poll_ms */
}

static int kernel_events(struct dcdfs_backend *be, bool all,
			 struct backend_event **ret, size_t *ret_nr)
{
	struct kernel_backend *k = to_k(be);
	struct backend_event *v = NULL;
	struct kset now;
	size_t nr = 0;
	int rc;

	(void) all;
	guard(mutex)(&k->lock);
	rc = scan(k, &now);
	if (rc < 0)
		return rc;
	rc = diff_gone(k, &now, &v, &nr);
	if (!rc)
		rc = diff_new(k, &now, &v, &nr);
	if (!rc)
		rc = trace_read(k, &v, &nr);
	kset_clear(&now);
	if (rc < 0) {
		backend_events_free(v, nr);
		return rc;
	}
	*ret = v;
	*ret_nr = nr;
	return 0;
}

/* At start: what the kernel holds, once two scans agree. */
static int kernel_extents(struct dcdfs_backend *be, struct dcdfs_extent **ret,
			  size_t *ret_nr)
{
	struct kernel_backend *k = to_k(be);
	int rc = 0;

	guard(mutex)(&k->lock);
	for (int round = 0; round < 50 && !rc; round++) {
		struct kset now;
		bool settled;

		rc = scan(k, &now);
		if (rc < 0)
			break;
		settled = now.nr == k->candidates.nr;
		for (size_t i = 0; settled && i < now.nr; i++)
			settled = same_extent(&now.v[i].e,
					      &k->candidates.v[i].e);
		kset_clear(&k->candidates);
		k->candidates = now;
		if (settled && round)
			break;
		nanosleep(&(struct timespec){ .tv_nsec = 10000000 }, NULL);
	}
	if (rc < 0)
		return rc;
	*ret = malloc((k->candidates.nr + 1) * sizeof(**ret));
	if (!*ret)
		return -ENOMEM;
	/* Told in K order; kept in offset order. */
	kset_sort_by(&k->candidates, cmp_id);
	for (size_t i = 0; i < k->candidates.nr; i++)
		(*ret)[i] = k->candidates.v[i].e;
	*ret_nr = k->candidates.nr;
	kset_sort(&k->candidates);
	/* All of them are the host's now. */
	kset_clear(&k->known);
	k->known = k->candidates;
	k->candidates = (struct kset){ 0 };
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Claims                                                                   */
/* ------------------------------------------------------------------------ */

/* Keep the list of our DAX devices on disk, replaced atomically. */
/* This boot's id, so that claims of an earlier boot are not taken as ours. */
static void boot_id(char *buf, size_t len)
{
	if (sysfs_read_attr("/proc/sys/kernel/random/boot_id", buf, len) < 0 ||
	    strchr(buf, ' ') || !buf[0])
		snprintf(buf, len, "-");
}

/*
 * "boot BOOT_ID", then "daxN.M RESOURCE SIZE" per claim: what the next
 * dcdfs checks before it tears a device down as ours.
 */
static void claims_save(struct kernel_backend *k)
{
	_cleanup_free_ char *tmp = NULL;
	char boot[64];
	FILE *f;

	if (asprintf(&tmp, "%s.tmp", k->claims_path) < 0)
		return;
	f = fopen(tmp, "we");
	if (!f)
		return;
	boot_id(boot, sizeof(boot));
	fprintf(f, "boot %s\n", boot);
	for (size_t i = 0; i < k->nr_claims; i++)
		if (k->claims[i].dev[0])
			fprintf(f, "%s %#" PRIx64 " %#" PRIx64 "\n",
				k->claims[i].dev, k->claims[i].resource,
				k->claims[i].size);
	if (fclose(f) == 0 && rename(tmp, k->claims_path) < 0)
		dbg(k->be.ctx, "cannot save claims: %s\n", strerror(errno));
}

/*
 * Unbind, shrink to nothing, delete: what daxctl destroy-device does.  The
 * kernel never deletes daxN.0 (EBUSY): it stays, empty, for the next claim.
 */
static void teardown(struct kernel_backend *k, const char *dev)
{
	int rc;

	(void) write_driver(k, "unbind", dev);	/* EINVAL if not bound */
	rc = write_dax(k, dev, "size", "0");
	if (!rc)
		rc = write_dax(k, "dax_region", "delete", dev);
	if (rc == -EBUSY && !strcmp(strchr(dev, '.'), ".0"))
		rc = 0;
	if (rc < 0)
		err(k->be.ctx, "cannot tear down '%s': %s\n", dev,
		    strerror(-rc));
}

/* Claim a DAX device for @ext: by tag (v10+) or by size, first fit. */
static int claim(struct kernel_backend *k, const struct dcdfs_extent *ext,
		 uint64_t size, char *dev, size_t len)
{
	char path[PATH_LEN], value[48];
	int rc;

	rc = kpath(k, path, "dax_region%u/dax_region/seed", k->id);
	if (!rc)
		rc = sysfs_read_attr(path, dev, len);
	if (rc < 0)
		return rc;
	if (strchr(dev, '/') || strncmp(dev, "dax", 3))
		return set_error(-EINVAL, "bad DAX seed '%s'", dev);
	if (k->abi >= KABI_V10) {
		if (ext[0].tagged)
			dcdfs_format_tag(ext[0].tag, value);
		else
			strcpy(value, "0");
		rc = write_dax(k, dev, "uuid", value);
	} else {
		snprintf(value, sizeof(value), "%" PRIu64, size);
		rc = write_dax(k, dev, "size", value);
	}
	return rc;
}

/* Did the kernel give the allocation (0), or another extent (-EBUSY)? */
static int check_claim(struct kernel_backend *k, const char *dev,
		       const struct dcdfs_extent *ext, size_t nr,
		       uint64_t size)
{
	uint64_t got_size, resource;
	int rc;

	rc = read_dax_u64(k, dev, "size", &got_size);
	if (!rc)
		rc = read_dax_u64(k, dev, "resource", &resource);
	if (rc < 0)
		return rc;
	for (size_t i = 0; got_size == size && i < nr; i++) {
		if (resource != k->base + ext[i].offset)
			continue;
		/*
		 * A sharable group is laid out in sequence order, which sysfs
		 * does not show: the bytes are right, the extent list is not.
		 */
		if (i)
			notice(k->be.ctx, "%s starts at extent 0x%" PRIx64
			       ", not 0x%" PRIx64 ": the kernel laid the tag"
			       " group out in another order than it surfaced"
			       " it; user.dcd.extents does not follow the"
			       " file\n", dev, ext[i].offset, ext[0].offset);
		return 0;
	}
	/* v4-v9 grow first-fit; "0" takes the first free untagged extent. */
	if (k->abi < KABI_V10)
		err(k->be.ctx, "the kernel gave %s at 0x%" PRIx64 " (0x%"
		    PRIx64 " bytes), not the allocation at 0x%" PRIx64
		    " (0x%" PRIx64 "): it picks the first free extent; busy"
		    " until those before are claimed or gone\n", dev,
		    resource, got_size, k->base + ext[0].offset, size);
	return set_error(-EBUSY, "the kernel gave another extent");
}

static int claim_open(struct kernel_backend *k, const char *dev, int flags)
{
	char path[PATH_LEN];
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", k->devdir, dev) >=
	    sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, flags | O_CLOEXEC);
	if (fd < 0)
		return set_error(-errno, "cannot open '%s': %s", path,
				 strerror(errno));
	return fd;
}

static int add_claim(struct kernel_backend *k, uint64_t offset,
		     const char *dev)
{
	struct kclaim *v = realloc(k->claims, (k->nr_claims + 1) * sizeof(*v));
	int rc;

	if (!v)
		return -ENOMEM;
	k->claims = v;
	v[k->nr_claims].offset = offset;
	rc = read_dax_u64(k, dev, "resource", &v[k->nr_claims].resource);
	if (!rc)
		rc = read_dax_u64(k, dev, "size", &v[k->nr_claims].size);
	if (rc < 0)
		return rc;
	snprintf(v[k->nr_claims].dev, sizeof(v->dev), "%s", dev);
	k->nr_claims++;
	claims_save(k);
	return 0;
}

static void drop_claim(struct kernel_backend *k, size_t i)
{
	k->claims[i] = k->claims[--k->nr_claims];
	claims_save(k);
}

/*
 * Claim a device for @ext into @dev.  v10+ claim an untagged extent with
 * "0", which takes some free untagged extent, not necessarily this one:
 * the wrong ones are held (and on record, in case we die) while we ask
 * again, so that the kernel hands out the next, then let go.
 */
static int claim_checked(struct kernel_backend *k,
			 const struct dcdfs_extent *ext, size_t nr,
			 uint64_t size, char *dev, size_t len)
{
	size_t held = 0;
	int rc;

	for (;;) {
		rc = claim(k, ext, size, dev, len);
		if (rc < 0)
			break;
		rc = check_claim(k, dev, ext, nr, size);
		if (rc != -EBUSY || k->abi < KABI_V10 || ext[0].tagged ||
		    held >= k->known.nr) {
			if (rc < 0)
				teardown(k, dev);
			break;
		}
		rc = add_claim(k, UINT64_MAX, dev);
		if (rc < 0) {
			teardown(k, dev);
			break;
		}
		held++;
	}
	/* The wrong ones are the last @held on record. */
	while (held--) {
		teardown(k, k->claims[k->nr_claims - 1].dev);
		drop_claim(k, k->nr_claims - 1);
	}
	if (rc == -ENOENT && k->abi >= KABI_V10 && !ext[0].tagged)
		err(k->be.ctx, "the kernel has no free untagged extent at 0x%"
		    PRIx64 "\n", k->base + ext[0].offset);
	return rc;
}

static int kernel_mem_open(struct dcdfs_backend *be,
			   const struct dcdfs_extent *ext, size_t nr,
			   struct memmap_seg *segs, size_t *ret_nr)
{
	struct kernel_backend *k = to_k(be);
	char dev[32];
	uint64_t size = 0;
	int rc, fd;

	for (size_t i = 0; i < nr; i++)
		size += ext[i].length;
	guard(mutex)(&k->lock);
	rc = claim_checked(k, ext, nr, size, dev, sizeof(dev));
	if (rc < 0)
		return rc;
	rc = write_driver(k, "bind", dev);
	fd = rc < 0 ? rc : claim_open(k, dev, O_RDWR);
	if (fd >= 0)
		rc = add_claim(k, ext[0].offset, dev);
	if (fd < 0 || rc < 0) {
		if (fd >= 0)
			(void) close(fd);
		teardown(k, dev);
		return fd < 0 ? fd : rc;
	}
	segs[0] = (struct memmap_seg){ fd, 0, size };
	*ret_nr = 1;
	return 0;
}

static void kernel_mem_close(struct dcdfs_backend *be,
			     const struct dcdfs_extent *ext, size_t nr)
{
	struct kernel_backend *k = to_k(be);

	(void) nr;
	guard(mutex)(&k->lock);
	/*
	 * An orphan first: if a revoked allocation and a new one of the same
	 * offset are both open, whichever closes first takes the orphan, so
	 * the live device goes only once both are closed.
	 */
	for (int orphan = 1; orphan >= 0; orphan--) {
		for (size_t i = 0; i < k->nr_claims; i++) {
			if (k->claims[i].offset != ext[0].offset ||
			    (k->claims[i].dev[0] == '\0') != orphan)
				continue;
			if (!orphan)
				teardown(k, k->claims[i].dev);
			drop_claim(k, i);
			return;
		}
	}
}

/* The claimed device again, for a client: it covers the allocation only. */
static int kernel_mem_fds(struct dcdfs_backend *be,
			  const struct dcdfs_extent *ext, size_t nr,
			  bool writable, struct memmap_seg *segs,
			  size_t *ret_nr)
{
	struct kernel_backend *k = to_k(be);
	uint64_t size = 0;
	int fd;

	for (size_t i = 0; i < nr; i++)
		size += ext[i].length;
	guard(mutex)(&k->lock);
	for (size_t i = 0; i < k->nr_claims; i++) {
		/* The live device of the allocation, not an orphan. */
		if (k->claims[i].offset != ext[0].offset ||
		    !k->claims[i].dev[0] || k->claims[i].size != size)
			continue;
		fd = claim_open(k, k->claims[i].dev,
				writable ? O_RDWR : O_RDONLY);
		if (fd < 0)
			return fd;
		segs[0] = (struct memmap_seg){ fd, 0, size };
		*ret_nr = 1;
		return 0;
	}
	return set_error(-ENOENT, "no DAX device claimed for the allocation");
}

/*
 * Tear down the DAX devices a daemon that died left claimed: those of
 * this boot that still have the range and size they had when claimed.
 * Anything else is another's now (the kernel reuses names), left alone.
 */
static void claims_recover(struct kernel_backend *k)
{
	_cleanup_fclose_ FILE *f = fopen(k->claims_path, "re");
	char line[128], dev[33], boot[64], was[64];
	uint64_t resource, size, now_resource, now_size;
	char tail;

	if (!f)
		return;
	boot_id(boot, sizeof(boot));
	if (!fgets(line, sizeof(line), f) ||
	    sscanf(line, "boot %63s %c", was, &tail) != 1 ||
	    (strcmp(was, boot) && strcmp(was, "-") && strcmp(boot, "-"))) {
		info(k->be.ctx, "ignoring '%s': not from this boot\n",
		     k->claims_path);
		(void) unlink(k->claims_path);
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%32s %" SCNx64 " %" SCNx64 " %c", dev,
			   &resource, &size, &tail) != 3 ||
		    strncmp(dev, "dax", 3) || strchr(dev, '/'))
			continue;
		if (read_dax_u64(k, dev, "resource", &now_resource) < 0 ||
		    read_dax_u64(k, dev, "size", &now_size) < 0 ||
		    now_resource != resource || now_size != size) {
			info(k->be.ctx, "'%s', claimed by a previous dcdfs,"
			     " is gone or another's now: left alone\n", dev);
			continue;
		}
		info(k->be.ctx, "tearing down '%s', left claimed by a previous"
		     " dcdfs\n", dev);
		teardown(k, dev);
	}
	(void) unlink(k->claims_path);
}

/* ------------------------------------------------------------------------ */
/* Host-initiated release: the release helper                               */
/* ------------------------------------------------------------------------ */

static int run_helper(struct kernel_backend *k,
		      const struct dcdfs_extent *ext, size_t nr)
{
	char **argv = calloc(nr + 4, sizeof(*argv));
	char tag[DCDFS_TAG_STR_LEN], untagged[] = "0";
	int status, rc = 0;
	pid_t pid;

	if (!argv)
		return -ENOMEM;
	argv[0] = k->helper;
	argv[1] = k->region;
	argv[2] = ext[0].tagged ? dcdfs_format_tag(ext[0].tag, tag) : untagged;
	for (size_t i = 0; i < nr && !rc; i++)
		if (asprintf(&argv[3 + i], "0x%" PRIx64 ":0x%" PRIx64,
			     ext[i].offset, ext[i].length) < 0)
			rc = -ENOMEM;
	if (!rc) {
		int r = posix_spawn(&pid, k->helper, NULL, NULL, argv, environ);

		/* Not ENOENT, which callers take for "released already". */
		if (r)
			rc = set_error(-EIO, "cannot run release helper '%s':"
				       " %s", k->helper, strerror(r));
		if (!rc && waitpid(pid, &status, 0) < 0)
			rc = -errno;
		if (!rc && (!WIFEXITED(status) || WEXITSTATUS(status)))
			rc = set_error(-EIO, "release helper '%s' failed",
				       k->helper);
	}
	for (size_t i = 0; i < nr; i++)
		free(argv[3 + i]);
	free(argv);
	return rc;
}

static int kernel_release(struct dcdfs_backend *be,
			  const struct dcdfs_extent *ext, size_t nr)
{
	struct kernel_backend *k = to_k(be);
	int rc;

	if (!k->helper) {
		err(be->ctx, "cannot give back 0x%" PRIx64 ":0x%" PRIx64
		    ": the kernel has no host-initiated release; mount with"
		    " -o release_helper=PROG to ask the fabric manager\n",
		    ext[0].offset, ext[0].length);
		return set_error(-EOPNOTSUPP, "no release helper");
	}
	rc = run_helper(k, ext, nr);
	if (rc < 0) {
		err(be->ctx, "%s\n", dcdfs_strerror(rc));
		return rc;
	}
	/* Asked for: the extents go when the FM releases them. */
	return -EINPROGRESS;
}

/* ------------------------------------------------------------------------ */
/* Setup                                                                    */
/* ------------------------------------------------------------------------ */

static const char *const abi_names[] = {
	[KABI_V6] = "v4-v8 (dcY), extent tags in 'tag', DAX claim by size",
	[KABI_V9] = "v9 (dynamic_ram_a), extent tags in 'uuid', DAX claim by"
		    " size",
	[KABI_V10] = "v10 (dynamic_ram_a), extent tags in 'uuid', DAX claim by"
		     " uuid",
	[KABI_V11] = "v11 (dynamic_ram_1), extent tags in 'uuid', DAX claim by"
		     " uuid",
};

static int read_region_u64(struct kernel_backend *k, const char *attr,
			   uint64_t *ret)
{
	char path[PATH_LEN], buf[64];
	int rc = kpath(k, path, "%s/%s", k->region, attr);

	if (!rc)
		rc = sysfs_read_attr(path, buf, sizeof(buf));
	if (!rc)
		rc = ksysfs_parse_u64(buf, ret);
	if (rc < 0)
		return set_error(rc == -ENOENT ? -ENODEV : -EINVAL,
				 "cannot read '%s': %s", path, strerror(-rc));
	return 0;
}

/* The decoder's DPA base, to turn trace records into region offsets. */
static void read_dpa(struct kernel_backend *k)
{
	char path[PATH_LEN], decoder[64], buf[64];

	if (kpath(k, path, "%s/target0", k->region) < 0 ||
	    sysfs_read_attr(path, decoder, sizeof(decoder)) < 0 ||
	    strchr(decoder, '/') ||
	    kpath(k, path, "%s/dpa_resource", decoder) < 0 ||
	    sysfs_read_attr(path, buf, sizeof(buf)) < 0 ||
	    ksysfs_parse_u64(buf, &k->dpa) < 0)
		return;
	k->have_dpa = true;
}

static int detect_abi(struct kernel_backend *k)
{
	char path[PATH_LEN], mode[32], seed[32];
	struct stat st;
	bool has_uuid = false;
	int rc;

	rc = kpath(k, path, "%s/mode", k->region);
	if (!rc)
		rc = sysfs_read_attr(path, mode, sizeof(mode));
	if (rc < 0)
		return set_error(rc == -ENOENT ? -ENODEV : rc,
				 "no CXL region '%s' under '%s': %s",
				 k->region, k->root, strerror(-rc));
	if (kpath(k, path, "dax_region%u/dax_region/seed", k->id) == 0 &&
	    sysfs_read_attr(path, seed, sizeof(seed)) == 0 &&
	    !strchr(seed, '/') &&
	    kpath(k, path, "dax_region%u/%s/uuid", k->id, seed) == 0)
		has_uuid = stat(path, &st) == 0;
	rc = ksysfs_parse_mode(mode, has_uuid, &k->abi);
	if (rc < 0)
		return set_error(rc, "'%s' is not a dynamic capacity region"
				 " (mode '%s')", k->region, mode);
	return 0;
}

static void read_numa(struct kernel_backend *k)
{
	char path[PATH_LEN], seed[32], buf[32];
	char *end;
	long v;

	k->numa_node = -1;
	if (kpath(k, path, "dax_region%u/dax_region/seed", k->id) < 0 ||
	    sysfs_read_attr(path, seed, sizeof(seed)) < 0 || strchr(seed, '/') ||
	    kpath(k, path, "dax_region%u/%s/target_node", k->id, seed) < 0 ||
	    sysfs_read_attr(path, buf, sizeof(buf)) < 0)
		return;
	v = strtol(buf, &end, 10);
	if (!*end && end != buf && v >= -1 && v < 4096)
		k->numa_node = (int)v;
}

static void kernel_close(struct dcdfs_backend *be)
{
	struct kernel_backend *k = to_k(be);

	/* Claims end with their mappings; any left here are torn down. */
	for (size_t i = 0; i < k->nr_claims; i++)
		if (k->claims[i].dev[0])
			teardown(k, k->claims[i].dev);
	k->nr_claims = 0;
	if (k->claims_path)
		(void) unlink(k->claims_path);
	trace_close(k);
	kset_clear(&k->known);
	kset_clear(&k->candidates);
	free_names(k->bad, k->nr_bad);
	pthread_mutex_destroy(&k->lock);
	free(k->claims);
	free(k->root);
	free(k->devdir);
	free(k->helper);
	free(k->state_path);
	free(k->claims_path);
	dcdfs_unref(be->ctx);
	free(k);
}

static const struct dcdfs_backend_ops kernel_ops = {
	.name = "kernel",
	.close = kernel_close,
	.get_info = kernel_info,
	.event_fd = kernel_event_fd,
	.extents = kernel_extents,
	.events = kernel_events,
	.release = kernel_release,
	.mem_open = kernel_mem_open,
	.mem_close = kernel_mem_close,
	.mem_fds = kernel_mem_fds,
};

static int parse_region(const char *name, unsigned int *ret)
{
	char tail;

	if (!name || sscanf(name, "region%u%c", ret, &tail) != 1)
		return set_error(-EINVAL, "cxl_region must be regionN, not"
				 " '%s'", name ? name : "");
	return 0;
}

static int state_paths(struct kernel_backend *k,
		       const struct dcdfs_host_config *cfg)
{
	if (cfg->state)
		k->state_path = strdup(cfg->state);
	else if (asprintf(&k->state_path, "%s/%s.db", DCDFS_STATEDIR,
			  k->region) < 0)
		k->state_path = NULL;
	if (!k->state_path ||
	    asprintf(&k->claims_path, "%s.claims", k->state_path) < 0)
		return -ENOMEM;
	/* The default directory may not exist yet. */
	if (!cfg->state && mkdir(DCDFS_STATEDIR, 0755) < 0 && errno != EEXIST)
		return set_error(-errno, "cannot create '%s': %s",
				 DCDFS_STATEDIR, strerror(errno));
	return 0;
}

static int kernel_setup(struct kernel_backend *k,
			const struct dcdfs_host_config *cfg)
{
	int rc;

	rc = parse_region(cfg->cxl_region, &k->id);
	if (rc < 0)
		return rc;
	snprintf(k->region, sizeof(k->region), "region%u", k->id);
	k->root = strdup(cfg->sysfs ? cfg->sysfs : "/sys");
	k->devdir = strdup(cfg->devdir ? cfg->devdir : "/dev");
	k->helper = cfg->release_helper ? strdup(cfg->release_helper) : NULL;
	if (!k->root || !k->devdir || (cfg->release_helper && !k->helper))
		return -ENOMEM;
	k->poll_ms = cfg->poll_ms ? (int)cfg->poll_ms : DEFAULT_POLL_MS;
	rc = detect_abi(k);
	if (!rc)
		rc = read_region_u64(k, "resource", &k->base);
	if (!rc)
		rc = read_region_u64(k, "size", &k->size);
	if (!rc)
		rc = state_paths(k, cfg);
	if (rc < 0)
		return rc;
	/* Said once the region is usable: a failed mount is one line. */
	info(k->be.ctx, "%s: kernel DCD ABI %s\n", k->region,
	     abi_names[k->abi]);
	read_dpa(k);
	read_numa(k);
	claims_recover(k);
	trace_open(k);
	return 0;
}

int backend_kernel_open(struct dcdfs_ctx *ctx,
			const struct dcdfs_host_config *cfg,
			struct dcdfs_backend **ret)
{
	struct kernel_backend *k = calloc(1, sizeof(*k));
	int rc;

	if (!k)
		return -ENOMEM;
	k->be.ops = &kernel_ops;
	k->be.ctx = dcdfs_ref(ctx);
	k->trace_fd = -1;
	pthread_mutex_init(&k->lock, NULL);
	rc = kernel_setup(k, cfg);
	if (rc < 0) {
		kernel_close(&k->be);
		return rc;
	}
	*ret = &k->be;
	return 0;
}
