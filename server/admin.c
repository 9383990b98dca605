/* Accounts: agencies, hubs, users, client certificates. Admins change them; every change
 * and its audit row are one statement. Constraint violations become 409/422 naming the field. */
#include "audit.h"
#include "resource.h"
#include "auth.h"
#include "http.h"
#include "json.h"
#include "password.h"
#include "problem.h"
#include "routes.h"
#include "util.h"
#include "xmalloc.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- agencies */

static const struct json_field agency_fields[] = {
    {"name", JK_STRING, 1, 1, 200, NULL},
    {"kind", JK_ENUM, 1, 0, 0, agency_kinds},
};

#define AGENCY_COLS                                                                                \
    "id, name, kind, to_char(created_at AT TIME ZONE 'UTC', "                                      \
    "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS created_at"

/* clang-format off */
static const char agency_insert_sql[] =
    "WITH g AS (INSERT INTO agencies (name, kind) VALUES ($1, $2) RETURNING *), "
        AUDIT_CTE("$3", "'agency.create'", "'ok'", "'agency'", "g.id::text", "NULL", "NULL", ", g")
    " SELECT " AGENCY_COLS " FROM g";
/* clang-format on */

void agencies_create(struct http_req *r)
{
    json_object *o = res_read_body(r, agency_fields, 2);
    if (o == NULL)
        return;
    char *ctx = audit_context(r);
    const char *params[] = {json_str(o, "name"), json_str(o, "kind"), ctx};
    http_query(r, agency_insert_sql, 3, params, res_created);
    free(ctx);
    json_object_put(o);
}

void agencies_list(struct http_req *r)
{
    res_run_list(r,
                 "SELECT id, name, kind, to_char(created_at AT TIME ZONE 'UTC', "
                 "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS created_at, name AS _cursor FROM agencies "
                 "WHERE $1::text IS NULL OR name > $1 ORDER BY name LIMIT $2::int + 1");
}

/* ---- hubs */

static const struct json_field hub_fields[] = {
    {"name", JK_STRING, 1, 1, 200, NULL},
    {"local_authority", JK_STRING, 1, 1, 200, NULL},
};

/* clang-format off */
static const char hub_insert_sql[] =
    "WITH h AS (INSERT INTO hubs (name, local_authority) VALUES ($1, $2) RETURNING *), "
        AUDIT_CTE("$3", "'hub.create'", "'ok'", "'hub'", "h.id::text", "NULL", "h.id", ", h")
    " SELECT id, name, local_authority, time_zone FROM h";
/* clang-format on */

void hubs_create(struct http_req *r)
{
    json_object *o = res_read_body(r, hub_fields, 2);
    if (o == NULL)
        return;
    char *ctx = audit_context(r);
    const char *params[] = {json_str(o, "name"), json_str(o, "local_authority"), ctx};
    http_query(r, hub_insert_sql, 3, params, res_created);
    free(ctx);
    json_object_put(o);
}

void hubs_list(struct http_req *r)
{
    res_run_list(r, "SELECT id, name, local_authority, time_zone, name AS _cursor FROM hubs "
                    "WHERE $1::text IS NULL OR name > $1 ORDER BY name LIMIT $2::int + 1");
}

/* ---- users */

static const struct json_field user_fields[] = {
    {"username", JK_STRING, 1, 3, 64, NULL},
    {"display_name", JK_STRING, 1, 1, 200, NULL},
    {"agency_id", JK_UUID, 1, 0, 0, NULL},
    {"role", JK_ENUM, 1, 0, 0, role_names},
    {"password", JK_STRING, 1, PASSWORD_MIN_LENGTH, 1024, NULL},
    {"hub_ids", JK_UUID_ARRAY, 0, 0, 50, NULL},
};

static const struct json_field user_patch_fields[] = {
    {"display_name", JK_STRING, 0, 1, 200, NULL},
    {"role", JK_ENUM, 0, 0, 0, role_names},
    {"password", JK_STRING, 0, PASSWORD_MIN_LENGTH, 1024, NULL},
    {"active", JK_BOOL, 0, 0, 0, NULL},
    {"hub_ids", JK_UUID_ARRAY, 0, 0, 50, NULL},
};

/* clang-format off */
#define USER_COLS                                                                                  \
    "u.id, u.username, u.display_name, u.agency_id, u.role, u.active, "                            \
    AUTH_HUB_LINKS("u") " AS hub_ids"
/* clang-format on */

/* clang-format off */
static const char user_insert_sql[] =
    "WITH u AS (INSERT INTO users (username, display_name, agency_id, role, password_hash) "
    "           VALUES ($1, $2, $3, $4, $5) RETURNING *), "
    "m AS (INSERT INTO hub_managers (hub_id, user_id) SELECT unnest($6::uuid[]), u.id FROM u "
    "      RETURNING hub_id), "
        AUDIT_CTE("$7", "'user.create'", "'ok'", "'user'", "u.id::text", "NULL", "NULL", ", u")
    " SELECT u.id, u.username, u.display_name, u.agency_id, u.role, u.active, "
    "       coalesce((SELECT array_agg(hub_id ORDER BY hub_id) FROM m), '{}') AS hub_ids FROM u";
/* clang-format on */

/* Work for a helper thread: hash a password. */
struct hash_job {
    char *password;  /* owned; wiped */
    char *hash;      /* owned; result */
    char *params[7]; /* owned strings for the statement */
    int nparams;
    const char *sql;
    struct http_req *r;
};

static void hash_job_free(void *p)
{
    struct hash_job *j = p;
    if (j->password != NULL)
        explicit_bzero(j->password, strlen(j->password));
    free(j->password);
    free(j->hash);
    for (int i = 0; i < j->nparams; i++)
        free(j->params[i]);
    free(j);
}

static void hash_run(void *p)
{
    struct hash_job *j = p;
    j->hash = password_hash(j->password);
}

static void user_patched(struct http_req *r, enum db_status st, PGresult *res);

static void hash_done(void *p)
{
    struct hash_job *j = p;
    struct http_req *r = j->r;
    if (j->hash == NULL) {
        hash_job_free(j);
        http_reply_error(r, 500, "cannot hash the password");
        return;
    }
    for (int i = 0; i < j->nparams; i++)
        if (j->params[i] != NULL && strcmp(j->params[i], "\x01hash") == 0) {
            free(j->params[i]);
            j->params[i] = xstrdup(j->hash);
        }
    if (j->sql == user_insert_sql)
        http_query(r, j->sql, j->nparams, (const char *const *)j->params, res_created);
    else
        res_query_kept(r, j->sql, j->nparams, (const char *const *)j->params, user_patched);
    hash_job_free(j);
}

void users_create(struct http_req *r)
{
    json_object *o = res_read_body(r, user_fields, sizeof(user_fields) / sizeof(user_fields[0]));
    if (o == NULL)
        return;
    if (json_has(o, "hub_ids") && strcmp(json_str(o, "role"), "hub_manager") != 0) {
        struct problem *p = problem_new(422, "the request has invalid fields");
        problem_add_field(p, "hub_ids", "only hub managers are linked to hubs");
        json_object_put(o);
        http_reply_problem(r, p);
        return;
    }
    struct hash_job *j = xcalloc(1, sizeof(*j));
    j->r = r;
    j->sql = user_insert_sql;
    j->password = xstrdup(json_str(o, "password"));
    j->nparams = 7;
    j->params[0] = xstrdup(json_str(o, "username"));
    j->params[1] = xstrdup(json_str(o, "display_name"));
    j->params[2] = xstrdup(json_str(o, "agency_id"));
    j->params[3] = xstrdup(json_str(o, "role"));
    j->params[4] = xstrdup("\x01hash");
    j->params[5] = json_uuid_array_literal(o, "hub_ids");
    if (j->params[5] == NULL)
        j->params[5] = xstrdup("{}");
    j->params[6] = audit_context(r);
    json_object_put(o);
    http_work(r, hash_run, hash_done, j, hash_job_free);
}

void users_list(struct http_req *r)
{
    res_run_list(r,
                 "SELECT " USER_COLS
                 ", u.username AS _cursor FROM users u WHERE $1::text IS NULL OR u.username > $1 "
                 "ORDER BY u.username LIMIT $2::int + 1");
}

/* Deactivating or a new password revokes every session of the user in the same statement;
 * every change queues an account.changed event, on which the user's open streams re-read
 * their rights at once (stream.c). The update takes the row only in the version the
 * statement read (xmin), so that two PATCHes at once cannot merge their hub links (as the
 * subjects' PATCH explains); otherwise it writes nothing and runs again (user_patched). */
/* clang-format off */
static const char user_patch_sql[] =
    "WITH target AS (SELECT id, xmin AS version FROM users WHERE id = $1), "
    "u AS (UPDATE users SET display_name = coalesce($2, display_name), "
    "           role = coalesce($3, role), active = coalesce($4::boolean, active), "
    "           password_hash = coalesce($5, password_hash), updated_at = now() "
    "           FROM target WHERE users.id = target.id AND users.xmin = target.version "
    "           RETURNING users.*), "
    "drop_hubs AS (DELETE FROM hub_managers WHERE $6::uuid[] IS NOT NULL "
    "              AND user_id IN (SELECT id FROM u) AND hub_id <> ALL($6::uuid[])), "
    "add_hubs AS (INSERT INTO hub_managers (hub_id, user_id) "
    "             SELECT unnest($6::uuid[]), u.id FROM u ON CONFLICT DO NOTHING "
    "             RETURNING hub_id), "
    "revoke AS (UPDATE sessions SET revoked_at = now() WHERE revoked_at IS NULL "
    "           AND user_id IN (SELECT id FROM u WHERE NOT active OR $5 IS NOT NULL)), "
    "ev AS (INSERT INTO event_queue (type, record_id) SELECT 'account.changed', id FROM u), "
        AUDIT_CTE("$7", "'user.update'", "'ok'", "'user'", "u.id::text", "NULL", "NULL", ", u")
    " SELECT u.id, u.username, u.display_name, u.agency_id, u.role, u.active, "
    "       CASE WHEN $6::uuid[] IS NULL THEN " AUTH_HUB_LINKS("u") " "
    "       ELSE array(SELECT DISTINCT h FROM unnest($6::uuid[]) h ORDER BY h) END "
    "       AS hub_ids FROM target LEFT JOIN u ON true";
/* clang-format on */

#define USER_PATCH_TRIES 3

static void user_patched(struct http_req *r, enum db_status st, PGresult *res)
{
    if (st == DB_OK && PQntuples(res) == 1 && PQgetisnull(res, 0, 0)) {
        /* the user changed since the statement read it: nothing written */
        if (!res_query_again(r, USER_PATCH_TRIES))
            http_reply_error(r, 409, "this user is being changed by someone else; try again");
        return;
    }
    res_updated(r, st, res);
}

void users_update(struct http_req *r)
{
    char *id = res_path_id(r);
    if (id == NULL)
        return;
    json_object *o = res_read_body(r, user_patch_fields,
                                   sizeof(user_patch_fields) / sizeof(user_patch_fields[0]));
    if (o == NULL) {
        free(id);
        return;
    }
    struct hash_job *j = xcalloc(1, sizeof(*j));
    j->r = r;
    j->sql = user_patch_sql;
    j->nparams = 7;
    j->params[0] = id;
    j->params[1] = json_has(o, "display_name") ? xstrdup(json_str(o, "display_name")) : NULL;
    j->params[2] = json_has(o, "role") ? xstrdup(json_str(o, "role")) : NULL;
    j->params[3] = json_has(o, "active") ? xstrdup(json_str(o, "active")) : NULL;
    j->params[5] = json_uuid_array_literal(o, "hub_ids");
    j->params[6] = audit_context(r);
    if (json_has(o, "password")) {
        j->password = xstrdup(json_str(o, "password"));
        j->params[4] = xstrdup("\x01hash");
        json_object_put(o);
        http_work(r, hash_run, hash_done, j, hash_job_free);
        return;
    }
    json_object_put(o);
    res_query_kept(r, user_patch_sql, 7, (const char *const *)j->params, user_patched);
    hash_job_free(j);
}

/* ---- POST /v1/users/{id}/certificates */

static const struct json_field cert_fields[] = {
    {"fingerprint", JK_HEX64, 1, 0, 0, NULL},
};

/* clang-format off */
static const char cert_insert_sql[] =
    "WITH c AS (INSERT INTO user_certificates (fingerprint, user_id) "
    "           SELECT $2, id FROM users WHERE id = $1 RETURNING *), "
        AUDIT_CTE("$3", "'certificate.register'", "'ok'", "'user'", "c.user_id::text", "NULL",
                  "NULL", ", c")
    " SELECT c.fingerprint, c.user_id, to_char(c.created_at AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS created_at FROM c";
/* clang-format on */

void certificates_create(struct http_req *r)
{
    char *id = res_path_id(r);
    if (id == NULL)
        return;
    json_object *o = res_read_body(r, cert_fields, 1);
    if (o == NULL) {
        free(id);
        return;
    }
    char fp[65];
    snprintf(fp, sizeof(fp), "%s", json_str(o, "fingerprint"));
    for (char *c = fp; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    char *ctx = audit_context(r);
    const char *params[] = {id, fp, ctx};
    http_query(r, cert_insert_sql, 3, params, res_created);
    free(ctx);
    free(id);
    json_object_put(o);
}
