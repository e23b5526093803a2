// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * DOC: the FUSE operations table and the metadata handlers
 *
 * One flat directory of allocations.  Every handler replies exactly once,
 * with no lock held.  What the namespace cannot do is refused with EPERM:
 * nothing can be created, linked or renamed; sizes are fixed (a truncate to
 * another size is EPERM, to the same size a no-op).  rm gives the capacity
 * back, or fails with EBUSY while the file is open or mapped.
 *
 * Extended attributes are the read-only user.dcd.* set; setting or removing
 * one is EPERM, any other name is ENOTSUP (never ENOSYS, which would turn
 * xattrs off for the whole mount).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <syslog.h>

#include "fs.h"

static struct dcdfs_fs *req_fs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static void ll_init(void *userdata, struct fuse_conn_info *conn)
{
	struct dcdfs_fs *fs = userdata;
	int rc;

	/*
	 * The kernel proposed its default read-ahead (128 KiB) and keeps the
	 * smaller of what it has and what we answer: raise what it has now,
	 * before the answer, then answer more.
	 */
	rc = dcdfs_mount_set_read_ahead(fs->mountpoint, READ_AHEAD >> 10);
	if (rc == 0)
		conn->max_readahead = READ_AHEAD;
	else
		fs_log(LOG_DEBUG, "cannot raise the read-ahead: %s, ignoring",
		       strerror(-rc));
	/* dcdfs is the only writer through FUSE: no need to drop caches. */
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
	/* Locks are local to this machine: let the kernel handle them. */
	conn->want &= ~(FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
}

static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct dcdfs_fs *fs = req_fs(req);
	struct fuse_entry_param e;
	struct dcdfs_alloc *alloc;
	int rc;

	if (parent != ROOT_INO) {
		reply_err(req, -ENOTDIR);
		return;
	}
	rc = dcdfs_host_lookup(fs->host, name, &alloc);
	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	rc = fs_inode_lookup(fs, alloc);
	if (rc < 0) {
		dcdfs_alloc_unref(alloc);
		reply_err(req, rc);
		return;
	}
	fs_fill_entry(fs, alloc, &e);
	dcdfs_alloc_unref(alloc);
	if (fuse_reply_entry(req, &e) < 0)
		fs_inode_forget(fs, e.ino, 1);
}

static void ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	fs_inode_forget(req_fs(req), ino, nlookup);
	fuse_reply_none(req);
}

static void ll_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		fs_inode_forget(req_fs(req), forgets[i].ino,
				forgets[i].nlookup);
	fuse_reply_none(req);
}

static void ll_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct dcdfs_fs *fs = req_fs(req);
	struct dcdfs_alloc *alloc;
	struct stat st;

	(void) fi;
	if (ino == ROOT_INO) {
		fs_fill_root_attr(fs, &st);
		fuse_reply_attr(req, &st, CACHE_TIMEOUT);
		return;
	}
	alloc = fs_inode_get(fs, ino);
	if (!alloc) {
		reply_err(req, -ENOENT);
		return;
	}
	fs_fill_attr(fs, alloc, &st);
	dcdfs_alloc_unref(alloc);
	fuse_reply_attr(req, &st, CACHE_TIMEOUT);
}

/* Apply a SETATTR; times are not kept, sizes cannot change. */
static int setattr_alloc(struct dcdfs_alloc *alloc, const struct stat *st,
			 int to_set)
{
	struct dcdfs_alloc_attr attr = {
		.mode = st->st_mode & 07777,
		.uid = st->st_uid,
		.gid = st->st_gid,
	};
	unsigned int which = 0;

	if (to_set & FUSE_SET_ATTR_SIZE &&
	    (uint64_t)st->st_size != dcdfs_alloc_get_size(alloc))
		return -EPERM;
	if (to_set & FUSE_SET_ATTR_MODE)
		which |= DCDFS_ATTR_MODE;
	if (to_set & FUSE_SET_ATTR_UID)
		which |= DCDFS_ATTR_UID;
	if (to_set & FUSE_SET_ATTR_GID)
		which |= DCDFS_ATTR_GID;
	return which ? dcdfs_alloc_set_attr(alloc, &attr, which) : 0;
}

static void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *st,
		       int to_set, struct fuse_file_info *fi)
{
	struct dcdfs_fs *fs = req_fs(req);
	struct dcdfs_alloc *alloc;
	struct stat out;
	int rc;

	(void) fi;
	if (ino == ROOT_INO) {
		reply_err(req, -EPERM);
		return;
	}
	alloc = fs_inode_get(fs, ino);
	if (!alloc) {
		reply_err(req, -ENOENT);
		return;
	}
	rc = setattr_alloc(alloc, st, to_set);
	if (!rc)
		fs_fill_attr(fs, alloc, &out);
	dcdfs_alloc_unref(alloc);
	if (rc < 0)
		reply_err(req, rc);
	else
		fuse_reply_attr(req, &out, CACHE_TIMEOUT);
}

static void ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct dcdfs_alloc *alloc;
	int rc;

	if (parent != ROOT_INO) {
		reply_err(req, -ENOTDIR);
		return;
	}
	rc = dcdfs_host_lookup(req_fs(req)->host, name, &alloc);
	if (!rc) {
		rc = dcdfs_alloc_release(alloc);
		dcdfs_alloc_unref(alloc);
	}
	reply_err(req, rc);
}

static void ll_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct dcdfs_host_usage u;
	struct statvfs sv;

	(void) ino;
	dcdfs_host_get_usage(req_fs(req)->host, &u);
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = u.block_size;
	sv.f_frsize = u.block_size;
	sv.f_blocks = u.capacity / u.block_size;
	sv.f_bfree = (u.capacity - u.held) / u.block_size;
	sv.f_bavail = sv.f_bfree;
	sv.f_files = u.nr_allocs;
	sv.f_namemax = 255;
	fuse_reply_statfs(req, &sv);
}

/* The value of xattr @name of @ino, or its size when @size is 0. */
static void ll_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size)
{
	struct dcdfs_alloc *alloc;
	char buf[4096];
	char *big = NULL;
	int len;

	/*
	 * Only user.* names exist.  ENOTSUP, not ENODATA, for the others: it
	 * tells ls and friends the file system has no SELinux labels or ACLs,
	 * which they then stop asking for, file after file.  (The kernel asks
	 * for security.capability before every write, too.)
	 */
	if (strncmp(name, "user.", 5)) {
		reply_err(req, -ENOTSUP);
		return;
	}
	alloc = fs_inode_get(req_fs(req), ino);
	if (!alloc) {
		reply_err(req, ino == ROOT_INO ? -ENODATA : -ENOENT);
		return;
	}
	len = dcdfs_alloc_get_xattr(alloc, name, NULL, 0);
	if (len >= 0 && size) {
		char *p = (size_t)len <= sizeof(buf) ? buf :
				(big = malloc((size_t)len));

		len = !p ? -ENOMEM : dcdfs_alloc_get_xattr(alloc, name, p, size);
		if (len >= 0)
			fuse_reply_buf(req, p, (size_t)len);
	} else if (len >= 0) {
		fuse_reply_xattr(req, (size_t)len);
	}
	if (len < 0)
		reply_err(req, len);
	free(big);
	dcdfs_alloc_unref(alloc);
}

static void ll_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct dcdfs_alloc *alloc = fs_inode_get(req_fs(req), ino);
	char buf[512];
	int len;

	if (!alloc) {
		if (ino == ROOT_INO)
			size ? fuse_reply_buf(req, NULL, 0) :
			       fuse_reply_xattr(req, 0);
		else
			reply_err(req, -ENOENT);
		return;
	}
	len = dcdfs_alloc_list_xattr(alloc, size ? buf : NULL,
				     size < sizeof(buf) ? size : sizeof(buf));
	dcdfs_alloc_unref(alloc);
	if (len < 0)
		reply_err(req, len);
	else if (!size)
		fuse_reply_xattr(req, (size_t)len);
	else
		fuse_reply_buf(req, buf, (size_t)len);
}

static int xattr_write_rc(const char *name)
{
	return strncmp(name, "user.dcd.", 9) ? -ENOTSUP : -EPERM;
}

static void ll_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	(void) ino;
	(void) value;
	(void) size;
	(void) flags;
	reply_err(req, xattr_write_rc(name));
}

static void ll_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	(void) ino;
	reply_err(req, xattr_write_rc(name));
}

/* Nothing can be created, linked or renamed. */
static void ll_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	(void) parent;
	(void) name;
	(void) mode;
	(void) rdev;
	reply_err(req, -EPERM);
}

static void ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	(void) parent;
	(void) name;
	(void) mode;
	reply_err(req, -EPERM);
}

static void ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	(void) parent;
	(void) name;
	reply_err(req, -EPERM);
}

static void ll_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	(void) link;
	(void) parent;
	(void) name;
	reply_err(req, -EPERM);
}

static void ll_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	(void) ino;
	(void) newparent;
	(void) newname;
	reply_err(req, -EPERM);
}

static void ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	(void) parent;
	(void) name;
	(void) newparent;
	(void) newname;
	(void) flags;
	reply_err(req, -EPERM);
}

static void ll_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	(void) parent;
	(void) name;
	(void) mode;
	(void) fi;
	reply_err(req, -EPERM);
}

static void ll_fallocate(fuse_req_t req, fuse_ino_t ino, int mode,
			 off_t offset, off_t length, struct fuse_file_info *fi)
{
	(void) ino;
	(void) mode;
	(void) offset;
	(void) length;
	(void) fi;
	reply_err(req, -EOPNOTSUPP);
}

const struct fuse_lowlevel_ops fs_ops = {
	.init = ll_init,
	.lookup = ll_lookup,
	.forget = ll_forget,
	.forget_multi = ll_forget_multi,
	.getattr = ll_getattr,
	.setattr = ll_setattr,
	.unlink = ll_unlink,
	.statfs = ll_statfs,
	.getxattr = ll_getxattr,
	.listxattr = ll_listxattr,
	.setxattr = ll_setxattr,
	.removexattr = ll_removexattr,
	.mknod = ll_mknod,
	.mkdir = ll_mkdir,
	.rmdir = ll_rmdir,
	.symlink = ll_symlink,
	.link = ll_link,
	.rename = ll_rename,
	.create = ll_create,
	.fallocate = ll_fallocate,
	.open = ll_open,
	.read = ll_read,
	.write = ll_write,
	.flush = ll_flush,
	.release = ll_release,
	.fsync = ll_fsync,
	.opendir = ll_opendir,
	.readdir = ll_readdir,
	.readdirplus = ll_readdirplus,
	.releasedir = ll_releasedir,
};
