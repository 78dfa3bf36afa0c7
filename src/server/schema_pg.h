/*
 * schema_pg.h - the one owner of chubd's PostgreSQL schema.
 */
#ifndef CHUBD_SCHEMA_PG_H
#define CHUBD_SCHEMA_PG_H

#include <stddef.h>
#include <libpq-fe.h>

/* Brings the database up to the newest schema version, one migration per
 * transaction, recorded in the schema_version table. Safe when several
 * chubd start at once on one database: the first to lock the table
 * migrates, the others then find nothing left to do. Returns 0, or -1 with
 * a message in err. */
int schema_pg_migrate(PGconn *db, char *err, size_t errn);

/* The schema version this chubd writes (schema_sqlite_version()'s). */
int schema_pg_version(void);

#endif
