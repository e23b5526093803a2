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

#ifdef __cplusplus
}
#endif

#endif /* DCDFS_LIBDCDFS_H */
