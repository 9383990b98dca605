#include "password.h"

#include "util.h"
#include "xmalloc.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SALT_LEN       16
#define HASH_LEN       32
#define DEFAULT_LOG2_N 15 /* N = 32768, r = 8: 32 MiB and ~50-100 ms per hash */
#define DEFAULT_R      8
#define DEFAULT_P      1

static int scrypt(const char *password, const unsigned char *salt, size_t salt_len, int log2_n,
                  int r, int p, unsigned char *out, size_t out_len)
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
    if (kdf == NULL)
        return -1;
    EVP_KDF_CTX *ctx = EVP_KDF_CTX_new(kdf);
    EVP_KDF_free(kdf);
    if (ctx == NULL)
        return -1;
    uint64_t n = (uint64_t)1 << log2_n;
    uint32_t rr = (uint32_t)r, pp = (uint32_t)p;
    uint64_t maxmem = 128u * (uint64_t)r * n + (1u << 20);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)password,
                                          strlen(password)),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &rr),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &pp),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
        OSSL_PARAM_construct_end(),
    };
    int rc = EVP_KDF_derive(ctx, out, out_len, params) == 1 ? 0 : -1;
    EVP_KDF_CTX_free(ctx);
    return rc;
}

char *password_hash_params(const char *password, int log2_n, int r, int p)
{
    unsigned char salt[SALT_LEN], hash[HASH_LEN];
    if (log2_n < 1 || log2_n > 24 || r < 1 || r > 64 || p < 1 || p > 16)
        return NULL;
    if (util_random(salt, sizeof(salt)) < 0 ||
        scrypt(password, salt, sizeof(salt), log2_n, r, p, hash, sizeof(hash)) < 0)
        return NULL;
    char *s64 = util_base64(salt, sizeof(salt)), *h64 = util_base64(hash, sizeof(hash));
    char *out = xasprintf("scrypt$%d$%d$%d$%s$%s", log2_n, r, p, s64, h64);
    free(s64);
    free(h64);
    return out;
}

char *password_hash(const char *password)
{
    return password_hash_params(password, DEFAULT_LOG2_N, DEFAULT_R, DEFAULT_P);
}

int password_verify(const char *password, const char *encoded)
{
    int log2_n, r, p, used = 0;
    char s64[64], h64[128];
    if (sscanf(encoded, "scrypt$%d$%d$%d$%63[^$]$%127s%n", &log2_n, &r, &p, s64, h64, &used) != 5 ||
        encoded[used] != '\0' || log2_n < 1 || log2_n > 24 || r < 1 || r > 64 || p < 1 || p > 16)
        return 0;
    unsigned char salt[48], want[96], got[96];
    size_t salt_len, want_len;
    if (util_unbase64(s64, salt, sizeof(salt), &salt_len) < 0 ||
        util_unbase64(h64, want, sizeof(want), &want_len) < 0 || want_len < 16)
        return 0;
    if (scrypt(password, salt, salt_len, log2_n, r, p, got, want_len) < 0)
        return 0;
    return util_equal_ct(got, want, want_len);
}

char *password_generate(void)
{
    unsigned char raw[18];
    if (util_random(raw, sizeof(raw)) < 0)
        return NULL;
    return util_base64url(raw, sizeof(raw));
}
