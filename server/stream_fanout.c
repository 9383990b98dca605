/* The live stream's fan-out: new events are fetched once per process as they are announced
 * (the shared fetch, on the LISTEN connection) and handed to every worker; a worker fetches
 * for itself for subscribers that are behind; it writes them out in passes over its
 * subscribers, a slice of them a loop turn, one write per subscriber per pass. */
#include "stream.h"
#include "stream_internal.h"

#include "actions.h"
#include "intelligence.h"
#include "log.h"
#include "meetings.h"
#include "metrics.h"
#include "raise_limits.h"
#include "resource.h"
#include "util.h"
#include "xmalloc.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Workers to wake, guarded: the LISTEN connection lives on the main thread. */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct stream_worker *registry[LIMIT_WORKERS_MAX];
/* The newest event id NOTIFYed (raise_events' payload), for the gap check in fetched(). */
static _Atomic long long newest_event;

/* Wake every worker to fetch for itself, from its lowest cursor. */
static void kick_workers(void)
{
    pthread_mutex_lock(&registry_lock);
    for (int i = 0; i < LIMIT_WORKERS_MAX; i++)
        if (registry[i] != NULL) {
            pthread_mutex_lock(&registry[i]->lock);
            registry[i]->fetch_wanted = 1;
            pthread_mutex_unlock(&registry[i]->lock);
            event_active(registry[i]->kick, EV_READ, 0);
        }
    pthread_mutex_unlock(&registry_lock);
}

/* The shared fetch (main thread). New events are fetched once, on the LISTEN connection,
 * the moment they are announced, and handed to every worker: workers do not each send a
 * fetch of their own and wait for it after the batch before. shared_upto is the last event
 * id handed out, -1 when unknown: then (at the first announcement, without subscribers,
 * after a failure) the workers fetch for themselves and the next announcement starts
 * again from there. */
static struct db_pool *shared_pool; /* borrowed; NULL: no shared fetch */
static long long shared_upto = -1;
static struct db_query *shared_pending;
static int shared_failing; /* the last shared fetch failed or was refused: logged once */

/* The shared fetch could not run (why): the workers fetch for themselves. */
static void shared_fallback(const char *why)
{
    if (!shared_failing)
        log_warn("stream: the shared fetch %s; workers fetch for themselves until it works", why);
    shared_failing = 1;
    shared_upto = -1;
    kick_workers();
}

static void shared_fetch(void);

void stream_shared_start(struct db_pool *listener)
{
    shared_pool = listener;
    shared_upto = -1;
}

void stream_shared_stop(void)
{
    if (shared_pending != NULL)
        db_query_orphan(shared_pending);
    shared_pending = NULL;
    shared_pool = NULL;
}

void stream_notify_all(const char *payload, void *unused)
{
    long long id = payload != NULL ? atoll(payload) : 0;
    if (id > atomic_load(&newest_event))
        atomic_store(&newest_event, id); /* one writer: the main thread */
    if (shared_pool == NULL || id <= 0 || metrics_gauge_get(GAUGE_SUBSCRIBERS) == 0 ||
        shared_upto < 0) {
        if (shared_pending != NULL) /* from the old start: its rows would not follow on */
            db_query_orphan(shared_pending);
        shared_pending = NULL;
        shared_upto = shared_pool != NULL && id > 0 ? id : -1;
        kick_workers();
        return;
    }
    if (id > shared_upto)
        shared_fetch();
}

/* ---- fetching and fan-out */

/* Columns: 0 id, 1 type, 2 hub_id, 3 audience (the young person's team; for a meeting its
 * invited agencies; for an action the team and the owner agency), 4 restricted_to, then the
 * intelligence item (INTEL_COLUMNS), then the young person (SUBJECT_COLUMNS + team), then the
 * meeting document (MEETING_DOC), the action (ACTION_JSON), the event's young person, its
 * record (for account.changed, the user) and its time (seconds since 1970, for
 * metrics_stream_age). */
#define FIRST_INTEL   5
#define FIRST_SUBJECT (FIRST_INTEL + INTEL_NCOLS)
#define FIRST_MEETING (FIRST_SUBJECT + 11)
#define COL_ACTION    (FIRST_MEETING + 1)
#define COL_SUBJECT   (FIRST_MEETING + 2)
#define COL_RECORD    (FIRST_MEETING + 3)
#define COL_AT        (FIRST_MEETING + 4)
/* clang-format off */
#define FETCH_SELECT                                                                               \
    "SELECT e.id, e.type, e.hub_id, "                                                              \
    "  CASE WHEN e.type LIKE 'meeting.%' THEN array(SELECT agency_id FROM meeting_agencies ma "    \
    "    WHERE ma.meeting_id = e.record_id ORDER BY agency_id) "                                   \
    "  WHEN e.type LIKE 'action.%' THEN array(SELECT agency_id FROM subject_team t "               \
    "    WHERE t.subject_id = e.subject_id UNION SELECT owner_agency_id FROM actions oa "          \
    "    WHERE oa.id = e.record_id) "                                                              \
    "  ELSE array(SELECT agency_id FROM subject_team t WHERE t.subject_id = e.subject_id "         \
    "    ORDER BY agency_id) END AS team, "                                                        \
    "  i.restricted_to, " INTEL_COLUMNS("i") ", " SUBJECT_COLUMNS("s") ", "                        \
    "  array(SELECT agency_id FROM subject_team t WHERE t.subject_id = s.id "                      \
    "    ORDER BY agency_id) AS team, "                                                            \
    "  CASE WHEN e.type LIKE 'meeting.%' THEN (SELECT " MEETING_DOC("m") " FROM meetings m "       \
    "    WHERE m.id = e.record_id) END AS meeting, "                                               \
    "  CASE WHEN e.type LIKE 'action.%' THEN (SELECT " ACTION_JSON("a") " FROM actions a "         \
    "    WHERE a.id = e.record_id) END AS action, "                                                \
    "  e.subject_id, e.record_id, extract(epoch FROM e.at)::float8 "                               \
    "FROM events e "                                                                               \
    "LEFT JOIN intelligence i ON i.id = e.record_id AND e.type LIKE 'intelligence.%' "             \
    "LEFT JOIN subjects s ON s.id = e.subject_id AND e.type = 'subject.updated' "
/* The next LIMIT_SSE_BATCH ids after a cursor, named: event ids have no gaps (the sequencer
 * numbers them head + 1, + 2, ...), so these are exactly the events after the cursor. Named,
 * the statement keeps one generic plan; written "id > $1 ORDER BY id LIMIT n", PostgreSQL
 * planned it afresh on every fetch (its generic estimate for "id > $1" is a third of the
 * table), 1-2.5 ms of planning per fetch, per worker, on every event's way to the stream. */
static const char fetch_sql[] = FETCH_SELECT "WHERE e.id = ANY($1::bigint[]) ORDER BY e.id";
/* Were there a gap all the same (an event removed by hand), the named fetch would find
 * nothing past it: then this one, which steps over any gap. */
static const char fetch_scan_sql[] = FETCH_SELECT "WHERE e.id > $1 ORDER BY e.id LIMIT $2";
/* clang-format on */

static void fetch_from(struct stream_worker *sw, int past_gap);

/* fetch_sql's $1: the LIMIT_SSE_BATCH ids after from, "{from+1,from+2,...}", as many as
 * there are below the largest bigint (a Last-Event-ID may be that large). */
#define IDS_LITERAL_SIZE (LIMIT_SSE_BATCH * 21 + 3)
static const char *ids_literal(char buf[IDS_LITERAL_SIZE], long long from)
{
    size_t len = 0;
    buf[len++] = '{';
    for (int i = 1; i <= LIMIT_SSE_BATCH && from <= LLONG_MAX - i; i++)
        len +=
            (size_t)snprintf(buf + len, IDS_LITERAL_SIZE - len, i > 1 ? ",%lld" : "%lld", from + i);
    snprintf(buf + len, IDS_LITERAL_SIZE - len, "}");
    return buf;
}

/* May this subscriber see the event in row? Same rule as GET (SUBJECT_VISIBLE,
 * INTEL_VISIBLE, MEETING_VISIBLE): the hub's managers and the team (for a meeting, the
 * invited agencies); restricted items only the listed. */
static int visible(const struct stream_sub *s, PGresult *res, int row)
{
    const struct auth_user *u = s->user;
    if (u->role == ROLE_ADMIN)
        return 0;
    const char *hub = PQgetvalue(res, row, 2), *team = PQgetvalue(res, row, 3);
    int sees = (hub[0] && strstr(u->hub_ids, hub)) || strstr(team, u->agency_id);
    if (sees && !PQgetisnull(res, row, 4))
        sees = strstr(PQgetvalue(res, row, 4), u->agency_id) != NULL;
    return sees;
}

static int is_meeting(PGresult *res, int row)
{
    return strncmp(PQgetvalue(res, row, 1), "meeting.", 8) == 0;
}

/* An event as GET renders it, o (consumed), into the text of an event. */
static char *event_text(PGresult *res, int row, json_object *o)
{
    char *s = xasprintf(
        "id: %s\nevent: %s\ndata: %s\n\n", PQgetvalue(res, row, 0), PQgetvalue(res, row, 1),
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return s;
}

/* A non-meeting event, rendered once for every reader: what GET renders does not depend on
 * who reads it (visible() decides who does). */
static char *render(PGresult *res, int row)
{
    const char *type = PQgetvalue(res, row, 1);
    json_object *o;
    if (strncmp(type, "intelligence.", 13) == 0)
        o = intelligence_render(res, row, FIRST_INTEL);
    else if (strncmp(type, "action.", 7) == 0)
        o = json_tokener_parse(PQgetvalue(res, row, COL_ACTION));
    else
        o = res_row_json_range(res, row, FIRST_SUBJECT, FIRST_MEETING);
    return event_text(res, row, o);
}

/* A meeting event of the pass. What GET renders depends on the reader: only the young
 * people (and their minutes) they may see. Parsing the document and writing it out again
 * for each reader cost tens of milliseconds a reader for a meeting with long minutes, a
 * slice of readers at a time, and each reader's buffer held a copy of its own (a 4 MB
 * meeting to 300 readers: 340-410 MB more memory; see "A meeting once per view" in
 * docs/architecture.md). So the document is parsed once, each view (which young people)
 * rendered once, and the readers that share a view share its text, referred to by their
 * connections' buffers (http_write_chunk_shared). Freed when its batch leaves the pass. */
struct meeting_view {
    unsigned char *seen; /* owned; meeting_people(doc) entries */
    struct http_shared *text;
    char (*shown)[40]; /* owned; the ids of the young people it shows, for the audit */
    int nshown;
};

struct meeting_event {
    const struct batch *bt; /* the batch and row it is */
    int row;
    json_object *doc; /* owned; parsed */
    int npeople;
    struct meeting_view *views; /* owned */
    int nviews;
    struct meeting_event *next;
};

static struct meeting_view *meeting_view_new(struct meeting_event *m, PGresult *res,
                                             const unsigned char *seen)
{
    m->views = xrealloc(m->views, (size_t)(m->nviews + 1) * sizeof(*m->views));
    struct meeting_view *v = &m->views[m->nviews++];
    v->seen = xmalloc((size_t)m->npeople + 1);
    memcpy(v->seen, seen, (size_t)m->npeople);
    v->shown = xcalloc((size_t)m->npeople + 1, sizeof(*v->shown));
    v->nshown = 0;
    json_object *o = meeting_shown(m->doc, v->seen), *yp = NULL;
    if (o != NULL && json_object_object_get_ex(o, "young_people", &yp))
        for (size_t i = 0; i < json_object_array_length(yp) && v->nshown < m->npeople; i++) {
            json_object *id = NULL;
            json_object_object_get_ex(json_object_array_get_idx(yp, i), "id", &id);
            snprintf(v->shown[v->nshown++], sizeof(v->shown[0]), "%s",
                     id ? json_object_get_string(id) : "");
        }
    char *text = event_text(res, m->row, o);
    v->text = http_shared_new(text, strlen(text));
    metrics_count(COUNTER_SSE_MEETING_RENDERS);
    return v;
}

/* The view of the meeting event in bt's row for reader u. */
static struct meeting_view *meeting_view(struct stream_worker *sw, const struct batch *bt, int row,
                                         const struct auth_user *u)
{
    struct meeting_event *m = sw->meetings;
    while (m != NULL && (m->bt != bt || m->row != row))
        m = m->next;
    if (m == NULL) {
        m = xcalloc(1, sizeof(*m));
        m->bt = bt;
        m->row = row;
        m->doc = json_tokener_parse(PQgetvalue(bt->res, row, FIRST_MEETING));
        m->npeople = meeting_people(m->doc);
        m->next = sw->meetings;
        sw->meetings = m;
    }
    if (m->npeople + 1 > sw->seen_cap) {
        sw->seen_cap = m->npeople + 1;
        sw->seen = xrealloc(sw->seen, (size_t)sw->seen_cap);
    }
    meeting_sees(m->doc, u, sw->seen);
    for (int i = 0; i < m->nviews; i++)
        if (memcmp(m->views[i].seen, sw->seen, (size_t)m->npeople) == 0)
            return &m->views[i];
    return meeting_view_new(m, bt->res, sw->seen);
}

static void meeting_event_free(struct meeting_event *m)
{
    for (int i = 0; i < m->nviews; i++) {
        free(m->views[i].seen);
        free(m->views[i].shown);
        http_shared_unref(m->views[i].text);
    }
    free(m->views);
    json_object_put(m->doc);
    free(m);
}

/* The meeting events of batch b (NULL: all) are done with. */
static void meetings_forget(struct stream_worker *sw, const struct batch *b)
{
    struct meeting_event **p = &sw->meetings;
    while (*p != NULL) {
        struct meeting_event *m = *p;
        if (b == NULL || m->bt == b) {
            *p = m->next;
            meeting_event_free(m);
        } else
            p = &m->next;
    }
}

/* Append to the worker's batch buffer (sw->out), growing it. */
static void out_add(struct stream_worker *sw, const char *text, size_t len)
{
    if (sw->out_len + len > sw->out_cap) {
        sw->out_cap = (sw->out_len + len) * 2;
        sw->out = xrealloc(sw->out, sw->out_cap);
    }
    memcpy(sw->out + sw->out_len, text, len);
    sw->out_len += len;
}

/* s's share of one batch, appended to sw->out; 0: nothing more for s in this visit (held at
 * an account change, or its buffer full). */
static int fan_out_rows(struct stream_worker *sw, struct stream_sub *s, struct batch *bt,
                        size_t *base, long *sent)
{
    PGresult *res = bt->res;
    if (s->cursor < bt->from) {
        /* it would skip what lies between: its worker's fetch brings it. A later batch
         * whose start it is not behind still serves it (it holds every event after it). */
        sw->behind = 1;
        return 1;
    }
    for (int row = 0; row < bt->n; row++) {
        struct batch_row *b = &bt->rows[row];
        if (s->cursor >= b->id)
            continue;
        if (b->account && strcmp(PQgetvalue(res, row, COL_RECORD), s->user->id) == 0) {
            /* nothing after this goes out under the rights it had before */
            log_info("stream: subscriber %s: account changed (event %lld); re-reading",
                     s->request_id, b->id);
            s->held = HOLD_WAITING;
            s->held_at = b->id;
            sw->batch_held = 1;
            return 0;
        }
        if (b->account || !visible(s, res, row)) {
            s->cursor = b->id;
            continue;
        }
        struct meeting_view *v = is_meeting(res, row) ? meeting_view(sw, bt, row, s->user) : NULL;
        if (v == NULL &&
            b->text == NULL) { /* only in a batch of our own: shared ones come rendered */
            b->text = render(res, row);
            b->len = strlen(b->text);
        }
        const char *text = v != NULL ? v->text->text : b->text;
        size_t len = v != NULL ? v->text->len : b->len;
        if (sw->out_len == 0)
            *base = stream_unsent(s);
        /* An event bigger than the whole bound (a meeting's minutes can be megabytes) goes
         * out alone into an empty buffer: held back, it would be held back for ever, and
         * its subscriber with it. */
        if (*base + sw->out_len > 0 && stream_sub_full(s, *base + sw->out_len + len))
            return 0; /* the event comes again later */
        if (v != NULL && sw->out_len == 0 && len >= LIMIT_SSE_SHARED_MIN) {
            stream_sub_write_shared(s, v->text); /* alone, and not copied */
            metrics_count(COUNTER_SSE_WRITES);
        } else
            out_add(sw, text, len);
        s->cursor = b->id;
        (*sent)++;
        const char *id = PQgetvalue(res, row, 0), *hub = PQgetvalue(res, row, 2);
        if (v == NULL)
            stream_note_delivery(sw, s, id, PQgetvalue(res, row, COL_SUBJECT), hub);
        else if (v->nshown == 0) /* a meeting with none of its young people shown */
            stream_note_delivery(sw, s, id, "", hub);
        for (int i = 0; v != NULL && i < v->nshown; i++) /* its minutes about each */
            stream_note_delivery(sw, s, id, v->shown[i], hub);
    }
    return 1;
}

/* Each subscriber gets everything of the pass it may see in ONE write: one chunk, one TLS
 * record (up to 16 KiB) and one write() for several events where there used to be one of
 * each per event. Under load the passes grow (each takes everything that came during the
 * one before), so the cost per event falls as the load rises instead of the subscribers
 * falling behind. Nothing is written past LIMIT_SSE_BUFFER unsent: a subscriber that would
 * pass it is blocked there, its cursor at the last event it got. */
static size_t fan_out_one(struct stream_worker *sw, struct stream_sub *s)
{
    if (s->blocked_since != 0 || s->held)
        return 0;
    size_t handed = s->handed;
    size_t base = 0; /* stream_unsent(s), read at its first event */
    long sent = 0;
    sw->out_len = 0;
    for (int k = 0; k < sw->ncur && fan_out_rows(sw, s, sw->cur[k], &base, &sent); k++)
        continue;
    if (sw->out_len > 0) {
        stream_sub_write(s, sw->out, sw->out_len);
        metrics_count(COUNTER_SSE_WRITES);
    }
    metrics_add(COUNTER_SSE_EVENTS, sent);
    if (sent > 0 || s->blocked_since != 0) /* else nothing changed for its stall */
        stream_stall_start(s); /* after the write: what the kernel took at once is not reading */
    return s->handed - handed;
}

/* A batch from a fetch's result (copied: the db layer frees it when the callback returns,
 * and the fan-out outlives that), with refs references. */
static struct batch *batch_new(PGresult *res, int refs, long long from, int own)
{
    int n = PQntuples(res);
    struct batch *b = xcalloc(1, sizeof(*b));
    b->res = PQcopyResult(res, PG_COPYRES_ATTRS | PG_COPYRES_TUPLES);
    if (b->res == NULL) {
        log_error("stream: out of memory copying %d events", n);
        abort();
    }
    atomic_init(&b->refs, refs);
    b->n = n;
    b->from = from;
    b->own = own;
    b->rows = xcalloc((size_t)n, sizeof(*b->rows));
    for (int row = 0; row < n; row++) {
        b->rows[row].id = atoll(PQgetvalue(res, row, 0));
        b->rows[row].account = strcmp(PQgetvalue(res, row, 1), "account.changed") == 0;
        b->rows[row].at = atof(PQgetvalue(res, row, COL_AT));
    }
    return b;
}

static void batch_unref(struct batch *b)
{
    if (b == NULL || atomic_fetch_sub(&b->refs, 1) > 1)
        return;
    for (int row = 0; row < b->n; row++)
        free(b->rows[row].text);
    free(b->rows);
    PQclear(b->res);
    free(b);
}

/* Queue a batch for the worker (any thread); the worker's kick takes it. */
static void batch_push(struct stream_worker *sw, struct batch *b)
{
    struct batch_ref *r = xmalloc(sizeof(*r));
    r->b = b;
    pthread_mutex_lock(&sw->lock);
    STAILQ_INSERT_TAIL(&sw->queue, r, next);
    pthread_mutex_unlock(&sw->lock);
}

static struct batch *batch_pop(struct stream_worker *sw)
{
    pthread_mutex_lock(&sw->lock);
    struct batch_ref *r = STAILQ_FIRST(&sw->queue);
    if (r != NULL)
        STAILQ_REMOVE_HEAD(&sw->queue, next);
    pthread_mutex_unlock(&sw->lock);
    struct batch *b = r != NULL ? r->b : NULL;
    free(r);
    return b;
}

static void fan_out_slice(struct stream_worker *sw);

/* How old the events of a shared batch are now (metrics_stream_age). */
static void batch_age(const struct batch *b, enum metrics_stream_stage stage)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    for (int row = 0; row < b->n; row++)
        metrics_stream_age(stage, now - b->rows[row].at);
}

/* Take what is queued into the pass (up to SSE_PASS_MAX batches). A batch stays in the pass
 * until every subscriber has been visited once after it joined. */
static void fan_out_take(struct stream_worker *sw)
{
    long until = sw->ncur > 0 ? sw->cur_until[sw->ncur - 1] : 0;
    if (until < sw->visits + sw->nsubs)
        until = sw->visits + sw->nsubs;
    while (sw->ncur < SSE_PASS_MAX && (sw->cur[sw->ncur] = batch_pop(sw)) != NULL)
        sw->cur_until[sw->ncur++] = until;
}

/* Let go of the batches every subscriber has been offered (they joined in order, so they
 * leave in order). */
static void fan_out_release(struct stream_worker *sw)
{
    int k = 0;
    while (k < sw->ncur && sw->cur_until[k] <= sw->visits) {
        sw->more |= sw->cur[k]->own && sw->cur[k]->n == LIMIT_SSE_BATCH;
        if (!sw->cur[k]->own && sw->nsubs > 0)
            batch_age(sw->cur[k], STREAM_AGE_SENT);
        meetings_forget(sw, sw->cur[k]);
        batch_unref(sw->cur[k]);
        k++;
    }
    if (k == 0)
        return;
    sw->ncur -= k;
    memmove(sw->cur, sw->cur + k, (size_t)sw->ncur * sizeof(sw->cur[0]));
    memmove(sw->cur_until, sw->cur_until + k, (size_t)sw->ncur * sizeof(sw->cur_until[0]));
}

/* A subscriber came (at the end of the list, so the round in progress reaches it before it
 * wraps): every batch of the pass stays one visit longer. Counted from when they joined,
 * the new one would have used up the last visit of each, and the first subscriber of the
 * round after would have been left waiting for a later batch or the poll (found in review).
 * One that goes before its visit leaves a visit spare: someone is visited twice, and the
 * cursors make that harmless. */
void stream_fanout_joined(struct stream_worker *sw)
{
    for (int k = 0; k < sw->ncur; k++)
        sw->cur_until[k]++;
}

/* If no pass is in progress, start one with what is queued. */
static void fan_out_next(struct stream_worker *sw)
{
    if (sw->ncur > 0)
        return;
    fan_out_take(sw);
    if (sw->ncur > 0)
        fan_out_slice(sw);
}

/* A pass goes round the subscribers LIMIT_SSE_SLICE at a time, the rest one loop turn later:
 * at 1,000 subscribers a round is 10-30 ms of writes, and in between the worker answers what
 * came meanwhile (a post's reply, whose commit starts the sequencer, is the next batch)
 * instead of making it wait for the last subscriber. Each visit writes a subscriber, in one
 * write, everything of the pass's batches after its cursor that it may see, in id order.
 * Batches that come meanwhile join the pass in progress (fan_out_take): the subscribers the
 * round has not reached yet get them in this round, the others in the next one, which goes
 * on from where this one is. So a new event waits for at most one round of writes, not for
 * the rest of the round in progress and then a whole one of its own. The pass ends one round
 * after the last batch joined. Cursors only move forward and a batch serves a subscriber only
 * if it is not behind the batch's start, so each event goes out once and in order, however
 * the rounds and batches fall. One that goes meanwhile is stepped over (sub_free); one that
 * comes is served when the round reaches it, or by its worker's fetch if it is behind. After
 * each slice, the worker sends a check for subscribers held at an account change and a fetch
 * of its own if a subscriber was behind or its own fetch was full; their answers join the
 * pass too. */
static void fan_out_slice(struct stream_worker *sw)
{
    size_t handed = 0;
    for (int k = 0; k < LIMIT_SSE_SLICE && sw->ncur > 0 && handed < LIMIT_SSE_SLICE_BYTES; k++) {
        struct stream_sub *s = sw->batch_next != NULL ? sw->batch_next : TAILQ_FIRST(&sw->subs);
        if (s == NULL) { /* nobody left: every batch has been offered to every subscriber */
            sw->visits = sw->cur_until[sw->ncur - 1];
            fan_out_release(sw);
            break;
        }
        sw->batch_next = TAILQ_NEXT(s, entry);
        handed += fan_out_one(sw, s);
        sw->visits++;
        fan_out_release(sw);
    }
    if (sw->batch_held) {
        sw->batch_held = 0;
        stream_check_subs(sw, 1);
    }
    if (sw->more || sw->again || sw->behind) {
        sw->more = sw->again = sw->behind = 0;
        fetch_from(sw, 0); /* cursors only move forward: from the lowest is always safe */
    }
    fan_out_take(sw);
    if (sw->ncur > 0) {
        static const struct timeval now = {0, 0};
        evtimer_add(sw->slice, &now); /* after the I/O that is ready by then */
    }
}

static void slice_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    fan_out_slice(arg);
}

static void fetched(enum db_status st, PGresult *res, void *arg)
{
    struct stream_worker *sw = arg;
    sw->pending = NULL;
    if (st != DB_OK) {
        log_warn("stream: fetching events failed (%s); retrying on the next poll",
                 st == DB_ERROR ? db_sqlstate(res) : "unavailable");
        return; /* the poll timer tries again */
    }
    int n = PQntuples(res);
    log_debug("stream: fetched %d events for %d subscribers", n, sw->nsubs);
    if (n > 0) {
        batch_push(sw, batch_new(res, 1, sw->from, 1));
        fan_out_next(sw);
        return;
    }
    /* events committed past the cursor, yet none came: a gap */
    int gap = !sw->scanning && sw->from < sw->newest;
    if (sw->again || gap) {
        sw->again = 0;
        fetch_from(sw, gap);
    }
}

/* Main thread: hand a shared batch to every worker. */
static void shared_publish(PGresult *res)
{
    pthread_mutex_lock(&registry_lock);
    int nworkers = 0;
    for (int i = 0; i < LIMIT_WORKERS_MAX; i++)
        nworkers += registry[i] != NULL;
    if (nworkers > 0) {
        struct batch *b = batch_new(res, nworkers, shared_upto, 0);
        batch_age(b, STREAM_AGE_FETCHED);
        for (int row = 0; row < b->n; row++)
            if (!b->rows[row].account && !is_meeting(res, row)) {
                b->rows[row].text = render(res, row); /* no meetings here */
                b->rows[row].len = strlen(b->rows[row].text);
            }
        for (int i = 0; i < LIMIT_WORKERS_MAX; i++)
            if (registry[i] != NULL) {
                batch_push(registry[i], b);
                event_active(registry[i]->kick, EV_READ, 0);
            }
        metrics_count(COUNTER_SSE_SHARED);
    }
    pthread_mutex_unlock(&registry_lock);
}

static void shared_fetched(enum db_status st, PGresult *res, void *arg)
{
    (void)arg;
    shared_pending = NULL;
    int n = st == DB_OK ? PQntuples(res) : 0;
    /* numbering is one transaction at a time, so what is visible is every event up to
     * some id: anything else, or a failure, and the workers fetch for themselves */
    int whole = st == DB_OK && n > 0;
    for (int row = 0; whole && row < n; row++)
        whole = atoll(PQgetvalue(res, row, 0)) == shared_upto + 1 + row;
    if (!whole) {
        char why[64];
        if (st == DB_OK)
            snprintf(why, sizeof(why), "found %d events, not every one announced", n);
        else
            snprintf(why, sizeof(why), "failed (%s)",
                     st == DB_ERROR ? db_sqlstate(res) : "unavailable");
        shared_fallback(why);
        return;
    }
    if (shared_failing)
        log_info("stream: the shared fetch works again");
    shared_failing = 0;
    shared_publish(res);
    shared_upto += n;
    if (atomic_load(&newest_event) > shared_upto)
        shared_fetch();
}

static void shared_fetch(void)
{
    if (shared_pending != NULL)
        return; /* its callback fetches again if there is more */
    char ids[IDS_LITERAL_SIZE];
    const char *params[] = {ids_literal(ids, shared_upto)};
    shared_pending = db_query(shared_pool, fetch_sql, 1, params, shared_fetched, NULL);
    if (shared_pending == NULL) /* the connection is down, or its queue full */
        shared_fallback("was refused (no connection, or its queue is full)");
}

/* One query for every subscriber, from the lowest cursor; past_gap: with fetch_scan_sql. */
static void fetch_from(struct stream_worker *sw, int past_gap)
{
    if (sw->pending != NULL) {
        sw->again = 1;
        return;
    }
    long long from = -1;
    struct stream_sub *s;
    TAILQ_FOREACH(s, &sw->subs, entry)
    if (s->blocked_since == 0 && !s->held && (from < 0 || s->cursor < from))
        from = s->cursor;
    if (from < 0)
        return; /* nobody listening */
    sw->from = from;
    sw->newest = atomic_load(&newest_event);
    sw->scanning = past_gap;
    if (past_gap) {
        char f[24], lim[16];
        snprintf(f, sizeof(f), "%lld", from);
        snprintf(lim, sizeof(lim), "%d", LIMIT_SSE_BATCH);
        const char *params[] = {f, lim};
        log_warn("stream: no event after %lld although %lld was announced; scanning past a gap",
                 from, sw->newest);
        sw->pending = db_query(sw->db, fetch_scan_sql, 2, params, fetched, sw);
        return;
    }
    char ids[IDS_LITERAL_SIZE];
    const char *params[] = {ids_literal(ids, from)};
    log_debug("stream: fetching after %lld", from);
    sw->pending = db_query(sw->db, fetch_sql, 1, params, fetched, sw);
}

void stream_fetch(struct stream_worker *sw)
{
    fetch_from(sw, 0);
}

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct stream_worker *sw = arg;
    pthread_mutex_lock(&sw->lock);
    int fetch_wanted = sw->fetch_wanted;
    sw->fetch_wanted = 0;
    pthread_mutex_unlock(&sw->lock);
    if (fetch_wanted)
        stream_fetch(sw);
    fan_out_next(sw);
}

void stream_fanout_start(struct stream_worker *sw)
{
    sw->kick = event_new(sw->base, -1, 0, kick_cb, sw);
    sw->slice = evtimer_new(sw->base, slice_cb, sw);
    pthread_mutex_init(&sw->lock, NULL);
    STAILQ_INIT(&sw->queue);
    pthread_mutex_lock(&registry_lock);
    registry[sw->id] = sw;
    pthread_mutex_unlock(&registry_lock);
}

void stream_fanout_leave(struct stream_worker *sw)
{
    pthread_mutex_lock(&registry_lock);
    registry[sw->id] = NULL;
    pthread_mutex_unlock(&registry_lock);
}

void stream_fanout_free(struct stream_worker *sw)
{
    if (sw->pending != NULL)
        db_query_orphan(sw->pending);
    for (int k = 0; k < sw->ncur; k++) /* out of the registry: nothing more is queued */
        batch_unref(sw->cur[k]);
    struct batch *b;
    while ((b = batch_pop(sw)) != NULL)
        batch_unref(b);
    pthread_mutex_destroy(&sw->lock);
    event_free(sw->slice);
    event_free(sw->kick);
    meetings_forget(sw, NULL);
    free(sw->out);
    free(sw->seen);
}
