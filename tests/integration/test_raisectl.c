/* raisectl, the command-line client, driven as a user would drive it (docs/raisectl.md): the
 * real binary, fork/exec with a controlled environment (HOME and XDG_CONFIG_HOME in a fresh
 * directory per identity, RAISE_URL and RAISE_CA for the test server), its stdout, stderr
 * and exit status checked against the contract, and what it did checked behind its back
 * (the API, the database): three kinds of user end to end with a live feed; the token file
 * and where settings come from; a feed that survives a server restart on the same port;
 * feed --since/--json and a signed-out session; exit codes 0/1/2/3; help; records, pages and
 * --json; client certificates; every other command; and the order of "actions mine". */
#define _GNU_SOURCE
#include "harness.h"

#include "xmalloc.h"

#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* A number for markers, references and names that no earlier run on the same database used
 * (the pid alone repeats: a test database outlives the processes that fill it). */
static int run_id(void)
{
    static int id;
    if (id == 0)
        id = (int)(time(NULL) % 20000) * 100000 + getpid() % 100000;
    return id;
}

#ifndef RAISECTL_BIN
#error "RAISECTL_BIN must be defined (tests/CMakeLists.txt)"
#endif

#define PASSWORD "long enough secret"

static struct itest_server a, b;

/* One identity's private HOME and XDG_CONFIG_HOME. */
struct home {
    char dir[PATH_MAX];
    char xdg[PATH_MAX + 16];
};

struct person {
    char *id, *username, *token; /* token from the API, for checks behind raisectl's back */
    struct home h;
};

static struct world {
    char *admin, *hub, *hub_agency, *police, *health, *housing;
    struct person mgr, officer, nurse, outsider;
    char *subject, *reference; /* team: police, health */
} w;

/* ---- small helpers */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *day(int days)
{
    static char buf[8][16];
    static int k;
    time_t t = time(NULL) + (time_t)days * 86400;
    struct tm tm;
    gmtime_r(&t, &tm);
    char *out = buf[k++ % 8];
    strftime(out, 16, "%Y-%m-%d", &tm);
    return out;
}

static const char *when(int days)
{
    static char buf[8][32];
    static int k;
    time_t t = time(NULL) + (time_t)days * 86400;
    struct tm tm;
    gmtime_r(&t, &tm);
    char *out = buf[k++ % 8];
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return out;
}

static char *sqlf(const char *fmt, const char *arg)
{
    char sql[1024];
    snprintf(sql, sizeof(sql), fmt, arg);
    return itest_sql_value(sql);
}

static json_object *member(json_object *o, const char *key)
{
    json_object *v = NULL;
    json_object_object_get_ex(o, key, &v);
    return v;
}

static json_object *api(const char *token, const char *method, const char *path, const char *body,
                        int want)
{
    struct https_response r = {0};
    itest_call(&a, token, method, path, body, &r);
    ck_assert_msg(r.status == want, "%.900s %.900s: want %d, got %d %.900s", method, path, want,
                  r.status, r.body ? r.body : "");
    json_object *o = r.body_len && r.body[0] == '{' ? itest_json(&r) : NULL;
    https_response_clear(&r);
    return o;
}

/* The first UUID in text (static buffer), or NULL. */
static const char *find_uuid(const char *text)
{
    static char out[37];
    static const int dash[] = {8, 13, 18, 23};
    for (const char *p = text; p != NULL && *p; p++) {
        int ok = 1;
        for (int i = 0; i < 36 && ok; i++) {
            int is_dash = i == dash[0] || i == dash[1] || i == dash[2] || i == dash[3];
            ok = is_dash ? p[i] == '-' : isxdigit((unsigned char)p[i]) != 0;
        }
        if (ok) {
            memcpy(out, p, 36);
            out[36] = '\0';
            return out;
        }
    }
    return NULL;
}

/* Lines of text that contain needle. */
static int count_lines(const char *text, const char *needle)
{
    int n = 0;
    const char *line = text;
    while (line != NULL && *line) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char *copy = xstrndup(line, len);
        n += strstr(copy, needle) != NULL;
        free(copy);
        line = end ? end + 1 : NULL;
    }
    return n;
}

/* The first line of text containing needle (owned), or NULL. */
static char *line_with(const char *text, const char *needle)
{
    const char *line = text;
    while (line != NULL && *line) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char *copy = xstrndup(line, len);
        if (strstr(copy, needle) != NULL)
            return copy;
        free(copy);
        line = end ? end + 1 : NULL;
    }
    return NULL;
}

/* 1 if some line of text starts with prefix. */
static int has_line_prefix(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *line = text; line != NULL && *line;) {
        if (strncmp(line, prefix, n) == 0)
            return 1;
        line = strchr(line, '\n');
        line = line ? line + 1 : NULL;
    }
    return 0;
}

/* The longest line, in characters (UTF-8 continuation bytes not counted). */
static int widest_line(const char *text)
{
    int widest = 0, cur = 0;
    for (const char *p = text; *p; p++) {
        if (*p == '\n') {
            cur = 0;
            continue;
        }
        if (((unsigned char)*p & 0xC0) != 0x80 && ++cur > widest)
            widest = cur;
    }
    return widest;
}

static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd); /* bound, never listening, now closed: nothing answers there */
    return ntohs(sa.sin_port);
}

static void home_new(struct home *h)
{
    snprintf(h->dir, sizeof(h->dir), "%s/rctl-%d-XXXXXX", itest.dir, getpid());
    ck_assert_ptr_nonnull(mkdtemp(h->dir));
    snprintf(h->xdg, sizeof(h->xdg), "%s/config", h->dir);
    ck_assert_int_eq(mkdir(h->xdg, 0700), 0);
}

static void home_free(struct home *h)
{
    if (h->dir[0] != '\0')
        itest_sh("rm -rf '%s'", h->dir);
    memset(h, 0, sizeof(*h));
}

/* ---- running raisectl */

struct rc {
    int status; /* exit status, 128 + signal if killed */
    char *out, *err;
};

static void rc_free(struct rc *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof(*r));
}

/* The environment: PATH, HOME, XDG_CONFIG_HOME, RAISE_URL, RAISE_CA (and the sanitizers'
 * options), then env_extra: "KEY=VALUE" lines that add or replace, "KEY" lines that remove. */
static char **make_env(const struct home *h, const char *env_extra)
{
    char **env = xcalloc(64, sizeof(char *));
    int n = 0;
    env[n++] = xstrdup("PATH=/usr/local/bin:/usr/bin:/bin");
    if (asprintf(&env[n++], "HOME=%s", h->dir) < 0 ||
        asprintf(&env[n++], "XDG_CONFIG_HOME=%s", h->xdg) < 0 ||
        asprintf(&env[n++], "RAISE_URL=https://127.0.0.1:%d", a.port) < 0 ||
        asprintf(&env[n++], "RAISE_CA=%s/ca.pem", itest.certs) < 0)
        abort();
    static const char *const pass[] = {"ASAN_OPTIONS", "LSAN_OPTIONS", "UBSAN_OPTIONS"};
    for (size_t i = 0; i < sizeof(pass) / sizeof(pass[0]); i++)
        if (getenv(pass[i]) != NULL && asprintf(&env[n++], "%s=%s", pass[i], getenv(pass[i])) < 0)
            abort();
    for (const char *line = env_extra; line != NULL && *line;) {
        const char *end = strchr(line, '\n');
        char *entry = xstrndup(line, end ? (size_t)(end - line) : strlen(line));
        line = end ? end + 1 : NULL;
        if (entry[0] == '\0') {
            free(entry);
            continue;
        }
        size_t key = strcspn(entry, "=");
        for (int i = 0; i < n; i++)
            if (strncmp(env[i], entry, key) == 0 && env[i][key] == '=') {
                free(env[i]);
                env[i] = env[--n];
                env[n] = NULL;
                break;
            }
        if (entry[key] == '=' && n < 62)
            env[n++] = entry;
        else
            free(entry);
    }
    env[n] = NULL;
    return env;
}

static void free_env(char **env)
{
    for (int i = 0; env[i] != NULL; i++)
        free(env[i]);
    free(env);
}

/* Fork and exec "raisectl ARGS" through /bin/sh (so ARGS may quote). stdin from stdin_text
 * (NULL: /dev/null); out_fd and err_fd become its stdout and stderr. */
static pid_t spawn(const struct home *h, const char *env_extra, const char *stdin_text, int out_fd,
                   int err_fd, const char *args)
{
    char in_path[PATH_MAX + 32];
    snprintf(in_path, sizeof(in_path), "%s/stdin", h->dir);
    if (stdin_text != NULL) {
        FILE *f = fopen(in_path, "w");
        ck_assert_ptr_nonnull(f);
        fputs(stdin_text, f);
        fclose(f);
    }
    char *cmd = NULL;
    if (asprintf(&cmd, "exec '%s' %s", RAISECTL_BIN, args) < 0)
        abort();
    char **env = make_env(h, env_extra);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int in = open(stdin_text != NULL ? in_path : "/dev/null", O_RDONLY);
        dup2(in, 0);
        dup2(out_fd, 1);
        dup2(err_fd, 2);
        if (chdir(h->dir) != 0)
            _exit(126);
        char *argv[] = {"sh", "-c", cmd, NULL};
        execve("/bin/sh", argv, env);
        _exit(127);
    }
    free(cmd);
    free_env(env);
    return pid;
}

static void append(char **buf, size_t *len, const char *data, size_t n)
{
    *buf = xrealloc(*buf, *len + n + 1);
    memcpy(*buf + *len, data, n);
    *len += n;
    (*buf)[*len] = '\0';
}

/* A sanitizer build's raisectl reports leaks and memory errors on stderr: that fails. */
static void check_sanitizer(const char *err, const char *args)
{
    ck_assert_msg(strstr(err, "Sanitizer") == NULL && strstr(err, "runtime error:") == NULL,
                  "raisectl %.900s: sanitizer report:\n%.900s", args, err);
}

static struct rc vrun(const struct home *h, const char *env_extra, const char *stdin_text,
                      const char *fmt, va_list ap)
{
    char *args = NULL;
    if (vasprintf(&args, fmt, ap) < 0)
        abort();
    int po[2], pe[2];
    ck_assert_int_eq(pipe2(po, O_CLOEXEC), 0);
    ck_assert_int_eq(pipe2(pe, O_CLOEXEC), 0);
    pid_t pid = spawn(h, env_extra, stdin_text, po[1], pe[1], args);
    close(po[1]);
    close(pe[1]);
    struct rc r = {0, xstrdup(""), xstrdup("")};
    size_t olen = 0, elen = 0;
    struct pollfd fds[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
    long long deadline = now_ms() + 30000;
    int open_fds = 2;
    while (open_fds > 0 && now_ms() < deadline) {
        if (poll(fds, 2, 200) <= 0)
            continue;
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || fds[i].revents == 0)
                continue;
            char buf[8192];
            ssize_t n = read(fds[i].fd, buf, sizeof(buf));
            if (n > 0) {
                if (i == 0)
                    append(&r.out, &olen, buf, (size_t)n);
                else
                    append(&r.err, &elen, buf, (size_t)n);
            } else if (n == 0 || errno != EINTR) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
            }
        }
    }
    for (int i = 0; i < 2; i++)
        if (fds[i].fd >= 0)
            close(fds[i].fd);
    int st = 0;
    if (open_fds > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        ck_abort_msg("raisectl %.900s: still running after 30 s (stdout: %.900s; stderr: %.900s)",
                     args, r.out, r.err);
    }
    waitpid(pid, &st, 0);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    check_sanitizer(r.err, args);
    free(args);
    return r;
}

/* raisectl ARGS as this identity (home), with env_extra and stdin_text (both may be NULL). */
static struct rc run_as(const struct home *h, const char *env_extra, const char *stdin_text,
                        const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static struct rc run_as(const struct home *h, const char *env_extra, const char *stdin_text,
                        const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    struct rc r = vrun(h, env_extra, stdin_text, fmt, ap);
    va_end(ap);
    return r;
}

/* The same in the test's own fresh home (the officer's). */
static struct rc run(const char *env_extra, const char *stdin_text, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static struct rc run(const char *env_extra, const char *stdin_text, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    struct rc r = vrun(&w.officer.h, env_extra, stdin_text, fmt, ap);
    va_end(ap);
    return r;
}

#define ck_assert_rc(r, want, what)                                                                \
    ck_assert_msg((r).status == (want),                                                            \
                  "%.900s: want exit %d, got %d\nstdout: %.900s\nstderr: %.900s", what, want,      \
                  (r).status, (r).out, (r).err)

/* raisectl login as p in p's home; asserts exit 0. */
static void login(struct person *p)
{
    struct rc r =
        run_as(&p->h, NULL, PASSWORD "\n", "login --username '%s' --password-stdin", p->username);
    ck_assert_rc(r, 0, "login --password-stdin");
    rc_free(&r);
}

/* ---- a command in the background (the feed) */

struct bg {
    pid_t pid;
    int fd; /* its stdout */
    char *buf;
    size_t len;
    char err_path[PATH_MAX + 32];
};

static void bg_start(struct bg *g, const struct home *h, const char *env_extra, const char *args)
{
    memset(g, 0, sizeof(*g));
    int po[2];
    ck_assert_int_eq(pipe2(po, O_CLOEXEC), 0);
    snprintf(g->err_path, sizeof(g->err_path), "%s/bg.err", h->dir);
    int err = open(g->err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ck_assert_int_ge(err, 0);
    g->pid = spawn(h, env_extra, NULL, po[1], err, args);
    close(po[1]);
    close(err);
    g->fd = po[0];
    fcntl(g->fd, F_SETFL, O_NONBLOCK);
    g->buf = xstrdup("");
}

/* Read what it prints for up to timeout_ms, or until needle (if not NULL) has been printed.
 * Returns 1 if needle was seen. */
static int bg_wait(struct bg *g, const char *needle, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        if (needle != NULL && strstr(g->buf, needle) != NULL)
            return 1;
        long long left = deadline - now_ms();
        if (left <= 0 || g->fd < 0)
            return 0;
        struct pollfd p = {g->fd, POLLIN, 0};
        if (poll(&p, 1, (int)(left < 100 ? left : 100)) <= 0)
            continue;
        char buf[8192];
        ssize_t n = read(g->fd, buf, sizeof(buf));
        if (n > 0) {
            append(&g->buf, &g->len, buf, (size_t)n);
        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            close(g->fd);
            g->fd = -1;
        }
    }
}

static char *bg_stderr(const struct bg *g)
{
    FILE *f = fopen(g->err_path, "r");
    char *out = xcalloc(1, 65536);
    if (f != NULL) {
        size_t n = fread(out, 1, 65535, f);
        out[n] = '\0';
        fclose(f);
    }
    return out;
}

/* Signal it and wait up to timeout_s; returns its exit status (128 + signal if killed by
 * one) or -1 if it did not end (then it is killed). Keeps buf; closes the pipe. */
static int bg_stop(struct bg *g, int sig, int timeout_s)
{
    if (g->pid <= 0)
        return -1;
    kill(g->pid, sig);
    int st = 0, rc = -1;
    for (int i = 0; i < timeout_s * 50; i++) {
        if (waitpid(g->pid, &st, WNOHANG) == g->pid) {
            rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            break;
        }
        if (g->fd >= 0)
            bg_wait(g, NULL, 20);
        else
            itest_sleep_ms(20);
    }
    if (rc >= 0)
        bg_wait(g, NULL, 100); /* what it printed last */
    if (rc < 0) {
        kill(g->pid, SIGKILL);
        waitpid(g->pid, &st, 0);
    }
    g->pid = 0;
    if (g->fd >= 0)
        close(g->fd);
    g->fd = -1;
    return rc;
}

/* Wait up to timeout_ms for it to end by itself; its exit status, or -1 if still running. */
static int bg_wait_exit(struct bg *g, int timeout_ms)
{
    int st = 0;
    for (int waited = 0; waited < timeout_ms; waited += 50) {
        if (waitpid(g->pid, &st, WNOHANG) == g->pid) {
            g->pid = 0;
            if (g->fd >= 0)
                bg_wait(g, NULL, 200);
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        if (g->fd >= 0)
            bg_wait(g, NULL, 50);
        else
            itest_sleep_ms(50);
    }
    return -1;
}

static void bg_free(struct bg *g)
{
    if (g->pid > 0)
        bg_stop(g, SIGKILL, 2);
    if (g->fd >= 0)
        close(g->fd);
    g->fd = -1;
    free(g->buf);
    g->buf = NULL;
}

/* Start `feed` as p and wait until the server has its stream open. */
static void feed_start(struct bg *g, struct person *p, const struct itest_server *s)
{
    bg_start(g, &p->h, NULL, "feed");
    if (!itest_wait_subscribers(s, 1, 10000)) {
        char *err = bg_stderr(g);
        bg_stop(g, SIGKILL, 2);
        ck_abort_msg("raisectl feed did not open a stream in 10 s (stdout: %.900s; stderr: %.900s)",
                     g->buf, err);
    }
}

/* ---- the world */

static void person_new(struct person *p, const char *agency, const char *role, const char *hub)
{
    p->token = itest_new_user(&a, w.admin, agency, role, hub, &p->id);
    p->username = sqlf("SELECT username FROM users WHERE id = '%s'", p->id);
    ck_assert_ptr_nonnull(p->username);
    home_new(&p->h);
}

static void person_free(struct person *p)
{
    free(p->id);
    free(p->username);
    free(p->token);
    home_free(&p->h);
}

static void start(void)
{
    itest_ensure_db();
    itest_sql("DELETE FROM login_failures WHERE key LIKE 'addr:%'");
    itest_server_start(&a, NULL);
    w.admin = itest_new_admin(&a);
    w.hub = itest_new_hub(&a, w.admin);
    w.hub_agency = itest_new_agency(&a, w.admin, "hub");
    w.police = itest_new_agency(&a, w.admin, "police");
    w.health = itest_new_agency(&a, w.admin, "health");
    w.housing = itest_new_agency(&a, w.admin, "housing");
    person_new(&w.mgr, w.hub_agency, "hub_manager", w.hub);
    person_new(&w.officer, w.police, "police_liaison", NULL);
    person_new(&w.nurse, w.health, "practitioner", NULL);
    person_new(&w.outsider, w.housing, "practitioner", NULL);
    w.reference =
        xasprintf("NWD-%d", run_id() % 1000000); /* short: tables and the feed cut long ones */
    char body[1024];
    snprintf(body, sizeof(body),
             "{\"hub_id\":\"%s\",\"reference\":\"%s\",\"given_name\":\"Alex\",\"family_name\":"
             "\"Client\",\"date_of_birth\":\"2010-03-03\",\"status\":\"edge_of_care\","
             "\"key_worker\":\"Kim Key\",\"team\":[\"%s\",\"%s\"]}",
             w.hub, w.reference, w.police, w.health);
    json_object *o = api(w.mgr.token, "POST", "/v1/subjects", body, 201);
    w.subject = xstrdup(itest_jstr(o, "id"));
    json_object_put(o);
}

static void stop(void)
{
    itest_server_stop(&a, SIGTERM, 15);
    if (b.pid > 0)
        itest_server_stop(&b, SIGTERM, 15);
    person_free(&w.mgr);
    person_free(&w.officer);
    person_free(&w.nurse);
    person_free(&w.outsider);
    char **all[] = {&w.admin,  &w.hub,     &w.hub_agency, &w.police,
                    &w.health, &w.housing, &w.subject,    &w.reference};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        free(*all[i]);
    memset(&w, 0, sizeof(w));
}

/* Post an item through the API as token (3x5x2, handling P) on s; returns its id (owned). */
static char *post_api(const struct itest_server *s, const char *token, const char *summary)
{
    char body[1024];
    snprintf(body, sizeof(body),
             "{\"subject_id\":\"%s\",\"category\":\"other\",\"summary\":\"%s\","
             "\"occurred_at\":\"%s\",\"risk_level\":\"medium\","
             "\"grading\":{\"source\":2,\"assessment\":\"B\",\"handling\":\"P\"}}",
             w.subject, summary, when(0));
    struct https_response r = {0};
    itest_call(s, token, "POST", "/v1/intelligence", body, &r);
    ck_assert_msg(r.status == 201, "POST /v1/intelligence: %d %.900s", r.status, r.body);
    json_object *o = itest_json(&r);
    char *id = xstrdup(itest_jstr(o, "id"));
    json_object_put(o);
    https_response_clear(&r);
    return id;
}

/* ---- 1. three kinds of user, end to end */

START_TEST(three_users_end_to_end)
{
    /* the feed cuts a line at 100 columns: the summary is found by its first word */
    char summary[128], marker[32], description[64], path[256];
    snprintf(marker, sizeof(marker), "K%d ", run_id());
    snprintf(summary, sizeof(summary), "%sseen at the bus station with two older males", marker);
    snprintf(description, sizeof(description), "Book GP visit %d", run_id() % 1000000);

    login(&w.officer);
    login(&w.nurse);
    login(&w.mgr);

    struct bg feed;
    feed_start(&feed, &w.nurse, &a);

    /* the officer posts graded intelligence with handling conditions */
    struct rc r = run_as(&w.officer.h, NULL, NULL,
                         "intel post --subject %s --category missing_from_home --summary '%s' "
                         "--risk high --grade 1A --handling C --conditions 'Not to be disclosed "
                         "to the family'",
                         w.subject, summary);
    long long posted = now_ms();
    ck_assert_rc(r, 0, "intel post");
    const char *uuid = find_uuid(r.out);
    ck_assert_msg(uuid != NULL, "intel post printed no id: %.900s", r.out);
    ck_assert_msg(count_lines(r.out, uuid) == 1 && count_lines(r.out, "") <= 1,
                  "intel post: want one line with the id, got: %.900s", r.out);
    char *intel_id = xstrdup(uuid);
    rc_free(&r);
    snprintf(path, sizeof(path), "/v1/intelligence/%s", intel_id);
    json_object *item = api(w.officer.token, "GET", path, NULL, 200);
    ck_assert_str_eq(itest_jstr(item, "summary"), summary);
    ck_assert_str_eq(itest_jstr(item, "category"), "missing_from_home");
    ck_assert_str_eq(itest_jstr(item, "risk_level"), "high");
    ck_assert_str_eq(itest_jstr(member(item, "grading"), "text"), "1A C");
    ck_assert_str_eq(itest_jstr(member(item, "grading"), "conditions"),
                     "Not to be disclosed to the family");
    json_object_put(item);

    /* the nurse's feed shows it within a second, one line: TIME EVENT REFERENCE SUMMARY */
    int seen = bg_wait(&feed, marker, 1000);
    long long took = now_ms() - posted;
    ck_assert_msg(seen,
                  "the feed did not show the item within 1 s of the post (%lld ms); "
                  "feed so far: [%.900s]",
                  took, feed.buf);
    bg_wait(&feed, "\n", 200); /* the rest of the line */
    char *line = line_with(feed.buf, marker);
    ck_assert_msg(count_lines(feed.buf, marker) == 1, "feed: %.900s", feed.buf);
    char *ev = strstr(line, "intelligence.posted"), *ref = strstr(line, w.reference),
         *sum = strstr(line, marker);
    ck_assert_msg(
        ev != NULL && ref != NULL && ev < ref && ref < sum,
        "feed line is not TIME EVENT REFERENCE SUMMARY with intelligence.posted and %.900s: "
        "[%.900s]",
        w.reference, line);
    ck_assert_msg(isdigit((unsigned char)line[0]), "feed line does not start with a time: [%.900s]",
                  line);
    free(line);

    /* the manager's agenda, markdown, has it */
    char body[1024];
    snprintf(body, sizeof(body),
             "{\"hub_id\":\"%s\",\"title\":\"Weekly RAISE\",\"scheduled_for\":\"%s\","
             "\"subject_ids\":[\"%s\"],\"invited_agencies\":[\"%s\",\"%s\"]}",
             w.hub, when(1), w.subject, w.police, w.health);
    json_object *m = api(w.mgr.token, "POST", "/v1/meetings", body, 201);
    char *meeting = xstrdup(itest_jstr(m, "id"));
    json_object_put(m);
    r = run_as(&w.mgr.h, NULL, NULL, "agenda %s --format md", meeting);
    ck_assert_rc(r, 0, "agenda --format md");
    ck_assert_msg(strstr(r.out, summary) != NULL, "agenda lacks the summary: %.900s", r.out);
    ck_assert_msg(strstr(r.out, "OFFICIAL-SENSITIVE") != NULL, "agenda: %.900s", r.out);
    ck_assert_msg(strstr(r.out, "Not to be disclosed to the family") != NULL,
                  "agenda lacks the handling conditions: %.900s", r.out);
    char *md_ref =
        xasprintf("Alex Client (NWD\\-%d)", run_id() % 1000000); /* markdown escapes '-' */
    ck_assert_msg(strstr(r.out, md_ref) != NULL, "agenda lacks %.900s: %.900s", md_ref, r.out);
    free(md_ref);
    rc_free(&r);
    /* -o FILE writes it there instead, html on request */
    char file[PATH_MAX + 32];
    snprintf(file, sizeof(file), "%s/agenda.html", w.mgr.h.dir);
    r = run_as(&w.mgr.h, NULL, NULL, "agenda %s --format html -o '%s'", meeting, file);
    ck_assert_rc(r, 0, "agenda --format html -o FILE");
    ck_assert_msg(strstr(r.out, summary) == NULL, "agenda -o also printed it: %.900s", r.out);
    ck_assert_msg(itest_file_contains(file, summary) && itest_file_contains(file, "<html"),
                  "%.900s is not the html agenda", file);
    rc_free(&r);

    /* the manager adds an action owned by the nurse's agency */
    r = run_as(&w.mgr.h, NULL, NULL,
               "actions add --subject %s --owner %s --description '%s' --due %s", w.subject,
               w.health, description, day(7));
    ck_assert_rc(r, 0, "actions add");
    uuid = find_uuid(r.out);
    ck_assert_msg(uuid != NULL, "actions add printed no id: %.900s", r.out);
    char *action = xstrdup(uuid);
    rc_free(&r);
    snprintf(path, sizeof(path), "/v1/actions/%s", action);
    json_object *act = api(w.mgr.token, "GET", path, NULL, 200);
    ck_assert_str_eq(itest_jstr(act, "description"), description);
    ck_assert_str_eq(itest_jstr(member(act, "owner_agency"), "id"), w.health);
    ck_assert_str_eq(itest_jstr(act, "due_date"), day(7));
    ck_assert(json_object_get_boolean(member(act, "between_meetings")));
    json_object_put(act);
    ck_assert_msg(bg_wait(&feed, "action.created", 3000), "feed: no action.created: %.900s",
                  feed.buf);

    /* the nurse sees it in "actions mine" */
    r = run_as(&w.nurse.h, NULL, NULL, "actions mine");
    ck_assert_rc(r, 0, "actions mine");
    ck_assert_msg(count_lines(r.out, description) == 1, "actions mine: %.900s", r.out);
    ck_assert_msg(widest_line(r.out) <= 100, "actions mine is %d columns wide:\n%.900s",
                  widest_line(r.out), r.out);
    rc_free(&r);
    r = run_as(&w.nurse.h, NULL, NULL, "actions mine --json");
    ck_assert_rc(r, 0, "actions mine --json");
    json_object *page = json_tokener_parse(r.out);
    ck_assert_msg(page != NULL && json_object_is_type(member(page, "items"), json_type_array) &&
                      json_object_object_get_ex(page, "next", NULL),
                  "actions mine --json is not the server's page: %.900s", r.out);
    ck_assert_msg(strstr(r.out, action) != NULL, "actions mine --json lacks %.900s", action);
    json_object_put(page);
    rc_free(&r);

    /* and completes it; the feed shows action.completed */
    r = run_as(&w.nurse.h, NULL, NULL, "actions complete %s --note 'Seen by the GP on Tuesday'",
               action);
    ck_assert_rc(r, 0, "actions complete");
    ck_assert_msg(strstr(r.out, action) != NULL, "actions complete: no id in %.900s", r.out);
    rc_free(&r);
    act = api(w.mgr.token, "GET", path, NULL, 200);
    ck_assert_str_eq(itest_jstr(act, "status"), "completed");
    ck_assert_str_eq(itest_jstr(act, "completion_note"), "Seen by the GP on Tuesday");
    json_object_put(act);
    ck_assert_msg(bg_wait(&feed, "action.completed", 2000), "feed: no action.completed: %.900s",
                  feed.buf);
    bg_wait(&feed, "\n", 200);
    line = line_with(feed.buf, "action.completed");
    ck_assert_msg(strstr(line, w.reference) != NULL, "action.completed line lacks %.900s: [%.900s]",
                  w.reference, line);
    free(line);
    ck_assert_msg(widest_line(feed.buf) <= 100, "feed lines wider than 100 columns:\n%.900s",
                  feed.buf);

    /* Ctrl-C ends the feed */
    int st = bg_stop(&feed, SIGINT, 5);
    ck_assert_msg(st >= 0, "raisectl feed did not end within 5 s of SIGINT");
    char *err = bg_stderr(&feed);
    check_sanitizer(err, "feed");
    free(err);
    bg_free(&feed);
    free(action);
    free(meeting);
    free(intel_id);
}
END_TEST

/* ---- 2. the token file, and where settings come from */

/* The 43-character token in text (static), or NULL. */
static const char *find_token(const char *text)
{
    static char out[64];
    for (const char *p = text; *p;) {
        size_t n = 0;
        while (isalnum((unsigned char)p[n]) || p[n] == '-' || p[n] == '_')
            n++;
        if (n == 43) {
            memcpy(out, p, 43);
            out[43] = '\0';
            return out;
        }
        p += n ? n : 1;
    }
    return NULL;
}

START_TEST(token_file)
{
    struct person *p = &w.officer;
    char dir[PATH_MAX + 32], file[PATH_MAX + 48];
    snprintf(dir, sizeof(dir), "%s/raise", p->h.xdg);
    snprintf(file, sizeof(file), "%s/token", dir);
    struct stat sb;

    struct rc r = run(NULL, PASSWORD "\n", "login --username '%s' --password-stdin", p->username);
    ck_assert_rc(r, 0, "login");
    ck_assert_msg(stat(file, &sb) == 0, "no token file at %.900s", file);
    ck_assert_msg(S_ISREG(sb.st_mode) && (sb.st_mode & 07777) == 0600, "token file mode %o",
                  (unsigned)(sb.st_mode & 07777));
    ck_assert_int_eq(stat(dir, &sb), 0);
    ck_assert_msg(S_ISDIR(sb.st_mode) && (sb.st_mode & 07777) == 0700, "%.900s mode %o", dir,
                  (unsigned)(sb.st_mode & 07777));
    FILE *f = fopen(file, "r");
    char content[4096] = "";
    size_t n = fread(content, 1, sizeof(content) - 1, f);
    content[n] = '\0';
    fclose(f);
    const char *found = find_token(content);
    ck_assert_msg(found != NULL, "no token in the token file");
    char *token = xstrdup(found);
    ck_assert_msg(strstr(r.out, token) == NULL && strstr(r.err, token) == NULL,
                  "login printed the token");
    ck_assert_msg(strstr(r.out, PASSWORD) == NULL && strstr(r.err, PASSWORD) == NULL,
                  "login printed the password");
    rc_free(&r);
    json_object_put(api(token, "GET", "/v1/me", NULL, 200)); /* it is a live session */

    /* whoami with the file */
    r = run(NULL, NULL, "whoami");
    ck_assert_rc(r, 0, "whoami");
    ck_assert_msg(strstr(r.out, p->username) != NULL && strstr(r.out, "police_liaison") != NULL,
                  "whoami: %.900s", r.out);
    ck_assert_msg(strstr(r.out, token) == NULL && strstr(r.err, token) == NULL,
                  "whoami printed the token");
    rc_free(&r);
    r = run(NULL, NULL, "whoami --json");
    ck_assert_rc(r, 0, "whoami --json");
    json_object *me = json_tokener_parse(r.out);
    ck_assert_msg(me != NULL, "whoami --json: %.900s", r.out);
    ck_assert_str_eq(itest_jstr(me, "username"), p->username);
    ck_assert_str_eq(itest_jstr(member(me, "agency"), "id"), w.police);
    json_object_put(me);
    rc_free(&r);

    /* logout ends the session and removes the file; whoami then refuses */
    r = run(NULL, NULL, "logout");
    ck_assert_rc(r, 0, "logout");
    ck_assert_msg(strstr(r.out, token) == NULL && strstr(r.err, token) == NULL,
                  "logout printed the token");
    rc_free(&r);
    ck_assert_msg(stat(file, &sb) != 0 && errno == ENOENT, "logout left %.900s", file);
    struct https_response hr = {0};
    itest_call(&a, token, "GET", "/v1/me", NULL, &hr);
    ck_assert_msg(hr.status == 401, "the session outlived logout: %d", hr.status);
    https_response_clear(&hr);
    r = run(NULL, NULL, "whoami");
    ck_assert_rc(r, 1, "whoami after logout");
    ck_assert_msg(r.err[0] != '\0', "whoami after logout: nothing on stderr");
    rc_free(&r);
    free(token);

    /* RAISE_TOKEN, no file */
    char env[512];
    snprintf(env, sizeof(env), "RAISE_TOKEN=%s", p->token);
    r = run(env, NULL, "whoami");
    ck_assert_rc(r, 0, "whoami with RAISE_TOKEN");
    ck_assert_msg(strstr(r.out, p->username) != NULL, "whoami: %.900s", r.out);
    ck_assert_msg(strstr(r.out, p->token) == NULL && strstr(r.err, p->token) == NULL,
                  "whoami printed RAISE_TOKEN");
    rc_free(&r);

    /* --url beats RAISE_URL (a port where nothing listens) */
    int closed = closed_port();
    snprintf(env, sizeof(env), "RAISE_TOKEN=%s\nRAISE_URL=https://127.0.0.1:%d", p->token, closed);
    r = run(env, NULL, "whoami");
    ck_assert_rc(r, 3, "whoami with RAISE_URL at a closed port");
    rc_free(&r);
    r = run(env, NULL, "--url https://127.0.0.1:%d whoami", a.port);
    ck_assert_rc(r, 0, "--url beats RAISE_URL");
    ck_assert_msg(strstr(r.out, p->username) != NULL, "whoami: %.900s", r.out);
    rc_free(&r);

    /* the config file: used without the environment; the environment beats it */
    char conf[PATH_MAX + 48];
    snprintf(conf, sizeof(conf), "%s/config", dir);
    mkdir(dir, 0700);
    f = fopen(conf, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "url = https://127.0.0.1:%d\nca = %s/ca.pem\n", a.port, itest.certs);
    fclose(f);
    snprintf(env, sizeof(env), "RAISE_TOKEN=%s\nRAISE_URL\nRAISE_CA", p->token);
    r = run(env, NULL, "whoami");
    ck_assert_rc(r, 0, "whoami with url and ca from the config file");
    rc_free(&r);
    snprintf(env, sizeof(env), "RAISE_TOKEN=%s\nRAISE_URL=https://127.0.0.1:%d\nRAISE_CA", p->token,
             closed);
    r = run(env, NULL, "whoami");
    ck_assert_rc(r, 3, "RAISE_URL beats the config file");
    rc_free(&r);

    /* without XDG_CONFIG_HOME the token file is ~/.config/raise/token */
    r = run("XDG_CONFIG_HOME", PASSWORD "\n", "login --username '%s' --password-stdin",
            p->username);
    ck_assert_rc(r, 0, "login without XDG_CONFIG_HOME");
    rc_free(&r);
    snprintf(file, sizeof(file), "%s/.config/raise/token", p->h.dir);
    ck_assert_msg(stat(file, &sb) == 0 && (sb.st_mode & 07777) == 0600,
                  "no token file at %.900s (mode 0600)", file);
    r = run("XDG_CONFIG_HOME", NULL, "whoami");
    ck_assert_rc(r, 0, "whoami without XDG_CONFIG_HOME");
    rc_free(&r);
    r = run("XDG_CONFIG_HOME", NULL, "logout");
    ck_assert_rc(r, 0, "logout without XDG_CONFIG_HOME");
    rc_free(&r);
    ck_assert_msg(stat(file, &sb) != 0, "logout left %.900s", file);
}
END_TEST

/* ---- 3. the feed survives a server restart on the same port */

START_TEST(feed_reconnects)
{
    int port = a.port;
    char summary[4][64];
    char *ids[4];
    for (int i = 0; i < 4; i++)
        snprintf(summary[i], sizeof(summary[i]), "R%d-%d restart item", i + 1, run_id());
    login(&w.nurse);
    struct bg feed;
    feed_start(&feed, &w.nurse, &a);
    ids[0] = post_api(&a, w.officer.token, summary[0]);
    ids[1] = post_api(&a, w.officer.token, summary[1]);
    ck_assert_msg(bg_wait(&feed, summary[1], 3000), "feed before the restart: %.900s", feed.buf);

    /* down: item 3 is posted on another instance (same database) while nothing listens
     * on the feed's port; then the server comes back on the same port and item 4 is posted */
    ck_assert_int_eq(itest_server_stop(&a, SIGTERM, 15), 0);
    itest_server_start(&b, NULL);
    ids[2] = post_api(&b, w.officer.token, summary[2]);
    itest_sleep_ms(1500); /* the feed retries meanwhile, into a closed port */
    char extra[64];
    snprintf(extra, sizeof(extra), "listen = 127.0.0.1:%d\n", port);
    itest_server_start(&a, extra);
    ck_assert_int_eq(a.port, port);
    ids[3] = post_api(&a, w.officer.token, summary[3]);
    /* backing off at most 5 s; one attempt may also wait out the client's own timeouts */
    long long back = now_ms();
    int seen = bg_wait(&feed, summary[3], 30000);
    char *err = bg_stderr(&feed);
    ck_assert_msg(seen, "the feed did not come back within 30 s: stdout [%.900s] stderr [%.900s]",
                  feed.buf, err);
    if (now_ms() - back > 6000) /* not a failure of the contract, but worth seeing */
        fprintf(stderr, "feed_reconnects: the feed took %lld ms to come back; stderr:\n%s",
                now_ms() - back, err);
    free(err);
    bg_wait(&feed, NULL, 2000); /* anything printed twice would come now */
    ck_assert_msg(waitpid(feed.pid, NULL, WNOHANG) == 0, "the feed ended: %.900s", feed.buf);
    const char *prev = feed.buf;
    for (int i = 0; i < 4; i++) {
        ck_assert_msg(count_lines(feed.buf, summary[i]) == 1,
                      "item %d printed %d times; feed:\n%.900s", i + 1,
                      count_lines(feed.buf, summary[i]), feed.buf);
        const char *at = strstr(feed.buf, summary[i]);
        ck_assert_msg(at >= prev, "item %d out of order; feed:\n%.900s", i + 1, feed.buf);
        prev = at;
    }
    ck_assert_int_eq(count_lines(feed.buf, "intelligence.posted"), 4);
    ck_assert_msg(bg_stop(&feed, SIGINT, 5) >= 0, "the feed did not end on SIGINT");
    bg_free(&feed);
    for (int i = 0; i < 4; i++)
        free(ids[i]);
}
END_TEST

/* ---- 3b. feed --since replays, --json prints JSON, and a signed-out session ends it (1) */

START_TEST(feed_since_json_and_sign_out)
{
    itest_server_start(&b, "stream_heartbeat = 1\n"); /* checks sessions every second */
    char s1[64], s2[64], env[512];
    snprintf(s1, sizeof(s1), "S1-%d first", run_id());
    snprintf(s2, sizeof(s2), "S2-%d second", run_id());
    char *n0 = itest_sql_value("SELECT coalesce(max(id), 0) FROM events");
    char *i1 = post_api(&a, w.officer.token, s1);
    char *n1 = itest_sql_value("SELECT max(id) FROM events");
    char *i2 = post_api(&a, w.officer.token, s2);
    snprintf(env, sizeof(env), "RAISE_TOKEN=%s\nRAISE_URL=https://127.0.0.1:%d", w.nurse.token,
             b.port);

    /* --since the event before both, --json: both, once each, in order, one JSON per line */
    struct bg f;
    char args[128];
    snprintf(args, sizeof(args), "feed --since %s --json", n0);
    bg_start(&f, &w.nurse.h, env, args);
    ck_assert_msg(bg_wait(&f, i2, 5000), "feed --since %.900s --json: [%.900s]", n0, f.buf);
    bg_wait(&f, NULL, 500);
    ck_assert_int_eq(count_lines(f.buf, i1), 1);
    ck_assert_int_eq(count_lines(f.buf, i2), 1);
    ck_assert(strstr(f.buf, i1) < strstr(f.buf, i2));
    for (const char *line = f.buf; *line;) {
        const char *end = strchr(line, '\n');
        char *one = xstrndup(line, end ? (size_t)(end - line) : strlen(line));
        json_object *o = json_tokener_parse(one);
        ck_assert_msg(o != NULL && json_object_is_type(o, json_type_object),
                      "feed --json printed a line that is not a JSON object: [%.900s]", one);
        json_object_put(o);
        free(one);
        line = end ? end + 1 : line + strlen(line);
    }
    ck_assert_msg(bg_stop(&f, SIGINT, 5) >= 0, "feed did not end on SIGINT");
    bg_free(&f);

    /* --since the first item's event: only the second */
    snprintf(args, sizeof(args), "feed --since %s", n1);
    bg_start(&f, &w.nurse.h, env, args);
    ck_assert_msg(bg_wait(&f, "S2-", 5000), "feed --since %.900s: [%.900s]", n1, f.buf);
    bg_wait(&f, NULL, 500);
    ck_assert_msg(strstr(f.buf, "S1-") == NULL,
                  "feed --since %.900s replayed event %.900s: [%.900s]", n1, n1, f.buf);

    /* the session ends (signed out elsewhere): the feed ends with exit status 1 */
    ck_assert_msg(itest_wait_subscribers(&b, 1, 5000), "no stream open on the second instance");
    json_object_put(api(w.nurse.token, "DELETE", "/v1/sessions/current", NULL, 204));
    int st = bg_wait_exit(&f, 15000);
    char *err = bg_stderr(&f);
    ck_assert_msg(st == 1,
                  "feed after sign-out: want exit 1, got %d (-1: still running); "
                  "stderr: %.900s",
                  st, err);
    free(err);
    bg_free(&f);
    free(n0);
    free(n1);
    free(i1);
    free(i2);
}
END_TEST

/* ---- 3c. the feed line names the young person by their whole reference (a hub's references
 * run to 64 characters; "NWD-2026-000123" is a usual one) */

START_TEST(feed_shows_the_whole_reference)
{
    char ref[64], body[1024], marker[32];
    snprintf(ref, sizeof(ref), "NWD-2026-%06d", run_id() % 1000000);
    snprintf(body, sizeof(body),
             "{\"hub_id\":\"%s\",\"reference\":\"%s\",\"given_name\":\"Long\",\"family_name\":"
             "\"Reference\",\"date_of_birth\":\"2011-01-01\",\"status\":\"in_care\","
             "\"key_worker\":\"Kim\",\"team\":[\"%s\",\"%s\"]}",
             w.hub, ref, w.police, w.health);
    json_object *o = api(w.mgr.token, "POST", "/v1/subjects", body, 201);
    char *subject = xstrdup(itest_jstr(o, "id"));
    json_object_put(o);
    login(&w.nurse);
    struct bg feed;
    feed_start(&feed, &w.nurse, &a);
    snprintf(marker, sizeof(marker), "L%d", run_id());
    snprintf(body, sizeof(body),
             "{\"subject_id\":\"%s\",\"category\":\"other\",\"summary\":\"%s\","
             "\"occurred_at\":\"%s\",\"risk_level\":\"low\","
             "\"grading\":{\"source\":2,\"assessment\":\"B\",\"handling\":\"P\"}}",
             subject, marker, when(0));
    json_object_put(api(w.officer.token, "POST", "/v1/intelligence", body, 201));
    ck_assert_msg(bg_wait(&feed, marker, 3000), "feed: [%.900s]", feed.buf);
    bg_wait(&feed, "\n", 200);
    char *line = line_with(feed.buf, marker);
    ck_assert_msg(strstr(line, ref) != NULL,
                  "the feed line does not have the reference %.900s: [%.900s]", ref, line);
    free(line);
    bg_stop(&feed, SIGINT, 5);
    bg_free(&feed);
    free(subject);
}
END_TEST

/* ---- 4. exit codes */

START_TEST(exit_codes)
{
    char env[512];
    snprintf(env, sizeof(env), "RAISE_TOKEN=%s", w.officer.token);

    /* 0 */
    struct rc r = run(env, NULL, "whoami");
    ck_assert_rc(r, 0, "whoami");
    rc_free(&r);

    /* 1: the officer posts without a grading: the problem's title and detail, then the field */
    r = run(env, NULL,
            "intel post --subject %s --category missing_from_home --summary 'No grading here' "
            "--risk high",
            w.subject);
    ck_assert_rc(r, 1, "intel post without a grade by a police liaison officer");
    ck_assert_msg(strstr(r.err, "Unprocessable Content") != NULL, "stderr: %.900s", r.err);
    ck_assert_msg(strstr(r.err, "the request has invalid fields") != NULL, "stderr: %.900s", r.err);
    ck_assert_msg(has_line_prefix(r.err, "  grading: is required for police intelligence"),
                  "no '  grading: ...' line on stderr: %.900s", r.err);
    rc_free(&r);
    char *count = sqlf("SELECT count(*) FROM intelligence WHERE summary = '%s'", "No grading here");
    ck_assert_str_eq(count, "0");
    free(count);

    /* 1: completing another agency's action (403 for a team agency, 404 for an outsider) */
    char body[512];
    snprintf(body, sizeof(body),
             "{\"subject_id\":\"%s\",\"owner_agency_id\":\"%s\",\"description\":\"Health "
             "check\",\"due_date\":\"%s\"}",
             w.subject, w.health, day(5));
    json_object *act = api(w.mgr.token, "POST", "/v1/actions", body, 201);
    char *action = xstrdup(itest_jstr(act, "id"));
    json_object_put(act);
    r = run(env, NULL, "actions complete %s --note 'Not ours'", action);
    ck_assert_rc(r, 1, "actions complete by another agency (team)");
    ck_assert_msg(strstr(r.err, "Forbidden") != NULL, "stderr: %.900s", r.err);
    rc_free(&r);
    snprintf(env, sizeof(env), "RAISE_TOKEN=%s", w.outsider.token);
    r = run(env, NULL, "actions complete %s --note 'Not ours'", action);
    ck_assert_rc(r, 1, "actions complete by another agency (not on the team)");
    ck_assert_msg(strstr(r.err, "Not Found") != NULL, "stderr: %.900s", r.err);
    rc_free(&r);
    char *status = sqlf("SELECT status FROM actions WHERE id = '%s'", action);
    ck_assert_str_eq(status, "open");
    free(status);
    free(action);

    /* 1: a token the server does not know */
    r = run("RAISE_TOKEN=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", NULL, "whoami");
    ck_assert_rc(r, 1, "whoami with an unknown token");
    ck_assert_msg(strstr(r.err, "Unauthorized") != NULL, "stderr: %.900s", r.err);
    rc_free(&r);

    /* 2: usage errors, decided before any connection (nothing listens at RAISE_URL) */
    int closed = closed_port();
    snprintf(env, sizeof(env), "RAISE_TOKEN=%s\nRAISE_URL=https://127.0.0.1:%d", w.officer.token,
             closed);
    static const char *const usage[] = {
        "frobnicate",
        "whoami --frobnicate",
        "intel frobnicate",
        "intel post --subject 3e636046-650a-41df-87f4-a2f7cd82995a",
        "intel post --summary x --category other --risk low",
        "actions complete 3e636046-650a-41df-87f4-a2f7cd82995a",
        "login --username someone --password 'long enough secret'",
        "intel post --subject 3e636046-650a-41df-87f4-a2f7cd82995a --category other "
        "--summary x --risk low --gravity",
        "", /* no command at all */
        "intel post --subject 3e636046-650a-41df-87f4-a2f7cd82995a --category other "
        "--summary x --risk low --gravity many",
        "actions add --subject 3e636046-650a-41df-87f4-a2f7cd82995a --owner x",
        "actions complete --note done",
        "intel post --subject 3e636046-650a-41df-87f4-a2f7cd82995a --category other "
        "--summary x --risk low --grade XYZ --handling P",
        "intel list --limit lots",
        "feed --since yesterday",
        "agenda 3e636046-650a-41df-87f4-a2f7cd82995a --format pdf",
    };
    char *bad = xstrdup(""); /* every case is tried, and every one that fails is named */
    for (size_t i = 0; i < sizeof(usage) / sizeof(usage[0]); i++) {
        r = run(env, NULL, "%s", usage[i]);
        if (r.status != 2 || strstr(r.err, "help") == NULL) { /* a hint: see ... --help */
            char *more =
                xasprintf("%s\n  raisectl %s: want exit 2 and a hint on stderr, got %d: %.300s",
                          bad, usage[i], r.status, r.err);
            free(bad);
            bad = more;
        }
        rc_free(&r);
    }

    /* 3: nothing listens; or TLS fails (a CA that did not sign the server's certificate) */
    r = run(env, NULL, "whoami");
    ck_assert_rc(r, 3, "whoami with nothing listening");
    ck_assert_msg(r.err[0] != '\0', "nothing on stderr");
    rc_free(&r);
    snprintf(env, sizeof(env), "RAISE_TOKEN=%s\nRAISE_CA=/etc/ssl/certs/ca-certificates.crt",
             w.officer.token);
    r = run(env, NULL, "whoami");
    ck_assert_rc(r, 3, "whoami with a CA that does not verify the server");
    rc_free(&r);
    snprintf(env, sizeof(env), "RAISE_TOKEN=%s\nRAISE_URL=https://127.0.0.1:%d", w.officer.token,
             closed);
    r = run(env, NULL, "intel list");
    ck_assert_rc(r, 3, "intel list with nothing listening");
    rc_free(&r);

    ck_assert_msg(bad[0] == '\0', "usage errors:%.3500s", bad); /* last: the 3s above still ran */
    free(bad);
}
END_TEST

/* ---- 5. help */

START_TEST(help)
{
    struct rc r = run(NULL, NULL, "--help");
    ck_assert_rc(r, 0, "--help");
    static const char *const commands[] = {"login",
                                           "logout",
                                           "whoami",
                                           "feed",
                                           "intel post",
                                           "intel list",
                                           "intel show",
                                           "intel retract",
                                           "subjects add",
                                           "subjects list",
                                           "subjects show",
                                           "subjects update",
                                           "meetings schedule",
                                           "meetings list",
                                           "meetings show",
                                           "meetings add",
                                           "meetings attendance",
                                           "meetings minutes",
                                           "meetings start",
                                           "meetings close",
                                           "agenda",
                                           "suggest",
                                           "actions add",
                                           "actions reopen",
                                           "actions cancel",
                                           "actions mine",
                                           "actions list",
                                           "actions show",
                                           "actions complete",
                                           "actions update",
                                           "actions cannot",
                                           "actions summary",
                                           "agencies add",
                                           "agencies list",
                                           "hubs add",
                                           "hubs list",
                                           "users add",
                                           "users list",
                                           "users deactivate",
                                           "users cert"};
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        ck_assert_msg(strstr(r.out, commands[i]) != NULL, "--help does not list %.900s:\n%.900s",
                      commands[i], r.out);
    char *top = xstrdup(r.out); /* its examples are checked last */
    rc_free(&r);

    r = run(NULL, NULL, "intel post --help");
    ck_assert_rc(r, 0, "intel post --help");
    static const char *const post[] = {
        "--subject",     "--category",        "--summary",  "--risk",       "--detail",
        "--occurred-at", "--grade",           "--handling", "--conditions", "--gravity",
        "--restrict",    "--idempotency-key", "--file"};
    for (size_t i = 0; i < sizeof(post) / sizeof(post[0]); i++)
        ck_assert_msg(strstr(r.out, post[i]) != NULL, "intel post --help lacks %.900s:\n%.900s",
                      post[i], r.out);
    ck_assert_msg(count_lines(r.out, "raisectl intel post") >= 1,
                  "intel post --help has no example:\n%.900s", r.out);
    rc_free(&r);

    static const struct {
        const char *cmd, *opts[4];
    } more[] = {{"feed", {"--json", "--since"}},
                {"login", {"--username", "--password-stdin"}},
                {"actions complete", {"--note", "--evidence"}},
                {"agenda", {"--format", "-o"}},
                {"actions list", {"--agency", "--status", "--due-before", "--sort"}}};
    for (size_t i = 0; i < sizeof(more) / sizeof(more[0]); i++) {
        r = run(NULL, NULL, "%s --help", more[i].cmd);
        ck_assert_msg(r.status == 0, "%.900s --help: exit %d", more[i].cmd, r.status);
        for (int k = 0; k < 4 && more[i].opts[k] != NULL; k++)
            ck_assert_msg(strstr(r.out, more[i].opts[k]) != NULL,
                          "%.900s --help lacks %.900s:\n%.900s", more[i].cmd, more[i].opts[k],
                          r.out);
        char example[64];
        snprintf(example, sizeof(example), "raisectl %s", more[i].cmd);
        ck_assert_msg(strstr(r.out, example) != NULL, "%.900s --help has no example:\n%.900s",
                      more[i].cmd, r.out);
        rc_free(&r);
    }

    /* "raisectl --help: every command with an example" */
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        char example[64];
        snprintf(example, sizeof(example), "raisectl %s ", commands[i]);
        int found = strstr(top, example) != NULL;
        snprintf(example, sizeof(example), "raisectl %s\n", commands[i]);
        found |= strstr(top, example) != NULL;
        ck_assert_msg(found, "--help has no example of %.900s:\n%.900s", commands[i], top);
    }
    free(top);
}
END_TEST

/* ---- 6. the manager's and the admin's records, and --json */

START_TEST(records_and_json)
{
    login(&w.mgr);
    char ref[64];
    snprintf(ref, sizeof(ref), "CLI-%d", run_id());
    struct rc r = run_as(&w.mgr.h, NULL, NULL,
                         "subjects add --hub %s --reference %s --given-name Sam --family-name "
                         "Lee --dob 2011-04-04 --status in_care --key-worker 'Pat Key' "
                         "--team %s,%s",
                         w.hub, ref, w.police, w.health);
    ck_assert_rc(r, 0, "subjects add");
    const char *uuid = find_uuid(r.out);
    ck_assert_msg(uuid != NULL, "subjects add printed no id: %.900s", r.out);
    char *subject = xstrdup(uuid);
    rc_free(&r);
    char *got = sqlf("SELECT reference || ' ' || status || ' ' || key_worker FROM subjects "
                     "WHERE id = '%s'",
                     subject);
    char want[128];
    snprintf(want, sizeof(want), "%s in_care Pat Key", ref);
    ck_assert_str_eq(got, want);
    free(got);

    r = run_as(&w.mgr.h, NULL, NULL, "subjects show %s --json", subject);
    ck_assert_rc(r, 0, "subjects show --json");
    json_object *o = json_tokener_parse(r.out);
    ck_assert_msg(o != NULL, "subjects show --json: %.900s", r.out);
    ck_assert_str_eq(itest_jstr(o, "reference"), ref);
    ck_assert_int_eq(json_object_array_length(member(o, "team")), 2);
    json_object_put(o);
    rc_free(&r);

    r = run_as(&w.mgr.h, NULL, NULL, "subjects list --q %s", ref);
    ck_assert_rc(r, 0, "subjects list");
    ck_assert_msg(count_lines(r.out, ref) == 1, "subjects list: %.900s", r.out);
    ck_assert_msg(widest_line(r.out) <= 100, "subjects list is %d wide:\n%.900s",
                  widest_line(r.out), r.out);
    rc_free(&r);

    r = run_as(&w.mgr.h, NULL, NULL,
               "meetings schedule --hub %s --title 'CLI RAISE' --at %s --location 'Room 2' "
               "--subjects %s --invite %s",
               w.hub, when(2), subject, w.health);
    ck_assert_rc(r, 0, "meetings schedule");
    uuid = find_uuid(r.out);
    ck_assert_msg(uuid != NULL, "meetings schedule printed no id: %.900s", r.out);
    char path[128];
    snprintf(path, sizeof(path), "/v1/meetings/%s", uuid);
    rc_free(&r);
    o = api(w.mgr.token, "GET", path, NULL, 200);
    ck_assert_str_eq(itest_jstr(o, "title"), "CLI RAISE");
    ck_assert_str_eq(itest_jstr(o, "location"), "Room 2");
    ck_assert_int_eq(json_object_array_length(member(o, "young_people")), 1);
    ck_assert_int_eq(json_object_array_length(member(o, "invited_agencies")), 1);
    json_object_put(o);

    /* the admin adds a user with a password from stdin; that user signs in with it */
    struct home adm;
    home_new(&adm);
    char env[512], name[64];
    snprintf(env, sizeof(env), "RAISE_TOKEN=%s", w.admin);
    snprintf(name, sizeof(name), "%s", itest_unique("cli"));
    r = run_as(&adm, env, "a brand new password\n",
               "users add --username %s --display-name 'Cli User' --agency %s --role "
               "practitioner --password-stdin",
               name, w.health);
    ck_assert_rc(r, 0, "users add --password-stdin");
    ck_assert_msg(find_uuid(r.out) != NULL, "users add printed no id: %.900s", r.out);
    rc_free(&r);
    struct home user;
    home_new(&user);
    r = run_as(&user, NULL, "a brand new password\n", "login --username %s --password-stdin", name);
    ck_assert_rc(r, 0, "login as the new user");
    rc_free(&r);
    r = run_as(&user, NULL, NULL, "whoami");
    ck_assert_rc(r, 0, "whoami as the new user");
    ck_assert_msg(strstr(r.out, name) != NULL && strstr(r.out, "practitioner") != NULL,
                  "whoami: %.900s", r.out);
    rc_free(&r);

    /* users add without --password-stdin prints a generated password once: it works */
    snprintf(env, sizeof(env), "RAISE_TOKEN=%s", w.admin);
    snprintf(name, sizeof(name), "%s", itest_unique("gen"));
    r = run_as(&adm, env, NULL,
               "users add --username %s --display-name 'Gen User' --agency %s --role "
               "practitioner",
               name, w.health);
    ck_assert_rc(r, 0, "users add (generated password)");
    char *pw = line_with(r.out, "password");
    ck_assert_msg(pw != NULL, "users add printed no password: %.900s", r.out);
    const char *colon = strrchr(pw, ' ');
    ck_assert_ptr_nonnull(colon);
    char *given = xasprintf("%s\n", colon + 1);
    rc_free(&r);
    struct home gen;
    home_new(&gen);
    r = run_as(&gen, NULL, given, "login --username %s --password-stdin", name);
    ck_assert_rc(r, 0, "login with the generated password");
    rc_free(&r);
    home_free(&gen);
    free(given);
    free(pw);

    /* the officer's intel list --json is the server's page */
    snprintf(env, sizeof(env), "RAISE_TOKEN=%s", w.officer.token);
    char *item = post_api(&a, w.officer.token, "Listed through the client");
    r = run_as(&adm, env, NULL, "intel list --subject %s --json", w.subject);
    ck_assert_rc(r, 0, "intel list --json");
    o = json_tokener_parse(r.out);
    ck_assert_msg(o != NULL && json_object_array_length(member(o, "items")) == 1 &&
                      json_object_object_get_ex(o, "next", NULL),
                  "intel list --json: %.900s", r.out);
    ck_assert_str_eq(itest_jstr(json_object_array_get_idx(member(o, "items"), 0), "id"), item);
    json_object_put(o);
    rc_free(&r);
    r = run_as(&adm, env, NULL, "intel show %s", item);
    ck_assert_rc(r, 0, "intel show");
    ck_assert_msg(strstr(r.out, "Listed through the client") != NULL &&
                      strstr(r.out, "2B P") != NULL,
                  "intel show lacks the summary or the grading: %.900s", r.out);
    ck_assert_msg(widest_line(r.out) <= 100, "intel show is %d wide:\n%.900s", widest_line(r.out),
                  r.out);
    rc_free(&r);

    /* pages: --limit 1 prints the next cursor under the table; --before it is the next page */
    char *newer = post_api(&a, w.officer.token, "Newer through the client");
    r = run_as(&adm, env, NULL, "intel list --subject %s --limit 1 --json", w.subject);
    ck_assert_rc(r, 0, "intel list --limit 1 --json");
    o = json_tokener_parse(r.out);
    ck_assert_msg(o != NULL && json_object_array_length(member(o, "items")) == 1, "%.900s", r.out);
    ck_assert_str_eq(itest_jstr(json_object_array_get_idx(member(o, "items"), 0), "id"), newer);
    char *next = xstrdup(itest_jstr(o, "next"));
    json_object_put(o);
    rc_free(&r);
    r = run_as(&adm, env, NULL, "intel list --subject %s --limit 1", w.subject);
    ck_assert_rc(r, 0, "intel list --limit 1");
    ck_assert_msg(strstr(r.out, next) != NULL,
                  "intel list --limit 1 does not print next %.900s:\n%.900s", next, r.out);
    ck_assert_msg(widest_line(r.out) <= 100 || count_lines(r.out, next) == 1,
                  "intel list is %d wide:\n%.900s", widest_line(r.out), r.out);
    rc_free(&r);
    r = run_as(&adm, env, NULL, "intel list --subject %s --limit 1 --before %s --json", w.subject,
               next);
    ck_assert_rc(r, 0, "intel list --before");
    o = json_tokener_parse(r.out);
    ck_assert_msg(o != NULL && json_object_array_length(member(o, "items")) == 1, "%.900s", r.out);
    ck_assert_str_eq(itest_jstr(json_object_array_get_idx(member(o, "items"), 0), "id"), item);
    json_object_put(o);
    rc_free(&r);
    free(next);
    free(newer);

    /* a change with --json prints the record; actions show has the history */
    r = run_as(&w.mgr.h, NULL, NULL,
               "actions add --subject %s --owner %s --description 'Refer to CAMHS' --due %s "
               "--json",
               w.subject, w.health, day(3));
    ck_assert_rc(r, 0, "actions add --json");
    o = json_tokener_parse(r.out);
    ck_assert_msg(o != NULL, "actions add --json: %.900s", r.out);
    char *action = xstrdup(itest_jstr(o, "id"));
    ck_assert_str_eq(itest_jstr(o, "description"), "Refer to CAMHS");
    json_object_put(o);
    rc_free(&r);
    snprintf(env, sizeof(env), "RAISE_TOKEN=%s", w.nurse.token);
    r = run_as(&adm, env, NULL, "actions update %s --note 'Referral sent' --json", action);
    ck_assert_rc(r, 0, "actions update --json");
    o = json_tokener_parse(r.out);
    ck_assert_msg(o != NULL, "actions update --json: %.900s", r.out);
    ck_assert_str_eq(itest_jstr(o, "id"), action);
    json_object_put(o);
    rc_free(&r);
    r = run_as(&adm, env, NULL, "actions show %s", action);
    ck_assert_rc(r, 0, "actions show");
    ck_assert_msg(strstr(r.out, "Refer to CAMHS") != NULL && strstr(r.out, "Referral sent"),
                  "actions show lacks the description or the history: %.900s", r.out);
    ck_assert_msg(widest_line(r.out) <= 100, "actions show is %d wide:\n%.900s", widest_line(r.out),
                  r.out);
    rc_free(&r);
    free(action);
    home_free(&adm);
    home_free(&user);
    free(item);
    free(subject);
}
END_TEST

/* ---- 7. a client certificate instead of a token: --cert/--key, RAISE_CERT/RAISE_KEY, the
 * config file; registered with users cert */

START_TEST(client_certificate)
{
    char extra[PATH_MAX + 32];
    snprintf(extra, sizeof(extra), "tls_client_ca = %s/ca.pem\n", itest.certs);
    itest_server_start(&b, extra);
    /* a certificate of our own (the shared client.pem is registered by the identity suite) */
    struct home h;
    home_new(&h);
    char cert[PATH_MAX + 16], key[PATH_MAX + 16];
    snprintf(cert, sizeof(cert), "%s/c.pem", h.dir);
    snprintf(key, sizeof(key), "%s/c.key", h.dir);
    ck_assert_int_eq(itest_sh("cd '%s' && openssl req -new -newkey ec -pkeyopt "
                              "ec_paramgen_curve:P-256 -nodes -keyout c.key -subj /CN=rctl%d "
                              "-out c.csr >/dev/null 2>&1 && openssl x509 -req -in c.csr -CA "
                              "'%s/ca.pem' -CAkey '%s/ca.key' -set_serial %d -days 2 -out c.pem "
                              ">/dev/null 2>&1",
                              h.dir, getpid(), itest.certs, itest.certs, getpid()),
                     0);
    char cmd[PATH_MAX * 2], fp[128] = "";
    snprintf(cmd, sizeof(cmd), "openssl x509 -in '%s' -outform DER | sha256sum | cut -c1-64", cert);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(fgets(fp, sizeof(fp), p));
    pclose(p);
    fp[strcspn(fp, "\n")] = '\0';

    char env[PATH_MAX * 2];
    snprintf(env, sizeof(env), "RAISE_TOKEN=%s\nRAISE_URL=https://127.0.0.1:%d", w.admin, b.port);
    struct rc r = run_as(&h, env, NULL, "users cert %s --fingerprint %s", w.nurse.id, fp);
    ck_assert_rc(r, 0, "users cert");
    rc_free(&r);
    char *n = sqlf("SELECT count(*) FROM user_certificates WHERE fingerprint = '%s'", fp);
    ck_assert_str_eq(n, "1");
    free(n);

    /* no token anywhere: the certificate signs in as the nurse */
    snprintf(env, sizeof(env), "RAISE_URL=https://127.0.0.1:%d", b.port);
    r = run_as(&h, env, NULL, "--cert '%s' --key '%s' whoami", cert, key);
    ck_assert_rc(r, 0, "whoami with --cert and --key");
    ck_assert_msg(strstr(r.out, w.nurse.username) != NULL, "whoami: %.900s", r.out);
    rc_free(&r);
    snprintf(env, sizeof(env), "RAISE_URL=https://127.0.0.1:%d\nRAISE_CERT=%s\nRAISE_KEY=%s",
             b.port, cert, key);
    r = run_as(&h, env, NULL, "whoami");
    ck_assert_rc(r, 0, "whoami with RAISE_CERT and RAISE_KEY");
    ck_assert_msg(strstr(r.out, w.nurse.username) != NULL, "whoami: %.900s", r.out);
    rc_free(&r);
    char conf[PATH_MAX + 32];
    snprintf(conf, sizeof(conf), "%s/raise", h.xdg);
    mkdir(conf, 0700);
    snprintf(conf, sizeof(conf), "%s/raise/config", h.xdg);
    FILE *f = fopen(conf, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "url = https://127.0.0.1:%d\ncert = %s\nkey = %s\n", b.port, cert, key);
    fclose(f);
    r = run_as(&h, "RAISE_URL", NULL, "whoami");
    ck_assert_rc(r, 0, "whoami with cert and key from the config file");
    ck_assert_msg(strstr(r.out, w.nurse.username) != NULL, "whoami: %.900s", r.out);
    rc_free(&r);
    /* without it, nobody is signed in */
    r = run_as(&w.outsider.h, NULL, NULL, "--url https://127.0.0.1:%d whoami", b.port);
    ck_assert_rc(r, 1, "whoami with neither token nor certificate");
    rc_free(&r);
    home_free(&h);
}
END_TEST

/* ---- 8. every other command does what it says, checked behind raisectl's back */

/* raisectl ARGS in home with env_extra; asserts exit 0; returns the first id printed (owned,
 * "" if none). */
static char *ok_id(const struct home *h, const char *env_extra, const char *stdin_text,
                   const char *args)
{
    struct rc r = run_as(h, env_extra, stdin_text, "%s", args);
    ck_assert_rc(r, 0, args);
    const char *id = find_uuid(r.out);
    char *out = xstrdup(id ? id : "");
    rc_free(&r);
    return out;
}

/* raisectl ARGS: asserts exit 0 and that stdout has text; returns nothing. */
static void ok_has(const struct home *h, const char *env_extra, const char *args, const char *text)
{
    struct rc r = run_as(h, env_extra, NULL, "%s", args);
    ck_assert_rc(r, 0, args);
    ck_assert_msg(strstr(r.out, text) != NULL, "raisectl %.900s: no '%.900s' in:\n%.900s", args,
                  text, r.out);
    ck_assert_msg(widest_line(r.out) <= 100, "raisectl %.900s: %d columns wide:\n%.900s", args,
                  widest_line(r.out), r.out);
    rc_free(&r);
}

static void want_sql(const char *want, const char *sql, const char *arg)
{
    char *got = sqlf(sql, arg);
    ck_assert_msg(got != NULL && strcmp(got, want) == 0,
                  "%.900s (%.900s): want '%.900s', got '%.900s'", sql, arg, want,
                  got ? got : "(null)");
    free(got);
}

START_TEST(every_command)
{
    char admin_env[256], nurse_env[256], officer_env[256], args[1024], want[256];
    snprintf(admin_env, sizeof(admin_env), "RAISE_TOKEN=%s", w.admin);
    snprintf(nurse_env, sizeof(nurse_env), "RAISE_TOKEN=%s", w.nurse.token);
    snprintf(officer_env, sizeof(officer_env), "RAISE_TOKEN=%s", w.officer.token);
    struct home *h = &w.mgr.h;
    login(&w.mgr);
    int pid = run_id();

    /* admin: agencies, hubs, users deactivate */
    /* (names that sort first: lists are sorted by name, 50 to a page) */
    snprintf(args, sizeof(args), "agencies add --name Aaa%d --kind education", pid);
    char *edu = ok_id(h, admin_env, NULL, args);
    want_sql("education", "SELECT kind FROM agencies WHERE id = '%s'", edu);
    snprintf(want, sizeof(want), "Aaa%d", pid);
    ok_has(h, admin_env, "agencies list", want);
    snprintf(args, sizeof(args), "hubs add --name Aaa%d --local-authority Testshire", pid);
    char *hub = ok_id(h, admin_env, NULL, args);
    want_sql("Testshire", "SELECT local_authority FROM hubs WHERE id = '%s'", hub);
    ok_has(h, admin_env, "hubs list", want);
    ok_has(h, admin_env, "users list", "admin"); /* by username: admins come first */
    snprintf(args, sizeof(args), "users deactivate %s", w.outsider.id);
    free(ok_id(h, admin_env, NULL, args));
    want_sql("f", "SELECT active FROM users WHERE id = '%s'", w.outsider.id);

    /* the manager: young people */
    snprintf(args, sizeof(args),
             "subjects update %s --status in_care --key-worker 'Jo Key' --team %s,%s,%s", w.subject,
             w.police, w.health, w.housing);
    free(ok_id(h, NULL, NULL, args));
    want_sql("in_care Jo Key", "SELECT status || ' ' || key_worker FROM subjects WHERE id = '%s'",
             w.subject);
    snprintf(args, sizeof(args), "subjects show %s", w.subject);
    ok_has(h, NULL, args, "Jo Key");
    snprintf(args, sizeof(args),
             "subjects add --hub %s --reference TWO-%d --given-name Bo --family-name Two --dob "
             "2012-02-02 --status care_leaver --key-worker Kim --team %s",
             w.hub, pid % 1000000, w.health);
    char *two = ok_id(h, NULL, NULL, args);

    /* meetings */
    snprintf(args, sizeof(args),
             "meetings schedule --hub %s --title 'Every command' --at %s --subjects %s "
             "--invite %s,%s",
             w.hub, when(1), w.subject, w.health, w.police);
    char *mid = ok_id(h, NULL, NULL, args);
    snprintf(args, sizeof(args), "meetings add %s --subjects %s", mid, two);
    free(ok_id(h, NULL, NULL, args));
    want_sql("2", "SELECT count(*) FROM meeting_subjects WHERE meeting_id = '%s'", mid);
    snprintf(args, sizeof(args),
             "meetings attendance %s --attendee 'Jo Bloggs,%s' --attendee 'Al Smith,%s,%s'", mid,
             w.health, w.police, w.officer.id);
    free(ok_id(h, NULL, NULL, args));
    char path[256];
    snprintf(path, sizeof(path), "/v1/meetings/%s", mid);
    json_object *m = api(w.mgr.token, "GET", path, NULL, 200);
    json_object *att = member(m, "attendance");
    ck_assert_msg(att != NULL && json_object_array_length(att) == 2, "attendance: %.900s",
                  json_object_to_json_string(m));
    int with_user = 0;
    for (size_t i = 0; i < 2; i++) {
        json_object *u = member(json_object_array_get_idx(att, i), "user_id");
        with_user += u != NULL && strcmp(json_object_get_string(u), w.officer.id) == 0;
    }
    ck_assert_int_eq(with_user, 1);
    json_object_put(m);
    snprintf(args, sizeof(args),
             "meetings minutes %s --subject %s --worried 'Missing twice' --working-well 'School' "
             "--needs 'Home visit' --decisions 'Refer'",
             mid, w.subject);
    free(ok_id(h, NULL, NULL, args));
    m = api(w.mgr.token, "GET", path, NULL, 200);
    ck_assert_msg(strstr(json_object_to_json_string(m), "Missing twice") != NULL &&
                      strstr(json_object_to_json_string(m), "Home visit") != NULL,
                  "minutes: %.900s", json_object_to_json_string(m));
    json_object_put(m);
    snprintf(args, sizeof(args), "meetings list --hub %s", w.hub);
    ok_has(h, NULL, args, "Every command");
    snprintf(args, sizeof(args), "meetings show %s", mid);
    ok_has(h, NULL, args, "Every command");
    snprintf(args, sizeof(args), "suggest %s --limit 5", w.hub);
    ok_has(h, NULL, args, w.reference);

    /* an action in the meeting; start and close */
    snprintf(args, sizeof(args),
             "actions add --meeting %s --subject %s --owner %s --description 'Home visit' --due %s "
             "--assignee %s",
             mid, w.subject, w.health, day(4), w.nurse.id);
    char *act = ok_id(h, NULL, NULL, args);
    want_sql(mid, "SELECT meeting_id FROM actions WHERE id = '%s'", act);
    want_sql(w.nurse.id, "SELECT assignee_id FROM actions WHERE id = '%s'", act);
    snprintf(args, sizeof(args), "meetings start %s", mid);
    free(ok_id(h, NULL, NULL, args));
    want_sql("started", "SELECT status FROM meetings WHERE id = '%s'", mid);
    snprintf(args, sizeof(args), "meetings close %s", mid);
    free(ok_id(h, NULL, NULL, args));
    want_sql("closed", "SELECT status FROM meetings WHERE id = '%s'", mid);

    /* the action's life */
    snprintf(args, sizeof(args), "actions cannot %s --reason 'No appointments'", act);
    free(ok_id(h, nurse_env, NULL, args));
    want_sql("No appointments", "SELECT blocked_reason FROM actions WHERE id = '%s'", act);
    ok_has(h, nurse_env, "actions list --assignee me", "Home visit");
    snprintf(args, sizeof(args), "actions cancel %s --reason 'Moved away'", act);
    free(ok_id(h, NULL, NULL, args));
    want_sql("cancelled", "SELECT status FROM actions WHERE id = '%s'", act);
    snprintf(args, sizeof(args), "actions reopen %s --reason 'Back' --due %s", act, day(9));
    free(ok_id(h, NULL, NULL, args));
    snprintf(want, sizeof(want), "open %s", day(9));
    want_sql(want, "SELECT status || ' ' || due_date FROM actions WHERE id = '%s'", act);
    snprintf(args, sizeof(args), "actions complete %s --note 'Visited' --evidence CASE-7", act);
    free(ok_id(h, nurse_env, NULL, args));
    want_sql("completed CASE-7",
             "SELECT status || ' ' || evidence_ref FROM actions WHERE id = '%s'", act);
    struct rc r = run_as(h, nurse_env, NULL, "actions summary --json");
    ck_assert_rc(r, 0, "actions summary --json");
    json_object *sum = json_tokener_parse(r.out);
    ck_assert_msg(sum != NULL && member(member(sum, "counts"), "completed") != NULL &&
                      json_object_get_int(member(member(sum, "counts"), "completed")) >= 1,
                  "actions summary --json: %.900s", r.out);
    json_object_put(sum);
    rc_free(&r);
    ok_has(h, nurse_env, "actions summary", "completed");

    /* intelligence from a file, flags overriding it; an idempotency key posts once */
    char body[1024];
    snprintf(body, sizeof(body),
             "{\"subject_id\":\"%s\",\"category\":\"other\",\"summary\":\"From the file\","
             "\"risk_level\":\"low\",\"grading\":{\"source\":1,\"assessment\":\"A\","
             "\"handling\":\"P\"}}",
             w.subject);
    snprintf(args, sizeof(args),
             "intel post --file - --summary 'F%d flag wins' --idempotency-key key-%d", pid, pid);
    r = run_as(h, officer_env, body, "%s", args); /* "now" would differ on the retry */
    ck_assert_rc(r, 2, "intel post --idempotency-key without --occurred-at");
    ck_assert_msg(strstr(r.err, "--occurred-at") != NULL, "stderr: %.900s", r.err);
    rc_free(&r);
    snprintf(args, sizeof(args),
             "intel post --file - --summary 'F%d flag wins' --idempotency-key key-%d "
             "--occurred-at 2026-01-02T03:04:05Z",
             pid, pid);
    char *i1 = ok_id(h, officer_env, body, args);
    char *i2 = ok_id(h, officer_env, body, args);
    ck_assert_str_eq(i1, i2);
    snprintf(want, sizeof(want), "F%d flag wins", pid);
    want_sql(want, "SELECT summary FROM intelligence WHERE id = '%s'", i1);
    snprintf(args, sizeof(args),
             "SELECT count(*) FROM intelligence WHERE summary = 'F%d flag wins'", pid);
    char *n = itest_sql_value(args);
    ck_assert_str_eq(n, "1");
    free(n);
    snprintf(args, sizeof(args), "intel list --subject %s --category other", w.subject);
    snprintf(want, sizeof(want), "F%d", pid);
    ok_has(h, officer_env, args, want);
    snprintf(args, sizeof(args), "intel retract %s --reason 'Wrong young person'", i1);
    free(ok_id(h, officer_env, NULL, args));
    snprintf(path, sizeof(path), "/v1/intelligence/%s", i1);
    json_object *it = api(w.officer.token, "GET", path, NULL, 200);
    ck_assert_str_eq(itest_jstr(member(it, "retracted"), "reason"), "Wrong young person");
    json_object_put(it);

    /* "Lists take --limit N and --before CURSOR": every list (all tried, then reported) */
    static const char *const lists[] = {"agencies list", "hubs list",     "users list",
                                        "actions mine",  "subjects list", "intel list",
                                        "meetings list", "actions list"};
    char *bad = xstrdup("");
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
        const char *env = strncmp(lists[i], "agencies", 8) == 0 ||
                                  strncmp(lists[i], "hubs", 4) == 0 ||
                                  strncmp(lists[i], "users", 5) == 0
                              ? admin_env
                              : nurse_env;
        r = run_as(h, env, NULL, "%s --limit 1 --json", lists[i]);
        json_object *page = r.status == 0 ? json_tokener_parse(r.out) : NULL;
        if (page == NULL || json_object_array_length(member(page, "items")) > 1) {
            char *more = xasprintf("%s\n  raisectl %s --limit 1 --json: exit %d: %.300s%.300s", bad,
                                   lists[i], r.status, r.err, r.out);
            free(bad);
            bad = more;
        }
        json_object_put(page);
        rc_free(&r);
    }
    ck_assert_msg(bad[0] == '\0', "lists that do not take --limit:%.3500s", bad);
    free(bad);

    free(i1);
    free(i2);
    free(act);
    free(mid);
    free(two);
    free(hub);
    free(edu);
}
END_TEST

/* ---- 9. actions mine: overdue first, then by due date */

START_TEST(actions_mine_order)
{
    char body[512], *ids[3];
    int due[3] = {10, 2, 1};
    for (int i = 0; i < 3; i++) {
        snprintf(body, sizeof(body),
                 "{\"subject_id\":\"%s\",\"owner_agency_id\":\"%s\",\"description\":\"Mine "
                 "%d\",\"due_date\":\"%s\"}",
                 w.subject, w.health, i, day(due[i]));
        json_object *o = api(w.mgr.token, "POST", "/v1/actions", body, 201);
        ids[i] = xstrdup(itest_jstr(o, "id"));
        json_object_put(o);
    }
    char sql[256];
    snprintf(sql, sizeof(sql), "UPDATE actions SET due_date = current_date - 3 WHERE id = '%s'",
             ids[2]);
    ck_assert_int_eq(itest_sql(sql), 0); /* overdue now */
    char env[256];
    snprintf(env, sizeof(env), "RAISE_TOKEN=%s", w.nurse.token);
    struct rc r = run_as(&w.nurse.h, env, NULL, "actions mine --json");
    ck_assert_rc(r, 0, "actions mine --json");
    const char *p2 = strstr(r.out, ids[2]), *p1 = strstr(r.out, ids[1]),
               *p0 = strstr(r.out, ids[0]);
    ck_assert_msg(
        p0 && p1 && p2 && p2 < p1 && p1 < p0,
        "actions mine --json: want the overdue one, then due in 2 days, then in 10:\n%.900s",
        r.out);
    rc_free(&r);
    r = run_as(&w.nurse.h, env, NULL, "actions mine");
    ck_assert_rc(r, 0, "actions mine");
    p2 = strstr(r.out, "Mine 2");
    p1 = strstr(r.out, "Mine 1");
    p0 = strstr(r.out, "Mine 0");
    ck_assert_msg(p0 && p1 && p2 && p2 < p1 && p1 < p0, "actions mine: wrong order:\n%.900s",
                  r.out);
    ck_assert_msg(strstr(r.out, "overdue") != NULL, "actions mine does not say overdue:\n%.900s",
                  r.out);
    rc_free(&r);
    for (int i = 0; i < 3; i++)
        free(ids[i]);
}
END_TEST

Suite *raisectl_suite(void)
{
    Suite *s = suite_create("raisectl");
    TCase *tc = tcase_create("raisectl");
    tcase_add_unchecked_fixture(tc, itest_ensure_db, NULL);
    tcase_add_checked_fixture(tc, start, stop);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, three_users_end_to_end);
    tcase_add_test(tc, token_file);
    tcase_add_test(tc, feed_reconnects);
    tcase_add_test(tc, feed_since_json_and_sign_out);
    tcase_add_test(tc, feed_shows_the_whole_reference);
    tcase_add_test(tc, exit_codes);
    tcase_add_test(tc, help);
    tcase_add_test(tc, records_and_json);
    tcase_add_test(tc, client_certificate);
    tcase_add_test(tc, every_command);
    tcase_add_test(tc, actions_mine_order);
    suite_add_tcase(s, tc);
    return s;
}
