/* GET /v1/stream: Server-Sent Events. One LISTEN connection per process (main thread): when
 * new events are announced it fetches them once and hands the batch to every worker; a
 * worker also fetches for itself, once for all its subscribers from the lowest cursor among
 * them, for those that are behind (resuming, blocked, just come). Each event is rendered
 * once and written to every subscriber that may see it and has not had it yet (cursor < id):
 * no loss, no duplicate, in order. */
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
/* From the LISTEN connection (main thread): new events exist, up to the id in payload (NULL:
 * unknown, after a reconnection). */
void stream_notify_all(const char *payload, void *unused);
/* Main thread: fetch announced events once for all workers on listener (borrowed), until
 * stream_shared_stop, which comes before the pool is freed. */
void stream_shared_start(struct db_pool *listener);
void stream_shared_stop(void);
/* The route handler. */
void stream_get(struct http_req *r);

#endif
