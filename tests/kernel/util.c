// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * DOC: allocation and parsing helpers
 *
 * Numbers are parsed as the kernel's kstrtoull(buf, 0) does (decimal, 0x
 * hex, 0 octal, no sign); the fabric manager's and the command line's also
 * take a K, M or G suffix.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu.h"

static void __attribute__((noreturn)) out_of_memory(void)
{
	fprintf(stderr, EMU_NAME ": out of memory\n");
	abort();
}

void *xmalloc(size_t size)
{
	void *p = calloc(1, size ? size : 1);

	if (!p)
		out_of_memory();
	return p;
}

void *xrealloc(void *p, size_t size)
{
	p = realloc(p, size ? size : 1);
	if (!p)
		out_of_memory();
	return p;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);

	if (!p)
		out_of_memory();
	return p;
}

static int parse_number(const char *s, uint64_t *ret, char **ret_end)
{
	unsigned long long v;

	if (!*s || *s == '-' || *s == '+' || *s == ' ')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, ret_end, 0);
	if (errno)
		return errno == ERANGE ? -ERANGE : -EINVAL;
	if (*ret_end == s)
		return -EINVAL;
	*ret = v;
	return 0;
}

int parse_u64(const char *s, uint64_t *ret)
{
	char *end;
	int rc;

	rc = parse_number(s, ret, &end);
	if (rc < 0)
		return rc;
	return *end ? -EINVAL : 0;
}

int parse_size(const char *s, uint64_t *ret)
{
	unsigned int shift = 0;
	uint64_t v;
	char *end;
	int rc;

	rc = parse_number(s, &v, &end);
	if (rc < 0)
		return rc;
	switch (*end) {
	case 'K': case 'k':
		shift = 10;
		break;
	case 'M': case 'm':
		shift = 20;
		break;
	case 'G': case 'g':
		shift = 30;
		break;
	case '\0':
		break;
	default:
		return -EINVAL;
	}
	if (shift && end[1])
		return -EINVAL;
	if (v > UINT64_MAX >> shift)
		return -ERANGE;
	*ret = v << shift;
	return 0;
}

/* A tag: a UUID, or "0" for the null one. */
int parse_tag(const char *s, uuid_t ret)
{
	if (!strcmp(s, "0")) {
		uuid_clear(ret);
		return 0;
	}
	return uuid_parse(s, ret) < 0 ? -EINVAL : 0;
}

bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}
