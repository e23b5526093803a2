// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests for core/util.c: size, extent and tag parsing and formatting.
 * These parse command lines and, later, sysfs: every malformed form must be
 * refused, every overflow caught.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <dcdfs/libdcdfs.h>

static void test_parse_size_good(void **state)
{
	static const struct {
		const char *in;
		uint64_t out;
	} cases[] = {
		{ "0", 0 },
		{ "4096", 4096 },
		{ "0x200000", 0x200000 },
		{ "0X10", 16 },
		{ "2M", 2ULL << 20 },
		{ "2m", 2ULL << 20 },
		{ "1K", 1024 },
		{ "3G", 3ULL << 30 },
		{ "1T", 1ULL << 40 },
		{ "16GiB", 16ULL << 30 },
		{ "0x10M", 16ULL << 20 },
		{ "18446744073709551615", UINT64_MAX },
	};
	uint64_t v;

	(void) state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(dcdfs_parse_size(cases[i].in, &v), 0);
		assert_true(v == cases[i].out);
	}
}

static void test_parse_size_bad(void **state)
{
	static const char *const bad[] = {
		"", " 1", "-1", "+1", "1 ", "1X", "1KB", "1MB", "0x", "x10",
		"1.5G", "G", "1GG", "1Gi", "0xg", "abc",
	};
	uint64_t v;

	(void) state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(dcdfs_parse_size(bad[i], &v), -EINVAL);
	assert_int_equal(dcdfs_parse_size("18446744073709551616", &v), -ERANGE);
	assert_int_equal(dcdfs_parse_size("16777216T", &v), -ERANGE);
	assert_int_equal(dcdfs_parse_size(NULL, &v), -EINVAL);
}

static void test_parse_extent(void **state)
{
	struct dcdfs_extent e = { 0 };

	(void) state;
	assert_int_equal(dcdfs_parse_extent("0:2M", false, &e), 0);
	assert_true(e.offset == 0 && e.length == 2ULL << 20 && e.seq == 0);
	assert_int_equal(dcdfs_parse_extent("0x400000:0x200000:3", true, &e),
			 0);
	assert_true(e.offset == 0x400000 && e.length == 0x200000 && e.seq == 3);

	assert_int_equal(dcdfs_parse_extent("0:2M:1", false, &e), -EINVAL);
	assert_int_equal(dcdfs_parse_extent("0:0", false, &e), -EINVAL);
	assert_int_equal(dcdfs_parse_extent("2M", false, &e), -EINVAL);
	assert_int_equal(dcdfs_parse_extent(":2M", false, &e), -EINVAL);
	assert_int_equal(dcdfs_parse_extent("0:", false, &e), -EINVAL);
	assert_int_equal(dcdfs_parse_extent("0:2M:", true, &e), -EINVAL);
	assert_int_equal(dcdfs_parse_extent("0:2M:65536", true, &e), -ERANGE);
	assert_int_equal(dcdfs_parse_extent("0:2M:1:2", true, &e), -EINVAL);
	assert_int_equal(dcdfs_parse_extent("0xffffffffffffffff:2", false, &e),
			 -ERANGE);
	/* The detail names the input. */
	assert_non_null(strstr(dcdfs_strerror(-ERANGE), "overflows"));
}

static void test_tags(void **state)
{
	static const char good[] = "6a1d3c5e-8f0b-4b7a-9f51-0c2e8d4a7b10";
	uint8_t tag[DCDFS_TAG_SIZE];
	char buf[DCDFS_TAG_STR_LEN];

	(void) state;
	assert_int_equal(dcdfs_parse_tag(good, tag), 0);
	assert_string_equal(dcdfs_format_tag(tag, buf), good);
	assert_int_equal(dcdfs_parse_tag("6A1D3C5E-8F0B-4B7A-9F51-0C2E8D4A7B10",
					 tag), 0);
	assert_string_equal(dcdfs_format_tag(tag, buf), good);
	assert_int_equal(dcdfs_parse_tag("00000000-0000-0000-0000-000000000000",
					 tag), -EINVAL);
	assert_int_equal(dcdfs_parse_tag("6a1d3c5e8f0b4b7a9f510c2e8d4a7b10",
					 tag), -EINVAL);
	assert_int_equal(dcdfs_parse_tag("6a1d3c5e-8f0b-4b7a-9f51-0c2e8d4a7b10x",
					 tag), -EINVAL);
	assert_int_equal(dcdfs_parse_tag("", tag), -EINVAL);
}

static void test_format_size(void **state)
{
	char buf[DCDFS_SIZE_STR_LEN];

	(void) state;
	assert_string_equal(dcdfs_format_size(0, buf), "0 B");
	assert_string_equal(dcdfs_format_size(1023, buf), "1023 B");
	assert_string_equal(dcdfs_format_size(2ULL << 20, buf), "2.00 MiB");
	assert_string_equal(dcdfs_format_size(3ULL << 29, buf), "1.50 GiB");
	assert_string_equal(dcdfs_format_size(UINT64_MAX, buf), "16.00 EiB");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_size_good),
		cmocka_unit_test(test_parse_size_bad),
		cmocka_unit_test(test_parse_extent),
		cmocka_unit_test(test_tags),
		cmocka_unit_test(test_format_size),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
