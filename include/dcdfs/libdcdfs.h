/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libdcdfs: CXL Dynamic Capacity as files.
 *
 * The library owns the simulated Dynamic Capacity Device (its fabric-manager
 * side is used by dcdctl, its host side by the dcdfs daemon), the allocation
 * registry with the pin/release state machine, and the backends.  It never
 * includes libfuse.
 *
 * Conventions: functions that can fail return 0 or a negative errno; objects
 * come from a _new() or _open() function and go with the matching _unref()
 * or _close(), which accept NULL.  dcdfs_strerror() gives the detailed reason of the last failure of a
 * call made from the same thread.
 */
#ifndef DCDFS_LIBDCDFS_H
#define DCDFS_LIBDCDFS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DCDFS_EXPORT __attribute__((visibility("default")))

/* ------------------------------------------------------------------------ */
/* Library context and logging                                              */
/* ------------------------------------------------------------------------ */

struct dcdfs_ctx;

/**
 * typedef dcdfs_log_fn - log hook
 * @priority: a syslog priority (LOG_ERR, LOG_INFO, LOG_DEBUG, ...)
 *
 * The message ends with a newline.  The default hook writes to stderr.
 */
typedef void (*dcdfs_log_fn)(struct dcdfs_ctx *ctx, int priority,
			     const char *file, int line, const char *fn,
			     const char *format, va_list args);

/**
 * dcdfs_new() - create a library context
 * @ret: the new context, with one reference
 *
 * The log priority comes from $DCDFS_LOG (err, info, debug or a number).
 *
 * Return: 0, or -EINVAL (@ret is NULL), -ENOMEM.
 */
DCDFS_EXPORT int dcdfs_new(struct dcdfs_ctx **ret);

/**
 * dcdfs_ref() - take a reference on a context
 *
 * Return: @ctx.
 */
DCDFS_EXPORT struct dcdfs_ctx *dcdfs_ref(struct dcdfs_ctx *ctx);

/**
 * dcdfs_unref() - drop a reference; the last one frees the context
 * @ctx: the context, or NULL
 */
DCDFS_EXPORT void dcdfs_unref(struct dcdfs_ctx *ctx);

/** dcdfs_set_log_fn() - route the library's messages to @fn */
DCDFS_EXPORT void dcdfs_set_log_fn(struct dcdfs_ctx *ctx, dcdfs_log_fn fn);

/** dcdfs_get_log_priority() - the highest priority logged */
DCDFS_EXPORT int dcdfs_get_log_priority(struct dcdfs_ctx *ctx);

/** dcdfs_set_log_priority() - log messages up to @priority */
DCDFS_EXPORT void dcdfs_set_log_priority(struct dcdfs_ctx *ctx, int priority);

/** dcdfs_set_userdata() - attach caller data to @ctx */
DCDFS_EXPORT void dcdfs_set_userdata(struct dcdfs_ctx *ctx, void *data);

/** dcdfs_get_userdata() - the caller data attached to @ctx */
DCDFS_EXPORT void *dcdfs_get_userdata(struct dcdfs_ctx *ctx);

/**
 * dcdfs_strerror() - describe a failure
 * @rc: the negative errno a library call returned
 *
 * Return: the detailed reason the last failing call of this thread gave (for
 * example which extent overlaps which), or strerror(-@rc) when it gave none.
 * The string stays valid until the next library call in this thread.
 */
DCDFS_EXPORT const char *dcdfs_strerror(int rc);

/* ------------------------------------------------------------------------ */
/* Sizes, extents and tags                                                  */
/* ------------------------------------------------------------------------ */

#define DCDFS_TAG_SIZE 16
#define DCDFS_TAG_STR_LEN 37 /* 36 characters and the NUL */
#define DCDFS_SIZE_STR_LEN 24

/**
 * struct dcdfs_extent - a range of Dynamic Capacity
 * @region: DC region index
 * @offset: start, in bytes from the start of the region
 * @length: length in bytes
 * @seq: shared extent sequence number
 * @tagged: @tag is meaningful (a null tag means untagged)
 * @tag: the tag (a UUID), in binary
 */
struct dcdfs_extent {
	unsigned int region;
	uint64_t offset;
	uint64_t length;
	uint16_t seq;
	bool tagged;
	uint8_t tag[DCDFS_TAG_SIZE];
};

/**
 * dcdfs_parse_size() - parse a size
 * @str: decimal bytes, 0x hex, with an optional K, M, G or T suffix (powers of
 *	 1024, upper or lower case, optionally followed by "iB")
 * @ret: the value
 *
 * Return: 0, or -EINVAL (not a size), -ERANGE (does not fit in 64 bits).
 */
DCDFS_EXPORT int dcdfs_parse_size(const char *str, uint64_t *ret);

/**
 * dcdfs_parse_extent() - parse an extent specification
 * @str: "OFFSET:LENGTH" or, with @allow_seq, "OFFSET:LENGTH:SEQ"; OFFSET and
 *	 LENGTH as dcdfs_parse_size() takes them, SEQ 0..65535
 * @allow_seq: accept the sequence number
 * @ret: offset, length and seq are filled in; the other fields are left alone
 *
 * Return: 0, or -EINVAL (malformed, zero length), -ERANGE (a value is too
 * large, or OFFSET + LENGTH overflows).
 */
DCDFS_EXPORT int dcdfs_parse_extent(const char *str, bool allow_seq,
				    struct dcdfs_extent *ret);

/**
 * dcdfs_parse_tag() - parse a tag
 * @str: a UUID in its 36-character form
 * @ret: the tag in binary
 *
 * Return: 0, or -EINVAL (not a UUID, or the null UUID, which means untagged).
 */
DCDFS_EXPORT int dcdfs_parse_tag(const char *str, uint8_t ret[DCDFS_TAG_SIZE]);

/**
 * dcdfs_format_tag() - the canonical lowercase form of a tag
 * Return: @buf.
 */
DCDFS_EXPORT char *dcdfs_format_tag(const uint8_t tag[DCDFS_TAG_SIZE],
				    char buf[DCDFS_TAG_STR_LEN]);

/**
 * dcdfs_format_size() - a size for humans, as cxl-cli -u prints it
 *
 * "512 B", "2.00 MiB", "1.50 GiB".
 *
 * Return: @buf.
 */
DCDFS_EXPORT char *dcdfs_format_size(uint64_t bytes,
				     char buf[DCDFS_SIZE_STR_LEN]);

/* ------------------------------------------------------------------------ */
/* The simulated Dynamic Capacity Device                                    */
/* ------------------------------------------------------------------------ */

/*
 * A simulated DCD lives in a directory: its configuration and metadata in a
 * SQLite database, its memory in one file per extent.  Fabric-manager
 * commands (add, release) post events that wait for the host, as in a real
 * device's event log.  See docs/simdev.md.
 */
struct dcdfs_simdev;

#define DCDFS_SIMDEV_FORMAT 1
#define DCDFS_SIMDEV_MAX_REGIONS 8
#define DCDFS_SIMDEV_MAX_HOST 65535
#define DCDFS_SIMDEV_DEFAULT_BLOCK (2ULL << 20)
#define DCDFS_SIMDEV_DEFAULT_SIZE (16ULL << 30)

/**
 * struct dcdfs_simdev_config - geometry of a new device
 * @size: total dynamic capacity in bytes
 * @nr_regions: DC regions (1..8); the capacity is split evenly; 0 means 1
 * @block_size: region block size, a power of two of at least the page size;
 *		0 means 2 MiB
 * @memory: directory (tmpfs or hugetlbfs) under which the memory lives, or
 *	    NULL for the default (see docs/simdev.md)
 * @numa_node: NUMA node to bind the memory to, or -1
 */
struct dcdfs_simdev_config {
	uint64_t size;
	unsigned int nr_regions;
	uint64_t block_size;
	const char *memory;
	int numa_node;
};

/**
 * dcdfs_simdev_default_path() - the default device directory
 *
 * $DCDFS_DEVICE if set, otherwise /dev/shm/dcdfs-UID/default.
 *
 * Return: a string the caller frees, or NULL (out of memory).
 */
DCDFS_EXPORT char *dcdfs_simdev_default_path(void);

/**
 * dcdfs_simdev_create() - create a device
 * @ctx: library context
 * @path: directory to create; it must not exist, or be empty
 * @cfg: geometry
 * @ret: the open device, or NULL if the caller does not want it
 *
 * The device appears at @path complete or not at all.
 *
 * Return: 0, or -EINVAL (bad geometry), -EEXIST (@path exists and is not
 * empty), -ENODEV (@cfg->numa_node has no memory), or the errno of a failed
 * file system or database operation.
 */
DCDFS_EXPORT int dcdfs_simdev_create(struct dcdfs_ctx *ctx, const char *path,
				     const struct dcdfs_simdev_config *cfg,
				     struct dcdfs_simdev **ret);

/**
 * dcdfs_simdev_open() - open an existing device
 *
 * A directory that is not a dcdfs device, or whose metadata is damaged, is
 * refused and left untouched.
 *
 * Return: 0, or -ENOENT (no such directory), -ENODEV (not a dcdfs device),
 * -EUCLEAN (damaged metadata), -EPROTONOSUPPORT (a newer format), -ENOMEM,
 * or the errno of a failed file system operation.
 */
DCDFS_EXPORT int dcdfs_simdev_open(struct dcdfs_ctx *ctx, const char *path,
				   struct dcdfs_simdev **ret);

/** dcdfs_simdev_close() - close a device; NULL is allowed */
DCDFS_EXPORT void dcdfs_simdev_close(struct dcdfs_simdev *dev);

/**
 * dcdfs_simdev_destroy() - remove a device and its memory
 *
 * Return: 0, or the errors of dcdfs_simdev_open(), -EBUSY (a host is
 * attached), or the errno of a failed removal.
 */
DCDFS_EXPORT int dcdfs_simdev_destroy(struct dcdfs_ctx *ctx, const char *path);

/** dcdfs_simdev_get_path() - the device directory */
DCDFS_EXPORT const char *dcdfs_simdev_get_path(struct dcdfs_simdev *dev);
/** dcdfs_simdev_get_memory_path() - the directory holding the memory */
DCDFS_EXPORT const char *dcdfs_simdev_get_memory_path(struct dcdfs_simdev *dev);
/** dcdfs_simdev_get_uuid() - the device's identity, as a string */
DCDFS_EXPORT const char *dcdfs_simdev_get_uuid(struct dcdfs_simdev *dev);
/** dcdfs_simdev_get_size() - total dynamic capacity in bytes */
DCDFS_EXPORT uint64_t dcdfs_simdev_get_size(struct dcdfs_simdev *dev);
/** dcdfs_simdev_get_nr_regions() - number of DC regions */
DCDFS_EXPORT unsigned int dcdfs_simdev_get_nr_regions(struct dcdfs_simdev *dev);
/** dcdfs_simdev_get_block_size() - block size of every region */
DCDFS_EXPORT uint64_t dcdfs_simdev_get_block_size(struct dcdfs_simdev *dev);
/** dcdfs_simdev_get_region_size() - capacity of one region (0 if none) */
DCDFS_EXPORT uint64_t dcdfs_simdev_get_region_size(struct dcdfs_simdev *dev,
						   unsigned int region);
/** dcdfs_simdev_get_numa_node() - the node the memory is bound to, or -1 */
DCDFS_EXPORT int dcdfs_simdev_get_numa_node(struct dcdfs_simdev *dev);

/**
 * dcdfs_simdev_get_usage() - capacity accounting of a region
 * @ret_free: capacity neither held by nor offered to any host
 * @ret_held: capacity held by hosts (accepted extents)
 * @ret_pending: capacity offered in add events not yet answered
 *
 * free + held + pending equals the region's size.  Any pointer may be NULL.
 *
 * Return: 0, or -EINVAL (no such region), or a database error.
 */
DCDFS_EXPORT int dcdfs_simdev_get_usage(struct dcdfs_simdev *dev,
					unsigned int region,
					uint64_t *ret_free, uint64_t *ret_held,
					uint64_t *ret_pending);

/* Events: what the FM posts and what the host answers. */
enum dcdfs_event_kind {
	DCDFS_EVENT_ADD,		/* one More-chain of extents offered */
	DCDFS_EVENT_RELEASE,		/* the FM asks for extents back */
	DCDFS_EVENT_FORCED_RELEASE,	/* the FM took extents back */
};

enum dcdfs_event_state {
	DCDFS_EVENT_NEW,	/* the host has not answered */
	DCDFS_EVENT_REFUSED,	/* release: the host keeps the extents for now */
	DCDFS_EVENT_DONE,	/* answered: accepted/dropped, released, seen */
};

/**
 * struct dcdfs_event_info - an event and its outcome
 * @id: event number, increasing, never reused
 * @kind: what the FM asked
 * @state: how far the host got
 * @host: host id
 * @region: DC region
 * @tagged: a tag-based release, or an add with a tag
 * @tag: the tag
 * @nr_extents: extents in the event
 * @nr_done: add: extents the host accepted; release: extents released
 */
struct dcdfs_event_info {
	uint64_t id;
	enum dcdfs_event_kind kind;
	enum dcdfs_event_state state;
	unsigned int host;
	unsigned int region;
	bool tagged;
	uint8_t tag[DCDFS_TAG_SIZE];
	unsigned int nr_extents;
	unsigned int nr_done;
};

/**
 * struct dcdfs_fm_request - a fabric-manager add or release
 * @host: host id (0..65535)
 * @region: DC region
 * @tag: add: the tag of every extent (NULL for untagged); release without
 *	 extents: release every extent of that tag (tag-based); release with
 *	 extents: every extent must carry it
 * @forced: release: take the memory away at once, whatever the host does
 * @extents: add: the extents to offer, as one More-chain; release: ranges,
 *	     each covering whole extents held by @host.  Only offset, length and
 *	     seq (add only) are used.
 * @nr_extents: number of @extents
 */
struct dcdfs_fm_request {
	unsigned int host;
	unsigned int region;
	const uint8_t *tag;
	bool forced;
	const struct dcdfs_extent *extents;
	size_t nr_extents;
};

/**
 * dcdfs_simdev_fm_add() - offer capacity to a host
 * @ret_event: the event number, to follow with dcdfs_simdev_get_event()
 *
 * The whole request is refused, and nothing changes, if an extent has zero
 * length, is not aligned to the block size, lies outside the region, overlaps
 * another extent of the request, or overlaps capacity held by or offered to
 * any host.
 *
 * Return: 0, or -EINVAL (malformed request), -ERANGE (outside the region),
 * -EEXIST (overlap), -EBUSY (database locked for too long), or a database
 * error.  dcdfs_strerror() names the offending extent.
 */
DCDFS_EXPORT int dcdfs_simdev_fm_add(struct dcdfs_simdev *dev,
				     const struct dcdfs_fm_request *req,
				     uint64_t *ret_event);

/**
 * dcdfs_simdev_fm_release() - ask a host to give capacity back
 * @ret_event: the event number
 *
 * Prescriptive (with extents) or tag-based (tag only).  A forced release
 * frees the capacity and revokes its memory at once (mappings fault); the
 * host is told afterwards.
 *
 * Return: 0, or -EINVAL (malformed request), -ERANGE (outside the region),
 * -ENOENT (a range is not fully held by the host, or no extent has the tag),
 * -EBUSY (database locked for too long), or a database error.
 */
DCDFS_EXPORT int dcdfs_simdev_fm_release(struct dcdfs_simdev *dev,
					 const struct dcdfs_fm_request *req,
					 uint64_t *ret_event);

/**
 * dcdfs_simdev_get_event() - the state of an event
 *
 * Answered events are kept for a while (the last 1024 per device) so that a
 * waiting FM can read the outcome.
 *
 * Return: 0, or -ENOENT (unknown or forgotten event), or a database error.
 */
DCDFS_EXPORT int dcdfs_simdev_get_event(struct dcdfs_simdev *dev, uint64_t id,
					struct dcdfs_event_info *ret);

/**
 * dcdfs_simdev_wait_event() - wait until the host answered an event
 * @timeout_ms: how long to wait; negative waits for ever
 * @ret: the event's final state
 *
 * Return: 0 (answered: DONE, or REFUSED for a release), -ETIMEDOUT (still
 * NEW; @ret holds its state), or the errors of dcdfs_simdev_get_event().
 */
DCDFS_EXPORT int dcdfs_simdev_wait_event(struct dcdfs_simdev *dev, uint64_t id,
					 int timeout_ms,
					 struct dcdfs_event_info *ret);

enum dcdfs_extent_state {
	DCDFS_EXTENT_PENDING,		/* offered in an unanswered add */
	DCDFS_EXTENT_HELD,		/* accepted by the host */
	DCDFS_EXTENT_RELEASE_PENDING,	/* held, a release is outstanding */
};

/**
 * struct dcdfs_extent_info - an extent as the device sees it
 * @host: the host it belongs to
 * @state: see enum dcdfs_extent_state
 * @event: the add event offering it (PENDING) or the oldest release event
 *	   asking for it (RELEASE_PENDING), otherwise 0
 * @extent: where it is
 */
struct dcdfs_extent_info {
	unsigned int host;
	enum dcdfs_extent_state state;
	uint64_t event;
	struct dcdfs_extent extent;
};

typedef int (*dcdfs_extent_cb)(const struct dcdfs_extent_info *info,
			       void *arg);
typedef int (*dcdfs_event_cb)(const struct dcdfs_event_info *info, void *arg);

/**
 * dcdfs_simdev_foreach_extent() - visit extents, in region and offset order
 * @host: only this host's, or -1 for all
 * @cb: called for each; a non-zero return stops the walk and is returned
 *
 * Return: 0, what @cb returned, or a database error.
 */
DCDFS_EXPORT int dcdfs_simdev_foreach_extent(struct dcdfs_simdev *dev,
					     int host, dcdfs_extent_cb cb,
					     void *arg);

/**
 * dcdfs_simdev_foreach_event() - visit pending events (NEW or REFUSED)
 * @host: only this host's, or -1 for all
 *
 * Return: 0, what @cb returned, or a database error.
 */
DCDFS_EXPORT int dcdfs_simdev_foreach_event(struct dcdfs_simdev *dev, int host,
					    dcdfs_event_cb cb, void *arg);

/**
 * dcdfs_simdev_check() - verify the device's invariants
 *
 * Extents lie inside their regions, are aligned and never overlap, events
 * and extents refer to each other consistently, and no memory is left behind
 * for capacity that is free.  Read-only.
 *
 * Return: 0 (consistent), -EUCLEAN (inconsistent; dcdfs_strerror() says
 * how), or a database error.
 */
DCDFS_EXPORT int dcdfs_simdev_check(struct dcdfs_simdev *dev);


/* ------------------------------------------------------------------------ */
/* The host: allocations, pins and releases                                 */
/* ------------------------------------------------------------------------ */

/*
 * A host presents the allocations it holds on one DC region of one backend.
 * An allocation is an untagged extent, or all extents sharing a tag; it is
 * what a file stands for.  Pins (open files, mappings) keep the FM from
 * taking it back; see docs/design.md for the state machine.
 */
struct dcdfs_host;
struct dcdfs_alloc;

/**
 * enum dcdfs_alloc_state - where an allocation is in its life
 *
 * Transitions happen only in alloc_set_state_locked(), under the host lock,
 * against the table in core/host.c.
 *
 * @DCDFS_ALLOC_OFFERED: named while the device is told the host accepts it;
 *	cannot be pinned yet
 * @DCDFS_ALLOC_ACTIVE: held; may be pinned, read and written
 * @DCDFS_ALLOC_RELEASE_PENDING: the FM asked for it while it was pinned; new
 *	pins are refused and the release completes at the last unpin
 * @DCDFS_ALLOC_RELEASING: the release is decided and the device is being
 *	told; its name is gone and new pins are refused
 * @DCDFS_ALLOC_RELEASED: given back; the object lives on only for the
 *	references still held
 * @DCDFS_ALLOC_REVOKED: taken away by a forced release; I/O fails with EIO
 */
enum dcdfs_alloc_state {
	DCDFS_ALLOC_OFFERED,
	DCDFS_ALLOC_ACTIVE,
	DCDFS_ALLOC_RELEASE_PENDING,
	DCDFS_ALLOC_RELEASING,
	DCDFS_ALLOC_RELEASED,
	DCDFS_ALLOC_REVOKED,
	_DCDFS_ALLOC_STATE_MAX,
};

/**
 * struct dcdfs_host_config - what a host presents, and how
 * @backend: "sim" (the default) or "kernel"
 * @device: sim: the device directory; NULL for the default, which is
 *	    created on first use (DCDFS_SIMDEV_DEFAULT_SIZE, one region)
 * @host: sim: host id
 * @region: sim: DC region
 * @state: file keeping chmod/chown of allocations across restarts; NULL for
 *	   the backend's default
 * @uid: owner of allocations that were never chown'd
 * @gid: group of allocations that were never chown'd
 * @mode: permission bits of allocations that were never chmod'd
 * @cxl_region: kernel: the DC region, "regionN"
 * @sysfs: kernel: where sysfs is mounted; NULL for /sys
 * @devdir: kernel: where the DAX devices are; NULL for /dev
 * @poll_ms: kernel: how often to scan for extents; 0 for 200
 * @release_helper: kernel: program run by dcdfs_alloc_release(), or NULL
 *
 * See docs/kernel-backend.md for the kernel backend.
 */
struct dcdfs_host_config {
	const char *backend;
	const char *device;
	unsigned int host;
	unsigned int region;
	const char *state;
	uint32_t uid;
	uint32_t gid;
	uint32_t mode;
	const char *cxl_region;
	const char *sysfs;
	const char *devdir;
	unsigned int poll_ms;
	const char *release_helper;
};

/**
 * dcdfs_host_new() - attach to a backend and take over what it holds
 * @ret: the host
 *
 * The allocations the device says the host holds are presented at once;
 * pending events wait for dcdfs_host_run().
 *
 * Return: 0, or -EINVAL (bad configuration), -EBUSY (another process is
 * this host), the errors of dcdfs_simdev_open(), or -ENOMEM.
 */
DCDFS_EXPORT int dcdfs_host_new(struct dcdfs_ctx *ctx,
				const struct dcdfs_host_config *cfg,
				struct dcdfs_host **ret);

/**
 * dcdfs_host_free() - detach; every allocation reference must be dropped
 * @host: the host, or NULL
 */
DCDFS_EXPORT void dcdfs_host_free(struct dcdfs_host *host);

/**
 * dcdfs_host_run() - handle device events until dcdfs_host_stop()
 *
 * Meant for a thread of its own.  Adds are validated as the newest kernel
 * series validates them and answered; releases are completed or refused;
 * releases deferred to the last unpin are completed here.
 *
 * Return: 0 once stopped, or a negative errno if the backend failed for
 * good.
 */
DCDFS_EXPORT int dcdfs_host_run(struct dcdfs_host *host);

/**
 * dcdfs_host_stop() - make dcdfs_host_run() and dcdfs_host_next_change()
 * return
 */
DCDFS_EXPORT void dcdfs_host_stop(struct dcdfs_host *host);

/**
 * dcdfs_host_process() - handle what is pending now, once
 *
 * What dcdfs_host_run() does on each wake-up, for callers with a loop of
 * their own and for tests.
 *
 * Return: 0, or a backend error.
 */
DCDFS_EXPORT int dcdfs_host_process(struct dcdfs_host *host);

enum dcdfs_change_kind {
	DCDFS_CHANGE_ADDED,	/* a name appeared */
	DCDFS_CHANGE_REMOVED,	/* a name went away; the allocation is gone */
	DCDFS_CHANGE_REVOKED,	/* a name went away and its data with it */
};

/**
 * struct dcdfs_change - a change of the namespace, for the kernel's caches
 * @kind: what happened
 * @id: the allocation's id (its inode number)
 * @name: its name
 */
struct dcdfs_change {
	enum dcdfs_change_kind kind;
	uint64_t id;
	char name[64];
};

/**
 * dcdfs_host_watch_changes() - declare that someone consumes changes
 *
 * From then on, a release waits until its REMOVED change has been consumed
 * (dcdfs_host_change_done()) before the device is told: whoever sees the
 * device's answer also sees the name gone.  Without a consumer changes are
 * dropped.
 */
DCDFS_EXPORT void dcdfs_host_watch_changes(struct dcdfs_host *host);

/**
 * dcdfs_host_next_change() - wait for the next change
 * @timeout_ms: negative waits until there is one or the host stops
 *
 * Return: 0, -ETIMEDOUT, or -ESHUTDOWN (dcdfs_host_stop() was called).
 */
DCDFS_EXPORT int dcdfs_host_next_change(struct dcdfs_host *host,
					struct dcdfs_change *ret,
					int timeout_ms);

/** dcdfs_host_change_done() - the last change returned has been applied */
DCDFS_EXPORT void dcdfs_host_change_done(struct dcdfs_host *host);

/**
 * struct dcdfs_host_usage - what statfs reports
 * @capacity: size of the region
 * @held: capacity held by this host
 * @block_size: the region's block size
 * @nr_allocs: allocations presented
 */
struct dcdfs_host_usage {
	uint64_t capacity;
	uint64_t held;
	uint64_t block_size;
	uint64_t nr_allocs;
};

/** dcdfs_host_get_usage() - capacity and allocation counts */
DCDFS_EXPORT void dcdfs_host_get_usage(struct dcdfs_host *host,
				       struct dcdfs_host_usage *ret);

/**
 * dcdfs_host_lookup() - the allocation named @name
 * @ret: a new reference
 *
 * Return: 0, or -ENOENT (no such name).
 */
DCDFS_EXPORT int dcdfs_host_lookup(struct dcdfs_host *host, const char *name,
				   struct dcdfs_alloc **ret);

/**
 * dcdfs_host_list() - references to every named allocation, in name order
 * @ret: an array the caller frees after dropping each reference
 *
 * Return: 0, or -ENOMEM.
 */
DCDFS_EXPORT int dcdfs_host_list(struct dcdfs_host *host,
				 struct dcdfs_alloc ***ret, size_t *ret_nr);

/** dcdfs_alloc_ref() - take a reference; returns @alloc */
DCDFS_EXPORT struct dcdfs_alloc *dcdfs_alloc_ref(struct dcdfs_alloc *alloc);
/** dcdfs_alloc_unref() - drop a reference; NULL is allowed */
DCDFS_EXPORT void dcdfs_alloc_unref(struct dcdfs_alloc *alloc);

/** dcdfs_alloc_get_id() - stable for the mount's life, never reused, >= 2 */
DCDFS_EXPORT uint64_t dcdfs_alloc_get_id(struct dcdfs_alloc *alloc);
/** dcdfs_alloc_get_name() - the file name */
DCDFS_EXPORT const char *dcdfs_alloc_get_name(struct dcdfs_alloc *alloc);
/** dcdfs_alloc_get_size() - total length of the extents */
DCDFS_EXPORT uint64_t dcdfs_alloc_get_size(struct dcdfs_alloc *alloc);
/** dcdfs_alloc_get_state() - see enum dcdfs_alloc_state */
DCDFS_EXPORT enum dcdfs_alloc_state dcdfs_alloc_get_state(
	struct dcdfs_alloc *alloc);
/** dcdfs_alloc_get_pins() - open files and mappings holding it */
DCDFS_EXPORT unsigned int dcdfs_alloc_get_pins(struct dcdfs_alloc *alloc);
/** dcdfs_alloc_get_time() - when the host accepted it (seconds) */
DCDFS_EXPORT int64_t dcdfs_alloc_get_time(struct dcdfs_alloc *alloc);

/**
 * struct dcdfs_alloc_attr - ownership and permissions
 * @mode: permission bits (07777)
 * @uid: owner
 * @gid: group
 * @ctime: last change of these, seconds
 */
struct dcdfs_alloc_attr {
	uint32_t mode;
	uint32_t uid;
	uint32_t gid;
	int64_t ctime;
};

/** dcdfs_alloc_get_attr() - ownership and permissions */
DCDFS_EXPORT void dcdfs_alloc_get_attr(struct dcdfs_alloc *alloc,
				       struct dcdfs_alloc_attr *ret);

#define DCDFS_ATTR_MODE (1u << 0)
#define DCDFS_ATTR_UID (1u << 1)
#define DCDFS_ATTR_GID (1u << 2)

/**
 * dcdfs_alloc_set_attr() - change ownership or permissions, for the
 * allocation's life (they are kept across restarts)
 * @which: DCDFS_ATTR_* flags saying which fields of @attr to apply
 *
 * Return: 0, -ENOENT (released), or the errno of saving them.
 */
DCDFS_EXPORT int dcdfs_alloc_set_attr(struct dcdfs_alloc *alloc,
				      const struct dcdfs_alloc_attr *attr,
				      unsigned int which);

/**
 * dcdfs_alloc_get_xattr() - one of the read-only user.dcd.* attributes
 * @name: the attribute name, e.g. "user.dcd.offset"
 * @buf: where the value goes (no NUL), or NULL to ask for its size
 *
 * Return: the value's length, or -ENODATA (no such attribute), -ERANGE
 * (@size too small).
 */
DCDFS_EXPORT int dcdfs_alloc_get_xattr(struct dcdfs_alloc *alloc,
				       const char *name, char *buf,
				       size_t size);

/**
 * dcdfs_alloc_list_xattr() - the NUL-separated names of the attributes
 *
 * Return: the list's length, or -ERANGE (@size too small).
 */
DCDFS_EXPORT int dcdfs_alloc_list_xattr(struct dcdfs_alloc *alloc, char *buf,
					size_t size);

/**
 * dcdfs_alloc_pin() - keep the allocation from being released
 *
 * Its memory is mapped for dcdfs_alloc_read()/dcdfs_alloc_write() until
 * the matching unpin.
 *
 * Return: 0, -ENOENT (not ACTIVE: offered, being released or gone), or the
 * errno of mapping the memory.
 */
DCDFS_EXPORT int dcdfs_alloc_pin(struct dcdfs_alloc *alloc);

/**
 * dcdfs_alloc_unpin() - drop a pin
 *
 * The last unpin of an allocation the FM asked for hands its release to
 * dcdfs_host_run().
 */
DCDFS_EXPORT void dcdfs_alloc_unpin(struct dcdfs_alloc *alloc);

/**
 * struct dcdfs_mem_seg - a piece of an allocation's memory, for a client
 * @fd: descriptor to map (the caller's to close)
 * @file_offset: where the piece starts in the file
 * @fd_offset: where it starts in @fd
 * @length: its length
 */
struct dcdfs_mem_seg {
	int fd;
	uint64_t file_offset;
	uint64_t fd_offset;
	uint64_t length;
};

/**
 * dcdfs_alloc_mem_fds() - descriptors of a pinned allocation's memory
 * @writable: open them read-write; otherwise read-only
 * @ret: the pieces in file order, covering the whole file (free() it)
 *
 * Each descriptor reaches this allocation's memory and nothing else.  The
 * memory stays the allocation's while the caller's pin lasts.
 *
 * Return: 0, -EINVAL (not pinned), -EOPNOTSUPP (the backend cannot hand
 * its memory out), -ENOENT (being taken), or the errno of the open.
 */
DCDFS_EXPORT int dcdfs_alloc_mem_fds(struct dcdfs_alloc *alloc, bool writable,
				     struct dcdfs_mem_seg **ret,
				     size_t *ret_nr);

/**
 * dcdfs_alloc_set_direct() - count a client mapping the memory itself
 * @on: one more (true) or one fewer (false)
 */
DCDFS_EXPORT void dcdfs_alloc_set_direct(struct dcdfs_alloc *alloc, bool on);

/** dcdfs_alloc_is_direct() - does a client map the memory itself? */
DCDFS_EXPORT bool dcdfs_alloc_is_direct(struct dcdfs_alloc *alloc);

/**
 * dcdfs_alloc_release() - give the allocation back (the host's own release)
 *
 * Return: 0, -EBUSY (pinned, or a release is already under way), -ENOENT
 * (already gone), or the backend's error (then nothing changed).
 */
DCDFS_EXPORT int dcdfs_alloc_release(struct dcdfs_alloc *alloc);

/**
 * dcdfs_alloc_data() - where to read from, for a pinned allocation
 * @offset: file offset
 * @size: bytes wanted
 * @ret: address of the data, valid until the unpin
 *
 * Return: bytes available from @offset (0 at or past the end), or -EIO
 * (revoked).
 */
DCDFS_EXPORT ssize_t dcdfs_alloc_data(struct dcdfs_alloc *alloc,
				      uint64_t offset, size_t size,
				      const void **ret);

/**
 * dcdfs_alloc_write() - copy into a pinned allocation
 *
 * A write reaching past the end writes what fits, as a write up to
 * RLIMIT_FSIZE does; one starting at or past the end changes nothing.
 *
 * Return: the bytes written (fewer than @size if the write reaches past the
 * end), or -EFBIG (starts at or past the end), -EIO (revoked, or the memory
 * was taken away during the copy; dcdfs_mem_guard_init() must have been
 * called for that to be caught).
 */
DCDFS_EXPORT ssize_t dcdfs_alloc_write(struct dcdfs_alloc *alloc,
				       uint64_t offset, const void *buf,
				       size_t size);

/**
 * dcdfs_mem_guard_init() - catch SIGBUS in library copies
 *
 * A forced release takes the memory away under the copy; with this, the
 * copy fails with -EIO instead of killing the process.  Installs a SIGBUS
 * handler that passes any other fault on.  Call once, before threads start.
 *
 * Return: 0, or the errno of sigaction().
 */
DCDFS_EXPORT int dcdfs_mem_guard_init(void);

/**
 * dcdfs_mount_set_read_ahead() - set the read-ahead of a FUSE mount
 * @mountpoint: absolute path of the mount, as in /proc/self/mountinfo
 * @kb: read-ahead in KiB
 *
 * The kernel lets a FUSE daemon only lower the 128 KiB it proposes; this
 * raises it through the mount's backing device.  Does not touch the mount
 * itself, so the daemon serving it may call it before serving.
 *
 * Return: 0, or -ENOENT (no such mount), -EACCES (not root), or the errno
 * of writing the attribute.
 */
DCDFS_EXPORT int dcdfs_mount_set_read_ahead(const char *mountpoint,
					    unsigned int kb);

#ifdef __cplusplus
}
#endif

#endif /* DCDFS_LIBDCDFS_H */
