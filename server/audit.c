#include "audit.h"

#include "auth.h"
#include "http.h"
#include "json.h"
#include "problem.h"
#include "resource.h"
#include "sequencer.h"
#include "util.h"
#include "xmalloc.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *audit_context(const struct http_req *r)
{
    json_object *o = json_object_new_object();
    const struct auth_user *u = r->user;
    const char *purpose = http_header(r, "X-Purpose");
    char route[128];
    snprintf(route, sizeof(route), "%s %s", router_method_name(r->route->method),
             r->route->pattern);
    if (purpose == NULL || purpose[0] == '\0' || !json_utf8_valid(purpose) ||
        json_utf8_len(purpose) > 200) /* not UTF-8: PostgreSQL would refuse the whole request */
        purpose = r->route->purpose;
    if (u != NULL) {
        json_object_object_add(o, "user_id", json_object_new_string(u->id));
        json_object_object_add(o, "username", json_object_new_string(u->username));
        json_object_object_add(o, "agency_id", json_object_new_string(u->agency_id));
        json_object_object_add(o, "role", json_object_new_string(role_names[u->role]));
    }
    json_object_object_add(o, "route", json_object_new_string(route));
    json_object_object_add(o, "client_addr", json_object_new_string(http_client_addr(r)));
    json_object_object_add(o, "request_id", json_object_new_string(r->id));
    json_object_object_add(o, "purpose", json_object_new_string(purpose ? purpose : ""));
    char *s = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return s;
}

/* ---- GET /v1/audit: newest first, cursor = seq. Reading the audit log is itself audited. */

/* clang-format off */
static const char list_sql[] =
    "WITH " AUDIT_CTE("$7", "'audit.read'", "'ok'", "'audit'", "NULL", "$2::uuid", "NULL", "") ", "
    "rows AS (SELECT seq, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') t, "
        "user_id, username, agency_id, role, action, outcome, route, record_type, record_id, "
        "subject_id, hub_id, client_addr, request_id, purpose, encode(hash, 'hex') h FROM "
        "audit_log WHERE ($1::uuid[] IS NULL OR hub_id = ANY($1::uuid[])) AND ($2::uuid IS NULL "
        "OR subject_id = $2::uuid) AND ($3::uuid IS NULL OR user_id = $3::uuid) AND "
        "($4::timestamptz IS NULL OR at >= $4::timestamptz) AND ($5::timestamptz IS NULL OR at < "
        "$5::timestamptz) AND ($6::bigint IS NULL OR seq < $6::bigint) "
        /* a reader limited to its hubs does not see rows about intelligence restricted to
         * agencies other than its own: GET answers 404 for those, and their rows would
         * show they exist */
        "AND ($1::uuid[] IS NULL OR record_type IS DISTINCT FROM 'intelligence' OR NOT EXISTS "
        "(SELECT 1 FROM intelligence ri WHERE ri.id::text = record_id AND ri.restricted_to IS NOT "
        "NULL AND NOT $9::uuid = ANY(ri.restricted_to))) ORDER BY seq DESC LIMIT $8::int + 1) "
    "SELECT rows.* FROM rows, (SELECT count(*) FROM audit) a ORDER BY seq DESC";
/* clang-format on */

static const char *const list_cols[] = {
    "seq",    "at",          "user_id",    "username",    "agency_id", "role",
    "action", "outcome",     "route",      "record_type", "record_id", "subject_id",
    "hub_id", "client_addr", "request_id", "purpose",     "hash"};

struct list_ctx {
    int limit;
};

static void listed(struct http_req *r, enum db_status st, PGresult *res)
{
    if (st != DB_OK) {
        if (strncmp(db_sqlstate(res), "22", 2) == 0) {
            http_reply_error(r, 400,
                             "from and to must be RFC 3339 times and before a cursor "
                             "from a previous page");
            return;
        }
        http_reply_db_error(r, res);
        return;
    }
    int n = PQntuples(res), limit = (int)(long)r->handler_data;
    json_object *items = json_object_new_array();
    for (int i = 0; i < n && i < limit; i++) {
        json_object *o = json_object_new_object();
        for (int c = 0; c < (int)(sizeof(list_cols) / sizeof(list_cols[0])); c++) {
            if (PQgetisnull(res, i, c))
                json_object_object_add(o, list_cols[c], NULL);
            else if (c == 0)
                json_object_object_add(o, "seq",
                                       json_object_new_int64(atoll(PQgetvalue(res, i, 0))));
            else
                json_object_object_add(o, list_cols[c],
                                       json_object_new_string(PQgetvalue(res, i, c)));
        }
        json_object_array_add(items, o);
    }
    json_object *body = json_object_new_object();
    json_object_object_add(body, "items", items);
    char *cur = NULL;
    if (n > limit) { /* opaque like every other cursor: base64url of the last seq */
        const char *seq = PQgetvalue(res, limit - 1, 0);
        cur = util_base64url((const unsigned char *)seq, strlen(seq));
    }
    json_object_object_add(body, "next", cur ? json_object_new_string(cur) : NULL);
    free(cur);
    http_reply_json(r, 200, body);
}

void audit_list(struct http_req *r)
{
    int limit;
    char *before, *subject = http_query_param(r, "subject_id"),
                  *user = http_query_param(r, "user_id"), *from = http_query_param(r, "from"),
                  *to = http_query_param(r, "to");
    if ((subject && !json_is_uuid(subject)) || (user && !json_is_uuid(user))) {
        http_reply_error(r, 400, "subject_id and user_id must be ids (UUID)");
        goto done;
    }
    if (res_page(r, &limit, &before) < 0)
        goto done;
    char lim[16], *ctx = audit_context(r);
    snprintf(lim, sizeof(lim), "%d", limit);
    /* Every row if auth_allow says so; else only rows of the hubs it allows (the managed
     * hubs: the same rule, applied per row in SQL). */
    const char *hubs = auth_allow(r->user, AUTH_READ, REC_AUDIT, NULL) ? NULL : r->user->hub_ids;
    const char *params[] = {hubs, subject, user, from, to, before, ctx, lim, r->user->agency_id};
    /* first everything already answered (sequencer.h), so the reader sees it */
    http_query_sequenced(r, SEQ_AUDIT, list_sql, 9, params, listed, (void *)(long)limit);
    free(ctx);
    free(before);
done:
    free(subject);
    free(user);
    free(from);
    free(to);
}

/* ---- GET /v1/audit/verify: recompute every hash in one pass, in the database. */

/* clang-format off */
static const char verify_sql[] =
    "WITH " AUDIT_CTE("$1", "'audit.verify'", "'ok'", "'audit'", "NULL", "NULL", "NULL", "") ", "
    "chain AS (SELECT seq, hash, prev_hash, "
    "  lag(hash, 1, sha256(''::bytea)) OVER (ORDER BY seq) AS want_prev, "
    "  lag(seq, 1, 0::bigint) OVER (ORDER BY seq) AS want_seq, "
    "  sha256(prev_hash || audit_canonical(a)) AS want_hash FROM audit_log a), "
    "bad AS (SELECT seq, why FROM (SELECT seq, CASE WHEN prev_hash <> want_prev THEN 'prev_hash "
        "does not match the row before' WHEN seq <> want_seq + 1 THEN 'a row is missing before "
        "it' ELSE 'its contents do not match its hash' END AS why FROM chain WHERE hash <> "
        "want_hash OR prev_hash <> want_prev OR seq <> want_seq + 1 "
    /* the last rows gone: nothing after them shows a gap, but the head still names them */
    "  UNION ALL SELECT coalesce((SELECT max(seq) FROM audit_log), 0) + 1, 'rows are missing "
        "at the end: the chain''s head is further on' FROM audit_head h WHERE h.seq <> "
        "coalesce((SELECT max(seq) FROM audit_log), 0) OR h.hash <> coalesce((SELECT hash FROM "
        "audit_log ORDER BY seq DESC LIMIT 1), sha256(''::bytea))) x ORDER BY seq LIMIT 1) "
    "SELECT (SELECT count(*) FROM chain), (SELECT seq FROM bad), (SELECT why FROM bad), (SELECT "
        "count(*) FROM audit)";
/* clang-format on */

static void verified(struct http_req *r, enum db_status st, PGresult *res)
{
    if (st != DB_OK) {
        http_reply_db_error(r, res);
        return;
    }
    json_object *o = json_object_new_object();
    int broken = !PQgetisnull(res, 0, 1);
    json_object_object_add(o, "ok", json_object_new_boolean(!broken));
    json_object_object_add(o, "rows", json_object_new_int64(atoll(PQgetvalue(res, 0, 0))));
    if (broken) {
        json_object *b = json_object_new_object();
        json_object_object_add(b, "seq", json_object_new_int64(atoll(PQgetvalue(res, 0, 1))));
        json_object_object_add(b, "reason", json_object_new_string(PQgetvalue(res, 0, 2)));
        json_object_object_add(o, "first_broken", b);
    }
    http_reply_json(r, 200, o);
}

void audit_verify(struct http_req *r)
{
    char *ctx = audit_context(r);
    const char *params[] = {ctx};
    http_query_sequenced(r, SEQ_AUDIT, verify_sql, 1, params, verified, NULL);
    free(ctx);
}
