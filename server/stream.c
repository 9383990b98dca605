/* The live stream's subscribers: opening a stream (GET /v1/stream), pacing and cutting off
 * slow readers, heartbeats, re-reading credentials while it is open, and the delivery
 * audit. Getting events to them is stream_fanout.c. */
#include "stream.h"
#include "stream_internal.h"

#include "auth.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "raise_limits.h"
#include "sequencer.h"
#include "server.h"
#include "util.h"
#include "xmalloc.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static void note_park(struct stream_worker *sw, struct stream_sub *s);

static void sub_free(struct stream_sub *s)
{
    note_park(s->sw, s); /* its last deliveries go out with the worker's next flush */
    free(s->note_ids);
    if (s->sw->batch_next == s) /* the fan-out in progress goes on with the next one */
        s->sw->batch_next = TAILQ_NEXT(s, entry);
    if (s->sw->hb_next == s) /* and so does the heartbeat */
        s->sw->hb_next = TAILQ_NEXT(s, entry);
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

size_t stream_unsent(const struct stream_sub *s)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(s->evcon);
    return bev ? evbuffer_get_length(bufferevent_get_output(bev)) : 0;
}

/* Would the subscriber's unsent bytes pass LIMIT_SSE_BUFFER at total? Then it is blocked
 * until it drains, and cut off if it stays blocked (see unblock_or_cut). */
int stream_sub_full(struct stream_sub *s, size_t total)
{
    if (total <= LIMIT_SSE_BUFFER)
        return 0;
    if (s->blocked_since == 0)
        s->blocked_since = util_now_ms();
    return 1;
}

void stream_stall_start(struct stream_sub *s)
{
    if (s->stall_since != 0)
        return;
    size_t unsent = stream_unsent(s);
    if (s->blocked_since == 0 && unsent <= LIMIT_SSE_BUFFER)
        return;
    s->stall_since = util_now_ms();
    s->stall_read = s->handed - unsent;
}

void stream_sub_write(struct stream_sub *s, const char *text, size_t len)
{
    s->handed += http_write_chunk(s->req, s->chunked, text, len);
}

void stream_sub_write_shared(struct stream_sub *s, struct http_shared *text)
{
    s->handed += http_write_chunk_shared(s->req, s->chunked, text);
}

/* Queue text for the subscriber; -1 (nothing written) if its unsent buffer is full. */
static int sub_write(struct stream_sub *s, const char *text, size_t len)
{
    if (stream_sub_full(s, stream_unsent(s) + len)) {
        stream_stall_start(s);
        return -1;
    }
    stream_sub_write(s, text, len);
    return 0;
}

/* A blocked subscriber that has drained half its buffer writes again (and catches up from
 * its cursor). From the moment it is first blocked, or holds more than the bound unsent (an
 * event bigger than that, sent alone), it is stalling (stream_stall_start): one that reads
 * less than LIMIT_SSE_PROGRESS bytes in stream_stall_timeout cannot keep up and is cut
 * off; one that reads that much starts a new period, and one that has read everything it
 * was given stops stalling. Being un-blocked does not end the period: a reader that has
 * stopped, with under half the bound unsent and a bigger event next, is blocked again at
 * that event on every poll, and must still be cut off. So a reader that is slow but
 * reading gets through an event bigger than the whole bound (a meeting's long minutes),
 * however long it takes, and one that is behind the events' pace falls behind and
 * catches up from its cursor, while one that stops reading is cut off.
 *
 * What is read moves in steps of a chain of the output buffer (at most about 32 KiB, see
 * write_detached() in http.c: SSL_write drains a chain only when all of it is out), so
 * LIMIT_SSE_PROGRESS (48 KiB) means two chains a period: about 13 KB/s at the default 5 s. */
static void unblock_or_cut(struct stream_worker *sw)
{
    uint64_t now = util_now_ms(), stall = (uint64_t)server_config()->stream_stall_timeout;
    struct stream_sub *s, *next;
    for (s = TAILQ_FIRST(&sw->subs); s != NULL; s = next) {
        next = TAILQ_NEXT(s, entry);
        if (s->stall_since == 0)
            continue;
        size_t unsent = stream_unsent(s);
        uint64_t read = s->handed - unsent;
        if (unsent == 0 && s->blocked_since == 0) {
            s->stall_since = 0; /* it has read all it was given */
            continue;
        }
        if (read - s->stall_read >= LIMIT_SSE_PROGRESS) {
            s->stall_since = now; /* reading, if slowly: another period */
            s->stall_read = read;
        } else if (now - s->stall_since >= stall) {
            log_warn("stream: subscriber %s too slow, disconnected", s->request_id);
            metrics_count(COUNTER_SSE_DROPPED);
            sub_close(s, 0);
            continue;
        }
        if (s->blocked_since != 0 && unsent <= LIMIT_SSE_BUFFER / 2)
            s->blocked_since = 0;
    }
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

void stream_note_delivery(struct stream_worker *sw, struct stream_sub *s, const char *id,
                          const char *subject, const char *hub)
{
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

/* Write the notes: every stream's (all), or one slot's of AUDIT_SLOTS in turn. Each stream
 * is in one slot, and every poll writes the next slot, so each stream's deliveries are still
 * written once every LIMIT_SSE_AUDIT_FLUSH_MS, but a thousand streams' rows come (and are
 * chained by the sequencer) a slot at a time: in one batch, chaining 1,000 rows kept
 * PostgreSQL busy for 70-100 ms, and the stream's events waited behind it. */
#define AUDIT_SLOTS (LIMIT_SSE_AUDIT_FLUSH_MS / LIMIT_SSE_POLL_MS)
_Static_assert(AUDIT_SLOTS >= 1, "the delivery audit is written at most once per poll");
static void audit_flush(struct stream_worker *sw, int all)
{
    struct stream_sub *s;
    TAILQ_FOREACH(s, &sw->subs, entry)
    if (all || s->audit_slot == sw->audit_slot)
        note_park(sw, s);
    sw->audit_slot = (sw->audit_slot + 1) % AUDIT_SLOTS;
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

static void poll_cb(evutil_socket_t fd, short what, void *arg)
{
    struct stream_worker *sw = arg;
    audit_flush(sw, 0);
    unblock_or_cut(sw);
    /* a check for held subscribers, or the heartbeat's, that could not be sent or failed */
    stream_check_subs(sw, !sw->check_all);
    stream_fetch(sw);
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
    "WHERE u.id = ANY($1::uuid[]) AND u.active "
    "ORDER BY u.id"; /* uuids sort as their text does: check_row searches it */
/* clang-format on */

/* s's row in a check_sql result, or -1: its user is gone or inactive, or its session is.
 * The rows are in user order (a user's rows together, one per live session asked about), so
 * a check of n subscribers costs n log n comparisons, not up to n x n (a scan of the rows for
 * each subscriber: 12.5 million for 5,000 subscribers who are all different users, all in
 * one callback of the worker's loop). */
static int check_row(const struct stream_sub *s, PGresult *res)
{
    int lo = 0, hi = PQntuples(res); /* the first row whose user is not below s's */
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (strcmp(PQgetvalue(res, mid, 0), s->user->id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (int i = lo; i < PQntuples(res) && strcmp(PQgetvalue(res, i, 0), s->user->id) == 0; i++)
        if (s->user->session_id[0] == '\0' ||
            strcmp(PQgetvalue(res, i, 1), s->user->session_id) == 0)
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
            s->ending = 1;
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
        if (s->ending)
            sub_close(s, 1);
    }
    if (st == DB_OK) /* a whole check asked for while this one ran, or those held meanwhile */
        stream_check_subs(sw, !sw->check_all);
    if (resumed)
        stream_fetch(sw);
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
void stream_check_subs(struct stream_worker *sw, int held_only)
{
    if (sw->checking != NULL) {
        /* the heartbeat's check waits for the one in flight, not for the next heartbeat:
         * streams opening one after another (each starts a check) must not put off finding
         * expired sessions for good (found in review) */
        sw->check_all |= !held_only;
        return;
    }
    if (!held_only)
        sw->check_all = 0;
    size_t n = 0, nu = 1, ns = 1;
    struct stream_sub *s;
    TAILQ_FOREACH(s, &sw->subs, entry)
    n += !held_only || s->held == HOLD_WAITING;
    if (n == 0)
        return; /* the usual case for the poll's call: nobody held */
    char *users = xmalloc(n * 37 + 3), *sessions = xmalloc(n * 37 + 3); /* 36 + ",", "{}", NUL */
    users[0] = sessions[0] = '{';
    TAILQ_FOREACH(s, &sw->subs, entry)
    {
        if (held_only && s->held != HOLD_WAITING)
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

/* LIMIT_SSE_SLICE subscribers' heartbeats, the rest one loop turn later, like a fan-out pass.
 * A stream that comes meanwhile (at the end of the list) gets one too; one that goes is
 * stepped over (sub_free). */
static void heartbeat_slice(struct stream_worker *sw)
{
    for (int k = 0; k < LIMIT_SSE_SLICE && sw->hb_next != NULL; k++) {
        struct stream_sub *s = sw->hb_next;
        sw->hb_next = TAILQ_NEXT(s, entry);
        if (s->blocked_since == 0) /* a paused one gets nothing until it has drained */
            sub_write(s, ": heartbeat\n\n", sizeof(": heartbeat\n\n") - 1);
    }
    sw->hb_going = sw->hb_next != NULL;
    if (sw->hb_going) {
        static const struct timeval now = {0, 0};
        evtimer_add(sw->hb_slice, &now); /* after the I/O that is ready by then */
    }
}

static void hb_slice_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    heartbeat_slice(arg);
}

static void heartbeat_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct stream_worker *sw = arg;
    if (!sw->hb_going) { /* a round still going after a whole interval is not restarted */
        sw->hb_next = TAILQ_FIRST(&sw->subs);
        heartbeat_slice(sw);
    }
    stream_check_subs(sw, 0);
}

struct stream_worker *stream_worker_new(struct event_base *base, struct db_pool *db, int id)
{
    struct stream_worker *sw = xcalloc(1, sizeof(*sw));
    sw->base = base;
    sw->db = db;
    sw->id = id;
    TAILQ_INIT(&sw->subs);
    sw->audit = json_object_new_object();
    sw->heartbeat = event_new(base, -1, EV_PERSIST, heartbeat_cb, sw);
    sw->hb_slice = evtimer_new(base, hb_slice_cb, sw);
    sw->poll = event_new(base, -1, EV_PERSIST, poll_cb, sw);
    struct timeval hb = {server_config()->stream_heartbeat, 0};
    struct timeval poll = {LIMIT_SSE_POLL_MS / 1000, (LIMIT_SSE_POLL_MS % 1000) * 1000};
    event_add(sw->heartbeat, &hb);
    event_add(sw->poll, &poll);
    stream_fanout_start(sw);
    return sw;
}

void stream_worker_stop(struct stream_worker *sw)
{
    struct stream_sub *s;
    while ((s = TAILQ_FIRST(&sw->subs)) != NULL)
        sub_close(s, 1);
    audit_flush(sw, 1); /* the worker's drain waits for the pool to finish it */
}

void stream_worker_free(struct stream_worker *sw)
{
    if (sw == NULL)
        return;
    stream_fanout_leave(sw);
    stream_worker_stop(sw);
    if (sw->checking != NULL)
        db_query_orphan(sw->checking);
    json_object_put(sw->audit);
    stream_fanout_free(sw);
    event_free(sw->heartbeat);
    event_free(sw->hb_slice);
    event_free(sw->poll);
    free(sw);
}

/* ---- GET /v1/stream */

/* The kernel's send buffer of a stream's socket is fixed at LIMIT_SSE_SNDBUF (the kernel
 * doubles it) instead of growing with the traffic, up to net.ipv4.tcp_wmem's largest (4 MiB
 * on Linux by default). A reader that stops then holds at most LIMIT_SSE_BUFFER unsent
 * plus about this in the server, and is paused (and cut off) at the bound, not megabytes
 * later. The cost: a stream goes at most about 128 KiB per round trip (a 4 MB meeting takes
 * some 5 s at 150 ms), and the setting stays on a connection that carries requests after
 * its stream ends. */
static void fix_sndbuf(struct stream_sub *s)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(s->evcon);
    int fd = bev != NULL ? (int)bufferevent_getfd(bev) : -1, size = LIMIT_SSE_SNDBUF;
    if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size)) != 0)
        log_warn("stream: %s: SO_SNDBUF not set: %s", s->request_id, strerror(errno));
}

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
    fix_sndbuf(s);
    TAILQ_INSERT_TAIL(&sw->subs, s, entry);
    s->audit_slot = (int)(sw->audit_slots_given++ % AUDIT_SLOTS);
    sw->nsubs++;
    stream_fanout_joined(sw);
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
    stream_check_subs(sw, 1);
}

void stream_get(struct http_req *r)
{
    const char *last = http_header(r, "Last-Event-ID");
    if (last != NULL) {
        char *end;
        errno = 0;
        long long v = strtoll(last, &end, 10); /* ids are bigint: past its range is no id */
        if (*last == '\0' || *end != '\0' || v < 0 || errno == ERANGE) {
            http_reply_error(r, 400, "Last-Event-ID must be an event id from this stream");
            return;
        }
    }
    /* where the log stands once everything answered before this request is numbered: an
     * event whose post was answered before the stream opened is not sent as a new one */
    http_query_sequenced(r, SEQ_EVENTS, "SELECT id FROM event_head", 0, NULL, started, NULL);
}
