#include "cli.h"

#include "audit.h"
#include "password.h"
#include "sequencer.h"
#include "xmalloc.h"

#include <ctype.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

static int valid_username(const char *u)
{
    size_t n = strlen(u);
    if (n < 3 || n > 64 || !(islower((unsigned char)u[0]) || isdigit((unsigned char)u[0])))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!islower((unsigned char)u[i]) && !isdigit((unsigned char)u[i]) && !strchr("._-", u[i]))
            return 0;
    return 1;
}

/* One statement: the agency (found by name or created) and the admin, atomically. */
/* clang-format off */
static const char create_sql[] =
    "WITH found AS (SELECT id FROM agencies WHERE lower(name) = lower($2)), "
    "made AS (INSERT INTO agencies (name, kind) SELECT $2, 'other' "
    "         WHERE NOT EXISTS (SELECT 1 FROM found) RETURNING id), "
    "agency AS (SELECT id FROM found UNION ALL SELECT id FROM made), "
    "u AS (INSERT INTO users (username, display_name, agency_id, role, password_hash) "
    "      SELECT $1, 'Administrator', id, 'admin', $3 FROM agency RETURNING id), "
        AUDIT_CTE("$4", "'user.create'", "'ok'", "'user'", "u.id::text", "NULL", "NULL", ", u")
    " SELECT id FROM u";
/* clang-format on */

/* Who did it: the operator at the console. */
static const char cli_context[] = "{\"route\":\"raised create-admin\",\"client_addr\":\"local "
                                  "console\",\"purpose\":\"first administrator account\"}";

int cli_create_admin(const char *conninfo, const char *username, const char *agency_name, FILE *out,
                     char **cause)
{
    if (!valid_username(username)) {
        *cause = xstrdup("create-admin: --username must be 3-64 characters of a-z, 0-9, '.', "
                         "'_' or '-', starting with a letter or digit");
        return -1;
    }
    if (agency_name[0] == '\0' || strlen(agency_name) > 200) {
        *cause = xstrdup("create-admin: --agency-name must be 1-200 characters");
        return -1;
    }
    char *password = password_generate();
    char *hash = password ? password_hash(password) : NULL;
    if (hash == NULL) {
        *cause = xstrdup("create-admin: cannot hash the password");
        free(password);
        return -1;
    }
    const char *keys[] = {"dbname", "connect_timeout", NULL};
    const char *vals[] = {conninfo, "10", NULL};
    PGconn *pg = PQconnectdbParams(keys, vals, 1);
    int rc = -1;
    if (PQstatus(pg) != CONNECTION_OK) {
        const char *m = PQerrorMessage(pg);
        *cause = xasprintf("database: cannot connect: %.*s", (int)strcspn(m, "\n"), m);
        goto done;
    }
    const char *params[] = {username, agency_name, hash, cli_context};
    PGresult *r = PQexecParams(pg, create_sql, 4, NULL, params, NULL, NULL, 0);
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        fprintf(out, "username: %s\npassword: %s\n", username, password);
        rc = 0;
        /* its audit row is queued (sql/007): chain it now rather than when a server runs */
        char *why = NULL;
        if (sequencer_drain(pg, &why) < 0) {
            fprintf(stderr, "create-admin: the audit row stays queued until raised runs (%s)\n",
                    why);
            free(why);
        }
    } else if (state != NULL && strcmp(state, "23505") == 0) {
        *cause = xasprintf("create-admin: user '%s' already exists", username);
    } else {
        const char *m = PQresultErrorMessage(r);
        *cause = xasprintf("create-admin: %.*s", (int)strcspn(m, "\n"), m);
    }
    PQclear(r);
done:
    PQfinish(pg);
    explicit_bzero(password, strlen(password));
    free(password);
    free(hash);
    return rc;
}
