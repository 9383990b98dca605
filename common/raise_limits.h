/* Every bound the server enforces, in one place. Config can lower or raise the ones an
 * operator would want to tune (see config.c); these are the defaults and hard caps. */
#ifndef RAISE_RAISE_LIMITS_H
#define RAISE_RAISE_LIMITS_H

/* HTTP */
#define LIMIT_HEADER_SIZE_DEFAULT (16 * 1024)   /* all request headers together */
#define LIMIT_BODY_SIZE_DEFAULT   (1024 * 1024) /* largest body any route accepts */
#define LIMIT_BODY_SMALL          (16 * 1024)   /* default per-route body limit */
#define LIMIT_BODY_NONE           0             /* routes that take no body */
#define LIMIT_BODY_MEETING        (512 * 1024)  /* a meeting's attendance and minutes */
#define LIMIT_BODY_INTEL          (192 * 1024)  /* an intelligence item, all fields escaped */
#define LIMIT_CONNECTIONS_DEFAULT 4096          /* open connections per process */
#define LIMIT_REQUEST_TIMEOUT_S   30            /* read/write timeout on a connection */
#define LIMIT_SHUTDOWN_TIMEOUT_S  10            /* graceful stop waits this long at most */
#define LIMIT_PATH_SEGMENTS       8             /* router: segments in a path */
#define LIMIT_ROUTE_PARAMS        4             /* router: {captures} per route */
#define LIMIT_REQUEST_ID          32            /* hex chars of a request id */
#define LIMIT_TOKEN_MIN           16            /* a bearer token or session cookie: chars */
#define LIMIT_TOKEN_MAX           256

/* JSON */
#define LIMIT_JSON_DEPTH     16
#define LIMIT_STRING_DEFAULT 1024
#define LIMIT_STRING_LONG    (16 * 1024)
#define LIMIT_LIST_ITEMS     200

/* Lists */
#define LIMIT_PAGE_DEFAULT 50
#define LIMIT_PAGE_MAX     200

/* Database */
#define LIMIT_DB_POOL_DEFAULT      4    /* connections per worker */
#define LIMIT_DB_QUEUE_DEFAULT     1024 /* waiting queries per worker */
#define LIMIT_DB_QUEUE_WAIT_MS     5000 /* a query waits this long for a connection */
#define LIMIT_STATEMENT_TIMEOUT_MS 5000
#define LIMIT_DB_STMT_CACHE        128 /* statements prepared per connection; others unnamed */
#define LIMIT_DB_BACKOFF_MIN_MS    100
#define LIMIT_DB_BACKOFF_MAX_MS    5000
#define LIMIT_RETRY_AFTER_S        2 /* Retry-After on 503 */

/* Live stream */
#define LIMIT_SSE_BUFFER         (256 * 1024) /* unsent bytes before a subscriber is paused */
#define LIMIT_SSE_SNDBUF         (64 * 1024)  /* a stream socket's SO_SNDBUF (kernel doubles it) */
#define LIMIT_SSE_HEARTBEAT_S    15
#define LIMIT_OVERDUE_CHECK_S    60   /* seconds between overdue-action sweeps */
#define LIMIT_OVERDUE_BATCH      500  /* actions marked overdue per sweep statement */
#define LIMIT_SSE_BATCH          200  /* events fetched per query */
#define LIMIT_SSE_STALL_MS       5000 /* paused this long, reading < LIMIT_SSE_PROGRESS: cut off */
#define LIMIT_SSE_PROGRESS       (48 * 1024)   /* bytes a stalling stream must read per stall */
#define LIMIT_SSE_AUDIT_FLUSH_MS 1000          /* deliveries are audited in aggregate this often */
#define LIMIT_SSE_POLL_MS        250           /* safety poll when a notification is missed */
#define LIMIT_SSE_SHARED_MIN     (64 * 1024)   /* a meeting event this big goes out uncopied */
#define LIMIT_SSE_SLICE_BYTES    (1024 * 1024) /* or this many bytes written, if fewer */
#define LIMIT_SSE_SLICE          64            /* subscribers served per loop turn of a fan-out */

/* Workers */
#define LIMIT_WORKERS_MAX 64

#endif
