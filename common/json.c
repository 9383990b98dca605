#include "json.h"

#include "problem.h"
#include "raise_limits.h"
#include "xmalloc.h"

#include <ctype.h>
#include <stdio.h>
#include <strings.h>
#include <string.h>

/* json-c keeps the last of duplicate keys silently; scan the raw text for duplicates at any
 * depth so a body can never mean two things. Strings are compared as raw (escaped) text.
 * Returns 1 on a duplicate, -1 on text that is not strict JSON: json-c 0.16 accepts
 * single-quoted keys even in strict mode, and their contents must never be read as
 * structure (found by tests/fuzz/fuzz_json: "{'}}}{':1}" drove the depth below zero).
 * Returns -2 on a string (key or value) holding \u0000: json-c decodes it, but every reader
 * here takes strings as C strings, so the text after it would be dropped without a word
 * ("Seen with\u0000 ..." stored as "Seen with", past every length check; found in review),
 * and PostgreSQL's text cannot hold it anyway. */
struct key_frame {
    const char *keys[64];
    size_t lens[64];
    int n;
    int is_object;
};

static int scan_duplicates(const char *s, size_t len)
{
    struct key_frame stack[LIMIT_JSON_DEPTH + 1];
    int depth = -1, expect_key = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '\'') {
            return -1;
        } else if (c == '{' || c == '[') {
            if (++depth > LIMIT_JSON_DEPTH)
                return -1;
            stack[depth].n = 0;
            stack[depth].is_object = c == '{';
            expect_key = c == '{';
        } else if (c == '}' || c == ']') {
            if (--depth < -1)
                return -1;
            expect_key = 0;
        } else if (c == ',') {
            expect_key = depth >= 0 && stack[depth].is_object;
        } else if (c == '"') {
            size_t start = ++i;
            while (i < len && s[i] != '"') {
                if (s[i] == '\\' && i + 5 < len && memcmp(s + i + 1, "u0000", 5) == 0)
                    return -2;
                i += s[i] == '\\' ? 2 : 1;
            }
            if (expect_key && depth >= 0) {
                struct key_frame *f = &stack[depth];
                size_t klen = (i < len ? i : len) - start;
                for (int k = 0; k < f->n; k++)
                    if (f->lens[k] == klen && memcmp(f->keys[k], s + start, klen) == 0)
                        return 1;
                if (f->n < 64) {
                    f->keys[f->n] = s + start;
                    f->lens[f->n++] = klen;
                }
                expect_key = 0;
            }
        }
    }
    return 0;
}

json_object *json_parse_body(const char *buf, size_t len, struct problem **p)
{
    if (len == 0) {
        *p = problem_new(400, "the request needs a JSON object body");
        return NULL;
    }
    json_tokener *tok = json_tokener_new_ex(LIMIT_JSON_DEPTH);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *o = json_tokener_parse_ex(tok, buf, (int)len);
    enum json_tokener_error err = json_tokener_get_error(tok);
    size_t used = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (o == NULL || err != json_tokener_success) {
        *p = problem_new(400, "malformed JSON: %s",
                         err == json_tokener_continue ? "unexpected end of input"
                                                      : json_tokener_error_desc(err));
        json_object_put(o);
        return NULL;
    }
    while (used < len && isspace((unsigned char)buf[used]))
        used++;
    if (used != len || !json_object_is_type(o, json_type_object)) {
        *p = problem_new(400, used != len ? "malformed JSON: data after the object"
                                          : "the body must be a JSON object");
        json_object_put(o);
        return NULL;
    }
    int dup = scan_duplicates(buf, len);
    if (dup != 0) {
        *p = problem_new(400, dup > 0     ? "malformed JSON: a key appears twice in one object"
                              : dup == -2 ? "malformed JSON: text may not hold \\u0000 (NUL)"
                                          : "malformed JSON: not strict JSON (single quotes?)");
        json_object_put(o);
        return NULL;
    }
    return o;
}

int json_utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p, n = c < 0x80                 ? 0
                             : c >= 0xc2 && c <= 0xdf ? 1
                             : (c & 0xf0) == 0xe0     ? 2
                             : c >= 0xf0 && c <= 0xf4 ? 3
                                                      : 9;
        if (n == 9)
            return 0; /* a continuation byte first, an overlong lead (c0, c1) or past f4 */
        unsigned cp = n == 0 ? c : c & (0x3f >> n);
        for (unsigned i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return 0; /* cut short (a NUL stops here too) */
            cp = cp << 6 | (p[i] & 0x3f);
        }
        if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return 0; /* overlong, a surrogate, or past U+10FFFF */
        p += n + 1;
    }
    return 1;
}

size_t json_utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

int json_is_uuid(const char *s)
{
    static const int dash[] = {8, 13, 18, 23};
    if (s == NULL || strlen(s) != 36)
        return 0;
    for (int i = 0, d = 0; i < 36; i++) {
        if (d < 4 && i == dash[d]) {
            if (s[i] != '-')
                return 0;
            d++;
        } else if (!isxdigit((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}

static const struct json_field *find(const struct json_field *f, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(f[i].name, key) == 0)
            return &f[i];
    return NULL;
}

static int check_uuid_array(json_object *v, const struct json_field *f, struct problem *p)
{
    if (!json_object_is_type(v, json_type_array)) {
        problem_add_field(p, f->name, "must be an array of ids");
        return 1;
    }
    size_t n = json_object_array_length(v);
    if ((long)n < f->min || (long)n > f->max) {
        problem_add_field(p, f->name, "must have %ld to %ld items", f->min, f->max);
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(v, i);
        const char *s = json_object_get_string(e);
        if (!json_object_is_type(e, json_type_string) || !json_is_uuid(s)) {
            problem_add_field(p, f->name, "item %zu is not an id", i);
            return 1;
        }
        for (size_t j = 0; j < i; j++)
            if (strcasecmp(s, json_object_get_string(json_object_array_get_idx(v, j))) == 0) {
                problem_add_field(p, f->name, "lists %s twice", s);
                return 1;
            }
    }
    return 0;
}

static int check_string(json_object *v, const struct json_field *f, struct problem *p)
{
    const char *s = json_object_get_string(v);
    size_t n = json_utf8_len(s);
    if (f->kind == JK_UUID && !json_is_uuid(s)) {
        problem_add_field(p, f->name, "must be an id (UUID)");
        return 1;
    }
    if (f->kind == JK_HEX64) {
        int ok = strlen(s) == 64;
        for (const char *c = s; ok && *c; c++)
            ok = isxdigit((unsigned char)*c);
        if (!ok)
            problem_add_field(p, f->name, "must be 64 hexadecimal characters");
        return !ok;
    }
    if (f->kind == JK_ENUM) {
        for (const char *const *e = f->values; *e; e++)
            if (strcmp(*e, s) == 0)
                return 0;
        char list[512] = "";
        for (const char *const *e = f->values; *e; e++)
            snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
                     e == f->values ? "" : ", ", *e);
        problem_add_field(p, f->name, "must be one of %s", list);
        return 1;
    }
    if (f->kind == JK_STRING && ((long)n < f->min || (long)n > f->max)) {
        problem_add_field(p, f->name, "must be %ld to %ld characters", f->min, f->max);
        return 1;
    }
    return 0;
}

static int check_one(json_object *v, const struct json_field *f, struct problem *p)
{
    switch (f->kind) {
    case JK_STRING:
    case JK_UUID:
    case JK_ENUM:
    case JK_HEX64:
        if (!json_object_is_type(v, json_type_string)) {
            problem_add_field(p, f->name, "must be a string");
            return 1;
        }
        return check_string(v, f, p);
    case JK_INT:
        if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < f->min ||
            json_object_get_int64(v) > f->max) {
            problem_add_field(p, f->name, "must be an integer from %ld to %ld", f->min, f->max);
            return 1;
        }
        return 0;
    case JK_BOOL:
        if (!json_object_is_type(v, json_type_boolean)) {
            problem_add_field(p, f->name, "must be true or false");
            return 1;
        }
        return 0;
    case JK_UUID_ARRAY:
        return check_uuid_array(v, f, p);
    }
    return 0;
}

int json_validate(json_object *o, const struct json_field *fields, size_t n, struct problem *p)
{
    int errors = 0;
    json_object_object_foreach(o, key, val)
    {
        const struct json_field *f = find(fields, n, key);
        if (f == NULL) {
            problem_add_field(p, key, "is not a known field");
            errors++;
        } else if (val == NULL && !f->required) {
            continue; /* explicit null on an optional field: absent */
        } else if (val == NULL) {
            problem_add_field(p, key, "is required");
            errors++;
        } else {
            errors += check_one(val, f, p);
        }
    }
    for (size_t i = 0; i < n; i++)
        if (fields[i].required && !json_object_object_get_ex(o, fields[i].name, NULL)) {
            problem_add_field(p, fields[i].name, "is required");
            errors++;
        }
    return errors;
}

const char *json_str(json_object *o, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || v == NULL)
        return NULL;
    return json_object_get_string(v);
}

int json_has(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) && v != NULL;
}

char *json_uuid_array_literal(json_object *o, const char *key)
{
    json_object *a;
    if (!json_object_object_get_ex(o, key, &a) || a == NULL)
        return NULL;
    size_t n = json_object_array_length(a);
    char *s = xcalloc(n * 37 + 3, 1);
    strcat(s, "{");
    for (size_t i = 0; i < n; i++) {
        strcat(s, i ? "," : "");
        strcat(s, json_object_get_string(json_object_array_get_idx(a, i)));
    }
    strcat(s, "}");
    return s;
}

json_object *json_from_pg_array(const char *a)
{
    json_object *arr = json_object_new_array();
    while (*a != '\0') {
        a += strspn(a, "{},");
        size_t n = strcspn(a, ",}");
        if (n > 0)
            json_object_array_add(arr, json_object_new_string_len(a, (int)n));
        a += n;
    }
    return arr;
}
