/* Integration test harness: a throwaway PostgreSQL cluster (scripts/pgcluster, initdb into
 * build/itest/<pid>), development certificates, and real raised processes started on port 0
 * with port_file, talked to over real TLS with the project's own client (clients/https.c). */
#ifndef RAISE_HARNESS_H
#define RAISE_HARNESS_H

#include "https.h"

#include <limits.h>
#include <sys/types.h>

struct itest_env {
    char dir[PATH_MAX];   /* build/itest/<pid> */
    char pgdir[PATH_MAX]; /* cluster */
    char certs[PATH_MAX];
    char conninfo[PATH_MAX + 64];
    int pg_port;
};
extern struct itest_env itest;

/* Unchecked fixtures (run in the runner process, inherited by each forked test). */
void itest_global_setup(void);
void itest_global_teardown(void);
/* Per test case: make sure the cluster is running (a test may have stopped it). */
void itest_ensure_db(void);

struct itest_server {
    pid_t pid;
    int port;
    char conf[PATH_MAX];
    char log[PATH_MAX];
    char port_file[PATH_MAX];
};

/* Start raised with the shared config plus extra "key = value\n" lines (may be NULL);
 * waits until the port file appears. Fails the test on error. */
void itest_server_start(struct itest_server *s, const char *extra);
/* Send sig and wait (up to timeout_s) for exit. Returns the exit status, 128+signal if
 * killed by a signal, or -1 on timeout (then it is SIGKILLed). */
int itest_server_stop(struct itest_server *s, int sig, int timeout_s);
/* Client options for the server (CA from the test certificates). */
struct https_opts itest_opts(const struct itest_server *s);
/* One-shot request; fails the test if the transport fails. headers may be NULL. */
void itest_request(const struct itest_server *s, const char *method, const char *path,
                   const char *const *headers, const char *body, struct https_response *r);
/* Run a shell command (formatted); returns its exit status. */
int itest_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Run SQL with psql against the test database; returns exit status. */
int itest_sql(const char *sql);
/* First line of psql -tA output for sql (owned) or NULL. */
char *itest_sql_value(const char *sql);
/* Run sql (statements that take locks, then pg_sleep, then COMMIT) on a thread of its own,
 * and return once it is in its pg_sleep: what it locked stays locked until it commits, for a
 * request sent now to wait for. tag names it (application_name). itest_hold_end waits for it
 * to finish. */
struct itest_hold *itest_hold_start(const char *tag, const char *sql);
void itest_hold_end(struct itest_hold *h);
/* 1 if the file contains the text. */
int itest_file_contains(const char *path, const char *text);
/* Milliseconds sleep. */
void itest_sleep_ms(int ms);
/* A counter or gauge from the server's /metrics (fails the test if it is not there). */
long itest_metric(const struct itest_server *s, const char *name);
/* Wait until the server reports this many open streams (raise_stream_subscribers); 1 if
 * it did within timeout_ms. */
int itest_wait_subscribers(const struct itest_server *s, int want, int timeout_ms);

#endif

/* ---- identity helpers */
struct json_object;
/* A request as a user: token may be NULL; body is JSON (Content-Type set) or NULL. */
void itest_call(const struct itest_server *s, const char *token, const char *method,
                const char *path, const char *body, struct https_response *r);
/* Parse the body as JSON (fails the test otherwise); caller puts it. */
struct json_object *itest_json(const struct https_response *r);
/* A string member (fails the test if absent). */
const char *itest_jstr(struct json_object *o, const char *key);
/* Assert a problem+json reply with this status; returns 1 if field is NULL or named. */
void itest_assert_problem(const struct https_response *r, int status, const char *field);
/* Sign in; returns the token (owned) or fails the test. */
char *itest_login(const struct itest_server *s, const char *username, const char *password);
/* Make a fresh admin with the CLI; returns its token (owned). */
char *itest_new_admin(const struct itest_server *s);
/* POST body to path as token, which must answer 201; the new record's id (owned). */
char *itest_create(const struct itest_server *s, const char *token, const char *path,
                   const char *body);
/* Create an agency (kind), returns its id (owned). */
char *itest_new_agency(const struct itest_server *s, const char *admin, const char *kind);
/* Create a hub; returns its id (owned). */
char *itest_new_hub(const struct itest_server *s, const char *admin);
/* Create a user with role in agency (hub_id for hub managers, may be NULL); returns the
 * user's token after signing in (owned); *user_id (owned) if not NULL. */
char *itest_new_user(const struct itest_server *s, const char *admin, const char *agency_id,
                     const char *role, const char *hub_id, char **user_id);
/* A unique name for this test process. */
const char *itest_unique(const char *prefix);
