// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * DOC: open files and the data path
 *
 * An open file handle is a pinned reference to its allocation; the pin is
 * dropped at RELEASE, which the kernel sends after the last close and the
 * last munmap of that open file.
 *
 * Reads reply straight from the mapped memory: the kernel's copy into the
 * page cache is the only one.  Writes arrive in libfuse's buffer and are
 * copied once into the memory.  The page cache is kept across opens: the
 * daemon is the only writer through FUSE.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>

#include "fs.h"

struct open_file {
	LIST_ENTRY(open_file) node;
	struct dcdfs_alloc *alloc;	/* a reference and a pin */
};

static struct open_file *fh_of(struct fuse_file_info *fi)
{
	return (struct open_file *)(uintptr_t)fi->fh;
}

static struct dcdfs_alloc *fh_alloc(struct fuse_file_info *fi)
{
	return fh_of(fi)->alloc;
}

static void file_close(struct dcdfs_fs *fs, struct open_file *of)
{
	pthread_mutex_lock(&fs->open_lock);
	LIST_REMOVE(of, node);
	pthread_mutex_unlock(&fs->open_lock);
	dcdfs_alloc_unpin(of->alloc);
	dcdfs_alloc_unref(of->alloc);
	free(of);
}

/* At the end of the session: the opens whose RELEASE never came. */
void fs_files_drop(struct dcdfs_fs *fs)
{
	while (!LIST_EMPTY(&fs->open_files))
		file_close(fs, LIST_FIRST(&fs->open_files));
}

void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dcdfs_fs *fs = fuse_req_userdata(req);
	struct dcdfs_alloc *alloc;
	struct open_file *of;
	int rc;

	if (ino == ROOT_INO) {
		reply_err(req, -EISDIR);
		return;
	}
	/* libfuse asks for atomic O_TRUNC: it arrives here, and sizes are fixed. */
	if (fi->flags & O_TRUNC) {
		reply_err(req, -EPERM);
		return;
	}
	alloc = fs_inode_get(fs, ino);
	if (!alloc) {
		reply_err(req, -ENOENT);
		return;
	}
	of = calloc(1, sizeof(*of));
	rc = of ? dcdfs_alloc_pin(alloc) : -ENOMEM;
	if (rc < 0) {
		free(of);
		dcdfs_alloc_unref(alloc);
		reply_err(req, rc);
		return;
	}
	of->alloc = alloc;
	pthread_mutex_lock(&fs->open_lock);
	LIST_INSERT_HEAD(&fs->open_files, of, node);
	pthread_mutex_unlock(&fs->open_lock);
	fi->fh = (uintptr_t)of;
	/* A client mapping the memory itself writes around the cache. */
	fi->keep_cache = !dcdfs_alloc_is_direct(alloc);
	if (fuse_reply_open(req, fi) < 0)
		file_close(fs, of);	/* no RELEASE will come for it */
}

void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	     struct fuse_file_info *fi)
{
	const void *data = NULL;
	ssize_t n;

	(void) ino;
	n = dcdfs_alloc_data(fh_alloc(fi), (uint64_t)off, size, &data);
	if (n < 0)
		reply_err(req, (int)n);
	else
		fuse_reply_buf(req, data, (size_t)n);
}

void ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
	      off_t off, struct fuse_file_info *fi)
{
	ssize_t n;

	(void) ino;
	n = dcdfs_alloc_write(fh_alloc(fi), (uint64_t)off, buf, size);
	if (n < 0)
		reply_err(req, (int)n);
	else
		fuse_reply_write(req, (size_t)n);
}

void ll_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void) ino;
	(void) fi;
	reply_err(req, 0);
}

void ll_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
	      struct fuse_file_info *fi)
{
	(void) ino;
	(void) datasync;
	(void) fi;
	/* Writes land in the memory itself: there is nothing to flush. */
	reply_err(req, 0);
}

void ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void) ino;
	file_close(fuse_req_userdata(req), fh_of(fi));
	reply_err(req, 0);
}
