// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * DOC: sysfs attributes, and tuning of the mount's backing device
 *
 * The kernel proposes a read-ahead of 128 KiB to a FUSE mount and lets the
 * daemon only lower it, so sequential reads would arrive as 128 KiB
 * requests; the backing device's read_ahead_kb attribute raises it.  The
 * mount is found in /proc/self/mountinfo, not with stat(), which would be a
 * request to the very daemon that is setting up.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <dcdfs/libdcdfs.h>

#include "cleanup.h"
#include "private.h"

/* Undo mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s)
{
	char *d = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*d++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 |
				      (s[3] - '0'));
			s += 4;
		} else {
			*d++ = *s++;
		}
	}
	*d = '\0';
}

/* "MAJ:MIN" of the last mount on @mountpoint. */
static int mount_devno(const char *mountpoint, char *buf, size_t len)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	int rc = -ENOENT;

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		char devno[32], mnt[4096];

		/* id parent MAJ:MIN root mountpoint ... */
		if (sscanf(line, "%*d %*d %31s %*s %4095s", devno, mnt) != 2)
			continue;
		unescape(mnt);
		if (strcmp(mnt, mountpoint))
			continue;
		snprintf(buf, len, "%s", devno);
		rc = 0;
	}
	free(line);
	return rc;
}

int sysfs_write_attr(const char *path, const char *value)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	size_t len = strlen(value);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, value, len);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

/* The value without its trailing newline, NUL-terminated. */
int sysfs_read_attr(const char *path, char *buf, size_t len)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len);
	if (n < 0)
		return -errno;
	if ((size_t)n == len)
		return -EFBIG;
	while (n > 0 && buf[n - 1] == '\n')
		n--;
	buf[n] = '\0';
	return 0;
}

DCDFS_EXPORT int dcdfs_mount_set_read_ahead(const char *mountpoint,
					    unsigned int kb)
{
	char devno[32], path[96], value[16];
	int rc;

	clear_error();
	if (!mountpoint)
		return -EINVAL;
	rc = mount_devno(mountpoint, devno, sizeof(devno));
	if (rc < 0)
		return rc;
	snprintf(path, sizeof(path), "/sys/class/bdi/%s/read_ahead_kb", devno);
	snprintf(value, sizeof(value), "%u", kb);
	return sysfs_write_attr(path, value);
}
