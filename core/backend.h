/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The backend ops table the host (core/host.c) drives.  A backend is where
 * allocations come from: the simulated device (backend-sim.c) or a DCD
 * kernel (backend-kernel.c).  The host knows nothing else about either.
 */
#ifndef DCDFS_BACKEND_H
#define DCDFS_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <dcdfs/libdcdfs.h>

#include "memmap.h"

/**
 * struct backend_event - a pending event with its extents
 * @info: the event
 * @extents: add: the extents offered, in arrival order; release: the
 *	     extents asked for (or taken, when forced)
 * @nr_extents: number of @extents
 * @done: add: the device has accepted them already and wants no answer;
 *	  release: the extents are gone already, there is nothing to answer
 *	  or to give back (a kernel that completed the release itself)
 */
struct backend_event {
	struct dcdfs_event_info info;
	struct dcdfs_extent *extents;
	size_t nr_extents;
	bool done;
};

void backend_events_free(struct backend_event *events, size_t nr);

/**
 * struct backend_info - what the host needs to know about its region
 * @capacity: region size in bytes
 * @block_size: region block size
 * @numa_node: node of the memory, or -1
 * @state_path: default file for the host's attribute store (owned by the
 *		backend)
 * @poll_ms: how often to ask for events without a wake-up
 * @host_releases: release() gives capacity back; otherwise the device
 *		   completes the FM's releases of unused capacity on its own
 *		   and release() can at most ask for one (-EINPROGRESS)
 * @keep_idle_maps: an idle mapping only costs address space; otherwise it
 *		    holds the capacity (a claim) and goes at the last unpin
 */
struct backend_info {
	uint64_t capacity;
	uint64_t block_size;
	int numa_node;
	const char *state_path;
	int poll_ms;
	bool host_releases;
	bool keep_idle_maps;
};

struct dcdfs_backend;

/*
 * Every op returns 0 or a negative errno; none is called with a host lock
 * held, and a backend serialises its own calls.  accept, refuse and ack
 * may be NULL: the device wants no such answer.  release may return
 * -EINPROGRESS: the release was asked for, and the extents will come back
 * as a done release event once gone.
 */
struct dcdfs_backend_ops {
	const char *name;
	void (*close)(struct dcdfs_backend *be);
	void (*get_info)(struct dcdfs_backend *be, struct backend_info *ret);
	/* readable when an event may be pending; -1 if there is none */
	int (*event_fd)(struct dcdfs_backend *be);
	void (*event_drain)(struct dcdfs_backend *be);
	/* what the host holds (Get DC Extent List), in arrival order */
	int (*extents)(struct dcdfs_backend *be, struct dcdfs_extent **ret,
		       size_t *ret_nr);
	/* pending events; @all includes releases already refused */
	int (*events)(struct dcdfs_backend *be, bool all,
		      struct backend_event **ret, size_t *ret_nr);
	int (*accept)(struct dcdfs_backend *be, uint64_t event,
		      const struct dcdfs_extent *accepted, size_t nr);
	int (*refuse)(struct dcdfs_backend *be, uint64_t event);
	int (*ack)(struct dcdfs_backend *be, uint64_t event);
	int (*release)(struct dcdfs_backend *be,
		       const struct dcdfs_extent *extents, size_t nr);
	/*
	 * Where an allocation's memory is mapped from: fill @segs (one per
	 * extent at most) and their number.  The descriptors are the
	 * caller's.  mem_close (may be NULL) follows once that mapping is gone.
	 */
	int (*mem_open)(struct dcdfs_backend *be,
			const struct dcdfs_extent *extents, size_t nr,
			struct memmap_seg *segs, size_t *ret_nr);
	void (*mem_close)(struct dcdfs_backend *be,
			  const struct dcdfs_extent *extents, size_t nr);
	/*
	 * Fresh descriptors of the memory of an allocation mapped by
	 * mem_open, for a client to map itself: read-only unless @writable,
	 * each reaching that allocation's memory and nothing else.  Fills
	 * @segs like mem_open.  May be NULL: the memory cannot be handed out.
	 */
	int (*mem_fds)(struct dcdfs_backend *be,
		       const struct dcdfs_extent *extents, size_t nr,
		       bool writable, struct memmap_seg *segs, size_t *ret_nr);
};

struct dcdfs_backend {
	const struct dcdfs_backend_ops *ops;
	struct dcdfs_ctx *ctx;
};

int backend_sim_open(struct dcdfs_ctx *ctx,
		     const struct dcdfs_host_config *cfg,
		     struct dcdfs_backend **ret);
int backend_kernel_open(struct dcdfs_ctx *ctx,
			const struct dcdfs_host_config *cfg,
			struct dcdfs_backend **ret);

#endif /* DCDFS_BACKEND_H */
