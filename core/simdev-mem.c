// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * DOC: simulated device - memory files and doorbells
 *
 * Each extent's memory is a file of its own in the memory directory, named
 * by region and offset, so one allocation can be mapped (or handed to a
 * client) without exposing anything else.  A fresh extent gets a fresh, empty
 * file; scrubbing truncates the file first, which frees the pages and makes
 * every mapping of it fault, as when a device revokes capacity.
 *
 * Doorbells are empty files: the waker touches one, the waiter has an
 * inotify watch on it.  Wake-ups carry no data; the database says what
 * changed, so a lost or doubled wake-up is harmless.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dcdfs/libdcdfs.h>

#include "cleanup.h"
#include "private.h"
#include "simdev.h"

#define MEM_NAME_LEN 32

void mem_file_name(unsigned int region, uint64_t start, char *buf, size_t len)
{
	snprintf(buf, len, "%u-%016" PRIx64, region, start);
}

int mem_create(struct dcdfs_simdev *dev, unsigned int region, uint64_t start,
	       uint64_t length)
{
	char name[MEM_NAME_LEN];
	_cleanup_close_ int fd = -1;

	mem_file_name(region, start, name, sizeof(name));
	/* O_TRUNC: whatever a crash may have left there is zeroed. */
	fd = openat(dev->mem_fd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
		    0600);
	if (fd < 0)
		return set_error(-errno, "cannot create memory '%s/%s': %s",
				 dev->mem_path, name, strerror(errno));
	if (ftruncate(fd, (off_t)length) < 0)
		return set_error(-errno, "cannot size memory '%s/%s': %s",
				 dev->mem_path, name, strerror(errno));
	return 0;
}

void mem_scrub(struct dcdfs_simdev *dev, unsigned int region, uint64_t start)
{
	char name[MEM_NAME_LEN];
	int fd;

	mem_file_name(region, start, name, sizeof(name));
	fd = openat(dev->mem_fd, name, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT)
			err(dev->ctx, "cannot scrub memory '%s/%s': %s\n",
			    dev->mem_path, name, strerror(errno));
		return;
	}
	if (ftruncate(fd, 0) < 0)
		err(dev->ctx, "cannot scrub memory '%s/%s': %s\n",
		    dev->mem_path, name, strerror(errno));
	(void) close(fd);
	if (unlinkat(dev->mem_fd, name, 0) < 0 && errno != ENOENT)
		err(dev->ctx, "cannot remove memory '%s/%s': %s\n",
		    dev->mem_path, name, strerror(errno));
}

/*
 * The memory file of an extent whose file is gone: created afresh, zeroed,
 * only if the extent is still there.  The check and the creation are one
 * write transaction, as scrub_locked() is, so that a release that frees
 * the extent and scrubs its memory meanwhile cannot leave a file behind.
 */
static int mem_create_held(struct dcdfs_simdev *dev,
			   const struct dcdfs_extent *ext, const char *name)
{
	int fd, rc;

	guard(mutex)(&dev->lock);
	rc = tx_begin_locked(dev);
	if (rc < 0)
		return rc;
	if (!extent_exists_locked(dev, ext->region, ext->offset)) {
		tx_rollback_locked(dev);
		return set_error(-ENOENT, "no extent at 0x%" PRIx64
				 " any more", ext->offset);
	}
	fd = openat(dev->mem_fd, name, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	rc = fd < 0 ? -errno : 0;
	tx_rollback_locked(dev);	/* nothing written */
	if (rc < 0)
		return set_error(rc, "cannot open memory '%s/%s': %s",
				 dev->mem_path, name, strerror(-rc));
	return fd;
}

int simdev_mem_open(struct dcdfs_simdev *dev, const struct dcdfs_extent *ext)
{
	char name[MEM_NAME_LEN];
	struct stat st;
	_cleanup_close_ int fd = -1;

	clear_error();
	mem_file_name(ext->region, ext->offset, name, sizeof(name));
	fd = openat(dev->mem_fd, name, O_RDWR | O_CLOEXEC);
	if (fd < 0 && errno != ENOENT)
		return set_error(-errno, "cannot open memory '%s/%s': %s",
				 dev->mem_path, name, strerror(errno));
	/* Not there: lost with the RAM fs (it comes back zeroed) or freed. */
	if (fd < 0) {
		fd = mem_create_held(dev, ext, name);
		if (fd < 0)
			return fd;
	}
	if (fstat(fd, &st) < 0)
		return -errno;
	if (st.st_size == 0 && ftruncate(fd, (off_t)ext->length) < 0)
		return set_error(-errno, "cannot size memory '%s/%s': %s",
				 dev->mem_path, name, strerror(errno));
	if (st.st_size != 0 && (uint64_t)st.st_size != ext->length)
		return set_error(-EUCLEAN, "memory '%s/%s' is %lld bytes, the"
				 " extent %" PRIu64, dev->mem_path, name,
				 (long long)st.st_size, ext->length);
	return take_fd(fd);
}

int simdev_mem_reopen(struct dcdfs_simdev *dev, const struct dcdfs_extent *ext,
		      bool writable)
{
	char name[MEM_NAME_LEN];
	struct stat st;
	_cleanup_close_ int fd = -1;

	clear_error();
	mem_file_name(ext->region, ext->offset, name, sizeof(name));
	fd = openat(dev->mem_fd, name,
		    (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return set_error(-errno, "cannot open memory '%s/%s': %s",
				 dev->mem_path, name, strerror(errno));
	if (fstat(fd, &st) < 0)
		return -errno;
	/* Scrubbed (truncated) under us: the extent is being taken. */
	if ((uint64_t)st.st_size != ext->length)
		return set_error(-ENOENT, "memory '%s/%s' is gone",
				 dev->mem_path, name);
	return take_fd(fd);
}

int bell_ring(struct dcdfs_simdev *dev, const char *name)
{
	int fd;

	if (utimensat(dev->bell_fd, name, NULL, 0) == 0)
		return 0;
	if (errno != ENOENT)
		return -errno;
	/* Nobody watches a bell that does not exist yet: just create it. */
	fd = openat(dev->bell_fd, name, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	(void) close(fd);
	return 0;
}

/* Return an inotify fd that becomes readable when bell @name rings. */
int bell_watch(struct dcdfs_simdev *dev, const char *name)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int ifd = -1;
	int fd;

	fd = openat(dev->bell_fd, name, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	(void) close(fd);
	if (asprintf(&path, "%s/%s/%s", dev->path, SIMDEV_BELL_DIR, name) < 0)
		return -ENOMEM;
	ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (ifd < 0)
		return -errno;
	if (inotify_add_watch(ifd, path, IN_ATTRIB | IN_CLOSE_WRITE) < 0)
		return -errno;
	return take_fd(ifd);
}

void bell_drain(int fd)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

	while (read(fd, buf, sizeof(buf)) > 0)
		;
}
