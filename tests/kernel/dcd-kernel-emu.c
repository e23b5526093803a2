// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * DOC: dcd-kernel-emu - the DCD kernel's sysfs, emulated
 *
 *   dcd-kernel-emu MOUNTPOINT [-f] -o abi=v6|v9|v10|v11[,region=N]
 *                  [,size=SIZE][,base=HPA][,dpa=DPA][,memory=FILE]
 *
 * A test double for dcdfs' kernel backend: a FUSE file system serving the
 * sysfs (and tracefs, and /dev) of a host running one version of the CXL
 * DCD series, where writes take effect, or fail with the kernel's errno,
 * before write() returns.  README.md in this directory is the
 * specification.  This file: the command line, the region's memory, and
 * the session.  Errors before the mount are one line on stderr and a
 * non-zero exit; an unmount ends the emulator with status 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "emu.h"

static const struct abi_desc abis[] = {
	{ .name = "v6", .mode = "dc", .partition = "dc0", .tag_attr = "tag",
	  .part_field = "region_id" },
	{ .name = "v9", .mode = "dynamic_ram_a", .partition = "dynamic_ram_a",
	  .tag_attr = "uuid", .part_field = "partition_id" },
	{ .name = "v10", .mode = "dynamic_ram_a", .partition = "dynamic_ram_a",
	  .tag_attr = "uuid", .part_field = "partition_id", .tags = true,
	  .seq_base = 1 },
	{ .name = "v11", .mode = "dynamic_ram_1", .partition = "dynamic_ram_1",
	  .tag_attr = "uuid", .part_field = "partition_id", .tags = true,
	  .seq_base = 0, .max_chain = 100 },
};

struct emu_opts {
	char *abi;
	char *size;
	char *base;
	char *dpa;
	char *memory;
	unsigned int region;
	int show_help;
};

#define OPT(t, p) { t, offsetof(struct emu_opts, p), 0 }
#define OPT_FLAG(t, p) { t, offsetof(struct emu_opts, p), 1 }

static const struct fuse_opt opt_spec[] = {
	OPT("abi=%s", abi),
	OPT("region=%u", region),
	OPT("size=%s", size),
	OPT("base=%s", base),
	OPT("dpa=%s", dpa),
	OPT("memory=%s", memory),
	OPT_FLAG("-h", show_help),
	OPT_FLAG("--help", show_help),
	FUSE_OPT_END
};

static void usage(void)
{
	printf("usage: " EMU_NAME " MOUNTPOINT [-f] -o abi=v6|v9|v10|v11"
	       "[,OPTION...]\n\n"
	       "Serve the sysfs of a host running the CXL DCD kernel series.\n\n"
	       "options:\n"
	       "    -o abi=V         the series' version: v6 (v4-v8), v9, v10"
	       " or v11\n"
	       "    -o region=N      the region id (default 0)\n"
	       "    -o size=SIZE     the region's size (default 1G)\n"
	       "    -o base=HPA      its physical address (default"
	       " 0x1000000000)\n"
	       "    -o dpa=DPA       where its decoder starts (default"
	       " 0x40000000)\n"
	       "    -o memory=FILE   the region's memory (default: private,"
	       " in /dev/shm)\n\n");
	fuse_cmdline_help();
	fuse_lowlevel_help();
}

static int __attribute__((format(printf, 1, 2))) emu_error(const char *fmt, ...)
{
	va_list ap;

	fputs(EMU_NAME ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return -1;
}

static int parse_opt_size(const char *name, const char *s, uint64_t *ret)
{
	if (s && parse_size(s, ret) < 0)
		return emu_error("%s%s is not a number", name, s);
	return 0;
}

static int configure(struct emu *emu, const struct emu_opts *opts)
{
	if (!opts->abi)
		return emu_error("missing -o abi=v6|v9|v10|v11");
	for (size_t i = 0; i < sizeof(abis) / sizeof(abis[0]); i++)
		if (!strcmp(opts->abi, abis[i].name))
			emu->abi = &abis[i];
	if (!emu->abi)
		return emu_error("abi=%s is not known (v6, v9, v10, v11)",
			     opts->abi);
	emu->region = opts->region;
	emu->size = 1ULL << 30;
	emu->base = 0x1000000000ULL;
	emu->dpa = 0x40000000ULL;
	if (parse_opt_size("size=", opts->size, &emu->size) < 0 ||
	    parse_opt_size("base=", opts->base, &emu->base) < 0 ||
	    parse_opt_size("dpa=", opts->dpa, &emu->dpa) < 0)
		return -1;
	if (!emu->size || emu->size % EMU_ALIGN)
		return emu_error("size=%s is not a non-zero multiple of 2 MiB",
			     opts->size);
	if (emu->base > UINT64_MAX - emu->size ||
	    emu->dpa > UINT64_MAX - emu->size)
		return emu_error("the region does not fit below 2^64");
	return 0;
}

/* The region's memory: FILE, made and sized; or a file nobody else sees. */
static int memory_open(struct emu *emu, const char *path)
{
	char tmpl[] = "/dev/shm/" EMU_NAME ".XXXXXX";
	const char *name = path ? path : tmpl;
	struct stat st;
	int fd;

	fd = path ? open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600) :
		    mkostemp(tmpl, O_CLOEXEC);
	if (fd < 0)
		return emu_error("cannot open memory '%s': %s", name,
			     strerror(errno));
	if (!path)
		(void) unlink(tmpl);
	emu->memfd = fd;
	if (fstat(fd, &st) < 0)
		return emu_error("cannot open memory '%s': %s", name,
			     strerror(errno));
	if ((uint64_t)st.st_size < emu->size &&
	    ftruncate(fd, (off_t)emu->size) < 0)
		return emu_error("cannot size memory '%s': %s", name,
			     strerror(errno));
	return 0;
}

static int emu_init(struct emu *emu)
{
	pthread_condattr_t attr;

	emu->memfd = -1;
	clock_gettime(CLOCK_REALTIME, &emu->start);
	pthread_mutex_init(&emu->lock, NULL);
	if (pthread_condattr_init(&attr) ||
	    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) ||
	    pthread_cond_init(&emu->trace_cond, &attr))
		return emu_error("cannot make a condition variable");
	pthread_condattr_destroy(&attr);
	tree_init(emu);
	attrs_static(emu);
	trace_init(emu);
	region_reset(emu);
	return 0;
}

static void emu_done(struct emu *emu)
{
	model_free(emu);
	trace_free(emu);
	node_remove(emu, emu->root);
	if (emu->memfd >= 0)
		(void) close(emu->memfd);
	pthread_cond_destroy(&emu->trace_cond);
	pthread_mutex_destroy(&emu->lock);
}

static int serve(struct fuse_session *se, const struct fuse_cmdline_opts *cmd)
{
	struct fuse_loop_config *cfg;
	int rc;

	if (cmd->singlethread)
		return fuse_session_loop(se);
	cfg = fuse_loop_cfg_create();
	if (!cfg)
		return -ENOMEM;
	fuse_loop_cfg_set_clone_fd(cfg, cmd->clone_fd);
	fuse_loop_cfg_set_max_threads(cfg, cmd->max_threads);
	rc = fuse_session_loop_mt(se, cfg);
	fuse_loop_cfg_destroy(cfg);
	return rc;
}

static int run(struct emu *emu, const struct fuse_cmdline_opts *cmd)
{
	int rc = 1;

	if (fuse_set_signal_handlers(emu->se) < 0)
		return 1;
	if (fuse_session_mount(emu->se, cmd->mountpoint) < 0)
		goto out_signals;
	if (fuse_daemonize(cmd->foreground) < 0)
		goto out_unmount;
	/* A positive return is the signal that ended the loop: a clean exit. */
	rc = serve(emu->se, cmd) < 0 ? 1 : 0;
out_unmount:
	fuse_session_unmount(emu->se);
out_signals:
	fuse_remove_signal_handlers(emu->se);
	return rc;
}

static int parse_args(struct fuse_args *args, struct emu_opts *opts,
		      struct fuse_cmdline_opts *cmd)
{
	if (fuse_opt_parse(args, opts, opt_spec, NULL) < 0)
		return -1;
	if (opts->show_help)
		return 0;
	if (fuse_parse_cmdline(args, cmd) < 0)
		return -1;
	if (!cmd->mountpoint)
		return emu_error("missing mountpoint (see '" EMU_NAME " --help')");
	return fuse_opt_add_arg(args, "-ofsname=" EMU_NAME
				",subtype=" EMU_NAME);
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts cmd = { 0 };
	struct emu_opts opts = { 0 };
	struct emu emu = { 0 };
	int rc = 1;

	if (parse_args(&args, &opts, &cmd) < 0)
		goto out;
	if (opts.show_help) {
		usage();
		rc = 0;
		goto out;
	}
	if (configure(&emu, &opts) < 0)
		goto out;
	emu.se = fuse_session_new(&args, &emu_ops, sizeof(emu_ops), &emu);
	if (!emu.se)
		goto out;
	if (emu_init(&emu) < 0)
		goto out_session;
	if (memory_open(&emu, opts.memory) == 0)
		rc = run(&emu, &cmd);
	emu_done(&emu);
out_session:
	fuse_session_destroy(emu.se);
out:
	free(cmd.mountpoint);
	free(opts.abi);
	free(opts.size);
	free(opts.base);
	free(opts.dpa);
	free(opts.memory);
	fuse_opt_free_args(&args);
	return rc;
}
