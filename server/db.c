#include "db.h"

#include "raise_limits.h"
#include "log.h"
#include "metrics.h"
#include "util.h"
#include "xmalloc.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

enum conn_state { CONN_DOWN, CONN_CONNECTING, CONN_IDLE, CONN_BUSY };

struct db_query {
    TAILQ_ENTRY(db_query) entry;
    struct db_pool *pool; /* borrowed */
    char *sql;            /* owned */
    int nparams;
    char **params; /* owned */
    db_cb cb;      /* NULL once orphaned */
    void *arg;     /* borrowed */
    uint64_t queued_ms;
    PGresult *res; /* owned; accumulated result */
    int internal;  /* the pool's own statement (LISTEN): no callback, never orphaned */
    int failed;    /* a result was an error: keep that one */
    uint64_t hash; /* of sql, for the connection's statement cache */
};

/* A statement this connection has prepared (PQsendPrepare) under the name "s<index>". */
struct db_stmt {
    uint64_t hash;
    char *sql; /* owned */
};

TAILQ_HEAD(query_list, db_query);

struct db_conn {
    struct db_pool *pool; /* borrowed */
    int index;
    enum conn_state state;
    PGconn *pg;          /* owned */
    struct event *ev;    /* owned; socket events */
    struct event *timer; /* owned; connect timeout / reconnect backoff */
    int ev_fd, ev_what;
    int backoff_ms;
    int first;          /* still on the first connect attempt since the pool started */
    struct db_query *q; /* owned while BUSY */
    /* Every statement is prepared once per connection and then only executed, so PostgreSQL
     * parses and analyses it once, not per request (at most LIMIT_DB_STMT_CACHE; beyond
     * that, unnamed). Forgotten with the connection. */
    struct db_stmt stmts[LIMIT_DB_STMT_CACHE];
    int nstmts;
    int preparing; /* q's statement is being prepared (as stmts[nstmts]); execute it next */
};

struct db_pool {
    struct event_base *base; /* borrowed */
    char *conninfo;          /* owned */
    char options[64];
    char appname[32];
    int size, queue_max, queue_wait_ms, worker_id;
    struct db_conn *conns; /* owned, size entries */
    struct query_list queue;
    int queued;
    int live;
    int starting; /* connections still on their first attempt: queue, do not fail, meanwhile */
    struct event *queue_timer; /* owned */
    struct event *kick;        /* owned; dispatches queued queries from the loop */
    char *listen_sql;          /* owned; "LISTEN channel", or NULL */
    void (*notify_cb)(const char *payload, void *arg);
    void *notify_arg;
    void (*after_ok)(const char *sql);
    int background;
};

static void conn_start(struct db_conn *c);
static void conn_event(evutil_socket_t fd, short what, void *arg);
static void conn_dispatch(struct db_conn *c);
static void conn_execute(struct db_conn *c);

static void set_state(struct db_conn *c, enum conn_state s)
{
    int was_live = c->state == CONN_IDLE || c->state == CONN_BUSY;
    int is_live = s == CONN_IDLE || s == CONN_BUSY;
    if (c->state == CONN_IDLE)
        metrics_gauge_add(GAUGE_DB_IDLE, -1);
    if (c->state == CONN_BUSY)
        metrics_gauge_add(GAUGE_DB_BUSY, -1);
    if (s == CONN_IDLE)
        metrics_gauge_add(GAUGE_DB_IDLE, 1);
    if (s == CONN_BUSY)
        metrics_gauge_add(GAUGE_DB_BUSY, 1);
    c->pool->live += is_live - was_live;
    c->state = s;
}

static void stmts_forget(struct db_conn *c)
{
    for (int i = 0; i < c->nstmts; i++)
        free(c->stmts[i].sql);
    c->nstmts = 0;
    c->preparing = 0;
}

static uint64_t sql_hash(const char *sql)
{
    uint64_t h = 14695981039346656037ULL; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)sql; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h;
}

static void query_free(struct db_query *q)
{
    if (q == NULL)
        return;
    for (int i = 0; i < q->nparams; i++)
        free(q->params[i]);
    free(q->params);
    free(q->sql);
    PQclear(q->res);
    free(q);
}

static void query_finish(struct db_query *q, enum db_status st)
{
    if (st == DB_UNAVAILABLE)
        metrics_count(COUNTER_DB_UNAVAILABLE);
    if (st == DB_ERROR)
        metrics_count(COUNTER_DB_ERRORS);
    if (st == DB_OK && !q->internal && q->pool->after_ok != NULL)
        q->pool->after_ok(q->sql); /* before the callback, which may free the pool */
    if (q->cb != NULL)
        q->cb(st, st == DB_UNAVAILABLE ? NULL : q->res, q->arg);
    query_free(q);
}

/* Watch the connection's socket for `what` (EV_READ and/or EV_WRITE). The socket can change
 * while connecting, so the event is rebuilt whenever fd or interest differ. */
static int conn_watch(struct db_conn *c, short what, const struct timeval *timeout)
{
    int fd = PQsocket(c->pg);
    if (fd < 0)
        return -1;
    if (c->ev != NULL && (c->ev_fd != fd || c->ev_what != what)) {
        event_free(c->ev);
        c->ev = NULL;
    }
    if (c->ev == NULL) {
        c->ev = event_new(c->pool->base, fd, what | EV_PERSIST, conn_event, c);
        c->ev_fd = fd;
        c->ev_what = what;
    }
    return event_add(c->ev, timeout);
}

/* Right after start-up, requests wait for the first connections instead of getting 503. */
static void first_attempt_over(struct db_conn *c)
{
    if (c->first) {
        c->first = 0;
        c->pool->starting--;
    }
}

static void reconnect_cb(evutil_socket_t fd, short what, void *arg)
{
    conn_start(arg);
}

static void fail_queue(struct db_pool *pool)
{
    struct db_query *q;
    while ((q = TAILQ_FIRST(&pool->queue)) != NULL) {
        TAILQ_REMOVE(&pool->queue, q, entry);
        pool->queued--;
        metrics_gauge_add(GAUGE_DB_QUEUED, -1);
        query_finish(q, DB_UNAVAILABLE);
    }
}

/* The connection is unusable: fail its query, close it, and try again after a backoff. */
static void conn_broken(struct db_conn *c, const char *why)
{
    struct db_pool *pool = c->pool;
    if (c->state == CONN_IDLE || c->state == CONN_BUSY)
        log_warn("db: connection %d lost: %s", c->index, why);
    else
        log_debug("db: connection %d failed: %s", c->index, why);
    struct db_query *q = c->q;
    c->q = NULL;
    if (c->ev != NULL) {
        event_free(c->ev);
        c->ev = NULL;
    }
    PQfinish(c->pg);
    c->pg = NULL;
    stmts_forget(c);
    set_state(c, CONN_DOWN);
    first_attempt_over(c);
    if (q != NULL)
        query_finish(q, DB_UNAVAILABLE);
    if (pool->live == 0 && pool->starting == 0)
        fail_queue(pool); /* nobody can serve them: answer now, never hang */

    unsigned char r;
    util_random(&r, 1);
    int delay = c->backoff_ms + (c->backoff_ms * r) / 512; /* + up to 50% jitter */
    c->backoff_ms =
        c->backoff_ms * 2 > LIMIT_DB_BACKOFF_MAX_MS ? LIMIT_DB_BACKOFF_MAX_MS : c->backoff_ms * 2;
    struct timeval tv = {delay / 1000, (delay % 1000) * 1000};
    evtimer_assign(c->timer, pool->base, reconnect_cb, c);
    evtimer_add(c->timer, &tv);
}

static char *pg_error(PGconn *pg)
{
    static _Thread_local char buf[256];
    const char *m = pg ? PQerrorMessage(pg) : "out of memory";
    snprintf(buf, sizeof(buf), "%s", m);
    buf[strcspn(buf, "\n")] = '\0';
    return buf;
}

static void conn_start(struct db_conn *c)
{
    struct db_pool *pool = c->pool;
    const char *keys[] = {"dbname", "options", "application_name", "client_encoding", NULL};
    const char *vals[] = {pool->conninfo, pool->options, pool->appname, "UTF8", NULL};
    c->pg = PQconnectStartParams(keys, vals, 1);
    if (c->pg == NULL || PQstatus(c->pg) == CONNECTION_BAD) {
        conn_broken(c, pg_error(c->pg));
        return;
    }
    set_state(c, CONN_CONNECTING);
    struct timeval tv = {5, 0}; /* connect timeout */
    if (conn_watch(c, EV_WRITE, &tv) < 0)
        conn_broken(c, "no socket");
}

static void conn_connecting(struct db_conn *c, short what)
{
    if (what & EV_TIMEOUT) {
        conn_broken(c, "connect timed out");
        return;
    }
    struct timeval tv = {5, 0};
    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_READING:
        conn_watch(c, EV_READ, &tv);
        return;
    case PGRES_POLLING_WRITING:
        conn_watch(c, EV_WRITE, &tv);
        return;
    case PGRES_POLLING_OK:
        break;
    default:
        conn_broken(c, pg_error(c->pg));
        return;
    }
    if (PQsetnonblocking(c->pg, 1) != 0) {
        conn_broken(c, "cannot set non-blocking");
        return;
    }
    c->backoff_ms = LIMIT_DB_BACKOFF_MIN_MS;
    set_state(c, CONN_IDLE);
    first_attempt_over(c);
    metrics_count(COUNTER_DB_CONNECTS);
    log_debug("db: connection %d up", c->index);
    conn_watch(c, EV_READ, NULL);
    if (c->pool->listen_sql != NULL) { /* listen first, before anything queued */
        struct db_query *q = xcalloc(1, sizeof(*q));
        q->pool = c->pool;
        q->sql = xstrdup(c->pool->listen_sql);
        q->params = xcalloc(1, sizeof(char *));
        q->internal = 1;
        q->queued_ms = util_now_ms();
        TAILQ_INSERT_HEAD(&c->pool->queue, q, entry);
        c->pool->queued++;
        metrics_gauge_add(GAUGE_DB_QUEUED, 1);
        if (c->pool->notify_cb != NULL)
            c->pool->notify_cb(NULL, c->pool->notify_arg); /* catch up on what was missed */
    }
    conn_dispatch(c);
}

/* Read what has arrived; deliver the query once its last result is in. */
static void conn_read(struct db_conn *c)
{
    if (PQconsumeInput(c->pg) == 0) {
        conn_broken(c, pg_error(c->pg));
        return;
    }
    PGnotify *n;
    while ((n = PQnotifies(c->pg)) != NULL) {
        if (c->pool->notify_cb != NULL)
            c->pool->notify_cb(n->extra, c->pool->notify_arg);
        PQfreemem(n);
    }
    if (c->state != CONN_BUSY) {
        if (PQstatus(c->pg) == CONNECTION_BAD)
            conn_broken(c, "closed by server");
        return;
    }
    while (!PQisBusy(c->pg)) {
        PGresult *r = PQgetResult(c->pg);
        if (r == NULL) {
            if (c->preparing && !c->q->failed) {
                conn_execute(c); /* prepared: now run it */
                return;
            }
            c->preparing = 0;
            struct db_query *q = c->q;
            c->q = NULL;
            set_state(c, CONN_IDLE);
            conn_watch(c, EV_READ, NULL);
            query_finish(q, q->failed ? DB_ERROR : DB_OK);
            conn_dispatch(c);
            return;
        }
        ExecStatusType st = PQresultStatus(r);
        int bad = st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE;
        if (c->q->failed || (!bad && c->q->res != NULL && st == PGRES_EMPTY_QUERY)) {
            PQclear(r); /* keep the first error, or the last real result */
            continue;
        }
        PQclear(c->q->res);
        c->q->res = r;
        c->q->failed = bad;
    }
}

static void conn_event(evutil_socket_t fd, short what, void *arg)
{
    struct db_conn *c = arg;
    if (c->state == CONN_CONNECTING) {
        conn_connecting(c, what);
        return;
    }
    if (c->state == CONN_BUSY && (what & EV_WRITE)) {
        int r = PQflush(c->pg);
        if (r < 0) {
            conn_broken(c, pg_error(c->pg));
            return;
        }
        if (r == 0)
            conn_watch(c, EV_READ, NULL);
    }
    if (what & EV_READ)
        conn_read(c);
}

/* After a PQsend*: flush, and watch for the reply (or the rest of the flush). */
static void conn_sent(struct db_conn *c, int ok)
{
    if (ok == 0) {
        conn_broken(c, pg_error(c->pg));
        return;
    }
    int r = PQflush(c->pg);
    if (r < 0)
        conn_broken(c, pg_error(c->pg));
    else
        conn_watch(c, r == 1 ? EV_READ | EV_WRITE : EV_READ, NULL);
}

/* The name of the connection's i-th prepared statement. */
static const char *stmt_name(char name[16], int i)
{
    snprintf(name, 16, "s%d", i);
    return name;
}

static void conn_send_prepared(struct db_conn *c, int i)
{
    char name[16];
    struct db_query *q = c->q;
    conn_sent(c, PQsendQueryPrepared(c->pg, stmt_name(name, i), q->nparams,
                                     (const char *const *)q->params, NULL, NULL, 0));
}

/* c->q's statement is now prepared: keep it and execute it. */
static void conn_execute(struct db_conn *c)
{
    struct db_query *q = c->q;
    c->preparing = 0;
    PQclear(q->res);
    q->res = NULL;
    c->stmts[c->nstmts].hash = q->hash;
    c->stmts[c->nstmts].sql = xstrdup(q->sql);
    conn_send_prepared(c, c->nstmts++);
}

/* Give the next queued query to an idle connection. */
static void conn_dispatch(struct db_conn *c)
{
    struct db_pool *pool = c->pool;
    struct db_query *q = TAILQ_FIRST(&pool->queue);
    if (c->state != CONN_IDLE || q == NULL)
        return;
    TAILQ_REMOVE(&pool->queue, q, entry);
    pool->queued--;
    metrics_gauge_add(GAUGE_DB_QUEUED, -1);
    if (q->cb == NULL && !q->internal) { /* orphaned while queued: be safe */
        query_free(q);
        conn_dispatch(c);
        return;
    }
    if (!pool->background) /* the sequencer's runs: raise_sequencer_runs_total */
        metrics_count(COUNTER_DB_QUERIES);
    c->q = q;
    set_state(c, CONN_BUSY);
    if (q->internal) { /* LISTEN: once per connection, nothing to keep */
        conn_sent(c, PQsendQueryParams(c->pg, q->sql, 0, NULL, NULL, NULL, NULL, 0));
        return;
    }
    q->hash = sql_hash(q->sql);
    for (int i = 0; i < c->nstmts; i++)
        if (c->stmts[i].hash == q->hash && strcmp(c->stmts[i].sql, q->sql) == 0) {
            conn_send_prepared(c, i);
            return;
        }
    if (c->nstmts == LIMIT_DB_STMT_CACHE) { /* full: run it unnamed, as before */
        conn_sent(c, PQsendQueryParams(c->pg, q->sql, q->nparams, NULL,
                                       (const char *const *)q->params, NULL, NULL, 0));
        return;
    }
    char name[16];
    c->preparing = 1;
    /* parameter types are inferred by the server, exactly as for PQsendQueryParams */
    conn_sent(c, PQsendPrepare(c->pg, stmt_name(name, c->nstmts), q->sql, 0, NULL));
}

static void queue_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct db_pool *pool = arg;
    uint64_t now = util_now_ms();
    struct db_query *q;
    while ((q = TAILQ_FIRST(&pool->queue)) != NULL &&
           now - q->queued_ms >= (uint64_t)pool->queue_wait_ms) {
        TAILQ_REMOVE(&pool->queue, q, entry);
        pool->queued--;
        metrics_gauge_add(GAUGE_DB_QUEUED, -1);
        log_warn("db: query waited %d ms for a connection; answering 503", pool->queue_wait_ms);
        query_finish(q, DB_UNAVAILABLE);
    }
}

/* Dispatch from the event loop, never inside db_query: a callback must not run before
 * db_query has returned its handle. */
static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct db_pool *pool = arg;
    for (int i = 0; i < pool->size && TAILQ_FIRST(&pool->queue) != NULL; i++)
        conn_dispatch(&pool->conns[i]);
}

struct db_pool *db_pool_new(struct event_base *base, const struct db_pool_opts *o)
{
    struct db_pool *pool = xcalloc(1, sizeof(*pool));
    pool->base = base;
    pool->conninfo = xstrdup(o->conninfo);
    /* Work as raise_app (sql/002): it may append to the audit log, never change it. */
    snprintf(pool->options, sizeof(pool->options), "-c statement_timeout=%d -c role=raise_app",
             o->statement_timeout_ms);
    if (o->name != NULL)
        snprintf(pool->appname, sizeof(pool->appname), "%s", o->name);
    else
        snprintf(pool->appname, sizeof(pool->appname), "raised-w%d", o->worker_id);
    pool->size = o->size;
    pool->queue_max = o->queue_max;
    pool->queue_wait_ms = o->queue_wait_ms;
    pool->worker_id = o->worker_id;
    TAILQ_INIT(&pool->queue);
    pool->conns = xcalloc((size_t)o->size, sizeof(*pool->conns));
    pool->queue_timer = event_new(base, -1, EV_PERSIST, queue_timer_cb, pool);
    pool->kick = event_new(base, -1, 0, kick_cb, pool);
    if (o->listen_channel != NULL)
        pool->listen_sql = xasprintf("LISTEN %s", o->listen_channel);
    pool->notify_cb = o->notify_cb;
    pool->notify_arg = o->notify_arg;
    pool->after_ok = o->after_ok;
    pool->background = o->background;
    struct timeval tick = {0, 100 * 1000};
    event_add(pool->queue_timer, &tick);
    for (int i = 0; i < o->size; i++) {
        struct db_conn *c = &pool->conns[i];
        c->pool = pool;
        c->index = i;
        c->backoff_ms = LIMIT_DB_BACKOFF_MIN_MS;
        c->timer = evtimer_new(base, reconnect_cb, c);
        c->first = 1;
        pool->starting++;
        conn_start(c);
    }
    return pool;
}

void db_pool_free(struct db_pool *pool)
{
    if (pool == NULL)
        return;
    struct db_query *q;
    while ((q = TAILQ_FIRST(&pool->queue)) != NULL) {
        TAILQ_REMOVE(&pool->queue, q, entry);
        metrics_gauge_add(GAUGE_DB_QUEUED, -1);
        query_free(q);
    }
    for (int i = 0; i < pool->size; i++) {
        struct db_conn *c = &pool->conns[i];
        if (c->ev != NULL)
            event_free(c->ev);
        event_free(c->timer);
        query_free(c->q);
        set_state(c, CONN_DOWN);
        PQfinish(c->pg);
        stmts_forget(c);
    }
    event_free(pool->queue_timer);
    event_free(pool->kick);
    free(pool->listen_sql);
    free(pool->conns);
    free(pool->conninfo);
    free(pool);
}

struct db_query *db_query(struct db_pool *pool, const char *sql, int nparams,
                          const char *const *params, db_cb cb, void *arg)
{
    if ((pool->live == 0 && pool->starting == 0) || pool->queued >= pool->queue_max) {
        metrics_count(COUNTER_DB_UNAVAILABLE);
        return NULL;
    }
    struct db_query *q = xcalloc(1, sizeof(*q));
    q->pool = pool;
    q->sql = xstrdup(sql);
    q->nparams = nparams;
    q->params = xcalloc((size_t)(nparams > 0 ? nparams : 1), sizeof(char *));
    for (int i = 0; i < nparams; i++)
        q->params[i] = params[i] ? xstrdup(params[i]) : NULL;
    q->cb = cb;
    q->arg = arg;
    q->queued_ms = util_now_ms();
    TAILQ_INSERT_TAIL(&pool->queue, q, entry);
    pool->queued++;
    metrics_gauge_add(GAUGE_DB_QUEUED, 1);
    event_active(pool->kick, EV_TIMEOUT, 1);
    return q;
}

void db_query_orphan(struct db_query *q)
{
    struct db_pool *pool = q->pool;
    for (int i = 0; i < pool->size; i++)
        if (pool->conns[i].q == q) {
            q->cb = NULL; /* in flight: drained and dropped when it completes */
            return;
        }
    TAILQ_REMOVE(&pool->queue, q, entry);
    pool->queued--;
    metrics_gauge_add(GAUGE_DB_QUEUED, -1);
    query_free(q);
}

int db_pool_pending(const struct db_pool *pool)
{
    int n = pool->queued;
    for (int i = 0; i < pool->size; i++)
        n += pool->conns[i].state == CONN_BUSY;
    return n;
}

int db_pool_live(const struct db_pool *pool)
{
    return pool->live;
}

const char *db_sqlstate(const PGresult *res)
{
    const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return s ? s : "";
}
