/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dcd-kernel-emu: the sysfs of a host running the CXL DCD kernel series,
 * emulated as a FUSE file system (see README.md in this directory).
 *
 * The emulator is one model (region, extents, DAX devices, trace
 * instances) and one tree of nodes the file system serves, both under one
 * mutex, emu->lock.  Model changes create and remove the nodes of the
 * objects they create and remove, so the tree is always what the model
 * says.  Inode numbers are node serials, never reused: an inode the kernel
 * still holds for a node that is gone simply finds nothing.
 *
 * The emulator is a test tool: running out of memory aborts it (xmalloc)
 * rather than unwinding half-made changes.
 */
#ifndef DCD_KERNEL_EMU_H
#define DCD_KERNEL_EMU_H

#define FUSE_USE_VERSION 312

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uuid/uuid.h>

#define EMU_NAME	"dcd-kernel-emu"
#define EMU_ALIGN	0x200000ULL	/* PMD_SIZE: extents and DAX align */
#define ATTR_SIZE	4096		/* what sysfs reports, and the most
					   a show or a store handles */
#define TRACE_MAX	(1u << 20)	/* pending trace text per instance */

/**
 * struct abi_desc - what differs between the versions of the series
 */
struct abi_desc {
	const char *name;	/* v6, v9, v10, v11 */
	const char *mode;	/* regionN/mode and the decoder's mode */
	const char *partition;	/* mem0/<partition>/size */
	const char *tag_attr;	/* the extent's tag attribute */
	const char *part_field;	/* the trace record's partition field */
	bool tags;		/* tagged extents, claims by uuid (v10+) */
	unsigned int seq_base;	/* first sharable sequence number (v10+) */
	unsigned int max_chain;	/* most extents in one chain; 0: no limit */
};

enum node_type {
	NODE_DIR,
	NODE_ATTR,	/* a sysfs attribute, or ctl */
	NODE_DEV,	/* dev/daxN.M: a DAX device's memory */
	NODE_PIPE,	/* trace_pipe */
};

struct emu;
struct node;

/* Both run under emu->lock.  show returns the length; store 0; or -errno. */
struct attr_ops {
	int (*show)(struct emu *emu, struct node *node, char *buf, size_t size);
	int (*store)(struct emu *emu, struct node *node, const char *val);
};

/**
 * struct node - a file or a directory of the tree
 *
 * Protected by emu->lock.  Owned by its parent; node_remove() frees a node
 * and everything under it.
 */
struct node {
	uint64_t ino;			/* never reused */
	char *name;
	enum node_type type;
	mode_t perm;			/* permission bits */
	const struct attr_ops *ops;	/* NODE_ATTR */
	void *obj;			/* the model object it shows */
	struct node *parent;
	struct node *child, *last;	/* children, in creation order */
	struct node *next;		/* next sibling */
};

/* A piece of the region: [off, off + len), offsets relative to it. */
struct range {
	uint64_t off;
	uint64_t len;
};

/**
 * struct extent - an extent the kernel accepted: dax_regionN/extentN.K
 */
struct extent {
	unsigned int id;		/* K: the lowest free when added */
	uint64_t off, len;
	uuid_t tag;			/* null: untagged */
	uint64_t order;			/* place in its tag group */
	bool doomed;			/* scratch for a release */
	struct node *dir;
	struct extent *next;		/* in offset order */
};

/**
 * struct daxdev - a DAX device: dax_regionN/daxN.M
 */
struct daxdev {
	unsigned int id;		/* M: the lowest free when made */
	struct range *ranges;		/* laid end to end */
	unsigned int nr_ranges, max_ranges;
	uuid_t tag;			/* what it claimed (v10+) */
	bool bound;			/* to device_dax: dev/daxN.M exists */
	struct node *dir;
	struct node *file;		/* dev/daxN.M while bound */
	struct daxdev *next;		/* in id order */
};

/**
 * struct trace_inst - the top tracing directory or one of its instances
 */
struct trace_inst {
	char *name;			/* NULL: the top one */
	bool enabled;			/* cxl_dynamic_capacity/enable */
	char *text;			/* lines pending in trace_pipe */
	size_t len;
	unsigned int users;		/* open files: rmdir is EBUSY */
	struct node *dir;		/* the instance's directory */
	struct trace_inst *next;
};

struct emu {
	/*
	 * The model lock: everything below it, and every node.  Taken after
	 * libfuse's request lock (pipe_interrupt() runs under it); never held
	 * across fuse_reply_*() or fuse_req_interrupt_func().
	 */
	pthread_mutex_t lock;
	/* Signalled when trace text comes or a blocked reader must look. */
	pthread_cond_t trace_cond;

	/* Set at start, read-only after. */
	const struct abi_desc *abi;
	unsigned int region;
	uint64_t size, base, dpa;
	int memfd;			/* the region's memory */
	struct timespec start;
	struct fuse_session *se;

	struct node *root;
	struct node *dax_dir;		/* bus/cxl/devices/dax_regionN */
	struct node *dev_dir;		/* dev */
	struct node *inst_dir;		/* kernel/tracing/instances */
	void *inos;			/* tsearch tree of nodes by ino */
	uint64_t next_ino;

	struct extent *extents;
	uint64_t arrival;		/* extents ever added */
	struct daxdev *devs;
	struct daxdev *seed;		/* NULL when there is none */
	struct daxdev *youngest;	/* the last made by create */
	struct trace_inst top;		/* first of the list of instances */
	uint64_t trace_clock;		/* microseconds */
};

/* util.c */
void *xmalloc(size_t size);
void *xrealloc(void *p, size_t size);
char *xstrdup(const char *s);
int parse_u64(const char *s, uint64_t *ret);
int parse_size(const char *s, uint64_t *ret);
int parse_tag(const char *s, uuid_t ret);
bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen);

/* tree.c */
struct node *node_new(struct emu *emu, struct node *parent, const char *name,
		      enum node_type type, mode_t perm);
struct node *node_dir(struct emu *emu, struct node *parent, const char *name);
struct node *node_path(struct emu *emu, const char *path);
struct node *node_attr(struct emu *emu, struct node *parent, const char *name,
		       mode_t perm, const struct attr_ops *ops, void *obj);
struct node *node_find(struct emu *emu, uint64_t ino);
struct node *node_child(const struct node *dir, const char *name);
void node_remove(struct emu *emu, struct node *node);
void tree_init(struct emu *emu);

/* model.c: extents and DAX devices */
uint64_t dev_size(const struct daxdev *dev);
bool extent_in_use(const struct emu *emu, const struct extent *ext);
uint64_t region_available(const struct emu *emu);
struct daxdev *dev_by_name(struct emu *emu, const char *name);
void dev_name(const struct emu *emu, const struct daxdev *dev, char *buf,
	      size_t size);
int extents_add(struct emu *emu, const struct range *r, unsigned int n,
		const uuid_t tag, const uint64_t *seq);
void extents_release(struct emu *emu, const struct range *r);
int dev_claim_tag(struct emu *emu, struct daxdev *dev, const uuid_t tag);
int dev_resize(struct emu *emu, struct daxdev *dev, uint64_t size);
int dev_bind(struct emu *emu, const char *name);
int dev_unbind(struct emu *emu, const char *name);
int dev_delete(struct emu *emu, const char *name);
int region_create_dev(struct emu *emu);
void region_reset(struct emu *emu);
void model_free(struct emu *emu);

/* attrs.c: the tree of each object */
void attrs_static(struct emu *emu);
void attrs_extent(struct emu *emu, struct extent *ext);
void attrs_dev(struct emu *emu, struct daxdev *dev);
void attrs_dev_file(struct emu *emu, struct daxdev *dev);
void attrs_trace(struct emu *emu, struct node *dir, struct trace_inst *inst);

/* ctl.c */
int ctl_command(struct emu *emu, const char *line);

/* trace.c */
enum trace_event {
	TRACE_RELEASE,
	TRACE_FORCED,
};

void trace_init(struct emu *emu);
void trace_emit(struct emu *emu, enum trace_event event,
		const struct range *r, const uuid_t tag);
int trace_mkdir(struct emu *emu, const char *name, struct node **ret_dir);
int trace_rmdir(struct emu *emu, const char *name);
size_t trace_take(struct trace_inst *inst, char *buf, size_t size);
void trace_free(struct emu *emu);

/* ops.c */
extern const struct fuse_lowlevel_ops emu_ops;

#endif /* DCD_KERNEL_EMU_H */
