// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * DOC: extents and DAX devices
 *
 * Extents are kept in offset order, devices in id order; both take the
 * lowest free id, as the kernel's IDAs do.  A device's ranges lie each
 * inside one extent; an extent is in use while any range of any device
 * overlaps it, which is what refuses its release.  Every change is made
 * whole under emu->lock, checks first, so that a refused one changes
 * nothing.
 *
 * v10 and later claim by tag: a tag group goes to one device, its extents
 * laid end to end in group order (the shared sequence for sharable groups,
 * arrival otherwise).  v6 and v9 grow a device first-fit from the free
 * space of the extents in offset order, over several extents if need be.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu.h"

uint64_t dev_size(const struct daxdev *dev)
{
	uint64_t size = 0;

	for (unsigned int i = 0; i < dev->nr_ranges; i++)
		size += dev->ranges[i].len;
	return size;
}

/* How much of EXT the devices use. */
static uint64_t extent_used(const struct emu *emu, const struct extent *ext)
{
	uint64_t used = 0;

	for (const struct daxdev *dev = emu->devs; dev; dev = dev->next)
		for (unsigned int i = 0; i < dev->nr_ranges; i++) {
			const struct range *r = &dev->ranges[i];

			if (ranges_overlap(r->off, r->len, ext->off, ext->len))
				used += r->len;
		}
	return used;
}

bool extent_in_use(const struct emu *emu, const struct extent *ext)
{
	return extent_used(emu, ext) != 0;
}

uint64_t region_available(const struct emu *emu)
{
	uint64_t avail = 0;

	for (const struct extent *ext = emu->extents; ext; ext = ext->next)
		avail += ext->len - extent_used(emu, ext);
	return avail;
}

void dev_name(const struct emu *emu, const struct daxdev *dev, char *buf,
	      size_t size)
{
	snprintf(buf, size, "dax%u.%u", emu->region, dev->id);
}

struct daxdev *dev_by_name(struct emu *emu, const char *name)
{
	char buf[32];

	for (struct daxdev *dev = emu->devs; dev; dev = dev->next) {
		dev_name(emu, dev, buf, sizeof(buf));
		if (!strcmp(buf, name))
			return dev;
	}
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* Extents                                                                  */
/* ------------------------------------------------------------------------ */

static bool tag_live(const struct emu *emu, const uuid_t tag)
{
	for (const struct extent *ext = emu->extents; ext; ext = ext->next)
		if (!uuid_compare(ext->tag, tag))
			return true;
	return false;
}

static bool seq_all_zero(const uint64_t *seq, unsigned int n)
{
	for (unsigned int i = 0; seq && i < n; i++)
		if (seq[i])
			return false;
	return true;
}

/* Sequence numbers: all 0 (not sharable), or each of base..base+n-1. */
static int check_seq(const struct emu *emu, unsigned int n, const uuid_t tag,
		     const uint64_t *seq)
{
	unsigned int base = emu->abi->seq_base;

	if (seq_all_zero(seq, n))
		return 0;
	if (!emu->abi->tags || uuid_is_null(tag))
		return -EINVAL;
	for (unsigned int i = 0; i < n; i++) {
		if (seq[i] < base || seq[i] - base >= n)
			return -EINVAL;
		for (unsigned int j = 0; j < i; j++)
			if (seq[j] == seq[i])
				return -EINVAL;
	}
	return 0;
}

static int check_range(const struct emu *emu, const struct range *r)
{
	if (!r->len || r->off % EMU_ALIGN || r->len % EMU_ALIGN ||
	    r->off > emu->size || r->len > emu->size - r->off)
		return -EINVAL;
	for (const struct extent *ext = emu->extents; ext; ext = ext->next)
		if (ranges_overlap(ext->off, ext->len, r->off, r->len))
			return -EINVAL;
	return 0;
}

static int check_chain(const struct emu *emu, const struct range *r,
		       unsigned int n, const uuid_t tag, const uint64_t *seq)
{
	int rc;

	if (!n || (emu->abi->max_chain && n > emu->abi->max_chain))
		return -EINVAL;
	for (unsigned int i = 0; i < n; i++) {
		rc = check_range(emu, &r[i]);
		if (rc < 0)
			return rc;
		for (unsigned int j = 0; j < i; j++)
			if (ranges_overlap(r[j].off, r[j].len, r[i].off,
					   r[i].len))
				return -EINVAL;
	}
	if (!uuid_is_null(tag) && !emu->abi->tags)
		return -EINVAL;
	rc = check_seq(emu, n, tag, seq);
	if (rc < 0)
		return rc;
	return !uuid_is_null(tag) && tag_live(emu, tag) ? -EEXIST : 0;
}

static unsigned int extent_free_id(const struct emu *emu)
{
	unsigned int id = 0;
	const struct extent *ext;

	do {
		for (ext = emu->extents; ext && ext->id != id; ext = ext->next)
			;
	} while (ext && ++id);
	return id;
}

static void extent_insert(struct emu *emu, struct extent *new)
{
	struct extent **p = &emu->extents;

	while (*p && (*p)->off < new->off)
		p = &(*p)->next;
	new->next = *p;
	*p = new;
}

/* One More chain: all of it appears, or nothing. */
int extents_add(struct emu *emu, const struct range *r, unsigned int n,
		const uuid_t tag, const uint64_t *seq)
{
	bool sharable = !seq_all_zero(seq, n);
	int rc;

	rc = check_chain(emu, r, n, tag, seq);
	if (rc < 0)
		return rc;
	for (unsigned int i = 0; i < n; i++) {
		struct extent *ext = xmalloc(sizeof(*ext));

		ext->id = extent_free_id(emu);
		ext->off = r[i].off;
		ext->len = r[i].len;
		uuid_copy(ext->tag, tag);
		ext->order = sharable ? seq[i] : emu->arrival;
		emu->arrival++;
		extent_insert(emu, ext);
		attrs_extent(emu, ext);
	}
	return 0;
}

/* On v10+ a release takes whole tag groups. */
static void doom_tag_groups(struct emu *emu)
{
	for (struct extent *a = emu->extents; a; a = a->next) {
		if (a->doomed || uuid_is_null(a->tag))
			continue;
		for (struct extent *b = emu->extents; b; b = b->next)
			if (b->doomed && !uuid_compare(a->tag, b->tag))
				a->doomed = true;
	}
}

static void extent_free(struct emu *emu, struct extent *ext)
{
	node_remove(emu, ext->dir);
	free(ext);
}

/*
 * The FM asks for R back: every extent overlapping it goes, unless one of
 * them is in use, and then none does (the kernel ignores the request).
 */
void extents_release(struct emu *emu, const struct range *r)
{
	struct extent *ext, **p;

	for (ext = emu->extents; ext; ext = ext->next)
		ext->doomed = ranges_overlap(ext->off, ext->len, r->off,
					     r->len);
	if (emu->abi->tags)
		doom_tag_groups(emu);
	for (ext = emu->extents; ext; ext = ext->next)
		if (ext->doomed && extent_in_use(emu, ext))
			return;
	for (p = &emu->extents; *p;) {
		ext = *p;
		if (ext->doomed) {
			*p = ext->next;
			extent_free(emu, ext);
		} else {
			p = &ext->next;
		}
	}
}

/* ------------------------------------------------------------------------ */
/* DAX devices                                                              */
/* ------------------------------------------------------------------------ */

static unsigned int dev_free_id(const struct emu *emu)
{
	unsigned int id = 0;
	const struct daxdev *dev;

	do {
		for (dev = emu->devs; dev && dev->id != id; dev = dev->next)
			;
	} while (dev && ++id);
	return id;
}

static struct daxdev *dev_new(struct emu *emu)
{
	struct daxdev *dev = xmalloc(sizeof(*dev)), **p = &emu->devs;

	dev->id = dev_free_id(emu);
	while (*p && (*p)->id < dev->id)
		p = &(*p)->next;
	dev->next = *p;
	*p = dev;
	attrs_dev(emu, dev);
	return dev;
}

static void dev_destroy(struct emu *emu, struct daxdev *dev)
{
	struct daxdev **p = &emu->devs;

	while (*p != dev)
		p = &(*p)->next;
	*p = dev->next;
	node_remove(emu, dev->file);
	node_remove(emu, dev->dir);
	if (emu->seed == dev)
		emu->seed = NULL;
	if (emu->youngest == dev)
		emu->youngest = NULL;
	free(dev->ranges);
	free(dev);
}

/* Append [off, off + len) of EXT; merge with the last range if it goes on. */
static void dev_append(struct daxdev *dev, uint64_t off, uint64_t len,
		       const struct extent *ext)
{
	struct range *last = dev->nr_ranges ?
			     &dev->ranges[dev->nr_ranges - 1] : NULL;

	if (last && last->off >= ext->off && last->off + last->len == off) {
		last->len += len;
		return;
	}
	if (dev->nr_ranges == dev->max_ranges) {
		dev->max_ranges = dev->max_ranges ? 2 * dev->max_ranges : 4;
		dev->ranges = xrealloc(dev->ranges, dev->max_ranges *
				       sizeof(*dev->ranges));
	}
	dev->ranges[dev->nr_ranges++] = (struct range){ off, len };
}

static void dev_free_ranges(struct daxdev *dev)
{
	dev->nr_ranges = 0;
	uuid_clear(dev->tag);
}

/* After a claim of the seed, a new 0-sized seed takes its place. */
static void dev_claimed(struct emu *emu, struct daxdev *dev)
{
	if (emu->seed == dev)
		emu->seed = dev_new(emu);
}

static int extent_order_cmp(const void *a, const void *b)
{
	const struct extent *x = *(struct extent *const *)a;
	const struct extent *y = *(struct extent *const *)b;

	if (x->order != y->order)
		return x->order < y->order ? -1 : 1;
	return 0;
}

/* The free extents a claim of TAG takes: one untagged, or a tag group. */
static unsigned int claimable(struct emu *emu, const uuid_t tag,
			      struct extent **ret)
{
	unsigned int n = 0;

	for (struct extent *ext = emu->extents; ext; ext = ext->next) {
		if (uuid_compare(ext->tag, tag) || extent_in_use(emu, ext))
			continue;
		if (ret)
			ret[n] = ext;
		n++;
		if (uuid_is_null(tag))
			break;
	}
	return n;
}

/* v10+: a write to daxN.M/uuid. */
int dev_claim_tag(struct emu *emu, struct daxdev *dev, const uuid_t tag)
{
	struct extent **exts;
	unsigned int n;

	if (dev->bound || dev->nr_ranges)
		return -EBUSY;
	n = claimable(emu, tag, NULL);
	if (!n)
		return -ENOENT;
	exts = xmalloc(n * sizeof(*exts));
	claimable(emu, tag, exts);
	qsort(exts, n, sizeof(*exts), extent_order_cmp);
	for (unsigned int i = 0; i < n; i++)
		dev_append(dev, exts[i]->off, exts[i]->len, exts[i]);
	free(exts);
	uuid_copy(dev->tag, tag);
	dev_claimed(emu, dev);
	return 0;
}

/* The lowest device range that overlaps [pos, end), if any. */
static bool first_used(const struct emu *emu, uint64_t pos, uint64_t end,
		       struct range *ret)
{
	bool found = false;

	for (const struct daxdev *dev = emu->devs; dev; dev = dev->next)
		for (unsigned int i = 0; i < dev->nr_ranges; i++) {
			const struct range *r = &dev->ranges[i];

			if (!ranges_overlap(r->off, r->len, pos, end - pos) ||
			    (found && r->off >= ret->off))
				continue;
			*ret = *r;
			found = true;
		}
	return found;
}

/* Take NEED bytes (available) first-fit, extents in offset order. */
static void dev_grow(struct emu *emu, struct daxdev *dev, uint64_t need)
{
	for (struct extent *ext = emu->extents; ext && need; ext = ext->next) {
		uint64_t pos = ext->off, end = ext->off + ext->len, gap_end;
		struct range used;

		while (pos < end && need) {
			gap_end = end;
			if (first_used(emu, pos, end, &used)) {
				if (used.off <= pos) {
					pos = used.off + used.len;
					continue;
				}
				gap_end = used.off;
			}
			if (gap_end - pos > need)
				gap_end = pos + need;
			dev_append(dev, pos, gap_end - pos, ext);
			need -= gap_end - pos;
			pos = gap_end;
		}
	}
}

/* Give back the end of the device, as the kernel's shrink does. */
static void dev_shrink(struct daxdev *dev, uint64_t excess)
{
	while (excess) {
		struct range *last = &dev->ranges[dev->nr_ranges - 1];

		if (last->len <= excess) {
			excess -= last->len;
			dev->nr_ranges--;
		} else {
			last->len -= excess;
			excess = 0;
		}
	}
}

/* A write to daxN.M/size. */
int dev_resize(struct emu *emu, struct daxdev *dev, uint64_t size)
{
	uint64_t cur = dev_size(dev);

	if (emu->abi->tags && size)
		return -EOPNOTSUPP;
	if (size % EMU_ALIGN)
		return -EINVAL;
	if (dev->bound)
		return -EBUSY;
	if (size == cur)
		return 0;
	if (!size) {
		dev_free_ranges(dev);
		return 0;
	}
	if (size < cur) {
		dev_shrink(dev, cur - size);
		return 0;
	}
	if (size - cur > region_available(emu))
		return -ENOSPC;
	dev_grow(emu, dev, size - cur);
	if (!cur)
		dev_claimed(emu, dev);
	return 0;
}

int dev_bind(struct emu *emu, const char *name)
{
	struct daxdev *dev = dev_by_name(emu, name);

	if (!dev)
		return -ENODEV;
	if (dev->bound)
		return -EBUSY;
	if (!dev->nr_ranges)
		return -ENXIO;
	dev->bound = true;
	attrs_dev_file(emu, dev);
	return 0;
}

int dev_unbind(struct emu *emu, const char *name)
{
	struct daxdev *dev = dev_by_name(emu, name);

	if (!dev || !dev->bound)
		return -ENODEV;
	node_remove(emu, dev->file);
	dev->file = NULL;
	dev->bound = false;
	return 0;
}

/* The kernel never deletes daxN.0, so that /sys/bus/dax stays populated. */
int dev_delete(struct emu *emu, const char *name)
{
	struct daxdev *dev = dev_by_name(emu, name);

	if (!dev)
		return -ENXIO;
	if (dev->bound || dev->nr_ranges || dev == emu->seed || !dev->id)
		return -EBUSY;
	dev_destroy(emu, dev);
	return 0;
}

/* A write of 1 to dax_region/create. */
int region_create_dev(struct emu *emu)
{
	struct daxdev *dev;

	if (!region_available(emu))
		return -ENOSPC;
	dev = dev_new(emu);
	if (!emu->seed)
		emu->seed = dev;
	emu->youngest = dev;
	return 0;
}

static void model_clear(struct emu *emu)
{
	struct extent *ext;

	while (emu->devs)
		dev_destroy(emu, emu->devs);
	while ((ext = emu->extents)) {
		emu->extents = ext->next;
		extent_free(emu, ext);
	}
}

/*
 * The cxl_dax_region driver unbinds and binds again: every device and every
 * extent goes, and the DAX region comes back with a fresh seed.
 */
void region_reset(struct emu *emu)
{
	model_clear(emu);
	emu->seed = dev_new(emu);
}

void model_free(struct emu *emu)
{
	model_clear(emu);
}
