/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The simulated Dynamic Capacity Device, inside core/: its layout, the
 * database helpers its three parts share (simdev.c: lifecycle; simdev-fm.c:
 * fabric-manager side; simdev-host.c: host side), and the host-side API the
 * sim backend uses.
 */
#ifndef DCDFS_SIMDEV_H
#define DCDFS_SIMDEV_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include <dcdfs/libdcdfs.h>

#include "backend.h"
#include "private.h"

/* "DCDF": the SQLite application_id of a device database. */
#define SIMDEV_APP_ID 0x44434446
#define SIMDEV_DB "device.db"
#define SIMDEV_MEM_DIR "mem"
#define SIMDEV_BELL_DIR "bell"
#define SIMDEV_LOCK_DIR "lock"
/* Answered events kept for dcdfs_simdev_get_event(). */
#define SIMDEV_EVENT_HISTORY 1024

/* Prepared statements, compiled once per open device (see simdev.c). */
enum sql_id {
	SQL_CONFIG_GET,
	SQL_EXTENT_BEFORE,
	SQL_EXTENT_AT,
	SQL_EXTENT_INSERT,
	SQL_EXTENT_DELETE,
	SQL_EXTENT_ACCEPT,
	SQL_EXTENTS_OF_EVENT,
	SQL_EXTENTS_OF_TAG,
	SQL_EXTENTS_HELD,
	SQL_EVENT_INSERT,
	SQL_EVENT_GET,
	SQL_EVENT_SET_STATE,
	SQL_EVENT_PRUNE,
	SQL_EVENTS_PENDING,
	SQL_EVENTS_PENDING_NEW,
	SQL_ITEM_INSERT,
	SQL_ITEMS_OF_EVENT,
	SQL_ITEM_EVENTS_AT,
	SQL_ITEMS_DELETE_AT,
	SQL_ITEMS_DELETE_EVENT,
	SQL_EVENT_RECOUNT,
	SQL_SCRUB_INSERT,
	SQL_SCRUB_CLEAR,
	SQL_SCRUB_ALL,
	SQL_USAGE,
	_SQL_MAX,
};

struct simdev_region {
	uint64_t size;
};

struct dcdfs_simdev {
	struct dcdfs_ctx *ctx;		/* reference held */
	char *path;			/* device directory, absolute */
	char *mem_path;			/* memory directory, absolute */
	char uuid[DCDFS_TAG_STR_LEN];
	uint64_t size;
	uint64_t block_size;
	unsigned int nr_regions;
	int numa_node;
	struct simdev_region regions[DCDFS_SIMDEV_MAX_REGIONS];

	/*
	 * Serialises every use of @db and @stmts; the daemon calls in from
	 * several threads.  Never held across a call out of this module.
	 */
	pthread_mutex_t lock;
	sqlite3 *db;
	sqlite3_stmt *stmts[_SQL_MAX];

	int mem_fd;			/* O_PATH of mem_path */
	int bell_fd;			/* O_PATH of the bell directory */

	/* Host side, once attached (simdev-host.c). */
	bool attached;
	unsigned int host;
	unsigned int region;
	int dev_lock_fd;		/* LOCK_SH on lock/device */
	int host_lock_fd;		/* LOCK_EX on lock/host-H-region-R */
	int inotify_fd;			/* watches bell/host-H */
};

/* simdev.c: database plumbing, all with dev->lock held. */
sqlite3_stmt *stmt_get_locked(struct dcdfs_simdev *dev, enum sql_id id);
int sql_rc(struct dcdfs_simdev *dev, int rc);
int tx_begin_locked(struct dcdfs_simdev *dev) _must_check_;
int tx_commit_locked(struct dcdfs_simdev *dev) _must_check_;
/* Whether an extent (held or offered, by any host) starts at @start. */
bool extent_exists_locked(struct dcdfs_simdev *dev, unsigned int region,
			  uint64_t start);
void tx_rollback_locked(struct dcdfs_simdev *dev);
int step_done_locked(struct dcdfs_simdev *dev, sqlite3_stmt *st) _must_check_;
int scrub_locked(struct dcdfs_simdev *dev);
int simdev_quick_check_locked(struct dcdfs_simdev *dev);
int extent_remove_locked(struct dcdfs_simdev *dev, unsigned int region,
			 uint64_t start) _must_check_;
void extent_from_row(sqlite3_stmt *st, int col, struct dcdfs_extent *ext);
void bind_tag(sqlite3_stmt *st, int col, const struct dcdfs_extent *ext);
int event_get_locked(struct dcdfs_simdev *dev, uint64_t id,
		     struct dcdfs_event_info *ret);

/* simdev-mem.c: memory files and doorbells. */
void mem_file_name(unsigned int region, uint64_t start, char *buf,
		   size_t len);
int mem_create(struct dcdfs_simdev *dev, unsigned int region, uint64_t start,
	       uint64_t length) _must_check_;
void mem_scrub(struct dcdfs_simdev *dev, unsigned int region, uint64_t start);
int bell_ring(struct dcdfs_simdev *dev, const char *name);
int bell_watch(struct dcdfs_simdev *dev, const char *name) _must_check_;
void bell_drain(int fd);
#define BELL_FM "fm"

/* ------------------------------------------------------------------------ */
/* Host side, for backend-sim.c and the unit tests                          */
/* ------------------------------------------------------------------------ */

/*
 * simdev_host_attach() - become host @host for region @region
 *
 * Takes the device lock shared (destroy waits for it) and the host lock
 * exclusive (a second host with the same id and region is refused), checks
 * the database, and starts watching the host's doorbell.
 *
 * Return: 0, -EBUSY (another process is that host), -EINVAL (bad host or
 * region), -EUCLEAN (damaged database), or a file system errno.
 */
int simdev_host_attach(struct dcdfs_simdev *dev, unsigned int host,
		       unsigned int region) _must_check_;

/* The fd that becomes readable when the FM posts an event for the host. */
int simdev_host_event_fd(struct dcdfs_simdev *dev);
/* Consume the wake-ups that made the event fd readable. */
void simdev_host_event_drain(struct dcdfs_simdev *dev);

/*
 * simdev_host_extents() - the Get DC Extent List of the host's region: held
 * extents in arrival order.  @ret is an array the caller frees.
 */
int simdev_host_extents(struct dcdfs_simdev *dev, struct dcdfs_extent **ret,
			size_t *ret_nr) _must_check_;

/*
 * simdev_host_events() - pending events of the host's region, oldest first:
 * NEW ones, and with @all the REFUSED releases too (after a restart).
 */
int simdev_host_events(struct dcdfs_simdev *dev, bool all,
		       struct backend_event **ret, size_t *ret_nr) _must_check_;

/*
 * simdev_host_accept() - the Add DC Response to an add event: @accepted (a
 * subset of its extents, by region and offset) become held, with zeroed
 * memory; the others are dropped.  An empty list drops the whole chain.
 *
 * Return: 0, -ENOENT (no such pending add), -EINVAL (an extent is not part
 * of it), or a database or file system error; nothing changes on error.
 */
int simdev_host_accept(struct dcdfs_simdev *dev, uint64_t event,
		       const struct dcdfs_extent *accepted,
		       size_t nr) _must_check_;

/* The host keeps the extents of release event @event for now. */
int simdev_host_refuse(struct dcdfs_simdev *dev, uint64_t event) _must_check_;

/* The host has seen forced release @event. */
int simdev_host_ack(struct dcdfs_simdev *dev, uint64_t event) _must_check_;

/*
 * simdev_host_release() - the Release DC command: give back whole held
 * extents (by region and offset).  Completes the release events they
 * satisfy.  All or none: -ENOENT if one is not held by the host.
 */
int simdev_host_release(struct dcdfs_simdev *dev,
			const struct dcdfs_extent *extents,
			size_t nr) _must_check_;

/*
 * simdev_mem_open() - open the memory of a held extent (O_RDWR, O_CLOEXEC).
 * Memory lost with the RAM file system (after a reboot) comes back zeroed.
 *
 * Return: an fd, or a negative errno.
 */
int simdev_mem_open(struct dcdfs_simdev *dev, const struct dcdfs_extent *ext);

/*
 * simdev_mem_reopen() - open the memory of a held extent again, read-only
 * unless @writable, for a client: never creates it, so the memory of an
 * extent taken meanwhile is not brought back.
 *
 * Return: an fd, or a negative errno (-ENOENT: the extent is gone).
 */
int simdev_mem_reopen(struct dcdfs_simdev *dev, const struct dcdfs_extent *ext,
		      bool writable);

#endif /* DCDFS_SIMDEV_H */
