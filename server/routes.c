#include "routes.h"

#include "raise_limits.h"
#include "metrics.h"

const struct route routes[] = {
    /* method, pattern, handler, who, body limit */
    {METHOD_GET, "/healthz", health_get, ACCESS_PUBLIC, LIMIT_BODY_NONE},
    {METHOD_GET, "/metrics", metrics_get, ACCESS_PUBLIC, LIMIT_BODY_NONE},
};

const size_t routes_count = sizeof(routes) / sizeof(routes[0]);

int routes_index(const struct route *r)
{
    return (int)(r - routes);
}

void routes_init_metrics(void)
{
    static const char *names[sizeof(routes) / sizeof(routes[0])];
    for (size_t i = 0; i < routes_count; i++)
        names[i] = routes[i].pattern;
    metrics_init(names, routes_count);
}
