/* GET /v1/stream: Server-Sent Events. One LISTEN connection per process (main thread) wakes
 * every worker; each worker fetches new event rows once for all its subscribers (from the
 * lowest cursor among them), renders each event once, and writes it to every subscriber
 * that may see it and has not had it yet (cursor < id): no loss, no duplicate, in order. */
#ifndef RAISE_STREAM_H
#define RAISE_STREAM_H

struct event_base;
struct db_pool;
struct http_req;
struct stream_worker;

struct stream_worker *stream_worker_new(struct event_base *base, struct db_pool *db, int id);
/* End every stream (clients resume with Last-Event-ID). */
void stream_worker_stop(struct stream_worker *sw);
void stream_worker_free(struct stream_worker *sw);
/* From the LISTEN connection (any thread): new events exist. payload may be NULL. */
void stream_notify_all(const char *payload, void *unused);
/* The route handler. */
void stream_get(struct http_req *r);

#endif
