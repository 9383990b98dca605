/* Schema migrations: numbered files from sql/, compiled into the binary, each applied in its
 * own transaction and recorded in schema_migrations. Blocking libpq: only for the
 * `raised migrate` command and start-up checks, never on a worker thread. */
#ifndef RAISE_MIGRATE_H
#define RAISE_MIGRATE_H

#include <stdio.h>

struct migration {
    int version;
    const char *name;
    const char *sql;
};

extern const struct migration migrations[];
extern const int migrations_count;

/* The schema version this binary expects. */
int migrate_latest(void);
/* Apply every pending migration; progress lines on out. 0 ok, -1 + *cause (owned). */
int migrate_run(const char *conninfo, FILE *out, char **cause);
/* 0 if the database is exactly at migrate_latest(); -1 + *cause saying what to do. */
int migrate_check(const char *conninfo, char **cause);

#endif
