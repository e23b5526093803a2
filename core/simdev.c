// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * DOC: simulated Dynamic Capacity Device - lifecycle and storage
 *
 * A device is a directory:
 *
 *   device.db   SQLite database in WAL mode: configuration, extents, events
 *   mem/        memory, one file per extent (unless --memory put it elsewhere)
 *   bell/       doorbell files; touching one wakes whoever watches it
 *   lock/       flock()s: "device" (shared by attached hosts, exclusive for
 *               destroy) and "host-H-region-R" (one process per host)
 *
 * Every change is one SQLite transaction, so it survives kill -9 of any
 * process at any instant.  Memory that stops being held is scrubbed (its file
 * truncated and unlinked) after the transaction that freed it commits; the
 * transaction records the scrub in the "scrub" table first, so a crash in
 * between leaves work that the next opener finishes, and memory is never
 * handed out again unzeroed.
 *
 * A directory that is not a device, or whose database is not ours, is refused
 * before anything in it is opened for writing.
 */
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <numa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include <dcdfs/libdcdfs.h>

#include "cleanup.h"
#include "private.h"
#include "simdev.h"

#define TMPFS_MAGIC 0x01021994
#define RAMFS_MAGIC 0x858458f6
#define HUGETLBFS_MAGIC 0x958458f6
#define BUSY_TIMEOUT_MS 10000

static const char schema[] =
	"CREATE TABLE config(key TEXT PRIMARY KEY, value NOT NULL) WITHOUT ROWID;"
	/* chain: the add event offering the extent, NULL once held. */
	"CREATE TABLE extent(id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" host INTEGER NOT NULL, region INTEGER NOT NULL,"
	" start INTEGER NOT NULL, length INTEGER NOT NULL,"
	" tag BLOB, seq INTEGER NOT NULL, chain INTEGER);"
	"CREATE UNIQUE INDEX extent_pos ON extent(region, start);"
	"CREATE INDEX extent_host ON extent(host, region, chain);"
	"CREATE INDEX extent_chain ON extent(chain) WHERE chain IS NOT NULL;"
	"CREATE INDEX extent_tag ON extent(host, region, tag)"
	" WHERE tag IS NOT NULL;"
	"CREATE TABLE event(id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" kind INTEGER NOT NULL, state INTEGER NOT NULL,"
	" host INTEGER NOT NULL, region INTEGER NOT NULL, tag BLOB,"
	" nr_extents INTEGER NOT NULL, nr_done INTEGER NOT NULL);"
	"CREATE INDEX event_pending ON event(host, region, state);"
	"CREATE INDEX event_done ON event(state, id);"
	/* Extents a release event asks for (or took, when forced). */
	"CREATE TABLE release_item(event INTEGER NOT NULL,"
	" region INTEGER NOT NULL, start INTEGER NOT NULL,"
	" length INTEGER NOT NULL);"
	"CREATE INDEX release_item_pos ON release_item(region, start);"
	"CREATE INDEX release_item_event ON release_item(event);"
	"CREATE TABLE scrub(region INTEGER NOT NULL, start INTEGER NOT NULL,"
	" PRIMARY KEY(region, start)) WITHOUT ROWID;";

#define EVENT_COLS "id, kind, state, host, region, tag, nr_extents, nr_done"
#define EXTENT_COLS "region, start, length, seq, tag"

static const char *const sql_text[_SQL_MAX] = {
	[SQL_CONFIG_GET] = "SELECT value FROM config WHERE key = ?1",
	[SQL_EXTENT_BEFORE] =
		"SELECT start, length, host, chain FROM extent"
		" WHERE region = ?1 AND start < ?2 ORDER BY start DESC LIMIT 1",
	[SQL_EXTENT_AT] = "SELECT host, chain, length, tag, seq FROM extent"
			  " WHERE region = ?1 AND start = ?2",
	[SQL_EXTENT_INSERT] =
		"INSERT INTO extent(host, region, start, length, tag, seq,"
		" chain) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[SQL_EXTENT_DELETE] =
		"DELETE FROM extent WHERE region = ?1 AND start = ?2",
	[SQL_EXTENT_ACCEPT] = "UPDATE extent SET chain = NULL"
			      " WHERE region = ?1 AND start = ?2 AND chain = ?3",
	[SQL_EXTENTS_OF_EVENT] = "SELECT " EXTENT_COLS " FROM extent"
				 " WHERE chain = ?1 ORDER BY id",
	[SQL_EXTENTS_OF_TAG] =
		"SELECT " EXTENT_COLS " FROM extent WHERE host = ?1"
		" AND region = ?2 AND tag = ?3 AND chain IS NULL ORDER BY id",
	[SQL_EXTENTS_HELD] =
		"SELECT " EXTENT_COLS " FROM extent WHERE host = ?1"
		" AND region = ?2 AND chain IS NULL ORDER BY id",
	[SQL_EVENT_INSERT] =
		"INSERT INTO event(kind, state, host, region, tag, nr_extents,"
		" nr_done) VALUES (?1, 0, ?2, ?3, ?4, ?5, 0)",
	[SQL_EVENT_GET] = "SELECT " EVENT_COLS " FROM event WHERE id = ?1",
	[SQL_EVENT_SET_STATE] =
		"UPDATE event SET state = ?2, nr_done = ?3 WHERE id = ?1",
	[SQL_EVENT_PRUNE] = "DELETE FROM event WHERE state = 2 AND id <= ?1",
	[SQL_EVENTS_PENDING] =
		"SELECT " EVENT_COLS " FROM event WHERE host = ?1"
		" AND region = ?2 AND state < 2 ORDER BY id",
	[SQL_EVENTS_PENDING_NEW] =
		"SELECT " EVENT_COLS " FROM event WHERE host = ?1"
		" AND region = ?2 AND state = 0 ORDER BY id",
	[SQL_ITEM_INSERT] = "INSERT INTO release_item(event, region, start,"
			    " length) VALUES (?1, ?2, ?3, ?4)",
	[SQL_ITEMS_OF_EVENT] = "SELECT region, start, length FROM release_item"
			       " WHERE event = ?1 ORDER BY rowid",
	[SQL_ITEM_EVENTS_AT] =
		"SELECT DISTINCT i.event FROM release_item i"
		" JOIN event e ON e.id = i.event"
		" WHERE i.region = ?1 AND i.start = ?2 AND e.kind = 1",
	[SQL_ITEMS_DELETE_AT] = "DELETE FROM release_item WHERE region = ?1"
				" AND start = ?2 AND event = ?3",
	[SQL_ITEMS_DELETE_EVENT] = "DELETE FROM release_item WHERE event = ?1",
	[SQL_EVENT_RECOUNT] =
		"UPDATE event SET nr_done = nr_extents -"
		" (SELECT count(*) FROM release_item WHERE event = ?1),"
		" state = CASE WHEN EXISTS"
		" (SELECT 1 FROM release_item WHERE event = ?1)"
		" THEN state ELSE 2 END WHERE id = ?1",
	[SQL_SCRUB_INSERT] =
		"INSERT OR IGNORE INTO scrub(region, start) VALUES (?1, ?2)",
	[SQL_SCRUB_CLEAR] = "DELETE FROM scrub",
	[SQL_SCRUB_ALL] = "SELECT region, start FROM scrub",
	[SQL_USAGE] = "SELECT coalesce(sum(length) FILTER"
		      " (WHERE chain IS NULL), 0),"
		      " coalesce(sum(length) FILTER"
		      " (WHERE chain IS NOT NULL), 0)"
		      " FROM extent WHERE region = ?1",
};

int sql_rc(struct dcdfs_simdev *dev, int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return set_error(-EBUSY, "device '%s' is busy: %s", dev->path,
				 sqlite3_errstr(rc));
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
	case SQLITE_FORMAT:
		return set_error(-EUCLEAN, "device '%s' is damaged: %s",
				 dev->path, sqlite3_errstr(rc));
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return set_error(-EACCES, "device '%s': %s", dev->path,
				 sqlite3_errstr(rc));
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_CANTOPEN:
		return set_error(-EACCES, "device '%s': %s", dev->path,
				 sqlite3_errstr(rc));
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	default:
		return set_error(-EIO, "device '%s': %s", dev->path,
				 sqlite3_errstr(rc));
	}
}

sqlite3_stmt *stmt_get_locked(struct dcdfs_simdev *dev, enum sql_id id)
{
	sqlite3_stmt *st = dev->stmts[id];

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

int step_done_locked(struct dcdfs_simdev *dev, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : sql_rc(dev, rc);
}

static int exec_locked(struct dcdfs_simdev *dev, const char *sql)
{
	return sql_rc(dev, sqlite3_exec(dev->db, sql, NULL, NULL, NULL));
}

int tx_begin_locked(struct dcdfs_simdev *dev)
{
	return exec_locked(dev, "BEGIN IMMEDIATE");
}

int tx_commit_locked(struct dcdfs_simdev *dev)
{
	int rc = exec_locked(dev, "COMMIT");

	if (rc < 0)
		tx_rollback_locked(dev);
	return rc;
}

void tx_rollback_locked(struct dcdfs_simdev *dev)
{
	if (!sqlite3_get_autocommit(dev->db))
		(void) sqlite3_exec(dev->db, "ROLLBACK", NULL, NULL, NULL);
}

void extent_from_row(sqlite3_stmt *st, int col, struct dcdfs_extent *ext)
{
	const void *tag;

	memset(ext, 0, sizeof(*ext));
	ext->region = (unsigned int)sqlite3_column_int(st, col);
	ext->offset = (uint64_t)sqlite3_column_int64(st, col + 1);
	ext->length = (uint64_t)sqlite3_column_int64(st, col + 2);
	ext->seq = (uint16_t)sqlite3_column_int(st, col + 3);
	tag = sqlite3_column_blob(st, col + 4);
	if (tag && sqlite3_column_bytes(st, col + 4) == DCDFS_TAG_SIZE) {
		ext->tagged = true;
		memcpy(ext->tag, tag, DCDFS_TAG_SIZE);
	}
}

void bind_tag(sqlite3_stmt *st, int col, const struct dcdfs_extent *ext)
{
	if (ext->tagged)
		sqlite3_bind_blob(st, col, ext->tag, DCDFS_TAG_SIZE,
				  SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, col);
}

int event_get_locked(struct dcdfs_simdev *dev, uint64_t id,
		     struct dcdfs_event_info *ret)
{
	sqlite3_stmt *st = stmt_get_locked(dev, SQL_EVENT_GET);
	const void *tag;
	int rc;

	sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return rc == SQLITE_DONE ? -ENOENT : sql_rc(dev, rc);
	}
	memset(ret, 0, sizeof(*ret));
	ret->id = (uint64_t)sqlite3_column_int64(st, 0);
	ret->kind = (enum dcdfs_event_kind)sqlite3_column_int(st, 1);
	ret->state = (enum dcdfs_event_state)sqlite3_column_int(st, 2);
	ret->host = (unsigned int)sqlite3_column_int(st, 3);
	ret->region = (unsigned int)sqlite3_column_int(st, 4);
	tag = sqlite3_column_blob(st, 5);
	if (tag && sqlite3_column_bytes(st, 5) == DCDFS_TAG_SIZE) {
		ret->tagged = true;
		memcpy(ret->tag, tag, DCDFS_TAG_SIZE);
	}
	ret->nr_extents = (unsigned int)sqlite3_column_int(st, 6);
	ret->nr_done = (unsigned int)sqlite3_column_int(st, 7);
	sqlite3_reset(st);
	return 0;
}

/* Release events waiting for the extent at @start lose that item. */
static int complete_items_locked(struct dcdfs_simdev *dev,
				 unsigned int region, uint64_t start)
{
	sqlite3_stmt *st = stmt_get_locked(dev, SQL_ITEM_EVENTS_AT);
	int64_t events[8];
	int n = 0, rc;

	sqlite3_bind_int(st, 1, (int)region);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)start);
	/* An extent is asked for by a handful of events (FM retries). */
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < 8)
		events[n++] = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sql_rc(dev, rc);

	for (int i = 0; i < n; i++) {
		st = stmt_get_locked(dev, SQL_ITEMS_DELETE_AT);
		sqlite3_bind_int(st, 1, (int)region);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)start);
		sqlite3_bind_int64(st, 3, events[i]);
		rc = step_done_locked(dev, st);
		if (rc < 0)
			return rc;
		st = stmt_get_locked(dev, SQL_EVENT_RECOUNT);
		sqlite3_bind_int64(st, 1, events[i]);
		rc = step_done_locked(dev, st);
		if (rc < 0)
			return rc;
	}
	/* More than 8 events for one extent: finish them in another pass. */
	return rc == SQLITE_ROW ? complete_items_locked(dev, region, start) : 0;
}

/*
 * Forget the extent at @start: its capacity becomes free, the release events
 * waiting for it are satisfied, and its memory is queued for scrubbing.
 */
int extent_remove_locked(struct dcdfs_simdev *dev, unsigned int region,
			 uint64_t start)
{
	sqlite3_stmt *st;
	int rc;

	st = stmt_get_locked(dev, SQL_EXTENT_DELETE);
	sqlite3_bind_int(st, 1, (int)region);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)start);
	rc = step_done_locked(dev, st);
	if (rc < 0)
		return rc;
	st = stmt_get_locked(dev, SQL_SCRUB_INSERT);
	sqlite3_bind_int(st, 1, (int)region);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)start);
	rc = step_done_locked(dev, st);
	if (rc < 0)
		return rc;
	return complete_items_locked(dev, region, start);
}

bool extent_exists_locked(struct dcdfs_simdev *dev, unsigned int region,
			  uint64_t start)
{
	sqlite3_stmt *st = stmt_get_locked(dev, SQL_EXTENT_AT);
	bool found;

	sqlite3_bind_int(st, 1, (int)region);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)start);
	found = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_reset(st);
	return found;
}

/*
 * Scrub the memory of every position queued in the scrub table, unless an
 * extent has been offered there again meanwhile (then accepting it zeroes
 * the memory).  The write lock is held throughout, so no accept can create
 * the file while it is being removed.
 */
int scrub_locked(struct dcdfs_simdev *dev)
{
	sqlite3_stmt *st;
	int rc;

	rc = tx_begin_locked(dev);
	if (rc < 0)
		return rc;
	/*
	 * One pass, then the table is emptied: deleting each row by the
	 * values read back never ends on a row whose values do not read back
	 * as stored (a damaged database; found by fuzz_device).
	 */
	st = stmt_get_locked(dev, SQL_SCRUB_ALL);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		unsigned int region = (unsigned int)sqlite3_column_int(st, 0);
		uint64_t start = (uint64_t)sqlite3_column_int64(st, 1);

		if (!extent_exists_locked(dev, region, start))
			mem_scrub(dev, region, start);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		tx_rollback_locked(dev);
		return sql_rc(dev, rc);
	}
	rc = step_done_locked(dev, stmt_get_locked(dev, SQL_SCRUB_CLEAR));
	if (rc < 0) {
		tx_rollback_locked(dev);
		return rc;
	}
	return tx_commit_locked(dev);
}

/*
 * SQLite's integrity check (without the costly index cross-checks).  Only
 * the first line of its report goes into the message: one line per error.
 */
int simdev_quick_check_locked(struct dcdfs_simdev *dev)
{
	sqlite3_stmt *st;
	const unsigned char *res;
	int rc;

	rc = sqlite3_prepare_v2(dev->db, "PRAGMA quick_check(1)", -1, &st,
				NULL);
	if (rc != SQLITE_OK)
		return sql_rc(dev, rc);
	rc = sqlite3_step(st);
	res = rc == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
	if (rc == SQLITE_ROW && (!res || strcmp((const char *)res, "ok"))) {
		const char *msg = res ? (const char *)res : "?";

		/* "*** in database main ***\nPage 12: ..." : the page line. */
		if (!strncmp(msg, "***", 3) && strchr(msg, '\n'))
			msg = strchr(msg, '\n') + 1;
		rc = set_error(-EUCLEAN, "device '%s' is damaged: %.*s",
			       dev->path, (int)strcspn(msg, "\n"), msg);
	}
	else
		rc = rc == SQLITE_ROW ? 0 : sql_rc(dev, rc);
	sqlite3_finalize(st);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Opening                                                                  */
/* ------------------------------------------------------------------------ */

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/*
 * Look at the database header before SQLite opens the file for writing: a
 * file that is not ours is never touched.
 */
static int check_db_header(const char *path, const char *dbpath)
{
	static const char magic[16] = "SQLite format 3";
	unsigned char hdr[100];
	uint32_t version;
	ssize_t n;
	/* O_NONBLOCK: a FIFO named device.db must not hang us. */
	_cleanup_close_ int fd = open(dbpath, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	struct stat st;

	if (fd < 0) {
		if (errno == ENOENT)
			return set_error(-ENODEV,
					 "'%s' is not a dcdfs device (no %s)",
					 path, SIMDEV_DB);
		return set_error(-errno, "cannot open '%s': %s", dbpath,
				 strerror(errno));
	}
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return set_error(-ENODEV, "'%s' is not a dcdfs device ('%s' is"
				 " not a file)", path, dbpath);
	n = pread(fd, hdr, sizeof(hdr), 0);
	if (n < 0)
		return set_error(-errno, "cannot read '%s': %s", dbpath,
				 strerror(errno));
	if ((size_t)n < sizeof(hdr) || memcmp(hdr, magic, sizeof(magic)))
		return set_error(-EUCLEAN,
				 "'%s' is not a dcdfs device database"
				 " (damaged or foreign)", dbpath);
	if (be32(hdr + 68) != SIMDEV_APP_ID)
		return set_error(-ENODEV,
				 "'%s' is not a dcdfs device (foreign database"
				 " '%s')", path, dbpath);
	version = be32(hdr + 60);
	if (version > DCDFS_SIMDEV_FORMAT)
		return set_error(-EPROTONOSUPPORT,
				 "device '%s' has format version %u; this"
				 " dcdfs supports up to %u", path, version,
				 DCDFS_SIMDEV_FORMAT);
	if (version == 0)
		return set_error(-EUCLEAN, "device '%s' is damaged: no format"
				 " version", path);
	return 0;
}

static int config_get_locked(struct dcdfs_simdev *dev, const char *key,
			     char *buf, size_t len)
{
	sqlite3_stmt *st = stmt_get_locked(dev, SQL_CONFIG_GET);
	const unsigned char *v;
	int rc;

	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		if (rc == SQLITE_DONE)
			return set_error(-EUCLEAN, "device '%s' is damaged:"
					 " no '%s' in its configuration",
					 dev->path, key);
		return sql_rc(dev, rc);
	}
	v = sqlite3_column_text(st, 0);
	if (!v || (size_t)snprintf(buf, len, "%s", v) >= len) {
		sqlite3_reset(st);
		return set_error(-EUCLEAN, "device '%s' is damaged: bad '%s'",
				 dev->path, key);
	}
	sqlite3_reset(st);
	return 0;
}

static int config_get_u64_locked(struct dcdfs_simdev *dev, const char *key,
				 uint64_t *ret)
{
	char buf[32];
	char *end;
	int rc;

	rc = config_get_locked(dev, key, buf, sizeof(buf));
	if (rc < 0)
		return rc;
	errno = 0;
	*ret = strtoull(buf, &end, 10);
	if (errno || *end || buf[0] == '-' || end == buf)
		return set_error(-EUCLEAN, "device '%s' is damaged: bad '%s'",
				 dev->path, key);
	return 0;
}

static int validate_geometry(uint64_t size, unsigned int nr_regions,
			     uint64_t block)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);

	if (size == 0)
		return set_error(-EINVAL, "size must not be zero");
	if (nr_regions < 1 || nr_regions > DCDFS_SIMDEV_MAX_REGIONS)
		return set_error(-EINVAL, "regions must be 1 to %d",
				 DCDFS_SIMDEV_MAX_REGIONS);
	if (!is_power_of_2(block) || block < page)
		return set_error(-EINVAL, "block size %" PRIu64 " is not a"
				 " power of two of at least %" PRIu64, block,
				 page);
	if (size > (uint64_t)INT64_MAX)
		return set_error(-EINVAL, "size %" PRIu64 " is too large",
				 size);
	if (size % ((uint64_t)nr_regions * block))
		return set_error(-EINVAL, "size %#" PRIx64 " is not a multiple"
				 " of %u region(s) of %#" PRIx64 "-byte blocks",
				 size, nr_regions, block);
	return 0;
}

static int load_config_locked(struct dcdfs_simdev *dev)
{
	char buf[PATH_MAX];
	uint64_t v, nr;
	uuid_t u;
	int rc;

	rc = config_get_u64_locked(dev, "size", &dev->size);
	if (!rc)
		rc = config_get_u64_locked(dev, "regions", &nr);
	if (!rc)
		rc = config_get_u64_locked(dev, "block_size", &dev->block_size);
	if (!rc)
		rc = config_get_u64_locked(dev, "numa_node", &v);
	if (rc < 0)
		return rc;
	/* numa_node is stored plus one, so that "unbound" is 0. */
	if (nr > DCDFS_SIMDEV_MAX_REGIONS || v > INT_MAX ||
	    validate_geometry(dev->size, (unsigned int)nr, dev->block_size))
		return set_error(-EUCLEAN, "device '%s' is damaged: bad"
				 " geometry", dev->path);
	dev->nr_regions = (unsigned int)nr;
	dev->numa_node = (int)v - 1;
	for (unsigned int i = 0; i < dev->nr_regions; i++)
		dev->regions[i].size = dev->size / dev->nr_regions;

	rc = config_get_locked(dev, "uuid", dev->uuid, sizeof(dev->uuid));
	if (rc < 0)
		return rc;
	if (uuid_parse(dev->uuid, u))
		return set_error(-EUCLEAN, "device '%s' is damaged: bad uuid",
				 dev->path);
	rc = config_get_locked(dev, "memory", buf, sizeof(buf));
	if (rc < 0)
		return rc;
	if (buf[0] == '/')
		dev->mem_path = strdup(buf);
	else if (asprintf(&dev->mem_path, "%s/%s", dev->path, buf) < 0)
		dev->mem_path = NULL;
	return dev->mem_path ? 0 : -ENOMEM;
}

static int prepare_all_locked(struct dcdfs_simdev *dev)
{
	for (int i = 0; i < _SQL_MAX; i++) {
		int rc = sqlite3_prepare_v3(dev->db, sql_text[i], -1,
					    SQLITE_PREPARE_PERSISTENT,
					    &dev->stmts[i], NULL);
		/* Our statements only fail to compile against another schema. */
		if (rc == SQLITE_ERROR)
			return set_error(-EUCLEAN, "device '%s' is damaged: %s",
					 dev->path, sqlite3_errmsg(dev->db));
		if (rc != SQLITE_OK)
			return sql_rc(dev, rc);
	}
	return 0;
}

static int open_db(struct dcdfs_simdev *dev, const char *dbpath)
{
	int rc;

	rc = sqlite3_open_v2(dbpath, &dev->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK)
		return sql_rc(dev, rc);
	sqlite3_busy_timeout(dev->db, BUSY_TIMEOUT_MS);
	rc = exec_locked(dev, "PRAGMA synchronous = NORMAL");
	if (rc < 0)
		return rc;
	return prepare_all_locked(dev);
}

static struct dcdfs_simdev *simdev_alloc(struct dcdfs_ctx *ctx,
					 const char *path)
{
	struct dcdfs_simdev *dev = calloc(1, sizeof(*dev));

	if (!dev)
		return NULL;
	dev->path = realpath(path, NULL);
	if (!dev->path) {
		free(dev);
		return NULL;
	}
	dev->ctx = dcdfs_ref(ctx);
	pthread_mutex_init(&dev->lock, NULL);
	dev->mem_fd = -1;
	dev->bell_fd = -1;
	dev->dev_lock_fd = -1;
	dev->host_lock_fd = -1;
	dev->inotify_fd = -1;
	return dev;
}

static int check_lock_dir(struct dcdfs_simdev *dev)
{
	_cleanup_free_ char *lock = NULL;
	struct stat st;

	if (asprintf(&lock, "%s/%s", dev->path, SIMDEV_LOCK_DIR) < 0)
		return -ENOMEM;
	if (stat(lock, &st) < 0 || !S_ISDIR(st.st_mode))
		return set_error(-EUCLEAN, "device '%s' is damaged: '%s' is not"
				 " a directory", dev->path, lock);
	return 0;
}

static int open_dirs(struct dcdfs_simdev *dev)
{
	_cleanup_free_ char *bell = NULL;

	/* Memory on a RAM file system is gone after a reboot: start empty. */
	if (mkdir(dev->mem_path, 0700) < 0 && errno != EEXIST)
		return set_error(-errno, "cannot create '%s': %s",
				 dev->mem_path, strerror(errno));
	dev->mem_fd = open(dev->mem_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dev->mem_fd < 0)
		return set_error(-errno, "cannot open '%s': %s", dev->mem_path,
				 strerror(errno));
	if (asprintf(&bell, "%s/%s", dev->path, SIMDEV_BELL_DIR) < 0)
		return -ENOMEM;
	dev->bell_fd = open(bell, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dev->bell_fd < 0)
		return set_error(errno == ENOENT || errno == ENOTDIR ? -EUCLEAN :
								       -errno,
				 "device '%s' is damaged: cannot open '%s': %s",
				 dev->path, bell, strerror(errno));
	return check_lock_dir(dev);
}

static int has_scrub_work_locked(struct dcdfs_simdev *dev)
{
	sqlite3_stmt *st = stmt_get_locked(dev, SQL_SCRUB_ALL);
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : sql_rc(dev, rc);
}

DCDFS_EXPORT int dcdfs_simdev_open(struct dcdfs_ctx *ctx, const char *path,
				   struct dcdfs_simdev **ret)
{
	_cleanup_free_ char *dbpath = NULL;
	struct dcdfs_simdev *dev;
	struct stat st;
	int rc;

	clear_error();
	if (!ctx || !path || !ret)
		return -EINVAL;
	if (stat(path, &st) < 0)
		return set_error(-errno, "cannot open device '%s': %s", path,
				 strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return set_error(-ENODEV, "'%s' is not a dcdfs device (not a"
				 " directory)", path);
	if (asprintf(&dbpath, "%s/%s", path, SIMDEV_DB) < 0)
		return -ENOMEM;
	rc = check_db_header(path, dbpath);
	if (rc < 0)
		return rc;

	dev = simdev_alloc(ctx, path);
	if (!dev)
		return -ENOMEM;
	rc = open_db(dev, dbpath);
	if (!rc)
		rc = load_config_locked(dev);
	if (!rc)
		rc = open_dirs(dev);
	if (!rc)
		rc = has_scrub_work_locked(dev);
	if (rc > 0)
		rc = scrub_locked(dev);
	if (rc < 0) {
		dcdfs_simdev_close(dev);
		return rc;
	}
	*ret = dev;
	return 0;
}

DCDFS_EXPORT void dcdfs_simdev_close(struct dcdfs_simdev *dev)
{
	if (!dev)
		return;
	for (int i = 0; i < _SQL_MAX; i++)
		sqlite3_finalize(dev->stmts[i]);
	sqlite3_close(dev->db);
	if (dev->mem_fd >= 0)
		(void) close(dev->mem_fd);
	if (dev->bell_fd >= 0)
		(void) close(dev->bell_fd);
	if (dev->inotify_fd >= 0)
		(void) close(dev->inotify_fd);
	if (dev->host_lock_fd >= 0)
		(void) close(dev->host_lock_fd);
	if (dev->dev_lock_fd >= 0)
		(void) close(dev->dev_lock_fd);
	pthread_mutex_destroy(&dev->lock);
	dcdfs_unref(dev->ctx);
	free(dev->mem_path);
	free(dev->path);
	free(dev);
}

/* ------------------------------------------------------------------------ */
/* Creation and destruction                                                 */
/* ------------------------------------------------------------------------ */

static bool on_ram_fs(const char *path, struct statfs *ret)
{
	struct statfs sfs;

	if (statfs(path, &sfs) < 0)
		return false;
	if (ret)
		*ret = sfs;
	return sfs.f_type == TMPFS_MAGIC || sfs.f_type == RAMFS_MAGIC ||
	       sfs.f_type == HUGETLBFS_MAGIC;
}

/*
 * Create the missing parents of @path; *@ret_first is the topmost one made
 * (the caller frees it), or NULL if none was, so a failure can undo them.
 */
static int mkdir_parents(const char *path, char **ret_first)
{
	_cleanup_free_ char *copy = strdup(path);
	char *p;

	*ret_first = NULL;
	if (!copy)
		return -ENOMEM;
	for (p = copy + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		if (mkdir(copy, 0700) == 0 && !*ret_first)
			*ret_first = strdup(copy);
		else if (errno != EEXIST)
			return set_error(-errno, "cannot create '%s': %s", copy,
					 strerror(errno));
		*p = '/';
	}
	return 0;
}

/* Remove the parents mkdir_parents() made, deepest first. */
static void rmdir_parents(const char *path, const char *first)
{
	_cleanup_free_ char *copy = strdup(path);
	char *p;

	while (copy && first && (p = strrchr(copy, '/')) && p != copy) {
		*p = '\0';
		if (strlen(copy) < strlen(first) || rmdir(copy) < 0)
			break;
	}
}

/*
 * Where the memory goes: --memory names a tmpfs or hugetlbfs directory; by
 * default it lives in the device directory if that is on a RAM file system,
 * and in /dev/shm otherwise.
 */
static int choose_memory(const struct dcdfs_simdev_config *cfg,
			 const char *tmpdir, const char *uuid, char **ret)
{
	if (!cfg->memory) {
		if (on_ram_fs(tmpdir, NULL))
			*ret = strdup(SIMDEV_MEM_DIR);
		else if (asprintf(ret, "/dev/shm/dcdfs-mem-%s", uuid) < 0)
			*ret = NULL;
		return *ret ? 0 : -ENOMEM;
	}
	if (asprintf(ret, "%s/dcdfs-%s", cfg->memory, uuid) < 0)
		*ret = NULL;
	return *ret ? 0 : -ENOMEM;
}

/* --memory, checked before anything is created. */
static int check_memory(const struct dcdfs_simdev_config *cfg)
{
	struct statfs sfs;

	if (!cfg->memory)
		return 0;
	if (cfg->memory[0] != '/')
		return set_error(-EINVAL, "memory path '%s' is not absolute",
				 cfg->memory);
	if (!on_ram_fs(cfg->memory, &sfs))
		return set_error(-EINVAL, "memory path '%s' is not a directory"
				 " on tmpfs or hugetlbfs", cfg->memory);
	if (sfs.f_type == HUGETLBFS_MAGIC &&
	    cfg->block_size % (uint64_t)sfs.f_bsize)
		return set_error(-EINVAL, "block size %#" PRIx64 " is not a"
				 " multiple of the huge page size %#lx",
				 cfg->block_size, (unsigned long)sfs.f_bsize);
	return 0;
}

static int check_numa(int node)
{
	if (node < 0)
		return 0;
	if (numa_available() < 0)
		return set_error(-ENODEV, "NUMA is not available on this"
				 " machine");
	if (node > numa_max_node() || numa_node_size64(node, NULL) <= 0)
		return set_error(-ENODEV, "NUMA node %d has no memory", node);
	return 0;
}

static int write_db(const char *dbpath, const struct dcdfs_simdev_config *cfg,
		    const char *uuid, const char *memory)
{
	sqlite3 *db;
	char *sql;
	int rc;

	sql = sqlite3_mprintf("PRAGMA journal_mode = WAL;"
			      "PRAGMA application_id = %d;"
			      "PRAGMA user_version = %d;"
			      "BEGIN; %s"
			      "INSERT INTO config VALUES ('uuid', %Q),"
			      " ('size', '%llu'), ('regions', '%u'),"
			      " ('block_size', '%llu'), ('numa_node', '%d'),"
			      " ('memory', %Q), ('created', '%lld');"
			      "COMMIT;",
			      SIMDEV_APP_ID, DCDFS_SIMDEV_FORMAT, schema, uuid,
			      (unsigned long long)cfg->size, cfg->nr_regions,
			      (unsigned long long)cfg->block_size,
			      cfg->numa_node + 1, memory,
			      (long long)time(NULL));
	if (!sql)
		return -ENOMEM;
	rc = sqlite3_open_v2(dbpath, &db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		rc = set_error(-EIO, "cannot create '%s': %s", dbpath,
			       sqlite3_errmsg(db));
	sqlite3_close(db);
	sqlite3_free(sql);
	return rc;
}

static int rm_entry(const char *fpath, const struct stat *sb, int type,
		    struct FTW *ftw)
{
	(void) sb;
	(void) ftw;
	if (type == FTW_DP)
		return rmdir(fpath) < 0 && errno != ENOENT ? -errno : 0;
	/* Truncate first: the memory is freed even if a mapping keeps it. */
	if (type == FTW_F && truncate(fpath, 0) < 0 && errno != ENOENT &&
	    errno != EINVAL)
		return -errno;
	return unlink(fpath) < 0 && errno != ENOENT ? -errno : 0;
}

static int rm_rf(const char *path)
{
	int rc = nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);

	if (rc < 0 && errno == ENOENT)
		return 0;
	return rc > 0 ? -rc : (rc < 0 ? -errno : 0);
}

static int populate(const char *tmpdir, const struct dcdfs_simdev_config *cfg,
		    const char *uuid, char **ret_memory)
{
	_cleanup_free_ char *dbpath = NULL, *memory = NULL, *abs_mem = NULL;
	const char *subdirs[] = { SIMDEV_BELL_DIR, SIMDEV_LOCK_DIR };
	int rc;

	rc = choose_memory(cfg, tmpdir, uuid, &memory);
	if (rc < 0)
		return rc;
	if (memory[0] == '/')
		abs_mem = strdup(memory);
	else if (asprintf(&abs_mem, "%s/%s", tmpdir, memory) < 0)
		abs_mem = NULL;
	if (!abs_mem)
		return -ENOMEM;
	if (mkdir(abs_mem, 0700) < 0)
		return set_error(-errno, "cannot create '%s': %s", abs_mem,
				 strerror(errno));
	for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		_cleanup_free_ char *p = NULL;

		if (asprintf(&p, "%s/%s", tmpdir, subdirs[i]) < 0)
			return -ENOMEM;
		if (mkdir(p, 0700) < 0)
			return set_error(-errno, "cannot create '%s': %s", p,
					 strerror(errno));
	}
	if (asprintf(&dbpath, "%s/%s", tmpdir, SIMDEV_DB) < 0)
		return -ENOMEM;
	rc = write_db(dbpath, cfg, uuid, memory);
	if (rc < 0)
		return rc;
	*ret_memory = memory[0] == '/' ? take_ptr(abs_mem) : NULL;
	return 0;
}

DCDFS_EXPORT char *dcdfs_simdev_default_path(void)
{
	const char *env = getenv("DCDFS_DEVICE");
	char *path;

	if (env && *env)
		return strdup(env);
	if (asprintf(&path, "/dev/shm/dcdfs-%u/default",
		     (unsigned int)getuid()) < 0)
		return NULL;
	return path;
}

static int create_at(struct dcdfs_ctx *ctx, const char *path,
		     const struct dcdfs_simdev_config *cfg, const char *tmpdir)
{
	char uuid[DCDFS_TAG_STR_LEN];
	char *ext_mem = NULL;
	uuid_t u;
	int rc;

	uuid_generate(u);
	uuid_unparse_lower(u, uuid);
	rc = populate(tmpdir, cfg, uuid, &ext_mem);
	/* Publish: the device appears complete or not at all. */
	if (!rc && rename(tmpdir, path) < 0) {
		rc = errno == ENOTEMPTY || errno == EEXIST || errno == ENOTDIR ?
			     set_error(-EEXIST, "'%s' exists and is not an"
				       " empty directory", path) :
			     set_error(-errno, "cannot create '%s': %s", path,
				       strerror(errno));
	}
	if (rc < 0) {
		(void) rm_rf(tmpdir);
		if (ext_mem)
			(void) rm_rf(ext_mem);
	} else {
		dbg(ctx, "created device '%s' (%s)\n", path, uuid);
	}
	free(ext_mem);
	return rc;
}

DCDFS_EXPORT int dcdfs_simdev_create(struct dcdfs_ctx *ctx, const char *path,
				     const struct dcdfs_simdev_config *cfg,
				     struct dcdfs_simdev **ret)
{
	struct dcdfs_simdev_config c;
	_cleanup_free_ char *tmpdir = NULL, *trimmed = NULL, *made = NULL;
	const char *slash;
	int rc;

	clear_error();
	if (!ctx || !path || !*path || !cfg)
		return -EINVAL;
	/* "dev/" is "dev": the temporary sibling must not land inside it. */
	trimmed = strdup(path);
	if (!trimmed)
		return -ENOMEM;
	for (size_t n = strlen(trimmed); n > 1 && trimmed[n - 1] == '/'; n--)
		trimmed[n - 1] = '\0';
	path = trimmed;
	c = *cfg;
	if (!c.nr_regions)
		c.nr_regions = 1;
	if (!c.block_size)
		c.block_size = DCDFS_SIMDEV_DEFAULT_BLOCK;
	rc = validate_geometry(c.size, c.nr_regions, c.block_size);
	if (!rc)
		rc = check_numa(c.numa_node);
	if (rc < 0)
		return rc;
	if (c.numa_node < -1)
		return set_error(-EINVAL, "bad NUMA node %d", c.numa_node);
	rc = check_memory(&c);
	if (!rc)
		rc = mkdir_parents(path, &made);
	if (rc < 0)
		return rc;

	slash = strrchr(path, '/');
	if (asprintf(&tmpdir, "%.*s.%s.tmp-XXXXXX",
		     slash ? (int)(slash - path + 1) : 0, path,
		     slash ? slash + 1 : path) < 0)
		rc = -ENOMEM;
	else if (!mkdtemp(tmpdir))
		rc = set_error(-errno, "cannot create a device next to '%s':"
			       " %s", path, strerror(errno));
	else
		rc = create_at(ctx, path, &c, tmpdir);
	if (rc < 0)
		rmdir_parents(path, made);
	if (rc < 0 || !ret)
		return rc;
	return dcdfs_simdev_open(ctx, path, ret);
}

/* Is @path @dir itself or below it?  Both absolute, without "..". */
static bool path_is_inside(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return !strncmp(path, dir, n) && (path[n] == '/' || path[n] == '\0');
}

DCDFS_EXPORT int dcdfs_simdev_destroy(struct dcdfs_ctx *ctx, const char *path)
{
	_cleanup_free_ char *lock = NULL, *grave = NULL, *ext_mem = NULL;
	_cleanup_close_ int fd = -1;
	struct dcdfs_simdev *dev;
	int rc;

	rc = dcdfs_simdev_open(ctx, path, &dev);
	if (rc < 0)
		return rc;
	/* A damaged device is refused, like any other use of it. */
	scoped_guard(mutex, &dev->lock)
		rc = simdev_quick_check_locked(dev);
	if (rc < 0) {
		dcdfs_simdev_close(dev);
		return rc;
	}
	if (asprintf(&lock, "%s/%s/device", dev->path, SIMDEV_LOCK_DIR) < 0 ||
	    asprintf(&grave, "%s.destroy-%d", dev->path, (int)getpid()) < 0) {
		dcdfs_simdev_close(dev);
		return -ENOMEM;
	}
	if (!path_is_inside(dev->mem_path, dev->path))
		ext_mem = strdup(dev->mem_path);
	dcdfs_simdev_close(dev);

	/* Hosts hold the device lock shared for as long as they are attached. */
	fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return set_error(-errno, "cannot open '%s': %s", lock,
				 strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) < 0)
		return set_error(errno == EWOULDBLOCK ? -EBUSY : -errno,
				 "device '%s' is in use by a host", path);
	if (rename(path, grave) < 0)
		return set_error(-errno, "cannot remove '%s': %s", path,
				 strerror(errno));
	rc = rm_rf(grave);
	if (!rc && ext_mem)
		rc = rm_rf(ext_mem);
	if (rc < 0)
		return set_error(rc, "cannot remove '%s': %s", grave,
				 strerror(-rc));
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Accessors                                                                */
/* ------------------------------------------------------------------------ */

DCDFS_EXPORT const char *dcdfs_simdev_get_path(struct dcdfs_simdev *dev)
{
	return dev ? dev->path : NULL;
}

DCDFS_EXPORT const char *dcdfs_simdev_get_memory_path(struct dcdfs_simdev *dev)
{
	return dev ? dev->mem_path : NULL;
}

DCDFS_EXPORT const char *dcdfs_simdev_get_uuid(struct dcdfs_simdev *dev)
{
	return dev ? dev->uuid : NULL;
}

DCDFS_EXPORT uint64_t dcdfs_simdev_get_size(struct dcdfs_simdev *dev)
{
	return dev ? dev->size : 0;
}

DCDFS_EXPORT unsigned int dcdfs_simdev_get_nr_regions(struct dcdfs_simdev *dev)
{
	return dev ? dev->nr_regions : 0;
}

DCDFS_EXPORT uint64_t dcdfs_simdev_get_block_size(struct dcdfs_simdev *dev)
{
	return dev ? dev->block_size : 0;
}

DCDFS_EXPORT uint64_t dcdfs_simdev_get_region_size(struct dcdfs_simdev *dev,
						   unsigned int region)
{
	if (!dev || region >= dev->nr_regions)
		return 0;
	return dev->regions[region].size;
}

DCDFS_EXPORT int dcdfs_simdev_get_numa_node(struct dcdfs_simdev *dev)
{
	return dev ? dev->numa_node : -1;
}
