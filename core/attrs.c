// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * DOC: attribute store
 *
 * One small SQLite database per host and region.  An entry exists only for
 * allocations whose ownership or mode was changed; it is deleted once the
 * allocation is given back (not before: if the device fails the release, the
 * file comes back with its mode), so a later allocation that happens to get
 * the same name starts from the mount's defaults.  Entries for names the
 * host no longer holds are pruned when the host starts, which covers a
 * crash between the release and the deletion.
 */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include <dcdfs/libdcdfs.h>

#include "attrs.h"
#include "cleanup.h"
#include "private.h"

struct attrs {
	struct dcdfs_ctx *ctx;
	pthread_mutex_t lock;	/* serialises the use of db */
	sqlite3 *db;
};

static int attrs_rc(struct attrs *a, int rc)
{
	if (rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW)
		return 0;
	dbg(a->ctx, "attribute store: %s\n", sqlite3_errmsg(a->db));
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_CANTOPEN:
		return -EACCES;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -EUCLEAN;
	default:
		return -EIO;
	}
}

int attrs_open(struct dcdfs_ctx *ctx, const char *path, struct attrs **ret)
{
	static const char setup[] =
		"PRAGMA journal_mode = WAL;"
		"PRAGMA synchronous = NORMAL;"
		"CREATE TABLE IF NOT EXISTS attr(name TEXT PRIMARY KEY,"
		" mode INTEGER NOT NULL, uid INTEGER NOT NULL,"
		" gid INTEGER NOT NULL, ctime INTEGER NOT NULL) WITHOUT ROWID;";
	struct attrs *a = calloc(1, sizeof(*a));
	int rc;

	if (!a)
		return -ENOMEM;
	a->ctx = dcdfs_ref(ctx);
	pthread_mutex_init(&a->lock, NULL);
	rc = sqlite3_open_v2(path, &a->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				     SQLITE_OPEN_NOMUTEX, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_busy_timeout(a->db, 10000);
		rc = sqlite3_exec(a->db, setup, NULL, NULL, NULL);
	}
	if (rc != SQLITE_OK) {
		rc = set_error(attrs_rc(a, rc), "cannot open attribute store"
			       " '%s': %s", path, sqlite3_errmsg(a->db));
		attrs_close(a);
		return rc;
	}
	*ret = a;
	return 0;
}

void attrs_close(struct attrs *a)
{
	if (!a)
		return;
	sqlite3_close(a->db);
	pthread_mutex_destroy(&a->lock);
	dcdfs_unref(a->ctx);
	free(a);
}

int attrs_foreach(struct attrs *a, attrs_cb cb, void *arg)
{
	sqlite3_stmt *st;
	int rc;

	guard(mutex)(&a->lock);
	rc = sqlite3_prepare_v2(a->db, "SELECT name, mode, uid, gid, ctime"
				" FROM attr", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return attrs_rc(a, rc);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct attrs_entry e = {
			.mode = (uint32_t)sqlite3_column_int64(st, 1),
			.uid = (uint32_t)sqlite3_column_int64(st, 2),
			.gid = (uint32_t)sqlite3_column_int64(st, 3),
			.ctime = sqlite3_column_int64(st, 4),
		};
		const char *name = (const char *)sqlite3_column_text(st, 0);

		if (name && cb(name, &e, arg))
			break;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : attrs_rc(a, rc);
}

int attrs_set(struct attrs *a, const char *name, const struct attrs_entry *e)
{
	sqlite3_stmt *st;
	int rc;

	guard(mutex)(&a->lock);
	rc = sqlite3_prepare_v2(a->db, "INSERT OR REPLACE INTO attr VALUES"
				" (?1, ?2, ?3, ?4, ?5)", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return attrs_rc(a, rc);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, e->mode);
	sqlite3_bind_int64(st, 3, e->uid);
	sqlite3_bind_int64(st, 4, e->gid);
	sqlite3_bind_int64(st, 5, e->ctime);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return attrs_rc(a, rc);
}

int attrs_del(struct attrs *a, const char *name)
{
	sqlite3_stmt *st;
	int rc;

	guard(mutex)(&a->lock);
	rc = sqlite3_prepare_v2(a->db, "DELETE FROM attr WHERE name = ?1", -1,
				&st, NULL);
	if (rc != SQLITE_OK)
		return attrs_rc(a, rc);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return attrs_rc(a, rc);
}
