#define _GNU_SOURCE
#include "problem.h"

#include "xmalloc.h"

#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

struct problem_type {
    int status;
    const char *slug;
    const char *title;
};

static const struct problem_type types[] = {
    {400, "bad-request", "Bad Request"},
    {401, "unauthorized", "Unauthorized"},
    {403, "forbidden", "Forbidden"},
    {404, "not-found", "Not Found"},
    {405, "method-not-allowed", "Method Not Allowed"},
    {406, "not-acceptable", "Not Acceptable"},
    {409, "conflict", "Conflict"},
    {413, "payload-too-large", "Payload Too Large"},
    {415, "unsupported-media-type", "Unsupported Media Type"},
    {422, "validation-failed", "Unprocessable Content"},
    {429, "too-many-requests", "Too Many Requests"},
    {500, "internal-error", "Internal Server Error"},
    {503, "unavailable", "Service Unavailable"},
};

#define NTYPES (sizeof(types) / sizeof(types[0]))

struct problem_field {
    char *field;   /* owned */
    char *message; /* owned */
};

struct problem {
    int status;
    char *detail;                 /* owned; may be NULL */
    struct problem_field *fields; /* owned */
    size_t nfields;
    int retry_after;
};

static const struct problem_type *type_of(int status)
{
    for (size_t i = 0; i < NTYPES; i++)
        if (types[i].status == status)
            return &types[i];
    return status >= 500 ? &types[NTYPES - 2] : &types[0];
}

const char *problem_type_for(int status)
{
    static _Thread_local char buf[64];
    snprintf(buf, sizeof(buf), "urn:raise:problem:%s", type_of(status)->slug);
    return buf;
}

const char *problem_title_for(int status)
{
    return type_of(status)->title;
}

struct problem *problem_new(int status, const char *detail_fmt, ...)
{
    struct problem *p = xcalloc(1, sizeof(*p));
    p->status = status;
    if (detail_fmt != NULL) {
        va_list ap;
        va_start(ap, detail_fmt);
        if (vasprintf(&p->detail, detail_fmt, ap) < 0)
            p->detail = NULL;
        va_end(ap);
    }
    return p;
}

void problem_free(struct problem *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->nfields; i++) {
        free(p->fields[i].field);
        free(p->fields[i].message);
    }
    free(p->fields);
    free(p->detail);
    free(p);
}

void problem_add_field(struct problem *p, const char *field, const char *fmt, ...)
{
    p->fields = xrealloc(p->fields, (p->nfields + 1) * sizeof(*p->fields));
    struct problem_field *f = &p->fields[p->nfields++];
    f->field = xstrdup(field);
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&f->message, fmt, ap) < 0)
        f->message = xstrdup("invalid");
    va_end(ap);
}

int problem_prefix_fields(struct problem *p, const struct problem *from, const char *key,
                          size_t index)
{
    for (size_t i = 0; i < from->nfields; i++) {
        const char *f = from->fields[i].field;
        char *name =
            f[0] ? xasprintf("%s[%zu].%s", key, index, f) : xasprintf("%s[%zu]", key, index);
        problem_add_field(p, name, "%s", from->fields[i].message);
        free(name);
    }
    return (int)from->nfields;
}

size_t problem_field_count(const struct problem *p)
{
    return p->nfields;
}

int problem_status(const struct problem *p)
{
    return p->status;
}

const char *problem_title(const struct problem *p)
{
    return type_of(p->status)->title;
}

void problem_set_retry_after(struct problem *p, int seconds)
{
    p->retry_after = seconds;
}

int problem_retry_after(const struct problem *p)
{
    return p->retry_after;
}

char *problem_to_json(const struct problem *p)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "type", json_object_new_string(problem_type_for(p->status)));
    json_object_object_add(o, "title", json_object_new_string(problem_title(p)));
    json_object_object_add(o, "status", json_object_new_int(p->status));
    if (p->detail != NULL)
        json_object_object_add(o, "detail", json_object_new_string(p->detail));
    if (p->nfields > 0) {
        json_object *errs = json_object_new_array_ext((int)p->nfields);
        for (size_t i = 0; i < p->nfields; i++) {
            json_object *e = json_object_new_object();
            json_object_object_add(e, "field", json_object_new_string(p->fields[i].field));
            json_object_object_add(e, "message", json_object_new_string(p->fields[i].message));
            json_object_array_add(errs, e);
        }
        json_object_object_add(o, "errors", errs);
    }
    char *s = xstrdup(
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return s;
}
