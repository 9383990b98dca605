/* Password hashing with scrypt (OpenSSL 3 EVP_KDF). The encoded hash carries its parameters:
 *   scrypt$<log2 N>$<r>$<p>$<salt base64>$<hash base64>
 * so the cost can be raised later without breaking stored hashes. CPU-heavy: never call on
 * an event loop thread (the server runs it on its helper pool). */
#ifndef RAISE_PASSWORD_H
#define RAISE_PASSWORD_H

#define PASSWORD_MIN_LENGTH 12

/* Hash with the current default parameters; owned string or NULL on error. */
char *password_hash(const char *password);
/* Same, with explicit parameters (tests use cheap ones). */
char *password_hash_params(const char *password, int log2_n, int r, int p);
/* 1 if password matches encoded, 0 if not (or encoded is malformed). Constant time in the
 * comparison. */
int password_verify(const char *password, const char *encoded);
/* A random password of 24 base64url characters (144 bits); owned. */
char *password_generate(void);

#endif
