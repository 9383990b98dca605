#include "intel.h"

#include "json.h"
#include "problem.h"
#include "xmalloc.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const intel_categories[] = {"missing_from_home",
                                        "returned_from_missing",
                                        "arrest",
                                        "charge",
                                        "offence_at_hub",
                                        "cse_concern",
                                        "cce_county_lines",
                                        "risky_associate",
                                        "self_harm",
                                        "ae_attendance",
                                        "hospital_admission",
                                        "substance_misuse",
                                        "school_exclusion",
                                        "placement_incident",
                                        "domestic_abuse",
                                        "positive_progress",
                                        "other",
                                        NULL};

const char *const intel_risk_levels[] = {"low", "medium", "high", "critical", NULL};

const char *const intel_schemes[] = {"3x5x2", "5x5x5", NULL};

static const char *const gravity_categories[] = {"arrest", "charge", "offence_at_hub", NULL};
static const char *const grades_ae[] = {"A", "B", "C", "D", "E", NULL};
static const char *const handling_pc[] = {"P", "C", NULL};

/* The flat fields. grading is checked by hand (a nested object); occurred_at's format and
 * gravity's category by the cross-field rules below. */
static const struct json_field top_fields[] = {
    {"subject_id", JK_UUID, 1, 0, 0, NULL},
    {"category", JK_ENUM, 1, 0, 0, intel_categories},
    {"summary", JK_STRING, 1, 1, INTEL_SUMMARY_MAX, NULL},
    {"detail", JK_STRING, 0, 0, INTEL_DETAIL_MAX, NULL},
    {"occurred_at", JK_STRING, 1, 0, LONG_MAX, NULL},
    {"risk_level", JK_ENUM, 1, 0, 0, intel_risk_levels},
    {"gravity", JK_INT, 0, INTEL_GRAVITY_MIN, INTEL_GRAVITY_MAX, NULL},
    {"restricted_to", JK_UUID_ARRAY, 0, 1, INTEL_RESTRICTED_MAX, NULL},
};

/* One grading scheme: its three parts, and which handling code needs written conditions
 * and which forbids them (NULL: conditions are optional). */
struct scheme_rules {
    struct json_field parts[3];
    const char *conditions_required_when, *conditions_forbidden_when;
};

static const struct scheme_rules scheme_rules[] = {
    /* 3x5x2, indexed like intel_schemes */
    {{{"source", JK_INT, 1, 1, 3, NULL},
      {"assessment", JK_ENUM, 1, 0, 0, grades_ae},
      {"handling", JK_ENUM, 1, 0, 0, handling_pc}},
     "C",
     "P"},
    /* 5x5x5 */
    {{{"source", JK_ENUM, 1, 0, 0, grades_ae},
      {"assessment", JK_INT, 1, 1, 5, NULL},
      {"handling", JK_INT, 1, 1, 5, NULL}},
     NULL,
     NULL},
};
_Static_assert(sizeof(scheme_rules) / sizeof(scheme_rules[0]) + 1 ==
                   sizeof(intel_schemes) / sizeof(intel_schemes[0]),
               "one rule set per grading scheme");

static const char *const grading_keys[] = {"scheme",   "source",     "assessment",
                                           "handling", "conditions", NULL};

static int list_index(const char *const *list, const char *s)
{
    for (int i = 0; s != NULL && list[i] != NULL; i++)
        if (strcmp(list[i], s) == 0)
            return i;
    return -1;
}

static void list_join(const char *const *list, char *buf, size_t size)
{
    buf[0] = '\0';
    for (int i = 0; list[i] != NULL; i++)
        snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", i ? ", " : "", list[i]);
}

/* The value of key, or NULL when absent or JSON null. */
static json_object *member(json_object *o, const char *key)
{
    json_object *v = NULL;
    return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

int intel_category_has_gravity(const char *category)
{
    return list_index(gravity_categories, category) >= 0;
}

static int is_string(json_object *v)
{
    return json_object_is_type(v, json_type_string);
}

/* gravity on a known category that carries none: reported by the cross-field rule. */
static int gravity_misplaced(json_object *o)
{
    json_object *c = member(o, "category");
    if (member(o, "gravity") == NULL || !is_string(c))
        return 0;
    const char *category = json_object_get_string(c);
    return list_index(intel_categories, category) >= 0 && !intel_category_has_gravity(category);
}

static int check_flat(json_object *o, struct problem *p)
{
    int misplaced = gravity_misplaced(o);
    json_object *flat = json_object_new_object();
    json_object_object_foreach(o, key, val)
    {
        if (strcmp(key, "grading") != 0 && !(misplaced && strcmp(key, "gravity") == 0))
            json_object_object_add(flat, key, json_object_get(val));
    }
    int errors = json_validate(flat, top_fields, sizeof(top_fields) / sizeof(top_fields[0]), p);
    json_object_put(flat);
    if (misplaced) {
        problem_add_field(p, "gravity", "only for arrest, charge and offence_at_hub");
        errors++;
    }
    return errors;
}

static int check_time(json_object *o, time_t now, struct problem *p)
{
    json_object *v = member(o, "occurred_at");
    time_t t;
    if (!is_string(v))
        return 0; /* missing or not a string: named by check_flat */
    if (intel_parse_time(json_object_get_string(v), &t) != 0) {
        problem_add_field(p, "occurred_at", "must be an RFC 3339 UTC time like %s",
                          "2026-03-01T14:05:00Z");
        return 1;
    }
    if (t > now + INTEL_FUTURE_SLACK_S) {
        problem_add_field(p, "occurred_at", "must not be more than %d minutes in the future",
                          INTEL_FUTURE_SLACK_S / 60);
        return 1;
    }
    return 0;
}

/* Name "grading.<name>" in p. */
static void __attribute__((format(printf, 3, 4)))
grading_error(struct problem *p, const char *name, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    char *path = xasprintf("grading.%s", name);
    problem_add_field(p, path, "%s", msg);
    free(path);
}

static int unknown_grading_keys(json_object *g, struct problem *p)
{
    int errors = 0;
    json_object_object_foreach(g, key, val)
    {
        (void)val;
        if (list_index(grading_keys, key) < 0) {
            grading_error(p, key, "is not a known field");
            errors++;
        }
    }
    return errors;
}

/* NULL (and an error) if the scheme is not one we know; absent or null means 3x5x2. */
static const struct scheme_rules *grading_scheme(json_object *g, struct problem *p)
{
    json_object *v = member(g, "scheme");
    if (v == NULL)
        return &scheme_rules[0];
    int i = is_string(v) ? list_index(intel_schemes, json_object_get_string(v)) : -1;
    if (i >= 0)
        return &scheme_rules[i];
    char list[64];
    list_join(intel_schemes, list, sizeof(list));
    problem_add_field(p, "grading.scheme", "must be one of %s", list);
    return NULL;
}

static int check_part(json_object *g, const struct json_field *f, struct problem *p)
{
    json_object *v = member(g, f->name);
    char list[64];
    if (v == NULL) {
        grading_error(p, f->name, "is required");
        return 1;
    }
    if (f->kind == JK_INT) {
        if (json_object_is_type(v, json_type_int) && json_object_get_int64(v) >= f->min &&
            json_object_get_int64(v) <= f->max)
            return 0;
        grading_error(p, f->name, "must be an integer from %ld to %ld", f->min, f->max);
        return 1;
    }
    if (is_string(v) && list_index(f->values, json_object_get_string(v)) >= 0)
        return 0;
    list_join(f->values, list, sizeof(list));
    grading_error(p, f->name, "must be one of %s", list);
    return 1;
}

static int check_conditions(json_object *g, const struct scheme_rules *s, struct problem *p)
{
    json_object *c = member(g, "conditions"), *h = member(g, "handling");
    const char *handling = is_string(h) ? json_object_get_string(h) : NULL;
    int required = handling && s->conditions_required_when &&
                   strcmp(handling, s->conditions_required_when) == 0;
    int forbidden = handling && s->conditions_forbidden_when &&
                    strcmp(handling, s->conditions_forbidden_when) == 0;
    if (c == NULL && required) {
        problem_add_field(p, "grading.conditions", "is required when handling is %s", handling);
        return 1;
    }
    if (c != NULL && forbidden) {
        problem_add_field(p, "grading.conditions", "is not allowed when handling is %s", handling);
        return 1;
    }
    if (c != NULL && (!is_string(c) || json_utf8_len(json_object_get_string(c)) < 1 ||
                      json_utf8_len(json_object_get_string(c)) > INTEL_CONDITIONS_MAX)) {
        problem_add_field(p, "grading.conditions", "must be a string of 1 to %d characters",
                          INTEL_CONDITIONS_MAX);
        return 1;
    }
    return 0;
}

static int check_grading(json_object *o, int author_is_police, struct problem *p)
{
    json_object *g = member(o, "grading");
    if (g == NULL && !author_is_police)
        return 0;
    if (g == NULL) {
        problem_add_field(p, "grading", "is required for police intelligence (3x5x2)");
        return 1;
    }
    if (!json_object_is_type(g, json_type_object)) {
        problem_add_field(p, "grading", "must be an object");
        return 1;
    }
    int errors = unknown_grading_keys(g, p);
    const struct scheme_rules *s = grading_scheme(g, p);
    if (s == NULL)
        return errors + 1; /* the parts mean nothing without a scheme */
    for (size_t i = 0; i < sizeof(s->parts) / sizeof(s->parts[0]); i++)
        errors += check_part(g, &s->parts[i], p);
    return errors + check_conditions(g, s, p);
}

int intel_validate(json_object *o, int author_is_police, time_t now, struct problem *p)
{
    if (!json_object_is_type(o, json_type_object)) {
        problem_add_field(p, "body", "must be a JSON object");
        return 1;
    }
    int errors = check_flat(o, p);
    errors += check_time(o, now, p);
    return errors + check_grading(o, author_is_police, p);
}

const char *intel_grading_text(const char *scheme, const char *source, const char *assessment,
                               const char *handling, char out[INTEL_GRADING_TEXT_SIZE])
{
    out[0] = '\0';
    if (source == NULL || assessment == NULL || handling == NULL ||
        (scheme != NULL && list_index(intel_schemes, scheme) < 0))
        return out;
    snprintf(out, INTEL_GRADING_TEXT_SIZE, "%.3s%.3s %.3s", source, assessment, handling);
    return out;
}

/* "0" marks a digit, anything else must match exactly. */
static const char time_shape[] = "0000-00-00T00:00:00";

static const struct {
    int offset, width, min, max;
} time_parts[] = {
    {0, 4, 1970, 9999}, /* year */
    {5, 2, 1, 12},      /* month */
    {8, 2, 1, 31},      /* day (checked against the month below) */
    {11, 2, 0, 23},     /* hour */
    {14, 2, 0, 59},     /* minute */
    {17, 2, 0, 59},     /* second (no leap second) */
};

static int days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return days[m - 1] + (m == 2 && leap);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static long days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    long era = y / 400, yoe = y - era * 400;
    long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int intel_parse_time(const char *s, time_t *out)
{
    int v[6];
    if (s == NULL || strlen(s) < sizeof(time_shape))
        return -1;
    for (size_t i = 0; i < sizeof(time_shape) - 1; i++)
        if (time_shape[i] == '0' ? s[i] < '0' || s[i] > '9' : s[i] != time_shape[i])
            return -1;
    for (size_t i = 0; i < sizeof(time_parts) / sizeof(time_parts[0]); i++) {
        v[i] = 0;
        for (int k = 0; k < time_parts[i].width; k++)
            v[i] = v[i] * 10 + (s[time_parts[i].offset + k] - '0');
        if (v[i] < time_parts[i].min || v[i] > time_parts[i].max)
            return -1;
    }
    if (v[2] > days_in_month(v[0], v[1]))
        return -1;
    const char *z = s + sizeof(time_shape) - 1;
    if (*z == '.') {
        size_t n = strspn(z + 1, "0123456789");
        if (n < 1 || n > 9)
            return -1;
        z += 1 + n;
    }
    if (strcmp(z, "Z") != 0)
        return -1;
    *out = (time_t)days_from_civil(v[0], v[1], v[2]) * 86400 + v[3] * 3600 + v[4] * 60 + v[5];
    return 0;
}
