// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * DOC: inodes the kernel knows
 *
 * An inode number is its allocation's id, never reused during a mount, so
 * the generation is always 0.  The table maps the numbers the kernel holds
 * lookups on to allocation references; an entry lives from the first lookup
 * (LOOKUP or READDIRPLUS) to the FORGET that brings its count to zero, so an
 * open file whose allocation was released still has its attributes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* libbsd's tree.h marks its static functions __unused, a BSD-ism. */
#ifndef __unused
#define __unused __attribute__((unused))
#endif
#include <bsd/sys/tree.h>

#include "fs.h"

struct fs_inode {
	RB_ENTRY(fs_inode) node;
	uint64_t ino;
	uint64_t nlookup;
	struct dcdfs_alloc *alloc;	/* referenced */
};

RB_HEAD(ino_tree, fs_inode);

static int ino_cmp(struct fs_inode *a, struct fs_inode *b)
{
	return a->ino < b->ino ? -1 : a->ino > b->ino;
}

RB_GENERATE_STATIC(ino_tree, fs_inode, node, ino_cmp)

static struct ino_tree *tree(struct dcdfs_fs *fs)
{
	return fs->inodes;
}

int fs_inodes_init(struct dcdfs_fs *fs)
{
	fs->inodes = calloc(1, sizeof(*fs->inodes));
	if (!fs->inodes)
		return -ENOMEM;
	RB_INIT(fs->inodes);
	return pthread_mutex_init(&fs->ino_lock, NULL) ? -ENOMEM : 0;
}

static struct fs_inode *find_locked(struct dcdfs_fs *fs, uint64_t ino)
{
	struct fs_inode key = { .ino = ino };

	return RB_FIND(ino_tree, tree(fs), &key);
}

/* Count one kernel lookup of @alloc. */
int fs_inode_lookup(struct dcdfs_fs *fs, struct dcdfs_alloc *alloc)
{
	uint64_t ino = dcdfs_alloc_get_id(alloc);
	struct fs_inode *in;

	pthread_mutex_lock(&fs->ino_lock);
	in = find_locked(fs, ino);
	if (!in) {
		in = calloc(1, sizeof(*in));
		if (!in) {
			pthread_mutex_unlock(&fs->ino_lock);
			return -ENOMEM;
		}
		in->ino = ino;
		in->alloc = dcdfs_alloc_ref(alloc);
		RB_INSERT(ino_tree, tree(fs), in);
	}
	in->nlookup++;
	pthread_mutex_unlock(&fs->ino_lock);
	return 0;
}

void fs_inode_forget(struct dcdfs_fs *fs, fuse_ino_t ino, uint64_t nlookup)
{
	struct dcdfs_alloc *drop = NULL;
	struct fs_inode *in;

	if (ino == ROOT_INO)
		return;
	pthread_mutex_lock(&fs->ino_lock);
	in = find_locked(fs, ino);
	if (in) {
		in->nlookup -= nlookup < in->nlookup ? nlookup : in->nlookup;
		if (!in->nlookup) {
			RB_REMOVE(ino_tree, tree(fs), in);
			drop = in->alloc;
			free(in);
		}
	}
	pthread_mutex_unlock(&fs->ino_lock);
	dcdfs_alloc_unref(drop);
}

/* A new reference to the allocation of @ino, or NULL if it is unknown. */
struct dcdfs_alloc *fs_inode_get(struct dcdfs_fs *fs, fuse_ino_t ino)
{
	struct dcdfs_alloc *alloc = NULL;
	struct fs_inode *in;

	pthread_mutex_lock(&fs->ino_lock);
	in = find_locked(fs, ino);
	if (in)
		alloc = dcdfs_alloc_ref(in->alloc);
	pthread_mutex_unlock(&fs->ino_lock);
	return alloc;
}

/* At unmount: the kernel forgets everything at once. */
void fs_inodes_drop(struct dcdfs_fs *fs)
{
	struct fs_inode *in;

	if (!fs->inodes)
		return;
	pthread_mutex_lock(&fs->ino_lock);
	while ((in = RB_MIN(ino_tree, tree(fs)))) {
		RB_REMOVE(ino_tree, tree(fs), in);
		dcdfs_alloc_unref(in->alloc);
		free(in);
	}
	pthread_mutex_unlock(&fs->ino_lock);
	pthread_mutex_destroy(&fs->ino_lock);
	free(fs->inodes);
	fs->inodes = NULL;
}

void fs_fill_attr(struct dcdfs_fs *fs, struct dcdfs_alloc *alloc,
		  struct stat *st)
{
	enum dcdfs_alloc_state state = dcdfs_alloc_get_state(alloc);
	struct dcdfs_alloc_attr attr;

	(void) fs;
	dcdfs_alloc_get_attr(alloc, &attr);
	memset(st, 0, sizeof(*st));
	st->st_ino = dcdfs_alloc_get_id(alloc);
	st->st_mode = S_IFREG | attr.mode;
	/* A released allocation still open has no name left. */
	st->st_nlink = state == DCDFS_ALLOC_ACTIVE ||
		       state == DCDFS_ALLOC_RELEASE_PENDING ||
		       state == DCDFS_ALLOC_OFFERED;
	st->st_uid = attr.uid;
	st->st_gid = attr.gid;
	st->st_size = (off_t)dcdfs_alloc_get_size(alloc);
	st->st_blocks = st->st_size / 512;
	/* Invites cp, cat and friends to move data in large requests. */
	st->st_blksize = 1 << 20;
	st->st_atim.tv_sec = st->st_mtim.tv_sec = dcdfs_alloc_get_time(alloc);
	st->st_ctim.tv_sec = attr.ctime;
}

void fs_fill_root_attr(struct dcdfs_fs *fs, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ROOT_INO;
	st->st_mode = S_IFDIR | fs->dir_mode;
	st->st_nlink = 2;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_blksize = 4096;
	st->st_atim.tv_sec = st->st_mtim.tv_sec = st->st_ctim.tv_sec =
		fs->mount_time;
}

void fs_fill_entry(struct dcdfs_fs *fs, struct dcdfs_alloc *alloc,
		   struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = dcdfs_alloc_get_id(alloc);
	e->attr_timeout = CACHE_TIMEOUT;
	e->entry_timeout = CACHE_TIMEOUT;
	fs_fill_attr(fs, alloc, &e->attr);
}
