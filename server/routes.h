/* The route table: every route the server answers, with its access rule and body limit. */
#ifndef RAISE_ROUTES_H
#define RAISE_ROUTES_H

#include "router.h"

extern const struct route routes[];
extern const size_t routes_count;

/* Index of a route in the table (for metrics). */
int routes_index(const struct route *r);
/* Register route names with the metrics module. */
void routes_init_metrics(void);

/* Handlers, one module each. */
void health_get(struct http_req *r);
void metrics_get(struct http_req *r);
void sessions_create(struct http_req *r);
void sessions_delete(struct http_req *r);
void me_get(struct http_req *r);
void agencies_create(struct http_req *r);
void agencies_list(struct http_req *r);
void hubs_create(struct http_req *r);
void hubs_list(struct http_req *r);
void users_create(struct http_req *r);
void users_list(struct http_req *r);
void users_update(struct http_req *r);
void certificates_create(struct http_req *r);
void subjects_create(struct http_req *r);
void subjects_list(struct http_req *r);
void subjects_get(struct http_req *r);
void subjects_update(struct http_req *r);
void intelligence_create(struct http_req *r);
void intelligence_list(struct http_req *r);
void intelligence_get(struct http_req *r);
void intelligence_retract(struct http_req *r);
void meetings_create(struct http_req *r);
void meetings_list(struct http_req *r);
void meetings_get(struct http_req *r);
void meetings_update(struct http_req *r);
void meetings_start(struct http_req *r);
void meetings_close(struct http_req *r);
void agenda_get(struct http_req *r);
void agenda_suggestions(struct http_req *r);
void actions_create_in_meeting(struct http_req *r);
void actions_create(struct http_req *r);
void actions_list(struct http_req *r);
void actions_summary(struct http_req *r);
void actions_get(struct http_req *r);
void actions_complete(struct http_req *r);
void actions_progress(struct http_req *r);
void actions_cannot_complete(struct http_req *r);
void actions_reopen(struct http_req *r);
void actions_cancel(struct http_req *r);

#endif
