/* RFC 9457 problem details (application/problem+json). One table of problem types. */
#ifndef RAISE_PROBLEM_H
#define RAISE_PROBLEM_H

#include <stddef.h>

struct problem;

/* A problem for an HTTP status; detail is printf-formatted (may be NULL). Never NULL. */
struct problem *problem_new(int status, const char *detail_fmt, ...)
    __attribute__((format(printf, 2, 3)));
void problem_free(struct problem *p);
/* Name one bad field (JSON path like "grading.source") and why. */
void problem_add_field(struct problem *p, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
size_t problem_field_count(const struct problem *p);
/* Copy from's field errors into p as key[index].field (key[index] for an unnamed field);
 * returns how many. */
int problem_prefix_fields(struct problem *p, const struct problem *from, const char *key,
                          size_t index);
int problem_status(const struct problem *p);
const char *problem_title(const struct problem *p);
/* Seconds for Retry-After (429, 503); 0 = none. */
void problem_set_retry_after(struct problem *p, int seconds);
int problem_retry_after(const struct problem *p);
/* Serialise once; the string is owned by the caller. */
char *problem_to_json(const struct problem *p);
/* The type URI for a status (e.g. "urn:raise:problem:not-found"). */
const char *problem_type_for(int status);
/* Reason phrase / title for a status ("Not Found"). */
const char *problem_title_for(int status);

#endif
