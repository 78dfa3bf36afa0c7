/*
 * store_sqlite.c - the store on SQLite: one database file, DATA/chubd.db.
 *
 * Reads: each thread that reads gets its own connection (a pthread-specific
 * value) with its prepared statements cached; connections are closed when
 * their thread ends or when the store is closed. Writes: every write of
 * the process goes through one writer connection, one at a time behind a
 * mutex, so its page cache stays valid from one write to the next (per-
 * thread writers re-read every page another thread had changed) and no
 * thread sleeps in SQLite's busy handler. The hot path, a metrics upload,
 * is queued to a committer thread that runs every upload queued meanwhile
 * in one transaction of already-prepared statements (group commit): per
 * upload, check the model and its owner, insert or replace each epoch, and
 * touch the model row at most once a second; each upload is answered
 * after COMMIT returned.
 *
 * Durability: WAL with synchronous=FULL (which walgather.h relies on:
 * its file layer hands each commit's log frames to the kernel in one
 * write). COMMIT returns only after the WAL is fsynced, so whatever chubd
 * acknowledged survives a power cut, not only a killed process
 * (tests/durability cuts the power on it). The fsync is the price of each
 * write transaction; the metrics hot path pays it once per group commit,
 * on the committer thread, never on a request thread's way. The writer
 * takes the lock up front (BEGIN IMMEDIATE) and other processes (`chubd
 * keys`) wait through busy_timeout.
 */
#include "store.h"

#include <pthread.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <sqlite3.h>
#include <jansson.h>

#include "prom.h"
#include "schema_sqlite.h"
#include "util.h"
#include "walgather.h"

#define STORE_SQLITE_BUSY_MS 10000

#define STORE_SQLITE_MODEL_COLS                                                \
  "m.id, m.owner, m.meta, m.config, m.dataset, m.lineage, m.status, "          \
  "m.created_ms, m.updated_ms, m.last_seen_ms, m.heartbeat_ms, m.agent_id, "   \
  "m.agent_name, m.metrics_count, "                                            \
  "(SELECT MAX(epoch) FROM metrics WHERE model_id = m.id), m.dataset_id, "     \
  "mp.id, mp.name"

/* A model with the project of its run, if any: both by primary key. */
#define STORE_SQLITE_MODEL_FROM                                                \
  "models m LEFT JOIN runs mr ON mr.model_id = m.id "                          \
  "LEFT JOIN projects mp ON mp.id = mr.project_id AND mp.deleted = 0"

#define STORE_SQLITE_DATASET_COLS                                              \
  "id, owner, meta, status, size, sha256, filename, files, created_ms, "       \
  "updated_ms"

#define STORE_SQLITE_PROJECT_COLS                                              \
  "p.id, p.owner, p.name, p.meta, p.created_ms, p.updated_ms, "                \
  "(SELECT COUNT(*) FROM runs r JOIN models m ON m.id = r.model_id "           \
  "WHERE r.project_id = p.id AND m.deleted = 0)"

enum store_sqlite_stmt {
  SQ_BEGIN,
  SQ_COMMIT,
  SQ_ROLLBACK,
  SQ_KEY_ADD,
  SQ_KEY_FIND,
  SQ_KEY_LIST,
  SQ_KEY_REVOKE,
  SQ_KEY_GET,
  SQ_MODEL_ADD,
  SQ_MODEL_GET,
  SQ_MODEL_LIST,
  SQ_MODEL_LIST_ANY,
  SQ_MODEL_SEQ,
  SQ_MODEL_CURSOR,
  SQ_MODEL_COUNT,
  SQ_MODEL_COUNT_ANY,
  SQ_MODEL_COUNT_UP,
  SQ_MODEL_COUNT_DOWN,
  SQ_MODEL_UPDATE,
  SQ_MODEL_SOFTDEL,
  SQ_MODEL_HARDDEL,
  SQ_METRICS_DEL,
  SQ_CKPT_DEL,
  SQ_METRICS_PUT,
  SQ_METRICS_SET,
  SQ_METRICS_COUNT_ADD,
  SQ_MODEL_TOUCH,
  SQ_METRICS_GET,
  SQ_MODEL_PEEK,
  SQ_MODEL_STATUS,
  SQ_CKPT_ADD,
  SQ_MODEL_TRAINED,
  SQ_CKPTS,
  SQ_BLOB_USED,
  SQ_HEARTBEAT,
  SQ_EVENT_ADD,
  SQ_MODEL_RESET,
  SQ_DATASET_ADD,
  SQ_DATASET_GET,
  SQ_DATASET_LIST,
  SQ_DATASET_SEQ,
  SQ_DATASET_COUNT,
  SQ_DATASET_UPDATE,
  SQ_DATASET_SOFTDEL,
  SQ_DATASET_HARDDEL,
  SQ_DATASET_SHA,
  SQ_DATASET_FILE,
  SQ_DATASET_MODELS,
  SQ_SESSION_ADD,
  SQ_SESSION_FIND,
  SQ_SESSION_DROP,
  SQ_SESSION_EXPIRE,
  SQ_SESSION_TRIM,
  SQ_EVENT_COUNT,
  SQ_SECRET_PUT,
  SQ_SECRET_GET,
  SQ_PROJECT_ADD,
  SQ_PROJECT_FIND,
  SQ_PROJECT_GET,
  SQ_PROJECT_LIST,
  SQ_PROJECT_SEQ,
  SQ_PROJECT_COUNT,
  SQ_PROJECT_UPDATE,
  SQ_PROJECT_DELETE,
  SQ_RUN_FIND,
  SQ_RUN_ADD,
  SQ_RUN_MODELS,
  SQ_DOC_PUT,
  SQ_DOC_GET,
  SQ_CONSOLE_HAS,
  SQ_CONSOLE_SIZE,
  SQ_CONSOLE_ADD,
  SQ_CONSOLE_GET,
  SQ_RUN_DEL,
  SQ_DOCS_DEL,
  SQ_CONSOLE_DEL,
  SQ_SYSTEM_LAST,
  SQ_SYSTEM_DEL_EPOCH,
  SQ_SYSTEM_ADD,
  SQ_SYSTEM_GET,
  SQ_SYSTEM_DEL,
  SQ_COUNT
};

static const char *const store_sqlite_sql[SQ_COUNT] = {
    [SQ_BEGIN] = "BEGIN IMMEDIATE",
    [SQ_COMMIT] = "COMMIT",
    [SQ_ROLLBACK] = "ROLLBACK",
    [SQ_KEY_ADD] = "INSERT INTO keys (owner, prefix, hash, created_ms) "
                   "VALUES (?1, ?2, ?3, ?4)",
    [SQ_KEY_FIND] = "SELECT id, owner, hash, created_ms FROM keys "
                    "WHERE prefix = ?1 AND revoked_ms = 0",
    [SQ_KEY_LIST] = "SELECT id, owner, prefix, created_ms, revoked_ms "
                    "FROM keys ORDER BY id",
    [SQ_KEY_REVOKE] = "UPDATE keys SET revoked_ms = ?1 WHERE revoked_ms = 0 "
                      "AND (prefix = ?2 OR owner = ?2)",
    [SQ_KEY_GET] = "SELECT id, owner, prefix, created_ms, revoked_ms "
                   "FROM keys WHERE id = ?1",
    [SQ_MODEL_ADD] = "INSERT INTO models (id, owner, meta, config, dataset, "
                     "lineage, created_ms, updated_ms, dataset_id) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8)",
    [SQ_MODEL_GET] =
        "SELECT " STORE_SQLITE_MODEL_COLS " FROM " STORE_SQLITE_MODEL_FROM " "
        "WHERE m.id = ?1 AND m.deleted = 0 "
        "AND (?2 IS NULL OR m.owner = ?2)",
    /* Keyset pages: one owner's on models_owner, anyone's on models_live;
     * never an OFFSET, never a count of the rows. */
    [SQ_MODEL_LIST] =
        "SELECT " STORE_SQLITE_MODEL_COLS " FROM " STORE_SQLITE_MODEL_FROM " "
        "WHERE m.owner = ?1 AND m.deleted = 0 "
        "AND m.seq < ?2 ORDER BY m.seq DESC LIMIT ?3",
    [SQ_MODEL_LIST_ANY] =
        "SELECT " STORE_SQLITE_MODEL_COLS " FROM " STORE_SQLITE_MODEL_FROM " "
        "WHERE m.deleted = 0 AND m.seq < ?2 "
        "ORDER BY m.seq DESC LIMIT ?3",
    [SQ_MODEL_SEQ] = "SELECT seq FROM models WHERE id = ?1 AND deleted = 0 "
                     "AND (?2 IS NULL OR owner = ?2)",
    /* A cursor may name a model deleted since its page was read: the walk
     * goes on from where it was. */
    [SQ_MODEL_CURSOR] = "SELECT seq FROM models WHERE id = ?1 "
                        "AND (?2 IS NULL OR owner = ?2)",
    [SQ_MODEL_COUNT] = "SELECT models FROM model_counts WHERE owner = ?1",
    [SQ_MODEL_COUNT_ANY] = "SELECT coalesce(sum(models), 0) FROM model_counts",
    [SQ_MODEL_COUNT_UP] = "INSERT INTO model_counts (owner, models) "
                          "VALUES (?1, 1) ON CONFLICT (owner) "
                          "DO UPDATE SET models = models + 1",
    [SQ_MODEL_COUNT_DOWN] = "UPDATE model_counts SET models = models - 1 "
                            "WHERE owner = (SELECT owner FROM models "
                            "WHERE id = ?1)",
    [SQ_MODEL_UPDATE] = "UPDATE models SET meta = coalesce(?2, meta), "
                        "config = coalesce(?3, config), updated_ms = ?4 "
                        "WHERE id = ?1 AND deleted = 0",
    [SQ_MODEL_SOFTDEL] = "UPDATE models SET deleted = 1, updated_ms = ?2 "
                         "WHERE id = ?1 AND deleted = 0",
    [SQ_MODEL_HARDDEL] = "DELETE FROM models WHERE id = ?1",
    [SQ_METRICS_DEL] = "DELETE FROM metrics WHERE model_id = ?1",
    [SQ_CKPT_DEL] = "DELETE FROM checkpoints WHERE model_id = ?1",
    [SQ_METRICS_PUT] = "INSERT OR IGNORE INTO metrics (model_id, epoch, data) "
                       "VALUES (?1, ?2, ?3)",
    [SQ_METRICS_SET] = "UPDATE metrics SET data = ?3 WHERE model_id = ?1 "
                       "AND epoch = ?2",
    [SQ_METRICS_COUNT_ADD] = "UPDATE models SET metrics_count = "
                             "metrics_count + ?2 WHERE id = ?1",
    [SQ_MODEL_TOUCH] = "UPDATE models SET status = CASE status WHEN 'new' "
                       "THEN 'training' ELSE status END, updated_ms = ?2, "
                       "last_seen_ms = ?2 WHERE id = ?1 AND deleted = 0 "
                       "AND (?3 IS NULL OR owner = ?3)",
    [SQ_METRICS_GET] = "SELECT epoch, data FROM metrics WHERE model_id = ?1 "
                       "AND epoch > ?2 ORDER BY epoch LIMIT ?3",
    [SQ_MODEL_PEEK] = "SELECT status, last_seen_ms FROM models WHERE id = ?1 "
                      "AND deleted = 0 AND (?2 IS NULL OR owner = ?2)",
    [SQ_MODEL_STATUS] = "SELECT status FROM models WHERE id = ?1 "
                        "AND deleted = 0",
    [SQ_CKPT_ADD] = "INSERT INTO checkpoints (model_id, epoch, final, "
                    "is_best, map, size, sha256, created_ms, suffix) "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [SQ_MODEL_TRAINED] = "UPDATE models SET status = 'trained', "
                         "updated_ms = ?2, last_seen_ms = ?2 WHERE id = ?1",
    [SQ_CKPTS] = "SELECT epoch, final, is_best, map, size, sha256, "
                 "created_ms, suffix FROM checkpoints WHERE model_id = ?1 "
                 "ORDER BY id DESC",
    [SQ_BLOB_USED] = "SELECT 1 FROM checkpoints WHERE sha256 = ?1 UNION ALL "
                     "SELECT 1 FROM datasets WHERE sha256 = ?1 LIMIT 1",
    [SQ_HEARTBEAT] = "UPDATE models SET status = CASE status WHEN 'new' "
                     "THEN 'training' ELSE status END, agent_id = ?2, "
                     "agent_name = ?3, heartbeat_ms = ?4, last_seen_ms = ?4 "
                     "WHERE id = ?1 AND deleted = 0",
    [SQ_EVENT_ADD] = "INSERT INTO events (client_id, name, params, "
                     "received_ms) VALUES (?1, ?2, ?3, ?4)",
    [SQ_MODEL_RESET] = "UPDATE models SET status = 'new', updated_ms = ?2, "
                       "last_seen_ms = 0, heartbeat_ms = 0, agent_id = '', "
                       "agent_name = '', metrics_count = 0 "
                       "WHERE id = ?1 AND deleted = 0 "
                       "AND (?3 IS NULL OR owner = ?3)",
    [SQ_DATASET_ADD] = "INSERT INTO datasets (id, owner, meta, created_ms, "
                       "updated_ms) VALUES (?1, ?2, ?3, ?4, ?4)",
    [SQ_DATASET_GET] = "SELECT " STORE_SQLITE_DATASET_COLS " FROM datasets "
                       "WHERE id = ?1 AND deleted = 0 "
                       "AND (?2 IS NULL OR owner = ?2)",
    [SQ_DATASET_LIST] = "SELECT " STORE_SQLITE_DATASET_COLS " FROM datasets "
                        "WHERE (?1 IS NULL OR owner = ?1) AND deleted = 0 "
                        "AND seq < ?2 ORDER BY seq DESC LIMIT ?3",
    [SQ_DATASET_SEQ] = "SELECT seq FROM datasets WHERE id = ?1 "
                       "AND deleted = 0 AND (?2 IS NULL OR owner = ?2)",
    [SQ_DATASET_COUNT] = "SELECT COUNT(*) FROM datasets "
                         "WHERE (?1 IS NULL OR owner = ?1) AND deleted = 0",
    [SQ_DATASET_UPDATE] = "UPDATE datasets SET meta = ?2, updated_ms = ?3 "
                          "WHERE id = ?1 AND deleted = 0",
    [SQ_DATASET_SOFTDEL] = "UPDATE datasets SET deleted = 1, updated_ms = ?2 "
                           "WHERE id = ?1 AND deleted = 0",
    [SQ_DATASET_HARDDEL] = "DELETE FROM datasets WHERE id = ?1",
    [SQ_DATASET_SHA] = "SELECT sha256 FROM datasets WHERE id = ?1 "
                       "AND deleted = 0 AND (?2 IS NULL OR owner = ?2)",
    [SQ_DATASET_FILE] = "UPDATE datasets SET status = 'ready', size = ?2, "
                        "sha256 = ?3, filename = ?4, files = ?5, "
                        "updated_ms = ?6 WHERE id = ?1 AND deleted = 0",
    [SQ_DATASET_MODELS] =
        "SELECT " STORE_SQLITE_MODEL_COLS " FROM " STORE_SQLITE_MODEL_FROM " "
        "WHERE m.dataset_id = ?1 AND m.deleted = 0 "
        "ORDER BY m.seq DESC LIMIT ?2",
    [SQ_SESSION_ADD] = "INSERT INTO sessions (hash, key_id, created_ms, "
                       "expires_ms, seq) VALUES (?1, ?2, ?3, ?4, "
                       "(SELECT coalesce(max(seq), 0) + 1 FROM sessions))",
    [SQ_SESSION_FIND] = "SELECT k.id, k.owner, k.prefix, k.created_ms "
                        "FROM sessions s JOIN keys k ON k.id = s.key_id "
                        "WHERE s.hash = ?1 AND s.expires_ms > ?2 "
                        "AND k.revoked_ms = 0",
    [SQ_SESSION_DROP] = "DELETE FROM sessions WHERE hash = ?1",
    [SQ_SESSION_EXPIRE] = "DELETE FROM sessions WHERE expires_ms <= ?1",
    [SQ_SESSION_TRIM] = "DELETE FROM sessions WHERE key_id = ?1 AND hash NOT "
                        "IN (SELECT hash FROM sessions WHERE key_id = ?1 "
                        "ORDER BY seq DESC LIMIT ?2)",
    [SQ_EVENT_COUNT] = "SELECT COUNT(*) FROM events WHERE client_id = ?1 "
                       "AND received_ms >= ?2",
    [SQ_SECRET_PUT] = "INSERT OR IGNORE INTO secrets (name, value) "
                      "VALUES (?1, ?2)",
    [SQ_SECRET_GET] = "SELECT value FROM secrets WHERE name = ?1",
    [SQ_PROJECT_ADD] = "INSERT OR IGNORE INTO projects (id, owner, name, "
                       "created_ms, updated_ms) VALUES (?1, ?2, ?3, ?4, ?4)",
    [SQ_PROJECT_FIND] = "SELECT id FROM projects WHERE owner = ?1 "
                        "AND name = ?2 AND deleted = 0",
    [SQ_PROJECT_GET] = "SELECT " STORE_SQLITE_PROJECT_COLS " FROM projects p "
                       "WHERE p.id = ?1 AND p.deleted = 0 "
                       "AND (?2 IS NULL OR p.owner = ?2)",
    [SQ_PROJECT_LIST] = "SELECT " STORE_SQLITE_PROJECT_COLS " FROM projects p "
                        "WHERE (?1 IS NULL OR p.owner = ?1) AND p.deleted = 0 "
                        "AND p.seq < ?2 ORDER BY p.seq DESC LIMIT ?3",
    [SQ_PROJECT_SEQ] = "SELECT seq FROM projects WHERE id = ?1 "
                       "AND deleted = 0 AND (?2 IS NULL OR owner = ?2)",
    [SQ_PROJECT_COUNT] = "SELECT COUNT(*) FROM projects "
                         "WHERE (?1 IS NULL OR owner = ?1) AND deleted = 0",
    [SQ_PROJECT_UPDATE] = "UPDATE projects SET name = coalesce(?3, name), "
                          "meta = coalesce(?4, meta), updated_ms = ?5 "
                          "WHERE id = ?1 AND deleted = 0 "
                          "AND (?2 IS NULL OR owner = ?2)",
    [SQ_PROJECT_DELETE] = "UPDATE projects SET deleted = 1, "
                          "name = name || '~' || id, updated_ms = ?3 "
                          "WHERE id = ?1 AND deleted = 0 "
                          "AND (?2 IS NULL OR owner = ?2)",
    [SQ_RUN_FIND] = "SELECT r.model_id FROM runs r JOIN models m "
                    "ON m.id = r.model_id WHERE r.owner = ?1 "
                    "AND r.project_id = ?2 AND r.name = ?3 AND m.deleted = 0",
    [SQ_RUN_ADD] = "INSERT INTO runs (model_id, owner, project_id, name) "
                   "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (owner, project_id, "
                   "name) DO UPDATE SET model_id = excluded.model_id "
                   "WHERE NOT EXISTS (SELECT 1 FROM models m WHERE "
                   "m.id = runs.model_id AND m.deleted = 0)",
    [SQ_RUN_MODELS] =
        "SELECT " STORE_SQLITE_MODEL_COLS " FROM " STORE_SQLITE_MODEL_FROM " "
        "WHERE mr.project_id = ?1 AND m.deleted = 0 "
        "AND (?2 IS NULL OR m.owner = ?2) "
        "ORDER BY m.seq DESC LIMIT ?3",
    [SQ_DOC_PUT] = "INSERT OR REPLACE INTO model_docs (model_id, name, body) "
                   "VALUES (?1, ?2, ?3)",
    [SQ_DOC_GET] = "SELECT body FROM model_docs WHERE model_id = ?1 "
                   "AND name = ?2",
    [SQ_CONSOLE_HAS] = "SELECT 1 FROM console WHERE model_id = ?1 "
                       "AND chunk_id = ?2",
    [SQ_CONSOLE_SIZE] = "SELECT coalesce(sum(bytes), 0), "
                        "coalesce(max(seq), 0) FROM console "
                        "WHERE model_id = ?1",
    [SQ_CONSOLE_ADD] = "INSERT INTO console (model_id, chunk_id, seq, content, "
                       "lines, bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [SQ_RUN_DEL] = "DELETE FROM runs WHERE model_id = ?1",
    [SQ_DOCS_DEL] = "DELETE FROM model_docs WHERE model_id = ?1",
    [SQ_CONSOLE_DEL] = "DELETE FROM console WHERE model_id = ?1",
    [SQ_CONSOLE_GET] = "SELECT seq, chunk_id, content, lines FROM console "
                       "WHERE model_id = ?1 AND seq > ?2 ORDER BY seq "
                       "LIMIT ?3",
    [SQ_SYSTEM_LAST] = "SELECT coalesce(max(seq), 0) FROM model_system "
                       "WHERE model_id = ?1",
    [SQ_SYSTEM_DEL_EPOCH] = "DELETE FROM model_system WHERE model_id = ?1 "
                            "AND epoch = ?2 AND epoch >= 0",
    [SQ_SYSTEM_ADD] = "INSERT INTO model_system (model_id, seq, t_ms, epoch, "
                      "body) VALUES (?1, ?2, ?3, ?4, ?5)",
    [SQ_SYSTEM_GET] = "SELECT seq, t_ms, epoch, body FROM model_system "
                      "WHERE model_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
    [SQ_SYSTEM_DEL] = "DELETE FROM model_system WHERE model_id = ?1",
};

typedef struct store_sqlite store_sqlite;

typedef struct store_sqlite_conn {
  sqlite3 *db;
  sqlite3_stmt *stmt[SQ_COUNT];
  store_sqlite *owner;
  struct store_sqlite_conn *prev, *next;
} store_sqlite_conn;

struct store_sqlite {
  store base;
  char path[4096];
  pthread_key_t tls;
  pthread_mutex_t mu; /* guards conns */
  store_sqlite_conn *conns;
  int nconns; /* in the list, for chubd_store_pool_connections */
  /* chubd's own writers queue here, on one connection, rather than in
   * SQLite's busy handler, whose sleeps (up to 100 ms each) would throttle
   * concurrent metrics uploads; busy_timeout still covers other processes
   * (`chubd keys`). */
  pthread_mutex_t write_mu;
  store_sqlite_conn *writer;
  /* Metrics uploads waiting for the group committer thread (see
   * store_sqlite_group_main); all guarded by group_mu. */
  pthread_mutex_t group_mu;
  pthread_cond_t group_cv;  /* work queued, or stopping */
  pthread_cond_t waited_cv; /* a synchronous metrics_put was answered */
  struct store_sqlite_metrics_req *group_head, *group_tail;
  int group_started, group_stopping;
  pthread_t group_thread;
};

/* One queued metrics upload (malloc'd; freed after done was called). */
typedef struct store_sqlite_metrics_req {
  const char *id, *owner;
  const store_epoch *e;
  size_t n;
  int64_t now;
  store_rc rc; /* the answer */
  store_done_cb done;
  void *ud;
  struct store_sqlite_metrics_req *next;
} store_sqlite_metrics_req;

static void store_sqlite_conn_close(store_sqlite_conn *c) {
  for (int i = 0; i < SQ_COUNT; i++)
    sqlite3_finalize(c->stmt[i]);
  sqlite3_close(c->db);
  free(c);
}

static void store_sqlite_unlink(store_sqlite_conn *c) {
  store_sqlite *s = c->owner;
  if (c->prev)
    c->prev->next = c->next;
  else
    s->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  prom_store_pool_size(--s->nconns);
}

/* pthread key destructor: the thread that used this connection ended. */
static void store_sqlite_thread_end(void *p) {
  store_sqlite_conn *c = p;
  store_sqlite *s = c->owner;
  pthread_mutex_lock(&s->mu);
  store_sqlite_unlink(c);
  pthread_mutex_unlock(&s->mu);
  store_sqlite_conn_close(c);
}

static sqlite3 *store_sqlite_connect(const char *path, char *err, size_t errn) {
  sqlite3 *db = NULL;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  if (walgather_init(prom_log_sync) != SQLITE_OK) {
    snprintf(err, errn, "cannot register SQLite's file layer for %s", path);
    return NULL;
  }
  if (sqlite3_open_v2(path, &db, flags, WALGATHER_VFS) != SQLITE_OK) {
    snprintf(err, errn, "cannot open database %s: %s", path,
             db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_close(db);
    return NULL;
  }
  sqlite3_busy_timeout(db, STORE_SQLITE_BUSY_MS);
  char *msg = NULL;
  if (sqlite3_exec(db,
                   "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; "
                   "PRAGMA mmap_size = 268435456;",
                   NULL, NULL, &msg) != SQLITE_OK) {
    snprintf(err, errn, "cannot set up database %s: %s", path,
             msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    sqlite3_close(db);
    return NULL;
  }
  return db;
}

static store_sqlite_conn *store_sqlite_conn_get(store_sqlite *s) {
  store_sqlite_conn *c = pthread_getspecific(s->tls);
  if (c)
    return c;
  char err[512];
  c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  c->db = store_sqlite_connect(s->path, err, sizeof err);
  if (!c->db) {
    fprintf(stderr, "chubd: %s\n", err);
    free(c);
    return NULL;
  }
  c->owner = s;
  pthread_mutex_lock(&s->mu);
  c->next = s->conns;
  if (s->conns)
    s->conns->prev = c;
  s->conns = c;
  prom_store_pool_size(++s->nconns);
  pthread_mutex_unlock(&s->mu);
  pthread_setspecific(s->tls, c);
  return c;
}

static store_rc store_sqlite_fail(store_sqlite_conn *c, const char *what) {
  int code = sqlite3_extended_errcode(c->db);
  prom_store_error();
  fprintf(stderr, "chubd: database error in %s: %s\n", what,
          sqlite3_errmsg(c->db));
  if ((code & 0xff) == SQLITE_BUSY || (code & 0xff) == SQLITE_LOCKED)
    return STORE_BUSY;
  if ((code & 0xff) == SQLITE_FULL ||
      ((code & 0xff) == SQLITE_IOERR && sqlite3_system_errno(c->db) == ENOSPC))
    return STORE_FULL;
  return STORE_ERROR;
}

/* The cached statement `which`, reset and with no bindings. */
static sqlite3_stmt *store_sqlite_stmt(store_sqlite_conn *c, int which) {
  if (!c->stmt[which]) {
    if (sqlite3_prepare_v3(c->db, store_sqlite_sql[which], -1,
                           SQLITE_PREPARE_PERSISTENT, &c->stmt[which],
                           NULL) != SQLITE_OK) {
      store_sqlite_fail(c, "prepare");
      return NULL;
    }
  }
  sqlite3_reset(c->stmt[which]);
  sqlite3_clear_bindings(c->stmt[which]);
  return c->stmt[which];
}

static int store_sqlite_exec(store_sqlite_conn *c, int which) {
  sqlite3_stmt *st = store_sqlite_stmt(c, which);
  if (!st)
    return -1;
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : -1;
}

/* Write transactions run on the writer connection with write_mu held (see
 * STORE_SQLITE_WRITE), so these only speak to SQLite. */
static int store_sqlite_begin(store_sqlite_conn *c) {
  return store_sqlite_exec(c, SQ_BEGIN);
}

static void store_sqlite_rollback(store_sqlite_conn *c) {
  store_sqlite_exec(c, SQ_ROLLBACK);
}

static store_rc store_sqlite_commit(store_sqlite_conn *c, const char *what) {
  if (store_sqlite_exec(c, SQ_COMMIT) < 0) {
    store_rc rc = store_sqlite_fail(c, what);
    store_sqlite_exec(c, SQ_ROLLBACK);
    return rc;
  }
  return STORE_OK;
}

static store_rc store_sqlite_abort(store_sqlite_conn *c, const char *what) {
  store_rc rc = store_sqlite_fail(c, what);
  if (!sqlite3_get_autocommit(c->db))
    store_sqlite_exec(c, SQ_ROLLBACK);
  return rc;
}

/* Runs `call` (which uses w_, the writer connection) with write_mu held:
 * every write of this process goes through one connection, one at a time,
 * so that connection's page cache stays valid between writes and nothing
 * waits in SQLite's sleeping busy handler. */
#define STORE_SQLITE_WRITE(s, call)                                            \
  do {                                                                         \
    store_sqlite *ss_ = (store_sqlite *)(s);                                   \
    pthread_mutex_lock(&ss_->write_mu);                                        \
    store_sqlite_conn *w_ = ss_->writer;                                       \
    store_rc rc_ = (call);                                                     \
    pthread_mutex_unlock(&ss_->write_mu);                                      \
    return rc_;                                                                \
  } while (0)

#define STORE_SQLITE_CONN(s, c)                                                \
  store_sqlite_conn *c = store_sqlite_conn_get((store_sqlite *)(s));           \
  if (!c)                                                                      \
  return STORE_ERROR

static void store_sqlite_text(sqlite3_stmt *st, int col, char *out, size_t n) {
  const unsigned char *t = sqlite3_column_text(st, col);
  snprintf(out, n, "%s", t ? (const char *)t : "");
}

static char *store_sqlite_dup(sqlite3_stmt *st, int col) {
  const unsigned char *t = sqlite3_column_text(st, col);
  return strdup(t ? (const char *)t : "{}");
}

/* ---------------------------------------------------------------- keys */

static store_rc store_sqlite_key_add_locked(store_sqlite_conn *c,
                                            const char *owner,
                                            const char *prefix,
                                            const unsigned char hash[32],
                                            int64_t now) {
  sqlite3_stmt *st = store_sqlite_stmt(c, SQ_KEY_ADD);
  if (!st)
    return STORE_ERROR;
  sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, prefix, -1, SQLITE_STATIC);
  sqlite3_bind_blob(st, 3, hash, 32, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, now);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? STORE_OK : store_sqlite_fail(c, "key_add");
}

static store_rc store_sqlite_key_add(store *s, const char *owner,
                                     const char *prefix,
                                     const unsigned char hash[32],
                                     int64_t now) {
  STORE_SQLITE_WRITE(s,
                     store_sqlite_key_add_locked(w_, owner, prefix, hash, now));
}

static store_rc store_sqlite_key_find(store *s, const char *prefix,
                                      const unsigned char hash[32],
                                      store_key *out) {
  STORE_SQLITE_CONN(s, c);
  sqlite3_stmt *st = store_sqlite_stmt(c, SQ_KEY_FIND);
  if (!st)
    return STORE_ERROR;
  sqlite3_bind_text(st, 1, prefix, -1, SQLITE_STATIC);
  store_rc result = STORE_NOTFOUND;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const void *h = sqlite3_column_blob(st, 2);
    if (sqlite3_column_bytes(st, 2) != 32 || !h ||
        CRYPTO_memcmp(h, hash, 32) != 0)
      continue;
    out->id = sqlite3_column_int64(st, 0);
    store_sqlite_text(st, 1, out->owner, sizeof out->owner);
    snprintf(out->prefix, sizeof out->prefix, "%s", prefix);
    out->created_ms = sqlite3_column_int64(st, 3);
    out->revoked_ms = 0;
    result = STORE_OK;
    break;
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    result = store_sqlite_fail(c, "key_find");
  sqlite3_reset(st);
  return result;
}

static store_rc store_sqlite_key_list(store *s, store_key_cb cb, void *ud) {
  STORE_SQLITE_CONN(s, c);
  sqlite3_stmt *st = store_sqlite_stmt(c, SQ_KEY_LIST);
  if (!st)
    return STORE_ERROR;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    store_key k;
    k.id = sqlite3_column_int64(st, 0);
    store_sqlite_text(st, 1, k.owner, sizeof k.owner);
    store_sqlite_text(st, 2, k.prefix, sizeof k.prefix);
    k.created_ms = sqlite3_column_int64(st, 3);
    k.revoked_ms = sqlite3_column_int64(st, 4);
    if (cb(ud, &k) != 0)
      break;
  }
  store_rc result = STORE_OK;
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    result = store_sqlite_fail(c, "key_list");
  sqlite3_reset(st);
  return result;
}

static store_rc store_sqlite_key_get(store *s, int64_t id, store_key *out) {
  STORE_SQLITE_CONN(s, c);
  sqlite3_stmt *st = store_sqlite_stmt(c, SQ_KEY_GET);
  if (!st)
    return STORE_ERROR;
  sqlite3_bind_int64(st, 1, id);
  int rc = sqlite3_step(st);
  store_rc result = STORE_NOTFOUND;
  if (rc == SQLITE_ROW) {
    out->id = sqlite3_column_int64(st, 0);
    store_sqlite_text(st, 1, out->owner, sizeof out->owner);
    store_sqlite_text(st, 2, out->prefix, sizeof out->prefix);
    out->created_ms = sqlite3_column_int64(st, 3);
    out->revoked_ms = sqlite3_column_int64(st, 4);
    result = STORE_OK;
  } else if (rc != SQLITE_DONE) {
    result = store_sqlite_fail(c, "key_get");
  }
  sqlite3_reset(st);
  return result;
}

static store_rc store_sqlite_key_revoke_locked(store_sqlite_conn *c,
                                               const char *match, int64_t now,
                                               int *count) {
  sqlite3_stmt *st = store_sqlite_stmt(c, SQ_KEY_REVOKE);
  if (!st)
    return STORE_ERROR;
  sqlite3_bind_int64(st, 1, now);
  sqlite3_bind_text(st, 2, match, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc != SQLITE_DONE)
    return store_sqlite_fail(c, "key_revoke");
  *count = sqlite3_changes(c->db);
  return STORE_OK;
}

static store_rc store_sqlite_key_revoke(store *s, const char *match,
                                        int64_t now, int *count) {
  STORE_SQLITE_WRITE(s, store_sqlite_key_revoke_locked(w_, match, now, count));
}

/* -------------------------------------------------------------- models */

/* The rows of one new model, inside a transaction: the model and its
 * owner's count of models (which GET /v1/models answers as total). */
static store_rc store_sqlite_model_rows(store_sqlite_conn *c,
                                        const store_model *m) {
  sqlite3_stmt *st = store_sqlite_stmt(c, SQ_MODEL_ADD);
  if (!st)
    return STORE_ERROR;
  sqlite3_bind_text(st, 1, m->id, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, m->owner, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, m->meta, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 4, m->config, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 5, m->dataset, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 6, m->lineage, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 8, m->dataset_id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 7, m->created_ms);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc == SQLITE_CONSTRAINT)
    return STORE_CONFLICT;
  if (rc != SQLITE_DONE)
    return store_sqlite_fail(c, "model_add");
  st = store_sqlite_stmt(c, SQ_MODEL_COUNT_UP);
  if (!st)
    return STORE_ERROR;
  sqlite3_bind_text(st, 1, m->owner, -1, SQLITE_STATIC);
  rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? STORE_OK : store_sqlite_fail(c, "model_add");
}

static store_rc store_sqlite_model_add_locked(store_sqlite_conn *c,
                                              const store_model *m) {
  if (store_sqlite_begin(c) < 0)
    return store_sqlite_fail(c, "model_add");
  store_rc rc = store_sqlite_model_rows(c, m);
  if (rc != STORE_OK) {
    store_sqlite_rollback(c);
    return rc;
  }
  return store_sqlite_commit(c, "model_add");
}

static store_rc store_sqlite_model_add(store *s, const store_model *m) {
  STORE_SQLITE_WRITE(s, store_sqlite_model_add_locked(w_, m));
}

static store_rc store_sqlite_add_models_locked(store_sqlite_conn *c,
                                               const store_model *m, size_t n) {
  if (store_sqlite_begin(c) < 0)
    return store_sqlite_fail(c, "add_models");
  for (size_t i = 0; i < n; i++) {
    store_rc rc = store_sqlite_model_rows(c, &m[i]);
    if (rc != STORE_OK) {
      store_sqlite_rollback(c);
      return rc;
    }
  }
  return store_sqlite_commit(c, "add_models");
}

store_rc store_sqlite_add_models(store *s, const store_model *m, size_t n) {
  STORE_SQLITE_WRITE(s, store_sqlite_add_models_locked(w_, m, n));
}

static int store_sqlite_model_row(sqlite3_stmt *st, store_model *m) {
  memset(m, 0, sizeof *m);
  store_sqlite_text(st, 0, m->id, sizeof m->id);
  store_sqlite_text(st, 1, m->owner, sizeof m->owner);
  m->meta = store_sqlite_dup(st, 2);
  m->config = store_sqlite_dup(st, 3);
  m->dataset = store_sqlite_dup(st, 4);
  m->lineage = store_sqlite_dup(st, 5);
  store_sqlite_text(st, 6, m->status, sizeof m->status);
  m->created_ms = sqlite3_column_int64(st, 7);
  m->updated_ms = sqlite3_column_int64(st, 8);
  m->last_seen_ms = sqlite3_column_int64(st, 9);
  m->heartbeat_ms = sqlite3_column_int64(st, 10);
  store_sqlite_text(st, 11, m->agent_id, sizeof m->agent_id);
  store_sqlite_text(st, 12, m->agent_name, sizeof m->agent_name);
  m->metrics_count = sqlite3_column_int64(st, 13);
  m->last_epoch = sqlite3_column_type(st, 14) == SQLITE_NULL
                      ? -1
                      : sqlite3_column_int64(st, 14);
  store_sqlite_text(st, 15, m->dataset_id, sizeof m->dataset_id);
  store_sqlite_text(st, 16, m->project_id, sizeof m->project_id);
  store_sqlite_text(st, 17, m->project_name, sizeof m->project_name);
  if (!m->meta || !m->config || !m->dataset || !m->lineage) {
    store_model_free(m);
    return -1;
  }
  return 0;
}

void store_model_free(store_model *m) {
  free(m->meta);
  free(m->config);
  free(m->dataset);
  free(m->lineage);
  m->meta = m->config = m->dataset = m->lineage = NULL;
}

static void store_sqlite_bind_owner(sqlite3_stmt *st, int i,
                                    const char *owner) {
  if (owner)
    sqlite3_bind_text(st, i, owner, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, i);
}

static store_rc store_sqlite_model_get(store *s, const char *id,
                                       const char *owner, store_model *out) {
  STORE_SQLITE_CONN(s, c);
  sqlite3_stmt *st = store_sqlite_stmt(c, SQ_MODEL_GET);
  if (!st)
    return STORE_ERROR;
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  store_sqlite_bind_owner(st, 2, owner);
  int rc = sqlite3_step(st);
  store_rc result;
  if (rc == SQLITE_ROW)
    result = store_sqlite_model_row(st, out) == 0 ? STORE_OK : STORE_ERROR;
  else if (rc == SQLITE_DONE)
    result = STORE_NOTFOUND;
  else
    result = store_sqlite_fail(c, "model_get");
  sqlite3_reset(st);
  return result;
}

static store_rc store_sqlite_int_query(store_sqlite_conn *c, int which,
                                       const char *a, const char *owner,
                                       int64_t *out, const char *what) {
  sqlite3_stmt *st = store_sqlite_stmt(c, which);
  if (!st)
    return STORE_ERROR;
  int i = 1;
  if (a)
    sqlite3_bind_text(st, i++, a, -1, SQLITE_STATIC);
  store_sqlite_bind_owner(st, i, owner);
  int rc = sqlite3_step(st);
  store_rc result = STORE_OK;
  if (rc == SQLITE_ROW)
    *out = sqlite3_column_int64(st, 0);
  else if (rc == SQLITE_DONE)
    result = STORE_NOTFOUND;
  else
    result = store_sqlite_fail(c, what);
  sqlite3_reset(st);
  return result;
}

static store_rc store_sqlite_model_check(store *s, const char *id,
                                         const char *owner) {
  STORE_SQLITE_CONN(s, c);
  int64_t seq;
  return store_sqlite_int_query(c, SQ_MODEL_SEQ, id, owner, &seq,
                                "model_check");
}

/* Hands each row of the bound statement st to `row` (which answers 1 to
 * stop, -1 on an error), at most `limit` rows when limit >= 0, and resets
 * st. With more, *more says whether a row followed the limit: lists ask
 * for one row more than they show. */
typedef int (*store_sqlite_row_fn)(sqlite3_stmt *st, void *ctx);

static store_rc store_sqlite_each(store_sqlite_conn *c, sqlite3_stmt *st,
                                  int limit, int *more, store_sqlite_row_fn row,
                                  void *ctx, const char *what) {
  int rc, seen = 0;
  store_rc result = STORE_OK;
  if (more)
    *more = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (limit >= 0 && seen == limit) {
      if (more)
        *more = 1;
      break;
    }
    int r = row(st, ctx);
    if (r < 0) {
      result = STORE_ERROR;
      break;
    }
    seen++;
    if (r > 0)
      break;
  }
  if (result == STORE_OK && rc != SQLITE_ROW && rc != SQLITE_DONE)
    result = store_sqlite_fail(c, what);
  sqlite3_reset(st);
  return result;
}

/* The statements of one kind of list, paged by a cursor: the seq of the
 * row to start after, the count of all, and the page itself, each for
 * one owner and for anyone's (owner NULL; the same statements when they
 * take a NULL owner themselves). */
typedef struct store_sqlite_pager {
  int seq, count, count_any, list, list_any;
  const char *what;
} store_sqlite_pager;

static store_rc store_sqlite_page(store_sqlite_conn *c,
                                  const store_sqlite_pager *pg,
                                  const char *owner, const char *after,
                                  int limit, int64_t *total, int *more,
                                  store_sqlite_row_fn row, void *ctx) {
  int64_t before = INT64_MAX;
  store_rc rc;
  if (after) {
    rc = store_sqlite_int_query(c, pg->seq, after, owner, &before, pg->what);
    if (rc != STORE_OK)
      return rc;
  }
  rc = store_sqlite_int_query(c, owner ? pg->count : pg->count_any, NULL, owner,
                              total, pg->what);
  if (rc == STORE_NOTFOUND) {
    *total = 0; /* an owner who never had a model */
    rc = STORE_OK;
  }
  if (rc != STORE_OK)
    return rc;
  sqlite3_stmt *st = store_sqlite_stmt(c, owner ? pg->list : pg->list_any);
  if (!st)
    return STORE_ERROR;
  store_sqlite_bind_owner(st, 1, owner);
  sqlite3_bind_int64(st, 2, before);
  sqlite3_bind_int(st, 3, limit + 1); /* one more tells whether more follow */
  return store_sqlite_each(c, st, limit, more, row, ctx, pg->what);
}

typedef struct store_sqlite_model_visit {
  store_model_cb cb;
  void *ud;
} store_sqlite_model_visit;

static int store_sqlite_visit_model(sqlite3_stmt *st, void *ctx) {
  store_sqlite_model_visit *v = ctx;
  store_model m;
  if (store_sqlite_model_row(st, &m) < 0)
    return -1;
  int stop = v->cb(v->ud, &m);
  store_model_free(&m);
  return stop ? 1 : 0;
}

static store_rc store_sqlite_model_list(store *s, const char *owner,
                                        const char *after, int limit,
                                        store_model_cb cb, void *ud,
                                        int64_t *total, int *more) {
  static const store_sqlite_pager pager = {SQ_MODEL_CURSOR,    SQ_MODEL_COUNT,
                                           SQ_MODEL_COUNT_ANY, SQ_MODEL_LIST,
                                           SQ_MODEL_LIST_ANY,  "model_list"};
  STORE_SQLITE_CONN(s, c);
  store_sqlite_model_visit v = {cb, ud};
  return store_sqlite_page(c, &pager, owner, after, limit, total, more,
                           store_sqlite_visit_model, &v);
}

static store_rc store_sqlite_model_update_locked(store_sqlite_conn *c,
                                                 const char *id,
                                                 const char *meta,
                                                 const char *config,
                                                 int64_t now) {
  sqlite3_stmt *st = store_sqlite_stmt(c, SQ_MODEL_UPDATE);
  if (!st)
    return STORE_ERROR;
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  store_sqlite_bind_owner(st, 2, meta);
  store_sqlite_bind_owner(st, 3, config);
  sqlite3_bind_int64(st, 4, now);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc != SQLITE_DONE)
    return store_sqlite_fail(c, "model_update");
  return sqlite3_changes(c->db) ? STORE_OK : STORE_NOTFOUND;
}

static store_rc store_sqlite_model_update(store *s, const char *id,
                                          const char *meta, const char *config,
                                          int64_t now) {
  STORE_SQLITE_WRITE(
      s, store_sqlite_model_update_locked(w_, id, meta, config, now));
}

static int store_sqlite_step_id(store_sqlite_conn *c, int which,
                                const char *id) {
  sqlite3_stmt *st = store_sqlite_stmt(c, which);
  if (!st)
    return -1;
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : -1;
}

static store_rc store_sqlite_model_delete_locked(store_sqlite_conn *c,
                                                 const char *id, int hard) {
  if (store_sqlite_begin(c) < 0)
    return store_sqlite_fail(c, "model_delete");
  sqlite3_stmt *st = store_sqlite_stmt(c, SQ_MODEL_SOFTDEL);
  if (!st)
    return store_sqlite_abort(c, "model_delete");
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, util_now_ms());
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc != SQLITE_DONE)
    return store_sqlite_abort(c, "model_delete");
  if (sqlite3_changes(c->db) == 0) {
    store_sqlite_rollback(c);
    return STORE_NOTFOUND;
  }
  if (store_sqlite_step_id(c, SQ_MODEL_COUNT_DOWN, id) < 0)
    return store_sqlite_abort(c, "model_delete");
  if (hard && (store_sqlite_step_id(c, SQ_METRICS_DEL, id) < 0 ||
               store_sqlite_step_id(c, SQ_CKPT_DEL, id) < 0 ||
               store_sqlite_step_id(c, SQ_RUN_DEL, id) < 0 ||
               store_sqlite_step_id(c, SQ_DOCS_DEL, id) < 0 ||
               store_sqlite_step_id(c, SQ_CONSOLE_DEL, id) < 0 ||
               store_sqlite_step_id(c, SQ_SYSTEM_DEL, id) < 0 ||
               store_sqlite_step_id(c, SQ_MODEL_HARDDEL, id) < 0))
    return store_sqlite_abort(c, "model_delete");
  return store_sqlite_commit(c, "model_delete");
}

static store_rc store_sqlite_model_delete(store *s, const char *id, int hard) {
  STORE_SQLITE_WRITE(s, store_sqlite_model_delete_locked(w_, id, hard));
}

static store_rc store_sqlite_model_reset_locked(store_sqlite_conn *c,
                                                const char *id,
                                                const char *owner,
                                                int64_t now) {
  if (store_sqlite_begin(c) < 0)
    return store_sqlite_fail(c, "model_reset");
  sqlite3_stmt *st = store_sqlite_stmt(c, SQ_MODEL_RESET);
  if (!st)
    return store_sqlite_abort(c, "model_reset");
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, now);
  store_sqlite_bind_owner(st, 3, owner);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc != SQLITE_DONE)
    return store_sqlite_abort(c, "model_reset");
  if (sqlite3_changes(c->db) == 0) {
    store_sqlite_rollback(c);
    return STORE_NOTFOUND;
  }
  if (store_sqlite_step_id(c, SQ_METRICS_DEL, id) < 0 ||
      store_sqlite_step_id(c, SQ_CKPT_DEL, id) < 0 ||
      store_sqlite_step_id(c, SQ_DOCS_DEL, id) < 0 ||
      store_sqlite_step_id(c, SQ_CONSOLE_DEL, id) < 0 ||
      store_sqlite_step_id(c, SQ_SYSTEM_DEL, id) < 0)
    return store_sqlite_abort(c, "model_reset");
  return store_sqlite_commit(c, "model_reset");
}

static store_rc store_sqlite_model_reset(store *s, const char *id,
                                         const char *owner, int64_t now) {
  STORE_SQLITE_WRITE(s, store_sqlite_model_reset_locked(w_, id, owner, now));
}

/* ------------------------------------------------------------- metrics */

static int store_sqlite_touch(store_sqlite_conn *c, const char *id,
                              const char *owner, int64_t now) {
  sqlite3_stmt *st = store_sqlite_stmt(c, SQ_MODEL_TOUCH);
  if (!st)
    return -1;
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, now);
  store_sqlite_bind_owner(st, 3, owner);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc != SQLITE_DONE)
    return -1;
  return sqlite3_changes(c->db) ? 1 : 0;
}

/* Runs statement `which` on (id, epoch, json); the rows it changed, or -1. */
static int store_sqlite_epoch_step(store_sqlite_conn *c, int which,
                                   const char *id, const store_epoch *e) {
  sqlite3_stmt *st = store_sqlite_stmt(c, which);
  if (!st)
    return -1;
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, e->epoch);
  sqlite3_bind_text(st, 3, e->json, -1, SQLITE_STATIC);
  int step = sqlite3_step(st);
  sqlite3_reset(st);
  return step == SQLITE_DONE ? sqlite3_changes(c->db) : -1;
}

/* Stores (replaces) each epoch inside the open transaction; adds the number
 * of new ones to *added. 0, or -1 on a database error. */
static int store_sqlite_epochs(store_sqlite_conn *c, const char *id,
                               const store_epoch *e, size_t n, int64_t *added) {
  for (size_t i = 0; i < n; i++) {
    int changed = store_sqlite_epoch_step(c, SQ_METRICS_PUT, id, &e[i]);
    if (changed == 0)
      changed = store_sqlite_epoch_step(c, SQ_METRICS_SET, id, &e[i]);
    else if (changed > 0)
      (*added)++;
    if (changed < 0)
      return -1;
  }
  return 0;
}

/* Adds `added` new epochs to the model's metrics_count, so that reading
 * the model never counts its metrics; 0, or -1 on a database error. */
static int store_sqlite_count_add(store_sqlite_conn *c, const char *id,
                                  int64_t added) {
  if (added == 0)
    return 0;
  sqlite3_stmt *st = store_sqlite_stmt(c, SQ_METRICS_COUNT_ADD);
  if (!st)
    return -1;
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, added);
  int step = sqlite3_step(st);
  sqlite3_reset(st);
  return step == SQLITE_DONE ? 0 : -1;
}

/* Checks that the model exists for owner and from when its row needs a
 * touch: the row is rewritten only when its status or its last-seen time
 * (shown to the second) would change, one page less to write per upload
 * while metrics stream in. 1 found (*due set), 0 not found, -1 database
 * error. */
static int store_sqlite_peek(store_sqlite_conn *c, const char *id,
                             const char *owner, int64_t *due) {
  sqlite3_stmt *peek = store_sqlite_stmt(c, SQ_MODEL_PEEK);
  if (!peek)
    return -1;
  sqlite3_bind_text(peek, 1, id, -1, SQLITE_STATIC);
  store_sqlite_bind_owner(peek, 2, owner);
  int rc = sqlite3_step(peek);
  if (rc == SQLITE_ROW)
    *due = strcmp((const char *)sqlite3_column_text(peek, 0), "new") == 0
               ? INT64_MIN
               : sqlite3_column_int64(peek, 1) + 1000;
  sqlite3_reset(peek);
  return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

static store_rc store_sqlite_metrics_put_locked(store_sqlite_conn *c,
                                                const char *id,
                                                const char *owner,
                                                const store_epoch *e, size_t n,
                                                int64_t now) {
  if (store_sqlite_begin(c) < 0)
    return store_sqlite_fail(c, "metrics_put");
  int64_t due = 0, added = 0;
  int found = store_sqlite_peek(c, id, owner, &due);
  if (found == 0) {
    store_sqlite_rollback(c);
    return STORE_NOTFOUND;
  }
  if (found < 0 || (now >= due && store_sqlite_touch(c, id, NULL, now) < 0) ||
      store_sqlite_epochs(c, id, e, n, &added) < 0 ||
      store_sqlite_count_add(c, id, added) < 0)
    return store_sqlite_abort(c, "metrics_put");
  return store_sqlite_commit(c, "metrics_put");
}

/* A batch takes at most this many uploads: one transaction stays small,
 * and the search for an upload's model among the batch's stays short. */
#define STORE_SQLITE_BATCH_MAX 256

/* A model that uploads of a batch write to: checked once, then touched
 * and counted once for all of them. */
typedef struct store_sqlite_batch_model {
  const char *id, *owner;
  int found;
  int64_t due, now, added;
} store_sqlite_batch_model;

static int store_sqlite_same_owner(const char *a, const char *b) {
  return a == b || (a && b && strcmp(a, b) == 0);
}

/* The batch's entry for job j's model and owner, checked in the store when
 * it is new; NULL on a database error. */
static store_sqlite_batch_model *
store_sqlite_batch_model_of(store_sqlite_conn *c, store_sqlite_batch_model *m,
                            size_t *nm, const store_sqlite_metrics_req *j) {
  for (size_t i = 0; i < *nm; i++)
    if (strcmp(m[i].id, j->id) == 0 &&
        store_sqlite_same_owner(m[i].owner, j->owner)) {
      if (j->now > m[i].now)
        m[i].now = j->now;
      return &m[i];
    }
  store_sqlite_batch_model *b = &m[*nm];
  *b =
      (store_sqlite_batch_model){.id = j->id, .owner = j->owner, .now = j->now};
  b->found = store_sqlite_peek(c, j->id, j->owner, &b->due);
  if (b->found < 0)
    return NULL;
  (*nm)++;
  return b;
}

/* The batch's statements inside its transaction: each upload's epochs,
 * then per model one touch and one count. 0, or -1 on a database error. */
static int store_sqlite_metrics_jobs(store_sqlite_conn *c,
                                     store_sqlite_metrics_req *batch,
                                     store_sqlite_batch_model *m) {
  size_t nm = 0;
  for (store_sqlite_metrics_req *j = batch; j; j = j->next) {
    store_sqlite_batch_model *b = store_sqlite_batch_model_of(c, m, &nm, j);
    if (!b)
      return -1;
    if (!b->found) {
      j->rc = STORE_NOTFOUND;
      continue;
    }
    if (store_sqlite_epochs(c, j->id, j->e, j->n, &b->added) < 0)
      return -1;
    j->rc = STORE_OK;
  }
  for (size_t i = 0; i < nm; i++)
    if (m[i].found && ((m[i].now >= m[i].due &&
                        store_sqlite_touch(c, m[i].id, NULL, m[i].now) < 0) ||
                       store_sqlite_count_add(c, m[i].id, m[i].added) < 0))
      return -1;
  return 0;
}

/* Runs a batch of metrics uploads as one transaction on the writer (with
 * write_mu held). Should anything fail, the whole transaction is rolled
 * back and each upload runs again in a transaction of its own, so one bad
 * upload costs the others nothing and gets its own answer. */
static void store_sqlite_metrics_batch(store_sqlite_conn *c,
                                       store_sqlite_metrics_req *batch,
                                       size_t njobs) {
  if (store_sqlite_begin(c) < 0) {
    /* The database stayed locked (another process) or cannot be written:
     * one by one would only wait that long again for each upload. */
    store_rc rc = store_sqlite_fail(c, "metrics_put");
    for (store_sqlite_metrics_req *j = batch; j; j = j->next)
      j->rc = rc;
    return;
  }
  store_sqlite_batch_model *m = malloc(njobs * sizeof *m);
  if (m && store_sqlite_metrics_jobs(c, batch, m) == 0 &&
      store_sqlite_exec(c, SQ_COMMIT) == 0) {
    free(m);
    return;
  }
  free(m);
  store_sqlite_fail(c, "metrics_put (a batch; retrying one by one)");
  if (!sqlite3_get_autocommit(c->db))
    store_sqlite_exec(c, SQ_ROLLBACK);
  for (store_sqlite_metrics_req *j = batch; j; j = j->next)
    j->rc =
        store_sqlite_metrics_put_locked(c, j->id, j->owner, j->e, j->n, j->now);
}

/* The group committer: one thread that takes the metrics uploads queued
 * since its last commit (at most STORE_SQLITE_BATCH_MAX), runs them as one
 * transaction and then answers each (done is called only after COMMIT
 * returned). Request threads hand their upload over and go on serving
 * other connections, so uploads pile up while a transaction commits and
 * the next one carries them: the cost of a transaction (locks, the fsync,
 * WAL frames of the same pages, a model row touched and counted once per
 * batch, a checkpoint now and then) is shared by the whole batch. */
static void *store_sqlite_group_main(void *arg) {
  store_sqlite *s = arg;
  pthread_setname_np(pthread_self(), "chubd-commit"); /* for top -H, perf */
  pthread_mutex_lock(&s->group_mu);
  for (;;) {
    while (!s->group_head && !s->group_stopping)
      pthread_cond_wait(&s->group_cv, &s->group_mu);
    store_sqlite_metrics_req *batch = s->group_head, *last = batch;
    if (!batch)
      break; /* stopping, and nothing is left */
    size_t uploads = 1, epochs = batch->n;
    while (last->next && uploads < STORE_SQLITE_BATCH_MAX) {
      last = last->next;
      uploads++;
      epochs += last->n;
    }
    s->group_head = last->next;
    if (!s->group_head)
      s->group_tail = NULL;
    last->next = NULL;
    pthread_mutex_unlock(&s->group_mu);

    pthread_mutex_lock(&s->write_mu);
    store_sqlite_metrics_batch(s->writer, batch, uploads);
    pthread_mutex_unlock(&s->write_mu);
    prom_metrics_commit(uploads, epochs);
    for (store_sqlite_metrics_req *j = batch, *next; j; j = next) {
      next = j->next;
      j->done(j->ud, j->rc);
      free(j);
    }
    pthread_mutex_lock(&s->group_mu);
  }
  pthread_mutex_unlock(&s->group_mu);
  return NULL;
}

static store_rc store_sqlite_metrics_put_async(store *base, const char *id,
                                               const char *owner,
                                               const store_epoch *e, size_t n,
                                               int64_t now, store_done_cb done,
                                               void *ud) {
  store_sqlite *s = (store_sqlite *)base;
  store_sqlite_metrics_req *j = malloc(sizeof *j);
  if (!j)
    return STORE_ERROR;
  *j = (store_sqlite_metrics_req){.id = id,
                                  .owner = owner,
                                  .e = e,
                                  .n = n,
                                  .now = now,
                                  .rc = STORE_ERROR,
                                  .done = done,
                                  .ud = ud};
  pthread_mutex_lock(&s->group_mu);
  if (!s->group_started) {
    /* Started on first use, so that `chubd keys` never starts it. */
    if (s->group_stopping || pthread_create(&s->group_thread, NULL,
                                            store_sqlite_group_main, s) != 0) {
      pthread_mutex_unlock(&s->group_mu);
      free(j);
      fprintf(stderr, "chubd: cannot start the metrics committer thread\n");
      return STORE_ERROR;
    }
    s->group_started = 1;
  }
  if (s->group_tail)
    s->group_tail->next = j;
  else
    s->group_head = j;
  s->group_tail = j;
  pthread_cond_signal(&s->group_cv);
  pthread_mutex_unlock(&s->group_mu);
  return STORE_OK;
}

/* metrics_put for callers that wait: the same queue, answered on
 * waited_cv. */
typedef struct store_sqlite_waiter {
  store_sqlite *s;
  store_rc rc;
  int done;
} store_sqlite_waiter;

static void store_sqlite_wake(void *ud, store_rc rc) {
  store_sqlite_waiter *w = ud;
  pthread_mutex_lock(&w->s->group_mu);
  w->rc = rc;
  w->done = 1;
  pthread_cond_broadcast(&w->s->waited_cv);
  pthread_mutex_unlock(&w->s->group_mu);
}

static store_rc store_sqlite_metrics_put(store *base, const char *id,
                                         const char *owner,
                                         const store_epoch *e, size_t n,
                                         int64_t now) {
  store_sqlite *s = (store_sqlite *)base;
  store_sqlite_waiter w = {s, STORE_ERROR, 0};
  store_rc rc = store_sqlite_metrics_put_async(base, id, owner, e, n, now,
                                               store_sqlite_wake, &w);
  if (rc != STORE_OK)
    return rc;
  pthread_mutex_lock(&s->group_mu);
  while (!w.done)
    pthread_cond_wait(&s->waited_cv, &s->group_mu);
  pthread_mutex_unlock(&s->group_mu);
  return w.rc;
}

static store_rc store_sqlite_metrics_get(store *s, const char *id,
                                         int64_t after, int limit,
                                         store_metrics_cb cb, void *ud) {
  STORE_SQLITE_CONN(s, c);
  sqlite3_stmt *st = store_sqlite_stmt(c, SQ_METRICS_GET);
  if (!st)
    return STORE_ERROR;
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, after);
  sqlite3_bind_int(st, 3, limit);
  int rc;
  store_rc result = STORE_OK;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const unsigned char *data = sqlite3_column_text(st, 1);
    if (cb(ud, sqlite3_column_int64(st, 0), data ? (const char *)data : "{}") !=
        0) {
      result = STORE_ERROR;
      break;
    }
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    result = store_sqlite_fail(c, "metrics_get");
  sqlite3_reset(st);
  return result;
}

/* --------------------------------------------------------- checkpoints */

static store_rc store_sqlite_checkpoint_add_locked(store_sqlite_conn *c,
                                                   const char *id,
                                                   const store_checkpoint *k) {
  if (store_sqlite_begin(c) < 0)
    return store_sqlite_fail(c, "checkpoint_add");
  sqlite3_stmt *st = store_sqlite_stmt(c, SQ_MODEL_STATUS);
  if (!st)
    return store_sqlite_abort(c, "checkpoint_add");
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  int trained =
      rc == SQLITE_ROW &&
      strcmp((const char *)sqlite3_column_text(st, 0), "trained") == 0;
  sqlite3_reset(st);
  if (rc != SQLITE_ROW) {
    if (rc != SQLITE_DONE)
      return store_sqlite_abort(c, "checkpoint_add");
    store_sqlite_rollback(c);
    return STORE_NOTFOUND;
  }
  if (k->final && trained) {
    store_sqlite_rollback(c);
    return STORE_CONFLICT;
  }
  st = store_sqlite_stmt(c, SQ_CKPT_ADD);
  if (!st)
    return store_sqlite_abort(c, "checkpoint_add");
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, k->epoch);
  sqlite3_bind_int(st, 3, k->final);
  sqlite3_bind_int(st, 4, k->is_best);
  if (k->has_map)
    sqlite3_bind_double(st, 5, k->map);
  sqlite3_bind_int64(st, 6, k->size);
  sqlite3_bind_text(st, 7, k->sha256, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 8, k->created_ms);
  sqlite3_bind_text(st, 9, k->suffix[0] ? k->suffix : ".pt", -1, SQLITE_STATIC);
  rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc != SQLITE_DONE)
    return store_sqlite_abort(c, "checkpoint_add");
  if (k->final) {
    st = store_sqlite_stmt(c, SQ_MODEL_TRAINED);
    if (!st)
      return store_sqlite_abort(c, "checkpoint_add");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, k->created_ms);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
      return store_sqlite_abort(c, "checkpoint_add");
  } else if (store_sqlite_touch(c, id, NULL, k->created_ms) < 0) {
    return store_sqlite_abort(c, "checkpoint_add");
  }
  return store_sqlite_commit(c, "checkpoint_add");
}

static store_rc store_sqlite_checkpoint_add(store *s, const char *id,
                                            const store_checkpoint *k) {
  STORE_SQLITE_WRITE(s, store_sqlite_checkpoint_add_locked(w_, id, k));
}

static store_rc store_sqlite_checkpoints(store *s, const char *id,
                                         store_checkpoint **out, size_t *n) {
  STORE_SQLITE_CONN(s, c);
  *out = NULL;
  *n = 0;
  sqlite3_stmt *st = store_sqlite_stmt(c, SQ_CKPTS);
  if (!st)
    return STORE_ERROR;
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  size_t cap = 0;
  int rc;
  store_rc result = STORE_OK;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (*n == cap) {
      size_t ncap = cap ? cap * 2 : 8;
      store_checkpoint *grown = realloc(*out, ncap * sizeof **out);
      if (!grown) {
        result = STORE_ERROR;
        break;
      }
      *out = grown;
      cap = ncap;
    }
    store_checkpoint *k = &(*out)[(*n)++];
    k->epoch = sqlite3_column_int64(st, 0);
    k->final = sqlite3_column_int(st, 1);
    k->is_best = sqlite3_column_int(st, 2);
    k->has_map = sqlite3_column_type(st, 3) != SQLITE_NULL;
    k->map = sqlite3_column_double(st, 3);
    k->size = sqlite3_column_int64(st, 4);
    store_sqlite_text(st, 5, k->sha256, sizeof k->sha256);
    k->created_ms = sqlite3_column_int64(st, 6);
    store_sqlite_text(st, 7, k->suffix, sizeof k->suffix);
  }
  if (result == STORE_OK && rc != SQLITE_ROW && rc != SQLITE_DONE)
    result = store_sqlite_fail(c, "checkpoints");
  sqlite3_reset(st);
  if (result != STORE_OK) {
    free(*out);
    *out = NULL;
    *n = 0;
  }
  return result;
}

static store_rc store_sqlite_blob_in_use(store *s, const char *sha256,
                                         int *in_use) {
  STORE_SQLITE_CONN(s, c);
  sqlite3_stmt *st = store_sqlite_stmt(c, SQ_BLOB_USED);
  if (!st)
    return STORE_ERROR;
  sqlite3_bind_text(st, 1, sha256, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    return store_sqlite_fail(c, "blob_in_use");
  *in_use = rc == SQLITE_ROW;
  return STORE_OK;
}

/* ------------------------------------------------------------ datasets */

static int store_sqlite_dataset_row(sqlite3_stmt *st, store_dataset *d) {
  memset(d, 0, sizeof *d);
  store_sqlite_text(st, 0, d->id, sizeof d->id);
  store_sqlite_text(st, 1, d->owner, sizeof d->owner);
  d->meta = store_sqlite_dup(st, 2);
  store_sqlite_text(st, 3, d->status, sizeof d->status);
  d->size = sqlite3_column_int64(st, 4);
  store_sqlite_text(st, 5, d->sha256, sizeof d->sha256);
  store_sqlite_text(st, 6, d->filename, sizeof d->filename);
  d->files = sqlite3_column_int64(st, 7);
  d->created_ms = sqlite3_column_int64(st, 8);
  d->updated_ms = sqlite3_column_int64(st, 9);
  return d->meta ? 0 : -1;
}

void store_dataset_free(store_dataset *d) {
  free(d->meta);
  d->meta = NULL;
}

static store_rc store_sqlite_dataset_add_locked(store_sqlite_conn *c,
                                                const store_dataset *d) {
  sqlite3_stmt *st = store_sqlite_stmt(c, SQ_DATASET_ADD);
  if (!st)
    return STORE_ERROR;
  sqlite3_bind_text(st, 1, d->id, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, d->owner, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, d->meta, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, d->created_ms);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc == SQLITE_CONSTRAINT)
    return STORE_CONFLICT;
  return rc == SQLITE_DONE ? STORE_OK : store_sqlite_fail(c, "dataset_add");
}

static store_rc store_sqlite_dataset_add(store *s, const store_dataset *d) {
  STORE_SQLITE_WRITE(s, store_sqlite_dataset_add_locked(w_, d));
}

static store_rc store_sqlite_dataset_get(store *s, const char *id,
                                         const char *owner,
                                         store_dataset *out) {
  STORE_SQLITE_CONN(s, c);
  sqlite3_stmt *st = store_sqlite_stmt(c, SQ_DATASET_GET);
  if (!st)
    return STORE_ERROR;
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  store_sqlite_bind_owner(st, 2, owner);
  int rc = sqlite3_step(st);
  store_rc result;
  if (rc == SQLITE_ROW)
    result = store_sqlite_dataset_row(st, out) == 0 ? STORE_OK : STORE_ERROR;
  else if (rc == SQLITE_DONE)
    result = STORE_NOTFOUND;
  else
    result = store_sqlite_fail(c, "dataset_get");
  sqlite3_reset(st);
  return result;
}

typedef struct store_sqlite_dataset_visit {
  store_dataset_cb cb;
  void *ud;
} store_sqlite_dataset_visit;

static int store_sqlite_visit_dataset(sqlite3_stmt *st, void *ctx) {
  store_sqlite_dataset_visit *v = ctx;
  store_dataset d;
  int bad = store_sqlite_dataset_row(st, &d) < 0;
  int stop = bad ? -1 : v->cb(v->ud, &d) ? 1 : 0;
  store_dataset_free(&d);
  return stop;
}

static store_rc store_sqlite_dataset_list(store *s, const char *owner,
                                          const char *after, int limit,
                                          store_dataset_cb cb, void *ud,
                                          int64_t *total, int *more) {
  static const store_sqlite_pager pager = {SQ_DATASET_SEQ,   SQ_DATASET_COUNT,
                                           SQ_DATASET_COUNT, SQ_DATASET_LIST,
                                           SQ_DATASET_LIST,  "dataset_list"};
  STORE_SQLITE_CONN(s, c);
  store_sqlite_dataset_visit v = {cb, ud};
  return store_sqlite_page(c, &pager, owner, after, limit, total, more,
                           store_sqlite_visit_dataset, &v);
}

static store_rc store_sqlite_dataset_update_locked(store_sqlite_conn *c,
                                                   const char *id,
                                                   const char *meta,
                                                   int64_t now) {
  sqlite3_stmt *st = store_sqlite_stmt(c, SQ_DATASET_UPDATE);
  if (!st)
    return STORE_ERROR;
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, meta, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, now);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc != SQLITE_DONE)
    return store_sqlite_fail(c, "dataset_update");
  return sqlite3_changes(c->db) ? STORE_OK : STORE_NOTFOUND;
}

static store_rc store_sqlite_dataset_update(store *s, const char *id,
                                            const char *meta, int64_t now) {
  STORE_SQLITE_WRITE(s, store_sqlite_dataset_update_locked(w_, id, meta, now));
}

static store_rc store_sqlite_dataset_delete_locked(store_sqlite_conn *c,
                                                   const char *id, int hard) {
  sqlite3_stmt *st =
      store_sqlite_stmt(c, hard ? SQ_DATASET_HARDDEL : SQ_DATASET_SOFTDEL);
  if (!st)
    return STORE_ERROR;
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  if (!hard)
    sqlite3_bind_int64(st, 2, util_now_ms());
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc != SQLITE_DONE)
    return store_sqlite_fail(c, "dataset_delete");
  return sqlite3_changes(c->db) ? STORE_OK : STORE_NOTFOUND;
}

static store_rc store_sqlite_dataset_delete(store *s, const char *id,
                                            int hard) {
  STORE_SQLITE_WRITE(s, store_sqlite_dataset_delete_locked(w_, id, hard));
}

static store_rc store_sqlite_dataset_set_file_locked(store_sqlite_conn *c,
                                                     const store_dataset *d,
                                                     char old_sha256[65]) {
  old_sha256[0] = '\0';
  if (store_sqlite_begin(c) < 0)
    return store_sqlite_fail(c, "dataset_set_file");
  sqlite3_stmt *st = store_sqlite_stmt(c, SQ_DATASET_SHA);
  if (!st)
    return store_sqlite_abort(c, "dataset_set_file");
  sqlite3_bind_text(st, 1, d->id, -1, SQLITE_STATIC);
  store_sqlite_bind_owner(st, 2, d->owner[0] ? d->owner : NULL);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW)
    store_sqlite_text(st, 0, old_sha256, 65);
  sqlite3_reset(st);
  if (rc != SQLITE_ROW) {
    if (rc != SQLITE_DONE)
      return store_sqlite_abort(c, "dataset_set_file");
    store_sqlite_rollback(c);
    return STORE_NOTFOUND;
  }
  st = store_sqlite_stmt(c, SQ_DATASET_FILE);
  if (!st)
    return store_sqlite_abort(c, "dataset_set_file");
  sqlite3_bind_text(st, 1, d->id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, d->size);
  sqlite3_bind_text(st, 3, d->sha256, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 4, d->filename, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 5, d->files);
  sqlite3_bind_int64(st, 6, d->updated_ms);
  rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc != SQLITE_DONE)
    return store_sqlite_abort(c, "dataset_set_file");
  return store_sqlite_commit(c, "dataset_set_file");
}

static store_rc store_sqlite_dataset_set_file(store *s, const store_dataset *d,
                                              char old_sha256[65]) {
  STORE_SQLITE_WRITE(s,
                     store_sqlite_dataset_set_file_locked(w_, d, old_sha256));
}

static store_rc store_sqlite_dataset_models(store *s, const char *id, int limit,
                                            store_model_cb cb, void *ud) {
  STORE_SQLITE_CONN(s, c);
  sqlite3_stmt *st = store_sqlite_stmt(c, SQ_DATASET_MODELS);
  if (!st)
    return STORE_ERROR;
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 2, limit);
  store_sqlite_model_visit v = {cb, ud};
  return store_sqlite_each(c, st, -1, NULL, store_sqlite_visit_model, &v,
                           "dataset_models");
}

/* ------------------------------------------------------------ sessions */

static store_rc store_sqlite_session_add_locked(store_sqlite_conn *c,
                                                const unsigned char hash[32],
                                                int64_t key_id, int64_t now,
                                                int64_t expires) {
  /* Expired sessions go as new ones come: the table stays as small as the
   * sessions in use. */
  sqlite3_stmt *st = store_sqlite_stmt(c, SQ_SESSION_EXPIRE);
  if (!st)
    return STORE_ERROR;
  sqlite3_bind_int64(st, 1, now);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc != SQLITE_DONE)
    return store_sqlite_fail(c, "session_add");
  st = store_sqlite_stmt(c, SQ_SESSION_ADD);
  if (!st)
    return STORE_ERROR;
  sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, key_id);
  sqlite3_bind_int64(st, 3, now);
  sqlite3_bind_int64(st, 4, expires);
  rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc != SQLITE_DONE)
    return store_sqlite_fail(c, "session_add");
  /* A key keeps only its newest sessions: logging in again and again
   * cannot grow the table. */
  st = store_sqlite_stmt(c, SQ_SESSION_TRIM);
  if (!st)
    return STORE_ERROR;
  sqlite3_bind_int64(st, 1, key_id);
  sqlite3_bind_int(st, 2, STORE_SESSIONS_PER_KEY);
  rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? STORE_OK : store_sqlite_fail(c, "session_add");
}

static store_rc store_sqlite_session_add(store *s, const unsigned char hash[32],
                                         int64_t key_id, int64_t now,
                                         int64_t expires) {
  STORE_SQLITE_WRITE(
      s, store_sqlite_session_add_locked(w_, hash, key_id, now, expires));
}

static store_rc store_sqlite_session_find(store *s,
                                          const unsigned char hash[32],
                                          int64_t now, store_key *out) {
  STORE_SQLITE_CONN(s, c);
  sqlite3_stmt *st = store_sqlite_stmt(c, SQ_SESSION_FIND);
  if (!st)
    return STORE_ERROR;
  sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, now);
  int rc = sqlite3_step(st);
  store_rc result = STORE_NOTFOUND;
  if (rc == SQLITE_ROW) {
    memset(out, 0, sizeof *out);
    out->id = sqlite3_column_int64(st, 0);
    store_sqlite_text(st, 1, out->owner, sizeof out->owner);
    store_sqlite_text(st, 2, out->prefix, sizeof out->prefix);
    out->created_ms = sqlite3_column_int64(st, 3);
    result = STORE_OK;
  } else if (rc != SQLITE_DONE) {
    result = store_sqlite_fail(c, "session_find");
  }
  sqlite3_reset(st);
  return result;
}

static store_rc store_sqlite_session_drop_locked(store_sqlite_conn *c,
                                                 const unsigned char hash[32]) {
  sqlite3_stmt *st = store_sqlite_stmt(c, SQ_SESSION_DROP);
  if (!st)
    return STORE_ERROR;
  sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? STORE_OK : store_sqlite_fail(c, "session_drop");
}

static store_rc store_sqlite_session_drop(store *s,
                                          const unsigned char hash[32]) {
  STORE_SQLITE_WRITE(s, store_sqlite_session_drop_locked(w_, hash));
}

/* ------------------------------------------------- heartbeats, events */

static store_rc store_sqlite_heartbeat_locked(store_sqlite_conn *c,
                                              const char *id,
                                              const char *agent_id,
                                              const char *agent_name,
                                              int64_t now) {
  sqlite3_stmt *st = store_sqlite_stmt(c, SQ_HEARTBEAT);
  if (!st)
    return STORE_ERROR;
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, agent_id, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, agent_name, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, now);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc != SQLITE_DONE)
    return store_sqlite_fail(c, "heartbeat");
  return sqlite3_changes(c->db) ? STORE_OK : STORE_NOTFOUND;
}

static store_rc store_sqlite_heartbeat(store *s, const char *id,
                                       const char *agent_id,
                                       const char *agent_name, int64_t now) {
  STORE_SQLITE_WRITE(
      s, store_sqlite_heartbeat_locked(w_, id, agent_id, agent_name, now));
}

/* Events client_id sent since the start of now's UTC day. */
static int64_t store_sqlite_events_today(store_sqlite_conn *c,
                                         const char *client_id, int64_t now) {
  sqlite3_stmt *st = store_sqlite_stmt(c, SQ_EVENT_COUNT);
  if (!st)
    return -1;
  sqlite3_bind_text(st, 1, client_id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, now - now % 86400000);
  int rc = sqlite3_step(st);
  int64_t n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
  sqlite3_reset(st);
  return n;
}

static store_rc store_sqlite_events_add_locked(store_sqlite_conn *c,
                                               const char *client_id,
                                               const char *events, int64_t now,
                                               int64_t per_day) {
  json_t *arr = json_loads(events, 0, NULL);
  if (!json_is_array(arr)) {
    json_decref(arr);
    return STORE_ERROR;
  }
  if (store_sqlite_begin(c) < 0) {
    json_decref(arr);
    return store_sqlite_fail(c, "events_add");
  }
  int64_t today = store_sqlite_events_today(c, client_id, now);
  if (today < 0) {
    json_decref(arr);
    return store_sqlite_abort(c, "events_add");
  }
  if (today + (int64_t)json_array_size(arr) > per_day) {
    json_decref(arr);
    store_sqlite_rollback(c);
    return STORE_LIMIT;
  }
  size_t i;
  json_t *ev;
  json_array_foreach(arr, i, ev) {
    json_t *params = json_object_get(ev, "params");
    char *ptext = params ? json_dumps(params, JSON_COMPACT) : strdup("{}");
    sqlite3_stmt *st = store_sqlite_stmt(c, SQ_EVENT_ADD);
    if (!st || !ptext) {
      free(ptext);
      json_decref(arr);
      return store_sqlite_abort(c, "events_add");
    }
    sqlite3_bind_text(st, 1, client_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, json_string_value(json_object_get(ev, "name")), -1,
                      SQLITE_STATIC);
    sqlite3_bind_text(st, 3, ptext, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    free(ptext);
    if (rc != SQLITE_DONE) {
      json_decref(arr);
      return store_sqlite_abort(c, "events_add");
    }
  }
  json_decref(arr);
  return store_sqlite_commit(c, "events_add");
}

static store_rc store_sqlite_events_add(store *s, const char *client_id,
                                        const char *events, int64_t now,
                                        int64_t per_day) {
  STORE_SQLITE_WRITE(
      s, store_sqlite_events_add_locked(w_, client_id, events, now, per_day));
}

/* ------------------------------------------------------------- secrets */

static store_rc store_sqlite_secret_get_locked(store_sqlite_conn *c,
                                               const char *name,
                                               const unsigned char *init,
                                               unsigned char *out, size_t len) {
  if (store_sqlite_begin(c) < 0)
    return store_sqlite_fail(c, "secret_get");
  sqlite3_stmt *st = store_sqlite_stmt(c, SQ_SECRET_PUT);
  if (!st)
    return store_sqlite_abort(c, "secret_get");
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  sqlite3_bind_blob(st, 2, init, (int)len, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc != SQLITE_DONE)
    return store_sqlite_abort(c, "secret_get");
  st = store_sqlite_stmt(c, SQ_SECRET_GET);
  if (!st)
    return store_sqlite_abort(c, "secret_get");
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  rc = sqlite3_step(st);
  int ok = rc == SQLITE_ROW && sqlite3_column_bytes(st, 0) == (int)len &&
           sqlite3_column_blob(st, 0);
  if (ok)
    memcpy(out, sqlite3_column_blob(st, 0), len);
  sqlite3_reset(st);
  if (rc != SQLITE_ROW)
    return store_sqlite_abort(c, "secret_get");
  if (!ok) {
    fprintf(stderr,
            "chubd: database error in secret_get: the stored secret %s is "
            "not %zu bytes\n",
            name, len);
    store_sqlite_rollback(c);
    return STORE_ERROR;
  }
  return store_sqlite_commit(c, "secret_get");
}

static store_rc store_sqlite_secret_get(store *s, const char *name,
                                        const unsigned char *init,
                                        unsigned char *out, size_t len) {
  STORE_SQLITE_WRITE(s,
                     store_sqlite_secret_get_locked(w_, name, init, out, len));
}

/* --------------------------------------------------------- open, close */

static void store_sqlite_close(store *base) {
  store_sqlite *s = (store_sqlite *)base;
  if (!s)
    return;
  /* The committer finishes what is queued (answering it) and ends. */
  pthread_mutex_lock(&s->group_mu);
  s->group_stopping = 1;
  int started = s->group_started;
  pthread_cond_signal(&s->group_cv);
  pthread_mutex_unlock(&s->group_mu);
  if (started)
    pthread_join(s->group_thread, NULL);
  if (s->writer)
    store_sqlite_conn_close(s->writer);
  pthread_mutex_lock(&s->mu);
  store_sqlite_conn *c = s->conns;
  s->conns = NULL;
  pthread_mutex_unlock(&s->mu);
  while (c) {
    store_sqlite_conn *next = c->next;
    store_sqlite_conn_close(c);
    c = next;
  }
  pthread_setspecific(s->tls, NULL);
  pthread_key_delete(s->tls);
  pthread_mutex_destroy(&s->mu);
  pthread_mutex_destroy(&s->write_mu);
  pthread_mutex_destroy(&s->group_mu);
  pthread_cond_destroy(&s->group_cv);
  pthread_cond_destroy(&s->waited_cv);
  free(s);
}

/* ------------------------------------------- projects and Platform runs */

/* Runs the bound write statement st: STORE_NOTFOUND when it changed no
 * row, STORE_CONFLICT on a uniqueness violation. */
static store_rc store_sqlite_change(store_sqlite_conn *c, sqlite3_stmt *st,
                                    const char *what) {
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if ((sqlite3_extended_errcode(c->db) & 0xff) == SQLITE_CONSTRAINT &&
      rc != SQLITE_DONE)
    return STORE_CONFLICT;
  if (rc != SQLITE_DONE)
    return store_sqlite_fail(c, what);
  return sqlite3_changes(c->db) > 0 ? STORE_OK : STORE_NOTFOUND;
}

static store_rc store_sqlite_project_ensure_locked(store_sqlite_conn *c,
                                                   const char *owner,
                                                   const char *name,
                                                   const char *new_id,
                                                   int64_t now, char id[21]) {
  if (store_sqlite_begin(c) < 0)
    return store_sqlite_fail(c, "project_ensure");
  sqlite3_stmt *st = store_sqlite_stmt(c, SQ_PROJECT_ADD);
  if (!st)
    return store_sqlite_abort(c, "project_ensure");
  sqlite3_bind_text(st, 1, new_id, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, owner, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, now);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc != SQLITE_DONE)
    return store_sqlite_abort(c, "project_ensure");
  st = store_sqlite_stmt(c, SQ_PROJECT_FIND);
  if (!st)
    return store_sqlite_abort(c, "project_ensure");
  sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW)
    store_sqlite_text(st, 0, id, 21);
  sqlite3_reset(st);
  if (rc != SQLITE_ROW)
    return store_sqlite_abort(c, "project_ensure");
  return store_sqlite_commit(c, "project_ensure");
}

static store_rc store_sqlite_project_ensure(store *s, const char *owner,
                                            const char *name,
                                            const char *new_id, int64_t now,
                                            char id[21]) {
  STORE_SQLITE_WRITE(
      s, store_sqlite_project_ensure_locked(w_, owner, name, new_id, now, id));
}

static int store_sqlite_project_row(sqlite3_stmt *st, store_project *p) {
  memset(p, 0, sizeof *p);
  store_sqlite_text(st, 0, p->id, sizeof p->id);
  store_sqlite_text(st, 1, p->owner, sizeof p->owner);
  store_sqlite_text(st, 2, p->name, sizeof p->name);
  p->meta = store_sqlite_dup(st, 3);
  p->created_ms = sqlite3_column_int64(st, 4);
  p->updated_ms = sqlite3_column_int64(st, 5);
  p->models = sqlite3_column_int64(st, 6);
  return p->meta ? 0 : -1;
}

void store_project_free(store_project *p) {
  free(p->meta);
  p->meta = NULL;
}

static store_rc store_sqlite_project_find(store *s, const char *owner,
                                          const char *name, char id[21]) {
  STORE_SQLITE_CONN(s, c);
  sqlite3_stmt *st = store_sqlite_stmt(c, SQ_PROJECT_FIND);
  if (!st)
    return STORE_ERROR;
  sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  store_rc result = STORE_NOTFOUND;
  if (rc == SQLITE_ROW) {
    store_sqlite_text(st, 0, id, 21);
    result = STORE_OK;
  } else if (rc != SQLITE_DONE) {
    result = store_sqlite_fail(c, "project_find");
  }
  sqlite3_reset(st);
  return result;
}

static store_rc store_sqlite_model_set_trained_locked(store_sqlite_conn *c,
                                                      const char *id,
                                                      int64_t now) {
  sqlite3_stmt *st = store_sqlite_stmt(c, SQ_MODEL_TRAINED);
  if (!st)
    return STORE_ERROR;
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, now);
  return store_sqlite_change(c, st, "model_set_trained");
}

static store_rc store_sqlite_model_set_trained(store *s, const char *id,
                                               int64_t now) {
  STORE_SQLITE_WRITE(s, store_sqlite_model_set_trained_locked(w_, id, now));
}

static store_rc store_sqlite_project_get(store *s, const char *id,
                                         const char *owner,
                                         store_project *out) {
  STORE_SQLITE_CONN(s, c);
  sqlite3_stmt *st = store_sqlite_stmt(c, SQ_PROJECT_GET);
  if (!st)
    return STORE_ERROR;
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  store_sqlite_bind_owner(st, 2, owner);
  int rc = sqlite3_step(st);
  store_rc result;
  if (rc == SQLITE_ROW)
    result = store_sqlite_project_row(st, out) == 0 ? STORE_OK : STORE_ERROR;
  else if (rc == SQLITE_DONE)
    result = STORE_NOTFOUND;
  else
    result = store_sqlite_fail(c, "project_get");
  sqlite3_reset(st);
  return result;
}

typedef struct store_sqlite_project_visit {
  store_project_cb cb;
  void *ud;
} store_sqlite_project_visit;

static int store_sqlite_visit_project(sqlite3_stmt *st, void *ctx) {
  store_sqlite_project_visit *v = ctx;
  store_project p;
  if (store_sqlite_project_row(st, &p) < 0)
    return -1;
  int stop = v->cb(v->ud, &p);
  store_project_free(&p);
  return stop ? 1 : 0;
}

static store_rc store_sqlite_project_list(store *s, const char *owner,
                                          const char *after, int limit,
                                          store_project_cb cb, void *ud,
                                          int64_t *total, int *more) {
  static const store_sqlite_pager pager = {SQ_PROJECT_SEQ,   SQ_PROJECT_COUNT,
                                           SQ_PROJECT_COUNT, SQ_PROJECT_LIST,
                                           SQ_PROJECT_LIST,  "project_list"};
  STORE_SQLITE_CONN(s, c);
  store_sqlite_project_visit v = {cb, ud};
  return store_sqlite_page(c, &pager, owner, after, limit, total, more,
                           store_sqlite_visit_project, &v);
}

static store_rc
store_sqlite_project_update_locked(store_sqlite_conn *c, const char *id,
                                   const char *owner, const char *name,
                                   const char *meta, int64_t now) {
  sqlite3_stmt *st = store_sqlite_stmt(c, SQ_PROJECT_UPDATE);
  if (!st)
    return STORE_ERROR;
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  store_sqlite_bind_owner(st, 2, owner);
  store_sqlite_bind_owner(st, 3, name);
  store_sqlite_bind_owner(st, 4, meta);
  sqlite3_bind_int64(st, 5, now);
  return store_sqlite_change(c, st, "project_update");
}

static store_rc store_sqlite_project_update(store *s, const char *id,
                                            const char *owner, const char *name,
                                            const char *meta, int64_t now) {
  STORE_SQLITE_WRITE(
      s, store_sqlite_project_update_locked(w_, id, owner, name, meta, now));
}

static store_rc store_sqlite_project_delete_locked(store_sqlite_conn *c,
                                                   const char *id,
                                                   const char *owner,
                                                   int64_t now) {
  sqlite3_stmt *st = store_sqlite_stmt(c, SQ_PROJECT_DELETE);
  if (!st)
    return STORE_ERROR;
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  store_sqlite_bind_owner(st, 2, owner);
  sqlite3_bind_int64(st, 3, now);
  return store_sqlite_change(c, st, "project_delete");
}

static store_rc store_sqlite_project_delete(store *s, const char *id,
                                            const char *owner, int64_t now) {
  STORE_SQLITE_WRITE(s, store_sqlite_project_delete_locked(w_, id, owner, now));
}

static store_rc store_sqlite_run_find(store *s, const char *owner,
                                      const char *project_id, const char *name,
                                      char model_id[21]) {
  STORE_SQLITE_CONN(s, c);
  sqlite3_stmt *st = store_sqlite_stmt(c, SQ_RUN_FIND);
  if (!st)
    return STORE_ERROR;
  sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, project_id, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  store_rc result = STORE_NOTFOUND;
  if (rc == SQLITE_ROW) {
    store_sqlite_text(st, 0, model_id, 21);
    result = STORE_OK;
  } else if (rc != SQLITE_DONE) {
    result = store_sqlite_fail(c, "run_find");
  }
  sqlite3_reset(st);
  return result;
}

static store_rc store_sqlite_run_add_locked(store_sqlite_conn *c,
                                            const char *model_id,
                                            const char *owner,
                                            const char *project_id,
                                            const char *name) {
  sqlite3_stmt *st = store_sqlite_stmt(c, SQ_RUN_ADD);
  if (!st)
    return STORE_ERROR;
  sqlite3_bind_text(st, 1, model_id, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, owner, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, project_id, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 4, name, -1, SQLITE_STATIC);
  store_rc rc = store_sqlite_change(c, st, "run_add");
  return rc == STORE_NOTFOUND ? STORE_OK : rc; /* another model holds it */
}

static store_rc store_sqlite_run_add(store *s, const char *model_id,
                                     const char *owner, const char *project_id,
                                     const char *name) {
  STORE_SQLITE_WRITE(
      s, store_sqlite_run_add_locked(w_, model_id, owner, project_id, name));
}

static store_rc store_sqlite_run_models(store *s, const char *project_id,
                                        const char *owner, int limit,
                                        store_model_cb cb, void *ud) {
  STORE_SQLITE_CONN(s, c);
  sqlite3_stmt *st = store_sqlite_stmt(c, SQ_RUN_MODELS);
  if (!st)
    return STORE_ERROR;
  sqlite3_bind_text(st, 1, project_id, -1, SQLITE_STATIC);
  store_sqlite_bind_owner(st, 2, owner);
  sqlite3_bind_int(st, 3, limit);
  store_sqlite_model_visit v = {cb, ud};
  return store_sqlite_each(c, st, -1, NULL, store_sqlite_visit_model, &v,
                           "run_models");
}

static store_rc store_sqlite_doc_put_locked(store_sqlite_conn *c,
                                            const char *model_id,
                                            const char *name,
                                            const char *body) {
  sqlite3_stmt *st = store_sqlite_stmt(c, SQ_DOC_PUT);
  if (!st)
    return STORE_ERROR;
  sqlite3_bind_text(st, 1, model_id, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, body, -1, SQLITE_STATIC);
  return store_sqlite_change(c, st, "doc_put");
}

static store_rc store_sqlite_doc_put(store *s, const char *model_id,
                                     const char *name, const char *body) {
  STORE_SQLITE_WRITE(s, store_sqlite_doc_put_locked(w_, model_id, name, body));
}

static store_rc store_sqlite_doc_get(store *s, const char *model_id,
                                     const char *name, char **body) {
  *body = NULL;
  STORE_SQLITE_CONN(s, c);
  sqlite3_stmt *st = store_sqlite_stmt(c, SQ_DOC_GET);
  if (!st)
    return STORE_ERROR;
  sqlite3_bind_text(st, 1, model_id, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  store_rc result = STORE_NOTFOUND;
  if (rc == SQLITE_ROW) {
    *body = store_sqlite_dup(st, 0);
    result = *body ? STORE_OK : STORE_ERROR;
  } else if (rc != SQLITE_DONE) {
    result = store_sqlite_fail(c, "doc_get");
  }
  sqlite3_reset(st);
  return result;
}

static store_rc
store_sqlite_console_add_locked(store_sqlite_conn *c, const char *model_id,
                                const char *chunk_id, const char *content,
                                int64_t lines, int64_t max_bytes) {
  int64_t bytes = (int64_t)strlen(content);
  if (store_sqlite_begin(c) < 0)
    return store_sqlite_fail(c, "console_add");
  sqlite3_stmt *st = store_sqlite_stmt(c, SQ_CONSOLE_HAS);
  if (!st)
    return store_sqlite_abort(c, "console_add");
  sqlite3_bind_text(st, 1, model_id, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, chunk_id, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc == SQLITE_ROW) {
    store_sqlite_rollback(c);
    return STORE_CONFLICT;
  }
  if (rc != SQLITE_DONE)
    return store_sqlite_abort(c, "console_add");
  st = store_sqlite_stmt(c, SQ_CONSOLE_SIZE);
  if (!st)
    return store_sqlite_abort(c, "console_add");
  sqlite3_bind_text(st, 1, model_id, -1, SQLITE_STATIC);
  if (sqlite3_step(st) != SQLITE_ROW) {
    sqlite3_reset(st);
    return store_sqlite_abort(c, "console_add");
  }
  int64_t used = sqlite3_column_int64(st, 0);
  int64_t seq = sqlite3_column_int64(st, 1) + 1;
  sqlite3_reset(st);
  if (used + bytes > max_bytes) {
    store_sqlite_rollback(c);
    return STORE_LIMIT;
  }
  st = store_sqlite_stmt(c, SQ_CONSOLE_ADD);
  if (!st)
    return store_sqlite_abort(c, "console_add");
  sqlite3_bind_text(st, 1, model_id, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, chunk_id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, seq);
  sqlite3_bind_text(st, 4, content, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 5, lines);
  sqlite3_bind_int64(st, 6, bytes);
  rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc != SQLITE_DONE)
    return store_sqlite_abort(c, "console_add");
  return store_sqlite_commit(c, "console_add");
}

static store_rc store_sqlite_console_add(store *s, const char *model_id,
                                         const char *chunk_id,
                                         const char *content, int64_t lines,
                                         int64_t max_bytes) {
  STORE_SQLITE_WRITE(s, store_sqlite_console_add_locked(
                            w_, model_id, chunk_id, content, lines, max_bytes));
}

static const char *store_sqlite_col(sqlite3_stmt *st, int col) {
  const unsigned char *t = sqlite3_column_text(st, col);
  return t ? (const char *)t : "";
}

/* Runs `which` (?1 a model, ?2 the seq after which, ?3 at most how many
 * rows) and hands each row to row(st, ctx); a non-zero answer stops it. */
typedef int (*store_sqlite_row_fn)(sqlite3_stmt *st, void *ctx);

static store_rc store_sqlite_after(store *s, int which, const char *model_id,
                                   int64_t after_seq, int limit,
                                   store_sqlite_row_fn row, void *ctx,
                                   const char *what) {
  STORE_SQLITE_CONN(s, c);
  sqlite3_stmt *st = store_sqlite_stmt(c, which);
  if (!st)
    return STORE_ERROR;
  sqlite3_bind_text(st, 1, model_id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, after_seq);
  sqlite3_bind_int(st, 3, limit);
  int rc;
  store_rc result = STORE_OK;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (row(st, ctx) != 0) {
      result = STORE_ERROR;
      break;
    }
  }
  if (result == STORE_OK && rc != SQLITE_DONE)
    result = store_sqlite_fail(c, what);
  sqlite3_reset(st);
  return result;
}

typedef struct store_sqlite_console_ctx {
  store_console_cb cb;
  void *ud;
} store_sqlite_console_ctx;

static int store_sqlite_console_row(sqlite3_stmt *st, void *ctx) {
  store_sqlite_console_ctx *x = ctx;
  return x->cb(x->ud, sqlite3_column_int64(st, 0), store_sqlite_col(st, 1),
               store_sqlite_col(st, 2), sqlite3_column_int64(st, 3));
}

static store_rc store_sqlite_console_get(store *s, const char *model_id,
                                         int64_t after_seq, int limit,
                                         store_console_cb cb, void *ud) {
  store_sqlite_console_ctx x = {cb, ud};
  return store_sqlite_after(s, SQ_CONSOLE_GET, model_id, after_seq, limit,
                            store_sqlite_console_row, &x, "console_get");
}

static store_rc store_sqlite_system_add_locked(store_sqlite_conn *c,
                                               const char *model_id,
                                               int64_t t_ms, int64_t epoch,
                                               const char *body,
                                               int64_t max_samples) {
  if (store_sqlite_begin(c) < 0)
    return store_sqlite_fail(c, "system_add");
  sqlite3_stmt *st = store_sqlite_stmt(c, SQ_SYSTEM_LAST);
  if (!st)
    return store_sqlite_abort(c, "system_add");
  sqlite3_bind_text(st, 1, model_id, -1, SQLITE_STATIC);
  if (sqlite3_step(st) != SQLITE_ROW) {
    sqlite3_reset(st);
    return store_sqlite_abort(c, "system_add");
  }
  int64_t seq = sqlite3_column_int64(st, 0) + 1;
  sqlite3_reset(st);
  if (seq > max_samples) {
    store_sqlite_rollback(c);
    return STORE_LIMIT;
  }
  if (!(st = store_sqlite_stmt(c, SQ_SYSTEM_DEL_EPOCH)))
    return store_sqlite_abort(c, "system_add");
  sqlite3_bind_text(st, 1, model_id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, epoch);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc != SQLITE_DONE || !(st = store_sqlite_stmt(c, SQ_SYSTEM_ADD)))
    return store_sqlite_abort(c, "system_add");
  sqlite3_bind_text(st, 1, model_id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, seq);
  sqlite3_bind_int64(st, 3, t_ms);
  sqlite3_bind_int64(st, 4, epoch);
  sqlite3_bind_text(st, 5, body, -1, SQLITE_STATIC);
  rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc != SQLITE_DONE)
    return store_sqlite_abort(c, "system_add");
  return store_sqlite_commit(c, "system_add");
}

static store_rc store_sqlite_system_add(store *s, const char *model_id,
                                        int64_t t_ms, int64_t epoch,
                                        const char *body, int64_t max_samples) {
  STORE_SQLITE_WRITE(s, store_sqlite_system_add_locked(
                            w_, model_id, t_ms, epoch, body, max_samples));
}

typedef struct store_sqlite_system_ctx {
  store_system_cb cb;
  void *ud;
} store_sqlite_system_ctx;

static int store_sqlite_system_row(sqlite3_stmt *st, void *ctx) {
  store_sqlite_system_ctx *x = ctx;
  return x->cb(x->ud, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
               sqlite3_column_int64(st, 2), store_sqlite_col(st, 3));
}

static store_rc store_sqlite_system_get(store *s, const char *model_id,
                                        int64_t after_seq, int limit,
                                        store_system_cb cb, void *ud) {
  store_sqlite_system_ctx x = {cb, ud};
  return store_sqlite_after(s, SQ_SYSTEM_GET, model_id, after_seq, limit,
                            store_sqlite_system_row, &x, "system_get");
}

static const store_ops store_sqlite_ops = {
    .name = "sqlite",
    .close = store_sqlite_close,
    .key_add = store_sqlite_key_add,
    .key_find = store_sqlite_key_find,
    .key_list = store_sqlite_key_list,
    .key_revoke = store_sqlite_key_revoke,
    .key_get = store_sqlite_key_get,
    .model_add = store_sqlite_model_add,
    .model_get = store_sqlite_model_get,
    .model_check = store_sqlite_model_check,
    .model_list = store_sqlite_model_list,
    .model_update = store_sqlite_model_update,
    .model_delete = store_sqlite_model_delete,
    .model_reset = store_sqlite_model_reset,
    .metrics_put = store_sqlite_metrics_put,
    .metrics_put_async = store_sqlite_metrics_put_async,
    .metrics_get = store_sqlite_metrics_get,
    .checkpoint_add = store_sqlite_checkpoint_add,
    .checkpoints = store_sqlite_checkpoints,
    .blob_in_use = store_sqlite_blob_in_use,
    .heartbeat = store_sqlite_heartbeat,
    .dataset_add = store_sqlite_dataset_add,
    .dataset_get = store_sqlite_dataset_get,
    .dataset_list = store_sqlite_dataset_list,
    .dataset_update = store_sqlite_dataset_update,
    .dataset_delete = store_sqlite_dataset_delete,
    .dataset_set_file = store_sqlite_dataset_set_file,
    .dataset_models = store_sqlite_dataset_models,
    .session_add = store_sqlite_session_add,
    .session_find = store_sqlite_session_find,
    .session_drop = store_sqlite_session_drop,
    .events_add = store_sqlite_events_add,
    .secret_get = store_sqlite_secret_get,
    .project_ensure = store_sqlite_project_ensure,
    .project_find = store_sqlite_project_find,
    .project_get = store_sqlite_project_get,
    .model_set_trained = store_sqlite_model_set_trained,
    .project_list = store_sqlite_project_list,
    .project_update = store_sqlite_project_update,
    .project_delete = store_sqlite_project_delete,
    .run_find = store_sqlite_run_find,
    .run_add = store_sqlite_run_add,
    .run_models = store_sqlite_run_models,
    .doc_put = store_sqlite_doc_put,
    .doc_get = store_sqlite_doc_get,
    .console_add = store_sqlite_console_add,
    .console_get = store_sqlite_console_get,
    .system_add = store_sqlite_system_add,
    .system_get = store_sqlite_system_get,
};

store *store_sqlite_open(const char *dir, char *err, size_t errn) {
  store_sqlite *s = calloc(1, sizeof *s);
  if (!s) {
    snprintf(err, errn, "out of memory");
    return NULL;
  }
  s->base.ops = &store_sqlite_ops;
  int w = snprintf(s->path, sizeof s->path, "%s/chubd.db", dir);
  if (w < 0 || (size_t)w >= sizeof s->path) {
    snprintf(err, errn, "data directory path too long: %s", dir);
    free(s);
    return NULL;
  }
  pthread_mutex_init(&s->mu, NULL);
  pthread_mutex_init(&s->write_mu, NULL);
  pthread_mutex_init(&s->group_mu, NULL);
  pthread_cond_init(&s->group_cv, NULL);
  pthread_cond_init(&s->waited_cv, NULL);
  if (pthread_key_create(&s->tls, store_sqlite_thread_end) != 0) {
    snprintf(err, errn, "cannot create thread-local storage");
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->write_mu);
    pthread_mutex_destroy(&s->group_mu);
    pthread_cond_destroy(&s->group_cv);
    pthread_cond_destroy(&s->waited_cv);
    free(s);
    return NULL;
  }
  sqlite3 *db = store_sqlite_connect(s->path, err, errn);
  if (!db) {
    store_sqlite_close(&s->base);
    return NULL;
  }
  if (schema_sqlite_migrate(db, err, errn) < 0) {
    sqlite3_close(db);
    store_sqlite_close(&s->base);
    return NULL;
  }
  s->writer = calloc(1, sizeof *s->writer);
  if (!s->writer) {
    snprintf(err, errn, "out of memory");
    sqlite3_close(db);
    store_sqlite_close(&s->base);
    return NULL;
  }
  s->writer->db = db;
  s->writer->owner = s;
  return &s->base;
}
