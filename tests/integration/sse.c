/* A small Server-Sent Events client for the integration tests. */
#define _GNU_SOURCE
#include "sse.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct sse *sse_open(const struct itest_server *s, const char *token, long long last)
{
    struct sse *e = calloc(1, sizeof(*e));
    struct https_opts o = itest_opts(s);
    char *cause = NULL, auth[256], lei[64];
    e->c = https_connect(&o, &cause);
    ck_assert_msg(e->c != NULL, "%s", cause);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    snprintf(lei, sizeof(lei), "Last-Event-ID: %lld", last);
    const char *h[] = {auth, last >= 0 ? lei : NULL, NULL};
    struct https_response r = {0};
    ck_assert_int_eq(https_stream_open(e->c, "GET", "/v1/stream", h, &r, &cause), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(https_response_header(&r, "Content-Type"), "text/event-stream");
    /* the headers of every reply (docs/api.md) */
    ck_assert_int_eq(strlen(https_response_header(&r, "X-Request-Id")), 32);
    ck_assert_str_eq(https_response_header(&r, "Strict-Transport-Security"), "max-age=31536000");
    ck_assert_str_eq(https_response_header(&r, "X-Content-Type-Options"), "nosniff");
    ck_assert_str_eq(https_response_header(&r, "Cache-Control"), "no-store");
    https_response_clear(&r);
    return e;
}

void sse_close(struct sse *e)
{
    https_close(e->c);
    free(e);
}

/* What is left of timeout_ms since t0 (CLOCK_MONOTONIC). */
static int ms_left(const struct timespec *t0, int timeout_ms)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return timeout_ms -
           (int)((t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000);
}

/* The next block within timeout_ms that is an event (1, *ev filled) or, if comment is not
 * NULL, a comment line (2, its text after ": " copied to comment); 0 if none came. */
static int next_block(struct sse *e, struct sse_event *ev, char *comment, size_t cap,
                      int timeout_ms)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        char *end = memmem(e->buf, e->len, "\n\n", 2);
        while (end != NULL) {
            size_t n = (size_t)(end - e->buf) + 2;
            char *block = malloc(n + 1); /* an event may be bigger than any stack buffer */
            ck_assert(block != NULL);
            memcpy(block, e->buf, n);
            block[n] = '\0';
            memmove(e->buf, e->buf + n, e->len - n);
            e->len -= n;
            memset(ev, 0, sizeof(*ev));
            int got_comment = 0;
            for (char *line = strtok(block, "\n"); line; line = strtok(NULL, "\n")) {
                if (strncmp(line, "id: ", 4) == 0)
                    ev->id = atoll(line + 4);
                else if (strncmp(line, "event: ", 7) == 0)
                    snprintf(ev->type, sizeof(ev->type), "%s", line + 7);
                else if (strncmp(line, "data: ", 6) == 0)
                    ev->data = strdup(line + 6);
                else if (comment != NULL && strncmp(line, ": ", 2) == 0 && !got_comment) {
                    snprintf(comment, cap, "%s", line + 2);
                    got_comment = 1;
                }
            }
            free(block);
            if (ev->data != NULL)
                return 1;
            if (got_comment)
                return 2;
            end = memmem(e->buf, e->len, "\n\n", 2);
        }
        int left = ms_left(&t0, timeout_ms);
        if (left <= 0)
            return 0;
        long got = https_stream_read(e->c, e->buf + e->len, sizeof(e->buf) - e->len, left);
        if (got < 0)
            return 0;
        e->len += (size_t)got;
    }
}

/* Next event (comments skipped) within timeout_ms; 0 if none came. */
int sse_next(struct sse *e, struct sse_event *ev, int timeout_ms)
{
    return next_block(e, ev, NULL, 0, timeout_ms);
}

long sse_read_some(struct sse *e, size_t max, int timeout_ms)
{
    size_t room = sizeof(e->buf) - e->len;
    ck_assert_msg(room > 0, "the test's stream buffer is full");
    long got = https_stream_read(e->c, e->buf + e->len, max < room ? max : room, timeout_ms);
    if (got > 0)
        e->len += (size_t)got;
    return got;
}

int sse_next_comment(struct sse *e, const char *text, int timeout_ms)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        int left = ms_left(&t0, timeout_ms);
        char comment[256];
        struct sse_event ev;
        int got = left > 0 ? next_block(e, &ev, comment, sizeof(comment), left) : 0;
        if (got == 0)
            return 0;
        if (got == 1)
            free(ev.data); /* an event: not what is wanted here */
        else if (strcmp(comment, text) == 0)
            return 1;
    }
}

int sse_wait_end(struct sse *e, int timeout_ms)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        int left = ms_left(&t0, timeout_ms);
        if (left <= 0)
            return 0;
        e->len = 0;
        if (https_stream_read(e->c, e->buf, sizeof(e->buf), left) < 0)
            return 1;
    }
}
