/* RAISE meetings: schedule (a hub manager of the hub, who chairs), list and read (the hub's
 * managers and the invited agencies, each seeing only the young people they may see),
 * update (young people, invited agencies, attendance, minutes under the Signs of Safety
 * headings, chair), start (the chair: the agenda is fixed) and close (the chair: attendance
 * and minutes are locked). Every change writes its event and audit rows in its statement. */
#include "meetings.h"

#include "audit.h"
#include "auth.h"
#include "http.h"
#include "intel.h"
#include "json.h"
#include "problem.h"
#include "resource.h"
#include "routes.h"
#include "subjects.h"
#include "xmalloc.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MEETING_SUBJECTS_MAX  50
#define MEETING_AGENCIES_MAX  30
#define MEETING_ATTENDEES_MAX 100

/* ---- rendering: the document, filtered for the reader */

static int contains(const char *list, const char *id)
{
    return list != NULL && id != NULL && *id && strstr(list, id) != NULL;
}

int meeting_people(json_object *doc)
{
    json_object *yp = NULL;
    if (doc == NULL || !json_object_object_get_ex(doc, "young_people", &yp) ||
        !json_object_is_type(yp, json_type_array))
        return 0;
    return (int)json_object_array_length(yp);
}

void meeting_sees(json_object *doc, const struct auth_user *u, unsigned char *seen)
{
    json_object *yp = NULL;
    int n = meeting_people(doc);
    if (n > 0)
        json_object_object_get_ex(doc, "young_people", &yp);
    for (int i = 0; i < n; i++) {
        json_object *s = json_object_array_get_idx(yp, (size_t)i), *hub = NULL, *team = NULL;
        json_object_object_get_ex(s, "_hub", &hub);
        json_object_object_get_ex(s, "_team", &team);
        int sees = contains(u->hub_ids, json_object_get_string(hub));
        for (size_t k = 0; !sees && team && k < json_object_array_length(team); k++)
            sees = strcmp(json_object_get_string(json_object_array_get_idx(team, k)),
                          u->agency_id) == 0;
        seen[i] = (unsigned char)sees;
    }
}

/* The document's values are shared with the copy, not copied (json-c counts references): a
 * copy of a meeting is a few hundred small objects whatever its minutes weigh. */
json_object *meeting_shown(json_object *doc, const unsigned char *seen)
{
    if (meeting_people(doc) == 0)
        return json_object_get(doc);
    json_object *o = json_object_new_object();
    json_object_object_foreach(doc, key, val)
    {
        if (strcmp(key, "young_people") != 0) {
            json_object_object_add(o, key, json_object_get(val));
            continue;
        }
        json_object *shown = json_object_new_array();
        for (size_t i = 0; i < json_object_array_length(val); i++) {
            if (!seen[i])
                continue;
            json_object *person = json_object_new_object();
            json_object_object_foreach(json_object_array_get_idx(val, i), k, v)
            {
                if (strcmp(k, "_hub") != 0 && strcmp(k, "_team") != 0)
                    json_object_object_add(person, k, json_object_get(v));
            }
            json_object_array_add(shown, person);
        }
        json_object_object_add(o, key, shown);
    }
    return o;
}

json_object *meeting_render(const char *doc, const struct auth_user *u)
{
    json_object *o = json_tokener_parse(doc);
    int n = meeting_people(o);
    unsigned char *seen = xcalloc((size_t)n + 1, 1);
    meeting_sees(o, u, seen);
    json_object *shown = meeting_shown(o, seen);
    free(seen);
    json_object_put(o);
    return shown;
}

/* Reply with the meeting as the caller sees it (a second statement after a change: the
 * change's own statement cannot see its rows in MEETING_DOC's subqueries). */
static const char doc_sql[] = "SELECT " MEETING_DOC("m") " FROM meetings m WHERE m.id = $1";

static void doc_done(struct http_req *r, enum db_status st, PGresult *res)
{
    if (st != DB_OK) {
        http_reply_db_error(r, res);
        return;
    }
    if (PQntuples(res) == 0) {
        http_reply_error(r, 404, "there is no such record");
        return;
    }
    json_object *o = meeting_render(PQgetvalue(res, 0, 0), r->user);
    http_reply_json(r, (int)(long)r->handler_data, o);
}

static void reply_meeting(struct http_req *r, const char *id, int status)
{
    const char *params[] = {id};
    r->handler_data = (void *)(long)status;
    http_query(r, doc_sql, 1, params, doc_done);
}

static int manages(const struct http_req *r, const char *hub_id)
{
    char lower[37];
    snprintf(lower, sizeof(lower), "%s", hub_id);
    for (char *c = lower; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    return strstr(r->user->hub_ids, lower) != NULL;
}

static int bad_time(json_object *o, const char *key, struct problem *p)
{
    time_t t;
    json_object *v = NULL;
    if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string) &&
        intel_parse_time(json_object_get_string(v), &t) < 0) {
        problem_add_field(p, key, "must be an RFC 3339 UTC time like 2026-12-01T10:00:00Z");
        return 1;
    }
    return 0;
}

/* ---- POST /v1/meetings */

static const struct json_field create_fields[] = {
    {"hub_id", JK_UUID, 1, 0, 0, NULL},
    {"title", JK_STRING, 1, 1, 200, NULL},
    {"scheduled_for", JK_STRING, 1, 1, 40, NULL},
    {"location", JK_STRING, 0, 0, 200, NULL},
    {"subject_ids", JK_UUID_ARRAY, 0, 0, MEETING_SUBJECTS_MAX, NULL},
    {"invited_agencies", JK_UUID_ARRAY, 0, 0, MEETING_AGENCIES_MAX, NULL},
};

/* $1 hub $2 title $3 scheduled_for $4 location $5 subjects $6 agencies $7 user $8 ctx */
/* clang-format off */
static const char create_sql[] =
    "WITH bad_subjects AS (SELECT count(*) AS n FROM unnest($5::uuid[]) x "
    "  WHERE x NOT IN (SELECT id FROM subjects WHERE hub_id = $1)), "
    "bad_agencies AS (SELECT count(*) AS n FROM unnest($6::uuid[]) x "
    "  WHERE x NOT IN (SELECT id FROM agencies)), "
    "m AS (INSERT INTO meetings (hub_id, title, scheduled_for, location, chair_id, created_by) "
    "  SELECT $1, $2, $3, $4, $7, $7 FROM bad_subjects bs, bad_agencies ba "
    "  WHERE bs.n = 0 AND ba.n = 0 RETURNING *), "
    "ms AS (INSERT INTO meeting_subjects (meeting_id, subject_id) "
    "  SELECT m.id, x FROM m, unnest($5::uuid[]) x), "
    "ma AS (INSERT INTO meeting_agencies (meeting_id, agency_id) "
    "  SELECT m.id, x FROM m, unnest($6::uuid[]) x), "
    "ev AS (INSERT INTO event_queue (type, hub_id, record_id) "
    "  SELECT 'meeting.scheduled', m.hub_id, m.id FROM m), "
        AUDIT_CTE("$8", "'meeting.create'", "'ok'", "'meeting'", "m.id::text", "NULL", "m.hub_id",
                  ", m")
    " SELECT (SELECT n FROM bad_subjects), (SELECT n FROM bad_agencies), (SELECT id FROM m)";
/* clang-format on */

static void created(struct http_req *r, enum db_status st, PGresult *res)
{
    if (st != DB_OK) {
        res_reply_error(r, res);
        return;
    }
    if (atoi(PQgetvalue(res, 0, 0)) > 0 || atoi(PQgetvalue(res, 0, 1)) > 0) {
        struct problem *p = problem_new(422, "the request has invalid fields");
        if (atoi(PQgetvalue(res, 0, 0)) > 0)
            problem_add_field(p, "subject_ids", "may list only young people of this hub");
        if (atoi(PQgetvalue(res, 0, 1)) > 0)
            problem_add_field(p, "invited_agencies", "no such agency");
        http_reply_problem(r, p);
        return;
    }
    reply_meeting(r, PQgetvalue(res, 0, 2), 201);
}

void meetings_create(struct http_req *r)
{
    size_t len;
    const char *body = http_body(r, &len);
    struct problem *p = NULL;
    json_object *o = json_parse_body(body, len, &p);
    if (o == NULL) {
        http_reply_problem(r, p);
        return;
    }
    p = problem_new(422, "the request has invalid fields");
    json_validate(o, create_fields, sizeof(create_fields) / sizeof(*create_fields), p);
    bad_time(o, "scheduled_for", p);
    if (problem_field_count(p) > 0) {
        json_object_put(o);
        http_reply_problem(r, p);
        return;
    }
    problem_free(p);
    if (!manages(r, json_str(o, "hub_id"))) {
        json_object_put(o);
        http_reply_error(r, 403, "you do not manage this hub");
        return;
    }
    char *subjects = json_uuid_array_literal(o, "subject_ids"),
         *agencies = json_uuid_array_literal(o, "invited_agencies"), *ctx = audit_context(r);
    const char *params[] = {json_str(o, "hub_id"),
                            json_str(o, "title"),
                            json_str(o, "scheduled_for"),
                            json_has(o, "location") ? json_str(o, "location") : NULL,
                            subjects ? subjects : "{}",
                            agencies ? agencies : "{}",
                            r->user->id,
                            ctx};
    http_query(r, create_sql, 8, params, created);
    free(subjects);
    free(agencies);
    free(ctx);
    json_object_put(o);
}

/* A meeting read is audited once for each young person on it whom the reader sees
 * (meeting_render's rule: their hub is one the reader manages, or the reader's agency is
 * on their team), with subject_id, so "who has read about this young person" finds the
 * minutes read too; and once with no young person if the reader sees none. Until
 * 2026-12-07 it was one row per meeting with no young person named. Joined to the rows of
 * meetings m (an alias) as yp. */
#define SHOWN_PEOPLE(m, agency, hubs)                                                              \
    "LEFT JOIN LATERAL (SELECT s.id FROM meeting_subjects ms JOIN subjects s ON "                  \
    "s.id = ms.subject_id WHERE ms.meeting_id = " m                                                \
    ".id AND " SUBJECT_VISIBLE("s", agency, hubs) ") yp ON true"

/* ---- GET /v1/meetings?hub_id=&from=&to=: soonest last; cursor paged
 *
 * Each meeting as a summary (MEETING_SUMMARY): no young people, minutes or actions, so a
 * list shows no case data and is audited once per meeting, naming no young person
 * (meeting.list). Until 2026-12-07 a list carried every meeting's whole document: up to
 * 200 meetings of up to 50 young people's minutes (4 MB each at most), and a
 * meeting.read audit row per young person shown, for a page that shows dates and titles. */

/* clang-format off */
static const char list_sql[] =
    "WITH rows AS (SELECT " MEETING_SUMMARY("m", "$3", "$4") " AS doc, m.id, m.hub_id, m.scheduled_for AS _at, "
    "  to_char(m.scheduled_for AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US') || '|' || "
    "  m.id AS _cursor FROM meetings m WHERE " MEETING_VISIBLE("m", "$3", "$4")
    "   AND ($5::uuid IS NULL OR m.hub_id = $5::uuid) "
    "  AND ($6::timestamptz IS NULL OR m.scheduled_for >= $6::timestamptz) "
    "  AND ($7::timestamptz IS NULL OR m.scheduled_for < $7::timestamptz) "
    "  AND ($1::text IS NULL OR (m.scheduled_for, m.id) < "
    "       ((split_part($1, '|', 1) || 'Z')::timestamptz, split_part($1, '|', 2)::uuid)) "
    "  ORDER BY m.scheduled_for DESC, m.id DESC LIMIT $2::int + 1), "
        AUDIT_CTE("$8", "'meeting.list'", "'ok'", "'meeting'", "shown.id::text", "NULL",
                  "shown.hub_id",
                  ", (SELECT * FROM rows ORDER BY _at DESC, id DESC LIMIT $2::int) shown")
    " SELECT doc, _cursor FROM rows ORDER BY _at DESC, id DESC";
/* clang-format on */

static void listed(struct http_req *r, enum db_status st, PGresult *res)
{
    if (st == DB_ERROR && strncmp(db_sqlstate(res), "22", 2) == 0) {
        http_reply_error(r, 400, "before must be a cursor from a previous page's next");
        return;
    }
    if (st != DB_OK) {
        http_reply_db_error(r, res);
        return;
    }
    int n = PQntuples(res), limit = (int)(long)r->handler_data;
    json_object *items = json_object_new_array(), *body = json_object_new_object();
    for (int i = 0; i < n && i < limit; i++)
        json_object_array_add(items, json_tokener_parse(PQgetvalue(res, i, 0)));
    json_object_object_add(body, "items", items);
    json_object_object_add(body, "next", res_next_cursor(res, n, limit, 1));
    http_reply_json(r, 200, body);
}

void meetings_list(struct http_req *r)
{
    int limit;
    char *before = NULL, lim[16];
    char *hub = http_query_param(r, "hub_id"), *from = http_query_param(r, "from"),
         *to = http_query_param(r, "to");
    time_t t;
    if ((hub && !json_is_uuid(hub)) || (from && intel_parse_time(from, &t) < 0) ||
        (to && intel_parse_time(to, &t) < 0)) {
        http_reply_error(r, 400, "hub_id must be an id, from and to RFC 3339 UTC times");
        goto done;
    }
    if (res_page(r, &limit, &before) < 0)
        goto done;
    snprintf(lim, sizeof(lim), "%d", limit);
    char *ctx = audit_context(r);
    const char *params[] = {before, lim, r->user->agency_id, r->user->hub_ids, hub, from, to, ctx};
    r->handler_data = (void *)(long)limit;
    http_query(r, list_sql, 8, params, listed);
    free(ctx);
done:
    free(before);
    free(hub);
    free(from);
    free(to);
}

/* ---- GET /v1/meetings/{id} */

/* clang-format off */
static const char read_sql[] =
    "WITH m AS (SELECT " MEETING_DOC("m") " AS doc, m.id, m.hub_id FROM meetings m "
    "  WHERE m.id = $1 AND " MEETING_VISIBLE("m", "$2", "$3") "), "
        AUDIT_CTE("$4", "'meeting.read'", "'ok'", "'meeting'", "m.id::text", "yp.id", "m.hub_id",
                  ", m " SHOWN_PEOPLE("m", "$2", "$3"))
    " SELECT doc FROM m";
/* clang-format on */

void meetings_get(struct http_req *r)
{
    res_get_visible(r, read_sql, doc_done);
}

/* ---- PATCH /v1/meetings/{id}: the hub's managers, until the meeting is closed */

static const struct json_field patch_fields[] = {
    {"title", JK_STRING, 0, 1, 200, NULL},
    {"scheduled_for", JK_STRING, 0, 1, 40, NULL},
    {"location", JK_STRING, 0, 0, 200, NULL},
    {"chair_id", JK_UUID, 0, 0, 0, NULL},
    {"add_subjects", JK_UUID_ARRAY, 0, 1, MEETING_SUBJECTS_MAX, NULL},
    {"remove_subjects", JK_UUID_ARRAY, 0, 1, MEETING_SUBJECTS_MAX, NULL},
    {"invited_agencies", JK_UUID_ARRAY, 0, 0, MEETING_AGENCIES_MAX, NULL},
    /* checked by check_attendance / check_minutes */
    {"attendance", JK_STRING, 0, 0, 0, NULL},
    {"minutes", JK_STRING, 0, 0, 0, NULL},
};

static const struct json_field attendee_fields[] = {
    {"name", JK_STRING, 1, 1, 200, NULL},
    {"agency_id", JK_UUID, 1, 0, 0, NULL},
    {"user_id", JK_UUID, 0, 0, 0, NULL},
};

static const struct json_field minutes_fields[] = {
    {"subject_id", JK_UUID, 1, 0, 0, NULL},
    {"worried_about", JK_STRING, 0, 0, 20000, NULL},
    {"working_well", JK_STRING, 0, 0, 20000, NULL},
    {"needs_to_happen", JK_STRING, 0, 0, 20000, NULL},
    {"decisions", JK_STRING, 0, 0, 20000, NULL},
};

/* Each element of the array under key must be an object valid against fields; errors are
 * named key[i].field. Returns the number of errors added. */
static int check_array(json_object *o, const char *key, const struct json_field *fields,
                       size_t nfields, size_t max, struct problem *p)
{
    json_object *a = NULL;
    if (!json_object_object_get_ex(o, key, &a))
        return 0;
    if (!json_object_is_type(a, json_type_array) || json_object_array_length(a) > max) {
        problem_add_field(p, key, "must be an array of at most %zu objects", max);
        return 1;
    }
    int errors = 0;
    for (size_t i = 0; i < json_object_array_length(a); i++) {
        json_object *e = json_object_array_get_idx(a, i);
        struct problem *sub = problem_new(422, "x");
        if (!json_object_is_type(e, json_type_object))
            problem_add_field(sub, "", "must be an object");
        else
            json_validate(e, fields, nfields, sub);
        errors += problem_prefix_fields(p, sub, key, i);
        problem_free(sub);
    }
    return errors;
}

/* $1 id $2 agency $3 hubs $4 user $5 title $6 scheduled_for $7 location $8 location given
 * $9 chair $10 add $11 remove $12 invited $13 attendance $14 minutes $15 ctx
 *
 * Two PATCHes of one meeting at once: the second waits for the first's lock (FOR UPDATE),
 * which then gives it the row as the first left it, but the rest of its statement reads
 * the meeting's lists as they were when it began. Its "replace the invited agencies" and
 * "replace the attendance" then kept what the first had added: two attendance lists became
 * one list of both (found in review). So the statement writes only if the row it locked
 * is the version it began with (fresh: xmin), and otherwise runs again with a fresh view
 * (PATCH_TRIES, then 409). */
#define PATCH_TRIES 3
/* clang-format off */
static const char patch_sql[] =
    "WITH m AS (SELECT m.*, m.xmin AS version FROM meetings m WHERE m.id = $1 AND "
        MEETING_VISIBLE("m", "$2", "$3") " FOR UPDATE), "
    "chk AS (SELECT m.id, m.hub_id, m.hub_id = ANY($3::uuid[]) AS mine, m.status, "
    "  m.version = (SELECT xmin FROM meetings WHERE id = $1) AS fresh, "
    "  ($9::uuid IS NULL OR EXISTS (SELECT 1 FROM hub_managers hm JOIN users cu ON "
    "    cu.id = hm.user_id WHERE hm.hub_id = m.hub_id AND hm.user_id = $9::uuid AND "
    "    cu.active AND cu.role = 'hub_manager')) AS chair_ok, "
    "  (SELECT count(*) FROM unnest($10::uuid[]) x WHERE x NOT IN "
    "    (SELECT id FROM subjects WHERE hub_id = m.hub_id)) AS bad_add, "
    "  (SELECT count(*) FROM jsonb_array_elements($14::jsonb) e WHERE (e->>'subject_id')::uuid "
    "    NOT IN (SELECT subject_id FROM meeting_subjects WHERE meeting_id = m.id UNION ALL "
    "    SELECT unnest($10::uuid[])) OR (e->>'subject_id')::uuid = ANY($11::uuid[])) "
    "    AS bad_minutes, "
    "  (SELECT count(*) FROM unnest($12::uuid[]) x WHERE x NOT IN (SELECT id FROM agencies)) "
    "    AS bad_invited, "
    "  (SELECT count(*) FROM jsonb_array_elements($13::jsonb) e WHERE NOT EXISTS (SELECT 1 "
    "    FROM agencies a WHERE a.id = (e->>'agency_id')::uuid) OR (e->>'user_id' IS NOT NULL "
    "    AND NOT EXISTS (SELECT 1 FROM users au WHERE au.id = (e->>'user_id')::uuid AND "
    "    au.agency_id = (e->>'agency_id')::uuid))) AS bad_attendance "
    "  FROM m), "
    "ok AS (SELECT * FROM chk WHERE fresh AND mine AND status <> 'closed' AND chair_ok AND bad_add = 0 "
    "  AND bad_minutes = 0 AND bad_invited = 0 AND bad_attendance = 0 AND (status = "
    "  'scheduled' OR ($6::text IS NULL AND $10::uuid[] IS NULL AND $11::uuid[] IS NULL))), "
    "u AS (UPDATE meetings SET title = coalesce($5, title), scheduled_for = "
    "  coalesce($6::timestamptz, scheduled_for), location = CASE WHEN $8::bool THEN $7 "
    "  ELSE location END, chair_id = coalesce($9::uuid, chair_id), updated_at = now() "
    "  FROM ok WHERE meetings.id = ok.id RETURNING meetings.*), "
    "add_s AS (INSERT INTO meeting_subjects (meeting_id, subject_id) "
    "  SELECT u.id, x FROM u, unnest($10::uuid[]) x ON CONFLICT DO NOTHING), "
    "rm_s AS (DELETE FROM meeting_subjects WHERE meeting_id IN (SELECT id FROM u) "
    "  AND subject_id = ANY($11::uuid[])), "
    "rm_a AS (DELETE FROM meeting_agencies WHERE $12::uuid[] IS NOT NULL AND meeting_id IN "
    "  (SELECT id FROM u) AND agency_id <> ALL($12::uuid[])), "
    "add_a AS (INSERT INTO meeting_agencies (meeting_id, agency_id) "
    "  SELECT u.id, x FROM u, unnest($12::uuid[]) x ON CONFLICT DO NOTHING), "
    "rm_t AS (DELETE FROM meeting_attendance WHERE $13::jsonb IS NOT NULL AND meeting_id IN "
    "  (SELECT id FROM u)), "
    "add_t AS (INSERT INTO meeting_attendance (meeting_id, position, name, agency_id, user_id) "
    "  SELECT u.id, e.n, e.v->>'name', (e.v->>'agency_id')::uuid, (e.v->>'user_id')::uuid "
    "  FROM u, jsonb_array_elements($13::jsonb) WITH ORDINALITY e(v, n)), "
    "min AS (INSERT INTO meeting_minutes AS mm (meeting_id, subject_id, worried_about, "
    "  working_well, needs_to_happen, decisions, updated_by) "
    "  SELECT u.id, (e->>'subject_id')::uuid, e->>'worried_about', e->>'working_well', "
    "  e->>'needs_to_happen', e->>'decisions', $4 FROM u, jsonb_array_elements($14::jsonb) e "
    "  ON CONFLICT (meeting_id, subject_id) DO UPDATE SET "
    "  worried_about = coalesce(excluded.worried_about, mm.worried_about), "
    "  working_well = coalesce(excluded.working_well, mm.working_well), "
    "  needs_to_happen = coalesce(excluded.needs_to_happen, mm.needs_to_happen), "
    "  decisions = coalesce(excluded.decisions, mm.decisions), "
    "  updated_by = excluded.updated_by, updated_at = now()), "
    "ev AS (INSERT INTO event_queue (type, hub_id, record_id) "
    "  SELECT 'meeting.updated', u.hub_id, u.id FROM u), "
        AUDIT_CTE("$15", "'meeting.update'", "'ok'", "'meeting'", "u.id::text", "NULL", "u.hub_id",
                  ", u")
    " SELECT chk.mine, chk.status, chk.chair_ok, chk.bad_add, chk.bad_minutes, chk.bad_invited, "
    "  chk.bad_attendance, u.id, chk.fresh FROM chk LEFT JOIN u ON u.id = chk.id";
/* clang-format on */

static void patched(struct http_req *r, enum db_status st, PGresult *res)
{
    if (st != DB_OK) {
        res_reply_error(r, res);
        return;
    }
    if (PQntuples(res) == 0) {
        http_reply_error(r, 404, "there is no such record");
        return;
    }
    if (!PQgetisnull(res, 0, 7)) {
        reply_meeting(r, PQgetvalue(res, 0, 7), 200);
        return;
    }
    if (PQgetvalue(res, 0, 8)[0] != 't') { /* changed meanwhile: nothing written (above) */
        if (!res_query_again(r, PATCH_TRIES))
            http_reply_error(r, 409, "this meeting is being changed by someone else; try again");
        return;
    }
    const char *status = PQgetvalue(res, 0, 1);
    if (PQgetvalue(res, 0, 0)[0] != 't') {
        http_reply_error(r, 403, "only the managers of this meeting's hub may change it");
        return;
    }
    if (strcmp(status, "closed") == 0) {
        http_reply_error(r, 409, "this meeting is closed: its record can no longer change");
        return;
    }
    static const struct {
        int col;
        const char *field, *message;
    } checks[] = {
        {2, "chair_id", "must be an active manager of this meeting's hub"},
        {3, "add_subjects", "may list only young people of this hub"},
        {4, "minutes", "may only be for young people on this meeting"},
        {5, "invited_agencies", "no such agency"},
        {6, "attendance", "each agency must exist and each user_id belong to its agency"},
    };
    struct problem *p = problem_new(422, "the request has invalid fields");
    for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
        const char *v = PQgetvalue(res, 0, checks[i].col);
        if ((checks[i].col == 2 && v[0] != 't') || (checks[i].col > 2 && atoi(v) > 0))
            problem_add_field(p, checks[i].field, "%s", checks[i].message);
    }
    if (problem_field_count(p) > 0) {
        http_reply_problem(r, p);
        return;
    }
    problem_free(p);
    http_reply_error(r, 409,
                     "this meeting has started: its young people and time are fixed with "
                     "its agenda");
}

/* Each young person at most once in "minutes": the statement writes each one's row once, and
 * a second entry for the same one was a 500 ("cannot affect row a second time"; found in
 * review). Ids compare without case, as the database's uuids do. */
static void check_minutes_once(json_object *wrap, struct problem *p)
{
    json_object *a = NULL;
    if (!json_object_object_get_ex(wrap, "minutes", &a) || !json_object_is_type(a, json_type_array))
        return;
    size_t n = json_object_array_length(a);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < i; j++)
            if (strcasecmp(json_str(json_object_array_get_idx(a, i), "subject_id"),
                           json_str(json_object_array_get_idx(a, j), "subject_id")) == 0) {
                problem_add_field(p, "minutes", "lists a young person twice");
                return;
            }
}

static char *json_member_text(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, key, &v) || v == NULL)
        return NULL;
    return xstrdup(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
}

void meetings_update(struct http_req *r)
{
    char *id = res_path_id(r);
    if (id == NULL)
        return;
    size_t len;
    const char *body = http_body(r, &len);
    struct problem *p = NULL;
    json_object *o = json_parse_body(body, len, &p);
    if (o == NULL) {
        free(id);
        http_reply_problem(r, p);
        return;
    }
    /* attendance and minutes are arrays of objects: validated here, not by the table */
    json_object *att = NULL, *min = NULL;
    json_object_object_get_ex(o, "attendance", &att);
    json_object_object_get_ex(o, "minutes", &min);
    json_object_get(att);
    json_object_get(min);
    json_object_object_del(o, "attendance");
    json_object_object_del(o, "minutes");
    p = problem_new(422, "the request has invalid fields");
    json_validate(o, patch_fields, sizeof(patch_fields) / sizeof(*patch_fields), p);
    bad_time(o, "scheduled_for", p);
    json_object *wrap = json_object_new_object();
    if (att != NULL)
        json_object_object_add(wrap, "attendance", att);
    if (min != NULL)
        json_object_object_add(wrap, "minutes", min);
    check_array(wrap, "attendance", attendee_fields, 3, MEETING_ATTENDEES_MAX, p);
    if (check_array(wrap, "minutes", minutes_fields, 5, MEETING_SUBJECTS_MAX, p) == 0)
        check_minutes_once(wrap, p);
    if (json_object_object_length(o) == 0 && json_object_object_length(wrap) == 0)
        problem_add_field(p, "", "nothing to change");
    char *add = json_uuid_array_literal(o, "add_subjects"),
         *rm = json_uuid_array_literal(o, "remove_subjects");
    if (add && rm) { /* ids compare without case, as the database's uuids do (review) */
        json_object *a = NULL, *d = NULL;
        json_object_object_get_ex(o, "add_subjects", &a);
        json_object_object_get_ex(o, "remove_subjects", &d);
        int both = 0;
        for (size_t i = 0; i < json_object_array_length(a) && !both; i++)
            for (size_t j = 0; j < json_object_array_length(d) && !both; j++)
                both = strcasecmp(json_object_get_string(json_object_array_get_idx(a, i)),
                                  json_object_get_string(json_object_array_get_idx(d, j))) == 0;
        if (both)
            problem_add_field(p, "remove_subjects", "may not also be in add_subjects");
    }
    if (problem_field_count(p) > 0) {
        http_reply_problem(r, p);
        goto done;
    }
    problem_free(p);
    char *inv = json_uuid_array_literal(o, "invited_agencies"), *ctx = audit_context(r);
    char *att_text = json_member_text(wrap, "attendance"),
         *min_text = json_member_text(wrap, "minutes");
    json_object *loc = NULL;
    int loc_given = json_object_object_get_ex(o, "location", &loc);
    const char *params[] = {id,
                            r->user->agency_id,
                            r->user->hub_ids,
                            r->user->id,
                            json_has(o, "title") ? json_str(o, "title") : NULL,
                            json_has(o, "scheduled_for") ? json_str(o, "scheduled_for") : NULL,
                            loc ? json_object_get_string(loc) : NULL,
                            loc_given ? "true" : "false",
                            json_has(o, "chair_id") ? json_str(o, "chair_id") : NULL,
                            add,
                            rm,
                            inv,
                            att_text,
                            min_text,
                            ctx};
    res_query_kept(r, patch_sql, 15, params, patched);
    free(inv);
    free(ctx);
    free(att_text);
    free(min_text);
done:
    free(add);
    free(rm);
    json_object_put(wrap);
    json_object_put(o);
    free(id);
}

/* ---- POST /v1/meetings/{id}/start and /close: the chair */

/* Start: the window of each young person (since their last RAISE discussion, or 28 days)
 * and exactly which intelligence items and actions are on the agenda are stored. Like a
 * PATCH (above), it starts only if the row it locked is the version its statement began
 * with: a PATCH adding a young person that committed while the start waited for the lock
 * was otherwise on the meeting but not on its agenda, with no window (found in review).
 * If not, it runs again. */
/* clang-format off */
static const char start_sql[] =
    "WITH m AS (SELECT m.*, m.xmin = (SELECT xmin FROM meetings WHERE id = $1) AS fresh "
    "  FROM meetings m WHERE m.id = $1 AND " MEETING_VISIBLE("m", "$2", "$3") " FOR UPDATE), "
    "u AS (UPDATE meetings SET status = 'started', started_at = now(), started_by = $4, "
    "  updated_at = now() FROM m WHERE meetings.id = m.id AND m.status = 'scheduled' "
    "  AND m.chair_id = $4 AND m.hub_id = ANY($3::uuid[]) AND m.fresh RETURNING meetings.*), "
    "win AS (SELECT ms.subject_id, coalesce(" LAST_MET("ms.subject_id", "u.id", "u.started_at")
    ", u.started_at - interval '28 days') AS since, " LAST_MEETING("ms.subject_id", "u.id", "u.started_at") " AS prev, u.id AS meeting_id "
    "  FROM u JOIN meeting_subjects ms ON ms.meeting_id = u.id), "
    "fix AS (UPDATE meeting_subjects SET since = win.since FROM win WHERE "
    "  meeting_subjects.meeting_id = win.meeting_id AND "
    "  meeting_subjects.subject_id = win.subject_id), "
    "items AS (INSERT INTO meeting_agenda_items (meeting_id, subject_id, kind, record_id) "
    "  SELECT win.meeting_id, i.subject_id, 'intelligence', i.id FROM win JOIN intelligence i "
    "  ON i.subject_id = win.subject_id AND " IN_WINDOW("i", "win.since", "win.prev")
    "  AND i.retracted_at IS NULL), "
    "acts AS (INSERT INTO meeting_agenda_items (meeting_id, subject_id, kind, record_id) "
    "  SELECT win.meeting_id, a.subject_id, 'action', a.id FROM win JOIN actions a "
    "  ON a.subject_id = win.subject_id AND (a.status = 'open' OR (a.status = 'completed' "
    "  AND a.completed_at >= win.since))), "
    "ev AS (INSERT INTO event_queue (type, hub_id, record_id) "
    "  SELECT 'meeting.started', u.hub_id, u.id FROM u), "
        AUDIT_CTE("$5", "'meeting.start'", "'ok'", "'meeting'", "u.id::text", "NULL", "u.hub_id",
                  ", u")
    " SELECT m.chair_id = $4 AND m.hub_id = ANY($3::uuid[]), m.status, u.id, m.fresh FROM m LEFT JOIN u ON u.id = m.id";
/* clang-format on */

/* clang-format off */
static const char close_sql[] =
    "WITH m AS (SELECT m.* FROM meetings m WHERE m.id = $1 AND " MEETING_VISIBLE("m", "$2", "$3")
        " FOR UPDATE), "
    "u AS (UPDATE meetings SET status = 'closed', closed_at = now(), closed_by = $4, "
    "  updated_at = now() FROM m WHERE meetings.id = m.id AND m.status = 'started' "
    "  AND m.chair_id = $4 AND m.hub_id = ANY($3::uuid[]) RETURNING meetings.*), "
    "ev AS (INSERT INTO event_queue (type, hub_id, record_id) "
    "  SELECT 'meeting.closed', u.hub_id, u.id FROM u), "
        AUDIT_CTE("$5", "'meeting.close'", "'ok'", "'meeting'", "u.id::text", "NULL", "u.hub_id",
                  ", u")
    " SELECT m.chair_id = $4 AND m.hub_id = ANY($3::uuid[]), m.status, u.id, true FROM m LEFT JOIN u ON u.id = m.id";
/* clang-format on */

static void transitioned(struct http_req *r, enum db_status st, PGresult *res)
{
    if (st != DB_OK) {
        http_reply_db_error(r, res);
        return;
    }
    if (PQntuples(res) == 0)
        http_reply_error(r, 404, "there is no such record");
    else if (PQgetvalue(res, 0, 0)[0] != 't')
        http_reply_error(r, 403,
                         "only the meeting's chair, while a manager of its hub, may start "
                         "or close it");
    else if (PQgetisnull(res, 0, 2) && PQgetvalue(res, 0, 3)[0] != 't') {
        if (!res_query_again(r, PATCH_TRIES)) /* changed meanwhile: nothing written */
            http_reply_error(r, 409, "this meeting is being changed by someone else; try again");
    } else if (PQgetisnull(res, 0, 2))
        http_reply_error(
            r, 409,
            strcmp(PQgetvalue(res, 0, 1), "scheduled") == 0 ? "this meeting has not started"
            : strcmp(PQgetvalue(res, 0, 1), "started") == 0 ? "this meeting has already started"
                                                            : "this meeting is closed");
    else
        reply_meeting(r, PQgetvalue(res, 0, 2), 200);
}

static void transition(struct http_req *r, const char *sql)
{
    char *id = res_path_id(r);
    if (id == NULL)
        return;
    char *ctx = audit_context(r);
    const char *params[] = {id, r->user->agency_id, r->user->hub_ids, r->user->id, ctx};
    res_query_kept(r, sql, 5, params, transitioned);
    free(ctx);
    free(id);
}

void meetings_start(struct http_req *r)
{
    transition(r, start_sql);
}

void meetings_close(struct http_req *r)
{
    transition(r, close_sql);
}
