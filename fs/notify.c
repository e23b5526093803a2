// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * DOC: the device event thread and the kernel cache notifier
 *
 * Two threads of their own.  The event thread runs the host's event loop
 * (dcdfs_host_run()).  The notifier takes the namespace changes the host
 * queues and tells the kernel: a new name invalidates any negative dentry,
 * a name gone is deleted from the dentry cache and its inode's pages are
 * dropped (which unmaps them from every process: a revoked allocation's
 * next fault reads, fails with EIO, and raises SIGBUS).
 *
 * libfuse forbids these notifications from inside a related request or
 * under a lock such a request needs; this thread holds none, and the host
 * waits for it before telling the device, never the other way round.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <syslog.h>

#include "fs.h"

static void *event_main(void *arg)
{
	struct dcdfs_fs *fs = arg;
	int rc = dcdfs_host_run(fs->host);

	if (rc < 0) {
		fs_log(LOG_ERR, "device event loop failed: %s, unmounting",
		       strerror(-rc));
		fuse_session_exit(fs->se);
	}
	return NULL;
}

static void apply_change(struct dcdfs_fs *fs, const struct dcdfs_change *c)
{
	size_t len = strlen(c->name);
	int rc;

	switch (c->kind) {
	case DCDFS_CHANGE_ADDED:
		rc = fuse_lowlevel_notify_inval_entry(fs->se, ROOT_INO, c->name,
						      len);
		break;
	case DCDFS_CHANGE_REMOVED:
	case DCDFS_CHANGE_REVOKED:
		rc = fuse_lowlevel_notify_delete(fs->se, ROOT_INO, c->id,
						 c->name, len);
		if (rc == 0 || rc == -ENOENT)
			rc = fuse_lowlevel_notify_inval_inode(fs->se, c->id, 0,
							      0);
		break;
	default:
		rc = 0;
	}
	/* ENOENT: the kernel did not have it cached, which is fine. */
	if (rc < 0 && rc != -ENOENT)
		fs_log(LOG_DEBUG, "cannot tell the kernel about '%s': %s",
		       c->name, strerror(-rc));
}

static void *notify_main(void *arg)
{
	struct dcdfs_fs *fs = arg;
	struct dcdfs_change c;

	while (dcdfs_host_next_change(fs->host, &c, -1) == 0) {
		apply_change(fs, &c);
		dcdfs_host_change_done(fs->host);
	}
	return NULL;
}

int fs_threads_start(struct dcdfs_fs *fs)
{
	int rc;

	dcdfs_host_watch_changes(fs->host);
	rc = pthread_create(&fs->notify_thread, NULL, notify_main, fs);
	if (rc)
		return -rc;
	rc = pthread_create(&fs->event_thread, NULL, event_main, fs);
	if (rc) {
		dcdfs_host_stop(fs->host);
		pthread_join(fs->notify_thread, NULL);
		return -rc;
	}
	fs->threads_started = true;
	return 0;
}

void fs_threads_stop(struct dcdfs_fs *fs)
{
	if (!fs->threads_started)
		return;
	dcdfs_host_stop(fs->host);
	pthread_join(fs->event_thread, NULL);
	pthread_join(fs->notify_thread, NULL);
	fs->threads_started = false;
}
