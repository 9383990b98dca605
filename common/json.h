/* Request-body JSON: strict, depth-limited parsing and table-driven validation that names
 * every bad field in one problem (unknown fields included). */
#ifndef RAISE_JSON_H
#define RAISE_JSON_H

#include <json-c/json.h>
#include <stddef.h>

struct problem;

enum json_kind {
    JK_STRING, /* min..max characters (UTF-8 code points) */
    JK_INT,    /* min..max */
    JK_BOOL,
    JK_UUID,
    JK_ENUM,       /* one of values */
    JK_UUID_ARRAY, /* array of UUIDs, min..max items, no duplicates */
    JK_HEX64,      /* 64 lowercase hex characters (after lowering) */
};

struct json_field {
    const char *name;
    enum json_kind kind;
    int required;
    long min, max;
    const char *const *values; /* JK_ENUM: NULL-terminated */
};

/* Parse a request body: must be one JSON object, UTF-8, depth <= LIMIT_JSON_DEPTH, nothing
 * after it, no duplicate keys. NULL + *p (a 400 problem) on failure. */
json_object *json_parse_body(const char *buf, size_t len, struct problem **p);
/* Check o against fields: adds one error per bad, missing or unknown field to p.
 * Returns the number of errors added. */
int json_validate(json_object *o, const struct json_field *fields, size_t n, struct problem *p);
/* Field accessors for validated objects (NULL / default when absent). */
const char *json_str(json_object *o, const char *key);
int json_has(json_object *o, const char *key);
/* The (validated) array of ids under key as a PostgreSQL array literal "{a,b}", owned;
 * NULL when the key is absent or null. */
char *json_uuid_array_literal(json_object *o, const char *key);
/* A PostgreSQL array literal "{a,b}" (text) as a JSON array of strings. */
json_object *json_from_pg_array(const char *literal);
/* 1 if s is a canonical UUID (8-4-4-4-12 hex). */
int json_is_uuid(const char *s);
/* 1 if s is well-formed UTF-8 (as PostgreSQL takes it: no overlong forms, surrogates or code
 * points past U+10FFFF); for text that did not come through the JSON parser (headers). */
int json_utf8_valid(const char *s);
/* Count UTF-8 code points. */
size_t json_utf8_len(const char *s);

#endif
