/* Small helpers: random ids, hex, base64url, time formatting. */
#ifndef RAISE_UTIL_H
#define RAISE_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Cryptographically random bytes (OpenSSL RAND_bytes). 0 ok, -1 error. */
int util_random(void *buf, size_t len);
/* Lowercase hex of len bytes into out (2*len+1 bytes). */
void util_hex(const unsigned char *in, size_t len, char *out);
/* Unpadded base64url of len bytes; owned string. */
char *util_base64url(const unsigned char *in, size_t len);
/* Standard base64 (padded) encode/decode; decode returns -1 on bad input. */
char *util_base64(const unsigned char *in, size_t len);
int util_unbase64(const char *in, unsigned char *out, size_t cap, size_t *outlen);
/* Monotonic milliseconds. */
uint64_t util_now_ms(void);
/* Constant-time comparison; 1 if equal. */
int util_equal_ct(const void *a, const void *b, size_t len);
/* The value of cookie name in a Cookie header ("a=1; raise_session=xyz"; spaces and tabs
 * around pairs are ignored; a value in double quotes loses them; the first usable match
 * wins), into out. Its length; -1 if absent or empty; -2 if there but unusable (a quote
 * inside, or longer than cap - 1). */
int util_cookie_get(const char *header, const char *name, char *out, size_t cap);
/* A calendar date "YYYY-MM-DD" (a real day, leap years included): 0 and its parts, else -1. */
int util_parse_date(const char *s, int *y, int *m, int *d);
/* The key under which a client address is throttled, into out (cap >= 64): an IPv6
 * address's /64 network ("2001:db8:1:2::/64"), since one IPv6 client usually has a whole
 * /64 to pick addresses from; an IPv4-mapped IPv6 address as its IPv4 address; anything
 * else (IPv4, a scoped or unparsable address) as it is. */
void util_addr_key(const char *addr, char *out, size_t cap);
/* Content negotiation: which of the n media types ("text/html") an Accept header value
 * prefers. Each type takes the q of the most specific range that matches it (the type
 * itself, over its top type with any subtype, over any type at all; q defaults to 1); a
 * type no range matches, or matched with q=0, is not acceptable. The highest q wins; on a tie, the
 * type whose range the client named first, then the earlier in types. Its index, or -1 if none is
 * acceptable. */
int util_accept_choose(const char *accept, const char *const *types, int n);

#endif
