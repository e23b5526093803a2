// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fuzz_parse - libFuzzer target for the command-line parsers of libdcdfs:
 * dcdfs_parse_size(), dcdfs_parse_extent() (with and without a sequence
 * number) and dcdfs_parse_tag().
 *
 * The input is one NUL-terminated string.  Besides not crashing, every
 * parser must keep its promises: a size parsed back from its own decimal
 * form is the same; an extent has a non-zero length and an end that does
 * not overflow; a tag formats back to a UUID that parses to the same tag.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dcdfs/libdcdfs.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_size(const char *s)
{
	char buf[32];
	uint64_t v, w;

	if (dcdfs_parse_size(s, &v) < 0)
		return;
	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	if (dcdfs_parse_size(buf, &w) < 0 || w != v)
		abort();
}

static void check_extent(const char *s, bool allow_seq)
{
	struct dcdfs_extent e = { 0 };

	if (dcdfs_parse_extent(s, allow_seq, &e) < 0)
		return;
	if (!e.length || e.offset + e.length < e.offset)
		abort();
	if (!allow_seq && e.seq)
		abort();
}

static void check_tag(const char *s)
{
	uint8_t tag[DCDFS_TAG_SIZE], again[DCDFS_TAG_SIZE];
	char buf[DCDFS_TAG_STR_LEN];

	if (dcdfs_parse_tag(s, tag) < 0)
		return;
	dcdfs_format_tag(tag, buf);
	if (dcdfs_parse_tag(buf, again) < 0 || memcmp(tag, again, sizeof(tag)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	check_size(s);
	check_extent(s, false);
	check_extent(s, true);
	check_tag(s);
	(void) dcdfs_strerror(-EINVAL);
	free(s);
	return 0;
}
