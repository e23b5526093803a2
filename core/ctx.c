// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * DOC: library context
 *
 * The context carries the log hook and its level and caller data.  It is
 * reference counted; every object the library hands out holds a reference, so
 * the context outlives them whatever order the caller drops things in.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <dcdfs/libdcdfs.h>

#include "private.h"

static void __attribute__((format(printf, 6, 0)))
log_stderr(struct dcdfs_ctx *ctx, int priority, const char *file,
		       int line, const char *fn, const char *format,
		       va_list args)
{
	(void) ctx;
	(void) file;
	(void) line;
	(void) priority;
	fprintf(stderr, "libdcdfs: %s: ", fn);
	vfprintf(stderr, format, args);
}

static int log_priority_from_env(void)
{
	const char *env = getenv("DCDFS_LOG");
	char *end;
	long prio;

	if (!env || !*env)
		return LOG_ERR;
	if (!strcmp(env, "err"))
		return LOG_ERR;
	if (!strcmp(env, "info"))
		return LOG_INFO;
	if (!strcmp(env, "debug"))
		return LOG_DEBUG;
	prio = strtol(env, &end, 10);
	if (*end || prio < 0 || prio > LOG_DEBUG)
		return LOG_ERR;
	return (int)prio;
}

DCDFS_EXPORT int dcdfs_new(struct dcdfs_ctx **ret)
{
	struct dcdfs_ctx *ctx;

	if (!ret)
		return -EINVAL;
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return -ENOMEM;
	ctx->refcount = 1;
	ctx->log_fn = log_stderr;
	ctx->log_priority = log_priority_from_env();
	*ret = ctx;
	return 0;
}

DCDFS_EXPORT struct dcdfs_ctx *dcdfs_ref(struct dcdfs_ctx *ctx)
{
	if (ctx)
		__atomic_add_fetch(&ctx->refcount, 1, __ATOMIC_RELAXED);
	return ctx;
}

DCDFS_EXPORT void dcdfs_unref(struct dcdfs_ctx *ctx)
{
	if (!ctx)
		return;
	if (__atomic_sub_fetch(&ctx->refcount, 1, __ATOMIC_ACQ_REL) == 0)
		free(ctx);
}

DCDFS_EXPORT void dcdfs_set_log_fn(struct dcdfs_ctx *ctx, dcdfs_log_fn fn)
{
	if (ctx)
		ctx->log_fn = fn ? fn : log_stderr;
}

DCDFS_EXPORT int dcdfs_get_log_priority(struct dcdfs_ctx *ctx)
{
	return ctx ? ctx->log_priority : LOG_ERR;
}

DCDFS_EXPORT void dcdfs_set_log_priority(struct dcdfs_ctx *ctx, int priority)
{
	if (ctx)
		ctx->log_priority = priority;
}

DCDFS_EXPORT void dcdfs_set_userdata(struct dcdfs_ctx *ctx, void *data)
{
	if (ctx)
		ctx->userdata = data;
}

DCDFS_EXPORT void *dcdfs_get_userdata(struct dcdfs_ctx *ctx)
{
	return ctx ? ctx->userdata : NULL;
}

void dcdfs_log(struct dcdfs_ctx *ctx, int priority, const char *file,
	       int line, const char *fn, const char *format, ...)
{
	va_list args;

	va_start(args, format);
	ctx->log_fn(ctx, priority, file, line, fn, format, args);
	va_end(args);
}

/*
 * The detail of the last failure, per thread (see private.h), and the error
 * it went with: a detail is only given for that same error, so a later
 * failure that gave none is never described by an older one.
 */
static __thread char error_detail[256];
static __thread int error_rc;

void clear_error(void)
{
	error_rc = 0;
}

int set_error(int rc, const char *format, ...)
{
	va_list args;

	va_start(args, format);
	vsnprintf(error_detail, sizeof(error_detail), format, args);
	va_end(args);
	error_rc = rc;
	return rc;
}

DCDFS_EXPORT const char *dcdfs_strerror(int rc)
{
	if (rc > 0)
		rc = -rc;
	if (error_rc && error_rc == rc)
		return error_detail;
	return strerror(-rc);
}
