/* A small blocking HTTPS/1.1 client on OpenSSL 3, for the integration tests and raisectl.
 *
 * One connection does one request at a time (keep-alive, no pipelining). Every wait on the
 * socket is bounded by the connection's timeout. A connection that failed in the middle of
 * an exchange is broken: further requests on it fail, and nothing is ever retried. */
#ifndef RAISE_HTTPS_H
#define RAISE_HTTPS_H

#include <stddef.h>

struct https_opts {
    const char *host;        /* borrowed; IP or name, e.g. "127.0.0.1" */
    int port;                /* 1..65535 */
    const char *ca_file;     /* borrowed; CA bundle to verify the server; NULL = system default */
    const char *server_name; /* borrowed; name to verify + SNI (SNI only for names); NULL = host */
    const char *cert_file;   /* borrowed; optional client certificate chain (PEM) */
    const char *key_file;    /* borrowed; its key (PEM); NULL = in cert_file */
    int min_version;         /* e.g. TLS1_2_VERSION from <openssl/ssl.h>; 0 = library default */
    int max_version;         /* 0 = highest */
    int timeout_ms;          /* connect/handshake, each write and each wait to read; 0 = 10000 */
};

struct https_header {
    char *name;  /* owned by the response */
    char *value; /* owned by the response; without surrounding whitespace */
};

struct https_response {
    int status;
    struct https_header *headers; /* owned; in the order received */
    size_t nheaders;
    char *body; /* owned, NUL-terminated (may contain NULs) */
    size_t body_len;
};

struct https_conn;

/* Connect + TLS handshake with certificate and host name verification. NULL + *cause (owned)
 * on failure; TLS failures carry OpenSSL's error strings. */
struct https_conn *https_connect(const struct https_opts *opts, char **cause);

/* One request on a keep-alive connection. headers: NULL-terminated array of "Name: value"
 * strings (may be NULL; no CR or LF allowed). Adds Host, and Content-Length when body != NULL,
 * unless the caller passed them. Reads the whole response (Content-Length, chunked, or until
 * close; none for HEAD, 1xx, 204, 304; interim 1xx heads are skipped). 0 on success (resp
 * filled, caller calls https_response_clear); -1 + *cause on error with resp left empty. If the
 * server closed the connection, the request fails; it is never retried. */
int https_request(struct https_conn *c, const char *method, const char *path,
                  const char *const *headers, const char *body, size_t body_len,
                  struct https_response *resp, char **cause);

/* Streaming (for Server-Sent Events): send the request (no body) and read status + headers
 * only (resp->body is ""). Then https_stream_read returns decoded body bytes as they arrive. */
int https_stream_open(struct https_conn *c, const char *method, const char *path,
                      const char *const *headers, struct https_response *resp, char **cause);
/* Waits up to timeout_ms (0 = just look). Returns n > 0 bytes read into buf, 0 on timeout, -1 on
 * end of stream or error. After the end of a kept-alive stream the connection takes requests. */
long https_stream_read(struct https_conn *c, char *buf, size_t cap, int timeout_ms);

/* Case-insensitive header lookup (first match); NULL if absent. */
const char *https_response_header(const struct https_response *r, const char *name);
/* Frees what the response owns and zeroes it. Safe on a zeroed response and with NULL. */
void https_response_clear(struct https_response *r);

/* Negotiated protocol, "TLSv1.3" etc. */
const char *https_protocol(const struct https_conn *c);
/* Lowercase hex SHA-256 of the server's leaf certificate (DER), 64 chars + NUL into out[65]. */
void https_peer_fingerprint(const struct https_conn *c, char out[65]);
/* Safe with NULL. Sends close_notify when the connection is still sound. */
void https_close(struct https_conn *c);

/* One-shot: connect, request, close. On error resp is left empty. */
int https_fetch(const struct https_opts *opts, const char *method, const char *path,
                const char *const *headers, const char *body, size_t body_len,
                struct https_response *resp, char **cause);

/* Pure parsing helpers, exposed for the unit tests. */

/* Parse "HTTP/1.1 200 OK\r\nA: b\r\n\r\n" (len bytes, exactly the head including the final
 * CRLFCRLF) into resp->status and resp->headers (resp->body untouched). Strict: CRLF line ends,
 * no obsolete line folding, no whitespace before the colon. 0, or -1 + *cause with resp
 * untouched. */
int https_parse_head(const char *buf, size_t len, struct https_response *resp, char **cause);

/* Incremental chunked transfer-coding decoder. */
struct https_chunked;
struct https_chunked *https_chunked_new(void);
/* Safe with NULL. */
void https_chunked_free(struct https_chunked *d);
/* Feed len bytes; decoded bytes are appended to *out (xrealloc'd, kept NUL-terminated,
 * *out_len updated). Returns 1 when the last chunk and the trailers have been consumed, 0 if
 * more input is needed, -1 on malformed input (and ever after). *consumed = bytes used: all of
 * them unless 1 is returned, when the bytes after the end are left to the caller. */
int https_chunked_feed(struct https_chunked *d, const char *in, size_t len, size_t *consumed,
                       char **out, size_t *out_len);

#endif
