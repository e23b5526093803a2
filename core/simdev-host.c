// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * DOC: simulated device - host side
 *
 * What a host's driver does with the device's mailbox: read the event log,
 * answer add chains (Add DC Response), give capacity back (Release DC), and
 * read the extent list after a restart (Get DC Extent List).  One process at
 * a time may be a given host on a given region; the host lock says which.
 *
 * A refused release stays pending on the device, marked REFUSED, and is
 * completed by the host's own release once the capacity is no longer in
 * use: that is the "FM retries later" of the kernel series, without the FM
 * having to retry.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <dcdfs/libdcdfs.h>

#include "cleanup.h"
#include "private.h"
#include "simdev.h"

#define EXT_FMT "0x%" PRIx64 ":0x%" PRIx64

static int take_lock(struct dcdfs_simdev *dev, const char *name, int op,
		     int *ret_fd)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -1;

	if (asprintf(&path, "%s/%s/%s", dev->path, SIMDEV_LOCK_DIR, name) < 0)
		return -ENOMEM;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return set_error(-errno, "cannot open '%s': %s", path,
				 strerror(errno));
	if (flock(fd, op | LOCK_NB) < 0)
		return errno == EWOULDBLOCK ? -EBUSY : -errno;
	*ret_fd = take_fd(fd);
	return 0;
}

static void release_locks(struct dcdfs_simdev *dev)
{
	if (dev->host_lock_fd >= 0)
		(void) close(dev->host_lock_fd);
	if (dev->dev_lock_fd >= 0)
		(void) close(dev->dev_lock_fd);
	dev->host_lock_fd = dev->dev_lock_fd = -1;
}

static int attach_locks(struct dcdfs_simdev *dev, unsigned int host,
			unsigned int region)
{
	char name[64];
	int rc;

	rc = take_lock(dev, "device", LOCK_SH, &dev->dev_lock_fd);
	if (rc == -EBUSY)
		return set_error(rc, "device '%s' is being destroyed",
				 dev->path);
	if (rc < 0)
		return rc;
	snprintf(name, sizeof(name), "host-%u-region-%u", host, region);
	rc = take_lock(dev, name, LOCK_EX, &dev->host_lock_fd);
	if (rc == -EBUSY)
		return set_error(rc, "host %u of region %u of device '%s' is"
				 " already in use by another process", host,
				 region, dev->path);
	return rc;
}

int simdev_host_attach(struct dcdfs_simdev *dev, unsigned int host,
		       unsigned int region)
{
	char name[64];
	int rc;

	clear_error();
	if (dev->attached || host > DCDFS_SIMDEV_MAX_HOST)
		return -EINVAL;
	if (region >= dev->nr_regions)
		return set_error(-EINVAL, "region %u does not exist (device"
				 " '%s' has %u)", region, dev->path,
				 dev->nr_regions);
	rc = attach_locks(dev, host, region);
	if (!rc) {
		guard(mutex)(&dev->lock);
		rc = simdev_quick_check_locked(dev);
	}
	if (!rc) {
		snprintf(name, sizeof(name), "host-%u", host);
		rc = bell_watch(dev, name);
		if (rc < 0)
			rc = set_error(rc, "cannot watch '%s/%s/%s': %s",
				       dev->path, SIMDEV_BELL_DIR, name,
				       strerror(-rc));
	}
	if (rc < 0) {
		/* A failed attach holds nothing. */
		release_locks(dev);
		return rc;
	}
	dev->inotify_fd = rc;
	dev->host = host;
	dev->region = region;
	dev->attached = true;
	return 0;
}

int simdev_host_event_fd(struct dcdfs_simdev *dev)
{
	return dev->inotify_fd;
}

void simdev_host_event_drain(struct dcdfs_simdev *dev)
{
	bell_drain(dev->inotify_fd);
}

static void ring_fm(struct dcdfs_simdev *dev)
{
	if (bell_ring(dev, BELL_FM) < 0)
		dbg(dev->ctx, "cannot ring the FM's bell, ignoring\n");
}

/* Append the rows of @st (EXTENT_COLS, or region/start/length) to a list. */
static int collect_locked(struct dcdfs_simdev *dev, sqlite3_stmt *st,
			  bool full, struct dcdfs_extent **ret, size_t *ret_nr)
{
	struct dcdfs_extent *v = NULL, *nv;
	size_t nr = 0, cap = 0;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (nr == cap) {
			cap = cap ? cap * 2 : 8;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				rc = SQLITE_NOMEM;
				break;
			}
			v = nv;
		}
		if (full) {
			extent_from_row(st, 0, &v[nr]);
		} else {
			memset(&v[nr], 0, sizeof(v[nr]));
			v[nr].region = (unsigned int)sqlite3_column_int(st, 0);
			v[nr].offset = (uint64_t)sqlite3_column_int64(st, 1);
			v[nr].length = (uint64_t)sqlite3_column_int64(st, 2);
		}
		nr++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		free(v);
		return sql_rc(dev, rc);
	}
	*ret = v;
	*ret_nr = nr;
	return 0;
}

int simdev_host_extents(struct dcdfs_simdev *dev, struct dcdfs_extent **ret,
			size_t *ret_nr)
{
	sqlite3_stmt *st;

	clear_error();
	if (!dev->attached)
		return -EINVAL;
	guard(mutex)(&dev->lock);
	st = stmt_get_locked(dev, SQL_EXTENTS_HELD);
	sqlite3_bind_int(st, 1, (int)dev->host);
	sqlite3_bind_int(st, 2, (int)dev->region);
	return collect_locked(dev, st, true, ret, ret_nr);
}

void backend_events_free(struct backend_event *events, size_t nr)
{
	for (size_t i = 0; events && i < nr; i++)
		free(events[i].extents);
	free(events);
}

static int event_extents_locked(struct dcdfs_simdev *dev,
				struct backend_event *ev)
{
	bool add = ev->info.kind == DCDFS_EVENT_ADD;
	sqlite3_stmt *st;

	st = stmt_get_locked(dev, add ? SQL_EXTENTS_OF_EVENT :
					SQL_ITEMS_OF_EVENT);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)ev->info.id);
	return collect_locked(dev, st, add, &ev->extents, &ev->nr_extents);
}

static int events_locked(struct dcdfs_simdev *dev, bool all,
			 struct backend_event **ret, size_t *ret_nr)
{
	struct backend_event *v = NULL, *nv;
	size_t nr = 0, cap = 0;
	sqlite3_stmt *st;
	uint64_t id;
	int rc = 0;

	/* Ids first: event_get_locked() reuses the statement below. */
	st = stmt_get_locked(dev, all ? SQL_EVENTS_PENDING :
					SQL_EVENTS_PENDING_NEW);
	sqlite3_bind_int(st, 1, (int)dev->host);
	sqlite3_bind_int(st, 2, (int)dev->region);
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (nr == cap) {
			cap = cap ? cap * 2 : 8;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				rc = -ENOMEM;
				break;
			}
			v = nv;
		}
		id = (uint64_t)sqlite3_column_int64(st, 0);
		memset(&v[nr], 0, sizeof(v[nr]));
		v[nr++].info.id = id;
	}
	sqlite3_reset(st);
	for (size_t i = 0; i < nr && !rc; i++) {
		rc = event_get_locked(dev, v[i].info.id, &v[i].info);
		if (!rc)
			rc = event_extents_locked(dev, &v[i]);
	}
	if (rc < 0) {
		backend_events_free(v, nr);
		return rc;
	}
	*ret = v;
	*ret_nr = nr;
	return 0;
}

int simdev_host_events(struct dcdfs_simdev *dev, bool all,
		       struct backend_event **ret, size_t *ret_nr)
{
	clear_error();
	if (!dev->attached)
		return -EINVAL;
	guard(mutex)(&dev->lock);
	return events_locked(dev, all, ret, ret_nr);
}

/* The event must be this host's, of @kind, and still waiting. */
static int own_event_locked(struct dcdfs_simdev *dev, uint64_t id,
			    enum dcdfs_event_kind kind,
			    struct dcdfs_event_info *ret)
{
	int rc = event_get_locked(dev, id, ret);

	if (rc < 0)
		return rc;
	if (ret->kind != kind || ret->host != dev->host ||
	    ret->region != dev->region || ret->state == DCDFS_EVENT_DONE)
		return set_error(-ENOENT, "event %" PRIu64 " is not a pending"
				 " %s of host %u", id,
				 kind == DCDFS_EVENT_ADD ? "add" : "release",
				 dev->host);
	return 0;
}

static int set_state_locked(struct dcdfs_simdev *dev, uint64_t id,
			    enum dcdfs_event_state state, unsigned int done)
{
	sqlite3_stmt *st = stmt_get_locked(dev, SQL_EVENT_SET_STATE);

	sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
	sqlite3_bind_int(st, 2, state);
	sqlite3_bind_int(st, 3, (int)done);
	return step_done_locked(dev, st);
}

/* Which offered extents are accepted; -EINVAL for a stranger or a twin. */
static int mark_accepted(const struct dcdfs_extent *offered, size_t nr_offered,
			 const struct dcdfs_extent *accepted, size_t nr,
			 bool *ret_mark)
{
	for (size_t i = 0; i < nr; i++) {
		size_t j;

		for (j = 0; j < nr_offered; j++)
			if (offered[j].region == accepted[i].region &&
			    offered[j].offset == accepted[i].offset)
				break;
		if (j == nr_offered || ret_mark[j])
			return set_error(-EINVAL, "extent " EXT_FMT " is not"
					 " offered by that event",
					 accepted[i].offset,
					 accepted[i].length);
		ret_mark[j] = true;
	}
	return 0;
}

static int accept_locked(struct dcdfs_simdev *dev, uint64_t event,
			 const struct dcdfs_extent *accepted, size_t nr)
{
	_cleanup_free_ struct dcdfs_extent *offered = NULL;
	_cleanup_free_ bool *mark = NULL;
	struct backend_event ev = { 0 };
	size_t nr_offered;
	int rc;

	rc = own_event_locked(dev, event, DCDFS_EVENT_ADD, &ev.info);
	if (!rc)
		rc = event_extents_locked(dev, &ev);
	if (rc < 0)
		return rc;
	offered = ev.extents;
	nr_offered = ev.nr_extents;
	mark = calloc(nr_offered + 1, sizeof(*mark));
	if (!mark)
		return -ENOMEM;
	rc = mark_accepted(offered, nr_offered, accepted, nr, mark);
	for (size_t i = 0; i < nr_offered && !rc; i++) {
		const struct dcdfs_extent *e = &offered[i];
		sqlite3_stmt *st;

		if (!mark[i]) {
			rc = extent_remove_locked(dev, e->region, e->offset);
			continue;
		}
		rc = mem_create(dev, e->region, e->offset, e->length);
		if (rc < 0)
			break;
		st = stmt_get_locked(dev, SQL_EXTENT_ACCEPT);
		sqlite3_bind_int(st, 1, (int)e->region);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)e->offset);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)event);
		rc = step_done_locked(dev, st);
	}
	if (!rc)
		rc = set_state_locked(dev, event, DCDFS_EVENT_DONE,
				      (unsigned int)nr);
	return rc;
}

int simdev_host_accept(struct dcdfs_simdev *dev, uint64_t event,
		       const struct dcdfs_extent *accepted, size_t nr)
{
	int rc;

	clear_error();
	if (!dev->attached || (nr && !accepted))
		return -EINVAL;
	scoped_guard(mutex, &dev->lock) {
		rc = tx_begin_locked(dev);
		if (rc < 0)
			return rc;
		rc = accept_locked(dev, event, accepted, nr);
		if (rc < 0) {
			tx_rollback_locked(dev);
			return rc;
		}
		rc = tx_commit_locked(dev);
		if (rc < 0)
			return rc;
		if (scrub_locked(dev) < 0)
			dbg(dev->ctx, "cannot scrub dropped memory yet\n");
	}
	ring_fm(dev);
	return 0;
}

static int answer(struct dcdfs_simdev *dev, uint64_t event,
		  enum dcdfs_event_kind kind, enum dcdfs_event_state state)
{
	struct dcdfs_event_info info;
	sqlite3_stmt *st;
	int rc;

	clear_error();
	if (!dev->attached)
		return -EINVAL;
	scoped_guard(mutex, &dev->lock) {
		rc = tx_begin_locked(dev);
		if (!rc)
			rc = own_event_locked(dev, event, kind, &info);
		if (!rc)
			rc = set_state_locked(dev, event, state,
					      state == DCDFS_EVENT_DONE ?
						      info.nr_extents :
						      info.nr_done);
		if (!rc && state == DCDFS_EVENT_DONE) {
			st = stmt_get_locked(dev, SQL_ITEMS_DELETE_EVENT);
			sqlite3_bind_int64(st, 1, (sqlite3_int64)event);
			rc = step_done_locked(dev, st);
		}
		if (rc < 0) {
			tx_rollback_locked(dev);
			return rc;
		}
		rc = tx_commit_locked(dev);
		if (rc < 0)
			return rc;
	}
	ring_fm(dev);
	return 0;
}

int simdev_host_refuse(struct dcdfs_simdev *dev, uint64_t event)
{
	return answer(dev, event, DCDFS_EVENT_RELEASE, DCDFS_EVENT_REFUSED);
}

int simdev_host_ack(struct dcdfs_simdev *dev, uint64_t event)
{
	return answer(dev, event, DCDFS_EVENT_FORCED_RELEASE,
		      DCDFS_EVENT_DONE);
}

static int check_held_locked(struct dcdfs_simdev *dev,
			     const struct dcdfs_extent *e)
{
	sqlite3_stmt *st = stmt_get_locked(dev, SQL_EXTENT_AT);
	bool ok;
	int rc;

	sqlite3_bind_int(st, 1, (int)e->region);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)e->offset);
	rc = sqlite3_step(st);
	ok = rc == SQLITE_ROW &&
	     (unsigned int)sqlite3_column_int(st, 0) == dev->host &&
	     sqlite3_column_type(st, 1) == SQLITE_NULL &&
	     (uint64_t)sqlite3_column_int64(st, 2) == e->length;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sql_rc(dev, rc);
	if (!ok || e->region != dev->region)
		return set_error(-ENOENT, "extent " EXT_FMT " is not held by"
				 " host %u", e->offset, e->length, dev->host);
	return 0;
}

int simdev_host_release(struct dcdfs_simdev *dev,
			const struct dcdfs_extent *extents, size_t nr)
{
	int rc = 0;

	clear_error();
	if (!dev->attached || !nr || !extents)
		return -EINVAL;
	scoped_guard(mutex, &dev->lock) {
		rc = tx_begin_locked(dev);
		for (size_t i = 0; i < nr && !rc; i++)
			rc = check_held_locked(dev, &extents[i]);
		for (size_t i = 0; i < nr && !rc; i++)
			rc = extent_remove_locked(dev, extents[i].region,
						  extents[i].offset);
		if (rc < 0) {
			tx_rollback_locked(dev);
			return rc;
		}
		rc = tx_commit_locked(dev);
		if (rc < 0)
			return rc;
		if (scrub_locked(dev) < 0)
			err(dev->ctx, "cannot scrub released memory yet,"
			    " retrying later\n");
	}
	ring_fm(dev);
	return 0;
}
