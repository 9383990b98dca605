/* The live stream: delivery, filtering by need-to-know, order, Last-Event-ID resume with no
 * loss and no duplicate, two instances, a team change mid-stream. */
#define _GNU_SOURCE
#include "harness.h"
#include "raise_limits.h"
#include "sse.h"

#include <check.h>
#include <json-c/json.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct itest_server a, b;
static struct world {
    char *admin, *hub, *hub_agency, *police, *health, *housing;
    char *mgr, *officer, *nurse, *outsider;
} w;

static void start(void)
{
    itest_ensure_db();
    itest_sql("DELETE FROM login_failures WHERE key LIKE 'addr:%'");
    itest_server_start(&a, NULL);
    itest_server_start(&b, NULL);
    w.admin = itest_new_admin(&a);
    w.hub = itest_new_hub(&a, w.admin);
    w.hub_agency = itest_new_agency(&a, w.admin, "hub");
    w.police = itest_new_agency(&a, w.admin, "police");
    w.health = itest_new_agency(&a, w.admin, "health");
    w.housing = itest_new_agency(&a, w.admin, "housing");
    w.mgr = itest_new_user(&a, w.admin, w.hub_agency, "hub_manager", w.hub, NULL);
    w.officer = itest_new_user(&a, w.admin, w.police, "police_liaison", NULL, NULL);
    w.nurse = itest_new_user(&a, w.admin, w.health, "practitioner", NULL, NULL);
    w.outsider = itest_new_user(&a, w.admin, w.housing, "practitioner", NULL, NULL);
}

static void stop(void)
{
    itest_server_stop(&a, SIGTERM, 15);
    itest_server_stop(&b, SIGTERM, 15);
    free(w.admin);
    free(w.hub);
    free(w.hub_agency);
    free(w.police);
    free(w.health);
    free(w.housing);
    free(w.mgr);
    free(w.officer);
    free(w.nurse);
    free(w.outsider);
    memset(&w, 0, sizeof(w));
}

/* ---- helpers */

/* A young person in hub, added by its manager mgr; returns the id (owned). */
static char *make_subject_in(const char *mgr, const char *hub, const char *team_json)
{
    char body[1024];
    snprintf(body, sizeof(body),
             "{\"hub_id\":\"%s\",\"reference\":\"%s\",\"given_name\":\"Riley\","
             "\"family_name\":\"Stream\",\"date_of_birth\":\"2010-06-01\",\"status\":"
             "\"edge_of_care\",\"key_worker\":\"K\",\"team\":%s}",
             hub, itest_unique("S-"), team_json);
    struct https_response r = {0};
    itest_call(&a, mgr, "POST", "/v1/subjects", body, &r);
    ck_assert_msg(r.status == 201, "%d %s", r.status, r.body);
    json_object *o = itest_json(&r);
    char *id = strdup(itest_jstr(o, "id"));
    json_object_put(o);
    https_response_clear(&r);
    return id;
}

static char *make_subject(const char *team_json)
{
    return make_subject_in(w.mgr, w.hub, team_json);
}

/* Post as the officer on server s; returns the item id (owned). */
static char *post(const struct itest_server *s, const char *subject, const char *summary,
                  const char *extra)
{
    char body[2048];
    snprintf(body, sizeof(body),
             "{\"subject_id\":\"%s\",\"category\":\"cse_concern\",\"summary\":\"%s\","
             "\"occurred_at\":\"2026-01-05T09:00:00Z\",\"risk_level\":\"critical\","
             "\"grading\":{\"source\":2,\"assessment\":\"C\",\"handling\":\"C\","
             "\"conditions\":\"Police only to contact the family\"}%s}",
             subject, summary, extra ? extra : "");
    struct https_response r = {0};
    itest_call(s, w.officer, "POST", "/v1/intelligence", body, &r);
    ck_assert_msg(r.status == 201, "%d %s", r.status, r.body);
    json_object *o = itest_json(&r);
    char *id = strdup(itest_jstr(o, "id"));
    json_object_put(o);
    https_response_clear(&r);
    return id;
}

static char *team2(void)
{
    static char t[128];
    snprintf(t, sizeof(t), "[\"%s\",\"%s\"]", w.police, w.health);
    return t;
}

START_TEST(delivered_to_the_team_only_with_conditions)
{
    char *subject = make_subject(team2());
    struct sse *nurse = sse_open(&a, w.nurse, -1), *out = sse_open(&a, w.outsider, -1);
    struct sse *mgr = sse_open(&b, w.mgr, -1);
    char *id = post(&a, subject, "Seen with older males", NULL);
    struct sse_event ev;
    ck_assert_msg(sse_next(nurse, &ev, 3000), "no event for the team");
    ck_assert_str_eq(ev.type, "intelligence.posted");
    ck_assert(strstr(ev.data, id) != NULL);
    ck_assert(strstr(ev.data, "Police only to contact the family") != NULL);
    ck_assert(strstr(ev.data, "\"text\":\"2C C\"") != NULL);
    long long first = ev.id;
    free(ev.data);
    /* the hub manager, on the other instance, gets it too */
    ck_assert_msg(sse_next(mgr, &ev, 3000), "no event on the second instance");
    ck_assert_int_eq(ev.id, first);
    free(ev.data);
    /* restricted to the police: the nurse does not get it, nor the outsider anything */
    char extra[128];
    snprintf(extra, sizeof(extra), ",\"restricted_to\":[\"%s\"]", w.police);
    char *secret = post(&a, subject, "Restricted", extra);
    char *after = post(&b, subject, "After", NULL);
    ck_assert(sse_next(nurse, &ev, 3000));
    ck_assert_msg(strstr(ev.data, after) != NULL, "expected the next visible item");
    ck_assert_int_gt(ev.id, first);
    free(ev.data);
    ck_assert_msg(!sse_next(out, &ev, 1000), "an outsider received %s", ev.data);
    /* delivery is audited, in aggregate: a row per subscriber per young person per second
     * listing the event ids sent (the nurse's and the manager's) */
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM audit_log WHERE action = 'stream.deliver' AND subject_id = "
             "'%s' AND record_type = 'event' AND ',' || record_id || ',' LIKE '%%,%lld,%%'",
             subject, first);
    char *n = NULL;
    for (int i = 0; i < 40; i++) { /* flushed about every second */
        free(n);
        n = itest_sql_value(sql);
        if (n && atoi(n) >= 2)
            break;
        itest_sleep_ms(100);
    }
    ck_assert_int_ge(atoi(n), 2);
    free(n);
    sse_close(nurse);
    sse_close(out);
    sse_close(mgr);
    free(id);
    free(secret);
    free(after);
    free(subject);
}
END_TEST

/* A post the nurse saw streamed (on b): its event id; *item its id (owned). */
static long long streamed_post(const char *subject, char **item)
{
    struct sse *s = sse_open(&b, w.nurse, -1);
    *item = post(&a, subject, "One", NULL);
    struct sse_event ev;
    ck_assert(sse_next(s, &ev, 3000));
    free(ev.data);
    sse_close(s);
    return ev.id;
}

/* The next n events on s are the items ids, in order, none twice, after event id after;
 * returns the last one's event id. */
static long long expect_in_order(struct sse *s, char **ids, int n, long long after)
{
    struct sse_event ev;
    for (int i = 0; i < n; i++) {
        ck_assert_msg(sse_next(s, &ev, 3000), "missed event %d", i);
        ck_assert_int_gt(ev.id, after);
        ck_assert_msg(strstr(ev.data, ids[i]) != NULL, "event %d out of order", i);
        after = ev.id;
        free(ev.data);
    }
    return after;
}

START_TEST(resume_with_last_event_id_no_loss_no_duplicate)
{
    char *subject = make_subject(team2()), *first;
    long long last = streamed_post(subject, &first);
    struct sse *s;
    struct sse_event ev;
    /* while away: five more, on both instances */
    char *ids[5];
    for (int i = 0; i < 5; i++)
        ids[i] = post(i % 2 ? &a : &b, subject, "While away", NULL);
    s = sse_open(&a, w.nurse, last);
    long long prev = expect_in_order(s, ids, 5, last);
    /* then live ones */
    char *live = post(&b, subject, "Live", NULL);
    ck_assert(sse_next(s, &ev, 3000));
    ck_assert(strstr(ev.data, live) != NULL);
    ck_assert_int_gt(ev.id, prev);
    free(ev.data);
    ck_assert(!sse_next(s, &ev, 500));
    sse_close(s);
    for (int i = 0; i < 5; i++)
        free(ids[i]);
    free(live);
    free(first);
    free(subject);
}
END_TEST

/* Everything one fetch finds for a subscriber goes out in one write (one chunk, one TLS
 * record), in order: here a resume that finds five events waiting. */
START_TEST(a_fetched_batch_goes_out_in_one_write)
{
    char *subject = make_subject(team2()), *first;
    long long last = streamed_post(subject, &first);
    struct sse *s;
    struct sse_event ev;
    char *ids[5];
    for (int i = 0; i < 5; i++)
        ids[i] = post(&b, subject, "Batched", NULL);
    ck_assert_msg(itest_wait_subscribers(&a, 0, 5000), "another stream is open on a");
    long events = itest_metric(&a, "raise_stream_events_sent_total");
    long writes = itest_metric(&a, "raise_stream_writes_total");
    s = sse_open(&a, w.nurse, last);
    expect_in_order(s, ids, 5, last);
    ck_assert(!sse_next(s, &ev, 300));
    ck_assert_int_eq(itest_metric(&a, "raise_stream_events_sent_total") - events, 5);
    ck_assert_int_eq(itest_metric(&a, "raise_stream_writes_total") - writes, 1);
    sse_close(s);
    for (int i = 0; i < 5; i++)
        free(ids[i]);
    free(first);
    free(subject);
}
END_TEST

enum { FLOW = 20 };

struct flow {
    const char *subject;
    char *ids[FLOW];
};

/* FLOW posts one after the other, on both instances (a thread: the test reads meanwhile). */
static void *flow_posts(void *p)
{
    struct flow *f = p;
    for (int i = 0; i < FLOW; i++)
        f->ids[i] = post(i % 2 ? &a : &b, f->subject, "Meanwhile", NULL);
    return NULL;
}

/* New events are fetched once per process, as they are announced, and handed to every
 * worker (stream.c, the shared fetch). A stream that resumes from further back while they
 * flow must not take them before what it missed: it gets everything after its
 * Last-Event-ID once, in order, however its catch-up and the shared batches interleave. */
START_TEST(live_events_fetched_once_and_resumes_in_between)
{
    enum { ROUNDS = 3, AWAY = 3 };
    char *subject = make_subject(team2());
    struct sse *live = sse_open(&a, w.nurse, -1);
    struct sse_event ev;
    long shared = itest_metric(&a, "raise_stream_batches_shared_total");
    long long last = 0;
    for (int round = 0; round < ROUNDS; round++) {
        char *away[AWAY];
        long long from = -1;
        for (int i = 0; i < AWAY; i++) { /* the live stream has them; the resumed one not */
            away[i] = post(&b, subject, "Missed", NULL);
            ck_assert(sse_next(live, &ev, 3000));
            ck_assert(strstr(ev.data, away[i]) != NULL);
            if (from < 0)
                from = ev.id - 1;
            last = ev.id;
            free(ev.data);
        }
        struct flow f = {.subject = subject};
        pthread_t t;
        pthread_create(&t, NULL, flow_posts, &f);
        struct sse *back = sse_open(&a, w.nurse, from);
        pthread_join(t, NULL);
        last = expect_in_order(live, f.ids, FLOW, last);
        long long got = expect_in_order(back, away, AWAY, from);
        expect_in_order(back, f.ids, FLOW, got);
        ck_assert(!sse_next(back, &ev, 200));
        sse_close(back);
        for (int i = 0; i < AWAY; i++)
            free(away[i]);
        for (int i = 0; i < FLOW; i++)
            free(f.ids[i]);
    }
    /* the first announcement may only set where the shared fetch starts; the rest go shared */
    ck_assert_int_ge(itest_metric(&a, "raise_stream_batches_shared_total") - shared, FLOW);
    sse_close(live);
    free(subject);
}
END_TEST

/* The LISTEN connection (which also runs the shared fetch and numbers events) is cut: what
 * is posted meanwhile still reaches the open stream, in order, through the workers' own
 * fetches after the reconnect; and the shared fetch takes over again after that. */
START_TEST(streams_go_on_when_the_listen_connection_is_lost)
{
    char *subject = make_subject(team2()), *ids[5];
    struct sse *s = sse_open(&a, w.nurse, -1);
    long long last = 0;
    ids[0] = post(&b, subject, "Before the cut", NULL);
    last = expect_in_order(s, ids, 1, last);
    ck_assert_int_eq(itest_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE application_name = 'raised-events' "
                               "AND datname = current_database()"),
                     0);
    ids[1] = post(&b, subject, "While cut 1", NULL);
    ids[2] = post(&a, subject, "While cut 2", NULL);
    last = expect_in_order(s, ids + 1, 2, last);
    /* after the reconnect, the first announcement sets where the shared fetch starts */
    long shared = itest_metric(&a, "raise_stream_batches_shared_total");
    ids[3] = post(&b, subject, "After 1", NULL);
    ids[4] = post(&b, subject, "After 2", NULL);
    expect_in_order(s, ids + 3, 2, last);
    ck_assert_int_ge(itest_metric(&a, "raise_stream_batches_shared_total") - shared, 1);
    struct sse_event ev;
    ck_assert(!sse_next(s, &ev, 200));
    sse_close(s);
    for (int i = 0; i < 5; i++)
        free(ids[i]);
    free(subject);
}
END_TEST

/* raise_stream_event_age_seconds{stage} series from server s's /metrics: its count, and
 * its sum (seconds) in *sum; its +Inf bucket must agree with the count, and its buckets
 * must never fall. */
static long age_series(const struct itest_server *s, const char *stage, double *sum)
{
    struct https_response m = {0};
    itest_request(s, "GET", "/metrics", NULL, NULL, &m);
    ck_assert_int_eq(m.status, 200);
    char key[128];
    long count = -1, prev = 0, inf = -1;
    snprintf(key, sizeof(key), "\nraise_stream_event_age_seconds_count{stage=\"%s\"} ", stage);
    const char *at = strstr(m.body, key);
    ck_assert_msg(at != NULL, "no age count for %s in /metrics", stage);
    count = atol(at + strlen(key));
    snprintf(key, sizeof(key), "\nraise_stream_event_age_seconds_sum{stage=\"%s\"} ", stage);
    at = strstr(m.body, key);
    ck_assert_msg(at != NULL, "no age sum for %s in /metrics", stage);
    *sum = strtod(at + strlen(key), NULL);
    snprintf(key, sizeof(key), "\nraise_stream_event_age_seconds_bucket{stage=\"%s\",le=\"", stage);
    int buckets = 0;
    for (at = strstr(m.body, key); at != NULL; at = strstr(at + 1, key)) {
        const char *v = strchr(at + strlen(key), ' ');
        ck_assert(v != NULL);
        long n = atol(v + 1);
        ck_assert_msg(n >= prev, "%s: a bucket falls (%ld after %ld)", stage, n, prev);
        prev = n;
        buckets++;
        if (strncmp(at + strlen(key), "+Inf\"", 5) == 0)
            inf = n;
    }
    ck_assert_int_gt(buckets, 10);
    ck_assert_int_eq(inf, count);
    https_response_clear(&m);
    return count;
}

/* How old new events are when the shared fetch has them and when a worker has offered them
 * to its streams, in /metrics: counted once per event (sent: per worker with streams), and
 * their ages are the few milliseconds they took, not (say) seconds since 1970 from a time
 * that was never read. */
START_TEST(event_ages_are_in_metrics)
{
    enum { N = 4 };
    char *subject = make_subject(team2()), *ids[N];
    struct sse *s = sse_open(&a, w.nurse, -1);
    double fsum0, ssum0, fsum, ssum;
    long f0 = age_series(&a, "fetched", &fsum0), s0 = age_series(&a, "sent", &ssum0);
    for (int i = 0; i < N; i++)
        ids[i] = post(&b, subject, "Aged", NULL);
    expect_in_order(s, ids, N, 0);
    long f = 0, sent = 0;
    for (int tries = 0; tries < 100; tries++) { /* a round ends just after its last write */
        f = age_series(&a, "fetched", &fsum) - f0;
        sent = age_series(&a, "sent", &ssum) - s0;
        if (f >= N - 1 && sent >= f)
            break;
        struct timespec ms10 = {0, 10 * 1000 * 1000};
        nanosleep(&ms10, NULL);
    }
    /* the first announcement may only set where the shared fetch starts; the young
     * person's own event may come after f0 was read */
    ck_assert_msg(f >= N - 1 && f <= N + 1, "%ld events fetched, %d posted", f, N);
    ck_assert_msg(sent >= f, "%ld events sent, %ld fetched", sent, f);
    ck_assert_msg(fsum - fsum0 >= 0 && fsum - fsum0 < 5.0 * (double)f, "fetched ages: %.6f s",
                  fsum - fsum0);
    ck_assert_msg(ssum - ssum0 >= 0 && ssum - ssum0 < 5.0 * (double)sent, "sent ages: %.6f s",
                  ssum - ssum0);
    sse_close(s);
    for (int i = 0; i < N; i++)
        free(ids[i]);
    free(subject);
}
END_TEST

/* More streams than a worker serves in one loop turn (LIMIT_SSE_SLICE): every one still
 * gets every event once and in order, also when streams close between two batches. */
START_TEST(many_streams_are_served_in_slices)
{
    enum { N = 3 * LIMIT_SSE_SLICE, FIRST = 3, THEN = 2 };
    char *subject = make_subject(team2()), *ids[FIRST + THEN];
    struct sse *s[N];
    for (int i = 0; i < N; i++)
        s[i] = sse_open(&a, w.nurse, -1);
    ck_assert(itest_wait_subscribers(&a, N, 5000));
    for (int i = 0; i < FIRST; i++)
        ids[i] = post(i % 2 ? &a : &b, subject, "To many", NULL);
    long long last[N];
    for (int i = 0; i < N; i++)
        last[i] = expect_in_order(s[i], ids, FIRST, 0);
    for (int i = 0; i < N; i += 2) {
        sse_close(s[i]);
        s[i] = NULL;
    }
    for (int i = FIRST; i < FIRST + THEN; i++)
        ids[i] = post(&b, subject, "To fewer", NULL);
    for (int i = 1; i < N; i += 2) {
        struct sse_event ev;
        expect_in_order(s[i], ids + FIRST, THEN, last[i]);
        ck_assert(!sse_next(s[i], &ev, i == 1 ? 200 : 0));
        sse_close(s[i]);
    }
    for (int i = 0; i < FIRST + THEN; i++)
        free(ids[i]);
    free(subject);
}
END_TEST

/* The officer's keep-alive connection to a, for many posts in a row (post_on). */
struct poster {
    struct https_conn *c;
    char auth[256];
    const char *h[3];
};

static void poster_open(struct poster *p)
{
    struct https_opts o = itest_opts(&a);
    char *cause = NULL;
    snprintf(p->auth, sizeof(p->auth), "Authorization: Bearer %s", w.officer);
    p->h[0] = p->auth;
    p->h[1] = "Content-Type: application/json";
    p->h[2] = NULL;
    p->c = https_connect(&o, &cause);
    ck_assert_msg(p->c != NULL, "%s", cause ? cause : "?");
}

/* Post an item "<what> <i>" with a detail on the poster's connection. */
static void post_on(struct poster *p, const char *subject, const char *what, int i,
                    const char *detail)
{
    char body[10240], *cause = NULL;
    snprintf(body, sizeof(body),
             "{\"subject_id\":\"%s\",\"category\":\"other\",\"summary\":\"%s %d\","
             "\"occurred_at\":\"2026-01-05T09:00:00Z\",\"risk_level\":\"low\","
             "\"grading\":{\"source\":3,\"assessment\":\"D\",\"handling\":\"P\"},"
             "\"detail\":\"%s\"}",
             subject, what, i, detail);
    struct https_response r = {0};
    ck_assert_int_eq(
        https_request(p->c, "POST", "/v1/intelligence", p->h, body, strlen(body), &r, &cause), 0);
    ck_assert_int_eq(r.status, 201);
    https_response_clear(&r);
}

/* A subscriber whose socket fills (it stops reading) and who then reads gets every event,
 * whole and in order: the write that found the socket full is finished by the bufferevent
 * from where SSL_write stopped, and what came after it waits its turn (http.c,
 * write_detached). */
START_TEST(a_stream_whose_socket_fills_gets_everything_after)
{
    char *subject = make_subject(team2());
    struct sse *s = sse_open(&a, w.nurse, -1); /* does not read until the socket is full */
    long blocked = itest_metric(&a, "raise_stream_writes_blocked_total");
    long dropped = itest_metric(&a, "raise_stream_dropped_total");
    char detail[9001];
    memset(detail, 'y', 9000);
    detail[9000] = '\0';
    struct poster p;
    poster_open(&p);
    int n = 0;
    while (n < 2000 && itest_metric(&a, "raise_stream_writes_blocked_total") == blocked) {
        for (int k = 0; k < 10; k++, n++)
            post_on(&p, subject, "fill", n, detail);
    }
    https_close(p.c);
    ck_assert_msg(itest_metric(&a, "raise_stream_writes_blocked_total") > blocked,
                  "the subscriber's socket never filled after %d posts", n);
    struct sse_event ev;
    long long prev = 0;
    for (int i = 0; i < n; i++) {
        char want[32];
        snprintf(want, sizeof(want), "\"summary\":\"fill %d\"", i);
        ck_assert_msg(sse_next(s, &ev, 5000), "event %d of %d never came", i, n);
        ck_assert_int_gt(ev.id, prev);
        ck_assert_msg(strstr(ev.data, want) != NULL && strstr(ev.data, detail) != NULL,
                      "event %d of %d is not the item posted", i, n);
        prev = ev.id;
        free(ev.data);
    }
    ck_assert(!sse_next(s, &ev, 300));
    ck_assert_int_eq(itest_metric(&a, "raise_stream_dropped_total"), dropped);
    sse_close(s);
    free(subject);
}
END_TEST

START_TEST(team_change_mid_stream)
{
    char team[64];
    snprintf(team, sizeof(team), "[\"%s\"]", w.police);
    char *subject = make_subject(team);
    struct sse *s = sse_open(&a, w.nurse, -1);
    char *hidden = post(&a, subject, "Before", NULL);
    struct sse_event ev;
    ck_assert_msg(!sse_next(s, &ev, 800), "not on the team yet: %s", ev.data);
    char path[128], body[256];
    snprintf(path, sizeof(path), "/v1/subjects/%s", subject);
    snprintf(body, sizeof(body), "{\"team\":[\"%s\",\"%s\"]}", w.police, w.health);
    struct https_response r = {0};
    itest_call(&b, w.mgr, "PATCH", path, body, &r);
    ck_assert_int_eq(r.status, 200);
    https_response_clear(&r);
    ck_assert(sse_next(s, &ev, 3000));
    ck_assert_str_eq(ev.type, "subject.updated");
    ck_assert(strstr(ev.data, subject) != NULL);
    free(ev.data);
    char *seen = post(&a, subject, "After joining", NULL);
    ck_assert(sse_next(s, &ev, 3000));
    ck_assert(strstr(ev.data, seen) != NULL);
    free(ev.data);
    /* a retraction streams too */
    snprintf(path, sizeof(path), "/v1/intelligence/%s/retract", seen);
    itest_call(&a, w.officer, "POST", path, "{\"reason\":\"duplicate\"}", &r);
    ck_assert_int_eq(r.status, 200);
    https_response_clear(&r);
    ck_assert(sse_next(s, &ev, 3000));
    ck_assert_str_eq(ev.type, "intelligence.retracted");
    ck_assert(strstr(ev.data, "\"reason\":\"duplicate\"") != NULL);
    free(ev.data);
    sse_close(s);
    free(hidden);
    free(seen);
    free(subject);
}
END_TEST

START_TEST(bad_last_event_id_and_no_token)
{
    struct https_response r = {0};
    itest_call(&a, NULL, "GET", "/v1/stream", NULL, &r);
    itest_assert_problem(&r, 401, NULL);
    https_response_clear(&r);
    char auth[256];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", w.nurse);
    const char *h[] = {auth, "Last-Event-ID: banana", NULL};
    itest_request(&a, "GET", "/v1/stream", h, NULL, &r);
    itest_assert_problem(&r, 400, NULL);
    https_response_clear(&r);
    const char *big[] = {auth, "Last-Event-ID: 99999999999999999999", NULL}; /* > bigint */
    itest_request(&a, "GET", "/v1/stream", big, NULL, &r);
    itest_assert_problem(&r, 400, NULL);
    https_response_clear(&r);

    /* the largest bigint is an id, with nothing after it: the stream, alone on its server
     * (so its cursor is the one fetched from), waits; nothing overflows (the sanitizer
     * build aborts on that) */
    struct itest_server c;
    itest_server_start(&c, NULL);
    struct sse *s = sse_open(&c, w.nurse, 9223372036854775807LL);
    ck_assert(itest_wait_subscribers(&c, 1, 5000));
    char *subject = make_subject(team2()), *item = post(&c, subject, "Past the end", NULL);
    struct sse_event ev;
    ck_assert_msg(!sse_next(s, &ev, 1000), "got %s", ev.data);
    ck_assert_int_eq(itest_metric(&c, "raise_stream_subscribers"), 1);
    sse_close(s);
    free(item);
    free(subject);
    ck_assert_int_eq(itest_server_stop(&c, SIGTERM, 15), 0);
}
END_TEST

START_TEST(slow_consumer_is_cut_off_and_can_resume)
{
    char *subject = make_subject(team2());
    struct sse *slow = sse_open(&a, w.nurse, -1); /* never reads until the end */
    char *big = malloc(9001);
    memset(big, 'x', 9000);
    big[9000] = '\0';
    struct poster p;
    poster_open(&p);
    int dropped = 0;
    for (int i = 0; i < 800; i++)
        post_on(&p, subject, "bulk", i, big);
    for (int i = 0; i < 100 && !dropped; i++) { /* cut off once blocked for 5 s */
        dropped = itest_metric(&a, "raise_stream_dropped_total") != 0;
        itest_sleep_ms(200);
    }
    https_close(p.c);
    ck_assert_msg(dropped, "a subscriber that never reads was never cut off");
    ck_assert(itest_file_contains(a.log, "too slow, disconnected"));
    /* it reads what was buffered, then the stream ends; it resumes from its last id */
    struct sse_event ev;
    long long last = 0;
    while (sse_next(slow, &ev, 1000)) {
        last = ev.id;
        free(ev.data);
    }
    sse_close(slow);
    ck_assert_int_gt(last, 0);
    /* resuming, it gets every event it missed, in order, paced by what it reads */
    char *newest = itest_sql_value("SELECT max(id) FROM events");
    struct sse *again = sse_open(&a, w.nurse, last);
    long long prev = last;
    while (prev < atoll(newest) && sse_next(again, &ev, 3000)) {
        ck_assert_int_gt(ev.id, prev);
        prev = ev.id;
        free(ev.data);
    }
    ck_assert_msg(prev == atoll(newest), "resumed up to %lld of %s", prev, newest);
    free(newest);
    sse_close(again);
    free(big);
    free(subject);
}
END_TEST

START_TEST(sign_out_and_deactivation_end_open_streams)
{
    struct itest_server c;
    itest_server_start(&c, "stream_heartbeat = 1\n");
    char *uid = NULL, sql[128], path[96];
    char *t1 = itest_new_user(&c, w.admin, w.health, "practitioner", NULL, &uid);
    snprintf(sql, sizeof(sql), "SELECT username FROM users WHERE id = '%s'", uid);
    char *name = itest_sql_value(sql);
    char *t2 = itest_login(&c, name, "long enough secret");
    char *subject = make_subject(team2());
    struct sse *s1 = sse_open(&c, t1, -1), *s2 = sse_open(&c, t2, -1);
    ck_assert(itest_wait_subscribers(&c, 2, 5000));

    /* signing out ends that session's stream on the server; nothing more reaches it */
    struct https_response r = {0};
    itest_call(&c, t1, "DELETE", "/v1/sessions/current", NULL, &r);
    ck_assert_int_eq(r.status, 204);
    https_response_clear(&r);
    ck_assert_msg(itest_wait_subscribers(&c, 1, 5000), "a signed-out session's stream stayed open");
    char *item = post(&c, subject, "After sign-out", NULL);
    struct sse_event ev;
    ck_assert_msg(sse_next(s2, &ev, 3000), "the other session's stream got nothing");
    ck_assert(strstr(ev.data, item) != NULL);
    free(ev.data);
    ck_assert_msg(!sse_next(s1, &ev, 1000), "a signed-out session still received %s", ev.data);

    /* a session unused for 8 hours has expired: its stream ends at the next heartbeat */
    char *t3 = itest_login(&c, name, "long enough secret"), aged[256];
    struct sse *s3 = sse_open(&c, t3, -1);
    ck_assert(itest_wait_subscribers(&c, 2, 5000));
    snprintf(aged, sizeof(aged),
             "UPDATE sessions SET last_seen = now() - interval '8 hours 1 minute' "
             "WHERE token_hash = sha256(convert_to('%s', 'UTF8'))",
             t3);
    itest_sql(aged);
    ck_assert_msg(itest_wait_subscribers(&c, 1, 5000),
                  "an idle-expired session's stream stayed open");
    ck_assert_msg(sse_wait_end(s3, 1000), "the idle-expired stream did not end cleanly");
    sse_close(s3);
    free(t3);

    /* deactivating the user ends the other one */
    snprintf(path, sizeof(path), "/v1/users/%s", uid);
    itest_call(&c, w.admin, "PATCH", path, "{\"active\":false}", &r);
    ck_assert_int_eq(r.status, 200);
    https_response_clear(&r);
    ck_assert_msg(itest_wait_subscribers(&c, 0, 5000), "a deactivated user's stream stayed open");
    sse_close(s1);
    sse_close(s2);
    free(item);
    free(subject);
    free(name);
    free(uid);
    free(t1);
    free(t2);
    itest_server_stop(&c, SIGTERM, 15);
}
END_TEST

/* "A comment line is sent every 15 s as a heartbeat" (here every second), to every stream,
 * also when a worker has more than it writes in one loop turn (the heartbeat goes round them
 * LIMIT_SSE_SLICE at a time) and when streams have closed since the last one. */
START_TEST(heartbeats_reach_every_stream)
{
    enum { N = 3 * LIMIT_SSE_SLICE };
    struct itest_server c;
    itest_server_start(&c, "stream_heartbeat = 1\n");
    struct sse *s[N];
    for (int i = 0; i < N; i++)
        s[i] = sse_open(&c, w.nurse, -1);
    ck_assert(itest_wait_subscribers(&c, N, 5000));
    for (int i = 0; i < N; i++)
        ck_assert_msg(sse_next_comment(s[i], "heartbeat", 3000), "stream %d: no heartbeat", i);
    for (int i = 0; i < N; i += 2) {
        sse_close(s[i]);
        s[i] = NULL;
    }
    ck_assert(itest_wait_subscribers(&c, N / 2, 5000));
    for (int round = 0; round < 2; round++) /* and again: they keep coming */
        for (int i = 1; i < N; i += 2)
            ck_assert_msg(sse_next_comment(s[i], "heartbeat", 3000),
                          "stream %d: no heartbeat after others closed (round %d)", i, round);
    for (int i = 1; i < N; i += 2)
        sse_close(s[i]);
    itest_server_stop(&c, SIGTERM, 15);
}
END_TEST

/* The heartbeat's check finds each subscriber's row among many users' (check_row searches
 * rows sorted by user): every live stream of sixteen different users stays open through
 * several checks, and signing one out ends that one alone. */
START_TEST(heartbeat_check_keeps_every_live_stream)
{
    enum { USERS = 16 };
    struct itest_server c;
    itest_server_start(&c, "stream_heartbeat = 1\n");
    char *tokens[USERS];
    struct sse *streams[USERS];
    for (int i = 0; i < USERS; i++) {
        tokens[i] = itest_new_user(&c, w.admin, w.health, "practitioner", NULL, NULL);
        streams[i] = sse_open(&c, tokens[i], -1);
    }
    ck_assert(itest_wait_subscribers(&c, USERS, 5000));
    itest_sleep_ms(2500); /* two checks or more */
    ck_assert_int_eq(itest_metric(&c, "raise_stream_subscribers"), USERS);

    enum { GONE = USERS / 2 };
    struct https_response r = {0};
    itest_call(&c, tokens[GONE], "DELETE", "/v1/sessions/current", NULL, &r);
    ck_assert_int_eq(r.status, 204);
    https_response_clear(&r);
    ck_assert(itest_wait_subscribers(&c, USERS - 1, 5000));
    itest_sleep_ms(1500); /* another check */
    ck_assert_int_eq(itest_metric(&c, "raise_stream_subscribers"), USERS - 1);

    char *subject = make_subject(team2());
    char *item = post(&c, subject, "After the checks", NULL);
    for (int i = 0; i < USERS; i++) {
        struct sse_event ev;
        if (i == GONE) {
            ck_assert_msg(!sse_next(streams[i], &ev, 200), "a signed-out stream got %s", ev.data);
        } else {
            ck_assert_msg(sse_next(streams[i], &ev, 3000), "stream %d got nothing", i);
            ck_assert(strstr(ev.data, item) != NULL);
            free(ev.data);
        }
        sse_close(streams[i]);
        free(tokens[i]);
    }
    free(item);
    free(subject);
    itest_server_stop(&c, SIGTERM, 15);
}
END_TEST

/* With the heartbeat at its default (15 s), a change to the account takes effect on the
 * user's open stream before anything that follows the change: a hub manager taken off a hub
 * gets none of its events posted after, and a signed-out session's stream ends at once and
 * gets nothing more. The stream is on the other server process than the changes. */
START_TEST(account_changes_reach_open_streams_at_once)
{
    char *hub2 = itest_new_hub(&a, w.admin), *uid = NULL, path[96], body[256];
    char *mgr2 = itest_new_user(&a, w.admin, w.hub_agency, "hub_manager", w.hub, &uid);
    snprintf(path, sizeof(path), "/v1/users/%s", uid);
    snprintf(body, sizeof(body), "{\"hub_ids\":[\"%s\",\"%s\"]}", w.hub, hub2);
    struct https_response r = {0};
    itest_call(&a, w.admin, "PATCH", path, body, &r);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    https_response_clear(&r);
    char team[64];
    snprintf(team, sizeof(team), "[\"%s\"]", w.police);
    char *one = make_subject_in(mgr2, w.hub, team), *two = make_subject_in(mgr2, hub2, team);
    struct sse *s = sse_open(&b, mgr2, -1);

    /* off the first hub: its next post does not reach the stream, the second hub's does */
    snprintf(body, sizeof(body), "{\"hub_ids\":[\"%s\"]}", hub2);
    itest_call(&a, w.admin, "PATCH", path, body, &r);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    https_response_clear(&r);
    char *hidden = post(&a, one, "Hub one, after the manager left it", NULL);
    char *seen = post(&a, two, "Hub two", NULL);
    struct sse_event ev;
    ck_assert_msg(sse_next(s, &ev, 3000), "the stream stopped after the change");
    ck_assert_msg(strstr(ev.data, hidden) == NULL, "a hub the manager left still streamed");
    ck_assert_msg(strstr(ev.data, seen) != NULL, "unexpected %s %s", ev.type, ev.data);
    free(ev.data);

    /* signed out: the stream ends now, not at the next heartbeat, and gets nothing more */
    itest_call(&a, mgr2, "DELETE", "/v1/sessions/current", NULL, &r);
    ck_assert_int_eq(r.status, 204);
    https_response_clear(&r);
    char *after = post(&a, two, "After sign-out", NULL);
    ck_assert_msg(!sse_next(s, &ev, 3000), "a signed-out session received %s", ev.data);
    ck_assert_msg(sse_wait_end(s, 100), "a signed-out session's stream stayed open");
    sse_close(s);
    free(after);
    free(seen);
    free(hidden);
    free(one);
    free(two);
    free(mgr2);
    free(uid);
    free(hub2);
}
END_TEST

/* The end of a stream must reach the client: a stream that the server ends (sign-out here,
 * shutdown too) sends its last chunk and the connection stays usable. libevent's deferred
 * write callback once finished the reply before "0\r\n\r\n" went out, when a heartbeat had
 * just been written: the client waited for ever. Many streams, heartbeats every second and
 * a sign-out between them make that moment likely. */
START_TEST(streams_ended_by_the_server_end_for_the_client)
{
    enum { N = 24 };
    struct itest_server c;
    itest_server_start(&c, "stream_heartbeat = 1\n");
    char *uid = NULL;
    char *token = itest_new_user(&c, w.admin, w.health, "practitioner", NULL, &uid);
    struct sse *s[N];
    for (int i = 0; i < N; i++)
        s[i] = sse_open(&c, token, -1);
    ck_assert(itest_wait_subscribers(&c, N, 5000));
    itest_sleep_ms(1500); /* heartbeats under way */
    struct https_response r = {0};
    itest_call(&c, token, "DELETE", "/v1/sessions/current", NULL, &r);
    ck_assert_int_eq(r.status, 204);
    https_response_clear(&r);
    for (int i = 0; i < N; i++) {
        ck_assert_msg(sse_wait_end(s[i], 5000),
                      "stream %d of %d: the server ended it, the client never saw the end", i + 1,
                      N);
        /* a clean end: the same connection answers the next request */
        char *cause = NULL;
        ck_assert_msg(https_request(s[i]->c, "GET", "/healthz", NULL, NULL, 0, &r, &cause) == 0,
                      "stream %d: connection not reusable after the end: %s", i + 1, cause);
        ck_assert_int_eq(r.status, 200);
        https_response_clear(&r);
        sse_close(s[i]);
    }
    ck_assert(itest_wait_subscribers(&c, 0, 5000));
    free(uid);
    free(token);
    itest_server_stop(&c, SIGTERM, 15);
}
END_TEST

struct racer {
    const struct itest_server *s;
    const char *body, *key;
    struct https_response r;
};

static void *race_post(void *p)
{
    struct racer *x = p;
    char auth[256], idem[256];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", w.officer);
    snprintf(idem, sizeof(idem), "Idempotency-Key: %s", x->key);
    const char *h[] = {auth, "Content-Type: application/json", idem, NULL};
    itest_request(x->s, "POST", "/v1/intelligence", h, x->body, &x->r);
    return NULL;
}

START_TEST(idempotency_across_two_instances)
{
    char *subject = make_subject(team2());
    char body[1024];
    snprintf(body, sizeof(body),
             "{\"subject_id\":\"%s\",\"category\":\"charge\",\"summary\":\"Charged\","
             "\"occurred_at\":\"2026-01-05T09:00:00Z\",\"risk_level\":\"high\",\"gravity\":4,"
             "\"grading\":{\"source\":1,\"assessment\":\"A\",\"handling\":\"P\"}}",
             subject);
    const char *key = itest_unique("race-");
    struct racer x[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) { /* the same retry, at once, on both instances */
        x[i] = (struct racer){.s = i % 2 ? &b : &a, .body = body, .key = key};
        pthread_create(&t[i], NULL, race_post, &x[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 4; i++) {
        ck_assert_msg(x[i].r.status == 201, "%d %s", x[i].r.status, x[i].r.body);
        ck_assert_str_eq(x[i].r.body, x[0].r.body); /* all answered with the one item */
    }
    for (int i = 0; i < 4; i++)
        https_response_clear(&x[i].r);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) || '/' || (SELECT count(*) FROM events e JOIN intelligence i ON "
             "i.id = e.record_id WHERE i.idempotency_key = '%s') FROM intelligence WHERE "
             "idempotency_key = '%s'",
             key, key);
    char *n = itest_sql_value(sql);
    ck_assert_str_eq(n, "1/1"); /* one item, one event */
    free(n);
    free(subject);
}
END_TEST

/* Meeting events reach the hub's managers and the invited agencies only, each showing just
 * the young people that reader may see. */
START_TEST(meeting_events_per_reader)
{
    char team[128], body[1024], path[256];
    snprintf(team, sizeof(team), "[\"%s\"]", w.police);
    char *pa = make_subject(team);
    snprintf(team, sizeof(team), "[\"%s\"]", w.health);
    char *hb = make_subject(team);
    struct sse *nurse = sse_open(&a, w.nurse, -1), *officer = sse_open(&b, w.officer, -1);
    struct sse *mgr = sse_open(&b, w.mgr, -1);
    snprintf(body, sizeof(body),
             "{\"hub_id\":\"%s\",\"title\":\"Stream RAISE\",\"scheduled_for\":"
             "\"2026-12-02T10:00:00Z\",\"subject_ids\":[\"%s\",\"%s\"],"
             "\"invited_agencies\":[\"%s\"]}",
             w.hub, pa, hb, w.health);
    struct https_response r = {0};
    itest_call(&a, w.mgr, "POST", "/v1/meetings", body, &r);
    ck_assert_msg(r.status == 201, "%d %s", r.status, r.body);
    json_object *o = itest_json(&r);
    char *m = strdup(itest_jstr(o, "id"));
    json_object_put(o);
    https_response_clear(&r);
    struct sse_event ev;
    ck_assert_msg(sse_next(nurse, &ev, 3000), "no meeting event for the invited agency");
    ck_assert_str_eq(ev.type, "meeting.scheduled");
    ck_assert(strstr(ev.data, m) != NULL);
    ck_assert_msg(strstr(ev.data, hb) != NULL && strstr(ev.data, pa) == NULL, "%s", ev.data);
    ck_assert(strstr(ev.data, "_team") == NULL);
    long long sched = ev.id;
    free(ev.data);
    ck_assert_msg(sse_next(mgr, &ev, 3000), "no meeting event for the hub manager");
    ck_assert(strstr(ev.data, hb) != NULL && strstr(ev.data, pa) != NULL);
    free(ev.data);
    /* the delivery is audited under each young person the reader was shown, and no other */
    static const struct {
        const char *role, *want;
    } shown[] = {{"practitioner", "h"}, {"hub_manager", "hp"}};
    for (size_t i = 0; i < sizeof(shown) / sizeof(shown[0]); i++) {
        char sql[1024], *n = NULL;
        snprintf(sql, sizeof(sql),
                 "SELECT coalesce(string_agg(x, '' ORDER BY x), 'none') FROM (SELECT DISTINCT "
                 "CASE subject_id WHEN '%s' THEN 'p' WHEN '%s' THEN 'h' ELSE '?' END x FROM "
                 "audit_log WHERE action = 'stream.deliver' AND role = '%s' AND ',' || "
                 "record_id || ',' LIKE '%%,%lld,%%') t",
                 pa, hb, shown[i].role, sched);
        for (int k = 0; k < 40; k++) { /* flushed about every second */
            free(n);
            n = itest_sql_value(sql);
            if (n && strcmp(n, shown[i].want) == 0)
                break;
            itest_sleep_ms(100);
        }
        ck_assert_msg(n && strcmp(n, shown[i].want) == 0, "%s: %s", shown[i].role, n);
        free(n);
    }
    snprintf(path, sizeof(path), "/v1/meetings/%s/start", m);
    itest_call(&b, w.mgr, "POST", path, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    https_response_clear(&r);
    ck_assert(sse_next(nurse, &ev, 3000));
    ck_assert_str_eq(ev.type, "meeting.started");
    free(ev.data);
    /* the police were not invited: nothing about the meeting */
    ck_assert_msg(!sse_next(officer, &ev, 1000), "not invited, received %s", ev.data);
    sse_close(nurse);
    sse_close(officer);
    sse_close(mgr);
    free(m);
    free(pa);
    free(hb);
}
END_TEST

/* A meeting of the hub, on server s, about n young people; its path in path. */
static void meeting_about(const struct itest_server *s, char **people, int n, char *path,
                          size_t cap)
{
    json_object *m = json_object_new_object(), *ids = json_object_new_array();
    json_object *inv = json_object_new_array();
    for (int i = 0; i < n; i++)
        json_object_array_add(ids, json_object_new_string(people[i]));
    json_object_array_add(inv, json_object_new_string(w.health));
    json_object_object_add(m, "hub_id", json_object_new_string(w.hub));
    json_object_object_add(m, "title", json_object_new_string("Long minutes"));
    json_object_object_add(m, "scheduled_for", json_object_new_string("2026-12-02T10:00:00Z"));
    json_object_object_add(m, "subject_ids", ids);
    json_object_object_add(m, "invited_agencies", inv);
    struct https_response r = {0};
    itest_call(s, w.mgr, "POST", "/v1/meetings", json_object_to_json_string(m), &r);
    ck_assert_msg(r.status == 201, "%d %s", r.status, r.body);
    json_object *o = itest_json(&r);
    snprintf(path, cap, "/v1/meetings/%s", itest_jstr(o, "id"));
    json_object_put(o);
    json_object_put(m);
    https_response_clear(&r);
}

/* Minutes of 4 x 20,000 characters for each of the n young people (the most one may have),
 * five young people a PATCH (a PATCH's body is at most 512 KiB; minutes merge per young
 * person). */
static void write_long_minutes(const struct itest_server *s, const char *path, char **people, int n)
{
    enum { FIELD = 20000, PER_PATCH = 5 };
    static const char *fields[] = {"worried_about", "working_well", "needs_to_happen", "decisions"};
    char *text = malloc(FIELD + 1);
    for (int i = 0; i < FIELD; i++)
        text[i] = (char)('a' + i % 23);
    text[FIELD] = '\0';
    for (int from = 0; from < n; from += PER_PATCH) {
        json_object *patch = json_object_new_object(), *minutes = json_object_new_array();
        for (int i = from; i < n && i < from + PER_PATCH; i++) {
            json_object *m = json_object_new_object();
            json_object_object_add(m, "subject_id", json_object_new_string(people[i]));
            for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++)
                json_object_object_add(m, fields[f], json_object_new_string(text));
            json_object_array_add(minutes, m);
        }
        json_object_object_add(patch, "minutes", minutes);
        struct https_response r = {0};
        itest_call(s, w.mgr, "PATCH", path, json_object_to_json_string(patch), &r);
        ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
        https_response_clear(&r);
        json_object_put(patch);
    }
    free(text);
}

/* n young people on the stream team, and a meeting of the hub about them (its path). */
static void people_and_meeting(char **people, int n, char *path, size_t cap)
{
    for (int i = 0; i < n; i++)
        people[i] = make_subject(team2());
    meeting_about(&a, people, n, path, cap);
}

static void free_people(char **people, int n)
{
    for (int i = 0; i < n; i++)
        free(people[i]);
}

/* Was a subscriber of s cut off (raise_stream_dropped_total 1) within ms? */
static int cut_off_within(const struct itest_server *s, int ms)
{
    for (int waited = 0; waited < ms; waited += 100) {
        itest_sleep_ms(100);
        if (itest_metric(s, "raise_stream_dropped_total") == 1)
            return 1;
    }
    return 0;
}

/* A meeting event is rendered once per view (which of its young people a reader sees) on
 * each worker, not once per reader: readers of one view get the same text. Rendered per
 * reader, a meeting with long minutes held the worker's loop for tens of milliseconds a
 * reader, and each reader's buffer a copy of its own. */
START_TEST(a_meeting_event_is_rendered_once_per_view)
{
    enum { NURSES = 4, MANAGERS = 2, WORKERS = 2 };
    char team[128];
    snprintf(team, sizeof(team), "[\"%s\"]", w.police);
    char *pa = make_subject(team);
    snprintf(team, sizeof(team), "[\"%s\"]", w.health);
    char *hb = make_subject(team);
    struct sse *readers[NURSES + MANAGERS];
    for (int i = 0; i < NURSES + MANAGERS; i++)
        readers[i] = sse_open(&a, i < NURSES ? w.nurse : w.mgr, -1);
    long before = itest_metric(&a, "raise_stream_meeting_renders_total");
    char *people[] = {pa, hb}, path[128];
    meeting_about(&a, people, 2, path, sizeof(path));
    char *first[2] = {NULL, NULL}; /* the nurses' text, the managers' */
    for (int i = 0; i < NURSES + MANAGERS; i++) {
        struct sse_event ev;
        ck_assert_msg(sse_next(readers[i], &ev, 3000), "reader %d: no meeting event", i);
        ck_assert_str_eq(ev.type, "meeting.scheduled");
        int mgr = i >= NURSES;
        ck_assert_msg(strstr(ev.data, hb) != NULL && (strstr(ev.data, pa) != NULL) == mgr,
                      "reader %d: %s", i, ev.data);
        if (first[mgr] == NULL)
            first[mgr] = ev.data;
        else {
            ck_assert_str_eq(ev.data, first[mgr]);
            free(ev.data);
        }
        sse_close(readers[i]);
    }
    long renders = itest_metric(&a, "raise_stream_meeting_renders_total") - before;
    ck_assert_msg(renders >= 2 && renders <= 2 * WORKERS, "%ld renders for 2 views and %d readers",
                  renders, NURSES + MANAGERS);
    free(first[0]);
    free(first[1]);
    free(pa);
    free(hb);
}
END_TEST

/* A meeting's minutes can make one event bigger than a subscriber's whole unsent-bytes bound
 * (LIMIT_SSE_BUFFER): it still goes out, alone into an empty buffer, and what follows it too.
 * Held back until it fitted, it never would have, and the stream would have had nothing more
 * but heartbeats. */
START_TEST(an_event_bigger_than_the_buffer_arrives)
{
    enum { PEOPLE = 4 };
    char *people[PEOPLE], path[128];
    for (int i = 0; i < PEOPLE; i++)
        people[i] = make_subject(team2());
    struct sse *nurse = sse_open(&a, w.nurse, -1);
    meeting_about(&a, people, PEOPLE, path, sizeof(path));
    struct sse_event ev;
    ck_assert(sse_next(nurse, &ev, 3000));
    ck_assert_str_eq(ev.type, "meeting.scheduled");
    free(ev.data);

    write_long_minutes(&a, path, people, PEOPLE);
    ck_assert_msg(sse_next(nurse, &ev, 5000), "the big meeting.updated never came");
    ck_assert_str_eq(ev.type, "meeting.updated");
    ck_assert_msg(strlen(ev.data) > LIMIT_SSE_BUFFER, "only %zu bytes", strlen(ev.data));
    free(ev.data);

    char *item = post(&a, people[0], "After the long minutes", NULL);
    ck_assert_msg(sse_next(nurse, &ev, 5000), "nothing came after the big event");
    ck_assert(strstr(ev.data, item) != NULL);
    free(ev.data);
    free(item);
    sse_close(nurse);
    for (int i = 0; i < PEOPLE; i++)
        free(people[i]);
}
END_TEST

/* The cut-off counts what a paused reader reads, not only the time: a reader slower than
 * the buffer drains in one stall_timeout, but reading, gets a big event and what comes after
 * it; one that stops reading is cut off. (With the time alone, the slow reader was cut off
 * at the big event, resumed before it and was cut off again, for ever.) */
START_TEST(a_slow_reader_that_keeps_reading_is_not_cut_off)
{
    enum { PEOPLE = 10 }; /* an event of ~800 KB */
    struct itest_server c;
    itest_server_start(&c, "stream_stall_timeout = 2000\n");
    char *people[PEOPLE], path[128];
    people_and_meeting(people, PEOPLE, path, sizeof(path));
    /* the events are written first and replayed (Last-Event-ID), so that the reader reads
     * from the moment they are sent */
    char *before = itest_sql_value("SELECT max(id) FROM events");
    write_long_minutes(&a, path, people, PEOPLE);
    char *item = post(&a, people[0], "After the long minutes", NULL);
    struct sse *slow = sse_open(&c, w.nurse, atoll(before));
    struct sse *stopped = sse_open(&c, w.nurse, atoll(before));
    free(before);
    /* about 8 KiB every 50 ms: 160 KB/s, some seconds for the two meeting.updated events
     * (five young people's minutes, then ten: ~400 KB and ~800 KB) and the item */
    struct sse_event ev;
    int updates = 0, done = 0;
    size_t biggest = 0;
    for (int i = 0; i < 1200 && !done; i++) {
        ck_assert_msg(sse_read_some(slow, 8192, 1000) >= 0, "the slow reader was cut off");
        while (!done && sse_next(slow, &ev, 0)) {
            if (strcmp(ev.type, "meeting.updated") == 0) {
                updates++;
                biggest = strlen(ev.data) > biggest ? strlen(ev.data) : biggest;
            } else if (strstr(ev.data, item) != NULL) {
                ck_assert_int_eq(updates, 2);
                done = 1;
            }
            free(ev.data);
        }
        itest_sleep_ms(50);
    }
    ck_assert_msg(done, "the slow reader got %d updates and not the item", updates);
    ck_assert_msg(biggest > 3 * LIMIT_SSE_BUFFER, "only %zu bytes", biggest);
    /* the reader that stopped was cut off, and only it */
    ck_assert_int_eq(itest_metric(&c, "raise_stream_dropped_total"), 1);
    ck_assert(itest_file_contains(c.log, "too slow, disconnected"));
    ck_assert_int_eq(itest_metric(&c, "raise_stream_subscribers"), 1);
    sse_close(stopped);
    sse_close(slow);
    free(item);
    free_people(people, PEOPLE);
    ck_assert_int_eq(itest_server_stop(&c, SIGTERM, 15), 0);
}
END_TEST

/* A reader that stops with a few KiB unsent and a big event next is under half the bound,
 * so the poll lets it go on, and the fan-out stops it again at the big event, at every
 * poll. The time it has been stopped must still count: it was counted from each new stop,
 * so such a reader was never cut off (and its stream fetched again every 250 ms). */
START_TEST(a_reader_stopped_behind_a_big_event_is_cut_off)
{
    enum { PEOPLE = 4 };
    struct itest_server c;
    itest_server_start(&c, "stream_stall_timeout = 1000\n");
    char *people[PEOPLE], path[128];
    people_and_meeting(people, PEOPLE, path, sizeof(path));
    struct sse *s = sse_open(&c, w.nurse, -1); /* never reads */
    ck_assert(itest_wait_subscribers(&c, 1, 5000));
    /* small items, one at a time, until a write finds its socket full: a few KiB unsent */
    long blocked = itest_metric(&c, "raise_stream_writes_blocked_total");
    char detail[9001];
    memset(detail, 'z', 9000);
    detail[9000] = '\0';
    struct poster p;
    poster_open(&p);
    int n = 0;
    while (n < 500 && itest_metric(&c, "raise_stream_writes_blocked_total") == blocked) {
        post_on(&p, people[0], "small", n++, detail);
        itest_sleep_ms(20);
    }
    https_close(p.c);
    ck_assert_msg(itest_metric(&c, "raise_stream_writes_blocked_total") > blocked,
                  "the socket never filled after %d posts", n);
    ck_assert_int_eq(itest_metric(&c, "raise_stream_dropped_total"), 0);
    write_long_minutes(&a, path, people, PEOPLE); /* one event bigger than the bound */
    ck_assert_msg(cut_off_within(&c, 5000),       /* stall_timeout is 1 s */
                  "a reader stopped behind a big event was never cut off");
    ck_assert_int_eq(itest_metric(&c, "raise_stream_subscribers"), 0);
    sse_close(s);
    free_people(people, PEOPLE);
    ck_assert_int_eq(itest_server_stop(&c, SIGTERM, 15), 0);
}
END_TEST

/* An event bigger than the bound goes out alone; a reader that stops in the middle of it
 * stalls from then, with no later event or heartbeat needed to pause it (it was cut off
 * only after the next heartbeat, 15 s by default, and then the timeout). */
START_TEST(a_reader_that_stops_during_a_big_event_is_cut_off)
{
    enum { PEOPLE = 10 };
    struct itest_server c;
    itest_server_start(&c, "stream_stall_timeout = 1000\n");
    char *people[PEOPLE], path[128], sql[256];
    people_and_meeting(people, PEOPLE, path, sizeof(path));
    write_long_minutes(&a, path, people, PEOPLE); /* two events: ~400 KB, then ~800 KB */
    /* the reader starts after the first, so the ~800 KB one is its first and last event */
    snprintf(sql, sizeof(sql),
             "SELECT id FROM events WHERE type = 'meeting.updated' AND record_id = '%s' "
             "ORDER BY id DESC OFFSET 1 LIMIT 1",
             path + strlen("/v1/meetings/"));
    char *first = itest_sql_value(sql);
    struct sse *s = sse_open(&c, w.nurse, atoll(first)); /* never reads */
    free(first);
    ck_assert_msg(cut_off_within(&c, 5000), /* stall_timeout is 1 s; heartbeat 15 s */
                  "a reader that stopped during a big event was not cut off in 5 s");
    sse_close(s);
    free_people(people, PEOPLE);
    ck_assert_int_eq(itest_server_stop(&c, SIGTERM, 15), 0);
}
END_TEST

/* Event ids have no gaps, so a stream fetches the next ids by name. Were there a gap all the
 * same (ids skipped by hand here; an event removed by hand would do it), the stream must
 * not stall before it: what comes after still arrives. The gap is filled again after, with
 * events nobody may see, so the ids stay gap-free for the other tests. */
START_TEST(a_gap_in_event_ids_does_not_stall_the_stream)
{
    char *subject = make_subject(team2());
    struct sse *s = sse_open(&a, w.nurse, -1);
    struct sse_event ev;
    char *before = post(&a, subject, "Before the gap", NULL);
    ck_assert_msg(sse_next(s, &ev, 5000), "the first post never came");
    ck_assert_ptr_nonnull(strstr(ev.data, before));
    free(ev.data);
    char *head = itest_sql_value("SELECT id FROM event_head");
    ck_assert_int_eq(itest_sql("BEGIN; SELECT pg_advisory_xact_lock(hashtext("
                               "'raise_sequence_events')); UPDATE event_head SET id = id + 300; "
                               "COMMIT;"),
                     0);
    char *after = post(&a, subject, "After the gap", NULL);
    ck_assert_msg(sse_next(s, &ev, 5000), "the stream stalled before the gap");
    ck_assert_ptr_nonnull(strstr(ev.data, after));
    ck_assert_int_gt(ev.id, atoll(head) + 300);
    free(ev.data);
    ck_assert(itest_file_contains(a.log, "scanning past a gap"));
    sse_close(s);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "INSERT INTO events (id, type, record_id) SELECT g, 'subject.updated', "
             "gen_random_uuid() FROM generate_series(%lld, %lld) g",
             atoll(head) + 1, atoll(head) + 300);
    ck_assert_int_eq(itest_sql(sql), 0);
    free(head);
    free(before);
    free(after);
    free(subject);
}
END_TEST

/* ---- the sequencer (sql/007): requests queue, one run at a time numbers and chains */

/* Many posts at once on both instances: a stream gets every one, once, in strictly
 * increasing id order, and the event ids have no gap (each run follows the last). */
START_TEST(concurrent_posts_reach_the_stream_in_order)
{
    enum { N = 24 };
    char *subject = make_subject(team2());
    struct sse *s = sse_open(&a, w.nurse, -1);
    char body[1024], keys[N][96];
    snprintf(body, sizeof(body),
             "{\"subject_id\":\"%s\",\"category\":\"risky_associate\",\"summary\":\"At once\","
             "\"occurred_at\":\"2026-01-05T09:00:00Z\",\"risk_level\":\"high\","
             "\"grading\":{\"source\":1,\"assessment\":\"A\",\"handling\":\"P\"}}",
             subject);
    struct racer x[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof(keys[i]), "%s", itest_unique("at-once-"));
        x[i] = (struct racer){.s = i % 2 ? &b : &a, .body = body, .key = keys[i]};
        pthread_create(&t[i], NULL, race_post, &x[i]);
    }
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    char *ids[N];
    int seen[N] = {0};
    for (int i = 0; i < N; i++) {
        ck_assert_msg(x[i].r.status == 201, "%d %s", x[i].r.status, x[i].r.body);
        json_object *o = itest_json(&x[i].r);
        ids[i] = strdup(itest_jstr(o, "id"));
        json_object_put(o);
        https_response_clear(&x[i].r);
    }
    struct sse_event ev;
    long long prev = 0;
    for (int got = 0; got < N; got++) {
        ck_assert_msg(sse_next(s, &ev, 5000), "only %d of %d posts reached the stream", got, N);
        ck_assert_int_gt(ev.id, prev);
        prev = ev.id;
        int which = -1;
        for (int i = 0; i < N && which < 0; i++)
            if (strstr(ev.data, ids[i]) != NULL)
                which = i;
        ck_assert_msg(which >= 0 && !seen[which], "unexpected or repeated event: %s", ev.data);
        seen[which] = 1;
        free(ev.data);
    }
    ck_assert(!sse_next(s, &ev, 300));
    sse_close(s);
    char *gapless = itest_sql_value("SELECT count(*) = max(id) AND min(id) = 1 FROM events");
    ck_assert_str_eq(gapless, "t");
    free(gapless);
    for (int i = 0; i < N; i++)
        free(ids[i]);
    free(subject);
}
END_TEST

/* A process that stopped between its commit and its sequencer run leaves queued rows with
 * no one kicked: a running server's once-a-second run picks them up, the event reaches the
 * stream, and the audit row joins the chain. */
START_TEST(rows_left_queued_are_sequenced)
{
    char *subject = make_subject(team2());
    char sql[1024];
    /* nothing else happens meanwhile (no request, and no stream has been open, see
     * stream_suite): only the sequencer's timer runs */
    snprintf(sql, sizeof(sql),
             "INSERT INTO audit_queue (action, route, record_type, record_id, subject_id) "
             "VALUES ('test.left_behind', 'TEST', 'subject', '%s', '%s');",
             subject, subject);
    ck_assert_int_eq(itest_sql(sql), 0);
    snprintf(sql, sizeof(sql),
             "SELECT (SELECT count(*) FROM audit_queue) || '/' || count(*) FROM audit_log "
             "WHERE action = 'test.left_behind' AND record_id = '%s'",
             subject);
    char *n = itest_sql_value(sql); /* waits up to 5 s for the queues to empty */
    ck_assert_str_eq(n, "0/1");
    free(n);
    struct https_response r = {0};
    itest_call(&a, w.admin, "GET", "/v1/audit/verify", NULL, &r);
    ck_assert_msg(r.status == 200 && strstr(r.body, "\"ok\":true") != NULL, "%d %s", r.status,
                  r.body);
    https_response_clear(&r);
    /* and an event, to an open stream */
    struct sse *s = sse_open(&b, w.nurse, -1);
    snprintf(sql, sizeof(sql),
             "INSERT INTO event_queue (type, subject_id, hub_id, record_id) VALUES "
             "('subject.updated', '%s', '%s', '%s');",
             subject, w.hub, subject);
    ck_assert_int_eq(itest_sql(sql), 0);
    struct sse_event ev;
    ck_assert_msg(sse_next(s, &ev, 3000), "the queued event was not sequenced");
    ck_assert_str_eq(ev.type, "subject.updated");
    ck_assert_msg(strstr(ev.data, subject) != NULL, "%s", ev.data);
    free(ev.data);
    sse_close(s);
    free(subject);
}
END_TEST

/* The queues have their tables' columns and CHECKs: a row that was queued can always be
 * moved (one the table refused would stop the sequencer for everyone). A migration that
 * changes a CHECK on events or audit_log must change the queue's as well. Columns the
 * table's own trigger sets (skip), and their CHECKs, are the table's alone. */
/* clang-format off */
static const char queue_shape_sql[] =
    "WITH sides(pair, rel, skip) AS (VALUES "
    "  (1, 'events'::regclass, '{id}'::name[]), (1, 'event_queue', '{qid}'), "
    "  (2, 'audit_log', '{seq,prev_hash,hash,canon}'), (2, 'audit_queue', '{qid}')), "
    "shape AS (SELECT pair, "
    "  (SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod) || ' ' || "
    "     attnotnull, ', ' ORDER BY attname) FROM pg_attribute WHERE attrelid = rel "
    "     AND attnum > 0 AND NOT attisdropped AND attname <> ALL (skip)) || ' | ' || "
    "  coalesce((SELECT string_agg(pg_get_constraintdef(oid), '; ' "
    "     ORDER BY pg_get_constraintdef(oid)) FROM pg_constraint "
    "     WHERE conrelid = rel AND contype = 'c' AND NOT EXISTS (SELECT 1 FROM pg_attribute ca "
    "     WHERE ca.attrelid = rel AND ca.attnum = ANY (conkey) AND ca.attname = ANY (skip))), "
    "  '') AS s FROM sides) "
    "SELECT bool_and(n = 1) FROM (SELECT count(DISTINCT s) AS n FROM shape GROUP BY pair) x";
/* clang-format on */

START_TEST(queues_mirror_their_tables)
{
    char *same = itest_sql_value(queue_shape_sql);
    ck_assert_ptr_nonnull(same);
    ck_assert_str_eq(same, "t");
    free(same);
}
END_TEST

/* sql/012: an audit-lane run that finds nothing takes no transaction id (and so writes no
 * commit record and flushes no WAL), also on a connection that has chained rows before (its
 * tail setting then reads '' in later transactions; review found the run took an id there).
 * The queue is locked against new rows while the run is watched; if rows were queued
 * already, the run was not empty and the check is tried again. */
static const char empty_audit_run_sql[] =
    "\\o /dev/null\n"
    "SET raise.audit_tail = '';\n"
    "BEGIN;\n"
    "LOCK TABLE audit_queue IN EXCLUSIVE MODE;\n"
    "SELECT count(*) AS queued FROM audit_queue \\gset\n"
    "SELECT raise_sequence_audit();\n"
    "\\o\n"
    "SELECT :queued || '/' || coalesce(pg_current_xact_id_if_assigned()::text, 'none');\n"
    "COMMIT;\n";

START_TEST(an_empty_audit_run_takes_no_transaction_id)
{
    char *got = NULL;
    for (int i = 0; i < 50 && (got == NULL || strncmp(got, "0/", 2) != 0); i++) {
        free(got);
        got = itest_sql_value(empty_audit_run_sql);
        ck_assert_ptr_nonnull(got);
    }
    ck_assert_str_eq(got, "0/none");
    free(got);
}
END_TEST

/* sql/010: the sequencer's moving statements take no variable, so PostgreSQL plans each once
 * per connection. With a variable, its plan cache chose a fresh plan for every run once
 * the queue's statistics changed after its first five runs (here: five on an empty queue,
 * then a backlog and ANALYZE): 36 runs, 37 plans. Counted with pg_stat_statements, which
 * scripts/pgcluster loads; the server's own runs meanwhile add calls and plans of the same
 * kind, so the bound is loose. */
static const char plans_sql[] =
    "\\o /dev/null\n"
    "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;\n"
    "SET pg_stat_statements.track = 'all';\n"
    "SET pg_stat_statements.track_planning = on;\n"
    "SELECT pg_stat_statements_reset();\n"
    "SELECT raise_sequence_events() FROM generate_series(1, 6);\n"
    "INSERT INTO event_queue (type, record_id) SELECT "
    "'account.changed', gen_random_uuid() FROM generate_series(1, 2000);\n"
    "ANALYZE event_queue;\n"
    "SELECT raise_sequence_events() FROM generate_series(1, 30);\n"
    "\\o\n"
    "SELECT sum(calls) || ' ' || sum(plans) FROM pg_stat_statements "
    "WHERE query LIKE 'WITH q AS (DELETE FROM event_queue%';\n";

START_TEST(sequencer_plans_once)
{
    char *out = itest_sql_value(plans_sql);
    ck_assert_msg(out != NULL, "no answer (is pg_stat_statements loaded?)");
    long calls = 0, plans = 0;
    ck_assert_int_eq(sscanf(out, "%ld %ld", &calls, &plans), 2);
    ck_assert_msg(calls >= 36, "%ld calls", calls);
    ck_assert_msg(plans <= 12, "%ld plans for %ld calls", plans, calls);
    free(out);
    /* and the plan kept is one through the queues' keys, without JIT (sql/010) */
    out = itest_sql_value("SELECT string_agg(proname || ' ' || array_to_string(proconfig, ','), "
                          "'; ' ORDER BY proname) FROM pg_proc WHERE proname IN "
                          "('raise_sequence_events', 'raise_sequence_audit')");
    ck_assert_ptr_nonnull(out);
    ck_assert_str_eq(out, "raise_sequence_audit search_path=public,enable_seqscan=off,jit=off; "
                          "raise_sequence_events search_path=public,enable_seqscan=off,jit=off");
    free(out);
}
END_TEST

Suite *stream_suite(void)
{
    Suite *s = suite_create("stream");
    TCase *tc = tcase_create("stream");
    tcase_add_unchecked_fixture(tc, start, stop);
    tcase_set_timeout(tc, 120);
    /* first: no stream has been open yet, so nothing but the sequencer's own timer runs */
    tcase_add_test(tc, rows_left_queued_are_sequenced);
    tcase_add_test(tc, delivered_to_the_team_only_with_conditions);
    tcase_add_test(tc, resume_with_last_event_id_no_loss_no_duplicate);
    tcase_add_test(tc, a_fetched_batch_goes_out_in_one_write);
    tcase_add_test(tc, live_events_fetched_once_and_resumes_in_between);
    tcase_add_test(tc, many_streams_are_served_in_slices);
    tcase_add_test(tc, streams_go_on_when_the_listen_connection_is_lost);
    tcase_add_test(tc, a_stream_whose_socket_fills_gets_everything_after);
    tcase_add_test(tc, team_change_mid_stream);
    tcase_add_test(tc, bad_last_event_id_and_no_token);
    tcase_add_test(tc, slow_consumer_is_cut_off_and_can_resume);
    tcase_add_test(tc, sign_out_and_deactivation_end_open_streams);
    tcase_add_test(tc, heartbeat_check_keeps_every_live_stream);
    tcase_add_test(tc, heartbeats_reach_every_stream);
    tcase_add_test(tc, an_event_bigger_than_the_buffer_arrives);
    tcase_add_test(tc, a_slow_reader_that_keeps_reading_is_not_cut_off);
    tcase_add_test(tc, a_reader_stopped_behind_a_big_event_is_cut_off);
    tcase_add_test(tc, a_reader_that_stops_during_a_big_event_is_cut_off);
    tcase_add_test(tc, streams_ended_by_the_server_end_for_the_client);
    tcase_add_test(tc, idempotency_across_two_instances);
    tcase_add_test(tc, meeting_events_per_reader);
    tcase_add_test(tc, a_meeting_event_is_rendered_once_per_view);
    tcase_add_test(tc, concurrent_posts_reach_the_stream_in_order);
    tcase_add_test(tc, account_changes_reach_open_streams_at_once);
    tcase_add_test(tc, queues_mirror_their_tables);
    tcase_add_test(tc, an_empty_audit_run_takes_no_transaction_id);
    tcase_add_test(tc, sequencer_plans_once);
    tcase_add_test(tc, a_gap_in_event_ids_does_not_stall_the_stream);
    tcase_add_test(tc, event_ages_are_in_metrics);
    suite_add_tcase(s, tc);
    return s;
}
