// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * DOC: memory mapping and guarded copies
 *
 * An allocation of N extents is mapped into one libpmem2 virtual memory
 * reservation, extent after extent, so that it is contiguous in the address
 * space whatever the extents' places on the device.  Reservations are 2 MiB
 * aligned, so memory that can be mapped with huge pages is.
 *
 * Copies go through libpmem2's memcpy without flushing: the memory is
 * volatile (RAM, or CXL memory that is cache coherent), so there is nothing
 * to make persistent.
 *
 * A forced release truncates the memory under a live mapping; the next
 * access faults with SIGBUS.  memmap_write() runs the copy under a guard: a
 * per-thread jump buffer that the SIGBUS handler jumps back to, turning the
 * fault into -EIO.  Faults outside a guarded copy are passed to whatever
 * handler was there before.
 */
#include <errno.h>
#include <libpmem2.h>
#include <numa.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <dcdfs/libdcdfs.h>

#include "memmap.h"
#include "private.h"

struct memmap {
	struct pmem2_vm_reservation *rsv;
	struct pmem2_map **maps;	/* one per segment */
	size_t nr_maps;
	void *addr;
	size_t size;
	pmem2_memcpy_fn memcpy_fn;
};

static int pmem2_rc(struct dcdfs_ctx *ctx, int rc, const char *what)
{
	dbg(ctx, "%s: %s\n", what, pmem2_errormsg());
	/* libpmem2 returns negative errnos, or its own codes below them. */
	return rc > -4096 ? rc : -EINVAL;
}

static int map_seg(struct dcdfs_ctx *ctx, struct memmap *map,
		   const struct memmap_seg *seg, size_t rsv_offset,
		   struct pmem2_map **ret)
{
	struct pmem2_source *src = NULL;
	struct pmem2_config *cfg = NULL;
	int rc;

	rc = pmem2_config_new(&cfg);
	if (rc)
		return pmem2_rc(ctx, rc, "pmem2_config_new");
	rc = pmem2_source_from_fd(&src, seg->fd);
	if (rc) {
		rc = pmem2_rc(ctx, rc, "pmem2_source_from_fd");
		goto out_config;
	}
	rc = pmem2_config_set_required_store_granularity(cfg,
						PMEM2_GRANULARITY_PAGE);
	if (!rc)
		rc = pmem2_config_set_offset(cfg, seg->offset);
	if (!rc)
		rc = pmem2_config_set_length(cfg, seg->length);
	if (!rc)
		rc = pmem2_config_set_vm_reservation(cfg, map->rsv, rsv_offset);
	if (!rc)
		rc = pmem2_map_new(ret, cfg, src);
	if (rc)
		rc = pmem2_rc(ctx, rc, "pmem2_map_new");
	pmem2_source_delete(&src);
out_config:
	pmem2_config_delete(&cfg);
	return rc;
}

int memmap_new(struct dcdfs_ctx *ctx, const struct memmap_seg *segs,
	       size_t nr, int numa_node, struct memmap **ret)
{
	struct memmap *map;
	size_t size = 0, off = 0;
	int rc;

	for (size_t i = 0; i < nr; i++)
		size += segs[i].length;
	if (!nr || !size)
		return -EINVAL;
	map = calloc(1, sizeof(*map));
	if (!map)
		return -ENOMEM;
	map->maps = calloc(nr, sizeof(*map->maps));
	if (!map->maps) {
		free(map);
		return -ENOMEM;
	}
	rc = pmem2_vm_reservation_new(&map->rsv, NULL, size);
	if (rc) {
		rc = pmem2_rc(ctx, rc, "pmem2_vm_reservation_new");
		memmap_free(map);
		return rc;
	}
	for (size_t i = 0; i < nr; i++) {
		rc = map_seg(ctx, map, &segs[i], off, &map->maps[i]);
		if (rc) {
			memmap_free(map);
			return rc;
		}
		map->nr_maps++;
		off += segs[i].length;
	}
	map->addr = pmem2_vm_reservation_get_address(map->rsv);
	map->size = size;
	map->memcpy_fn = pmem2_get_memcpy_fn(map->maps[0]);
	if (numa_node >= 0 && numa_available() >= 0)
		numa_tonode_memory(map->addr, size, numa_node);
	*ret = map;
	return 0;
}

void memmap_free(struct memmap *map)
{
	if (!map)
		return;
	for (size_t i = 0; i < map->nr_maps; i++)
		pmem2_map_delete(&map->maps[i]);
	if (map->rsv)
		pmem2_vm_reservation_delete(&map->rsv);
	free(map->maps);
	free(map);
}

void *memmap_addr(struct memmap *map)
{
	return map->addr;
}

size_t memmap_size(struct memmap *map)
{
	return map->size;
}

/* ------------------------------------------------------------------------ */
/* SIGBUS guard                                                             */
/* ------------------------------------------------------------------------ */

static struct sigaction old_sigbus;
static __thread sigjmp_buf *guard_jmp;

static void sigbus_handler(int sig, siginfo_t *si, void *uc)
{
	sigjmp_buf *jb = guard_jmp;

	if (jb) {
		guard_jmp = NULL;
		siglongjmp(*jb, 1);
	}
	/* Not ours: behave as if we had never been installed. */
	if (old_sigbus.sa_flags & SA_SIGINFO && old_sigbus.sa_sigaction) {
		old_sigbus.sa_sigaction(sig, si, uc);
		return;
	}
	if (old_sigbus.sa_handler != SIG_DFL &&
	    old_sigbus.sa_handler != SIG_IGN) {
		old_sigbus.sa_handler(sig);
		return;
	}
	signal(SIGBUS, SIG_DFL);
	raise(SIGBUS);
}

static int guard_rc;

static void guard_install(void)
{
	struct sigaction sa = {
		.sa_sigaction = sigbus_handler,
		/* NODEFER: the jump out leaves SIGBUS unblocked. */
		.sa_flags = SA_SIGINFO | SA_NODEFER,
	};

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, &old_sigbus) < 0)
		guard_rc = -errno;
}

DCDFS_EXPORT int dcdfs_mem_guard_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, guard_install);
	return guard_rc;
}

int memmap_write(struct memmap *map, uint64_t offset, const void *src,
		 size_t len)
{
	sigjmp_buf jb;

	/*
	 * Save the signal mask, so that the jump out of the handler restores
	 * it: SA_NODEFER keeps SIGBUS unblocked only when our handler is the
	 * one the kernel runs.  A wrapper around it (ThreadSanitizer's) runs
	 * it with SIGBUS blocked, and the thread's next fault killed the
	 * daemon.
	 */
	if (sigsetjmp(jb, 1))
		return -EIO;
	guard_jmp = &jb;
	map->memcpy_fn((char *)map->addr + offset, src, len,
		       PMEM2_F_MEM_NOFLUSH);
	guard_jmp = NULL;
	return 0;
}
