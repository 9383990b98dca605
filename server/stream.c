#include "stream.h"

#include "auth.h"
#include "http.h"
#include "intelligence.h"
#include "meetings.h"
#include "actions.h"
#include "log.h"
#include "metrics.h"
#include "raise_limits.h"
#include "resource.h"
#include "sequencer.h"
#include "server.h"
#include "config.h"
#include "util.h"
#include "xmalloc.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

/* One event of a fetched batch: its SSE text is rendered once for every subscriber (not a
 * meeting's: see render): the first time a subscriber may see it, or for a shared batch by
 * the main thread before any worker reads it. */
struct batch_row {
    long long id;
    int account; /* account.changed: never sent; holds its user's subscribers */
    char *text;  /* owned; NULL until rendered */
    size_t len;
};

/* A fetched batch of events. A worker's own fetch is its alone (from < 0); a shared one,
 * fetched once by the main thread, is read by every worker at once and freed by the last. */
struct batch {
    _Atomic int refs;
    PGresult *res;          /* owned: a copy of the fetch's result */
    struct batch_row *rows; /* owned */
    int n;
    /* shared: the batch holds every event after from (to rows[n-1].id), and a subscriber
     * whose cursor is behind from must not skip the events in between: it waits for its
     * worker's own fetch. -1 (a worker's own): from its lowest cursor, for all of them. */
    long long from;
};

/* At most this many queued batches go out in one pass over the subscribers (fan_out_next). */
#define SSE_PASS_MAX 32

struct batch_ref {
    STAILQ_ENTRY(batch_ref) next;
    struct batch *b;
};

struct stream_sub {
    TAILQ_ENTRY(stream_sub) entry;
    struct stream_worker *sw;        /* borrowed */
    struct evhttp_request *req;      /* borrowed from evhttp; ended by us */
    struct evhttp_connection *evcon; /* borrowed */
    struct http_server *hs;          /* borrowed: the worker's, to end the reply */
    struct auth_user *user;          /* owned */
    char addr[64], request_id[LIMIT_REQUEST_ID + 1];
    long long cursor;       /* the last event id this subscriber has been sent (or skipped) */
    uint64_t blocked_since; /* ms; 0 = writing. Blocked: its unsent buffer is full */
    int dead;
    int chunked; /* http_reply_chunked */
    /* Stopped at an account.changed event of its user (held_at) until its rights are read
     * again: HOLD_WAITING for the check to be sent, HOLD_CHECKING while it runs. */
    int held;
    long long held_at;
    int in_check; /* its user and session are in the check in flight */
    /* Deliveries not yet in the worker's audit notes, all of one young person and hub
     * (note_delivery): event ids "1,2,3" in a buffer of our own, no allocation per event. */
    char note_subject[40], note_hub[40];
    char *note_ids; /* owned */
    size_t note_len, note_cap;
};

TAILQ_HEAD(sub_list, stream_sub);

enum { HOLD_NONE, HOLD_WAITING, HOLD_CHECKING };

struct stream_worker {
    struct event_base *base; /* borrowed */
    struct db_pool *db;      /* borrowed */
    int id;
    struct sub_list subs;
    int nsubs;
    struct event *kick;      /* owned; activated from the LISTEN thread */
    struct event *heartbeat; /* owned */
    struct event *poll;      /* owned */
    struct db_query *pending;
    struct db_query *checking; /* a credentials check: the heartbeat's, or for held subs */
    json_object *audit;        /* owned; deliveries not yet audited, see note_delivery */
    uint64_t audit_flushed_ms;
    int again;
    long long from;   /* the cursor of the fetch in flight */
    long long newest; /* newest_event when it was sent: committed, so it must see those */
    int scanning;     /* the fetch in flight is fetch_scan_sql */
    char *out;        /* owned; one subscriber's share of a fetched batch (fan_out_one) */
    size_t out_len, out_cap;
    /* The batch being fanned out, LIMIT_SSE_SLICE subscribers a loop turn (see
     * fan_out_slice); NULL when none is. The worker sends no fetch of its own meanwhile. */
    struct batch *cur[SSE_PASS_MAX]; /* references: every batch queued when it began */
    int ncur;
    int batch_held;                /* some subscriber was held at an account change */
    int behind;                    /* some subscriber was behind a shared batch's start */
    struct stream_sub *batch_next; /* the next subscriber to serve; NULL: all served */
    struct event *slice;           /* owned; the next slice, one loop turn later */
    /* Batches waiting for the one in progress: shared ones from the main thread and this
     * worker's own fetches, in the order they came. */
    pthread_mutex_t lock; /* guards queue and fetch_wanted */
    STAILQ_HEAD(, batch_ref) queue;
    int fetch_wanted; /* kicked to fetch for itself (not only to take a shared batch) */
};

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
        shared_upto = shared_pool != NULL && id > 0 ? id : -1;
        kick_workers();
        return;
    }
    if (id > shared_upto)
        shared_fetch();
}

static void note_park(struct stream_worker *sw, struct stream_sub *s);

static void sub_free(struct stream_sub *s)
{
    note_park(s->sw, s); /* its last deliveries go out with the worker's next flush */
    free(s->note_ids);
    if (s->sw->batch_next == s) /* the fan-out in progress goes on with the next one */
        s->sw->batch_next = TAILQ_NEXT(s, entry);
    TAILQ_REMOVE(&s->sw->subs, s, entry);
    s->sw->nsubs--;
    metrics_gauge_add(GAUGE_SUBSCRIBERS, -1);
    auth_user_free(s->user);
    free(s);
}

/* The client went away. If libevent detached our unfinished reply from the connection (a
 * failed write or EOF: evhttp_connection_incoming_fail), the request is ours to finish:
 * ending it with no connection frees it. Otherwise the connection frees it. */
static void sub_closed(struct evhttp_connection *evcon, void *arg)
{
    struct stream_sub *s = arg;
    if (evhttp_request_get_connection(s->req) == NULL)
        evhttp_send_reply_end(s->req);
    sub_free(s);
}

/* Cut a subscriber off: end_reply ends the stream cleanly (signed out, or the worker is
 * stopping) after a last comment; otherwise (too slow) the connection is closed. */
static void sub_close(struct stream_sub *s, int end_reply)
{
    evhttp_connection_set_closecb(s->evcon, NULL, NULL);
    if (end_reply)
        http_end_detached(s->hs, s->req, ": end of stream\n\n");
    else
        evhttp_connection_free(s->evcon);
    sub_free(s);
}

static size_t unsent(const struct stream_sub *s)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(s->evcon);
    return bev ? evbuffer_get_length(bufferevent_get_output(bev)) : 0;
}

/* Would the subscriber's unsent bytes pass LIMIT_SSE_BUFFER at total? Then it is blocked
 * until it drains, and cut off if it stays blocked (see unblock_or_cut). */
static int sub_full(struct stream_sub *s, size_t total)
{
    if (total <= LIMIT_SSE_BUFFER)
        return 0;
    if (s->blocked_since == 0)
        s->blocked_since = util_now_ms();
    return 1;
}

/* Queue text for the subscriber; -1 (nothing written) if its unsent buffer is full. */
static int sub_write(struct stream_sub *s, const char *text, size_t len)
{
    if (sub_full(s, unsent(s) + len))
        return -1;
    http_write_chunk(s->req, s->chunked, text, len);
    return 0;
}

/* A blocked subscriber that has drained half its buffer writes again (and catches up from
 * its cursor); one blocked for LIMIT_SSE_STALL_MS cannot keep up and is cut off. */
static void unblock_or_cut(struct stream_worker *sw)
{
    uint64_t now = util_now_ms();
    struct stream_sub *s, *next;
    for (s = TAILQ_FIRST(&sw->subs); s != NULL; s = next) {
        next = TAILQ_NEXT(s, entry);
        if (s->blocked_since == 0)
            continue;
        if (unsent(s) <= LIMIT_SSE_BUFFER / 2) {
            s->blocked_since = 0;
        } else if (now - s->blocked_since >= LIMIT_SSE_STALL_MS) {
            log_warn("stream: subscriber %s too slow, disconnected", s->request_id);
            metrics_count(COUNTER_SSE_DROPPED);
            sub_close(s, 0);
        }
    }
}

/* ---- fetching and fan-out */

/* Columns: 0 id, 1 type, 2 hub_id, 3 audience (the young person's team; for a meeting its
 * invited agencies; for an action the team and the owner agency), 4 restricted_to, then the
 * intelligence item (INTEL_COLUMNS), then the young person (SUBJECT_COLUMNS + team), then the
 * meeting document (MEETING_DOC), the action (ACTION_JSON), the event's young person and its
 * record (for account.changed, the user). */
#define FIRST_INTEL   5
#define FIRST_SUBJECT (FIRST_INTEL + INTEL_NCOLS)
#define FIRST_MEETING (FIRST_SUBJECT + 11)
#define COL_ACTION    (FIRST_MEETING + 1)
#define COL_SUBJECT   (FIRST_MEETING + 2)
#define COL_RECORD    (FIRST_MEETING + 3)
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
    "  e.subject_id, e.record_id "                                                                 \
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

/* fetch_sql's $1: the LIMIT_SSE_BATCH ids after from, "{from+1,from+2,...}". */
#define IDS_LITERAL_SIZE (LIMIT_SSE_BATCH * 21 + 3)
static const char *ids_literal(char buf[IDS_LITERAL_SIZE], long long from)
{
    size_t len = 0;
    buf[len++] = '{';
    for (int i = 1; i <= LIMIT_SSE_BATCH; i++)
        len +=
            (size_t)snprintf(buf + len, IDS_LITERAL_SIZE - len, i > 1 ? ",%lld" : "%lld", from + i);
    snprintf(buf + len, IDS_LITERAL_SIZE - len, "}");
    return buf;
}
static void fetch(struct stream_worker *sw);
static void check_subs(struct stream_worker *sw, int held_only);

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

/* The event as GET renders it; a meeting's young people depend on the reader, so meeting
 * events are rendered per subscriber (u), the others once for all. */
static char *render(PGresult *res, int row, const struct auth_user *u)
{
    const char *type = PQgetvalue(res, row, 1);
    json_object *o;
    if (strncmp(type, "intelligence.", 13) == 0)
        o = intelligence_render(res, row, FIRST_INTEL);
    else if (is_meeting(res, row))
        o = meeting_render(PQgetvalue(res, row, FIRST_MEETING), u);
    else if (strncmp(type, "action.", 7) == 0)
        o = json_tokener_parse(PQgetvalue(res, row, COL_ACTION));
    else
        o = res_row_json_range(res, row, FIRST_SUBJECT, FIRST_MEETING);
    char *s = xasprintf(
        "id: %s\nevent: %s\ndata: %s\n\n", PQgetvalue(res, row, 0), type,
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return s;
}

static void audit_done(enum db_status st, PGresult *res, void *arg)
{
    if (st != DB_OK)
        log_error("stream: delivery audit not written (%s)", db_sqlstate(res));
}

static const char audit_sql[] =
    "INSERT INTO audit_queue (user_id, username, agency_id, role, route, client_addr, "
    "request_id, purpose, action, outcome, record_type, record_id, subject_id, hub_id) "
    "SELECT x.user_id, x.username, x.agency_id, x.role, 'GET /v1/stream', x.client_addr, "
    "x.request_id, 'live feed', 'stream.deliver', 'ok', x.record_type, x.record_id, "
    "x.subject_id, x.hub_id FROM jsonb_to_recordset($1::jsonb) AS x(user_id uuid, "
    "username text, agency_id uuid, role text, client_addr text, request_id text, "
    "record_type text, record_id text, subject_id uuid, hub_id uuid)";

/* Deliveries are audited in aggregate: one row per subscriber per young person per flush
 * (about a second), whose record_id lists the event ids sent. One chained row per single
 * delivery would be 100,000 rows a second for 1,000 subscribers at 100 events a second.
 * A delivery only appends its id to the subscriber's own buffer (this runs once per event
 * per subscriber); the buffer moves into the worker's notes (sw->audit, keyed by stream,
 * young person and hub) when the young person changes, at the flush, and when the
 * subscriber goes. */
static void note_park(struct stream_worker *sw, struct stream_sub *s)
{
    if (s->note_len == 0)
        return;
    char key[sizeof(s->request_id) + sizeof(s->note_subject) + sizeof(s->note_hub)];
    snprintf(key, sizeof(key), "%s|%s|%s", s->request_id, s->note_subject, s->note_hub);
    json_object *d, *ids;
    if (json_object_object_get_ex(sw->audit, key, &d) &&
        json_object_object_get_ex(d, "record_id", &ids)) {
        char *joined = xasprintf("%s,%s", json_object_get_string(ids), s->note_ids);
        json_object_object_add(d, "record_id", json_object_new_string(joined));
        free(joined);
    } else {
        d = json_object_new_object();
        json_object_object_add(d, "user_id", json_object_new_string(s->user->id));
        json_object_object_add(d, "username", json_object_new_string(s->user->username));
        json_object_object_add(d, "agency_id", json_object_new_string(s->user->agency_id));
        json_object_object_add(d, "role", json_object_new_string(role_names[s->user->role]));
        json_object_object_add(d, "client_addr", json_object_new_string(s->addr));
        json_object_object_add(d, "request_id", json_object_new_string(s->request_id));
        json_object_object_add(d, "record_type", json_object_new_string("event"));
        json_object_object_add(d, "record_id", json_object_new_string(s->note_ids));
        /* a meeting event is about no one young person ("") */
        json_object_object_add(d, "subject_id",
                               s->note_subject[0] ? json_object_new_string(s->note_subject) : NULL);
        json_object_object_add(d, "hub_id", json_object_new_string(s->note_hub));
        json_object_object_add(sw->audit, key, d);
    }
    s->note_len = 0;
}

static void note_delivery(struct stream_worker *sw, struct stream_sub *s, PGresult *res, int row)
{
    const char *id = PQgetvalue(res, row, 0);
    const char *subject = PQgetvalue(res, row, COL_SUBJECT), *hub = PQgetvalue(res, row, 2);
    if (s->note_len > 0 && (strcmp(subject, s->note_subject) != 0 || strcmp(hub, s->note_hub) != 0))
        note_park(sw, s);
    if (s->note_len == 0) {
        snprintf(s->note_subject, sizeof(s->note_subject), "%s", subject);
        snprintf(s->note_hub, sizeof(s->note_hub), "%s", hub);
    }
    size_t n = strlen(id), need = s->note_len + n + 2;
    if (need > s->note_cap) {
        s->note_cap = need < 256 ? 256 : need * 2;
        s->note_ids = xrealloc(s->note_ids, s->note_cap);
    }
    if (s->note_len > 0)
        s->note_ids[s->note_len++] = ',';
    memcpy(s->note_ids + s->note_len, id, n + 1);
    s->note_len += n;
}

static void audit_flush(struct stream_worker *sw)
{
    sw->audit_flushed_ms = util_now_ms();
    struct stream_sub *s;
    TAILQ_FOREACH(s, &sw->subs, entry)
    note_park(sw, s);
    if (json_object_object_length(sw->audit) == 0)
        return;
    json_object *rows = json_object_new_array();
    json_object_object_foreach(sw->audit, key, val)
    {
        (void)key;
        json_object_array_add(rows, json_object_get(val));
    }
    const char *params[] = {json_object_to_json_string_ext(rows, JSON_C_TO_STRING_PLAIN)};
    if (db_query(sw->db, audit_sql, 1, params, audit_done, NULL) == NULL)
        log_error("stream: delivery audit not written (database unavailable)");
    json_object_put(rows);
    json_object_put(sw->audit);
    sw->audit = json_object_new_object();
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

/* s's share of one batch, appended to sw->out; 0: nothing more for s in this pass (held at
 * an account change, its buffer full, or behind the batch's start). */
static int fan_out_rows(struct stream_worker *sw, struct stream_sub *s, struct batch *bt,
                        size_t *base, long *sent)
{
    PGresult *res = bt->res;
    if (bt->from >= 0 && s->cursor < bt->from) {
        sw->behind = 1; /* it would skip what lies between: its worker's fetch brings it */
        return 0;
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
        char *mine = NULL; /* a meeting, rendered for this subscriber */
        if (is_meeting(res, row))
            mine = render(res, row, s->user);
        else if (b->text == NULL) { /* only in a batch of our own: shared ones come rendered */
            b->text = render(res, row, NULL);
            b->len = strlen(b->text);
        }
        const char *text = mine != NULL ? mine : b->text;
        size_t len = mine != NULL ? strlen(mine) : b->len;
        if (sw->out_len == 0)
            *base = unsent(s);
        if (sub_full(s, *base + sw->out_len + len)) {
            free(mine); /* the event comes again later */
            return 0;
        }
        out_add(sw, text, len);
        free(mine);
        s->cursor = b->id;
        (*sent)++;
        note_delivery(sw, s, res, row);
    }
    return 1;
}

/* Each subscriber gets everything of the pass it may see in ONE write: one chunk, one TLS
 * record (up to 16 KiB) and one write() for several events where there used to be one of
 * each per event. Under load the passes grow (each takes everything that came during the
 * one before), so the cost per event falls as the load rises instead of the subscribers
 * falling behind. Nothing is written past LIMIT_SSE_BUFFER unsent: a subscriber that would
 * pass it is blocked there, its cursor at the last event it got. */
static void fan_out_one(struct stream_worker *sw, struct stream_sub *s)
{
    if (s->dead || s->blocked_since != 0 || s->held)
        return;
    size_t base = 0; /* unsent(s), read at its first event */
    long sent = 0;
    sw->out_len = 0;
    for (int k = 0; k < sw->ncur && fan_out_rows(sw, s, sw->cur[k], &base, &sent); k++)
        continue;
    if (sw->out_len > 0) {
        http_write_chunk(s->req, s->chunked, sw->out, sw->out_len);
        metrics_add(COUNTER_SSE_EVENTS, sent);
        metrics_count(COUNTER_SSE_WRITES);
    }
}

/* A batch from a fetch's result (copied: the db layer frees it when the callback returns,
 * and the fan-out outlives that), with refs references. */
static struct batch *batch_new(PGresult *res, int refs, long long from)
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
    b->rows = xcalloc((size_t)n, sizeof(*b->rows));
    for (int row = 0; row < n; row++) {
        b->rows[row].id = atoll(PQgetvalue(res, row, 0));
        b->rows[row].account = strcmp(PQgetvalue(res, row, 1), "account.changed") == 0;
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

/* If no pass is in progress, one over everything queued (up to SSE_PASS_MAX batches): the
 * batches that came while the last pass went out, all in one write per subscriber. */
static void fan_out_next(struct stream_worker *sw)
{
    if (sw->ncur > 0)
        return;
    while (sw->ncur < SSE_PASS_MAX && (sw->cur[sw->ncur] = batch_pop(sw)) != NULL)
        sw->ncur++;
    if (sw->ncur == 0)
        return;
    sw->batch_held = 0;
    sw->batch_next = TAILQ_FIRST(&sw->subs);
    fan_out_slice(sw);
}

/* A pass goes out LIMIT_SSE_SLICE subscribers at a time, the rest one loop turn later: at
 * 1,000 subscribers a whole pass is 10-20 ms of writes, and in between the worker answers
 * what came meanwhile (a post's reply, whose commit starts the sequencer, is the next batch)
 * instead of making it wait for the last subscriber. Every subscriber is served once per
 * pass, in list order, and passes one after the other, so each still gets its events in
 * order and once. One that goes meanwhile is stepped over (sub_free); one that comes is
 * served if the pass has not passed it yet, as if it had come before. At the end, the
 * worker fetches for itself if a subscriber was behind a shared batch, or its own fetch was
 * full, and starts the next pass with whatever was queued meanwhile. */
static void fan_out_slice(struct stream_worker *sw)
{
    for (int k = 0; k < LIMIT_SSE_SLICE && sw->batch_next != NULL; k++) {
        struct stream_sub *s = sw->batch_next;
        sw->batch_next = TAILQ_NEXT(s, entry);
        fan_out_one(sw, s);
    }
    if (sw->batch_next != NULL) {
        static const struct timeval now = {0, 0};
        evtimer_add(sw->slice, &now); /* after the I/O that is ready by then */
        return;
    }
    int more = 0, held = sw->batch_held;
    for (int k = 0; k < sw->ncur; k++) {
        more |= sw->cur[k]->from < 0 && sw->cur[k]->n == LIMIT_SSE_BATCH;
        batch_unref(sw->cur[k]);
    }
    sw->ncur = 0;
    if (held)
        check_subs(sw, 1);
    if (more || sw->again || sw->behind) {
        sw->again = sw->behind = 0;
        fetch_from(sw, 0); /* every cursor is where this pass left it */
    }
    fan_out_next(sw);
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
        batch_push(sw, batch_new(res, 1, -1));
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
        struct batch *b = batch_new(res, nworkers, shared_upto);
        for (int row = 0; row < b->n; row++)
            if (!b->rows[row].account && !is_meeting(res, row)) {
                b->rows[row].text = render(res, row, NULL);
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
    if (sw->pending != NULL || sw->ncur > 0) {
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

static void fetch(struct stream_worker *sw)
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
        fetch(sw);
    fan_out_next(sw);
}

static void poll_cb(evutil_socket_t fd, short what, void *arg)
{
    struct stream_worker *sw = arg;
    if (util_now_ms() - sw->audit_flushed_ms >= LIMIT_SSE_AUDIT_FLUSH_MS)
        audit_flush(sw);
    unblock_or_cut(sw);
    check_subs(sw, 1); /* a check for held subscribers that could not be sent or failed */
    fetch(sw);
}

/* Which subscribers still hold valid credentials, and with what rights: an open stream must
 * not outlive a sign-out, a revoked session or a deactivated user, nor go on with rights the
 * user no longer has. Run at every heartbeat for all, and at once for subscribers held at an
 * account.changed event. Columns: user, live session ("" for none), role, agency, hubs. */
/* clang-format off */
static const char check_sql[] =
    "SELECT u.id, coalesce(s.id::text, ''), u.role, u.agency_id, " AUTH_MANAGED_HUBS("u") " "
    "FROM users u "
    "LEFT JOIN sessions s ON s.user_id = u.id AND s.id = ANY($2::uuid[]) "
    "  AND " AUTH_SESSION_LIVE("s") " "
    "WHERE u.id = ANY($1::uuid[]) AND u.active";
/* clang-format on */

/* s's row in a check_sql result, or -1: its user is gone or inactive, or its session is. */
static int check_row(const struct stream_sub *s, PGresult *res)
{
    for (int i = 0; i < PQntuples(res); i++)
        if (strcmp(PQgetvalue(res, i, 0), s->user->id) == 0 &&
            (s->user->session_id[0] == '\0' ||
             strcmp(PQgetvalue(res, i, 1), s->user->session_id) == 0))
            return i;
    return -1;
}

static void checked(enum db_status st, PGresult *res, void *arg)
{
    struct stream_worker *sw = arg;
    sw->checking = NULL;
    int resumed = 0;
    struct stream_sub *s;
    TAILQ_FOREACH(s, &sw->subs, entry)
    {
        if (!s->in_check)
            continue;
        s->in_check = 0;
        if (st != DB_OK) { /* held ones stay held: the poll asks again */
            if (s->held == HOLD_CHECKING)
                s->held = HOLD_WAITING;
            continue;
        }
        int row = check_row(s, res);
        if (row < 0) {
            log_info("stream: subscriber %s signed out or deactivated; ending", s->request_id);
            s->dead = 2;
            continue;
        }
        struct auth_user *u = s->user;
        u->role = role_parse(PQgetvalue(res, row, 2));
        snprintf(u->agency_id, sizeof(u->agency_id), "%s", PQgetvalue(res, row, 3));
        free(u->hub_ids);
        u->hub_ids = xstrdup(PQgetvalue(res, row, 4));
        if (s->held == HOLD_CHECKING) {
            s->held = HOLD_NONE;
            if (s->cursor < s->held_at)
                s->cursor = s->held_at;
            resumed = 1;
        }
    }
    struct stream_sub *next;
    for (s = TAILQ_FIRST(&sw->subs); s != NULL; s = next) {
        next = TAILQ_NEXT(s, entry);
        if (s->dead == 2)
            sub_close(s, 1);
    }
    if (st == DB_OK)
        check_subs(sw, 1); /* held while this one ran */
    if (resumed)
        fetch(sw);
}

/* Add a uuid to the array literal "{a,b,..." being built in buf (*len so far, from "{"). */
static void uuid_list_add(char *buf, size_t *len, const char *id)
{
    if (*len > 1)
        buf[(*len)++] = ',';
    size_t n = strlen(id);
    memcpy(buf + *len, id, n);
    *len += n;
}

/* Check every subscriber (the heartbeat), or only those held at an account.changed event
 * (held_only); one check runs at a time, a held subscriber waits for the next. */
static void check_subs(struct stream_worker *sw, int held_only)
{
    if (sw->checking != NULL)
        return;
    size_t n = 0, nu = 1, ns = 1;
    struct stream_sub *s;
    TAILQ_FOREACH(s, &sw->subs, entry)
    n += !s->dead && (!held_only || s->held == HOLD_WAITING);
    if (n == 0)
        return; /* the usual case for the poll's call: nobody held */
    char *users = xmalloc(n * 37 + 3), *sessions = xmalloc(n * 37 + 3); /* 36 + ",", "{}", NUL */
    users[0] = sessions[0] = '{';
    TAILQ_FOREACH(s, &sw->subs, entry)
    {
        if (s->dead || (held_only && s->held != HOLD_WAITING))
            continue;
        s->in_check = 1;
        if (s->held)
            s->held = HOLD_CHECKING;
        uuid_list_add(users, &nu, s->user->id);
        if (s->user->session_id[0] != '\0')
            uuid_list_add(sessions, &ns, s->user->session_id);
    }
    memcpy(users + nu, "}", 2);
    memcpy(sessions + ns, "}", 2);
    const char *params[] = {users, sessions};
    sw->checking = db_query(sw->db, check_sql, 2, params, checked, sw);
    if (sw->checking == NULL) /* no database now: as a failed check */
        checked(DB_UNAVAILABLE, NULL, sw);
    free(users);
    free(sessions);
}

static void heartbeat_cb(evutil_socket_t fd, short what, void *arg)
{
    struct stream_worker *sw = arg;
    struct stream_sub *s;
    TAILQ_FOREACH(s, &sw->subs, entry)
    sub_write(s, ": heartbeat\n\n", sizeof(": heartbeat\n\n") - 1);
    check_subs(sw, 0);
}

struct stream_worker *stream_worker_new(struct event_base *base, struct db_pool *db, int id)
{
    struct stream_worker *sw = xcalloc(1, sizeof(*sw));
    sw->base = base;
    sw->db = db;
    sw->id = id;
    TAILQ_INIT(&sw->subs);
    sw->audit = json_object_new_object();
    sw->audit_flushed_ms = util_now_ms();
    sw->kick = event_new(base, -1, 0, kick_cb, sw);
    sw->heartbeat = event_new(base, -1, EV_PERSIST, heartbeat_cb, sw);
    sw->poll = event_new(base, -1, EV_PERSIST, poll_cb, sw);
    sw->slice = evtimer_new(base, slice_cb, sw);
    pthread_mutex_init(&sw->lock, NULL);
    STAILQ_INIT(&sw->queue);
    struct timeval hb = {server_config()->stream_heartbeat, 0};
    struct timeval poll = {LIMIT_SSE_POLL_MS / 1000, (LIMIT_SSE_POLL_MS % 1000) * 1000};
    event_add(sw->heartbeat, &hb);
    event_add(sw->poll, &poll);
    pthread_mutex_lock(&registry_lock);
    registry[id] = sw;
    pthread_mutex_unlock(&registry_lock);
    return sw;
}

void stream_worker_stop(struct stream_worker *sw)
{
    struct stream_sub *s;
    while ((s = TAILQ_FIRST(&sw->subs)) != NULL)
        sub_close(s, 1);
    audit_flush(sw); /* the worker's drain waits for the pool to finish it */
}

void stream_worker_free(struct stream_worker *sw)
{
    if (sw == NULL)
        return;
    pthread_mutex_lock(&registry_lock);
    registry[sw->id] = NULL;
    pthread_mutex_unlock(&registry_lock);
    stream_worker_stop(sw);
    if (sw->pending != NULL)
        db_query_orphan(sw->pending);
    if (sw->checking != NULL)
        db_query_orphan(sw->checking);
    json_object_put(sw->audit);
    for (int k = 0; k < sw->ncur; k++) /* out of the registry: nothing more is queued */
        batch_unref(sw->cur[k]);
    struct batch *b;
    while ((b = batch_pop(sw)) != NULL)
        batch_unref(b);
    pthread_mutex_destroy(&sw->lock);
    event_free(sw->slice);
    free(sw->out);
    event_free(sw->kick);
    event_free(sw->heartbeat);
    event_free(sw->poll);
    free(sw);
}

/* ---- GET /v1/stream */

static void started(struct http_req *r, enum db_status st, PGresult *res)
{
    if (st != DB_OK) {
        http_reply_db_error(r, res);
        return;
    }
    struct stream_worker *sw = http_stream(r);
    const char *last = http_header(r, "Last-Event-ID");
    struct stream_sub *s = xcalloc(1, sizeof(*s));
    s->sw = sw;
    s->cursor = atoll(PQgetvalue(res, 0, 0)); /* from now on... */
    if (last != NULL)
        s->cursor = atoll(last); /* ...or from where the client left off */
    snprintf(s->addr, sizeof(s->addr), "%s", http_client_addr(r));
    snprintf(s->request_id, sizeof(s->request_id), "%s", r->id);
    s->req = http_detach(r, "text/event-stream", &s->user, &s->hs);
    s->chunked = http_reply_chunked(s->req);
    s->evcon = evhttp_request_get_connection(s->req);
    evhttp_connection_set_closecb(s->evcon, sub_closed, s);
    TAILQ_INSERT_TAIL(&sw->subs, s, entry);
    sw->nsubs++;
    metrics_gauge_add(GAUGE_SUBSCRIBERS, 1);
    /* "id:" without data sets the client's last event id (EventSource and raisectl) without
     * an event: a client that drops before any event resumes from here, missing nothing */
    char hello[96];
    int n = snprintf(hello, sizeof(hello), "retry: 2000\nid: %lld\n: connected\n\n", s->cursor);
    sub_write(s, hello, (size_t)n);
    /* Its rights were read by the request's authentication, before the event head was: a
     * change numbered in between would be behind the cursor. So they are read once more,
     * as for a change, before anything is sent. */
    s->held = HOLD_WAITING;
    s->held_at = s->cursor;
    check_subs(sw, 1);
}

void stream_get(struct http_req *r)
{
    const char *last = http_header(r, "Last-Event-ID");
    if (last != NULL) {
        char *end;
        long long v = strtoll(last, &end, 10);
        if (*last == '\0' || *end != '\0' || v < 0) {
            http_reply_error(r, 400, "Last-Event-ID must be an event id from this stream");
            return;
        }
    }
    /* where the log stands once everything answered before this request is numbered: an
     * event whose post was answered before the stream opened is not sent as a new one */
    http_query_sequenced(r, SEQ_EVENTS, "SELECT id FROM event_head", 0, NULL, started, NULL);
}
