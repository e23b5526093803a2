// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * DOC: libdcdfs-preload - direct mappings for unmodified programs
 *
 *   LD_PRELOAD=/usr/lib/x86_64-linux-gnu/dcdfs/libdcdfs-preload.so PROGRAM
 *
 * A shared mapping of a whole dcdfs file range, made by mmap() without
 * MAP_FIXED, becomes a direct mapping of the allocation's memory
 * (dcdfs_map()); munmap() of it ends it.  Anything else, and any request
 * the daemon refuses, takes the normal path, so the program sees mmap()'s
 * usual behaviour: a private mapping keeps copy-on-write semantics, and a
 * mapping the daemon cannot serve directly is a page-cache one.  mremap()
 * and a munmap() of part of a direct mapping are passed through; the pin
 * then lasts until the process exits.  DCDFS_PRELOAD_DEBUG=1 logs each
 * direct mapping on stderr.
 */
/* Define mmap() and mmap64() themselves, not a redirection. */
#undef _FILE_OFFSET_BITS
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/types.h>

#include "client.h"

typedef void *(*mmap_fn)(void *, size_t, int, int, int, off_t);
typedef int (*munmap_fn)(void *, size_t);

static mmap_fn real_mmap;
static munmap_fn real_munmap;
static int debug = -1;

static void resolve(void)
{
	if (!real_mmap)
		real_mmap = (mmap_fn)dlsym(RTLD_NEXT, "mmap");
	if (!real_munmap)
		real_munmap = (munmap_fn)dlsym(RTLD_NEXT, "munmap");
	if (debug < 0) {
		const char *s = getenv("DCDFS_PRELOAD_DEBUG");

		debug = s && *s == '1';
	}
}

__attribute__((constructor)) static void preload_init(void)
{
	resolve();
}

static bool wants_direct(void *addr, int prot, int flags, int fd)
{
	(void) addr;
	if (fd < 0 || (flags & MAP_TYPE) != MAP_SHARED)
		return false;
	if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE | MAP_ANONYMOUS))
		return false;
	return (prot & PROT_READ) && !(prot & ~(PROT_READ | PROT_WRITE));
}

__attribute__((visibility("default")))
void *mmap(void *addr, size_t length, int prot, int flags, int fd,
	   off_t offset)
{
	void *p;

	resolve();
	if (wants_direct(addr, prot, flags, fd) && offset >= 0) {
		int saved = errno;
		int rc = client_map(fd, (uint64_t)offset, length, prot, &p);

		if (debug > 0)
			fprintf(stderr, "dcdfs-preload: fd %d offset %lld length"
				" %zu: %s\n", fd, (long long)offset, length,
				rc ? "page cache" : "direct");
		errno = saved;
		if (!rc)
			return p;
	}
	return real_mmap(addr, length, prot, flags, fd, offset);
}

__attribute__((visibility("default")))
void *mmap64(void *addr, size_t length, int prot, int flags, int fd,
	     off64_t offset)
{
	return mmap(addr, length, prot, flags, fd, offset);
}

__attribute__((visibility("default")))
int munmap(void *addr, size_t length)
{
	int rc;

	resolve();
	if (client_unmap_range(addr, length, &rc))
		return rc;
	return real_munmap(addr, length);
}
