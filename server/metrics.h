/* Process-wide counters and gauges (C11 atomics), rendered as Prometheus text. */
#ifndef RAISE_METRICS_H
#define RAISE_METRICS_H

#include <stddef.h>

struct evbuffer;

enum metrics_gauge {
    GAUGE_CONNECTIONS, /* open client connections */
    GAUGE_DB_IDLE,     /* pool connections idle */
    GAUGE_DB_BUSY,     /* pool connections running a query */
    GAUGE_DB_QUEUED,   /* queries waiting for a connection */
    GAUGE_INFLIGHT,    /* requests being handled */
    GAUGE_SUBSCRIBERS, /* open live streams */
    GAUGE_COUNT
};

enum metrics_counter {
    COUNTER_DB_ERRORS,      /* statements that failed */
    COUNTER_DB_UNAVAILABLE, /* queries refused or lost: no connection */
    COUNTER_DB_CONNECTS,    /* successful (re)connections */
    COUNTER_TLS_RELOADS,
    COUNTER_CONN_REJECTED, /* listener paused at max_connections */
    COUNTER_SSE_DROPPED,   /* stream subscribers cut off for not keeping up */
    COUNTER_DB_QUERIES,    /* statements sent to PostgreSQL (round trips) */
    COUNTER_SEQUENCE_RUNS, /* sequencer runs, either lane (sequencer.h) */
    COUNTER_SEQUENCE_ROWS, /* events and audit rows they moved out of the queues */
    COUNTER_SEQUENCE_FAILED,
    COUNTER_SSE_EVENTS,          /* events sent to stream subscribers (one per subscriber) */
    COUNTER_SSE_WRITES,          /* writes that carried them (events / writes = the batching) */
    COUNTER_SSE_BLOCKED,         /* writes that found the subscriber's socket full */
    COUNTER_SSE_SHARED,          /* batches fetched once for every worker (stream_fanout.c) */
    COUNTER_SSE_MEETING_RENDERS, /* meeting events rendered, once per view (stream_fanout.c) */
    COUNTER_COUNT
};

/* How old a new event is on its way through the live stream, from its transaction's last
 * statement (the event row's time, on the database's clock) to: the shared fetch has it;
 * a worker's round has offered it to every one of that worker's subscribers (one
 * observation per worker with subscribers). raise_stream_event_age_seconds{stage=...}. */
enum metrics_stream_stage { STREAM_AGE_FETCHED, STREAM_AGE_SENT, STREAM_AGE_STAGES };

/* Routes are identified by their index in the route table; ntable + 1 = "unmatched". */
void metrics_init(const char *const *route_names, size_t nroutes);
void metrics_gauge_add(enum metrics_gauge g, long delta);
long metrics_gauge_get(enum metrics_gauge g);
void metrics_count(enum metrics_counter c);
void metrics_add(enum metrics_counter c, long n);
/* route: index into the table, or -1 for unmatched. */
void metrics_request(int route, int status, double seconds);
void metrics_stream_age(enum metrics_stream_stage stage, double seconds);
void metrics_render(struct evbuffer *out);

#endif
