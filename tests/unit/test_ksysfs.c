// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests for core/ksysfs.c: the parsers of what the DCD kernel series
 * puts in sysfs and tracefs.  Every malformed value must be refused, never
 * guessed at or crashed on: missing, empty, garbage, overflowing, an
 * extent outside its region, the tag under either of its names.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <dcdfs/libdcdfs.h>

#include "ksysfs.h"

#define REGION (1ULL << 30)
static const char tag_str[] = "6a1d3c5e-8f0b-4b7a-9f51-0c2e8d4a7b10";

static void test_parse_u64(void **state)
{
	static const char *const bad[] = {
		"", "x", "-1", "+1", " 1", "1 ", "0x", "0xg", "12a", "010",
		"0x1 ", "1.0",
	};
	uint64_t v;

	(void) state;
	assert_int_equal(ksysfs_parse_u64("0x200000", &v), 0);
	assert_true(v == 0x200000);
	assert_int_equal(ksysfs_parse_u64("0", &v), 0);
	assert_true(v == 0);
	assert_int_equal(ksysfs_parse_u64("4096", &v), 0);
	assert_true(v == 4096);
	assert_int_equal(ksysfs_parse_u64("0xffffffffffffffff", &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(ksysfs_parse_u64("0x10000000000000000", &v), -ERANGE);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(ksysfs_parse_u64(bad[i], &v), -EINVAL);
	assert_int_equal(ksysfs_parse_u64(NULL, &v), -EINVAL);
}

static void test_parse_uuid(void **state)
{
	uint8_t tag[DCDFS_TAG_SIZE];
	bool tagged = true;

	(void) state;
	assert_int_equal(ksysfs_parse_uuid(tag_str, tag, &tagged), 0);
	assert_true(tagged);
	assert_int_equal(ksysfs_parse_uuid(
				 "00000000-0000-0000-0000-000000000000", tag,
				 &tagged), 0);
	assert_false(tagged);
	assert_int_equal(ksysfs_parse_uuid("", tag, &tagged), -EINVAL);
	assert_int_equal(ksysfs_parse_uuid("6a1d3c5e", tag, &tagged), -EINVAL);
	assert_int_equal(ksysfs_parse_uuid(
				 "6a1d3c5e-8f0b-4b7a-9f51-0c2e8d4a7b1z", tag,
				 &tagged), -EINVAL);
}

static void test_parse_mode(void **state)
{
	enum kabi abi;

	(void) state;
	assert_int_equal(ksysfs_parse_mode("dc", false, &abi), 0);
	assert_int_equal(abi, KABI_V6);
	assert_int_equal(ksysfs_parse_mode("dc3", false, &abi), 0);
	assert_int_equal(abi, KABI_V6);
	assert_int_equal(ksysfs_parse_mode("dynamic_ram_a", false, &abi), 0);
	assert_int_equal(abi, KABI_V9);
	assert_int_equal(ksysfs_parse_mode("dynamic_ram_a", true, &abi), 0);
	assert_int_equal(abi, KABI_V10);
	assert_int_equal(ksysfs_parse_mode("dynamic_ram_1", true, &abi), 0);
	assert_int_equal(abi, KABI_V11);
	assert_int_equal(ksysfs_parse_mode("ram", false, &abi), -ENODEV);
	assert_int_equal(ksysfs_parse_mode("dc10", false, &abi), -ENODEV);
	assert_int_equal(ksysfs_parse_mode("", false, &abi), -ENODEV);
}

/* A private directory standing for dax_regionN/extentN.K. */
struct fixture {
	char dir[64];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	strcpy(f->dir, "/tmp/dcdfs-ksysfs-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	*state = f;
	return 0;
}

static int rm_entry(const char *p, const struct stat *sb, int type,
		    struct FTW *ftw)
{
	(void) sb;
	(void) ftw;
	return type == FTW_DP ? rmdir(p) : unlink(p);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void put(struct fixture *f, const char *name, const char *value)
{
	char path[128];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", f->dir, name);
	if (!value) {
		unlink(path);
		return;
	}
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(value, fp);
	fclose(fp);
}

static int extent(struct fixture *f, const char *offset, const char *length,
		  struct dcdfs_extent *e)
{
	put(f, "offset", offset);
	put(f, "length", length);
	return ksysfs_read_extent(f->dir, REGION, e);
}

static void test_extent_good(void **state)
{
	struct fixture *f = *state;
	struct dcdfs_extent e;

	assert_int_equal(extent(f, "0x200000\n", "0x400000\n", &e), 0);
	assert_true(e.offset == 0x200000 && e.length == 0x400000);
	assert_false(e.tagged);
	/* v9+ name, then the v4-v8 name; the null tag is untagged. */
	put(f, "uuid", "6a1d3c5e-8f0b-4b7a-9f51-0c2e8d4a7b10\n");
	assert_int_equal(extent(f, "0x0\n", "0x200000\n", &e), 0);
	assert_true(e.tagged);
	put(f, "uuid", NULL);
	put(f, "tag", "6a1d3c5e-8f0b-4b7a-9f51-0c2e8d4a7b10\n");
	assert_int_equal(extent(f, "0x0\n", "0x200000\n", &e), 0);
	assert_true(e.tagged);
	put(f, "tag", "00000000-0000-0000-0000-000000000000\n");
	assert_int_equal(extent(f, "0x0\n", "0x200000\n", &e), 0);
	assert_false(e.tagged);
	/* Up to the end of the region. */
	assert_int_equal(extent(f, "0x3fe00000\n", "0x200000\n", &e), 0);
}

static void test_extent_bad(void **state)
{
	struct fixture *f = *state;
	struct dcdfs_extent e;

	assert_int_equal(ksysfs_read_extent("/nonexistent/extent0.0", REGION,
					    &e), -ENOENT);
	assert_int_equal(extent(f, NULL, "0x200000\n", &e), -EINVAL);
	assert_int_equal(extent(f, "0x0\n", NULL, &e), -EINVAL);
	assert_int_equal(extent(f, "", "0x200000\n", &e), -EINVAL);
	assert_int_equal(extent(f, "0x0\n", "\n", &e), -EINVAL);
	assert_int_equal(extent(f, "garbage\n", "0x200000\n", &e), -EINVAL);
	assert_int_equal(extent(f, "0x0\n", "0x200000 0x1\n", &e), -EINVAL);
	assert_int_equal(extent(f, "0x0\n", "0x0\n", &e), -ERANGE);
	assert_int_equal(extent(f, "0x10000000000000000\n", "0x200000\n", &e),
			 -EINVAL);
	assert_int_equal(extent(f, "0xffffffffffe00000\n", "0x400000\n", &e),
			 -ERANGE);
	assert_int_equal(extent(f, "0x3fe00000\n", "0x400000\n", &e), -ERANGE);
	assert_int_equal(extent(f, "0x40000000\n", "0x200000\n", &e), -ERANGE);
	put(f, "uuid", "not-a-uuid\n");
	assert_int_equal(extent(f, "0x0\n", "0x200000\n", &e), -EINVAL);
	put(f, "uuid", "");
	assert_int_equal(extent(f, "0x0\n", "0x200000\n", &e), -EINVAL);
}

#define PREFIX " kworker/0:1-42 [000] ..... 100.000001: cxl_dynamic_capacity:" \
	       " memdev=mem0 host=0000:0d:00.0 serial=0 log=DCD : "

static void test_trace(void **state)
{
	struct ktrace t;

	(void) state;
	assert_int_equal(ksysfs_parse_trace(PREFIX "event_type='Release capacity'"
		" host_id='0' partition_id='0' starting_dpa=40200000"
		" length=200000 tag=6a1d3c5e-8f0b-4b7a-9f51-0c2e8d4a7b10"
		" shared_extent_sequence=0", &t), 0);
	assert_int_equal(t.type, KTRACE_RELEASE);
	assert_true(t.dpa == 0x40200000 && t.length == 0x200000 && t.tagged);
	/* v4-v8 say region_id; untagged prints the null UUID. */
	assert_int_equal(ksysfs_parse_trace(PREFIX "event_type='Add capacity'"
		" host_id='0' region_id='0' starting_dpa=0 length=200000"
		" tag=00000000-0000-0000-0000-000000000000"
		" shared_extent_sequence=0", &t), 0);
	assert_int_equal(t.type, KTRACE_ADD);
	assert_false(t.tagged);
	assert_int_equal(ksysfs_parse_trace("something else: a=b", &t), -ENOMSG);
	assert_int_equal(ksysfs_parse_trace(PREFIX "event_type='Nonsense'"
		" starting_dpa=0 length=1 tag=" "00000000-0000-0000-0000-000000000000",
		&t), -EINVAL);
	assert_int_equal(ksysfs_parse_trace(PREFIX "event_type='Release capacity'"
		" starting_dpa=zz length=1"
		" tag=00000000-0000-0000-0000-000000000000", &t), -EINVAL);
	assert_int_equal(ksysfs_parse_trace(PREFIX "event_type='Release capacity'"
		" starting_dpa=12345678901234567 length=1"
		" tag=00000000-0000-0000-0000-000000000000", &t), -EINVAL);
	assert_int_equal(ksysfs_parse_trace(PREFIX "event_type='Release capacity'"
		" starting_dpa=0 length=1", &t), -EINVAL);
	assert_int_equal(ksysfs_parse_trace(PREFIX "event_type='Release capacity",
					    &t), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_u64),
		cmocka_unit_test(test_parse_uuid),
		cmocka_unit_test(test_parse_mode),
		cmocka_unit_test_setup_teardown(test_extent_good, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_extent_bad, setup,
						teardown),
		cmocka_unit_test(test_trace),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
