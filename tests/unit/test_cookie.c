/* Cookie header parsing (util_cookie_get), the CSRF token derivation (auth_csrf_token), the
 * sign-in throttle's key for a client address (util_addr_key) and Accept negotiation
 * (util_accept_choose). */
#include "auth.h"
#include "util.h"

#include <check.h>
#include <string.h>

static const struct {
    const char *header;
    int want; /* length, -1 (absent or empty) or -2 (unusable) */
    const char *value;
} cookies[] = {
    {"raise_session=abc", 3, "abc"},
    {"a=1; raise_session=abc", 3, "abc"},
    {"a=1;raise_session=abc;b=2", 3, "abc"},
    {"  a=1 ;   raise_session=abc  ; b=2", 3, "abc"},
    {"a=1;\traise_session=abc\t", 3, "abc"},
    {"raise_session=\"abc\"", 3, "abc"},
    {"raise_session=first; raise_session=second", 5, "first"},
    {"xraise_session=abc", -1, NULL},
    {"raise_sessionx=abc", -1, NULL},
    {"RAISE_SESSION=abc", -1, NULL},
    {"raise_session=", -1, NULL},
    {"raise_session=; raise_session=abc", 3, "abc"},
    {"raise_session", -1, NULL},
    {"raise_session=\"", -2, NULL},
    {"raise_session=a\"b", -2, NULL},
    {"raise_session=a\"b; raise_session=abc", 3, "abc"},
    {"", -1, NULL},
    {";;;", -1, NULL},
    {"raise_session=0123456789", -2, NULL}, /* longer than the buffer of 8 */
    {"raise_session=\"\"", -1, NULL},       /* empty, in quotes */
};

START_TEST(cookie_table)
{
    char out[8];
    int got = util_cookie_get(cookies[_i].header, "raise_session", out, sizeof(out));
    ck_assert_msg(got == cookies[_i].want, "\"%s\": got %d want %d", cookies[_i].header, got,
                  cookies[_i].want);
    if (got >= 0)
        ck_assert_str_eq(out, cookies[_i].value);
}
END_TEST

START_TEST(csrf_token_derived)
{
    char a[65], b[65], c[65], h[65];
    auth_csrf_token("bdA6K4-99xZluwIIds4CR59SR4Say3iTtyvu4ixxKwI", a);
    auth_csrf_token("bdA6K4-99xZluwIIds4CR59SR4Say3iTtyvu4ixxKwI", b);
    auth_csrf_token("bdA6K4-99xZluwIIds4CR59SR4Say3iTtyvu4ixxKwJ", c);
    auth_token_hash("bdA6K4-99xZluwIIds4CR59SR4Say3iTtyvu4ixxKwI", h);
    ck_assert_uint_eq(strlen(a), 64);
    ck_assert_uint_eq(strspn(a, "0123456789abcdef"), 64);
    ck_assert_str_eq(a, b); /* the server derives it again from the cookie alone */
    ck_assert_str_ne(a, c); /* per session */
    ck_assert_str_ne(a, h); /* not the stored hash of the token */
    /* HMAC-SHA256(key = "key", "raised csrf token v1"), computed with `openssl mac` */
    auth_csrf_token("key", a);
    ck_assert_str_eq(a, "b162f7a4f9b75bcbda681fd33f1841dafc75068ffd29489b4834ea0c08ce72f8");
}
END_TEST

static const struct {
    const char *addr, *key;
} addrs[] = {
    {"127.0.0.1", "127.0.0.1"},
    {"203.0.113.9", "203.0.113.9"},
    {"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
    {"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"}, /* same /64, same key */
    {"2001:db8:1:3::1", "2001:db8:1:3::/64"},                  /* next /64, its own */
    {"::1", "::/64"},
    {"::ffff:198.51.100.7", "198.51.100.7"}, /* IPv4-mapped: the IPv4 address */
    {"fe80::1%eth0", "fe80::1%eth0"},        /* scoped: as it is */
    {"", ""},
};

START_TEST(addr_key_table)
{
    char out[64];
    util_addr_key(addrs[_i].addr, out, sizeof(out));
    ck_assert_str_eq(out, addrs[_i].key);
}
END_TEST

static const char *const offered[] = {"application/json", "text/markdown", "text/html"};
static const struct {
    const char *accept;
    int want; /* index in offered, or -1 */
} accepts[] = {
    {"application/json", 0},
    {"text/html", 2},
    {"text/markdown", 1},
    {"*/*", 0}, /* a tie: the server's order */
    {"text/*", 1},
    {"application/*", 0},
    {"image/png", -1},
    {"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", 2}, /* a browser */
    {"application/json;q=0.5, text/markdown", 1},
    {"text/html;q=0, */*", 0}, /* q=0: not acceptable, whatever else matches */
    {"text/html;q=0", -1},     /* and nothing else named */
    {"*/*;q=0", -1},
    {"text/*;q=0.2, text/html", 2},       /* the most specific range gives the q */
    {"text/html;q=0.3, text/*;q=0.9", 1}, /* markdown by the text range, html by its own 0.3 */
    {"TEXT/HTML", 2},
    {"text/html ; q=0.001, application/json;Q=0.002", 0},
    {"text/markdown, text/html", 1}, /* equal q: the one named first */
    {"text/html, text/markdown", 2},
    {"application/json;q=1.0", 0},
    {"application/json;q=0.000", -1},
    {"application/jsonx", -1},
    {"text", -1},
};

START_TEST(accept_table)
{
    ck_assert_msg(util_accept_choose(accepts[_i].accept, offered, 3) == accepts[_i].want,
                  "Accept: %s", accepts[_i].accept);
}
END_TEST

Suite *cookie_suite(void)
{
    Suite *s = suite_create("cookie");
    TCase *tc = tcase_create("parse");
    tcase_add_loop_test(tc, cookie_table, 0, sizeof(cookies) / sizeof(cookies[0]));
    tcase_add_test(tc, csrf_token_derived);
    tcase_add_loop_test(tc, addr_key_table, 0, sizeof(addrs) / sizeof(addrs[0]));
    tcase_add_loop_test(tc, accept_table, 0, sizeof(accepts) / sizeof(accepts[0]));
    suite_add_tcase(s, tc);
    return s;
}
