/* The fan-out bench's subscribers in C: `fanout.py subscribe` without Python's cost per
 * event, so that at 100 posts/s to 1,000 TLS streams the measurement is of the server, not
 * of the client (the Python subscriber fills its CPU there, and its backlog is what it
 * measures). Same arguments, same protocol, same result: it opens the connections, writes
 * --ready-file, records every delivery until --done-file appears and the posts of
 * --posts-file have reached every subscriber (or --drain s pass), then writes the raw
 * deliveries and hands over to `fanout.py verdict`, which computes --result exactly as
 * `fanout.py subscribe` does.
 *
 * Build: cc -O2 -o subscribe subscribe.c -lssl -lcrypto (tests/bench/stream does it).
 * Extra argument: --fanout PATH (fanout.py, for the verdict). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct sub {
    int fd, state, closed;
    SSL *ssl;
    char *buf; /* unparsed tail */
    size_t len, cap;
    unsigned char *counts; /* deliveries per seq < max_posts */
    long long events, nbytes;
    char why[96];
};

struct rec {
    int32_t sub, seq;
    int64_t recv_ns, lat_ns;
};

static struct {
    const char *mode, *host, *cafile, *channel, *done_file, *tokens_file, *ready_file;
    const char *posts_file, *result, *commits_file, *fanout;
    int port, n, max_posts, raised;
    double drain, hold, connect_timeout;
} a = {.host = "127.0.0.1",
       .channel = "bench-stream",
       .n = 1000,
       .max_posts = 5000,
       .drain = 15,
       .hold = 180,
       .connect_timeout = 60};

static struct sub *subs;
static struct rec *recs;
static size_t nrecs, caprecs;
static long long ours;
static int ready, failed, ep;
static volatile sig_atomic_t stop;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "subscribe: %s\n", what);
    exit(2);
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (p == NULL)
        die("out of memory");
    return p;
}

static void write_atomic(const char *path, const char *text)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0 || rename(tmp, path) != 0)
        die("cannot write a result file");
}

static void sub_close(struct sub *s, const char *why)
{
    if (s->closed)
        return;
    s->closed = 1;
    snprintf(s->why, sizeof(s->why), "%s", why);
    if (s->fd >= 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
        if (s->ssl != NULL)
            SSL_free(s->ssl);
        s->ssl = NULL;
        close(s->fd);
    }
    if (s->state == 0)
        failed++;
}

static void record(int idx, long seq, int64_t t, int64_t sent)
{
    if (nrecs == caprecs) {
        caprecs = caprecs ? caprecs * 2 : 1 << 20;
        recs = xrealloc(recs, caprecs * sizeof(*recs));
    }
    recs[nrecs++] = (struct rec){idx, (int32_t)seq, t, t - sent};
    struct sub *s = &subs[idx];
    if (seq >= 0 && seq < a.max_posts && s->counts[seq] < 255)
        s->counts[seq]++;
    ours++;
}

/* What fanout.py's _process does with one read. */
static void process(int idx, const char *data, size_t n, int64_t t)
{
    struct sub *s = &subs[idx];
    if (s->len + n + 1 > s->cap) {
        s->cap = (s->len + n + 1) * 2;
        s->buf = xrealloc(s->buf, s->cap);
    }
    memcpy(s->buf + s->len, data, n);
    s->len += n;
    s->buf[s->len] = '\0';
    if (s->state == 0) {
        if (a.raised) {
            if (s->len >= 12 && strncmp(s->buf, "HTTP/1.1 200", 12) != 0) {
                char why[96];
                snprintf(why, sizeof(why), "HTTP %.60s", s->buf);
                why[strcspn(why, "\r\n")] = '\0';
                sub_close(s, why);
                return;
            }
            if (strstr(s->buf, ": connected") == NULL)
                return;
        } else {
            /* the subscribe reply: "...subscribe\r\n$N\r\nCHANNEL\r\n:N\r\n" */
            char *p = strstr(s->buf, "subscribe\r\n");
            char *c = p ? strstr(p, a.channel) : NULL;
            char *colon = c ? strstr(c, "\r\n:") : NULL;
            char *end = colon ? strstr(colon + 3, "\r\n") : NULL;
            if (end == NULL)
                return;
            end += 2;
            s->len -= (size_t)(end - s->buf);
            memmove(s->buf, end, s->len + 1);
        }
        s->state = 1;
        ready++;
    }
    s->nbytes += (long long)n;
    size_t blen = s->len; /* the block before the last "\n\n" */
    for (size_t i = s->len; i >= 2; i--)
        if (s->buf[i - 1] == '\n' && s->buf[i - 2] == '\n') {
            blen = i - 2;
            break;
        }
    if (blen == s->len)
        return;
    char saved = s->buf[blen];
    s->buf[blen] = '\0';
    for (char *p = s->buf; (p = strstr(p, "event: ")) != NULL; p += 7)
        s->events++;
    for (char *p = s->buf; (p = strstr(p, "bench-stream ")) != NULL;) {
        p += 13;
        char *q;
        long seq = strtol(p, &q, 10);
        if (q == p || *q != ' ')
            continue;
        char *r;
        long long sent = strtoll(q + 1, &r, 10);
        if (r == q + 1)
            continue;
        record(idx, seq, t, sent);
        p = r;
    }
    s->buf[blen] = saved;
    size_t rest = s->len - (blen + 2);
    memmove(s->buf, s->buf + blen + 2, rest + 1);
    s->len = rest;
    if (a.raised && memmem(data, n, "\r\n0\r\n\r\n", 7) != NULL)
        sub_close(s, "the server ended the stream");
}

static void on_ready(int idx)
{
    struct sub *s = &subs[idx];
    char buf[65536];
    for (;;) {
        if (s->closed)
            return;
        ssize_t n;
        if (s->ssl != NULL) {
            int r = SSL_read(s->ssl, buf, sizeof(buf));
            if (r <= 0) {
                int e = SSL_get_error(s->ssl, r);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                    return;
                sub_close(s, e == SSL_ERROR_ZERO_RETURN ? "EOF" : "TLS error");
                return;
            }
            n = r;
        } else {
            n = recv(s->fd, buf, sizeof(buf), 0);
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return;
            if (n <= 0) {
                sub_close(s, n == 0 ? "EOF" : strerror(errno));
                return;
            }
        }
        process(idx, buf, (size_t)n, now_ns());
    }
}

static void poll_once(int timeout_ms)
{
    struct epoll_event evs[1024];
    int n = epoll_wait(ep, evs, 1024, timeout_ms);
    for (int i = 0; i < n; i++)
        on_ready((int)evs[i].data.u32);
}

static int send_all(struct sub *s, const char *req, size_t len)
{
    if (s->ssl != NULL)
        return SSL_write(s->ssl, req, (int)len) == (int)len ? 0 : -1;
    return send(s->fd, req, len, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

/* Connect, TLS handshake and request, blocking (with a 10 s limit); then non-blocking in
 * the epoll set. Returns 0, or -1 with *why set. */
static int open_one(int idx, SSL_CTX *ctx, char **tokens, int ntokens)
{
    struct sub *s = &subs[idx];
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {10, 0};
    setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(s->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)a.port)};
    inet_pton(AF_INET, a.host, &sa.sin_addr);
    if (connect(s->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        sub_close(s, "connect failed");
        return -1;
    }
    if (ctx != NULL) {
        s->ssl = SSL_new(ctx);
        SSL_set_fd(s->ssl, s->fd);
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s->ssl), a.host);
        if (SSL_connect(s->ssl) != 1) {
            sub_close(s, "TLS handshake failed");
            return -1;
        }
    }
    char req[1024];
    int n;
    if (a.raised)
        n = snprintf(req, sizeof(req),
                     "GET /v1/stream HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Bearer %s\r\n"
                     "Accept: text/event-stream\r\n\r\n",
                     a.host, a.port, tokens[idx % ntokens]);
    else
        n = snprintf(req, sizeof(req), "*2\r\n$9\r\nSUBSCRIBE\r\n$%zu\r\n%s\r\n", strlen(a.channel),
                     a.channel);
    if (send_all(s, req, (size_t)n) != 0) {
        sub_close(s, "request not sent");
        return -1;
    }
    fcntl(s->fd, F_SETFL, fcntl(s->fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)idx};
    epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
    on_ready(idx); /* whatever came with the handshake */
    return 0;
}

/* The poster's log: accepted seqs (raised: status 201; redis: PUBLISH answered). */
static int read_accepted(int **out)
{
    FILE *f = fopen(a.posts_file, "r");
    if (f == NULL)
        return 0;
    int n = 0, cap = 1024;
    int *acc = xrealloc(NULL, sizeof(int) * (size_t)cap);
    long long seq, sch, snd, ack, status;
    char line[256];
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "%lld %lld %lld %lld %lld", &seq, &sch, &snd, &ack, &status) != 5)
            continue;
        if (a.raised ? status == 201 : status >= 0) {
            if (n == cap)
                acc = xrealloc(acc, sizeof(int) * (size_t)(cap *= 2));
            acc[n++] = (int)seq;
        }
    }
    fclose(f);
    *out = acc;
    return n;
}

static int all_have(const int *acc, int nacc)
{
    for (int i = 0; i < a.n; i++) {
        struct sub *s = &subs[i];
        if (s->state != 1 || s->closed)
            continue;
        for (int k = 0; k < nacc; k++)
            if (acc[k] >= a.max_posts || s->counts[acc[k]] == 0)
                return 0;
    }
    return 1;
}

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

/* The options, as fanout.py takes them (--concurrency is accepted and not needed here). */
enum opt_kind { OPT_STR, OPT_INT, OPT_DOUBLE, OPT_IGNORED };
static const struct option_spec {
    const char *name;
    enum opt_kind kind;
    void *to;
} options[] = {
    {"--mode", OPT_STR, &a.mode},
    {"--host", OPT_STR, &a.host},
    {"--port", OPT_INT, &a.port},
    {"--cafile", OPT_STR, &a.cafile},
    {"--channel", OPT_STR, &a.channel},
    {"--done-file", OPT_STR, &a.done_file},
    {"-n", OPT_INT, &a.n},
    {"--tokens-file", OPT_STR, &a.tokens_file},
    {"--ready-file", OPT_STR, &a.ready_file},
    {"--posts-file", OPT_STR, &a.posts_file},
    {"--result", OPT_STR, &a.result},
    {"--drain", OPT_DOUBLE, &a.drain},
    {"--hold", OPT_DOUBLE, &a.hold},
    {"--max-posts", OPT_INT, &a.max_posts},
    {"--commits-file", OPT_STR, &a.commits_file},
    {"--connect-timeout", OPT_DOUBLE, &a.connect_timeout},
    {"--fanout", OPT_STR, &a.fanout},
    {"--concurrency", OPT_IGNORED, NULL},
};

static void parse_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(k, "subscribe") == 0)
            continue;
        if (v == NULL)
            die("an option without its value");
        i++;
        size_t o = 0, n = sizeof(options) / sizeof(options[0]);
        while (o < n && strcmp(k, options[o].name) != 0)
            o++;
        if (o == n)
            die("unknown option");
        if (options[o].kind == OPT_STR)
            *(const char **)options[o].to = v;
        else if (options[o].kind == OPT_INT)
            *(int *)options[o].to = atoi(v);
        else if (options[o].kind == OPT_DOUBLE)
            *(double *)options[o].to = atof(v);
    }
    if (a.mode == NULL || a.port <= 0 || a.n < 1 || a.done_file == NULL || a.ready_file == NULL ||
        a.posts_file == NULL || a.result == NULL || a.fanout == NULL)
        die("--mode, --port, -n, --ready-file, --done-file, --posts-file, --result and "
            "--fanout are required");
    a.raised = strcmp(a.mode, "raised") == 0;
    if (a.raised && a.tokens_file == NULL)
        die("--mode raised needs --tokens-file");
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)a.n + 64) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)a.n + 64 ? rl.rlim_max : (rlim_t)a.n + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    char *tokens[256];
    int ntokens = 0;
    if (a.raised) {
        FILE *f = fopen(a.tokens_file, "r");
        char line[512];
        while (f != NULL && ntokens < 256 && fgets(line, sizeof(line), f) != NULL) {
            line[strcspn(line, "\r\n")] = '\0';
            if (line[0] != '\0')
                tokens[ntokens++] = strdup(line);
        }
        if (f != NULL)
            fclose(f);
        if (ntokens == 0)
            die("--tokens-file has no tokens");
    }
    SSL_CTX *ctx = NULL;
    if (a.cafile != NULL) {
        ctx = SSL_CTX_new(TLS_client_method());
        if (SSL_CTX_load_verify_locations(ctx, a.cafile, NULL) != 1)
            die("cannot read --cafile");
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        SSL_CTX_set_read_ahead(ctx, 1); /* several records a read() */
    }
    ep = epoll_create1(0);
    subs = xrealloc(NULL, (size_t)a.n * sizeof(*subs));
    memset(subs, 0, (size_t)a.n * sizeof(*subs));
    for (int i = 0; i < a.n; i++) {
        subs[i].fd = -1;
        subs[i].counts = xrealloc(NULL, (size_t)a.max_posts);
        memset(subs[i].counts, 0, (size_t)a.max_posts);
    }
    int64_t t0 = now_ns(), limit = t0 + (int64_t)(a.connect_timeout * 1e9);
    for (int i = 0; i < a.n && !stop && now_ns() < limit; i++) {
        open_one(i, ctx, tokens, ntokens);
        poll_once(0);
    }
    while (ready + failed < a.n && !stop && now_ns() < limit)
        poll_once(50);
    int opened = ready;
    char line[128];
    snprintf(line, sizeof(line), "%d %d %.2f\n", opened, a.n - opened, (now_ns() - t0) / 1e9);
    write_atomic(a.ready_file, line);

    int64_t deadline = now_ns() + (int64_t)(a.hold * 1e9);
    while (access(a.done_file, F_OK) != 0) {
        if (stop || now_ns() > deadline)
            return opened == a.n ? 0 : 1;
        poll_once(50);
    }
    int64_t t_done = now_ns();
    int *acc = NULL;
    int nacc = read_accepted(&acc);
    int64_t drain_end = t_done + (int64_t)(a.drain * 1e9), checked = 0;
    while (now_ns() < drain_end && !stop) {
        int live = 0;
        for (int i = 0; i < a.n; i++)
            live += subs[i].state == 1 && !subs[i].closed;
        if (ours >= (long long)nacc * live && now_ns() - checked > 1000000000) {
            checked = now_ns();
            if (all_have(acc, nacc))
                break;
        }
        poll_once(50);
    }
    double drained_s = (now_ns() - t_done) / 1e9;

    /* raw deliveries and per-subscriber state for fanout.py verdict */
    char raw[4096], subsf[4096];
    snprintf(raw, sizeof(raw), "%s.deliveries", a.result);
    snprintf(subsf, sizeof(subsf), "%s.subscribers", a.result);
    FILE *f = fopen(raw, "wb");
    if (f == NULL || fwrite(recs, sizeof(*recs), nrecs, f) != nrecs || fclose(f) != 0)
        die("cannot write the deliveries");
    f = fopen(subsf, "w");
    if (f == NULL)
        die("cannot write the subscribers");
    for (int i = 0; i < a.n; i++)
        fprintf(f, "%d %d %lld %lld %s\n", subs[i].state, subs[i].closed, subs[i].events,
                subs[i].nbytes, subs[i].why[0] ? subs[i].why : "-");
    if (fclose(f) != 0)
        die("cannot write the subscribers");
    for (int i = 0; i < a.n; i++)
        if (!subs[i].closed && subs[i].fd >= 0) {
            if (subs[i].ssl != NULL)
                SSL_free(subs[i].ssl);
            close(subs[i].fd);
        }
    char opened_s[16], drained[32];
    snprintf(opened_s, sizeof(opened_s), "%d", opened);
    snprintf(drained, sizeof(drained), "%.3f", drained_s);
    char *args[64];
    int k = 0;
    args[k++] = "python3";
    args[k++] = (char *)a.fanout;
    args[k++] = "verdict";
    for (int i = 1; i < argc && k < 50; i++)
        if (strcmp(argv[i], "subscribe") != 0 && strcmp(argv[i], "--fanout") != 0 &&
            (i == 1 || strcmp(argv[i - 1], "--fanout") != 0))
            args[k++] = argv[i];
    args[k++] = "--deliveries";
    args[k++] = raw;
    args[k++] = "--subscribers";
    args[k++] = subsf;
    args[k++] = "--opened";
    args[k++] = opened_s;
    args[k++] = "--drained-s";
    args[k++] = drained;
    args[k] = NULL;
    execvp("python3", args);
    die("cannot run fanout.py verdict");
}
