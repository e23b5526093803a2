// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * DOC: libdcdfs-map - direct mappings of dcdfs files
 *
 * A process keeps one connection to each mount's daemon it maps from (see
 * direct-proto.h) while it holds mappings there; the daemon ends every
 * grant of a connection when it closes, so a process that exits drops its
 * pins with its mappings.  The daemon is found by the file's device number,
 * and trusted only if it runs as root or as the user who mounted the file
 * system (the mount's user_id).
 *
 * A mapping is laid out in an address range reserved first, so that the
 * pieces of an allocation's extents follow each other, and placed so that
 * addresses and memory offsets agree modulo 2 MiB: the kernel can then map
 * huge pages where the memory has them.
 *
 * After fork(), the child inherits the mappings and the connections (so the
 * pins last while either process lives) but not the bookkeeping: only the
 * process that made a mapping unmaps it with dcdfs_unmap().
 */
#include <errno.h>
#include <libmount.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/vfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <dcdfs/map.h>

#include "client.h"
#include "direct-proto.h"

#define FUSE_SUPER_MAGIC 0x65735546
#define HUGE_ALIGN (2UL << 20)

struct conn {
	LIST_ENTRY(conn) node;
	dev_t dev;
	int fd;
	unsigned int users;
};

struct mapping {
	LIST_ENTRY(mapping) node;
	uintptr_t addr;
	size_t length;
	struct conn *conn;
	uint64_t grant;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * The library's own mappings bypass mmap() and munmap(): in the preload
 * shim those are ours, and would come back here with the lock held.
 */
static void *sys_mmap(void *addr, size_t len, int prot, int flags, int fd,
		      off_t off)
{
	return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

static int sys_munmap(void *addr, size_t len)
{
	return (int)syscall(SYS_munmap, addr, len);
}
static LIST_HEAD(, conn) conns = LIST_HEAD_INITIALIZER(conns);
static LIST_HEAD(, mapping) maps = LIST_HEAD_INITIALIZER(maps);
static unsigned int nr_maps;	/* atomic: a munmap() of none skips the lock */
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void atfork_prepare(void)
{
	pthread_mutex_lock(&lock);
}

static void atfork_parent(void)
{
	pthread_mutex_unlock(&lock);
}

/* The child keeps the sockets open (and so the pins), not the records. */
static void atfork_child(void)
{
	LIST_INIT(&conns);
	LIST_INIT(&maps);
	nr_maps = 0;
	pthread_mutex_init(&lock, NULL);
}

static void atfork_init(void)
{
	(void) pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

/* Is @dev a dcdfs mount?  Who may serve it: its mounter's uid. */
static int mount_owner(dev_t dev, uid_t *ret)
{
	struct libmnt_table *tb = mnt_new_table_from_file("/proc/self/mountinfo");
	struct libmnt_fs *fs;
	const char *type;
	char *val = NULL;
	size_t len = 0;
	int rc = -ENODEV;

	if (!tb)
		return -ENOMEM;
	fs = mnt_table_find_devno(tb, dev, MNT_ITER_BACKWARD);
	type = fs ? mnt_fs_get_fstype(fs) : NULL;
	if (type && !strcmp(type, "fuse.dcdfs")) {
		*ret = 0;
		if (mnt_fs_get_option(fs, "user_id", &val, &len) == 0 && val) {
			char buf[16];

			snprintf(buf, sizeof(buf), "%.*s", (int)len, val);
			*ret = (uid_t)strtoul(buf, NULL, 10);
		}
		rc = 0;
	}
	mnt_unref_table(tb);
	return rc;
}

static int conn_open(dev_t dev, struct conn **ret)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char name[DIRECT_SOCKET_LEN];
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	struct conn *c;
	uid_t owner;
	int n, fd, rc;

	rc = mount_owner(dev, &owner);
	if (rc < 0)
		return rc;
	n = snprintf(name, sizeof(name), DIRECT_SOCKET_FMT, major(dev),
		     minor(dev));
	memcpy(sa.sun_path + 1, name, (size_t)n);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa,
		    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n)) < 0) {
		rc = errno == ECONNREFUSED || errno == ENOENT ? -EOPNOTSUPP :
							       -errno;
		(void) close(fd);
		return rc;
	}
	/* Anyone can listen on an abstract name: check who answers. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0 ||
	    (cred.uid != 0 && cred.uid != owner)) {
		(void) close(fd);
		return -EPERM;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		(void) close(fd);
		return -ENOMEM;
	}
	c->dev = dev;
	c->fd = fd;
	LIST_INSERT_HEAD(&conns, c, node);
	*ret = c;
	return 0;
}

static void conn_put(struct conn *c)
{
	if (--c->users)
		return;
	LIST_REMOVE(c, node);
	(void) close(c->fd);
	free(c);
}

static int conn_get(dev_t dev, struct conn **ret)
{
	struct conn *c;
	int rc;

	LIST_FOREACH(c, &conns, node)
		if (c->dev == dev)
			break;
	if (!c) {
		rc = conn_open(dev, &c);
		if (rc < 0)
			return rc;
	}
	c->users++;
	*ret = c;
	return 0;
}

static int send_req(struct conn *c, const struct direct_req *req, int fd)
{
	char cbuf[DIRECT_CMSG_SPACE] = { 0 };
	struct iovec iov = { (void *)req, sizeof(*req) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	direct_attach_fds(&msg, cbuf, &fd, fd >= 0);
	do {
		n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	return n == (ssize_t)sizeof(*req) ? 0 : n < 0 ? -errno : -EPROTO;
}

/* One message into @buf, and the descriptors that came with it. */
static ssize_t recv_msg(struct conn *c, void *buf, size_t len, int *fds,
			size_t max_fds, size_t *ret_nr)
{
	char cbuf[DIRECT_CMSG_SPACE];
	struct iovec iov = { buf, len };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm;
	size_t nr = 0;
	ssize_t n;

	do {
		n = recvmsg(c->fd, &msg, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(fd));
			if (nr < max_fds)
				fds[nr++] = fd;
			else
				(void) close(fd);
		}
	}
	*ret_nr = nr;
	if (n == 0 || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
		return -EPROTO;
	return n;
}

static int end_grant(struct conn *c, uint64_t grant)
{
	struct direct_req req = {
		.magic = DIRECT_MAGIC, .version = DIRECT_VERSION,
		.op = DIRECT_UNMAP, .grant = grant,
	};
	struct direct_reply r;
	size_t nr;
	int rc;

	rc = send_req(c, &req, -1);
	if (!rc && recv_msg(c, &r, sizeof(r), NULL, 0, &nr) !=
		   (ssize_t)sizeof(r))
		rc = -EPROTO;
	return rc ? rc : r.error;
}

/* Receive the pieces of a grant; their descriptors go to @fds. */
static int recv_pieces(struct conn *c, struct direct_piece *pieces, int *fds,
		       size_t nr)
{
	for (size_t i = 0; i < nr; i += DIRECT_MAX_FDS) {
		size_t k = nr - i < DIRECT_MAX_FDS ? nr - i : DIRECT_MAX_FDS;
		size_t got;
		ssize_t n = recv_msg(c, &pieces[i], k * sizeof(*pieces),
				     &fds[i], k, &got);

		if (n < 0 || got != k || (size_t)n != k * sizeof(*pieces)) {
			for (size_t j = 0; j < got; j++)
				(void) close(fds[i + j]);
			for (size_t j = 0; j < i; j++)
				(void) close(fds[j]);
			return -EPROTO;
		}
	}
	return 0;
}

/* Lay @nr pieces of [@offset, +@length) out in a fresh reserved range. */
static int map_pieces(const struct direct_piece *pieces, const int *fds,
		      size_t nr, uint64_t offset, size_t length, int prot,
		      uintptr_t *ret)
{
	size_t room = length + HUGE_ALIGN;
	uintptr_t res, start, phase;
	void *p;

	/* The pieces must tile the range, at page offsets of their memory. */
	for (size_t i = 0, pos = offset; i < nr; i++) {
		if (pieces[i].file_offset != pos || !pieces[i].length ||
		    pieces[i].length > offset + length - pos ||
		    pieces[i].fd_offset % (uint64_t)sysconf(_SC_PAGESIZE))
			return -EPROTO;
		pos += pieces[i].length;
		if (i == nr - 1 && pos != offset + length)
			return -EPROTO;
	}
	if (!nr)
		return -EPROTO;
	p = sys_mmap(NULL, room, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	res = (uintptr_t)p;
	phase = pieces[0].fd_offset % HUGE_ALIGN;
	start = ((res + HUGE_ALIGN - 1) & ~(HUGE_ALIGN - 1)) + phase;
	if (start - HUGE_ALIGN >= res)
		start -= HUGE_ALIGN;
	if (start > res)
		(void) sys_munmap(p, start - res);
	if (res + room > start + length)
		(void) sys_munmap((void *)(start + length),
			      res + room - (start + length));
	for (size_t i = 0; i < nr; i++) {
		void *want = (void *)(start + (pieces[i].file_offset - offset));

		p = sys_mmap(want, pieces[i].length, prot, MAP_SHARED | MAP_FIXED,
			 fds[i], (off_t)pieces[i].fd_offset);
		if (p == MAP_FAILED) {
			int rc = -errno;

			(void) sys_munmap((void *)start, length);
			return rc;
		}
	}
	*ret = start;
	return 0;
}

static int request_map(struct conn *c, int fd, uint64_t offset, size_t length,
		       int prot, uintptr_t *ret_addr, uint64_t *ret_grant)
{
	struct direct_req req = {
		.magic = DIRECT_MAGIC, .version = DIRECT_VERSION,
		.op = DIRECT_MAP, .offset = offset, .length = length,
		.prot = (uint32_t)prot,
	};
	struct direct_piece *pieces = NULL;
	struct direct_reply r;
	int *fds = NULL, rc;
	size_t nr;

	rc = send_req(c, &req, fd);
	if (rc < 0)
		return rc;
	if (recv_msg(c, &r, sizeof(r), NULL, 0, &nr) != (ssize_t)sizeof(r) ||
	    r.magic != DIRECT_MAGIC)
		return -EPROTO;
	if (r.error)
		return r.error < 0 ? r.error : -EPROTO;
	if (!r.nr_pieces || r.nr_pieces > length / sysconf(_SC_PAGESIZE))
		return -EPROTO;
	pieces = calloc(r.nr_pieces, sizeof(*pieces));
	fds = calloc(r.nr_pieces, sizeof(*fds));
	rc = pieces && fds ? recv_pieces(c, pieces, fds, r.nr_pieces) : -ENOMEM;
	if (!rc) {
		rc = map_pieces(pieces, fds, r.nr_pieces, offset, length, prot,
				ret_addr);
		for (size_t i = 0; i < r.nr_pieces; i++)
			(void) close(fds[i]);
	}
	free(pieces);
	free(fds);
	if (rc < 0)
		(void) end_grant(c, r.grant);
	else
		*ret_grant = r.grant;
	return rc;
}

/* Quick answer for files of other file systems: no daemon to ask. */
static int dcdfs_file_dev(int fd, dev_t *ret)
{
	struct statfs sfs;
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -ENODEV;
	if (fstatfs(fd, &sfs) < 0)
		return -errno;
	if (sfs.f_type != FUSE_SUPER_MAGIC)
		return -ENODEV;
	*ret = st.st_dev;
	return 0;
}

int client_map(int fd, uint64_t offset, size_t length, int prot,
	       void **ret_addr)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct mapping *m;
	struct conn *c;
	dev_t dev;
	int rc;

	pthread_once(&atfork_once, atfork_init);
	if (!length || length > SIZE_MAX - page || offset % page ||
	    (prot & ~(PROT_READ | PROT_WRITE)) || !(prot & PROT_READ))
		return -EINVAL;
	length = (length + page - 1) & ~(page - 1);
	rc = dcdfs_file_dev(fd, &dev);
	if (rc < 0)
		return rc;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	pthread_mutex_lock(&lock);
	rc = conn_get(dev, &c);
	if (!rc) {
		rc = request_map(c, fd, offset, length, prot, &m->addr,
				 &m->grant);
		if (rc < 0)
			conn_put(c);
	}
	if (!rc) {
		m->length = length;
		m->conn = c;
		LIST_INSERT_HEAD(&maps, m, node);
		__atomic_add_fetch(&nr_maps, 1, __ATOMIC_RELEASE);
		*ret_addr = (void *)m->addr;
		m = NULL;
	}
	pthread_mutex_unlock(&lock);
	free(m);
	return rc;
}

/* Unmap @m, then drop its pin: the memory is never released under it. */
static void mapping_end(struct mapping *m)
{
	(void) sys_munmap((void *)m->addr, m->length);
	(void) end_grant(m->conn, m->grant);
	conn_put(m->conn);
	LIST_REMOVE(m, node);
	__atomic_sub_fetch(&nr_maps, 1, __ATOMIC_RELEASE);
	free(m);
}

int client_unmap(void *addr, size_t length)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct mapping *m;
	int rc = -EINVAL;

	length = (length + page - 1) & ~(page - 1);
	pthread_mutex_lock(&lock);
	LIST_FOREACH(m, &maps, node) {
		if (m->addr == (uintptr_t)addr && m->length == length) {
			mapping_end(m);
			rc = 0;
			break;
		}
	}
	pthread_mutex_unlock(&lock);
	return rc;
}

bool client_unmap_range(void *addr, size_t length, int *ret)
{
	uintptr_t a = (uintptr_t)addr, e = a + length;
	struct mapping *m, *tmp;
	bool found = false;

	if (!__atomic_load_n(&nr_maps, __ATOMIC_ACQUIRE))
		return false;
	pthread_mutex_lock(&lock);
	/* Whole mappings inside the range end; parts of others are unmapped. */
	for (m = LIST_FIRST(&maps); m; m = tmp) {
		tmp = LIST_NEXT(m, node);
		if (m->addr >= a && m->addr + m->length <= e) {
			mapping_end(m);
			found = true;
		}
	}
	if (found)
		*ret = sys_munmap(addr, length);
	pthread_mutex_unlock(&lock);
	return found;
}

bool client_is_mapped(const void *addr)
{
	struct mapping *m;
	bool found = false;

	pthread_mutex_lock(&lock);
	LIST_FOREACH(m, &maps, node) {
		if ((uintptr_t)addr >= m->addr &&
		    (uintptr_t)addr < m->addr + m->length) {
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&lock);
	return found;
}

DCDFS_MAP_EXPORT int dcdfs_map(int fd, uint64_t offset, size_t length,
			       int prot, void **ret_addr)
{
	return client_map(fd, offset, length, prot, ret_addr);
}

DCDFS_MAP_EXPORT int dcdfs_unmap(void *addr, size_t length)
{
	return client_unmap(addr, length);
}

DCDFS_MAP_EXPORT bool dcdfs_is_mapped(const void *addr)
{
	return client_is_mapped(addr);
}

/* A user.dcd.* attribute of @fd as a string. */
static int get_xattr(int fd, const char *name, char **ret)
{
	ssize_t n = fgetxattr(fd, name, NULL, 0);
	char *buf;

	if (n < 0)
		return errno == ENODATA || errno == ENOTSUP ? -ENODEV : -errno;
	buf = malloc((size_t)n + 1);
	if (!buf)
		return -ENOMEM;
	n = fgetxattr(fd, name, buf, (size_t)n);
	if (n < 0) {
		free(buf);
		return -errno;
	}
	buf[n] = '\0';
	*ret = buf;
	return 0;
}

DCDFS_MAP_EXPORT int dcdfs_map_layout(int fd, struct dcdfs_layout **ret)
{
	char *ext = NULL, *node = NULL, *p, *end;
	struct dcdfs_layout *l = NULL;
	size_t nr = 1;
	uint64_t pos = 0;
	dev_t dev;
	int rc;

	rc = dcdfs_file_dev(fd, &dev);
	if (!rc)
		rc = get_xattr(fd, "user.dcd.extents", &ext);
	if (!rc)
		rc = get_xattr(fd, "user.dcd.numa_node", &node);
	if (rc < 0)
		goto out;
	for (p = ext; *p; p++)
		nr += *p == ' ';
	l = calloc(1, sizeof(*l) + nr * sizeof(l->extents[0]));
	if (!l) {
		rc = -ENOMEM;
		goto out;
	}
	l->numa_node = (int)strtol(node, NULL, 10);
	/* "DPA:LENGTH DPA:LENGTH ...", in hexadecimal, in file order. */
	for (p = ext; *p && l->nr_extents < nr; p = end) {
		struct dcdfs_layout_extent *e = &l->extents[l->nr_extents];

		errno = 0;
		e->dpa = strtoull(p, &end, 16);
		if (*end != ':' || errno) {
			rc = -EPROTO;
			goto out;
		}
		e->length = strtoull(end + 1, &end, 16);
		if ((*end && *end != ' ') || errno) {
			rc = -EPROTO;
			goto out;
		}
		while (*end == ' ')
			end++;
		e->file_offset = pos;
		pos += e->length;
		l->nr_extents++;
	}
	l->size = pos;
	*ret = l;
	l = NULL;
out:
	free(l);
	free(ext);
	free(node);
	return rc;
}
