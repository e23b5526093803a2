// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * DOC: direct mappings - handing an allocation's memory to its clients
 *
 * Through FUSE, a mapping of a file maps page-cache copies.  A client that
 * wants the memory itself asks this server (see core/client/direct-proto.h)
 * with its open descriptor of the file attached.  The descriptor is the
 * credential: it must be a regular file of this mount, open for reading, and
 * for writing if the client wants to write.  The server pins the allocation
 * and answers with fresh descriptors of its memory, each reaching that
 * allocation and nothing else, read-only unless writing was asked for and
 * allowed.  The pin (a "grant") lasts until the client's UNMAP or until its
 * connection closes, which the kernel does when the process exits.
 *
 * Coherence with the FUSE path: FUSE writes go to the memory, so direct
 * mappings see them at once.  The page cache of the file is dropped when a
 * grant starts and when it ends, and opens of a directly-mapped file do not
 * keep the cache, so a read() after an unmap, or after an open made while
 * a client maps the memory, sees the client's stores.
 *
 * One thread serves every connection; each request is short (a pin, a few
 * open()s) and replies are sent without blocking: a client that does not
 * read its replies loses its connection, not the server.
 */
#include <errno.h>
#include <fcntl.h>
#include <libmount.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include "direct-proto.h"
#include "fs.h"

struct grant {
	LIST_ENTRY(grant) node;
	uint64_t id;
	fuse_ino_t ino;
	struct dcdfs_alloc *alloc;	/* a reference and a pin */
};

struct conn {
	LIST_ENTRY(conn) node;
	int fd;
	uint64_t next_id;
	unsigned int nr_grants;
	LIST_HEAD(, grant) grants;
};

struct direct {
	struct dcdfs_fs *fs;
	dev_t devno;
	int listen_fd;
	int stop_fd;
	int epoll_fd;
	pthread_t thread;
	LIST_HEAD(, conn) conns;
};

/* The mount's device number, from the mount table. */
static int mount_devno(const char *mountpoint, dev_t *ret)
{
	struct libmnt_table *tb = mnt_new_table_from_file("/proc/self/mountinfo");
	struct libmnt_fs *mfs;
	int rc = -ENOENT;

	if (!tb)
		return -errno ? -errno : -ENOMEM;
	mfs = mnt_table_find_target(tb, mountpoint, MNT_ITER_BACKWARD);
	if (mfs) {
		*ret = mnt_fs_get_devno(mfs);
		rc = 0;
	}
	mnt_unref_table(tb);
	return rc;
}

static void grant_end(struct direct *d, struct conn *c, struct grant *g)
{
	LIST_REMOVE(g, node);
	c->nr_grants--;
	dcdfs_alloc_set_direct(g->alloc, false);
	dcdfs_alloc_unpin(g->alloc);
	/* What the client stored is what a read() sees from now on. */
	(void) fuse_lowlevel_notify_inval_inode(d->fs->se, g->ino, 0, 0);
	dcdfs_alloc_unref(g->alloc);
	free(g);
}

static void conn_close(struct direct *d, struct conn *c)
{
	while (!LIST_EMPTY(&c->grants))
		grant_end(d, c, LIST_FIRST(&c->grants));
	LIST_REMOVE(c, node);
	(void) close(c->fd);
	free(c);
}

static int send_msg(int fd, const void *buf, size_t len, const int *fds,
		    size_t nr_fds)
{
	char cbuf[DIRECT_CMSG_SPACE] = { 0 };
	struct iovec iov = { (void *)buf, len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

	direct_attach_fds(&msg, cbuf, fds, nr_fds);
	if (sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)len)
		return errno ? -errno : -EIO;
	return 0;
}

static int send_error(struct conn *c, int error)
{
	struct direct_reply r = { .magic = DIRECT_MAGIC, .error = error };

	return send_msg(c->fd, &r, sizeof(r), NULL, 0);
}

/*
 * The pieces of the allocation's memory covering @req's range, and their
 * descriptors (the caller's to close; free() both arrays).
 */
static int pieces_of(struct dcdfs_alloc *alloc, const struct direct_req *req,
		     struct direct_piece **ret_pieces, int **ret_fds,
		     size_t *ret_nr)
{
	uint64_t off = req->offset, end = req->offset + req->length;
	struct dcdfs_mem_seg *segs;
	struct direct_piece *pieces;
	size_t nr, n = 0;
	int *fds, rc;

	rc = dcdfs_alloc_mem_fds(alloc, req->prot & PROT_WRITE, &segs, &nr);
	if (rc < 0)
		return rc;
	pieces = calloc(nr, sizeof(*pieces));
	fds = calloc(nr, sizeof(*fds));
	for (size_t i = 0; i < nr; i++) {
		uint64_t s = segs[i].file_offset, e = s + segs[i].length;
		uint64_t from = off > s ? off : s, to = end < e ? end : e;

		if (!pieces || !fds || from >= to) {
			(void) close(segs[i].fd);
			continue;
		}
		pieces[n] = (struct direct_piece){
			.file_offset = from,
			.fd_offset = segs[i].fd_offset + (from - s),
			.length = to - from,
		};
		fds[n++] = segs[i].fd;
	}
	free(segs);
	if (!pieces || !fds) {
		free(pieces);
		free(fds);
		return -ENOMEM;
	}
	*ret_pieces = pieces;
	*ret_fds = fds;
	*ret_nr = n;
	return 0;
}

/* Is @fd an open file of this mount that allows @prot?  Its inode, if so. */
static int check_fd(struct direct *d, int fd, uint32_t prot,
		    fuse_ino_t *ret)
{
	struct statx stx;
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0)
		return -EBADF;
	/* An O_PATH descriptor proves no permission: it was never opened. */
	if (flags & O_PATH)
		return -EBADF;
	/* Cached attributes: asking the kernel must not wait for ourselves. */
	if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC,
		  STATX_TYPE | STATX_INO, &stx) < 0)
		return -errno;
	if (makedev(stx.stx_dev_major, stx.stx_dev_minor) != d->devno)
		return -EXDEV;
	if (S_ISDIR(stx.stx_mode))
		return -EISDIR;
	if (!S_ISREG(stx.stx_mode) || stx.stx_ino == ROOT_INO)
		return -EINVAL;
	if ((flags & O_ACCMODE) == O_WRONLY)
		return -EACCES;
	if ((prot & PROT_WRITE) && (flags & O_ACCMODE) != O_RDWR)
		return -EACCES;
	*ret = stx.stx_ino;
	return 0;
}

static int do_map(struct direct *d, struct conn *c,
		  const struct direct_req *req, int fd)
{
	struct direct_reply r = { .magic = DIRECT_MAGIC };
	long page = sysconf(_SC_PAGESIZE);
	struct direct_piece *pieces = NULL;
	struct dcdfs_alloc *alloc;
	struct grant *g;
	fuse_ino_t ino = 0;
	int *fds = NULL, rc;
	size_t n = 0;

	if (fd < 0)
		return send_error(c, -EBADF);
	if (!req->length || (req->offset | req->length) % (uint64_t)page ||
	    req->prot & ~(uint32_t)(PROT_READ | PROT_WRITE) ||
	    !(req->prot & PROT_READ))
		return send_error(c, -EINVAL);
	if (c->nr_grants >= DIRECT_MAX_GRANTS)
		return send_error(c, -ENOSPC);
	rc = check_fd(d, fd, req->prot, &ino);
	if (rc < 0)
		return send_error(c, rc);
	alloc = fs_inode_get(d->fs, ino);
	if (!alloc)
		return send_error(c, -ENOENT);
	g = calloc(1, sizeof(*g));
	if (!g)
		rc = -ENOMEM;
	else if (req->offset >= dcdfs_alloc_get_size(alloc) ||
		 req->length > dcdfs_alloc_get_size(alloc) - req->offset)
		rc = -ENXIO;
	else
		rc = dcdfs_alloc_pin(alloc);
	if (!rc) {
		rc = pieces_of(alloc, req, &pieces, &fds, &n);
		if (rc < 0)
			dcdfs_alloc_unpin(alloc);
	}
	if (rc < 0) {
		free(g);
		dcdfs_alloc_unref(alloc);
		return send_error(c, rc);
	}

	/*
	 * The grant is the connection's from here: if the reply cannot be
	 * sent, the connection closes and conn_close() ends the grant.
	 */
	*g = (struct grant){ .id = ++c->next_id, .ino = ino, .alloc = alloc };
	LIST_INSERT_HEAD(&c->grants, g, node);
	c->nr_grants++;
	/* Drop what a read() could find cached, then hand the memory out. */
	dcdfs_alloc_set_direct(alloc, true);
	(void) fuse_lowlevel_notify_inval_inode(d->fs->se, ino, 0, 0);
	r.grant = g->id;
	r.nr_pieces = (uint32_t)n;
	rc = send_msg(c->fd, &r, sizeof(r), NULL, 0);
	for (size_t i = 0; !rc && i < n; i += DIRECT_MAX_FDS) {
		size_t k = n - i < DIRECT_MAX_FDS ? n - i : DIRECT_MAX_FDS;

		rc = send_msg(c->fd, &pieces[i], k * sizeof(*pieces), &fds[i],
			      k);
	}
	for (size_t i = 0; i < n; i++)
		(void) close(fds[i]);
	free(fds);
	free(pieces);
	return rc;
}

static int do_unmap(struct direct *d, struct conn *c,
		    const struct direct_req *req)
{
	struct grant *g;

	LIST_FOREACH(g, &c->grants, node) {
		if (g->id == req->grant) {
			grant_end(d, c, g);
			return send_error(c, 0);
		}
	}
	return send_error(c, -ENOENT);
}

/* One request; a negative return ends the connection. */
static int conn_serve(struct direct *d, struct conn *c)
{
	char cbuf[DIRECT_CMSG_SPACE];
	struct direct_req req;
	struct iovec iov = { &req, sizeof(req) };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	int fd = -1, nr_fds = 0, rc;
	struct cmsghdr *cm;
	ssize_t n;

	n = recvmsg(c->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	if (n == 0)
		return -ECONNRESET;
	/* Keep the first descriptor passed; close any other. */
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		int *v = (int *)CMSG_DATA(cm);
		size_t k;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int one;

			memcpy(&one, &v[i], sizeof(one));
			if (fd < 0)
				fd = one;
			else
				(void) close(one);
			nr_fds++;
		}
	}
	if ((size_t)n != sizeof(req) || req.magic != DIRECT_MAGIC ||
	    req.version != DIRECT_VERSION || (msg.msg_flags & MSG_TRUNC))
		rc = send_error(c, -EPROTO);
	else if (nr_fds > 1 || (msg.msg_flags & MSG_CTRUNC))
		rc = send_error(c, -EBADF);
	else if (req.op == DIRECT_MAP)
		rc = do_map(d, c, &req, fd);
	else if (req.op == DIRECT_UNMAP)
		rc = do_unmap(d, c, &req);
	else
		rc = send_error(c, -EOPNOTSUPP);
	if (fd >= 0)
		(void) close(fd);
	return rc;
}

static void conn_accept(struct direct *d)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct conn *c;
	int fd;

	fd = accept4(d->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	c = calloc(1, sizeof(*c));
	if (!c) {
		(void) close(fd);
		return;
	}
	c->fd = fd;
	LIST_INIT(&c->grants);
	ev.data.ptr = c;
	if (epoll_ctl(d->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		(void) close(fd);
		free(c);
		return;
	}
	LIST_INSERT_HEAD(&d->conns, c, node);
}

static void *direct_main(void *arg)
{
	struct direct *d = arg;

	for (;;) {
		struct epoll_event ev[16];
		int n = epoll_wait(d->epoll_fd, ev, 16, -1);

		for (int i = 0; i < n; i++) {
			struct conn *c = ev[i].data.ptr;

			if (ev[i].data.ptr == d)
				return NULL;
			if (!c) {
				conn_accept(d);
				continue;
			}
			if (conn_serve(d, c) < 0)
				conn_close(d, c);
		}
	}
}

static int listen_on(struct direct *d)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char name[DIRECT_SOCKET_LEN];
	socklen_t len;
	int n;

	n = snprintf(name, sizeof(name), DIRECT_SOCKET_FMT,
		     major(d->devno), minor(d->devno));
	/* Abstract: a leading NUL, no file, gone with the daemon. */
	memcpy(sa.sun_path + 1, name, (size_t)n);
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
	d->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC |
				       SOCK_NONBLOCK, 0);
	if (d->listen_fd < 0)
		return -errno;
	if (bind(d->listen_fd, (struct sockaddr *)&sa, len) < 0 ||
	    listen(d->listen_fd, 64) < 0)
		return -errno;
	return 0;
}

/* Each client connection is a descriptor: allow as many as the system. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void) setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int fs_direct_start(struct dcdfs_fs *fs)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct direct *d = calloc(1, sizeof(*d));
	int rc;

	if (!d)
		return -ENOMEM;
	d->fs = fs;
	d->listen_fd = d->stop_fd = d->epoll_fd = -1;
	LIST_INIT(&d->conns);
	rc = mount_devno(fs->mountpoint, &d->devno);
	if (rc < 0) {
		fs_log(LOG_WARNING, "direct mappings off: '%s' is not in the"
		       " mount table", fs->mountpoint);
		goto fail;
	}
	rc = listen_on(d);
	if (rc < 0) {
		fs_log(LOG_WARNING, "direct mappings off: cannot listen on "
		       DIRECT_SOCKET_FMT ": %s", major(d->devno),
		       minor(d->devno), strerror(-rc));
		goto fail;
	}
	d->stop_fd = eventfd(0, EFD_CLOEXEC);
	d->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (d->stop_fd < 0 || d->epoll_fd < 0) {
		rc = -errno;
		goto fail;
	}
	ev.data.ptr = NULL;
	if (epoll_ctl(d->epoll_fd, EPOLL_CTL_ADD, d->listen_fd, &ev) < 0) {
		rc = -errno;
		goto fail;
	}
	ev.data.ptr = d;
	if (epoll_ctl(d->epoll_fd, EPOLL_CTL_ADD, d->stop_fd, &ev) < 0) {
		rc = -errno;
		goto fail;
	}
	raise_nofile();
	rc = -pthread_create(&d->thread, NULL, direct_main, d);
	if (rc < 0)
		goto fail;
	fs->direct = d;
	return 0;
fail:
	if (d->listen_fd >= 0)
		(void) close(d->listen_fd);
	if (d->stop_fd >= 0)
		(void) close(d->stop_fd);
	if (d->epoll_fd >= 0)
		(void) close(d->epoll_fd);
	free(d);
	return rc;
}

void fs_direct_stop(struct dcdfs_fs *fs)
{
	struct direct *d = fs->direct;
	uint64_t one = 1;

	if (!d)
		return;
	if (write(d->stop_fd, &one, sizeof(one)) != sizeof(one))
		fs_log(LOG_ERR, "cannot stop the direct-mapping server: %s",
		       strerror(errno));
	pthread_join(d->thread, NULL);
	/* The session is over: every client's pins go with it. */
	while (!LIST_EMPTY(&d->conns))
		conn_close(d, LIST_FIRST(&d->conns));
	(void) close(d->listen_fd);
	(void) close(d->stop_fd);
	(void) close(d->epoll_fd);
	free(d);
	fs->direct = NULL;
}
