// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * DOC: the root directory's listing
 *
 * OPENDIR takes a snapshot of the named allocations (references, in name
 * order, so untagged extents list in offset order) and READDIR(PLUS) serves
 * it by index, so offsets stay valid whatever comes and goes meanwhile; an
 * allocation released since the snapshot is skipped.  READDIRPLUS hands the
 * kernel each entry's attributes, so "ls -l" needs no further upcall; each
 * entry it returns counts as a lookup.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"

struct dir_snapshot {
	struct dcdfs_alloc **allocs;	/* referenced */
	size_t nr;
};

/* Offsets: 1 is after ".", 2 after "..", 3 + i after allocation i. */
#define FIRST_ALLOC_OFF 2

static bool listed(struct dcdfs_alloc *alloc)
{
	enum dcdfs_alloc_state s = dcdfs_alloc_get_state(alloc);

	return s == DCDFS_ALLOC_ACTIVE || s == DCDFS_ALLOC_RELEASE_PENDING ||
	       s == DCDFS_ALLOC_OFFERED;
}

void ll_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dcdfs_fs *fs = fuse_req_userdata(req);
	struct dir_snapshot *d;
	int rc;

	if (ino != ROOT_INO) {
		reply_err(req, -ENOTDIR);
		return;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		reply_err(req, -ENOMEM);
		return;
	}
	rc = dcdfs_host_list(fs->host, &d->allocs, &d->nr);
	if (rc < 0) {
		free(d);
		reply_err(req, rc);
		return;
	}
	fi->fh = (uintptr_t)d;
	if (fuse_reply_open(req, fi) < 0)
		ll_releasedir(NULL, ino, fi);
}

/*
 * Fill @buf from offset @off.  For READDIRPLUS (@plus), an entry counts as
 * a kernel lookup only once it is known to fit.
 */
static size_t fill(fuse_req_t req, struct dir_snapshot *d, char *buf,
		   size_t size, off_t off, bool plus)
{
	struct dcdfs_fs *fs = fuse_req_userdata(req);
	size_t used = 0;

	for (; (size_t)off < d->nr + FIRST_ALLOC_OFF; off++) {
		struct fuse_entry_param e = { .ino = ROOT_INO };
		struct dcdfs_alloc *alloc = NULL;
		const char *name = off ? ".." : ".";
		size_t n;

		if (off >= FIRST_ALLOC_OFF) {
			alloc = d->allocs[off - FIRST_ALLOC_OFF];
			if (!listed(alloc))
				continue;
			name = dcdfs_alloc_get_name(alloc);
			fs_fill_entry(fs, alloc, &e);
		} else {
			fs_fill_root_attr(fs, &e.attr);
		}
		if (plus)
			n = fuse_add_direntry_plus(req, buf + used, size - used,
						   name, &e, off + 1);
		else
			n = fuse_add_direntry(req, buf + used, size - used,
					      name, &e.attr, off + 1);
		if (n > size - used)
			break;
		if (plus && alloc && fs_inode_lookup(fs, alloc) < 0)
			break;	/* out of memory: end the batch here */
		used += n;
	}
	return used;
}

static void readdir_common(fuse_req_t req, size_t size, off_t off,
			   struct fuse_file_info *fi, bool plus)
{
	struct dir_snapshot *d = (struct dir_snapshot *)(uintptr_t)fi->fh;
	char *buf = malloc(size);
	size_t used;

	if (!buf) {
		reply_err(req, -ENOMEM);
		return;
	}
	used = fill(req, d, buf, size, off, plus);
	fuse_reply_buf(req, buf, used);
	free(buf);
}

void ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi)
{
	(void) ino;
	readdir_common(req, size, off, fi, false);
}

void ll_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	(void) ino;
	readdir_common(req, size, off, fi, true);
}

void ll_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dir_snapshot *d = (struct dir_snapshot *)(uintptr_t)fi->fh;

	(void) ino;
	for (size_t i = 0; i < d->nr; i++)
		dcdfs_alloc_unref(d->allocs[i]);
	free(d->allocs);
	free(d);
	if (req)
		reply_err(req, 0);
}
