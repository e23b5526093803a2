// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fuzz_sysfs - libFuzzer target for the kernel backend's parsers
 * (core/ksysfs.c): attribute values, region modes, extent directories and
 * cxl_dynamic_capacity trace lines.
 *
 * The input is split at newlines: line 1 goes to every value parser and
 * the trace parser; lines 1 to 3 become an extent directory's offset,
 * length and uuid attributes.  A parsed extent must lie inside its region.
 */
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dcdfs/libdcdfs.h>

#include "ksysfs.h"

#define REGION (1ULL << 30)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void put(const char *dir, const char *name, const char *value)
{
	char path[96];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return;
	if (write(fd, value, strlen(value)) < 0)
		abort();
	close(fd);
}

static void parse_values(const char *s)
{
	uint8_t tag[DCDFS_TAG_SIZE];
	struct ktrace t;
	enum kabi abi;
	uint64_t v;
	bool tagged;

	if (ksysfs_parse_u64(s, &v) == 0 && s[0] == '-')
		abort();
	if (ksysfs_parse_uuid(s, tag, &tagged) == 0 && strlen(s) != 36)
		abort();
	if (ksysfs_parse_mode(s, true, &abi) == 0 && abi > KABI_V11)
		abort();
	if (ksysfs_parse_trace(s, &t) == 0 && t.type > KTRACE_REGION_UPDATED)
		abort();
}

static void parse_extent(char **lines, int n)
{
	struct dcdfs_extent e;
	char dir[64];

	snprintf(dir, sizeof(dir), "/dev/shm/dcdfs-fuzz-sysfs-%d", (int)getpid());
	mkdir(dir, 0700);
	put(dir, "offset", n > 0 ? lines[0] : "");
	put(dir, "length", n > 1 ? lines[1] : "");
	if (n > 2)
		put(dir, "uuid", lines[2]);
	if (ksysfs_read_extent(dir, REGION, &e) == 0 &&
	    (!e.length || e.offset + e.length > REGION ||
	     e.offset + e.length < e.offset))
		abort();
	for (const char *const *a = (const char *const[]){ "offset", "length",
							   "uuid", NULL };
	     *a; a++) {
		char path[96];

		snprintf(path, sizeof(path), "%s/%s", dir, *a);
		unlink(path);
	}
	rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), *lines[3], *p;
	int n = 0;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	parse_values(s);
	for (p = s; n < 3 && p; n++) {
		lines[n] = p;
		p = strchr(p, '\n');
		if (p)
			*p++ = '\0';
	}
	parse_values(lines[0]);
	parse_extent(lines, n);
	free(s);
	return 0;
}
