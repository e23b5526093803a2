// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * DOC: simulated device - consistency check
 *
 * dcdfs_simdev_check() proves the invariants the rest of the device relies
 * on, from the database and the memory directory alone: it is what the crash
 * tests run after killing a process mid-change.  It only reads.
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <dcdfs/libdcdfs.h>

#include "cleanup.h"
#include "private.h"
#include "simdev.h"

#define EXT_FMT "0x%" PRIx64 ":0x%" PRIx64

/* Run @sql; any row it returns is a broken invariant described by @what. */
static int expect_no_rows_locked(struct dcdfs_simdev *dev, const char *sql,
				 const char *what)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(dev->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sql_rc(dev, rc);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		rc = set_error(-EUCLEAN, "device '%s': %s (%lld)", dev->path,
			       what, (long long)sqlite3_column_int64(st, 0));
	else
		rc = rc == SQLITE_DONE ? 0 : sql_rc(dev, rc);
	sqlite3_finalize(st);
	return rc;
}

static const struct {
	const char *sql;
	const char *what;
} invariants[] = {
	{ "SELECT id FROM extent WHERE length <= 0 OR start < 0",
	  "extent with a bad range" },
	{ "SELECT id FROM extent WHERE host < 0 OR host > 65535",
	  "extent of a bad host" },
	{ "SELECT x.id FROM extent x WHERE x.chain IS NOT NULL AND NOT EXISTS"
	  " (SELECT 1 FROM event e WHERE e.id = x.chain AND e.kind = 0"
	  " AND e.state = 0 AND e.host = x.host AND e.region = x.region)",
	  "offered extent without its pending add event" },
	{ "SELECT e.id FROM event e WHERE e.kind = 0 AND e.state = 0 AND"
	  " e.nr_extents != (SELECT count(*) FROM extent x WHERE x.chain = e.id)",
	  "pending add event missing extents" },
	{ "SELECT e.id FROM event e WHERE e.kind = 0 AND e.state != 0 AND"
	  " EXISTS (SELECT 1 FROM extent x WHERE x.chain = e.id)",
	  "answered add event still offering extents" },
	{ "SELECT i.event FROM release_item i JOIN event e ON e.id = i.event"
	  " WHERE e.kind = 1 AND (e.state = 2 OR NOT EXISTS (SELECT 1 FROM"
	  " extent x WHERE x.region = i.region AND x.start = i.start AND"
	  " x.length = i.length AND x.host = e.host AND x.chain IS NULL))",
	  "release waiting for an extent the host does not hold" },
	{ "SELECT i.event FROM release_item i WHERE NOT EXISTS"
	  " (SELECT 1 FROM event e WHERE e.id = i.event AND e.kind != 0"
	  " AND e.state != 2)",
	  "release item of no pending release event" },
	{ "SELECT e.id FROM event e WHERE e.kind = 1 AND e.state != 2 AND"
	  " NOT EXISTS (SELECT 1 FROM release_item i WHERE i.event = e.id)",
	  "pending release event with nothing left to release" },
};

/* Extents lie in their region, are aligned, and never overlap. */
static int check_layout_locked(struct dcdfs_simdev *dev)
{
	static const char sql[] = "SELECT region, start, length FROM extent"
				  " ORDER BY region, start";
	unsigned int prev_region = 0;
	uint64_t prev_end = 0;
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(dev->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sql_rc(dev, rc);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t region = sqlite3_column_int64(st, 0);
		uint64_t start = (uint64_t)sqlite3_column_int64(st, 1);
		uint64_t length = (uint64_t)sqlite3_column_int64(st, 2);
		uint64_t end;

		if (region < 0 || region >= dev->nr_regions ||
		    add_overflows(start, length, &end) ||
		    end > dev->regions[region].size ||
		    !is_aligned(start | length, dev->block_size)) {
			rc = set_error(-EUCLEAN, "device '%s': extent " EXT_FMT
				       " of region %lld is out of place",
				       dev->path, start, length,
				       (long long)region);
			break;
		}
		if ((unsigned int)region == prev_region && start < prev_end) {
			rc = set_error(-EUCLEAN, "device '%s': extent " EXT_FMT
				       " overlaps its neighbour", dev->path,
				       start, length);
			break;
		}
		prev_region = (unsigned int)region;
		prev_end = end;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : (rc < 0 ? rc : sql_rc(dev, rc));
}

/* Memory exists only for extents (held or offered) or pending scrubs. */
static int check_memory_locked(struct dcdfs_simdev *dev)
{
	static const char sql[] =
		"SELECT 1 FROM extent WHERE region = ?1 AND start = ?2"
		" UNION ALL SELECT 1 FROM scrub WHERE region = ?1 AND start = ?2";
	struct dirent *de;
	sqlite3_stmt *st;
	DIR *dir;
	int rc;

	dir = opendir(dev->mem_path);
	if (!dir)
		return set_error(-errno, "cannot read '%s': %s", dev->mem_path,
				 strerror(errno));
	rc = sqlite3_prepare_v2(dev->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK) {
		closedir(dir);
		return sql_rc(dev, rc);
	}
	rc = 0;
	while (!rc && (de = readdir(dir))) {
		unsigned int region;
		uint64_t start;
		char tail;

		if (de->d_name[0] == '.')
			continue;
		if (sscanf(de->d_name, "%u-%" SCNx64 "%c", &region, &start,
			   &tail) != 2) {
			rc = set_error(-EUCLEAN, "device '%s': stray file '%s'"
				       " in its memory", dev->path,
				       de->d_name);
			break;
		}
		sqlite3_reset(st);
		sqlite3_bind_int(st, 1, (int)region);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)start);
		if (sqlite3_step(st) != SQLITE_ROW)
			rc = set_error(-EUCLEAN, "device '%s': memory '%s' is"
				       " left behind for free capacity",
				       dev->path, de->d_name);
	}
	sqlite3_finalize(st);
	closedir(dir);
	return rc;
}

DCDFS_EXPORT int dcdfs_simdev_check(struct dcdfs_simdev *dev)
{
	int rc;

	clear_error();
	if (!dev)
		return -EINVAL;
	guard(mutex)(&dev->lock);
	rc = simdev_quick_check_locked(dev);
	for (size_t i = 0; !rc && i < sizeof(invariants) / sizeof(invariants[0]);
	     i++)
		rc = expect_no_rows_locked(dev, invariants[i].sql,
					   invariants[i].what);
	if (!rc)
		rc = check_layout_locked(dev);
	if (!rc)
		rc = check_memory_locked(dev);
	return rc;
}
