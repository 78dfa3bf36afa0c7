/*
 * schema_sqlite.h - the one owner of chubd's SQLite schema.
 */
#ifndef CHUBD_SCHEMA_SQLITE_H
#define CHUBD_SCHEMA_SQLITE_H

#include <stddef.h>
#include <sqlite3.h>

/* Brings the database up to the newest schema version, one migration per
 * transaction, tracked in PRAGMA user_version. Returns 0, or -1 with a
 * message in err. */
int schema_sqlite_migrate(sqlite3 *db, char *err, size_t errn);

/* The schema version this chubd writes. */
int schema_sqlite_version(void);

#endif
