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

#include "fs.h"

static struct dcdfs_alloc *fh_alloc(struct fuse_file_info *fi)
{
	return (struct dcdfs_alloc *)(uintptr_t)fi->fh;
}

void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dcdfs_fs *fs = fuse_req_userdata(req);
	struct dcdfs_alloc *alloc;
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
	rc = dcdfs_alloc_pin(alloc);
	if (rc < 0) {
		dcdfs_alloc_unref(alloc);
		reply_err(req, rc);
		return;
	}
	fi->fh = (uintptr_t)alloc;
	/* A client mapping the memory itself writes around the cache. */
	fi->keep_cache = !dcdfs_alloc_is_direct(alloc);
	if (fuse_reply_open(req, fi) < 0) {
		/* No RELEASE will come for this open: undo it now. */
		dcdfs_alloc_unpin(alloc);
		dcdfs_alloc_unref(alloc);
	}
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
	struct dcdfs_alloc *alloc = fh_alloc(fi);

	(void) ino;
	dcdfs_alloc_unpin(alloc);
	dcdfs_alloc_unref(alloc);
	reply_err(req, 0);
}
