/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pattern.h - the data the functional tests write and check
 *
 * The byte at file offset @off for seed @seed: a cheap hash of both, so
 * that data written at one offset cannot pass for data written at another,
 * nor one seed for another.  Seed 0 is the all-zero pattern (fresh memory).
 */
#ifndef DCDFS_TESTS_PATTERN_H
#define DCDFS_TESTS_PATTERN_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline uint8_t pattern_byte(uint64_t seed, uint64_t off)
{
	uint64_t x;

	if (!seed)
		return 0;
	x = (off + 1) * 0x9e3779b97f4a7c15ULL ^ seed * 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 31;
	x *= 0x94d049bb133111ebULL;
	return (uint8_t)(x >> 29);
}

static inline void pattern_fill(uint64_t seed, uint64_t off, uint8_t *buf,
				size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = pattern_byte(seed, off + i);
}

/* Index of the first byte of @buf that differs from the pattern, or -1. */
static inline long long pattern_check(uint64_t seed, uint64_t off,
				      const uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (buf[i] != pattern_byte(seed, off + i))
			return (long long)i;
	return -1;
}

/* A number in decimal, 0x hex, or with a K/M/G suffix; exits on junk. */
static inline uint64_t pattern_number(const char *prog, const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		goto bad;
	switch (*end) {
	case 'K': v <<= 10; end++; break;
	case 'M': v <<= 20; end++; break;
	case 'G': v <<= 30; end++; break;
	}
	if (*end)
		goto bad;
	return v;
bad:
	fprintf(stderr, "%s: bad number '%s'\n", prog, s);
	exit(2);
}

/* "EIO", "ENOENT", ...: golden output must not depend on the locale. */
static inline const char *errname(int e)
{
	const char *n = strerrorname_np(e);

	return n ? n : "E?";
}

#endif /* DCDFS_TESTS_PATTERN_H */
