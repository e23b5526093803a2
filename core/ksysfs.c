// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * DOC: parsing the DCD kernel's sysfs and trace records
 *
 * The kernel prints numbers as "%#llx" and tags as "%pUb"; extents live in
 * dax_regionN/extentN.K/{offset,length,uuid|tag}, the tag attribute hidden
 * when the tag is null.  Everything read here is untrusted: a value that
 * does not parse is refused (the caller skips that extent and says so),
 * never guessed at, and every sum is overflow-checked.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include <dcdfs/libdcdfs.h>

#include "ksysfs.h"
#include "private.h"

int ksysfs_parse_u64(const char *s, uint64_t *ret)
{
	unsigned long long v;
	char *end;

	if (!s || !isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno == ERANGE)
		return -ERANGE;
	if (errno || end == s || *end)
		return -EINVAL;
	/* strtoull's base 0 takes "010" as octal: the kernel never prints it. */
	if (s[0] == '0' && isdigit((unsigned char)s[1]))
		return -EINVAL;
	*ret = v;
	return 0;
}

int ksysfs_parse_uuid(const char *s, uint8_t tag[DCDFS_TAG_SIZE],
		      bool *ret_tagged)
{
	uuid_t u;

	if (!s || strlen(s) != DCDFS_TAG_STR_LEN - 1 || uuid_parse(s, u))
		return -EINVAL;
	memcpy(tag, u, DCDFS_TAG_SIZE);
	*ret_tagged = !uuid_is_null(u);
	return 0;
}

int ksysfs_parse_mode(const char *mode, bool dax_has_uuid, enum kabi *ret)
{
	/* v4-v8 print the decoder's partition: "dc0" ... "dc7". */
	if (!strcmp(mode, "dc") || (!strncmp(mode, "dc", 2) &&
				    isdigit((unsigned char)mode[2]) && !mode[3]))
		*ret = KABI_V6;
	else if (!strcmp(mode, "dynamic_ram_a"))
		*ret = dax_has_uuid ? KABI_V10 : KABI_V9;
	else if (!strcmp(mode, "dynamic_ram_1"))
		*ret = KABI_V11;
	else
		return -ENODEV;
	return 0;
}

static int read_u64_attr(const char *dir, const char *name, uint64_t *ret)
{
	char path[4096], buf[64];
	int rc;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    sizeof(path))
		return -ENAMETOOLONG;
	rc = sysfs_read_attr(path, buf, sizeof(buf));
	if (rc < 0)
		return rc;
	return ksysfs_parse_u64(buf, ret);
}

/* The tag: "uuid" (v9+) or "tag" (v4-v8); neither means untagged. */
static int read_tag(const char *dir, struct dcdfs_extent *ext)
{
	static const char *const names[] = { "uuid", "tag" };
	char path[4096], buf[64];

	for (size_t i = 0; i < 2; i++) {
		int rc;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		rc = sysfs_read_attr(path, buf, sizeof(buf));
		if (rc == -ENOENT)
			continue;
		if (rc < 0)
			return rc;
		return ksysfs_parse_uuid(buf, ext->tag, &ext->tagged);
	}
	ext->tagged = false;
	return 0;
}

int ksysfs_read_extent(const char *dir, uint64_t region_size,
		       struct dcdfs_extent *ret)
{
	struct dcdfs_extent e = { 0 };
	uint64_t end;
	int rc;

	rc = read_u64_attr(dir, "offset", &e.offset);
	if (!rc)
		rc = read_u64_attr(dir, "length", &e.length);
	if (!rc)
		rc = read_tag(dir, &e);
	/* Gone while we read it, or there and missing an attribute? */
	if (rc == -ENOENT && access(dir, F_OK) < 0)
		return -ENOENT;
	if (rc < 0)
		return -EINVAL;
	if (!e.length || add_overflows(e.offset, e.length, &end) ||
	    end > region_size)
		return -ERANGE;
	*ret = e;
	return 0;
}

static const char *const trace_types[] = {
	[KTRACE_ADD] = "Add capacity",
	[KTRACE_RELEASE] = "Release capacity",
	[KTRACE_FORCED_RELEASE] = "Forced capacity release",
	[KTRACE_REGION_UPDATED] = "Region Configuration Updated",
};

/* The value after "KEY=" in @line, up to a space, quotes stripped. */
static int field(const char *line, const char *key, char *buf, size_t len)
{
	const char *p = line, *end;
	size_t klen = strlen(key), n;

	for (;;) {
		p = strstr(p, key);
		if (!p)
			return -EINVAL;
		if ((p == line || p[-1] == ' ') && p[klen] == '=')
			break;
		p += klen;
	}
	p += klen + 1;
	if (*p == '\'') {
		end = strchr(++p, '\'');
		if (!end)
			return -EINVAL;
	} else {
		end = p + strcspn(p, " \n");
	}
	n = (size_t)(end - p);
	if (n >= len)
		return -EINVAL;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return 0;
}

/* "%llx" without 0x, as the tracepoint prints addresses and lengths. */
static int parse_hex(const char *s, uint64_t *ret)
{
	char buf[24];

	if (!*s || strlen(s) > 16 || strspn(s, "0123456789abcdefABCDEF") !=
						strlen(s))
		return -EINVAL;
	snprintf(buf, sizeof(buf), "0x%s", s);
	return ksysfs_parse_u64(buf, ret);
}

int ksysfs_parse_trace(const char *line, struct ktrace *ret)
{
	char type[48], num[24], tag[48];
	struct ktrace t = { 0 };
	size_t i;

	if (!strstr(line, "cxl_dynamic_capacity:"))
		return -ENOMSG;
	if (field(line, "event_type", type, sizeof(type)) < 0)
		return -EINVAL;
	for (i = 0; i < sizeof(trace_types) / sizeof(trace_types[0]); i++)
		if (!strcmp(type, trace_types[i]))
			break;
	if (i == sizeof(trace_types) / sizeof(trace_types[0]))
		return -EINVAL;
	t.type = (enum ktrace_type)i;
	if (field(line, "starting_dpa", num, sizeof(num)) < 0 ||
	    parse_hex(num, &t.dpa) < 0 ||
	    field(line, "length", num, sizeof(num)) < 0 ||
	    parse_hex(num, &t.length) < 0)
		return -EINVAL;
	/* "tag=" (every version so far); "uuid=" if it is ever renamed. */
	if ((field(line, "tag", tag, sizeof(tag)) < 0 &&
	     field(line, "uuid", tag, sizeof(tag)) < 0) ||
	    ksysfs_parse_uuid(tag, t.tag, &t.tagged) < 0)
		return -EINVAL;
	*ret = t;
	return 0;
}
