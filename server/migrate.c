#include "migrate.h"

#include "xmalloc.h"

#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#define MIGRATE_LOCK_KEY "727274001" /* pg_advisory_lock key: one migrator at a time */

int migrate_latest(void)
{
    return migrations_count > 0 ? migrations[migrations_count - 1].version : 0;
}

static PGconn *connect_db(const char *conninfo, char **cause)
{
    const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
    const char *vals[] = {conninfo, "10", "raised-migrate", NULL};
    PGconn *pg = PQconnectdbParams(keys, vals, 1);
    if (pg == NULL || PQstatus(pg) != CONNECTION_OK) {
        const char *m = pg ? PQerrorMessage(pg) : "out of memory";
        *cause = xasprintf("database: cannot connect: %.*s", (int)strcspn(m, "\n"), m);
        PQfinish(pg);
        return NULL;
    }
    return pg;
}

/* Run one statement; -1 + *cause on error. */
static int exec(PGconn *pg, const char *sql, int nparams, const char *const *params, PGresult **out,
                char **cause)
{
    PGresult *r = PQexecParams(pg, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        const char *m = PQresultErrorMessage(r);
        *cause = xasprintf("database: %.*s", (int)strcspn(m, "\n"), m);
        PQclear(r);
        return -1;
    }
    if (out != NULL)
        *out = r;
    else
        PQclear(r);
    return 0;
}

/* Current version: 0 if the table is missing or empty; -1 on error. */
static int current_version(PGconn *pg, char **cause)
{
    PGresult *r;
    if (exec(pg, "SELECT to_regclass('schema_migrations') IS NOT NULL", 0, NULL, &r, cause) < 0)
        return -1;
    int exists = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (!exists)
        return 0;
    if (exec(pg, "SELECT coalesce(max(version), 0) FROM schema_migrations", 0, NULL, &r, cause) < 0)
        return -1;
    int v = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

static int apply(PGconn *pg, const struct migration *m, char **cause)
{
    char ver[16];
    snprintf(ver, sizeof(ver), "%d", m->version);
    const char *params[] = {ver, m->name};
    char *why = NULL;
    if (exec(pg, "BEGIN", 0, NULL, NULL, cause) < 0)
        return -1;
    PGresult *r = PQexec(pg, m->sql); /* a file holds several statements: simple protocol */
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        const char *msg = PQresultErrorMessage(r);
        *cause = xasprintf("migration %s failed: %.*s", m->name, (int)strcspn(msg, "\n"), msg);
        PQclear(r);
        exec(pg, "ROLLBACK", 0, NULL, NULL, &why);
        free(why);
        return -1;
    }
    PQclear(r);
    if (exec(pg, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2, params, NULL,
             cause) < 0 ||
        exec(pg, "COMMIT", 0, NULL, NULL, cause) < 0) {
        exec(pg, "ROLLBACK", 0, NULL, NULL, &why);
        free(why);
        return -1;
    }
    return 0;
}

int migrate_run(const char *conninfo, FILE *out, char **cause)
{
    PGconn *pg = connect_db(conninfo, cause);
    if (pg == NULL)
        return -1;
    int rc = -1, applied = 0;
    if (exec(pg, "SET client_min_messages = warning", 0, NULL, NULL, cause) < 0 ||
        exec(pg, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", 0, NULL, NULL, cause) < 0 ||
        exec(pg,
             "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
             "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
             0, NULL, NULL, cause) < 0)
        goto done;
    int current = current_version(pg, cause);
    if (current < 0)
        goto done;
    if (current > migrate_latest()) {
        *cause = xasprintf("database schema is at version %d, newer than this raised knows (%d): "
                           "upgrade raised",
                           current, migrate_latest());
        goto done;
    }
    for (int i = 0; i < migrations_count; i++) {
        if (migrations[i].version <= current)
            continue;
        if (apply(pg, &migrations[i], cause) < 0)
            goto done;
        fprintf(out, "applied %s\n", migrations[i].name);
        applied++;
    }
    fprintf(out, "schema at version %d (%d applied)\n", migrate_latest(), applied);
    rc = 0;
done:
    PQfinish(pg); /* closing the session releases the advisory lock */
    return rc;
}

int migrate_check(const char *conninfo, char **cause)
{
    PGconn *pg = connect_db(conninfo, cause);
    if (pg == NULL)
        return -1;
    int v = current_version(pg, cause);
    PQfinish(pg);
    if (v < 0)
        return -1;
    if (v < migrate_latest()) {
        *cause = xasprintf("database schema is at version %d but this raised needs %d: run "
                           "`raised migrate` first",
                           v, migrate_latest());
        return -1;
    }
    if (v > migrate_latest()) {
        *cause = xasprintf("database schema is at version %d, newer than this raised knows (%d): "
                           "upgrade raised",
                           v, migrate_latest());
        return -1;
    }
    return 0;
}
