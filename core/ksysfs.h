/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Reading what the DCD kernel series puts in sysfs and tracefs: attribute
 * values, extents and cxl_dynamic_capacity trace records.  Everything here
 * parses untrusted text and refuses what does not parse; see ksysfs.c.
 */
#ifndef DCDFS_KSYSFS_H
#define DCDFS_KSYSFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <dcdfs/libdcdfs.h>

#include "private.h"

/* The DCD series versions whose ABI differs (docs/kernel-backend.md). */
enum kabi {
	KABI_V6,	/* v4-v8: mode "dc", extent "tag", claim by size */
	KABI_V9,	/* v9: mode "dynamic_ram_a", "uuid", claim by size */
	KABI_V10,	/* v10: mode "dynamic_ram_a", "uuid", claim by uuid */
	KABI_V11,	/* v11: mode "dynamic_ram_1", "uuid", claim by uuid */
};

/* "0x1f", "%#llx" as the kernel prints, or decimal; nothing else. */
int ksysfs_parse_u64(const char *s, uint64_t *ret) _must_check_;

/* A "%pUb" UUID; the null UUID is untagged (*@ret_tagged false). */
int ksysfs_parse_uuid(const char *s, uint8_t tag[DCDFS_TAG_SIZE],
		      bool *ret_tagged) _must_check_;

/* The ABI from a region's mode and whether DAX devices have "uuid". */
int ksysfs_parse_mode(const char *mode, bool dax_has_uuid,
		      enum kabi *ret) _must_check_;

/*
 * ksysfs_read_extent() - the extent described by directory @dir
 * (".../dax_regionN/extentN.K"), checked against a region of @region_size.
 *
 * Return: 0, or -ENOENT (the directory is gone: it vanished), -EINVAL (an
 * attribute is missing or does not parse), -ERANGE (outside the region).
 */
int ksysfs_read_extent(const char *dir, uint64_t region_size,
		       struct dcdfs_extent *ret) _must_check_;

/* Event types of the cxl_dynamic_capacity tracepoint. */
enum ktrace_type {
	KTRACE_ADD,
	KTRACE_RELEASE,
	KTRACE_FORCED_RELEASE,
	KTRACE_REGION_UPDATED,
};

struct ktrace {
	enum ktrace_type type;
	uint64_t dpa;
	uint64_t length;
	bool tagged;
	uint8_t tag[DCDFS_TAG_SIZE];
};

/*
 * ksysfs_parse_trace() - one line of trace_pipe.
 *
 * Return: 0, or -ENOMSG (another event), -EINVAL (malformed).
 */
int ksysfs_parse_trace(const char *line, struct ktrace *ret) _must_check_;

#endif /* DCDFS_KSYSFS_H */
