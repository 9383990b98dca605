/* TLS context setup shared by the server (and anything else that serves TLS). */
#ifndef RAISE_TLS_H
#define RAISE_TLS_H

#include <openssl/ssl.h>

/* A server context: TLS 1.2 minimum (1.3 preferred), AEAD ciphers only, no renegotiation,
 * no compression, small idle buffers. With client_ca, client certificates are requested
 * (not required) and verified against it. NULL + *cause (owned) on failure. */
SSL_CTX *tls_server_ctx_new(const char *cert_file, const char *key_file, const char *client_ca,
                            char **cause);
/* The last OpenSSL error as text, into buf. Clears the error queue. */
const char *tls_error_string(char *buf, size_t len);

#endif
