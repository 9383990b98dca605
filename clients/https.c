/* Blocking HTTPS/1.1 client: a non-blocking socket driven with poll() so that every wait has a
 * deadline, OpenSSL 3 for TLS, and a strict little HTTP/1.1 response parser. */
#define _GNU_SOURCE
#include "https.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "xmalloc.h"

#define HTTPS_HEAD_MAX        ((size_t)64 * 1024)        /* response status line + headers */
#define HTTPS_BODY_MAX        ((size_t)64 * 1024 * 1024) /* a whole response body; one chunk */
#define HTTPS_LINE_MAX        4096                       /* a chunk-size or trailer line */
#define HTTPS_TIMEOUT_DEFAULT 10000                      /* ms */
#define HTTPS_READ_SIZE       ((size_t)16 * 1024)        /* one TLS record */

/* A growable byte buffer, always NUL-terminated once it holds anything. */
struct buf {
    char *data; /* owned */
    size_t len;
    size_t cap;
};

enum conn_state {
    CONN_IDLE,      /* ready for a request */
    CONN_STREAMING, /* https_stream_open done, body not finished */
    CONN_CLOSED,    /* the server ends the connection after the last response */
    CONN_BROKEN,    /* a failure left the exchange or the TLS session unusable */
};

enum body_kind { BODY_NONE, BODY_LENGTH, BODY_CHUNKED, BODY_CLOSE };

struct https_conn {
    int fd;
    SSL_CTX *ctx; /* owned */
    SSL *ssl;     /* owned */
    char *host;   /* owned; value of the Host header */
    char *peer;   /* owned; "host:port" for messages */
    int timeout_ms;
    enum conn_state state;
    struct buf rbuf;   /* received, not yet consumed */
    struct buf stream; /* decoded body bytes not yet handed out by https_stream_read */
    size_t stream_off;
    int stream_ended; /* the body's end was decoded along with data still to hand out */
    /* the response being read */
    enum body_kind body;
    size_t remaining;              /* BODY_LENGTH: bytes still to come */
    struct https_chunked *chunked; /* owned; BODY_CHUNKED */
    int http10;
    int keep_alive;
};

struct request {
    const char *method;
    const char *path;
    const char *const *headers; /* NULL-terminated, may be NULL */
    const char *body;           /* NULL = none */
    size_t body_len;
};

enum io { IO_DONE, IO_EOF, IO_TIMEOUT, IO_FAIL };
enum ssl_op { OP_HANDSHAKE, OP_READ, OP_WRITE, OP_SHUTDOWN };

/* One TLS operation, run until done or until its deadline. */
struct ssl_job {
    enum ssl_op op;
    void *buf;
    size_t len;
    size_t done;
    int64_t deadline; /* CLOCK_MONOTONIC ms */
    const char *what; /* for messages, e.g. "reading response head" */
};

static void fail_cause(char **cause, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail_cause(char **cause, const char *fmt, ...)
{
    va_list ap;
    if (cause == NULL)
        return;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    *cause = xmalloc((size_t)(n < 0 ? 0 : n) + 1);
    **cause = '\0';
    va_start(ap, fmt);
    vsnprintf(*cause, (size_t)n + 1, fmt, ap);
    va_end(ap);
}

/* Hand why (owned) over to *cause, or drop it if the caller wants no cause. */
static void pass_cause(char **cause, char *why)
{
    if (cause != NULL)
        *cause = why;
    else
        free(why);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void buf_reserve(struct buf *b, size_t n)
{
    if (b->cap - b->len > n)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len <= n)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

static void buf_add(struct buf *b, const void *p, size_t n)
{
    buf_reserve(b, n);
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void buf_addstr(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

static void buf_addf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void buf_addf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Drop the first n bytes. */
static void buf_consume(struct buf *b, size_t n)
{
    if (n == 0)
        return;
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

static void append(char **out, size_t *out_len, const char *p, size_t n)
{
    *out = xrealloc(*out, *out_len + n + 1);
    memcpy(*out + *out_len, p, n);
    *out_len += n;
    (*out)[*out_len] = '\0';
}

/* RFC 9110 token characters. */
static int is_tchar(char ch)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
        return 1;
    return ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static int is_ctl(char ch)
{
    unsigned char u = (unsigned char)ch;
    return u < 0x20 || u == 0x7f;
}

static int is_ws(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* Is the comma-separated list value made of token, among others (case-insensitive)? */
static int has_token(const char *value, const char *token)
{
    size_t tlen = strlen(token);
    for (const char *p = value; p != NULL && *p != '\0';) {
        while (is_ws(*p) || *p == ',')
            p++;
        size_t n = strcspn(p, ", \t");
        if (n == tlen && strncasecmp(p, token, n) == 0)
            return 1;
        p += n;
    }
    return 0;
}

/* ---- response head ---- */

/* "HTTP/1.x NNN[ reason]" */
static int parse_status_line(const char *p, size_t n, int *status)
{
    if (n < 12 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') || p[8] != ' ')
        return -1;
    for (size_t i = 9; i < 12; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
    }
    if (n > 12 && p[12] != ' ')
        return -1;
    for (size_t i = 12; i < n; i++) {
        if (is_ctl(p[i]) && p[i] != '\t')
            return -1;
    }
    *status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    return *status >= 100 && *status <= 599 ? 0 : -1;
}

static int parse_header_line(const char *p, size_t n, struct https_header *h, char **cause)
{
    if (n > 0 && is_ws(p[0])) {
        fail_cause(cause, "obsolete header line folding");
        return -1;
    }
    const char *colon = memchr(p, ':', n);
    if (colon == NULL) {
        fail_cause(cause, "header line without a colon");
        return -1;
    }
    for (const char *q = p; q < colon; q++) {
        if (!is_tchar(*q)) {
            fail_cause(cause, "bad header name");
            return -1;
        }
    }
    if (colon == p) {
        fail_cause(cause, "empty header name");
        return -1;
    }
    const char *v = colon + 1, *end = p + n;
    while (v < end && is_ws(*v))
        v++;
    while (end > v && is_ws(end[-1]))
        end--;
    for (const char *q = v; q < end; q++) {
        if (is_ctl(*q) && *q != '\t') {
            fail_cause(cause, "control character in header value");
            return -1;
        }
    }
    h->name = xstrndup(p, (size_t)(colon - p));
    h->value = xstrndup(v, (size_t)(end - v));
    return 0;
}

static void free_headers(struct https_header *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(h[i].name);
        free(h[i].value);
    }
    free(h);
}

int https_parse_head(const char *buf, size_t len, struct https_response *resp, char **cause)
{
    if (len < 4 || memcmp(buf + len - 4, "\r\n\r\n", 4) != 0) {
        fail_cause(cause, "response head does not end with an empty line");
        return -1;
    }
    const char *end = buf + len - 2; /* the CRLF of the final empty line */
    const char *eol = memmem(buf, len, "\r\n", 2);
    int status;
    if (parse_status_line(buf, (size_t)(eol - buf), &status) < 0) {
        fail_cause(cause, "bad status line");
        return -1;
    }
    size_t max = 0;
    for (const char *p = buf; (p = memchr(p, '\n', (size_t)(buf + len - p))) != NULL; p++)
        max++;
    struct https_header *h = xcalloc(max, sizeof *h);
    size_t n = 0;
    for (const char *p = eol + 2; p < end; p = eol + 2) {
        eol = memmem(p, (size_t)(buf + len - p), "\r\n", 2);
        if (parse_header_line(p, (size_t)(eol - p), &h[n], cause) < 0) {
            free_headers(h, n);
            return -1;
        }
        n++;
    }
    resp->status = status;
    resp->headers = h;
    resp->nheaders = n;
    return 0;
}

const char *https_response_header(const struct https_response *r, const char *name)
{
    for (size_t i = 0; r != NULL && i < r->nheaders; i++) {
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    }
    return NULL;
}

void https_response_clear(struct https_response *r)
{
    if (r == NULL)
        return;
    free_headers(r->headers, r->nheaders);
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* ---- chunked transfer coding ---- */

enum chunk_state {
    CHUNK_SIZE,     /* reading "hex[;ext]" */
    CHUNK_DATA,     /* copying chunk data */
    CHUNK_DATA_END, /* reading the CRLF after the data */
    CHUNK_TRAILER,  /* reading trailer lines up to the empty one */
    CHUNK_DONE,
    CHUNK_BAD,
};

struct https_chunked {
    enum chunk_state state;
    size_t remaining;     /* CHUNK_DATA: bytes left in this chunk */
    size_t trailer_bytes; /* bounded like a response head */
    size_t line_len;
    char line[HTTPS_LINE_MAX]; /* the line being assembled, without its CRLF */
};

struct https_chunked *https_chunked_new(void)
{
    return xcalloc(1, sizeof(struct https_chunked));
}

void https_chunked_free(struct https_chunked *d)
{
    free(d);
}

/* Assemble a CRLF-terminated line across feeds. 1 = complete in d->line, 0 = more, -1 = bad. */
static int take_line(struct https_chunked *d, const char *in, size_t len, size_t *used)
{
    const char *nl = memchr(in, '\n', len);
    size_t n = nl != NULL ? (size_t)(nl - in) : len;
    if (d->line_len + n >= sizeof d->line)
        return -1;
    memcpy(d->line + d->line_len, in, n);
    d->line_len += n;
    *used = nl != NULL ? n + 1 : n;
    if (nl == NULL)
        return 0;
    if (d->line_len == 0 || d->line[d->line_len - 1] != '\r')
        return -1;
    d->line[--d->line_len] = '\0';
    if (memchr(d->line, '\r', d->line_len) != NULL || memchr(d->line, '\0', d->line_len) != NULL)
        return -1;
    d->line_len = 0;
    return 1;
}

static int hex_value(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* "1a2b[ ][;ext...]"; sizes above HTTPS_BODY_MAX are refused. */
static int parse_chunk_size(const char *s, size_t *size)
{
    size_t v = 0;
    const char *p = s;
    for (; hex_value(*p) >= 0; p++) {
        v = v * 16 + (size_t)hex_value(*p);
        if (v > HTTPS_BODY_MAX)
            return -1;
    }
    if (p == s)
        return -1;
    while (is_ws(*p))
        p++;
    if (*p != '\0' && *p != ';')
        return -1;
    *size = v;
    return 0;
}

/* A complete line arrived in d->line: act on it per state. */
static int chunk_line(struct https_chunked *d)
{
    switch (d->state) {
    case CHUNK_SIZE:
        if (parse_chunk_size(d->line, &d->remaining) < 0)
            return -1;
        d->state = d->remaining == 0 ? CHUNK_TRAILER : CHUNK_DATA;
        return 0;
    case CHUNK_DATA_END:
        d->state = CHUNK_SIZE;
        return d->line[0] == '\0' ? 0 : -1;
    case CHUNK_TRAILER:
        if (d->line[0] == '\0') {
            d->state = CHUNK_DONE;
            return 0;
        }
        d->trailer_bytes += strlen(d->line) + 2;
        if (strchr(d->line, ':') == NULL || d->trailer_bytes > HTTPS_HEAD_MAX)
            return -1;
        return 0;
    default:
        return -1;
    }
}

int https_chunked_feed(struct https_chunked *d, const char *in, size_t len, size_t *consumed,
                       char **out, size_t *out_len)
{
    size_t pos = 0;
    while (pos < len && d->state != CHUNK_DONE && d->state != CHUNK_BAD) {
        size_t used = 0;
        if (d->state == CHUNK_DATA) {
            used = len - pos < d->remaining ? len - pos : d->remaining;
            append(out, out_len, in + pos, used);
            d->remaining -= used;
            if (d->remaining == 0)
                d->state = CHUNK_DATA_END;
            pos += used;
            continue;
        }
        int r = take_line(d, in + pos, len - pos, &used);
        pos += used;
        if (r < 0 || (r == 1 && chunk_line(d) < 0))
            d->state = CHUNK_BAD;
    }
    *consumed = pos;
    if (d->state == CHUNK_BAD)
        return -1;
    return d->state == CHUNK_DONE ? 1 : 0;
}

/* ---- TLS I/O with deadlines ---- */

/* All queued OpenSSL errors, "; "-separated; NULL if none. Clears the queue. */
static char *tls_errors(void)
{
    struct buf b = {0};
    unsigned long e;
    while ((e = ERR_get_error()) != 0) {
        char one[256];
        ERR_error_string_n(e, one, sizeof one);
        if (b.len > 0)
            buf_addstr(&b, "; ");
        buf_addstr(&b, one);
    }
    return b.data;
}

static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left);
        if (r != -1)
            return r > 0 ? 1 : 0;
        if (errno != EINTR)
            return -1;
    }
}

static int ssl_run(SSL *ssl, struct ssl_job *job)
{
    switch (job->op) {
    case OP_HANDSHAKE:
        return SSL_connect(ssl);
    case OP_READ:
        return SSL_read_ex(ssl, job->buf, job->len, &job->done);
    case OP_WRITE:
        return SSL_write_ex(ssl, job->buf, job->len, &job->done);
    case OP_SHUTDOWN:
        return SSL_shutdown(ssl) >= 0 ? 1 : -1;
    }
    return -1;
}

/* One OpenSSL call with SIGPIPE held off, so that a peer that went away gives EPIPE rather
 * than killing the process (OpenSSL writes with write(2); libpq does the same dance). A
 * SIGPIPE this call raised is consumed before the mask is restored. */
static int ssl_call(SSL *ssl, struct ssl_job *job, int *saved_errno)
{
    sigset_t pipe, old, pending;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    sigpending(&pending);
    int was_pending = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, &old);
    ERR_clear_error();
    errno = 0;
    int ret = ssl_run(ssl, job);
    *saved_errno = errno;
    sigpending(&pending);
    if (!was_pending && sigismember(&pending, SIGPIPE)) {
        struct timespec zero = {0, 0};
        sigtimedwait(&pipe, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return ret;
}

static enum io io_failure(struct https_conn *c, const struct ssl_job *job, int err, int errnum,
                          char **cause)
{
    char *tls = tls_errors();
    enum io io = IO_FAIL;
    if (err == SSL_ERROR_ZERO_RETURN || (err == SSL_ERROR_SYSCALL && tls == NULL && errnum == 0)) {
        fail_cause(cause, "%s: connection closed by the server", job->what);
        io = IO_EOF;
    } else if (tls == NULL) {
        fail_cause(cause, "%s: %s", job->what, errnum != 0 ? strerror(errnum) : "TLS error");
    } else {
        long v = SSL_get_verify_result(c->ssl);
        fail_cause(cause, "%s: %s%s%s%s", job->what, tls, v != X509_V_OK ? " (certificate: " : "",
                   v != X509_V_OK ? X509_verify_cert_error_string(v) : "",
                   v != X509_V_OK ? ")" : "");
    }
    free(tls);
    return io;
}

/* Run job, waiting on the socket whenever OpenSSL wants to read or write. */
static enum io drive(struct https_conn *c, struct ssl_job *job, char **cause)
{
    for (;;) {
        int errnum;
        int ret = ssl_call(c->ssl, job, &errnum);
        if (ret > 0)
            return IO_DONE;
        int err = SSL_get_error(c->ssl, ret);
        short events = err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
        if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE)
            return io_failure(c, job, err, errnum, cause);
        int w = wait_fd(c->fd, events, job->deadline);
        if (w == 0) {
            fail_cause(cause, "%s: timed out after %d ms", job->what, c->timeout_ms);
            return IO_TIMEOUT;
        }
        if (w < 0) {
            fail_cause(cause, "%s: poll: %s", job->what, strerror(errno));
            return IO_FAIL;
        }
    }
}

static enum io read_more(struct https_conn *c, int64_t deadline, const char *what, char **cause)
{
    buf_reserve(&c->rbuf, HTTPS_READ_SIZE);
    struct ssl_job job = {OP_READ, c->rbuf.data + c->rbuf.len, HTTPS_READ_SIZE, 0, deadline, what};
    enum io io = drive(c, &job, cause);
    if (io == IO_DONE) {
        c->rbuf.len += job.done;
        c->rbuf.data[c->rbuf.len] = '\0';
    }
    return io;
}

/* ---- connecting ---- */

static int connect_one(const struct addrinfo *ai, int64_t deadline, int *err)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
        *err = errno;
        return -1;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
        return fd;
    if (errno != EINPROGRESS && errno != EINTR)
        goto fail;
    int w = wait_fd(fd, POLLOUT, deadline);
    if (w <= 0) {
        errno = w == 0 ? ETIMEDOUT : errno;
        goto fail;
    }
    int so = 0;
    socklen_t len = sizeof so;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &len) < 0)
        goto fail;
    if (so == 0)
        return fd;
    errno = so;
fail:
    *err = errno;
    close(fd);
    return -1;
}

static int tcp_connect(const char *host, int port, int timeout_ms, char **cause)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res;
    char service[16];
    hints.ai_flags = AI_NUMERICSERV;
    snprintf(service, sizeof service, "%d", port);
    int rc = getaddrinfo(host, service, &hints, &res);
    if (rc != 0) {
        fail_cause(cause, "resolving %s: %s", host, gai_strerror(rc));
        return -1;
    }
    int64_t deadline = now_ms() + timeout_ms;
    int fd = -1, err = 0;
    for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next)
        fd = connect_one(ai, deadline, &err);
    freeaddrinfo(res);
    if (fd < 0) {
        fail_cause(cause, "connecting to %s port %d: %s", host, port, strerror(err));
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int tls_fail(char **cause, const char *what, const char *arg)
{
    char *tls = tls_errors();
    fail_cause(cause, "%s%s: %s", what, arg, tls != NULL ? tls : "unknown TLS error");
    free(tls);
    return -1;
}

static int ctx_setup(SSL_CTX *ctx, const struct https_opts *o, char **cause)
{
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (o->ca_file != NULL && SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL) != 1)
        return tls_fail(cause, "loading CA file ", o->ca_file);
    if (o->ca_file == NULL && SSL_CTX_set_default_verify_paths(ctx) != 1)
        return tls_fail(cause, "loading the system CA store", "");
    if (o->min_version != 0 && SSL_CTX_set_min_proto_version(ctx, o->min_version) != 1)
        return tls_fail(cause, "setting the minimum TLS version", "");
    if (o->max_version != 0 && SSL_CTX_set_max_proto_version(ctx, o->max_version) != 1)
        return tls_fail(cause, "setting the maximum TLS version", "");
    if (o->cert_file == NULL && o->key_file != NULL) {
        fail_cause(cause, "key_file without cert_file");
        return -1;
    }
    if (o->cert_file == NULL)
        return 0;
    const char *key = o->key_file != NULL ? o->key_file : o->cert_file;
    if (SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1)
        return tls_fail(cause, "loading client certificate ", o->cert_file);
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
        return tls_fail(cause, "loading client key ", key);
    if (SSL_CTX_check_private_key(ctx) != 1)
        return tls_fail(cause, "client key does not match ", o->cert_file);
    return 0;
}

static int is_ip(const char *name)
{
    unsigned char addr[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1;
}

/* Verify the certificate against name (an IP address or a DNS name); SNI only for names. */
static int ssl_setup(struct https_conn *c, const char *name, char **cause)
{
    c->ssl = SSL_new(c->ctx);
    if (c->ssl == NULL)
        return tls_fail(cause, "SSL_new", "");
    if (SSL_set_fd(c->ssl, c->fd) != 1)
        return tls_fail(cause, "SSL_set_fd", "");
    if (is_ip(name)) {
        if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), name) != 1)
            return tls_fail(cause, "setting the expected IP address ", name);
    } else if (SSL_set_tlsext_host_name(c->ssl, name) != 1 || SSL_set1_host(c->ssl, name) != 1) {
        return tls_fail(cause, "setting the expected host name ", name);
    }
    SSL_set_connect_state(c->ssl);
    return 0;
}

static int handshake(struct https_conn *c, char **cause)
{
    char *what = xasprintf("TLS handshake with %s", c->peer);
    struct ssl_job job = {OP_HANDSHAKE, NULL, 0, 0, now_ms() + c->timeout_ms, what};
    enum io io = drive(c, &job, cause);
    free(what);
    return io == IO_DONE ? 0 : -1;
}

static char *host_header(const char *name, int port)
{
    int v6 = strchr(name, ':') != NULL;
    if (port == 443)
        return v6 ? xasprintf("[%s]", name) : xstrdup(name);
    return v6 ? xasprintf("[%s]:%d", name, port) : xasprintf("%s:%d", name, port);
}

struct https_conn *https_connect(const struct https_opts *opts, char **cause)
{
    if (opts->host == NULL || opts->host[0] == '\0' || opts->port < 1 || opts->port > 65535) {
        fail_cause(cause, "https_connect: need a host and a port in 1..65535");
        return NULL;
    }
    const char *name = opts->server_name != NULL ? opts->server_name : opts->host;
    struct https_conn *c = xcalloc(1, sizeof *c);
    c->state = CONN_BROKEN; /* until the handshake is done: no close_notify */
    c->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : HTTPS_TIMEOUT_DEFAULT;
    c->host = host_header(name, opts->port);
    c->peer = xasprintf("%s port %d", opts->host, opts->port);
    c->fd = tcp_connect(opts->host, opts->port, c->timeout_ms, cause);
    if (c->fd < 0)
        goto fail;
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (c->ctx == NULL) {
        tls_fail(cause, "SSL_CTX_new", "");
        goto fail;
    }
    if (ctx_setup(c->ctx, opts, cause) < 0 || ssl_setup(c, name, cause) < 0)
        goto fail;
    if (handshake(c, cause) < 0)
        goto fail;
    c->state = CONN_IDLE;
    return c;
fail:
    https_close(c);
    return NULL;
}

void https_close(struct https_conn *c)
{
    if (c == NULL)
        return;
    if (c->ssl != NULL && c->state != CONN_BROKEN) {
        struct ssl_job job = {OP_SHUTDOWN, NULL, 0, 0, 0, "closing"};
        int errnum;
        ssl_call(c->ssl, &job, &errnum); /* one try: close_notify if the socket takes it */
        ERR_clear_error();
    }
    SSL_free(c->ssl);
    SSL_CTX_free(c->ctx);
    if (c->fd >= 0)
        close(c->fd);
    https_chunked_free(c->chunked);
    free(c->rbuf.data);
    free(c->stream.data);
    free(c->host);
    free(c->peer);
    free(c);
}

const char *https_protocol(const struct https_conn *c)
{
    return SSL_get_version(c->ssl);
}

void https_peer_fingerprint(const struct https_conn *c, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    X509 *cert = SSL_get0_peer_certificate(c->ssl);
    out[0] = '\0';
    if (cert == NULL || X509_digest(cert, EVP_sha256(), md, &n) != 1 || n != 32)
        return;
    for (unsigned int i = 0; i < n; i++)
        snprintf(out + 2 * (size_t)i, 3, "%02x", md[i]);
}

/* ---- one exchange ---- */

static int header_is(const char *line, const char *name)
{
    size_t n = strlen(name);
    return strncasecmp(line, name, n) == 0 && line[n] == ':';
}

static int valid_header(const char *line)
{
    const char *colon = strchr(line, ':');
    if (colon == NULL || colon == line || strpbrk(line, "\r\n") != NULL)
        return 0;
    for (const char *p = line; p < colon; p++) {
        if (!is_tchar(*p))
            return 0;
    }
    return 1;
}

static int valid_method(const char *method)
{
    if (method == NULL || method[0] == '\0')
        return 0;
    for (const char *p = method; *p != '\0'; p++) {
        if (!is_tchar(*p))
            return 0;
    }
    return 1;
}

static int valid_target(const char *path)
{
    if (path == NULL || path[0] == '\0')
        return 0;
    for (const char *p = path; *p != '\0'; p++) {
        if (is_ctl(*p) || *p == ' ')
            return 0;
    }
    return 1;
}

static int build_request(const struct https_conn *c, const struct request *rq, struct buf *b,
                         char **cause)
{
    int has_host = 0, has_length = 0;
    if (!valid_method(rq->method) || !valid_target(rq->path)) {
        fail_cause(cause, "bad request method or path");
        return -1;
    }
    buf_addf(b, "%s %s HTTP/1.1\r\n", rq->method, rq->path);
    for (size_t i = 0; rq->headers != NULL && rq->headers[i] != NULL; i++) {
        if (!valid_header(rq->headers[i])) {
            fail_cause(cause, "bad request header \"%s\"", rq->headers[i]);
            return -1;
        }
        has_host |= header_is(rq->headers[i], "Host");
        has_length |= header_is(rq->headers[i], "Content-Length");
        buf_addf(b, "%s\r\n", rq->headers[i]);
    }
    if (!has_host)
        buf_addf(b, "Host: %s\r\n", c->host);
    if (rq->body != NULL && !has_length)
        buf_addf(b, "Content-Length: %zu\r\n", rq->body_len);
    buf_addstr(b, "\r\n");
    if (rq->body != NULL)
        buf_add(b, rq->body, rq->body_len);
    return 0;
}

/* 0 = sent; -1 = not sent (bad request, connection untouched); 1 = the write failed (broken). */
static int send_request(struct https_conn *c, const struct request *rq, char **cause)
{
    struct buf b = {0};
    if (build_request(c, rq, &b, cause) < 0) {
        free(b.data);
        return -1;
    }
    struct ssl_job job = {OP_WRITE, b.data, b.len, 0, now_ms() + c->timeout_ms, "sending request"};
    enum io io = drive(c, &job, cause);
    free(b.data);
    if (io == IO_DONE)
        return 0;
    c->state = CONN_BROKEN;
    return 1;
}

/* Read one head into resp (which must be empty). */
static int read_head(struct https_conn *c, struct https_response *resp, char **cause)
{
    size_t scanned = 0;
    for (;;) {
        char *end = NULL;
        if (c->rbuf.len > scanned)
            end = memmem(c->rbuf.data + scanned, c->rbuf.len - scanned, "\r\n\r\n", 4);
        size_t n = end != NULL ? (size_t)(end + 4 - c->rbuf.data) : c->rbuf.len;
        if (n > HTTPS_HEAD_MAX) {
            fail_cause(cause, "response head larger than %zu bytes", HTTPS_HEAD_MAX);
            return -1;
        }
        if (end != NULL) {
            if (https_parse_head(c->rbuf.data, n, resp, cause) < 0)
                return -1;
            c->http10 = c->rbuf.data[7] == '0';
            buf_consume(&c->rbuf, n);
            return 0;
        }
        scanned = c->rbuf.len > 3 ? c->rbuf.len - 3 : 0;
        if (read_more(c, now_ms() + c->timeout_ms, "reading response head", cause) != IO_DONE)
            return -1;
    }
}

/* Strict Content-Length: digits only; repeated headers must agree. 0 absent, 1 set, -1 bad. */
static int content_length(const struct https_response *r, size_t *len)
{
    int found = 0;
    for (size_t i = 0; i < r->nheaders; i++) {
        if (strcasecmp(r->headers[i].name, "Content-Length") != 0)
            continue;
        const char *v = r->headers[i].value;
        size_t n = 0;
        if (*v == '\0')
            return -1;
        for (; *v >= '0' && *v <= '9'; v++) {
            n = n * 10 + (size_t)(*v - '0');
            if (n > HTTPS_BODY_MAX)
                return -1;
        }
        if (*v != '\0' || (found && n != *len))
            return -1;
        *len = n;
        found = 1;
    }
    return found;
}

/* From the head, decide how the body is delimited and whether the connection stays open. */
static int setup_body(struct https_conn *c, const char *method, const struct https_response *r,
                      char **cause)
{
    const char *conn = https_response_header(r, "Connection");
    const char *te = https_response_header(r, "Transfer-Encoding");
    c->keep_alive = c->http10 ? has_token(conn, "keep-alive") : !has_token(conn, "close");
    c->body = BODY_NONE;
    if (strcmp(method, "HEAD") == 0 || r->status < 200 || r->status == 204 || r->status == 304) {
        c->keep_alive = c->keep_alive && r->status != 101;
        return 0;
    }
    if (te != NULL) {
        if (strcasecmp(te, "chunked") != 0) {
            fail_cause(cause, "unsupported Transfer-Encoding \"%s\"", te);
            return -1;
        }
        c->body = BODY_CHUNKED;
        c->chunked = https_chunked_new();
        return 0;
    }
    int cl = content_length(r, &c->remaining);
    if (cl < 0) {
        fail_cause(cause, "bad or too large Content-Length (limit %zu bytes)", HTTPS_BODY_MAX);
        return -1;
    }
    c->body = cl ? BODY_LENGTH : BODY_CLOSE;
    c->keep_alive = c->keep_alive && cl;
    return 0;
}

/* Move body bytes from rbuf to out. 1 = body complete, 0 = need more, -1 = malformed. */
static int body_step(struct https_conn *c, struct buf *out)
{
    size_t n = c->rbuf.len;
    switch (c->body) {
    case BODY_NONE:
        return 1;
    case BODY_LENGTH:
        n = n < c->remaining ? n : c->remaining;
        buf_add(out, c->rbuf.data, n);
        buf_consume(&c->rbuf, n);
        c->remaining -= n;
        return c->remaining == 0;
    case BODY_CLOSE:
        buf_add(out, c->rbuf.data, n);
        buf_consume(&c->rbuf, n);
        return 0;
    case BODY_CHUNKED:
        break;
    }
    char *dec = NULL;
    size_t dec_len = 0;
    int r = https_chunked_feed(c->chunked, c->rbuf.data, n, &n, &dec, &dec_len);
    buf_add(out, dec, dec_len);
    free(dec);
    buf_consume(&c->rbuf, n);
    return r;
}

static void finish_body(struct https_conn *c)
{
    https_chunked_free(c->chunked);
    c->chunked = NULL;
    c->body = BODY_NONE;
    c->state = c->keep_alive ? CONN_IDLE : CONN_CLOSED;
}

static int read_body(struct https_conn *c, struct https_response *resp, char **cause)
{
    struct buf out = {0};
    if (c->body == BODY_LENGTH)
        buf_reserve(&out, c->remaining);
    for (;;) {
        int r = body_step(c, &out);
        if (r < 0) {
            fail_cause(cause, "malformed chunked response body");
            goto fail;
        }
        if (out.len > HTTPS_BODY_MAX) {
            fail_cause(cause, "response body larger than %zu bytes", HTTPS_BODY_MAX);
            goto fail;
        }
        if (r == 1)
            break;
        char *why = NULL;
        enum io io = read_more(c, now_ms() + c->timeout_ms, "reading response body", &why);
        if (io == IO_EOF && c->body == BODY_CLOSE) {
            free(why);
            break;
        }
        if (io != IO_DONE) {
            pass_cause(cause, why);
            goto fail;
        }
    }
    finish_body(c);
    resp->body = out.data != NULL ? out.data : xstrdup("");
    resp->body_len = out.len;
    return 0;
fail:
    free(out.data);
    return -1;
}

static int read_final_head(struct https_conn *c, struct https_response *resp, char **cause)
{
    do {
        https_response_clear(resp); /* interim 1xx responses are skipped */
        if (read_head(c, resp, cause) < 0)
            return -1;
    } while (resp->status < 200 && resp->status != 101);
    return 0;
}

/* The server may answer (413, say) and close before taking the whole request: what it sent
 * is usually still readable, so look for it before reporting the failed write. */
static int early_response(struct https_conn *c, struct https_response *resp)
{
    if (read_final_head(c, resp, NULL) == 0)
        return 0;
    https_response_clear(resp);
    return -1;
}

/* Send the request and read the final response head; the body is then up to the caller. */
static int exchange(struct https_conn *c, const struct request *rq, struct https_response *resp,
                    char **cause)
{
    static const char *const why[] = {
        [CONN_STREAMING] = "connection is in the middle of a stream",
        [CONN_CLOSED] = "connection was closed by the server after the last response",
        [CONN_BROKEN] = "connection is broken by an earlier error",
    };
    memset(resp, 0, sizeof *resp);
    if (c->state != CONN_IDLE) {
        fail_cause(cause, "%s", why[c->state]);
        return -1;
    }
    char *werr = NULL;
    int sent = send_request(c, rq, &werr);
    if (sent < 0 || (sent == 1 && early_response(c, resp) < 0)) {
        pass_cause(cause, werr);
        return -1;
    }
    free(werr);
    if (sent == 0 && read_final_head(c, resp, cause) < 0)
        goto fail;
    if (setup_body(c, rq->method, resp, cause) < 0)
        goto fail;
    c->keep_alive = c->keep_alive && sent == 0;
    c->state = CONN_STREAMING;
    return 0;
fail:
    c->state = CONN_BROKEN;
    https_response_clear(resp);
    return -1;
}

int https_request(struct https_conn *c, const char *method, const char *path,
                  const char *const *headers, const char *body, size_t body_len,
                  struct https_response *resp, char **cause)
{
    struct request rq = {method, path, headers, body, body_len};
    if (exchange(c, &rq, resp, cause) < 0)
        return -1;
    if (read_body(c, resp, cause) == 0)
        return 0;
    c->state = CONN_BROKEN;
    https_response_clear(resp);
    return -1;
}

int https_fetch(const struct https_opts *opts, const char *method, const char *path,
                const char *const *headers, const char *body, size_t body_len,
                struct https_response *resp, char **cause)
{
    struct https_conn *c = https_connect(opts, cause);
    if (c == NULL) {
        memset(resp, 0, sizeof *resp);
        return -1;
    }
    int r = https_request(c, method, path, headers, body, body_len, resp, cause);
    https_close(c);
    return r;
}

/* ---- streaming ---- */

int https_stream_open(struct https_conn *c, const char *method, const char *path,
                      const char *const *headers, struct https_response *resp, char **cause)
{
    struct request rq = {method, path, headers, NULL, 0};
    if (exchange(c, &rq, resp, cause) < 0)
        return -1;
    resp->body = xstrdup("");
    c->stream.len = 0;
    c->stream_off = 0;
    c->stream_ended = 0;
    return 0;
}

static long stream_take(struct https_conn *c, char *buf, size_t cap)
{
    size_t n = c->stream.len - c->stream_off;
    n = n < cap ? n : cap;
    memcpy(buf, c->stream.data + c->stream_off, n);
    c->stream_off += n;
    if (c->stream_off == c->stream.len)
        c->stream.len = c->stream_off = 0;
    return (long)n;
}

long https_stream_read(struct https_conn *c, char *buf, size_t cap, int timeout_ms)
{
    if (c == NULL || c->state != CONN_STREAMING || cap == 0)
        return -1;
    int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        if (c->stream.len > c->stream_off)
            return stream_take(c, buf, cap > LONG_MAX ? LONG_MAX : cap);
        if (c->stream_ended) { /* the last data went out on the previous call */
            c->stream_ended = 0;
            finish_body(c);
            return -1;
        }
        int r = body_step(c, &c->stream);
        if (r < 0)
            break;
        if (c->stream.len > 0) {
            c->stream_ended = r == 1; /* hand the data out first, then report the end */
            continue;
        }
        if (r == 1) {
            finish_body(c);
            return -1;
        }
        enum io io = read_more(c, deadline, "reading stream", NULL);
        if (io == IO_TIMEOUT)
            return 0;
        if (io == IO_EOF && c->body == BODY_CLOSE) {
            c->keep_alive = 0;
            finish_body(c);
            return -1;
        }
        if (io != IO_DONE)
            break;
    }
    c->state = CONN_BROKEN;
    return -1;
}
