/* raisectl commands that need more than one row of the table. */
#define _GNU_SOURCE
#include "cmds.h"

#include "util.h"
#include "xmalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* ---- login / logout */

/* The password from the terminal without echo (owned), or NULL. */
static char *ask_password(void)
{
    FILE *tty = fopen("/dev/tty", "r+");
    if (tty == NULL)
        return NULL;
    struct termios old, quiet;
    int fd = fileno(tty);
    fputs("password: ", tty);
    fflush(tty);
    int have = tcgetattr(fd, &old) == 0;
    if (have) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(fd, TCSAFLUSH, &quiet);
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, tty);
    if (have)
        tcsetattr(fd, TCSAFLUSH, &old);
    fputc('\n', tty);
    fclose(tty);
    if (n < 0) {
        free(line);
        return NULL;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    return line;
}

static void forget(char *secret)
{
    if (secret != NULL)
        explicit_bzero(secret, strlen(secret));
    free(secret);
}

static int save_token(const char *token, char **where)
{
    char *path = rc_token_path(1);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600);
    if (fd < 0 || fchmod(fd, 0600) < 0 || write(fd, token, strlen(token)) < 0 ||
        write(fd, "\n", 1) < 0) {
        fprintf(stderr, "raisectl: cannot write the token file %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        free(path);
        return -1;
    }
    close(fd);
    *where = path;
    return 0;
}

int cmd_login(struct rc *rc, const struct cmd *c, struct args *a)
{
    const char *u = arg_str(a, "username");
    char *username = u ? xstrdup(u) : NULL;
    if (username == NULL) {
        fputs("username: ", stderr);
        username = read_line_stdin();
    }
    if (username == NULL || username[0] == '\0') {
        free(username);
        return cmds_usage(c, "a username is needed");
    }
    int from_stdin = json_object_object_get_ex(a->vals, "password-stdin", NULL);
    char *password = from_stdin ? read_line_stdin() : ask_password();
    if (password == NULL) {
        free(username);
        return cmds_usage(c, "no password (no terminal to ask on: use --password-stdin)");
    }
    json_object *body = json_object_new_object(), *out = NULL;
    json_object_object_add(body, "username", json_object_new_string(username));
    json_object_object_add(body, "password", json_object_new_string(password));
    forget(password);
    forget(rc->token);
    rc->token = NULL;
    int st = rc_call(rc, "POST", "/v1/sessions", body, NULL, &out, NULL, NULL);
    /* the password is also inside the request object */
    json_object *pw = rc_get(body, "password");
    if (pw != NULL) {
        char *s = (char *)json_object_get_string(pw);
        explicit_bzero(s, strlen(s));
    }
    json_object_put(body);
    char *where = NULL;
    if (st == RC_OK && save_token(rc_str(out, "token"), &where) < 0)
        st = RC_REFUSED;
    if (st == RC_OK) {
        json_object *user = rc_get(out, "user");
        printf("signed in as %s (%s, %s) until %s; token kept in %s\n", rc_str(user, "username"),
               rc_str(user, "role"), rc_str(rc_get(user, "agency"), "name"),
               rc_str(out, "expires_at"), where);
    }
    free(where);
    free(username);
    json_object *tok = rc_get(out, "token");
    if (tok != NULL) {
        char *s = (char *)json_object_get_string(tok);
        explicit_bzero(s, strlen(s));
    }
    json_object_put(out);
    return st;
}

int cmd_logout(struct rc *rc, const struct cmd *c, struct args *a)
{
    (void)c;
    (void)a;
    int st = RC_OK;
    if (rc->token != NULL)
        st = rc_call(rc, "DELETE", "/v1/sessions/current", NULL, NULL, NULL, NULL, NULL);
    char *path = rc_token_path(0);
    int removed = unlink(path) == 0;
    if (st == RC_OK)
        printf("signed out%s\n", removed ? "; token file removed" : "");
    free(path);
    return st;
}

/* ---- intel post */

static int apply_grading(const struct cmd *c, struct args *a, json_object *body)
{
    const char *grade = arg_str(a, "grade"), *handling = arg_str(a, "handling"),
               *conditions = arg_str(a, "conditions");
    if (grade == NULL && handling == NULL && conditions == NULL)
        return 0;
    json_object *g = rc_get(body, "grading");
    if (g == NULL || !json_object_is_type(g, json_type_object)) {
        g = json_object_new_object();
        json_object_object_add(body, "grading", g);
    }
    if (!json_object_object_get_ex(g, "scheme", NULL))
        json_object_object_add(g, "scheme", json_object_new_string("3x5x2"));
    if (grade != NULL) {
        if (strlen(grade) != 2 || grade[0] < '1' || grade[0] > '3' || grade[1] < 'A' ||
            grade[1] > 'E')
            return cmds_usage(c,
                              "--grade is a source 1-3 and an assessment A-E, like 1A (got "
                              "'%s')",
                              grade);
        char as[2] = {grade[1], '\0'};
        json_object_object_add(g, "source", json_object_new_int(grade[0] - '0'));
        json_object_object_add(g, "assessment", json_object_new_string(as));
    }
    if (handling != NULL)
        json_object_object_add(g, "handling", json_object_new_string(handling));
    if (conditions != NULL)
        json_object_object_add(g, "conditions", json_object_new_string(conditions));
    return 0;
}

static json_object *read_json_file(const struct cmd *c, const char *file)
{
    FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
    if (f == NULL) {
        cmds_usage(c, "cannot read %s: %s", file, strerror(errno));
        return NULL;
    }
    char *buf = xmalloc(1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    if (f != stdin)
        fclose(f);
    json_object *o = json_tokener_parse(buf);
    free(buf);
    if (o == NULL || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        cmds_usage(c, "%s is not a JSON object", file);
        return NULL;
    }
    return o;
}

int cmd_intel_post(struct rc *rc, const struct cmd *c, struct args *a)
{
    const char *file = arg_str(a, "file");
    json_object *body = file ? read_json_file(c, file) : json_object_new_object(), *flags = NULL;
    if (body == NULL)
        return RC_USAGE;
    if (cmds_body(c, a, &flags) < 0 || apply_grading(c, a, body) != 0) {
        json_object_put(body);
        json_object_put(flags);
        return RC_USAGE;
    }
    json_object_object_foreach(flags, k, v) json_object_object_add(body, k, json_object_get(v));
    json_object_put(flags);
    static const char *const needed[][2] = {{"subject_id", "--subject"},
                                            {"category", "--category"},
                                            {"summary", "--summary"},
                                            {"risk_level", "--risk"}};
    for (size_t i = 0; i < sizeof(needed) / sizeof(needed[0]); i++)
        if (!json_object_object_get_ex(body, needed[i][0], NULL)) {
            json_object_put(body);
            return cmds_usage(c, "%s is required (or in the --file body)", needed[i][1]);
        }
    const char *given = arg_str(a, "idempotency-key");
    int has_time = json_object_object_get_ex(body, "occurred_at", NULL);
    if (given != NULL && !has_time) { /* "now" would differ on the retry: a different body */
        json_object_put(body);
        return cmds_usage(c, "--idempotency-key needs --occurred-at (or occurred_at in the "
                             "--file body): a retry must send the very same body");
    }
    if (!has_time) {
        char now[32];
        time_t t = time(NULL);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
        json_object_object_add(body, "occurred_at", json_object_new_string(now));
    }
    char key[80];
    if (given != NULL) {
        snprintf(key, sizeof(key), "Idempotency-Key: %s", given);
    } else { /* a retry of this very command by a person would be a new post: that is fine */
        unsigned char raw[16];
        char hex[33];
        util_random(raw, sizeof(raw));
        util_hex(raw, sizeof(raw), hex);
        snprintf(key, sizeof(key), "Idempotency-Key: raisectl-%s", hex);
    }
    const char *headers[] = {key, NULL};
    json_object *out = NULL;
    int st = rc_call(rc, "POST", "/v1/intelligence", body, headers, &out, NULL, NULL);
    if (st == RC_OK)
        cmds_print(rc, c, out);
    json_object_put(out);
    json_object_put(body);
    return st;
}

/* ---- agenda and suggestions */

int cmd_agenda(struct rc *rc, const struct cmd *c, struct args *a)
{
    const char *fmt = arg_str(a, "format"), *file = arg_str(a, "o");
    if (rc->json && fmt == NULL)
        fmt = "json";
    if (fmt == NULL)
        fmt = "md";
    if (strcmp(fmt, "md") != 0 && strcmp(fmt, "markdown") != 0 && strcmp(fmt, "html") != 0 &&
        strcmp(fmt, "json") != 0)
        return cmds_usage(c, "--format is md, html or json (got '%s')", fmt);
    char *base = cmds_path(c, a),
         *path = xasprintf("%s?format=%s", base, strcmp(fmt, "md") == 0 ? "markdown" : fmt);
    char *raw = NULL;
    size_t len = 0;
    int st = rc_call(rc, "GET", path, NULL, NULL, NULL, &raw, &len);
    if (st == RC_OK) {
        FILE *f = file ? fopen(file, "w") : stdout;
        if (f == NULL) {
            fprintf(stderr, "raisectl: cannot write %s: %s\n", file, strerror(errno));
            st = RC_USAGE;
        } else {
            fwrite(raw, 1, len, f);
            if (f != stdout) {
                fclose(f);
                fprintf(stderr, "agenda written to %s\n", file);
            }
        }
    }
    free(raw);
    free(path);
    free(base);
    return st;
}

int cmd_suggest(struct rc *rc, const struct cmd *c, struct args *a)
{
    static const struct column cols[] = {{"ID", "subject.id", 36},
                                         {"SCORE", "score", 5},
                                         {"REFERENCE", "subject.reference", 12},
                                         {"WHY", "reasons", 0},
                                         {0}};
    json_object *body = NULL, *out = NULL;
    if (cmds_body(c, a, &body) < 0)
        return RC_USAGE;
    char *base = cmds_path(c, a), q[512];
    snprintf(q, sizeof(q), "%s", base);
    if (arg_str(a, "limit") != NULL)
        rc_query_add(q, sizeof(q), "limit", arg_str(a, "limit"));
    int st = rc_call(rc, "GET", q, NULL, NULL, &out, NULL, NULL);
    if (st == RC_OK && rc->json)
        rc_print_json(out);
    else if (st == RC_OK)
        cmds_table(cols, rc_get(out, "items"));
    json_object_put(out);
    json_object_put(body);
    free(base);
    return st;
}

/* ---- actions */

int cmd_actions_add(struct rc *rc, const struct cmd *c, struct args *a)
{
    const char *meeting = arg_str(a, "meeting");
    json_object *body = NULL, *out = NULL;
    if (cmds_body(c, a, &body) < 0)
        return RC_USAGE;
    char *path = meeting ? xasprintf("/v1/meetings/%s/actions", meeting) : xstrdup(c->path);
    int st = rc_call(rc, "POST", path, body, NULL, &out, NULL, NULL);
    if (st == RC_OK)
        cmds_print(rc, c, out);
    json_object_put(out);
    json_object_put(body);
    free(path);
    return st;
}

static int by_urgency(const void *x, const void *y)
{
    json_object *a = *(json_object *const *)x, *b = *(json_object *const *)y;
    int ao = strcmp(rc_str(a, "state"), "overdue") == 0,
        bo = strcmp(rc_str(b, "state"), "overdue") == 0;
    if (ao != bo)
        return bo - ao;
    return strcmp(rc_str(a, "due_date"), rc_str(b, "due_date"));
}

int cmd_actions_mine(struct rc *rc, const struct cmd *c, struct args *a)
{
    json_object *me = NULL, *out = NULL;
    int st = rc_call(rc, "GET", "/v1/me", NULL, NULL, &me, NULL, NULL);
    if (st != RC_OK)
        return st;
    char path[512] = "/v1/actions";
    rc_query_add(path, sizeof(path), "agency_id", rc_str(rc_get(me, "agency"), "id"));
    rc_query_add(path, sizeof(path), "status", "open,overdue");
    rc_query_add(path, sizeof(path), "sort", "due");
    const char *limit = arg_str(a, "limit"), *before = arg_str(a, "before");
    rc_query_add(path, sizeof(path), "limit", limit ? limit : "200");
    if (before != NULL)
        rc_query_add(path, sizeof(path), "before", before);
    st = rc_call(rc, "GET", path, NULL, NULL, &out, NULL, NULL);
    if (st == RC_OK && rc->json) {
        rc_print_json(out);
    } else if (st == RC_OK) {
        json_object *items = rc_get(out, "items");
        size_t n = items ? json_object_array_length(items) : 0, overdue = 0;
        json_object **v = xcalloc(n + 1, sizeof(*v));
        json_object *sorted = json_object_new_array();
        for (size_t i = 0; i < n; i++) {
            v[i] = json_object_array_get_idx(items, i);
            overdue += strcmp(rc_str(v[i], "state"), "overdue") == 0;
        }
        qsort(v, n, sizeof(*v), by_urgency);
        for (size_t i = 0; i < n; i++)
            json_object_array_add(sorted, json_object_get(v[i]));
        printf("%s: %zu overdue, %zu open\n", rc_str(rc_get(me, "agency"), "name"), overdue,
               n - overdue);
        cmds_table(c->columns, sorted);
        if (rc_str(out, "next")[0] != '\0')
            printf("(more: --before %s)\n", rc_str(out, "next"));
        json_object_put(sorted);
        free(v);
    }
    json_object_put(out);
    json_object_put(me);
    return st;
}

/* ---- meetings: attendance and minutes */

static int patch_meeting(struct rc *rc, const struct cmd *c, struct args *a, json_object *body)
{
    char *path = cmds_path(c, a);
    json_object *out = NULL;
    int st = rc_call(rc, "PATCH", path, body, NULL, &out, NULL, NULL);
    if (st == RC_OK)
        cmds_print(rc, c, out);
    json_object_put(out);
    json_object_put(body);
    free(path);
    return st;
}

int cmd_meetings_attendance(struct rc *rc, const struct cmd *c, struct args *a)
{
    json_object *given = NULL, *list = json_object_new_array();
    json_object_object_get_ex(a->vals, "attendee", &given);
    for (size_t i = 0; given && i < json_object_array_length(given); i++) {
        char *copy = xstrdup(json_object_get_string(json_object_array_get_idx(given, i)));
        char *save = NULL, *name = strtok_r(copy, ",", &save), *agency = strtok_r(NULL, ",", &save),
             *user = strtok_r(NULL, ",", &save);
        if (name == NULL || agency == NULL) {
            free(copy);
            json_object_put(list);
            return cmds_usage(c, "--attendee is NAME,AGENCY_ID[,USER_ID]");
        }
        json_object *e = json_object_new_object();
        json_object_object_add(e, "name", json_object_new_string(name));
        json_object_object_add(e, "agency_id", json_object_new_string(agency));
        if (user != NULL)
            json_object_object_add(e, "user_id", json_object_new_string(user));
        json_object_array_add(list, e);
        free(copy);
    }
    json_object *body = json_object_new_object();
    json_object_object_add(body, "attendance", list);
    return patch_meeting(rc, c, a, body);
}

int cmd_meetings_minutes(struct rc *rc, const struct cmd *c, struct args *a)
{
    static const char *const map[][2] = {{"worried", "worried_about"},
                                         {"working-well", "working_well"},
                                         {"needs", "needs_to_happen"},
                                         {"decisions", "decisions"}};
    json_object *m = json_object_new_object(), *list = json_object_new_array(),
                *body = json_object_new_object();
    json_object_object_add(m, "subject_id", json_object_new_string(arg_str(a, "subject")));
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (arg_str(a, map[i][0]) != NULL)
            json_object_object_add(m, map[i][1], json_object_new_string(arg_str(a, map[i][0])));
    json_object_array_add(list, m);
    json_object_object_add(body, "minutes", list);
    return patch_meeting(rc, c, a, body);
}

/* ---- users */

int cmd_users_add(struct rc *rc, const struct cmd *c, struct args *a)
{
    json_object *body = NULL, *out = NULL;
    if (cmds_body(c, a, &body) < 0)
        return RC_USAGE;
    int generated = !json_object_object_get_ex(a->vals, "password-stdin", NULL);
    char *password = NULL;
    if (generated) {
        unsigned char raw[18];
        util_random(raw, sizeof(raw));
        password = util_base64url(raw, sizeof(raw));
    } else {
        password = read_line_stdin();
        if (password == NULL) {
            json_object_put(body);
            return cmds_usage(c, "no password on stdin");
        }
    }
    json_object_object_add(body, "password", json_object_new_string(password));
    int st = rc_call(rc, "POST", c->path, body, NULL, &out, NULL, NULL);
    if (st == RC_OK) {
        cmds_print(rc, c, out);
        if (generated) /* with --json on stderr, so stdout stays one JSON document */
            fprintf(rc->json ? stderr : stdout,
                    "password: %s\n(shown only this once: give it to the user by a safe route)\n",
                    password);
    }
    forget(password);
    json_object_put(out);
    json_object_put(body);
    return st;
}

int cmd_users_deactivate(struct rc *rc, const struct cmd *c, struct args *a)
{
    json_object *body = json_object_new_object(), *out = NULL;
    json_object_object_add(body, "active", json_object_new_boolean(0));
    char *path = cmds_path(c, a);
    int st = rc_call(rc, "PATCH", path, body, NULL, &out, NULL, NULL);
    if (st == RC_OK)
        cmds_print(rc, c, out);
    json_object_put(out);
    json_object_put(body);
    free(path);
    return st;
}
