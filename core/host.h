/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The host and its allocations, inside core/: layouts shared by host.c (the
 * registry, events and the change queue) and alloc.c (the allocation object,
 * its state machine, pins and data).
 */
#ifndef DCDFS_HOST_H
#define DCDFS_HOST_H

/* libbsd's tree.h marks its static functions __unused, a BSD-ism. */
#ifndef __unused
#define __unused __attribute__((unused))
#endif
#include <bsd/sys/queue.h>
#include <bsd/sys/tree.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <dcdfs/libdcdfs.h>

#include "attrs.h"
#include "backend.h"
#include "memmap.h"
#include "private.h"

#define ALLOC_NAME_MAX 48

/* One extent of an allocation, indexed by offset in host->extents. */
struct alloc_ext {
	RB_ENTRY(alloc_ext) node;	/* protected by host->lock */
	struct dcdfs_extent ext;
	uint64_t file_offset;		/* where it starts in the file */
	struct dcdfs_alloc *alloc;
};

struct dcdfs_alloc {
	struct dcdfs_host *host;	/* outlives every allocation */
	int refcount;			/* atomic */
	uint64_t id;
	char name[ALLOC_NAME_MAX];
	uint64_t size;
	int64_t time;
	bool tagged;
	uint8_t tag[DCDFS_TAG_SIZE];
	size_t nr_extents;
	struct alloc_ext *extents;	/* owned; in file order */

	/* Protected by host->lock. */
	RB_ENTRY(dcdfs_alloc) name_node;
	TAILQ_ENTRY(dcdfs_alloc) work_node;
	enum dcdfs_alloc_state state;	/* written under host->lock, read atomically */
	unsigned int pins;
	bool named;			/* in host->names */
	bool indexed;			/* extents in host->extents */
	bool queued;			/* on host->work */
	bool requested;			/* the FM asked for it back */
	bool attr_saved;		/* has an entry in the attribute store */
	struct dcdfs_alloc_attr attr;

	/*
	 * map_lock protects map and map_users.  It is never taken with
	 * host->lock held, nor host->lock with it; host->idle_lock nests
	 * inside it (see mapcache.c).
	 */
	pthread_mutex_t map_lock;
	struct memmap *map;
	unsigned int map_users;
	unsigned int direct;		/* atomic: client mappings */
	/* Protected by host->idle_lock. */
	TAILQ_ENTRY(dcdfs_alloc) idle_node;
	bool idle;			/* on host->idle, holding a reference */
};

RB_HEAD(name_tree, dcdfs_alloc);
RB_HEAD(ext_tree, alloc_ext);

struct change {
	TAILQ_ENTRY(change) node;
	struct dcdfs_change c;
	uint64_t seq;
};

struct dcdfs_host {
	struct dcdfs_ctx *ctx;
	struct dcdfs_backend *be;
	struct backend_info info;
	struct attrs *attrs;
	uint32_t def_uid, def_gid, def_mode;

	/*
	 * The host lock protects the indexes, the work list, the counters
	 * and the state, pins and attributes of every allocation.  It is
	 * never held across a backend call, a change wait or a map_lock.
	 */
	pthread_mutex_t lock;
	struct name_tree names;		/* named allocations */
	struct ext_tree extents;	/* extents of allocations still held */
	TAILQ_HEAD(, dcdfs_alloc) work;	/* releases due at the last unpin */
	uint64_t next_id;
	uint64_t held;			/* bytes in host->extents */
	uint64_t nr_named;
	bool first_pass;		/* next events() call reads them all */
	bool stopping;			/* atomic */
	int wake_fd;			/* eventfd waking dcdfs_host_run() */

	/* idle_lock protects the idle mappings (mapcache.c); a leaf lock. */
	pthread_mutex_t idle_lock;
	TAILQ_HEAD(, dcdfs_alloc) idle;	/* least recently used first */
	size_t nr_idle;
	uint64_t idle_bytes;

	/* change_lock protects the fields below; a leaf lock. */
	pthread_mutex_t change_lock;
	pthread_cond_t change_cond;	/* a change was queued or stopping */
	pthread_cond_t done_cond;	/* a change was applied */
	TAILQ_HEAD(, change) changes;
	bool watching;
	uint64_t seq_queued, seq_taken, seq_done;
};

/* host.c */
void host_assert_locked(struct dcdfs_host *host);
void host_name_locked(struct dcdfs_host *host, struct dcdfs_alloc *alloc);
void host_unname_locked(struct dcdfs_host *host, struct dcdfs_alloc *alloc);
void host_unindex_locked(struct dcdfs_host *host, struct dcdfs_alloc *alloc);
void host_queue_change(struct dcdfs_host *host, enum dcdfs_change_kind kind,
		       struct dcdfs_alloc *alloc, bool wait);
void host_wake(struct dcdfs_host *host);

/* alloc.c */
struct dcdfs_alloc *alloc_new(struct dcdfs_host *host,
			      const struct dcdfs_extent *extents, size_t nr,
			      enum dcdfs_alloc_state state);
void alloc_set_state_locked(struct dcdfs_alloc *alloc,
			    enum dcdfs_alloc_state state);
int alloc_release_commit(struct dcdfs_alloc *alloc, bool by_unlink);

/* mapcache.c */
int alloc_map_get(struct dcdfs_alloc *alloc) _must_check_;
void alloc_map_put(struct dcdfs_alloc *alloc);
void alloc_map_drop(struct dcdfs_alloc *alloc);
void host_maps_drain(struct dcdfs_host *host);

#endif /* DCDFS_HOST_H */
