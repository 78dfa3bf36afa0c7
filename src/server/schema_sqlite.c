/*
 * schema_sqlite.c - chubd's tables and their history.
 *
 * Each migration is SQL run in one transaction together with the bump of
 * PRAGMA user_version, so a database is always at exactly one version, even
 * when chubd is killed mid-upgrade. Migrations are only ever appended: a
 * released one is never edited, a change is a new migration.
 *
 * schema_pg.c holds the same migrations, with the same numbers, for
 * PostgreSQL; a migration added here is added there too.
 *
 * Model ids are the keys everywhere (not rowids) so that rows can be read
 * and repaired by hand; `seq` orders models newest first for paging.
 */
#include "schema_sqlite.h"

#include <stdio.h>

static const char *const schema_sqlite_migrations[] = {
    /* 1: keys, models, metrics, checkpoints, events */
    "CREATE TABLE keys ("
    "  id INTEGER PRIMARY KEY,"
    "  owner TEXT NOT NULL,"
    "  prefix TEXT NOT NULL,"
    "  hash BLOB NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  revoked_ms INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX keys_prefix ON keys(prefix);"
    "CREATE TABLE models ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  id TEXT NOT NULL UNIQUE,"
    "  owner TEXT NOT NULL,"
    "  meta TEXT NOT NULL,"
    "  config TEXT NOT NULL,"
    "  dataset TEXT NOT NULL,"
    "  lineage TEXT NOT NULL,"
    "  status TEXT NOT NULL DEFAULT 'new',"
    "  created_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL,"
    "  last_seen_ms INTEGER NOT NULL DEFAULT 0,"
    "  heartbeat_ms INTEGER NOT NULL DEFAULT 0,"
    "  agent_id TEXT NOT NULL DEFAULT '',"
    "  agent_name TEXT NOT NULL DEFAULT '',"
    "  deleted INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX models_owner ON models(owner, deleted, seq);"
    "CREATE TABLE metrics ("
    "  model_id TEXT NOT NULL,"
    "  epoch INTEGER NOT NULL,"
    "  data TEXT NOT NULL,"
    "  PRIMARY KEY (model_id, epoch)) WITHOUT ROWID;"
    "CREATE TABLE checkpoints ("
    "  id INTEGER PRIMARY KEY,"
    "  model_id TEXT NOT NULL,"
    "  epoch INTEGER NOT NULL,"
    "  final INTEGER NOT NULL,"
    "  is_best INTEGER NOT NULL,"
    "  map REAL,"
    "  size INTEGER NOT NULL,"
    "  sha256 TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL);"
    "CREATE INDEX checkpoints_model ON checkpoints(model_id, id);"
    "CREATE INDEX checkpoints_sha ON checkpoints(sha256);"
    "CREATE TABLE events ("
    "  id INTEGER PRIMARY KEY,"
    "  client_id TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  params TEXT NOT NULL,"
    "  received_ms INTEGER NOT NULL);",
    /* 2: the suffix of the uploaded file, for download file names */
    "ALTER TABLE checkpoints ADD COLUMN suffix TEXT NOT NULL DEFAULT '.pt';",
    /* 3: datasets, and the dataset a model was created from */
    "CREATE TABLE datasets ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  id TEXT NOT NULL UNIQUE,"
    "  owner TEXT NOT NULL,"
    "  meta TEXT NOT NULL,"
    "  status TEXT NOT NULL DEFAULT 'new',"
    "  size INTEGER NOT NULL DEFAULT 0,"
    "  sha256 TEXT NOT NULL DEFAULT '',"
    "  filename TEXT NOT NULL DEFAULT '',"
    "  files INTEGER NOT NULL DEFAULT 0,"
    "  created_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL,"
    "  deleted INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX datasets_owner ON datasets(owner, deleted, seq);"
    "CREATE INDEX datasets_sha ON datasets(sha256);"
    "ALTER TABLE models ADD COLUMN dataset_id TEXT NOT NULL DEFAULT '';"
    "CREATE INDEX models_dataset ON models(dataset_id, seq) "
    "  WHERE dataset_id != '';",
    /* 4: page sessions: the SHA-256 of a random token, never the token */
    "CREATE TABLE sessions ("
    "  hash BLOB PRIMARY KEY,"
    "  key_id INTEGER NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  expires_ms INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX sessions_expiry ON sessions(expires_ms);",
    /* 5: events counted per client and day */
    "CREATE INDEX events_client ON events(client_id, received_ms);",
    /* 6: sessions numbered in the order they were made, found by key, to
     * keep only a key's newest */
    ("ALTER TABLE sessions ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;"
     "CREATE INDEX sessions_key ON sessions(key_id, seq);"),
    /* 7: secrets every chubd on the database shares (the key that signs
     * download URLs), made once */
    ("CREATE TABLE secrets ("
     "  name TEXT PRIMARY KEY,"
     "  value BLOB NOT NULL) WITHOUT ROWID;"),
    /* 8: Ultralytics Platform runs: projects by name, the model each
     * (owner, project, run name) trains, JSON documents kept per model
     * (train args, results, plots, the stop flag), console chunks */
    ("CREATE TABLE projects ("
     "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
     "  id TEXT NOT NULL UNIQUE,"
     "  owner TEXT NOT NULL,"
     "  name TEXT NOT NULL,"
     "  meta TEXT NOT NULL DEFAULT '{}',"
     "  created_ms INTEGER NOT NULL,"
     "  updated_ms INTEGER NOT NULL,"
     "  deleted INTEGER NOT NULL DEFAULT 0,"
     "  UNIQUE (owner, name));"
     "CREATE TABLE runs ("
     "  model_id TEXT PRIMARY KEY,"
     "  owner TEXT NOT NULL,"
     "  project_id TEXT NOT NULL,"
     "  name TEXT NOT NULL,"
     "  UNIQUE (owner, project_id, name)) WITHOUT ROWID;"
     "CREATE TABLE model_docs ("
     "  model_id TEXT NOT NULL,"
     "  name TEXT NOT NULL,"
     "  body TEXT NOT NULL,"
     "  PRIMARY KEY (model_id, name)) WITHOUT ROWID;"
     "CREATE TABLE console ("
     "  model_id TEXT NOT NULL,"
     "  chunk_id TEXT NOT NULL,"
     "  seq INTEGER NOT NULL,"
     "  content TEXT NOT NULL,"
     "  lines INTEGER NOT NULL,"
     "  bytes INTEGER NOT NULL,"
     "  PRIMARY KEY (model_id, chunk_id)) WITHOUT ROWID;"
     "CREATE INDEX console_seq ON console(model_id, seq);"),
    /* 9: the machine's load while a model trains, one sample per heartbeat
     * (libchub) or per epoch (Platform's system metrics; epoch >= 0, one
     * sample per epoch, replaced when the epoch is sent again) */
    ("CREATE TABLE model_system ("
     "  model_id TEXT NOT NULL,"
     "  seq INTEGER NOT NULL,"
     "  t_ms INTEGER NOT NULL,"
     "  epoch INTEGER NOT NULL,"
     "  body TEXT NOT NULL,"
     "  PRIMARY KEY (model_id, seq)) WITHOUT ROWID;"
     "CREATE UNIQUE INDEX model_system_epoch ON model_system(model_id, epoch)"
     "  WHERE epoch >= 0;"),
    /* 10: flat cost as the hub grows. A model's count of metrics kept on
     * its row (reading a model never counts its epochs), each owner's
     * count of models (a page of the list never counts the owner's
     * models), and the index that pages anyone's models (owner NULL) by
     * seq; one owner's are paged on models_owner. */
    ("ALTER TABLE models ADD COLUMN metrics_count INTEGER NOT NULL "
     "DEFAULT 0;"
     "UPDATE models SET metrics_count = "
     "  (SELECT COUNT(*) FROM metrics WHERE metrics.model_id = models.id);"
     "CREATE TABLE model_counts ("
     "  owner TEXT PRIMARY KEY,"
     "  models INTEGER NOT NULL) WITHOUT ROWID;"
     "INSERT INTO model_counts (owner, models) "
     "  SELECT owner, COUNT(*) FROM models WHERE deleted = 0 GROUP BY owner;"
     "CREATE INDEX models_live ON models(deleted, seq);"),
};

#define SCHEMA_SQLITE_COUNT                                                    \
  ((int)(sizeof schema_sqlite_migrations / sizeof schema_sqlite_migrations[0]))

int schema_sqlite_version(void) {
  return SCHEMA_SQLITE_COUNT;
}

static int schema_sqlite_user_version(sqlite3 *db) {
  sqlite3_stmt *st;
  int v = -1;
  if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
    return -1;
  if (sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  return v;
}

int schema_sqlite_migrate(sqlite3 *db, char *err, size_t errn) {
  int v = schema_sqlite_user_version(db);
  if (v < 0) {
    snprintf(err, errn, "cannot read the schema version: %s",
             sqlite3_errmsg(db));
    return -1;
  }
  if (v > SCHEMA_SQLITE_COUNT) {
    snprintf(err, errn,
             "the database has schema version %d, newer than this chubd "
             "(%d); use a newer chubd",
             v, SCHEMA_SQLITE_COUNT);
    return -1;
  }
  for (; v < SCHEMA_SQLITE_COUNT; v++) {
    char bump[64];
    snprintf(bump, sizeof bump, "PRAGMA user_version = %d;", v + 1);
    char *msg = NULL;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(db, schema_sqlite_migrations[v], NULL, NULL, &msg) !=
            SQLITE_OK ||
        sqlite3_exec(db, bump, NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
      snprintf(err, errn, "schema migration %d failed: %s", v + 1,
               msg ? msg : sqlite3_errmsg(db));
      sqlite3_free(msg);
      sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
      return -1;
    }
  }
  return 0;
}
