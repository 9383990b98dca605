#include "routes.h"

#include "audit.h"
#include "metrics.h"
#include "stream.h"
#include "web.h"
#include "raise_limits.h"

#define ANY      ACCESS_SIGNED_IN
#define ADMIN    ACCESS_ADMIN
#define AUDITORS (ACCESS_ADMIN | ACCESS_HUB_MANAGER)
#define SMALL    LIMIT_BODY_SMALL
#define NONE     LIMIT_BODY_NONE
#define MANAGER  ACCESS_HUB_MANAGER
/* case data: every role but admin (admins manage accounts and never see case data) */
#define CASE (ACCESS_HUB_MANAGER | ACCESS_POLICE | ACCESS_PRACTITIONER)

const struct route routes[] = {
    /* method, pattern, handler, who may call it, body limit, audit purpose */
    {METHOD_GET, "/", web_index, ACCESS_PUBLIC, NONE, "web page"},
    {METHOD_GET, "/app/{file}", web_file, ACCESS_PUBLIC, NONE, "web page"},
    {METHOD_GET, "/healthz", health_get, ACCESS_PUBLIC, NONE, "health check"},
    {METHOD_GET, "/metrics", metrics_get, ACCESS_PUBLIC, NONE, "monitoring"},
    {METHOD_POST, "/v1/sessions", sessions_create, ACCESS_PUBLIC, 4096, "sign-in"},
    {METHOD_DELETE, "/v1/sessions/current", sessions_delete, ANY, NONE, "sign-out"},
    {METHOD_GET, "/v1/me", me_get, ANY, NONE, "who am I"},
    {METHOD_POST, "/v1/agencies", agencies_create, ADMIN, SMALL, "account administration"},
    {METHOD_GET, "/v1/agencies", agencies_list, ANY, NONE, "account administration"},
    {METHOD_POST, "/v1/hubs", hubs_create, ADMIN, SMALL, "account administration"},
    {METHOD_GET, "/v1/hubs", hubs_list, ANY, NONE, "account administration"},
    {METHOD_POST, "/v1/users", users_create, ADMIN, SMALL, "account administration"},
    {METHOD_GET, "/v1/users", users_list, ADMIN, NONE, "account administration"},
    {METHOD_PATCH, "/v1/users/{id}", users_update, ADMIN, SMALL, "account administration"},
    {METHOD_POST, "/v1/users/{id}/certificates", certificates_create, ADMIN, SMALL,
     "account administration"},
    {METHOD_POST, "/v1/subjects", subjects_create, MANAGER, SMALL, "case management"},
    {METHOD_GET, "/v1/subjects", subjects_list, CASE, NONE, "case management"},
    {METHOD_GET, "/v1/subjects/{id}", subjects_get, CASE, NONE, "case management"},
    {METHOD_PATCH, "/v1/subjects/{id}", subjects_update, MANAGER, SMALL, "case management"},
    {METHOD_POST, "/v1/intelligence", intelligence_create, CASE, LIMIT_BODY_INTEL,
     "sharing intelligence"},
    {METHOD_GET, "/v1/intelligence", intelligence_list, CASE, NONE, "case management"},
    {METHOD_GET, "/v1/intelligence/{id}", intelligence_get, CASE, NONE, "case management"},
    {METHOD_POST, "/v1/intelligence/{id}/retract", intelligence_retract, CASE, SMALL,
     "correcting intelligence"},
    {METHOD_POST, "/v1/meetings", meetings_create, MANAGER, SMALL, "RAISE meeting"},
    {METHOD_GET, "/v1/meetings", meetings_list, CASE, NONE, "RAISE meeting"},
    {METHOD_GET, "/v1/meetings/{id}", meetings_get, CASE, NONE, "RAISE meeting"},
    {METHOD_PATCH, "/v1/meetings/{id}", meetings_update, MANAGER, LIMIT_BODY_MEETING,
     "RAISE meeting"},
    {METHOD_POST, "/v1/meetings/{id}/start", meetings_start, MANAGER, NONE, "RAISE meeting"},
    {METHOD_POST, "/v1/meetings/{id}/close", meetings_close, MANAGER, NONE, "RAISE meeting"},
    {METHOD_GET, "/v1/meetings/{id}/agenda", agenda_get, CASE, NONE, "RAISE meeting agenda"},
    {METHOD_GET, "/v1/hubs/{id}/agenda-suggestions", agenda_suggestions, MANAGER, NONE,
     "RAISE meeting planning"},
    {METHOD_POST, "/v1/meetings/{id}/actions", actions_create_in_meeting, MANAGER, SMALL,
     "RAISE meeting"},
    {METHOD_POST, "/v1/actions", actions_create, MANAGER, SMALL, "agreeing an action"},
    {METHOD_GET, "/v1/actions", actions_list, CASE, NONE, "action tracking"},
    {METHOD_GET, "/v1/actions/summary", actions_summary, CASE, NONE, "action tracking"},
    {METHOD_GET, "/v1/actions/{id}", actions_get, CASE, NONE, "action tracking"},
    {METHOD_POST, "/v1/actions/{id}/complete", actions_complete, CASE, SMALL,
     "completing an action"},
    {METHOD_POST, "/v1/actions/{id}/progress", actions_progress, CASE, SMALL, "updating an action"},
    {METHOD_POST, "/v1/actions/{id}/cannot-complete", actions_cannot_complete, CASE, SMALL,
     "updating an action"},
    {METHOD_POST, "/v1/actions/{id}/reopen", actions_reopen, MANAGER, SMALL, "reopening an action"},
    {METHOD_POST, "/v1/actions/{id}/cancel", actions_cancel, MANAGER, SMALL,
     "cancelling an action"},
    {METHOD_GET, "/v1/stream", stream_get, ANY, NONE, "live feed"},
    {METHOD_GET, "/v1/audit", audit_list, AUDITORS, NONE, "audit review"},
    {METHOD_GET, "/v1/audit/verify", audit_verify, AUDITORS, NONE, "audit verification"},
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
