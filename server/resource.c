/* Shared pieces of resource handlers: bodies, rows as JSON, paging, path ids, and mapping
 * constraint violations to the client's mistake. */
#include "resource.h"

#include "audit.h"
#include "auth.h"
#include "http.h"
#include "json.h"
#include "problem.h"
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
    {"23505", "subjects_reference_key", 409, "reference",
     "this hub already has a young person with this reference"},
    {"23503", "subject_team_agency_id_fkey", 422, "team", "no such agency"},
    {"23503", "subjects_hub_id_fkey", 422, "hub_id", "no such hub"},
    {"23514", "users_username_check", 422, "username",
     "must be 3-64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit"},
};

void res_reply_error(struct http_req *r, PGresult *res)
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
json_object *res_read_body(struct http_req *r, const struct json_field *f, size_t n)
{
    return res_read_body_ex(r, f, n, NULL);
}

json_object *res_read_body_ex(struct http_req *r, const struct json_field *f, size_t n,
                              void (*extra)(json_object *o, struct problem *p))
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
    json_validate(o, f, n, p);
    if (extra != NULL)
        extra(o, p);
    if (problem_field_count(p) > 0) {
        json_object_put(o);
        http_reply_problem(r, p);
        return NULL;
    }
    problem_free(p);
    return o;
}

/* Reply with the first row as a JSON object; column names are the keys. "{...}" uuid[]
 * columns named *_ids become arrays; "t"/"f" columns named active become booleans. */
json_object *res_row_json(PGresult *res, int row)
{
    return res_row_json_range(res, row, 0, PQnfields(res));
}

json_object *res_row_json_range(PGresult *res, int row, int from, int to)
{
    json_object *o = json_object_new_object();
    for (int c = from; c < to; c++) {
        const char *name = PQfname(res, c), *v = PQgetvalue(res, row, c);
        size_t nl = strlen(name);
        if (name[0] == '_') {
            continue; /* internal columns (the list cursor) */
        } else if (PQgetisnull(res, row, c)) {
            json_object_object_add(o, name, NULL);
        } else if (strcmp(name, "active") == 0) {
            json_object_object_add(o, name, json_object_new_boolean(v[0] == 't'));
        } else if ((nl > 4 && strcmp(name + nl - 4, "_ids") == 0) || strcmp(name, "team") == 0 ||
                   strcmp(name, "restricted_to") == 0) {
            json_object *a = json_from_pg_array(v);
            json_object_object_add(o, name, a);
        } else {
            json_object_object_add(o, name, json_object_new_string(v));
        }
    }
    return o;
}

void res_reply_row(struct http_req *r, enum db_status st, PGresult *res, int status)
{
    if (st != DB_OK) {
        res_reply_error(r, res);
        return;
    }
    if (PQntuples(res) == 0) {
        http_reply_error(r, 404, "there is no such record");
        return;
    }
    http_reply_json(r, status, res_row_json(res, 0));
}

void res_created(struct http_req *r, enum db_status st, PGresult *res)
{
    res_reply_row(r, st, res, 201);
}

void res_updated(struct http_req *r, enum db_status st, PGresult *res)
{
    res_reply_row(r, st, res, 200);
}

/* Lists: every row, in the order of the statement. Paged by `limit` and an opaque cursor
 * (the sort key of the last row, base64url). */
void res_listed(struct http_req *r, enum db_status st, PGresult *res)
{
    if (st != DB_OK) {
        http_reply_db_error(r, res);
        return;
    }
    int n = PQntuples(res), limit = (int)(long)r->handler_data;
    json_object *items = json_object_new_array();
    for (int i = 0; i < n && i < limit; i++)
        json_object_array_add(items, res_row_json(res, i));
    json_object *body = json_object_new_object();
    json_object_object_add(body, "items", items);
    json_object_object_add(body, "next", res_next_cursor(res, n, limit, PQfnumber(res, "_cursor")));
    http_reply_json(r, 200, body);
}

json_object *res_next_cursor(PGresult *res, int n, int limit, int col)
{
    if (n <= limit || col < 0)
        return NULL;
    const char *key = PQgetvalue(res, limit - 1, col);
    char *cur = util_base64url((const unsigned char *)key, strlen(key));
    json_object *o = json_object_new_string(cur);
    free(cur);
    return o;
}

/* limit and before (decoded cursor, owned) from the query string; -1 after a 400. */
int res_page(struct http_req *r, int *limit, char **before)
{
    char *l = http_query_param(r, "limit"), *b = http_query_param(r, "before");
    *limit = LIMIT_PAGE_DEFAULT;
    *before = NULL;
    int ok = 1;
    if (l != NULL) {
        char *end;
        long v = strtol(l, &end, 10);
        ok = isdigit((unsigned char)*l) && *end == '\0' && v >= 1 && v <= LIMIT_PAGE_MAX;
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
        /* what the server made is UTF-8 without NULs: anything else is not a cursor (and
         * PostgreSQL refused the bytes with a 500; review) */
        ok = ok && memchr(out, '\0', outlen) == NULL && json_utf8_valid((const char *)out);
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

void res_run_list(struct http_req *r, const char *sql)
{
    int limit;
    char *before, lim[16];
    if (res_page(r, &limit, &before) < 0)
        return;
    snprintf(lim, sizeof(lim), "%d", limit);
    const char *params[] = {before, lim};
    r->handler_data = (void *)(long)limit;
    http_query(r, sql, 2, params, res_listed);
    free(before);
}

/* The {id} path parameter, copied; NULL after a 404 when it is not a UUID. */
char *res_path_id(struct http_req *r)
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

void res_get_visible(struct http_req *r, const char *sql, http_db_cb done)
{
    char *id = res_path_id(r);
    if (id == NULL)
        return;
    char *ctx = audit_context(r);
    const char *params[] = {id, r->user->agency_id, r->user->hub_ids, ctx};
    r->handler_data = (void *)200L;
    http_query(r, sql, 4, params, done);
    free(ctx);
    free(id);
}

void res_reply_document(struct http_req *r, enum db_status st, PGresult *res)
{
    if (st != DB_OK) {
        http_reply_db_error(r, res);
        return;
    }
    if (PQntuples(res) == 0) {
        http_reply_error(r, 404, "there is no such record");
        return;
    }
    http_reply_json(r, (int)(long)r->handler_data, json_tokener_parse(PQgetvalue(res, 0, 0)));
}

/* ---- statements that may run again */

#define KEPT_MAX_PARAMS 16

struct kept {
    const char *sql; /* static */
    http_db_cb cb;
    int nparams, runs;
    char *params[KEPT_MAX_PARAMS]; /* owned */
};

/* While a kept statement's callback runs, the statement; res_query_again takes it from here.
 * The callback has handler_data to itself (reply helpers use it), and it may end r. */
static _Thread_local struct kept *kept_now;
static _Thread_local int kept_resent;

static void kept_free(void *p)
{
    struct kept *k = p;
    for (int i = 0; i < k->nparams; i++)
        free(k->params[i]);
    free(k);
}

static void kept_done(struct http_req *r, enum db_status st, PGresult *res)
{
    struct kept *k = r->handler_data;
    r->handler_data = NULL;
    r->handler_free = NULL;
    kept_now = k;
    kept_resent = 0;
    k->cb(r, st, res);
    kept_now = NULL;
    if (!kept_resent) /* else it is r's again, or freed with r if sending failed */
        kept_free(k);
}

static void kept_send(struct http_req *r, struct kept *k)
{
    k->runs++;
    r->handler_data = k; /* freed with r if r ends before the answer */
    r->handler_free = kept_free;
    http_query(r, k->sql, k->nparams, (const char *const *)k->params, kept_done);
}

void res_query_kept(struct http_req *r, const char *sql, int nparams, const char *const *params,
                    http_db_cb cb)
{
    if (nparams > KEPT_MAX_PARAMS)
        abort(); /* a programming error */
    struct kept *k = xcalloc(1, sizeof(*k));
    k->sql = sql;
    k->cb = cb;
    k->nparams = nparams;
    for (int i = 0; i < nparams; i++)
        k->params[i] = params[i] ? xstrdup(params[i]) : NULL;
    kept_send(r, k);
}

int res_query_again(struct http_req *r, int most)
{
    struct kept *k = kept_now;
    if (k == NULL || k->runs >= most)
        return 0;
    kept_now = NULL;
    kept_resent = 1;
    kept_send(r, k);
    return 1;
}
