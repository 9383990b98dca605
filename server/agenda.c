/* The RAISE agenda (GET /v1/meetings/{id}/agenda) and agenda suggestions
 * (GET /v1/hubs/{id}/agenda-suggestions). Each is built from one statement, whatever the
 * number of young people: the rows are the meeting, each young person the reader may see,
 * each intelligence item the reader may see in that young person's window, and each action;
 * the score (common/agenda.c, docs/agenda.md) and the order are computed here. Before the
 * meeting starts the agenda is live; from the start its set of items and actions is the one
 * stored then (meeting_agenda_items) and the score's reference time is the start. */
#define _GNU_SOURCE
#include "agenda.h"

#include "actions.h"
#include "audit.h"
#include "auth.h"
#include "http.h"
#include "meetings.h"
#include "resource.h"
#include "routes.h"
#include "util.h"
#include "xmalloc.h"

#include <event2/buffer.h>
#include <openssl/evp.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Columns of every row: kind, subject_id, doc (jsonb), age (days: since an item occurred,
 * or until an action is due), overdue at the reference time, then INTEL_COLUMNS. The
 * intelligence branch comes first so that the other branches' NULLs take its types. */
#define ROW_KIND    0
#define ROW_SUBJECT 1
#define ROW_DOC     2
#define ROW_AGE     3
#define ROW_OVERDUE 4
#define ROW_INTEL   5
#define INTEL_NULLS                                                                                \
    "NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "   \
    "NULL, NULL, NULL, NULL, NULL"

#define SUBJECT_DOC(s)                                                                             \
    "jsonb_build_object('id', " s ".id, 'hub_id', " s ".hub_id, 'reference', " s ".reference, "    \
    "'given_name', " s ".given_name, 'family_name', " s ".family_name, 'date_of_birth', "          \
    "to_char(" s ".date_of_birth, 'YYYY-MM-DD'), 'status', " s ".status, 'key_worker', " s         \
    ".key_worker, 'team', coalesce((SELECT jsonb_agg(jsonb_build_object('id', ta.id, 'name', "     \
    "ta.name, 'kind', ta.kind) ORDER BY ta.name) FROM subject_team st JOIN agencies ta ON "        \
    "ta.id = st.agency_id WHERE st.subject_id = " s ".id), '[]'))"

/* Overdue at the reference time: due before that day (hub time zone) and still open then. */
#define OVERDUE_AT(a, ref, tz)                                                                     \
    "(" a ".due_date < (" ref " AT TIME ZONE " tz ")::date AND (" a ".status = 'open' OR "         \
    "coalesce(" a ".completed_at, " a ".cancelled_at) > " ref "))"

/* $1 meeting $2 agency $3 hubs $4 audit context */
/* clang-format off */
static const char agenda_sql[] =
    "WITH m AS (SELECT m.id, m.hub_id, m.status, h.time_zone AS tz, m.status <> 'scheduled' "
    "  AS frozen, coalesce(m.started_at, now()) AS ref, " MEETING_DOC("m") " AS doc "
    "  FROM meetings m JOIN hubs h ON h.id = m.hub_id "
    "  WHERE m.id = $1 AND " MEETING_VISIBLE("m", "$2", "$3") "), "
    "w0 AS (SELECT s.id, " SUBJECT_DOC("s") " AS doc, ms.since AS fixed, "
        LAST_MET("s.id", "m.id", "m.ref") " AS last_met, " LAST_MEETING("s.id", "m.id", "m.ref")
        " AS prev FROM m JOIN meeting_subjects ms ON "
    "  ms.meeting_id = m.id JOIN subjects s ON s.id = ms.subject_id "
    "  WHERE " SUBJECT_VISIBLE("s", "$2", "$3") "), "
    "w AS (SELECT w0.*, coalesce(w0.fixed, w0.last_met, m.ref - interval '28 days') AS since "
    "  FROM w0, m), "
        AUDIT_CTE("$4", "'meeting.agenda'", "'ok'", "'meeting'", "m.id::text", "w.id", "m.hub_id",
                  ", m LEFT JOIN w ON true") /* one row naming none if none is shown */
    " SELECT 'intel' AS kind, i.subject_id, NULL::jsonb AS doc, "
    "  extract(epoch FROM m.ref - i.occurred_at) / 86400 AS age, NULL::bool AS overdue, "
    "  " INTEL_COLUMNS("i")
    "   FROM m, w JOIN intelligence i ON i.subject_id = w.id JOIN subjects s ON "
    "  s.id = i.subject_id WHERE " INTEL_VISIBLE("i", "s", "$2", "$3") " AND CASE WHEN "
    "  m.frozen THEN EXISTS (SELECT 1 FROM meeting_agenda_items ai WHERE ai.meeting_id = m.id "
    "  AND ai.kind = 'intelligence' AND ai.record_id = i.id) ELSE " IN_WINDOW("i", "w.since", "w.prev") " AND "
    "  i.retracted_at IS NULL END "
    "UNION ALL SELECT 'meeting', NULL, m.doc || jsonb_build_object('reference_time', " TS("m.ref")
        ", 'frozen', m.frozen), NULL, NULL, " INTEL_NULLS " FROM m "
    "UNION ALL SELECT 'subject', w.id, jsonb_build_object('subject', w.doc, 'since', "
        TS("w.since") ", 'last_discussed', " TS("w.last_met") ", 'days_since_met', "
    "  extract(epoch FROM m.ref - w.last_met) / 86400), NULL, NULL, " INTEL_NULLS " FROM m, w "
    "UNION ALL SELECT 'action', a.subject_id, " ACTION_JSON("a") ", "
    "  a.due_date - (m.ref AT TIME ZONE m.tz)::date, " OVERDUE_AT("a", "m.ref", "m.tz") ", "
    "  " INTEL_NULLS " FROM m, w JOIN actions a ON a.subject_id = w.id "
    "  WHERE CASE WHEN m.frozen THEN EXISTS (SELECT 1 FROM meeting_agenda_items ai WHERE "
    "  ai.meeting_id = m.id AND ai.kind = 'action' AND ai.record_id = a.id) ELSE "
    "  a.status = 'open' OR (a.status = 'completed' AND a.completed_at >= w.since) END ORDER BY "
        "1, 4";
/* clang-format on */

/* $1 hub $2 agency $3 hubs: every young person of the hub, live, as for a meeting now. Their
 * next meeting: the first scheduled one from 12 hours ago on (one running late is still
 * next), else the last scheduled one before that, never started (not the oldest of those). */
/* clang-format off */
static const char suggest_sql[] =
    "WITH w AS (SELECT s.id, " SUBJECT_DOC("s") " AS doc, " LAST_MET("s.id", "NULL::uuid", "now()")
        " AS last_met, " LAST_MEETING("s.id", "NULL::uuid", "now()") " AS prev, "
    "  (SELECT jsonb_build_object('id', nm.id, "
    "  'title', nm.title, 'scheduled_for', " TS("nm.scheduled_for") ") FROM meetings nm JOIN "
    "  meeting_subjects nms ON nms.meeting_id = nm.id WHERE nms.subject_id = s.id AND "
    "  nm.status = 'scheduled' ORDER BY nm.scheduled_for < now() - interval '12 hours', "
    "  CASE WHEN nm.scheduled_for >= now() - interval '12 hours' THEN nm.scheduled_for END, "
    "  nm.scheduled_for DESC LIMIT 1) AS next_meeting "
    "  FROM subjects s WHERE s.hub_id = $1 AND " SUBJECT_VISIBLE("s", "$2", "$3") "), "
    "ws AS (SELECT w.*, coalesce(w.last_met, now() - interval '28 days') AS since FROM w), "
    "h AS (SELECT time_zone AS tz FROM hubs WHERE id = $1) "
    "SELECT 'intel' AS kind, i.subject_id, NULL::jsonb AS doc, "
    "  extract(epoch FROM now() - i.occurred_at) / 86400 AS age, NULL::bool AS overdue, "
    "  " INTEL_COLUMNS("i")
    "   FROM ws JOIN intelligence i ON i.subject_id = ws.id JOIN subjects s ON "
    "  s.id = i.subject_id WHERE " INTEL_VISIBLE("i", "s", "$2", "$3") " AND "
    "  " IN_WINDOW("i", "ws.since", "ws.prev") " AND i.retracted_at IS NULL "
    "UNION ALL SELECT 'subject', ws.id, jsonb_build_object('subject', ws.doc, 'since', "
        TS("ws.since") ", 'last_discussed', " TS("ws.last_met") ", 'days_since_met', "
    "  extract(epoch FROM now() - ws.last_met) / 86400, 'next_meeting', ws.next_meeting), NULL, "
    "  NULL, " INTEL_NULLS " FROM ws "
    "UNION ALL SELECT 'action', a.subject_id, NULL, NULL, " OVERDUE_AT("a", "now()", "h.tz") ", "
    "  " INTEL_NULLS " FROM h, ws JOIN actions a ON a.subject_id = ws.id WHERE a.status = 'open' "
        "ORDER BY 1, 4";
/* clang-format on */

/* One young person being put together from the rows. */
struct entry {
    char subject_id[37];
    json_object *o; /* owned until added to the result */
    struct agenda_item *items;
    size_t nitems, cap;
    int overdue;
};

struct build {
    struct entry *e;
    size_t n;
    json_object *meeting;
};

static struct entry *find(struct build *b, const char *id)
{
    for (size_t i = 0; i < b->n; i++)
        if (strcmp(b->e[i].subject_id, id) == 0)
            return &b->e[i];
    return NULL;
}

static json_object *member(json_object *o, const char *key)
{
    json_object *v = NULL;
    json_object_object_get_ex(o, key, &v);
    return v;
}

static void append(json_object *o, const char *group, const char *key, json_object *v)
{
    json_object *g = group ? member(o, group) : o;
    json_object_array_add(member(g, key), v);
}

/* Rows -> one entry per young person with its items grouped and its score. */
static void build_entries(struct build *b, PGresult *res, int with_docs)
{
    int n = PQntuples(res);
    b->e = xcalloc((size_t)n + 1, sizeof(*b->e));
    for (int row = 0; row < n; row++) {
        const char *kind = PQgetvalue(res, row, ROW_KIND);
        if (strcmp(kind, "meeting") == 0) {
            b->meeting = json_tokener_parse(PQgetvalue(res, row, ROW_DOC));
        } else if (strcmp(kind, "subject") == 0) {
            struct entry *e = &b->e[b->n++];
            snprintf(e->subject_id, sizeof(e->subject_id), "%s", PQgetvalue(res, row, ROW_SUBJECT));
            e->o = json_tokener_parse(PQgetvalue(res, row, ROW_DOC));
            if (e->o == NULL)
                e->o = json_object_new_object();
            json_object_object_add(e->o, "worried_about", json_object_new_array());
            json_object_object_add(e->o, "working_well", json_object_new_array());
            json_object *acts = json_object_new_object();
            static const char *const groups[] = {"overdue", "open", "completed", "cancelled"};
            for (int g = 0; g < 4; g++)
                json_object_object_add(acts, groups[g], json_object_new_array());
            json_object_object_add(e->o, "needs_to_happen", acts);
        }
    }
    /* the subject rows sort after the intel and action rows' kinds? no: kinds sort
     * action < intel < meeting < subject, so a second pass attaches items and actions */
    for (int row = 0; row < n; row++) {
        const char *kind = PQgetvalue(res, row, ROW_KIND);
        struct entry *e = find(b, PQgetvalue(res, row, ROW_SUBJECT));
        if (e == NULL)
            continue;
        if (strcmp(kind, "intel") == 0) {
            int c = ROW_INTEL;
            if (e->nitems == e->cap) {
                e->cap = e->cap ? e->cap * 2 : 16;
                e->items = xrealloc(e->items, e->cap * sizeof(*e->items));
            }
            struct agenda_item *it = &e->items[e->nitems++];
            it->category = PQgetvalue(res, row, c + 2);
            it->risk_level = PQgetvalue(res, row, c + 6);
            it->gravity = PQgetisnull(res, row, c + 7) ? 0 : atoi(PQgetvalue(res, row, c + 7));
            it->age_days = strtod(PQgetvalue(res, row, ROW_AGE), NULL);
            it->retracted = !PQgetisnull(res, row, c + 17);
            if (with_docs)
                append(e->o, NULL,
                       strcmp(it->category, "positive_progress") == 0 ? "working_well"
                                                                      : "worried_about",
                       intelligence_render(res, row, c));
        } else if (strcmp(kind, "action") == 0) {
            if (PQgetvalue(res, row, ROW_OVERDUE)[0] == 't')
                e->overdue++;
            if (with_docs) {
                json_object *a = json_tokener_parse(PQgetvalue(res, row, ROW_DOC));
                const char *state = json_object_get_string(member(a, "state"));
                append(e->o, "needs_to_happen", state ? state : "open", a);
            }
        }
    }
    for (size_t i = 0; i < b->n; i++) {
        struct entry *e = &b->e[i];
        json_object *reasons = json_object_new_array();
        json_object *dsm = member(e->o, "days_since_met");
        struct agenda_input in = {e->items, e->nitems, e->overdue,
                                  dsm ? json_object_get_double(dsm) : -1};
        double score = agenda_score(&in, reasons);
        json_object_object_del(e->o, "days_since_met");
        json_object_object_add(e->o, "score", json_object_new_double(score));
        json_object_object_add(e->o, "reasons", reasons);
    }
}

static json_object *take_entries(struct build *b)
{
    json_object *list = json_object_new_array();
    for (size_t i = 0; i < b->n; i++) {
        json_object_array_add(list, b->e[i].o);
        b->e[i].o = NULL;
    }
    agenda_sort(list);
    return list;
}

static void build_free(struct build *b)
{
    for (size_t i = 0; i < b->n; i++) {
        json_object_put(b->e[i].o);
        free(b->e[i].items);
    }
    free(b->e);
    json_object_put(b->meeting);
}

/* ---- GET /v1/meetings/{id}/agenda */

enum format { FMT_JSON, FMT_MARKDOWN, FMT_HTML, FMT_BAD, FMT_BAD_PARAM };

/* ?format= beats Accept; JSON when neither asks for something else. */
static enum format pick_format(struct http_req *r)
{
    char *f = http_query_param(r, "format");
    if (f != NULL) {
        enum format v = strcmp(f, "json") == 0                               ? FMT_JSON
                        : strcmp(f, "markdown") == 0 || strcmp(f, "md") == 0 ? FMT_MARKDOWN
                        : strcmp(f, "html") == 0                             ? FMT_HTML
                                                                             : FMT_BAD_PARAM;
        free(f);
        return v;
    }
    const char *accept = http_header(r, "Accept");
    if (accept == NULL || accept[strspn(accept, " \t")] == '\0')
        return FMT_JSON;
    static const char *const types[] = {"application/json", "text/markdown", "text/html"};
    switch (util_accept_choose(accept, types, 3)) {
    case 0:
        return FMT_JSON;
    case 1:
        return FMT_MARKDOWN;
    case 2:
        return FMT_HTML;
    default:
        return FMT_BAD;
    }
}

static void reply_text(struct http_req *r, const char *type, char *text)
{
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, text, strlen(text));
    free(text);
    http_reply(r, 200, type, b);
}

static char *csp_for_html(void)
{
    unsigned char md[32];
    unsigned int len = 0;
    EVP_Digest(agenda_css, strlen(agenda_css), md, &len, EVP_sha256(), NULL);
    char *b64 = util_base64(md, len);
    char *csp = xasprintf("default-src 'none'; style-src 'sha256-%s'; frame-ancestors 'none'; "
                          "base-uri 'none'; form-action 'none'",
                          b64);
    free(b64);
    return csp;
}

static void agenda_built(struct http_req *r, enum db_status st, PGresult *res)
{
    enum format fmt = (enum format)(long)r->handler_data;
    if (st != DB_OK) {
        http_reply_db_error(r, res);
        return;
    }
    struct build b = {0};
    build_entries(&b, res, 1);
    if (b.meeting == NULL) {
        build_free(&b);
        http_reply_error(r, 404, "there is no such record");
        return;
    }
    json_object *agenda = json_object_new_object();
    json_object_object_add(agenda, "marking", json_object_new_string(AGENDA_MARKING));
    json_object *meeting = b.meeting;
    b.meeting = NULL;
    json_object *ref = NULL, *frozen = NULL;
    json_object_object_get_ex(meeting, "reference_time", &ref);
    json_object_object_get_ex(meeting, "frozen", &frozen);
    json_object_object_add(agenda, "reference_time", json_object_get(ref));
    json_object_object_add(agenda, "frozen", json_object_get(frozen));
    json_object_object_del(meeting, "reference_time");
    json_object_object_del(meeting, "frozen");
    json_object_object_del(meeting, "young_people");
    json_object_object_del(meeting, "attendance");
    json_object_object_add(agenda, "meeting", meeting);
    json_object_object_add(agenda, "score_formula", json_object_new_string("docs/agenda.md"));
    json_object_object_add(agenda, "young_people", take_entries(&b));
    json_object_object_add(agenda, "marking_end", json_object_new_string(AGENDA_MARKING));
    build_free(&b);
    if (fmt == FMT_JSON) {
        http_reply_json(r, 200, agenda);
        return;
    }
    char *text = fmt == FMT_HTML ? agenda_html(agenda) : agenda_markdown(agenda);
    json_object_put(agenda);
    if (fmt == FMT_HTML) {
        char *csp = csp_for_html();
        http_add_header(r, "Content-Security-Policy", csp);
        http_add_header(r, "Referrer-Policy", "no-referrer");
        http_add_header(r, "X-Frame-Options", "DENY");
        free(csp);
        reply_text(r, "text/html; charset=utf-8", text);
    } else {
        reply_text(r, "text/markdown; charset=utf-8", text);
    }
}

void agenda_get(struct http_req *r)
{
    enum format fmt = pick_format(r);
    if (fmt == FMT_BAD_PARAM) {
        http_reply_error(r, 400, "format must be json, markdown (or md) or html");
        return;
    }
    if (fmt == FMT_BAD) {
        http_reply_error(r, 406,
                         "the agenda is available as application/json, text/markdown or "
                         "text/html (Accept, or ?format=json|markdown|html)");
        return;
    }
    char *id = res_path_id(r);
    if (id == NULL)
        return;
    char *ctx = audit_context(r);
    const char *params[] = {id, r->user->agency_id, r->user->hub_ids, ctx};
    r->handler_data = (void *)(long)fmt;
    http_query(r, agenda_sql, 4, params, agenda_built);
    free(ctx);
    free(id);
}

/* ---- GET /v1/hubs/{id}/agenda-suggestions: ranked; audited per young person shown */

/* clang-format off */
static const char suggest_audit_sql[] =
    "WITH shown AS (SELECT unnest($1::uuid[]) AS id), "
        AUDIT_CTE("$2", "'hub.agenda_suggestions'", "'ok'", "'subject'", "shown.id::text",
                  "shown.id", "$3::uuid", ", shown")
    " SELECT count(*) FROM audit";
/* clang-format on */

static void put_json(void *o)
{
    json_object_put(o);
}

static void suggest_audited(struct http_req *r, enum db_status st, PGresult *res)
{
    json_object *body = r->handler_data;
    r->handler_data = NULL;
    if (st != DB_OK) {
        json_object_put(body);
        http_reply_db_error(r, res);
        return;
    }
    http_reply_json(r, 200, body);
}

/* Rank, keep the first limit, then write their audit rows before showing them. */
static void suggested(struct http_req *r, enum db_status st, PGresult *res)
{
    int limit = (int)(long)r->handler_data;
    r->handler_data = NULL;
    if (st != DB_OK) {
        http_reply_db_error(r, res);
        return;
    }
    struct build b = {0};
    build_entries(&b, res, 0);
    json_object *all = take_entries(&b);
    build_free(&b);
    json_object *items = json_object_new_array();
    struct sbuf ids = {0};
    sbuf_add(&ids, "{");
    for (size_t i = 0; i < json_object_array_length(all) && (int)i < limit; i++) {
        json_object *e = json_object_array_get_idx(all, i);
        json_object_object_del(e, "needs_to_happen");
        json_object_object_del(e, "worried_about");
        json_object_object_del(e, "working_well");
        const char *sid = json_object_get_string(member(member(e, "subject"), "id"));
        sbuf_addf(&ids, "%s%s", i ? "," : "", sid ? sid : "");
        json_object_array_add(items, json_object_get(e));
    }
    sbuf_add(&ids, "}");
    json_object_put(all);
    char *hub = res_path_id(r);
    json_object *body = json_object_new_object();
    json_object_object_add(body, "hub_id", json_object_new_string(hub ? hub : ""));
    json_object_object_add(body, "score_formula", json_object_new_string("docs/agenda.md"));
    json_object_object_add(body, "items", items);
    char *ctx = audit_context(r);
    const char *params[] = {ids.s, ctx, hub};
    r->handler_data = body;
    r->handler_free = put_json;
    http_query(r, suggest_audit_sql, 3, params, suggest_audited);
    free(ctx);
    free(ids.s);
    free(hub);
}

void agenda_suggestions(struct http_req *r)
{
    char *hub = res_path_id(r);
    if (hub == NULL)
        return;
    if (strstr(r->user->hub_ids, hub) == NULL) {
        free(hub);
        http_reply_error(r, 403, "you do not manage this hub");
        return;
    }
    char *l = http_query_param(r, "limit");
    long limit = 20;
    if (l != NULL) {
        char *end;
        limit = strtol(l, &end, 10);
        int bad =
            !isdigit((unsigned char)*l) || *end != '\0' || limit < 1 || limit > LIMIT_PAGE_MAX;
        free(l);
        if (bad) {
            free(hub);
            http_reply_error(r, 400, "limit must be 1-200");
            return;
        }
    }
    const char *params[] = {hub, r->user->agency_id, r->user->hub_ids};
    r->handler_data = (void *)limit;
    http_query(r, suggest_sql, 3, params, suggested);
    free(hub);
}
