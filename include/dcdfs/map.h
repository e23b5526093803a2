/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libdcdfs-map - map the memory of a dcdfs file itself, with zero copies.
 *
 * Through FUSE, mmap() of a dcdfs file maps page-cache copies of the
 * memory.  dcdfs_map() asks the file's dcdfs daemon for the allocation's
 * memory and maps it: loads and stores reach the device's memory, and the
 * mapping pins the allocation (the fabric manager's release of it is
 * refused) until dcdfs_unmap() or the end of the process.  See
 * dcdfs_map(3) and docs/direct-map.md.
 *
 * Functions return 0 or a negative errno; they are thread-safe.
 */
#ifndef DCDFS_MAP_H
#define DCDFS_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * dcdfs_map() - map a range of a dcdfs file's memory directly
 * @fd: the file, open for reading (and writing, for PROT_WRITE)
 * @offset: start of the range, a multiple of the page size
 * @length: its length; rounded up to the page size, within the file
 * @prot: PROT_READ, or PROT_READ | PROT_WRITE
 * @ret_addr: where the range is mapped: MAP_SHARED, contiguous even when
 *	      the allocation has several extents, aligned to 2 MiB where the
 *	      memory allows huge mappings
 *
 * Return: 0, or -EINVAL (bad range or @prot), -ENODEV (@fd is not a file
 * of a dcdfs mount), -EOPNOTSUPP (its daemon hands out no memory), -EACCES
 * (@prot needs an access @fd was not opened with), -ENXIO (past the end),
 * -ENOENT (the allocation is being released), -EPERM (the server is not
 * the mount's daemon), or the errno of the mapping.
 */
int dcdfs_map(int fd, uint64_t offset, size_t length, int prot,
	      void **ret_addr);

/**
 * dcdfs_unmap() - unmap what dcdfs_map() mapped, and drop its pin
 * @addr: the address dcdfs_map() returned
 * @length: the length given to dcdfs_map()
 *
 * Return: 0, or -EINVAL (not a mapping made by dcdfs_map()).
 */
int dcdfs_unmap(void *addr, size_t length);

/** dcdfs_is_mapped() - is @addr inside a mapping made by dcdfs_map()? */
bool dcdfs_is_mapped(const void *addr);

/**
 * struct dcdfs_layout - where a dcdfs file's memory is
 * @size: the file's size
 * @numa_node: node of the memory, or -1
 * @nr_extents: number of @extents
 * @extents: the extents in file order: where each starts in the file, its
 *	     device (DPA) offset, its length
 */
struct dcdfs_layout {
	uint64_t size;
	int numa_node;
	size_t nr_extents;
	struct dcdfs_layout_extent {
		uint64_t file_offset;
		uint64_t dpa;
		uint64_t length;
	} extents[];
};

/**
 * dcdfs_map_layout() - the layout of a dcdfs file
 * @fd: the file (any open mode)
 * @ret: the layout, to free()
 *
 * Return: 0, or -ENODEV (not a dcdfs file), -ENOMEM.
 */
int dcdfs_map_layout(int fd, struct dcdfs_layout **ret);

#ifdef __cplusplus
}
#endif

#endif /* DCDFS_MAP_H */
