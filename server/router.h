/* Route table matching: method + path pattern -> route. Pure: no sockets, no database. */
#ifndef RAISE_ROUTER_H
#define RAISE_ROUTER_H

#include "raise_limits.h"

#include <stddef.h>

enum http_method {
    METHOD_GET = 1 << 0,
    METHOD_HEAD = 1 << 1,
    METHOD_POST = 1 << 2,
    METHOD_PUT = 1 << 3,
    METHOD_PATCH = 1 << 4,
    METHOD_DELETE = 1 << 5,
    METHOD_OPTIONS = 1 << 6,
    METHOD_OTHER = 1 << 7,
};

/* Who may call a route; the identity layer checks these bits. */
enum route_access {
    ACCESS_PUBLIC = 0, /* no credentials needed */
    ACCESS_ADMIN = 1 << 0,
    ACCESS_HUB_MANAGER = 1 << 1,
    ACCESS_POLICE = 1 << 2,
    ACCESS_PRACTITIONER = 1 << 3,
    ACCESS_SIGNED_IN = ACCESS_ADMIN | ACCESS_HUB_MANAGER | ACCESS_POLICE | ACCESS_PRACTITIONER,
};

struct http_req;
typedef void (*route_handler)(struct http_req *req);

struct route {
    int method;          /* one enum http_method bit */
    const char *pattern; /* "/v1/subjects/{id}" */
    route_handler handler;
    int access;          /* enum route_access bits */
    size_t body_limit;   /* bytes; 0 = takes no body */
    const char *purpose; /* audit purpose when the client sends no X-Purpose */
};

struct route_params {
    int n;
    struct {
        const char *name; /* borrowed from the pattern, not NUL-terminated */
        size_t name_len;
        const char *value; /* borrowed from the path, not NUL-terminated */
        size_t value_len;
    } v[LIMIT_ROUTE_PARAMS];
};

enum router_result { ROUTER_FOUND, ROUTER_NOT_FOUND, ROUTER_METHOD_NOT_ALLOWED };

/* Find the route for method + path (path without query). HEAD matches GET routes.
 * On ROUTER_METHOD_NOT_ALLOWED, *allow_methods holds the methods the path accepts. */
enum router_result router_match(const struct route *table, size_t n, int method, const char *path,
                                const struct route **found, struct route_params *params,
                                int *allow_methods);
/* "GET, HEAD, POST" for an Allow header, into buf. */
const char *router_allow_string(int methods, char *buf, size_t len);
/* Parse a method name; METHOD_OTHER if unknown. */
int router_method_parse(const char *name);
const char *router_method_name(int method);

/* Body checks before a handler runs: 0 if fine, else the HTTP status (413 or 415) and a
 * detail text. content_type may be NULL. */
int router_check_body(const struct route *r, const char *content_type, size_t body_len,
                      const char **detail);

#endif
