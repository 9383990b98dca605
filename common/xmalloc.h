/* Allocation helpers that abort on out-of-memory: the one place that decides. */
#ifndef RAISE_XMALLOC_H
#define RAISE_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a new string (owned by the caller). */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
