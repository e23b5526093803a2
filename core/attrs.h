/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The host's attribute store: ownership and permissions set with chmod and
 * chown, by allocation name, kept across restarts for the allocation's life.
 */
#ifndef DCDFS_ATTRS_H
#define DCDFS_ATTRS_H

#include <stdint.h>

#include "private.h"

struct attrs;

struct attrs_entry {
	uint32_t mode;
	uint32_t uid;
	uint32_t gid;
	int64_t ctime;
};

typedef int (*attrs_cb)(const char *name, const struct attrs_entry *e,
			void *arg);

int attrs_open(struct dcdfs_ctx *ctx, const char *path,
	       struct attrs **ret) _must_check_;
void attrs_close(struct attrs *a);
/* Visit every entry; the callback may not call back into the store. */
int attrs_foreach(struct attrs *a, attrs_cb cb, void *arg) _must_check_;
int attrs_set(struct attrs *a, const char *name,
	      const struct attrs_entry *e) _must_check_;
int attrs_del(struct attrs *a, const char *name) _must_check_;

#endif /* DCDFS_ATTRS_H */
