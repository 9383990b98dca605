/* Non-blocking PostgreSQL pool, one per worker thread (never shared between threads).
 * Connections are made with PQconnectStartParams/PQconnectPoll and driven by events on
 * PQsocket; queries go out with PQsendQueryParams and results are read as they arrive.
 * A broken connection fails its query with DB_UNAVAILABLE and reconnects with backoff. */
#ifndef RAISE_DB_H
#define RAISE_DB_H

#include <libpq-fe.h>

struct event_base;
struct db_pool;
struct db_query;

enum db_status {
    DB_OK,          /* res holds the (last) result: tuples or command ok */
    DB_ERROR,       /* res holds the failing result: see PQresultErrorField */
    DB_UNAVAILABLE, /* no connection, connection lost, or queued too long: answer 503 */
};

/* Called once per query (unless orphaned). res is borrowed: valid only during the call;
 * NULL for DB_UNAVAILABLE. */
typedef void (*db_cb)(enum db_status status, PGresult *res, void *arg);

struct db_pool_opts {
    const char *conninfo; /* borrowed; libpq conninfo or URI */
    int size;             /* connections */
    int queue_max;        /* waiting queries */
    int queue_wait_ms;    /* how long a query may wait for a connection */
    int statement_timeout_ms;
    int worker_id;    /* for logs and application_name */
    const char *name; /* application_name; NULL: "raised-w<worker_id>" */
    /* Listen mode: every (re)connection runs LISTEN channel and notifications are passed to
     * notify_cb (on the pool's loop). NULL for an ordinary pool. */
    const char *listen_channel;
    void (*notify_cb)(const char *payload, void *arg);
    void *notify_arg;
    /* Called with the statement's text (on the pool's loop, after the query's callback)
     * whenever a statement succeeded, its caller gone or not (sequencer_after). */
    void (*after_ok)(const char *sql);
    /* The server's own work (LISTEN, the sequencer): its statements are not counted in
     * raise_db_queries_total, which counts those of requests and streams. */
    int background;
};

struct db_pool *db_pool_new(struct event_base *base, const struct db_pool_opts *opts);
/* Closes every connection; pending callbacks are not called. Safe with NULL. */
void db_pool_free(struct db_pool *pool);
/* Send a query (text parameters, text results). Returns NULL if it cannot be queued (no live
 * connection, or the queue is full): the caller answers 503 and cb is never called. */
struct db_query *db_query(struct db_pool *pool, const char *sql, int nparams,
                          const char *const *params, db_cb cb, void *arg);
/* The caller no longer wants the result (its client went away): cb will not be called and
 * the result is drained and dropped. The handle is invalid afterwards. */
void db_query_orphan(struct db_query *q);
/* Statements queued or running (a stopping worker waits for them). */
int db_pool_pending(const struct db_pool *pool);
/* Connections currently up (idle or busy) in this pool. */
int db_pool_live(const struct db_pool *pool);
/* SQLSTATE of a DB_ERROR result ("23505"...), or "" */
const char *db_sqlstate(const PGresult *res);

#endif
