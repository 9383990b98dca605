/* The browser page: the files of clients/web/, compiled into the binary at build time
 * (scripts/embed-web.cmake), served at GET / (index.html) and GET /app/{file}. */
#ifndef RAISE_WEB_H
#define RAISE_WEB_H

#include <stddef.h>

struct http_req;

struct web_file {
    const char *name;          /* "app.js": a file name, never a path */
    const unsigned char *data; /* static; NUL-terminated after len bytes */
    size_t len;
};

/* Generated from clients/web/ (build/web_data.c). */
extern const struct web_file web_files[];
extern const int web_files_count;

/* The embedded file called name (len bytes, not NUL-terminated), or NULL. */
const struct web_file *web_find(const char *name, size_t len);
/* The Content-Type for a file name, or NULL if the server does not serve that kind. */
const char *web_content_type(const char *name);

void web_index(struct http_req *r);
void web_file(struct http_req *r);

#endif
