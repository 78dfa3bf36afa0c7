/*
 * chubd_proc.h - run the real chubd binary from a test.
 *
 * Tests talk to the server the user would run, not to a mock: this starts
 * the chubd program on a free loopback port (127.0.0.1:0, the port read back
 * from --port-file) with a fresh temporary data directory, creates an API
 * key with `chubd --data DIR keys create`, and stops, kills or restarts it
 * on the same directory. Every started process is remembered so that an
 * atexit handler stops whatever a failing test left running, and the child
 * asks the kernel to SIGKILL it if the test process dies first.
 *
 * With CHUB_TEST_PG set (a throwaway cluster's socket directory, see
 * tests/support/pg.sh), each data directory gets a database of its own on
 * that cluster and chubd is run with --db pointing at it.
 *
 * Not thread-safe: a test drives its chubd from one thread.
 */
#ifndef CHUBD_PROC_H
#define CHUBD_PROC_H

#include <stddef.h>
#include <sys/types.h>

typedef struct chubd_proc chubd_proc;

/* Starts `chubd_bin --listen 127.0.0.1:0 --data DIR --port-file FILE
 * extra_args...` and waits (at most 10 s) until it has written its port.
 * DIR is data_dir, or a new temporary directory when data_dir is NULL (then
 * removed by chubd_proc_free). extra_args is a NULL-terminated list or NULL.
 * Before starting the server it creates one API key for owner "owner",
 * available from chubd_proc_key(). Returns NULL, after printing chubd's
 * stderr, when chubd fails to start. */
chubd_proc *chubd_proc_start(const char *chubd_bin, const char *data_dir,
                             const char *const extra_args[]);

/* As chubd_proc_start, listening on `host` (an IPv4 address, e.g. one in a
 * test's private network namespace) instead of 127.0.0.1. */
chubd_proc *chubd_proc_start_on(const char *chubd_bin, const char *host,
                                const char *data_dir,
                                const char *const extra_args[]);

/* Runs `chubd --data DIR keys create NAME` and returns the key it printed
 * (malloc'd, without the newline; the caller frees), or NULL on failure.
 * Works while the server runs. */
char *chubd_proc_create_key(chubd_proc *p, const char *owner);

/* Runs `chubd --data DIR ARGS...` (args NULL-terminated), bounded to 10 s.
 * When out is not NULL, *out receives its stdout (malloc'd, NUL-terminated).
 * stderr goes to the log file. Returns the exit status, or -1 when it could
 * not run or was killed. */
int chubd_proc_cli(chubd_proc *p, const char *const args[], char **out);

/* SIGTERM, wait at most 10 s, then SIGKILL. Returns chubd's exit status
 * (0 for a clean drain), 128+signal if it died of a signal, -1 if it was
 * not running. */
int chubd_proc_stop(chubd_proc *p);

/* Sends `sig` (SIGINT, SIGTERM, ...), then as chubd_proc_stop: waits at
 * most 10 s, then SIGKILL. Returns the exit status as chubd_proc_stop. */
int chubd_proc_signal(chubd_proc *p, int sig);

/* SIGKILL and reap: the crash case. */
void chubd_proc_kill9(chubd_proc *p);

/* Stops chubd if it runs, then starts it again on the same data directory
 * with the same arguments. The port usually changes. Returns 0 on success. */
int chubd_proc_restart(chubd_proc *p);

/* Stops chubd if it runs, removes the temporary directories this created
 * (unless CHUB_KEEP_TMP is set; then prints where they are) and frees p.
 * NULL is a no-op. */
void chubd_proc_free(chubd_proc *p);

int chubd_proc_port(const chubd_proc *p);
pid_t chubd_proc_pid(const chubd_proc *p);            /* 0 when not running */
const char *chubd_proc_base_url(const chubd_proc *p); /* http://HOST:N */
const char *chubd_proc_key(const chubd_proc *p);      /* owner "owner" */
const char *chubd_proc_data_dir(const chubd_proc *p);
const char *chubd_proc_log_path(const chubd_proc *p); /* chubd's stderr */

/* Prints the last `max_bytes` of chubd's stderr log to stderr, for a
 * failing test's output. */
void chubd_proc_dump_log(const chubd_proc *p, size_t max_bytes);

/* The socket directory of the test cluster (CHUB_TEST_PG), or NULL when
 * tests run on SQLite. */
const char *chubd_proc_pg_dir(void);

/* The --db chubd runs with (libpq key=value), or NULL on SQLite. A
 * --db VALUE in extra_args is taken as is (two chubd on one database). */
const char *chubd_proc_db(const chubd_proc *p);

/* On PostgreSQL: the first column of the first row sql answers on p's
 * database, malloc'd; NULL on SQLite or on an error (printed). */
char *chubd_proc_db_query(const chubd_proc *p, const char *sql);

/* Removes a directory tree (no symlink following): th_rmtree of
 * th_tmpdir.h, kept under this name for its callers. Returns 0 on
 * success. */
int chubd_proc_rmtree(const char *path);

#endif
