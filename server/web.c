/* GET / and GET /app/{file}: the browser page, from memory. Public: the files hold no case
 * data; everything the page shows comes from the API with the caller's credentials.
 *
 * A file is looked up by exact name in the embedded table, so no path from a request ever
 * reaches the file system: "../" or "%2e%2e" is just a name that is not there. */
#include "web.h"

#include "http.h"

#include <event2/buffer.h>
#include <string.h>

/* Every reply of these routes, the 404 included. The page is one origin, its own files only:
 * no inline script or style, no framing, no referrer, no form posting elsewhere. */
static const struct {
    const char *name, *value;
} security_headers[] = {
    {"Content-Security-Policy",
     "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
     "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"},
    {"X-Content-Type-Options", "nosniff"},
    {"Referrer-Policy", "no-referrer"},
    {"X-Frame-Options", "DENY"},
};

static const struct {
    const char *ext, *type;
} types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
};

const char *web_content_type(const char *name)
{
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot != NULL && i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return NULL;
}

const struct web_file *web_find(const char *name, size_t len)
{
    for (int i = 0; i < web_files_count; i++)
        if (strlen(web_files[i].name) == len && memcmp(web_files[i].name, name, len) == 0)
            return &web_files[i];
    return NULL;
}

static void serve(struct http_req *r, const struct web_file *f)
{
    for (size_t i = 0; i < sizeof(security_headers) / sizeof(security_headers[0]); i++)
        http_add_header(r, security_headers[i].name, security_headers[i].value);
    const char *type = f ? web_content_type(f->name) : NULL;
    if (type == NULL) {
        http_reply_error(r, 404, "there is no resource at this path");
        return;
    }
    /* The files change only with the binary: revalidate, never serve a stale page. */
    http_add_header(r, "Cache-Control", "no-cache");
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_reference(b, f->data, f->len, NULL, NULL);
    http_reply(r, 200, type, b);
}

void web_index(struct http_req *r)
{
    serve(r, web_find("index.html", strlen("index.html")));
}

void web_file(struct http_req *r)
{
    serve(r, web_find(r->params.v[0].value, r->params.v[0].value_len));
}
