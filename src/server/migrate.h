/*
 * migrate.h - `chubd migrate`: a SQLite hub copied into PostgreSQL.
 */
#ifndef CHUBD_MIGRATE_H
#define CHUBD_MIGRATE_H

/* chubd migrate --from DATA_DIR --to URL (argv[0] is "migrate"; --to
 * defaults to db_default, chubd's --db, when given). Prints the counts of
 * every table on both sides. 0 when all match, 1 on a failure (said), 2 on
 * a usage error. */
int migrate_command(const char *db_default, int argc, char **argv);

#endif
