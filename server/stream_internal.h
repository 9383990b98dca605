/* What the live stream's two files share, and nothing else should use: stream.c keeps the
 * subscribers (opening, pacing, credentials, the delivery audit, the route) and
 * stream_fanout.c gets events to them (the shared fetch, a worker's own fetch, passes and
 * slices). See stream.h and docs/architecture.md, "The live stream". */
#ifndef RAISE_STREAM_INTERNAL_H
#define RAISE_STREAM_INTERNAL_H

#include "auth.h"
#include "db.h"
#include "http.h"

#include <event2/event.h>
#include <json-c/json.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

/* One event of a fetched batch: its SSE text is rendered once for every subscriber (not a
 * meeting's: see render): the first time a subscriber may see it, or for a shared batch by
 * the main thread before any worker reads it. */
struct batch_row {
    long long id;
    int account; /* account.changed: never sent; holds its user's subscribers */
    char *text;  /* owned; NULL until rendered */
    size_t len;
    double at; /* its time: seconds since 1970, on the database's clock */
};

/* A fetched batch of events. A worker's own fetch is its alone; a shared one, fetched once
 * by the main thread, is read by every worker at once and freed by the last. */
struct batch {
    _Atomic int refs;
    PGresult *res;          /* owned: a copy of the fetch's result */
    struct batch_row *rows; /* owned */
    int n;
    /* The batch holds every event after from (to rows[n-1].id): the shared fetch's
     * shared_upto, or a worker's own fetch's lowest cursor. A subscriber whose cursor is
     * behind from must not skip the events in between: it waits for its worker's own fetch
     * from its cursor (a subscriber paused or held when that cursor was chosen). */
    long long from;
    int own; /* a worker's own fetch (its worker's alone), not the shared one */
};

/* At most this many batches are in a pass at once (fan_out_take); the rest wait queued. */
#define SSE_PASS_MAX 32

struct batch_ref {
    STAILQ_ENTRY(batch_ref) next;
    struct batch *b;
};

struct stream_sub {
    TAILQ_ENTRY(stream_sub) entry;
    struct stream_worker *sw;        /* borrowed */
    struct evhttp_request *req;      /* borrowed from evhttp; ended by us */
    struct evhttp_connection *evcon; /* borrowed */
    struct http_server *hs;          /* borrowed: the worker's, to end the reply */
    struct auth_user *user;          /* owned */
    char addr[64], request_id[LIMIT_REQUEST_ID + 1];
    long long cursor;       /* the last event id this subscriber has been sent (or skipped) */
    uint64_t blocked_since; /* ms; 0 = writing. Blocked: its unsent buffer is full */
    /* Stalling (see unblock_or_cut): since stall_since (ms; 0 = not), when it was blocked or
     * last read enough, having read stall_read bytes. handed: bytes ever given to its
     * connection, so it has read (into the kernel) handed - stream_unsent(); the reply's
     * head is not in handed, so that can be less than 0, but only differences of it are
     * used, and unsigned arithmetic keeps those exact. */
    uint64_t stall_since, stall_read, handed;
    int ending;  /* checked() found it signed out: closed at the end of that walk */
    int chunked; /* http_reply_chunked */
    /* Stopped at an account.changed event of its user (held_at) until its rights are read
     * again: HOLD_WAITING for the check to be sent, HOLD_CHECKING while it runs. */
    int held;
    long long held_at;
    int in_check; /* its user and session are in the check in flight */
    /* Deliveries not yet in the worker's audit notes, all of one young person and hub
     * (note_delivery): event ids "1,2,3" in a buffer of our own, no allocation per event. */
    char note_subject[40], note_hub[40];
    char *note_ids; /* owned */
    size_t note_len, note_cap;
    int audit_slot; /* its notes are written with this slot's (audit_flush) */
};

TAILQ_HEAD(sub_list, stream_sub);

enum { HOLD_NONE, HOLD_WAITING, HOLD_CHECKING };

struct stream_worker {
    struct event_base *base; /* borrowed */
    struct db_pool *db;      /* borrowed */
    int id;
    struct sub_list subs;
    int nsubs;
    struct event *kick;      /* owned; activated from the LISTEN thread */
    struct event *heartbeat; /* owned */
    struct event *poll;      /* owned */
    struct db_query *pending;
    struct db_query *checking;  /* a credentials check: the heartbeat's, or for held subs */
    int check_all;              /* the heartbeat's check waits for the one in flight */
    json_object *audit;         /* owned; deliveries not yet audited, see note_delivery */
    int audit_slot;             /* the slot the next flush writes */
    unsigned audit_slots_given; /* streams given a slot so far (round robin) */
    int again;
    long long from;   /* the cursor of the fetch in flight */
    long long newest; /* newest_event when it was sent: committed, so it must see those */
    int scanning;     /* the fetch in flight is fetch_scan_sql */
    char *out;        /* owned; one subscriber's share of a fetched batch (fan_out_one) */
    size_t out_len, out_cap;
    /* The meeting events of the pass, each parsed once and rendered once per view (the
     * young people a reader sees), not once per reader (stream_fanout.c). */
    struct meeting_event *meetings; /* owned */
    unsigned char *seen;            /* owned; one reader's view, while it is looked up */
    int seen_cap;
    /* The pass in progress, LIMIT_SSE_SLICE subscribers a loop turn (see fan_out_slice):
     * the batches it serves, in the order they came, each until every subscriber has been
     * visited once since it joined (cur_until, in visits). */
    struct batch *cur[SSE_PASS_MAX]; /* references */
    long cur_until[SSE_PASS_MAX];
    int ncur;
    long visits;                   /* subscribers visited by passes so far */
    int more;                      /* a batch of its own fetch was full: fetch again */
    int batch_held;                /* some subscriber was held at an account change */
    int behind;                    /* some subscriber was behind a batch's start */
    struct stream_sub *batch_next; /* the next subscriber to visit; NULL: the first */
    /* The heartbeat goes round the subscribers LIMIT_SSE_SLICE a loop turn too (heartbeat_cb):
     * written to 5,000 streams in one callback it would hold up everything else ~50 ms. */
    struct stream_sub *hb_next; /* the next subscriber the heartbeat writes to */
    int hb_going;               /* a heartbeat round is in progress */
    struct event *hb_slice;     /* owned; its next slice, one loop turn later */
    struct event *slice;        /* owned; the next slice, one loop turn later */
    /* Batches waiting to join the pass: shared ones from the main thread and this worker's
     * own fetches, in the order they came. */
    pthread_mutex_t lock; /* guards queue and fetch_wanted */
    STAILQ_HEAD(batch_queue, batch_ref) queue;
    int fetch_wanted; /* kicked to fetch for itself (not only to take a shared batch) */
};

/* stream.c */
size_t stream_unsent(const struct stream_sub *s);
/* Write a chunk to s's connection (http_write_chunk), counting it in s->handed. */
void stream_sub_write(struct stream_sub *s, const char *text, size_t len);
/* The same, text referred to, not copied (http_write_chunk_shared). */
void stream_sub_write_shared(struct stream_sub *s, struct http_shared *text);
/* After a write to s, or one refused: s starts stalling (see unblock_or_cut in stream.c),
 * unless it already is, when it is paused or has more than LIMIT_SSE_BUFFER unsent (an
 * event bigger than that, sent alone). What it reads is counted from here, after the
 * write, so what the kernel took of the write at once does not count as reading. */
void stream_stall_start(struct stream_sub *s);
/* Would s's unsent bytes pass LIMIT_SSE_BUFFER at total? Then s is blocked (paused). */
int stream_sub_full(struct stream_sub *s, size_t total);
void stream_check_subs(struct stream_worker *sw, int held_only);
/* Event id was sent to s; subject ("" for none) and hub are the event's. */
void stream_note_delivery(struct stream_worker *sw, struct stream_sub *s, const char *id,
                          const char *subject, const char *hub);

/* stream_fanout.c */
void stream_fetch(struct stream_worker *sw);
/* The worker's part of the fan-out: its queue, its events, its place in the registry. */
void stream_fanout_start(struct stream_worker *sw);
void stream_fanout_leave(struct stream_worker *sw);  /* first thing when it goes */
void stream_fanout_joined(struct stream_worker *sw); /* a subscriber was added to the list */
void stream_fanout_free(struct stream_worker *sw);   /* after its subscribers are gone */

#endif
