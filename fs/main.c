// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * DOC: dcdfs - CXL Dynamic Capacity as files
 *
 * Command line, start-up and teardown.  Everything that can fail is checked
 * before the command returns: without -f the process forks first thing and
 * the parent waits until the child has attached to the device and mounted,
 * so a bad device or mountpoint still gives one line on stderr and a
 * non-zero exit, and nothing is left behind.  Only then does the child
 * detach and log to syslog.
 *
 * mount(8) and /etc/fstab reach dcdfs through mount.fuse3, which runs
 * "dcdfs SOURCE MOUNTPOINT -o OPTIONS": options meant for mount(8) or
 * systemd that come through are accepted and ignored (see
 * mount_only_opts[]).  Under systemd (Type=notify, with -f) the daemon
 * says READY=1 once mounted.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "fs.h"

enum {
	KEY_HELP,
	KEY_VERSION,
};

#define OPT(t, p) { t, offsetof(struct fs_opts, p), 0 }

static const struct fuse_opt opt_spec[] = {
	OPT("device=%s", device),
	OPT("backend=%s", backend),
	OPT("state=%s", state),
	OPT("host=%s", host_s),
	OPT("region=%s", region_s),
	OPT("uid=%s", uid_s),
	OPT("gid=%s", gid_s),
	OPT("mode=%s", mode_s),
	OPT("cxl_region=%s", cxl_region),
	OPT("sysfs=%s", sysfs),
	OPT("devdir=%s", devdir),
	OPT("poll=%s", poll_s),
	OPT("release_helper=%s", release_helper),
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_END
};

/*
 * Options that only mean something to mount(8), fstab or systemd, or
 * access-time policies a FUSE file system has no use for.  mount(8) and
 * mount.fuse3 strip most of them, but an fstab line run by hand, or a
 * unit that copies one, hands them over: they are ignored, not refused.
 */
static const char *const mount_only_opts[] = {
	"auto", "noauto", "nofail", "_netdev", "defaults",
	"user", "nouser", "users", "owner", "group",
	"relatime", "norelatime", "strictatime", "nostrictatime",
	"lazytime", "nolazytime", "diratime", "nodiratime",
	NULL,
};

static bool mount_only(const char *arg)
{
	if (!strncmp(arg, "x-", 2) || !strncmp(arg, "comment=", 8))
		return true;
	for (const char *const *o = mount_only_opts; *o; o++)
		if (!strcmp(arg, *o))
			return true;
	return false;
}

/* libfuse's command-line flags; any other "-x" is a mistake. */
static bool fuse_flag(const char *arg)
{
	return !strcmp(arg, "-f") || !strcmp(arg, "-d") || !strcmp(arg, "-s");
}

static int opt_proc(void *data, const char *arg, int key,
		    struct fuse_args *outargs)
{
	struct fs_opts *opts = data;

	(void) outargs;
	switch (key) {
	case FUSE_OPT_KEY_OPT:
		if (mount_only(arg))
			return 0;
		if (arg[0] == '-' && !fuse_flag(arg)) {
			fs_log(LOG_ERR, "unknown option '%s' (see 'dcdfs"
			       " --help')", arg);
			return -1;
		}
		return 1;
	case KEY_HELP:
		opts->show_help = 1;
		return 0;
	case KEY_VERSION:
		opts->show_version = 1;
		return 0;
	case FUSE_OPT_KEY_NONOPT:
		if (opts->nr_pos == 2) {
			fs_log(LOG_ERR, "unexpected argument '%s' (see"
			       " 'dcdfs --help')", arg);
			return -1;
		}
		opts->pos[opts->nr_pos] = strdup(arg);
		return opts->pos[opts->nr_pos++] ? 0 : -1;
	}
	return 1;	/* for libfuse */
}

static void usage(void)
{
	printf("usage: dcdfs [DEV] MOUNTPOINT [-f] [-o OPTION[,OPTION...]]\n\n"
	       "Present the Dynamic Capacity a host holds as files.\n\n"
	       "dcdfs options:\n"
	       "    -o device=DEV      simulated device directory (default:\n"
	       "                       $DCDFS_DEVICE, then /dev/shm/dcdfs-UID/default,\n"
	       "                       created on first use with 16 GiB)\n"
	       "    -o host=H          host id on the device (default 0)\n"
	       "    -o region=R        DC region to present (default 0)\n"
	       "    -o backend=sim|kernel  where capacity comes from (sim)\n"
	       "    -o state=FILE      where chmod/chown are kept (default: in\n"
	       "                       the device directory)\n"
	       "    -o uid=U,gid=G     owner of the files (default: the daemon's)\n"
	       "    -o mode=M          permissions of the files, octal (default\n"
	       "                       0600); the directory gets x where r is\n"
	       "kernel backend (docs/kernel-backend.md):\n"
	       "    -o cxl_region=regionN  the DC region to present (required)\n"
	       "    -o sysfs=ROOT      sysfs root (default /sys)\n"
	       "    -o devdir=DIR      DAX devices directory (default /dev)\n"
	       "    -o poll=MS         scan for extents every MS (default 200)\n"
	       "    -o release_helper=PROG  run by rm to ask the FM for a release\n"
	       "    DEV is cxl_region for backend=kernel\n"
	       "mount(8), fstab and systemd options (noauto, nofail, _netdev,\n"
	       "defaults, user, users, x-*, comment=*, *atime) are ignored.\n"
	       "example: dcdfs /dev/shm/dcd0 /mnt/dcd -o host=1,region=0\n"
	       "example: dcdfs /mnt/dcd -o device=/dev/shm/dcd0,uid=1000\n"
	       "example: dcdfs /mnt/dcd -o mode=0640,gid=100,allow_other\n"
	       "example: dcdfs /mnt/dcd -o state=/var/lib/dcdfs/dcd.state\n"
	       "example: dcdfs region0 /mnt/dcd -o backend=kernel,poll=100\n"
	       "example: dcdfs /mnt/dcd -o backend=kernel,cxl_region=region0,\n"
	       "         sysfs=/tmp/sys,devdir=/tmp/dev,release_helper=/bin/fm\n"
	       "example: mount -t fuse.dcdfs /dev/shm/dcd0 /mnt/dcd -o allow_other\n\n");
	fuse_cmdline_help();
	fuse_lowlevel_help();
}

static char *take_pos(struct fs_opts *opts, int i)
{
	char *p = opts->pos[i];

	opts->pos[i] = NULL;
	return p;
}

static bool is_kernel(const struct fs_opts *opts)
{
	return opts->backend && !strcmp(opts->backend, "kernel");
}

/* The value of the option the positional DEV would duplicate, if given. */
static const char *source_opt(const struct fs_opts *opts, const char **name)
{
	*name = is_kernel(opts) ? "cxl_region" : "device";
	return is_kernel(opts) ? opts->cxl_region : opts->device;
}

/* Split the command line; libfuse keeps what is not ours. */
static int parse_args(struct fuse_args *args, struct fs_opts *opts,
		      struct fuse_cmdline_opts *cmd)
{
	const char *name;

	if (fuse_opt_parse(args, opts, opt_spec, opt_proc) < 0)
		return -1;
	if (opts->show_help || opts->show_version)
		return 0;
	if (opts->nr_pos == 0) {
		fs_log(LOG_ERR, "missing mountpoint (see 'dcdfs --help')");
		return -1;
	}
	if (opts->nr_pos == 2 && source_opt(opts, &name)) {
		fs_log(LOG_ERR, "the device is given twice: '%s' and %s=%s",
		       opts->pos[0], name, source_opt(opts, &name));
		return -1;
	}
	/* The source mount(8) passes: a device, or a region for kernel. */
	if (opts->nr_pos == 2 && is_kernel(opts))
		opts->cxl_region = take_pos(opts, 0);
	else if (opts->nr_pos == 2)
		opts->device = take_pos(opts, 0);
	if (fuse_opt_add_arg(args, opts->pos[opts->nr_pos - 1]) < 0 ||
	    fuse_parse_cmdline(args, cmd) < 0)
		return -1;
	return 0;
}

/* Options of one backend given to the other: say so, do not ignore them. */
static int opts_fit_backend(const struct fs_opts *opts)
{
	bool kernel = is_kernel(opts);

	if (opts->backend && !kernel && strcmp(opts->backend, "sim")) {
		fs_log(LOG_ERR, "backend=%s is not known (sim, kernel)",
		       opts->backend);
		return -1;
	}
	if (kernel && !opts->cxl_region) {
		fs_log(LOG_ERR, "backend=kernel needs cxl_region=regionN");
		return -1;
	}
	if (kernel && (opts->device || opts->host_s || opts->region_s)) {
		fs_log(LOG_ERR, "device, host and region are for backend=sim;"
		       " backend=kernel takes cxl_region");
		return -1;
	}
	if (!kernel && (opts->cxl_region || opts->sysfs || opts->devdir ||
			opts->poll_s || opts->release_helper)) {
		fs_log(LOG_ERR, "cxl_region, sysfs, devdir, poll and"
		       " release_helper need backend=kernel");
		return -1;
	}
	return 0;
}

/*
 * The daemon works from /: paths it keeps must not depend on where it was
 * started.  A path that does not exist yet (the state file) keeps its
 * directory's resolution.
 */
static int absolutize(char **path)
{
	char *abs, *dir, *base, *slash;

	if (!*path || (*path)[0] == '/')
		return 0;
	abs = realpath(*path, NULL);
	if (!abs) {
		slash = strrchr(*path, '/');
		dir = realpath(slash ? strndupa(*path, (size_t)(slash - *path)) :
				       ".", NULL);
		base = slash ? slash + 1 : *path;
		if (!dir || asprintf(&abs, "%s/%s", dir, base) < 0)
			abs = NULL;
		free(dir);
	}
	if (!abs) {
		fs_log(LOG_ERR, "bad path '%s': %s", *path, strerror(errno));
		return -1;
	}
	free(*path);
	*path = abs;
	return 0;
}

/*
 * A number option, all of it: decimal (octal for mode) digits only, no
 * sign, at most @max.  Unset (NULL) leaves *@ret alone.
 */
static int number_opt(const char *name, const char *s, int base,
		      unsigned long max, unsigned int *ret)
{
	const char *digits = base == 8 ? "01234567" : "0123456789";
	unsigned long v;
	char *end;

	if (!s)
		return 0;
	errno = 0;
	v = strtoul(s, &end, base);
	if (!*s || strspn(s, digits) != strlen(s) || errno || *end ||
	    v > max) {
		if (base == 8)
			fs_log(LOG_ERR, "%s=%s is not an octal mode (0 to"
			       " 07777)", name, s);
		else
			fs_log(LOG_ERR, "%s=%s is not a number from 0 to %lu",
			       name, s, max);
		return -1;
	}
	*ret = (unsigned int)v;
	return 0;
}

static int check_opts(struct fs_opts *opts)
{
	/* (uid_t)-1 means "unchanged" to the kernel: it is nobody's id. */
	if (number_opt("host", opts->host_s, 10, DCDFS_SIMDEV_MAX_HOST,
		       &opts->host) < 0 ||
	    number_opt("region", opts->region_s, 10,
		       DCDFS_SIMDEV_MAX_REGIONS - 1, &opts->region) < 0 ||
	    number_opt("uid", opts->uid_s, 10, UINT_MAX - 1, &opts->uid) < 0 ||
	    number_opt("gid", opts->gid_s, 10, UINT_MAX - 1, &opts->gid) < 0 ||
	    number_opt("mode", opts->mode_s, 8, 07777, &opts->mode) < 0 ||
	    number_opt("poll", opts->poll_s, 10, 3600000, &opts->poll_ms) < 0)
		return -1;
	if (opts_fit_backend(opts) < 0 || absolutize(&opts->sysfs) < 0 ||
	    absolutize(&opts->devdir) < 0 || absolutize(&opts->state) < 0 ||
	    absolutize(&opts->release_helper) < 0)
		return -1;
	return 0;
}

static int check_mountpoint(const char *mnt)
{
	struct statx stx;

	if (statx(AT_FDCWD, mnt, 0, STATX_TYPE, &stx) < 0) {
		fs_log(LOG_ERR, "bad mountpoint '%s': %s", mnt,
		       strerror(errno));
		return -1;
	}
	if (!S_ISDIR(stx.stx_mode)) {
		fs_log(LOG_ERR, "bad mountpoint '%s': not a directory", mnt);
		return -1;
	}
	if (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT &&
	    stx.stx_attributes & STATX_ATTR_MOUNT_ROOT) {
		fs_log(LOG_ERR, "mountpoint '%s' is busy: something is mounted"
		       " there already", mnt);
		return -1;
	}
	return 0;
}

/* The directory is searchable where the files are readable. */
static uint32_t dir_mode_of(uint32_t mode)
{
	uint32_t dir = 0;

	for (int shift = 0; shift <= 6; shift += 3) {
		uint32_t bits = (mode >> shift) & 7;

		dir |= ((bits & 4 ? 5 : 0) | (bits & 2)) << shift;
	}
	return dir;
}

/* ------------------------------------------------------------------------ */
/* Daemon                                                                   */
/* ------------------------------------------------------------------------ */

static int ready_fd = -1;

/*
 * Fork before anything is opened.  The parent exits 0 once the child says
 * it is mounted, or with the child's status if it dies first.
 */
static int daemonize_early(void)
{
	int p[2], status;
	pid_t pid;
	char c;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		(void) close(p[1]);
		if (read(p[0], &c, 1) == 1)
			_exit(0);
		if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
			_exit(1);
		_exit(WEXITSTATUS(status) ? WEXITSTATUS(status) : 1);
	}
	(void) close(p[0]);
	ready_fd = p[1];
	return setsid() < 0 ? -errno : 0;
}

static void daemonize_done(void)
{
	int fd;

	if (ready_fd < 0)
		return;
	if (chdir("/") < 0)
		fs_log(LOG_DEBUG, "chdir /: %s", strerror(errno));
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			(void) close(fd);
	}
	fs_log_to_syslog();
	if (write(ready_fd, "", 1) < 0)
		fs_log(LOG_DEBUG, "cannot tell the parent: %s",
		       strerror(errno));
	(void) close(ready_fd);
	ready_fd = -1;
}

static int attach(struct dcdfs_fs *fs, const struct fs_opts *opts,
		  const char *mountpoint)
{
	struct dcdfs_host_config cfg = {
		.backend = opts->backend,
		.device = opts->device,
		.host = opts->host,
		.region = opts->region,
		.state = opts->state,
		.uid = opts->uid_s ? opts->uid : geteuid(),
		.gid = opts->gid_s ? opts->gid : getegid(),
		.mode = opts->mode_s ? opts->mode : 0600,
		.cxl_region = opts->cxl_region,
		.sysfs = opts->sysfs,
		.devdir = opts->devdir,
		.poll_ms = opts->poll_ms,
		.release_helper = opts->release_helper,
	};
	int rc;

	rc = dcdfs_new(&fs->ctx);
	if (rc < 0)
		return rc;
	fs_log_attach(fs->ctx);
	fs->uid = cfg.uid;
	fs->gid = cfg.gid;
	fs->dir_mode = dir_mode_of(cfg.mode);
	fs->mountpoint = mountpoint;
	fs->mount_time = time(NULL);
	LIST_INIT(&fs->open_files);
	rc = pthread_mutex_init(&fs->open_lock, NULL) ? -ENOMEM : 0;
	if (!rc)
		rc = fs_inodes_init(fs);
	if (rc < 0)
		return rc;
	rc = dcdfs_host_new(fs->ctx, &cfg, &fs->host);
	if (rc < 0)
		fs_log(LOG_ERR, "cannot attach: %s", dcdfs_strerror(rc));
	return rc;
}

/*
 * Tell systemd (Type=notify) that the file system is mounted: one datagram
 * to $NOTIFY_SOCKET, the protocol of sd_notify(3).  Without the variable,
 * nothing to do; a failure is logged and otherwise ignored.
 */
static void notify_ready(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char msg[64];
	size_t len;
	int fd, n;

	if (!path || (path[0] != '/' && path[0] != '@'))
		return;
	len = strlen(path);
	if (len >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, path, len);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0';	/* abstract socket */
	n = snprintf(msg, sizeof(msg), "READY=1\nMAINPID=%d\n", getpid());
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || sendto(fd, msg, (size_t)n, MSG_NOSIGNAL,
			     (struct sockaddr *)&sa,
			     (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
					 len)) < 0)
		fs_log(LOG_WARNING, "cannot notify '%s': %s", path,
		       strerror(errno));
	if (fd >= 0)
		(void) close(fd);
}

static int serve(struct dcdfs_fs *fs, const struct fuse_cmdline_opts *cmd)
{
	struct fuse_loop_config *cfg;
	int rc;

	if (cmd->singlethread)
		return fuse_session_loop(fs->se);
	cfg = fuse_loop_cfg_create();
	if (!cfg)
		return -ENOMEM;
	fuse_loop_cfg_set_clone_fd(cfg, cmd->clone_fd);
	fuse_loop_cfg_set_max_threads(cfg, cmd->max_threads);
	rc = fuse_session_loop_mt(fs->se, cfg);
	fuse_loop_cfg_destroy(cfg);
	return rc;
}

static int run(struct dcdfs_fs *fs, const struct fuse_cmdline_opts *cmd)
{
	int rc = 1;

	if (fuse_set_signal_handlers(fs->se) < 0)
		return 1;
	if (fuse_session_mount(fs->se, cmd->mountpoint) < 0)
		goto out_signals;
	if (fs_threads_start(fs) < 0) {
		fs_log(LOG_ERR, "cannot start threads");
		goto out_unmount;
	}
	/* Without it, clients map through the page cache: not fatal. */
	(void) fs_direct_start(fs);
	daemonize_done();
	notify_ready();
	/* A positive return is the signal that ended the loop: a clean exit. */
	rc = serve(fs, cmd) < 0 ? 1 : 0;
	fs_direct_stop(fs);
	fs_threads_stop(fs);
out_unmount:
	fuse_session_unmount(fs->se);
out_signals:
	fuse_remove_signal_handlers(fs->se);
	return rc;
}

static char *mount_options(const struct fs_opts *opts)
{
	char *s, *dev = opts->cxl_region ? strdup(opts->cxl_region) :
			opts->device ? strdup(opts->device) :
				       dcdfs_simdev_default_path();

	if (!dev)
		return NULL;
	/* A comma would split the option: show the device without it. */
	for (char *p = dev; *p; p++)
		if (*p == ',')
			*p = '_';
	if (asprintf(&s, "-odefault_permissions,subtype=dcdfs,fsname=%s",
		     dev) < 0)
		s = NULL;
	free(dev);
	return s;
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fs_opts opts = { 0 };
	struct fuse_cmdline_opts cmd = { 0 };
	struct dcdfs_fs fs = { 0 };
	char *mopts = NULL;
	int rc = 1;

	fs_log_init();
	if (parse_args(&args, &opts, &cmd) < 0)
		goto out;
	if (cmd.debug)
		fs_log_set_debug();
	if (opts.show_help || opts.show_version) {
		if (opts.show_help)
			usage();
		else
			printf("dcdfs %s (libfuse %s)\n", DCDFS_VERSION,
			       fuse_pkgversion());
		rc = 0;
		goto out;
	}
	if (check_opts(&opts) < 0 || check_mountpoint(cmd.mountpoint) < 0)
		goto out;
	mopts = mount_options(&opts);
	if (!mopts || fuse_opt_add_arg(&args, mopts) < 0)
		goto out;
	/* libfuse checks its options here: before the device is touched. */
	fs.se = fuse_session_new(&args, &fs_ops, sizeof(fs_ops), &fs);
	if (!fs.se)
		goto out;
	if (dcdfs_mem_guard_init() < 0 ||
	    (!cmd.foreground && daemonize_early() < 0)) {
		fs_log(LOG_ERR, "cannot start: %s", strerror(errno));
		goto out_session;
	}
	if (attach(&fs, &opts, cmd.mountpoint) == 0)
		rc = run(&fs, &cmd);
out_session:
	fuse_session_destroy(fs.se);
	fs_files_drop(&fs);
	fs_inodes_drop(&fs);
	dcdfs_host_free(fs.host);
	dcdfs_unref(fs.ctx);
out:
	free(mopts);
	free(cmd.mountpoint);
	free(opts.device);
	free(opts.pos[0]);
	free(opts.pos[1]);
	free(opts.backend);
	free(opts.state);
	free(opts.cxl_region);
	free(opts.host_s);
	free(opts.region_s);
	free(opts.uid_s);
	free(opts.gid_s);
	free(opts.mode_s);
	free(opts.poll_s);
	free(opts.sysfs);
	free(opts.devdir);
	free(opts.release_helper);
	fuse_opt_free_args(&args);
	return rc;
}
