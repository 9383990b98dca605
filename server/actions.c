/* Agency actions: created by a hub manager in a RAISE meeting (or between meetings) for one
 * young person and owned by one agency on their team; completed (with a note), updated or
 * declared impossible by that agency; reopened or cancelled by the hub's managers; marked
 * overdue, exactly once per open period, by a sweeper any number of server processes may
 * run. Every transition is one statement that locks the action, checks who and from which
 * state, and writes the change, its history row, its event and its audit row together. */
#include "actions.h"

#include "audit.h"
#include "auth.h"
#include "db.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "meetings.h"
#include "problem.h"
#include "raise_limits.h"
#include "resource.h"
#include "routes.h"
#include "util.h"
#include "xmalloc.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOTE_MAX   4000 /* completion notes and progress updates */
#define REASON_MAX 2000 /* cancel, reopen and "cannot complete" reasons */

/* ---- replying with the action (a second statement: the change's own statement cannot see
 * the history row it writes) */

/* clang-format off */
static const char doc_sql[] =
    "SELECT " ACTION_JSON("a") " || jsonb_build_object('history', " ACTION_HISTORY("a") ") "
    "FROM actions a WHERE a.id = $1";
/* clang-format on */

static void reply_action(struct http_req *r, const char *id, int status)
{
    const char *params[] = {id};
    r->handler_data = (void *)(long)status;
    http_query(r, doc_sql, 1, params, res_reply_document);
}

/* due_date, when given, must be a real date "YYYY-MM-DD". */
static void check_due_date(json_object *o, struct problem *p)
{
    int y, m, d;
    if (json_has(o, "due_date") && util_parse_date(json_str(o, "due_date"), &y, &m, &d) < 0)
        problem_add_field(p, "due_date", "must be a date like 2026-12-31");
}

/* ---- POST /v1/meetings/{id}/actions and POST /v1/actions (between meetings) */

static const struct json_field create_fields[] = {
    {"subject_id", JK_UUID, 1, 0, 0, NULL},   {"owner_agency_id", JK_UUID, 1, 0, 0, NULL},
    {"assignee_id", JK_UUID, 0, 0, 0, NULL},  {"description", JK_STRING, 1, 1, 2000, NULL},
    {"due_date", JK_STRING, 1, 10, 10, NULL},
};

/* $1 meeting (NULL between meetings) $2 subject $3 owner agency $4 assignee $5 description
 * $6 due date $7 user $8 agency $9 hubs $10 audit context
 * The meeting is locked (FOR SHARE) while its status is read: a close in progress is waited
 * for and then seen (409), where before an action could be recorded in a meeting that had
 * just closed (found in review). So are the rows that put the young person on the meeting
 * and the owner agency on their team: a change that removes either is waited for and then
 * seen (422). The statement's other reads see the data as it was when it began, so without
 * the locks an action went into a meeting the young person had just left, or to an agency
 * just taken off the team, which kept sight of the young person through it (review). */
/* clang-format off */
static const char create_sql[] =
    "WITH mt AS (SELECT m.id, m.status, m.hub_id = ANY($9::uuid[]) AS manages FROM meetings m "
    "  WHERE m.id = $1::uuid AND " MEETING_VISIBLE("m", "$8", "$9") " FOR SHARE OF m), "
    "subj AS (SELECT s.id, s.hub_id, h.time_zone FROM subjects s JOIN hubs h ON h.id = s.hub_id "
    "  WHERE s.id = $2 AND s.hub_id = ANY($9::uuid[])), "
    "on_m AS (SELECT 1 FROM meeting_subjects WHERE meeting_id = $1::uuid AND subject_id = $2 "
    "  FOR SHARE), "
    "owner AS (SELECT 1 FROM subject_team WHERE subject_id = $2 AND agency_id = $3 FOR SHARE), "
    "chk AS (SELECT "
    "  ($1::uuid IS NULL OR EXISTS (SELECT 1 FROM mt)) AS meeting_seen, "
    "  ($1::uuid IS NULL OR EXISTS (SELECT 1 FROM mt WHERE manages)) AS meeting_managed, "
    "  ($1::uuid IS NULL OR EXISTS (SELECT 1 FROM mt WHERE status <> 'closed')) AS meeting_open, "
    "  EXISTS (SELECT 1 FROM subj) AS subject_ok, "
    "  ($1::uuid IS NULL OR EXISTS (SELECT 1 FROM on_m)) AS on_meeting, "
    "  EXISTS (SELECT 1 FROM owner) AS owner_ok, "
    "  ($4::uuid IS NULL OR EXISTS (SELECT 1 FROM users WHERE id = $4::uuid AND agency_id = $3 "
    "    AND active AND role <> 'admin')) AS assignee_ok, "
    "  coalesce($6::date >= (SELECT (now() AT TIME ZONE time_zone)::date FROM subj), true) "
    "    AS due_ok), "
    "ins AS (INSERT INTO actions (subject_id, hub_id, meeting_id, owner_agency_id, assignee_id, "
    "    description, due_date, created_by) "
    "  SELECT subj.id, subj.hub_id, $1::uuid, $3, $4::uuid, $5, $6::date, $7 FROM subj, chk "
    "  WHERE chk.meeting_seen AND chk.meeting_managed AND chk.meeting_open AND chk.on_meeting "
    "    AND chk.owner_ok AND chk.assignee_ok AND chk.due_ok RETURNING *), "
    "hist AS (INSERT INTO action_history (action_id, user_id, agency_id, kind, to_status, note) "
    "  SELECT id, $7, $8, 'created', 'open', NULL FROM ins), "
    "ev AS (INSERT INTO event_queue (type, subject_id, hub_id, record_id) "
    "  SELECT 'action.created', subject_id, hub_id, id FROM ins), "
    AUDIT_CTE("$10", "'action.create'", "'ok'", "'action'", "ins.id::text", "ins.subject_id",
              "ins.hub_id", ", ins") " "
    "SELECT chk.meeting_seen, chk.meeting_managed, chk.meeting_open, chk.subject_ok, "
    "  chk.on_meeting, chk.owner_ok, chk.assignee_ok, chk.due_ok, (SELECT id FROM ins) FROM chk";
/* clang-format on */

enum { C_SEEN, C_MANAGED, C_OPEN, C_SUBJECT, C_ON_MEETING, C_OWNER, C_ASSIGNEE, C_DUE, C_ID };

static int yes(PGresult *res, int col)
{
    return PQgetvalue(res, 0, col)[0] == 't';
}

static void created(struct http_req *r, enum db_status st, PGresult *res)
{
    if (st != DB_OK) {
        res_reply_error(r, res);
        return;
    }
    if (!yes(res, C_SEEN)) {
        http_reply_error(r, 404, "there is no such record");
        return;
    }
    if (!yes(res, C_MANAGED)) {
        http_reply_error(r, 403, "only the managers of the meeting's hub may record actions");
        return;
    }
    if (!yes(res, C_OPEN)) {
        http_reply_error(r, 409, "this meeting is closed: record the action between meetings");
        return;
    }
    if (!PQgetisnull(res, 0, C_ID)) {
        reply_action(r, PQgetvalue(res, 0, C_ID), 201);
        return;
    }
    struct problem *p = problem_new(422, "the request has invalid fields");
    if (!yes(res, C_SUBJECT))
        problem_add_field(p, "subject_id", "no such young person in a hub you manage");
    else if (!yes(res, C_ON_MEETING))
        problem_add_field(p, "subject_id", "this young person is not on the meeting");
    if (yes(res, C_SUBJECT) && !yes(res, C_OWNER))
        problem_add_field(p, "owner_agency_id", "must be an agency on the young person's team");
    if (!yes(res, C_ASSIGNEE))
        problem_add_field(p, "assignee_id", "must be an active user of the owner agency");
    if (!yes(res, C_DUE))
        problem_add_field(p, "due_date", "must be today or later (in the hub's time zone)");
    http_reply_problem(r, p);
}

static void create(struct http_req *r, const char *meeting)
{
    json_object *o = res_read_body_ex(
        r, create_fields, sizeof(create_fields) / sizeof(*create_fields), check_due_date);
    if (o == NULL)
        return;
    char *ctx = audit_context(r);
    const char *params[] = {meeting,
                            json_str(o, "subject_id"),
                            json_str(o, "owner_agency_id"),
                            json_has(o, "assignee_id") ? json_str(o, "assignee_id") : NULL,
                            json_str(o, "description"),
                            json_str(o, "due_date"),
                            r->user->id,
                            r->user->agency_id,
                            r->user->hub_ids,
                            ctx};
    http_query(r, create_sql, 10, params, created);
    free(ctx);
    json_object_put(o);
}

void actions_create_in_meeting(struct http_req *r)
{
    char *id = res_path_id(r);
    if (id == NULL)
        return;
    create(r, id);
    free(id);
}

void actions_create(struct http_req *r)
{
    create(r, NULL);
}

/* ---- transitions: complete, progress, cannot-complete (the owner agency); reopen, cancel
 * (the managers of the action's hub) */

enum who { OWNER, MANAGERS };

struct op {
    const char *kind;  /* action_history.kind, and the audit action's suffix */
    const char *event; /* events.type */
    enum who who;
    const char *from; /* statuses it applies to (PostgreSQL array literal) */
    const char *to;
    const char *text_key; /* the body's required text: note or reason */
    int text_max;
    const struct json_field *fields;
    size_t nfields;
};

static const struct json_field complete_fields[] = {
    {"note", JK_STRING, 1, 1, NOTE_MAX, NULL},
    {"evidence_ref", JK_STRING, 0, 1, 500, NULL},
};
static const struct json_field note_fields[] = {
    {"note", JK_STRING, 1, 1, NOTE_MAX, NULL},
};
static const struct json_field reason_fields[] = {
    {"reason", JK_STRING, 1, 1, REASON_MAX, NULL},
};
static const struct json_field reopen_fields[] = {
    {"reason", JK_STRING, 1, 1, REASON_MAX, NULL},
    {"due_date", JK_STRING, 0, 10, 10, NULL},
};

#define FIELDS(f) f, sizeof(f) / sizeof(*(f))
static const struct op op_complete = {
    "completed", "action.completed",     OWNER, "{open}", "completed", "note",
    NOTE_MAX,    FIELDS(complete_fields)};
static const struct op op_progress = {"progress", "action.updated", OWNER,    "{open}",
                                      "open",     "note",           NOTE_MAX, FIELDS(note_fields)};
static const struct op op_cannot = {
    "cannot_complete", "action.updated",     OWNER, "{open}", "open", "reason",
    REASON_MAX,        FIELDS(reason_fields)};
static const struct op op_reopen = {
    "reopened", "action.reopened", MANAGERS,   "{completed,cancelled}",
    "open",     "reason",          REASON_MAX, FIELDS(reopen_fields)};
static const struct op op_cancel = {"cancelled", "action.cancelled",   MANAGERS,
                                    "{open}",    "cancelled",          "reason",
                                    REASON_MAX,  FIELDS(reason_fields)};

/* $1 action $2 agency $3 hubs $4 user $5 kind $6 note/reason $7 evidence $8 new due date
 * $9 audit context $10 who ('owner'|'managers') $11 from statuses $12 to status $13 event */
/* clang-format off */
static const char transition_sql[] =
    "WITH a AS (SELECT a.*, (now() AT TIME ZONE h.time_zone)::date AS today FROM actions a "
    "  JOIN subjects s ON s.id = a.subject_id JOIN hubs h ON h.id = a.hub_id "
    "  WHERE a.id = $1 AND " ACTION_VISIBLE("a", "s", "$2", "$3") " FOR UPDATE OF a), "
    "chk AS (SELECT a.id, a.status, "
    "  CASE WHEN $10 = 'owner' THEN a.owner_agency_id = $2::uuid "
    "    ELSE a.hub_id = ANY($3::uuid[]) END AS allowed, "
    "  a.status = ANY($11::text[]) AS from_ok, "
    "  ($8::date IS NULL OR $8::date >= a.today) AS due_ok FROM a), "
    "u AS (UPDATE actions x SET status = $12, updated_at = now(), "
    "  completed_at = CASE WHEN $12 = 'completed' THEN now() "
    "    WHEN $12 = 'open' THEN NULL ELSE x.completed_at END, "
    "  completed_by = CASE WHEN $12 = 'completed' THEN $4::uuid "
    "    WHEN $12 = 'open' THEN NULL ELSE x.completed_by END, "
    "  completion_note = CASE WHEN $12 = 'completed' THEN $6 "
    "    WHEN $12 = 'open' THEN NULL ELSE x.completion_note END, "
    "  evidence_ref = CASE WHEN $12 = 'completed' THEN $7 "
    "    WHEN $12 = 'open' THEN NULL ELSE x.evidence_ref END, "
    "  cancelled_at = CASE WHEN $12 = 'cancelled' THEN now() "
    "    WHEN $12 = 'open' THEN NULL ELSE x.cancelled_at END, "
    "  cancelled_by = CASE WHEN $12 = 'cancelled' THEN $4::uuid "
    "    WHEN $12 = 'open' THEN NULL ELSE x.cancelled_by END, "
    "  cancel_reason = CASE WHEN $12 = 'cancelled' THEN $6 "
    "    WHEN $12 = 'open' THEN NULL ELSE x.cancel_reason END, "
    "  blocked_reason = CASE WHEN $5 = 'cannot_complete' THEN $6 "
    "    WHEN $5 = 'progress' THEN x.blocked_reason ELSE NULL END, "
    "  due_date = coalesce($8::date, x.due_date), "
    /* a new open period (reopened, or a new due date) may become overdue again */
    "  overdue_noted_at = CASE WHEN $5 = 'reopened' THEN NULL ELSE x.overdue_noted_at END "
    "  FROM chk WHERE x.id = chk.id AND chk.allowed AND chk.from_ok AND chk.due_ok "
    "  RETURNING x.*), "
    "hist AS (INSERT INTO action_history (action_id, user_id, agency_id, kind, from_status, "
    "    to_status, note, evidence_ref) "
    "  SELECT u.id, $4, $2, $5, chk.status, u.status, $6, $7 FROM u, chk), "
    "ev AS (INSERT INTO event_queue (type, subject_id, hub_id, record_id) "
    "  SELECT $13, u.subject_id, u.hub_id, u.id FROM u), "
    AUDIT_CTE("$9", "'action.' || $5", "'ok'", "'action'", "u.id::text", "u.subject_id",
              "u.hub_id", ", u") " "
    "SELECT chk.allowed, chk.from_ok, chk.due_ok, chk.status, u.id FROM chk "
    "  LEFT JOIN u ON u.id = chk.id";
/* clang-format on */

static void transitioned(struct http_req *r, enum db_status st, PGresult *res)
{
    const struct op *op = r->handler_data;
    if (st != DB_OK) {
        res_reply_error(r, res);
        return;
    }
    if (PQntuples(res) == 0) {
        http_reply_error(r, 404, "there is no such record");
        return;
    }
    const char *status = PQgetvalue(res, 0, 3);
    if (!yes(res, 0)) {
        http_reply_error(r, 403,
                         op->who == OWNER ? "only users of the action's owner agency may do this"
                                          : "only the managers of the action's hub may do this");
    } else if (!yes(res, 1)) {
        struct problem *p = problem_new(409, "this action is %s", status);
        http_reply_problem(r, p);
    } else if (!yes(res, 2)) {
        struct problem *p = problem_new(422, "the request has invalid fields");
        problem_add_field(p, "due_date", "must be today or later (in the hub's time zone)");
        http_reply_problem(r, p);
    } else {
        reply_action(r, PQgetvalue(res, 0, 4), 200);
    }
}

static void transition(struct http_req *r, const struct op *op)
{
    char *id = res_path_id(r);
    if (id == NULL)
        return;
    json_object *o = res_read_body_ex(r, op->fields, op->nfields, check_due_date);
    if (o == NULL) {
        free(id);
        return;
    }
    char *ctx = audit_context(r);
    const char *params[] = {id,
                            r->user->agency_id,
                            r->user->hub_ids,
                            r->user->id,
                            op->kind,
                            json_str(o, op->text_key),
                            json_has(o, "evidence_ref") ? json_str(o, "evidence_ref") : NULL,
                            json_has(o, "due_date") ? json_str(o, "due_date") : NULL,
                            ctx,
                            op->who == OWNER ? "owner" : "managers",
                            op->from,
                            op->to,
                            op->event};
    r->handler_data = (void *)op;
    http_query(r, transition_sql, 13, params, transitioned);
    free(ctx);
    free(id);
    json_object_put(o);
}

void actions_complete(struct http_req *r)
{
    transition(r, &op_complete);
}

void actions_progress(struct http_req *r)
{
    transition(r, &op_progress);
}

void actions_cannot_complete(struct http_req *r)
{
    transition(r, &op_cannot);
}

void actions_reopen(struct http_req *r)
{
    transition(r, &op_reopen);
}

void actions_cancel(struct http_req *r)
{
    transition(r, &op_cancel);
}

/* ---- GET /v1/actions/{id}: the action with its history */

/* clang-format off */
static const char read_sql[] =
    "WITH a AS (SELECT a.* FROM actions a JOIN subjects s ON s.id = a.subject_id "
    "  WHERE a.id = $1 AND " ACTION_VISIBLE("a", "s", "$2", "$3") "), "
    AUDIT_CTE("$4", "'action.read'", "'ok'", "'action'", "a.id::text", "a.subject_id",
              "a.hub_id", ", a") " "
    "SELECT " ACTION_JSON("a") " || jsonb_build_object('history', " ACTION_HISTORY("a") ") "
    "FROM a";
/* clang-format on */

void actions_get(struct http_req *r)
{
    res_get_visible(r, read_sql, res_reply_document);
}

/* ---- GET /v1/actions: filters, newest first or by due date, cursor paged; one audit row per
 * young person shown (its record_id lists the actions shown) */

/* $1 before (cursor without its sort letter) $2 limit $3 agency $4 hubs $5 audit context
 * $6 owner agency $7 subject $8 hub $9 meeting $10 states $11 stored statuses $12 assignee
 * $13 due before */
/* clang-format off */
#define LIST_SQL(cursor, after, order)                                                              \
    "WITH rows AS (SELECT a.id, a.subject_id, a.hub_id, a.created_at, a.due_date, "                 \
    "  " ACTION_JSON("a") " AS doc, " cursor " AS _cursor "                                         \
    "  FROM actions a JOIN subjects s ON s.id = a.subject_id JOIN hubs h ON h.id = a.hub_id "      \
    "  WHERE " ACTION_VISIBLE("a", "s", "$3", "$4") " "                                            \
    "  AND ($6::uuid IS NULL OR a.owner_agency_id = $6::uuid) "                                     \
    "  AND ($7::uuid IS NULL OR a.subject_id = $7::uuid) "                                          \
    "  AND ($8::uuid IS NULL OR a.hub_id = $8::uuid) "                                              \
    "  AND ($9::uuid IS NULL OR a.meeting_id = $9::uuid) "                                          \
    "  AND ($11::text[] IS NULL OR a.status = ANY($11::text[])) "                                   \
    "  AND ($10::text[] IS NULL OR CASE WHEN a.status = 'open' AND a.due_date < "                   \
    "    (now() AT TIME ZONE h.time_zone)::date THEN 'overdue' ELSE a.status END "                  \
    "    = ANY($10::text[])) "                                                                      \
    "  AND ($12::uuid IS NULL OR a.assignee_id = $12::uuid) "                                       \
    "  AND ($13::date IS NULL OR a.due_date < $13::date) "                                          \
    "  AND ($1::text IS NULL OR " after ") "                                                        \
    "  ORDER BY " order " LIMIT $2::int + 1), "                                                     \
    "shown AS (SELECT * FROM rows ORDER BY " order " LIMIT $2::int), "                              \
    AUDIT_CTE("$5", "'action.read'", "'ok'", "'action'", "g.ids", "g.subject_id", "g.hub_id",       \
              ", (SELECT subject_id, hub_id, string_agg(id::text, ',' ORDER BY id) AS ids "         \
              "FROM shown GROUP BY subject_id, hub_id) g") " "                                      \
    "SELECT doc, _cursor FROM rows ORDER BY " order

/* A cursor starts with its sort's letter and '|' (checked and cut off in actions_list): a
 * cursor of one sort also parses as the other's, and gave 200 with a wrong page (review). */
static const char list_created_sql[] = LIST_SQL(
    "'c|' || to_char(a.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US') || '|' || "
    "a.id",
    "(a.created_at, a.id) < ((split_part($1, '|', 1) || 'Z')::timestamptz, "
    "split_part($1, '|', 2)::uuid)",
    "created_at DESC, id DESC");
static const char list_due_sql[] = LIST_SQL(
    "'d|' || to_char(a.due_date, 'YYYY-MM-DD') || '|' || a.id",
    "(a.due_date, a.id) > (split_part($1, '|', 1)::date, split_part($1, '|', 2)::uuid)",
    "due_date, id");
/* clang-format on */

static const char *const states[] = {"open", "overdue", "completed", "cancelled", NULL};

/* "open,overdue" -> states "{open,overdue}" and the stored statuses "{open}"; -1 if bad. */
static int parse_states(const char *s, char *out, size_t cap, char *stored, size_t scap)
{
    int seen[4] = {0};
    char *copy = xstrdup(s), *save = NULL;
    int ok = *s != '\0';
    for (char *t = strtok_r(copy, ",", &save); ok && t != NULL; t = strtok_r(NULL, ",", &save)) {
        int k = 0;
        while (states[k] != NULL && strcmp(states[k], t) != 0)
            k++;
        ok = states[k] != NULL;
        if (ok)
            seen[k] = 1;
    }
    free(copy);
    if (!ok)
        return -1;
    size_t n = 0, m = 0;
    n += (size_t)snprintf(out + n, cap - n, "{");
    m += (size_t)snprintf(stored + m, scap - m, "{");
    for (int k = 0; k < 4; k++)
        if (seen[k])
            n += (size_t)snprintf(out + n, cap - n, "%s%s", n > 1 ? "," : "", states[k]);
    if (seen[0] || seen[1])
        m += (size_t)snprintf(stored + m, scap - m, "open");
    if (seen[2])
        m += (size_t)snprintf(stored + m, scap - m, "%scompleted", m > 1 ? "," : "");
    if (seen[3])
        m += (size_t)snprintf(stored + m, scap - m, "%scancelled", m > 1 ? "," : "");
    snprintf(out + n, cap - n, "}");
    snprintf(stored + m, scap - m, "}");
    return 0;
}

struct list_query {
    char *v[6]; /* owned: agency_id, subject_id, hub_id, meeting_id, assignee, due_before */
    char states[64], stored[64];
    int has_states, due_sort;
};

static const char *const list_uuid_params[] = {"agency_id", "subject_id", "hub_id", "meeting_id"};

static void list_query_clear(struct list_query *q)
{
    for (int i = 0; i < 6; i++)
        free(q->v[i]);
}

/* Read and check the query string; -1 after replying 400. */
static int list_query_read(struct http_req *r, struct list_query *q)
{
    memset(q, 0, sizeof(*q));
    const char *bad = NULL;
    for (int i = 0; i < 4 && bad == NULL; i++) {
        q->v[i] = http_query_param(r, list_uuid_params[i]);
        if (q->v[i] != NULL && !json_is_uuid(q->v[i]))
            bad = "agency_id, subject_id, hub_id and meeting_id must be UUIDs";
    }
    char *status = http_query_param(r, "status"), *assignee = http_query_param(r, "assignee");
    char *due = http_query_param(r, "due_before"), *sort = http_query_param(r, "sort");
    int y, m, d;
    if (bad == NULL && status != NULL) {
        q->has_states = 1;
        if (parse_states(status, q->states, sizeof(q->states), q->stored, sizeof(q->stored)) < 0)
            bad = "status must be a comma-separated list of open, overdue, completed, cancelled";
    }
    if (bad == NULL && assignee != NULL) {
        if (strcmp(assignee, "me") == 0)
            q->v[4] = xstrdup(r->user->id);
        else if (json_is_uuid(assignee))
            q->v[4] = xstrdup(assignee);
        else
            bad = "assignee must be me or a user id";
    }
    if (bad == NULL && due != NULL && util_parse_date(due, &y, &m, &d) < 0)
        bad = "due_before must be a date like 2026-12-31";
    if (bad == NULL && sort != NULL && strcmp(sort, "created") != 0 && strcmp(sort, "due") != 0)
        bad = "sort must be created (newest first) or due (soonest due first)";
    q->due_sort = sort != NULL && strcmp(sort, "due") == 0;
    int filtered = status != NULL || assignee != NULL || due != NULL;
    for (int i = 0; i < 4; i++)
        filtered |= q->v[i] != NULL;
    q->v[5] = due;
    free(status);
    free(assignee);
    free(sort);
    if (bad != NULL) {
        http_reply_error(r, 400, bad);
        list_query_clear(q);
        return -1;
    }
    /* a practitioner's (or officer's) default: their own agency's open and overdue actions */
    if (!filtered && r->user->role != ROLE_HUB_MANAGER) {
        q->v[0] = xstrdup(r->user->agency_id);
        q->has_states = 1;
        parse_states("open,overdue", q->states, sizeof(q->states), q->stored, sizeof(q->stored));
    }
    return 0;
}

static void listed(struct http_req *r, enum db_status st, PGresult *res)
{
    if (st == DB_ERROR && strncmp(db_sqlstate(res), "22", 2) == 0) {
        http_reply_error(r, 400, "before must be a cursor from a previous page of this list");
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

void actions_list(struct http_req *r)
{
    struct list_query q;
    if (list_query_read(r, &q) < 0)
        return;
    int limit;
    char *before, lim[16];
    if (res_page(r, &limit, &before) < 0) {
        list_query_clear(&q);
        return;
    }
    if (before != NULL && (before[0] != (q.due_sort ? 'd' : 'c') || before[1] != '|')) {
        http_reply_error(r, 400, "before must be a cursor from a previous page of this list");
        free(before);
        list_query_clear(&q);
        return;
    }
    snprintf(lim, sizeof(lim), "%d", limit);
    char *ctx = audit_context(r);
    const char *params[] = {before != NULL ? before + 2 : NULL,
                            lim,
                            r->user->agency_id,
                            r->user->hub_ids,
                            ctx,
                            q.v[0],
                            q.v[1],
                            q.v[2],
                            q.v[3],
                            q.has_states ? q.states : NULL,
                            q.has_states ? q.stored : NULL,
                            q.v[4],
                            q.v[5]};
    r->handler_data = (void *)(long)limit;
    http_query(r, q.due_sort ? list_due_sql : list_created_sql, 13, params, listed);
    free(ctx);
    free(before);
    list_query_clear(&q);
}

/* ---- GET /v1/actions/summary?agency_id=&hub_id=: counts per state, in all and per owner
 * agency, of the actions the caller may see */

/* $1 agency $2 hubs $3 owner agency $4 hub $5 audit context */
/* clang-format off */
static const char summary_sql[] =
    "WITH v AS (SELECT a.owner_agency_id AS agency, CASE WHEN a.status = 'open' AND "
    "    a.due_date < (now() AT TIME ZONE h.time_zone)::date THEN 'overdue' ELSE a.status END "
    "    AS state FROM actions a JOIN subjects s ON s.id = a.subject_id "
    "    JOIN hubs h ON h.id = a.hub_id "
    "  WHERE " ACTION_VISIBLE("a", "s", "$1", "$2") " "
    "  AND ($3::uuid IS NULL OR a.owner_agency_id = $3::uuid) "
    "  AND ($4::uuid IS NULL OR a.hub_id = $4::uuid)), "
    "c AS (SELECT agency, count(*) FILTER (WHERE state = 'open') AS open, "
    "  count(*) FILTER (WHERE state = 'overdue') AS overdue, "
    "  count(*) FILTER (WHERE state = 'completed') AS completed, "
    "  count(*) FILTER (WHERE state = 'cancelled') AS cancelled FROM v GROUP BY agency), "
    AUDIT_CTE("$5", "'action.summary'", "'ok'", "'action'", "NULL", "NULL", "$4::uuid", "") " "
    "SELECT jsonb_build_object('agency_id', $3::uuid, 'hub_id', $4::uuid, "
    "  'counts', jsonb_build_object('open', coalesce(sum(open), 0), "
    "    'overdue', coalesce(sum(overdue), 0), 'completed', coalesce(sum(completed), 0), "
    "    'cancelled', coalesce(sum(cancelled), 0), "
    "    'total', coalesce(sum(open + overdue + completed + cancelled), 0)), "
    "  'by_agency', coalesce(jsonb_agg(jsonb_build_object('agency', (SELECT "
    "    jsonb_build_object('id', ag.id, 'name', ag.name, 'kind', ag.kind) FROM agencies ag "
    "    WHERE ag.id = c.agency), 'open', open, 'overdue', overdue, 'completed', completed, "
    "    'cancelled', cancelled) ORDER BY (SELECT name FROM agencies WHERE id = c.agency)), "
    "    '[]'::jsonb)) FROM c";
/* clang-format on */

void actions_summary(struct http_req *r)
{
    char *agency = http_query_param(r, "agency_id"), *hub = http_query_param(r, "hub_id");
    if ((agency != NULL && !json_is_uuid(agency)) || (hub != NULL && !json_is_uuid(hub))) {
        http_reply_error(r, 400, "agency_id and hub_id must be UUIDs");
        free(agency);
        free(hub);
        return;
    }
    if (agency == NULL && hub == NULL && r->user->role != ROLE_HUB_MANAGER)
        agency = xstrdup(r->user->agency_id); /* "what is mine" */
    char *ctx = audit_context(r);
    const char *params[] = {r->user->agency_id, r->user->hub_ids, agency, hub, ctx};
    r->handler_data = (void *)200L;
    http_query(r, summary_sql, 5, params, res_reply_document);
    free(ctx);
    free(agency);
    free(hub);
}

/* ---- the overdue sweeper */

/* FOR UPDATE SKIP LOCKED claims the rows: a process that finds one claimed by another skips
 * it, and one that waited re-checks overdue_noted_at, so each open period gets one event. */
/* clang-format off */
static const char sweep_sql[] =
    "WITH due AS (SELECT a.id FROM actions a JOIN hubs h ON h.id = a.hub_id "
    "  WHERE a.status = 'open' AND a.overdue_noted_at IS NULL "
    "  AND a.due_date < (now() AT TIME ZONE h.time_zone)::date "
    "  ORDER BY a.due_date, a.id LIMIT $1::int FOR UPDATE OF a SKIP LOCKED), "
    "u AS (UPDATE actions x SET overdue_noted_at = now() FROM due WHERE x.id = due.id "
    "  AND x.status = 'open' AND x.overdue_noted_at IS NULL RETURNING x.*), "
    "hist AS (INSERT INTO action_history (action_id, kind, from_status, to_status) "
    "  SELECT id, 'overdue', 'open', 'open' FROM u), "
    "ev AS (INSERT INTO event_queue (type, subject_id, hub_id, record_id) "
    "  SELECT 'action.overdue', subject_id, hub_id, id FROM u ORDER BY due_date, id) "
    "SELECT count(*) FROM u";
/* clang-format on */

struct actions_sweeper {
    struct db_pool *db;       /* borrowed */
    struct event *timer;      /* owned */
    struct db_query *pending; /* borrowed handle while a sweep runs */
};

static void sweep(struct actions_sweeper *sw);

static void swept(enum db_status st, PGresult *res, void *arg)
{
    struct actions_sweeper *sw = arg;
    sw->pending = NULL;
    if (st != DB_OK) {
        log_warn("actions: overdue check failed (%s); trying again later",
                 st == DB_ERROR ? db_sqlstate(res) : "database unavailable");
        return;
    }
    int n = atoi(PQgetvalue(res, 0, 0));
    if (n > 0)
        log_info("actions: %d action(s) became overdue", n);
    if (n == LIMIT_OVERDUE_BATCH)
        sweep(sw); /* more are waiting */
}

static void sweep(struct actions_sweeper *sw)
{
    char batch[16];
    snprintf(batch, sizeof(batch), "%d", LIMIT_OVERDUE_BATCH);
    const char *params[] = {batch};
    if (sw->pending == NULL)
        sw->pending = db_query(sw->db, sweep_sql, 1, params, swept, sw);
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sweep(arg);
}

struct actions_sweeper *actions_sweeper_new(struct event_base *base, struct db_pool *db,
                                            int interval_s)
{
    struct actions_sweeper *sw = xcalloc(1, sizeof(*sw));
    sw->db = db;
    sw->timer = event_new(base, -1, EV_PERSIST, tick, sw);
    struct timeval tv = {interval_s, 0};
    event_add(sw->timer, &tv);
    sweep(sw); /* at once: deadlines passed while no server was running */
    return sw;
}

void actions_sweeper_free(struct actions_sweeper *sw)
{
    if (sw == NULL)
        return;
    if (sw->pending != NULL)
        db_query_orphan(sw->pending);
    event_free(sw->timer);
    free(sw);
}
