/* The HTTP side of one worker: evhttp over bufferevent_openssl, the request context that
 * handlers receive, and replies (JSON, problem+json, text). Every request ends in exactly one
 * http_reply*, which writes the access-log line and frees the context. */
#ifndef RAISE_HTTP_H
#define RAISE_HTTP_H

#include "db.h"
#include "raise_limits.h"
#include "router.h"

#include <json-c/json.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/queue.h>

struct config;
struct evbuffer;
struct event_base;
struct evhttp_request;
struct problem;
struct http_server;
struct stream_worker;
struct auth_user;

typedef void (*http_db_cb)(struct http_req *r, enum db_status st, PGresult *res);

struct http_req {
    struct evhttp_request *ev;  /* borrowed; NULL once the client connection is gone */
    struct http_server *server; /* borrowed */
    const struct route *route;  /* borrowed; NULL when unmatched */
    struct route_params params;
    char id[LIMIT_REQUEST_ID + 1];
    uint64_t start_us;
    struct db_query *query; /* borrowed handle while a query is pending */
    http_db_cb db_cb;
    struct auth_user *user; /* owned; NULL until authenticated */
    char auth_csrf[65];     /* set by auth when the credentials came in the session cookie */
    struct work_job *job;   /* borrowed handle while helper-thread work is pending */
    void *handler_data;     /* the handler's own state between callbacks */
    /* If set, frees handler_data (when not NULL) when the request ends without the handler
     * taking it back: the client went away or the database became unavailable mid-query. */
    void (*handler_free)(void *);
    TAILQ_ENTRY(http_req) entry;
};

/* One per worker. listen_fd is a listening socket the server owns from now on. */
struct http_server *http_server_new(struct event_base *base, int worker_id, int listen_fd,
                                    const struct config *cfg, struct db_pool *db);
/* Stop accepting new connections (graceful stop begins). */
void http_server_stop_accepting(struct http_server *hs);
/* Requests being handled right now. */
int http_server_inflight(const struct http_server *hs);
/* Closes every connection; in-flight requests are orphaned (no reply). Safe with NULL. */
void http_server_free(struct http_server *hs);
/* Called once at start-up, before any worker runs: registers the SSL ex_data slot. */
void http_global_init(void);

struct db_pool *http_db(const struct http_req *r);
/* Send a query for this request; cb runs with the result. On DB_UNAVAILABLE the request has
 * already been answered 503 and cb is not called. -1 if the query could not even be queued
 * (503 already sent): the caller must return without touching r. */
int http_query(struct http_req *r, const char *sql, int nparams, const char *const *params,
               http_db_cb cb);

void http_add_header(struct http_req *r, const char *name, const char *value);
/* Run the route's handler, or answer 400 if the query string does not parse: no parameter
 * of it could be read then, and a list would quietly drop every filter and cursor. */
void http_handle(struct http_req *r);
/* Query-string parameter (decoded) or NULL; owned by the caller. */
char *http_query_param(const struct http_req *r, const char *name);
/* 1 if the client connected from a loopback address. */
int http_is_local(const struct http_req *r);

/* The client's address as text ("127.0.0.1"); "" if unknown. */
const char *http_client_addr(const struct http_req *r);
/* The value of cookie name from the request's Cookie header(s) into out: its length, or -1
 * if absent, malformed or too long. */
int http_cookie(const struct http_req *r, const char *name, char *out, size_t cap);
/* A request header or NULL. */
const char *http_header(const struct http_req *r, const char *name);
/* The request body (NUL-terminated copy is not made): pointer + length; NULL if none. */
const char *http_body(struct http_req *r, size_t *len);
/* The SSL of the client connection, or NULL. */
struct ssl_st *http_ssl(const struct http_req *r);
/* Run fn(arg) on a helper thread, then done(arg) on this worker; if the client goes away
 * first, done is skipped and free_arg(arg) is called instead. */
void http_work(struct http_req *r, void (*fn)(void *), void (*done)(void *), void *arg,
               void (*free_arg)(void *));

/* The worker's live-stream state. */
struct stream_worker *http_stream(const struct http_req *r);
void http_server_set_stream(struct http_server *hs, struct stream_worker *sw);
/* Start a streaming 200 reply (content_type) and hand the evhttp request to the caller:
 * the access line is written, r->user moves to *user, the server is returned in *server
 * (for http_end_detached), r is freed, the caller ends the reply. */
struct evhttp_request *http_detach(struct http_req *r, const char *content_type,
                                   struct auth_user **user, struct http_server **server);
/* Does the reply from http_detach use chunked transfer coding (an HTTP/1.1 client)? */
int http_reply_chunked(struct evhttp_request *req);
/* One chunk of text (not empty) on a reply from http_detach, written as one piece (one TLS
 * record when the connection is idle): use this instead of evhttp_send_reply_chunk().
 * chunked: http_reply_chunked(req), asked once. Returns the bytes given to the connection
 * (framing included; 0 if none: no connection, or len 0). */
size_t http_write_chunk(struct evhttp_request *req, int chunked, const char *text, size_t len);
/* Text written to many connections without a copy each (a meeting's document can be
 * megabytes, and a stream's readers many): each connection's buffer refers to it, and the
 * last reference lets it go. */
struct http_shared {
    _Atomic int refs;
    char *text; /* owned */
    size_t len;
};
/* One reference to text (malloc'd, taken over). */
struct http_shared *http_shared_new(char *text, size_t len);
void http_shared_unref(struct http_shared *sh);
/* As http_write_chunk, sh->text referred to, not copied (sh->len not 0). Costs a TLS record
 * and write() of its own for the size line: for big texts. */
size_t http_write_chunk_shared(struct evhttp_request *req, int chunked, struct http_shared *sh);
/* End a reply from http_detach (still attached to its connection) cleanly, after one last
 * chunk of text (not empty): use this, never evhttp_send_reply_end() directly (see http.c).
 * The caller must not touch req or its connection afterwards; the connection's close
 * callback is taken over. */
void http_end_detached(struct http_server *hs, struct evhttp_request *req, const char *last);

/* Replies. body/o/p are consumed. */
void http_reply(struct http_req *r, int status, const char *content_type, struct evbuffer *body);
void http_reply_json(struct http_req *r, int status, json_object *o);
void http_reply_problem(struct http_req *r, struct problem *p);
void http_reply_error(struct http_req *r, int status, const char *detail);
void http_reply_unavailable(struct http_req *r);
/* A database error nobody planned for: logs the SQLSTATE (never the data), answers 500. */
void http_reply_db_error(struct http_req *r, PGresult *res);

#endif
