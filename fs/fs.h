/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The dcdfs daemon: shared state of the FUSE front end.  fs/ talks to the
 * rest of dcdfs only through <dcdfs/libdcdfs.h>.
 */
#ifndef DCDFS_FS_H
#define DCDFS_FS_H

#define FUSE_USE_VERSION 312

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/stat.h>

#include <dcdfs/libdcdfs.h>

#define ROOT_INO FUSE_ROOT_ID
/* Changes are all pushed to the kernel, so its caches may keep things long. */
#define CACHE_TIMEOUT 3600.0
/* Read-ahead: several of libfuse's largest requests (1 MiB) in flight. */
#define READ_AHEAD (4u << 20)

struct ino_tree;
struct open_file;
struct direct;

/**
 * struct fs_opts - the command line
 */
struct fs_opts {
	char *device;
	char *backend;
	char *state;
	char *cxl_region;
	char *sysfs;
	char *devdir;
	char *release_helper;
	/* Numbers as given (NULL: not given), checked by check_opts(). */
	char *host_s, *region_s, *uid_s, *gid_s, *mode_s, *poll_s;
	unsigned int poll_ms;
	unsigned int host;
	unsigned int region;
	unsigned int uid;
	unsigned int gid;
	unsigned int mode;
	int show_help;
	int show_version;
	char *pos[2];		/* [DEV] MOUNTPOINT */
	int nr_pos;
};

struct dcdfs_fs {
	struct fuse_session *se;
	struct dcdfs_ctx *ctx;
	struct dcdfs_host *host;
	const char *mountpoint;		/* absolute */
	uint32_t uid, gid;		/* owner of the root directory */
	uint32_t dir_mode;		/* its permissions */
	int64_t mount_time;

	/*
	 * Inodes the kernel knows, by number: each holds a reference to its
	 * allocation until the kernel forgets it.  ino_lock is a leaf lock.
	 */
	pthread_mutex_t ino_lock;
	struct ino_tree *inodes;	/* see inode.c */

	/*
	 * Open files, each a pin: the kernel may not send every RELEASE
	 * before the session ends (it queues them), so those left are
	 * dropped at the end.  open_lock is a leaf lock.
	 */
	pthread_mutex_t open_lock;
	LIST_HEAD(, open_file) open_files;

	struct direct *direct;		/* see direct.c; NULL if off */
	pthread_t event_thread;
	pthread_t notify_thread;
	bool threads_started;
};

/* log.c: one line per failure, to stderr or, once detached, syslog */
void fs_log(int priority, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void fs_log_to_syslog(void);
void fs_log_init(void);
void fs_log_set_debug(void);
void fs_log_attach(struct dcdfs_ctx *ctx);

/* inode.c */
int fs_inodes_init(struct dcdfs_fs *fs);
int fs_inode_lookup(struct dcdfs_fs *fs, struct dcdfs_alloc *alloc);
void fs_inode_forget(struct dcdfs_fs *fs, fuse_ino_t ino, uint64_t nlookup);
struct dcdfs_alloc *fs_inode_get(struct dcdfs_fs *fs, fuse_ino_t ino);
void fs_inodes_drop(struct dcdfs_fs *fs);
void fs_fill_attr(struct dcdfs_fs *fs, struct dcdfs_alloc *alloc,
		  struct stat *st);
void fs_fill_root_attr(struct dcdfs_fs *fs, struct stat *st);
void fs_fill_entry(struct dcdfs_fs *fs, struct dcdfs_alloc *alloc,
		   struct fuse_entry_param *e);

/* ops.c, file.c, dir.c: the handlers */
extern const struct fuse_lowlevel_ops fs_ops;
void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	     struct fuse_file_info *fi);
void ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
	      off_t off, struct fuse_file_info *fi);
void fs_files_drop(struct dcdfs_fs *fs);
void ll_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void ll_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
	      struct fuse_file_info *fi);
void ll_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi);
void ll_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi);
void ll_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);

static inline void reply_err(fuse_req_t req, int rc)
{
	/* libfuse takes a positive errno; 0 means success. */
	fuse_reply_err(req, -rc);
}

/* notify.c: the device event loop and the kernel cache notifier */
int fs_threads_start(struct dcdfs_fs *fs);
void fs_threads_stop(struct dcdfs_fs *fs);

/* direct.c: handing allocations' memory to clients (libdcdfs-map) */
int fs_direct_start(struct dcdfs_fs *fs);
void fs_direct_stop(struct dcdfs_fs *fs);

#endif /* DCDFS_FS_H */
