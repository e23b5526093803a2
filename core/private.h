/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Definitions shared inside core/ only: the context layout, logging macros,
 * error details and small arithmetic helpers.
 */
#ifndef DCDFS_PRIVATE_H
#define DCDFS_PRIVATE_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>

#include <dcdfs/libdcdfs.h>

#define _must_check_ __attribute__((warn_unused_result))
#define _printf_(a, b) __attribute__((format(printf, a, b)))

struct dcdfs_ctx {
	int refcount;		/* atomic */
	int log_priority;
	dcdfs_log_fn log_fn;
	void *userdata;
};

void dcdfs_log(struct dcdfs_ctx *ctx, int priority, const char *file,
	       int line, const char *fn, const char *format, ...) _printf_(6, 7);

/* Check the level before formatting; errno survives the call. */
#define dcdfs_log_cond(ctx, prio, ...)                                         \
	do {                                                                   \
		struct dcdfs_ctx *__c = (ctx);                                 \
		if (__c && __c->log_priority >= (prio)) {                      \
			int __e = errno;                                       \
			dcdfs_log(__c, prio, __FILE__, __LINE__, __func__,     \
				  __VA_ARGS__);                                \
			errno = __e;                                           \
		}                                                              \
	} while (0)

#define dbg(ctx, ...) dcdfs_log_cond(ctx, LOG_DEBUG, __VA_ARGS__)
#define info(ctx, ...) dcdfs_log_cond(ctx, LOG_INFO, __VA_ARGS__)
#define notice(ctx, ...) dcdfs_log_cond(ctx, LOG_NOTICE, __VA_ARGS__)
#define err(ctx, ...) dcdfs_log_cond(ctx, LOG_ERR, __VA_ARGS__)

/*
 * Error details for dcdfs_strerror().  Entry points that can give a detail
 * call clear_error() first; set_error() records the detail and returns @rc so
 * it reads as "return set_error(-EEXIST, ...)".
 */
void clear_error(void);
int set_error(int rc, const char *format, ...) _printf_(2, 3);

/* sysfs.c: attributes; errno captured, -EFBIG if a value does not fit. */
int sysfs_write_attr(const char *path, const char *value) _must_check_;
int sysfs_read_attr(const char *path, char *buf, size_t len) _must_check_;

static inline bool add_overflows(uint64_t a, uint64_t b, uint64_t *ret)
{
	return __builtin_add_overflow(a, b, ret);
}

static inline bool is_power_of_2(uint64_t v)
{
	return v && !(v & (v - 1));
}

static inline bool is_aligned(uint64_t v, uint64_t align)
{
	return !(v & (align - 1));
}

#endif /* DCDFS_PRIVATE_H */
