// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fuzz_device - libFuzzer target for reading a simulated device's
 * metadata: the input becomes device.db in an otherwise well-formed device
 * directory, which is then opened (header check, configuration), attached
 * to as a host (integrity check, extent list, events) and checked.
 *
 * A damaged or foreign database must be refused with an error, never crash
 * or hang, and never be rewritten when refused at the header.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dcdfs/libdcdfs.h>

#include "simdev.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

static int rm_entry(const char *path, const struct stat *sb, int type,
		    struct FTW *ftw)
{
	(void) sb;
	(void) ftw;
	return type == FTW_DP ? rmdir(path) : unlink(path);
}

static void quiet(struct dcdfs_ctx *ctx, int priority, const char *file,
		  int line, const char *fn, const char *format, va_list args)
{
	(void) ctx;
	(void) priority;
	(void) file;
	(void) line;
	(void) fn;
	(void) format;
	(void) args;
}

static int write_db(const uint8_t *data, size_t size)
{
	char path[96];
	int fd;

	snprintf(path, sizeof(path), "%s/device.db", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return -1;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return -1;
	}
	return close(fd);
}

static void exercise(struct dcdfs_ctx *ctx)
{
	struct backend_event *events;
	struct dcdfs_extent *ext;
	struct dcdfs_simdev *dev;
	size_t nr;

	if (dcdfs_simdev_open(ctx, dir, &dev) < 0)
		return;
	if (simdev_host_attach(dev, 0, 0) == 0) {
		if (simdev_host_extents(dev, &ext, &nr) == 0)
			free(ext);
		if (simdev_host_events(dev, true, &events, &nr) == 0)
			backend_events_free(events, nr);
	}
	(void) dcdfs_simdev_check(dev);
	dcdfs_simdev_close(dev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const subdirs[] = { "bell", "lock", "mem" };
	struct dcdfs_ctx *ctx;
	char path[96];

	snprintf(dir, sizeof(dir), "/dev/shm/dcdfs-fuzz-%d", (int)getpid());
	nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	if (mkdir(dir, 0700) < 0)
		return 0;
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, subdirs[i]);
		mkdir(path, 0700);
	}
	if (write_db(data, size) == 0 && dcdfs_new(&ctx) == 0) {
		dcdfs_set_log_fn(ctx, quiet);
		exercise(ctx);
		dcdfs_unref(ctx);
	}
	nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	return 0;
}
