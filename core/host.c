// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * DOC: the host - registry, device events and the change queue
 *
 * The registry indexes allocations two ways: by name (what the file system
 * looks up; only allocations that have a file) and by extent offset (what
 * release events name; every allocation still held).  Both, with every
 * allocation's state and pins, are protected by host->lock.
 *
 * Events are read from the backend and handled in dcdfs_host_process():
 *
 * - an add chain is split into allocations (one per untagged extent, one per
 *   tag) and each is checked as the newest kernel series checks a tag group:
 *   2 MiB alignment, a tag not already live on the host, sequence numbers
 *   all zero or exactly 0..n-1.  A group that fails is dropped whole.  The
 *   survivors get their names first (OFFERED, not yet pinnable) and become
 *   ACTIVE once the device has the answer;
 * - a release is completed at once for an unpinned allocation and refused
 *   for a pinned one, which becomes RELEASE_PENDING until its last unpin;
 *   an allocation touched by a release goes back whole;
 * - a forced release revokes what it touched, pinned or not; the rest of a
 *   partly revoked allocation is given back too.
 *
 * Changes of the namespace are queued for the file system, which tells the
 * kernel's caches from a thread of its own (dcdfs_host_next_change()).
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <dcdfs/libdcdfs.h>

#include "attrs.h"
#include "backend.h"
#include "cleanup.h"
#include "host.h"
#include "private.h"

#define PMD_SIZE (2ULL << 20)

static int name_cmp(struct dcdfs_alloc *a, struct dcdfs_alloc *b)
{
	return strcmp(a->name, b->name);
}

static int ext_cmp(struct alloc_ext *a, struct alloc_ext *b)
{
	return a->ext.offset < b->ext.offset ? -1 :
					       a->ext.offset > b->ext.offset;
}

RB_GENERATE_STATIC(name_tree, dcdfs_alloc, name_node, name_cmp)
RB_GENERATE_STATIC(ext_tree, alloc_ext, node, ext_cmp)

void host_assert_locked(struct dcdfs_host *host)
{
	/* A locked mutex cannot be taken again without blocking. */
	assert(pthread_mutex_trylock(&host->lock) == EBUSY);
	(void) host;
}

void host_name_locked(struct dcdfs_host *host, struct dcdfs_alloc *alloc)
{
	host_assert_locked(host);
	if (alloc->named)
		return;
	RB_INSERT(name_tree, &host->names, alloc);
	alloc->named = true;
	host->nr_named++;
}

void host_unname_locked(struct dcdfs_host *host, struct dcdfs_alloc *alloc)
{
	host_assert_locked(host);
	if (!alloc->named)
		return;
	RB_REMOVE(name_tree, &host->names, alloc);
	alloc->named = false;
	host->nr_named--;
}

static void index_locked(struct dcdfs_host *host, struct dcdfs_alloc *alloc)
{
	for (size_t i = 0; i < alloc->nr_extents; i++)
		RB_INSERT(ext_tree, &host->extents, &alloc->extents[i]);
	alloc->indexed = true;
	host->held += alloc->size;
	dcdfs_alloc_ref(alloc);		/* the registry's reference */
}

/* Forget a released or revoked allocation; drops the registry's reference. */
void host_unindex_locked(struct dcdfs_host *host, struct dcdfs_alloc *alloc)
{
	host_assert_locked(host);
	host_unname_locked(host, alloc);
	if (!alloc->indexed)
		return;
	for (size_t i = 0; i < alloc->nr_extents; i++)
		RB_REMOVE(ext_tree, &host->extents, &alloc->extents[i]);
	alloc->indexed = false;
	host->held -= alloc->size;
	dcdfs_alloc_unref(alloc);	/* not the last: callers hold one */
}

static struct dcdfs_alloc *find_extent_locked(struct dcdfs_host *host,
					      uint64_t offset)
{
	struct alloc_ext key = { .ext.offset = offset };
	struct alloc_ext *e = RB_FIND(ext_tree, &host->extents, &key);

	return e ? e->alloc : NULL;
}

static struct dcdfs_alloc *find_name_locked(struct dcdfs_host *host,
					    const char *name)
{
	struct dcdfs_alloc key;

	if (strlen(name) >= sizeof(key.name))
		return NULL;
	strcpy(key.name, name);
	return RB_FIND(name_tree, &host->names, &key);
}

void host_wake(struct dcdfs_host *host)
{
	uint64_t one = 1;

	if (write(host->wake_fd, &one, sizeof(one)) < 0)
		dbg(host->ctx, "cannot wake the event loop: %s\n",
		    strerror(errno));
}

/* ------------------------------------------------------------------------ */
/* Change queue                                                             */
/* ------------------------------------------------------------------------ */

/*
 * Queue a change for the file system.  With @wait, return only once it has
 * been applied (or the host stops), so that the device is told afterwards.
 */
void host_queue_change(struct dcdfs_host *host, enum dcdfs_change_kind kind,
		       struct dcdfs_alloc *alloc, bool wait)
{
	struct change *c;
	uint64_t seq;

	guard(mutex)(&host->change_lock);
	if (!host->watching)
		return;
	c = calloc(1, sizeof(*c));
	if (!c) {
		err(host->ctx, "no memory to tell the kernel about '%s'\n",
		    alloc->name);
		return;
	}
	c->c.kind = kind;
	c->c.id = alloc->id;
	snprintf(c->c.name, sizeof(c->c.name), "%s", alloc->name);
	c->seq = seq = ++host->seq_queued;
	TAILQ_INSERT_TAIL(&host->changes, c, node);
	pthread_cond_broadcast(&host->change_cond);
	while (wait && host->seq_done < seq &&
	       !__atomic_load_n(&host->stopping, __ATOMIC_ACQUIRE))
		pthread_cond_wait(&host->done_cond, &host->change_lock);
}

DCDFS_EXPORT void dcdfs_host_watch_changes(struct dcdfs_host *host)
{
	guard(mutex)(&host->change_lock);
	host->watching = true;
}

static void deadline_in(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

DCDFS_EXPORT int dcdfs_host_next_change(struct dcdfs_host *host,
					struct dcdfs_change *ret,
					int timeout_ms)
{
	struct timespec deadline;
	struct change *c;

	if (timeout_ms >= 0)
		deadline_in(&deadline, timeout_ms);
	guard(mutex)(&host->change_lock);
	while (!(c = TAILQ_FIRST(&host->changes))) {
		if (__atomic_load_n(&host->stopping, __ATOMIC_ACQUIRE))
			return -ESHUTDOWN;
		if (timeout_ms < 0)
			pthread_cond_wait(&host->change_cond,
					  &host->change_lock);
		else if (pthread_cond_timedwait(&host->change_cond,
						&host->change_lock,
						&deadline) == ETIMEDOUT)
			return -ETIMEDOUT;
	}
	TAILQ_REMOVE(&host->changes, c, node);
	*ret = c->c;
	host->seq_taken = c->seq;
	free(c);
	return 0;
}

DCDFS_EXPORT void dcdfs_host_change_done(struct dcdfs_host *host)
{
	guard(mutex)(&host->change_lock);
	host->seq_done = host->seq_taken;
	pthread_cond_broadcast(&host->done_cond);
}

/* ------------------------------------------------------------------------ */
/* Grouping extents into allocations                                        */
/* ------------------------------------------------------------------------ */

struct group {
	struct dcdfs_extent *v;		/* in file order */
	size_t nr;
};

static bool same_group(const struct dcdfs_extent *a,
		       const struct dcdfs_extent *b)
{
	return a->tagged && b->tagged && !memcmp(a->tag, b->tag,
						 DCDFS_TAG_SIZE);
}

static int cmp_seq(const void *a, const void *b)
{
	const struct dcdfs_extent *x = a, *y = b;

	return (int)x->seq - (int)y->seq;
}

/*
 * Sequence numbers all zero (arrival order), or exactly 0..n-1 (sorted by
 * them).  Anything else is refused and the group left in arrival order.
 */
static bool order_group(struct group *g)
{
	bool all_zero = true, ok = true;
	_cleanup_free_ bool *seen = NULL;

	for (size_t i = 0; i < g->nr; i++)
		all_zero &= g->v[i].seq == 0;
	if (all_zero)
		return true;
	seen = calloc(g->nr, sizeof(*seen));
	if (!seen)
		return false;
	for (size_t i = 0; ok && i < g->nr; i++) {
		ok = g->v[i].seq < g->nr && !seen[g->v[i].seq];
		if (ok)
			seen[g->v[i].seq] = true;
	}
	if (ok)
		qsort(g->v, g->nr, sizeof(*g->v), cmp_seq);
	return ok;
}

/*
 * Split @nr extents (in arrival order) into groups: one per untagged
 * extent, one per tag, in order of first arrival.  The groups share one
 * array, which is returned in *@ret_buf.
 */
static int make_groups(const struct dcdfs_extent *ext, size_t nr,
		       struct group **ret, size_t *ret_nr,
		       struct dcdfs_extent **ret_buf)
{
	struct dcdfs_extent *buf = malloc((nr + 1) * sizeof(*buf));
	struct group *groups = calloc(nr + 1, sizeof(*groups));
	bool *used = calloc(nr + 1, sizeof(*used));
	size_t ng = 0, k = 0;

	if (!buf || !groups || !used) {
		free(buf);
		free(groups);
		free(used);
		return -ENOMEM;
	}
	for (size_t i = 0; i < nr; i++) {
		if (used[i])
			continue;
		groups[ng].v = &buf[k];
		for (size_t j = i; j < nr; j++) {
			if (j != i && (used[j] || !same_group(&ext[i], &ext[j])))
				continue;
			used[j] = true;
			buf[k++] = ext[j];
			groups[ng].nr++;
		}
		ng++;
	}
	free(used);
	*ret = groups;
	*ret_nr = ng;
	*ret_buf = buf;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Add events                                                               */
/* ------------------------------------------------------------------------ */

static const char *check_group_locked(struct dcdfs_host *host,
				      struct group *g)
{
	char tag[DCDFS_TAG_STR_LEN];

	for (size_t i = 0; i < g->nr; i++)
		if (!is_aligned(g->v[i].offset | g->v[i].length, PMD_SIZE))
			return "not 2 MiB aligned";
	if (!order_group(g))
		return "sequence numbers are not 0..n-1";
	if (g->v[0].tagged &&
	    find_name_locked(host, dcdfs_format_tag(g->v[0].tag, tag)))
		return "its tag is already in use";
	return NULL;
}

static void log_dropped(struct dcdfs_host *host, const struct group *g,
			const char *why)
{
	char tag[DCDFS_TAG_STR_LEN];

	if (g->v[0].tagged)
		info(host->ctx, "dropping the %zu extent(s) tagged %s: %s\n",
		     g->nr, dcdfs_format_tag(g->v[0].tag, tag), why);
	else
		info(host->ctx, "dropping extent 0x%" PRIx64 ":0x%" PRIx64
		     ": %s\n", g->v[0].offset, g->v[0].length, why);
}

/* Name a new allocation; it is OFFERED until the device has the answer. */
static int offer_locked(struct dcdfs_host *host, struct group *g,
			struct dcdfs_alloc **ret)
{
	struct dcdfs_alloc *alloc;

	alloc = alloc_new(host, g->v, g->nr, DCDFS_ALLOC_OFFERED);
	if (!alloc)
		return -ENOMEM;
	alloc->id = host->next_id++;
	index_locked(host, alloc);
	host_name_locked(host, alloc);
	*ret = alloc;
	return 0;
}

/* Validate the groups; offer the valid ones; list the extents accepted. */
static int offer_groups(struct dcdfs_host *host, struct group *groups,
			size_t ng, struct dcdfs_alloc **allocs,
			struct dcdfs_extent *accepted, size_t *ret_nr)
{
	size_t na = 0;
	int rc = 0;

	guard(mutex)(&host->lock);
	for (size_t i = 0; i < ng; i++) {
		const char *why = check_group_locked(host, &groups[i]);

		if (why) {
			log_dropped(host, &groups[i], why);
			continue;
		}
		rc = offer_locked(host, &groups[i], &allocs[i]);
		if (rc < 0)
			break;
		memcpy(&accepted[na], groups[i].v,
		       groups[i].nr * sizeof(*accepted));
		na += groups[i].nr;
	}
	*ret_nr = na;
	return rc;
}

/* Settle the offered allocations once the device has (or has not) agreed. */
static void settle_offers(struct dcdfs_host *host, struct dcdfs_alloc **allocs,
			  size_t ng, int rc)
{
	for (size_t i = 0; i < ng; i++) {
		struct dcdfs_alloc *alloc = allocs[i];

		if (!alloc)
			continue;
		scoped_guard(mutex, &host->lock) {
			alloc_set_state_locked(alloc, rc ? DCDFS_ALLOC_RELEASED :
							   DCDFS_ALLOC_ACTIVE);
			if (rc)
				host_unindex_locked(host, alloc);
		}
		if (rc && alloc->attr_saved &&
		    attrs_del(host->attrs, alloc->name) < 0)
			dbg(host->ctx, "cannot forget the attributes of '%s',"
			    " ignoring\n", alloc->name);
		host_queue_change(host, rc ? DCDFS_CHANGE_REMOVED :
					     DCDFS_CHANGE_ADDED, alloc, false);
		dcdfs_alloc_unref(alloc);
	}
}

static int handle_add(struct dcdfs_host *host, const struct backend_event *ev)
{
	_cleanup_free_ struct dcdfs_extent *buf = NULL, *accepted = NULL;
	_cleanup_free_ struct dcdfs_alloc **allocs = NULL;
	_cleanup_free_ struct group *groups = NULL;
	size_t ng, na = 0;
	int rc;

	rc = make_groups(ev->extents, ev->nr_extents, &groups, &ng, &buf);
	if (rc < 0)
		return rc;
	allocs = calloc(ng + 1, sizeof(*allocs));
	accepted = calloc(ev->nr_extents + 1, sizeof(*accepted));
	if (!allocs || !accepted)
		return -ENOMEM;
	rc = offer_groups(host, groups, ng, allocs, accepted, &na);
	if (!rc && !ev->done && host->be->ops->accept)
		rc = host->be->ops->accept(host->be, ev->info.id, accepted, na);
	if (rc < 0)
		err(host->ctx, "cannot answer add event %" PRIu64 ": %s\n",
		    ev->info.id, dcdfs_strerror(rc));
	settle_offers(host, allocs, ng, rc);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Release events                                                           */
/* ------------------------------------------------------------------------ */

/* The distinct allocations an event touches, and the extents of none. */
struct touched {
	struct dcdfs_alloc **allocs;	/* referenced */
	size_t nr;
	struct dcdfs_extent *strays;
	size_t nr_strays;
};

static void touched_free(struct touched *t)
{
	for (size_t i = 0; i < t->nr; i++)
		dcdfs_alloc_unref(t->allocs[i]);
	free(t->allocs);
	free(t->strays);
}

static int collect_touched_locked(struct dcdfs_host *host,
				  const struct backend_event *ev,
				  struct touched *t)
{
	t->allocs = calloc(ev->nr_extents + 1, sizeof(*t->allocs));
	t->strays = calloc(ev->nr_extents + 1, sizeof(*t->strays));
	if (!t->allocs || !t->strays)
		return -ENOMEM;
	for (size_t i = 0; i < ev->nr_extents; i++) {
		struct dcdfs_alloc *a = find_extent_locked(host,
							   ev->extents[i].offset);
		size_t j;

		if (!a) {
			t->strays[t->nr_strays++] = ev->extents[i];
			continue;
		}
		for (j = 0; j < t->nr && t->allocs[j] != a; j++)
			;
		if (j == t->nr)
			t->allocs[t->nr++] = dcdfs_alloc_ref(a);
	}
	return 0;
}

/*
 * Decide for one allocation the FM asked for: released now (returns true,
 * caller commits), or kept because it is pinned (*@refused set).
 */
static bool decide_release_locked(struct dcdfs_host *host,
				  struct dcdfs_alloc *a, bool *refused)
{
	switch (a->state) {
	case DCDFS_ALLOC_ACTIVE:
		a->requested = true;
		/* A device that completes it on its own needs nothing from us. */
		if (!a->pins && !host->info.host_releases)
			return false;
		if (!a->pins) {
			alloc_set_state_locked(a, DCDFS_ALLOC_RELEASING);
			host_unname_locked(host, a);
			return true;
		}
		alloc_set_state_locked(a, DCDFS_ALLOC_RELEASE_PENDING);
		*refused = true;
		return false;
	case DCDFS_ALLOC_RELEASE_PENDING:
		/* Unpinned with its release due: a failed try left it so. */
		if (!a->pins && host->info.host_releases) {
			alloc_set_state_locked(a, DCDFS_ALLOC_RELEASING);
			host_unname_locked(host, a);
			return true;
		}
		*refused = true;
		return false;
	default:
		/* Being released already: that completes this event too. */
		return false;
	}
}

/*
 * Give back extents the host holds but presents no file for, one by one:
 * some may be gone already (a racing rm gave them back first).
 */
static int release_strays(struct dcdfs_host *host,
			  const struct dcdfs_extent *v, size_t nr)
{
	int rc = 0;

	for (size_t i = 0; i < nr; i++) {
		int r = host->be->ops->release(host->be, &v[i], 1);

		if (r < 0 && r != -ENOENT) {
			err(host->ctx, "cannot release extent 0x%" PRIx64
			    ":0x%" PRIx64 ": %s\n", v[i].offset, v[i].length,
			    dcdfs_strerror(r));
			rc = r;
		}
	}
	return rc;
}

static int handle_release(struct dcdfs_host *host,
			  const struct backend_event *ev)
{
	struct touched t = { 0 };
	bool *commit, refused = false;
	int rc;

	scoped_guard(mutex, &host->lock) {
		rc = collect_touched_locked(host, ev, &t);
		commit = rc ? NULL : calloc(t.nr + 1, sizeof(*commit));
		for (size_t i = 0; commit && i < t.nr; i++)
			commit[i] = decide_release_locked(host, t.allocs[i],
							  &refused);
	}
	if (!commit) {
		touched_free(&t);
		return -ENOMEM;
	}
	for (size_t i = 0; i < t.nr; i++)
		if (commit[i])
			(void) alloc_release_commit(t.allocs[i], false);
	if (host->info.host_releases)
		rc = release_strays(host, t.strays, t.nr_strays);
	if (refused && host->be->ops->refuse) {
		rc = host->be->ops->refuse(host->be, ev->info.id);
		/* Completed by a racing rm meanwhile: nothing to refuse. */
		if (rc == -ENOENT)
			rc = 0;
	}
	free(commit);
	touched_free(&t);
	return rc;
}

/*
 * The device completed a release on its own (the kernel backend): the
 * extents are gone.  An unpinned allocation is released; a pinned one, whose
 * memory went from under its users, revoked.
 */
static void gone_locked(struct dcdfs_host *host, struct dcdfs_alloc *a,
			enum dcdfs_change_kind *ret_kind)
{
	*ret_kind = DCDFS_CHANGE_REMOVED;
	if (a->pins) {
		alloc_set_state_locked(a, DCDFS_ALLOC_REVOKED);
		*ret_kind = DCDFS_CHANGE_REVOKED;
	} else {
		if (a->state != DCDFS_ALLOC_RELEASING)
			alloc_set_state_locked(a, DCDFS_ALLOC_RELEASING);
		alloc_set_state_locked(a, DCDFS_ALLOC_RELEASED);
	}
	host_unindex_locked(host, a);
}

static int handle_gone(struct dcdfs_host *host, const struct backend_event *ev)
{
	enum dcdfs_change_kind *kind;
	struct touched t = { 0 };
	int rc;

	scoped_guard(mutex, &host->lock) {
		rc = collect_touched_locked(host, ev, &t);
		kind = rc ? NULL : calloc(t.nr + 1, sizeof(*kind));
		for (size_t i = 0; kind && i < t.nr; i++)
			gone_locked(host, t.allocs[i], &kind[i]);
	}
	for (size_t i = 0; kind && i < t.nr; i++) {
		struct dcdfs_alloc *a = t.allocs[i];

		alloc_map_drop(a);
		if (a->attr_saved && attrs_del(host->attrs, a->name) < 0)
			dbg(host->ctx, "cannot forget the attributes of '%s',"
			    " ignoring\n", a->name);
		host_queue_change(host, kind[i], a, false);
	}
	free(kind);
	touched_free(&t);
	return kind || !t.nr ? 0 : -ENOMEM;
}

/* A forced release: the memory is gone already.  Revoke, then tidy up. */
static int handle_forced(struct dcdfs_host *host,
			 const struct backend_event *ev)
{
	struct touched t = { 0 };
	struct dcdfs_extent *rest = NULL;
	size_t nr_rest = 0, cap = 0;
	int rc;

	scoped_guard(mutex, &host->lock) {
		rc = collect_touched_locked(host, ev, &t);
		for (size_t i = 0; !rc && i < t.nr; i++) {
			struct dcdfs_alloc *a = t.allocs[i];

			cap += a->nr_extents;
			alloc_set_state_locked(a, DCDFS_ALLOC_REVOKED);
			host_unindex_locked(host, a);
		}
	}
	if (!rc && cap)
		rest = calloc(cap, sizeof(*rest));
	for (size_t i = 0; i < t.nr; i++) {
		struct dcdfs_alloc *a = t.allocs[i];

		/* What the FM did not take of it is given back. */
		for (size_t j = 0; rest && j < a->nr_extents; j++) {
			bool taken = false;

			for (size_t k = 0; k < ev->nr_extents; k++)
				taken |= ev->extents[k].offset ==
					 a->extents[j].ext.offset;
			if (!taken)
				rest[nr_rest++] = a->extents[j].ext;
		}
		alloc_map_drop(a);	/* if idle; otherwise at the last unpin */
		if (a->attr_saved && attrs_del(host->attrs, a->name) < 0)
			dbg(host->ctx, "cannot forget the attributes of '%s',"
			    " ignoring\n", a->name);
		host_queue_change(host, DCDFS_CHANGE_REVOKED, a, false);
	}
	if (!rc)
		(void) release_strays(host, rest, nr_rest);
	free(rest);
	touched_free(&t);
	if (!rc)
		rc = host->be->ops->ack(host->be, ev->info.id);
	return rc;
}

/*
 * Releases that became due at a last unpin.  Those queued now are handled;
 * one that fails is queued again, for the next pass.
 */
static void handle_work(struct dcdfs_host *host)
{
	size_t todo;

	scoped_guard(mutex, &host->lock) {
		struct dcdfs_alloc *a;

		todo = 0;
		TAILQ_FOREACH(a, &host->work, work_node)
			todo++;
	}
	while (todo--) {
		struct dcdfs_alloc *a;
		bool commit = false;

		scoped_guard(mutex, &host->lock) {
			a = TAILQ_FIRST(&host->work);
			if (!a)
				return;
			TAILQ_REMOVE(&host->work, a, work_node);
			a->queued = false;
			/*
			 * A device that completes releases itself does so
			 * when the FM retries, now that the claim is gone.
			 */
			if (a->state == DCDFS_ALLOC_RELEASE_PENDING &&
			    !a->pins && host->info.host_releases) {
				alloc_set_state_locked(a,
						       DCDFS_ALLOC_RELEASING);
				host_unname_locked(host, a);
				commit = true;
			}
		}
		if (commit)
			(void) alloc_release_commit(a, false);
		dcdfs_alloc_unref(a);
	}
}

DCDFS_EXPORT int dcdfs_host_process(struct dcdfs_host *host)
{
	struct backend_event *events = NULL;
	size_t nr = 0;
	int rc, first = 0;

	if (host->be->ops->event_drain)
		host->be->ops->event_drain(host->be);
	scoped_guard(mutex, &host->lock)
		first = host->first_pass;
	rc = host->be->ops->events(host->be, first, &events, &nr);
	if (rc < 0)
		return rc;
	if (first)
		scoped_guard(mutex, &host->lock)
			host->first_pass = false;
	for (size_t i = 0; i < nr; i++) {
		const struct backend_event *ev = &events[i];
		int r;

		if (ev->info.kind == DCDFS_EVENT_ADD)
			r = handle_add(host, ev);
		else if (ev->done)
			r = handle_gone(host, ev);
		else if (ev->info.kind == DCDFS_EVENT_RELEASE)
			r = handle_release(host, ev);
		else
			r = handle_forced(host, ev);
		if (r < 0 && !rc)
			rc = r;
	}
	backend_events_free(events, nr);
	handle_work(host);
	return rc;
}

DCDFS_EXPORT int dcdfs_host_run(struct dcdfs_host *host)
{
	struct pollfd pfd[2] = {
		{ .fd = host->wake_fd, .events = POLLIN },
		{ .fd = host->be->ops->event_fd(host->be), .events = POLLIN },
	};
	uint64_t v;

	while (!__atomic_load_n(&host->stopping, __ATOMIC_ACQUIRE)) {
		int rc = dcdfs_host_process(host);

		if (rc < 0)
			err(host->ctx, "handling device events failed: %s,"
			    " retrying\n", dcdfs_strerror(rc));
		if (poll(pfd, pfd[1].fd >= 0 ? 2 : 1, host->info.poll_ms) < 0 &&
		    errno != EINTR)
			return -errno;
		if (pfd[0].revents & POLLIN &&
		    read(host->wake_fd, &v, sizeof(v)) < 0)
			dbg(host->ctx, "wake: %s\n", strerror(errno));
	}
	return 0;
}

DCDFS_EXPORT void dcdfs_host_stop(struct dcdfs_host *host)
{
	__atomic_store_n(&host->stopping, true, __ATOMIC_RELEASE);
	host_wake(host);
	guard(mutex)(&host->change_lock);
	pthread_cond_broadcast(&host->change_cond);
	pthread_cond_broadcast(&host->done_cond);
}

/* ------------------------------------------------------------------------ */
/* Lookups                                                                  */
/* ------------------------------------------------------------------------ */

DCDFS_EXPORT void dcdfs_host_get_usage(struct dcdfs_host *host,
				       struct dcdfs_host_usage *ret)
{
	guard(mutex)(&host->lock);
	ret->capacity = host->info.capacity;
	ret->held = host->held;
	ret->block_size = host->info.block_size;
	ret->nr_allocs = host->nr_named;
}

DCDFS_EXPORT int dcdfs_host_lookup(struct dcdfs_host *host, const char *name,
				   struct dcdfs_alloc **ret)
{
	struct dcdfs_alloc *a;

	guard(mutex)(&host->lock);
	a = find_name_locked(host, name);
	if (!a)
		return -ENOENT;
	*ret = dcdfs_alloc_ref(a);
	return 0;
}

DCDFS_EXPORT int dcdfs_host_list(struct dcdfs_host *host,
				 struct dcdfs_alloc ***ret, size_t *ret_nr)
{
	struct dcdfs_alloc **v, *a;
	size_t n = 0;

	guard(mutex)(&host->lock);
	v = malloc((host->nr_named + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	RB_FOREACH(a, name_tree, &host->names)
		v[n++] = dcdfs_alloc_ref(a);
	*ret = v;
	*ret_nr = n;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Setup                                                                    */
/* ------------------------------------------------------------------------ */

static int open_backend(struct dcdfs_ctx *ctx,
			const struct dcdfs_host_config *cfg,
			struct dcdfs_backend **ret)
{
	if (!cfg->backend || !strcmp(cfg->backend, "sim"))
		return backend_sim_open(ctx, cfg, ret);
	if (!strcmp(cfg->backend, "kernel"))
		return backend_kernel_open(ctx, cfg, ret);
	return set_error(-EINVAL, "unknown backend '%s'", cfg->backend);
}

/* Present what the device says the host holds, as it held it. */
static int take_over(struct dcdfs_host *host)
{
	_cleanup_free_ struct dcdfs_extent *ext = NULL, *buf = NULL;
	_cleanup_free_ struct group *groups = NULL;
	struct dcdfs_alloc *a;
	size_t nr, ng;
	int rc;

	rc = host->be->ops->extents(host->be, &ext, &nr);
	if (rc < 0)
		return rc;
	rc = make_groups(ext, nr, &groups, &ng, &buf);
	if (rc < 0)
		return rc;
	guard(mutex)(&host->lock);
	for (size_t i = 0; i < ng; i++) {
		order_group(&groups[i]);
		a = alloc_new(host, groups[i].v, groups[i].nr,
			      DCDFS_ALLOC_ACTIVE);
		if (!a)
			return -ENOMEM;
		a->id = host->next_id++;
		index_locked(host, a);
		host_name_locked(host, a);
		dcdfs_alloc_unref(a);
	}
	return 0;
}

struct prune {
	struct dcdfs_host *host;
	char **stale;
	size_t nr, cap;
};

static int apply_attr(const char *name, const struct attrs_entry *e,
		      void *arg)
{
	struct prune *p = arg;
	struct dcdfs_alloc *a = find_name_locked(p->host, name);
	char **v;

	if (a) {
		a->attr = (struct dcdfs_alloc_attr){ e->mode, e->uid, e->gid,
						     e->ctime };
		a->attr_saved = true;
		return 0;
	}
	if (p->nr == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 8;
		v = realloc(p->stale, p->cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		p->stale = v;
	}
	p->stale[p->nr] = strdup(name);
	return p->stale[p->nr++] ? 0 : -ENOMEM;
}

/* Apply saved chmod/chown; forget those of allocations no longer held. */
static int load_attrs(struct dcdfs_host *host)
{
	struct prune p = { .host = host };
	int rc;

	scoped_guard(mutex, &host->lock)
		rc = attrs_foreach(host->attrs, apply_attr, &p);
	for (size_t i = 0; i < p.nr; i++) {
		if (!rc && p.stale[i])
			rc = attrs_del(host->attrs, p.stale[i]);
		free(p.stale[i]);
	}
	free(p.stale);
	return rc;
}

static struct dcdfs_host *host_alloc(struct dcdfs_ctx *ctx,
				     const struct dcdfs_host_config *cfg)
{
	struct dcdfs_host *host = calloc(1, sizeof(*host));
	pthread_condattr_t attr;

	if (!host)
		return NULL;
	host->ctx = dcdfs_ref(ctx);
	host->def_uid = cfg->uid;
	host->def_gid = cfg->gid;
	host->def_mode = cfg->mode & 07777;
	host->next_id = 2;	/* 1 is the root directory */
	host->first_pass = true;
	pthread_mutex_init(&host->lock, NULL);
	pthread_mutex_init(&host->change_lock, NULL);
	pthread_mutex_init(&host->idle_lock, NULL);
	TAILQ_INIT(&host->idle);
	/* Timed waits measure against CLOCK_MONOTONIC (deadline_in()). */
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&host->change_cond, &attr);
	pthread_cond_init(&host->done_cond, &attr);
	pthread_condattr_destroy(&attr);
	RB_INIT(&host->names);
	RB_INIT(&host->extents);
	TAILQ_INIT(&host->work);
	TAILQ_INIT(&host->changes);
	host->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (host->wake_fd < 0) {
		dcdfs_unref(host->ctx);
		free(host);
		return NULL;
	}
	return host;
}

DCDFS_EXPORT int dcdfs_host_new(struct dcdfs_ctx *ctx,
				const struct dcdfs_host_config *cfg,
				struct dcdfs_host **ret)
{
	struct dcdfs_host *host;
	int rc;

	clear_error();
	if (!ctx || !cfg || !ret)
		return -EINVAL;
	host = host_alloc(ctx, cfg);
	if (!host)
		return -ENOMEM;
	/* A store named on purpose is checked before the device is touched. */
	rc = cfg->state ? attrs_open(ctx, cfg->state, &host->attrs) : 0;
	if (!rc)
		rc = open_backend(ctx, cfg, &host->be);
	if (!rc) {
		host->be->ops->get_info(host->be, &host->info);
		if (!host->attrs)
			rc = attrs_open(ctx, host->info.state_path,
					&host->attrs);
	}
	if (!rc)
		rc = take_over(host);
	if (!rc)
		rc = load_attrs(host);
	if (rc < 0) {
		dcdfs_host_free(host);
		return rc;
	}
	*ret = host;
	return 0;
}

DCDFS_EXPORT void dcdfs_host_free(struct dcdfs_host *host)
{
	struct alloc_ext *e;
	struct dcdfs_alloc *a;
	struct change *c;

	if (!host)
		return;
	host_maps_drain(host);
	/*
	 * Releases still due stay pending on the device, refused: the next
	 * host to attach completes them.
	 */
	scoped_guard(mutex, &host->lock) {
		while ((a = TAILQ_FIRST(&host->work))) {
			TAILQ_REMOVE(&host->work, a, work_node);
			a->queued = false;
			dcdfs_alloc_unref(a);
		}
		while ((e = RB_MIN(ext_tree, &host->extents))) {
			a = dcdfs_alloc_ref(e->alloc);
			host_unindex_locked(host, a);
			dcdfs_alloc_unref(a);
		}
	}
	while ((c = TAILQ_FIRST(&host->changes))) {
		TAILQ_REMOVE(&host->changes, c, node);
		free(c);
	}
	attrs_close(host->attrs);
	if (host->be)
		host->be->ops->close(host->be);
	(void) close(host->wake_fd);
	pthread_cond_destroy(&host->done_cond);
	pthread_cond_destroy(&host->change_cond);
	pthread_mutex_destroy(&host->change_lock);
	pthread_mutex_destroy(&host->idle_lock);
	pthread_mutex_destroy(&host->lock);
	dcdfs_unref(host->ctx);
	free(host);
}
