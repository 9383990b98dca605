#include "json.h"
#include "problem.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *body;
    int ok;
} bodies[] = {
    {"{\"a\":1}", 1},
    {"{\"name\":\"O'Brien\",\"b\":[1,{\"c\":\"}}}\"}]}", 1}, /* quotes and brackets in strings */
    {"{\"a\":{\"b\":1},\"c\":{\"b\":2}}", 1},                /* the same key, other objects */
    {"{\"a\":1,\"a\":2}", 0},                                /* duplicate */
    {"{\"a\":{\"b\":1,\"b\":2}}", 0},                        /* nested duplicate */
    {"{'}}}{':1}", 0},               /* fuzz_json: single-quoted key drove the depth below 0 */
    {"{\"a\":1,'a':2}", 0},          /* fuzz_json: single quotes hid a duplicate */
    {"{'\"':1,\"a\":1,\"a\":2}", 0}, /* fuzz_json: and threw the scanner out of step */
    {"[1,2]", 0},
    {"", 0},
    {"{\"a\":1} x", 0},
    {"{\"a\":\"\\u0000\"}", 0},         /* NUL: C strings would drop what follows */
    {"{\"a\":\"Seen\\u0000 x\"}", 0},   /* (review: stored as "Seen", past length checks) */
    {"{\"a\\u0000b\":1}", 0},           /* in a key too */
    {"{\"a\":\"\\\\u0000\"}", 1},       /* a backslash, then the text u0000: fine */
    {"{\"a\":\"\\u00001\\u0001\"}", 0}, /* NUL among others */
    {"{\"a\":\"\\u0001\\u00e9\"}", 1},  /* other escapes are fine */
    {"{\"a\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}", 0}, /* deeper than the limit */
};

START_TEST(parse_body_table)
{
    struct problem *p = NULL;
    json_object *o = json_parse_body(bodies[_i].body, strlen(bodies[_i].body), &p);
    if (bodies[_i].ok) {
        ck_assert_msg(o != NULL, "rejected %s", bodies[_i].body);
    } else {
        ck_assert_msg(o == NULL, "accepted %s", bodies[_i].body);
        ck_assert_int_eq(problem_status(p), 400);
        problem_free(p);
    }
    json_object_put(o);
}
END_TEST

START_TEST(pg_array_round_trip)
{
    json_object *o = json_tokener_parse("{\"ids\":[\"00000000-0000-0000-0000-000000000001\","
                                        "\"00000000-0000-0000-0000-000000000002\"]}");
    char *lit = json_uuid_array_literal(o, "ids");
    ck_assert_str_eq(lit, "{00000000-0000-0000-0000-000000000001,"
                          "00000000-0000-0000-0000-000000000002}");
    json_object *back = json_from_pg_array(lit);
    ck_assert_int_eq(json_object_array_length(back), 2);
    ck_assert_ptr_null(json_uuid_array_literal(o, "missing"));
    json_object *empty = json_from_pg_array("{}");
    ck_assert_int_eq(json_object_array_length(empty), 0);
    json_object_put(empty);
    json_object_put(back);
    json_object_put(o);
    free(lit);
}
END_TEST

/* Headers do not come through the JSON parser; PostgreSQL refuses what is not UTF-8. */
static const struct {
    const char *s;
    int ok;
} utf8[] = {
    {"", 1},
    {"plain ascii", 1},
    {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 1}, /* 2, 3 and 4 bytes */
    {"\xef\xbf\xbf \xf4\x8f\xbf\xbf", 1},             /* U+FFFF, U+10FFFF */
    {"\xff\xfe", 0},                                  /* never in UTF-8 */
    {"\x80", 0},                                      /* a continuation byte first */
    {"\xc3", 0},                                      /* cut short */
    {"\xe2\x82", 0},                                  /* cut short */
    {"\xc0\xaf", 0},                                  /* overlong "/" */
    {"\xe0\x80\xaf", 0},                              /* overlong, 3 bytes */
    {"\xf0\x80\x80\xaf", 0},                          /* overlong, 4 bytes */
    {"\xed\xa0\x80", 0},                              /* a surrogate, U+D800 */
    {"\xf4\x90\x80\x80", 0},                          /* past U+10FFFF */
    {"\xf5\x80\x80\x80", 0},                          /* a lead byte past f4 */
};

START_TEST(utf8_table)
{
    ck_assert_msg(json_utf8_valid(utf8[_i].s) == utf8[_i].ok, "case %d", _i);
}
END_TEST

Suite *json_suite(void)
{
    Suite *s = suite_create("json");
    TCase *tc = tcase_create("json");
    tcase_add_loop_test(tc, parse_body_table, 0, sizeof(bodies) / sizeof(bodies[0]));
    tcase_add_test(tc, pg_array_round_trip);
    tcase_add_loop_test(tc, utf8_table, 0, sizeof(utf8) / sizeof(utf8[0]));
    suite_add_tcase(s, tc);
    return s;
}
