/* Intelligence items (POST /v1/intelligence): the category, risk and grading tables, body
 * validation (3x5x2 police grading, the retired 5x5x5 scheme) and RFC 3339 UTC times.
 * Pure functions: no sockets, no database. */
#ifndef RAISE_INTEL_H
#define RAISE_INTEL_H

#include <json-c/json.h>
#include <time.h>

struct problem;

/* Bounds of an item; the schema (sql/003_subjects_intelligence.sql) enforces the same. */
#define INTEL_SUMMARY_MAX       500
#define INTEL_DETAIL_MAX        10000
#define INTEL_CONDITIONS_MAX    2000
#define INTEL_RESTRICTED_MAX    20
#define INTEL_GRAVITY_MIN       1
#define INTEL_GRAVITY_MAX       8
#define INTEL_FUTURE_SLACK_S    300 /* occurred_at may be this far ahead of the server clock */
#define INTEL_GRADING_TEXT_SIZE 16

extern const char *const intel_categories[];  /* NULL-terminated, snake_case */
extern const char *const intel_risk_levels[]; /* low, medium, high, critical */
extern const char *const intel_schemes[];     /* "3x5x2" (current, the default), "5x5x5" */

/* 1 for arrest, charge, offence_at_hub (the categories that carry a Youth Justice gravity
 * score 1-8), else 0 (NULL included). */
int intel_category_has_gravity(const char *category);
/* Validate a parsed POST /v1/intelligence body (o is a JSON object, borrowed). Police
 * authors must grade (author_is_police); others may. Adds one field error per problem to p
 * ("subject_id", "grading.conditions", unknown fields by their path) and returns how many it
 * added. occurred_at may be at most INTEL_FUTURE_SLACK_S after now. */
int intel_validate(json_object *o, int author_is_police, time_t now, struct problem *p);
/* A grading for display: "1A P", "2C C" (3x5x2) or "B2 3" (5x5x5: source, assessment,
 * handling). scheme NULL means 3x5x2. "" if ungraded (any part NULL) or the scheme is
 * unknown. Returns out. */
const char *intel_grading_text(const char *scheme, const char *source, const char *assessment,
                               const char *handling, char out[INTEL_GRADING_TEXT_SIZE]);
/* Parse "2026-03-01T14:05:00Z" or "2026-03-01T14:05:00.123Z" (RFC 3339, UTC only, upper-case
 * T and Z, 1-9 fraction digits, which are dropped; years 1970-9999; no leap second) into
 * epoch seconds. 0 ok, -1 bad (*out untouched). */
int intel_parse_time(const char *s, time_t *out);

#endif
