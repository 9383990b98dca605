/* The sequencer (sql/007): requests queue their event and audit rows; raise_sequence() moves
 * what is committed into events (numbered) and audit_log (chained) and NOTIFYs raise_events.
 * Each process runs it on its LISTEN connection (main thread): after its workers' statements
 * (sequencer_after, from any thread; kicks that come while a run is in flight make one more
 * run, so runs batch themselves under load), and once a second for rows another process left
 * behind (it stopped between its commit and its run). */
#ifndef RAISE_SEQUENCER_H
#define RAISE_SEQUENCER_H

#include "http.h"

struct event_base;
struct db_pool;

#define SEQUENCE_BATCH 5000 /* rows per raise_sequence() run (sql/007): at this, run again */

/* Main thread; pool is the LISTEN pool (borrowed). */
int sequencer_start(struct event_base *base, struct db_pool *pool);
/* Any thread; a no-op when the sequencer is not running. */
void sequencer_kick(void);
/* After a worker's statement succeeded (db_pool_opts.after_ok): kick if it queued rows. */
void sequencer_after(const char *sql);
/* Main thread, its loop no longer running: stop kicking. */
void sequencer_stop(void);
/* Blocking, for the end of a run and for command-line tools: sequence everything queued on a
 * connection of its own. 0, or -1 with *cause (owned) set. */
int sequencer_flush(const char *conninfo, char **cause);

/* For a request handler that must see every request answered before it (the audit log, the
 * start of a stream): run raise_sequence() (again while it finds a full batch), then
 * http_query(r, sql, ...) with cb; r->handler_data is data again by then. At most 8
 * parameters, copied. A failed run answers like a failed query. */
#define SEQUENCED_MAX_PARAMS 8
void http_query_sequenced(struct http_req *r, const char *sql, int nparams,
                          const char *const *params, http_db_cb cb, void *data);

#endif
