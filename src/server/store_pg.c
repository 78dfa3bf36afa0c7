/*
 * store_pg.c - the store on PostgreSQL (chubd --db URL), for a team that
 * runs several chubd against one database.
 *
 * Connections: a pool of at most --db-pool connections (made as they are
 * first needed), each with every statement prepared once (PQprepare) and
 * run with PQexecPrepared. An operation takes a connection for its whole
 * length and waits at most STORE_PG_WAIT_MS for one, then answers
 * STORE_BUSY. A connection found broken before use is reset (PQreset) and
 * its statements prepared again; one that breaks during an operation
 * answers that operation STORE_BUSY and is reset before its next use.
 * Whatever an operation leaves open is rolled back when its connection
 * goes back to the pool, so every operation is one transaction, committed
 * only by its own COMMIT.
 *
 * Races between processes are settled by the database alone, never by
 * state in this process: ids are UNIQUE (unique violation: STORE_CONFLICT),
 * metrics are upserted (INSERT ... ON CONFLICT (model_id, epoch) DO
 * UPDATE), and operations that read a model before writing lock its row
 * (SELECT ... FOR UPDATE), so two final uploads, or two metrics uploads
 * for the same model, run one after the other: exactly one final wins and
 * the last metrics committed are the ones kept.
 *
 * Metrics are batched as on SQLite: uploads queue for a committer thread
 * that runs all those queued meanwhile in one transaction, ordered by
 * model (so two chubd's batches lock rows in the same order), and answers
 * each after COMMIT. The transaction's statements (two per model) go out
 * together in libpq's pipeline mode, so a batch costs one round trip to
 * the server. Should the batch fail, each upload runs again alone.
 */
#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <libpq-fe.h>
#include <openssl/crypto.h>

#include "prom.h"
#include "schema_pg.h"
#include "util.h"

#define STORE_PG_POOL_DEFAULT 8
#define STORE_PG_WAIT_MS 5000
#define STORE_PG_MAX_PARAMS 10

#define STORE_PG_MODEL_COLS                                                    \
  "m.id, m.owner, m.meta, m.config, m.dataset, m.lineage, m.status, "          \
  "m.created_ms, m.updated_ms, m.last_seen_ms, m.heartbeat_ms, m.agent_id, "   \
  "m.agent_name, m.metrics_count, "                                            \
  "(SELECT MAX(epoch) FROM metrics WHERE model_id = m.id), m.dataset_id, "     \
  "mp.id, mp.name"

/* A model with the project of its run, if any: both by primary key. */
#define STORE_PG_MODEL_FROM                                                    \
  "models m LEFT JOIN runs mr ON mr.model_id = m.id "                          \
  "LEFT JOIN projects mp ON mp.id = mr.project_id AND mp.deleted = 0"

#define STORE_PG_DATASET_COLS                                                  \
  "id, owner, meta, status, size, sha256, filename, files, created_ms, "       \
  "updated_ms"

/* "$2::text IS NULL OR owner = $2": owner NULL means anyone's. */
#define STORE_PG_OWNER(n, col) "($" #n "::text IS NULL OR " col " = $" #n ")"

#define STORE_PG_PROJECT_COLS                                                  \
  "p.id, p.owner, p.name, p.meta, p.created_ms, p.updated_ms, "                \
  "(SELECT COUNT(*) FROM runs r JOIN models m ON m.id = r.model_id "           \
  "WHERE r.project_id = p.id AND m.deleted = 0)"

enum store_pg_stmt {
  PG_KEY_ADD,
  PG_KEY_FIND,
  PG_KEY_LIST,
  PG_KEY_REVOKE,
  PG_KEY_GET,
  PG_MODEL_ADD,
  PG_MODEL_GET,
  PG_MODEL_LIST,
  PG_MODEL_LIST_ANY,
  PG_MODEL_SEQ,
  PG_MODEL_CURSOR,
  PG_MODEL_COUNT,
  PG_MODEL_COUNT_ANY,
  PG_MODEL_COUNT_DOWN,
  PG_MODEL_UPDATE,
  PG_MODEL_SOFTDEL,
  PG_MODEL_HARDDEL,
  PG_METRICS_DEL,
  PG_CKPT_DEL,
  PG_METRICS_LOCK,
  PG_METRICS_UPLOAD,
  PG_MODEL_TOUCH,
  PG_METRICS_GET,
  PG_MODEL_STATUS,
  PG_CKPT_ADD,
  PG_MODEL_TRAINED,
  PG_CKPTS,
  PG_BLOB_USED,
  PG_HEARTBEAT,
  PG_EVENT_ADD,
  PG_MODEL_RESET,
  PG_DATASET_ADD,
  PG_DATASET_GET,
  PG_DATASET_LIST,
  PG_DATASET_SEQ,
  PG_DATASET_COUNT,
  PG_DATASET_UPDATE,
  PG_DATASET_SOFTDEL,
  PG_DATASET_HARDDEL,
  PG_DATASET_SHA,
  PG_DATASET_FILE,
  PG_DATASET_MODELS,
  PG_SESSION_ADD,
  PG_SESSION_FIND,
  PG_SESSION_DROP,
  PG_SESSION_EXPIRE,
  PG_SESSION_TRIM,
  PG_EVENT_LOCK,
  PG_EVENT_COUNT,
  PG_SECRET_PUT,
  PG_SECRET_GET,
  PG_PROJECT_ADD,
  PG_PROJECT_FIND,
  PG_PROJECT_GET,
  PG_PROJECT_LIST,
  PG_PROJECT_SEQ,
  PG_PROJECT_COUNT,
  PG_PROJECT_UPDATE,
  PG_PROJECT_DELETE,
  PG_RUN_FIND,
  PG_RUN_ADD,
  PG_RUN_MODELS,
  PG_DOC_PUT,
  PG_DOC_GET,
  PG_CONSOLE_LOCK,
  PG_CONSOLE_HAS,
  PG_CONSOLE_SIZE,
  PG_CONSOLE_ADD,
  PG_CONSOLE_GET,
  PG_RUN_DEL,
  PG_DOCS_DEL,
  PG_CONSOLE_DEL,
  PG_SYSTEM_LAST,
  PG_SYSTEM_DEL_EPOCH,
  PG_SYSTEM_ADD,
  PG_SYSTEM_GET,
  PG_SYSTEM_DEL,
  PG_COUNT
};

static const char *const store_pg_sql[PG_COUNT] = {
    [PG_KEY_ADD] = "INSERT INTO keys (owner, prefix, hash, created_ms) "
                   "VALUES ($1, $2, $3, $4)",
    [PG_KEY_FIND] = "SELECT id, owner, hash, created_ms FROM keys "
                    "WHERE prefix = $1 AND revoked_ms = 0",
    [PG_KEY_LIST] = "SELECT id, owner, prefix, created_ms, revoked_ms "
                    "FROM keys ORDER BY id",
    [PG_KEY_REVOKE] = "UPDATE keys SET revoked_ms = $1 WHERE revoked_ms = 0 "
                      "AND (prefix = $2 OR owner = $2)",
    [PG_KEY_GET] = "SELECT id, owner, prefix, created_ms, revoked_ms "
                   "FROM keys WHERE id = $1",
    /* The model and its owner's count of models, in one statement. */
    [PG_MODEL_ADD] = "WITH m AS (INSERT INTO models (id, owner, meta, config, "
                     "dataset, lineage, created_ms, updated_ms, dataset_id) "
                     "VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8) "
                     "RETURNING owner) "
                     "INSERT INTO model_counts (owner, models) "
                     "SELECT owner, 1 FROM m ON CONFLICT (owner) DO UPDATE "
                     "SET models = model_counts.models + 1",
    [PG_MODEL_GET] =
        "SELECT " STORE_PG_MODEL_COLS " FROM " STORE_PG_MODEL_FROM " "
        "WHERE m.id = $1 AND m.deleted = 0 "
        "AND " STORE_PG_OWNER(2, "m.owner"),
    /* Keyset pages, as in store_sqlite.c: one owner's on models_owner,
     * anyone's ($1 NULL) on models_live. */
    [PG_MODEL_LIST] =
        "SELECT " STORE_PG_MODEL_COLS " FROM " STORE_PG_MODEL_FROM " "
        "WHERE m.owner = $1 AND m.deleted = 0 AND m.seq < $2 "
        "ORDER BY m.seq DESC LIMIT $3",
    [PG_MODEL_LIST_ANY] =
        "SELECT " STORE_PG_MODEL_COLS " FROM " STORE_PG_MODEL_FROM " "
        "WHERE $1::text IS NULL AND m.deleted = 0 "
        "AND m.seq < $2 ORDER BY m.seq DESC LIMIT $3",
    [PG_MODEL_SEQ] = "SELECT seq FROM models WHERE id = $1 AND deleted = 0 "
                     "AND " STORE_PG_OWNER(2, "owner"),
    [PG_MODEL_CURSOR] = "SELECT seq FROM models WHERE id = $1 "
                        "AND " STORE_PG_OWNER(2, "owner"),
    [PG_MODEL_COUNT] = "SELECT models FROM model_counts WHERE owner = $1",
    [PG_MODEL_COUNT_ANY] = "SELECT coalesce(sum(models), 0)::bigint "
                           "FROM model_counts WHERE $1::text IS NULL",
    [PG_MODEL_COUNT_DOWN] = "UPDATE model_counts SET models = models - 1 "
                            "WHERE owner = (SELECT owner FROM models "
                            "WHERE id = $1)",
    [PG_MODEL_UPDATE] = "UPDATE models SET meta = coalesce($2, meta), "
                        "config = coalesce($3, config), updated_ms = $4 "
                        "WHERE id = $1 AND deleted = 0",
    [PG_MODEL_SOFTDEL] = "UPDATE models SET deleted = 1, updated_ms = $2 "
                         "WHERE id = $1 AND deleted = 0",
    [PG_MODEL_HARDDEL] = "DELETE FROM models WHERE id = $1",
    [PG_METRICS_DEL] = "DELETE FROM metrics WHERE model_id = $1",
    [PG_CKPT_DEL] = "DELETE FROM checkpoints WHERE model_id = $1",
    /* A metrics upload's model row, locked until COMMIT: two uploads for
     * one model, in any process, run one after the other, and the
     * statement after this one sees what the first committed. */
    [PG_METRICS_LOCK] = "SELECT 1 FROM models WHERE id = $1 AND deleted = 0 "
                        "AND ($2::text IS NULL OR owner = $2) FOR UPDATE",
    /* The epochs of one model's uploads ($4: [{"epoch": N, "data":
     * "..."}], each epoch once) when owner $2 has that model: new ones
     * inserted, the others replaced, metrics_count moved by the new ones
     * and the row touched ($3: now) when its status or its last-seen time
     * (shown to the second) would change, in one statement. Answers
     * whether the model was found and how many epochs were new. */
    [PG_METRICS_UPLOAD] =
        "WITH m AS (SELECT id FROM models WHERE id = $1 AND deleted = 0 "
        "  AND ($2::text IS NULL OR owner = $2)), "
        "x AS (SELECT * FROM json_to_recordset($4::json) "
        "  AS x(epoch BIGINT, data TEXT) WHERE EXISTS (SELECT 1 FROM m)), "
        "ins AS (INSERT INTO metrics (model_id, epoch, data) "
        "  SELECT $1, epoch, data FROM x "
        "  ON CONFLICT (model_id, epoch) DO NOTHING RETURNING epoch), "
        "upd AS (UPDATE metrics t SET data = x.data FROM x "
        "  WHERE t.model_id = $1 AND t.epoch = x.epoch "
        "  AND NOT EXISTS (SELECT 1 FROM ins WHERE ins.epoch = x.epoch) "
        "  RETURNING 1), "
        "n AS (SELECT count(*) AS added FROM ins), "
        "due AS (SELECT id, status = 'new' OR $3 - last_seen_ms >= 1000 AS due "
        "  FROM models WHERE id IN (SELECT id FROM m)), "
        "t AS (UPDATE models SET metrics_count = metrics_count + n.added, "
        "  status = CASE status WHEN 'new' THEN 'training' ELSE status END, "
        "  updated_ms = CASE WHEN due.due THEN $3 ELSE updated_ms END, "
        "  last_seen_ms = CASE WHEN due.due THEN $3 ELSE last_seen_ms END "
        "  FROM n, due WHERE models.id = due.id AND (n.added > 0 OR due.due) "
        "  RETURNING 1) "
        "SELECT (SELECT count(*) FROM m), (SELECT added FROM n)",
    [PG_MODEL_TOUCH] = "UPDATE models SET status = CASE status WHEN 'new' "
                       "THEN 'training' ELSE status END, updated_ms = $2, "
                       "last_seen_ms = $2 WHERE id = $1 AND deleted = 0",
    [PG_METRICS_GET] = "SELECT epoch, data FROM metrics WHERE model_id = $1 "
                       "AND epoch > $2 ORDER BY epoch LIMIT $3",
    [PG_MODEL_STATUS] = "SELECT status FROM models WHERE id = $1 "
                        "AND deleted = 0 FOR UPDATE",
    [PG_CKPT_ADD] = "INSERT INTO checkpoints (model_id, epoch, final, "
                    "is_best, map, size, sha256, created_ms, suffix) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    [PG_MODEL_TRAINED] = "UPDATE models SET status = 'trained', "
                         "updated_ms = $2, last_seen_ms = $2 WHERE id = $1",
    [PG_CKPTS] = "SELECT epoch, final, is_best, map, size, sha256, "
                 "created_ms, suffix FROM checkpoints WHERE model_id = $1 "
                 "ORDER BY id DESC",
    [PG_BLOB_USED] = "SELECT 1 FROM checkpoints WHERE sha256 = $1 UNION ALL "
                     "SELECT 1 FROM datasets WHERE sha256 = $1 LIMIT 1",
    [PG_HEARTBEAT] = "UPDATE models SET status = CASE status WHEN 'new' "
                     "THEN 'training' ELSE status END, agent_id = $2, "
                     "agent_name = $3, heartbeat_ms = $4, last_seen_ms = $4 "
                     "WHERE id = $1 AND deleted = 0",
    [PG_EVENT_ADD] = "INSERT INTO events (client_id, name, params, "
                     "received_ms) VALUES ($1, $2, $3, $4)",
    [PG_MODEL_RESET] = "UPDATE models SET status = 'new', updated_ms = $2, "
                       "last_seen_ms = 0, heartbeat_ms = 0, agent_id = '', "
                       "agent_name = '', metrics_count = 0 "
                       "WHERE id = $1 AND deleted = 0 "
                       "AND " STORE_PG_OWNER(3, "owner"),
    [PG_DATASET_ADD] = "INSERT INTO datasets (id, owner, meta, created_ms, "
                       "updated_ms) VALUES ($1, $2, $3, $4, $4)",
    [PG_DATASET_GET] = "SELECT " STORE_PG_DATASET_COLS " FROM datasets "
                       "WHERE id = $1 AND deleted = 0 "
                       "AND " STORE_PG_OWNER(2, "owner"),
    [PG_DATASET_LIST] =
        "SELECT " STORE_PG_DATASET_COLS " FROM datasets "
        "WHERE " STORE_PG_OWNER(
            1, "owner") " AND deleted "
                        "= 0 AND seq < $2 ORDER BY seq DESC LIMIT $3",
    [PG_DATASET_SEQ] = "SELECT seq FROM datasets WHERE id = $1 "
                       "AND deleted = 0 AND " STORE_PG_OWNER(2, "owner"),
    [PG_DATASET_COUNT] = "SELECT COUNT(*) FROM datasets "
                         "WHERE " STORE_PG_OWNER(1, "owner") " AND deleted "
                                                             "= 0",
    [PG_DATASET_UPDATE] = "UPDATE datasets SET meta = $2, updated_ms = $3 "
                          "WHERE id = $1 AND deleted = 0",
    [PG_DATASET_SOFTDEL] = "UPDATE datasets SET deleted = 1, updated_ms = $2 "
                           "WHERE id = $1 AND deleted = 0",
    [PG_DATASET_HARDDEL] = "DELETE FROM datasets WHERE id = $1",
    [PG_DATASET_SHA] =
        "SELECT sha256 FROM datasets WHERE id = $1 "
        "AND deleted = 0 AND " STORE_PG_OWNER(2, "owner") " "
                                                          "FOR UPDATE",
    [PG_DATASET_FILE] = "UPDATE datasets SET status = 'ready', size = $2, "
                        "sha256 = $3, filename = $4, files = $5, "
                        "updated_ms = $6 WHERE id = $1 AND deleted = 0",
    [PG_DATASET_MODELS] =
        "SELECT " STORE_PG_MODEL_COLS " FROM " STORE_PG_MODEL_FROM " "
        "WHERE m.dataset_id = $1 AND m.deleted = 0 "
        "ORDER BY m.seq DESC LIMIT $2",
    [PG_SESSION_ADD] = "INSERT INTO sessions (hash, key_id, created_ms, "
                       "expires_ms, seq) VALUES ($1, $2, $3, $4, "
                       "(SELECT coalesce(max(seq), 0) + 1 FROM sessions))",
    [PG_SESSION_FIND] = "SELECT k.id, k.owner, k.prefix, k.created_ms "
                        "FROM sessions s JOIN keys k ON k.id = s.key_id "
                        "WHERE s.hash = $1 AND s.expires_ms > $2 "
                        "AND k.revoked_ms = 0",
    [PG_SESSION_DROP] = "DELETE FROM sessions WHERE hash = $1",
    [PG_SESSION_EXPIRE] = "DELETE FROM sessions WHERE expires_ms <= $1",
    [PG_SESSION_TRIM] = "DELETE FROM sessions WHERE key_id = $1 AND hash NOT "
                        "IN (SELECT hash FROM sessions WHERE key_id = $1 "
                        "ORDER BY seq DESC LIMIT $2)",
    /* A client's events are counted and added one process at a time. */
    [PG_EVENT_LOCK] = "SELECT pg_advisory_xact_lock(hashtext($1))",
    [PG_EVENT_COUNT] = "SELECT COUNT(*) FROM events WHERE client_id = $1 "
                       "AND received_ms >= $2",
    [PG_SECRET_PUT] = "INSERT INTO secrets (name, value) VALUES ($1, $2) "
                      "ON CONFLICT (name) DO NOTHING",
    [PG_SECRET_GET] = "SELECT value FROM secrets WHERE name = $1",
    [PG_PROJECT_ADD] = "INSERT INTO projects (id, owner, name, created_ms, "
                       "updated_ms) VALUES ($1, $2, $3, $4, $4) "
                       "ON CONFLICT (owner, name) DO NOTHING",
    [PG_PROJECT_FIND] = "SELECT id FROM projects WHERE owner = $1 "
                        "AND name = $2 AND deleted = 0",
    [PG_PROJECT_GET] = "SELECT " STORE_PG_PROJECT_COLS " FROM projects p "
                       "WHERE p.id = $1 AND p.deleted = 0 "
                       "AND " STORE_PG_OWNER(2, "p.owner"),
    [PG_PROJECT_LIST] =
        "SELECT " STORE_PG_PROJECT_COLS " FROM projects p "
        "WHERE " STORE_PG_OWNER(1, "p.owner") " AND "
                                              "p.deleted = 0 AND p.seq < $2 "
                                              "ORDER BY p.seq DESC LIMIT $3",
    [PG_PROJECT_SEQ] = "SELECT seq FROM projects WHERE id = $1 "
                       "AND deleted = 0 AND " STORE_PG_OWNER(2, "owner"),
    [PG_PROJECT_COUNT] = "SELECT COUNT(*) FROM projects "
                         "WHERE " STORE_PG_OWNER(1, "owner") " AND "
                                                             "deleted = 0",
    [PG_PROJECT_UPDATE] = "UPDATE projects SET name = coalesce($3, name), "
                          "meta = coalesce($4, meta), updated_ms = $5 "
                          "WHERE id = $1 AND deleted = 0 "
                          "AND " STORE_PG_OWNER(2, "owner"),
    [PG_PROJECT_DELETE] = "UPDATE projects SET deleted = 1, "
                          "name = name || '~' || id, updated_ms = $3 "
                          "WHERE id = $1 AND deleted = 0 "
                          "AND " STORE_PG_OWNER(2, "owner"),
    [PG_RUN_FIND] = "SELECT r.model_id FROM runs r JOIN models m "
                    "ON m.id = r.model_id WHERE r.owner = $1 "
                    "AND r.project_id = $2 AND r.name = $3 AND m.deleted = 0",
    [PG_RUN_ADD] = "INSERT INTO runs (model_id, owner, project_id, name) "
                   "VALUES ($1, $2, $3, $4) ON CONFLICT (owner, project_id, "
                   "name) DO UPDATE SET model_id = excluded.model_id "
                   "WHERE NOT EXISTS (SELECT 1 FROM models m WHERE "
                   "m.id = runs.model_id AND m.deleted = 0)",
    [PG_RUN_MODELS] =
        "SELECT " STORE_PG_MODEL_COLS " FROM " STORE_PG_MODEL_FROM " "
        "WHERE mr.project_id = $1 AND m.deleted = 0 "
        "AND " STORE_PG_OWNER(2, "m.owner") " "
                                            "ORDER BY m.seq DESC LIMIT $3",
    [PG_DOC_PUT] = "INSERT INTO model_docs (model_id, name, body) "
                   "VALUES ($1, $2, $3) ON CONFLICT (model_id, name) "
                   "DO UPDATE SET body = excluded.body",
    [PG_DOC_GET] = "SELECT body FROM model_docs WHERE model_id = $1 "
                   "AND name = $2",
    [PG_CONSOLE_LOCK] = "SELECT 1 FROM models WHERE id = $1 FOR UPDATE",
    [PG_CONSOLE_HAS] = "SELECT 1 FROM console WHERE model_id = $1 "
                       "AND chunk_id = $2",
    [PG_CONSOLE_SIZE] = "SELECT coalesce(sum(bytes), 0), "
                        "coalesce(max(seq), 0) FROM console "
                        "WHERE model_id = $1",
    [PG_CONSOLE_ADD] = "INSERT INTO console (model_id, chunk_id, seq, content, "
                       "lines, bytes) VALUES ($1, $2, $3, $4, $5, $6)",
    [PG_RUN_DEL] = "DELETE FROM runs WHERE model_id = $1",
    [PG_DOCS_DEL] = "DELETE FROM model_docs WHERE model_id = $1",
    [PG_CONSOLE_DEL] = "DELETE FROM console WHERE model_id = $1",
    [PG_CONSOLE_GET] = "SELECT seq, chunk_id, content, lines FROM console "
                       "WHERE model_id = $1 AND seq > $2 ORDER BY seq "
                       "LIMIT $3",
    [PG_SYSTEM_LAST] = "SELECT coalesce(max(seq), 0) FROM model_system "
                       "WHERE model_id = $1",
    [PG_SYSTEM_DEL_EPOCH] = "DELETE FROM model_system WHERE model_id = $1 "
                            "AND epoch = $2 AND epoch >= 0",
    [PG_SYSTEM_ADD] = "INSERT INTO model_system (model_id, seq, t_ms, epoch, "
                      "body) VALUES ($1, $2, $3, $4, $5)",
    [PG_SYSTEM_GET] = "SELECT seq, t_ms, epoch, body FROM model_system "
                      "WHERE model_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
    [PG_SYSTEM_DEL] = "DELETE FROM model_system WHERE model_id = $1",
};

typedef struct store_pg_conn {
  PGconn *db;
  int prepared; /* every statement is prepared on db */
  int busy;     /* lent out */
} store_pg_conn;

/* One queued metrics upload (malloc'd; freed after done was called). */
typedef struct store_pg_metrics_req {
  const char *id, *owner;
  const store_epoch *e;
  size_t n;
  int64_t now;
  size_t order; /* position in the queue: a model's uploads keep it */
  store_rc rc;
  store_done_cb done;
  void *ud;
  struct store_pg_metrics_req *next;
} store_pg_metrics_req;

typedef struct store_pg {
  store base;
  char *conninfo;
  char shown[512]; /* conninfo without its password, for messages */
  int size;
  pthread_mutex_t mu; /* guards conns[].busy */
  pthread_cond_t freed;
  store_pg_conn *conns;
  /* The group committer, as in store_sqlite.c; guarded by group_mu. */
  pthread_mutex_t group_mu;
  pthread_cond_t group_cv;
  pthread_cond_t waited_cv;
  store_pg_metrics_req *group_head, *group_tail;
  int group_started, group_stopping;
  pthread_t group_thread;
} store_pg;

/* ---------------------------------------------------------- parameters */

/* The parameters of one statement: text, except bytea sent as binary. */
typedef struct store_pg_args {
  int n;
  const char *v[STORE_PG_MAX_PARAMS];
  int len[STORE_PG_MAX_PARAMS];
  int fmt[STORE_PG_MAX_PARAMS];
  char num[STORE_PG_MAX_PARAMS][32];
} store_pg_args;

static void store_pg_text(store_pg_args *a, const char *s) {
  a->v[a->n] = s; /* NULL: SQL NULL */
  a->len[a->n] = 0;
  a->fmt[a->n++] = 0;
}

static void store_pg_i64(store_pg_args *a, int64_t v) {
  snprintf(a->num[a->n], sizeof a->num[a->n], "%lld", (long long)v);
  store_pg_text(a, a->num[a->n]);
}

static void store_pg_dbl(store_pg_args *a, double v) {
  snprintf(a->num[a->n], sizeof a->num[a->n], "%.17g", v);
  store_pg_text(a, a->num[a->n]);
}

static void store_pg_bin(store_pg_args *a, const void *p, int len) {
  a->v[a->n] = p;
  a->len[a->n] = len;
  a->fmt[a->n++] = 1;
}

/* ---------------------------------------------------------- errors */

void store_pg_redact(const char *s, char *out, size_t n) {
  size_t o = 0;
#define STORE_PG_PUT(ch)                                                       \
  do {                                                                         \
    if (o + 1 < n)                                                             \
      out[o++] = (ch);                                                         \
  } while (0)
  const char *p = s;
  const char *scheme = strstr(s, "://");
  if (scheme && (strncmp(s, "postgresql://", 13) == 0 ||
                 strncmp(s, "postgres://", 11) == 0)) {
    const char *auth = scheme + 3;
    size_t alen = strcspn(auth, "/?");
    const char *at = NULL;
    for (const char *q = auth; q < auth + alen; q++)
      if (*q == '@')
        at = q;
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    for (; p < auth; p++)
      STORE_PG_PUT(*p);
    if (colon) {
      for (; p < colon; p++)
        STORE_PG_PUT(*p);
      p = at;
    }
  }
  while (*p) {
    if (strncmp(p, "password", 8) == 0) {
      const char *q = p + 8;
      while (*q == ' ')
        q++;
      if (*q == '=') {
        for (const char *w = "password=***"; *w; w++)
          STORE_PG_PUT(*w);
        q++;
        while (*q == ' ')
          q++;
        if (*q == '\'') {
          for (q++; *q && *q != '\''; q++)
            if (*q == '\\' && q[1])
              q++;
          if (*q)
            q++;
        } else {
          while (*q && *q != ' ' && *q != '&')
            q++;
        }
        p = q;
        continue;
      }
    }
    STORE_PG_PUT(*p);
    p++;
  }
  out[o < n ? o : n - 1] = '\0';
#undef STORE_PG_PUT
}

/* libpq's message on one line. */
static void store_pg_message(PGconn *db, char *out, size_t n) {
  snprintf(out, n, "%s", db ? PQerrorMessage(db) : "out of memory");
  for (char *p = out; *p; p++)
    if (*p == '\n' || *p == '\t')
      *p = p[1] ? ' ' : '\0';
}

/* Logs what failed and maps it: unique violation STORE_CONFLICT (when the
 * caller allows it), disk full STORE_FULL, a lost connection, a lock or
 * statement timeout, a deadlock or a serialization failure STORE_BUSY
 * (the client may retry), anything else STORE_ERROR. Clears r. */
static store_rc store_pg_fail(store_pg_conn *c, PGresult *r, const char *what,
                              int conflict_ok) {
  const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
  store_rc rc = STORE_ERROR;
  if (state && strcmp(state, "23505") == 0 && conflict_ok) {
    PQclear(r);
    return STORE_CONFLICT;
  }
  prom_store_error();
  if (state && strcmp(state, "53100") == 0)
    rc = STORE_FULL;
  else if (PQstatus(c->db) != CONNECTION_OK ||
           (state &&
            (strncmp(state, "08", 2) == 0 || strcmp(state, "40001") == 0 ||
             strcmp(state, "40P01") == 0 || strcmp(state, "55P03") == 0 ||
             strcmp(state, "57014") == 0 || strncmp(state, "57P", 3) == 0 ||
             strcmp(state, "53300") == 0)))
    rc = STORE_BUSY;
  char msg[512];
  store_pg_message(c->db, msg, sizeof msg);
  fprintf(stderr, "chubd: database error in %s: %s%s%s%s\n", what,
          msg[0] ? msg : "no message", state ? " (SQLSTATE " : "",
          state ? state : "", state ? ")" : "");
  PQclear(r);
  return rc;
}

/* ------------------------------------------------------------ running */

static int store_pg_revive(store_pg_conn *c);

/* Whether a statement sent with no transaction open (was_idle) found the
 * connection closed (the server restarted, an administrator ended the
 * session) and the connection could be made again: then the statement is
 * sent once more. The operation had not begun, so nothing of it is lost
 * or done twice; only a connection lost while the server was committing
 * that very statement could be, and that is what STORE_BUSY is for
 * otherwise. */
static int store_pg_retry(store_pg_conn *c, int was_idle, PGresult **r) {
  if (!was_idle || PQstatus(c->db) != CONNECTION_BAD || !store_pg_revive(c))
    return 0;
  PQclear(*r);
  *r = NULL;
  return 1;
}

static PGresult *store_pg_run(store_pg_conn *c, int which,
                              const store_pg_args *a) {
  char name[16];
  snprintf(name, sizeof name, "s%d", which);
  int idle = PQtransactionStatus(c->db) == PQTRANS_IDLE;
  PGresult *r = PQexecPrepared(c->db, name, a ? a->n : 0, a ? a->v : NULL,
                               a ? a->len : NULL, a ? a->fmt : NULL, 0);
  if (store_pg_retry(c, idle, &r))
    r = PQexecPrepared(c->db, name, a ? a->n : 0, a ? a->v : NULL,
                       a ? a->len : NULL, a ? a->fmt : NULL, 0);
  return r;
}

static int store_pg_ok(const PGresult *r) {
  ExecStatusType st = PQresultStatus(r);
  return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

/* Runs a statement that returns no rows to keep: STORE_OK with the count
 * of rows it changed in *changed (may be NULL), or the failure. */
static store_rc store_pg_do(store_pg_conn *c, int which, const store_pg_args *a,
                            const char *what, int64_t *changed) {
  PGresult *r = store_pg_run(c, which, a);
  if (!store_pg_ok(r))
    return store_pg_fail(c, r, what,
                         which == PG_MODEL_ADD || which == PG_DATASET_ADD ||
                             which == PG_CKPT_ADD ||
                             which == PG_PROJECT_UPDATE);
  if (changed)
    *changed = strtoll(PQcmdTuples(r), NULL, 10);
  PQclear(r);
  return STORE_OK;
}

/* The rows of a query, or NULL after logging (rc set). */
static PGresult *store_pg_rows(store_pg_conn *c, int which,
                               const store_pg_args *a, const char *what,
                               store_rc *rc) {
  PGresult *r = store_pg_run(c, which, a);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    *rc = store_pg_fail(c, r, what, 0);
    return NULL;
  }
  *rc = STORE_OK;
  return r;
}

static store_rc store_pg_simple(store_pg_conn *c, const char *sql,
                                const char *what) {
  int idle = PQtransactionStatus(c->db) == PQTRANS_IDLE;
  PGresult *r = PQexec(c->db, sql);
  if (store_pg_retry(c, idle, &r))
    r = PQexec(c->db, sql);
  if (!store_pg_ok(r))
    return store_pg_fail(c, r, what, 0);
  PQclear(r);
  return STORE_OK;
}

static store_rc store_pg_begin(store_pg_conn *c, const char *what) {
  return store_pg_simple(c, "BEGIN", what);
}

static store_rc store_pg_commit(store_pg_conn *c, const char *what) {
  PGresult *r = PQexec(c->db, "COMMIT");
  if (!store_pg_ok(r))
    return store_pg_fail(c, r, what, 1);
  /* COMMIT of a failed transaction "succeeds" as a ROLLBACK. */
  int rolled_back = strcmp(PQcmdStatus(r), "ROLLBACK") == 0;
  PQclear(r);
  if (rolled_back) {
    fprintf(stderr, "chubd: database error in %s: rolled back\n", what);
    return STORE_ERROR;
  }
  return STORE_OK;
}

static int64_t store_pg_int(const PGresult *r, int row, int col) {
  return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static void store_pg_str(const PGresult *r, int row, int col, char *out,
                         size_t n) {
  snprintf(out, n, "%s", PQgetvalue(r, row, col));
}

/* ------------------------------------------------------------- the pool */

static int store_pg_prepare(store_pg_conn *c, char *err, size_t errn) {
  for (int i = 0; i < PG_COUNT; i++) {
    char name[16];
    snprintf(name, sizeof name, "s%d", i);
    PGresult *r = PQprepare(c->db, name, store_pg_sql[i], 0, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
      char msg[400];
      store_pg_message(c->db, msg, sizeof msg);
      snprintf(err, errn, "cannot prepare statement %d: %s", i, msg);
      PQclear(r);
      return -1;
    }
    PQclear(r);
  }
  c->prepared = 1;
  return 0;
}

/* A lock held by a stuck process never stalls a request for long. */
static void store_pg_session(PGconn *db) {
  PQclear(PQexec(db, "SET lock_timeout = '10s'; "
                     "SET statement_timeout = '60s'"));
}

/* The server's notices (e.g. "already exists, skipping") are not news;
 * its warnings are. */
static void store_pg_notice(void *arg, const char *msg) {
  (void)arg;
  if (strncmp(msg, "WARNING", 7) == 0)
    fprintf(stderr, "chubd: database: %s", msg);
}

/* Makes a closed connection again, statements and all: 1 when it works. */
static int store_pg_revive(store_pg_conn *c) {
  PQreset(c->db);
  c->prepared = 0;
  if (PQstatus(c->db) != CONNECTION_OK)
    return 0;
  store_pg_session(c->db);
  char err[1024];
  if (store_pg_prepare(c, err, sizeof err) < 0) {
    fprintf(stderr, "chubd: database: %s\n", err);
    return 0;
  }
  fprintf(stderr, "chubd: database connection was closed; made it again\n");
  return 1;
}

static PGconn *store_pg_connect(const store_pg *s) {
  /* connect_timeout first, so that the string's own wins. */
  const char *const keys[] = {"connect_timeout", "application_name", "dbname",
                              NULL};
  const char *const vals[] = {"10", "chubd", s->conninfo, NULL};
  PGconn *db = PQconnectdbParams(keys, vals, 1);
  if (db)
    PQsetNoticeProcessor(db, store_pg_notice, NULL);
  if (db && PQstatus(db) == CONNECTION_OK)
    store_pg_session(db);
  return db;
}

/* Makes c usable: connects (or resets a broken connection) and prepares
 * the statements. 0, or -1 with err. */
static int store_pg_ready(store_pg *s, store_pg_conn *c, char *err,
                          size_t errn) {
  if (!c->db) {
    c->db = store_pg_connect(s);
    c->prepared = 0;
  } else if (PQstatus(c->db) != CONNECTION_OK) {
    PQreset(c->db);
    c->prepared = 0;
    if (PQstatus(c->db) == CONNECTION_OK)
      store_pg_session(c->db);
  }
  if (!c->db || PQstatus(c->db) != CONNECTION_OK) {
    char msg[400];
    store_pg_message(c->db, msg, sizeof msg);
    snprintf(err, errn, "cannot connect to %s: %s", s->shown, msg);
    return -1;
  }
  if (!c->prepared && store_pg_prepare(c, err, errn) < 0)
    return -1;
  return 0;
}

/* A connection of the pool for `what`, waiting at most STORE_PG_WAIT_MS;
 * NULL with *rc (STORE_BUSY) when none is free or the server cannot be
 * reached. */
static store_pg_conn *store_pg_get(store_pg *s, const char *what,
                                   store_rc *rc) {
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += STORE_PG_WAIT_MS / 1000;
  deadline.tv_nsec += (STORE_PG_WAIT_MS % 1000) * 1000000L;
  if (deadline.tv_nsec >= 1000000000L) {
    deadline.tv_sec++;
    deadline.tv_nsec -= 1000000000L;
  }
  store_pg_conn *c = NULL;
  pthread_mutex_lock(&s->mu);
  for (;;) {
    /* Prefer a connection already made. */
    for (int i = 0; i < s->size && !c; i++)
      if (!s->conns[i].busy && s->conns[i].db)
        c = &s->conns[i];
    for (int i = 0; i < s->size && !c; i++)
      if (!s->conns[i].busy)
        c = &s->conns[i];
    if (c)
      break;
    if (pthread_cond_timedwait(&s->freed, &s->mu, &deadline) == ETIMEDOUT) {
      pthread_mutex_unlock(&s->mu);
      fprintf(stderr,
              "chubd: database busy in %s: all %d connections stayed in use "
              "for %d ms\n",
              what, s->size, STORE_PG_WAIT_MS);
      *rc = STORE_BUSY;
      return NULL;
    }
  }
  c->busy = 1;
  pthread_mutex_unlock(&s->mu);
  char err[1024];
  if (store_pg_ready(s, c, err, sizeof err) < 0) {
    fprintf(stderr, "chubd: database error in %s: %s\n", what, err);
    pthread_mutex_lock(&s->mu);
    c->busy = 0;
    pthread_cond_signal(&s->freed);
    pthread_mutex_unlock(&s->mu);
    *rc = STORE_BUSY;
    return NULL;
  }
  prom_store_pool_use(1);
  return c;
}

/* Gives c back, rolling back whatever the operation left open. Returns
 * rc, for the operation to return. */
static store_rc store_pg_put(store_pg *s, store_pg_conn *c, store_rc rc) {
  if (PQstatus(c->db) == CONNECTION_OK &&
      PQtransactionStatus(c->db) != PQTRANS_IDLE)
    PQclear(PQexec(c->db, "ROLLBACK"));
  pthread_mutex_lock(&s->mu);
  c->busy = 0;
  pthread_cond_signal(&s->freed);
  pthread_mutex_unlock(&s->mu);
  prom_store_pool_use(-1);
  return rc;
}

/* Declares s_ and c (a pooled connection) for operation `what`, or returns
 * the reason there is none. */
#define STORE_PG_CONN(base, c, what)                                           \
  store_pg *s_ = (store_pg *)(base);                                           \
  store_rc get_rc_;                                                            \
  store_pg_conn *c = store_pg_get(s_, what, &get_rc_);                         \
  if (!c)                                                                      \
  return get_rc_

/* ---------------------------------------------------------------- keys */

static store_rc store_pg_key_add(store *base, const char *owner,
                                 const char *prefix,
                                 const unsigned char hash[32], int64_t now) {
  STORE_PG_CONN(base, c, "key_add");
  store_pg_args a = {0};
  store_pg_text(&a, owner);
  store_pg_text(&a, prefix);
  store_pg_bin(&a, hash, 32);
  store_pg_i64(&a, now);
  return store_pg_put(s_, c, store_pg_do(c, PG_KEY_ADD, &a, "key_add", NULL));
}

/* A bytea column (text result) into out; 0 when it is exactly n bytes. */
static int store_pg_bytes(const PGresult *r, int row, int col,
                          unsigned char *out, size_t n) {
  size_t len = 0;
  unsigned char *b =
      PQunescapeBytea((const unsigned char *)PQgetvalue(r, row, col), &len);
  int ok = b && len == n;
  if (ok)
    memcpy(out, b, n);
  PQfreemem(b);
  return ok ? 0 : -1;
}

static store_rc store_pg_key_find(store *base, const char *prefix,
                                  const unsigned char hash[32],
                                  store_key *out) {
  STORE_PG_CONN(base, c, "key_find");
  store_pg_args a = {0};
  store_pg_text(&a, prefix);
  store_rc rc;
  PGresult *r = store_pg_rows(c, PG_KEY_FIND, &a, "key_find", &rc);
  if (!r)
    return store_pg_put(s_, c, rc);
  rc = STORE_NOTFOUND;
  for (int i = 0; i < PQntuples(r); i++) {
    unsigned char h[32];
    if (store_pg_bytes(r, i, 2, h, 32) < 0 || CRYPTO_memcmp(h, hash, 32) != 0)
      continue;
    out->id = store_pg_int(r, i, 0);
    store_pg_str(r, i, 1, out->owner, sizeof out->owner);
    snprintf(out->prefix, sizeof out->prefix, "%s", prefix);
    out->created_ms = store_pg_int(r, i, 3);
    out->revoked_ms = 0;
    rc = STORE_OK;
    break;
  }
  PQclear(r);
  return store_pg_put(s_, c, rc);
}

static void store_pg_key_row(const PGresult *r, int i, store_key *k) {
  memset(k, 0, sizeof *k);
  k->id = store_pg_int(r, i, 0);
  store_pg_str(r, i, 1, k->owner, sizeof k->owner);
  store_pg_str(r, i, 2, k->prefix, sizeof k->prefix);
  k->created_ms = store_pg_int(r, i, 3);
  k->revoked_ms = store_pg_int(r, i, 4);
}

static store_rc store_pg_key_list(store *base, store_key_cb cb, void *ud) {
  STORE_PG_CONN(base, c, "key_list");
  store_rc rc;
  PGresult *r = store_pg_rows(c, PG_KEY_LIST, NULL, "key_list", &rc);
  if (!r)
    return store_pg_put(s_, c, rc);
  for (int i = 0; i < PQntuples(r); i++) {
    store_key k;
    store_pg_key_row(r, i, &k);
    if (cb(ud, &k) != 0)
      break;
  }
  PQclear(r);
  return store_pg_put(s_, c, STORE_OK);
}

static store_rc store_pg_key_get(store *base, int64_t id, store_key *out) {
  STORE_PG_CONN(base, c, "key_get");
  store_pg_args a = {0};
  store_pg_i64(&a, id);
  store_rc rc;
  PGresult *r = store_pg_rows(c, PG_KEY_GET, &a, "key_get", &rc);
  if (!r)
    return store_pg_put(s_, c, rc);
  rc = STORE_NOTFOUND;
  if (PQntuples(r) > 0) {
    store_pg_key_row(r, 0, out);
    rc = STORE_OK;
  }
  PQclear(r);
  return store_pg_put(s_, c, rc);
}

static store_rc store_pg_key_revoke(store *base, const char *match, int64_t now,
                                    int *count) {
  STORE_PG_CONN(base, c, "key_revoke");
  store_pg_args a = {0};
  store_pg_i64(&a, now);
  store_pg_text(&a, match);
  int64_t n = 0;
  store_rc rc = store_pg_do(c, PG_KEY_REVOKE, &a, "key_revoke", &n);
  *count = (int)n;
  return store_pg_put(s_, c, rc);
}

/* -------------------------------------------------------------- models */

static store_rc store_pg_model_add(store *base, const store_model *m) {
  STORE_PG_CONN(base, c, "model_add");
  store_pg_args a = {0};
  store_pg_text(&a, m->id);
  store_pg_text(&a, m->owner);
  store_pg_text(&a, m->meta);
  store_pg_text(&a, m->config);
  store_pg_text(&a, m->dataset);
  store_pg_text(&a, m->lineage);
  store_pg_i64(&a, m->created_ms);
  store_pg_text(&a, m->dataset_id);
  return store_pg_put(s_, c,
                      store_pg_do(c, PG_MODEL_ADD, &a, "model_add", NULL));
}

static int store_pg_model_row(const PGresult *r, int i, store_model *m) {
  memset(m, 0, sizeof *m);
  store_pg_str(r, i, 0, m->id, sizeof m->id);
  store_pg_str(r, i, 1, m->owner, sizeof m->owner);
  m->meta = strdup(PQgetvalue(r, i, 2));
  m->config = strdup(PQgetvalue(r, i, 3));
  m->dataset = strdup(PQgetvalue(r, i, 4));
  m->lineage = strdup(PQgetvalue(r, i, 5));
  store_pg_str(r, i, 6, m->status, sizeof m->status);
  m->created_ms = store_pg_int(r, i, 7);
  m->updated_ms = store_pg_int(r, i, 8);
  m->last_seen_ms = store_pg_int(r, i, 9);
  m->heartbeat_ms = store_pg_int(r, i, 10);
  store_pg_str(r, i, 11, m->agent_id, sizeof m->agent_id);
  store_pg_str(r, i, 12, m->agent_name, sizeof m->agent_name);
  m->metrics_count = store_pg_int(r, i, 13);
  m->last_epoch = PQgetisnull(r, i, 14) ? -1 : store_pg_int(r, i, 14);
  store_pg_str(r, i, 15, m->dataset_id, sizeof m->dataset_id);
  store_pg_str(r, i, 16, m->project_id, sizeof m->project_id);
  store_pg_str(r, i, 17, m->project_name, sizeof m->project_name);
  if (!m->meta || !m->config || !m->dataset || !m->lineage) {
    store_model_free(m);
    return -1;
  }
  return 0;
}

/* Decodes row i of r into out; 0, or -1 when out of memory. */
typedef int (*store_pg_row_fn)(const PGresult *r, int i, void *out);

/* The one row statement `which` answers for (id, owner): decoded into out
 * by row(); STORE_NOTFOUND when there is none. Models, datasets and
 * projects are read this way. */
static store_rc store_pg_get_one(store *base, int which, const char *what,
                                 const char *id, const char *owner,
                                 store_pg_row_fn row, void *out) {
  STORE_PG_CONN(base, c, what);
  store_pg_args a = {0};
  store_pg_text(&a, id);
  store_pg_text(&a, owner);
  store_rc rc;
  PGresult *r = store_pg_rows(c, which, &a, what, &rc);
  if (!r)
    return store_pg_put(s_, c, rc);
  rc = STORE_NOTFOUND;
  if (PQntuples(r) > 0)
    rc = row(r, 0, out) == 0 ? STORE_OK : STORE_ERROR;
  PQclear(r);
  return store_pg_put(s_, c, rc);
}

static int store_pg_model_row_of(const PGresult *r, int i, void *out) {
  return store_pg_model_row(r, i, out);
}

static store_rc store_pg_model_get(store *base, const char *id,
                                   const char *owner, store_model *out) {
  return store_pg_get_one(base, PG_MODEL_GET, "model_get", id, owner,
                          store_pg_model_row_of, out);
}

/* The one integer a query answers: STORE_OK, STORE_NOTFOUND for no row. */
static store_rc store_pg_int_query(store_pg_conn *c, int which,
                                   const store_pg_args *a, int64_t *out,
                                   const char *what) {
  store_rc rc;
  PGresult *r = store_pg_rows(c, which, a, what, &rc);
  if (!r)
    return rc;
  rc = STORE_NOTFOUND;
  if (PQntuples(r) > 0) {
    *out = store_pg_int(r, 0, 0);
    rc = STORE_OK;
  }
  PQclear(r);
  return rc;
}

static store_rc store_pg_model_check(store *base, const char *id,
                                     const char *owner) {
  STORE_PG_CONN(base, c, "model_check");
  store_pg_args a = {0};
  store_pg_text(&a, id);
  store_pg_text(&a, owner);
  int64_t seq;
  return store_pg_put(
      s_, c, store_pg_int_query(c, PG_MODEL_SEQ, &a, &seq, "model_check"));
}

/* Hands each row to `row` (1 stops, -1 is an error): at most limit rows,
 * *more set when a row followed them (lists ask for one more). */
typedef int (*store_pg_row_fn)(const PGresult *r, int i, void *ctx);

static store_rc store_pg_each(const PGresult *r, int limit, int *more,
                              store_pg_row_fn row, void *ctx) {
  int n = PQntuples(r);
  if (more)
    *more = limit >= 0 && n > limit;
  for (int i = 0; i < n && (limit < 0 || i < limit); i++) {
    int rc = row(r, i, ctx);
    if (rc < 0)
      return STORE_ERROR;
    if (rc > 0)
      break;
  }
  return STORE_OK;
}

/* As store_sqlite_pager: statements for one owner and for anyone's. */
typedef struct store_pg_pager {
  int seq, count, count_any, list, list_any;
  const char *what;
} store_pg_pager;

/* A page of a list, read in one transaction so that the count and the
 * page agree. */
static store_rc store_pg_page(store_pg_conn *c, const store_pg_pager *pg,
                              const char *owner, const char *after, int limit,
                              int64_t *total, int *more, store_pg_row_fn row,
                              void *ctx) {
  int64_t before = INT64_MAX;
  store_rc rc = store_pg_begin(c, pg->what);
  if (rc != STORE_OK)
    return rc;
  if (after) {
    store_pg_args a = {0};
    store_pg_text(&a, after);
    store_pg_text(&a, owner);
    rc = store_pg_int_query(c, pg->seq, &a, &before, pg->what);
    if (rc != STORE_OK)
      return rc;
  }
  store_pg_args a = {0};
  store_pg_text(&a, owner);
  rc = store_pg_int_query(c, owner ? pg->count : pg->count_any, &a, total,
                          pg->what);
  if (rc == STORE_NOTFOUND) {
    *total = 0; /* an owner who never had a model */
    rc = STORE_OK;
  }
  if (rc != STORE_OK)
    return rc;
  store_pg_i64(&a, before);
  store_pg_i64(&a, (int64_t)limit + 1);
  PGresult *r =
      store_pg_rows(c, owner ? pg->list : pg->list_any, &a, pg->what, &rc);
  if (!r)
    return rc;
  rc = store_pg_each(r, limit, more, row, ctx);
  PQclear(r);
  return rc == STORE_OK ? store_pg_commit(c, pg->what) : rc;
}

typedef struct store_pg_model_visit {
  store_model_cb cb;
  void *ud;
} store_pg_model_visit;

static int store_pg_visit_model(const PGresult *r, int i, void *ctx) {
  store_pg_model_visit *v = ctx;
  store_model m;
  if (store_pg_model_row(r, i, &m) < 0)
    return -1;
  int stop = v->cb(v->ud, &m);
  store_model_free(&m);
  return stop ? 1 : 0;
}

static store_rc store_pg_model_list(store *base, const char *owner,
                                    const char *after, int limit,
                                    store_model_cb cb, void *ud, int64_t *total,
                                    int *more) {
  static const store_pg_pager pager = {PG_MODEL_CURSOR,    PG_MODEL_COUNT,
                                       PG_MODEL_COUNT_ANY, PG_MODEL_LIST,
                                       PG_MODEL_LIST_ANY,  "model_list"};
  STORE_PG_CONN(base, c, "model_list");
  store_pg_model_visit v = {cb, ud};
  return store_pg_put(s_, c,
                      store_pg_page(c, &pager, owner, after, limit, total, more,
                                    store_pg_visit_model, &v));
}

static store_rc store_pg_model_update(store *base, const char *id,
                                      const char *meta, const char *config,
                                      int64_t now) {
  STORE_PG_CONN(base, c, "model_update");
  store_pg_args a = {0};
  store_pg_text(&a, id);
  store_pg_text(&a, meta);
  store_pg_text(&a, config);
  store_pg_i64(&a, now);
  int64_t n = 0;
  store_rc rc = store_pg_do(c, PG_MODEL_UPDATE, &a, "model_update", &n);
  return store_pg_put(s_, c, rc == STORE_OK && n == 0 ? STORE_NOTFOUND : rc);
}

static store_rc store_pg_by_id(store_pg_conn *c, int which, const char *id,
                               const char *what) {
  store_pg_args a = {0};
  store_pg_text(&a, id);
  return store_pg_do(c, which, &a, what, NULL);
}

static store_rc store_pg_model_delete_on(store_pg_conn *c, const char *id,
                                         int hard) {
  store_rc rc = store_pg_begin(c, "model_delete");
  if (rc != STORE_OK)
    return rc;
  store_pg_args a = {0};
  store_pg_text(&a, id);
  store_pg_i64(&a, util_now_ms());
  int64_t n = 0;
  rc = store_pg_do(c, PG_MODEL_SOFTDEL, &a, "model_delete", &n);
  if (rc != STORE_OK)
    return rc;
  if (n == 0)
    return STORE_NOTFOUND;
  if ((rc = store_pg_by_id(c, PG_MODEL_COUNT_DOWN, id, "model_delete")) !=
      STORE_OK)
    return rc;
  if (hard &&
      ((rc = store_pg_by_id(c, PG_METRICS_DEL, id, "model_delete")) !=
           STORE_OK ||
       (rc = store_pg_by_id(c, PG_CKPT_DEL, id, "model_delete")) != STORE_OK ||
       (rc = store_pg_by_id(c, PG_RUN_DEL, id, "model_delete")) != STORE_OK ||
       (rc = store_pg_by_id(c, PG_DOCS_DEL, id, "model_delete")) != STORE_OK ||
       (rc = store_pg_by_id(c, PG_CONSOLE_DEL, id, "model_delete")) !=
           STORE_OK ||
       (rc = store_pg_by_id(c, PG_SYSTEM_DEL, id, "model_delete")) !=
           STORE_OK ||
       (rc = store_pg_by_id(c, PG_MODEL_HARDDEL, id, "model_delete")) !=
           STORE_OK))
    return rc;
  return store_pg_commit(c, "model_delete");
}

static store_rc store_pg_model_delete(store *base, const char *id, int hard) {
  STORE_PG_CONN(base, c, "model_delete");
  return store_pg_put(s_, c, store_pg_model_delete_on(c, id, hard));
}

static store_rc store_pg_model_reset_on(store_pg_conn *c, const char *id,
                                        const char *owner, int64_t now) {
  store_rc rc = store_pg_begin(c, "model_reset");
  if (rc != STORE_OK)
    return rc;
  store_pg_args a = {0};
  store_pg_text(&a, id);
  store_pg_i64(&a, now);
  store_pg_text(&a, owner);
  int64_t n = 0;
  rc = store_pg_do(c, PG_MODEL_RESET, &a, "model_reset", &n);
  if (rc != STORE_OK)
    return rc;
  if (n == 0)
    return STORE_NOTFOUND;
  if ((rc = store_pg_by_id(c, PG_METRICS_DEL, id, "model_reset")) != STORE_OK ||
      (rc = store_pg_by_id(c, PG_CKPT_DEL, id, "model_reset")) != STORE_OK ||
      (rc = store_pg_by_id(c, PG_DOCS_DEL, id, "model_reset")) != STORE_OK ||
      (rc = store_pg_by_id(c, PG_CONSOLE_DEL, id, "model_reset")) != STORE_OK ||
      (rc = store_pg_by_id(c, PG_SYSTEM_DEL, id, "model_reset")) != STORE_OK)
    return rc;
  return store_pg_commit(c, "model_reset");
}

static store_rc store_pg_model_reset(store *base, const char *id,
                                     const char *owner, int64_t now) {
  STORE_PG_CONN(base, c, "model_reset");
  return store_pg_put(s_, c, store_pg_model_reset_on(c, id, owner, now));
}

/* ------------------------------------------------------------- metrics */

static store_rc store_pg_touch(store_pg_conn *c, const char *id, int64_t now,
                               const char *what) {
  store_pg_args a = {0};
  store_pg_text(&a, id);
  store_pg_i64(&a, now);
  return store_pg_do(c, PG_MODEL_TOUCH, &a, what, NULL);
}

static int store_pg_req_cmp(const void *x, const void *y) {
  const store_pg_metrics_req *a = *(store_pg_metrics_req *const *)x;
  const store_pg_metrics_req *b = *(store_pg_metrics_req *const *)y;
  int d = strcmp(a->id, b->id);
  if (d)
    return d;
  return a->order < b->order ? -1 : a->order > b->order;
}

typedef struct store_pg_epoch_at {
  int64_t epoch;
  size_t seq; /* position among the group's epochs: the last one wins */
  const char *json;
} store_pg_epoch_at;

static int store_pg_epoch_cmp(const void *x, const void *y) {
  const store_pg_epoch_at *a = x, *b = y;
  if (a->epoch != b->epoch)
    return a->epoch < b->epoch ? -1 : 1;
  return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* The epochs of uploads v[0..n), each once (the later upload's when two
 * carry the same epoch, as if they ran one after the other), as the JSON
 * array PG_METRICS_UPLOAD takes. NULL when out of memory. */
static char *store_pg_epochs_json(store_pg_metrics_req *const *v, size_t n) {
  size_t total = 0;
  for (size_t i = 0; i < n; i++)
    total += v[i]->n;
  store_pg_epoch_at *all = malloc((total ? total : 1) * sizeof *all);
  json_t *arr = json_array();
  char *text = NULL;
  if (all && arr) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
      for (size_t j = 0; j < v[i]->n; j++, k++)
        all[k] = (store_pg_epoch_at){v[i]->e[j].epoch, k, v[i]->e[j].json};
    qsort(all, total, sizeof *all, store_pg_epoch_cmp);
    int bad = 0;
    for (k = 0; k < total && !bad; k++)
      if (k + 1 == total || all[k + 1].epoch != all[k].epoch)
        bad = json_array_append_new(arr, json_pack("{s:I,s:s}", "epoch",
                                                   (json_int_t)all[k].epoch,
                                                   "data", all[k].json)) != 0;
    if (!bad)
      text = json_dumps(arr, JSON_COMPACT);
  }
  json_decref(arr);
  free(all);
  return text;
}

static int store_pg_same_upload_group(const store_pg_metrics_req *a,
                                      const store_pg_metrics_req *b) {
  return strcmp(a->id, b->id) == 0 &&
         (a->owner && b->owner ? strcmp(a->owner, b->owner) == 0
                               : a->owner == b->owner);
}

/* Sends one model's uploads v[0..n): its row locked, then every epoch
 * written by one statement. Answers how many of the two went out (fewer
 * when out of memory, or the connection failed). */
static int store_pg_metrics_send(store_pg_conn *c,
                                 store_pg_metrics_req *const *v, size_t n) {
  int64_t now = v[0]->now;
  for (size_t i = 1; i < n; i++)
    if (v[i]->now > now)
      now = v[i]->now;
  char name[16];
  store_pg_args a = {0};
  store_pg_text(&a, v[0]->id);
  store_pg_text(&a, v[0]->owner);
  snprintf(name, sizeof name, "s%d", PG_METRICS_LOCK);
  if (!PQsendQueryPrepared(c->db, name, a.n, a.v, a.len, a.fmt, 0))
    return 0;
  char *epochs = store_pg_epochs_json(v, n);
  if (!epochs)
    return 1;
  store_pg_i64(&a, now);
  store_pg_text(&a, epochs);
  snprintf(name, sizeof name, "s%d", PG_METRICS_UPLOAD);
  int sent = PQsendQueryPrepared(c->db, name, a.n, a.v, a.len, a.fmt, 0);
  free(epochs); /* libpq has copied it */
  return 1 + sent;
}

/* The result of a pipeline's next statement when it has status `want`
 * and nothing failed before it (*rc STORE_OK); otherwise NULL, with the
 * first failure logged and kept in *rc and the results it aborted only
 * cleared. *left counts the statements still to answer. */
static PGresult *store_pg_pipe_take(store_pg_conn *c, size_t *left,
                                    ExecStatusType want, store_rc *rc) {
  if (*left == 0)
    return NULL;
  (*left)--;
  PGresult *r = PQgetResult(c->db);
  if (!r) { /* the connection ended the answers early */
    if (*rc == STORE_OK)
      *rc = store_pg_fail(c, NULL, "metrics_put", 0);
    *left = 0;
    return NULL;
  }
  PGresult *end;
  while ((end = PQgetResult(c->db)) != NULL) /* the NULL ending it */
    PQclear(end);
  if (*rc == STORE_OK && PQresultStatus(r) == want)
    return r;
  if (*rc == STORE_OK)
    *rc = store_pg_fail(c, r, "metrics_put", 0);
  else
    PQclear(r);
  return NULL;
}

/* Runs uploads v[0..n), sorted by model, as one transaction whose
 * statements go out together (libpq's pipeline mode), so that a batch
 * costs one round trip to the server, not a few per model: BEGIN, for
 * each model its row locked and then all its epochs written, COMMIT. The
 * answers are tiny, so sending everything before reading cannot fill the
 * server's side of the connection. On STORE_OK each upload's rc is set
 * (STORE_OK, or STORE_NOTFOUND when its owner has no such model); a
 * failed transaction may be left open for the caller to roll back. */
static store_rc store_pg_metrics_pipe(store_pg_conn *c,
                                      store_pg_metrics_req *const *v,
                                      size_t n) {
  if (!PQenterPipelineMode(c->db))
    return store_pg_fail(c, NULL, "metrics_put", 0);
  size_t sent = 0, k;
  int ok = PQsendQueryParams(c->db, "BEGIN", 0, NULL, NULL, NULL, NULL, 0);
  sent += ok;
  for (size_t i = 0; ok && i < n; i = k) {
    for (k = i + 1; k < n && store_pg_same_upload_group(v[i], v[k]); k++)
      ;
    int m = store_pg_metrics_send(c, v + i, k - i);
    sent += (size_t)m;
    ok = m == 2;
  }
  ok = ok && PQsendQueryParams(c->db, "COMMIT", 0, NULL, NULL, NULL, NULL, 0);
  sent += ok;
  store_rc rc = STORE_OK;
  if (!PQpipelineSync(c->db)) {
    rc = store_pg_fail(c, NULL, "metrics_put", 0);
    sent = 0;
  }
  size_t left = sent;
  PGresult *r = store_pg_pipe_take(c, &left, PGRES_COMMAND_OK, &rc);
  PQclear(r); /* BEGIN */
  for (size_t i = 0; left > 0 && i < n; i = k) {
    for (k = i + 1; k < n && store_pg_same_upload_group(v[i], v[k]); k++)
      ;
    PQclear(store_pg_pipe_take(c, &left, PGRES_TUPLES_OK, &rc)); /* lock */
    r = store_pg_pipe_take(c, &left, PGRES_TUPLES_OK, &rc);
    if (r) {
      store_rc found = store_pg_int(r, 0, 0) > 0 ? STORE_OK : STORE_NOTFOUND;
      for (size_t j = i; j < k; j++)
        v[j]->rc = found;
      PQclear(r);
    }
  }
  r = store_pg_pipe_take(c, &left, PGRES_COMMAND_OK, &rc);
  if (r && strcmp(PQcmdStatus(r), "COMMIT") != 0) {
    /* COMMIT of a failed transaction "succeeds" as a ROLLBACK. */
    fprintf(stderr, "chubd: database error in metrics_put: rolled back\n");
    rc = STORE_ERROR;
  }
  PQclear(r);
  if (rc == STORE_OK && !ok) { /* out of memory for a statement */
    fprintf(stderr, "chubd: metrics_put: out of memory\n");
    rc = STORE_ERROR;
  }
  /* The Sync's own result ends the pipeline. */
  if (PQstatus(c->db) == CONNECTION_OK && sent > 0)
    PQclear(PQgetResult(c->db));
  if (!PQexitPipelineMode(c->db) && PQstatus(c->db) == CONNECTION_OK) {
    /* Answers left unread: the connection is made again rather than
     * used in a state no other operation expects. */
    fprintf(stderr, "chubd: metrics_put: the database connection is "
                    "reset (a pipeline did not end)\n");
    if (!store_pg_revive(c))
      return STORE_BUSY;
    return rc == STORE_OK ? STORE_BUSY : rc;
  }
  return rc;
}

/* store_pg_metrics_pipe, sent once more when the connection turned out
 * closed (the server restarted, an administrator ended the session) and
 * could be made again, as store_pg_retry does for one statement. Should
 * the batch in fact have committed before the connection went, running it
 * again writes the same rows and counts none of them twice: only epochs
 * that are new are counted. */
static store_rc store_pg_metrics_txn(store_pg_conn *c,
                                     store_pg_metrics_req *const *v, size_t n) {
  int idle = PQtransactionStatus(c->db) == PQTRANS_IDLE;
  store_rc rc = store_pg_metrics_pipe(c, v, n);
  if (rc != STORE_OK && idle && PQstatus(c->db) == CONNECTION_BAD &&
      store_pg_revive(c))
    rc = store_pg_metrics_pipe(c, v, n);
  if (PQstatus(c->db) == CONNECTION_OK &&
      PQtransactionStatus(c->db) != PQTRANS_IDLE)
    PQclear(PQexec(c->db, "ROLLBACK"));
  return rc;
}

/* Runs a batch as one transaction, in model order (two processes' batches
 * then lock model rows in the same order and cannot deadlock); a model's
 * uploads keep their queue order. A failed batch is rolled back and each
 * upload runs again alone, so one bad upload costs the others nothing. */
static void store_pg_metrics_batch(store_pg *s, store_pg_metrics_req *batch) {
  size_t n = 0;
  for (store_pg_metrics_req *j = batch; j; j = j->next)
    j->order = n++;
  store_pg_metrics_req **v = malloc(n * sizeof *v);
  if (v) {
    size_t i = 0;
    for (store_pg_metrics_req *j = batch; j; j = j->next)
      v[i++] = j;
    qsort(v, n, sizeof *v, store_pg_req_cmp);
  }
  store_rc rc;
  store_pg_conn *c = store_pg_get(s, "metrics_put", &rc);
  if (!c) {
    for (store_pg_metrics_req *j = batch; j; j = j->next)
      j->rc = rc;
    free(v);
    return;
  }
  rc = v ? store_pg_metrics_txn(c, v, n) : STORE_ERROR;
  if (rc != STORE_OK && v && n == 1) {
    v[0]->rc = rc; /* alone already */
  } else if (rc != STORE_OK) {
    if (v)
      fprintf(stderr,
              "chubd: metrics_put: retrying a batch of %zu one by one\n", n);
    size_t i = 0;
    for (store_pg_metrics_req *j = v ? v[0] : batch; j;
         j = v ? (++i < n ? v[i] : NULL) : j->next) {
      char err[1024];
      if (PQstatus(c->db) != CONNECTION_OK &&
          store_pg_ready(s, c, err, sizeof err) < 0) {
        fprintf(stderr, "chubd: database error in metrics_put: %s\n", err);
        j->rc = STORE_BUSY;
        continue;
      }
      store_rc one = store_pg_metrics_txn(c, &j, 1);
      if (one != STORE_OK)
        j->rc = one;
    }
  }
  free(v);
  store_pg_put(s, c, STORE_OK);
}

static void *store_pg_group_main(void *arg) {
  store_pg *s = arg;
  pthread_mutex_lock(&s->group_mu);
  for (;;) {
    while (!s->group_head && !s->group_stopping)
      pthread_cond_wait(&s->group_cv, &s->group_mu);
    store_pg_metrics_req *batch = s->group_head;
    if (!batch)
      break; /* stopping, and nothing is left */
    s->group_head = s->group_tail = NULL;
    pthread_mutex_unlock(&s->group_mu);
    store_pg_metrics_batch(s, batch);
    size_t uploads = 0, epochs = 0;
    for (store_pg_metrics_req *j = batch; j; j = j->next, uploads++)
      epochs += j->n;
    prom_metrics_commit(uploads, epochs);
    for (store_pg_metrics_req *j = batch, *next; j; j = next) {
      next = j->next;
      j->done(j->ud, j->rc);
      free(j);
    }
    pthread_mutex_lock(&s->group_mu);
  }
  pthread_mutex_unlock(&s->group_mu);
  return NULL;
}

static store_rc store_pg_metrics_put_async(store *base, const char *id,
                                           const char *owner,
                                           const store_epoch *e, size_t n,
                                           int64_t now, store_done_cb done,
                                           void *ud) {
  store_pg *s = (store_pg *)base;
  store_pg_metrics_req *j = malloc(sizeof *j);
  if (!j)
    return STORE_ERROR;
  *j = (store_pg_metrics_req){.id = id,
                              .owner = owner,
                              .e = e,
                              .n = n,
                              .now = now,
                              .rc = STORE_ERROR,
                              .done = done,
                              .ud = ud};
  pthread_mutex_lock(&s->group_mu);
  if (!s->group_started) {
    if (s->group_stopping ||
        pthread_create(&s->group_thread, NULL, store_pg_group_main, s) != 0) {
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

typedef struct store_pg_waiter {
  store_pg *s;
  store_rc rc;
  int done;
} store_pg_waiter;

static void store_pg_wake(void *ud, store_rc rc) {
  store_pg_waiter *w = ud;
  pthread_mutex_lock(&w->s->group_mu);
  w->rc = rc;
  w->done = 1;
  pthread_cond_broadcast(&w->s->waited_cv);
  pthread_mutex_unlock(&w->s->group_mu);
}

static store_rc store_pg_metrics_put(store *base, const char *id,
                                     const char *owner, const store_epoch *e,
                                     size_t n, int64_t now) {
  store_pg *s = (store_pg *)base;
  store_pg_waiter w = {s, STORE_ERROR, 0};
  store_rc rc =
      store_pg_metrics_put_async(base, id, owner, e, n, now, store_pg_wake, &w);
  if (rc != STORE_OK)
    return rc;
  pthread_mutex_lock(&s->group_mu);
  while (!w.done)
    pthread_cond_wait(&s->waited_cv, &s->group_mu);
  pthread_mutex_unlock(&s->group_mu);
  return w.rc;
}

static store_rc store_pg_metrics_get(store *base, const char *id, int64_t after,
                                     int limit, store_metrics_cb cb, void *ud) {
  STORE_PG_CONN(base, c, "metrics_get");
  store_pg_args a = {0};
  store_pg_text(&a, id);
  store_pg_i64(&a, after);
  store_pg_i64(&a, limit);
  store_rc rc;
  PGresult *r = store_pg_rows(c, PG_METRICS_GET, &a, "metrics_get", &rc);
  if (!r)
    return store_pg_put(s_, c, rc);
  for (int i = 0; i < PQntuples(r); i++) {
    if (cb(ud, store_pg_int(r, i, 0), PQgetvalue(r, i, 1)) != 0) {
      rc = STORE_ERROR;
      break;
    }
  }
  PQclear(r);
  return store_pg_put(s_, c, rc);
}

/* --------------------------------------------------------- checkpoints */

/* The model's row is locked first: two final uploads for one model, from
 * any two processes, run one after the other and the second finds the
 * model trained. */
static store_rc store_pg_checkpoint_add_on(store_pg_conn *c, const char *id,
                                           const store_checkpoint *k) {
  store_rc rc = store_pg_begin(c, "checkpoint_add");
  if (rc != STORE_OK)
    return rc;
  store_pg_args a = {0};
  store_pg_text(&a, id);
  PGresult *r = store_pg_rows(c, PG_MODEL_STATUS, &a, "checkpoint_add", &rc);
  if (!r)
    return rc;
  if (PQntuples(r) == 0) {
    PQclear(r);
    return STORE_NOTFOUND;
  }
  int trained = strcmp(PQgetvalue(r, 0, 0), "trained") == 0;
  PQclear(r);
  if (k->final && trained)
    return STORE_CONFLICT;
  store_pg_args p = {0};
  store_pg_text(&p, id);
  store_pg_i64(&p, k->epoch);
  store_pg_i64(&p, k->final);
  store_pg_i64(&p, k->is_best);
  if (k->has_map)
    store_pg_dbl(&p, k->map);
  else
    store_pg_text(&p, NULL);
  store_pg_i64(&p, k->size);
  store_pg_text(&p, k->sha256);
  store_pg_i64(&p, k->created_ms);
  store_pg_text(&p, k->suffix[0] ? k->suffix : ".pt");
  if ((rc = store_pg_do(c, PG_CKPT_ADD, &p, "checkpoint_add", NULL)) !=
      STORE_OK)
    return rc;
  if (k->final) {
    store_pg_args t = {0};
    store_pg_text(&t, id);
    store_pg_i64(&t, k->created_ms);
    rc = store_pg_do(c, PG_MODEL_TRAINED, &t, "checkpoint_add", NULL);
  } else {
    rc = store_pg_touch(c, id, k->created_ms, "checkpoint_add");
  }
  return rc == STORE_OK ? store_pg_commit(c, "checkpoint_add") : rc;
}

static store_rc store_pg_checkpoint_add(store *base, const char *id,
                                        const store_checkpoint *k) {
  STORE_PG_CONN(base, c, "checkpoint_add");
  return store_pg_put(s_, c, store_pg_checkpoint_add_on(c, id, k));
}

static store_rc store_pg_checkpoints(store *base, const char *id,
                                     store_checkpoint **out, size_t *n) {
  *out = NULL;
  *n = 0;
  STORE_PG_CONN(base, c, "checkpoints");
  store_pg_args a = {0};
  store_pg_text(&a, id);
  store_rc rc;
  PGresult *r = store_pg_rows(c, PG_CKPTS, &a, "checkpoints", &rc);
  if (!r)
    return store_pg_put(s_, c, rc);
  int rows = PQntuples(r);
  if (rows > 0) {
    *out = calloc((size_t)rows, sizeof **out);
    if (!*out) {
      PQclear(r);
      return store_pg_put(s_, c, STORE_ERROR);
    }
  }
  for (int i = 0; i < rows; i++) {
    store_checkpoint *k = &(*out)[i];
    k->epoch = store_pg_int(r, i, 0);
    k->final = (int)store_pg_int(r, i, 1);
    k->is_best = (int)store_pg_int(r, i, 2);
    k->has_map = !PQgetisnull(r, i, 3);
    k->map = k->has_map ? strtod(PQgetvalue(r, i, 3), NULL) : 0;
    k->size = store_pg_int(r, i, 4);
    store_pg_str(r, i, 5, k->sha256, sizeof k->sha256);
    k->created_ms = store_pg_int(r, i, 6);
    store_pg_str(r, i, 7, k->suffix, sizeof k->suffix);
  }
  *n = (size_t)rows;
  PQclear(r);
  return store_pg_put(s_, c, STORE_OK);
}

static store_rc store_pg_blob_in_use(store *base, const char *sha256,
                                     int *in_use) {
  STORE_PG_CONN(base, c, "blob_in_use");
  store_pg_args a = {0};
  store_pg_text(&a, sha256);
  store_rc rc;
  PGresult *r = store_pg_rows(c, PG_BLOB_USED, &a, "blob_in_use", &rc);
  if (!r)
    return store_pg_put(s_, c, rc);
  *in_use = PQntuples(r) > 0;
  PQclear(r);
  return store_pg_put(s_, c, STORE_OK);
}

/* ------------------------------------------------------------ datasets */

static int store_pg_dataset_row(const PGresult *r, int i, store_dataset *d) {
  memset(d, 0, sizeof *d);
  store_pg_str(r, i, 0, d->id, sizeof d->id);
  store_pg_str(r, i, 1, d->owner, sizeof d->owner);
  d->meta = strdup(PQgetvalue(r, i, 2));
  store_pg_str(r, i, 3, d->status, sizeof d->status);
  d->size = store_pg_int(r, i, 4);
  store_pg_str(r, i, 5, d->sha256, sizeof d->sha256);
  store_pg_str(r, i, 6, d->filename, sizeof d->filename);
  d->files = store_pg_int(r, i, 7);
  d->created_ms = store_pg_int(r, i, 8);
  d->updated_ms = store_pg_int(r, i, 9);
  return d->meta ? 0 : -1;
}

static store_rc store_pg_dataset_add(store *base, const store_dataset *d) {
  STORE_PG_CONN(base, c, "dataset_add");
  store_pg_args a = {0};
  store_pg_text(&a, d->id);
  store_pg_text(&a, d->owner);
  store_pg_text(&a, d->meta);
  store_pg_i64(&a, d->created_ms);
  return store_pg_put(s_, c,
                      store_pg_do(c, PG_DATASET_ADD, &a, "dataset_add", NULL));
}

static int store_pg_dataset_row_of(const PGresult *r, int i, void *out) {
  return store_pg_dataset_row(r, i, out);
}

static store_rc store_pg_dataset_get(store *base, const char *id,
                                     const char *owner, store_dataset *out) {
  return store_pg_get_one(base, PG_DATASET_GET, "dataset_get", id, owner,
                          store_pg_dataset_row_of, out);
}

typedef struct store_pg_dataset_visit {
  store_dataset_cb cb;
  void *ud;
} store_pg_dataset_visit;

static int store_pg_visit_dataset(const PGresult *r, int i, void *ctx) {
  store_pg_dataset_visit *v = ctx;
  store_dataset d;
  int bad = store_pg_dataset_row(r, i, &d) < 0;
  int stop = bad ? -1 : v->cb(v->ud, &d) ? 1 : 0;
  store_dataset_free(&d);
  return stop;
}

static store_rc store_pg_dataset_list(store *base, const char *owner,
                                      const char *after, int limit,
                                      store_dataset_cb cb, void *ud,
                                      int64_t *total, int *more) {
  static const store_pg_pager pager = {PG_DATASET_SEQ,   PG_DATASET_COUNT,
                                       PG_DATASET_COUNT, PG_DATASET_LIST,
                                       PG_DATASET_LIST,  "dataset_list"};
  STORE_PG_CONN(base, c, "dataset_list");
  store_pg_dataset_visit v = {cb, ud};
  return store_pg_put(s_, c,
                      store_pg_page(c, &pager, owner, after, limit, total, more,
                                    store_pg_visit_dataset, &v));
}

static store_rc store_pg_dataset_update(store *base, const char *id,
                                        const char *meta, int64_t now) {
  STORE_PG_CONN(base, c, "dataset_update");
  store_pg_args a = {0};
  store_pg_text(&a, id);
  store_pg_text(&a, meta);
  store_pg_i64(&a, now);
  int64_t n = 0;
  store_rc rc = store_pg_do(c, PG_DATASET_UPDATE, &a, "dataset_update", &n);
  return store_pg_put(s_, c, rc == STORE_OK && n == 0 ? STORE_NOTFOUND : rc);
}

static store_rc store_pg_dataset_delete(store *base, const char *id, int hard) {
  STORE_PG_CONN(base, c, "dataset_delete");
  store_pg_args a = {0};
  store_pg_text(&a, id);
  if (!hard)
    store_pg_i64(&a, util_now_ms());
  int64_t n = 0;
  store_rc rc = store_pg_do(c, hard ? PG_DATASET_HARDDEL : PG_DATASET_SOFTDEL,
                            &a, "dataset_delete", &n);
  return store_pg_put(s_, c, rc == STORE_OK && n == 0 ? STORE_NOTFOUND : rc);
}

static store_rc store_pg_dataset_set_file_on(store_pg_conn *c,
                                             const store_dataset *d,
                                             char old_sha256[65]) {
  old_sha256[0] = '\0';
  store_rc rc = store_pg_begin(c, "dataset_set_file");
  if (rc != STORE_OK)
    return rc;
  store_pg_args a = {0};
  store_pg_text(&a, d->id);
  store_pg_text(&a, d->owner[0] ? d->owner : NULL);
  PGresult *r = store_pg_rows(c, PG_DATASET_SHA, &a, "dataset_set_file", &rc);
  if (!r)
    return rc;
  if (PQntuples(r) == 0) {
    PQclear(r);
    return STORE_NOTFOUND;
  }
  store_pg_str(r, 0, 0, old_sha256, 65);
  PQclear(r);
  store_pg_args p = {0};
  store_pg_text(&p, d->id);
  store_pg_i64(&p, d->size);
  store_pg_text(&p, d->sha256);
  store_pg_text(&p, d->filename);
  store_pg_i64(&p, d->files);
  store_pg_i64(&p, d->updated_ms);
  rc = store_pg_do(c, PG_DATASET_FILE, &p, "dataset_set_file", NULL);
  if (rc != STORE_OK) {
    old_sha256[0] = '\0';
    return rc;
  }
  rc = store_pg_commit(c, "dataset_set_file");
  if (rc != STORE_OK)
    old_sha256[0] = '\0';
  return rc;
}

static store_rc store_pg_dataset_set_file(store *base, const store_dataset *d,
                                          char old_sha256[65]) {
  STORE_PG_CONN(base, c, "dataset_set_file");
  return store_pg_put(s_, c, store_pg_dataset_set_file_on(c, d, old_sha256));
}

static store_rc store_pg_dataset_models(store *base, const char *id, int limit,
                                        store_model_cb cb, void *ud) {
  STORE_PG_CONN(base, c, "dataset_models");
  store_pg_args a = {0};
  store_pg_text(&a, id);
  store_pg_i64(&a, limit);
  store_rc rc;
  PGresult *r = store_pg_rows(c, PG_DATASET_MODELS, &a, "dataset_models", &rc);
  if (!r)
    return store_pg_put(s_, c, rc);
  store_pg_model_visit v = {cb, ud};
  rc = store_pg_each(r, -1, NULL, store_pg_visit_model, &v);
  PQclear(r);
  return store_pg_put(s_, c, rc);
}

/* ------------------------------------------------------------ sessions */

static store_rc store_pg_session_add_on(store_pg_conn *c,
                                        const unsigned char hash[32],
                                        int64_t key_id, int64_t now,
                                        int64_t expires) {
  store_rc rc = store_pg_begin(c, "session_add");
  if (rc != STORE_OK)
    return rc;
  /* Expired sessions go as new ones come; a key keeps only its newest. */
  store_pg_args x = {0};
  store_pg_i64(&x, now);
  if ((rc = store_pg_do(c, PG_SESSION_EXPIRE, &x, "session_add", NULL)) !=
      STORE_OK)
    return rc;
  store_pg_args a = {0};
  store_pg_bin(&a, hash, 32);
  store_pg_i64(&a, key_id);
  store_pg_i64(&a, now);
  store_pg_i64(&a, expires);
  if ((rc = store_pg_do(c, PG_SESSION_ADD, &a, "session_add", NULL)) !=
      STORE_OK)
    return rc;
  store_pg_args t = {0};
  store_pg_i64(&t, key_id);
  store_pg_i64(&t, STORE_SESSIONS_PER_KEY);
  if ((rc = store_pg_do(c, PG_SESSION_TRIM, &t, "session_add", NULL)) !=
      STORE_OK)
    return rc;
  return store_pg_commit(c, "session_add");
}

static store_rc store_pg_session_add(store *base, const unsigned char hash[32],
                                     int64_t key_id, int64_t now,
                                     int64_t expires) {
  STORE_PG_CONN(base, c, "session_add");
  return store_pg_put(s_, c,
                      store_pg_session_add_on(c, hash, key_id, now, expires));
}

static store_rc store_pg_session_find(store *base, const unsigned char hash[32],
                                      int64_t now, store_key *out) {
  STORE_PG_CONN(base, c, "session_find");
  store_pg_args a = {0};
  store_pg_bin(&a, hash, 32);
  store_pg_i64(&a, now);
  store_rc rc;
  PGresult *r = store_pg_rows(c, PG_SESSION_FIND, &a, "session_find", &rc);
  if (!r)
    return store_pg_put(s_, c, rc);
  rc = STORE_NOTFOUND;
  if (PQntuples(r) > 0) {
    memset(out, 0, sizeof *out);
    out->id = store_pg_int(r, 0, 0);
    store_pg_str(r, 0, 1, out->owner, sizeof out->owner);
    store_pg_str(r, 0, 2, out->prefix, sizeof out->prefix);
    out->created_ms = store_pg_int(r, 0, 3);
    rc = STORE_OK;
  }
  PQclear(r);
  return store_pg_put(s_, c, rc);
}

static store_rc store_pg_session_drop(store *base,
                                      const unsigned char hash[32]) {
  STORE_PG_CONN(base, c, "session_drop");
  store_pg_args a = {0};
  store_pg_bin(&a, hash, 32);
  return store_pg_put(
      s_, c, store_pg_do(c, PG_SESSION_DROP, &a, "session_drop", NULL));
}

/* ------------------------------------------------- heartbeats, events */

static store_rc store_pg_heartbeat(store *base, const char *id,
                                   const char *agent_id, const char *agent_name,
                                   int64_t now) {
  STORE_PG_CONN(base, c, "heartbeat");
  store_pg_args a = {0};
  store_pg_text(&a, id);
  store_pg_text(&a, agent_id);
  store_pg_text(&a, agent_name);
  store_pg_i64(&a, now);
  int64_t n = 0;
  store_rc rc = store_pg_do(c, PG_HEARTBEAT, &a, "heartbeat", &n);
  return store_pg_put(s_, c, rc == STORE_OK && n == 0 ? STORE_NOTFOUND : rc);
}

static store_rc store_pg_events_add_on(store_pg_conn *c, json_t *arr,
                                       const char *client_id, int64_t now,
                                       int64_t per_day) {
  store_rc rc = store_pg_begin(c, "events_add");
  if (rc != STORE_OK)
    return rc;
  store_pg_args l = {0};
  store_pg_text(&l, client_id);
  PGresult *r = store_pg_rows(c, PG_EVENT_LOCK, &l, "events_add", &rc);
  if (!r)
    return rc;
  PQclear(r);
  store_pg_args q = {0};
  store_pg_text(&q, client_id);
  store_pg_i64(&q, now - now % 86400000);
  int64_t today = 0;
  if ((rc = store_pg_int_query(c, PG_EVENT_COUNT, &q, &today, "events_add")) !=
      STORE_OK)
    return rc;
  if (today + (int64_t)json_array_size(arr) > per_day)
    return STORE_LIMIT;
  size_t i;
  json_t *ev;
  json_array_foreach(arr, i, ev) {
    json_t *params = json_object_get(ev, "params");
    char *ptext = params ? json_dumps(params, JSON_COMPACT) : strdup("{}");
    if (!ptext)
      return STORE_ERROR;
    store_pg_args a = {0};
    store_pg_text(&a, client_id);
    store_pg_text(&a, json_string_value(json_object_get(ev, "name")));
    store_pg_text(&a, ptext);
    store_pg_i64(&a, now);
    rc = store_pg_do(c, PG_EVENT_ADD, &a, "events_add", NULL);
    free(ptext);
    if (rc != STORE_OK)
      return rc;
  }
  return store_pg_commit(c, "events_add");
}

static store_rc store_pg_events_add(store *base, const char *client_id,
                                    const char *events, int64_t now,
                                    int64_t per_day) {
  json_t *arr = json_loads(events, 0, NULL);
  if (!json_is_array(arr)) {
    json_decref(arr);
    return STORE_ERROR;
  }
  store_pg *s = (store_pg *)base;
  store_rc rc;
  store_pg_conn *c = store_pg_get(s, "events_add", &rc);
  if (c)
    rc = store_pg_put(s, c,
                      store_pg_events_add_on(c, arr, client_id, now, per_day));
  json_decref(arr);
  return rc;
}

/* ------------------------------------------------------------- secrets */

static store_rc store_pg_secret_get_on(store_pg_conn *c, const char *name,
                                       const unsigned char *init,
                                       unsigned char *out, size_t len) {
  store_rc rc = store_pg_begin(c, "secret_get");
  if (rc != STORE_OK)
    return rc;
  store_pg_args a = {0};
  store_pg_text(&a, name);
  store_pg_bin(&a, init, (int)len);
  if ((rc = store_pg_do(c, PG_SECRET_PUT, &a, "secret_get", NULL)) != STORE_OK)
    return rc;
  store_pg_args g = {0};
  store_pg_text(&g, name);
  PGresult *r = store_pg_rows(c, PG_SECRET_GET, &g, "secret_get", &rc);
  if (!r)
    return rc;
  if (PQntuples(r) != 1 || store_pg_bytes(r, 0, 0, out, len) < 0) {
    fprintf(stderr,
            "chubd: database error in secret_get: the stored secret "
            "%s is not %zu bytes\n",
            name, len);
    PQclear(r);
    return STORE_ERROR;
  }
  PQclear(r);
  return store_pg_commit(c, "secret_get");
}

static store_rc store_pg_secret_get(store *base, const char *name,
                                    const unsigned char *init,
                                    unsigned char *out, size_t len) {
  STORE_PG_CONN(base, c, "secret_get");
  return store_pg_put(s_, c, store_pg_secret_get_on(c, name, init, out, len));
}

/* ------------------------------------------- projects and Platform runs */

static store_rc store_pg_project_ensure_on(store_pg_conn *c, const char *owner,
                                           const char *name, const char *new_id,
                                           int64_t now, char id[21]) {
  store_pg_args a = {0};
  store_pg_text(&a, new_id);
  store_pg_text(&a, owner);
  store_pg_text(&a, name);
  store_pg_i64(&a, now);
  store_rc rc = store_pg_do(c, PG_PROJECT_ADD, &a, "project_ensure", NULL);
  if (rc != STORE_OK)
    return rc;
  store_pg_args f = {0};
  store_pg_text(&f, owner);
  store_pg_text(&f, name);
  PGresult *r = store_pg_rows(c, PG_PROJECT_FIND, &f, "project_ensure", &rc);
  if (!r)
    return rc;
  rc = STORE_ERROR; /* added or there: a row must answer */
  if (PQntuples(r) > 0) {
    store_pg_str(r, 0, 0, id, 21);
    rc = STORE_OK;
  }
  PQclear(r);
  return rc;
}

static store_rc store_pg_project_ensure(store *base, const char *owner,
                                        const char *name, const char *new_id,
                                        int64_t now, char id[21]) {
  STORE_PG_CONN(base, c, "project_ensure");
  return store_pg_put(
      s_, c, store_pg_project_ensure_on(c, owner, name, new_id, now, id));
}

static store_rc store_pg_project_find(store *base, const char *owner,
                                      const char *name, char id[21]) {
  STORE_PG_CONN(base, c, "project_find");
  store_pg_args a = {0};
  store_pg_text(&a, owner);
  store_pg_text(&a, name);
  store_rc rc;
  PGresult *r = store_pg_rows(c, PG_PROJECT_FIND, &a, "project_find", &rc);
  if (!r)
    return store_pg_put(s_, c, rc);
  rc = STORE_NOTFOUND;
  if (PQntuples(r) > 0) {
    store_pg_str(r, 0, 0, id, 21);
    rc = STORE_OK;
  }
  PQclear(r);
  return store_pg_put(s_, c, rc);
}

static store_rc store_pg_model_set_trained(store *base, const char *id,
                                           int64_t now) {
  STORE_PG_CONN(base, c, "model_set_trained");
  store_pg_args a = {0};
  store_pg_text(&a, id);
  store_pg_i64(&a, now);
  int64_t n = 0;
  store_rc rc = store_pg_do(c, PG_MODEL_TRAINED, &a, "model_set_trained", &n);
  return store_pg_put(s_, c, rc == STORE_OK && n == 0 ? STORE_NOTFOUND : rc);
}

static int store_pg_project_row(const PGresult *r, int i, store_project *p) {
  memset(p, 0, sizeof *p);
  store_pg_str(r, i, 0, p->id, sizeof p->id);
  store_pg_str(r, i, 1, p->owner, sizeof p->owner);
  store_pg_str(r, i, 2, p->name, sizeof p->name);
  p->meta = strdup(PQgetvalue(r, i, 3));
  p->created_ms = store_pg_int(r, i, 4);
  p->updated_ms = store_pg_int(r, i, 5);
  p->models = store_pg_int(r, i, 6);
  return p->meta ? 0 : -1;
}

static int store_pg_project_row_of(const PGresult *r, int i, void *out) {
  return store_pg_project_row(r, i, out);
}

static store_rc store_pg_project_get(store *base, const char *id,
                                     const char *owner, store_project *out) {
  return store_pg_get_one(base, PG_PROJECT_GET, "project_get", id, owner,
                          store_pg_project_row_of, out);
}

typedef struct store_pg_project_visit {
  store_project_cb cb;
  void *ud;
} store_pg_project_visit;

static int store_pg_visit_project(const PGresult *r, int i, void *ctx) {
  store_pg_project_visit *v = ctx;
  store_project p;
  if (store_pg_project_row(r, i, &p) < 0)
    return -1;
  int stop = v->cb(v->ud, &p);
  store_project_free(&p);
  return stop ? 1 : 0;
}

static store_rc store_pg_project_list(store *base, const char *owner,
                                      const char *after, int limit,
                                      store_project_cb cb, void *ud,
                                      int64_t *total, int *more) {
  static const store_pg_pager pager = {PG_PROJECT_SEQ,   PG_PROJECT_COUNT,
                                       PG_PROJECT_COUNT, PG_PROJECT_LIST,
                                       PG_PROJECT_LIST,  "project_list"};
  STORE_PG_CONN(base, c, "project_list");
  store_pg_project_visit v = {cb, ud};
  return store_pg_put(s_, c,
                      store_pg_page(c, &pager, owner, after, limit, total, more,
                                    store_pg_visit_project, &v));
}

static store_rc store_pg_project_update(store *base, const char *id,
                                        const char *owner, const char *name,
                                        const char *meta, int64_t now) {
  STORE_PG_CONN(base, c, "project_update");
  store_pg_args a = {0};
  store_pg_text(&a, id);
  store_pg_text(&a, owner);
  store_pg_text(&a, name);
  store_pg_text(&a, meta);
  store_pg_i64(&a, now);
  int64_t n = 0;
  store_rc rc = store_pg_do(c, PG_PROJECT_UPDATE, &a, "project_update", &n);
  return store_pg_put(s_, c, rc == STORE_OK && n == 0 ? STORE_NOTFOUND : rc);
}

static store_rc store_pg_project_delete(store *base, const char *id,
                                        const char *owner, int64_t now) {
  STORE_PG_CONN(base, c, "project_delete");
  store_pg_args a = {0};
  store_pg_text(&a, id);
  store_pg_text(&a, owner);
  store_pg_i64(&a, now);
  int64_t n = 0;
  store_rc rc = store_pg_do(c, PG_PROJECT_DELETE, &a, "project_delete", &n);
  return store_pg_put(s_, c, rc == STORE_OK && n == 0 ? STORE_NOTFOUND : rc);
}

static store_rc store_pg_run_find(store *base, const char *owner,
                                  const char *project_id, const char *name,
                                  char model_id[21]) {
  STORE_PG_CONN(base, c, "run_find");
  store_pg_args a = {0};
  store_pg_text(&a, owner);
  store_pg_text(&a, project_id);
  store_pg_text(&a, name);
  store_rc rc;
  PGresult *r = store_pg_rows(c, PG_RUN_FIND, &a, "run_find", &rc);
  if (!r)
    return store_pg_put(s_, c, rc);
  rc = STORE_NOTFOUND;
  if (PQntuples(r) > 0) {
    store_pg_str(r, 0, 0, model_id, 21);
    rc = STORE_OK;
  }
  PQclear(r);
  return store_pg_put(s_, c, rc);
}

static store_rc store_pg_run_add(store *base, const char *model_id,
                                 const char *owner, const char *project_id,
                                 const char *name) {
  STORE_PG_CONN(base, c, "run_add");
  store_pg_args a = {0};
  store_pg_text(&a, model_id);
  store_pg_text(&a, owner);
  store_pg_text(&a, project_id);
  store_pg_text(&a, name);
  return store_pg_put(s_, c, store_pg_do(c, PG_RUN_ADD, &a, "run_add", NULL));
}

static store_rc store_pg_run_models(store *base, const char *project_id,
                                    const char *owner, int limit,
                                    store_model_cb cb, void *ud) {
  STORE_PG_CONN(base, c, "run_models");
  store_pg_args a = {0};
  store_pg_text(&a, project_id);
  store_pg_text(&a, owner);
  store_pg_i64(&a, limit);
  store_rc rc;
  PGresult *r = store_pg_rows(c, PG_RUN_MODELS, &a, "run_models", &rc);
  if (!r)
    return store_pg_put(s_, c, rc);
  store_pg_model_visit v = {cb, ud};
  rc = store_pg_each(r, -1, NULL, store_pg_visit_model, &v);
  PQclear(r);
  return store_pg_put(s_, c, rc);
}

static store_rc store_pg_doc_put(store *base, const char *model_id,
                                 const char *name, const char *body) {
  STORE_PG_CONN(base, c, "doc_put");
  store_pg_args a = {0};
  store_pg_text(&a, model_id);
  store_pg_text(&a, name);
  store_pg_text(&a, body);
  return store_pg_put(s_, c, store_pg_do(c, PG_DOC_PUT, &a, "doc_put", NULL));
}

static store_rc store_pg_doc_get(store *base, const char *model_id,
                                 const char *name, char **body) {
  *body = NULL;
  STORE_PG_CONN(base, c, "doc_get");
  store_pg_args a = {0};
  store_pg_text(&a, model_id);
  store_pg_text(&a, name);
  store_rc rc;
  PGresult *r = store_pg_rows(c, PG_DOC_GET, &a, "doc_get", &rc);
  if (!r)
    return store_pg_put(s_, c, rc);
  rc = STORE_NOTFOUND;
  if (PQntuples(r) > 0) {
    *body = strdup(PQgetvalue(r, 0, 0));
    rc = *body ? STORE_OK : STORE_ERROR;
  }
  PQclear(r);
  return store_pg_put(s_, c, rc);
}

/* Begins a transaction holding the model's row lock, so that what is
 * numbered per model (console chunks, load samples), from any two
 * processes, is numbered and counted against its cap one after the other.
 * STORE_NOTFOUND without the model. */
static store_rc store_pg_lock_model(store_pg_conn *c, const char *model_id,
                                    const char *what) {
  store_rc rc = store_pg_begin(c, what);
  if (rc != STORE_OK)
    return rc;
  store_pg_args a = {0};
  store_pg_text(&a, model_id);
  PGresult *r = store_pg_rows(c, PG_CONSOLE_LOCK, &a, what, &rc);
  if (!r)
    return rc;
  int found = PQntuples(r) > 0;
  PQclear(r);
  return found ? STORE_OK : STORE_NOTFOUND;
}

static store_rc store_pg_console_add_on(store_pg_conn *c, const char *model_id,
                                        const char *chunk_id,
                                        const char *content, int64_t lines,
                                        int64_t max_bytes) {
  store_rc rc = store_pg_lock_model(c, model_id, "console_add");
  if (rc != STORE_OK)
    return rc;
  store_pg_args a = {0};
  store_pg_text(&a, model_id);
  PGresult *r;
  store_pg_args h = {0};
  store_pg_text(&h, model_id);
  store_pg_text(&h, chunk_id);
  if (!(r = store_pg_rows(c, PG_CONSOLE_HAS, &h, "console_add", &rc)))
    return rc;
  int dup = PQntuples(r) > 0;
  PQclear(r);
  if (dup)
    return STORE_CONFLICT;
  if (!(r = store_pg_rows(c, PG_CONSOLE_SIZE, &a, "console_add", &rc)))
    return rc;
  int64_t used = store_pg_int(r, 0, 0);
  int64_t seq = store_pg_int(r, 0, 1) + 1;
  PQclear(r);
  int64_t bytes = (int64_t)strlen(content);
  if (used + bytes > max_bytes)
    return STORE_LIMIT;
  store_pg_args p = {0};
  store_pg_text(&p, model_id);
  store_pg_text(&p, chunk_id);
  store_pg_i64(&p, seq);
  store_pg_text(&p, content);
  store_pg_i64(&p, lines);
  store_pg_i64(&p, bytes);
  if ((rc = store_pg_do(c, PG_CONSOLE_ADD, &p, "console_add", NULL)) !=
      STORE_OK)
    return rc;
  return store_pg_commit(c, "console_add");
}

static store_rc store_pg_console_add(store *base, const char *model_id,
                                     const char *chunk_id, const char *content,
                                     int64_t lines, int64_t max_bytes) {
  STORE_PG_CONN(base, c, "console_add");
  return store_pg_put(s_, c,
                      store_pg_console_add_on(c, model_id, chunk_id, content,
                                              lines, max_bytes));
}

/* Runs `which` ($1 a model, $2 the seq after which, $3 at most how many
 * rows) and hands each row to row(r, i, ctx); a non-zero answer stops. */
typedef int (*store_pg_row_fn)(const PGresult *r, int i, void *ctx);

static store_rc store_pg_after(store *base, int which, const char *model_id,
                               int64_t after_seq, int limit,
                               store_pg_row_fn row, void *ctx,
                               const char *what) {
  STORE_PG_CONN(base, c, what);
  store_pg_args a = {0};
  store_pg_text(&a, model_id);
  store_pg_i64(&a, after_seq);
  store_pg_i64(&a, limit);
  store_rc rc;
  PGresult *r = store_pg_rows(c, which, &a, what, &rc);
  if (!r)
    return store_pg_put(s_, c, rc);
  for (int i = 0; i < PQntuples(r); i++) {
    if (row(r, i, ctx) != 0) {
      rc = STORE_ERROR;
      break;
    }
  }
  PQclear(r);
  return store_pg_put(s_, c, rc);
}

typedef struct store_pg_console_ctx {
  store_console_cb cb;
  void *ud;
} store_pg_console_ctx;

static int store_pg_console_row(const PGresult *r, int i, void *ctx) {
  store_pg_console_ctx *x = ctx;
  return x->cb(x->ud, store_pg_int(r, i, 0), PQgetvalue(r, i, 1),
               PQgetvalue(r, i, 2), store_pg_int(r, i, 3));
}

static store_rc store_pg_console_get(store *base, const char *model_id,
                                     int64_t after_seq, int limit,
                                     store_console_cb cb, void *ud) {
  store_pg_console_ctx x = {cb, ud};
  return store_pg_after(base, PG_CONSOLE_GET, model_id, after_seq, limit,
                        store_pg_console_row, &x, "console_get");
}

static store_rc store_pg_system_add_on(store_pg_conn *c, const char *model_id,
                                       int64_t t_ms, int64_t epoch,
                                       const char *body, int64_t max_samples) {
  store_rc rc = store_pg_lock_model(c, model_id, "system_add");
  if (rc != STORE_OK)
    return rc;
  store_pg_args a = {0};
  store_pg_text(&a, model_id);
  PGresult *r;
  if (!(r = store_pg_rows(c, PG_SYSTEM_LAST, &a, "system_add", &rc)))
    return rc;
  int64_t seq = store_pg_int(r, 0, 0) + 1;
  PQclear(r);
  if (seq > max_samples)
    return STORE_LIMIT;
  store_pg_args e = {0};
  store_pg_text(&e, model_id);
  store_pg_i64(&e, epoch);
  if ((rc = store_pg_do(c, PG_SYSTEM_DEL_EPOCH, &e, "system_add", NULL)) !=
      STORE_OK)
    return rc;
  store_pg_args p = {0};
  store_pg_text(&p, model_id);
  store_pg_i64(&p, seq);
  store_pg_i64(&p, t_ms);
  store_pg_i64(&p, epoch);
  store_pg_text(&p, body);
  if ((rc = store_pg_do(c, PG_SYSTEM_ADD, &p, "system_add", NULL)) != STORE_OK)
    return rc;
  return store_pg_commit(c, "system_add");
}

static store_rc store_pg_system_add(store *base, const char *model_id,
                                    int64_t t_ms, int64_t epoch,
                                    const char *body, int64_t max_samples) {
  STORE_PG_CONN(base, c, "system_add");
  return store_pg_put(
      s_, c,
      store_pg_system_add_on(c, model_id, t_ms, epoch, body, max_samples));
}

typedef struct store_pg_system_ctx {
  store_system_cb cb;
  void *ud;
} store_pg_system_ctx;

static int store_pg_system_row(const PGresult *r, int i, void *ctx) {
  store_pg_system_ctx *x = ctx;
  return x->cb(x->ud, store_pg_int(r, i, 0), store_pg_int(r, i, 1),
               store_pg_int(r, i, 2), PQgetvalue(r, i, 3));
}

static store_rc store_pg_system_get(store *base, const char *model_id,
                                    int64_t after_seq, int limit,
                                    store_system_cb cb, void *ud) {
  store_pg_system_ctx x = {cb, ud};
  return store_pg_after(base, PG_SYSTEM_GET, model_id, after_seq, limit,
                        store_pg_system_row, &x, "system_get");
}

/* --------------------------------------------------------- open, close */

static void store_pg_close(store *base) {
  store_pg *s = (store_pg *)base;
  if (!s)
    return;
  pthread_mutex_lock(&s->group_mu);
  s->group_stopping = 1;
  int started = s->group_started;
  pthread_cond_signal(&s->group_cv);
  pthread_mutex_unlock(&s->group_mu);
  if (started)
    pthread_join(s->group_thread, NULL);
  for (int i = 0; s->conns && i < s->size; i++)
    if (s->conns[i].db)
      PQfinish(s->conns[i].db);
  free(s->conns);
  free(s->conninfo);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->freed);
  pthread_mutex_destroy(&s->group_mu);
  pthread_cond_destroy(&s->group_cv);
  pthread_cond_destroy(&s->waited_cv);
  free(s);
}

static const store_ops store_pg_ops = {
    .name = "postgresql",
    .close = store_pg_close,
    .key_add = store_pg_key_add,
    .key_find = store_pg_key_find,
    .key_list = store_pg_key_list,
    .key_revoke = store_pg_key_revoke,
    .key_get = store_pg_key_get,
    .model_add = store_pg_model_add,
    .model_get = store_pg_model_get,
    .model_check = store_pg_model_check,
    .model_list = store_pg_model_list,
    .model_update = store_pg_model_update,
    .model_delete = store_pg_model_delete,
    .model_reset = store_pg_model_reset,
    .metrics_put = store_pg_metrics_put,
    .metrics_put_async = store_pg_metrics_put_async,
    .metrics_get = store_pg_metrics_get,
    .checkpoint_add = store_pg_checkpoint_add,
    .checkpoints = store_pg_checkpoints,
    .blob_in_use = store_pg_blob_in_use,
    .heartbeat = store_pg_heartbeat,
    .dataset_add = store_pg_dataset_add,
    .dataset_get = store_pg_dataset_get,
    .dataset_list = store_pg_dataset_list,
    .dataset_update = store_pg_dataset_update,
    .dataset_delete = store_pg_dataset_delete,
    .dataset_set_file = store_pg_dataset_set_file,
    .dataset_models = store_pg_dataset_models,
    .session_add = store_pg_session_add,
    .session_find = store_pg_session_find,
    .session_drop = store_pg_session_drop,
    .events_add = store_pg_events_add,
    .secret_get = store_pg_secret_get,
    .project_ensure = store_pg_project_ensure,
    .project_find = store_pg_project_find,
    .project_get = store_pg_project_get,
    .model_set_trained = store_pg_model_set_trained,
    .project_list = store_pg_project_list,
    .project_update = store_pg_project_update,
    .project_delete = store_pg_project_delete,
    .run_find = store_pg_run_find,
    .run_add = store_pg_run_add,
    .run_models = store_pg_run_models,
    .doc_put = store_pg_doc_put,
    .doc_get = store_pg_doc_get,
    .console_add = store_pg_console_add,
    .console_get = store_pg_console_get,
    .system_add = store_pg_system_add,
    .system_get = store_pg_system_get,
};

store *store_pg_open(const char *conninfo, unsigned pool, char *err,
                     size_t errn) {
  char shown[512];
  store_pg_redact(conninfo, shown, sizeof shown);
  char *perr = NULL;
  PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
  if (!opts) {
    snprintf(err, errn, "--db %s: %s", shown, perr ? perr : "out of memory");
    for (char *p = err; *p; p++)
      if (*p == '\n')
        *p = p[1] ? ' ' : '\0';
    PQfreemem(perr);
    return NULL;
  }
  PQconninfoFree(opts);
  store_pg *s = calloc(1, sizeof *s);
  if (!s || !(s->conninfo = strdup(conninfo))) {
    free(s);
    snprintf(err, errn, "out of memory");
    return NULL;
  }
  s->base.ops = &store_pg_ops;
  snprintf(s->shown, sizeof s->shown, "%s", shown);
  s->size = pool ? (int)pool : STORE_PG_POOL_DEFAULT;
  prom_store_pool_size(s->size);
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->freed, NULL);
  pthread_mutex_init(&s->group_mu, NULL);
  pthread_cond_init(&s->group_cv, NULL);
  pthread_cond_init(&s->waited_cv, NULL);
  s->conns = calloc((size_t)s->size, sizeof *s->conns);
  if (!s->conns) {
    snprintf(err, errn, "out of memory");
    store_pg_close(&s->base);
    return NULL;
  }
  /* The first connection: proves the server answers, migrates. */
  store_pg_conn *c = &s->conns[0];
  c->db = store_pg_connect(s);
  if (!c->db || PQstatus(c->db) != CONNECTION_OK) {
    char msg[400];
    store_pg_message(c->db, msg, sizeof msg);
    snprintf(err, errn, "cannot connect to the database %s: %s", shown, msg);
    store_pg_close(&s->base);
    return NULL;
  }
  char merr[512];
  if (schema_pg_migrate(c->db, merr, sizeof merr) < 0) {
    snprintf(err, errn, "database %s: %s", shown, merr);
    store_pg_close(&s->base);
    return NULL;
  }
  if (store_pg_prepare(c, merr, sizeof merr) < 0) {
    snprintf(err, errn, "database %s: %s", shown, merr);
    store_pg_close(&s->base);
    return NULL;
  }
  return &s->base;
}
