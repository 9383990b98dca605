/* Foundation: the server over real TLS, its errors, limits, signals and database loss. */
#define _GNU_SOURCE
#include "harness.h"

#include <check.h>
#include <json-c/json.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static json_object *body_json(const struct https_response *r)
{
    json_object *o = json_tokener_parse(r->body);
    ck_assert_msg(o != NULL, "not JSON: %s", r->body);
    return o;
}

static const char *jstr(json_object *o, const char *key)
{
    json_object *v;
    ck_assert_msg(json_object_object_get_ex(o, key, &v), "no %s", key);
    return json_object_get_string(v);
}

/* Assert an RFC 9457 body with this status. */
static void assert_problem(const struct https_response *r, int status)
{
    ck_assert_int_eq(r->status, status);
    const char *ct = https_response_header(r, "Content-Type");
    ck_assert_msg(ct && strcmp(ct, "application/problem+json") == 0, "content type %s", ct);
    json_object *o = body_json(r), *v;
    ck_assert(strncmp(jstr(o, "type"), "urn:raise:problem:", 18) == 0);
    ck_assert(strlen(jstr(o, "title")) > 0);
    ck_assert(strlen(jstr(o, "detail")) > 0);
    ck_assert(json_object_object_get_ex(o, "status", &v));
    ck_assert_int_eq(json_object_get_int(v), status);
    json_object_put(o);
}

START_TEST(healthz_over_tls13)
{
    struct itest_server s;
    itest_server_start(&s, NULL);
    struct https_opts o = itest_opts(&s);
    char *cause = NULL;
    struct https_conn *c = https_connect(&o, &cause);
    ck_assert_msg(c != NULL, "%s", cause);
    ck_assert_str_eq(https_protocol(c), "TLSv1.3");
    struct https_response r = {0};
    ck_assert_int_eq(https_request(c, "GET", "/healthz", NULL, NULL, 0, &r, &cause), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(https_response_header(&r, "Content-Type"), "application/json; charset=utf-8");
    ck_assert_int_eq(strlen(https_response_header(&r, "X-Request-Id")), 32);
    ck_assert_str_eq(https_response_header(&r, "Strict-Transport-Security"), "max-age=31536000");
    ck_assert_str_eq(https_response_header(&r, "X-Content-Type-Options"), "nosniff");
    ck_assert_str_eq(https_response_header(&r, "Cache-Control"), "no-store");
    json_object *b = body_json(&r);
    ck_assert_str_eq(jstr(b, "status"), "ok");
    ck_assert_str_eq(jstr(b, "database"), "ok");
    json_object_put(b);
    https_response_clear(&r);
    /* keep-alive: a second request on the same connection */
    ck_assert_int_eq(https_request(c, "HEAD", "/healthz", NULL, NULL, 0, &r, &cause), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(r.body_len, 0);
    https_response_clear(&r);
    https_close(c);
    /* the connections name themselves in pg_stat_activity (docs/operations.md) */
    int named = 0;
    for (int waited = 0; !named && waited < 5000; waited += 100) {
        char *n = itest_sql_value("SELECT count(DISTINCT application_name) FROM pg_stat_activity "
                                  "WHERE application_name IN ('raised-w0', 'raised-events', "
                                  "'raised-audit')");
        named = n != NULL && strcmp(n, "3") == 0;
        free(n);
        if (!named)
            itest_sleep_ms(100);
    }
    ck_assert_msg(named, "raised-w0, raised-events and raised-audit are not all connected");
    ck_assert_int_eq(itest_server_stop(&s, SIGTERM, 15), 0);
}
END_TEST

/* The value of the metric line starting with name (its labels included), or -1. */
static long metric(const char *text, const char *name)
{
    for (const char *p = strstr(text, name); p != NULL; p = strstr(p + 1, name))
        if (p == text || p[-1] == '\n')
            return atol(p + strlen(name));
    return -1;
}

START_TEST(metrics_prometheus_text)
{
    struct itest_server s;
    struct https_response r = {0};
    itest_server_start(&s, NULL);
    itest_request(&s, "GET", "/healthz", NULL, NULL, &r);
    https_response_clear(&r);
    itest_request(&s, "GET", "/nowhere", NULL, NULL, &r);
    https_response_clear(&r);
    itest_request(&s, "GET", "/metrics", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert(strncmp(https_response_header(&r, "Content-Type"), "text/plain; version=0.0.4", 25) ==
              0);
    /* the harness waited for /healthz 200 before the test began: those count too */
    ck_assert_msg(metric(r.body, "raise_http_requests_total{route=\"/healthz\",status=\"200\"} ") >=
                      2,
                  "%s", r.body);
    ck_assert_msg(
        metric(r.body, "raise_http_requests_total{route=\"unmatched\",status=\"404\"} ") == 1, "%s",
        r.body);
    ck_assert_msg(metric(r.body, "raise_http_request_duration_seconds_bucket{le=\"+Inf\"} ") >= 3,
                  "%s", r.body);
    static const char *want[] = {
        "# TYPE raise_http_request_duration_seconds histogram\n",
        "raise_open_connections ",
        "raise_db_connections{state=\"idle\"} ",
        "raise_db_connections{state=\"busy\"} ",
        "raise_db_queued_queries ",
        "raise_db_errors_total 0\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        ck_assert_msg(strstr(r.body, want[i]) != NULL, "missing %s in\n%s", want[i], r.body);
    /* the server's own background queries (stream poll, overdue check) may be queued for a
     * moment when the page is read: the queue must drain, not be empty at one instant */
    for (int i = 0; i < 40 && metric(r.body, "raise_db_queued_queries ") != 0; i++) {
        https_response_clear(&r);
        usleep(50 * 1000);
        itest_request(&s, "GET", "/metrics", NULL, NULL, &r);
    }
    ck_assert_msg(metric(r.body, "raise_db_queued_queries ") == 0, "%s", r.body);
    https_response_clear(&r);
    ck_assert_int_eq(itest_server_stop(&s, SIGTERM, 15), 0);
}
END_TEST

START_TEST(metrics_can_be_turned_off)
{
    struct itest_server s;
    struct https_response r = {0};
    itest_server_start(&s, "metrics = off\n");
    itest_request(&s, "GET", "/metrics", NULL, NULL, &r);
    assert_problem(&r, 404);
    https_response_clear(&r);
    ck_assert_int_eq(itest_server_stop(&s, SIGTERM, 15), 0);
}
END_TEST

START_TEST(error_bodies)
{
    struct itest_server s;
    struct https_response r = {0};
    itest_server_start(&s, NULL);

    itest_request(&s, "GET", "/v1/no-such-thing", NULL, NULL, &r);
    assert_problem(&r, 404);
    https_response_clear(&r);

    itest_request(&s, "DELETE", "/healthz", NULL, NULL, &r);
    assert_problem(&r, 405);
    ck_assert_str_eq(https_response_header(&r, "Allow"), "GET, HEAD");
    https_response_clear(&r);

    static const char *json[] = {"Content-Type: application/json", NULL};
    itest_request(&s, "GET", "/healthz", json, "{\"a\":1}", &r);
    assert_problem(&r, 413); /* a body on a route that takes none */
    https_response_clear(&r);

    /* the server is still well after all that */
    itest_request(&s, "GET", "/healthz", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    https_response_clear(&r);
    ck_assert_int_eq(itest_server_stop(&s, SIGTERM, 15), 0);
}
END_TEST

START_TEST(oversized_requests_refused)
{
    struct itest_server s;
    struct https_response r = {0};
    itest_server_start(&s, "max_body_size = 2048\nmax_header_size = 2048\n");
    static const char *json[] = {"Content-Type: application/json", NULL};
    char *big = malloc(4096);
    memset(big, 'x', 4095);
    big[4095] = '\0';
    /* Past the global max_body_size libevent refuses before any route runs (413). */
    itest_request(&s, "GET", "/healthz", json, big, &r);
    ck_assert_int_eq(r.status, 413);
    https_response_clear(&r);

    char *hdr = NULL;
    ck_assert_int_ge(asprintf(&hdr, "X-Filler: %.3000s", big), 0);
    const char *h[] = {hdr, NULL};
    struct https_opts o = itest_opts(&s);
    char *cause = NULL;
    int rc = https_fetch(&o, "GET", "/healthz", h, NULL, 0, &r, &cause);
    ck_assert_msg(rc < 0 || (r.status >= 400 && r.status < 500), "oversized headers: %d", r.status);
    https_response_clear(&r);
    free(cause);
    free(hdr);
    free(big);

    itest_request(&s, "GET", "/healthz", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    https_response_clear(&r);
    ck_assert_int_eq(itest_server_stop(&s, SIGTERM, 15), 0);
}
END_TEST

START_TEST(tls11_refused)
{
    struct itest_server s;
    itest_server_start(&s, NULL);
    struct https_opts o = itest_opts(&s);
    o.min_version = TLS1_1_VERSION;
    o.max_version = TLS1_1_VERSION;
    char *cause = NULL;
    struct https_conn *c = https_connect(&o, &cause);
    ck_assert_ptr_null(c);
    /* the server's alert, not a client-side refusal to try */
    ck_assert_msg(strstr(cause, "protocol version") != NULL, "cause: %s", cause);
    free(cause);

    o.min_version = TLS1_2_VERSION;
    o.max_version = TLS1_2_VERSION;
    c = https_connect(&o, &cause);
    ck_assert_msg(c != NULL, "TLS 1.2 should work: %s", cause);
    ck_assert_str_eq(https_protocol(c), "TLSv1.2");
    https_close(c);
    ck_assert_int_eq(itest_server_stop(&s, SIGTERM, 15), 0);
}
END_TEST

START_TEST(sighup_reloads_certificate)
{
    struct itest_server s;
    itest_server_start(&s, NULL);
    struct https_opts o = itest_opts(&s);
    char *cause = NULL, before[65], after[65];
    struct https_conn *old = https_connect(&o, &cause);
    ck_assert_msg(old != NULL, "%s", cause);
    https_peer_fingerprint(old, before);

    ck_assert_int_eq(
        itest_sh("'%s/scripts/dev-certs' --renew-server '%s'", RAISE_SOURCE_DIR, itest.certs), 0);
    kill(s.pid, SIGHUP);
    int changed = 0;
    for (int i = 0; i < 100 && !changed; i++) {
        itest_sleep_ms(50);
        struct https_conn *c = https_connect(&o, &cause);
        ck_assert_msg(c != NULL, "%s", cause);
        https_peer_fingerprint(c, after);
        changed = strcmp(before, after) != 0;
        https_close(c);
    }
    ck_assert_msg(changed, "new connections still see the old certificate");
    ck_assert(itest_file_contains(s.log, "SIGHUP: reloaded certificate"));

    /* the connection opened before the reload was not dropped */
    struct https_response r = {0};
    ck_assert_int_eq(https_request(old, "GET", "/healthz", NULL, NULL, 0, &r, &cause), 0);
    ck_assert_int_eq(r.status, 200);
    https_response_clear(&r);
    https_close(old);
    ck_assert_int_eq(itest_server_stop(&s, SIGTERM, 15), 0);
}
END_TEST

START_TEST(sighup_with_broken_key_keeps_serving)
{
    struct itest_server s;
    char dir[PATH_MAX + 8];
    snprintf(dir, sizeof(dir), "%s/badcert-%d", itest.dir, getpid());
    ck_assert_int_eq(itest_sh("mkdir -p '%s' && cp '%s'/server.pem '%s'/server.key '%s'/", dir,
                              itest.certs, itest.certs, dir),
                     0);
    char extra[3 * PATH_MAX];
    snprintf(extra, sizeof(extra), "tls_cert = %s/server.pem\ntls_key = %s/server.key\n", dir, dir);
    itest_server_start(&s, extra);
    ck_assert_int_eq(itest_sh("echo garbage > '%s/server.key'", dir), 0);
    kill(s.pid, SIGHUP);
    itest_sleep_ms(300);
    struct https_response r = {0};
    itest_request(&s, "GET", "/healthz", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    https_response_clear(&r);
    ck_assert(itest_file_contains(s.log, "keeping the current certificate"));
    ck_assert_int_eq(itest_server_stop(&s, SIGTERM, 15), 0);
}
END_TEST

START_TEST(sigterm_is_graceful)
{
    struct itest_server s;
    itest_server_start(&s, NULL);
    struct https_opts o = itest_opts(&s);
    char *cause = NULL;
    struct https_conn *idle = https_connect(&o, &cause); /* an idle keep-alive client */
    ck_assert_ptr_nonnull(idle);
    ck_assert_int_eq(itest_server_stop(&s, SIGTERM, 15), 0);
    ck_assert_int_ne(access(s.port_file, F_OK), 0); /* port file removed */
    ck_assert(itest_file_contains(s.log, "stopped cleanly"));
    /* the server is gone: new connections are refused */
    o.timeout_ms = 2000;
    struct https_conn *c = https_connect(&o, &cause);
    ck_assert_ptr_null(c);
    free(cause);
    https_close(idle);
}
END_TEST

START_TEST(connection_limit_pauses_accept)
{
    struct itest_server s;
    itest_server_start(&s, "workers = 1\nmax_connections = 2\n");
    struct https_opts o = itest_opts(&s);
    char *cause = NULL;
    struct https_conn *a = https_connect(&o, &cause), *b = https_connect(&o, &cause);
    ck_assert(a != NULL && b != NULL);
    o.timeout_ms = 700;
    struct https_conn *c = https_connect(&o, &cause);
    ck_assert_msg(c == NULL, "a third connection was accepted past max_connections");
    free(cause);
    https_close(a);
    o.timeout_ms = 5000;
    c = NULL;
    for (int i = 0; i < 20 && c == NULL; i++) {
        c = https_connect(&o, &cause);
        if (c == NULL) {
            free(cause);
            itest_sleep_ms(100);
        }
    }
    ck_assert_msg(c != NULL, "accepting did not resume after a connection closed");
    https_close(b);
    https_close(c);
    ck_assert_int_eq(itest_server_stop(&s, SIGTERM, 15), 0);
}
END_TEST

START_TEST(idle_connections_time_out)
{
    struct itest_server s;
    itest_server_start(&s, "request_timeout = 1\n");
    struct https_opts o = itest_opts(&s);
    char *cause = NULL;
    struct https_conn *c = https_connect(&o, &cause);
    ck_assert_ptr_nonnull(c);
    itest_sleep_ms(2500);
    struct https_response r = {0};
    ck_assert_int_ne(https_request(c, "GET", "/healthz", NULL, NULL, 0, &r, &cause), 0);
    free(cause);
    https_close(c);
    ck_assert_int_eq(itest_server_stop(&s, SIGTERM, 15), 0);
}
END_TEST

static int wait_health(const struct itest_server *s, int want, int seconds)
{
    struct https_response r = {0};
    for (int i = 0; i < seconds * 10; i++) {
        itest_request(s, "GET", "/healthz", NULL, NULL, &r);
        int st = r.status;
        https_response_clear(&r);
        if (st == want)
            return 1;
        itest_sleep_ms(100);
    }
    return 0;
}

/* n requests that each need the database (an unknown bearer token is looked up): each must
 * get its 401, so every pool connection has prepared the lookup (and, after a restart, has
 * forgotten that it had: a new connection has no prepared statements). */
static void unknown_tokens_get_401(const struct itest_server *s, int n)
{
    for (int i = 0; i < n; i++) {
        struct https_response r = {0};
        itest_call(s, "not-a-token-at-all", "GET", "/v1/me", NULL, &r);
        /* each worker has its own pool: another worker's may still be in its reconnect
         * backoff (up to 5 s) after this one's /healthz said 200, and answers 503 meanwhile */
        for (int wait = 0; r.status == 503 && wait < 100; wait++) {
            https_response_clear(&r);
            itest_sleep_ms(100);
            itest_call(s, "not-a-token-at-all", "GET", "/v1/me", NULL, &r);
        }
        ck_assert_msg(r.status == 401, "request %d: %d %.*s", i, r.status, (int)r.body_len, r.body);
        https_response_clear(&r);
    }
}

START_TEST(database_restart_gives_503_then_recovers)
{
    struct itest_server s;
    itest_server_start(&s, NULL);
    ck_assert(wait_health(&s, 200, 5));
    unknown_tokens_get_401(&s, 16);
    ck_assert_int_eq(
        itest_sh("'%s/scripts/pgcluster' stop '%s' >/dev/null", RAISE_SOURCE_DIR, itest.pgdir), 0);
    ck_assert_msg(wait_health(&s, 503, 10), "healthz did not report the database down");
    struct https_response r = {0};
    itest_request(&s, "GET", "/healthz", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 503);
    ck_assert_str_eq(https_response_header(&r, "Retry-After"), "2");
    json_object *b = body_json(&r);
    ck_assert_str_eq(jstr(b, "database"), "unavailable");
    json_object_put(b);
    https_response_clear(&r);

    ck_assert_int_eq(
        itest_sh("'%s/scripts/pgcluster' start '%s' >/dev/null", RAISE_SOURCE_DIR, itest.pgdir), 0);
    ck_assert_msg(wait_health(&s, 200, 20), "the pool did not reconnect");
    ck_assert(itest_file_contains(s.log, "connection 0 lost"));
    unknown_tokens_get_401(&s, 16);
    ck_assert_int_eq(itest_server_stop(&s, SIGTERM, 15), 0);
}
END_TEST

START_TEST(bad_config_one_clear_line)
{
    char path[PATH_MAX + 32], out[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/bad-%d.conf", itest.dir, getpid());
    snprintf(out, sizeof(out), "%s/bad-%d.out", itest.dir, getpid());
    FILE *f = fopen(path, "w");
    fprintf(f, "listen = 127.0.0.1:0\nworkers = lots\n");
    fclose(f);
    ck_assert_int_eq(itest_sh("'%s' --config '%s' >'%s' 2>&1", RAISED_BIN, path, out), 2);
    ck_assert(itest_file_contains(out, "workers"));
    ck_assert_int_eq(itest_sh("test $(wc -l < '%s') -eq 1", out), 0);
    ck_assert_int_eq(itest_sh("RAISE_LOG_LEVEL=loud '%s' --version >/dev/null", RAISED_BIN), 0);
    ck_assert_int_eq(itest_sh("RAISE_LOG_LEVEL=loud '%s' migrate >'%s' 2>&1", RAISED_BIN, out), 2);
    ck_assert(itest_file_contains(out, "RAISE_LOG_LEVEL"));
    ck_assert_int_eq(itest_sh("'%s' --help | grep -q database_url", RAISED_BIN), 0);
    ck_assert_int_eq(itest_sh("'%s' --frobnicate 2>/dev/null", RAISED_BIN), 2);
}
END_TEST

START_TEST(schema_version_checked)
{
    char url[PATH_MAX + 128], out[PATH_MAX + 32];
    snprintf(out, sizeof(out), "%s/schema-%d.out", itest.dir, getpid());
    ck_assert_int_eq(itest_sql("DROP DATABASE IF EXISTS schema_test; CREATE DATABASE schema_test;"),
                     0);
    snprintf(url, sizeof(url), "host=%s/run port=%d dbname=schema_test user=postgres", itest.pgdir,
             itest.pg_port);
    /* not migrated: refuse to serve, say what to do */
    ck_assert_int_eq(itest_sh("RAISE_DATABASE_URL='%s' RAISE_TLS_CERT='%s/server.pem' "
                              "RAISE_TLS_KEY='%s/server.key' RAISE_LISTEN=127.0.0.1:0 '%s' >'%s' "
                              "2>&1",
                              url, itest.certs, itest.certs, RAISED_BIN, out),
                     1);
    ck_assert(itest_file_contains(out, "raised migrate"));
    /* migrate twice: the second applies nothing */
    ck_assert_int_eq(
        itest_sh("RAISE_DATABASE_URL='%s' '%s' migrate >'%s' 2>&1", url, RAISED_BIN, out), 0);
    ck_assert(itest_file_contains(out, "applied 001_accounts.sql"));
    ck_assert_int_eq(
        itest_sh("RAISE_DATABASE_URL='%s' '%s' migrate >'%s' 2>&1", url, RAISED_BIN, out), 0);
    ck_assert(itest_file_contains(out, "(0 applied)"));
    /* a schema newer than the binary: refuse */
    ck_assert_int_eq(itest_sh("psql -X -q 'host=%s/run port=%d dbname=schema_test user=postgres' "
                              "-c \"INSERT INTO schema_migrations VALUES (999, '999_future.sql')\"",
                              itest.pgdir, itest.pg_port),
                     0);
    ck_assert_int_eq(itest_sh("RAISE_DATABASE_URL='%s' RAISE_TLS_CERT='%s/server.pem' "
                              "RAISE_TLS_KEY='%s/server.key' RAISE_LISTEN=127.0.0.1:0 '%s' >'%s' "
                              "2>&1",
                              url, itest.certs, itest.certs, RAISED_BIN, out),
                     1);
    ck_assert(itest_file_contains(out, "newer than this raised"));
    itest_sql("DROP DATABASE schema_test;");
}
END_TEST

START_TEST(create_admin_once)
{
    char out[PATH_MAX + 32];
    snprintf(out, sizeof(out), "%s/admin-%d.out", itest.dir, getpid());
    ck_assert_int_eq(itest_sh("RAISE_DATABASE_URL='%s' '%s' create-admin --username first.admin "
                              "--agency-name 'Test Hub' >'%s' 2>&1",
                              itest.conninfo, RAISED_BIN, out),
                     0);
    ck_assert(itest_file_contains(out, "username: first.admin\npassword: "));
    char *n = itest_sql_value("SELECT count(*) FROM users u JOIN agencies a ON a.id = u.agency_id "
                              "WHERE u.username = 'first.admin' AND u.role = 'admin' AND "
                              "a.name = 'Test Hub' AND u.password_hash LIKE 'scrypt$%'");
    ck_assert_str_eq(n, "1");
    free(n);
    /* the same username again: refused, nothing written */
    ck_assert_int_eq(itest_sh("RAISE_DATABASE_URL='%s' '%s' create-admin --username first.admin "
                              "--agency-name 'Other' >'%s' 2>&1",
                              itest.conninfo, RAISED_BIN, out),
                     1);
    ck_assert(itest_file_contains(out, "already exists"));
    n = itest_sql_value("SELECT count(*) FROM agencies WHERE name = 'Other'");
    ck_assert_str_eq(n, "0");
    free(n);
    ck_assert_int_eq(itest_sh("RAISE_DATABASE_URL='%s' '%s' create-admin --username 'Bad Name' "
                              "--agency-name x >/dev/null 2>&1",
                              itest.conninfo, RAISED_BIN),
                     1);
}
END_TEST

Suite *foundation_suite(void)
{
    Suite *s = suite_create("foundation");
    TCase *tc = tcase_create("server");
    tcase_add_unchecked_fixture(tc, itest_ensure_db, NULL);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, healthz_over_tls13);
    tcase_add_test(tc, metrics_prometheus_text);
    tcase_add_test(tc, metrics_can_be_turned_off);
    tcase_add_test(tc, error_bodies);
    tcase_add_test(tc, oversized_requests_refused);
    tcase_add_test(tc, tls11_refused);
    tcase_add_test(tc, sighup_reloads_certificate);
    tcase_add_test(tc, sighup_with_broken_key_keeps_serving);
    tcase_add_test(tc, sigterm_is_graceful);
    tcase_add_test(tc, connection_limit_pauses_accept);
    tcase_add_test(tc, idle_connections_time_out);
    tcase_add_test(tc, bad_config_one_clear_line);
    tcase_add_test(tc, schema_version_checked);
    tcase_add_test(tc, create_admin_once);
    tcase_add_test(tc, database_restart_gives_503_then_recovers);
    suite_add_tcase(s, tc);
    return s;
}
