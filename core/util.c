// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * DOC: parsing and formatting of sizes, extents and tags
 *
 * These parse untrusted input (command lines, later sysfs attributes): every
 * value is range-checked and every sum overflow-checked; nothing here
 * allocates.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uuid/uuid.h>

#include <dcdfs/libdcdfs.h>

#include "private.h"

static int suffix_shift(const char *s, unsigned int *ret)
{
	static const char units[] = "KMGT";
	const char *u;

	if (!*s) {
		*ret = 0;
		return 0;
	}
	u = strchr(units, toupper((unsigned char)*s));
	if (!u)
		return -EINVAL;
	s++;
	/* "K", "KB" is not accepted: the units are binary, so only "KiB". */
	if (*s && strcasecmp(s, "iB"))
		return -EINVAL;
	*ret = 10 * (unsigned int)(u - units + 1);
	return 0;
}

/* Parse a number at the start of @str; *@end points past it. */
static int parse_number(const char *str, uint64_t *ret, const char **end)
{
	unsigned long long v;
	char *e;
	int base = 10;

	/* strtoull accepts leading blanks and signs: refuse them. */
	if (!isdigit((unsigned char)str[0]))
		return -EINVAL;
	if (str[0] == '0' && (str[1] == 'x' || str[1] == 'X')) {
		if (!isxdigit((unsigned char)str[2]))
			return -EINVAL;
		base = 16;
	}
	errno = 0;
	v = strtoull(str, &e, base);
	if (errno == ERANGE)
		return -ERANGE;
	if (e == str)
		return -EINVAL;
	*ret = v;
	*end = e;
	return 0;
}

static int parse_size_part(const char *str, size_t len, uint64_t *ret)
{
	char buf[64];
	const char *end;
	unsigned int shift;
	uint64_t v;
	int rc;

	if (len == 0 || len >= sizeof(buf))
		return len ? -ERANGE : -EINVAL;
	memcpy(buf, str, len);
	buf[len] = '\0';
	rc = parse_number(buf, &v, &end);
	if (rc < 0)
		return rc;
	rc = suffix_shift(end, &shift);
	if (rc < 0)
		return rc;
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*ret = v << shift;
	return 0;
}

DCDFS_EXPORT int dcdfs_parse_size(const char *str, uint64_t *ret)
{
	clear_error();
	if (!str || !ret)
		return -EINVAL;
	return parse_size_part(str, strlen(str), ret);
}

DCDFS_EXPORT int dcdfs_parse_extent(const char *str, bool allow_seq,
				    struct dcdfs_extent *ret)
{
	const char *colon, *colon2;
	uint64_t offset, length, seq = 0, end;
	int rc;

	clear_error();
	if (!str || !ret)
		return -EINVAL;
	colon = strchr(str, ':');
	if (!colon)
		return set_error(-EINVAL, "'%s': expected OFFSET:LENGTH", str);
	colon2 = strchr(colon + 1, ':');
	if (colon2 && !allow_seq)
		return set_error(-EINVAL, "'%s': expected OFFSET:LENGTH", str);
	rc = parse_size_part(str, (size_t)(colon - str), &offset);
	if (rc < 0)
		return set_error(rc, "'%s': bad offset", str);
	rc = parse_size_part(colon + 1,
			     colon2 ? (size_t)(colon2 - colon - 1) :
				      strlen(colon + 1),
			     &length);
	if (rc < 0)
		return set_error(rc, "'%s': bad length", str);
	if (length == 0)
		return set_error(-EINVAL, "'%s': zero length", str);
	if (add_overflows(offset, length, &end))
		return set_error(-ERANGE, "'%s': offset + length overflows",
				 str);
	if (colon2) {
		rc = parse_size_part(colon2 + 1, strlen(colon2 + 1), &seq);
		if (rc < 0 || seq > UINT16_MAX)
			return set_error(rc < 0 ? rc : -ERANGE,
					 "'%s': bad sequence number", str);
	}
	ret->offset = offset;
	ret->length = length;
	ret->seq = (uint16_t)seq;
	return 0;
}

DCDFS_EXPORT int dcdfs_parse_tag(const char *str, uint8_t ret[DCDFS_TAG_SIZE])
{
	uuid_t u;

	clear_error();
	if (!str || !ret)
		return -EINVAL;
	/* uuid_parse() checks the 8-4-4-4-12 form, but not the length. */
	if (strlen(str) != DCDFS_TAG_STR_LEN - 1 || uuid_parse(str, u))
		return set_error(-EINVAL, "'%s' is not a UUID", str);
	if (uuid_is_null(u))
		return set_error(-EINVAL,
				 "'%s': the null UUID means untagged", str);
	memcpy(ret, u, DCDFS_TAG_SIZE);
	return 0;
}

DCDFS_EXPORT char *dcdfs_format_tag(const uint8_t tag[DCDFS_TAG_SIZE],
				    char buf[DCDFS_TAG_STR_LEN])
{
	uuid_unparse_lower(tag, buf);
	return buf;
}

DCDFS_EXPORT char *dcdfs_format_size(uint64_t bytes,
				     char buf[DCDFS_SIZE_STR_LEN])
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB",
					     "PiB", "EiB" };
	double v = (double)bytes;
	unsigned int i = 0;

	if (bytes < 1024) {
		snprintf(buf, DCDFS_SIZE_STR_LEN, "%" PRIu64 " B", bytes);
		return buf;
	}
	v /= 1024;
	while (v >= 1024 && i < sizeof(units) / sizeof(units[0]) - 1) {
		v /= 1024;
		i++;
	}
	snprintf(buf, DCDFS_SIZE_STR_LEN, "%.2f %s", v, units[i]);
	return buf;
}
