/* raisectl: argument parsing, help, the generic command and printing (see cmds.h). */
#define _GNU_SOURCE
#include "cmds.h"

#include "xmalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Global options: accepted before or after the command. */
static const struct opt globals[] = {
    {"url", NULL, K_STR, 0, "URL", "the server, https://HOST:PORT (RAISE_URL)"},
    {"ca", NULL, K_STR, 0, "FILE", "CA file to verify the server (RAISE_CA)"},
    {"cert", NULL, K_STR, 0, "FILE", "client certificate (RAISE_CERT)"},
    {"key", NULL, K_STR, 0, "FILE", "its key (RAISE_KEY)"},
    {"json", NULL, K_BOOL, 0, NULL, "print the server's JSON"},
    {"help", NULL, K_BOOL, 0, NULL, "this help"},
    {0}};

static const struct cmd *current; /* for usage messages */

int cmds_usage(const struct cmd *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("raisectl: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (c != NULL)
        fprintf(stderr, "\n(see raisectl %s%s%s --help)\n", c->group, c->name ? " " : "",
                c->name ? c->name : "");
    else
        fputs("\n(see raisectl --help)\n", stderr);
    return RC_USAGE;
}

static void help_all(void)
{
    puts("raisectl: the RAISE command-line client\n\n"
         "usage: raisectl [--url URL] [--ca FILE] [--json] COMMAND [ARGS] [OPTIONS]\n"
         "       raisectl COMMAND --help\n\ncommands:");
    for (size_t i = 0; i < ncmds; i++) {
        char name[40];
        snprintf(name, sizeof(name), "%s%s%s", cmds[i].group, cmds[i].name ? " " : "",
                 cmds[i].name ? cmds[i].name : "");
        printf("  %-20s %s\n      e.g. %s\n", name, cmds[i].summary, cmds[i].example);
    }
    puts("\nglobal options:");
    for (const struct opt *o = globals; o->flag; o++)
        printf("  --%-16s %s\n", o->flag, o->help);
    puts("\nsettings: flags beat RAISE_URL / RAISE_CA / RAISE_CERT / RAISE_KEY / RAISE_TOKEN,\n"
         "which beat ~/.config/raise/config (url = ..., ca = ...). login keeps the token in\n"
         "~/.config/raise/token (mode 0600). Exit status: 0 done, 1 refused by the server,\n"
         "2 usage error, 3 server unreachable.");
}

static void help_cmd(const struct cmd *c)
{
    printf("raisectl %s%s%s%s%s: %s\n\noptions:\n", c->group, c->name ? " " : "",
           c->name ? c->name : "", c->npos ? " " : "", c->npos ? c->pos_name : "", c->summary);
    for (const struct opt *o = c->opts; o->flag; o++) {
        char f[48];
        snprintf(f, sizeof(f), "%s%s %s", strlen(o->flag) == 1 ? "-" : "--", o->flag,
                 o->meta ? o->meta : "");
        printf("  %-30s %s%s%s\n", f, o->help, o->kind == K_MULTI ? " (repeatable)" : "",
               o->required ? " (required)" : "");
    }
    for (const struct opt *o = globals; o->flag; o++)
        printf("  --%-28s %s\n", o->flag, o->help);
    printf("\nexample:\n  %s\n", c->example);
}

static const struct opt *find_opt(const struct opt *list, const char *flag)
{
    for (const struct opt *o = list; o != NULL && o->flag; o++)
        if (strcmp(o->flag, flag) == 0)
            return o;
    return NULL;
}

static const struct cmd *find_cmd(const char *group, const char *name, int *needs_name)
{
    *needs_name = 0;
    for (size_t i = 0; i < ncmds; i++) {
        if (strcmp(cmds[i].group, group) != 0)
            continue;
        if (cmds[i].name == NULL)
            return &cmds[i];
        *needs_name = 1;
        if (name != NULL && strcmp(cmds[i].name, name) == 0)
            return &cmds[i];
    }
    return NULL;
}

/* Store one option's value; -1 after a usage message. */
static int put_opt(const struct cmd *c, const struct opt *o, json_object *vals, const char *v)
{
    if (o->kind == K_BOOL) {
        json_object_object_add(vals, o->flag, json_object_new_boolean(1));
        return 0;
    }
    if (v == NULL) {
        cmds_usage(c, "--%s needs a value (%s)", o->flag, o->meta);
        return -1;
    }
    if (o->kind == K_MULTI) {
        json_object *arr = NULL;
        if (!json_object_object_get_ex(vals, o->flag, &arr)) {
            arr = json_object_new_array();
            json_object_object_add(vals, o->flag, arr);
        }
        json_object_array_add(arr, json_object_new_string(v));
        return 0;
    }
    json_object_object_add(vals, o->flag, json_object_new_string(v));
    return 0;
}

/* Parse argv[i..] into a (options of c and the globals) and rc; -1 after a usage message,
 * 1 when help was asked for. */
static int parse(struct rc *rc, const struct cmd *c, int argc, char **argv, int i, struct args *a)
{
    a->vals = json_object_new_object();
    for (; i < argc; i++) {
        const char *arg = argv[i];
        if (arg[0] != '-' || arg[1] == '\0') {
            if (c == NULL || a->pos != NULL || c->npos == 0)
                return cmds_usage(c, "unexpected argument '%s'", arg), -1;
            a->pos = arg;
            continue;
        }
        char flag[64];
        const char *val = NULL;
        const char *name = arg[1] == '-' ? arg + 2 : arg + 1;
        size_t n = strcspn(name, "=");
        snprintf(flag, sizeof(flag), "%.*s", (int)(n < 63 ? n : 63), name);
        if (name[n] == '=')
            val = name + n + 1;
        const struct opt *o = find_opt(c ? c->opts : NULL, flag);
        const struct opt *g = o ? NULL : find_opt(globals, flag);
        if (o == NULL && g == NULL)
            return cmds_usage(c, "unknown option '%s'", arg), -1;
        const struct opt *which = o ? o : g;
        if (which->kind != K_BOOL && val == NULL)
            val = i + 1 < argc ? argv[++i] : NULL;
        if (put_opt(c, which, a->vals, val) < 0)
            return -1;
    }
    if (json_object_object_get_ex(a->vals, "help", NULL))
        return 1;
    const char *v;
    if ((v = arg_str(a, "url")) != NULL)
        rc->url = xstrdup(v);
    if ((v = arg_str(a, "ca")) != NULL)
        rc->ca = xstrdup(v);
    if ((v = arg_str(a, "cert")) != NULL)
        rc->cert = xstrdup(v);
    if ((v = arg_str(a, "key")) != NULL)
        rc->key = xstrdup(v);
    rc->json = json_object_object_get_ex(a->vals, "json", NULL);
    if (c == NULL)
        return 0;
    for (const struct opt *o = c->opts; o->flag; o++)
        if (o->required && !json_object_object_get_ex(a->vals, o->flag, NULL))
            return cmds_usage(c, "--%s is required", o->flag), -1;
    if (c->npos > 0 && a->pos == NULL)
        return cmds_usage(c, "%s is required", c->pos_name), -1;
    return 0;
}

const char *arg_str(struct args *a, const char *flag)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(a->vals, flag, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

char *read_line_stdin(void)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (n < 0) {
        free(line);
        return NULL;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    return line;
}

static json_object *value_of(const struct opt *o, const char *v, int *bad)
{
    if (o->kind == K_INT) {
        char *end;
        long n = strtol(v, &end, 10);
        if (*v == '\0' || *end != '\0') {
            *bad = 1;
            return NULL;
        }
        return json_object_new_int64(n);
    }
    if (o->kind == K_LIST) {
        json_object *arr = json_object_new_array();
        char *copy = xstrdup(v), *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
            json_object_array_add(arr, json_object_new_string(t));
        free(copy);
        return arr;
    }
    return json_object_new_string(v);
}

int cmds_body(const struct cmd *c, struct args *a, json_object **body)
{
    *body = NULL;
    for (const struct opt *o = c->opts; o->flag; o++) {
        const char *v = arg_str(a, o->flag);
        if (o->key == NULL || v == NULL) {
            if (o->key != NULL && *body == NULL)
                *body = json_object_new_object();
            continue;
        }
        int bad = 0;
        json_object *jv = value_of(o, v, &bad);
        if (bad) {
            json_object_put(*body);
            *body = NULL;
            return cmds_usage(c, "--%s must be a whole number (got '%s')", o->flag, v), -1;
        }
        if (*body == NULL)
            *body = json_object_new_object();
        json_object_object_add(*body, o->key, jv);
    }
    return 0;
}

char *cmds_path(const struct cmd *c, const struct args *a)
{
    const char *p = strstr(c->path, "{}");
    if (p == NULL)
        return xstrdup(c->path);
    char enc[256] = "";
    size_t n = 0;
    for (const char *s = a->pos ? a->pos : ""; *s && n + 4 < sizeof(enc); s++)
        n += (size_t)snprintf(enc + n, sizeof(enc) - n,
                              (strchr("/?#%& ", *s) != NULL) ? "%%%02X" : "%c", (unsigned char)*s);
    return xasprintf("%.*s%s%s", (int)(p - c->path), c->path, enc, p + 2);
}

/* The value at a dotted path as text (arrays of strings joined by "; "), owned. */
static char *text_at(json_object *o, const char *path)
{
    char *copy = xstrdup(path), *save = NULL;
    json_object *v = o;
    for (char *t = strtok_r(copy, ".", &save); t && v; t = strtok_r(NULL, ".", &save))
        v = rc_get(v, t);
    free(copy);
    if (v == NULL)
        return xstrdup("-");
    if (json_object_is_type(v, json_type_array)) {
        char *out = xstrdup("");
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            char *next = xasprintf("%s%s%s", out, i ? "; " : "",
                                   json_object_get_string(json_object_array_get_idx(v, i)));
            free(out);
            out = next;
        }
        return out;
    }
    return xstrdup(json_object_get_string(v));
}

void cmds_table(const struct column *cols, json_object *items)
{
    int fixed = 0, ncols = 0;
    for (const struct column *c = cols; c->header; c++, ncols++)
        fixed += c->width + 2;
    int rest = 100 - fixed;
    if (rest < 10)
        rest = 10;
    char cell[512];
    for (const struct column *c = cols; c->header; c++)
        printf("%-*s%s", c->width ? c->width : 0, c->header, c[1].header ? "  " : "\n");
    for (size_t i = 0; items && i < json_object_array_length(items); i++) {
        json_object *it = json_object_array_get_idx(items, i);
        for (const struct column *c = cols; c->header; c++) {
            char *t = text_at(it, c->path);
            int w = c->width ? c->width : rest;
            printf("%-*s%s", c[1].header ? w : 0, rc_fit(t, w, cell, sizeof(cell)),
                   c[1].header ? "  " : "\n");
            free(t);
        }
    }
    (void)ncols;
}

/* A record for people: scalars as "key: value", objects and arrays indented. */
static void show(json_object *o, int depth)
{
    json_object_object_foreach(o, key, v)
    {
        printf("%*s%s:", depth * 2, "", key);
        if (v == NULL) {
            puts(" -");
        } else if (json_object_is_type(v, json_type_object)) {
            putchar('\n');
            show(v, depth + 1);
        } else if (json_object_is_type(v, json_type_array)) {
            size_t n = json_object_array_length(v);
            if (n == 0)
                puts(" (none)");
            else
                putchar('\n');
            for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(v, i);
                if (json_object_is_type(e, json_type_object)) {
                    printf("%*s-\n", depth * 2 + 2, "");
                    show(e, depth + 2);
                } else {
                    printf("%*s- %s\n", depth * 2 + 2, "", json_object_get_string(e));
                }
            }
        } else {
            printf(" %s\n", json_object_get_string(v));
        }
    }
}

void cmds_print(struct rc *rc, const struct cmd *c, json_object *o)
{
    if (rc->json) {
        if (o != NULL)
            rc_print_json(o);
        return;
    }
    if (c->columns != NULL) {
        cmds_table(c->columns, rc_get(o, "items"));
        const char *next = rc_str(o, "next");
        if (next[0] != '\0')
            printf("(more: --before %s)\n", next);
        return;
    }
    if (c->done != NULL) {
        printf("%s %s\n", c->done, o ? rc_str(o, "id") : "");
        return;
    }
    if (o != NULL)
        show(o, 0);
}

int cmd_generic(struct rc *rc, const struct cmd *c, struct args *a)
{
    json_object *body = NULL, *out = NULL;
    if (cmds_body(c, a, &body) < 0)
        return RC_USAGE;
    char *path = cmds_path(c, a);
    if (strcmp(c->method, "GET") == 0 && body != NULL) { /* options are the query string */
        char q[2048];
        snprintf(q, sizeof(q), "%s", path);
        json_object_object_foreach(body, k, v)
            rc_query_add(q, sizeof(q), k, json_object_get_string(v));
        free(path);
        path = xstrdup(q);
        json_object_put(body);
        body = NULL;
    }
    int st = rc_call(rc, c->method, path, body, NULL, &out, NULL, NULL);
    if (st == RC_OK)
        cmds_print(rc, c, out);
    json_object_put(out);
    json_object_put(body);
    free(path);
    return st;
}

int cmds_main(int argc, char **argv)
{
    struct rc rc = {0};
    int i = 1;
    struct args pre = {0};
    /* global options before the command */
    while (i < argc && argv[i][0] == '-') {
        const char *name = argv[i] + (argv[i][1] == '-' ? 2 : 1);
        size_t n = strcspn(name, "=");
        char flag[64];
        snprintf(flag, sizeof(flag), "%.*s", (int)(n < 63 ? n : 63), name);
        const struct opt *g = find_opt(globals, flag);
        if (g == NULL)
            return cmds_usage(NULL, "unknown option '%s'", argv[i]);
        if (strcmp(flag, "help") == 0) {
            help_all();
            return RC_OK;
        }
        i += g->kind == K_BOOL || name[n] == '=' ? 1 : 2;
    }
    if (i >= argc)
        return cmds_usage(NULL, "which command? e.g. raisectl whoami");
    int needs_name;
    const struct cmd *c = find_cmd(argv[i], i + 1 < argc ? argv[i + 1] : NULL, &needs_name);
    if (c == NULL && needs_name)
        return cmds_usage(NULL, "'%s' needs one of its subcommands, e.g. '%s list'", argv[i],
                          argv[i]);
    if (c == NULL)
        return cmds_usage(NULL, "unknown command '%s'", argv[i]);
    current = c;
    /* the globals before the command, then everything after it */
    char **all = xcalloc((size_t)argc + 1, sizeof(char *));
    int m = 0;
    for (int k = 1; k < i; k++)
        all[m++] = argv[k];
    for (int k = i + (c->name ? 2 : 1); k < argc; k++)
        all[m++] = argv[k];
    int r = parse(&rc, c, m, all, 0, &pre);
    free(all);
    int st;
    if (r == 1) {
        help_cmd(c);
        st = RC_OK;
    } else if (r < 0) {
        st = RC_USAGE;
    } else if (rc_settle(&rc) < 0) {
        st = RC_USAGE;
    } else {
        st = (c->run ? c->run : cmd_generic)(&rc, c, &pre);
    }
    json_object_put(pre.vals);
    rc_clear(&rc);
    return st;
}
