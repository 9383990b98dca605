#include "router.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static const struct {
    int method;
    const char *name;
} methods[] = {
    {METHOD_GET, "GET"},         {METHOD_HEAD, "HEAD"},   {METHOD_POST, "POST"},
    {METHOD_PUT, "PUT"},         {METHOD_PATCH, "PATCH"}, {METHOD_DELETE, "DELETE"},
    {METHOD_OPTIONS, "OPTIONS"},
};

#define NMETHODS (sizeof(methods) / sizeof(methods[0]))

int router_method_parse(const char *name)
{
    for (size_t i = 0; i < NMETHODS; i++)
        if (strcmp(methods[i].name, name) == 0)
            return methods[i].method;
    return METHOD_OTHER;
}

const char *router_method_name(int method)
{
    for (size_t i = 0; i < NMETHODS; i++)
        if (methods[i].method == method)
            return methods[i].name;
    return "OTHER";
}

const char *router_allow_string(int allowed, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < NMETHODS && used < len; i++) {
        if (!(allowed & methods[i].method))
            continue;
        int n = snprintf(buf + used, len - used, "%s%s", used ? ", " : "", methods[i].name);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    return buf;
}

/* Match one pattern against a path; fills params. 1 on match. */
static int pattern_match(const char *pattern, const char *path, struct route_params *params)
{
    params->n = 0;
    if (strcmp(pattern, "/") == 0) /* the root: the one path with an empty segment */
        return strcmp(path, "/") == 0;
    const char *p = pattern, *s = path;
    while (*p != '\0' && *s != '\0') {
        if (*p != '/' || *s != '/')
            return 0;
        p++, s++;
        const char *pend = strchr(p, '/'), *send = strchr(s, '/');
        size_t plen = pend ? (size_t)(pend - p) : strlen(p);
        size_t slen = send ? (size_t)(send - s) : strlen(s);
        if (slen == 0)
            return 0; /* empty segment: "//" or trailing "/" */
        if (plen >= 2 && p[0] == '{' && p[plen - 1] == '}') {
            if (params->n >= LIMIT_ROUTE_PARAMS)
                return 0;
            params->v[params->n].name = p + 1;
            params->v[params->n].name_len = plen - 2;
            params->v[params->n].value = s;
            params->v[params->n].value_len = slen;
            params->n++;
        } else if (plen != slen || memcmp(p, s, plen) != 0) {
            return 0;
        }
        p += plen, s += slen;
    }
    return *p == '\0' && *s == '\0';
}

enum router_result router_match(const struct route *table, size_t n, int method, const char *path,
                                const struct route **found, struct route_params *params,
                                int *allow_methods)
{
    struct route_params tmp;
    int want = method == METHOD_HEAD ? METHOD_GET : method;
    *allow_methods = 0;
    *found = NULL;
    if (path == NULL || path[0] != '/')
        return ROUTER_NOT_FOUND;
    for (size_t i = 0; i < n; i++) {
        if (!pattern_match(table[i].pattern, path, &tmp))
            continue;
        if (table[i].method == want) {
            *found = &table[i];
            *params = tmp;
            return ROUTER_FOUND;
        }
        *allow_methods |= table[i].method;
        if (table[i].method == METHOD_GET)
            *allow_methods |= METHOD_HEAD;
    }
    return *allow_methods ? ROUTER_METHOD_NOT_ALLOWED : ROUTER_NOT_FOUND;
}

/* application/json, optionally with "; charset=utf-8" (any case, spaces allowed). */
static int is_json(const char *ct)
{
    static const char json[] = "application/json";
    size_t n = sizeof(json) - 1;
    if (strncasecmp(ct, json, n) != 0)
        return 0;
    ct += n;
    while (*ct == ' ')
        ct++;
    if (*ct == '\0')
        return 1;
    if (*ct != ';')
        return 0;
    ct++;
    while (*ct == ' ')
        ct++;
    return strcasecmp(ct, "charset=utf-8") == 0 || strcasecmp(ct, "charset=\"utf-8\"") == 0;
}

int router_check_body(const struct route *r, const char *content_type, size_t body_len,
                      const char **detail)
{
    if (body_len > r->body_limit) {
        *detail = r->body_limit == 0 ? "this route takes no request body"
                                     : "the request body is larger than this route accepts";
        return 413;
    }
    if (body_len > 0 && (content_type == NULL || !is_json(content_type))) {
        *detail = "request bodies must be application/json (charset utf-8)";
        return 415;
    }
    return 0;
}
