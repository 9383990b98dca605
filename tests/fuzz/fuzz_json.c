/* libFuzzer target: request-body JSON. The bytes are a request body: json_parse_body, then
 * (when it parses) json_validate against a small table that uses every field kind, and
 * intel_validate as POST /v1/intelligence would run it. The same bytes, NUL-terminated, go
 * to json_from_pg_array as a PostgreSQL array literal. Nothing is expected to fail loudly:
 * the sanitizers and the few invariants checked here are the oracle. */
#include "intel.h"
#include "json.h"
#include "problem.h"

#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_NOW ((time_t)1767225600) /* 2026-01-01T00:00:00Z: fixed, so runs repeat */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const kinds[] = {"alpha", "beta", "gamma", NULL};

static const struct json_field fields[] = {
    /* name, kind, required, min, max, values: every kind once */
    {"id", JK_UUID, 0, 0, 0, NULL},
    {"name", JK_STRING, 1, 1, 40, NULL}, /* the one required field */
    {"count", JK_INT, 0, -5, 1000, NULL},
    {"flag", JK_BOOL, 0, 0, 0, NULL},
    {"kind", JK_ENUM, 0, 0, 0, kinds},
    {"ids", JK_UUID_ARRAY, 0, 1, 5, NULL},
    {"hash", JK_HEX64, 0, 0, 0, NULL},
};

#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

/* Serialise a problem (it names fuzzed keys) and drop it. */
static void problem_drop(struct problem *p)
{
    free(problem_to_json(p));
    problem_free(p);
}

static void check_table(json_object *o)
{
    struct problem *p = problem_new(422, "the request has invalid fields");
    int errors = json_validate(o, fields, NFIELDS, p);
    if (errors < 0 || (size_t)errors != problem_field_count(p))
        abort(); /* one field error per error counted */
    if (errors == 0) {
        /* Valid: the accessors must agree with the table. */
        if (json_str(o, "name") == NULL || !json_has(o, "name"))
            abort();
        char *lit = json_uuid_array_literal(o, "ids");
        if (lit != NULL) {
            json_object *back = json_from_pg_array(lit);
            json_object *ids = NULL;
            json_object_object_get_ex(o, "ids", &ids);
            if (json_object_array_length(back) != json_object_array_length(ids))
                abort(); /* ids -> literal -> ids keeps every id */
            json_object_put(back);
            free(lit);
        }
    }
    problem_drop(p);
}

static void check_intel(json_object *o, int author_is_police)
{
    struct problem *p = problem_new(422, "the request has invalid fields");
    int errors = intel_validate(o, author_is_police, FUZZ_NOW, p);
    if (errors < 0 || (size_t)errors != problem_field_count(p))
        abort();
    if (errors == 0) {
        json_object *g = NULL;
        char text[INTEL_GRADING_TEXT_SIZE];
        if (json_object_object_get_ex(o, "grading", &g) && g != NULL)
            intel_grading_text(json_str(g, "scheme"), json_str(g, "source"),
                               json_str(g, "assessment"), json_str(g, "handling"), text);
    }
    problem_drop(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct problem *p = NULL;
    json_object *o = json_parse_body((const char *)data, size, &p);
    if (o == NULL) {
        if (p == NULL || problem_status(p) != 400)
            abort(); /* a refused body always explains itself with a 400 */
        problem_drop(p);
    } else {
        if (p != NULL || !json_object_is_type(o, json_type_object))
            abort();
        check_table(o);
        check_intel(o, data[0] & 1);
        json_object_put(o);
    }

    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    json_object *a = json_from_pg_array(s);
    json_object_put(a);
    free(s);
    return 0;
}
