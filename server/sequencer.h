/* The sequencer (sql/007): requests queue their event and audit rows;
 * raise_sequence_events() moves what is committed into events (numbered) and NOTIFYs
 * raise_events, raise_sequence_audit() moves it into audit_log (chained). Each process runs
 * them on two connections of the main thread (the LISTEN one for events), so numbering never
 * waits behind chaining: after its workers' statements that queued rows (sequencer_after,
 * from any thread; kicks that come while a run is in flight make one more run, and a lane's
 * runs start at least a gap apart, so runs batch themselves under load), and once a second
 * for rows another process left behind (it stopped between its commit and its run). */
#ifndef RAISE_SEQUENCER_H
#define RAISE_SEQUENCER_H

#include "http.h"

#include <libpq-fe.h>

struct event_base;
struct db_pool;

#define SEQUENCE_BATCH 5000 /* rows per run of a lane (sql/007): at this, run again */

enum seq_lane { SEQ_EVENTS, SEQ_AUDIT, SEQ_LANES };

/* Main thread; events_pool is the LISTEN pool, audit_pool one of its own (both borrowed). */
int sequencer_start(struct event_base *base, struct db_pool *events_pool,
                    struct db_pool *audit_pool);
/* Any thread (db_pool_opts.after_ok, after a worker's statement succeeded): kick the lane(s)
 * whose queue the statement inserts into; a no-op when the sequencer is not running. */
void sequencer_after(const char *sql);
/* Main thread, its loop no longer running: stop kicking. */
void sequencer_stop(void);
/* Blocking, for the end of a run and for command-line tools: sequence everything queued on a
 * connection of its own. 0, or -1 with *cause (owned) set. */
int sequencer_flush(const char *conninfo, char **cause);
/* The same on a connection the caller has (blocking): raise_sequence() until it finds less
 * than a full batch. */
int sequencer_drain(PGconn *pg, char **cause);

/* For a request handler that must see every request answered before it (the audit log, the
 * start of a stream): run the lane's function (again while it finds a full batch), then
 * http_query(r, sql, ...) with cb; r->handler_data is data again by then. At most 8
 * parameters, copied. A failed run answers like a failed query. */
#define SEQUENCED_MAX_PARAMS 9
void http_query_sequenced(struct http_req *r, enum seq_lane which, const char *sql, int nparams,
                          const char *const *params, http_db_cb cb, void *data);

#endif
