/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Mapping an allocation's memory: its extents, each from its own file or
 * device, laid side by side in one reservation, with libpmem2.
 */
#ifndef DCDFS_MEMMAP_H
#define DCDFS_MEMMAP_H

#include <stddef.h>
#include <stdint.h>

#include "private.h"

struct memmap;

/**
 * struct memmap_seg - one extent's memory
 * @fd: file or device to map (not consumed)
 * @offset: where the extent starts in @fd
 * @length: its length, a multiple of the page size
 */
struct memmap_seg {
	int fd;
	uint64_t offset;
	uint64_t length;
};

/*
 * memmap_new() - map @nr segments contiguously, read-write and shared, at a
 * 2 MiB-aligned address; bind the range to @numa_node unless it is -1.
 */
int memmap_new(struct dcdfs_ctx *ctx, const struct memmap_seg *segs,
	       size_t nr, int numa_node, struct memmap **ret) _must_check_;
void memmap_free(struct memmap *map);
void *memmap_addr(struct memmap *map);
size_t memmap_size(struct memmap *map);

/*
 * memmap_write() - copy into the mapping with libpmem2's copy routine.
 *
 * Return: 0, or -EIO if the memory was taken away under the copy (only
 * caught after dcdfs_mem_guard_init()).
 */
int memmap_write(struct memmap *map, uint64_t offset, const void *src,
		 size_t len) _must_check_;

#endif /* DCDFS_MEMMAP_H */
