/* Intelligence: post (graded 3x5x2, optionally restricted to agencies on the team, safe to
 * retry with Idempotency-Key), list and read what the caller may see, retract (never delete).
 * Every post and retraction writes its event row (the stream) and audit row in the same
 * statement; every read writes one audit row per item shown. */
#include "audit.h"
#include "auth.h"
#include "http.h"
#include "intelligence.h"
#include "intel.h"
#include "json.h"
#include "problem.h"
#include "resource.h"
#include "routes.h"
#include "subjects.h"
#include "util.h"
#include "xmalloc.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static json_object *str_or_null(PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : json_object_new_string(PQgetvalue(res, row, col));
}

/* An item as GET shows it; the handling conditions travel with every rendering. */
json_object *intelligence_render(PGresult *res, int row, int c)
{
    static const char *const plain[] = {"id",     "subject_id",  "category",  "summary",
                                        "detail", "occurred_at", "risk_level"};
    json_object *o = json_object_new_object();
    for (int k = 0; k < 7; k++)
        json_object_object_add(o, plain[k], str_or_null(res, row, c + k));
    json_object_object_add(o, "gravity",
                           PQgetisnull(res, row, c + 7)
                               ? NULL
                               : json_object_new_int(atoi(PQgetvalue(res, row, c + 7))));
    if (PQgetisnull(res, row, c + 8)) {
        json_object_object_add(o, "grading", NULL);
    } else {
        json_object *g = json_object_new_object();
        char text[16];
        const char *scheme = PQgetvalue(res, row, c + 8), *src = PQgetvalue(res, row, c + 9),
                   *as = PQgetvalue(res, row, c + 10), *h = PQgetvalue(res, row, c + 11);
        json_object_object_add(g, "scheme", json_object_new_string(scheme));
        if (strcmp(scheme, "3x5x2") == 0)
            json_object_object_add(g, "source", json_object_new_int(atoi(src)));
        else
            json_object_object_add(g, "source", json_object_new_string(src));
        if (strcmp(scheme, "5x5x5") == 0) {
            json_object_object_add(g, "assessment", json_object_new_int(atoi(as)));
            json_object_object_add(g, "handling", json_object_new_int(atoi(h)));
        } else {
            json_object_object_add(g, "assessment", json_object_new_string(as));
            json_object_object_add(g, "handling", json_object_new_string(h));
        }
        json_object_object_add(g, "conditions", str_or_null(res, row, c + 12));
        json_object_object_add(
            g, "text", json_object_new_string(intel_grading_text(scheme, src, as, h, text)));
        json_object_object_add(o, "grading", g);
    }
    json_object_object_add(
        o, "restricted_to",
        PQgetisnull(res, row, c + 13) ? NULL : json_from_pg_array(PQgetvalue(res, row, c + 13)));
    json_object *author = json_object_new_object();
    json_object_object_add(author, "user_id", str_or_null(res, row, c + 14));
    json_object_object_add(author, "agency_id", str_or_null(res, row, c + 15));
    json_object_object_add(o, "author", author);
    json_object_object_add(o, "created_at", str_or_null(res, row, c + 16));
    if (PQgetisnull(res, row, c + 17)) {
        json_object_object_add(o, "retracted", NULL);
    } else {
        json_object *rt = json_object_new_object();
        json_object_object_add(rt, "at", str_or_null(res, row, c + 17));
        json_object_object_add(rt, "by", str_or_null(res, row, c + 18));
        json_object_object_add(rt, "reason", str_or_null(res, row, c + 19));
        json_object_object_add(o, "retracted", rt);
    }
    return o;
}

/* ---- POST /v1/intelligence */

#define POST_NPARAMS 19

struct post {
    char *params[POST_NPARAMS]; /* owned */
    int retried;
};

static void post_free(struct post *p)
{
    for (int i = 0; i < POST_NPARAMS; i++)
        free(p->params[i]);
    free(p);
}

/* $1 user $2 agency $3 hubs $4 key $5 request hash $6 subject $7 category $8 summary
 * $9 detail $10 occurred_at $11 risk $12 gravity $13 scheme $14 source $15 assessment
 * $16 handling $17 conditions $18 restricted_to $19 audit context */
/* clang-format off */
static const char post_sql[] =
    "WITH prior AS (SELECT i.*, s.hub_id FROM intelligence i JOIN subjects s ON s.id = "
    "  i.subject_id WHERE i.author_id = $1 AND i.idempotency_key = $4), "
    "subj AS (SELECT s.id, s.hub_id FROM subjects s WHERE s.id = $6 AND "
    "  " SUBJECT_VISIBLE("s", "$2", "$3") "), "
    "strangers AS (SELECT count(*) AS n FROM unnest($18::uuid[]) a WHERE a <> $2::uuid AND "
    "  a NOT IN (SELECT agency_id FROM subject_team WHERE subject_id = $6)), "
    "ins AS (INSERT INTO intelligence (subject_id, author_id, author_agency_id, category, "
    "  summary, detail, occurred_at, risk_level, gravity, grading_scheme, grading_source, "
    "  grading_assessment, handling, conditions, restricted_to, idempotency_key, request_hash) "
    "  SELECT subj.id, $1, $2, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, "
    "  CASE WHEN $18::uuid[] IS NULL THEN NULL ELSE "
    "    array(SELECT DISTINCT a FROM unnest($18::uuid[] || $2::uuid) a ORDER BY a) END, $4, $5 "
    "  FROM subj, strangers WHERE strangers.n = 0 AND NOT EXISTS (SELECT 1 FROM prior) "
    "  RETURNING *), "
    "ev AS (INSERT INTO event_queue (type, subject_id, hub_id, record_id) "
    "  SELECT 'intelligence.posted', ins.subject_id, subj.hub_id, ins.id FROM ins, subj), "
        AUDIT_CTE("$19", "'intelligence.create'", "'ok'", "'intelligence'", "ins.id::text",
                  "ins.subject_id", "subj.hub_id", ", ins, subj")
    " SELECT (SELECT count(*) FROM subj) AS _visible, (SELECT n FROM strangers) AS _strangers, "
    "  (SELECT request_hash FROM prior) AS _prior_hash, " INTEL_COLUMNS("x") " FROM (SELECT * "
        "FROM ins UNION ALL SELECT * FROM (SELECT i.id, i.subject_id, i.author_id, "
    "  i.author_agency_id, i.category, i.summary, i.detail, i.occurred_at, i.risk_level, "
    "  i.gravity, i.grading_scheme, i.grading_source, i.grading_assessment, i.handling, "
    "  i.conditions, i.restricted_to, i.created_at, i.retracted_at, i.retracted_by, "
    "  i.retraction_reason, i.idempotency_key, i.request_hash FROM prior i) p) x RIGHT JOIN "
        "(SELECT 1) one ON true";
/* clang-format on */

static void posted(struct http_req *r, enum db_status st, PGresult *res);

static void post_free_any(void *p)
{
    post_free(p);
}

static void send_post(struct http_req *r, struct post *p)
{
    r->handler_data = p; /* freed with r if the reply never comes back to us */
    r->handler_free = post_free_any;
    http_query(r, post_sql, POST_NPARAMS, (const char *const *)p->params, posted);
}

static void posted(struct http_req *r, enum db_status st, PGresult *res)
{
    struct post *p = r->handler_data;
    const char *cons = res ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;
    if (st == DB_ERROR && !p->retried && cons != NULL &&
        strcmp(cons, "intelligence_idempotency_key") == 0) {
        p->retried = 1; /* the same key raced us: now it is a replay */
        send_post(r, p);
        return;
    }
    r->handler_data = NULL;
    struct problem *pr = NULL;
    if (st != DB_OK)
        res_reply_error(r, res);
    else if (atoi(PQgetvalue(res, 0, 0)) == 0) {
        pr = problem_new(422, "the request has invalid fields");
        problem_add_field(pr, "subject_id", "no such young person");
    } else if (!PQgetisnull(res, 0, 2) &&
               (p->params[4] == NULL || strcmp(PQgetvalue(res, 0, 2), p->params[4]) != 0)) {
        pr = problem_new(422, "this Idempotency-Key was used for a different request");
        problem_add_field(pr, "Idempotency-Key", "was used with a different body");
    } else if (PQgetisnull(res, 0, 2) && atoi(PQgetvalue(res, 0, 1)) > 0) {
        pr = problem_new(422, "the request has invalid fields");
        problem_add_field(pr, "restricted_to", "may list only agencies on the team");
    } else {
        http_reply_json(r, 201, intelligence_render(res, 0, 3));
    }
    if (pr != NULL)
        http_reply_problem(r, pr);
    post_free(p);
}

static char *opt(json_object *o, const char *key)
{
    return json_has(o, key) ? xstrdup(json_str(o, key)) : NULL;
}

void intelligence_create(struct http_req *r)
{
    size_t len;
    const char *body = http_body(r, &len);
    struct problem *pr = NULL;
    json_object *o = json_parse_body(body, len, &pr);
    if (o == NULL) {
        http_reply_problem(r, pr);
        return;
    }
    const char *key = http_header(r, "Idempotency-Key");
    pr = problem_new(422, "the request has invalid fields");
    if (key != NULL && (key[0] == '\0' || !json_utf8_valid(key) || json_utf8_len(key) > 200))
        problem_add_field(pr, "Idempotency-Key", "must be 1 to 200 characters of UTF-8 text");
    if (intel_validate(o, r->user->role == ROLE_POLICE_LIAISON, time(NULL), pr) > 0 ||
        problem_field_count(pr) > 0) {
        json_object_put(o);
        http_reply_problem(r, pr);
        return;
    }
    problem_free(pr);
    struct post *p = xcalloc(1, sizeof(*p));
    char **v = p->params;
    unsigned char md[32];
    unsigned int mdlen = 0;
    char hex[65];
    EVP_Digest(body, len, md, &mdlen, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    v[0] = xstrdup(r->user->id);
    v[1] = xstrdup(r->user->agency_id);
    v[2] = xstrdup(r->user->hub_ids);
    v[3] = key ? xstrdup(key) : NULL;
    v[4] = key ? xstrdup(hex) : NULL;
    v[5] = opt(o, "subject_id");
    v[6] = opt(o, "category");
    v[7] = opt(o, "summary");
    v[8] = opt(o, "detail");
    v[9] = opt(o, "occurred_at");
    v[10] = opt(o, "risk_level");
    v[11] = opt(o, "gravity");
    json_object *g = NULL;
    if (json_object_object_get_ex(o, "grading", &g) && g != NULL) {
        v[12] = json_has(g, "scheme") ? opt(g, "scheme") : xstrdup("3x5x2");
        v[13] = opt(g, "source");
        v[14] = opt(g, "assessment");
        v[15] = opt(g, "handling");
        v[16] = opt(g, "conditions");
    }
    v[17] = json_uuid_array_literal(o, "restricted_to");
    v[18] = audit_context(r);
    json_object_put(o);
    send_post(r, p);
}

/* ---- GET /v1/intelligence: newest first; one audit row per item shown */

/* clang-format off */
static const char list_sql[] =
    "WITH rows AS (SELECT " INTEL_COLUMNS("i") ", s.hub_id AS _hub, i.created_at AS _at, "
    "  to_char(i.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US') || '|' || i.id "
    "  AS _cursor FROM intelligence i JOIN subjects s ON s.id = i.subject_id "
    "  WHERE " INTEL_VISIBLE("i", "s", "$3", "$4")
    "   AND ($5::uuid IS NULL OR i.subject_id = $5::uuid) "
    "  AND ($6::timestamptz IS NULL OR i.created_at >= $6::timestamptz) "
    "  AND ($7::text IS NULL OR i.category = $7) "
    "  AND ($1::text IS NULL OR (i.created_at, i.id) < "
    "       ((split_part($1, '|', 1) || 'Z')::timestamptz, split_part($1, '|', 2)::uuid)) "
    "  ORDER BY i.created_at DESC, i.id DESC LIMIT $2::int + 1), "
        AUDIT_CTE("$8", "'intelligence.read'", "'ok'", "'intelligence'", "shown.id::text",
                  "shown.subject_id", "shown._hub",
                  ", (SELECT * FROM rows ORDER BY _at DESC, id DESC LIMIT $2::int) shown")
    " SELECT * FROM rows ORDER BY _at DESC, id DESC";
/* clang-format on */

static void listed(struct http_req *r, enum db_status st, PGresult *res)
{
    if (st == DB_ERROR && strncmp(db_sqlstate(res), "22", 2) == 0) {
        http_reply_error(r, 400,
                         "since must be an RFC 3339 time and before a cursor from a "
                         "previous page");
        return;
    }
    if (st != DB_OK) {
        http_reply_db_error(r, res);
        return;
    }
    int n = PQntuples(res), limit = (int)(long)r->handler_data;
    json_object *items = json_object_new_array(), *body = json_object_new_object();
    for (int i = 0; i < n && i < limit; i++)
        json_object_array_add(items, intelligence_render(res, i, 0));
    json_object_object_add(body, "items", items);
    json_object_object_add(body, "next", res_next_cursor(res, n, limit, PQfnumber(res, "_cursor")));
    http_reply_json(r, 200, body);
}

void intelligence_list(struct http_req *r)
{
    int limit;
    char *before = NULL, lim[16];
    char *subject = http_query_param(r, "subject_id"), *since = http_query_param(r, "since"),
         *category = http_query_param(r, "category");
    time_t t;
    int known = category == NULL;
    for (int i = 0; !known && intel_categories[i] != NULL; i++)
        known = strcmp(intel_categories[i], category) == 0;
    if ((subject && !json_is_uuid(subject)) || (since && intel_parse_time(since, &t) < 0) ||
        !known) {
        http_reply_error(r, 400,
                         "subject_id must be an id, since an RFC 3339 UTC time and "
                         "category one of the intelligence categories");
        goto done;
    }
    if (res_page(r, &limit, &before) < 0)
        goto done;
    snprintf(lim, sizeof(lim), "%d", limit);
    char *ctx = audit_context(r);
    const char *params[] = {before,  lim,   r->user->agency_id, r->user->hub_ids,
                            subject, since, category,           ctx};
    r->handler_data = (void *)(long)limit;
    http_query(r, list_sql, 8, params, listed);
    free(ctx);
done:
    free(before);
    free(subject);
    free(since);
    free(category);
}

/* ---- GET /v1/intelligence/{id} */

/* clang-format off */
static const char read_sql[] =
    "WITH it AS (SELECT " INTEL_COLUMNS("i") ", s.hub_id AS _hub FROM intelligence i "
    "  JOIN subjects s ON s.id = i.subject_id WHERE i.id = $1 AND "
    "  " INTEL_VISIBLE("i", "s", "$2", "$3") "), "
        AUDIT_CTE("$4", "'intelligence.read'", "'ok'", "'intelligence'", "it.id::text",
                  "it.subject_id", "it._hub", ", it")
    " SELECT * FROM it";
/* clang-format on */

static void one(struct http_req *r, enum db_status st, PGresult *res)
{
    if (st != DB_OK) {
        http_reply_db_error(r, res);
        return;
    }
    if (PQntuples(res) == 0) {
        http_reply_error(r, 404, "there is no such record");
        return;
    }
    http_reply_json(r, (int)(long)r->handler_data, intelligence_render(res, 0, 0));
}

void intelligence_get(struct http_req *r)
{
    res_get_visible(r, read_sql, one);
}

/* ---- POST /v1/intelligence/{id}/retract: the author's agency; kept, marked, streamed */

static const struct json_field retract_fields[] = {
    {"reason", JK_STRING, 1, 1, 1000, NULL},
};

/* clang-format off */
static const char retract_sql[] =
    "WITH it AS (SELECT i.id, i.retracted_at IS NOT NULL AS done, i.author_agency_id = $2 "
    "  AS ours, s.hub_id FROM intelligence i JOIN subjects s ON s.id = i.subject_id "
    "  WHERE i.id = $1 AND " INTEL_VISIBLE("i", "s", "$2", "$3") "), "
    "u AS (UPDATE intelligence SET retracted_at = now(), retracted_by = $4, "
    "  retraction_reason = $5 FROM it WHERE intelligence.id = it.id AND it.ours "
    "  AND NOT it.done AND intelligence.retracted_at IS NULL RETURNING intelligence.*), "
    "ev AS (INSERT INTO event_queue (type, subject_id, hub_id, record_id) "
    "  SELECT 'intelligence.retracted', u.subject_id, it.hub_id, u.id FROM u, it), "
        AUDIT_CTE("$6", "'intelligence.retract'", "'ok'", "'intelligence'", "u.id::text",
                  "u.subject_id", "it.hub_id", ", u, it")
    " SELECT it.ours AS _ours, it.done AS _done, " INTEL_COLUMNS("u") " FROM it LEFT JOIN u ON "
        "u.id = it.id";
/* clang-format on */

static void retracted(struct http_req *r, enum db_status st, PGresult *res)
{
    if (st != DB_OK) {
        http_reply_db_error(r, res);
        return;
    }
    if (PQntuples(res) == 0)
        http_reply_error(r, 404, "there is no such record");
    else if (PQgetvalue(res, 0, 0)[0] != 't')
        http_reply_error(r, 403, "only the author's agency may retract this item");
    else if (PQgetvalue(res, 0, 1)[0] == 't' || PQgetisnull(res, 0, 2))
        http_reply_error(r, 409, "this item is already retracted");
    else
        http_reply_json(r, 200, intelligence_render(res, 0, 2));
}

void intelligence_retract(struct http_req *r)
{
    char *id = res_path_id(r);
    if (id == NULL)
        return;
    json_object *o = res_read_body(r, retract_fields, 1);
    if (o == NULL) {
        free(id);
        return;
    }
    char *ctx = audit_context(r);
    const char *params[] = {id,          r->user->agency_id,    r->user->hub_ids,
                            r->user->id, json_str(o, "reason"), ctx};
    http_query(r, retract_sql, 6, params, retracted);
    free(ctx);
    free(id);
    json_object_put(o);
}
