/* libFuzzer target: the router against the real route table.
 * Input: byte 0 picks the method (data[0] % 8: GET HEAD POST PUT PATCH DELETE OPTIONS OTHER,
 * so the digits '0'..'7' are readable seeds), byte 1 the body length (data[1] * 512 bytes:
 * 0 to 130560, across every route's body limit), then the path up to the first '\n' and the
 * Content-Type after it (absent when there is no '\n'). Besides the sanitizers, the target
 * checks what router_match promises: a found route has the method, its captures point into
 * the path and are not empty; a 405 names at least one method; the Allow text fits. */
#include "router.h"
#include "routes.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int method_bits[8] = {METHOD_GET,   METHOD_HEAD,   METHOD_POST,    METHOD_PUT,
                                   METHOD_PATCH, METHOD_DELETE, METHOD_OPTIONS, METHOD_OTHER};

static void check_found(const struct route *r, const struct route_params *params, int method,
                        const char *path, size_t path_len)
{
    if (r == NULL || r < routes || r >= routes + routes_count)
        abort();
    if (r->method != method && !(method == METHOD_HEAD && r->method == METHOD_GET))
        abort();
    if (params->n < 0 || params->n > LIMIT_ROUTE_PARAMS)
        abort();
    for (int i = 0; i < params->n; i++) {
        const char *v = params->v[i].value;
        size_t n = params->v[i].value_len;
        if (n == 0 || v < path || v + n > path + path_len || memchr(v, '/', n) != NULL)
            abort(); /* a capture is one whole, non-empty segment of the path */
    }
}

static void check_allow(int methods, size_t len)
{
    char *buf = malloc(len); /* exactly len bytes, so ASan sees any overrun */
    if (buf == NULL)
        return;
    const char *s = router_allow_string(methods, buf, len);
    if (s != buf || memchr(buf, '\0', len) == NULL)
        abort();
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    int method = method_bits[data[0] % 8];
    size_t body_len = (size_t)data[1] * 512;
    const char *rest = (const char *)data + 2;
    size_t rest_len = size - 2;
    const char *nl = memchr(rest, '\n', rest_len);
    size_t path_len = nl ? (size_t)(nl - rest) : rest_len;

    char *buf = malloc(rest_len + 2); /* path NUL content-type NUL */
    if (buf == NULL)
        return 0;
    char *path = buf, *ctype = NULL;
    memcpy(path, rest, path_len);
    path[path_len] = '\0';
    if (nl != NULL) {
        ctype = buf + path_len + 1;
        memcpy(ctype, nl + 1, rest_len - path_len - 1);
        ctype[rest_len - path_len - 1] = '\0';
    }

    const struct route *found = (const struct route *)1; /* must be overwritten */
    struct route_params params;
    int allow = -1;
    enum router_result res =
        router_match(routes, routes_count, method, path, &found, &params, &allow);
    switch (res) {
    case ROUTER_FOUND: {
        const char *detail = NULL;
        check_found(found, &params, method, path, strlen(path));
        int status = router_check_body(found, ctype, body_len, &detail);
        if (status != 0 && status != 413 && status != 415)
            abort();
        if ((status != 0) != (detail != NULL))
            abort(); /* a refusal explains itself; a pass leaves detail alone */
        break;
    }
    case ROUTER_METHOD_NOT_ALLOWED:
        if (found != NULL || allow <= 0 || (allow & method) != 0)
            abort();
        break;
    case ROUTER_NOT_FOUND:
        if (found != NULL || allow != 0)
            abort();
        break;
    default:
        abort();
    }

    check_allow(allow > 0 ? allow : method, 1 + size % 48);
    check_allow(0xff, 1 + data[1] % 48);
    if (router_method_parse(router_method_name(method)) != method)
        abort();
    if (ctype != NULL)
        (void)router_method_parse(ctype);
    free(buf);
    return 0;
}
