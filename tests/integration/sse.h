/* A small Server-Sent Events client for the integration tests (GET /v1/stream). */
#ifndef RAISE_ITEST_SSE_H
#define RAISE_ITEST_SSE_H

#include "harness.h"

#include <stddef.h>

struct sse {
    struct https_conn *c;
    char buf[1 << 20];
    size_t len;
};

struct sse_event {
    long long id;
    char type[64];
    char *data; /* owned */
};

/* Open a stream as token; last >= 0 sends Last-Event-ID: last. Asserts on failure. */
struct sse *sse_open(const struct itest_server *s, const char *token, long long last);
void sse_close(struct sse *e);
/* Next event (comments skipped) within timeout_ms; 0 if none came. ev->data is owned. */
int sse_next(struct sse *e, struct sse_event *ev, int timeout_ms);
/* Read at most max more bytes of the stream into its buffer within timeout_ms (a slow
 * reader; sse_next(e, ev, 0) then takes what is whole). Bytes read, 0 on timeout, -1 if the
 * stream ended or failed. */
long sse_read_some(struct sse *e, size_t max, int timeout_ms);
/* Wait up to timeout_ms for a comment line ": text" (events meanwhile are dropped); 1 if it
 * came. */
int sse_next_comment(struct sse *e, const char *text, int timeout_ms);
/* 1 if the server ended the stream (events and comments before the end are dropped) within
 * timeout_ms; 0 if it was still open then. After a clean end (the last chunk came) the
 * connection is ready for another request. */
int sse_wait_end(struct sse *e, int timeout_ms);

#endif
