/*
 * migrate.c - `chubd migrate --from DATA_DIR --to URL`: copies a hub kept
 * in SQLite into PostgreSQL, so a team can move the hub it has to the
 * database it runs, with nothing lost.
 *
 * Every table is copied row by row with the same ids (keys, models and
 * their order, metrics, checkpoints, datasets, page sessions, events,
 * Platform runs (projects, runs, model documents, console), each owner's
 * count of models, and the secret that signs download URLs, so links
 * handed out before still work), MIGRATE_BATCH rows per transaction,
 * each INSERT ... ON CONFLICT DO NOTHING: run again after an
 * interruption, it copies what is missing and duplicates nothing. The
 * identity sequences are then moved past the copied ids, so rows made
 * later get new ones. At the end every table is counted on both sides and
 * the counts printed; any difference fails the command (a target that
 * held other data shows up there). Weights stay where they are: the new
 * instances are pointed at them with --blobs.
 *
 * The source is opened through the SQLite store first, so an older hub is
 * brought to the current schema before it is read; the target is migrated
 * to the same schema version by the PostgreSQL store's own migrations.
 */
#include "migrate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "schema_pg.h"
#include "store.h"

#define MIGRATE_BATCH 500
#define MIGRATE_MAX_COLS 20

/* One table: its columns in order, the source's order, the identity column
 * to move past the copied ids (or NULL), and one letter per column: t
 * text, i integer, r real (may be NULL), b bytes. */
typedef struct migrate_table {
  const char *name;
  const char *cols;
  const char *order;
  const char *identity;
  const char *kinds;
} migrate_table;

static const migrate_table migrate_tables[] = {
    {"keys", "id, owner, prefix, hash, created_ms, revoked_ms", "id", "id",
     "ittbii"},
    {"models",
     "seq, id, owner, meta, config, dataset, lineage, status, created_ms, "
     "updated_ms, last_seen_ms, heartbeat_ms, agent_id, agent_name, deleted, "
     "dataset_id, metrics_count",
     "seq", "seq", "itttttttiiiittiti"},
    {"metrics", "model_id, epoch, data", "model_id, epoch", NULL, "tit"},
    {"checkpoints",
     "id, model_id, epoch, final, is_best, map, size, sha256, created_ms, "
     "suffix",
     "id", "id", "itiiiritit"},
    {"datasets",
     "seq, id, owner, meta, status, size, sha256, filename, files, "
     "created_ms, updated_ms, deleted",
     "seq", "seq", "ittttittiiii"},
    {"sessions", "hash, key_id, created_ms, expires_ms, seq", "hash", NULL,
     "biiii"},
    {"events", "id, client_id, name, params, received_ms", "id", "id", "ittti"},
    {"secrets", "name, value", "name", NULL, "tb"},
    {"projects", "seq, id, owner, name, meta, created_ms, updated_ms, deleted",
     "seq", "seq", "itttiiii"},
    {"runs", "model_id, owner, project_id, name", "model_id", NULL, "tttt"},
    {"model_docs", "model_id, name, body", "model_id, name", NULL, "ttt"},
    {"console", "model_id, chunk_id, seq, content, lines, bytes",
     "model_id, seq", NULL, "ttitii"},
    {"model_system", "model_id, seq, t_ms, epoch, body", "model_id, seq", NULL,
     "tiiit"},
    {"model_counts", "owner, models", "owner", NULL, "ti"},
};

/* Prints what the server said about `what`; returns -1. */
static int migrate_pg_fail(PGconn *pg, const char *what) {
  fprintf(stderr, "chubd migrate: %s: %s", what, PQerrorMessage(pg));
  return -1;
}

static int migrate_pg_exec(PGconn *pg, const char *sql) {
  PGresult *r = PQexec(pg, sql);
  int ok = PQresultStatus(r) == PGRES_COMMAND_OK ||
           PQresultStatus(r) == PGRES_TUPLES_OK;
  PQclear(r);
  return ok ? 0 : migrate_pg_fail(pg, sql);
}

static long long migrate_pg_count(PGconn *pg, const char *table) {
  char sql[128];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
  PGresult *r = PQexec(pg, sql);
  long long n = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1
                    ? atoll(PQgetvalue(r, 0, 0))
                    : -1;
  PQclear(r);
  return n;
}

static long long migrate_sqlite_count(sqlite3 *db, const char *table) {
  char sql[128];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
  sqlite3_stmt *st = NULL;
  long long n = -1;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return n;
}

/* One row's values as libpq text parameters, into bufs (NULL for NULL). */
typedef struct migrate_row {
  char *vals[MIGRATE_MAX_COLS];
  char num[MIGRATE_MAX_COLS][32];
  char *owned[MIGRATE_MAX_COLS];
} migrate_row;

static void migrate_row_clear(migrate_row *r, int n) {
  for (int i = 0; i < n; i++) {
    free(r->owned[i]);
    r->owned[i] = NULL;
  }
}

static int migrate_row_read(sqlite3_stmt *st, const char *kinds,
                            migrate_row *r) {
  static const char hex[] = "0123456789abcdef";
  for (int i = 0; kinds[i]; i++) {
    r->vals[i] = NULL;
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
      continue;
    switch (kinds[i]) {
    case 'i':
      snprintf(r->num[i], sizeof r->num[i], "%lld",
               (long long)sqlite3_column_int64(st, i));
      r->vals[i] = r->num[i];
      break;
    case 'r':
      snprintf(r->num[i], sizeof r->num[i], "%.17g",
               sqlite3_column_double(st, i));
      r->vals[i] = r->num[i];
      break;
    case 'b': {
      const unsigned char *b = sqlite3_column_blob(st, i);
      int len = sqlite3_column_bytes(st, i);
      char *x = malloc(2 * (size_t)len + 3);
      if (!x)
        return -1;
      x[0] = '\\';
      x[1] = 'x';
      for (int k = 0; k < len; k++) {
        x[2 + 2 * k] = hex[b[k] >> 4];
        x[3 + 2 * k] = hex[b[k] & 15];
      }
      x[2 + 2 * len] = '\0';
      r->vals[i] = r->owned[i] = x;
      break;
    }
    default:
      r->vals[i] = (char *)sqlite3_column_text(st, i);
    }
  }
  return 0;
}

/* Copies one table; prints its counts. 0 when both sides hold as many
 * rows, -1 otherwise (said). */
static int migrate_copy(sqlite3 *db, PGconn *pg, const migrate_table *t) {
  int n = (int)strlen(t->kinds);
  char sql[1024], sel[1024];
  int w = snprintf(sql, sizeof sql, "INSERT INTO %s (%s) VALUES (", t->name,
                   t->cols);
  for (int i = 0; i < n; i++)
    w += snprintf(sql + w, sizeof sql - (size_t)w, "%s$%d", i ? ", " : "",
                  i + 1);
  snprintf(sql + w, sizeof sql - (size_t)w, ") ON CONFLICT DO NOTHING");
  snprintf(sel, sizeof sel, "SELECT %s FROM %s ORDER BY %s", t->cols, t->name,
           t->order);
  char stmt[64];
  snprintf(stmt, sizeof stmt, "migrate_%s", t->name);
  PGresult *pr = PQprepare(pg, stmt, sql, n, NULL);
  int ok = PQresultStatus(pr) == PGRES_COMMAND_OK;
  PQclear(pr);
  if (!ok)
    return migrate_pg_fail(pg, sql);
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db, sel, -1, &st, NULL) != SQLITE_OK) {
    fprintf(stderr, "chubd migrate: reading %s: %s\n", t->name,
            sqlite3_errmsg(db));
    return -1;
  }
  long long rows = 0, added = 0;
  int rc = migrate_pg_exec(pg, "BEGIN");
  migrate_row row;
  memset(&row, 0, sizeof row);
  int step;
  while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
    if (migrate_row_read(st, t->kinds, &row) < 0) {
      fprintf(stderr, "chubd migrate: out of memory\n");
      rc = -1;
      break;
    }
    PGresult *r = PQexecPrepared(pg, stmt, n, (const char *const *)row.vals,
                                 NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
      rc = migrate_pg_fail(pg, t->name);
    else
      added += atoll(PQcmdTuples(r));
    PQclear(r);
    migrate_row_clear(&row, n);
    if (rc == 0 && ++rows % MIGRATE_BATCH == 0)
      rc =
          migrate_pg_exec(pg, "COMMIT") < 0 ? -1 : migrate_pg_exec(pg, "BEGIN");
  }
  if (rc == 0 && step != SQLITE_DONE) {
    fprintf(stderr, "chubd migrate: reading %s: %s\n", t->name,
            sqlite3_errmsg(db));
    rc = -1;
  }
  sqlite3_finalize(st);
  if (rc == 0)
    rc = migrate_pg_exec(pg, "COMMIT");
  else
    PQclear(PQexec(pg, "ROLLBACK"));
  if (rc == 0 && t->identity) {
    snprintf(sql, sizeof sql,
             "SELECT setval(pg_get_serial_sequence('%s', '%s'), "
             "(SELECT coalesce(max(%s), 0) + 1 FROM %s), false)",
             t->name, t->identity, t->identity, t->name);
    rc = migrate_pg_exec(pg, sql);
  }
  if (rc != 0)
    return -1;
  long long have = migrate_sqlite_count(db, t->name);
  long long got = migrate_pg_count(pg, t->name);
  printf("  %-12s %9lld in SQLite  %9lld in PostgreSQL  (%lld copied now)\n",
         t->name, have, got, added);
  if (have != got) {
    fprintf(stderr,
            "chubd migrate: %s: %lld rows in SQLite but %lld in PostgreSQL%s\n",
            t->name, have, got,
            got > have ? " (the database held other data: migrate into an "
                         "empty one)"
                       : "");
    return -1;
  }
  return 0;
}

static int migrate_usage(const char *why) {
  fprintf(stderr,
          "chubd migrate: %s\n"
          "usage: chubd migrate --from DATA_DIR --to postgresql://USER@HOST:"
          "PORT/DB\n",
          why);
  return 2;
}

int migrate_command(const char *db_default, int argc, char **argv) {
  const char *from = NULL, *to = db_default && *db_default ? db_default : NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--from") == 0 && i + 1 < argc)
      from = argv[++i];
    else if (strcmp(argv[i], "--to") == 0 && i + 1 < argc)
      to = argv[++i];
    else
      return migrate_usage("unknown argument");
  }
  if (!from)
    return migrate_usage("--from DATA_DIR (the SQLite hub) is missing");
  if (!to)
    return migrate_usage("--to URL (the PostgreSQL database) is missing");
  char err[512], shown[512];
  store_pg_redact(to, shown, sizeof shown);
  /* Through the store first: an older hub is brought to this schema. */
  store *src = store_sqlite_open(from, err, sizeof err);
  if (!src) {
    fprintf(stderr, "chubd migrate: %s\n", err);
    return 1;
  }
  src->ops->close(src);
  char path[4200];
  snprintf(path, sizeof path, "%s/chubd.db", from);
  sqlite3 *db = NULL;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
    fprintf(stderr, "chubd migrate: cannot open %s: %s\n", path,
            db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_close(db);
    return 1;
  }
  sqlite3_busy_timeout(db, 10000);
  PGconn *pg = PQconnectdb(to);
  if (PQstatus(pg) != CONNECTION_OK) {
    fprintf(stderr, "chubd migrate: cannot connect to %s: %s", shown,
            PQerrorMessage(pg));
    PQfinish(pg);
    sqlite3_close(db);
    return 1;
  }
  int rc = 0;
  if (schema_pg_migrate(pg, err, sizeof err) < 0) {
    fprintf(stderr, "chubd migrate: %s: %s\n", shown, err);
    rc = 1;
  }
  if (rc == 0)
    printf("chubd migrate: %s -> %s\n", path, shown);
  for (size_t i = 0;
       rc == 0 && i < sizeof migrate_tables / sizeof migrate_tables[0]; i++)
    if (migrate_copy(db, pg, &migrate_tables[i]) < 0)
      rc = 1;
  if (rc == 0)
    printf("chubd migrate: done, every table holds as many rows on both "
           "sides.\nThe weights stay in %s/blobs: start each chubd on the "
           "database with --blobs %s/blobs (or copy that directory to the "
           "shared one).\n",
           from, from);
  else
    fprintf(stderr, "chubd migrate: not complete; what was copied stays, and "
                    "running the same command again copies the rest\n");
  PQfinish(pg);
  sqlite3_close(db);
  return rc;
}
