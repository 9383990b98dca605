#define _GNU_SOURCE
#include "harness.h"

#include "xmalloc.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct itest_env itest;

void itest_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int itest_sh(const char *fmt, ...)
{
    char *cmd = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&cmd, fmt, ap) < 0)
        abort();
    va_end(ap);
    int st = system(cmd);
    free(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int itest_sql(const char *sql)
{
    char path[PATH_MAX + 48];
    snprintf(path, sizeof(path), "%s/sql.%d.%ld", itest.dir, getpid(), (long)syscall(SYS_gettid));
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(sql, f);
    fclose(f);
    int rc = itest_sh("psql -X -q -v ON_ERROR_STOP=1 '%s' -f '%s' >/dev/null 2>&1", itest.conninfo,
                      path);
    unlink(path);
    return rc;
}

/* Requests queue their events and audit rows; the server's sequencer moves them into events
 * and audit_log a moment after the request (sql/007). A check reads once the queues are
 * empty (up to 5 s: if the sequencer does not run, the rows are missing and the check
 * fails). */
static const char sequenced_sql[] =
    "DO $$ BEGIN FOR i IN 1..500 LOOP EXIT WHEN NOT EXISTS (SELECT 1 FROM event_queue) AND "
    "NOT EXISTS (SELECT 1 FROM audit_queue); PERFORM pg_sleep(0.01); END LOOP; END $$;\n";

char *itest_sql_value(const char *sql)
{
    char path[PATH_MAX + 48], cmd[PATH_MAX * 2 + 512];
    snprintf(path, sizeof(path), "%s/sql.%d.%ld", itest.dir, getpid(), (long)syscall(SYS_gettid));
    FILE *f = fopen(path, "w");
    fputs(sequenced_sql, f);
    fputs(sql, f);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "psql -X -q -tA '%s' -f '%s' 2>/dev/null", itest.conninfo, path);
    FILE *p = popen(cmd, "r");
    char line[4096];
    char *out = NULL;
    if (p != NULL && fgets(line, sizeof(line), p) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        out = xstrdup(line);
    }
    if (p != NULL)
        pclose(p);
    unlink(path);
    return out;
}

long itest_metric(const struct itest_server *s, const char *name)
{
    struct https_response m = {0};
    itest_request(s, "GET", "/metrics", NULL, NULL, &m);
    char key[96];
    snprintf(key, sizeof(key), "\n%s ", name);
    const char *at = m.body != NULL ? strstr(m.body, key) : NULL;
    ck_assert_msg(at != NULL, "%s is not in /metrics", name);
    long v = atol(at + strlen(key));
    https_response_clear(&m);
    return v;
}

int itest_wait_subscribers(const struct itest_server *s, int want, int timeout_ms)
{
    char line[64];
    snprintf(line, sizeof(line), "raise_stream_subscribers %d\n", want);
    for (int waited = 0; waited < timeout_ms; waited += 100) {
        struct https_response m = {0};
        itest_request(s, "GET", "/metrics", NULL, NULL, &m);
        int ok = m.body != NULL && strstr(m.body, line) != NULL;
        https_response_clear(&m);
        if (ok)
            return 1;
        itest_sleep_ms(100);
    }
    return 0;
}

int itest_file_contains(const char *path, const char *text)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, text) != NULL;
}

/* A free TCP port below 32768 for PostgreSQL (it cannot take port 0). */
static int free_port(void)
{
    unsigned seed = (unsigned)getpid() ^ (unsigned)time(NULL);
    for (int tries = 0; tries < 200; tries++) {
        int port = 20000 + (int)(rand_r(&seed) % 12000);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
        close(fd);
        if (ok)
            return port;
    }
    return -1;
}

void itest_global_setup(void)
{
    snprintf(itest.dir, sizeof(itest.dir), "%s/itest/%d", RAISE_BUILD_DIR, getpid());
    snprintf(itest.pgdir, sizeof(itest.pgdir), "%s/pg", itest.dir);
    snprintf(itest.certs, sizeof(itest.certs), "%s/certs", itest.dir);
    if (itest_sh("mkdir -p '%s' && chmod 755 '%s/..' '%s'", itest.dir, itest.dir, itest.dir) != 0)
        abort();
    itest.pg_port = free_port();
    if (itest_sh("'%s/scripts/pgcluster' init '%s' %d >'%s/pg-init.log' 2>&1 && "
                 "'%s/scripts/pgcluster' start '%s' >>'%s/pg-init.log' 2>&1",
                 RAISE_SOURCE_DIR, itest.pgdir, itest.pg_port, itest.dir, RAISE_SOURCE_DIR,
                 itest.pgdir, itest.dir) != 0 ||
        itest_sh("'%s/scripts/dev-certs' '%s'", RAISE_SOURCE_DIR, itest.certs) != 0) {
        fprintf(stderr, "itest: cannot set up the cluster or certificates (see %s)\n", itest.dir);
        itest_sh("cat '%s/pg-init.log' >&2", itest.dir);
        abort();
    }
    snprintf(itest.conninfo, sizeof(itest.conninfo),
             "host=%s/run port=%d dbname=raise user=postgres", itest.pgdir, itest.pg_port);
    if (itest_sh("RAISE_DATABASE_URL='%s' '%s' migrate >'%s/migrate.log' 2>&1", itest.conninfo,
                 RAISED_BIN, itest.dir) != 0) {
        itest_sh("cat '%s/migrate.log' >&2", itest.dir);
        abort();
    }
}

void itest_global_teardown(void)
{
    itest_sh("'%s/scripts/pgcluster' stop '%s' >/dev/null 2>&1", RAISE_SOURCE_DIR, itest.pgdir);
    if (getenv("ITEST_KEEP") == NULL)
        itest_sh("rm -rf '%s'", itest.dir);
}

void itest_ensure_db(void)
{
    itest_sh("'%s/scripts/pgcluster' start '%s' >/dev/null 2>&1", RAISE_SOURCE_DIR, itest.pgdir);
}

static int read_port(const char *path)
{
    FILE *f = fopen(path, "r");
    int port = 0;
    if (f == NULL)
        return 0;
    if (fscanf(f, "%d", &port) != 1)
        port = 0;
    fclose(f);
    return port;
}

void itest_server_start(struct itest_server *s, const char *extra)
{
    static int seq;
    memset(s, 0, sizeof(*s));
    seq++;
    snprintf(s->conf, sizeof(s->conf), "%s/raised-%d-%d.conf", itest.dir, getpid(), seq);
    snprintf(s->log, sizeof(s->log), "%s/raised-%d-%d.log", itest.dir, getpid(), seq);
    snprintf(s->port_file, sizeof(s->port_file), "%s/raised-%d-%d.port", itest.dir, getpid(), seq);
    FILE *f = fopen(s->conf, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "listen = 127.0.0.1:0\ndatabase_url = %s\ntls_cert = %s/server.pem\n"
            "tls_key = %s/server.key\nport_file = %s\nworkers = 2\ndb_pool_size = 2\n"
            "log_level = info\n%s",
            itest.conninfo, itest.certs, itest.certs, s->port_file, extra ? extra : "");
    fclose(f);
    unlink(s->port_file);
    s->pid = fork();
    ck_assert_int_ge(s->pid, 0);
    if (s->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a failed test */
        int fd = open(s->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(RAISED_BIN, "raised", "--config", s->conf, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 300 && s->port == 0; i++) {
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            itest_sh("cat '%s' >&2", s->log);
            ck_abort_msg("raised exited during start-up (log above)");
        }
        s->port = read_port(s->port_file);
        if (s->port == 0)
            itest_sleep_ms(20);
    }
    ck_assert_msg(s->port > 0, "raised did not write its port file");
    /* ready: its pool has connected (/healthz 200), as a load balancer would wait for. A test
     * that starts it with the database down gets on after 5 s. */
    struct https_opts o = itest_opts(s);
    for (int i = 0; i < 250; i++) {
        struct https_response r = {0};
        char *cause = NULL;
        int rc = https_fetch(&o, "GET", "/healthz", NULL, NULL, 0, &r, &cause);
        int up = rc == 0 && r.status == 200;
        https_response_clear(&r);
        free(cause);
        if (up)
            break;
        itest_sleep_ms(20);
    }
}

/* A sanitizer build's server reports memory errors, leaks (at exit) and undefined behaviour
 * in its log: any such report fails the test that stopped it. */
static void check_sanitizer_report(const struct itest_server *s)
{
    if (itest_sh("grep -q -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' '%s'", s->log) == 0) {
        itest_sh("grep -n -A 40 -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' '%s' | "
                 "head -n 80 >&2",
                 s->log);
        ck_abort_msg("raised's log %s has a sanitizer report (above)", s->log);
    }
}

int itest_server_stop(struct itest_server *s, int sig, int timeout_s)
{
    int st;
    if (s->pid <= 0)
        return -1;
    kill(s->pid, sig);
    for (int i = 0; i < timeout_s * 50; i++) {
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            s->pid = 0;
            check_sanitizer_report(s);
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        itest_sleep_ms(20);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &st, 0);
    s->pid = 0;
    return -1;
}

struct https_opts itest_opts(const struct itest_server *s)
{
    static _Thread_local char ca[PATH_MAX + 16]; /* tests post from several threads */
    snprintf(ca, sizeof(ca), "%s/ca.pem", itest.certs);
    struct https_opts o = {
        .host = "127.0.0.1", .port = s->port, .ca_file = ca, .timeout_ms = 15000};
    return o;
}

void itest_request(const struct itest_server *s, const char *method, const char *path,
                   const char *const *headers, const char *body, struct https_response *r)
{
    struct https_opts o = itest_opts(s);
    char *cause = NULL;
    int rc = https_fetch(&o, method, path, headers, body, body ? strlen(body) : 0, r, &cause);
    ck_assert_msg(rc == 0, "%s %s: %s", method, path, cause ? cause : "?");
}

/* ---- identity helpers */

#include <json-c/json.h>

const char *itest_unique(const char *prefix)
{
    static char buf[8][96];
    static int slot, seq;
    char *b = buf[slot++ % 8];
    snprintf(b, 96, "%s%d-%d-%ld", prefix, getpid(), ++seq, (long)time(NULL) % 100000);
    return b;
}

void itest_call(const struct itest_server *s, const char *token, const char *method,
                const char *path, const char *body, struct https_response *r)
{
    char auth[512];
    const char *h[3] = {NULL, NULL, NULL};
    int n = 0;
    if (token != NULL) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        h[n++] = auth;
    }
    if (body != NULL)
        h[n++] = "Content-Type: application/json";
    itest_request(s, method, path, h, body, r);
}

json_object *itest_json(const struct https_response *r)
{
    json_object *o = json_tokener_parse(r->body);
    ck_assert_msg(o != NULL, "not JSON (status %d): %s", r->status, r->body);
    return o;
}

const char *itest_jstr(json_object *o, const char *key)
{
    json_object *v;
    ck_assert_msg(json_object_object_get_ex(o, key, &v) && v != NULL, "no %s in %s", key,
                  json_object_to_json_string(o));
    return json_object_get_string(v);
}

void itest_assert_problem(const struct https_response *r, int status, const char *field)
{
    ck_assert_msg(r->status == status, "want %d, got %d: %s", status, r->status, r->body);
    const char *ct = https_response_header(r, "Content-Type");
    ck_assert_msg(ct && strcmp(ct, "application/problem+json") == 0, "content type %s", ct);
    json_object *o = itest_json(r), *errs, *v;
    ck_assert(json_object_object_get_ex(o, "status", &v) && json_object_get_int(v) == status);
    ck_assert(strncmp(itest_jstr(o, "type"), "urn:raise:problem:", 18) == 0);
    if (field != NULL) {
        int found = 0;
        ck_assert_msg(json_object_object_get_ex(o, "errors", &errs), "no errors: %s", r->body);
        for (size_t i = 0; i < json_object_array_length(errs); i++)
            found |= strcmp(itest_jstr(json_object_array_get_idx(errs, i), "field"), field) == 0;
        ck_assert_msg(found, "field %s not named in %s", field, r->body);
    }
    json_object_put(o);
}

char *itest_login(const struct itest_server *s, const char *username, const char *password)
{
    char body[512];
    struct https_response r = {0};
    snprintf(body, sizeof(body), "{\"username\":\"%s\",\"password\":\"%s\"}", username, password);
    itest_call(s, NULL, "POST", "/v1/sessions", body, &r);
    ck_assert_msg(r.status == 201, "sign-in %s: %d %s", username, r.status, r.body);
    json_object *o = itest_json(&r);
    char *token = xstrdup(itest_jstr(o, "token"));
    json_object_put(o);
    https_response_clear(&r);
    return token;
}

char *itest_new_admin(const struct itest_server *s)
{
    const char *name = itest_unique("admin");
    char cmd[PATH_MAX * 2], line[256], *password = NULL;
    snprintf(cmd, sizeof(cmd),
             "RAISE_DATABASE_URL='%s' '%s' create-admin --username '%s' --agency-name "
             "'Admin agency' 2>&1",
             itest.conninfo, RAISED_BIN, name);
    FILE *p = popen(cmd, "r");
    while (p != NULL && fgets(line, sizeof(line), p) != NULL)
        if (strncmp(line, "password: ", 10) == 0) {
            line[strcspn(line, "\n")] = '\0';
            password = xstrdup(line + 10);
        }
    if (p != NULL)
        pclose(p);
    ck_assert_msg(password != NULL, "create-admin failed");
    char *token = itest_login(s, name, password);
    free(password);
    return token;
}

char *itest_create(const struct itest_server *s, const char *token, const char *path,
                   const char *body)
{
    struct https_response r = {0};
    itest_call(s, token, "POST", path, body, &r);
    ck_assert_msg(r.status == 201, "POST %s: %d %s", path, r.status, r.body);
    json_object *o = itest_json(&r);
    char *id = xstrdup(itest_jstr(o, "id"));
    json_object_put(o);
    https_response_clear(&r);
    return id;
}

char *itest_new_agency(const struct itest_server *s, const char *admin, const char *kind)
{
    char body[256];
    snprintf(body, sizeof(body), "{\"name\":\"%s\",\"kind\":\"%s\"}", itest_unique("Agency "),
             kind);
    return itest_create(s, admin, "/v1/agencies", body);
}

char *itest_new_hub(const struct itest_server *s, const char *admin)
{
    char body[256];
    snprintf(body, sizeof(body), "{\"name\":\"%s\",\"local_authority\":\"Testshire\"}",
             itest_unique("Hub "));
    return itest_create(s, admin, "/v1/hubs", body);
}

char *itest_new_user(const struct itest_server *s, const char *admin, const char *agency_id,
                     const char *role, const char *hub_id, char **user_id)
{
    char body[1024], name[96];
    snprintf(name, sizeof(name), "%s", itest_unique("u"));
    if (hub_id != NULL)
        snprintf(body, sizeof(body),
                 "{\"username\":\"%s\",\"display_name\":\"Test %s\",\"agency_id\":\"%s\","
                 "\"role\":\"%s\",\"password\":\"long enough secret\",\"hub_ids\":[\"%s\"]}",
                 name, role, agency_id, role, hub_id);
    else
        snprintf(body, sizeof(body),
                 "{\"username\":\"%s\",\"display_name\":\"Test %s\",\"agency_id\":\"%s\","
                 "\"role\":\"%s\",\"password\":\"long enough secret\"}",
                 name, role, agency_id, role);
    char *id = itest_create(s, admin, "/v1/users", body);
    if (user_id != NULL)
        *user_id = id;
    else
        free(id);
    return itest_login(s, name, "long enough secret");
}

struct itest_hold {
    pthread_t thread;
    char *sql;
};

static void *hold_run(void *arg)
{
    itest_sql(((struct itest_hold *)arg)->sql);
    return NULL;
}

struct itest_hold *itest_hold_start(const char *tag, const char *sql)
{
    struct itest_hold *h = xcalloc(1, sizeof(*h));
    h->sql = xasprintf("SET application_name = '%s'; %s", tag, sql);
    ck_assert_int_eq(pthread_create(&h->thread, NULL, hold_run, h), 0);
    char *wait = xasprintf("SELECT count(*) FROM pg_stat_activity WHERE application_name = '%s' "
                           "AND query LIKE '%%pg_sleep%%'",
                           tag),
         *n = NULL;
    for (int i = 0; i < 250 && (n == NULL || strcmp(n, "1") != 0); i++) {
        free(n);
        itest_sleep_ms(20);
        n = itest_sql_value(wait);
    }
    ck_assert_msg(n != NULL && strcmp(n, "1") == 0, "%s never reached its pg_sleep", tag);
    free(n);
    free(wait);
    return h;
}

void itest_hold_end(struct itest_hold *h)
{
    pthread_join(h->thread, NULL);
    free(h->sql);
    free(h);
}
