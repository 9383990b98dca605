#include "intel.h"
#include "problem.h"

#include <check.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A valid police item: 3x5x2, handling C with its conditions. Every case below patches it. */
static const char base_body[] =
    "{\"subject_id\": \"0b6f7c1e-2a4d-4e8f-9c3b-5d6e7f809a1b\","
    " \"category\": \"missing_from_home\","
    " \"summary\": \"Missing overnight, found at an address linked to county lines\","
    " \"occurred_at\": \"2026-03-01T14:05:00Z\","
    " \"risk_level\": \"high\","
    " \"grading\": {\"scheme\": \"3x5x2\", \"source\": 1, \"assessment\": \"B\","
    " \"handling\": \"C\", \"conditions\": \"Not to be disclosed to the family\"}}";

#define NOW    ((time_t)1772377200) /* 2026-03-01T15:00:00Z */
#define ID1    "\"4f1c2d3e-0000-4000-8000-000000000001\""
#define ID2    "\"4f1c2d3e-0000-4000-8000-000000000002\""
#define ID5    ID1 "," ID1 "," ID1 "," ID1 "," ID1
#define S10    "xxxxxxxxxx"
#define S100   S10 S10 S10 S10 S10 S10 S10 S10 S10 S10
#define S500   S100 S100 S100 S100 S100
#define S1000  S500 S500
#define S2000  S1000 S1000
#define S10000 S2000 S2000 S2000 S2000 S2000

/* The base body with one member removed ("key" or "grading.key", may be NULL) and patch's
 * members set; a patch "grading" object is merged into the base grading. */
static json_object *make_body(const char *remove, const char *patch)
{
    json_object *o = json_tokener_parse(base_body), *g = NULL;
    ck_assert_ptr_nonnull(o);
    json_object_object_get_ex(o, "grading", &g);
    if (remove != NULL && strncmp(remove, "grading.", 8) == 0)
        json_object_object_del(g, remove + 8);
    else if (remove != NULL)
        json_object_object_del(o, remove);
    if (patch == NULL)
        return o;
    json_object *po = json_tokener_parse(patch);
    ck_assert_msg(po != NULL, "bad patch %s", patch);
    json_object_object_foreach(po, key, val)
    {
        json_object *cur = NULL;
        if (strcmp(key, "grading") == 0 && json_object_object_get_ex(o, key, &cur) &&
            json_object_is_type(cur, json_type_object) &&
            json_object_is_type(val, json_type_object)) {
            json_object_object_foreach(val, gk, gv)
                json_object_object_add(cur, gk, json_object_get(gv));
        } else {
            json_object_object_add(o, key, json_object_get(val));
        }
    }
    json_object_put(po);
    return o;
}

/* The field paths a problem names, in order, joined by spaces. */
static void problem_fields(const struct problem *p, char *out, size_t size)
{
    char *s = problem_to_json(p);
    json_object *o = json_tokener_parse(s), *errs = NULL, *f;
    out[0] = '\0';
    json_object_object_get_ex(o, "errors", &errs);
    for (size_t i = 0; errs && i < json_object_array_length(errs); i++)
        if (json_object_object_get_ex(json_object_array_get_idx(errs, i), "field", &f))
            snprintf(out + strlen(out), size - strlen(out), "%s%s", i ? " " : "",
                     json_object_get_string(f));
    json_object_put(o);
    free(s);
}

/* How often field is one of the space-separated names. */
static int times_named(const char *fields, const char *field)
{
    int n = 0;
    size_t len = strlen(field);
    for (const char *f = fields; *f; f += strcspn(f, " "), f += *f == ' ')
        n += strncmp(f, field, len) == 0 && (f[len] == ' ' || f[len] == '\0');
    return n;
}

static const struct {
    int police;
    const char *remove, *patch;
} good[] = {
    {1, NULL, NULL},      /* police, 3x5x2, C with conditions */
    {0, "grading", NULL}, /* another agency, ungraded */
    {0, NULL, "{\"grading\": null, \"gravity\": null, \"detail\": null}"},
    {1, "grading.conditions", "{\"grading\": {\"handling\": \"P\"}}"},
    {1, "grading.scheme", "{\"grading\": {\"source\": 3, \"assessment\": \"E\"}}"},
    {1, NULL, "{\"grading\": {\"scheme\": null}}"},
    {1, "grading.conditions",
     "{\"grading\": {\"scheme\": \"5x5x5\", \"source\": \"B\", \"assessment\": 2, "
     "\"handling\": 3}}"},
    {1, NULL,
     "{\"grading\": {\"scheme\": \"5x5x5\", \"source\": \"E\", \"assessment\": 5, "
     "\"handling\": 1}}"},
    {1, NULL,
     "{\"category\": \"arrest\", \"gravity\": 8, \"restricted_to\": [" ID1 ", " ID2 "], "
     "\"detail\": \"\"}"},
    {1, NULL, "{\"category\": \"charge\", \"gravity\": 1}"},
    {1, NULL, "{\"category\": \"offence_at_hub\", \"gravity\": 4, \"detail\": \"" S10000 "\"}"},
    {0, "grading", "{\"category\": \"positive_progress\", \"risk_level\": \"low\"}"},
    {0, "grading", "{\"category\": \"other\", \"risk_level\": \"critical\"}"},
    {1, NULL, "{\"summary\": \"" S500 "\", \"grading\": {\"conditions\": \"" S2000 "\"}}"},
    {1, NULL,
     "{\"summary\": \"\\u00e9" S100 S100 S100 S100 S10 S10 S10 S10 S10 S10 S10 S10 S10
     "xxxxxxxxx\"}"}, /* 500 code points, 501 bytes */
    {1, NULL, "{\"occurred_at\": \"2026-03-01T14:05:00.123Z\"}"},
    {1, NULL, "{\"occurred_at\": \"2026-03-01T15:05:00Z\"}"}, /* exactly 5 minutes ahead */
    {1, NULL, "{\"occurred_at\": \"2024-02-29T23:59:59.999999999Z\"}"},
    {1, NULL, "{\"subject_id\": \"0B6F7C1E-2A4D-4E8F-9C3B-5D6E7F809A1B\"}"},
};

START_TEST(valid_bodies)
{
    json_object *o = make_body(good[_i].remove, good[_i].patch);
    struct problem *p = problem_new(422, NULL);
    char fields[512];
    int n = intel_validate(o, good[_i].police, NOW, p);
    problem_fields(p, fields, sizeof(fields));
    ck_assert_msg(n == 0, "case %d: %d errors: %s", _i, n, fields);
    ck_assert_int_eq(problem_field_count(p), 0);
    problem_free(p);
    json_object_put(o);
}
END_TEST

static const struct {
    int police;
    const char *remove, *patch, *field;
} bad[] = {
    {1, "subject_id", NULL, "subject_id"},
    {1, NULL, "{\"subject_id\": \"0b6f7c1e-2a4d-4e8f-9c3b-5d6e7f809a1\"}", "subject_id"},
    {1, NULL, "{\"subject_id\": 42}", "subject_id"},
    {1, NULL, "{\"subject_id\": null}", "subject_id"},
    {1, NULL, "{\"category\": \"burglary\"}", "category"},
    {1, "category", NULL, "category"},
    {1, NULL, "{\"summary\": \"\"}", "summary"},
    {1, NULL, "{\"summary\": \"" S500 "x\"}", "summary"},
    {1, "summary", NULL, "summary"},
    {1, NULL, "{\"detail\": \"" S10000 "x\"}", "detail"},
    {1, NULL, "{\"detail\": 7}", "detail"},
    {1, NULL, "{\"occurred_at\": \"2026-02-30T10:00:00Z\"}", "occurred_at"},
    {1, NULL, "{\"occurred_at\": \"2026-03-01 14:05:00\"}", "occurred_at"},
    {1, NULL, "{\"occurred_at\": \"2026-03-01T14:05:00+00:00\"}", "occurred_at"},
    {1, NULL, "{\"occurred_at\": \"2026-03-01T14:05:00\"}", "occurred_at"},
    {1, NULL, "{\"occurred_at\": \"2026-03-01T24:00:00Z\"}", "occurred_at"},
    {1, NULL, "{\"occurred_at\": \"2026-03-01T14:05:00.Z\"}", "occurred_at"},
    {1, NULL, "{\"occurred_at\": \"\"}", "occurred_at"},
    {1, NULL, "{\"occurred_at\": 1772373900}", "occurred_at"},
    {1, NULL, "{\"occurred_at\": \"2026-03-01T16:00:00Z\"}", "occurred_at"}, /* 1 h ahead */
    {1, NULL, "{\"occurred_at\": \"2026-03-01T15:05:01Z\"}", "occurred_at"},
    {1, "occurred_at", NULL, "occurred_at"},
    {1, NULL, "{\"risk_level\": \"severe\"}", "risk_level"},
    {1, NULL, "{\"risk_level\": null}", "risk_level"},
    {1, "grading", NULL, "grading"},
    {1, NULL, "{\"grading\": null}", "grading"},
    {1, NULL, "{\"grading\": \"1A P\"}", "grading"},
    {0, NULL, "{\"grading\": [1, \"A\", \"P\"]}", "grading"},
    {1, NULL, "{\"grading\": {\"source\": 4}}", "grading.source"},
    {1, NULL, "{\"grading\": {\"source\": 0}}", "grading.source"},
    {1, NULL, "{\"grading\": {\"source\": \"1\"}}", "grading.source"},
    {1, "grading.source", NULL, "grading.source"},
    {0, NULL, "{\"grading\": {\"source\": 4}}", "grading.source"}, /* graded by choice */
    {1, NULL, "{\"grading\": {\"assessment\": \"F\"}}", "grading.assessment"},
    {1, NULL, "{\"grading\": {\"assessment\": \"a\"}}", "grading.assessment"},
    {1, NULL, "{\"grading\": {\"assessment\": null}}", "grading.assessment"},
    {1, NULL, "{\"grading\": {\"handling\": \"X\"}}", "grading.handling"},
    {1, "grading.handling", NULL, "grading.handling"},
    {1, "grading.conditions", NULL, "grading.conditions"}, /* C without conditions */
    {1, NULL, "{\"grading\": {\"conditions\": null}}", "grading.conditions"},
    {1, NULL, "{\"grading\": {\"conditions\": \"\"}}", "grading.conditions"},
    {1, NULL, "{\"grading\": {\"conditions\": \"" S2000 "x\"}}", "grading.conditions"},
    {1, NULL, "{\"grading\": {\"conditions\": 3}}", "grading.conditions"},
    {1, NULL, "{\"grading\": {\"handling\": \"P\"}}", "grading.conditions"}, /* P with them */
    {1, NULL, "{\"grading\": {\"scheme\": \"4x4x4\"}}", "grading.scheme"},
    {1, NULL, "{\"grading\": {\"scheme\": 3}}", "grading.scheme"},
    {1, NULL,
     "{\"grading\": {\"scheme\": \"5x5x5\", \"source\": 2, \"assessment\": 2, \"handling\": 3}}",
     "grading.source"},
    {1, NULL,
     "{\"grading\": {\"scheme\": \"5x5x5\", \"source\": \"B\", \"assessment\": \"B\", "
     "\"handling\": 3}}",
     "grading.assessment"},
    {1, NULL,
     "{\"grading\": {\"scheme\": \"5x5x5\", \"source\": \"B\", \"assessment\": 2, "
     "\"handling\": 6}}",
     "grading.handling"},
    {1, NULL,
     "{\"grading\": {\"scheme\": \"5x5x5\", \"source\": \"B\", \"assessment\": 2, "
     "\"handling\": \"C\"}}",
     "grading.handling"},
    {1, NULL, "{\"grading\": {\"foo\": 1}}", "grading.foo"},
    {1, NULL, "{\"category\": \"self_harm\", \"gravity\": 3}", "gravity"},
    {1, NULL, "{\"category\": \"self_harm\", \"gravity\": 9}", "gravity"}, /* named once */
    {1, NULL, "{\"category\": \"arrest\", \"gravity\": 9}", "gravity"},
    {1, NULL, "{\"category\": \"charge\", \"gravity\": 0}", "gravity"},
    {1, NULL, "{\"category\": \"arrest\", \"gravity\": \"3\"}", "gravity"},
    {1, NULL, "{\"category\": \"arrest\", \"gravity\": 2.5}", "gravity"},
    {1, NULL, "{\"restricted_to\": " ID1 "}", "restricted_to"},
    {1, NULL, "{\"restricted_to\": []}", "restricted_to"},
    {1, NULL, "{\"restricted_to\": [" ID1 ", " ID2 ", " ID1 "]}", "restricted_to"},
    {1, NULL, "{\"restricted_to\": [" ID1 ", \"agency-7\"]}", "restricted_to"},
    {1, NULL, "{\"restricted_to\": [" ID5 "]}", "restricted_to"},
    {1, NULL, "{\"restricted_to\": [" ID5 "," ID5 "," ID5 "," ID5 "," ID1 "]}", "restricted_to"},
    {1, NULL, "{\"colour\": \"red\"}", "colour"},
    {0, "grading", "{\"author_id\": " ID1 "}", "author_id"},
};

START_TEST(invalid_bodies)
{
    json_object *o = make_body(bad[_i].remove, bad[_i].patch);
    struct problem *p = problem_new(422, NULL);
    char fields[512];
    int n = intel_validate(o, bad[_i].police, NOW, p);
    problem_fields(p, fields, sizeof(fields));
    ck_assert_msg(n == 1 && strcmp(fields, bad[_i].field) == 0, "case %d: want %s, got %d: %s", _i,
                  bad[_i].field, n, fields);
    ck_assert_int_eq(problem_field_count(p), 1);
    problem_free(p);
    json_object_put(o);
}
END_TEST

START_TEST(one_error_per_problem)
{
    json_object *o = make_body("subject_id", "{\"category\": \"self_harm\", \"gravity\": 2,"
                                             " \"risk_level\": \"extreme\", \"extra\": true,"
                                             " \"occurred_at\": \"2026-03-01T14:05\","
                                             " \"grading\": {\"source\": 4, \"handling\": \"P\","
                                             " \"colour\": \"blue\"}}");
    struct problem *p = problem_new(422, NULL);
    char fields[512];
    static const char *const want[] = {
        "subject_id",  "gravity",        "risk_level",         "extra",
        "occurred_at", "grading.source", "grading.conditions", "grading.colour"};
    size_t nwant = sizeof(want) / sizeof(want[0]);
    ck_assert_int_eq(intel_validate(o, 1, NOW, p), (int)nwant);
    ck_assert_int_eq(problem_field_count(p), nwant);
    problem_fields(p, fields, sizeof(fields));
    for (size_t i = 0; i < nwant; i++)
        ck_assert_msg(times_named(fields, want[i]) == 1, "%s not once in %s", want[i], fields);
    problem_free(p);
    json_object_put(o);
}
END_TEST

START_TEST(bad_scheme_skips_parts)
{
    /* An unknown scheme is one error; its parts are not judged against a guessed scheme. */
    json_object *o = make_body(NULL, "{\"grading\": {\"scheme\": \"2x2\", \"source\": \"Z\"}}");
    struct problem *p = problem_new(422, NULL);
    char fields[256];
    ck_assert_int_eq(intel_validate(o, 1, NOW, p), 1);
    problem_fields(p, fields, sizeof(fields));
    ck_assert_str_eq(fields, "grading.scheme");
    problem_free(p);
    json_object_put(o);
}
END_TEST

START_TEST(tables)
{
    static const char *const gravity[] = {"arrest", "charge", "offence_at_hub"};
    int n = 0, with_gravity = 0;
    for (; intel_categories[n] != NULL; n++)
        with_gravity += intel_category_has_gravity(intel_categories[n]);
    ck_assert_int_eq(n, 17);
    ck_assert_str_eq(intel_categories[0], "missing_from_home");
    ck_assert_str_eq(intel_categories[16], "other");
    ck_assert_int_eq(with_gravity, 3);
    for (size_t i = 0; i < 3; i++)
        ck_assert(intel_category_has_gravity(gravity[i]));
    ck_assert(!intel_category_has_gravity("self_harm"));
    ck_assert(!intel_category_has_gravity("Arrest"));
    ck_assert(!intel_category_has_gravity(NULL));
    ck_assert_str_eq(intel_risk_levels[3], "critical");
    ck_assert_ptr_null(intel_risk_levels[4]);
    ck_assert_str_eq(intel_schemes[0], "3x5x2");
    ck_assert_str_eq(intel_schemes[1], "5x5x5");
    ck_assert_ptr_null(intel_schemes[2]);
}
END_TEST

static const struct {
    const char *scheme, *source, *assessment, *handling, *want;
} gradings[] = {
    {"3x5x2", "1", "A", "P", "1A P"},
    {NULL, "2", "C", "C", "2C C"},
    {"5x5x5", "B", "2", "3", "B2 3"},
    {"3x5x2", NULL, "A", "P", ""},
    {"3x5x2", "1", NULL, "P", ""},
    {"3x5x2", "1", "A", NULL, ""},
    {"4x4x4", "1", "A", "P", ""},
    {"3x5x2", "1111111", "AAAAAAA", "PPPPPPP", "111AAA PPP"}, /* bounded, never overflows */
};

START_TEST(grading_text)
{
    char out[INTEL_GRADING_TEXT_SIZE];
    memset(out, '#', sizeof(out));
    const char *r = intel_grading_text(gradings[_i].scheme, gradings[_i].source,
                                       gradings[_i].assessment, gradings[_i].handling, out);
    ck_assert_ptr_eq(r, out);
    ck_assert_str_eq(out, gradings[_i].want);
}
END_TEST

static const struct {
    const char *in;
    int ok;
    long long want;
} times[] = {
    {"1970-01-01T00:00:00Z", 0, 0},
    {"2026-03-01T14:05:00Z", 0, 1772373900},
    {"2026-03-01T14:05:00.5Z", 0, 1772373900},
    {"2026-03-01T14:05:00.123456789Z", 0, 1772373900},
    {"2024-02-29T23:59:59Z", 0, 1709251199},
    {"2000-02-29T00:00:00Z", 0, 951782400},
    {"9999-12-31T23:59:59Z", 0, 253402300799LL},
    {"2026-02-30T10:00:00Z", -1, 0},
    {"2023-02-29T10:00:00Z", -1, 0},
    {"2100-02-29T10:00:00Z", -1, 0},
    {"2026-04-31T10:00:00Z", -1, 0},
    {"2026-13-01T10:00:00Z", -1, 0},
    {"2026-00-01T10:00:00Z", -1, 0},
    {"2026-03-00T10:00:00Z", -1, 0},
    {"2026-03-01T24:00:00Z", -1, 0},
    {"2026-03-01T14:60:00Z", -1, 0},
    {"2026-03-01T14:05:60Z", -1, 0},
    {"1969-12-31T23:59:59Z", -1, 0},
    {"2026-03-01 14:05:00", -1, 0},
    {"2026-03-01 14:05:00Z", -1, 0},
    {"2026-03-01t14:05:00z", -1, 0},
    {"2026-03-01T14:05:00", -1, 0},
    {"2026-03-01T14:05Z", -1, 0},
    {"2026-03-01T14:05:00+00:00", -1, 0},
    {"2026-03-01T14:05:00.Z", -1, 0},
    {"2026-03-01T14:05:00.1234567890Z", -1, 0},
    {"2026-03-01T14:05:00Z ", -1, 0},
    {" 2026-03-01T14:05:00Z", -1, 0},
    {"2026-3-01T14:05:00Z", -1, 0},
    {"+026-03-01T14:05:00Z", -1, 0},
    {"2026-03-01", -1, 0},
    {"", -1, 0},
    {NULL, -1, 0},
};

START_TEST(parse_time)
{
    time_t t = 42;
    ck_assert_int_eq(intel_parse_time(times[_i].in, &t), times[_i].ok);
    ck_assert_int_eq((long long)t, times[_i].ok == 0 ? times[_i].want : 42);
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

Suite *intel_suite(void)
{
    Suite *s = suite_create("intel");
    TCase *tc = tcase_create("validate");
    tcase_add_loop_test(tc, valid_bodies, 0, N(good));
    tcase_add_loop_test(tc, invalid_bodies, 0, N(bad));
    tcase_add_test(tc, one_error_per_problem);
    tcase_add_test(tc, bad_scheme_skips_parts);
    suite_add_tcase(s, tc);
    TCase *tf = tcase_create("format");
    tcase_add_test(tf, tables);
    tcase_add_loop_test(tf, grading_text, 0, N(gradings));
    tcase_add_loop_test(tf, parse_time, 0, N(times));
    suite_add_tcase(s, tf);
    return s;
}
