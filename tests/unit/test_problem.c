#include "password.h"
#include "problem.h"
#include "util.h"

#include <check.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    int status;
    const char *slug, *title;
} statuses[] = {
    {400, "bad-request", "Bad Request"},
    {404, "not-found", "Not Found"},
    {405, "method-not-allowed", "Method Not Allowed"},
    {413, "payload-too-large", "Payload Too Large"},
    {415, "unsupported-media-type", "Unsupported Media Type"},
    {422, "validation-failed", "Unprocessable Content"},
    {500, "internal-error", "Internal Server Error"},
    {503, "unavailable", "Service Unavailable"},
    {599, "internal-error", "Internal Server Error"}, /* unknown 5xx: generic */
};

START_TEST(problem_shape)
{
    struct problem *p = problem_new(statuses[_i].status, "detail %d", 7);
    char *s = problem_to_json(p);
    json_object *o = json_tokener_parse(s);
    ck_assert_ptr_nonnull(o);
    json_object *v;
    char type[80];
    snprintf(type, sizeof(type), "urn:raise:problem:%s", statuses[_i].slug);
    ck_assert(json_object_object_get_ex(o, "type", &v));
    ck_assert_str_eq(json_object_get_string(v), type);
    ck_assert(json_object_object_get_ex(o, "title", &v));
    ck_assert_str_eq(json_object_get_string(v), statuses[_i].title);
    ck_assert(json_object_object_get_ex(o, "status", &v));
    ck_assert_int_eq(json_object_get_int(v), statuses[_i].status);
    ck_assert(json_object_object_get_ex(o, "detail", &v));
    ck_assert_str_eq(json_object_get_string(v), "detail 7");
    ck_assert(!json_object_object_get_ex(o, "errors", &v));
    json_object_put(o);
    free(s);
    problem_free(p);
}
END_TEST

START_TEST(problem_fields_and_escaping)
{
    struct problem *p = problem_new(422, NULL);
    problem_add_field(p, "grading.source", "must be one of %s", "1, 2, 3");
    problem_add_field(p, "summary", "must not contain \"%s\"", "<script>\n");
    ck_assert_int_eq(problem_field_count(p), 2);
    char *s = problem_to_json(p);
    json_object *o = json_tokener_parse(s), *errs, *e, *v;
    ck_assert_ptr_nonnull(o);
    ck_assert(!json_object_object_get_ex(o, "detail", &v));
    ck_assert(json_object_object_get_ex(o, "errors", &errs));
    ck_assert_int_eq(json_object_array_length(errs), 2);
    e = json_object_array_get_idx(errs, 0);
    ck_assert(json_object_object_get_ex(e, "field", &v));
    ck_assert_str_eq(json_object_get_string(v), "grading.source");
    e = json_object_array_get_idx(errs, 1);
    ck_assert(json_object_object_get_ex(e, "message", &v));
    ck_assert_str_eq(json_object_get_string(v), "must not contain \"<script>\n\"");
    json_object_put(o);
    free(s);
    problem_free(p);
    problem_free(NULL);
}
END_TEST

START_TEST(retry_after)
{
    struct problem *p = problem_new(503, "down");
    ck_assert_int_eq(problem_retry_after(p), 0);
    problem_set_retry_after(p, 2);
    ck_assert_int_eq(problem_retry_after(p), 2);
    problem_free(p);
}
END_TEST

START_TEST(password_roundtrip)
{
    char *h = password_hash_params("correct horse battery", 10, 8, 1);
    ck_assert_ptr_nonnull(h);
    ck_assert(strncmp(h, "scrypt$10$8$1$", 14) == 0);
    ck_assert_int_eq(password_verify("correct horse battery", h), 1);
    ck_assert_int_eq(password_verify("correct horse batterz", h), 0);
    ck_assert_int_eq(password_verify("", h), 0);
    char *h2 = password_hash_params("correct horse battery", 10, 8, 1);
    ck_assert_str_ne(h, h2); /* per-hash salt */
    free(h);
    free(h2);
}
END_TEST

START_TEST(password_malformed_never_matches)
{
    static const char *bad[] = {"",
                                "scrypt$",
                                "scrypt$10$8$1$$",
                                "bcrypt$10$8$1$AAAA$AAAA",
                                "scrypt$99$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAA==",
                                "scrypt$10$8$1$!!!!$AAAAAAAAAAAAAAAAAAAAAA==",
                                "scrypt$10$8$1$AAAA$AAAA$extra"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(password_verify("x", bad[i]) == 0, "%s", bad[i]);
}
END_TEST

START_TEST(password_generate_random)
{
    char *a = password_generate(), *b = password_generate();
    ck_assert_int_eq(strlen(a), 24);
    ck_assert_int_ge(strlen(a), PASSWORD_MIN_LENGTH);
    ck_assert_str_ne(a, b);
    for (const char *p = a; *p; p++)
        ck_assert(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *p));
    free(a);
    free(b);
}
END_TEST

START_TEST(base64_roundtrip)
{
    const unsigned char in[] = {0xfb, 0xff, 0x00, 0x41, 0x42};
    char *s = util_base64(in, sizeof(in));
    unsigned char out[16];
    size_t n;
    ck_assert_str_eq(s, "+/8AQUI=");
    ck_assert_int_eq(util_unbase64(s, out, sizeof(out), &n), 0);
    ck_assert_int_eq(n, sizeof(in));
    ck_assert(memcmp(in, out, n) == 0);
    free(s);
    s = util_base64url(in, sizeof(in));
    ck_assert_str_eq(s, "-_8AQUI");
    free(s);
    ck_assert_int_eq(util_unbase64("abc", out, sizeof(out), &n), -1);
}
END_TEST

Suite *problem_suite(void)
{
    Suite *s = suite_create("problem");
    TCase *tc = tcase_create("problem");
    tcase_add_loop_test(tc, problem_shape, 0, sizeof(statuses) / sizeof(statuses[0]));
    tcase_add_test(tc, problem_fields_and_escaping);
    tcase_add_test(tc, retry_after);
    suite_add_tcase(s, tc);
    TCase *tp = tcase_create("password");
    tcase_set_timeout(tp, 30);
    tcase_add_test(tp, password_roundtrip);
    tcase_add_test(tp, password_malformed_never_matches);
    tcase_add_test(tp, password_generate_random);
    tcase_add_test(tp, base64_roundtrip);
    suite_add_tcase(s, tp);
    return s;
}
