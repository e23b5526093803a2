// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * DOC: tracefs: cxl:cxl_dynamic_capacity records and their trace_pipes
 *
 * The top tracing directory and each instance made under instances/ keep
 * the text of the records not read yet.  A record goes to every one whose
 * event is enabled, in the kernel's format, with a clock that starts at
 * 100 s and moves 1 us a record (so that tests can compare lines).  When
 * more than TRACE_MAX bytes wait, the oldest lines go, as a ring buffer
 * overwrites.  An instance cannot be removed while a file of it is open,
 * so a reader's instance stays.  All of it under emu->lock; readers sleep
 * on emu->trace_cond (ops.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu.h"

#define TRACE_CLOCK_START	100000000ULL	/* 100 s */

static const char *const event_names[] = {
	[TRACE_RELEASE] = "Release capacity",
	[TRACE_FORCED] = "Forced capacity release",
};

void trace_init(struct emu *emu)
{
	struct node *dir = node_path(emu, "kernel/tracing");

	emu->trace_clock = TRACE_CLOCK_START;
	emu->top.dir = dir;
	attrs_trace(emu, dir, &emu->top);
	emu->inst_dir = node_dir(emu, dir, "instances");
}

static void inst_append(struct trace_inst *inst, const char *line, size_t len)
{
	while (inst->len && inst->len + len > TRACE_MAX) {
		char *nl = memchr(inst->text, '\n', inst->len);
		size_t drop = nl ? (size_t)(nl - inst->text) + 1 : inst->len;

		memmove(inst->text, inst->text + drop, inst->len - drop);
		inst->len -= drop;
	}
	inst->text = xrealloc(inst->text, inst->len + len);
	memcpy(inst->text + inst->len, line, len);
	inst->len += len;
}

static int format_record(struct emu *emu, enum trace_event event,
			 const struct range *r, const uuid_t tag, char *buf,
			 size_t size)
{
	unsigned long long t = ++emu->trace_clock;
	char s[37];

	uuid_unparse_lower(tag, s);
	return snprintf(buf, size,
			" " EMU_NAME "-0     [000] ..... %5llu.%06llu: "
			"cxl_dynamic_capacity: memdev=mem0 host=0000:0d:00.0 "
			"serial=0 log=DCD : event_type='%s' host_id='0' "
			"%s='0' starting_dpa=%llx length=%llx tag=%s "
			"shared_extent_sequence=0\n",
			t / 1000000, t % 1000000, event_names[event],
			emu->abi->part_field,
			(unsigned long long)(emu->dpa + r->off),
			(unsigned long long)r->len, s);
}

/* One record (a line) to every instance where the event is enabled. */
void trace_emit(struct emu *emu, enum trace_event event,
		const struct range *r, const uuid_t tag)
{
	char line[512];
	int len;

	len = format_record(emu, event, r, tag, line, sizeof(line));
	if (len < 0 || (size_t)len >= sizeof(line))
		return;
	for (struct trace_inst *inst = &emu->top; inst; inst = inst->next)
		if (inst->enabled)
			inst_append(inst, line, (size_t)len);
	pthread_cond_broadcast(&emu->trace_cond);
}

/*
 * Take what fits in SIZE: whole lines, or the start of the first one if
 * not even that fits.  Returns the length taken (0: nothing pending).
 */
size_t trace_take(struct trace_inst *inst, char *buf, size_t size)
{
	size_t n = 0;

	if (!inst->len)
		return 0;
	while (n < inst->len) {
		char *nl = memchr(inst->text + n, '\n', inst->len - n);
		size_t end = nl ? (size_t)(nl - inst->text) + 1 : inst->len;

		if (end > size)
			break;
		n = end;
	}
	if (!n)
		n = inst->len < size ? inst->len : size;
	memcpy(buf, inst->text, n);
	memmove(inst->text, inst->text + n, inst->len - n);
	inst->len -= n;
	return n;
}

static struct trace_inst *inst_by_name(struct emu *emu, const char *name,
				       struct trace_inst **ret_prev)
{
	struct trace_inst *prev = &emu->top;

	for (struct trace_inst *inst = emu->top.next; inst;
	     prev = inst, inst = inst->next)
		if (!strcmp(inst->name, name)) {
			*ret_prev = prev;
			return inst;
		}
	return NULL;
}

int trace_mkdir(struct emu *emu, const char *name, struct node **ret_dir)
{
	struct trace_inst *inst, *last = &emu->top;

	if (node_child(emu->inst_dir, name))
		return -EEXIST;
	inst = xmalloc(sizeof(*inst));
	inst->name = xstrdup(name);
	inst->dir = node_dir(emu, emu->inst_dir, name);
	attrs_trace(emu, inst->dir, inst);
	while (last->next)
		last = last->next;
	last->next = inst;
	*ret_dir = inst->dir;
	return 0;
}

static void inst_free(struct trace_inst *inst)
{
	free(inst->name);
	free(inst->text);
	free(inst);
}

int trace_rmdir(struct emu *emu, const char *name)
{
	struct trace_inst *prev, *inst = inst_by_name(emu, name, &prev);

	if (!inst)
		return -ENOENT;
	if (inst->users)
		return -EBUSY;
	prev->next = inst->next;
	node_remove(emu, inst->dir);
	inst_free(inst);
	return 0;
}

void trace_free(struct emu *emu)
{
	while (emu->top.next) {
		struct trace_inst *inst = emu->top.next;

		emu->top.next = inst->next;
		node_remove(emu, inst->dir);
		inst_free(inst);
	}
	free(emu->top.text);
	emu->top.text = NULL;
}
