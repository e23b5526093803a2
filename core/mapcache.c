// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * DOC: the daemon's mappings of allocations, and the cache of idle ones
 *
 * An allocation's memory is mapped at its first pin.  At its last unpin the
 * mapping is kept, idle, on the host's least-recently-used list, so that
 * the next open finds the pages already faulted in (a fresh mapping of 4 KiB
 * pages costs one fault per page, which dominates the data path).  The list
 * is bounded in mappings and in bytes (each mapping costs a VMA, and page
 * tables for what was touched); past the bounds the oldest idle mapping is
 * unmapped.  A mapping is dropped at once when its allocation is released or
 * revoked, and at the last unpin when the backend says a mapping holds the
 * capacity (a DAX claim on the kernel backend keeps the FM from taking it
 * back: it must end with the last user).
 *
 * Locks: alloc->map_lock protects map and map_users; host->idle_lock, a
 * leaf taken inside map_lock, protects the idle list and its counters.  The
 * idle list holds a reference on each allocation on it.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include <dcdfs/libdcdfs.h>

#include "cleanup.h"
#include "host.h"
#include "memmap.h"
#include "private.h"

#define MAX_IDLE_MAPS 256
#define MAX_IDLE_BYTES (16ULL << 30)

/* The extents of @alloc, in file order, in a fresh array. */
static struct dcdfs_extent *alloc_extents(struct dcdfs_alloc *alloc)
{
	struct dcdfs_extent *v = calloc(alloc->nr_extents, sizeof(*v));

	for (size_t i = 0; v && i < alloc->nr_extents; i++)
		v[i] = alloc->extents[i].ext;
	return v;
}

static int map_create(struct dcdfs_alloc *alloc)
{
	struct dcdfs_backend *be = alloc->host->be;
	_cleanup_free_ struct dcdfs_extent *ext = alloc_extents(alloc);
	_cleanup_free_ struct memmap_seg *segs = NULL;
	size_t nr = 0;
	int rc;

	segs = calloc(alloc->nr_extents, sizeof(*segs));
	if (!ext || !segs)
		return -ENOMEM;
	rc = be->ops->mem_open(be, ext, alloc->nr_extents, segs, &nr);
	if (rc < 0)
		return rc;
	rc = memmap_new(alloc->host->ctx, segs, nr,
			alloc->host->info.numa_node, &alloc->map);
	/* The mapping keeps the memory; the descriptors can go. */
	for (size_t i = 0; i < nr; i++)
		(void) close(segs[i].fd);
	if (rc < 0 && be->ops->mem_close)
		be->ops->mem_close(be, ext, alloc->nr_extents);
	return rc;
}

/* Unmap, and let the backend know (a claim ends there). */
static void map_destroy(struct dcdfs_alloc *alloc)
{
	struct dcdfs_backend *be = alloc->host->be;
	struct dcdfs_extent *ext;

	memmap_free(alloc->map);
	alloc->map = NULL;
	if (!be->ops->mem_close)
		return;
	ext = alloc_extents(alloc);
	if (ext)
		be->ops->mem_close(be, ext, alloc->nr_extents);
	free(ext);
}

/* Take @alloc off the idle list; returns the list's reference to drop. */
static struct dcdfs_alloc *idle_remove(struct dcdfs_alloc *alloc)
{
	struct dcdfs_host *host = alloc->host;

	guard(mutex)(&host->idle_lock);
	if (!alloc->idle)
		return NULL;
	TAILQ_REMOVE(&host->idle, alloc, idle_node);
	alloc->idle = false;
	host->nr_idle--;
	host->idle_bytes -= alloc->size;
	return alloc;
}

static void idle_add(struct dcdfs_alloc *alloc)
{
	struct dcdfs_host *host = alloc->host;

	/* The list's reference; TAILQ macros evaluate their arguments twice. */
	dcdfs_alloc_ref(alloc);
	guard(mutex)(&host->idle_lock);
	TAILQ_INSERT_TAIL(&host->idle, alloc, idle_node);
	alloc->idle = true;
	host->nr_idle++;
	host->idle_bytes += alloc->size;
}

/* Unmap @alloc if nobody uses its mapping. */
void alloc_map_drop(struct dcdfs_alloc *alloc)
{
	struct dcdfs_alloc *ref = NULL;

	scoped_guard(mutex, &alloc->map_lock) {
		if (alloc->map_users || !alloc->map)
			break;
		ref = idle_remove(alloc);
		map_destroy(alloc);
	}
	dcdfs_alloc_unref(ref);
}

/* Unmap the oldest idle mappings until the list is within its bounds. */
static void idle_trim(struct dcdfs_host *host, bool all)
{
	for (;;) {
		struct dcdfs_alloc *victim;

		scoped_guard(mutex, &host->idle_lock) {
			victim = TAILQ_FIRST(&host->idle);
			if (!victim || (!all && host->nr_idle <= MAX_IDLE_MAPS &&
					host->idle_bytes <= MAX_IDLE_BYTES))
				return;
		}
		/* Reused meanwhile, or still idle: alloc_map_drop() sees. */
		dcdfs_alloc_ref(victim);
		alloc_map_drop(victim);
		/* Still listed: in use again and back; do not spin on it. */
		dcdfs_alloc_unref(idle_remove(victim));
		dcdfs_alloc_unref(victim);
	}
}

int alloc_map_get(struct dcdfs_alloc *alloc)
{
	struct dcdfs_alloc *ref = NULL;
	int rc = 0;

	scoped_guard(mutex, &alloc->map_lock) {
		if (!alloc->map)
			rc = map_create(alloc);
		else if (!alloc->map_users)
			ref = idle_remove(alloc);
		if (!rc)
			alloc->map_users++;
	}
	dcdfs_alloc_unref(ref);
	return rc;
}

void alloc_map_put(struct dcdfs_alloc *alloc)
{
	enum dcdfs_alloc_state state = dcdfs_alloc_get_state(alloc);
	bool drop = state == DCDFS_ALLOC_RELEASED ||
		    state == DCDFS_ALLOC_REVOKED ||
		    !alloc->host->info.keep_idle_maps;

	scoped_guard(mutex, &alloc->map_lock) {
		assert(alloc->map_users);
		if (--alloc->map_users)
			return;
		if (drop) {
			map_destroy(alloc);
			return;
		}
		idle_add(alloc);
	}
	idle_trim(alloc->host, false);
}

/* At the end: unmap every idle mapping, dropping the list's references. */
void host_maps_drain(struct dcdfs_host *host)
{
	idle_trim(host, true);
}

DCDFS_EXPORT int dcdfs_alloc_mem_fds(struct dcdfs_alloc *alloc, bool writable,
				     struct dcdfs_mem_seg **ret,
				     size_t *ret_nr)
{
	struct dcdfs_backend *be = alloc->host->be;
	_cleanup_free_ struct dcdfs_extent *ext = alloc_extents(alloc);
	_cleanup_free_ struct memmap_seg *segs = NULL;
	struct dcdfs_mem_seg *v;
	uint64_t pos = 0;
	size_t nr = 0;
	int rc;

	if (!be->ops->mem_fds)
		return -EOPNOTSUPP;
	segs = calloc(alloc->nr_extents, sizeof(*segs));
	v = calloc(alloc->nr_extents, sizeof(*v));
	if (!ext || !segs || !v) {
		free(v);
		return -ENOMEM;
	}
	/* Under map_lock: the mapping, and so a claim, exists while pinned. */
	scoped_guard(mutex, &alloc->map_lock) {
		rc = alloc->map_users ? be->ops->mem_fds(be, ext,
			alloc->nr_extents, writable, segs, &nr) : -EINVAL;
	}
	if (rc < 0) {
		free(v);
		return rc;
	}
	for (size_t i = 0; i < nr; i++) {
		v[i] = (struct dcdfs_mem_seg){ segs[i].fd, pos, segs[i].offset,
					       segs[i].length };
		pos += segs[i].length;
	}
	*ret = v;
	*ret_nr = nr;
	return 0;
}

DCDFS_EXPORT void dcdfs_alloc_set_direct(struct dcdfs_alloc *alloc, bool on)
{
	if (on)
		__atomic_add_fetch(&alloc->direct, 1, __ATOMIC_RELAXED);
	else
		__atomic_sub_fetch(&alloc->direct, 1, __ATOMIC_RELAXED);
}

DCDFS_EXPORT bool dcdfs_alloc_is_direct(struct dcdfs_alloc *alloc)
{
	return __atomic_load_n(&alloc->direct, __ATOMIC_RELAXED) != 0;
}
