#include "tls.h"

#include "xmalloc.h"

#include <openssl/err.h>

/* TLS 1.2 suites: forward secrecy + AEAD only (Mozilla "intermediate"). 1.3 suites are all AEAD. */
static const char tls12_ciphers[] = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

const char *tls_error_string(char *buf, size_t len)
{
    unsigned long e = ERR_peek_last_error();
    if (e == 0)
        snprintf(buf, len, "unknown TLS error");
    else
        ERR_error_string_n(e, buf, len);
    ERR_clear_error();
    return buf;
}

static int fail(SSL_CTX *ctx, char **cause, const char *what, const char *file)
{
    char err[256];
    *cause = xasprintf("tls: %s %s: %s", what, file, tls_error_string(err, sizeof(err)));
    SSL_CTX_free(ctx);
    return -1;
}

SSL_CTX *tls_server_ctx_new(const char *cert_file, const char *key_file, const char *client_ca,
                            char **cause)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        fail(NULL, cause, "cannot create context", "");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_set_cipher_list(ctx, tls12_ciphers) != 1) {
        fail(ctx, cause, "bad cipher list", "");
        return NULL;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        fail(ctx, cause, "cannot load certificate", cert_file);
        return NULL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        fail(ctx, cause, "cannot load key", key_file);
        return NULL;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        fail(ctx, cause, "key does not match certificate", key_file);
        return NULL;
    }
    if (client_ca != NULL) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(client_ca);
        if (names == NULL || SSL_CTX_load_verify_locations(ctx, client_ca, NULL) != 1) {
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            fail(ctx, cause, "cannot load client CA", client_ca);
            return NULL;
        }
        SSL_CTX_set_client_CA_list(ctx, names);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        SSL_CTX_set_verify_depth(ctx, 4);
        static const unsigned char sid_ctx[] = "raised";
        SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    }
    return ctx;
}
