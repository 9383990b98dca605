/* Young people: create (hub managers of the hub), list / read (their team and the hub's
 * managers), change status, key worker or team. Every read is audited per young person, in
 * the same statement as the read. */
#include "subjects.h"

#include "audit.h"
#include "auth.h"
#include "http.h"
#include "json.h"
#include "problem.h"
#include "resource.h"
#include "routes.h"
#include "util.h"
#include "xmalloc.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const statuses[] = {"in_care", "edge_of_care", "edging_to_care", "care_leaver",
                                       NULL};

static const struct json_field create_fields[] = {
    {"hub_id", JK_UUID, 1, 0, 0, NULL},
    {"reference", JK_STRING, 1, 1, 64, NULL},
    {"given_name", JK_STRING, 1, 1, 100, NULL},
    {"family_name", JK_STRING, 1, 1, 100, NULL},
    {"date_of_birth", JK_STRING, 1, 10, 10, NULL},
    {"status", JK_ENUM, 1, 0, 0, statuses},
    {"key_worker", JK_STRING, 1, 1, 200, NULL},
    {"team", JK_UUID_ARRAY, 0, 0, 30, NULL},
};

static const struct json_field patch_fields[] = {
    {"status", JK_ENUM, 0, 0, 0, statuses},
    {"key_worker", JK_STRING, 0, 1, 200, NULL},
    {"team", JK_UUID_ARRAY, 0, 0, 30, NULL},
};

int subjects_age(const char *dob, const char *today)
{
    int y, m, d, ty, tm, td;
    if (util_parse_date(dob, &y, &m, &d) < 0 || util_parse_date(today, &ty, &tm, &td) < 0)
        return -1;
    int age = ty - y - (tm < m || (tm == m && td < d));
    return age < 0 ? -1 : age;
}

static void today_utc(char out[11])
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(out, 11, "%Y-%m-%d", &tm);
}

/* hub managers manage hubs; is id one of them? (ids are lowercase UUIDs) */
static int manages(const struct http_req *r, const char *hub_id)
{
    char lower[37];
    snprintf(lower, sizeof(lower), "%s", hub_id);
    for (char *c = lower; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    return r->user->role == ROLE_HUB_MANAGER && strstr(r->user->hub_ids, lower) != NULL;
}

/* clang-format off */
static const char create_sql[] =
    "WITH s AS (INSERT INTO subjects (hub_id, reference, given_name, family_name, "
    "           date_of_birth, status, key_worker) VALUES ($1, $2, $3, $4, $5, $6, $7) "
    "           RETURNING *), "
    "t AS (INSERT INTO subject_team (subject_id, agency_id) SELECT s.id, unnest($8::uuid[]) "
    "      FROM s RETURNING agency_id), "
        AUDIT_CTE("$9", "'subject.create'", "'ok'", "'subject'", "s.id::text", "s.id", "s.hub_id",
                  ", s")
    " SELECT " SUBJECT_COLUMNS("s") ", coalesce((SELECT array_agg(agency_id ORDER BY agency_id) "
        "FROM t), '{}') AS team FROM s";
/* clang-format on */

/* The age, named in the same 422 as every other bad field; only for a date_of_birth that
 * is well-formed so far (a string of 10 characters), else the field check has named it. */
static void check_age(json_object *o, struct problem *p)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, "date_of_birth", &v) ||
        !json_object_is_type(v, json_type_string) || json_object_get_string_len(v) != 10)
        return;
    char today[11];
    today_utc(today);
    int age = subjects_age(json_object_get_string(v), today);
    if (age < 12 || age > 25)
        problem_add_field(p, "date_of_birth",
                          age < 0 ? "must be a real date (YYYY-MM-DD), not in the future"
                                  : "the young person must be 12 to 25 years old (is %d)",
                          age);
}

void subjects_create(struct http_req *r)
{
    json_object *o = res_read_body_ex(r, create_fields,
                                      sizeof(create_fields) / sizeof(*create_fields), check_age);
    if (o == NULL)
        return;
    if (!manages(r, json_str(o, "hub_id"))) {
        json_object_put(o);
        http_reply_error(r, 403, "you do not manage this hub");
        return;
    }
    char *team = json_uuid_array_literal(o, "team"), *ctx = audit_context(r);
    const char *params[] = {
        json_str(o, "hub_id"),      json_str(o, "reference"),     json_str(o, "given_name"),
        json_str(o, "family_name"), json_str(o, "date_of_birth"), json_str(o, "status"),
        json_str(o, "key_worker"),  team ? team : "{}",           ctx};
    http_query(r, create_sql, 9, params, res_created);
    free(team);
    free(ctx);
    json_object_put(o);
}

/* ---- list and read: only what the caller may see; one audit row per young person shown */

/* clang-format off */
static const char list_sql[] =
    "WITH rows AS (SELECT " SUBJECT_COLUMNS("s") ", "
    "  array(SELECT agency_id FROM subject_team WHERE subject_id = s.id ORDER BY agency_id) "
    "  AS team, to_char(s.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US') || "
    "  '|' || s.id AS _cursor, s.created_at AS _at "
    "  FROM subjects s WHERE " SUBJECT_VISIBLE("s", "$3", "$4")
    "   AND ($5::uuid IS NULL OR s.hub_id = $5::uuid) "
    "  AND ($6::text IS NULL OR strpos(lower(s.reference), lower($6)) > 0 "
    "       OR strpos(lower(s.given_name || ' ' || s.family_name), lower($6)) > 0) "
    "  AND ($1::text IS NULL OR (s.created_at, s.id) < "
    "       ((split_part($1, '|', 1) || 'Z')::timestamptz, split_part($1, '|', 2)::uuid)) "
    "  ORDER BY s.created_at DESC, s.id DESC LIMIT $2::int + 1), "
        AUDIT_CTE("$7", "'subject.read'", "'ok'", "'subject'", "shown.id::text", "shown.id",
                  "shown.hub_id",
                  ", (SELECT * FROM rows ORDER BY _at DESC, id DESC LIMIT $2::int) shown")
    " SELECT * FROM rows ORDER BY _at DESC, id DESC";
/* clang-format on */

static void listed_or_bad_cursor(struct http_req *r, enum db_status st, PGresult *res)
{
    const char *state = db_sqlstate(res);
    if (st == DB_ERROR && (strncmp(state, "22", 2) == 0)) {
        http_reply_error(r, 400, "before must be a cursor from a previous page's next");
        return;
    }
    res_listed(r, st, res);
}

void subjects_list(struct http_req *r)
{
    int limit;
    char *before, lim[16];
    char *hub = http_query_param(r, "hub_id"), *q = http_query_param(r, "q");
    if (hub != NULL && !json_is_uuid(hub)) {
        http_reply_error(r, 400, "hub_id must be an id (UUID)");
        goto done;
    }
    if (q != NULL && (q[0] == '\0' || !json_utf8_valid(q) || json_utf8_len(q) > 100)) {
        http_reply_error(r, 400, "q must be 1 to 100 characters of UTF-8 text");
        goto done;
    }
    if (res_page(r, &limit, &before) < 0)
        goto done;
    snprintf(lim, sizeof(lim), "%d", limit);
    char *ctx = audit_context(r);
    const char *params[] = {before, lim, r->user->agency_id, r->user->hub_ids, hub, q, ctx};
    r->handler_data = (void *)(long)limit;
    http_query(r, list_sql, 7, params, listed_or_bad_cursor);
    free(ctx);
    free(before);
done:
    free(hub);
    free(q);
}

/* clang-format off */
static const char read_sql[] =
    "WITH s AS (SELECT " SUBJECT_COLUMNS("s") ", array(SELECT agency_id FROM subject_team "
    "           WHERE subject_id = s.id ORDER BY agency_id) AS team FROM subjects s "
    "           WHERE s.id = $1 AND " SUBJECT_VISIBLE("s", "$2", "$3") "), "
        AUDIT_CTE("$4", "'subject.read'", "'ok'", "'subject'", "s.id::text", "s.id", "s.hub_id",
                  ", s")
    " SELECT * FROM s";
/* clang-format on */

void subjects_get(struct http_req *r)
{
    res_get_visible(r, read_sql, res_updated);
}

/* ---- PATCH: the hub's managers change status, key worker or team; the change is streamed
 *
 * Two PATCHes of one young person at once: the second waits for the first's row lock, but
 * the rest of its statement still reads the team as it was when the statement began, so it
 * could not delete the agency the first had just added (team [C], PATCHes [A] and [B] at
 * once: the stored team became [A, B] while the reply said [B]; found in review). So the
 * update only takes the row in the version the statement read (xmin): if another change
 * came in between, nothing is written, and the statement runs again with a fresh view
 * (PATCH_TRIES, then 409). The last PATCH wins whole, as each one's reply says. */
#define PATCH_TRIES 3

/* clang-format off */
static const char patch_sql[] =
    "WITH target AS (SELECT s.id, s.xmin AS version, s.hub_id = ANY($6::uuid[]) AS mine, "
    "  " SUBJECT_VISIBLE("s", "$5", "$6") " AS visible FROM subjects s WHERE s.id = $1), "
    "u AS (UPDATE subjects SET status = coalesce($2, status), "
    "      key_worker = coalesce($3, key_worker), updated_at = now() FROM target "
    "      WHERE subjects.id = target.id AND target.mine AND subjects.xmin = target.version "
    "      RETURNING subjects.*), "
    "gone AS (DELETE FROM subject_team WHERE $4::uuid[] IS NOT NULL "
    "         AND subject_id IN (SELECT id FROM u) AND agency_id <> ALL($4::uuid[])), "
    "added AS (INSERT INTO subject_team (subject_id, agency_id) "
    "          SELECT u.id, a FROM u, unnest($4::uuid[]) a WHERE $4::uuid[] IS NOT NULL "
    "          ON CONFLICT DO NOTHING RETURNING agency_id), "
    "ev AS (INSERT INTO event_queue (type, subject_id, hub_id, record_id) "
    "       SELECT 'subject.updated', u.id, u.hub_id, u.id FROM u), "
        AUDIT_CTE("$7", "'subject.update'", "'ok'", "'subject'", "u.id::text", "u.id", "u.hub_id",
                  ", u")
    " SELECT target.mine AS _mine, target.visible AS _visible, " SUBJECT_COLUMNS("u") ", "
    "  CASE WHEN $4::uuid[] IS NULL THEN array(SELECT agency_id FROM subject_team "
    "       WHERE subject_id = u.id ORDER BY agency_id) "
    "  ELSE array(SELECT DISTINCT a FROM unnest($4::uuid[]) a ORDER BY a) END AS team FROM target "
        "LEFT JOIN u ON u.id = target.id";
/* clang-format on */

static void patched(struct http_req *r, enum db_status st, PGresult *res)
{
    if (st != DB_OK) {
        res_reply_error(r, res);
        return;
    }
    if (PQntuples(res) == 0 || PQgetvalue(res, 0, 1)[0] != 't') {
        http_reply_error(r, 404, "there is no such record");
        return;
    }
    if (PQgetvalue(res, 0, 0)[0] != 't') {
        http_reply_error(r, 403, "only the managers of this young person's hub may change it");
        return;
    }
    if (PQgetisnull(res, 0, 2)) { /* changed since the statement read it: nothing written */
        if (!res_query_again(r, PATCH_TRIES))
            http_reply_error(r, 409,
                             "this young person is being changed by someone else; try again");
        return;
    }
    http_reply_json(r, 200, res_row_json(res, 0));
}

void subjects_update(struct http_req *r)
{
    char *id = res_path_id(r);
    if (id == NULL)
        return;
    json_object *o = res_read_body(r, patch_fields, sizeof(patch_fields) / sizeof(*patch_fields));
    if (o == NULL) {
        free(id);
        return;
    }
    char *team = json_uuid_array_literal(o, "team"), *ctx = audit_context(r);
    const char *params[] = {id,
                            json_has(o, "status") ? json_str(o, "status") : NULL,
                            json_has(o, "key_worker") ? json_str(o, "key_worker") : NULL,
                            team,
                            r->user->agency_id,
                            r->user->hub_ids,
                            ctx};
    res_query_kept(r, patch_sql, 7, params, patched);
    free(team);
    free(ctx);
    free(id);
    json_object_put(o);
}
