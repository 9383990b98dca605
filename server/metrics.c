#include "metrics.h"

#include <event2/buffer.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define MAX_ROUTES 96

static const int statuses[] = {200, 201, 204, 206, 304, 400, 401, 403, 404,
                               405, 406, 409, 413, 415, 422, 429, 500, 503};
#define NSTATUS      (sizeof(statuses) / sizeof(statuses[0]))
#define OTHER_STATUS NSTATUS

static const double buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                 0.25,  0.5,    1,     2.5,  5,     10};
#define NBUCKETS (sizeof(buckets) / sizeof(buckets[0]))
/* finer where a live stream's events are: milliseconds to tens of them */
static const double age_buckets[] = {0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03,
                                     0.05,  0.075, 0.1,   0.25,  0.5,    1,    2.5,   5,    10};
#define NAGE (sizeof(age_buckets) / sizeof(age_buckets[0]))
static const char *const age_stages[STREAM_AGE_STAGES] = {"fetched", "sent"};

static const char *const gauge_names[GAUGE_COUNT][2] = {
    {"raise_open_connections", "Open client connections"},
    {"raise_db_connections{state=\"idle\"}", NULL},
    {"raise_db_connections{state=\"busy\"}", NULL},
    {"raise_db_queued_queries", "Queries waiting for a database connection"},
    {"raise_requests_in_flight", "Requests being handled"},
    {"raise_stream_subscribers", "Open live streams (GET /v1/stream)"},
};

static const char *const counter_names[COUNTER_COUNT][2] = {
    {"raise_db_errors_total", "Statements that failed in the database"},
    {"raise_db_unavailable_total", "Queries refused or lost because no connection was live"},
    {"raise_db_connects_total", "Database connections established"},
    {"raise_tls_reloads_total", "Successful certificate reloads"},
    {"raise_connections_paused_total", "Times accepting paused at max_connections"},
    {"raise_stream_dropped_total", "Stream subscribers cut off for not keeping up"},
    {"raise_db_queries_total",
     "Statements sent to PostgreSQL for requests and streams (database round trips)"},
    {"raise_sequencer_runs_total", "Sequencer runs (events numbered, audit rows chained)"},
    {"raise_sequencer_rows_total", "Queued event and audit rows they moved"},
    {"raise_sequencer_failures_total", "Sequencer runs that failed (their rows stay queued)"},
    {"raise_stream_events_sent_total", "Events sent to stream subscribers, one per subscriber"},
    {"raise_stream_writes_total", "Writes to stream subscribers that carried those events"},
    {"raise_stream_writes_blocked_total",
     "Stream writes that found the subscriber's socket full (the rest waited in its buffer)"},
    {"raise_stream_batches_shared_total",
     "Batches of new events fetched once, as they were announced, for every worker's streams"},
    {"raise_stream_meeting_renders_total",
     "Meeting events rendered for the stream: once per view (the young people shown) per worker"},
};

static const char *const *route_names;
static size_t nroutes;
static _Atomic long requests[MAX_ROUTES + 1][NSTATUS + 1];
static _Atomic long hist[NBUCKETS + 1];
static _Atomic long hist_sum_us;
static _Atomic long age[STREAM_AGE_STAGES][NAGE + 1];
static _Atomic long age_sum_us[STREAM_AGE_STAGES];
static _Atomic long gauges[GAUGE_COUNT];
static _Atomic long counters[COUNTER_COUNT];

void metrics_init(const char *const *names, size_t n)
{
    route_names = names;
    nroutes = n < MAX_ROUTES ? n : MAX_ROUTES;
}

void metrics_gauge_add(enum metrics_gauge g, long delta)
{
    atomic_fetch_add_explicit(&gauges[g], delta, memory_order_relaxed);
}

long metrics_gauge_get(enum metrics_gauge g)
{
    return atomic_load_explicit(&gauges[g], memory_order_relaxed);
}

void metrics_count(enum metrics_counter c)
{
    atomic_fetch_add_explicit(&counters[c], 1, memory_order_relaxed);
}

void metrics_add(enum metrics_counter c, long n)
{
    atomic_fetch_add_explicit(&counters[c], n, memory_order_relaxed);
}

/* Count seconds in its bucket of le[n] (counts[n]: above the last) and in the sum. */
static void observe(const double *le, size_t n, _Atomic long *counts, _Atomic long *sum_us,
                    double seconds)
{
    if (!(seconds > 0)) /* a clock a little behind the database's, or NaN */
        seconds = 0;
    size_t b = n;
    for (size_t i = 0; i < n && b == n; i++)
        if (seconds <= le[i])
            b = i;
    atomic_fetch_add_explicit(&counts[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(sum_us, (long)(seconds * 1e6), memory_order_relaxed);
}

void metrics_request(int route, int status, double seconds)
{
    size_t r = route < 0 || (size_t)route >= nroutes ? MAX_ROUTES : (size_t)route;
    size_t s = OTHER_STATUS;
    for (size_t i = 0; i < NSTATUS; i++)
        if (statuses[i] == status)
            s = i;
    atomic_fetch_add_explicit(&requests[r][s], 1, memory_order_relaxed);
    observe(buckets, NBUCKETS, hist, &hist_sum_us, seconds);
}

void metrics_stream_age(enum metrics_stream_stage stage, double seconds)
{
    observe(age_buckets, NAGE, age[stage], &age_sum_us[stage], seconds);
}

static void render_requests(struct evbuffer *out)
{
    evbuffer_add_printf(out, "# HELP raise_http_requests_total HTTP requests by route and "
                             "status\n# TYPE raise_http_requests_total counter\n");
    for (size_t r = 0; r <= MAX_ROUTES; r++) {
        if (r >= nroutes && r != MAX_ROUTES)
            continue;
        const char *name = r == MAX_ROUTES ? "unmatched" : route_names[r];
        for (size_t s = 0; s <= NSTATUS; s++) {
            long v = atomic_load_explicit(&requests[r][s], memory_order_relaxed);
            if (v == 0)
                continue;
            if (s == OTHER_STATUS)
                evbuffer_add_printf(out,
                                    "raise_http_requests_total{route=\"%s\",status=\"other\"} "
                                    "%ld\n",
                                    name, v);
            else
                evbuffer_add_printf(out,
                                    "raise_http_requests_total{route=\"%s\",status=\"%d\"} %ld\n",
                                    name, statuses[s], v);
        }
    }
}

/* One histogram series: name's buckets, sum and count, with label ("stage=\"x\"", or ""). */
static void render_histogram(struct evbuffer *out, const char *name, const char *label,
                             const double *le, size_t n, _Atomic long *counts, _Atomic long *sum_us)
{
    long cum = 0;
    const char *sep = label[0] ? "," : "";
    for (size_t i = 0; i <= n; i++) {
        cum += atomic_load_explicit(&counts[i], memory_order_relaxed);
        if (i < n)
            evbuffer_add_printf(out, "%s_bucket{%s%sle=\"%g\"} %ld\n", name, label, sep, le[i],
                                cum);
        else
            evbuffer_add_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %ld\n", name, label, sep, cum);
    }
    const char *open = label[0] ? "{" : "", *close = label[0] ? "}" : "";
    evbuffer_add_printf(out, "%s_sum%s%s%s %.6f\n", name, open, label, close,
                        (double)atomic_load(sum_us) / 1e6);
    evbuffer_add_printf(out, "%s_count%s%s%s %ld\n", name, open, label, close, cum);
}

static void render_histograms(struct evbuffer *out)
{
    evbuffer_add_printf(out, "# HELP raise_http_request_duration_seconds Time from request to "
                             "reply\n# TYPE raise_http_request_duration_seconds histogram\n");
    render_histogram(out, "raise_http_request_duration_seconds", "", buckets, NBUCKETS, hist,
                     &hist_sum_us);
    evbuffer_add_printf(out,
                        "# HELP raise_stream_event_age_seconds Age of a new event (from its "
                        "transaction, on the database's clock) when the shared fetch had it "
                        "(fetched) and when a worker had offered it to all its streams (sent)\n"
                        "# TYPE raise_stream_event_age_seconds histogram\n");
    for (int st = 0; st < STREAM_AGE_STAGES; st++) {
        char label[32];
        snprintf(label, sizeof(label), "stage=\"%s\"", age_stages[st]);
        render_histogram(out, "raise_stream_event_age_seconds", label, age_buckets, NAGE, age[st],
                         &age_sum_us[st]);
    }
}

void metrics_render(struct evbuffer *out)
{
    render_requests(out);
    render_histograms(out);
    for (int g = 0; g < GAUGE_COUNT; g++) {
        if (gauge_names[g][1] != NULL) {
            char base[64];
            size_t n = strcspn(gauge_names[g][0], "{");
            memcpy(base, gauge_names[g][0], n);
            base[n] = '\0';
            evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s gauge\n", base, gauge_names[g][1],
                                base);
        } else if (g == GAUGE_DB_IDLE) {
            evbuffer_add_printf(out, "# HELP raise_db_connections Pool connections by state\n"
                                     "# TYPE raise_db_connections gauge\n");
        }
        evbuffer_add_printf(out, "%s %ld\n", gauge_names[g][0], metrics_gauge_get(g));
    }
    for (int c = 0; c < COUNTER_COUNT; c++)
        evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s counter\n%s %ld\n", counter_names[c][0],
                            counter_names[c][1], counter_names[c][0], counter_names[c][0],
                            atomic_load(&counters[c]));
}
