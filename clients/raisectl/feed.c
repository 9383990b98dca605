/* raisectl feed: the live stream as one line per event. It reconnects by itself with
 * Last-Event-ID after a network or server failure and never prints an event twice (it
 * remembers the last id it printed and skips anything at or below it). */
#define _GNU_SOURCE
#include "cmds.h"
#include "https.h"

#include "xmalloc.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SILENCE_S 45 /* seconds without even a heartbeat before reconnecting */

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

/* Young people's references by id, looked up once each (intelligence events carry only the
 * id). */
struct refs {
    json_object *map; /* owned: id -> reference */
};

static const char *reference(struct rc *rc, struct refs *refs, const char *subject)
{
    json_object *v = NULL;
    if (subject[0] == '\0')
        return "-";
    if (json_object_object_get_ex(refs->map, subject, &v))
        return json_object_get_string(v);
    char path[128];
    snprintf(path, sizeof(path), "/v1/subjects/%s", subject);
    json_object *o = NULL;
    const char *const h[] = {"X-Purpose: live feed", NULL};
    int st = rc_call(rc, "GET", path, NULL, h, &o, NULL, NULL);
    json_object_object_add(refs->map, subject,
                           json_object_new_string(st == RC_OK ? rc_str(o, "reference") : "?"));
    json_object_put(o);
    json_object_object_get_ex(refs->map, subject, &v);
    return json_object_get_string(v);
}

/* "2026-12-05T08:10:03Z" -> "12-05 08:10:03" (UTC) */
static void when(const char *ts, char out[24])
{
    if (strlen(ts) >= 19) {
        snprintf(out, 24, "%.5s %.8s", ts + 5, ts + 11);
        return;
    }
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 24, "%m-%d %H:%M:%S", &tm);
}

static void summary_of(const char *type, json_object *d, char *out, size_t cap)
{
    if (strncmp(type, "intelligence.", 13) == 0) {
        json_object *g = rc_get(d, "grading"), *rt = rc_get(d, "retracted");
        char grading[64] = "";
        if (g != NULL)
            snprintf(grading, sizeof(grading), " [%s]", rc_str(g, "text"));
        snprintf(out, cap, "%s%s %s: %s%s%s%s%s", rt ? "RETRACTED " : "", rc_str(d, "risk_level"),
                 rc_str(d, "category"), rc_str(d, "summary"), grading,
                 rc_str(g, "conditions")[0] ? " conditions: " : "", rc_str(g, "conditions"),
                 rt ? "" : "");
    } else if (strncmp(type, "action.", 7) == 0) {
        const char *note = rc_str(d, "completion_note");
        const char *why = rc_str(d, "cannot_complete_reason");
        snprintf(out, cap, "%s (%s, %s, due %s)%s%s%s%s", rc_str(d, "description"),
                 rc_str(d, "state"), rc_str(rc_get(d, "owner_agency"), "name"),
                 rc_str(d, "due_date"), note[0] ? " done: " : "", note, why[0] ? " cannot: " : "",
                 why);
    } else if (strncmp(type, "meeting.", 8) == 0) {
        snprintf(out, cap, "%s (%s, %s)", rc_str(d, "title"), rc_str(d, "status"),
                 rc_str(d, "scheduled_for"));
    } else {
        snprintf(out, cap, "%s %s (%s)", rc_str(d, "given_name"), rc_str(d, "family_name"),
                 rc_str(d, "status"));
    }
}

static void print_event(struct rc *rc, struct refs *refs, long long id, const char *type,
                        const char *data)
{
    json_object *d = json_tokener_parse(data);
    if (rc->json) {
        json_object *line = json_object_new_object();
        json_object_object_add(line, "id", json_object_new_int64(id));
        json_object_object_add(line, "event", json_object_new_string(type));
        json_object_object_add(line, "data", d ? json_object_get(d) : NULL);
        puts(json_object_to_json_string_ext(line, JSON_C_TO_STRING_PLAIN |
                                                      JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(line);
    } else {
        char t[24], sum[1024], cell[256];
        const char *ts = rc_str(d, "updated_at");
        if (ts[0] == '\0')
            ts = rc_str(d, "created_at");
        when(ts, t);
        const char *ref = rc_str(d, "subject_reference");
        if (ref[0] == '\0')
            ref = rc_str(d, "reference");
        if (ref[0] == '\0')
            ref = reference(rc, refs, rc_str(d, "subject_id"));
        summary_of(type, d, sum, sizeof(sum));
        /* the whole reference, always: it is how people find the young person */
        int rw = (int)strlen(ref) > 12 ? (int)strlen(ref) : 12, sw = 48 - (rw - 12);
        printf("%s  %-22s %-*s %s\n", t, type, rw, ref,
               rc_fit(sum, sw < 20 ? 20 : sw, cell, sizeof(cell)));
    }
    fflush(stdout);
    json_object_put(d);
}

/* Split buf into events; print the new ones. Returns bytes consumed. */
static size_t drain(struct rc *rc, struct refs *refs, char *buf, size_t len, long long *last)
{
    size_t used = 0;
    for (;;) {
        char *end = memmem(buf + used, len - used, "\n\n", 2);
        if (end == NULL)
            return used;
        *end = '\0';
        long long id = -1;
        char type[64] = "message";
        const char *data = NULL;
        char *save = NULL;
        for (char *line = strtok_r(buf + used, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
            if (strncmp(line, "id: ", 4) == 0)
                id = atoll(line + 4);
            else if (strncmp(line, "event: ", 7) == 0)
                snprintf(type, sizeof(type), "%s", line + 7);
            else if (strncmp(line, "data: ", 6) == 0)
                data = line + 6;
        }
        if (data != NULL && id > *last) {
            print_event(rc, refs, id, type, data);
            *last = id;
        }
        used = (size_t)(end - buf) + 2;
    }
}

/* One connection: 0 when it ended (reconnect), or an exit status to stop with. */
static int follow(struct rc *rc, struct refs *refs, long long *last, int *connected, int *opened)
{
    struct https_opts o = {.host = rc->host,
                           .port = rc->port,
                           .ca_file = rc->ca,
                           .cert_file = rc->cert,
                           .key_file = rc->key,
                           .timeout_ms = 5000};
    char *cause = NULL;
    struct https_conn *c = https_connect(&o, &cause);
    if (c == NULL) {
        if (!*connected) {
            fprintf(stderr, "raisectl: cannot reach %s: %s\n", rc->url, cause ? cause : "?");
            free(cause);
            return RC_UNREACHABLE;
        }
        free(cause);
        return 0;
    }
    char auth[600], lei[64];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", rc->token ? rc->token : "");
    snprintf(lei, sizeof(lei), "Last-Event-ID: %lld", *last);
    const char *h[] = {auth, "Accept: text/event-stream", *last >= 0 ? lei : NULL, NULL};
    struct https_response r = {0};
    int ok = https_stream_open(c, "GET", "/v1/stream", h, &r, &cause) == 0;
    explicit_bzero(auth, sizeof(auth));
    if (!ok) {
        free(cause);
        https_close(c);
        return *connected ? 0 : RC_UNREACHABLE;
    }
    if (r.status == 401 || r.status == 403) {
        fprintf(stderr, "raisectl: the server refused the feed (%d): sign in again\n", r.status);
        https_response_clear(&r);
        https_close(c);
        return RC_REFUSED;
    }
    int status = r.status;
    https_response_clear(&r);
    if (status != 200) {
        https_close(c);
        return 0; /* 503 and the like: try again */
    }
    if (!*connected)
        fprintf(stderr, "feed: connected to %s (Ctrl-C to stop)\n", rc->url);
    else
        fprintf(stderr, "feed: reconnected, resuming after event %lld\n", *last);
    *connected = 1;
    *opened = 1;
    size_t cap = 1 << 20, len = 0;
    char *buf = xmalloc(cap);
    time_t heard = time(NULL);
    while (!stop) {
        long n = https_stream_read(c, buf + len, cap - len - 1, 1000);
        if (n < 0)
            break;
        if (n == 0) {
            /* the server sends a heartbeat every 15 s (by default): silence for longer than
             * three of them means the connection is dead without having been closed */
            if (time(NULL) - heard > SILENCE_S)
                break;
            continue;
        }
        heard = time(NULL);
        len += (size_t)n;
        size_t used = drain(rc, refs, buf, len, last);
        memmove(buf, buf + used, len - used);
        len -= used;
        if (len + 1 >= cap) /* one event larger than the buffer: not ours to show */
            len = 0;
    }
    free(buf);
    https_close(c);
    return 0;
}

int cmd_feed(struct rc *rc, const struct cmd *c, struct args *a)
{
    const char *since = arg_str(a, "since");
    long long last = -1;
    if (since != NULL) {
        char *end;
        last = strtoll(since, &end, 10);
        if (*since == '\0' || *end != '\0' || last < 0)
            return cmds_usage(c, "--since is an event id (got '%s')", since);
    }
    if (rc->token == NULL) {
        fprintf(stderr, "raisectl: not signed in (raisectl login, or RAISE_TOKEN)\n");
        return RC_REFUSED;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct refs refs = {json_object_new_object()};
    int connected = 0, backoff = 500, st = RC_OK;
    while (!stop) {
        int opened = 0;
        st = follow(rc, &refs, &last, &connected, &opened);
        if (st != RC_OK || stop)
            break;
        if (opened)
            backoff = 500; /* it was up: start again from the shortest wait */
        fprintf(stderr, "feed: connection lost; reconnecting in %.1f s\n", backoff / 1000.0);
        for (int w = 0; w < backoff && !stop; w += 100)
            usleep(100 * 1000);
        backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
    }
    json_object_put(refs.map);
    return stop && st == RC_OK ? RC_OK : st;
}
