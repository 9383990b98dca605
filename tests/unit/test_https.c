/* Unit tests for the pure parts of clients/https.c: the response head parser and the chunked
 * transfer-coding decoder. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "https.h"

Suite *https_suite(void);

/* A string literal and its length, so cases may hold NUL bytes. */
#define LIT(s) s, sizeof(s) - 1

/* ---- https_parse_head ---- */

struct head_case {
    const char *in;
    size_t len;
    int rc;
    int status;
    size_t nheaders;
    const char *lookup; /* a header name to look up (in another case), or NULL */
    const char *value;  /* the value expected for it */
    const char *why;    /* rc -1: text expected in the cause */
};

/* Rows of head_cases: the fields of one struct head_case. */
#define GOOD(in, status, n, lookup, value) LIT(in), 0, status, n, lookup, value, NULL
#define BAD(in, why)                       LIT(in), -1, 0, 0, NULL, NULL, why

static const struct head_case head_cases[] = {
    /* good heads */
    {GOOD("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Request-Id: ab12\r\n\r\n", 200, 2,
          "content-type", "application/json")},
    {GOOD("HTTP/1.0 404 Not Found\r\n\r\n", 404, 0, "Content-Type", NULL)},
    {GOOD("HTTP/1.1 204\r\n\r\n", 204, 0, NULL, NULL)},
    {GOOD("HTTP/1.1 500 \r\n\r\n", 500, 0, NULL, NULL)},
    {GOOD("HTTP/1.1 200 O\tK\r\nX-Empty:\r\n\r\n", 200, 1, "x-empty", "")},
    {GOOD("HTTP/1.1 200 OK\r\nX-Pad: \t v a l \t\r\n\r\n", 200, 1, "X-PAD", "v a l")},
    {GOOD("HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\n\r\n", 200, 2, "SET-COOKIE",
          "a=1")},
    {GOOD("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", 101, 1, "upgrade", "h2c")},
    {GOOD("HTTP/1.1 599 x\r\nA:b\r\n\r\n", 599, 1, "a", "b")},
    /* obsolete line folding */
    {BAD("HTTP/1.1 200 OK\r\nX-A: b\r\n c\r\n\r\n", "folding")},
    {BAD("HTTP/1.1 200 OK\r\nX-A: b\r\n\tc: d\r\n\r\n", "folding")},
    {BAD("HTTP/1.1 200 OK\r\n X-A: b\r\n\r\n", "folding")},
    /* bad status lines */
    {BAD("HTTP/2 200 OK\r\n\r\n", "status line")},
    {BAD("HTTP/1.2 200 OK\r\n\r\n", "status line")},
    {BAD("http/1.1 200 OK\r\n\r\n", "status line")},
    {BAD("HTTP/1.1 20 OK\r\n\r\n", "status line")},
    {BAD("HTTP/1.1 2000 OK\r\n\r\n", "status line")},
    {BAD("HTTP/1.1 2x0 OK\r\n\r\n", "status line")},
    {BAD("HTTP/1.1  200 OK\r\n\r\n", "status line")},
    {BAD("HTTP/1.1 200OK\r\n\r\n", "status line")},
    {BAD("HTTP/1.1 099 Low\r\n\r\n", "status line")},
    {BAD("HTTP/1.1 600 High\r\n\r\n", "status line")},
    {BAD("HTTP/1.1 200 O\x01K\r\n\r\n", "status line")},
    {BAD("ICY 200 OK\r\n\r\n", "status line")},
    {BAD("\r\n\r\n", "status line")},
    /* missing colon, bad names */
    {BAD("HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", "colon")},
    {BAD("HTTP/1.1 200 OK\r\nA: b\r\nNoColon here\r\n\r\n", "colon")},
    {BAD("HTTP/1.1 200 OK\r\n: no name\r\n\r\n", "empty header name")},
    {BAD("HTTP/1.1 200 OK\r\nX-A : b\r\n\r\n", "header name")},
    {BAD("HTTP/1.1 200 OK\r\nX(A): b\r\n\r\n", "header name")},
    /* framing: unterminated, bare LF, stray CR, NUL, empty line inside */
    {BAD("", "empty line")},
    {BAD("HTTP/1.1 200 OK\r\nX-A: b\r\n", "empty line")},
    {BAD("HTTP/1.1 200 OK\n\n", "empty line")},
    {BAD("HTTP/1.1 200 OK\r\nX-A: b\nX-B: c\r\n\r\n", "control character")},
    {BAD("HTTP/1.1 200 OK\r\nX-A: b\rX-B: c\r\n\r\n", "control character")},
    {BAD("HTTP/1.1 200 OK\r\nX-A: b\0c\r\n\r\n", "control character")},
    {BAD("HTTP/1.1 200 OK\r\n\r\nX-A: b\r\n\r\n", "colon")},
};

START_TEST(test_parse_head)
{
    const struct head_case *t = &head_cases[_i];
    struct https_response r = {.status = -7};
    char *cause = NULL;
    int rc = https_parse_head(t->in, t->len, &r, &cause);
    ck_assert_msg(rc == t->rc, "case %d: rc %d, want %d (%s)", _i, rc, t->rc,
                  cause ? cause : "no cause");
    if (rc < 0) {
        ck_assert_ptr_nonnull(cause);
        ck_assert_msg(strstr(cause, t->why) != NULL, "case %d: cause \"%s\", want \"%s\"", _i,
                      cause, t->why);
        ck_assert_int_eq(r.status, -7); /* untouched */
        ck_assert_ptr_null(r.headers);
        free(cause);
        return;
    }
    ck_assert_ptr_null(cause);
    ck_assert_int_eq(r.status, t->status);
    ck_assert_uint_eq(r.nheaders, t->nheaders);
    if (t->lookup != NULL && t->value == NULL)
        ck_assert_ptr_null(https_response_header(&r, t->lookup));
    if (t->lookup != NULL && t->value != NULL)
        ck_assert_pstr_eq(https_response_header(&r, t->lookup), t->value);
    ck_assert_ptr_null(r.body);
    https_response_clear(&r);
    ck_assert_ptr_null(r.headers);
    ck_assert_uint_eq(r.nheaders, 0);
}
END_TEST

START_TEST(test_parse_head_names_kept)
{
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: a/b\r\nX-Id: 7\r\n\r\n";
    struct https_response r = {0};
    char *cause = NULL;
    ck_assert_int_eq(https_parse_head(head, sizeof head - 1, &r, &cause), 0);
    ck_assert_str_eq(r.headers[0].name, "Content-Type");
    ck_assert_str_eq(r.headers[0].value, "a/b");
    ck_assert_str_eq(r.headers[1].name, "X-Id");
    ck_assert_str_eq(r.headers[1].value, "7");
    ck_assert_ptr_null(https_response_header(&r, "X-I"));
    ck_assert_ptr_null(https_response_header(&r, "X-Id2"));
    https_response_clear(&r);
    https_response_clear(&r); /* twice is fine */
    https_response_clear(NULL);
}
END_TEST

/* ---- https_chunked_feed ---- */

#define ALL ((size_t)-1) /* consumed everything */

struct chunk_case {
    const char *in;
    size_t len;
    int rc;
    const char *out; /* expected decoded bytes (rc >= 0) */
    size_t out_len;
    size_t consumed; /* when rc == 1 */
};

static const struct chunk_case chunk_cases[] = {
    /* single chunk, empty body */
    {LIT("5\r\nhello\r\n0\r\n\r\n"), 1, LIT("hello"), ALL},
    {LIT("0\r\n\r\n"), 1, LIT(""), ALL},
    /* multiple chunks, hex in both cases, leading zeros, binary data */
    {LIT("5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n"), 1, LIT("hello world"), ALL},
    {LIT("A\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n"), 1, LIT("0123456789abcdefghij"), ALL},
    {LIT("0005\r\nhello\r\n000\r\n\r\n"), 1, LIT("hello"), ALL},
    {LIT("4\r\na\0b\n\r\n0\r\n\r\n"), 1, LIT("a\0b\n"), ALL},
    /* chunk extensions */
    {LIT("5;name=value\r\nhello\r\n6 ; q=\"a;b\"\r\n world\r\n0;last\r\n\r\n"), 1,
     LIT("hello world"), ALL},
    {LIT("5\t;x\r\nhello\r\n0\r\n\r\n"), 1, LIT("hello"), ALL},
    /* trailers */
    {LIT("3\r\nabc\r\n0\r\nX-Checksum: 1\r\nX-Other: two\r\n\r\n"), 1, LIT("abc"), ALL},
    /* stops at the end: the rest belongs to the next response */
    {LIT("3\r\nabc\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n"), 1, LIT("abc"), 13},
    /* incomplete */
    {LIT("5\r\nhel"), 0, LIT("hel"), ALL},
    {LIT("5\r\nhello\r"), 0, LIT("hello"), ALL},
    {LIT("3\r\nabc\r\n0\r\nX-A: b\r\n"), 0, LIT("abc"), ALL},
    {LIT("4000000\r\n"), 0, LIT(""), ALL}, /* 64 MiB exactly is allowed */
    /* malformed sizes and framing */
    {LIT("zz\r\nhello\r\n"), -1, NULL, 0, 0},
    {LIT("\r\n"), -1, NULL, 0, 0},
    {LIT("5x\r\nhello\r\n0\r\n\r\n"), -1, NULL, 0, 0},
    {LIT("-5\r\nhello\r\n"), -1, NULL, 0, 0},
    {LIT("+5\r\nhello\r\n"), -1, NULL, 0, 0},
    {LIT("0x5\r\nhello\r\n"), -1, NULL, 0, 0},
    {LIT(" 5\r\nhello\r\n"), -1, NULL, 0, 0},
    {LIT("5\nhello\n0\n\n"), -1, NULL, 0, 0},
    {LIT("5\r\r\nhello\r\n"), -1, NULL, 0, 0},
    {LIT("5\r\nhelloX\r\n0\r\n\r\n"), -1, NULL, 0, 0},
    {LIT("5\r\nhello0\r\n\r\n"), -1, NULL, 0, 0},
    {LIT("3\r\nabc\r\n0\r\nNoColon\r\n\r\n"), -1, NULL, 0, 0},
    {LIT("3\r\nabc\r\n0\r\nX-A: b\n\r\n"), -1, NULL, 0, 0},
    /* oversized sizes */
    {LIT("4000001\r\n"), -1, NULL, 0, 0},
    {LIT("ffffffffffffffffffff\r\n"), -1, NULL, 0, 0},
    {LIT("10000000000000000\r\n"), -1, NULL, 0, 0},
};

static void check_chunk_result(const struct chunk_case *t, int i, const char *how, int rc,
                               size_t consumed, const char *out, size_t out_len)
{
    ck_assert_msg(rc == t->rc, "case %d (%s): rc %d, want %d", i, how, rc, t->rc);
    if (rc < 0)
        return;
    size_t want = rc == 1 && t->consumed != ALL ? t->consumed : t->len;
    ck_assert_msg(consumed == want, "case %d (%s): consumed %zu, want %zu", i, how, consumed, want);
    ck_assert_msg(out_len == t->out_len, "case %d (%s): %zu bytes out, want %zu", i, how, out_len,
                  t->out_len);
    ck_assert_msg(out_len == 0 || memcmp(out, t->out, out_len) == 0, "case %d (%s): wrong bytes", i,
                  how);
    ck_assert(out == NULL || out[out_len] == '\0');
}

START_TEST(test_chunked_whole)
{
    const struct chunk_case *t = &chunk_cases[_i];
    struct https_chunked *d = https_chunked_new();
    char *out = NULL;
    size_t out_len = 0, consumed = 0;
    int rc = https_chunked_feed(d, t->in, t->len, &consumed, &out, &out_len);
    check_chunk_result(t, _i, "whole", rc, consumed, out, out_len);
    free(out);
    https_chunked_free(d);
}
END_TEST

START_TEST(test_chunked_bytewise)
{
    const struct chunk_case *t = &chunk_cases[_i];
    struct https_chunked *d = https_chunked_new();
    char *out = NULL;
    size_t out_len = 0, total = 0;
    int rc = 0;
    for (size_t i = 0; i < t->len && rc == 0; i++) {
        size_t used = 0;
        rc = https_chunked_feed(d, t->in + i, 1, &used, &out, &out_len);
        ck_assert_uint_le(used, 1);
        total += used;
    }
    check_chunk_result(t, _i, "byte by byte", rc, total, out, out_len);
    free(out);
    https_chunked_free(d);
}
END_TEST

START_TEST(test_chunked_after_end)
{
    struct https_chunked *d = https_chunked_new();
    char *out = NULL;
    size_t out_len = 0, used = 0;
    ck_assert_int_eq(https_chunked_feed(d, LIT("0\r\n\r\n"), &used, &out, &out_len), 1);
    ck_assert_int_eq(https_chunked_feed(d, LIT("5\r\nhello"), &used, &out, &out_len), 1);
    ck_assert_uint_eq(used, 0);
    ck_assert_uint_eq(out_len, 0);
    https_chunked_free(d);

    d = https_chunked_new(); /* an error sticks */
    ck_assert_int_eq(https_chunked_feed(d, LIT("q\r\n"), &used, &out, &out_len), -1);
    ck_assert_int_eq(https_chunked_feed(d, LIT("0\r\n\r\n"), &used, &out, &out_len), -1);
    https_chunked_free(d);
    https_chunked_free(NULL);
    free(out);
}
END_TEST

START_TEST(test_chunked_long_line)
{
    /* a size line of leading zeros never overflows the value, but the line is bounded */
    size_t n = 10000;
    char *in = malloc(n + 2);
    memset(in, '0', n);
    memcpy(in + n - 1, "5\r\n", 3);
    struct https_chunked *d = https_chunked_new();
    char *out = NULL;
    size_t out_len = 0, used = 0;
    ck_assert_int_eq(https_chunked_feed(d, in, n + 2, &used, &out, &out_len), -1);
    https_chunked_free(d);
    free(out);
    free(in);
}
END_TEST

Suite *https_suite(void)
{
    Suite *s = suite_create("https");
    TCase *tc = tcase_create("parse_head");
    tcase_add_loop_test(tc, test_parse_head, 0, sizeof head_cases / sizeof head_cases[0]);
    tcase_add_test(tc, test_parse_head_names_kept);
    suite_add_tcase(s, tc);
    tc = tcase_create("chunked");
    tcase_add_loop_test(tc, test_chunked_whole, 0, sizeof chunk_cases / sizeof chunk_cases[0]);
    tcase_add_loop_test(tc, test_chunked_bytewise, 0, sizeof chunk_cases / sizeof chunk_cases[0]);
    tcase_add_test(tc, test_chunked_after_end);
    tcase_add_test(tc, test_chunked_long_line);
    suite_add_tcase(s, tc);
    return s;
}
