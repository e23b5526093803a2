/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Inside libdcdfs-map and libdcdfs-preload: the functions behind the public
 * ones, which the preload shim calls without exporting them.
 */
#ifndef DCDFS_CLIENT_H
#define DCDFS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DCDFS_MAP_EXPORT __attribute__((visibility("default")))

int client_map(int fd, uint64_t offset, size_t length, int prot,
	       void **ret_addr);
int client_unmap(void *addr, size_t length);
bool client_is_mapped(const void *addr);

/*
 * client_unmap_range() - munmap() of a range holding direct mappings
 *
 * Ends the mappings wholly inside [@addr, +@length) and unmaps the range;
 * *@ret is munmap()'s return.  False if the range holds none: the caller
 * unmaps it as usual.
 */
bool client_unmap_range(void *addr, size_t length, int *ret);

#endif /* DCDFS_CLIENT_H */
