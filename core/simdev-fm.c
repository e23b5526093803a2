// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * DOC: simulated device - fabric-manager side
 *
 * Add and release commands are validated as QEMU's CXL type-3 emulation
 * validates its QMP commands, and refused whole, changing nothing, when one
 * extent is wrong.  Capacity belongs to at most one host at a time: an add
 * may not overlap anything held by or offered to any host, which is what
 * keeps free + held + pending equal to the region's size.
 *
 * Each command is one transaction and posts one event; the host's doorbell
 * is rung after the commit.  Listing and checking are read-only.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include <dcdfs/libdcdfs.h>

#include "cleanup.h"
#include "private.h"
#include "simdev.h"

#define EXT_FMT "0x%" PRIx64 ":0x%" PRIx64

static int cmp_offset(const void *a, const void *b)
{
	const struct dcdfs_extent *x = a, *y = b;

	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static const uint8_t null_tag[DCDFS_TAG_SIZE];

static int check_request(struct dcdfs_simdev *dev,
			 const struct dcdfs_fm_request *req)
{
	if (req->host > DCDFS_SIMDEV_MAX_HOST)
		return set_error(-EINVAL, "host %u is out of range (0-%d)",
				 req->host, DCDFS_SIMDEV_MAX_HOST);
	if (req->region >= dev->nr_regions)
		return set_error(-EINVAL, "region %u does not exist (the device"
				 " has %u)", req->region, dev->nr_regions);
	if (req->nr_extents && !req->extents)
		return -EINVAL;
	if (req->tag && !memcmp(req->tag, null_tag, DCDFS_TAG_SIZE))
		return set_error(-EINVAL, "the null UUID is not a tag (it means"
				 " untagged)");
	return 0;
}

/*
 * Sort a copy of the request's extents and check each against the region
 * and its neighbour.  @align is the block size for adds, 1 for releases
 * (which must only match held extents).
 */
static int sorted_extents(struct dcdfs_simdev *dev,
			  const struct dcdfs_fm_request *req, bool add,
			  struct dcdfs_extent **ret)
{
	uint64_t region_size = dev->regions[req->region].size;
	struct dcdfs_extent *v;
	uint64_t end;

	v = malloc(req->nr_extents * sizeof(*v));
	if (!v)
		return -ENOMEM;
	memcpy(v, req->extents, req->nr_extents * sizeof(*v));
	qsort(v, req->nr_extents, sizeof(*v), cmp_offset);
	for (size_t i = 0; i < req->nr_extents; i++) {
		const struct dcdfs_extent *e = &v[i];
		int rc = 0;

		if (e->length == 0)
			rc = set_error(-EINVAL, "extent " EXT_FMT ": zero length",
				       e->offset, e->length);
		else if (add && (!is_aligned(e->offset, dev->block_size) ||
				 !is_aligned(e->length, dev->block_size)))
			rc = set_error(-EINVAL, "extent " EXT_FMT " is not aligned"
				       " to the block size 0x%" PRIx64,
				       e->offset, e->length, dev->block_size);
		else if (add_overflows(e->offset, e->length, &end) ||
			 end > region_size)
			rc = set_error(-ERANGE, "extent " EXT_FMT " lies outside"
				       " region %u (size 0x%" PRIx64 ")",
				       e->offset, e->length, req->region,
				       region_size);
		else if (i && v[i - 1].offset + v[i - 1].length > e->offset)
			rc = set_error(-EINVAL, "extents " EXT_FMT " and " EXT_FMT
				       " of the request overlap",
				       v[i - 1].offset, v[i - 1].length,
				       e->offset, e->length);
		if (rc < 0) {
			free(v);
			return rc;
		}
	}
	*ret = v;
	return 0;
}

/* Refuse an extent that overlaps capacity held by or offered to anyone. */
static int check_free_locked(struct dcdfs_simdev *dev, unsigned int region,
			     const struct dcdfs_extent *e)
{
	sqlite3_stmt *st = stmt_get_locked(dev, SQL_EXTENT_BEFORE);
	uint64_t start, length;
	unsigned int host;
	bool pending;
	int rc;

	sqlite3_bind_int(st, 1, (int)region);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)(e->offset + e->length));
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return rc == SQLITE_DONE ? 0 : sql_rc(dev, rc);
	}
	start = (uint64_t)sqlite3_column_int64(st, 0);
	length = (uint64_t)sqlite3_column_int64(st, 1);
	host = (unsigned int)sqlite3_column_int(st, 2);
	pending = sqlite3_column_type(st, 3) != SQLITE_NULL;
	sqlite3_reset(st);
	if (start + length <= e->offset)
		return 0;
	return set_error(-EEXIST, "extent " EXT_FMT " overlaps " EXT_FMT
			 " %s host %u", e->offset, e->length, start, length,
			 pending ? "already offered to" : "held by", host);
}

static int event_insert_locked(struct dcdfs_simdev *dev,
			       enum dcdfs_event_kind kind,
			       const struct dcdfs_fm_request *req, size_t nr,
			       uint64_t *ret)
{
	sqlite3_stmt *st = stmt_get_locked(dev, SQL_EVENT_INSERT);
	int rc;

	sqlite3_bind_int(st, 1, kind);
	sqlite3_bind_int(st, 2, (int)req->host);
	sqlite3_bind_int(st, 3, (int)req->region);
	if (req->tag)
		sqlite3_bind_blob(st, 4, req->tag, DCDFS_TAG_SIZE,
				  SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)nr);
	rc = step_done_locked(dev, st);
	if (rc < 0)
		return rc;
	*ret = (uint64_t)sqlite3_last_insert_rowid(dev->db);

	/* Keep the outcome of the last answered events, not all of them. */
	if (*ret > SIMDEV_EVENT_HISTORY) {
		st = stmt_get_locked(dev, SQL_EVENT_PRUNE);
		sqlite3_bind_int64(st, 1, (sqlite3_int64)(*ret -
							   SIMDEV_EVENT_HISTORY));
		rc = step_done_locked(dev, st);
	}
	return rc;
}

static int add_locked(struct dcdfs_simdev *dev,
		      const struct dcdfs_fm_request *req,
		      const struct dcdfs_extent *sorted, uint64_t *ret_event)
{
	struct dcdfs_extent tagged = { .tagged = req->tag != NULL };
	sqlite3_stmt *st;
	int rc;

	for (size_t i = 0; i < req->nr_extents; i++) {
		rc = check_free_locked(dev, req->region, &sorted[i]);
		if (rc < 0)
			return rc;
	}
	rc = event_insert_locked(dev, DCDFS_EVENT_ADD, req, req->nr_extents,
				 ret_event);
	if (rc < 0)
		return rc;
	if (req->tag)
		memcpy(tagged.tag, req->tag, DCDFS_TAG_SIZE);
	/* In the order given: that is the chain's arrival order. */
	for (size_t i = 0; i < req->nr_extents; i++) {
		const struct dcdfs_extent *e = &req->extents[i];

		st = stmt_get_locked(dev, SQL_EXTENT_INSERT);
		sqlite3_bind_int(st, 1, (int)req->host);
		sqlite3_bind_int(st, 2, (int)req->region);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)e->offset);
		sqlite3_bind_int64(st, 4, (sqlite3_int64)e->length);
		bind_tag(st, 5, &tagged);
		sqlite3_bind_int(st, 6, e->seq);
		sqlite3_bind_int64(st, 7, (sqlite3_int64)*ret_event);
		rc = step_done_locked(dev, st);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static void ring_host(struct dcdfs_simdev *dev, unsigned int host)
{
	char name[32];

	snprintf(name, sizeof(name), "host-%u", host);
	if (bell_ring(dev, name) < 0)
		dbg(dev->ctx, "cannot ring '%s', ignoring\n", name);
}

DCDFS_EXPORT int dcdfs_simdev_fm_add(struct dcdfs_simdev *dev,
				     const struct dcdfs_fm_request *req,
				     uint64_t *ret_event)
{
	_cleanup_free_ struct dcdfs_extent *sorted = NULL;
	uint64_t id = 0;
	int rc;

	clear_error();
	if (!dev || !req)
		return -EINVAL;
	rc = check_request(dev, req);
	if (rc < 0)
		return rc;
	if (!req->nr_extents)
		return set_error(-EINVAL, "an add needs at least one extent");
	if (req->forced)
		return set_error(-EINVAL, "an add cannot be forced");
	rc = sorted_extents(dev, req, true, &sorted);
	if (rc < 0)
		return rc;

	scoped_guard(mutex, &dev->lock) {
		rc = tx_begin_locked(dev);
		if (rc < 0)
			return rc;
		rc = add_locked(dev, req, sorted, &id);
		if (rc < 0) {
			tx_rollback_locked(dev);
			return rc;
		}
		rc = tx_commit_locked(dev);
		if (rc < 0)
			return rc;
	}
	ring_host(dev, req->host);
	if (ret_event)
		*ret_event = id;
	return 0;
}

/* A growing list of extents. */
struct extent_vec {
	struct dcdfs_extent *v;
	size_t nr, cap;
};

static int vec_push(struct extent_vec *vec, const struct dcdfs_extent *e)
{
	if (vec->nr == vec->cap) {
		size_t cap = vec->cap ? vec->cap * 2 : 16;
		struct dcdfs_extent *v = realloc(vec->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		vec->v = v;
		vec->cap = cap;
	}
	vec->v[vec->nr++] = *e;
	return 0;
}

/* Resolve one release range into the whole held extents that tile it. */
static int cover_range_locked(struct dcdfs_simdev *dev,
			      const struct dcdfs_fm_request *req,
			      const struct dcdfs_extent *range,
			      struct extent_vec *items)
{
	uint64_t pos = range->offset, end = range->offset + range->length;

	while (pos < end) {
		sqlite3_stmt *st = stmt_get_locked(dev, SQL_EXTENT_AT);
		struct dcdfs_extent e;
		unsigned int host;
		bool pending;
		int rc;

		sqlite3_bind_int(st, 1, (int)req->region);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)pos);
		rc = sqlite3_step(st);
		if (rc != SQLITE_ROW) {
			sqlite3_reset(st);
			if (rc != SQLITE_DONE)
				return sql_rc(dev, rc);
			return set_error(-ENOENT, "range " EXT_FMT ": no extent"
					 " of host %u starts at 0x%" PRIx64,
					 range->offset, range->length,
					 req->host, pos);
		}
		host = (unsigned int)sqlite3_column_int(st, 0);
		pending = sqlite3_column_type(st, 1) != SQLITE_NULL;
		memset(&e, 0, sizeof(e));
		e.region = req->region;
		e.offset = pos;
		e.length = (uint64_t)sqlite3_column_int64(st, 2);
		if (sqlite3_column_bytes(st, 3) == DCDFS_TAG_SIZE) {
			e.tagged = true;
			memcpy(e.tag, sqlite3_column_blob(st, 3),
			       DCDFS_TAG_SIZE);
		}
		sqlite3_reset(st);

		if (host != req->host || pending)
			return set_error(-ENOENT, "extent " EXT_FMT " is %s host"
					 " %u", e.offset, e.length,
					 pending ? "offered to, not held by," :
						   "held by",
					 host);
		if (pos + e.length > end)
			return set_error(-EINVAL, "range " EXT_FMT " ends inside"
					 " extent " EXT_FMT, range->offset,
					 range->length, e.offset, e.length);
		if (req->tag && (!e.tagged ||
				 memcmp(e.tag, req->tag, DCDFS_TAG_SIZE)))
			return set_error(-EINVAL, "extent " EXT_FMT " does not"
					 " carry the tag", e.offset, e.length);
		rc = vec_push(items, &e);
		if (rc < 0)
			return rc;
		pos += e.length;
	}
	return 0;
}

static int tagged_extents_locked(struct dcdfs_simdev *dev,
				 const struct dcdfs_fm_request *req,
				 struct extent_vec *items)
{
	sqlite3_stmt *st = stmt_get_locked(dev, SQL_EXTENTS_OF_TAG);
	char tag[DCDFS_TAG_STR_LEN];
	struct dcdfs_extent e;
	int rc;

	sqlite3_bind_int(st, 1, (int)req->host);
	sqlite3_bind_int(st, 2, (int)req->region);
	sqlite3_bind_blob(st, 3, req->tag, DCDFS_TAG_SIZE, SQLITE_TRANSIENT);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		extent_from_row(st, 0, &e);
		if (vec_push(items, &e) < 0) {
			sqlite3_reset(st);
			return -ENOMEM;
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return sql_rc(dev, rc);
	if (!items->nr)
		return set_error(-ENOENT, "host %u holds no extent tagged %s in"
				 " region %u", req->host,
				 dcdfs_format_tag(req->tag, tag), req->region);
	return 0;
}

static int release_locked(struct dcdfs_simdev *dev,
			  const struct dcdfs_fm_request *req,
			  const struct dcdfs_extent *sorted,
			  struct extent_vec *items, uint64_t *ret_event)
{
	enum dcdfs_event_kind kind = req->forced ? DCDFS_EVENT_FORCED_RELEASE :
						   DCDFS_EVENT_RELEASE;
	int rc = 0;

	if (!req->nr_extents)
		rc = tagged_extents_locked(dev, req, items);
	for (size_t i = 0; i < req->nr_extents && !rc; i++)
		rc = cover_range_locked(dev, req, &sorted[i], items);
	if (!rc)
		rc = event_insert_locked(dev, kind, req, items->nr, ret_event);
	for (size_t i = 0; i < items->nr && !rc; i++) {
		sqlite3_stmt *st = stmt_get_locked(dev, SQL_ITEM_INSERT);

		sqlite3_bind_int64(st, 1, (sqlite3_int64)*ret_event);
		sqlite3_bind_int(st, 2, (int)req->region);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)items->v[i].offset);
		sqlite3_bind_int64(st, 4, (sqlite3_int64)items->v[i].length);
		rc = step_done_locked(dev, st);
	}
	/* Forced: the capacity is free now; the host learns it afterwards. */
	for (size_t i = 0; i < items->nr && !rc && req->forced; i++)
		rc = extent_remove_locked(dev, req->region, items->v[i].offset);
	return rc;
}

DCDFS_EXPORT int dcdfs_simdev_fm_release(struct dcdfs_simdev *dev,
					 const struct dcdfs_fm_request *req,
					 uint64_t *ret_event)
{
	_cleanup_free_ struct dcdfs_extent *sorted = NULL;
	struct extent_vec items = { 0 };
	uint64_t id = 0;
	int rc;

	clear_error();
	if (!dev || !req)
		return -EINVAL;
	rc = check_request(dev, req);
	if (rc < 0)
		return rc;
	if (!req->nr_extents && !req->tag)
		return set_error(-EINVAL, "a release needs extents or a tag");
	if (req->nr_extents) {
		rc = sorted_extents(dev, req, false, &sorted);
		if (rc < 0)
			return rc;
	}

	scoped_guard(mutex, &dev->lock) {
		rc = tx_begin_locked(dev);
		if (!rc)
			rc = release_locked(dev, req, sorted, &items, &id);
		if (rc < 0)
			tx_rollback_locked(dev);
		else
			rc = tx_commit_locked(dev);
		free(items.v);
		if (rc < 0)
			return rc;
		/* Revoke the memory now; if that fails, the next opener does. */
		if (req->forced && scrub_locked(dev) < 0)
			err(dev->ctx, "cannot revoke released memory yet,"
			    " retrying later\n");
	}
	ring_host(dev, req->host);
	if (ret_event)
		*ret_event = id;
	return 0;
}

DCDFS_EXPORT int dcdfs_simdev_get_event(struct dcdfs_simdev *dev, uint64_t id,
					struct dcdfs_event_info *ret)
{
	clear_error();
	if (!dev || !ret)
		return -EINVAL;
	guard(mutex)(&dev->lock);
	return event_get_locked(dev, id, ret);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

DCDFS_EXPORT int dcdfs_simdev_wait_event(struct dcdfs_simdev *dev, uint64_t id,
					 int timeout_ms,
					 struct dcdfs_event_info *ret)
{
	int64_t deadline = now_ms() + timeout_ms;
	_cleanup_close_ int ifd = -1;
	int rc;

	clear_error();
	if (!dev || !ret)
		return -EINVAL;
	/* Watch first, then look: no answer can slip in between. */
	ifd = bell_watch(dev, BELL_FM);
	if (ifd < 0)
		return ifd;
	for (;;) {
		struct pollfd pfd = { .fd = ifd, .events = POLLIN };
		int64_t left;

		rc = dcdfs_simdev_get_event(dev, id, ret);
		if (rc < 0 || ret->state != DCDFS_EVENT_NEW)
			return rc;
		left = timeout_ms < 0 ? 1000 : deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		/* Look again at least every second, in case a bell was lost. */
		if (poll(&pfd, 1, (int)(left < 1000 ? left : 1000)) < 0 &&
		    errno != EINTR)
			return -errno;
		bell_drain(ifd);
	}
}

DCDFS_EXPORT int dcdfs_simdev_get_usage(struct dcdfs_simdev *dev,
					unsigned int region,
					uint64_t *ret_free, uint64_t *ret_held,
					uint64_t *ret_pending)
{
	sqlite3_stmt *st;
	uint64_t held, pending;
	int rc;

	clear_error();
	if (!dev || region >= dev->nr_regions)
		return -EINVAL;
	scoped_guard(mutex, &dev->lock) {
		st = stmt_get_locked(dev, SQL_USAGE);
		sqlite3_bind_int(st, 1, (int)region);
		rc = sqlite3_step(st);
		held = (uint64_t)sqlite3_column_int64(st, 0);
		pending = (uint64_t)sqlite3_column_int64(st, 1);
		sqlite3_reset(st);
		if (rc != SQLITE_ROW)
			return sql_rc(dev, rc);
	}
	if (ret_free)
		*ret_free = dev->regions[region].size - held - pending;
	if (ret_held)
		*ret_held = held;
	if (ret_pending)
		*ret_pending = pending;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Listing                                                                  */
/* ------------------------------------------------------------------------ */

static const char list_extents_sql[] =
	"SELECT x.host, x.region, x.start, x.length, x.seq, x.tag, x.chain,"
	" (SELECT min(i.event) FROM release_item i JOIN event v"
	"  ON v.id = i.event WHERE i.region = x.region AND i.start = x.start"
	"  AND v.kind = 1)"
	" FROM extent x WHERE ?1 < 0 OR x.host = ?1 ORDER BY x.region, x.start";

static int collect_extents_locked(struct dcdfs_simdev *dev, int host,
				  struct dcdfs_extent_info **ret,
				  size_t *ret_nr)
{
	struct dcdfs_extent_info *v = NULL, *nv;
	size_t nr = 0, cap = 0;
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(dev->db, list_extents_sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sql_rc(dev, rc);
	sqlite3_bind_int(st, 1, host);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct dcdfs_extent_info *x;

		if (nr == cap) {
			cap = cap ? cap * 2 : 64;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				rc = SQLITE_NOMEM;
				break;
			}
			v = nv;
		}
		x = &v[nr++];
		x->host = (unsigned int)sqlite3_column_int(st, 0);
		extent_from_row(st, 1, &x->extent);
		x->state = DCDFS_EXTENT_HELD;
		x->event = 0;
		if (sqlite3_column_type(st, 6) != SQLITE_NULL) {
			x->state = DCDFS_EXTENT_PENDING;
			x->event = (uint64_t)sqlite3_column_int64(st, 6);
		} else if (sqlite3_column_type(st, 7) != SQLITE_NULL) {
			x->state = DCDFS_EXTENT_RELEASE_PENDING;
			x->event = (uint64_t)sqlite3_column_int64(st, 7);
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(v);
		return sql_rc(dev, rc);
	}
	*ret = v;
	*ret_nr = nr;
	return 0;
}

DCDFS_EXPORT int dcdfs_simdev_foreach_extent(struct dcdfs_simdev *dev,
					     int host, dcdfs_extent_cb cb,
					     void *arg)
{
	_cleanup_free_ struct dcdfs_extent_info *v = NULL;
	size_t nr = 0;
	int rc;

	clear_error();
	if (!dev || !cb)
		return -EINVAL;
	/* Collect first: @cb runs without the device lock. */
	scoped_guard(mutex, &dev->lock) {
		rc = collect_extents_locked(dev, host, &v, &nr);
		if (rc < 0)
			return rc;
	}
	for (size_t i = 0; i < nr; i++) {
		rc = cb(&v[i], arg);
		if (rc)
			return rc;
	}
	return 0;
}

static int collect_events_locked(struct dcdfs_simdev *dev, int host,
				 uint64_t **ret, size_t *ret_nr)
{
	static const char sql[] = "SELECT id FROM event WHERE state < 2"
				  " AND (?1 < 0 OR host = ?1) ORDER BY id";
	uint64_t *v = NULL, *nv;
	size_t nr = 0, cap = 0;
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(dev->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sql_rc(dev, rc);
	sqlite3_bind_int(st, 1, host);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (nr == cap) {
			cap = cap ? cap * 2 : 16;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				rc = SQLITE_NOMEM;
				break;
			}
			v = nv;
		}
		v[nr++] = (uint64_t)sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(v);
		return sql_rc(dev, rc);
	}
	*ret = v;
	*ret_nr = nr;
	return 0;
}

DCDFS_EXPORT int dcdfs_simdev_foreach_event(struct dcdfs_simdev *dev, int host,
					    dcdfs_event_cb cb, void *arg)
{
	_cleanup_free_ uint64_t *ids = NULL;
	size_t nr = 0;
	int rc;

	clear_error();
	if (!dev || !cb)
		return -EINVAL;
	scoped_guard(mutex, &dev->lock) {
		rc = collect_events_locked(dev, host, &ids, &nr);
		if (rc < 0)
			return rc;
	}
	for (size_t i = 0; i < nr; i++) {
		struct dcdfs_event_info info;

		rc = dcdfs_simdev_get_event(dev, ids[i], &info);
		if (rc == -ENOENT)
			continue;	/* answered and pruned meanwhile */
		if (!rc)
			rc = cb(&info, arg);
		if (rc)
			return rc;
	}
	return 0;
}
