/*
 * store.h - what chubd keeps, behind a narrow interface.
 *
 * Handlers see only this: an opaque store whose operations are a table of
 * function pointers (store_ops), each one a whole unit of work (one
 * transaction). store_sqlite.c (the default, one file in the data
 * directory) and store_pg.c (chubd --db, one database several chubd share)
 * fill the same table; no handler knows which one it talks to. Every
 * operation may be called from any thread at once, and from any number of
 * processes on one database.
 *
 * Times are milliseconds since the epoch; JSON parts of a model are kept as
 * JSON text so that the store does not need to know their shape.
 */
#ifndef CHUBD_STORE_H
#define CHUBD_STORE_H

#include <stddef.h>
#include <stdint.h>

/* One epoch of metrics to store: its number and the JSON object of its
 * values, as text. */
typedef struct store_epoch {
  int64_t epoch;
  char *json;
} store_epoch;

typedef enum store_rc {
  STORE_OK = 0,
  STORE_NOTFOUND,
  STORE_CONFLICT,
  STORE_BUSY,  /* the database stayed locked past the busy timeout */
  STORE_FULL,  /* the disk is full; nothing was written */
  STORE_LIMIT, /* a quota of the operation was reached */
  STORE_ERROR, /* anything else; logged by the store */
} store_rc;

#define STORE_OWNER_MAX 64
#define STORE_SUFFIX_MAX 16
#define STORE_SESSIONS_PER_KEY 64
#define STORE_PROJECT_NAME_MAX 128

typedef struct store_key {
  int64_t id;
  char owner[STORE_OWNER_MAX + 1];
  char prefix[8];
  int64_t created_ms;
  int64_t revoked_ms; /* 0 when in use */
} store_key;

typedef struct store_model {
  char id[21];
  char owner[STORE_OWNER_MAX + 1];
  char *meta, *config, *dataset, *lineage; /* JSON text, malloc'd */
  char status[16];                         /* new, training, trained */
  int64_t created_ms, updated_ms;
  int64_t last_seen_ms; /* last metrics, checkpoint or heartbeat */
  int64_t heartbeat_ms; /* 0 before the first heartbeat */
  char agent_id[65];
  char agent_name[129];
  int64_t metrics_count;
  int64_t last_epoch;  /* -1 without metrics */
  char dataset_id[21]; /* the dataset it was created from, or "" */
  /* The project of a Platform run (not deleted), or "" for either. */
  char project_id[21];
  char project_name[STORE_PROJECT_NAME_MAX + 1];
} store_model;

/* A dataset: a zip of images and labels a model trains on. */
typedef struct store_dataset {
  char id[21];
  char owner[STORE_OWNER_MAX + 1];
  char *meta;     /* JSON text, malloc'd */
  char status[8]; /* new (no file yet), ready */
  int64_t size;
  char sha256[65];
  char filename[129]; /* as uploaded */
  int64_t files;      /* entries in the zip */
  int64_t created_ms, updated_ms;
} store_dataset;

typedef struct store_checkpoint {
  int64_t epoch;
  int final;
  int is_best;
  int has_map;
  double map;
  int64_t size;
  char sha256[65];
  char suffix[STORE_SUFFIX_MAX + 1]; /* the uploaded file's, e.g. ".pt" */
  int64_t created_ms;
} store_checkpoint;

/* A project (Ultralytics Platform's `project=`): a named group of an
 * owner's models, found by name. */
typedef struct store_project {
  char id[21];
  char owner[STORE_OWNER_MAX + 1];
  char name[STORE_PROJECT_NAME_MAX + 1];
  char *meta; /* JSON text, malloc'd */
  int64_t created_ms, updated_ms;
  int64_t models; /* Platform runs recorded under it */
} store_project;

typedef struct store store;

typedef int (*store_model_cb)(void *ud, const store_model *m);
typedef int (*store_dataset_cb)(void *ud, const store_dataset *d);
typedef int (*store_metrics_cb)(void *ud, int64_t epoch, const char *json);
typedef int (*store_key_cb)(void *ud, const store_key *k);
typedef int (*store_project_cb)(void *ud, const store_project *p);
typedef int (*store_console_cb)(void *ud, int64_t seq, const char *chunk_id,
                                const char *content, int64_t lines);
/* One sample of the machine's load: seq orders a model's samples, epoch
 * is -1 for a sample taken by time (a heartbeat), body is JSON text. */
typedef int (*store_system_cb)(void *ud, int64_t seq, int64_t t_ms,
                               int64_t epoch, const char *body);
/* The answer to an operation started with an _async call; called once, on
 * a thread of the store's. */
typedef void (*store_done_cb)(void *ud, store_rc rc);

typedef struct store_ops {
  const char *name; /* "sqlite", "postgresql" */
  void (*close)(store *s);

  store_rc (*key_add)(store *s, const char *owner, const char *prefix,
                      const unsigned char hash[32], int64_t now);
  /* The unrevoked key with this prefix and hash (compared in constant
   * time). */
  store_rc (*key_find)(store *s, const char *prefix,
                       const unsigned char hash[32], store_key *out);
  store_rc (*key_list)(store *s, store_key_cb cb, void *ud);
  /* The key with this id, revoked or not (revoked_ms says). */
  store_rc (*key_get)(store *s, int64_t id, store_key *out);
  /* Revokes keys whose prefix or owner name is `match`; *count of them. */
  store_rc (*key_revoke)(store *s, const char *match, int64_t now, int *count);

  store_rc (*model_add)(store *s, const store_model *m);
  /* owner NULL: any owner. Soft-deleted models are not found. */
  store_rc (*model_get)(store *s, const char *id, const char *owner,
                        store_model *out);
  /* STORE_OK when the model exists (and is owner's, unless owner is
   * NULL); cheaper than model_get, for the hot paths. */
  store_rc (*model_check)(store *s, const char *id, const char *owner);
  /* Newest first, after model `after` (NULL: from the newest), at most
   * limit; *total counts all of the owner's models, *more says whether
   * models follow the last one given. */
  store_rc (*model_list)(store *s, const char *owner, const char *after,
                         int limit, store_model_cb cb, void *ud, int64_t *total,
                         int *more);
  /* meta/config: JSON text to store, or NULL to keep. */
  store_rc (*model_update)(store *s, const char *id, const char *meta,
                           const char *config, int64_t now);
  store_rc (*model_delete)(store *s, const char *id, int hard);
  /* Drops owner's model's metrics, checkpoints, agent, documents and
   * console and sets it back to new, in one transaction (owner NULL:
   * anyone's); a Platform run keeps its model. */
  store_rc (*model_reset)(store *s, const char *id, const char *owner,
                          int64_t now);

  /* Stores (replaces) each epoch of owner's model (owner NULL: anyone's),
   * moves new -> training; one transaction, STORE_NOTFOUND for no model. */
  store_rc (*metrics_put)(store *s, const char *id, const char *owner,
                          const store_epoch *e, size_t n, int64_t now);
  /* The same, answered later: STORE_OK means done(ud, rc) will be called
   * with the result once it is committed (or failed), from another thread;
   * id, owner and e must stay valid until then. Anything else: refused at
   * once, done is never called. */
  store_rc (*metrics_put_async)(store *s, const char *id, const char *owner,
                                const store_epoch *e, size_t n, int64_t now,
                                store_done_cb done, void *ud);
  /* Epochs after `after` (-1: from the first), in order, at most limit:
   * the history is read a page at a time, never whole. */
  store_rc (*metrics_get)(store *s, const char *id, int64_t after, int limit,
                          store_metrics_cb cb, void *ud);

  /* Records a stored blob as a checkpoint. final: model becomes trained, or
   * STORE_CONFLICT when it already is. */
  store_rc (*checkpoint_add)(store *s, const char *id,
                             const store_checkpoint *c);
  /* Newest first; *out malloc'd. */
  store_rc (*checkpoints)(store *s, const char *id, store_checkpoint **out,
                          size_t *n);
  store_rc (*blob_in_use)(store *s, const char *sha256, int *in_use);

  store_rc (*heartbeat)(store *s, const char *id, const char *agent_id,
                        const char *agent_name, int64_t now);
  /* Datasets, as models: owner NULL means anyone's; soft-deleted ones
   * are not found. */
  store_rc (*dataset_add)(store *s, const store_dataset *d);
  store_rc (*dataset_get)(store *s, const char *id, const char *owner,
                          store_dataset *out);
  store_rc (*dataset_list)(store *s, const char *owner, const char *after,
                           int limit, store_dataset_cb cb, void *ud,
                           int64_t *total, int *more);
  store_rc (*dataset_update)(store *s, const char *id, const char *meta,
                             int64_t now);
  store_rc (*dataset_delete)(store *s, const char *id, int hard);
  /* Makes a stored blob the dataset's file (status ready); the file it
   * had before, if any, goes to old_sha256 ("" when none). */
  store_rc (*dataset_set_file)(store *s, const store_dataset *d,
                               char old_sha256[65]);
  /* The models created from the dataset, newest first, at most limit. */
  store_rc (*dataset_models)(store *s, const char *id, int limit,
                             store_model_cb cb, void *ud);

  /* Page sessions, by the SHA-256 of their token: add one for a key
   * (which keeps its STORE_SESSIONS_PER_KEY newest);
   * find gives the key of a session that has not expired and whose key is
   * not revoked (and drops expired sessions now and then); drop ends one. */
  store_rc (*session_add)(store *s, const unsigned char hash[32],
                          int64_t key_id, int64_t now, int64_t expires);
  store_rc (*session_find)(store *s, const unsigned char hash[32], int64_t now,
                           store_key *out);
  store_rc (*session_drop)(store *s, const unsigned char hash[32]);

  /* events: the validated JSON array, stored one row per event, unless
   * client_id would then have sent more than per_day since the start of
   * the UTC day (STORE_LIMIT, nothing stored). */
  store_rc (*events_add)(store *s, const char *client_id, const char *events,
                         int64_t now, int64_t per_day);

  /* The secret called name, len bytes, shared by every process on the
   * database: stored once, the first time with init's len bytes (an
   * insert that does nothing when one is there), then read back, so all
   * agree whoever came first. STORE_ERROR when the stored one is not len
   * bytes long. */
  store_rc (*secret_get)(store *s, const char *name, const unsigned char *init,
                         unsigned char *out, size_t len);

  /* Projects, as datasets: owner NULL means anyone's; soft-deleted ones
   * are not found. ensure finds owner's project called name, or adds it
   * with new_id; its id goes to id. */
  store_rc (*project_ensure)(store *s, const char *owner, const char *name,
                             const char *new_id, int64_t now, char id[21]);
  /* owner's project called name, without adding it: STORE_NOTFOUND. */
  store_rc (*project_find)(store *s, const char *owner, const char *name,
                           char id[21]);
  store_rc (*project_get)(store *s, const char *id, const char *owner,
                          store_project *out);
  store_rc (*project_list)(store *s, const char *owner, const char *after,
                           int limit, store_project_cb cb, void *ud,
                           int64_t *total, int *more);
  /* name and meta: NULL to keep. STORE_CONFLICT: owner has another
   * project of that name. */
  store_rc (*project_update)(store *s, const char *id, const char *owner,
                             const char *name, const char *meta, int64_t now);
  store_rc (*project_delete)(store *s, const char *id, const char *owner,
                             int64_t now);

  /* Sets the model trained (a Platform run that ended), whatever its
   * checkpoints. */
  store_rc (*model_set_trained)(store *s, const char *id, int64_t now);
  /* Platform runs: the model trained as run `name` of owner's project
   * (STORE_NOTFOUND when none, or when that model was deleted). add
   * records model_id as the run unless a model not deleted already is
   * (then nothing changes: two starts of one run racing, the first wins;
   * run_find says which). */
  store_rc (*run_find)(store *s, const char *owner, const char *project_id,
                       const char *name, char model_id[21]);
  store_rc (*run_add)(store *s, const char *model_id, const char *owner,
                      const char *project_id, const char *name);
  /* Owner's models of a project, newest first, at most limit. */
  store_rc (*run_models)(store *s, const char *project_id, const char *owner,
                         int limit, store_model_cb cb, void *ud);

  /* A JSON document kept with a model under a name (replaced when put
   * again); get gives it malloc'd in *body, STORE_NOTFOUND when none. */
  store_rc (*doc_put)(store *s, const char *model_id, const char *name,
                      const char *body);
  store_rc (*doc_get)(store *s, const char *model_id, const char *name,
                      char **body);

  /* Appends a console chunk to a model's output unless one with this
   * chunk_id is there (STORE_CONFLICT, nothing stored) or the model's
   * chunks would then hold more than max_bytes (STORE_LIMIT, nothing
   * stored). */
  store_rc (*console_add)(store *s, const char *model_id, const char *chunk_id,
                          const char *content, int64_t lines,
                          int64_t max_bytes);
  /* The model's chunks in the order they came, those after seq after_seq
   * (0: from the first), at most limit of them. */
  store_rc (*console_get)(store *s, const char *model_id, int64_t after_seq,
                          int limit, store_console_cb cb, void *ud);

  /* Adds a sample of the machine's load to a model: with epoch >= 0 it
   * replaces the sample of that epoch (a retried epoch), and either way
   * it takes the next seq. STORE_LIMIT, nothing stored, once the model's
   * seq has reached max_samples. */
  store_rc (*system_add)(store *s, const char *model_id, int64_t t_ms,
                         int64_t epoch, const char *body, int64_t max_samples);
  /* The model's samples after seq after_seq, in order, at most limit. */
  store_rc (*system_get)(store *s, const char *model_id, int64_t after_seq,
                         int limit, store_system_cb cb, void *ud);
} store_ops;

struct store {
  const store_ops *ops;
};

/* Opens (creating and migrating) the SQLite store in dir/chubd.db. NULL on
 * failure with a message in err. */
store *store_sqlite_open(const char *dir, char *err, size_t errn);

/* Adds n models to a SQLite store in one transaction, with the very rows
 * model_add writes: how bench/scale fills a hub with many models fast. */
store_rc store_sqlite_add_models(store *s, const store_model *m, size_t n);

/* Opens (migrating) the PostgreSQL store at conninfo (a postgresql:// or
 * postgres:// URL, or libpq's key=value string) with a pool of at most
 * pool connections (0: 8). NULL on failure with a message in err that
 * names the database without its password. */
store *store_pg_open(const char *conninfo, unsigned pool, char *err,
                     size_t errn);

/* conninfo as it may be shown: without the password it may hold (a URL's
 * user:password@, or password=... in a query or a key=value string). */
void store_pg_redact(const char *conninfo, char *out, size_t n);

void store_model_free(store_model *m);
void store_dataset_free(store_dataset *d);
void store_project_free(store_project *p);

#endif
