// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * DOC: the FUSE operations
 *
 * Low-level API, run by the multi-threaded loop.  Every handler takes
 * emu->lock, looks its node up by inode number, does its work on the model
 * and drops the lock before it replies, exactly once.  Entries and
 * attributes are never cached (timeouts 0): the tree changes under the
 * kernel at any write, as sysfs does.
 *
 * Open files keep the inode number, not the node: a file whose node went
 * away fails with ENODEV, as a removed sysfs attribute does.
 *
 * - Attributes are direct I/O: a read at offset 0 runs the show and keeps
 *   its text for the reads that follow (sysfs' seq_file); every write is
 *   one store, and its error the write's.
 * - dev/daxN.M goes through the page cache, so that MAP_SHARED works: its
 *   reads and writes (and so the page faults and the writeback of a
 *   mapping) go to the region memory file at each range's offset.
 * - trace_pipe is direct I/O and not seekable; a read without O_NONBLOCK
 *   sleeps on emu->trace_cond until a record comes, the request is
 *   interrupted or the session ends (it wakes every 100 ms to look), so
 *   a blocked reader holds one worker thread and nothing else.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "emu.h"

#define PIPE_TICK_NS	100000000L

struct dir_entry {
	char *name;
	uint64_t ino;
	mode_t mode;
};

/* An open file or directory. */
struct handle {
	uint64_t ino;
	enum node_type type;
	char *text;			/* NODE_ATTR: the last show */
	size_t len;
	struct dir_entry *ents;		/* NODE_DIR: what opendir saw */
	size_t nr_ents;
	struct trace_inst *inst;	/* NODE_PIPE: counted in its users */
};

static struct emu *req_emu(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static void reply_err(fuse_req_t req, int rc)
{
	fuse_reply_err(req, -rc);	/* libfuse takes a positive errno */
}

static void lock(struct emu *emu)
{
	pthread_mutex_lock(&emu->lock);
}

static void unlock(struct emu *emu)
{
	pthread_mutex_unlock(&emu->lock);
}

static mode_t node_mode(const struct node *node)
{
	return (node->type == NODE_DIR ? S_IFDIR : S_IFREG) | node->perm;
}

static void fill_stat(const struct emu *emu, const struct node *node,
		      struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = node->ino;
	st->st_mode = node_mode(node);
	st->st_nlink = node->type == NODE_DIR ? 2 : 1;
	st->st_uid = geteuid();
	st->st_gid = getegid();
	st->st_blksize = 4096;
	st->st_atim = st->st_mtim = st->st_ctim = emu->start;
	if (node->type == NODE_ATTR)
		st->st_size = ATTR_SIZE;
	else if (node->type == NODE_DEV)
		st->st_size = (off_t)dev_size(node->obj);
}

static void fill_entry(const struct emu *emu, const struct node *node,
		       struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = node->ino;
	fill_stat(emu, node, &e->attr);
}

/* ------------------------------------------------------------------------ */
/* Names and attributes                                                     */
/* ------------------------------------------------------------------------ */

static void ll_init(void *userdata, struct fuse_conn_info *conn)
{
	(void) userdata;
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	conn->want &= ~(FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO);
}

static int lookup_locked(struct emu *emu, fuse_ino_t parent, const char *name,
			 struct fuse_entry_param *e)
{
	struct node *dir = node_find(emu, parent), *node;

	if (!dir)
		return -ENOENT;
	if (dir->type != NODE_DIR)
		return -ENOTDIR;
	node = node_child(dir, name);
	if (!node)
		return -ENOENT;
	fill_entry(emu, node, e);
	return 0;
}

static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct emu *emu = req_emu(req);
	struct fuse_entry_param e;
	int rc;

	lock(emu);
	rc = lookup_locked(emu, parent, name, &e);
	unlock(emu);
	if (rc < 0)
		reply_err(req, rc);
	else
		fuse_reply_entry(req, &e);
}

/* Inode numbers are never reused: nothing to forget. */
static void ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	(void) ino;
	(void) nlookup;
	fuse_reply_none(req);
}

static void ll_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	(void) count;
	(void) forgets;
	fuse_reply_none(req);
}

static int stat_ino(struct emu *emu, fuse_ino_t ino, struct stat *st)
{
	struct node *node;
	int rc = -ENOENT;

	lock(emu);
	node = node_find(emu, ino);
	if (node) {
		fill_stat(emu, node, st);
		rc = 0;
	}
	unlock(emu);
	return rc;
}

static void ll_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct stat st;
	int rc;

	(void) fi;
	rc = stat_ino(req_emu(req), ino, &st);
	if (rc < 0)
		reply_err(req, rc);
	else
		fuse_reply_attr(req, &st, 0);
}

/* Sizes, owners, modes and times do not change; a truncate is a no-op. */
static void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	(void) attr;
	(void) to_set;
	ll_getattr(req, ino, fi);
}

static void ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	struct emu *emu = req_emu(req);
	struct fuse_entry_param e;
	struct node *dir;
	int rc = -EPERM;

	(void) mode;
	lock(emu);
	if (parent == emu->inst_dir->ino) {
		rc = trace_mkdir(emu, name, &dir);
		if (!rc)
			fill_entry(emu, dir, &e);
	}
	unlock(emu);
	if (rc < 0)
		reply_err(req, rc);
	else
		fuse_reply_entry(req, &e);
}

static void ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct emu *emu = req_emu(req);
	int rc = -EPERM;

	lock(emu);
	if (parent == emu->inst_dir->ino)
		rc = trace_rmdir(emu, name);
	unlock(emu);
	reply_err(req, rc);
}

static void ll_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	(void) parent;
	(void) name;
	(void) mode;
	(void) rdev;
	reply_err(req, -EPERM);
}

/* As in sysfs: no file can be made (vfs_create() without ->create). */
static void ll_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	(void) parent;
	(void) name;
	(void) mode;
	(void) fi;
	reply_err(req, -EACCES);
}

static void ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	(void) parent;
	(void) name;
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

/* ------------------------------------------------------------------------ */
/* Directories                                                              */
/* ------------------------------------------------------------------------ */

static void dir_add(struct handle *h, const char *name, const struct node *n)
{
	struct dir_entry *e = &h->ents[h->nr_ents++];

	e->name = xstrdup(name);
	e->ino = n->ino;
	e->mode = node_mode(n);
}

static int dir_snapshot_locked(struct emu *emu, fuse_ino_t ino,
			       struct handle *h)
{
	struct node *dir = node_find(emu, ino);
	size_t n = 2;

	if (!dir)
		return -ENOENT;
	if (dir->type != NODE_DIR)
		return -ENOTDIR;
	for (struct node *c = dir->child; c; c = c->next)
		n++;
	h->ents = xmalloc(n * sizeof(*h->ents));
	dir_add(h, ".", dir);
	dir_add(h, "..", dir->parent ? dir->parent : dir);
	for (struct node *c = dir->child; c; c = c->next)
		dir_add(h, c->name, c);
	return 0;
}

static void handle_free(struct handle *h)
{
	for (size_t i = 0; i < h->nr_ents; i++)
		free(h->ents[i].name);
	free(h->ents);
	free(h->text);
	free(h);
}

static void ll_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct emu *emu = req_emu(req);
	struct handle *h = xmalloc(sizeof(*h));
	int rc;

	h->ino = ino;
	h->type = NODE_DIR;
	lock(emu);
	rc = dir_snapshot_locked(emu, ino, h);
	unlock(emu);
	if (rc < 0) {
		handle_free(h);
		reply_err(req, rc);
		return;
	}
	fi->fh = (uintptr_t)h;
	if (fuse_reply_open(req, fi) < 0)
		handle_free(h);
}

static void ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	char *buf = xmalloc(size);
	size_t pos = 0;

	(void) ino;
	for (size_t i = (size_t)off; i < h->nr_ents; i++) {
		struct stat st = {
			.st_ino = h->ents[i].ino,
			.st_mode = h->ents[i].mode,
		};
		size_t len = fuse_add_direntry(req, buf + pos, size - pos,
					       h->ents[i].name, &st,
					       (off_t)i + 1);

		if (len > size - pos)
			break;
		pos += len;
	}
	fuse_reply_buf(req, buf, pos);
	free(buf);
}

static void ll_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	(void) ino;
	handle_free((struct handle *)(uintptr_t)fi->fh);
	reply_err(req, 0);
}

/* ------------------------------------------------------------------------ */
/* Open and close                                                           */
/* ------------------------------------------------------------------------ */

/* What sysfs and tracefs refuse at open (kernfs_fop_open()). */
static int open_check(const struct node *node, int flags)
{
	int acc = flags & O_ACCMODE;

	switch (node->type) {
	case NODE_DIR:
		return -EISDIR;
	case NODE_ATTR:
		if ((acc != O_WRONLY && !node->ops->show) ||
		    (acc != O_RDONLY && !node->ops->store))
			return -EACCES;
		return 0;
	case NODE_PIPE:
		return acc == O_RDONLY ? 0 : -EACCES;
	case NODE_DEV:
		return 0;
	}
	return -EINVAL;
}

static int open_locked(struct emu *emu, fuse_ino_t ino, int flags,
		       struct handle *h)
{
	struct node *node = node_find(emu, ino);
	int rc;

	if (!node)
		return -ENOENT;
	rc = open_check(node, flags);
	if (rc < 0)
		return rc;
	h->type = node->type;
	if (node->type == NODE_PIPE) {
		h->inst = node->obj;
		h->inst->users++;
	}
	return 0;
}

static void release_handle(struct emu *emu, struct handle *h)
{
	if (h->inst) {
		lock(emu);
		h->inst->users--;
		unlock(emu);
	}
	handle_free(h);
}

static void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct emu *emu = req_emu(req);
	struct handle *h = xmalloc(sizeof(*h));
	int rc;

	h->ino = ino;
	lock(emu);
	rc = open_locked(emu, ino, fi->flags, h);
	unlock(emu);
	if (rc < 0) {
		handle_free(h);
		reply_err(req, rc);
		return;
	}
	/* Only the devices' memory goes through the page cache (mmap). */
	fi->direct_io = h->type != NODE_DEV;
	fi->nonseekable = h->type == NODE_PIPE;
	fi->keep_cache = 0;
	fi->fh = (uintptr_t)h;
	if (fuse_reply_open(req, fi) < 0)
		release_handle(emu, h);
}

static void ll_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	(void) ino;
	release_handle(req_emu(req), (struct handle *)(uintptr_t)fi->fh);
	reply_err(req, 0);
}

static void ll_flush(fuse_req_t req, fuse_ino_t ino,
		     struct fuse_file_info *fi)
{
	(void) ino;
	(void) fi;
	reply_err(req, 0);
}

static void ll_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	int rc = 0;

	(void) ino;
	(void) datasync;
	if (h->type == NODE_DEV && fdatasync(req_emu(req)->memfd) < 0)
		rc = -errno;
	reply_err(req, rc);
}

/* ------------------------------------------------------------------------ */
/* Attributes: show and store                                               */
/* ------------------------------------------------------------------------ */

/* Copy what the reader asks for into OUT; run the show at offset 0. */
static int attr_read_locked(struct emu *emu, struct handle *h, size_t size,
			    size_t off, char *out, size_t *ret_len)
{
	struct node *node = node_find(emu, h->ino);
	int rc;

	if (!node)
		return -ENODEV;
	if (!off || !h->text) {
		if (!h->text)
			h->text = xmalloc(ATTR_SIZE);
		rc = node->ops->show(emu, node, h->text, ATTR_SIZE);
		if (rc < 0)
			return rc;
		h->len = (size_t)rc;
	}
	*ret_len = 0;
	if (off < h->len) {
		*ret_len = h->len - off < size ? h->len - off : size;
		memcpy(out, h->text + off, *ret_len);
	}
	return 0;
}

static void attr_read(fuse_req_t req, struct handle *h, size_t size,
		      off_t off)
{
	struct emu *emu = req_emu(req);
	char out[ATTR_SIZE];
	size_t len = 0;
	int rc;

	lock(emu);
	rc = attr_read_locked(emu, h, size < ATTR_SIZE ? size : ATTR_SIZE,
			      (size_t)off, out, &len);
	unlock(emu);
	if (rc < 0)
		reply_err(req, rc);
	else
		fuse_reply_buf(req, out, len);
}

static void attr_write(fuse_req_t req, struct handle *h, const char *buf,
		       size_t size)
{
	struct emu *emu = req_emu(req);
	size_t len = size < ATTR_SIZE ? size : ATTR_SIZE - 1;
	char val[ATTR_SIZE];
	struct node *node;
	int rc = -ENODEV;

	memcpy(val, buf, len);
	val[len] = '\0';
	len = strlen(val);
	if (len && val[len - 1] == '\n')
		val[len - 1] = '\0';
	lock(emu);
	node = node_find(emu, h->ino);
	if (node)
		rc = node->ops->store(emu, node, val);
	unlock(emu);
	if (rc < 0)
		reply_err(req, rc);
	else
		fuse_reply_write(req, size);
}

/* ------------------------------------------------------------------------ */
/* dev/daxN.M: the device's ranges, end to end, in the memory file          */
/* ------------------------------------------------------------------------ */

/*
 * The pieces of the memory file that [off, off + size) of the device
 * covers, clipped at its end.  Returns how many, or -errno.
 */
static int dev_segments_locked(struct emu *emu, uint64_t ino, uint64_t off,
			       uint64_t size, struct range **ret)
{
	struct node *node = node_find(emu, ino);
	const struct daxdev *dev;
	uint64_t pos = 0;
	int n = 0;

	if (!node)
		return -ENODEV;
	dev = node->obj;
	*ret = xmalloc((dev->nr_ranges + 1) * sizeof(**ret));
	for (unsigned int i = 0; i < dev->nr_ranges && size; i++) {
		const struct range *r = &dev->ranges[i];

		if (off < pos + r->len) {
			uint64_t skip = off - pos;
			uint64_t len = r->len - skip < size ? r->len - skip : size;

			(*ret)[n++] = (struct range){ r->off + skip, len };
			off += len;
			size -= len;
		}
		pos += r->len;
	}
	return n;
}

static int dev_segments(struct emu *emu, uint64_t ino, uint64_t off,
			uint64_t size, struct range **ret)
{
	int n;

	lock(emu);
	n = dev_segments_locked(emu, ino, off, size, ret);
	unlock(emu);
	return n;
}

static int pread_full(int fd, char *buf, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pread(fd, buf, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (!n) {
			memset(buf, 0, len);	/* past the file: zeroes */
			return 0;
		}
		buf += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int pwrite_full(int fd, const char *buf, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, buf, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static void dev_read(fuse_req_t req, struct handle *h, size_t size,
		     off_t off)
{
	struct emu *emu = req_emu(req);
	struct range *segs = NULL;
	char *buf = xmalloc(size);
	size_t len = 0;
	int n, rc = 0;

	n = dev_segments(emu, h->ino, (uint64_t)off, size, &segs);
	for (int i = 0; i < n && !rc; i++) {
		rc = pread_full(emu->memfd, buf + len, segs[i].len,
				segs[i].off);
		len += segs[i].len;
	}
	if (n < 0 || rc < 0)
		reply_err(req, n < 0 ? n : rc);
	else
		fuse_reply_buf(req, buf, len);
	free(segs);
	free(buf);
}

static void dev_write(fuse_req_t req, struct handle *h, const char *buf,
		      size_t size, off_t off)
{
	struct emu *emu = req_emu(req);
	struct range *segs = NULL;
	size_t len = 0;
	int n, rc = 0;

	n = dev_segments(emu, h->ino, (uint64_t)off, size, &segs);
	for (int i = 0; i < n && !rc; i++) {
		rc = pwrite_full(emu->memfd, buf + len, segs[i].len,
				 segs[i].off);
		len += segs[i].len;
	}
	if (n == 0 && size)
		rc = -ENOSPC;		/* at or past the end of the device */
	if (n < 0 || rc < 0)
		reply_err(req, n < 0 ? n : rc);
	else
		fuse_reply_write(req, len);
	free(segs);
}

/* ------------------------------------------------------------------------ */
/* trace_pipe                                                               */
/* ------------------------------------------------------------------------ */

struct pipe_wait {
	struct emu *emu;
	bool interrupted;	/* protected by emu->lock */
};

/* Called by libfuse, under the request's lock, when INTERRUPT comes. */
static void pipe_interrupt(fuse_req_t req, void *data)
{
	struct pipe_wait *w = data;

	(void) req;
	lock(w->emu);
	w->interrupted = true;
	pthread_cond_broadcast(&w->emu->trace_cond);
	unlock(w->emu);
}

static void pipe_sleep(struct emu *emu)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_nsec += PIPE_TICK_NS;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&emu->trace_cond, &emu->lock, &ts);
}

static int pipe_take_locked(struct emu *emu, struct handle *h, char *buf,
			    size_t size, bool nonblock,
			    const struct pipe_wait *w)
{
	size_t n;

	while (!(n = trace_take(h->inst, buf, size))) {
		if (nonblock)
			return -EAGAIN;
		if (w->interrupted || fuse_session_exited(emu->se))
			return -EINTR;
		pipe_sleep(emu);
	}
	return (int)n;
}

static void pipe_read(fuse_req_t req, struct handle *h, size_t size,
		      int flags)
{
	struct emu *emu = req_emu(req);
	struct pipe_wait w = { .emu = emu };
	char *buf;
	int rc;

	if (!size) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > TRACE_MAX)
		size = TRACE_MAX;
	buf = xmalloc(size);
	/* Not under emu->lock: libfuse may call pipe_interrupt() at once. */
	fuse_req_interrupt_func(req, pipe_interrupt, &w);
	lock(emu);
	rc = pipe_take_locked(emu, h, buf, size, flags & O_NONBLOCK, &w);
	unlock(emu);
	fuse_req_interrupt_func(req, NULL, NULL);
	if (rc < 0)
		reply_err(req, rc);
	else
		fuse_reply_buf(req, buf, (size_t)rc);
	free(buf);
}

/* ------------------------------------------------------------------------ */
/* Read and write                                                           */
/* ------------------------------------------------------------------------ */

static void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;

	(void) ino;
	switch (h->type) {
	case NODE_ATTR:
		attr_read(req, h, size, off);
		break;
	case NODE_DEV:
		dev_read(req, h, size, off);
		break;
	case NODE_PIPE:
		pipe_read(req, h, size, fi->flags);
		break;
	case NODE_DIR:
		reply_err(req, -EISDIR);
		break;
	}
}

static void ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;

	(void) ino;
	switch (h->type) {
	case NODE_ATTR:
		attr_write(req, h, buf, size);
		break;
	case NODE_DEV:
		dev_write(req, h, buf, size, off);
		break;
	case NODE_PIPE:
	case NODE_DIR:
		reply_err(req, -EBADF);
		break;
	}
}

const struct fuse_lowlevel_ops emu_ops = {
	.init = ll_init,
	.lookup = ll_lookup,
	.forget = ll_forget,
	.forget_multi = ll_forget_multi,
	.getattr = ll_getattr,
	.setattr = ll_setattr,
	.mknod = ll_mknod,
	.mkdir = ll_mkdir,
	.unlink = ll_unlink,
	.rmdir = ll_rmdir,
	.rename = ll_rename,
	.open = ll_open,
	.read = ll_read,
	.write = ll_write,
	.flush = ll_flush,
	.release = ll_release,
	.fsync = ll_fsync,
	.opendir = ll_opendir,
	.readdir = ll_readdir,
	.releasedir = ll_releasedir,
	.create = ll_create,
};
