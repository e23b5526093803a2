// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * DOC: dcdctl - the fabric manager of a simulated Dynamic Capacity Device
 *
 * One subcommand per FM operation.  Every bad argument gets one line on
 * stderr and a non-zero exit, and changes nothing: arguments are all parsed
 * and checked before the device is touched, and each device change is a
 * single transaction in libdcdfs.
 *
 * Progress: on a terminal (stderr is a tty), posting a chain and waiting
 * for the host's answer show one status line on stderr, rewritten in
 * place and erased when done; elsewhere (scripts, logs) nothing extra.
 *
 * Exit status: 0 done; 1 failed; 2 bad usage; with --wait, 3 when the host
 * answered but did not take everything (add chain partly or wholly dropped,
 * release refused and left pending) and 4 when it did not answer in time.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <dcdfs/libdcdfs.h>

#include "config.h"

enum {
	EXIT_USAGE = 2,
	EXIT_PARTIAL = 3,
	EXIT_TIMEOUT = 4,
};

#define DEFAULT_WAIT_S 10

/* "dcdctl" or "dcdctl SUBCOMMAND": the prefix of every error line. */
static const char *cmd_name = "dcdctl";
static char cmd_name_buf[32];

static void __attribute__((format(printf, 1, 2))) fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", cmd_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int __attribute__((format(printf, 1, 2)))
usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", cmd_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see '%s --help')\n", cmd_name);
	return EXIT_USAGE;
}

static void __attribute__((format(printf, 6, 0)))
log_to_stderr(struct dcdfs_ctx *ctx, int priority,
			  const char *file, int line, const char *fn,
			  const char *format, va_list args)
{
	(void) ctx;
	(void) priority;
	(void) file;
	(void) line;
	(void) fn;
	fprintf(stderr, "%s: ", cmd_name);
	vfprintf(stderr, format, args);
}

/* ------------------------------------------------------------------------ */
/* Options                                                                  */
/* ------------------------------------------------------------------------ */

struct opts {
	const char *device;
	unsigned int host;
	unsigned int region;
	bool has_tag;
	uint8_t tag[DCDFS_TAG_SIZE];
	bool forced;
	bool json;
	int wait_s;		/* -1: do not wait */
	int list_host;		/* -1: all */
	struct dcdfs_simdev_config cfg;
	bool has_size;
};

static int parse_uint(const char *arg, unsigned int max, unsigned int *ret)
{
	unsigned long v;
	char *end;

	if (!arg || arg[0] < '0' || arg[0] > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(arg, &end, 10);
	if (errno || *end || v > max)
		return -ERANGE;
	*ret = (unsigned int)v;
	return 0;
}

enum {
	OPT_REGIONS = 256,
	OPT_BLOCK_SIZE,
	OPT_MEMORY,
	OPT_NUMA_NODE,
	OPT_FORCED,
	OPT_JSON,
	OPT_WAIT,
};

static const struct option long_options[] = {
	{ "device", required_argument, NULL, 'd' },
	{ "host", required_argument, NULL, 'H' },
	{ "region", required_argument, NULL, 'r' },
	{ "tag", required_argument, NULL, 't' },
	{ "size", required_argument, NULL, 's' },
	{ "regions", required_argument, NULL, OPT_REGIONS },
	{ "block-size", required_argument, NULL, OPT_BLOCK_SIZE },
	{ "memory", required_argument, NULL, OPT_MEMORY },
	{ "numa-node", required_argument, NULL, OPT_NUMA_NODE },
	{ "forced", no_argument, NULL, OPT_FORCED },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "wait", optional_argument, NULL, OPT_WAIT },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* Which options each subcommand takes, by their short or enum code. */
struct subcommand {
	const char *name;
	int (*fn)(struct dcdfs_ctx *ctx, struct opts *o, int argc,
		  char **argv);
	const int *allowed;
	const char *usage;
};

static int set_option(struct opts *o, int c, const char *arg)
{
	unsigned int v;
	int rc;

	switch (c) {
	case 'd':
		o->device = arg;
		return 0;
	case 'H':
		if (parse_uint(arg, DCDFS_SIMDEV_MAX_HOST, &o->host) < 0)
			return usage_error("bad host id '%s'", arg);
		o->list_host = (int)o->host;
		return 0;
	case 'r':
		if (parse_uint(arg, DCDFS_SIMDEV_MAX_REGIONS - 1, &o->region))
			return usage_error("bad region '%s' (0-7)", arg);
		return 0;
	case 't':
		if (dcdfs_parse_tag(arg, o->tag) < 0)
			return usage_error("bad tag '%s': expected a non-null"
					   " UUID", arg);
		o->has_tag = true;
		return 0;
	case 's':
		rc = dcdfs_parse_size(arg, &o->cfg.size);
		if (rc < 0 || !o->cfg.size)
			return usage_error("bad size '%s'", arg);
		o->has_size = true;
		return 0;
	case OPT_REGIONS:
		if (parse_uint(arg, DCDFS_SIMDEV_MAX_REGIONS, &v) < 0 || !v)
			return usage_error("bad number of regions '%s' (1-8)",
					   arg);
		o->cfg.nr_regions = v;
		return 0;
	case OPT_BLOCK_SIZE:
		if (dcdfs_parse_size(arg, &o->cfg.block_size) < 0 ||
		    !o->cfg.block_size)
			return usage_error("bad block size '%s'", arg);
		return 0;
	case OPT_MEMORY:
		o->cfg.memory = arg;
		return 0;
	case OPT_NUMA_NODE:
		if (parse_uint(arg, INT_MAX, &v) < 0)
			return usage_error("bad NUMA node '%s'", arg);
		o->cfg.numa_node = (int)v;
		return 0;
	case OPT_FORCED:
		o->forced = true;
		return 0;
	case OPT_JSON:
		o->json = true;
		return 0;
	case OPT_WAIT:
		o->wait_s = DEFAULT_WAIT_S;
		if (arg && (parse_uint(arg, INT_MAX / 1000, &v) < 0))
			return usage_error("bad --wait time '%s' (seconds)",
					   arg);
		if (arg)
			o->wait_s = (int)v;
		return 0;
	}
	return EXIT_USAGE;
}

static bool allowed(const struct subcommand *sc, int c)
{
	for (const int *a = sc->allowed; *a; a++)
		if (*a == c)
			return true;
	return false;
}

/* The long name of option @c (argv may hold its value, not its name). */
static const char *option_name(int c)
{
	for (const struct option *lo = long_options; lo->name; lo++)
		if (lo->val == c)
			return lo->name;
	return "?";
}

static int parse_options(const struct subcommand *sc, struct opts *o,
			 int argc, char **argv, bool *ret_help)
{
	int c, rc;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":d:H:r:t:s:h", long_options,
				NULL)) != -1) {
		if (c == 'h') {
			*ret_help = true;
			return 0;
		}
		if (c == '?')
			return usage_error("unknown option '%s'",
					   argv[optind - 1]);
		if (c == ':')
			return usage_error("option '%s' needs a value",
					   argv[optind - 1]);
		if (!allowed(sc, c))
			return usage_error("option '--%s' does not apply here",
					   option_name(c));
		rc = set_option(o, c, optarg);
		if (rc)
			return rc;
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Subcommands                                                              */
/* ------------------------------------------------------------------------ */

static char *device_path(struct opts *o)
{
	return o->device ? strdup(o->device) : dcdfs_simdev_default_path();
}

static int open_device(struct dcdfs_ctx *ctx, struct opts *o,
		       struct dcdfs_simdev **ret)
{
	char *path = device_path(o);
	int rc;

	if (!path) {
		fail("out of memory");
		return EXIT_FAILURE;
	}
	rc = dcdfs_simdev_open(ctx, path, ret);
	if (rc < 0)
		fail("%s", dcdfs_strerror(rc));
	free(path);
	return rc < 0 ? EXIT_FAILURE : 0;
}

static int cmd_create(struct dcdfs_ctx *ctx, struct opts *o, int argc,
		      char **argv)
{
	char size[DCDFS_SIZE_STR_LEN], block[DCDFS_SIZE_STR_LEN];
	struct dcdfs_simdev *dev;
	char *path;
	int rc;

	(void) argv;
	if (argc)
		return usage_error("unexpected argument '%s'", argv[0]);
	if (!o->has_size)
		return usage_error("%s needs --size", "create");
	path = device_path(o);
	if (!path) {
		fail("out of memory");
		return EXIT_FAILURE;
	}
	rc = dcdfs_simdev_create(ctx, path, &o->cfg, &dev);
	if (rc < 0) {
		fail("cannot create '%s': %s", path, dcdfs_strerror(rc));
		free(path);
		return EXIT_FAILURE;
	}
	printf("created device %s: %s in %u region(s), blocks of %s\n",
	       dcdfs_simdev_get_path(dev),
	       dcdfs_format_size(dcdfs_simdev_get_size(dev), size),
	       dcdfs_simdev_get_nr_regions(dev),
	       dcdfs_format_size(dcdfs_simdev_get_block_size(dev), block));
	dcdfs_simdev_close(dev);
	free(path);
	return 0;
}

static int parse_extents(int argc, char **argv, bool allow_seq,
			 struct dcdfs_extent **ret)
{
	struct dcdfs_extent *v = calloc((size_t)argc + 1, sizeof(*v));

	if (!v) {
		fail("out of memory");
		return EXIT_FAILURE;
	}
	for (int i = 0; i < argc; i++) {
		int rc = dcdfs_parse_extent(argv[i], allow_seq, &v[i]);

		if (rc < 0) {
			free(v);
			return usage_error("%s", dcdfs_strerror(rc));
		}
	}
	*ret = v;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Progress on a terminal                                                   */
/* ------------------------------------------------------------------------ */

#define PROGRESS_TICK_MS 200

static bool progress_on(void)
{
	return isatty(STDERR_FILENO);
}

static void __attribute__((format(printf, 1, 2))) progress(const char *fmt,
							     ...)
{
	va_list ap;

	if (!progress_on())
		return;
	fprintf(stderr, "\r\033[K%s: ", cmd_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fflush(stderr);
}

static void progress_done(void)
{
	if (progress_on())
		fputs("\r\033[K", stderr);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * dcdfs_simdev_wait_event(), in ticks on a terminal so that the status
 * line shows the time waited; in one call otherwise.
 */
static int wait_with_progress(struct dcdfs_simdev *dev, const struct opts *o,
			      uint64_t id, struct dcdfs_event_info *ev)
{
	int64_t start = now_ms(), left;
	int rc;

	if (!progress_on())
		return dcdfs_simdev_wait_event(dev, id, o->wait_s * 1000, ev);
	for (;;) {
		left = start + (int64_t)o->wait_s * 1000 - now_ms();
		rc = dcdfs_simdev_wait_event(dev, id, left < PROGRESS_TICK_MS ?
					     (int)(left > 0 ? left : 0) :
					     PROGRESS_TICK_MS, ev);
		if (rc != -ETIMEDOUT || left <= PROGRESS_TICK_MS)
			break;
		progress("waiting for host %u to answer event %" PRIu64
			 " (%" PRId64 " of %d s)", o->host, id,
			 (now_ms() - start) / 1000, o->wait_s);
	}
	progress_done();
	return rc;
}

static int report_wait(struct dcdfs_simdev *dev, const struct opts *o,
		       uint64_t id)
{
	struct dcdfs_event_info ev;
	int rc;

	rc = wait_with_progress(dev, o, id, &ev);
	if (rc == -ETIMEDOUT) {
		printf("host %u did not answer event %" PRIu64 " within %d s;"
		       " it stays pending\n", o->host, id, o->wait_s);
		return EXIT_TIMEOUT;
	}
	if (rc == -ENOENT) {
		printf("host %u answered event %" PRIu64 "\n", o->host, id);
		return 0;
	}
	if (rc < 0) {
		fail("cannot follow event %" PRIu64 ": %s", id,
		     dcdfs_strerror(rc));
		return EXIT_FAILURE;
	}
	if (ev.kind == DCDFS_EVENT_ADD) {
		printf("host %u accepted %u of %u extent(s)\n", o->host,
		       ev.nr_done, ev.nr_extents);
		return ev.nr_done == ev.nr_extents ? 0 : EXIT_PARTIAL;
	}
	if (ev.state == DCDFS_EVENT_REFUSED) {
		printf("host %u refused: the capacity is in use; the release"
		       " stays pending\n", o->host);
		return EXIT_PARTIAL;
	}
	printf("host %u released %u extent(s)\n", o->host, ev.nr_done);
	return 0;
}

static int cmd_add_release(struct dcdfs_ctx *ctx, struct opts *o, int argc,
			   char **argv, bool add)
{
	struct dcdfs_extent *extents = NULL;
	struct dcdfs_fm_request req = {
		.host = o->host,
		.region = o->region,
		.tag = o->has_tag ? o->tag : NULL,
		.forced = o->forced,
		.nr_extents = (size_t)argc,
	};
	struct dcdfs_simdev *dev;
	uint64_t id;
	int rc;

	if (add && !argc)
		return usage_error("%s needs at least one OFFSET:LENGTH", "add");
	if (!add && !argc && !o->has_tag)
		return usage_error("%s needs OFFSET:LENGTH ranges or --tag",
				   "release");
	if (o->forced && o->wait_s >= 0)
		return usage_error("%s: a forced release does not wait for the"
				   " host", "--wait");
	rc = parse_extents(argc, argv, add, &extents);
	if (rc)
		return rc;
	req.extents = extents;
	rc = open_device(ctx, o, &dev);
	if (rc) {
		free(extents);
		return rc;
	}
	progress("posting the %s for host %u", add ? "add" : "release",
		 o->host);
	rc = add ? dcdfs_simdev_fm_add(dev, &req, &id) :
		   dcdfs_simdev_fm_release(dev, &req, &id);
	progress_done();
	free(extents);
	if (rc < 0) {
		fail("%s", dcdfs_strerror(rc));
		dcdfs_simdev_close(dev);
		return EXIT_FAILURE;
	}
	printf("%s event %" PRIu64 " for host %u posted\n",
	       add ? "add" : (o->forced ? "forced release" : "release"), id,
	       o->host);
	rc = o->wait_s >= 0 ? report_wait(dev, o, id) : 0;
	dcdfs_simdev_close(dev);
	return rc;
}

static int cmd_add(struct dcdfs_ctx *ctx, struct opts *o, int argc,
		   char **argv)
{
	return cmd_add_release(ctx, o, argc, argv, true);
}

static int cmd_release(struct dcdfs_ctx *ctx, struct opts *o, int argc,
		       char **argv)
{
	return cmd_add_release(ctx, o, argc, argv, false);
}

static int cmd_destroy(struct dcdfs_ctx *ctx, struct opts *o, int argc,
		       char **argv)
{
	char *path;
	int rc;

	if (argc)
		return usage_error("unexpected argument '%s'", argv[0]);
	path = device_path(o);
	if (!path) {
		fail("out of memory");
		return EXIT_FAILURE;
	}
	rc = dcdfs_simdev_destroy(ctx, path);
	if (rc < 0)
		fail("cannot destroy '%s': %s", path, dcdfs_strerror(rc));
	else
		printf("destroyed device %s\n", path);
	free(path);
	return rc < 0 ? EXIT_FAILURE : 0;
}

static int cmd_check(struct dcdfs_ctx *ctx, struct opts *o, int argc,
		     char **argv)
{
	struct dcdfs_simdev *dev;
	int rc;

	if (argc)
		return usage_error("unexpected argument '%s'", argv[0]);
	rc = open_device(ctx, o, &dev);
	if (rc)
		return rc;
	rc = dcdfs_simdev_check(dev);
	if (rc < 0)
		fail("%s", dcdfs_strerror(rc));
	else
		printf("device %s is consistent\n", dcdfs_simdev_get_path(dev));
	dcdfs_simdev_close(dev);
	return rc < 0 ? EXIT_FAILURE : 0;
}

/* ------------------------------------------------------------------------ */
/* list                                                                     */
/* ------------------------------------------------------------------------ */

static const char *const extent_state_names[] = {
	[DCDFS_EXTENT_PENDING] = "pending-add",
	[DCDFS_EXTENT_HELD] = "held",
	[DCDFS_EXTENT_RELEASE_PENDING] = "release-pending",
};

static const char *const event_kind_names[] = {
	[DCDFS_EVENT_ADD] = "add",
	[DCDFS_EVENT_RELEASE] = "release",
	[DCDFS_EVENT_FORCED_RELEASE] = "forced-release",
};

static const char *const event_state_names[] = {
	[DCDFS_EVENT_NEW] = "new",
	[DCDFS_EVENT_REFUSED] = "refused",
	[DCDFS_EVENT_DONE] = "done",
};

static uint64_t jget_u64(struct json_object *o, const char *key)
{
	return json_object_get_uint64(json_object_object_get(o, key));
}

static const char *jget_str(struct json_object *o, const char *key)
{
	struct json_object *v = json_object_object_get(o, key);

	return v ? json_object_get_string(v) : "-";
}

/*
 * Find or make the entry of @host in the "hosts" array.  The last one used
 * is checked first: extents and events come grouped by host more often than
 * not.  The array is sorted once complete.
 */
static struct json_object *host_entry(struct json_object *hosts,
				      unsigned int host)
{
	size_t n = json_object_array_length(hosts);
	struct json_object *h;

	for (size_t i = n; i-- > 0;) {
		h = json_object_array_get_idx(hosts, i);
		if (jget_u64(h, "host") == host)
			return h;
	}
	h = json_object_new_object();
	json_object_object_add(h, "host", json_object_new_int((int)host));
	json_object_object_add(h, "extents", json_object_new_array());
	json_object_object_add(h, "events", json_object_new_array());
	json_object_array_add(hosts, h);
	return h;
}

static int cmp_host(const void *a, const void *b)
{
	uint64_t x = jget_u64(*(struct json_object *const *)a, "host");
	uint64_t y = jget_u64(*(struct json_object *const *)b, "host");

	return x < y ? -1 : x > y;
}

static void add_tag(struct json_object *obj, bool tagged, const uint8_t *tag)
{
	char buf[DCDFS_TAG_STR_LEN];

	json_object_object_add(obj, "tag", tagged ?
			       json_object_new_string(dcdfs_format_tag(tag, buf)) :
			       NULL);
}

static int list_extent(const struct dcdfs_extent_info *x, void *arg)
{
	struct json_object *o = json_object_new_object();
	struct json_object *h = host_entry(arg, x->host);

	json_object_object_add(o, "region",
			       json_object_new_int((int)x->extent.region));
	json_object_object_add(o, "offset",
			       json_object_new_uint64(x->extent.offset));
	json_object_object_add(o, "length",
			       json_object_new_uint64(x->extent.length));
	add_tag(o, x->extent.tagged, x->extent.tag);
	json_object_object_add(o, "seq", json_object_new_int(x->extent.seq));
	json_object_object_add(o, "state", json_object_new_string(
				       extent_state_names[x->state]));
	if (x->event)
		json_object_object_add(o, "event",
				       json_object_new_uint64(x->event));
	json_object_array_add(json_object_object_get(h, "extents"), o);
	return 0;
}

static int list_event(const struct dcdfs_event_info *e, void *arg)
{
	struct json_object *o = json_object_new_object();
	struct json_object *h = host_entry(arg, e->host);

	json_object_object_add(o, "event", json_object_new_uint64(e->id));
	json_object_object_add(o, "kind",
			       json_object_new_string(event_kind_names[e->kind]));
	json_object_object_add(o, "state", json_object_new_string(
				       event_state_names[e->state]));
	json_object_object_add(o, "region",
			       json_object_new_int((int)e->region));
	add_tag(o, e->tagged, e->tag);
	json_object_object_add(o, "extents",
			       json_object_new_int((int)e->nr_extents));
	json_object_object_add(o, "done", json_object_new_int((int)e->nr_done));
	json_object_array_add(json_object_object_get(h, "events"), o);
	return 0;
}

static int device_json(struct dcdfs_simdev *dev, int host,
		       struct json_object **ret)
{
	struct json_object *root = json_object_new_object();
	struct json_object *regions = json_object_new_array();
	struct json_object *hosts = json_object_new_array();
	int rc = 0;

	json_object_object_add(root, "device", json_object_new_string(
				       dcdfs_simdev_get_path(dev)));
	json_object_object_add(root, "uuid", json_object_new_string(
				       dcdfs_simdev_get_uuid(dev)));
	json_object_object_add(root, "size", json_object_new_uint64(
				       dcdfs_simdev_get_size(dev)));
	json_object_object_add(root, "block_size", json_object_new_uint64(
				       dcdfs_simdev_get_block_size(dev)));
	json_object_object_add(root, "memory", json_object_new_string(
				       dcdfs_simdev_get_memory_path(dev)));
	json_object_object_add(root, "numa_node", json_object_new_int(
				       dcdfs_simdev_get_numa_node(dev)));
	for (unsigned int r = 0; r < dcdfs_simdev_get_nr_regions(dev); r++) {
		struct json_object *o = json_object_new_object();
		uint64_t free_b, held, pending;

		rc = dcdfs_simdev_get_usage(dev, r, &free_b, &held, &pending);
		if (rc < 0) {
			json_object_put(o);
			break;
		}
		json_object_object_add(o, "region", json_object_new_int((int)r));
		json_object_object_add(o, "size", json_object_new_uint64(
					       dcdfs_simdev_get_region_size(dev, r)));
		json_object_object_add(o, "free", json_object_new_uint64(free_b));
		json_object_object_add(o, "held", json_object_new_uint64(held));
		json_object_object_add(o, "pending",
				       json_object_new_uint64(pending));
		json_object_array_add(regions, o);
	}
	json_object_object_add(root, "regions", regions);
	json_object_object_add(root, "hosts", hosts);
	if (host >= 0)
		host_entry(hosts, (unsigned int)host);
	if (!rc)
		rc = dcdfs_simdev_foreach_extent(dev, host, list_extent, hosts);
	if (!rc)
		rc = dcdfs_simdev_foreach_event(dev, host, list_event, hosts);
	if (rc < 0) {
		json_object_put(root);
		return rc;
	}
	json_object_array_sort(hosts, cmp_host);
	*ret = root;
	return 0;
}

static void print_regions(struct json_object *root)
{
	struct json_object *regions = json_object_object_get(root, "regions");
	char a[DCDFS_SIZE_STR_LEN], b[DCDFS_SIZE_STR_LEN];
	char c[DCDFS_SIZE_STR_LEN], d[DCDFS_SIZE_STR_LEN];

	printf("device %s (%s)\n", jget_str(root, "device"),
	       jget_str(root, "uuid"));
	printf("memory %s, blocks of %s\n\n", jget_str(root, "memory"),
	       dcdfs_format_size(jget_u64(root, "block_size"), a));
	printf("%-6s  %-11s  %-11s  %-11s  %-11s\n", "REGION", "SIZE", "FREE",
	       "HELD", "PENDING");
	for (size_t i = 0; i < json_object_array_length(regions); i++) {
		struct json_object *r = json_object_array_get_idx(regions, i);

		printf("%-6" PRIu64 "  %-11s  %-11s  %-11s  %-11s\n",
		       jget_u64(r, "region"),
		       dcdfs_format_size(jget_u64(r, "size"), a),
		       dcdfs_format_size(jget_u64(r, "free"), b),
		       dcdfs_format_size(jget_u64(r, "held"), c),
		       dcdfs_format_size(jget_u64(r, "pending"), d));
	}
}

static void print_host(struct json_object *h)
{
	struct json_object *exts = json_object_object_get(h, "extents");
	struct json_object *evs = json_object_object_get(h, "events");
	char len[DCDFS_SIZE_STR_LEN];
	uint64_t host = jget_u64(h, "host");

	printf("\nhost %" PRIu64 ": %zu extent(s), %zu pending event(s)\n",
	       host, json_object_array_length(exts),
	       json_object_array_length(evs));
	if (json_object_array_length(exts))
		printf("  %-6s  %-18s  %-10s  %-36s  %s\n", "REGION", "OFFSET",
		       "LENGTH", "TAG", "STATE");
	for (size_t i = 0; i < json_object_array_length(exts); i++) {
		struct json_object *x = json_object_array_get_idx(exts, i);

		printf("  %-6" PRIu64 "  0x%016" PRIx64 "  %-10s  %-36s  %s",
		       jget_u64(x, "region"), jget_u64(x, "offset"),
		       dcdfs_format_size(jget_u64(x, "length"), len),
		       jget_str(x, "tag"), jget_str(x, "state"));
		if (json_object_object_get(x, "event"))
			printf(" (event %" PRIu64 ")", jget_u64(x, "event"));
		putchar('\n');
	}
	if (json_object_array_length(evs))
		printf("  %-6s  %-6s  %-14s  %-8s  %s\n", "EVENT", "REGION",
		       "KIND", "STATE", "EXTENTS");
	for (size_t i = 0; i < json_object_array_length(evs); i++) {
		struct json_object *e = json_object_array_get_idx(evs, i);

		printf("  %-6" PRIu64 "  %-6" PRIu64 "  %-14s  %-8s  %" PRIu64
		       "\n", jget_u64(e, "event"), jget_u64(e, "region"),
		       jget_str(e, "kind"), jget_str(e, "state"),
		       jget_u64(e, "extents"));
	}
}

static int cmd_list(struct dcdfs_ctx *ctx, struct opts *o, int argc,
		    char **argv)
{
	struct json_object *root, *hosts;
	struct dcdfs_simdev *dev;
	int rc;

	if (argc)
		return usage_error("unexpected argument '%s'", argv[0]);
	rc = open_device(ctx, o, &dev);
	if (rc)
		return rc;
	rc = device_json(dev, o->list_host, &root);
	dcdfs_simdev_close(dev);
	if (rc < 0) {
		fail("%s", dcdfs_strerror(rc));
		return EXIT_FAILURE;
	}
	if (o->json) {
		puts(json_object_to_json_string_ext(root,
				JSON_C_TO_STRING_PRETTY |
				JSON_C_TO_STRING_NOSLASHESCAPE));
	} else {
		print_regions(root);
		hosts = json_object_object_get(root, "hosts");
		for (size_t i = 0; i < json_object_array_length(hosts); i++)
			print_host(json_object_array_get_idx(hosts, i));
	}
	json_object_put(root);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* main                                                                     */
/* ------------------------------------------------------------------------ */

static const int create_opts[] = { 'd', 's', OPT_REGIONS, OPT_BLOCK_SIZE,
				   OPT_MEMORY, OPT_NUMA_NODE, 0 };
static const int add_opts[] = { 'd', 'H', 'r', 't', OPT_WAIT, 0 };
static const int release_opts[] = { 'd', 'H', 'r', 't', OPT_FORCED, OPT_WAIT,
				    0 };
static const int list_opts[] = { 'd', 'H', OPT_JSON, 0 };
static const int dev_opts[] = { 'd', 0 };

static const struct subcommand subcommands[] = {
	{ "create", cmd_create, create_opts,
	  "create  [-d DEV] --size SIZE [--regions N] [--block-size SIZE]\n"
	  "        [--memory PATH] [--numa-node N]\n"
	  "    Create a device: SIZE of dynamic capacity split evenly into N\n"
	  "    DC regions (1-8, default 1) of SIZE-byte blocks (default 2M).\n"
	  "    --memory names a tmpfs or hugetlbfs directory for the memory.\n"
	  "    --numa-node binds the memory to a NUMA node.\n"
	  "    example: dcdctl create -d /dev/shm/dcd0 --size 16G --regions 2\n"
	  "    example: dcdctl create --size 1G --block-size 4K \\\n"
	  "             --memory /dev/hugepages/dcd0 --numa-node 0\n" },
	{ "add", cmd_add, add_opts,
	  "add     [-d DEV] [--host H] [--region R] [--tag UUID] [--wait[=S]]\n"
	  "        OFFSET:LENGTH[:SEQ]...\n"
	  "    Offer extents to host H (default 0) as one More-chain; with\n"
	  "    --tag they form one allocation.  SEQ is the shared extent\n"
	  "    sequence number.  --wait waits S seconds (default 10) for the\n"
	  "    host's answer.\n"
	  "    example: dcdctl add 0:1G 1G:2M\n"
	  "    example: dcdctl add -d /dev/shm/dcd0 --host 1 --region 1 \\\n"
	  "             --tag 6a1d3c5e-8f0b-4b7a-9f51-0c2e8d4a7b10 \\\n"
	  "             --wait=30 0:2M:0 4M:2M:1\n" },
	{ "release", cmd_release, release_opts,
	  "release [-d DEV] [--host H] [--region R] [--tag UUID] [--forced]\n"
	  "        [--wait[=S]] [OFFSET:LENGTH...]\n"
	  "    Ask host H for capacity back: the extents covering the ranges\n"
	  "    (prescriptive), or with only --tag every extent of that tag.\n"
	  "    --forced takes the memory away at once.\n"
	  "    example: dcdctl release --wait 0:1G\n"
	  "    example: dcdctl release --host 1 --region 1 \\\n"
	  "             --tag 6a1d3c5e-8f0b-4b7a-9f51-0c2e8d4a7b10\n"
	  "    example: dcdctl release -d /dev/shm/dcd0 --forced 0:1G\n" },
	{ "list", cmd_list, list_opts,
	  "list    [-d DEV] [--host H] [--json]\n"
	  "    Show regions, extents per host and pending events.\n"
	  "    example: dcdctl list --json\n"
	  "    example: dcdctl list -d /dev/shm/dcd0 --host 1\n" },
	{ "check", cmd_check, dev_opts,
	  "check   [-d DEV]\n"
	  "    Verify the device's invariants (read-only).\n"
	  "    example: dcdctl check -d /dev/shm/dcd0\n" },
	{ "destroy", cmd_destroy, dev_opts,
	  "destroy [-d DEV]\n"
	  "    Remove the device and its memory; refused while a host is\n"
	  "    attached.\n"
	  "    example: dcdctl destroy -d /dev/shm/dcd0\n" },
};

#define NR_SUBCOMMANDS (sizeof(subcommands) / sizeof(subcommands[0]))

static void print_help(const struct subcommand *only)
{
	if (!only)
		printf("usage: dcdctl COMMAND [OPTIONS]\n\n"
		       "The fabric manager of a simulated CXL Dynamic Capacity"
		       " Device.\n\n");
	else
		printf("usage: dcdctl ");
	for (size_t i = 0; i < NR_SUBCOMMANDS; i++)
		if (!only || only == &subcommands[i])
			printf("%s%s", only ? "" : "  dcdctl ",
			       subcommands[i].usage);
	printf("\nDEV defaults to $DCDFS_DEVICE, then /dev/shm/dcdfs-UID/default."
	       "\nSizes: bytes, 0x hex, or with a K, M, G or T suffix."
	       "\n-d, -H, -r, -t and -s are --device, --host, --region, --tag"
	       " and --size.\n");
	if (!only)
		printf("\n  dcdctl COMMAND --help   the options of one command\n"
		       "  dcdctl --version        the version\n"
		       "On a terminal, add and release --wait show progress"
		       " on stderr.\n");
}

int main(int argc, char **argv)
{
	const struct subcommand *sc = NULL;
	struct opts o = { .wait_s = -1, .list_host = -1,
			  .cfg = { .numa_node = -1 } };
	struct dcdfs_ctx *ctx;
	bool help = false;
	int rc;

	/* "dcdctl -d DEV COMMAND ..." works as well as after the command. */
	while (argc > 2 && (!strcmp(argv[1], "-d") ||
			    !strcmp(argv[1], "--device"))) {
		o.device = argv[2];
		argv[2] = argv[0];
		argv += 2;
		argc -= 2;
	}
	if (argc > 1 && !strncmp(argv[1], "--device=", 9)) {
		o.device = argv[1] + 9;
		argv[1] = argv[0];
		argv++;
		argc--;
	}
	if (argc < 2)
		return usage_error("%s", "missing command");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		print_help(NULL);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("dcdctl %s\n", DCDFS_VERSION);
		return 0;
	}
	for (size_t i = 0; i < NR_SUBCOMMANDS; i++)
		if (!strcmp(argv[1], subcommands[i].name))
			sc = &subcommands[i];
	if (!sc)
		return usage_error(argv[1][0] == '-' ?
				   "expected a command, not '%s'" :
				   "unknown command '%s'", argv[1]);
	snprintf(cmd_name_buf, sizeof(cmd_name_buf), "dcdctl %s", sc->name);
	cmd_name = cmd_name_buf;

	rc = parse_options(sc, &o, argc - 1, argv + 1, &help);
	if (rc)
		return rc;
	if (help) {
		print_help(sc);
		return 0;
	}
	if (dcdfs_new(&ctx) < 0) {
		fail("out of memory");
		return EXIT_FAILURE;
	}
	dcdfs_set_log_fn(ctx, log_to_stderr);
	rc = sc->fn(ctx, &o, argc - 1 - optind, argv + 1 + optind);
	dcdfs_unref(ctx);
	return rc;
}
