#include "sequencer.h"

#include "db.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "util.h"
#include "xmalloc.h"

#include <event2/event.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SWEEP_MS 1000 /* a run at least this often: rows another process left queued */

/* Under load each run is a transaction (and a WAL flush) of its own, so a lane that ran once
 * per kick spent as much of PostgreSQL as the requests did (~850 runs a second moving ~3 rows
 * each at 1,300 posts a second). So a lane starts runs at most once per gap on average: each
 * run spends a gap's worth of credit, credit comes back at one millisecond a millisecond, and
 * a lane holds at most BURST gaps of it. A kick without credit waits until there is, and the
 * run then takes everything queued meanwhile. Under load the credit runs out and the runs are
 * a gap apart; a light load (100 posts a second, whose kicks come a few milliseconds apart
 * now and then) keeps some, and its kicks run at once. When the events lane held every run a
 * whole gap after the one before, a quarter of the kicks at 100 posts a second waited for it
 * (p50 4.7 ms, p99 10.4 ms). Audit rows are read only through GET /v1/audit, which runs the
 * lane itself first, so that lane keeps a plain gap. */
#define EVENTS_GAP_MS 5
#define EVENTS_BURST  4
#define AUDIT_GAP_MS  50
#define AUDIT_BURST   1

static const char run_sql[] = "SELECT raise_sequence()"; /* both, one transaction */

/* Two lanes, each on a connection of its own (sql/007): numbering events never waits
 * behind chaining a second's worth of delivery-audit rows. */
struct lane {
    const char *name, *sql;
    struct db_pool *pool; /* borrowed */
    struct event *kick;   /* owned; activated from any thread (under kick_lock) */
    int running;          /* a run is in flight */
    int again;            /* kicked while it was: one more run after it */
    int failing;          /* the last run failed: logged once until one succeeds */
    int gap_ms, burst;    /* a run costs gap_ms of credit; at most burst x gap_ms is held */
    uint64_t credit_ms;   /* what a run may spend */
    uint64_t credited_ms; /* when credit_ms was last brought up to date */
    struct event *wait;   /* owned; the rest of the gap */
};

static struct lane lanes[SEQ_LANES] = {
    [SEQ_EVENTS] = {.name = "events",
                    .sql = "SELECT raise_sequence_events()",
                    .gap_ms = EVENTS_GAP_MS,
                    .burst = EVENTS_BURST},
    [SEQ_AUDIT] = {.name = "audit",
                   .sql = "SELECT raise_sequence_audit()",
                   .gap_ms = AUDIT_GAP_MS,
                   .burst = AUDIT_BURST},
};
static struct event *sweep; /* owned */

/* Guards the lanes' kick events against sequencer_stop while a worker kicks. */
static pthread_mutex_t kick_lock = PTHREAD_MUTEX_INITIALIZER;

static void run(struct lane *l);

static void ran(enum db_status st, PGresult *res, void *arg)
{
    struct lane *l = arg;
    l->running = 0;
    if (st == DB_OK) {
        int n = atoi(PQgetvalue(res, 0, 0));
        metrics_count(COUNTER_SEQUENCE_RUNS);
        metrics_add(COUNTER_SEQUENCE_ROWS, n);
        if (l->failing)
            log_info("sequencer: %s running again", l->name);
        l->failing = 0;
        if (n >= SEQUENCE_BATCH)
            l->again = 1; /* a backlog: take the next batch at once */
    } else {
        metrics_count(COUNTER_SEQUENCE_FAILED);
        const char *m = res ? PQresultErrorMessage(res) : "";
        if (!l->failing) /* rows stay queued; the sweep tries again */
            log_error("sequencer: %s failed (%s %.*s); its rows stay queued until it works", l->sql,
                      res ? db_sqlstate(res) : "unavailable", (int)strcspn(m, "\n"), m);
        l->failing = 1;
        l->again = 0;
    }
    if (l->again)
        run(l);
}

static void run(struct lane *l)
{
    if (l->running) {
        l->again = 1;
        return;
    }
    if (evtimer_pending(l->wait, NULL))
        return; /* it runs when the gap is over */
    uint64_t now = util_now_ms(), gap = (uint64_t)l->gap_ms, most = gap * (uint64_t)l->burst;
    l->credit_ms += now - l->credited_ms;
    if (l->credit_ms > most)
        l->credit_ms = most;
    l->credited_ms = now;
    if (l->credit_ms < gap) {
        uint64_t rest = gap - l->credit_ms;
        struct timeval tv = {0, (suseconds_t)(rest * 1000)};
        evtimer_add(l->wait, &tv);
        return;
    }
    l->again = 0;
    l->credit_ms -= gap;
    if (db_query(l->pool, l->sql, 0, NULL, ran, l) != NULL)
        l->running = 1; /* else no connection: the sweep tries again */
}

static void wait_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    run(arg);
}

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    run(arg);
}

static void sweep_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    for (int i = 0; i < SEQ_LANES; i++)
        run(&lanes[i]);
}

int sequencer_start(struct event_base *base, struct db_pool *events_pool,
                    struct db_pool *audit_pool)
{
    struct event *kick[SEQ_LANES];
    struct timeval every = {SWEEP_MS / 1000, (SWEEP_MS % 1000) * 1000};
    lanes[SEQ_EVENTS].pool = events_pool;
    lanes[SEQ_AUDIT].pool = audit_pool;
    int ok = 1;
    for (int i = 0; i < SEQ_LANES; i++) {
        lanes[i].running = lanes[i].again = lanes[i].failing = 0;
        lanes[i].credit_ms = lanes[i].credited_ms = 0;
        kick[i] = event_new(base, -1, 0, kick_cb, &lanes[i]);
        lanes[i].wait = evtimer_new(base, wait_cb, &lanes[i]);
        ok = ok && kick[i] != NULL && lanes[i].wait != NULL;
    }
    sweep = event_new(base, -1, EV_PERSIST, sweep_cb, NULL);
    if (!ok || sweep == NULL || event_add(sweep, &every) < 0) {
        for (int i = 0; i < SEQ_LANES; i++) {
            if (kick[i] != NULL)
                event_free(kick[i]);
            if (lanes[i].wait != NULL)
                event_free(lanes[i].wait);
            lanes[i].wait = NULL;
        }
        if (sweep != NULL)
            event_free(sweep);
        sweep = NULL;
        return -1;
    }
    pthread_mutex_lock(&kick_lock);
    for (int i = 0; i < SEQ_LANES; i++)
        lanes[i].kick = kick[i];
    pthread_mutex_unlock(&kick_lock);
    return 0;
}

static void kick(enum seq_lane which)
{
    pthread_mutex_lock(&kick_lock);
    if (lanes[which].kick != NULL)
        event_active(lanes[which].kick, EV_READ, 0); /* thread-safe: evthread_use_pthreads */
    pthread_mutex_unlock(&kick_lock);
}

void sequencer_after(const char *sql)
{
    /* a read-only statement (a stream's fetch, a credentials check) has nothing to sequence */
    if (strstr(sql, "INSERT INTO event_queue (") != NULL)
        kick(SEQ_EVENTS);
    if (strstr(sql, "INSERT INTO audit_queue (") != NULL)
        kick(SEQ_AUDIT);
}

void sequencer_stop(void)
{
    pthread_mutex_lock(&kick_lock);
    for (int i = 0; i < SEQ_LANES; i++) {
        if (lanes[i].kick != NULL)
            event_free(lanes[i].kick);
        lanes[i].kick = NULL;
    }
    pthread_mutex_unlock(&kick_lock);
    for (int i = 0; i < SEQ_LANES; i++) {
        if (lanes[i].wait != NULL)
            event_free(lanes[i].wait);
        lanes[i].wait = NULL;
    }
    if (sweep != NULL)
        event_free(sweep);
    sweep = NULL;
}

int sequencer_drain(PGconn *pg, char **cause)
{
    for (int n = SEQUENCE_BATCH; n >= SEQUENCE_BATCH;) {
        PGresult *res = PQexec(pg, run_sql);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            const char *m = PQresultErrorMessage(res);
            *cause = xasprintf("raise_sequence() failed: %.*s", (int)strcspn(m, "\n"), m);
            PQclear(res);
            return -1;
        }
        n = atoi(PQgetvalue(res, 0, 0));
        PQclear(res);
    }
    return 0;
}

int sequencer_flush(const char *conninfo, char **cause)
{
    const char *keys[] = {"dbname", "options", "connect_timeout", NULL};
    const char *vals[] = {conninfo, "-c role=raise_app", "5", NULL};
    PGconn *pg = PQconnectdbParams(keys, vals, 1);
    int rc = -1;
    if (PQstatus(pg) != CONNECTION_OK) {
        const char *m = PQerrorMessage(pg);
        *cause = xasprintf("cannot connect: %.*s", (int)strcspn(m, "\n"), m);
    } else {
        rc = sequencer_drain(pg, cause);
    }
    PQfinish(pg);
    return rc;
}

/* ---- for request handlers: sequence, then query */

struct sequenced {
    const char *run; /* the lane's function */
    const char *sql; /* static */
    http_db_cb cb;
    int nparams;
    char *params[SEQUENCED_MAX_PARAMS]; /* owned */
    void *data;                         /* the reader's handler_data, not owned */
};

static void sequenced_free(void *p)
{
    struct sequenced *a = p;
    for (int i = 0; i < a->nparams; i++)
        free(a->params[i]);
    free(a);
}

static void sequence_done(struct http_req *r, enum db_status st, PGresult *res)
{
    struct sequenced *a = r->handler_data;
    if (st == DB_OK && atoi(PQgetvalue(res, 0, 0)) >= SEQUENCE_BATCH) {
        http_query(r, a->run, 0, NULL, sequence_done); /* a backlog: again */
        return;
    }
    r->handler_data = a->data;
    r->handler_free = NULL;
    if (st != DB_OK)
        http_reply_db_error(r, res);
    else
        http_query(r, a->sql, a->nparams, (const char *const *)a->params, a->cb);
    sequenced_free(a);
}

void http_query_sequenced(struct http_req *r, enum seq_lane which, const char *sql, int nparams,
                          const char *const *params, http_db_cb cb, void *data)
{
    struct sequenced *a = xcalloc(1, sizeof(*a));
    if (nparams > SEQUENCED_MAX_PARAMS)
        abort(); /* a programming error */
    a->run = lanes[which].sql;
    a->sql = sql;
    a->cb = cb;
    a->nparams = nparams;
    for (int i = 0; i < nparams; i++)
        a->params[i] = params[i] ? xstrdup(params[i]) : NULL;
    a->data = data;
    r->handler_data = a;
    r->handler_free = sequenced_free;
    http_query(r, a->run, 0, NULL, sequence_done);
}
