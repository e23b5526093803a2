// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * DOC: daemon logging
 *
 * Until the daemon detaches, messages go to stderr prefixed "dcdfs: "; after,
 * to syslog.  libfuse's messages and libdcdfs's (through its hook) take the
 * same road, so each failure is one line in one place.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "fs.h"

static bool use_syslog;
static int max_priority = LOG_INFO;

static void __attribute__((format(printf, 2, 0)))
vlog(int priority, const char *fmt, va_list ap)
{
	char msg[1024];
	int n;

	if (priority > max_priority)
		return;
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(msg))
		n = sizeof(msg) - 1;
	/* Some callers end their messages with a newline, some do not. */
	while (n > 0 && msg[n - 1] == '\n')
		msg[--n] = '\0';
	if (use_syslog)
		syslog(priority, "%s", msg);
	else
		fprintf(stderr, "dcdfs: %s\n", msg);
}

void fs_log(int priority, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(priority, fmt, ap);
	va_end(ap);
}

void fs_log_to_syslog(void)
{
	openlog("dcdfs", LOG_PID, LOG_DAEMON);
	use_syslog = true;
}

/*
 * libfuse sometimes logs one line in several calls (its "unknown option"
 * message comes in three): collect the pieces until the newline.
 */
static void __attribute__((format(printf, 2, 0)))
fuse_log_hook(enum fuse_log_level level, const char *fmt,
			  va_list ap)
{
	static __thread char line[1024];
	static __thread size_t len;
	int n;

	n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
	if (n < 0)
		return;
	len += (size_t)n;
	if (len >= sizeof(line) - 1)
		len = sizeof(line) - 1;
	if (len && line[len - 1] != '\n' && len < sizeof(line) - 1)
		return;
	/* Options libfuse does not know either: say where the list is. */
	if (!strncmp(line, "fuse: unknown option", 20) && line[len - 1] == '\n') {
		line[len - 1] = '\0';
		fs_log((int)level, "%s (see 'dcdfs --help')\n", line);
	} else {
		fs_log((int)level, "%s", line);
	}
	len = 0;
}

static void __attribute__((format(printf, 6, 0)))
core_log_hook(struct dcdfs_ctx *ctx, int priority,
			  const char *file, int line, const char *fn,
			  const char *format, va_list args)
{
	(void) ctx;
	(void) file;
	(void) line;
	(void) fn;
	vlog(priority, format, args);
}

/* First thing: libfuse's own messages, from parsing on, take our road. */
void fs_log_init(void)
{
	const char *env = getenv("DCDFS_LOG");

	if (env && (env[0] == 'd' || env[0] == '7'))
		max_priority = LOG_DEBUG;
	fuse_set_log_func(fuse_log_hook);
}

void fs_log_set_debug(void)
{
	max_priority = LOG_DEBUG;
}

void fs_log_attach(struct dcdfs_ctx *ctx)
{
	dcdfs_set_log_fn(ctx, core_log_hook);
	/* The library filters by its own level; info and up reach us. */
	if (dcdfs_get_log_priority(ctx) < LOG_INFO)
		dcdfs_set_log_priority(ctx, LOG_INFO);
}
