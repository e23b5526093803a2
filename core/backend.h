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

/**
 * struct backend_event - a pending event with its extents
 * @info: the event
 * @extents: add: the extents offered, in arrival order; release: the
 *	     extents asked for (or taken, when forced)
 * @nr_extents: number of @extents
 */
struct backend_event {
	struct dcdfs_event_info info;
	struct dcdfs_extent *extents;
	size_t nr_extents;
};

void backend_events_free(struct backend_event *events, size_t nr);

/**
 * struct backend_info - what the host needs to know about its region
 * @capacity: region size in bytes
 * @block_size: region block size
 * @numa_node: node of the memory, or -1
 * @state_path: default file for the host's attribute store (owned by the
 *		backend)
 */
struct backend_info {
	uint64_t capacity;
	uint64_t block_size;
	int numa_node;
	const char *state_path;
};

/**
 * struct backend_mem - where an extent's memory can be mapped from
 * @fd: a file or device to mmap (owned by the caller once returned)
 * @offset: offset of the extent in @fd
 */
struct backend_mem {
	int fd;
	uint64_t offset;
};

struct dcdfs_backend;

/*
 * Every op returns 0 or a negative errno; none is called with a host lock
 * held, and a backend serialises its own calls.
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
	int (*mem_open)(struct dcdfs_backend *be,
			const struct dcdfs_extent *extent,
			struct backend_mem *ret);
};

struct dcdfs_backend {
	const struct dcdfs_backend_ops *ops;
	struct dcdfs_ctx *ctx;
};

int backend_sim_open(struct dcdfs_ctx *ctx,
		     const struct dcdfs_host_config *cfg,
		     struct dcdfs_backend **ret);

#endif /* DCDFS_BACKEND_H */
