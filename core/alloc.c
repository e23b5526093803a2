// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * DOC: allocations - state machine, pins, attributes and data
 *
 * An allocation is what a file stands for: one untagged extent, or every
 * extent of a tag, laid end to end in file order.  Its state changes only in
 * alloc_set_state_locked(), under the host lock, against alloc_transition.
 * Pins are a counter next to the state: a pin is taken only in ACTIVE, so in
 * RELEASE_PENDING they can only drop, and the last one hands the release to
 * dcdfs_host_run() through the host's work list.
 *
 * The memory is mapped while the allocation is pinned (map_users counts the
 * pins that hold the mapping); mapcache.c keeps it mapped for a while after
 * the last unpin, and unmaps it when the allocation goes.
 *
 * Releases are all or none: every extent goes back to the backend in one
 * call, after the name is gone and the kernel's caches have been told, so
 * whoever sees the device's answer no longer sees the file.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <dcdfs/libdcdfs.h>

#include "cleanup.h"
#include "host.h"
#include "memmap.h"
#include "private.h"

static const bool alloc_transition[_DCDFS_ALLOC_STATE_MAX][_DCDFS_ALLOC_STATE_MAX] = {
	[DCDFS_ALLOC_OFFERED] = {
		[DCDFS_ALLOC_ACTIVE] = true,
		[DCDFS_ALLOC_RELEASED] = true,
	},
	[DCDFS_ALLOC_ACTIVE] = {
		[DCDFS_ALLOC_RELEASE_PENDING] = true,
		[DCDFS_ALLOC_RELEASING] = true,
		[DCDFS_ALLOC_REVOKED] = true,
	},
	[DCDFS_ALLOC_RELEASE_PENDING] = {
		[DCDFS_ALLOC_RELEASING] = true,
		[DCDFS_ALLOC_REVOKED] = true,
	},
	[DCDFS_ALLOC_RELEASING] = {
		[DCDFS_ALLOC_RELEASED] = true,
		[DCDFS_ALLOC_ACTIVE] = true,		/* the device refused rm */
		[DCDFS_ALLOC_RELEASE_PENDING] = true,	/* ... or a due release */
		[DCDFS_ALLOC_REVOKED] = true,
	},
};

void alloc_set_state_locked(struct dcdfs_alloc *alloc,
			    enum dcdfs_alloc_state state)
{
	host_assert_locked(alloc->host);
	assert(alloc_transition[alloc->state][state]);
	__atomic_store_n(&alloc->state, state, __ATOMIC_RELEASE);
}

static void alloc_make_name(struct dcdfs_alloc *alloc)
{
	if (alloc->tagged)
		dcdfs_format_tag(alloc->tag, alloc->name);
	else
		snprintf(alloc->name, sizeof(alloc->name), "extent-%016" PRIx64,
			 alloc->extents[0].ext.offset);
}

struct dcdfs_alloc *alloc_new(struct dcdfs_host *host,
			      const struct dcdfs_extent *extents, size_t nr,
			      enum dcdfs_alloc_state state)
{
	struct dcdfs_alloc *alloc = calloc(1, sizeof(*alloc));
	uint64_t off = 0;

	if (!alloc)
		return NULL;
	alloc->extents = calloc(nr, sizeof(*alloc->extents));
	if (!alloc->extents) {
		free(alloc);
		return NULL;
	}
	alloc->host = host;
	alloc->refcount = 1;
	alloc->nr_extents = nr;
	alloc->state = state;
	alloc->time = (int64_t)time(NULL);
	alloc->tagged = extents[0].tagged;
	memcpy(alloc->tag, extents[0].tag, DCDFS_TAG_SIZE);
	for (size_t i = 0; i < nr; i++) {
		alloc->extents[i].ext = extents[i];
		alloc->extents[i].file_offset = off;
		alloc->extents[i].alloc = alloc;
		off += extents[i].length;
	}
	alloc->size = off;
	alloc->attr = (struct dcdfs_alloc_attr){
		.mode = host->def_mode,
		.uid = host->def_uid,
		.gid = host->def_gid,
		.ctime = alloc->time,
	};
	pthread_mutex_init(&alloc->map_lock, NULL);
	alloc_make_name(alloc);
	return alloc;
}

DCDFS_EXPORT struct dcdfs_alloc *dcdfs_alloc_ref(struct dcdfs_alloc *alloc)
{
	if (alloc)
		__atomic_add_fetch(&alloc->refcount, 1, __ATOMIC_RELAXED);
	return alloc;
}

DCDFS_EXPORT void dcdfs_alloc_unref(struct dcdfs_alloc *alloc)
{
	if (!alloc ||
	    __atomic_sub_fetch(&alloc->refcount, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	/* Unreferenced means unpinned, so unmapped, and out of every index. */
	assert(!alloc->map && !alloc->named && !alloc->indexed);
	pthread_mutex_destroy(&alloc->map_lock);
	free(alloc->extents);
	free(alloc);
}

DCDFS_EXPORT uint64_t dcdfs_alloc_get_id(struct dcdfs_alloc *alloc)
{
	return alloc->id;
}

DCDFS_EXPORT const char *dcdfs_alloc_get_name(struct dcdfs_alloc *alloc)
{
	return alloc->name;
}

DCDFS_EXPORT uint64_t dcdfs_alloc_get_size(struct dcdfs_alloc *alloc)
{
	return alloc->size;
}

DCDFS_EXPORT enum dcdfs_alloc_state
dcdfs_alloc_get_state(struct dcdfs_alloc *alloc)
{
	return __atomic_load_n(&alloc->state, __ATOMIC_ACQUIRE);
}

DCDFS_EXPORT unsigned int dcdfs_alloc_get_pins(struct dcdfs_alloc *alloc)
{
	guard(mutex)(&alloc->host->lock);
	return alloc->pins;
}

DCDFS_EXPORT int64_t dcdfs_alloc_get_time(struct dcdfs_alloc *alloc)
{
	return alloc->time;
}

DCDFS_EXPORT void dcdfs_alloc_get_attr(struct dcdfs_alloc *alloc,
				       struct dcdfs_alloc_attr *ret)
{
	guard(mutex)(&alloc->host->lock);
	*ret = alloc->attr;
}

static bool alloc_is_gone(enum dcdfs_alloc_state state)
{
	return state == DCDFS_ALLOC_RELEASED || state == DCDFS_ALLOC_REVOKED;
}

DCDFS_EXPORT int dcdfs_alloc_set_attr(struct dcdfs_alloc *alloc,
				      const struct dcdfs_alloc_attr *attr,
				      unsigned int which)
{
	struct dcdfs_host *host = alloc->host;
	struct attrs_entry e;
	int rc;

	/*
	 * The store is written under the host lock so that two chmods land
	 * in the order they were made; it is a small local transaction.
	 */
	guard(mutex)(&host->lock);
	if (alloc_is_gone(alloc->state) ||
	    alloc->state == DCDFS_ALLOC_RELEASING)
		return -ENOENT;
	e.mode = which & DCDFS_ATTR_MODE ? attr->mode & 07777 :
					   alloc->attr.mode;
	e.uid = which & DCDFS_ATTR_UID ? attr->uid : alloc->attr.uid;
	e.gid = which & DCDFS_ATTR_GID ? attr->gid : alloc->attr.gid;
	e.ctime = (int64_t)time(NULL);
	rc = attrs_set(host->attrs, alloc->name, &e);
	if (rc < 0)
		return rc;
	alloc->attr_saved = true;
	alloc->attr = (struct dcdfs_alloc_attr){ e.mode, e.uid, e.gid,
						 e.ctime };
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Extended attributes                                                      */
/* ------------------------------------------------------------------------ */

static const char *const state_names[] = {
	[DCDFS_ALLOC_OFFERED] = "offered",
	[DCDFS_ALLOC_ACTIVE] = "active",
	[DCDFS_ALLOC_RELEASE_PENDING] = "release-pending",
	[DCDFS_ALLOC_RELEASING] = "releasing",
	[DCDFS_ALLOC_RELEASED] = "released",
	[DCDFS_ALLOC_REVOKED] = "revoked",
};

static const char *const xattr_names[] = {
	"user.dcd.offset", "user.dcd.length", "user.dcd.tag",
	"user.dcd.extents", "user.dcd.state", "user.dcd.pins",
	"user.dcd.numa_node",
};

#define NR_XATTRS (sizeof(xattr_names) / sizeof(xattr_names[0]))

static int format_extents(struct dcdfs_alloc *alloc, char *buf, size_t size)
{
	size_t len = 0;

	for (size_t i = 0; i < alloc->nr_extents; i++) {
		int n = snprintf(buf + len, size > len ? size - len : 0,
				 "%s0x%" PRIx64 ":0x%" PRIx64, i ? " " : "",
				 alloc->extents[i].ext.offset,
				 alloc->extents[i].ext.length);
		len += (size_t)n;
	}
	return (int)len;
}

/* Format attribute @idx into @buf (NUL-terminated); return its length. */
static int format_xattr(struct dcdfs_alloc *alloc, size_t idx, char *buf,
			size_t size)
{
	struct dcdfs_host *host = alloc->host;
	unsigned int pins;

	switch (idx) {
	case 0:
		return snprintf(buf, size, "0x%" PRIx64,
				alloc->extents[0].ext.offset);
	case 1:
		return snprintf(buf, size, "0x%" PRIx64, alloc->size);
	case 2:
		return alloc->tagged ? snprintf(buf, size, "%s", alloc->name) :
				       -ENODATA;
	case 3:
		return format_extents(alloc, buf, size);
	case 4:
		return snprintf(buf, size, "%s",
				state_names[dcdfs_alloc_get_state(alloc)]);
	case 5:
		pins = dcdfs_alloc_get_pins(alloc);
		return snprintf(buf, size, "%u", pins);
	case 6:
		return snprintf(buf, size, "%d", host->info.numa_node);
	}
	return -ENODATA;
}

DCDFS_EXPORT int dcdfs_alloc_get_xattr(struct dcdfs_alloc *alloc,
				       const char *name, char *buf,
				       size_t size)
{
	_cleanup_free_ char *tmp = NULL;
	size_t idx, cap;
	int len;

	for (idx = 0; idx < NR_XATTRS; idx++)
		if (!strcmp(name, xattr_names[idx]))
			break;
	if (idx == NR_XATTRS)
		return -ENODATA;
	/* Room for the longest: every extent as "0x%x:0x%x ". */
	cap = 64 + alloc->nr_extents * 40;
	tmp = malloc(cap);
	if (!tmp)
		return -ENOMEM;
	len = format_xattr(alloc, idx, tmp, cap);
	if (len < 0)
		return len;
	if (buf) {
		if ((size_t)len > size)
			return -ERANGE;
		memcpy(buf, tmp, (size_t)len);
	}
	return len;
}

DCDFS_EXPORT int dcdfs_alloc_list_xattr(struct dcdfs_alloc *alloc, char *buf,
					size_t size)
{
	size_t len = 0;

	for (size_t i = 0; i < NR_XATTRS; i++) {
		size_t n = strlen(xattr_names[i]) + 1;

		if (i == 2 && !alloc->tagged)
			continue;
		if (buf && len + n > size)
			return -ERANGE;
		if (buf)
			memcpy(buf + len, xattr_names[i], n);
		len += n;
	}
	return (int)len;
}

/* ------------------------------------------------------------------------ */
/* Pins and the mapping                                                     */
/* ------------------------------------------------------------------------ */

/* Drop a pin; queue the release if it was the last one of a due release. */
static void unpin_locked(struct dcdfs_alloc *alloc, bool *ret_wake)
{
	struct dcdfs_host *host = alloc->host;

	host_assert_locked(host);
	assert(alloc->pins);
	alloc->pins--;
	if (!alloc->pins && alloc->state == DCDFS_ALLOC_RELEASE_PENDING &&
	    !alloc->queued) {
		alloc->queued = true;
		dcdfs_alloc_ref(alloc);
		TAILQ_INSERT_TAIL(&host->work, alloc, work_node);
		*ret_wake = true;
	}
}

DCDFS_EXPORT int dcdfs_alloc_pin(struct dcdfs_alloc *alloc)
{
	struct dcdfs_host *host = alloc->host;
	bool wake = false;
	int rc;

	scoped_guard(mutex, &host->lock) {
		if (alloc->state != DCDFS_ALLOC_ACTIVE)
			return -ENOENT;
		alloc->pins++;
	}
	rc = alloc_map_get(alloc);
	if (rc < 0) {
		scoped_guard(mutex, &host->lock)
			unpin_locked(alloc, &wake);
		if (wake)
			host_wake(host);
	}
	return rc;
}

DCDFS_EXPORT void dcdfs_alloc_unpin(struct dcdfs_alloc *alloc)
{
	struct dcdfs_host *host = alloc->host;
	bool wake = false;

	/* Unmap first: a release must never find the memory in use. */
	alloc_map_put(alloc);
	scoped_guard(mutex, &host->lock)
		unpin_locked(alloc, &wake);
	if (wake)
		host_wake(host);
}

/*
 * alloc_release_commit() - give a RELEASING allocation back
 *
 * The caller made it RELEASING and took its name away.  Tell the kernel's
 * caches (unless rm did, by its own unlink), then the backend.  If the
 * backend fails, the allocation gets its name and previous state back.
 */
int alloc_release_commit(struct dcdfs_alloc *alloc, bool by_unlink)
{
	struct dcdfs_host *host = alloc->host;
	struct dcdfs_extent *v;
	int rc;

	v = calloc(alloc->nr_extents, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < alloc->nr_extents; i++)
		v[i] = alloc->extents[i].ext;
	alloc_map_drop(alloc);	/* unpinned, so idle if mapped */
	if (!by_unlink)
		host_queue_change(host, DCDFS_CHANGE_REMOVED, alloc, true);
	rc = host->be->ops->release(host->be, v, alloc->nr_extents);
	free(v);
	/* Not held any more: a forced release took it meanwhile. */
	if (rc == -ENOENT)
		rc = 0;

	scoped_guard(mutex, &host->lock) {
		if (alloc->state != DCDFS_ALLOC_RELEASING)
			return 0;	/* revoked meanwhile */
		/* Asked for: it stays held, nameless, until the device says. */
		if (rc == -EINPROGRESS)
			return 0;
		if (rc == 0) {
			alloc_set_state_locked(alloc, DCDFS_ALLOC_RELEASED);
			host_unindex_locked(host, alloc);
			break;
		}
		/*
		 * The device failed: the name comes back.  A release the FM
		 * asked for stays due, and is tried again on the next pass.
		 */
		alloc_set_state_locked(alloc, alloc->requested ?
					       DCDFS_ALLOC_RELEASE_PENDING :
					       DCDFS_ALLOC_ACTIVE);
		host_name_locked(host, alloc);
		if (alloc->requested && !alloc->queued) {
			alloc->queued = true;
			dcdfs_alloc_ref(alloc);
			TAILQ_INSERT_TAIL(&host->work, alloc, work_node);
		}
	}
	if (rc == 0) {
		/* Gone: a later allocation of that name starts afresh. */
		if (alloc->attr_saved && attrs_del(host->attrs, alloc->name) < 0)
			dbg(host->ctx, "cannot forget the attributes of '%s',"
			    " ignoring\n", alloc->name);
		return 0;
	}
	err(host->ctx, "cannot release '%s': %s\n", alloc->name,
	    dcdfs_strerror(rc));
	if (!by_unlink)
		host_queue_change(host, DCDFS_CHANGE_ADDED, alloc, false);
	return rc;
}

DCDFS_EXPORT int dcdfs_alloc_release(struct dcdfs_alloc *alloc)
{
	struct dcdfs_host *host = alloc->host;

	scoped_guard(mutex, &host->lock) {
		if (alloc_is_gone(alloc->state))
			return -ENOENT;
		if (alloc->state != DCDFS_ALLOC_ACTIVE || alloc->pins)
			return -EBUSY;
		alloc_set_state_locked(alloc, DCDFS_ALLOC_RELEASING);
		host_unname_locked(host, alloc);
	}
	return alloc_release_commit(alloc, true);
}

/* ------------------------------------------------------------------------ */
/* Data                                                                     */
/* ------------------------------------------------------------------------ */

DCDFS_EXPORT ssize_t dcdfs_alloc_data(struct dcdfs_alloc *alloc,
				      uint64_t offset, size_t size,
				      const void **ret)
{
	if (dcdfs_alloc_get_state(alloc) == DCDFS_ALLOC_REVOKED)
		return -EIO;
	if (offset >= alloc->size)
		return 0;
	if (size > alloc->size - offset)
		size = (size_t)(alloc->size - offset);
	/* Pinned, so mapped: map cannot change under the caller. */
	*ret = (const char *)memmap_addr(alloc->map) + offset;
	return (ssize_t)size;
}

DCDFS_EXPORT ssize_t dcdfs_alloc_write(struct dcdfs_alloc *alloc,
				       uint64_t offset, const void *buf,
				       size_t size)
{
	int rc;

	if (dcdfs_alloc_get_state(alloc) == DCDFS_ALLOC_REVOKED)
		return -EIO;
	if (!size)
		return 0;
	/*
	 * The kernel splits a large write into several requests, so a write
	 * reaching past the end cannot be refused whole: like a write up to
	 * RLIMIT_FSIZE, it writes what fits, and the next request, starting
	 * at the end, gets EFBIG.
	 */
	if (offset >= alloc->size)
		return -EFBIG;
	if (size > alloc->size - offset)
		size = (size_t)(alloc->size - offset);
	rc = memmap_write(alloc->map, offset, buf, size);
	return rc < 0 ? rc : (ssize_t)size;
}
