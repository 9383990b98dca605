/* Accounts: agencies, hubs, users, client certificates. Admins change them; every change
 * and its audit row are one statement. Constraint violations become 409/422 naming the field. */
#include "audit.h"
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

/* Map a failed statement to the client's mistake where it is one. */
static const struct {
    const char *sqlstate, *constraint;
    int status;
    const char *field, *message;
} violations[] = {
    {"23505", "agencies_name_key", 409, "name", "an agency with this name exists"},
    {"23505", "hubs_name_key", 409, "name", "a hub with this name exists"},
    {"23505", "users_username_key", 409, "username", "this username is taken"},
    {"23505", "user_certificates_pkey", 409, "fingerprint", "this certificate is registered"},
    {"23503", "users_agency_id_fkey", 422, "agency_id", "no such agency"},
    {"23503", "hub_managers_hub_id_fkey", 422, "hub_ids", "no such hub"},
    {"23514", "users_username_check", 422, "username",
     "must be 3-64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit"},
};

static void reply_violation_or_error(struct http_req *r, PGresult *res)
{
    const char *state = db_sqlstate(res);
    const char *cons = res ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;
    for (size_t i = 0; cons != NULL && i < sizeof(violations) / sizeof(violations[0]); i++)
        if (strcmp(state, violations[i].sqlstate) == 0 &&
            strcmp(cons, violations[i].constraint) == 0) {
            struct problem *p = problem_new(violations[i].status, "%s", violations[i].message);
            problem_add_field(p, violations[i].field, "%s", violations[i].message);
            http_reply_problem(r, p);
            return;
        }
    http_reply_db_error(r, res);
}

/* Parse + validate the body; NULL after replying 400/422. */
static json_object *read_body(struct http_req *r, const struct json_field *f, size_t n)
{
    size_t len;
    const char *body = http_body(r, &len);
    struct problem *p = NULL;
    json_object *o = json_parse_body(body, len, &p);
    if (o == NULL) {
        http_reply_problem(r, p);
        return NULL;
    }
    p = problem_new(422, "the request has invalid fields");
    if (json_validate(o, f, n, p) > 0) {
        json_object_put(o);
        http_reply_problem(r, p);
        return NULL;
    }
    problem_free(p);
    return o;
}

/* Reply with the first row as a JSON object; column names are the keys. "{...}" uuid[]
 * columns named *_ids become arrays; "t"/"f" columns named active become booleans. */
static json_object *row_json(PGresult *res, int row)
{
    json_object *o = json_object_new_object();
    for (int c = 0; c < PQnfields(res); c++) {
        const char *name = PQfname(res, c), *v = PQgetvalue(res, row, c);
        size_t nl = strlen(name);
        if (PQgetisnull(res, row, c)) {
            json_object_object_add(o, name, NULL);
        } else if (strcmp(name, "active") == 0) {
            json_object_object_add(o, name, json_object_new_boolean(v[0] == 't'));
        } else if (nl > 4 && strcmp(name + nl - 4, "_ids") == 0) {
            json_object *a = json_object_new_array();
            while (*v != '\0') {
                v += strspn(v, "{},");
                size_t n = strcspn(v, ",}");
                if (n > 0)
                    json_object_array_add(a, json_object_new_string_len(v, (int)n));
                v += n;
            }
            json_object_object_add(o, name, a);
        } else {
            json_object_object_add(o, name, json_object_new_string(v));
        }
    }
    return o;
}

static void reply_row(struct http_req *r, enum db_status st, PGresult *res, int status)
{
    if (st != DB_OK) {
        reply_violation_or_error(r, res);
        return;
    }
    if (PQntuples(res) == 0) {
        http_reply_error(r, 404, "there is no such record");
        return;
    }
    http_reply_json(r, status, row_json(res, 0));
}

static void created(struct http_req *r, enum db_status st, PGresult *res)
{
    reply_row(r, st, res, 201);
}

static void updated(struct http_req *r, enum db_status st, PGresult *res)
{
    reply_row(r, st, res, 200);
}

/* Lists: every row, in the order of the statement. Paged by `limit` and an opaque cursor
 * (the sort key of the last row, base64url). */
static void listed(struct http_req *r, enum db_status st, PGresult *res)
{
    if (st != DB_OK) {
        http_reply_db_error(r, res);
        return;
    }
    int n = PQntuples(res), limit = (int)(long)r->handler_data;
    json_object *items = json_object_new_array();
    for (int i = 0; i < n && i < limit; i++)
        json_object_array_add(items, row_json(res, i));
    json_object *body = json_object_new_object();
    json_object_object_add(body, "items", items);
    if (n > limit) {
        const char *key = PQgetvalue(res, limit - 1, 1); /* column 1: the sort key */
        char *cur = util_base64url((const unsigned char *)key, strlen(key));
        json_object_object_add(body, "next", json_object_new_string(cur));
        free(cur);
    } else {
        json_object_object_add(body, "next", NULL);
    }
    http_reply_json(r, 200, body);
}

/* limit and before (decoded cursor, owned) from the query string; -1 after a 400. */
static int page(struct http_req *r, int *limit, char **before)
{
    char *l = http_query_param(r, "limit"), *b = http_query_param(r, "before");
    *limit = LIMIT_PAGE_DEFAULT;
    *before = NULL;
    int ok = 1;
    if (l != NULL) {
        char *end;
        long v = strtol(l, &end, 10);
        ok = *l != '\0' && *end == '\0' && v >= 1 && v <= LIMIT_PAGE_MAX;
        *limit = (int)v;
    }
    if (ok && b != NULL) {
        size_t n = strlen(b), pad = (4 - n % 4) % 4, outlen = 0;
        char *std = xcalloc(n + pad + 1, 1);
        unsigned char *out = xcalloc(n + 4, 1);
        for (size_t i = 0; i < n; i++)
            std[i] = b[i] == '-' ? '+' : b[i] == '_' ? '/' : b[i];
        memset(std + n, '=', pad);
        ok = n > 0 && n < 400 && util_unbase64(std, out, n + 4, &outlen) == 0;
        if (ok) {
            out[outlen] = '\0';
            *before = (char *)out;
        } else {
            free(out);
        }
        free(std);
    }
    free(l);
    free(b);
    if (!ok)
        http_reply_error(r, 400, "limit must be 1-200 and before a cursor from a previous page");
    return ok ? 0 : -1;
}

static void run_list(struct http_req *r, const char *sql)
{
    int limit;
    char *before, lim[16];
    if (page(r, &limit, &before) < 0)
        return;
    snprintf(lim, sizeof(lim), "%d", limit);
    const char *params[] = {before, lim};
    r->handler_data = (void *)(long)limit;
    http_query(r, sql, 2, params, listed);
    free(before);
}

/* ---- agencies */

static const struct json_field agency_fields[] = {
    {"name", JK_STRING, 1, 1, 200, NULL},
    {"kind", JK_ENUM, 1, 0, 0, agency_kinds},
};

#define AGENCY_COLS                                                                                \
    "id, name, kind, to_char(created_at AT TIME ZONE 'UTC', "                                      \
    "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS created_at"

static const char agency_insert_sql[] =
    "WITH g AS (INSERT INTO agencies (name, kind) VALUES ($1, $2) RETURNING *), " AUDIT_CTE(
        "$3", "'agency.create'", "'ok'", "'agency'", "g.id::text", "NULL", "NULL",
        ", g") " SELECT " AGENCY_COLS " FROM g";

void agencies_create(struct http_req *r)
{
    json_object *o = read_body(r, agency_fields, 2);
    if (o == NULL)
        return;
    char *ctx = audit_context(r);
    const char *params[] = {json_str(o, "name"), json_str(o, "kind"), ctx};
    http_query(r, agency_insert_sql, 3, params, created);
    free(ctx);
    json_object_put(o);
}

void agencies_list(struct http_req *r)
{
    run_list(r, "SELECT id, name, kind, to_char(created_at AT TIME ZONE 'UTC', "
                "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS created_at FROM agencies "
                "WHERE $1::text IS NULL OR name > $1 ORDER BY name LIMIT $2::int + 1");
}

/* ---- hubs */

static const struct json_field hub_fields[] = {
    {"name", JK_STRING, 1, 1, 200, NULL},
    {"local_authority", JK_STRING, 1, 1, 200, NULL},
};

static const char hub_insert_sql[] =
    "WITH h AS (INSERT INTO hubs (name, local_authority) VALUES ($1, $2) RETURNING *), " AUDIT_CTE(
        "$3", "'hub.create'", "'ok'", "'hub'", "h.id::text", "NULL", "h.id",
        ", h") " SELECT id, name, local_authority, time_zone FROM h";

void hubs_create(struct http_req *r)
{
    json_object *o = read_body(r, hub_fields, 2);
    if (o == NULL)
        return;
    char *ctx = audit_context(r);
    const char *params[] = {json_str(o, "name"), json_str(o, "local_authority"), ctx};
    http_query(r, hub_insert_sql, 3, params, created);
    free(ctx);
    json_object_put(o);
}

void hubs_list(struct http_req *r)
{
    run_list(r, "SELECT id, name, local_authority, time_zone FROM hubs "
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

#define USER_COLS                                                                                  \
    "u.id, u.username, u.display_name, u.agency_id, u.role, u.active, "                            \
    "coalesce((SELECT array_agg(m.hub_id ORDER BY m.hub_id) FROM hub_managers m "                  \
    "          WHERE m.user_id = u.id), '{}') AS hub_ids"

static const char user_insert_sql[] =
    "WITH u AS (INSERT INTO users (username, display_name, agency_id, role, password_hash) "
    "           VALUES ($1, $2, $3, $4, $5) RETURNING *), "
    "m AS (INSERT INTO hub_managers (hub_id, user_id) SELECT unnest($6::uuid[]), u.id FROM u "
    "      RETURNING hub_id), " AUDIT_CTE(
        "$7", "'user.create'", "'ok'", "'user'", "u.id::text", "NULL", "NULL",
        ", u") " "
               "SELECT u.id, u.username, u.display_name, u.agency_id, u.role, u.active, "
               "       coalesce((SELECT array_agg(hub_id ORDER BY hub_id) FROM m), '{}') AS "
               "hub_ids FROM u";

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
    http_query(r, j->sql, j->nparams, (const char *const *)j->params,
               j->sql == user_insert_sql ? created : updated);
    hash_job_free(j);
}

/* A PostgreSQL array literal of the ids in a validated JK_UUID_ARRAY field (owned). */
static char *uuid_array(json_object *o, const char *key)
{
    json_object *a;
    if (!json_object_object_get_ex(o, key, &a) || a == NULL)
        return NULL;
    size_t n = json_object_array_length(a);
    char *s = xcalloc(n * 37 + 3, 1);
    strcat(s, "{");
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            strcat(s, ",");
        strcat(s, json_object_get_string(json_object_array_get_idx(a, i)));
    }
    strcat(s, "}");
    return s;
}

void users_create(struct http_req *r)
{
    json_object *o = read_body(r, user_fields, sizeof(user_fields) / sizeof(user_fields[0]));
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
    j->params[5] = uuid_array(o, "hub_ids");
    if (j->params[5] == NULL)
        j->params[5] = xstrdup("{}");
    j->params[6] = audit_context(r);
    json_object_put(o);
    http_work(r, hash_run, hash_done, j, hash_job_free);
}

void users_list(struct http_req *r)
{
    run_list(r, "SELECT " USER_COLS " FROM users u WHERE $1::text IS NULL OR u.username > $1 "
                "ORDER BY u.username LIMIT $2::int + 1");
}

/* Deactivating revokes every session of the user in the same statement. */
static const char user_patch_sql[] =
    "WITH u AS (UPDATE users SET display_name = coalesce($2, display_name), "
    "           role = coalesce($3, role), active = coalesce($4::boolean, active), "
    "           password_hash = coalesce($5, password_hash), updated_at = now() "
    "           WHERE id = $1 RETURNING *), "
    "drop_hubs AS (DELETE FROM hub_managers WHERE $6::uuid[] IS NOT NULL "
    "              AND user_id IN (SELECT id FROM u)), "
    "add_hubs AS (INSERT INTO hub_managers (hub_id, user_id) "
    "             SELECT unnest($6::uuid[]), u.id FROM u RETURNING hub_id), "
    "revoke AS (UPDATE sessions SET revoked_at = now() WHERE revoked_at IS NULL "
    "           AND user_id IN (SELECT id FROM u WHERE NOT active OR $5 IS NOT NULL)), " AUDIT_CTE(
        "$7", "'user.update'", "'ok'", "'user'", "u.id::text", "NULL", "NULL",
        ", u") " "
               "SELECT u.id, u.username, u.display_name, u.agency_id, u.role, u.active, "
               "       CASE WHEN $6::uuid[] IS NULL THEN coalesce((SELECT array_agg(m.hub_id ORDER "
               "BY "
               "       m.hub_id) FROM hub_managers m WHERE m.user_id = u.id), '{}') "
               "       ELSE coalesce((SELECT array_agg(hub_id ORDER BY hub_id) FROM add_hubs), "
               "'{}') END "
               "       AS hub_ids FROM u";

/* The {id} path parameter, copied; NULL after a 404 when it is not a UUID. */
static char *path_id(struct http_req *r)
{
    char id[37];
    if (r->params.n < 1 || r->params.v[0].value_len != 36) {
        http_reply_error(r, 404, "there is no such record");
        return NULL;
    }
    memcpy(id, r->params.v[0].value, 36);
    id[36] = '\0';
    if (!json_is_uuid(id)) {
        http_reply_error(r, 404, "there is no such record");
        return NULL;
    }
    for (char *c = id; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    return xstrdup(id);
}

void users_update(struct http_req *r)
{
    char *id = path_id(r);
    if (id == NULL)
        return;
    json_object *o =
        read_body(r, user_patch_fields, sizeof(user_patch_fields) / sizeof(user_patch_fields[0]));
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
    j->params[5] = uuid_array(o, "hub_ids");
    j->params[6] = audit_context(r);
    if (json_has(o, "password")) {
        j->password = xstrdup(json_str(o, "password"));
        j->params[4] = xstrdup("\x01hash");
        json_object_put(o);
        http_work(r, hash_run, hash_done, j, hash_job_free);
        return;
    }
    json_object_put(o);
    http_query(r, user_patch_sql, 7, (const char *const *)j->params, updated);
    hash_job_free(j);
}

/* ---- POST /v1/users/{id}/certificates */

static const struct json_field cert_fields[] = {
    {"fingerprint", JK_HEX64, 1, 0, 0, NULL},
};

static const char cert_insert_sql[] =
    "WITH c AS (INSERT INTO user_certificates (fingerprint, user_id) "
    "           SELECT $2, id FROM users WHERE id = $1 RETURNING *), " AUDIT_CTE(
        "$3", "'certificate.register'", "'ok'", "'user'", "c.user_id::text", "NULL", "NULL",
        ", c") " SELECT c.fingerprint, c.user_id, to_char(c.created_at AT TIME ZONE 'UTC', "
               "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS created_at FROM c";

void certificates_create(struct http_req *r)
{
    char *id = path_id(r);
    if (id == NULL)
        return;
    json_object *o = read_body(r, cert_fields, 1);
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
    http_query(r, cert_insert_sql, 3, params, created);
    free(ctx);
    free(id);
    json_object_put(o);
}
