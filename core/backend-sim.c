// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * DOC: sim backend - the host side of the simulated device
 *
 * A thin adapter from the backend ops to simdev-host.c.  The default device
 * is created here on first use, so "dcdfs MOUNTPOINT" works on a fresh
 * machine.  The attribute store defaults to a file in the device directory,
 * one per host and region, so it goes with the device.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <dcdfs/libdcdfs.h>

#include "backend.h"
#include "private.h"
#include "simdev.h"

struct sim_backend {
	struct dcdfs_backend be;	/* first: the ops get this pointer */
	struct dcdfs_simdev *dev;
	char *state_path;
};

static struct sim_backend *to_sim(struct dcdfs_backend *be)
{
	return (struct sim_backend *)be;
}

static void sim_close(struct dcdfs_backend *be)
{
	struct sim_backend *sb = to_sim(be);

	dcdfs_simdev_close(sb->dev);
	dcdfs_unref(be->ctx);
	free(sb->state_path);
	free(sb);
}

static void sim_info(struct dcdfs_backend *be, struct backend_info *ret)
{
	struct dcdfs_simdev *dev = to_sim(be)->dev;

	ret->capacity = dev->regions[dev->region].size;
	ret->block_size = dev->block_size;
	ret->numa_node = dev->numa_node;
	ret->state_path = to_sim(be)->state_path;
	/* The doorbell wakes the host; this only catches a bell lost to a crash. */
	ret->poll_ms = 1000;
	ret->host_releases = true;
	ret->keep_idle_maps = true;
}

static int sim_event_fd(struct dcdfs_backend *be)
{
	return simdev_host_event_fd(to_sim(be)->dev);
}

static void sim_event_drain(struct dcdfs_backend *be)
{
	simdev_host_event_drain(to_sim(be)->dev);
}

static int sim_extents(struct dcdfs_backend *be, struct dcdfs_extent **ret,
		       size_t *ret_nr)
{
	return simdev_host_extents(to_sim(be)->dev, ret, ret_nr);
}

static int sim_events(struct dcdfs_backend *be, bool all,
		      struct backend_event **ret, size_t *ret_nr)
{
	return simdev_host_events(to_sim(be)->dev, all, ret, ret_nr);
}

static int sim_accept(struct dcdfs_backend *be, uint64_t event,
		      const struct dcdfs_extent *accepted, size_t nr)
{
	return simdev_host_accept(to_sim(be)->dev, event, accepted, nr);
}

static int sim_refuse(struct dcdfs_backend *be, uint64_t event)
{
	return simdev_host_refuse(to_sim(be)->dev, event);
}

static int sim_ack(struct dcdfs_backend *be, uint64_t event)
{
	return simdev_host_ack(to_sim(be)->dev, event);
}

static int sim_release(struct dcdfs_backend *be,
		       const struct dcdfs_extent *extents, size_t nr)
{
	return simdev_host_release(to_sim(be)->dev, extents, nr);
}

/*
 * One memory file per extent: the daemon's own (@client false), or fresh
 * descriptors for a client, read-only unless @writable.
 */
static int mem_segs(struct dcdfs_backend *be,
		    const struct dcdfs_extent *extents, size_t nr, bool client,
		    bool writable, struct memmap_seg *segs, size_t *ret_nr)
{
	struct dcdfs_simdev *dev = to_sim(be)->dev;

	for (size_t i = 0; i < nr; i++) {
		int fd = client ? simdev_mem_reopen(dev, &extents[i], writable) :
				  simdev_mem_open(dev, &extents[i]);

		if (fd < 0) {
			while (i-- > 0)
				(void) close(segs[i].fd);
			return fd;
		}
		segs[i] = (struct memmap_seg){ fd, 0, extents[i].length };
	}
	*ret_nr = nr;
	return 0;
}

static int sim_mem_open(struct dcdfs_backend *be,
			const struct dcdfs_extent *extents, size_t nr,
			struct memmap_seg *segs, size_t *ret_nr)
{
	return mem_segs(be, extents, nr, false, true, segs, ret_nr);
}

static int sim_mem_fds(struct dcdfs_backend *be,
		       const struct dcdfs_extent *extents, size_t nr,
		       bool writable, struct memmap_seg *segs, size_t *ret_nr)
{
	return mem_segs(be, extents, nr, true, writable, segs, ret_nr);
}

static const struct dcdfs_backend_ops sim_ops = {
	.name = "sim",
	.close = sim_close,
	.get_info = sim_info,
	.event_fd = sim_event_fd,
	.event_drain = sim_event_drain,
	.extents = sim_extents,
	.events = sim_events,
	.accept = sim_accept,
	.refuse = sim_refuse,
	.ack = sim_ack,
	.release = sim_release,
	.mem_open = sim_mem_open,
	.mem_fds = sim_mem_fds,
};

/* The default device is created on first use; a named one must exist. */
static int open_device(struct dcdfs_ctx *ctx, const char *device,
		       struct dcdfs_simdev **ret)
{
	struct dcdfs_simdev_config cfg = {
		.size = DCDFS_SIMDEV_DEFAULT_SIZE,
		.numa_node = -1,
	};
	char *path = device ? strdup(device) : dcdfs_simdev_default_path();
	int rc;

	if (!path)
		return -ENOMEM;
	rc = dcdfs_simdev_open(ctx, path, ret);
	if (rc == -ENOENT && !device) {
		rc = dcdfs_simdev_create(ctx, path, &cfg, ret);
		if (rc == -EEXIST)	/* another host created it first */
			rc = dcdfs_simdev_open(ctx, path, ret);
		if (!rc)
			info(ctx, "created the default device '%s'\n", path);
	}
	free(path);
	return rc;
}

int backend_sim_open(struct dcdfs_ctx *ctx,
		     const struct dcdfs_host_config *cfg,
		     struct dcdfs_backend **ret)
{
	struct sim_backend *sb = calloc(1, sizeof(*sb));
	int rc;

	if (!sb)
		return -ENOMEM;
	sb->be.ops = &sim_ops;
	sb->be.ctx = dcdfs_ref(ctx);
	rc = open_device(ctx, cfg->device, &sb->dev);
	if (!rc)
		rc = simdev_host_attach(sb->dev, cfg->host, cfg->region);
	if (!rc && asprintf(&sb->state_path, "%s/host-%u-region-%u.db",
			    sb->dev->path, cfg->host, cfg->region) < 0) {
		sb->state_path = NULL;
		rc = -ENOMEM;
	}
	if (rc < 0) {
		sim_close(&sb->be);
		return rc;
	}
	*ret = &sb->be;
	return 0;
}
