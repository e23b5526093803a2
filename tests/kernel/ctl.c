// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * DOC: ctl, the fabric manager's side
 *
 * One command a write, words separated by blanks:
 *
 *   add OFF:LEN[,OFF:LEN...] [UUID [SEQ,SEQ...]]
 *   release OFF:LEN[,OFF:LEN...] [UUID]
 *   forced OFF:LEN[,OFF:LEN...] [UUID]
 *   unbind
 *
 * Numbers as parse_size() reads them; UUID "0" is the null tag.  A command
 * that does not parse fails with EINVAL; add fails as the kernel would
 * drop the chain (see model.c); release and forced never fail once parsed:
 * their outcome shows in the tree and in the trace records, one record for
 * each range asked for.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "emu.h"

#define CTL_MAX_WORDS	4
#define CTL_MAX_RANGES	4096

struct ctl_args {
	struct range *ranges;
	unsigned int nr;
	uuid_t tag;
	uint64_t *seq;		/* NULL when not given */
};

static unsigned int split(char *s, char sep, char **ret, unsigned int max)
{
	unsigned int n = 0;

	for (char *p = s; n < max; p++) {
		ret[n++] = p;
		p = strchr(p, sep);
		if (!p)
			break;
		*p = '\0';
	}
	return n;
}

static unsigned int count_items(const char *s, char sep)
{
	unsigned int n = 1;

	for (; *s; s++)
		n += *s == sep;
	return n;
}

static int parse_range(char *s, struct range *r)
{
	char *colon = strchr(s, ':');

	if (!colon)
		return -EINVAL;
	*colon = '\0';
	if (parse_size(s, &r->off) < 0 || parse_size(colon + 1, &r->len) < 0)
		return -EINVAL;
	if (!r->len || r->len > UINT64_MAX - r->off)
		return -EINVAL;
	return 0;
}

static int parse_ranges(char *s, struct ctl_args *args)
{
	unsigned int n = count_items(s, ',');
	char **items;
	int rc = 0;

	if (n > CTL_MAX_RANGES)
		return -EINVAL;
	items = xmalloc(n * sizeof(*items));
	args->ranges = xmalloc(n * sizeof(*args->ranges));
	args->nr = split(s, ',', items, n);
	for (unsigned int i = 0; i < args->nr && !rc; i++)
		rc = parse_range(items[i], &args->ranges[i]);
	free(items);
	return rc;
}

static int parse_seqs(char *s, struct ctl_args *args)
{
	unsigned int n = count_items(s, ',');
	char **items;
	int rc = 0;

	if (n != args->nr)
		return -EINVAL;
	items = xmalloc(n * sizeof(*items));
	args->seq = xmalloc(n * sizeof(*args->seq));
	split(s, ',', items, n);
	for (unsigned int i = 0; i < n && !rc; i++)
		rc = parse_u64(items[i], &args->seq[i]);
	free(items);
	return rc < 0 ? -EINVAL : 0;
}

/* WORDS after the command: the ranges, then optional tag and sequences. */
static int parse_args(char **words, unsigned int n, unsigned int max,
		      struct ctl_args *args)
{
	int rc;

	if (n < 1 || n > max)
		return -EINVAL;
	rc = parse_ranges(words[0], args);
	if (rc < 0)
		return rc;
	if (n > 1 && parse_tag(words[1], args->tag) < 0)
		return -EINVAL;
	return n > 2 ? parse_seqs(words[2], args) : 0;
}

static void release(struct emu *emu, const struct ctl_args *args,
		    enum trace_event event)
{
	for (unsigned int i = 0; i < args->nr; i++) {
		trace_emit(emu, event, &args->ranges[i], args->tag);
		if (event == TRACE_RELEASE)
			extents_release(emu, &args->ranges[i]);
	}
}

static int run(struct emu *emu, char **words, unsigned int n)
{
	struct ctl_args args = { 0 };
	int rc = -EINVAL;

	if (!strcmp(words[0], "unbind") && n == 1) {
		region_reset(emu);
		rc = 0;
	} else if (!strcmp(words[0], "add")) {
		rc = parse_args(words + 1, n - 1, 3, &args);
		if (!rc)
			rc = extents_add(emu, args.ranges, args.nr, args.tag,
					 args.seq);
	} else if (!strcmp(words[0], "release") ||
		   !strcmp(words[0], "forced")) {
		rc = parse_args(words + 1, n - 1, 2, &args);
		if (!rc)
			release(emu, &args, words[0][0] == 'r' ?
				TRACE_RELEASE : TRACE_FORCED);
	}
	free(args.ranges);
	free(args.seq);
	return rc;
}

int ctl_command(struct emu *emu, const char *line)
{
	char *copy = xstrdup(line), *save = NULL;
	char *words[CTL_MAX_WORDS + 1];
	unsigned int n = 0;
	int rc = -EINVAL;

	for (char *w = strtok_r(copy, " \t\n", &save); w;
	     w = strtok_r(NULL, " \t\n", &save)) {
		if (n == CTL_MAX_WORDS + 1)
			goto out_free;
		words[n++] = w;
	}
	if (n)
		rc = run(emu, words, n);
out_free:
	free(copy);
	return rc;
}
