// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * DOC: the attributes, and the directories of each object
 *
 * Each attribute prints what the kernel's show prints, in its format: the
 * CXL side in %#llx, the DAX side (sizes, align, ids) in decimal, as
 * drivers/dax/bus.c does, resources in %#llx, tags as %pUb.  Stores get the
 * value with one trailing newline taken off and return 0 or -errno, which
 * becomes the write's error.  Everything here runs under emu->lock.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "emu.h"

static int __attribute__((format(printf, 3, 4)))
emit(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EIO;
	return (size_t)n < size ? n : (int)size - 1;
}

static int emit_tag(char *buf, size_t size, const uuid_t tag)
{
	char s[37];

	uuid_unparse_lower(tag, s);
	return emit(buf, size, "%s\n", s);
}

/* ------------------------------------------------------------------------ */
/* CXL: region, decoder, memdev                                             */
/* ------------------------------------------------------------------------ */

static int show_mode(struct emu *emu, struct node *node, char *buf,
		     size_t size)
{
	(void) node;
	return emit(buf, size, "%s\n", emu->abi->mode);
}

static int show_region_resource(struct emu *emu, struct node *node, char *buf,
				size_t size)
{
	(void) node;
	return emit(buf, size, "%#llx\n", (unsigned long long)emu->base);
}

/* The region's size, and the DC partition's (the region fills it). */
static int show_region_size(struct emu *emu, struct node *node, char *buf,
			    size_t size)
{
	(void) node;
	return emit(buf, size, "%#llx\n", (unsigned long long)emu->size);
}

static int show_target0(struct emu *emu, struct node *node, char *buf,
			size_t size)
{
	(void) emu;
	(void) node;
	return emit(buf, size, "decoder2.0\n");
}

static int show_dpa_resource(struct emu *emu, struct node *node, char *buf,
			     size_t size)
{
	(void) node;
	return emit(buf, size, "%#llx\n", (unsigned long long)emu->dpa);
}

static const struct attr_ops mode_ops = { .show = show_mode };
static const struct attr_ops region_resource_ops = {
	.show = show_region_resource,
};
static const struct attr_ops region_size_ops = { .show = show_region_size };
static const struct attr_ops target0_ops = { .show = show_target0 };
static const struct attr_ops dpa_resource_ops = { .show = show_dpa_resource };

/* ------------------------------------------------------------------------ */
/* Extents                                                                  */
/* ------------------------------------------------------------------------ */

static int show_ext_offset(struct emu *emu, struct node *node, char *buf,
			   size_t size)
{
	const struct extent *ext = node->obj;

	(void) emu;
	return emit(buf, size, "%#llx\n", (unsigned long long)ext->off);
}

static int show_ext_length(struct emu *emu, struct node *node, char *buf,
			   size_t size)
{
	const struct extent *ext = node->obj;

	(void) emu;
	return emit(buf, size, "%#llx\n", (unsigned long long)ext->len);
}

static int show_ext_tag(struct emu *emu, struct node *node, char *buf,
			size_t size)
{
	const struct extent *ext = node->obj;

	(void) emu;
	return emit_tag(buf, size, ext->tag);
}

static const struct attr_ops ext_offset_ops = { .show = show_ext_offset };
static const struct attr_ops ext_length_ops = { .show = show_ext_length };
static const struct attr_ops ext_tag_ops = { .show = show_ext_tag };

/* ------------------------------------------------------------------------ */
/* dax_region                                                               */
/* ------------------------------------------------------------------------ */

static int show_available(struct emu *emu, struct node *node, char *buf,
			  size_t size)
{
	(void) node;
	return emit(buf, size, "%llu\n",
		    (unsigned long long)region_available(emu));
}

static int show_dr_size(struct emu *emu, struct node *node, char *buf,
			size_t size)
{
	(void) node;
	return emit(buf, size, "%llu\n", (unsigned long long)emu->size);
}

static int show_align(struct emu *emu, struct node *node, char *buf,
		      size_t size)
{
	(void) emu;
	(void) node;
	return emit(buf, size, "%llu\n", EMU_ALIGN);
}

static int show_dev_name(struct emu *emu, const struct daxdev *dev,
			 char *buf, size_t size)
{
	char name[32] = "";

	if (dev)
		dev_name(emu, dev, name, sizeof(name));
	return emit(buf, size, "%s\n", name);
}

static int show_seed(struct emu *emu, struct node *node, char *buf,
		     size_t size)
{
	(void) node;
	return show_dev_name(emu, emu->seed, buf, size);
}

static int show_create(struct emu *emu, struct node *node, char *buf,
		       size_t size)
{
	(void) node;
	return show_dev_name(emu, emu->youngest, buf, size);
}

static int store_create(struct emu *emu, struct node *node, const char *val)
{
	uint64_t v;

	(void) node;
	if (parse_u64(val, &v) < 0 || v != 1)
		return -EINVAL;
	return region_create_dev(emu);
}

static int store_delete(struct emu *emu, struct node *node, const char *val)
{
	(void) node;
	return dev_delete(emu, val);
}

static int show_region_id(struct emu *emu, struct node *node, char *buf,
			  size_t size)
{
	(void) node;
	return emit(buf, size, "%u\n", emu->region);
}

static const struct attr_ops available_ops = { .show = show_available };
static const struct attr_ops dr_size_ops = { .show = show_dr_size };
static const struct attr_ops align_ops = { .show = show_align };
static const struct attr_ops seed_ops = { .show = show_seed };
static const struct attr_ops create_ops = {
	.show = show_create,
	.store = store_create,
};
static const struct attr_ops delete_ops = { .store = store_delete };
static const struct attr_ops region_id_ops = { .show = show_region_id };

/* ------------------------------------------------------------------------ */
/* DAX devices and device_dax                                               */
/* ------------------------------------------------------------------------ */

static int show_dev_size(struct emu *emu, struct node *node, char *buf,
			 size_t size)
{
	(void) emu;
	return emit(buf, size, "%llu\n",
		    (unsigned long long)dev_size(node->obj));
}

static int store_dev_size(struct emu *emu, struct node *node, const char *val)
{
	uint64_t v;
	int rc;

	rc = parse_u64(val, &v);
	if (rc < 0)
		return rc;
	return dev_resize(emu, node->obj, v);
}

/* The HPA of the first range; the region's while there is none. */
static int show_dev_resource(struct emu *emu, struct node *node, char *buf,
			     size_t size)
{
	const struct daxdev *dev = node->obj;
	uint64_t start = emu->base;

	if (dev->nr_ranges)
		start += dev->ranges[0].off;
	return emit(buf, size, "%#llx\n", (unsigned long long)start);
}

static int show_zero(struct emu *emu, struct node *node, char *buf,
		     size_t size)
{
	(void) emu;
	(void) node;
	return emit(buf, size, "0\n");
}

static int show_dev_uuid(struct emu *emu, struct node *node, char *buf,
			 size_t size)
{
	const struct daxdev *dev = node->obj;

	(void) emu;
	return emit_tag(buf, size, dev->tag);
}

static int store_dev_uuid(struct emu *emu, struct node *node, const char *val)
{
	uuid_t tag;

	if (parse_tag(val, tag) < 0)
		return -EINVAL;
	return dev_claim_tag(emu, node->obj, tag);
}

static int store_bind(struct emu *emu, struct node *node, const char *val)
{
	(void) node;
	return dev_bind(emu, val);
}

static int store_unbind(struct emu *emu, struct node *node, const char *val)
{
	(void) node;
	return dev_unbind(emu, val);
}

static const struct attr_ops dev_size_ops = {
	.show = show_dev_size,
	.store = store_dev_size,
};
static const struct attr_ops dev_resource_ops = { .show = show_dev_resource };
static const struct attr_ops zero_ops = { .show = show_zero };
static const struct attr_ops dev_uuid_ops = {
	.show = show_dev_uuid,
	.store = store_dev_uuid,
};
static const struct attr_ops bind_ops = { .store = store_bind };
static const struct attr_ops unbind_ops = { .store = store_unbind };

/* ------------------------------------------------------------------------ */
/* Tracing and ctl                                                          */
/* ------------------------------------------------------------------------ */

static int show_enable(struct emu *emu, struct node *node, char *buf,
		       size_t size)
{
	const struct trace_inst *inst = node->obj;

	(void) emu;
	return emit(buf, size, "%d\n", inst->enabled);
}

static int store_enable(struct emu *emu, struct node *node, const char *val)
{
	struct trace_inst *inst = node->obj;
	uint64_t v;

	(void) emu;
	if (parse_u64(val, &v) < 0 || v > 1)
		return -EINVAL;
	inst->enabled = v;
	return 0;
}

static int store_ctl(struct emu *emu, struct node *node, const char *val)
{
	(void) node;
	return ctl_command(emu, val);
}

static const struct attr_ops enable_ops = {
	.show = show_enable,
	.store = store_enable,
};
static const struct attr_ops ctl_ops = { .store = store_ctl };

/* ------------------------------------------------------------------------ */
/* Directories                                                              */
/* ------------------------------------------------------------------------ */

struct attr_def {
	const char *name;
	mode_t perm;
	const struct attr_ops *ops;
};

static void add_attrs(struct emu *emu, struct node *dir,
		      const struct attr_def *defs, size_t n, void *obj)
{
	for (size_t i = 0; i < n; i++)
		node_attr(emu, dir, defs[i].name, defs[i].perm, defs[i].ops,
			  obj);
}

static const struct attr_def region_attrs[] = {
	{ "mode", 0444, &mode_ops },
	{ "resource", 0444, &region_resource_ops },
	{ "size", 0444, &region_size_ops },
	{ "target0", 0444, &target0_ops },
};

static const struct attr_def decoder_attrs[] = {
	{ "dpa_resource", 0444, &dpa_resource_ops },
	{ "mode", 0444, &mode_ops },
};

static const struct attr_def dax_region_attrs[] = {
	{ "available_size", 0444, &available_ops },
	{ "size", 0444, &dr_size_ops },
	{ "align", 0400, &align_ops },
	{ "seed", 0444, &seed_ops },
	{ "create", 0644, &create_ops },
	{ "delete", 0200, &delete_ops },
	{ "id", 0444, &region_id_ops },
};

static const struct attr_def driver_attrs[] = {
	{ "bind", 0200, &bind_ops },
	{ "unbind", 0200, &unbind_ops },
};

static const struct attr_def dev_attrs[] = {
	{ "size", 0644, &dev_size_ops },
	{ "resource", 0400, &dev_resource_ops },
	{ "align", 0444, &align_ops },
	{ "target_node", 0444, &zero_ops },
	{ "numa_node", 0444, &zero_ops },
};

#define ADD_ATTRS(emu, dir, defs, obj) \
	add_attrs(emu, dir, defs, sizeof(defs) / sizeof((defs)[0]), obj)

/* What never goes away: the region, its decoder, memdev and DAX region. */
void attrs_static(struct emu *emu)
{
	char path[128];
	struct node *dir;

	snprintf(path, sizeof(path), "bus/cxl/devices/region%u", emu->region);
	ADD_ATTRS(emu, node_path(emu, path), region_attrs, NULL);
	ADD_ATTRS(emu, node_path(emu, "bus/cxl/devices/decoder2.0"),
		  decoder_attrs, NULL);
	snprintf(path, sizeof(path), "bus/cxl/devices/mem0/%s",
		 emu->abi->partition);
	node_attr(emu, node_path(emu, path), "size", 0444, &region_size_ops,
		  NULL);
	snprintf(path, sizeof(path), "bus/cxl/devices/dax_region%u",
		 emu->region);
	emu->dax_dir = node_path(emu, path);
	dir = node_dir(emu, emu->dax_dir, "dax_region");
	ADD_ATTRS(emu, dir, dax_region_attrs, NULL);
	ADD_ATTRS(emu, node_path(emu, "bus/dax/drivers/device_dax"),
		  driver_attrs, NULL);
	emu->dev_dir = node_path(emu, "dev");
	node_attr(emu, emu->root, "ctl", 0200, &ctl_ops, NULL);
}

/* trace_pipe and the event's enable, for the top directory or an instance. */
void attrs_trace(struct emu *emu, struct node *dir, struct trace_inst *inst)
{
	struct node *pipe, *events;

	pipe = node_new(emu, dir, "trace_pipe", NODE_PIPE, 0444);
	pipe->obj = inst;
	events = node_dir(emu, node_dir(emu, node_dir(emu, dir, "events"),
					"cxl"), "cxl_dynamic_capacity");
	node_attr(emu, events, "enable", 0644, &enable_ops, inst);
}

void attrs_extent(struct emu *emu, struct extent *ext)
{
	char name[48];

	snprintf(name, sizeof(name), "extent%u.%u", emu->region, ext->id);
	ext->dir = node_dir(emu, emu->dax_dir, name);
	node_attr(emu, ext->dir, "offset", 0444, &ext_offset_ops, ext);
	node_attr(emu, ext->dir, "length", 0444, &ext_length_ops, ext);
	if (!uuid_is_null(ext->tag))
		node_attr(emu, ext->dir, emu->abi->tag_attr, 0444,
			  &ext_tag_ops, ext);
}

void attrs_dev(struct emu *emu, struct daxdev *dev)
{
	char name[32];

	dev_name(emu, dev, name, sizeof(name));
	dev->dir = node_dir(emu, emu->dax_dir, name);
	ADD_ATTRS(emu, dev->dir, dev_attrs, dev);
	if (emu->abi->tags)
		node_attr(emu, dev->dir, "uuid", 0644, &dev_uuid_ops, dev);
}

void attrs_dev_file(struct emu *emu, struct daxdev *dev)
{
	char name[32];

	dev_name(emu, dev, name, sizeof(name));
	dev->file = node_new(emu, emu->dev_dir, name, NODE_DEV, 0600);
	dev->file->obj = dev;
}
