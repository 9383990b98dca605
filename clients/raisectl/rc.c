/* raisectl's shared pieces (see rc.h). */
#define _GNU_SOURCE
#include "rc.h"

#include "https.h"
#include "xmalloc.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DEFAULT_URL "https://127.0.0.1:8443"

/* $XDG_CONFIG_HOME/raise/NAME, else ~/.config/raise/NAME (owned); the directory is made
 * (0700, and ~/.config 0700 if missing) when create is set. */
static char *config_path(const char *name, int create)
{
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    char *base =
        xdg != NULL && xdg[0] == '/' ? xstrdup(xdg) : xasprintf("%s/.config", home ? home : ".");
    char *dir = xasprintf("%s/raise", base);
    if (create) {
        mkdir(base, 0700);
        if (mkdir(dir, 0700) < 0 && errno == EEXIST)
            chmod(dir, 0700);
    }
    char *path = xasprintf("%s/%s", dir, name);
    free(dir);
    free(base);
    return path;
}

char *rc_token_path(int create)
{
    return config_path("token", create);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* One setting: the flag's value if given, else the environment's, else the file's. */
static void settle_one(char **slot, const char *env, const char *file_value)
{
    if (*slot != NULL)
        return;
    const char *e = getenv(env);
    if (e != NULL && e[0] != '\0')
        *slot = xstrdup(e);
    else if (file_value != NULL)
        *slot = xstrdup(file_value);
}

static int parse_url(struct rc *rc)
{
    const char *u = rc->url;
    if (strncmp(u, "https://", 8) != 0) {
        fprintf(stderr, "raisectl: the server URL must start with https:// (got %s)\n", u);
        return -1;
    }
    u += 8;
    size_t n = strcspn(u, ":/");
    if (n == 0 || n >= sizeof(rc->host)) {
        fprintf(stderr, "raisectl: no host in the server URL %s\n", rc->url);
        return -1;
    }
    memcpy(rc->host, u, n);
    rc->host[n] = '\0';
    rc->port = 443;
    if (u[n] == ':') {
        char *end;
        long p = strtol(u + n + 1, &end, 10);
        if (p < 1 || p > 65535 || (*end != '\0' && *end != '/')) {
            fprintf(stderr, "raisectl: bad port in the server URL %s\n", rc->url);
            return -1;
        }
        rc->port = (int)p;
    }
    return 0;
}

int rc_settle(struct rc *rc)
{
    static const char *const keys[] = {"url", "ca", "cert", "key"};
    char *file[4] = {NULL, NULL, NULL, NULL};
    char *path = config_path("config", 0);
    FILE *f = fopen(path, "r");
    free(path);
    char line[1024];
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        char *eq = strchr(line, '='), *k = trim(line);
        if (eq == NULL || *k == '#')
            continue;
        *eq = '\0';
        k = trim(line);
        for (int i = 0; i < 4; i++)
            if (strcmp(k, keys[i]) == 0) {
                free(file[i]);
                file[i] = xstrdup(trim(eq + 1));
            }
    }
    if (f != NULL)
        fclose(f);
    settle_one(&rc->url, "RAISE_URL", file[0] ? file[0] : DEFAULT_URL);
    settle_one(&rc->ca, "RAISE_CA", file[1]);
    settle_one(&rc->cert, "RAISE_CERT", file[2]);
    settle_one(&rc->key, "RAISE_KEY", file[3]);
    for (int i = 0; i < 4; i++)
        free(file[i]);
    const char *t = getenv("RAISE_TOKEN");
    if (t != NULL && t[0] != '\0') {
        rc->token = xstrdup(t);
    } else {
        char *tp = rc_token_path(0);
        FILE *tf = fopen(tp, "r");
        free(tp);
        if (tf != NULL) {
            if (fgets(line, sizeof(line), tf) != NULL && trim(line)[0] != '\0')
                rc->token = xstrdup(trim(line));
            fclose(tf);
        }
    }
    return parse_url(rc);
}

void rc_clear(struct rc *rc)
{
    free(rc->url);
    free(rc->ca);
    free(rc->cert);
    free(rc->key);
    if (rc->token != NULL)
        explicit_bzero(rc->token, strlen(rc->token));
    free(rc->token);
    memset(rc, 0, sizeof(*rc));
}

/* The problem+json of a refusal, for people: title: detail, then each field error. */
static void print_problem(const struct https_response *r)
{
    json_object *p = r->body_len ? json_tokener_parse(r->body) : NULL;
    const char *title = rc_str(p, "title"), *detail = rc_str(p, "detail");
    if (title[0] == '\0')
        fprintf(stderr, "raisectl: the server answered %d\n", r->status);
    else if (detail[0] == '\0' || strcmp(title, detail) == 0)
        fprintf(stderr, "raisectl: %s (%d)\n", title, r->status);
    else
        fprintf(stderr, "raisectl: %s: %s (%d)\n", title, detail, r->status);
    json_object *errs = rc_get(p, "errors");
    for (size_t i = 0; errs != NULL && i < json_object_array_length(errs); i++) {
        json_object *e = json_object_array_get_idx(errs, i);
        fprintf(stderr, "  %s: %s\n", rc_str(e, "field"), rc_str(e, "message"));
    }
    const char *ra = https_response_header(r, "Retry-After");
    if (ra != NULL)
        fprintf(stderr, "  try again in %s s\n", ra);
    json_object_put(p);
}

int rc_call(struct rc *rc, const char *method, const char *path, json_object *body,
            const char *const *headers, json_object **out, char **raw, size_t *raw_len)
{
    struct https_opts o = {.host = rc->host,
                           .port = rc->port,
                           .ca_file = rc->ca,
                           .cert_file = rc->cert,
                           .key_file = rc->key,
                           .timeout_ms = 30000};
    const char *h[16];
    int n = 0;
    char *auth = rc->token ? xasprintf("Authorization: Bearer %s", rc->token) : NULL;
    if (auth != NULL)
        h[n++] = auth;
    if (body != NULL)
        h[n++] = "Content-Type: application/json";
    for (int i = 0; headers != NULL && headers[i] != NULL && n < 15; i++)
        h[n++] = headers[i];
    h[n] = NULL;
    const char *text = body ? json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN) : NULL;
    struct https_response r = {0};
    char *cause = NULL;
    int rc_st = https_fetch(&o, method, path, h, text, text ? strlen(text) : 0, &r, &cause);
    if (auth != NULL) {
        explicit_bzero(auth, strlen(auth));
        free(auth);
    }
    if (out != NULL)
        *out = NULL;
    if (rc_st < 0) {
        fprintf(stderr, "raisectl: cannot reach %s: %s\n", rc->url, cause ? cause : "?");
        free(cause);
        return RC_UNREACHABLE;
    }
    if (r.status < 200 || r.status >= 300) {
        print_problem(&r);
        https_response_clear(&r);
        return RC_REFUSED;
    }
    if (out != NULL && r.body_len > 0 && (r.body[0] == '{' || r.body[0] == '['))
        *out = json_tokener_parse(r.body);
    if (raw != NULL) {
        *raw = xmalloc(r.body_len + 1);
        memcpy(*raw, r.body, r.body_len);
        (*raw)[r.body_len] = '\0';
        *raw_len = r.body_len;
    }
    https_response_clear(&r);
    return RC_OK;
}

void rc_query_add(char *buf, size_t cap, const char *key, const char *value)
{
    size_t n = strlen(buf);
    n += (size_t)snprintf(buf + n, cap > n ? cap - n : 0, "%s%s=", strchr(buf, '?') ? "&" : "?",
                          key);
    for (const unsigned char *v = (const unsigned char *)value; *v && n + 4 < cap; v++) {
        if (isalnum(*v) || strchr("-._~:,", *v))
            buf[n++] = (char)*v;
        else
            n += (size_t)snprintf(buf + n, cap - n, "%%%02X", *v);
    }
    buf[n < cap ? n : cap - 1] = '\0';
}

void rc_print_json(json_object *o)
{
    puts(json_object_to_json_string_ext(o,
                                        JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
}

json_object *rc_get(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (o != NULL && json_object_is_type(o, json_type_object))
        json_object_object_get_ex(o, key, &v);
    return v;
}

const char *rc_str(json_object *o, const char *key)
{
    json_object *v = rc_get(o, key);
    return v == NULL ? "" : json_object_get_string(v);
}

const char *rc_fit(const char *s, int width, char *out, size_t cap)
{
    int cols = 0;
    size_t i = 0, cut = 0;
    for (; s[i] != '\0'; i++) {
        if (((unsigned char)s[i] & 0xC0) == 0x80)
            continue;
        if (cols == width - 3)
            cut = i;
        if (cols == width)
            break;
        cols++;
    }
    size_t n = s[i] == '\0' ? i : cut;
    if (n + 4 > cap)
        n = cap - 4;
    memcpy(out, s, n);
    if (s[i] != '\0')
        memcpy(out + n, "...", 4);
    else
        out[n] = '\0';
    for (char *c = out; *c; c++)
        if (*c == '\n' || *c == '\t' || *c == '\r')
            *c = ' ';
    return out;
}
