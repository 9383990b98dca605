/* The browser page's foundation: cookie sessions (the Set-Cookie attributes, the cookie as a
 * credential, CSRF on every state-changing request, sign-out clearing it, the live stream)
 * and the static files (headers, 404s, no way out of the embedded table). */
#define _GNU_SOURCE
#include "harness.h"

#include <check.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct itest_server a;

static const char csp[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
static const char cleared[] = "raise_session=; Path=/; HttpOnly; Secure; SameSite=Strict; "
                              "Max-Age=0";

/* A hub with one manager, signed in by bearer token (mgr) and known by name (mgr_name). */
static struct world {
    char *admin, *hub, *hub_agency, *police, *mgr, *mgr_name;
} w;

/* A cookie sign-in: the token (the cookie's value) and the CSRF token the page is told. */
struct cookie_session {
    char token[128], csrf[65];
    char cookie[160]; /* "Cookie: ..." header line */
};

static void start(void)
{
    itest_ensure_db();
    itest_sql("DELETE FROM login_failures WHERE key LIKE 'addr:%'");
    itest_server_start(&a, NULL);
    w.admin = itest_new_admin(&a);
    w.hub = itest_new_hub(&a, w.admin);
    w.hub_agency = itest_new_agency(&a, w.admin, "hub");
    w.police = itest_new_agency(&a, w.admin, "police");
    w.mgr = itest_new_user(&a, w.admin, w.hub_agency, "hub_manager", w.hub, NULL);
    struct https_response r = {0};
    itest_call(&a, w.mgr, "GET", "/v1/me", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    json_object *o = itest_json(&r);
    w.mgr_name = strdup(itest_jstr(o, "username"));
    json_object_put(o);
    https_response_clear(&r);
}

static void stop(void)
{
    itest_server_stop(&a, SIGTERM, 15);
    char **all[] = {&w.admin, &w.hub, &w.hub_agency, &w.police, &w.mgr, &w.mgr_name};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        free(*all[i]);
    memset(&w, 0, sizeof(w));
}

/* Sign in as the manager with "cookie": true; checks the reply and fills cs. */
static void cookie_sign_in(struct cookie_session *cs)
{
    char body[256];
    snprintf(body, sizeof(body),
             "{\"username\":\"%s\",\"password\":\"long enough secret\",\"cookie\":true}",
             w.mgr_name);
    struct https_response r = {0};
    itest_call(&a, NULL, "POST", "/v1/sessions", body, &r);
    ck_assert_msg(r.status == 201, "%d %s", r.status, r.body);
    json_object *o = itest_json(&r);
    snprintf(cs->token, sizeof(cs->token), "%s", itest_jstr(o, "token"));
    snprintf(cs->csrf, sizeof(cs->csrf), "%s", itest_jstr(o, "csrf_token"));
    snprintf(cs->cookie, sizeof(cs->cookie), "Cookie: raise_session=%s", cs->token);
    json_object_put(o);
    https_response_clear(&r);
}

/* A request with the cookie (and csrf as X-CSRF-Token unless NULL). */
static void cookie_call(const struct cookie_session *cs, const char *csrf, const char *method,
                        const char *path, const char *body, struct https_response *r)
{
    char x[128];
    const char *h[4] = {cs->cookie, NULL, NULL, NULL};
    int n = 1;
    if (csrf != NULL) {
        snprintf(x, sizeof(x), "X-CSRF-Token: %s", csrf);
        h[n++] = x;
    }
    if (body != NULL)
        h[n++] = "Content-Type: application/json";
    itest_request(&a, method, path, h, body, r);
}

static const char *subject_body(const char *reference)
{
    static char body[512];
    snprintf(body, sizeof(body),
             "{\"hub_id\":\"%s\",\"reference\":\"%s\",\"given_name\":\"Web\",\"family_name\":"
             "\"Cookie\",\"date_of_birth\":\"2010-04-04\",\"status\":\"edge_of_care\","
             "\"key_worker\":\"Kim\",\"team\":[\"%s\"]}",
             w.hub, reference, w.police);
    return body;
}

static int subjects_with(const char *reference)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM subjects WHERE reference = '%s'", reference);
    char *v = itest_sql_value(sql);
    ck_assert_ptr_nonnull(v);
    int n = atoi(v);
    free(v);
    return n;
}

static const char *detail_of(const struct https_response *r)
{
    static char buf[256];
    json_object *o = itest_json(r);
    snprintf(buf, sizeof(buf), "%s", itest_jstr(o, "detail"));
    json_object_put(o);
    return buf;
}

/* ---- cookie sessions */

START_TEST(sign_in_with_cookie_sets_it)
{
    char body[256], want[256];
    snprintf(body, sizeof(body),
             "{\"username\":\"%s\",\"password\":\"long enough secret\",\"cookie\":true}",
             w.mgr_name);
    struct https_response r = {0};
    itest_call(&a, NULL, "POST", "/v1/sessions", body, &r);
    ck_assert_msg(r.status == 201, "%d %s", r.status, r.body);
    json_object *o = itest_json(&r);
    const char *token = itest_jstr(o, "token"), *csrf = itest_jstr(o, "csrf_token");
    snprintf(want, sizeof(want),
             "raise_session=%s; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=86400", token);
    ck_assert_str_eq(https_response_header(&r, "Set-Cookie"), want);
    ck_assert_uint_eq(strlen(csrf), 64);
    ck_assert_uint_eq(strspn(csrf, "0123456789abcdef"), 64);
    ck_assert(strstr(csrf, token) == NULL);
    json_object *user = NULL;
    ck_assert(json_object_object_get_ex(o, "user", &user));
    ck_assert_str_eq(itest_jstr(user, "authenticated_by"), "cookie");
    ck_assert_str_eq(itest_jstr(user, "csrf_token"), csrf);
    json_object_put(o);
    https_response_clear(&r);

    /* without "cookie": true, nothing changes for a token client */
    snprintf(body, sizeof(body), "{\"username\":\"%s\",\"password\":\"long enough secret\"}",
             w.mgr_name);
    itest_call(&a, NULL, "POST", "/v1/sessions", body, &r);
    ck_assert_int_eq(r.status, 201);
    ck_assert_ptr_null(https_response_header(&r, "Set-Cookie"));
    ck_assert_ptr_null(strstr(r.body, "csrf_token"));
    ck_assert_ptr_nonnull(strstr(r.body, "\"authenticated_by\":\"token\""));
    https_response_clear(&r);

    /* "cookie" must be a boolean */
    snprintf(body, sizeof(body),
             "{\"username\":\"%s\",\"password\":\"long enough secret\",\"cookie\":\"yes\"}",
             w.mgr_name);
    itest_call(&a, NULL, "POST", "/v1/sessions", body, &r);
    itest_assert_problem(&r, 422, "cookie");
    ck_assert_ptr_null(https_response_header(&r, "Set-Cookie"));
    https_response_clear(&r);
}
END_TEST

START_TEST(cookie_authenticates_me)
{
    struct cookie_session cs;
    cookie_sign_in(&cs);
    struct https_response r = {0};
    /* among other cookies, with spaces */
    char h1[256];
    snprintf(h1, sizeof(h1), "Cookie: theme=dark;  raise_session=%s ; lang=en", cs.token);
    const char *h[] = {h1, NULL};
    itest_request(&a, "GET", "/v1/me", h, NULL, &r);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    json_object *o = itest_json(&r);
    ck_assert_str_eq(itest_jstr(o, "username"), w.mgr_name);
    ck_assert_str_eq(itest_jstr(o, "authenticated_by"), "cookie");
    ck_assert_str_eq(itest_jstr(o, "csrf_token"), cs.csrf); /* a reloaded page gets it again */
    json_object_put(o);
    https_response_clear(&r);

    /* a cookie that is not a session: 401, and the browser is told to forget it */
    const char *bad[] = {"Cookie: raise_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", NULL};
    itest_request(&a, "GET", "/v1/me", bad, NULL, &r);
    itest_assert_problem(&r, 401, NULL);
    ck_assert_str_eq(https_response_header(&r, "Set-Cookie"), cleared);
    https_response_clear(&r);

    /* one no session could have (longer than a token may be, or with a quote in it): the
     * same, not a request with no credentials (it fell through to a client certificate,
     * and was never cleared; review) */
    char longer[400] = "Cookie: raise_session=";
    for (size_t k = strlen(longer); k < 22 + 300; k++)
        longer[k] = 'A';
    longer[22 + 300] = '\0';
    const char *unusable[][2] = {{longer, NULL},
                                 {"Cookie: raise_session=AAAAAAAA\"AAAAAAAAAA", NULL}};
    for (size_t k = 0; k < sizeof(unusable) / sizeof(unusable[0]); k++) {
        itest_request(&a, "GET", "/v1/me", unusable[k], NULL, &r);
        itest_assert_problem(&r, 401, NULL);
        ck_assert_msg(r.body && strstr(r.body, "sign in again") != NULL, "%s", r.body);
        ck_assert_str_eq(https_response_header(&r, "Set-Cookie"), cleared);
        https_response_clear(&r);
    }

    /* another cookie only: as anonymous */
    const char *other[] = {"Cookie: raise_sessionx=whatever-it-is-long", NULL};
    itest_request(&a, "GET", "/v1/me", other, NULL, &r);
    itest_assert_problem(&r, 401, NULL);
    ck_assert_ptr_null(https_response_header(&r, "Set-Cookie"));
    https_response_clear(&r);
}
END_TEST

START_TEST(cookie_post_needs_csrf_token)
{
    struct cookie_session cs;
    cookie_sign_in(&cs);
    struct https_response r = {0};
    char ref[96];
    snprintf(ref, sizeof(ref), "%s", itest_unique("WEB-"));

    cookie_call(&cs, NULL, "POST", "/v1/subjects", subject_body(ref), &r);
    itest_assert_problem(&r, 403, NULL);
    ck_assert_str_eq(detail_of(&r), "missing or wrong X-CSRF-Token");
    https_response_clear(&r);
    ck_assert_int_eq(subjects_with(ref), 0);

    char wrong[65];
    snprintf(wrong, sizeof(wrong), "%s", cs.csrf);
    wrong[63] = wrong[63] == '0' ? '1' : '0';
    const char *wrongs[] = {wrong, "", "x", cs.token};
    for (size_t i = 0; i < sizeof(wrongs) / sizeof(wrongs[0]); i++) {
        cookie_call(&cs, wrongs[i], "POST", "/v1/subjects", subject_body(ref), &r);
        itest_assert_problem(&r, 403, NULL);
        ck_assert_str_eq(detail_of(&r), "missing or wrong X-CSRF-Token");
        https_response_clear(&r);
    }
    ck_assert_int_eq(subjects_with(ref), 0);
    /* the refusal is before the handler: no audit row for the hub either */
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM audit_log WHERE action = 'subject.create' AND hub_id = '%s'",
             w.hub);
    char *v = itest_sql_value(sql);
    ck_assert_str_eq(v ? v : "?", "0");
    free(v);

    cookie_call(&cs, cs.csrf, "POST", "/v1/subjects", subject_body(ref), &r);
    ck_assert_msg(r.status == 201, "%d %s", r.status, r.body);
    https_response_clear(&r);
    ck_assert_int_eq(subjects_with(ref), 1);

    /* reads need no CSRF token */
    cookie_call(&cs, NULL, "GET", "/v1/subjects", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, ref));
    https_response_clear(&r);
}
END_TEST

START_TEST(bearer_needs_no_csrf_token)
{
    struct https_response r = {0};
    char ref[96];
    snprintf(ref, sizeof(ref), "%s", itest_unique("WEB-"));
    itest_call(&a, w.mgr, "POST", "/v1/subjects", subject_body(ref), &r);
    ck_assert_msg(r.status == 201, "%d %s", r.status, r.body);
    https_response_clear(&r);
    ck_assert_int_eq(subjects_with(ref), 1);

    /* Authorization wins over a cookie: another user's cookie is ignored, and no CSRF check */
    char *other_id = NULL;
    char *other = itest_new_user(&a, w.admin, w.police, "police_liaison", NULL, &other_id);
    char auth[256], cookie[256];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", other);
    struct cookie_session cs;
    cookie_sign_in(&cs);
    snprintf(cookie, sizeof(cookie), "%s", cs.cookie);
    const char *h[] = {auth, cookie, NULL};
    itest_request(&a, "GET", "/v1/me", h, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    json_object *o = itest_json(&r);
    ck_assert_str_eq(itest_jstr(o, "id"), other_id);
    ck_assert_str_eq(itest_jstr(o, "authenticated_by"), "token");
    ck_assert(!json_object_object_get_ex(o, "csrf_token", NULL));
    json_object_put(o);
    https_response_clear(&r);
    free(other);
    free(other_id);
}
END_TEST

START_TEST(stream_with_cookie)
{
    struct cookie_session cs;
    cookie_sign_in(&cs);
    struct https_opts o = itest_opts(&a);
    char *cause = NULL;
    struct https_conn *c = https_connect(&o, &cause);
    ck_assert_msg(c != NULL, "%s", cause);
    const char *h[] = {cs.cookie, NULL};
    struct https_response r = {0};
    ck_assert_int_eq(https_stream_open(c, "GET", "/v1/stream", h, &r, &cause), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(https_response_header(&r, "Content-Type"), "text/event-stream");
    https_response_clear(&r);
    https_close(c);

    /* and without it: 401 */
    c = https_connect(&o, &cause);
    ck_assert_msg(c != NULL, "%s", cause);
    ck_assert_int_eq(https_stream_open(c, "GET", "/v1/stream", NULL, &r, &cause), 0);
    ck_assert_int_eq(r.status, 401);
    https_response_clear(&r);
    https_close(c);
}
END_TEST

START_TEST(sign_out_clears_cookie)
{
    struct cookie_session cs;
    cookie_sign_in(&cs);
    struct https_response r = {0};
    /* signing out changes state too: a page elsewhere cannot sign the user out */
    cookie_call(&cs, NULL, "DELETE", "/v1/sessions/current", NULL, &r);
    itest_assert_problem(&r, 403, NULL);
    https_response_clear(&r);
    cookie_call(&cs, NULL, "GET", "/v1/me", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    https_response_clear(&r);

    cookie_call(&cs, cs.csrf, "DELETE", "/v1/sessions/current", NULL, &r);
    ck_assert_int_eq(r.status, 204);
    ck_assert_str_eq(https_response_header(&r, "Set-Cookie"), cleared);
    https_response_clear(&r);

    cookie_call(&cs, NULL, "GET", "/v1/me", NULL, &r);
    itest_assert_problem(&r, 401, NULL);
    https_response_clear(&r);
    /* the same session as a bearer token is revoked too: it is one session */
    itest_call(&a, cs.token, "GET", "/v1/me", NULL, &r);
    itest_assert_problem(&r, 401, NULL);
    https_response_clear(&r);

    /* a bearer sign-out sets no cookie */
    itest_call(&a, w.mgr, "DELETE", "/v1/sessions/current", NULL, &r);
    ck_assert_int_eq(r.status, 204);
    ck_assert_ptr_null(https_response_header(&r, "Set-Cookie"));
    https_response_clear(&r);
}
END_TEST

/* ---- static files */

static void assert_static_headers(const struct https_response *r)
{
    ck_assert_str_eq(https_response_header(r, "Content-Security-Policy"), csp);
    ck_assert_str_eq(https_response_header(r, "X-Content-Type-Options"), "nosniff");
    ck_assert_str_eq(https_response_header(r, "Referrer-Policy"), "no-referrer");
    ck_assert_str_eq(https_response_header(r, "X-Frame-Options"), "DENY");
}

static char *source_file(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/clients/web/%s", RAISE_SOURCE_DIR, name);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "%s", path);
    char *buf = calloc(1, 1 << 20);
    *len = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    return buf;
}

static void assert_serves(const char *path, const char *file, const char *type)
{
    struct https_response r = {0};
    itest_request(&a, "GET", path, NULL, NULL, &r);
    ck_assert_msg(r.status == 200, "%s: %d", path, r.status);
    ck_assert_str_eq(https_response_header(&r, "Content-Type"), type);
    ck_assert_str_eq(https_response_header(&r, "Cache-Control"), "no-cache");
    assert_static_headers(&r);
    size_t len;
    char *want = source_file(file, &len);
    ck_assert_uint_eq(r.body_len, len);
    ck_assert(memcmp(r.body, want, len) == 0);
    free(want);
    https_response_clear(&r);
}

START_TEST(static_files_served)
{
    assert_serves("/", "index.html", "text/html; charset=utf-8");
    assert_serves("/app/index.html", "index.html", "text/html; charset=utf-8");
    assert_serves("/app/app.js", "app.js", "text/javascript; charset=utf-8");
    assert_serves("/app/app.css", "app.css", "text/css; charset=utf-8");

    struct https_response r = {0};
    itest_request(&a, "GET", "/", NULL, NULL, &r);
    ck_assert_ptr_nonnull(strstr(r.body, "OFFICIAL-SENSITIVE"));
    ck_assert_ptr_nonnull(strstr(r.body, "<form"));
    /* the page keeps to its own CSP: no inline script, style or handlers */
    ck_assert_ptr_null(strstr(r.body, "<script>"));
    ck_assert_ptr_null(strstr(r.body, "<style"));
    ck_assert_ptr_null(strstr(r.body, "style="));
    ck_assert_ptr_null(strstr(r.body, "onclick"));
    ck_assert_ptr_null(strstr(r.body, "onsubmit"));
    https_response_clear(&r);

    itest_request(&a, "HEAD", "/app/app.js", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_eq(r.body_len, 0);
    assert_static_headers(&r);
    https_response_clear(&r);

    itest_request(&a, "POST", "/", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 405);
    https_response_clear(&r);
}
END_TEST

START_TEST(static_unknown_is_404)
{
    static const char *const paths[] = {
        "/app/nope.js",
        "/app/",
        "/app",
        "/app/../sql/001_accounts.sql",
        "/app/%2e%2e/sql/001_accounts.sql",
        "/app/%2e%2e%2fsql%2f001_accounts.sql",
        "/app/..%2f..%2fsql%2f001_accounts.sql",
        "/app/%2e%2e",
        "/app/..",
        "/app/.",
        "/../sql/001_accounts.sql",
        "/app/001_accounts.sql",
        "/app/INDEX.HTML",
        "/app/index.html%00.js",
        "/index.html",
    };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct https_response r = {0};
        itest_request(&a, "GET", paths[i], NULL, NULL, &r);
        ck_assert_msg(r.status == 404, "%s: %d", paths[i], r.status);
        ck_assert_str_eq(https_response_header(&r, "Content-Type"), "application/problem+json");
        ck_assert_ptr_null(strstr(r.body, "CREATE"));
        /* one segment after /app/ reaches the static handler, which adds its headers */
        if (strncmp(paths[i], "/app/", 5) == 0 && paths[i][5] != '\0' &&
            strchr(paths[i] + 5, '/') == NULL)
            assert_static_headers(&r);
        https_response_clear(&r);
    }
}
END_TEST

Suite *web_suite(void)
{
    Suite *s = suite_create("web");
    TCase *tc = tcase_create("cookie");
    tcase_add_unchecked_fixture(tc, itest_ensure_db, NULL);
    tcase_add_checked_fixture(tc, start, stop);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, sign_in_with_cookie_sets_it);
    tcase_add_test(tc, cookie_authenticates_me);
    tcase_add_test(tc, cookie_post_needs_csrf_token);
    tcase_add_test(tc, bearer_needs_no_csrf_token);
    tcase_add_test(tc, stream_with_cookie);
    tcase_add_test(tc, sign_out_clears_cookie);
    suite_add_tcase(s, tc);
    TCase *st = tcase_create("static");
    tcase_add_unchecked_fixture(st, itest_ensure_db, NULL);
    tcase_add_checked_fixture(st, start, stop);
    tcase_set_timeout(st, 120);
    tcase_add_test(st, static_files_served);
    tcase_add_test(st, static_unknown_is_404);
    suite_add_tcase(s, st);
    return s;
}
