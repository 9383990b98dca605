/* GET /healthz and GET /metrics: answered from in-memory state, never a query per request. */
#include "config.h"
#include "http.h"
#include "metrics.h"
#include "routes.h"
#include "server.h"

#include <event2/buffer.h>

void health_get(struct http_req *r)
{
    long live = metrics_gauge_get(GAUGE_DB_IDLE) + metrics_gauge_get(GAUGE_DB_BUSY);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "status", json_object_new_string(live > 0 ? "ok" : "unavailable"));
    json_object_object_add(o, "database", json_object_new_string(live > 0 ? "ok" : "unavailable"));
    json_object_object_add(o, "version", json_object_new_string(RAISE_VERSION));
    json_object_object_add(o, "workers", json_object_new_int(server_config()->workers));
    json_object_object_add(o, "db_connections", json_object_new_int64(live));
    json_object_object_add(o, "uptime_s", json_object_new_int64(server_uptime()));
    if (live == 0)
        http_add_header(r, "Retry-After", "2");
    http_reply_json(r, live > 0 ? 200 : 503, o);
}

void metrics_get(struct http_req *r)
{
    int access = server_config()->metrics;
    if (access == METRICS_OFF || (access == METRICS_LOCAL && !http_is_local(r))) {
        http_reply_error(r, 404, "there is no resource at this path");
        return;
    }
    struct evbuffer *b = evbuffer_new();
    metrics_render(b);
    http_reply(r, 200, "text/plain; version=0.0.4; charset=utf-8", b);
}
