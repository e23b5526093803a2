/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smaps.h - how much of a range of this process is mapped in 2 MiB pages,
 * for the direct-mapping tests (dmap) and the benchmark (mapbench)
 */
#ifndef DCDFS_TESTS_SMAPS_H
#define DCDFS_TESTS_SMAPS_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* kB of [@p, @p + @size) mapped with PMDs or hugetlb pages. */
static inline unsigned long smaps_huge_kb(const void *p, size_t size)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	uintptr_t a = (uintptr_t)p, e = a + size;
	unsigned long total = 0, s, t, v;
	char line[256];
	int in = 0;

	while (f && fgets(line, sizeof(line), f)) {
		/* A mapping's first line: "start-end perms ...". */
		if (sscanf(line, "%lx-%lx ", &s, &t) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			in = s < e && t > a;
			continue;
		}
		if (in && (sscanf(line, "FilePmdMapped: %lu kB", &v) == 1 ||
			   sscanf(line, "ShmemPmdMapped: %lu kB", &v) == 1 ||
			   sscanf(line, "Shared_Hugetlb: %lu kB", &v) == 1 ||
			   sscanf(line, "Private_Hugetlb: %lu kB", &v) == 1))
			total += v;
	}
	if (f)
		fclose(f);
	return total;
}

#endif /* DCDFS_TESTS_SMAPS_H */
