// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * dmap - drive libdcdfs-map for the functional tests
 *
 *   dmap FILE OP...
 *
 * Runs the operations in order and prints one line per result:
 *
 *   open:ro|rw|wo          open FILE (O_RDONLY, O_RDWR, O_WRONLY)
 *   close                  close it (mappings stay)
 *   map:OFF:LEN:r|rw       dcdfs_map(); "map: ok" or "map: ERRNO"
 *   mmap:shared|private:r|rw
 *                          plain mmap() of the whole file (what the preload
 *                          shim may turn into a direct mapping)
 *   unmap                  dcdfs_unmap() of the last mapping
 *   munmap                 plain munmap() of the last mapping
 *   msync                  msync(MS_SYNC) of the last mapping
 *   fill:OFF:LEN:SEED      store the pattern SEED (pattern.h) through the
 *                          mapping at file offset OFF
 *   check:OFF:LEN:SEED     compare the mapping with it: "ok" or the offset
 *   pwrite:OFF:LEN:SEED    write the pattern with pwrite()
 *   pread:OFF:LEN:SEED     read with pread() and compare
 *   layout                 dcdfs_map_layout()
 *   shape                  is the mapping one contiguous range of the
 *                          allocation's memory, 2 MiB-aligned?
 *   touch                  read every page of the mapping; say how much of
 *                          it smaps shows in 2 MiB pages (the number of
 *                          faults taken goes to stderr)
 *   hold                   print "holding", wait for SIGUSR1
 *   probe                  print "mapped", wait for SIGUSR1, read every
 *                          page: "readable" or "SIGBUS"
 *   forge:KIND[:PATH]      a hand-made request to the daemon (see forge())
 *
 * Numbers: decimal, 0x hex, or with a K, M or G suffix.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <dcdfs/map.h>

#include "direct-proto.h"
#include "pattern.h"
#include "smaps.h"

static const char *path;
static int fd = -1;
static uint8_t *addr;
static uint64_t map_off;
static size_t map_len;
static sigjmp_buf bus_jmp;

static void on_bus(int sig)
{
	(void) sig;
	siglongjmp(bus_jmp, 1);
}

static void on_usr1(int sig)
{
	(void) sig;
}

/* Print @line, then wait for SIGUSR1. */
static void wait_usr1(const char *line)
{
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	printf("%s\n", line);
	fflush(stdout);
	sigwait(&set, &sig);
}

/* OP's fields after the name, split at ':' (in place). */
static int split(char *op, char **f, int max)
{
	int n = 0;
	char *p = strchr(op, ':');

	while (p && n < max) {
		*p++ = '\0';
		f[n++] = p;
		p = strchr(p, ':');
	}
	return n;
}

static uint8_t *at(uint64_t off, uint64_t len)
{
	if (!addr || off < map_off || off + len > map_off + map_len) {
		fprintf(stderr, "dmap: %llu+%llu is not mapped\n",
			(unsigned long long)off, (unsigned long long)len);
		exit(2);
	}
	return addr + (off - map_off);
}

/* Does /proc/self/maps show the mapping as one file's memory? */
static void shape(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	uintptr_t a = (uintptr_t)addr, e = a + map_len, next = a;
	bool fuse = false;

	while (f && fgets(line, sizeof(line), f)) {
		unsigned long s, t;

		if (sscanf(line, "%lx-%lx", &s, &t) != 2 || t <= a || s >= e)
			continue;
		if (s != next)
			break;
		next = t;
		if (strstr(line, path))
			fuse = true;
	}
	if (f)
		fclose(f);
	if (fuse)
		printf("shape: page cache\n");
	else
		printf("shape: %s, %s, device memory\n",
		       next == e ? "contiguous" : "holes",
		       a % (2u << 20) == 0 ? "2M-aligned" : "not 2M-aligned");
}

static void touch(void)
{
	struct rusage r0, r1;
	unsigned long faults, kb;

	getrusage(RUSAGE_SELF, &r0);
	for (size_t i = 0; i < map_len; i += 4096)
		*(volatile uint8_t *)(addr + i);
	getrusage(RUSAGE_SELF, &r1);
	faults = (unsigned long)(r1.ru_minflt - r0.ru_minflt);
	kb = smaps_huge_kb(addr, map_len);
	/* Faults go to stderr: a sanitizer's shadow memory takes some too. */
	printf("touch: %s of the mapping in 2 MiB pages\n",
	       kb * 1024 == map_len ? "all" : kb ? "part" : "none");
	fprintf(stderr, "dmap: touch: %lu faults for %zu bytes, %lu kB huge\n",
		faults, map_len, kb);
}

static int connect_daemon(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int s, n;

	if (stat(path, &st) < 0)
		return -1;
	n = snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1,
		     DIRECT_SOCKET_FMT, major(st.st_dev), minor(st.st_dev));
	s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&sa,
			     (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
					 1 + n)) < 0) {
		perror("dmap: connect");
		exit(2);
	}
	return s;
}

/* Send a request with @nr descriptors; the reply's error (pieces dropped). */
static int ask(int s, const struct direct_req *req, size_t len,
	       const int *fds, size_t nr, uint64_t *ret_grant)
{
	char cbuf[DIRECT_CMSG_SPACE] = { 0 };
	struct iovec iov = { (void *)req, len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct direct_reply r;
	char junk[4096];

	direct_attach_fds(&msg, cbuf, fds, nr);
	if (sendmsg(s, &msg, MSG_NOSIGNAL) < 0)
		return -errno;
	if (recv(s, &r, sizeof(r), 0) != sizeof(r))
		return -EPIPE;
	for (uint32_t i = 0; !r.error && i < r.nr_pieces; i += DIRECT_MAX_FDS) {
		char c2[DIRECT_CMSG_SPACE];
		struct iovec v = { junk, sizeof(junk) };
		struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1,
				    .msg_control = c2,
				    .msg_controllen = sizeof(c2) };
		struct cmsghdr *cm;

		if (recvmsg(s, &m, MSG_CMSG_CLOEXEC) <= 0)
			return -EPIPE;
		for (cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm))
			for (size_t k = 0; k < (cm->cmsg_len - CMSG_LEN(0)) /
					       sizeof(int); k++)
				close(((int *)CMSG_DATA(cm))[k]);
	}
	if (ret_grant)
		*ret_grant = r.grant;
	return r.error;
}

/*
 * Hand-made requests, each answered with an error and nothing granted:
 * magic (wrong magic), short (truncated), nofd (no descriptor), twofds,
 * otherfs:PATH (a file of another file system), dir (the mount's root),
 * opath (an O_PATH descriptor), wronly (opened write-only), rdwrite (read-
 * only open, PROT_WRITE), range (past the end), unaligned (offset),
 * unknown (UNMAP of a grant never made), replay (a granted request sent
 * again without its descriptor, its UNMAP twice, and from another
 * connection).
 */
static void forge(const char *kind, const char *arg)
{
	struct direct_req req = {
		.magic = DIRECT_MAGIC, .version = DIRECT_VERSION,
		.op = DIRECT_MAP, .offset = 0, .length = 4096,
		.prot = PROT_READ,
	};
	int s = connect_daemon(), f = -1, fds[2], rc;
	size_t len = sizeof(req), nr = 1;
	uint64_t grant = 0;

	fds[0] = fd;
	if (!strcmp(kind, "magic")) {
		req.magic ^= 1;
	} else if (!strcmp(kind, "short")) {
		len = 8;
	} else if (!strcmp(kind, "nofd")) {
		nr = 0;
	} else if (!strcmp(kind, "twofds")) {
		fds[1] = fd;
		nr = 2;
	} else if (!strcmp(kind, "otherfs") && arg) {
		fds[0] = f = open(arg, O_RDONLY);
	} else if (!strcmp(kind, "dir")) {
		char dir[4096];

		snprintf(dir, sizeof(dir), "%s", path);
		*strrchr(dir, '/') = '\0';
		fds[0] = f = open(dir, O_RDONLY | O_DIRECTORY);
	} else if (!strcmp(kind, "opath")) {
		fds[0] = f = open(path, O_PATH);
	} else if (!strcmp(kind, "wronly")) {
		fds[0] = f = open(path, O_WRONLY);
	} else if (!strcmp(kind, "rdwrite")) {
		fds[0] = f = open(path, O_RDONLY);
		req.prot |= PROT_WRITE;
	} else if (!strcmp(kind, "range")) {
		req.offset = 1ULL << 50;
	} else if (!strcmp(kind, "unaligned")) {
		req.offset = 512;
	} else if (!strcmp(kind, "unknown")) {
		req.op = DIRECT_UNMAP;
		req.grant = 42;
		nr = 0;
	} else if (!strcmp(kind, "replay")) {
		int s2 = connect_daemon();

		rc = ask(s, &req, len, fds, 1, &grant);
		printf("forge replay: granted: %s\n", rc ? errname(-rc) : "ok");
		rc = ask(s, &req, len, fds, 0, NULL);
		printf("forge replay: without the fd: %s\n", rc ? errname(-rc) : "ok");
		req.op = DIRECT_UNMAP;
		req.grant = grant;
		rc = ask(s2, &req, len, NULL, 0, NULL);
		printf("forge replay: unmap from another connection: %s\n",
		       errname(-rc));
		rc = ask(s, &req, len, NULL, 0, NULL);
		printf("forge replay: unmap: %s\n", rc ? errname(-rc) : "ok");
		rc = ask(s, &req, len, NULL, 0, NULL);
		printf("forge replay: unmap again: %s\n", rc ? errname(-rc) : "ok");
		close(s2);
		close(s);
		return;
	} else {
		fprintf(stderr, "dmap: bad forge '%s'\n", kind);
		exit(2);
	}
	if (fds[0] < 0) {
		perror("dmap: open");
		exit(2);
	}
	rc = ask(s, &req, len, fds, nr, NULL);
	printf("forge %s: %s\n", kind, rc ? errname(-rc) : "granted");
	if (f >= 0)
		close(f);
	close(s);
}

static void run(char *op)
{
	char *f[4];
	int n = split(op, f, 4), rc;

	if (!strcmp(op, "open") && n == 1) {
		int flags = !strcmp(f[0], "ro") ? O_RDONLY :
			    !strcmp(f[0], "wo") ? O_WRONLY : O_RDWR;

		if (fd >= 0)
			close(fd);
		fd = open(path, flags);
		if (fd < 0) {
			printf("open: %s\n", errname(errno));
			exit(1);
		}
	} else if (!strcmp(op, "close")) {
		close(fd);
		fd = -1;
	} else if (!strcmp(op, "map") && n == 3) {
		void *p;
		int prot = PROT_READ | (!strcmp(f[2], "rw") ? PROT_WRITE : 0);

		map_off = pattern_number("dmap", f[0]);
		map_len = pattern_number("dmap", f[1]);
		rc = dcdfs_map(fd, map_off, map_len, prot, &p);
		printf("map: %s\n", rc ? errname(-rc) : "ok");
		addr = rc ? NULL : p;
	} else if (!strcmp(op, "mmap") && n == 2) {
		struct stat st;
		int prot = PROT_READ | (!strcmp(f[1], "rw") ? PROT_WRITE : 0);
		void *p;

		fstat(fd, &st);
		map_off = 0;
		map_len = (size_t)st.st_size;
		p = mmap(NULL, map_len, prot, !strcmp(f[0], "private") ?
			 MAP_PRIVATE : MAP_SHARED, fd, 0);
		printf("mmap: %s\n", p == MAP_FAILED ? errname(errno) : "ok");
		addr = p == MAP_FAILED ? NULL : p;
	} else if (!strcmp(op, "unmap")) {
		rc = dcdfs_unmap(addr, map_len);
		printf("unmap: %s\n", rc ? errname(-rc) : "ok");
		addr = NULL;
	} else if (!strcmp(op, "msync")) {
		if (msync(addr, map_len, MS_SYNC) < 0)
			printf("msync: %s\n", errname(errno));
	} else if (!strcmp(op, "munmap")) {
		munmap(addr, map_len);
		addr = NULL;
	} else if ((!strcmp(op, "fill") || !strcmp(op, "check") ||
		    !strcmp(op, "pwrite") || !strcmp(op, "pread")) && n == 3) {
		uint64_t off = pattern_number("dmap", f[0]);
		uint64_t len = pattern_number("dmap", f[1]);
		uint64_t seed = pattern_number("dmap", f[2]);
		uint8_t *buf = malloc(len);
		long long bad;

		if (!strcmp(op, "fill")) {
			pattern_fill(seed, off, at(off, len), len);
		} else if (!strcmp(op, "check")) {
			bad = pattern_check(seed, off, at(off, len), len);
			if (bad < 0)
				printf("check: ok\n");
			else
				printf("check: differs at %llu\n",
				       (unsigned long long)off + bad);
		} else if (!strcmp(op, "pwrite")) {
			pattern_fill(seed, off, buf, len);
			if (pwrite(fd, buf, len, (off_t)off) != (ssize_t)len)
				printf("pwrite: %s\n", errname(errno));
		} else {
			if (pread(fd, buf, len, (off_t)off) != (ssize_t)len) {
				printf("pread: %s\n", errname(errno));
			} else {
				bad = pattern_check(seed, off, buf, len);
				if (bad < 0)
					printf("pread: ok\n");
				else
					printf("pread: differs at %llu\n",
					       (unsigned long long)off + bad);
			}
		}
		free(buf);
	} else if (!strcmp(op, "layout")) {
		struct dcdfs_layout *l;

		rc = dcdfs_map_layout(fd, &l);
		if (rc) {
			printf("layout: %s\n", errname(-rc));
			return;
		}
		printf("layout: size %llu, %zu extents\n",
		       (unsigned long long)l->size, l->nr_extents);
		for (size_t i = 0; i < l->nr_extents; i++)
			printf("  at %llu: dpa 0x%llx, 0x%llx bytes\n",
			       (unsigned long long)l->extents[i].file_offset,
			       (unsigned long long)l->extents[i].dpa,
			       (unsigned long long)l->extents[i].length);
		free(l);
	} else if (!strcmp(op, "shape")) {
		shape();
	} else if (!strcmp(op, "touch")) {
		touch();
	} else if (!strcmp(op, "hold")) {
		wait_usr1("holding");
	} else if (!strcmp(op, "probe")) {
		wait_usr1("mapped");
		signal(SIGBUS, on_bus);
		if (sigsetjmp(bus_jmp, 1)) {
			printf("SIGBUS\n");
			return;
		}
		for (size_t i = 0; i < map_len; i += 4096)
			*(volatile uint8_t *)(addr + i);
		printf("readable\n");
	} else if (!strcmp(op, "forge") && n >= 1) {
		forge(f[0], n > 1 ? f[1] : NULL);
	} else {
		fprintf(stderr, "dmap: bad operation '%s'\n", op);
		exit(2);
	}
	fflush(stdout);
}

int main(int argc, char *argv[])
{
	if (argc < 3) {
		fprintf(stderr, "usage: dmap FILE OP...\n");
		return 2;
	}
	signal(SIGUSR1, on_usr1);
	path = argv[1];
	for (int i = 2; i < argc; i++)
		run(argv[i]);
	return 0;
}
