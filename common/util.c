#include "util.h"

#include "xmalloc.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int util_random(void *buf, size_t len)
{
    return RAND_bytes(buf, (int)len) == 1 ? 0 : -1;
}

void util_hex(const unsigned char *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

char *util_base64(const unsigned char *in, size_t len)
{
    char *out = xmalloc(4 * ((len + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    return out;
}

char *util_base64url(const unsigned char *in, size_t len)
{
    char *s = util_base64(in, len);
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '=')
        s[--n] = '\0';
    for (char *p = s; *p != '\0'; p++)
        *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
    return s;
}

int util_unbase64(const char *in, unsigned char *out, size_t cap, size_t *outlen)
{
    size_t n = strlen(in);
    if (n % 4 != 0 || 3 * (n / 4) > cap)
        return -1;
    int m = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
    if (m < 0)
        return -1;
    size_t pad = (n > 0 && in[n - 1] == '=') + (n > 1 && in[n - 2] == '=');
    *outlen = (size_t)m - pad;
    return 0;
}

uint64_t util_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int util_equal_ct(const void *a, const void *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
}

int util_cookie_get(const char *header, const char *name, char *out, size_t cap)
{
    size_t nlen = strlen(name);
    const char *p = header;
    int bad = 0;
    while (p != NULL && *p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == ';')
            p++;
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len > nlen && memcmp(p, name, nlen) == 0 && p[nlen] == '=') {
            const char *v = p + nlen + 1;
            size_t vlen = len - nlen - 1;
            if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"')
                v++, vlen -= 2;
            if (vlen > 0 && vlen < cap && memchr(v, '"', vlen) == NULL) {
                memcpy(out, v, vlen);
                out[vlen] = '\0';
                return (int)vlen;
            }
            bad |= vlen > 0;
        }
        p = end;
    }
    return bad ? -2 : -1;
}

int util_parse_date(const char *s, int *y, int *m, int *d)
{
    static const int days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return -1;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && !isdigit((unsigned char)s[i]))
            return -1;
    *y = atoi(s), *m = atoi(s + 5), *d = atoi(s + 8);
    int leap = (*y % 4 == 0 && *y % 100 != 0) || *y % 400 == 0;
    /* PostgreSQL's dates have no year 0: 0000-01-01 passed here and was a 500 there */
    if (*y < 1 || *m < 1 || *m > 12 || *d < 1 || *d > days[*m - 1] ||
        (*m == 2 && *d == 29 && !leap))
        return -1;
    return 0;
}

void util_addr_key(const char *addr, char *out, size_t cap)
{
    struct in6_addr a;
    char text[INET6_ADDRSTRLEN];
    if (inet_pton(AF_INET6, addr, &a) != 1) {
        snprintf(out, cap, "%s", addr);
        return;
    }
    if (IN6_IS_ADDR_V4MAPPED(&a)) {
        inet_ntop(AF_INET, &a.s6_addr[12], text, sizeof(text));
        snprintf(out, cap, "%s", text);
        return;
    }
    memset(&a.s6_addr[8], 0, 8);
    inet_ntop(AF_INET6, &a, text, sizeof(text));
    snprintf(out, cap, "%s/64", text);
}

/* Spaces and tabs off both ends of s, in place. */
static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

/* A qvalue ("0", "0.5", "1.000"; RFC 9110 12.4.2) in thousandths; 0 if malformed. */
static int qvalue(const char *v)
{
    if ((v[0] != '0' && v[0] != '1') || (v[1] != '\0' && v[1] != '.'))
        return 0;
    int val = (v[0] - '0') * 1000, scale = 100;
    for (const char *d = v[1] ? v + 2 : v + 1; *d != '\0'; d++, scale /= 10) {
        if (*d < '0' || *d > '9' || scale == 0)
            return 0;
        val += (*d - '0') * scale;
    }
    return val > 1000 ? 1000 : val;
}

/* How specifically a media range matches type: 2 the type itself, 1 its top type with any
 * subtype, 0 any type, -1 not at all. */
static int range_match(const char *range, const char *type)
{
    const char *slash = strchr(type, '/');
    size_t top = slash ? (size_t)(slash - type) + 1 : 0;
    if (strcasecmp(range, type) == 0)
        return 2;
    if (top > 0 && strncasecmp(range, type, top) == 0 && strcmp(range + top, "*") == 0)
        return 1;
    return strcmp(range, "*/*") == 0 ? 0 : -1;
}

int util_accept_choose(const char *accept, const char *const *types, int n)
{
    char *copy = xstrdup(accept), *save = NULL;
    int best = -1, best_q = 0, best_pos = 0, spec[8], q[8], pos[8];
    if (n > 8)
        n = 8;
    for (int i = 0; i < n; i++)
        spec[i] = -1, q[i] = 0, pos[i] = 0;
    int at = 0;
    for (char *part = strtok_r(copy, ",", &save); part != NULL;
         part = strtok_r(NULL, ",", &save), at++) {
        char *psave = NULL, *range = strtok_r(part, ";", &psave);
        if (range == NULL)
            continue;
        range = trim(range);
        int rq = 1000;
        for (char *param = strtok_r(NULL, ";", &psave); param != NULL;
             param = strtok_r(NULL, ";", &psave)) {
            param = trim(param);
            if ((param[0] == 'q' || param[0] == 'Q') && param[1] == '=')
                rq = qvalue(trim(param + 2));
        }
        for (int i = 0; i < n; i++) {
            int m = range_match(range, types[i]);
            if (m > spec[i])
                spec[i] = m, q[i] = rq, pos[i] = at;
        }
    }
    free(copy);
    for (int i = 0; i < n; i++) {
        if (spec[i] < 0 || q[i] == 0)
            continue;
        if (best < 0 || q[i] > best_q || (q[i] == best_q && pos[i] < best_pos))
            best = i, best_q = q[i], best_pos = pos[i];
    }
    return best;
}
