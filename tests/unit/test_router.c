#include "router.h"

#include <check.h>
#include <string.h>

static void h(struct http_req *r)
{
    (void)r;
}

static const struct route table[] = {
    {METHOD_GET, "/healthz", h, ACCESS_PUBLIC, 0},
    {METHOD_GET, "/v1/subjects", h, ACCESS_SIGNED_IN, 0},
    {METHOD_POST, "/v1/subjects", h, ACCESS_HUB_MANAGER, 1024},
    {METHOD_GET, "/v1/subjects/{id}", h, ACCESS_SIGNED_IN, 0},
    {METHOD_PATCH, "/v1/subjects/{id}", h, ACCESS_HUB_MANAGER, 1024},
    {METHOD_POST, "/v1/meetings/{id}/start", h, ACCESS_HUB_MANAGER, 0},
    {METHOD_GET, "/v1/hubs/{hub}/reports/{kind}", h, ACCESS_HUB_MANAGER, 0},
    {METHOD_DELETE, "/v1/sessions/current", h, ACCESS_SIGNED_IN, 0},
    {METHOD_GET, "/", h, ACCESS_PUBLIC, 0},
    {METHOD_GET, "/app/{file}", h, ACCESS_PUBLIC, 0},
};
#define N (sizeof(table) / sizeof(table[0]))

static const struct {
    int method;
    const char *path;
    enum router_result want;
    int route;         /* index when found */
    const char *allow; /* when 405 */
    const char *param; /* first param value when found */
} cases[] = {
    {METHOD_GET, "/healthz", ROUTER_FOUND, 0, NULL, NULL},
    {METHOD_HEAD, "/healthz", ROUTER_FOUND, 0, NULL, NULL},
    {METHOD_POST, "/healthz", ROUTER_METHOD_NOT_ALLOWED, -1, "GET, HEAD", NULL},
    {METHOD_GET, "/healthz/", ROUTER_NOT_FOUND, -1, NULL, NULL},
    {METHOD_GET, "/healthzz", ROUTER_NOT_FOUND, -1, NULL, NULL},
    {METHOD_GET, "/", ROUTER_FOUND, 8, NULL, NULL},
    {METHOD_HEAD, "/", ROUTER_FOUND, 8, NULL, NULL},
    {METHOD_POST, "/", ROUTER_METHOD_NOT_ALLOWED, -1, "GET, HEAD", NULL},
    {METHOD_GET, "//", ROUTER_NOT_FOUND, -1, NULL, NULL},
    {METHOD_GET, "/app/app.js", ROUTER_FOUND, 9, NULL, "app.js"},
    {METHOD_GET, "/app/", ROUTER_NOT_FOUND, -1, NULL, NULL},
    {METHOD_GET, "/app/../sql/001_accounts.sql", ROUTER_NOT_FOUND, -1, NULL, NULL},
    {METHOD_GET, "/app/%2e%2e", ROUTER_FOUND, 9, NULL, "%2e%2e"},
    {METHOD_GET, "", ROUTER_NOT_FOUND, -1, NULL, NULL},
    {METHOD_GET, "healthz", ROUTER_NOT_FOUND, -1, NULL, NULL},
    {METHOD_GET, "/v1/subjects", ROUTER_FOUND, 1, NULL, NULL},
    {METHOD_POST, "/v1/subjects", ROUTER_FOUND, 2, NULL, NULL},
    {METHOD_DELETE, "/v1/subjects", ROUTER_METHOD_NOT_ALLOWED, -1, "GET, HEAD, POST", NULL},
    {METHOD_GET, "/v1/subjects/abc-123", ROUTER_FOUND, 3, NULL, "abc-123"},
    {METHOD_PATCH, "/v1/subjects/abc", ROUTER_FOUND, 4, NULL, "abc"},
    {METHOD_PUT, "/v1/subjects/abc", ROUTER_METHOD_NOT_ALLOWED, -1, "GET, HEAD, PATCH", NULL},
    {METHOD_GET, "/v1/subjects//", ROUTER_NOT_FOUND, -1, NULL, NULL},
    {METHOD_GET, "/v1/subjects/a/b", ROUTER_NOT_FOUND, -1, NULL, NULL},
    {METHOD_POST, "/v1/meetings/m1/start", ROUTER_FOUND, 5, NULL, "m1"},
    {METHOD_GET, "/v1/meetings/m1/start", ROUTER_METHOD_NOT_ALLOWED, -1, "POST", NULL},
    {METHOD_GET, "/v1/meetings//start", ROUTER_NOT_FOUND, -1, NULL, NULL},
    {METHOD_GET, "/v1/hubs/h9/reports/raise", ROUTER_FOUND, 6, NULL, "h9"},
    {METHOD_DELETE, "/v1/sessions/current", ROUTER_FOUND, 7, NULL, NULL},
    {METHOD_OTHER, "/healthz", ROUTER_METHOD_NOT_ALLOWED, -1, "GET, HEAD", NULL},
};

START_TEST(match_table)
{
    const struct route *found;
    struct route_params p;
    int allow;
    char buf[80];
    enum router_result got =
        router_match(table, N, cases[_i].method, cases[_i].path, &found, &p, &allow);
    ck_assert_msg(got == cases[_i].want, "%s: got %d want %d", cases[_i].path, got, cases[_i].want);
    if (got == ROUTER_FOUND) {
        ck_assert_ptr_eq(found, &table[cases[_i].route]);
        if (cases[_i].param != NULL) {
            ck_assert_int_ge(p.n, 1);
            ck_assert_int_eq(p.v[0].value_len, strlen(cases[_i].param));
            ck_assert(memcmp(p.v[0].value, cases[_i].param, p.v[0].value_len) == 0);
        }
    } else {
        ck_assert_ptr_null(found);
    }
    if (got == ROUTER_METHOD_NOT_ALLOWED)
        ck_assert_str_eq(router_allow_string(allow, buf, sizeof(buf)), cases[_i].allow);
}
END_TEST

START_TEST(two_params_named)
{
    const struct route *found;
    struct route_params p;
    int allow;
    ck_assert_int_eq(router_match(table, N, METHOD_GET, "/v1/hubs/H/reports/K", &found, &p, &allow),
                     ROUTER_FOUND);
    ck_assert_int_eq(p.n, 2);
    ck_assert(p.v[0].name_len == 3 && memcmp(p.v[0].name, "hub", 3) == 0);
    ck_assert(p.v[1].name_len == 4 && memcmp(p.v[1].name, "kind", 4) == 0);
    ck_assert(p.v[1].value_len == 1 && p.v[1].value[0] == 'K');
}
END_TEST

START_TEST(methods_parse)
{
    ck_assert_int_eq(router_method_parse("PATCH"), METHOD_PATCH);
    ck_assert_int_eq(router_method_parse("get"), METHOD_OTHER);
    ck_assert_str_eq(router_method_name(METHOD_DELETE), "DELETE");
}
END_TEST

/* The limits: body size per route and content type. */
static const struct {
    int route;
    const char *ctype;
    size_t len;
    int want;
} bodies[] = {
    {2, "application/json", 10, 0},
    {2, "application/json; charset=utf-8", 1024, 0},
    {2, "Application/JSON;charset=UTF-8", 5, 0},
    {2, "application/json; charset=\"utf-8\"", 5, 0},
    {2, "application/json", 1025, 413},
    {2, "text/plain", 10, 415},
    {2, NULL, 10, 415},
    {2, "application/json; charset=latin1", 10, 415},
    {2, "application/jsonx", 10, 415},
    {2, NULL, 0, 0},   /* no body: the handler decides */
    {0, NULL, 1, 413}, /* a body on a route that takes none */
    {0, "application/json", 0, 0},
};

START_TEST(body_limits)
{
    const char *detail = NULL;
    int got =
        router_check_body(&table[bodies[_i].route], bodies[_i].ctype, bodies[_i].len, &detail);
    ck_assert_int_eq(got, bodies[_i].want);
    if (got != 0)
        ck_assert_ptr_nonnull(detail);
}
END_TEST

Suite *router_suite(void)
{
    Suite *s = suite_create("router");
    TCase *tc = tcase_create("match");
    tcase_add_loop_test(tc, match_table, 0, sizeof(cases) / sizeof(cases[0]));
    tcase_add_test(tc, two_params_named);
    tcase_add_test(tc, methods_parse);
    tcase_add_loop_test(tc, body_limits, 0, sizeof(bodies) / sizeof(bodies[0]));
    suite_add_tcase(s, tc);
    return s;
}
