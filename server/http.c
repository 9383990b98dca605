#include "http.h"

#include "auth.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "problem.h"
#include "routes.h"
#include "server.h"
#include "util.h"
#include "work.h"
#include "xmalloc.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

TAILQ_HEAD(req_list, http_req);

struct http_server {
    int worker_id;
    struct event_base *base;           /* borrowed */
    struct evhttp *http;               /* owned */
    struct evhttp_bound_socket *bound; /* owned by http; NULL once we stop accepting */
    struct db_pool *db;                /* borrowed */
    int max_conns;
    int paused;
    int stopping;
    struct req_list inflight;
    int ninflight;
    int nwriting;                 /* replies handed to evhttp but not yet written out */
    struct stream_worker *stream; /* borrowed */
};

/* Connections are counted per worker through an SSL ex_data slot whose free callback runs
 * when libevent frees the SSL (the connection is gone), whenever that happens. The slots
 * outlive every http_server so a late free never touches freed memory. */
struct conn_slot {
    int count;
    struct http_server *hs; /* borrowed; NULL once freed */
};
static struct conn_slot slots[LIMIT_WORKERS_MAX + 1];
static int ssl_slot_index = -1;

static void conn_gone(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    struct conn_slot *slot = ptr;
    if (slot == NULL)
        return;
    slot->count--;
    metrics_gauge_add(GAUGE_CONNECTIONS, -1);
    struct http_server *hs = slot->hs;
    if (hs != NULL && hs->paused && hs->bound != NULL && slot->count < hs->max_conns) {
        evconnlistener_enable(evhttp_bound_socket_get_listener(hs->bound));
        hs->paused = 0;
    }
}

void http_global_init(void)
{
    if (ssl_slot_index < 0)
        ssl_slot_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_gone);
}

static struct bufferevent *new_conn(struct event_base *base, void *arg)
{
    struct http_server *hs = arg;
    struct conn_slot *slot = &slots[hs->worker_id];
    SSL *ssl = server_ssl_new();
    if (ssl == NULL)
        return NULL;
    SSL_set_ex_data(ssl, ssl_slot_index, slot);
    slot->count++;
    metrics_gauge_add(GAUGE_CONNECTIONS, 1);
    if (slot->count >= hs->max_conns && !hs->paused && hs->bound != NULL) {
        evconnlistener_disable(evhttp_bound_socket_get_listener(hs->bound));
        hs->paused = 1;
        metrics_count(COUNTER_CONN_REJECTED);
        log_warn("http: %d connections open, pausing accept", slot->count);
    }
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (bev == NULL) {
        SSL_free(ssl);
        return NULL;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

static int method_of(enum evhttp_cmd_type t)
{
    static const struct {
        enum evhttp_cmd_type ev;
        int method;
    } map[] = {
        {EVHTTP_REQ_GET, METHOD_GET},         {EVHTTP_REQ_HEAD, METHOD_HEAD},
        {EVHTTP_REQ_POST, METHOD_POST},       {EVHTTP_REQ_PUT, METHOD_PUT},
        {EVHTTP_REQ_PATCH, METHOD_PATCH},     {EVHTTP_REQ_DELETE, METHOD_DELETE},
        {EVHTTP_REQ_OPTIONS, METHOD_OPTIONS},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (map[i].ev == t)
            return map[i].method;
    return METHOD_OTHER;
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    default:
        return problem_title_for(status);
    }
}

static void work_free(void *p);

static void req_free(struct http_req *r)
{
    if (r->handler_free != NULL && r->handler_data != NULL)
        r->handler_free(r->handler_data);
    auth_user_free(r->user);
    TAILQ_REMOVE(&r->server->inflight, r, entry);
    r->server->ninflight--;
    metrics_gauge_add(GAUGE_INFLIGHT, -1);
    free(r);
}

/* The client connection is being freed while we still hold its request. */
static void conn_closed(struct evhttp_connection *evcon, void *arg)
{
    struct http_req *r = arg;
    log_info("request %s: client connection closed before the reply", r->id);
    if (evhttp_request_get_connection(r->ev) == NULL)
        evhttp_request_free(r->ev); /* detached by libevent: ours to free (see stream.c) */
    r->ev = NULL;
    if (r->query != NULL)
        db_query_orphan(r->query);
    if (r->job != NULL)
        work_orphan(r->job, work_free);
    req_free(r);
}

static void access_log(const struct http_req *r, int status, const char *method)
{
    double secs = (double)(now_us() - r->start_us) / 1e6;
    metrics_request(r->route ? routes_index(r->route) : -1, status, secs);
    log_info("access method=%s route=%s status=%d ms=%.2f req=%s user=%s", method,
             r->route ? r->route->pattern : "-", status, secs * 1000.0, r->id,
             r->user ? r->user->id : "-");
}

void http_add_header(struct http_req *r, const char *name, const char *value)
{
    if (r->ev != NULL)
        evhttp_add_header(evhttp_request_get_output_headers(r->ev), name, value);
}

/* A reply finished writing (or its connection died first): a stopping worker waits for these
 * so that closing connections never cuts off an answer. */
static void write_closed(struct evhttp_connection *evcon, void *arg)
{
    struct http_server *hs = arg;
    hs->nwriting--;
}

static void write_done(struct evhttp_request *ev, void *arg)
{
    struct http_server *hs = arg;
    evhttp_connection_set_closecb(evhttp_request_get_connection(ev), NULL, NULL);
    hs->nwriting--;
}

/* The headers every reply carries, the live stream's included (docs/api.md). */
static void reply_headers(struct http_req *r, const char *content_type)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->ev);
    evhttp_add_header(h, "Content-Type", content_type);
    evhttp_add_header(h, "X-Request-Id", r->id);
    if (evhttp_find_header(h, "Cache-Control") == NULL) /* static files set their own */
        evhttp_add_header(h, "Cache-Control", "no-store");
    if (evhttp_find_header(h, "X-Content-Type-Options") == NULL)
        evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(h, "Strict-Transport-Security", "max-age=31536000");
}

void http_reply(struct http_req *r, int status, const char *content_type, struct evbuffer *body)
{
    const char *method = "-";
    if (r->ev != NULL) {
        method = router_method_name(method_of(evhttp_request_get_command(r->ev)));
        reply_headers(r, content_type);
        if (r->server->stopping)
            evhttp_add_header(evhttp_request_get_output_headers(r->ev), "Connection", "close");
        r->server->nwriting++;
        evhttp_connection_set_closecb(evhttp_request_get_connection(r->ev), write_closed,
                                      r->server);
        evhttp_request_set_on_complete_cb(r->ev, write_done, r->server);
        evhttp_send_reply(r->ev, status, reason(status), body);
    }
    access_log(r, status, method);
    if (body != NULL)
        evbuffer_free(body);
    req_free(r);
}

struct stream_worker *http_stream(const struct http_req *r)
{
    return r->server->stream;
}

void http_server_set_stream(struct http_server *hs, struct stream_worker *sw)
{
    hs->stream = sw;
}

struct evhttp_request *http_detach(struct http_req *r, const char *content_type,
                                   struct auth_user **user, struct http_server **server)
{
    struct evhttp_request *ev = r->ev;
    reply_headers(r, content_type);
    evhttp_add_header(evhttp_request_get_output_headers(ev), "X-Accel-Buffering", "no");
    evhttp_connection_set_closecb(evhttp_request_get_connection(ev), NULL, NULL);
    evhttp_send_reply_start(ev, 200, "OK");
    access_log(r, 200, "GET");
    *user = r->user;
    r->user = NULL;
    *server = r->server;
    req_free(r);
    return ev;
}

/* Ending a detached chunked reply. bufferevent_openssl always defers its write callback
 * (whatever the bufferevent's options), and evhttp's "written" step runs whatever
 * callback the connection holds when the deferred one finally runs. evhttp_send_reply_end()
 * called after a chunk had drained but before that chunk's callback ran therefore had the
 * reply taken as finished at once: evhttp turned writing off to wait for the next request
 * and "0\r\n\r\n" stayed in the output buffer, the client waiting for ever (seen as a
 * feed that did not end after sign-out, about 1 run in 5 under load). So the end goes out
 * from the callback of one last chunk: by then no earlier callback is queued, and nothing
 * else is written to the reply. The reply counts as being written until its end is out, so
 * a stopping worker lets it go before closing connections. */
struct ending {
    struct http_server *hs;
    struct evhttp_request *req;
};

/* The connection went before the last chunk was out. If evhttp detached the unfinished
 * reply from it (a failed write or EOF), the reply is ours to free; else the connection
 * frees it. */
static void ending_gone(struct evhttp_connection *evcon, void *arg)
{
    struct ending *e = arg;
    if (evhttp_request_get_connection(e->req) == NULL)
        evhttp_send_reply_end(e->req);
    e->hs->nwriting--;
    free(e);
}

static void ending_flushed(struct evhttp_connection *evcon, void *arg)
{
    struct ending *e = arg;
    evhttp_connection_set_closecb(evcon, write_closed, e->hs);
    evhttp_request_set_on_complete_cb(e->req, write_done, e->hs);
    evhttp_send_reply_end(e->req);
    free(e);
}

int http_reply_chunked(struct evhttp_request *req)
{
    const char *te =
        evhttp_find_header(evhttp_request_get_output_headers(req), "Transfer-Encoding");
    return te != NULL && strcasecmp(te, "chunked") == 0; /* not for an HTTP/1.0 client */
}

/* Bytes for a detached reply, written at once when nothing is queued before them.
 *
 * bufferevent_openssl does not write when data is added: it arms the socket's write event,
 * writes from its callback once the loop reports the socket writable, and disarms it when
 * its buffer is empty. For a stream that is two epoll_ctl() calls and a loop turn for every
 * write to every subscriber (17-19% of the server's CPU streaming to 1,000 subscribers).
 * So when the bufferevent has nothing queued (nothing written before could come after
 * this), SSL_write goes now; whatever it cannot write is queued and the bufferevent goes on
 * from there as usual, and so does a failure, which it then reports.
 *
 * The retry rule: after SSL_write wants to write, OpenSSL holds the start of what it was
 * given and must be called again with at least as many bytes from the same place. The queued
 * rest starts with exactly those bytes, in one piece (an empty evbuffer takes an add as one
 * chain; evbuffer_pullup makes sure), and the bufferevent passes its first chain whole to
 * SSL_write (evbuffer_peek does not cut the last extent at MAX_TO_WRITE_EVER) with
 * SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER, which it sets. So a call here never gets more than
 * 16 KiB: with or without SSL_MODE_ENABLE_PARTIAL_WRITE, what OpenSSL holds then fits in the
 * bufferevent's retry.
 *
 * What is queued goes in 16 KiB adds (write_detached()), so no chain is bigger than about
 * 32 KiB (16 KiB exactly for a shared text, each piece a reference of its own).
 * One add of a whole event made one chain of its size, and the bufferevent handed all of it
 * to ONE SSL_write, which returns (and the buffer drains) only when every byte is out: the
 * unsent count of a stream stood still while a meeting's megabyte went out, and the
 * stream's pacing and cut-off, which read that count, saw a reader that reads as one that
 * does not. */
#define WRITE_NOW_MAX 16384

struct http_shared *http_shared_new(char *text, size_t len)
{
    struct http_shared *sh = xmalloc(sizeof(*sh));
    atomic_init(&sh->refs, 1);
    sh->text = text;
    sh->len = len;
    return sh;
}

void http_shared_unref(struct http_shared *sh)
{
    if (sh == NULL || atomic_fetch_sub(&sh->refs, 1) > 1)
        return;
    free(sh->text);
    free(sh);
}

static void shared_done(const void *data, size_t len, void *arg)
{
    (void)data, (void)len;
    http_shared_unref(arg);
}

/* Bytes to write: copied (sh NULL) or referred to in sh's text, which then stays alive as
 * long as the connection's buffer holds a piece of it. */
struct piece {
    const char *p;
    size_t n;
    struct http_shared *sh;
};

static void write_detached(struct bufferevent *bev, const struct piece *pieces, int npieces)
{
    struct evbuffer *out = bufferevent_get_output(bev);
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    int now = ssl != NULL && evbuffer_get_length(out) == 0 &&
              (SSL_get_mode(ssl) & SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    for (int i = 0; i < npieces; i++) {
        const char *p = pieces[i].p;
        size_t n = pieces[i].n;
        while (n > 0) {
            size_t k = n < WRITE_NOW_MAX ? n : WRITE_NOW_MAX;
            int held = 0; /* what OpenSSL holds: the start of ONE piece for the retry */
            if (now) {
                ERR_clear_error();
                int r = SSL_write(ssl, p, (int)k);
                if (r > 0) {
                    p += r;
                    n -= (size_t)r;
                    continue;
                }
                if (SSL_get_error(ssl, r) == SSL_ERROR_WANT_WRITE)
                    metrics_count(COUNTER_SSE_BLOCKED);
                ERR_clear_error(); /* a failure: the bufferevent meets it again and reports it */
                now = 0;
                held = 1;
            }
            /* counted before it is added (were the buffer drained at once, the piece would be
             * let go at once); if it cannot be added (out of memory), uncounted (the caller's
             * own reference keeps it above 0) and a copy is tried */
            struct http_shared *sh = pieces[i].sh;
            if (sh != NULL)
                atomic_fetch_add(&sh->refs, 1);
            if (sh != NULL && evbuffer_add_reference(out, p, k, shared_done, sh) != 0) {
                atomic_fetch_sub(&sh->refs, 1);
                sh = NULL;
            }
            if (sh == NULL)
                evbuffer_add(out, p, k);
            if (held)
                evbuffer_pullup(out, (ev_ssize_t)k);
            p += k;
            n -= k;
        }
    }
}

/* evhttp_send_reply_chunk() puts the size line, the text and the CRLF in separate pieces of
 * the output buffer, and bufferevent_openssl calls SSL_write once per piece: two or three TLS
 * records and write() calls per event, which is most of what a stream with a thousand readers
 * costs. Here the whole chunk is one piece, written at once when it can be. */
size_t http_write_chunk(struct evhttp_request *req, int chunked, const char *text, size_t len)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    if (bev == NULL || len == 0) /* an empty chunk would end the body */
        return 0;
    char head[24], small[WRITE_NOW_MAX + 32]; /* a stream's usual write: no malloc */
    int n = chunked ? snprintf(head, sizeof(head), "%zx\r\n", len) : 0;
    size_t total = (size_t)n + len + (chunked ? 2 : 0);
    char *p = total <= sizeof(small) ? small : xmalloc(total);
    memcpy(p, head, (size_t)n);
    memcpy(p + n, text, len);
    if (chunked)
        memcpy(p + n + len, "\r\n", 2);
    write_detached(bev, &(struct piece){p, total, NULL}, 1);
    if (p != small)
        free(p);
    return total;
}

size_t http_write_chunk_shared(struct evhttp_request *req, int chunked, struct http_shared *sh)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    if (bev == NULL || sh->len == 0)
        return 0;
    char head[24];
    int n = chunked ? snprintf(head, sizeof(head), "%zx\r\n", sh->len) : 0;
    const struct piece pieces[] = {
        {head, (size_t)n, NULL}, {sh->text, sh->len, sh}, {"\r\n", chunked ? 2 : 0, NULL}};
    write_detached(bev, pieces, 3);
    return (size_t)n + sh->len + (chunked ? 2 : 0);
}

void http_end_detached(struct http_server *hs, struct evhttp_request *req, const char *last)
{
    struct ending *e = xmalloc(sizeof(*e));
    e->hs = hs;
    e->req = req;
    hs->nwriting++;
    evhttp_connection_set_closecb(evhttp_request_get_connection(req), ending_gone, e);
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, last, strlen(last));
    evhttp_send_reply_chunk_with_cb(req, b, ending_flushed, e);
    evbuffer_free(b);
}

void http_reply_json(struct http_req *r, int status, json_object *o)
{
    struct evbuffer *b = evbuffer_new();
    size_t len;
    const char *s = json_object_to_json_string_length(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    evbuffer_add(b, s, len);
    evbuffer_add(b, "\n", 1);
    json_object_put(o);
    http_reply(r, status, "application/json; charset=utf-8", b);
}

void http_reply_problem(struct http_req *r, struct problem *p)
{
    char *s = problem_to_json(p);
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, s, strlen(s));
    evbuffer_add(b, "\n", 1);
    free(s);
    if (problem_retry_after(p) > 0) {
        char v[16];
        snprintf(v, sizeof(v), "%d", problem_retry_after(p));
        http_add_header(r, "Retry-After", v);
    }
    int status = problem_status(p);
    problem_free(p);
    http_reply(r, status, "application/problem+json", b);
}

void http_reply_error(struct http_req *r, int status, const char *detail)
{
    http_reply_problem(r, problem_new(status, "%s", detail));
}

void http_reply_unavailable(struct http_req *r)
{
    struct problem *p = problem_new(503, "the database is unavailable; try again shortly");
    problem_set_retry_after(p, LIMIT_RETRY_AFTER_S);
    http_reply_problem(r, p);
}

void http_reply_db_error(struct http_req *r, PGresult *res)
{
    log_error("request %s: database error sqlstate=%s", r->id, db_sqlstate(res));
    http_reply_error(r, 500, "the request could not be completed; it has been logged");
}

struct db_pool *http_db(const struct http_req *r)
{
    return r->server->db;
}

static void on_db(enum db_status st, PGresult *res, void *arg)
{
    struct http_req *r = arg;
    r->query = NULL;
    if (st == DB_UNAVAILABLE) {
        http_reply_unavailable(r);
        return;
    }
    r->db_cb(r, st, res);
}

int http_query(struct http_req *r, const char *sql, int nparams, const char *const *params,
               http_db_cb cb)
{
    r->db_cb = cb;
    r->query = db_query(r->server->db, sql, nparams, params, on_db, r);
    if (r->query == NULL) {
        http_reply_unavailable(r);
        return -1;
    }
    return 0;
}

void http_handle(struct http_req *r)
{
    const char *q = r->ev ? evhttp_uri_get_query(evhttp_request_get_evhttp_uri(r->ev)) : NULL;
    struct evkeyvalq params;
    if (q != NULL) {
        if (evhttp_parse_query_str(q, &params) != 0) { /* it clears params on failure */
            http_reply_error(r, 400, "the query string must be name=value pairs joined by &");
            return;
        }
        evhttp_clear_headers(&params);
    }
    r->route->handler(r);
}

char *http_query_param(const struct http_req *r, const char *name)
{
    if (r->ev == NULL)
        return NULL;
    const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(r->ev));
    struct evkeyvalq params;
    if (q == NULL || evhttp_parse_query_str(q, &params) != 0)
        return NULL;
    const char *v = evhttp_find_header(&params, name);
    char *out = v ? xstrdup(v) : NULL;
    evhttp_clear_headers(&params);
    return out;
}

int http_is_local(const struct http_req *r)
{
    if (r->ev == NULL)
        return 0;
    char *addr = NULL;
    ev_uint16_t port;
    evhttp_connection_get_peer(evhttp_request_get_connection(r->ev), &addr, &port);
    return addr != NULL && (strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0 ||
                            strncmp(addr, "::ffff:127.", 11) == 0);
}

const char *http_client_addr(const struct http_req *r)
{
    char *addr = NULL;
    ev_uint16_t port;
    if (r->ev == NULL)
        return "";
    evhttp_connection_get_peer(evhttp_request_get_connection(r->ev), &addr, &port);
    return addr ? addr : "";
}

const char *http_header(const struct http_req *r, const char *name)
{
    return r->ev ? evhttp_find_header(evhttp_request_get_input_headers(r->ev), name) : NULL;
}

int http_cookie(const struct http_req *r, const char *name, char *out, size_t cap)
{
    if (r->ev == NULL)
        return -1;
    struct evkeyvalq *h = evhttp_request_get_input_headers(r->ev);
    int bad = 0;
    for (struct evkeyval *kv = TAILQ_FIRST(h); kv != NULL; kv = TAILQ_NEXT(kv, next)) {
        if (strcasecmp(kv->key, "Cookie") != 0)
            continue;
        int n = util_cookie_get(kv->value, name, out, cap);
        if (n >= 0)
            return n;
        bad |= n == -2;
    }
    return bad ? -2 : -1;
}

const char *http_body(struct http_req *r, size_t *len)
{
    struct evbuffer *b = r->ev ? evhttp_request_get_input_buffer(r->ev) : NULL;
    *len = b ? evbuffer_get_length(b) : 0;
    return *len ? (const char *)evbuffer_pullup(b, -1) : NULL;
}

struct ssl_st *http_ssl(const struct http_req *r)
{
    if (r->ev == NULL)
        return NULL;
    struct bufferevent *bev =
        evhttp_connection_get_bufferevent(evhttp_request_get_connection(r->ev));
    return bev ? bufferevent_openssl_get_ssl(bev) : NULL;
}

struct work_ctx {
    struct http_req *r; /* borrowed; only touched in work_done, i.e. when not orphaned */
    void (*fn)(void *), (*done)(void *), (*free_arg)(void *);
    void *arg;
};

static void work_run(void *p)
{
    struct work_ctx *w = p;
    w->fn(w->arg);
}

static void work_done(void *p)
{
    struct work_ctx *w = p;
    w->r->job = NULL;
    w->done(w->arg);
    free(w);
}

/* The request was abandoned while its job ran: free what the job owned. */
static void work_free(void *p)
{
    struct work_ctx *w = p;
    if (w->free_arg != NULL)
        w->free_arg(w->arg);
    free(w);
}

void http_work(struct http_req *r, void (*fn)(void *), void (*done)(void *), void *arg,
               void (*free_arg)(void *))
{
    struct work_ctx *w = xcalloc(1, sizeof(*w));
    w->fn = fn;
    w->done = done;
    w->r = r;
    w->arg = arg;
    w->free_arg = free_arg;
    r->job = work_submit(r->server->base, work_run, work_done, w);
}

static struct http_req *req_new(struct http_server *hs, struct evhttp_request *ev)
{
    struct http_req *r = xcalloc(1, sizeof(*r));
    unsigned char raw[LIMIT_REQUEST_ID / 2];
    r->ev = ev;
    r->server = hs;
    r->start_us = now_us();
    util_random(raw, sizeof(raw));
    util_hex(raw, sizeof(raw), r->id);
    TAILQ_INSERT_TAIL(&hs->inflight, r, entry);
    hs->ninflight++;
    metrics_gauge_add(GAUGE_INFLIGHT, 1);
    evhttp_connection_set_closecb(evhttp_request_get_connection(ev), conn_closed, r);
    return r;
}

static void on_request(struct evhttp_request *ev, void *arg)
{
    struct http_server *hs = arg;
    struct http_req *r = req_new(hs, ev);
    int method = method_of(evhttp_request_get_command(ev));
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(ev));
    int allow = 0;
    char allow_s[80];

    switch (router_match(routes, routes_count, method, path, &r->route, &r->params, &allow)) {
    case ROUTER_NOT_FOUND:
        http_reply_error(r, 404, "there is no resource at this path");
        return;
    case ROUTER_METHOD_NOT_ALLOWED:
        http_add_header(r, "Allow", router_allow_string(allow, allow_s, sizeof(allow_s)));
        http_reply_error(r, 405, "this resource does not accept that method");
        return;
    case ROUTER_FOUND:
        break;
    }
    const char *detail, *ctype;
    ctype = evhttp_find_header(evhttp_request_get_input_headers(ev), "Content-Type");
    size_t len = evbuffer_get_length(evhttp_request_get_input_buffer(ev));
    int status = router_check_body(r->route, ctype, len, &detail);
    if (status != 0) {
        http_reply_error(r, status, detail);
        return;
    }
    auth_dispatch(r);
}

struct http_server *http_server_new(struct event_base *base, int worker_id, int listen_fd,
                                    const struct config *cfg, struct db_pool *db)
{
    struct http_server *hs = xcalloc(1, sizeof(*hs));
    hs->worker_id = worker_id;
    hs->base = base;
    hs->db = db;
    hs->max_conns = (cfg->max_connections + cfg->workers - 1) / cfg->workers;
    TAILQ_INIT(&hs->inflight);
    slots[worker_id].hs = hs;

    hs->http = evhttp_new(base);
    evhttp_set_bevcb(hs->http, new_conn, hs);
    evhttp_set_gencb(hs->http, on_request, hs);
    evhttp_set_allowed_methods(hs->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                             EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                             EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                             EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_max_headers_size(hs->http, (ev_ssize_t)cfg->max_header_size);
    evhttp_set_max_body_size(hs->http, (ev_ssize_t)cfg->max_body_size);
    evhttp_set_timeout(hs->http, cfg->request_timeout);
    evhttp_set_default_content_type(hs->http, "application/json; charset=utf-8");

    struct evconnlistener *l = evconnlistener_new(
        base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, listen_fd);
    if (l == NULL || (hs->bound = evhttp_bind_listener(hs->http, l)) == NULL) {
        log_error("http: worker %d cannot listen", worker_id);
        if (l != NULL)
            evconnlistener_free(l);
        http_server_free(hs);
        return NULL;
    }
    return hs;
}

void http_server_stop_accepting(struct http_server *hs)
{
    hs->stopping = 1;
    if (hs->bound != NULL) {
        evhttp_del_accept_socket(hs->http, hs->bound);
        hs->bound = NULL;
    }
}

int http_server_inflight(const struct http_server *hs)
{
    return hs->ninflight + hs->nwriting;
}

void http_server_free(struct http_server *hs)
{
    if (hs == NULL)
        return;
    hs->bound = NULL;
    slots[hs->worker_id].hs = NULL;
    struct http_req *r;
    while ((r = TAILQ_FIRST(&hs->inflight)) != NULL) {
        log_warn("request %s: abandoned at shutdown", r->id);
        if (r->ev != NULL)
            evhttp_connection_set_closecb(evhttp_request_get_connection(r->ev), NULL, NULL);
        if (r->query != NULL)
            db_query_orphan(r->query);
        if (r->job != NULL)
            work_orphan(r->job, work_free);
        req_free(r);
    }
    if (hs->http != NULL)
        evhttp_free(hs->http);
    free(hs);
}
