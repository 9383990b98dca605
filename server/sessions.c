/* POST /v1/sessions (sign in), DELETE /v1/sessions/current (sign out), GET /v1/me.
 *
 * Sign-in: validate -> one query (the account and the failure counts for the username and
 * the client address; under the limits the attempt is counted as a failure there and then)
 * -> 429 if throttled -> scrypt on a helper thread (against a dummy hash for unknown users,
 * so both take the same time) -> one statement that creates the session and takes the
 * attempt's failure back (or keeps it) and writes the audit row. */
#include "audit.h"
#include "auth.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "password.h"
#include "problem.h"
#include "routes.h"
#include "util.h"
#include "xmalloc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Throttling policy (docs/api.md): within 15 minutes, 5 failures for one username or 20
 * from one client address lock further attempts until the oldest failure ages out. */
#define FAILS_PER_USER 5
#define FAILS_PER_ADDR 20

static const struct json_field login_fields[] = {
    {"username", JK_STRING, 1, 1, 64, NULL},
    {"password", JK_STRING, 1, 1, 1024, NULL},
    {"cookie", JK_BOOL, 0, 0, 0, NULL},
};
#define NLOGIN_FIELDS (sizeof(login_fields) / sizeof(login_fields[0]))

struct login {
    char *username, *password, *addr, *hash; /* owned */
    char user_id[37];
    char addr_row[32]; /* where the attempt is counted for its address (a tid) */
    int active;
    int cookie; /* also set the session cookie (a browser page) */
    int ok;     /* set by the helper thread */
    struct http_req *r;
};

static void login_free(void *p)
{
    struct login *l = p;
    if (l == NULL)
        return;
    free(l->username);
    if (l->password != NULL)
        explicit_bzero(l->password, strlen(l->password));
    free(l->password);
    free(l->addr);
    free(l->hash);
    free(l);
}

/* Failure counts for the username and the address (before this attempt), how long until
 * both would be under their limits again, the account, and where this attempt is counted
 * for its address: under both limits, the attempt is counted as a failure at once, before
 * its password is checked, under a lock per username and per address, so attempts sent
 * together cannot all slip under the limit (sql/011). A right password takes it back. */
static const char lookup_sql[] =
    "SELECT user_fails, addr_fails, wait, user_id, password_hash, active, addr_row "
    "FROM raise_login_attempt($1, $2, $3, $4)";
#define STR(x)  #x
#define XSTR(x) STR(x)

/* The session is made only if the account is as the password was checked against: still
 * active, with the same password hash. A new password or a deactivation revokes the sessions
 * that exist when it commits; a sign-in whose scrypt ran across that moment would otherwise
 * have made one after, valid for 24 hours (found in review). No row: 401.
 * The check is an update of the user's row (to itself), so the two cannot pass each other:
 * a sign-in that meets a PATCH in progress waits for it and then checks the row it left;
 * a PATCH that meets a sign-in finds the row changed since its statement began and runs
 * again (user_patched, admin.c), and then revokes the session the sign-in made. */
/* clang-format off */
static const char success_sql[] =
    "WITH ok AS (UPDATE users SET updated_at = updated_at "
    "            WHERE id = $1 AND active AND password_hash = $5 RETURNING id), "
    "s AS (INSERT INTO sessions (user_id, token_hash, expires_at) "
    "           SELECT id, decode($2, 'hex'), now() + interval '24 hours' FROM ok "
    "           RETURNING id, last_seen, expires_at), "
    "clear AS (DELETE FROM login_failures WHERE key = 'user:' || $3 AND EXISTS (SELECT 1 FROM s)), "
    "mine AS (DELETE FROM login_failures WHERE key = 'addr:' || $6 AND ctid = $7::tid "
    "         AND EXISTS (SELECT 1 FROM s)), "
        /* the context was made before anyone was signed in: the row names who now is */
        /* refused because the account changed meanwhile: audited as denied, like any refusal */
        AUDIT_CTE("($4::jsonb || (SELECT jsonb_build_object('user_id', u.id, 'agency_id', "
                  "u.agency_id, 'role', u.role) FROM users u WHERE u.id = $1))",
                  "CASE WHEN EXISTS (SELECT 1 FROM s) THEN 'session.create' "
                  "ELSE 'session.create.account_changed' END",
                  "CASE WHEN EXISTS (SELECT 1 FROM s) THEN 'ok' ELSE 'denied' END", "'session'",
                  "(SELECT id::text FROM s)", "NULL", "NULL", "")
    " SELECT to_char(least(s.last_seen + " AUTH_IDLE_EXPIRY ", s.expires_at) AT TIME ZONE 'UTC', "
    "               'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
    "       to_char(s.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
    "       u.id, u.username, u.display_name, u.role, u.agency_id, a.name, a.kind, "
    "       " AUTH_MANAGED_HUBS("u") ", s.id, "
    "       ceil(extract(epoch FROM s.expires_at - now()))::int "
    "FROM s, users u JOIN agencies a ON "
        "a.id = u.agency_id, (SELECT count(*) FROM audit) x WHERE u.id = $1";
/* clang-format on */

/* clang-format off */
/* The failure itself was counted by the lookup. Failures older than a day go: this
 * username's and address's (old), and the 100 oldest of any other key (stale: found by the
 * index on at, sql/014, and deleted by ctid, a TID scan; the two never name one row), so
 * keys that never fail again do not stay for ever. */
static const char failure_sql[] =
    "WITH old AS (DELETE FROM login_failures WHERE key IN ('user:' || $1, 'addr:' || $2) "
    "        AND at < now() - interval '1 day'), "
    "stale AS (DELETE FROM login_failures WHERE ctid = ANY (ARRAY(SELECT ctid FROM "
    "        login_failures WHERE at < now() - interval '1 day' AND key <> ALL (ARRAY['user:' "
    "        || $1, 'addr:' || $2]) ORDER BY at LIMIT 100))), "
        AUDIT_CTE("$3", "$4", "'denied'", "'session'", "NULL", "NULL", "NULL", "")
    " SELECT count(*) FROM audit";
/* clang-format on */

/* A hash with the real parameters, for unknown users: the same work either way. */
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;
static char *dummy_hash;

static void make_dummy(void)
{
    dummy_hash = password_hash("not a real password, only for timing");
}

static void verify_run(void *p)
{
    struct login *l = p;
    pthread_once(&dummy_once, make_dummy);
    int match = password_verify(l->password, l->hash ? l->hash : dummy_hash);
    l->ok = match && l->hash != NULL && l->active;
}

/* The audit context of a sign-in names the username tried, not a signed-in user. */
static char *login_context(struct http_req *r, const char *username)
{
    char *base = audit_context(r);
    json_object *o = json_tokener_parse(base);
    free(base);
    json_object_object_add(o, "username", json_object_new_string(username));
    char *s = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return s;
}

static void failed_recorded(struct http_req *r, enum db_status st, PGresult *res)
{
    struct login *l = r->handler_data;
    r->handler_data = NULL;
    r->handler_free = NULL;
    login_free(l);
    if (st != DB_OK) {
        http_reply_db_error(r, res);
        return;
    }
    http_add_header(r, "WWW-Authenticate", "Bearer realm=\"raise\"");
    http_reply_error(r, 401, "the username or password is not right");
}

/* A new session between its INSERT and the reply. */
struct made {
    char *token; /* owned */
    int cookie;
};

static void made_free(void *p)
{
    struct made *m = p;
    if (m == NULL)
        return;
    explicit_bzero(m->token, strlen(m->token));
    free(m->token);
    free(m);
}

/* Set-Cookie for a browser page: the token itself, for as long as the session can live. */
static void set_cookie(struct http_req *r, const char *token, const char *max_age)
{
    char v[LIMIT_TOKEN_MAX + 128];
    snprintf(v, sizeof(v), "%s=%s; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=%s",
             AUTH_COOKIE, token, max_age);
    http_add_header(r, "Set-Cookie", v);
    explicit_bzero(v, sizeof(v));
}

static void session_made(struct http_req *r, enum db_status st, PGresult *res)
{
    struct made *m = r->handler_data;
    r->handler_data = NULL;
    if (st == DB_OK && PQntuples(res) == 0) { /* the password or the account changed meanwhile */
        made_free(m);
        http_add_header(r, "WWW-Authenticate", "Bearer realm=\"raise\"");
        http_reply_error(r, 401, "the username or password is not right");
        return;
    }
    if (st != DB_OK || PQntuples(res) != 1) {
        made_free(m);
        http_reply_db_error(r, res);
        return;
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "token", json_object_new_string(m->token));
    json_object_object_add(o, "expires_at", json_object_new_string(PQgetvalue(res, 0, 0)));
    json_object_object_add(o, "absolute_expires_at", json_object_new_string(PQgetvalue(res, 0, 1)));
    struct auth_user *u = auth_user_from_row(res, 0, 2);
    if (m->cookie) {
        u->via = AUTH_VIA_COOKIE;
        auth_csrf_token(m->token, u->csrf);
        json_object_object_add(o, "csrf_token", json_object_new_string(u->csrf));
        set_cookie(r, m->token, PQgetvalue(res, 0, 11));
    }
    json_object_object_add(o, "user", auth_user_json(u));
    auth_user_free(u);
    made_free(m);
    http_reply_json(r, 201, o);
}

static void verify_done(void *p)
{
    struct login *l = p;
    struct http_req *r = l->r;
    if (!l->ok) {
        char *ctx = login_context(r, l->username);
        const char *action = l->hash == NULL ? "session.create.unknown_user"
                             : !l->active    ? "session.create.inactive"
                                             : "session.create.bad_password";
        const char *params[] = {l->username, l->addr, ctx, action};
        r->handler_data = l;
        r->handler_free = login_free; /* if r ends first (client gone, database down) */
        http_query(r, failure_sql, 4, params, failed_recorded);
        free(ctx);
        return;
    }
    unsigned char raw[32];
    char digest[65];
    if (util_random(raw, sizeof(raw)) < 0) {
        login_free(l);
        http_reply_error(r, 500, "cannot make a session token");
        return;
    }
    struct made *m = xcalloc(1, sizeof(*m));
    m->token = util_base64url(raw, sizeof(raw));
    m->cookie = l->cookie;
    auth_token_hash(m->token, digest);
    char *ctx = login_context(r, l->username);
    const char *params[] = {l->user_id,
                            digest,
                            l->username,
                            ctx,
                            l->hash,
                            l->addr,
                            l->addr_row[0] ? l->addr_row : NULL};
    r->handler_data = m;
    r->handler_free = made_free;
    http_query(r, success_sql, 7, params, session_made);
    free(ctx);
    login_free(l);
}

/* A refused attempt is a sign-in failure too: it is audited, but not counted (or a locked
 * account could never unlock). */
/* clang-format off */
static const char throttled_sql[] =
    "WITH "
        AUDIT_CTE("$1", "'session.create.throttled'", "'denied'", "'session'", "NULL", "NULL",
                  "NULL", "")
    " SELECT count(*) FROM audit";
/* clang-format on */

static void throttled(struct http_req *r, enum db_status st, PGresult *res)
{
    int wait = (int)(long)r->handler_data;
    if (st != DB_OK) {
        http_reply_db_error(r, res);
        return;
    }
    struct problem *p = problem_new(429, "too many failed sign-ins; try again later");
    problem_set_retry_after(p, wait);
    http_reply_problem(r, p);
}

static void looked_up(struct http_req *r, enum db_status st, PGresult *res)
{
    struct login *l = r->handler_data;
    r->handler_data = NULL;
    r->handler_free = NULL;
    if (st != DB_OK) {
        login_free(l);
        http_reply_db_error(r, res);
        return;
    }
    long ufail = atol(PQgetvalue(res, 0, 0)), afail = atol(PQgetvalue(res, 0, 1));
    if (ufail >= FAILS_PER_USER || afail >= FAILS_PER_ADDR) {
        int wait = atoi(PQgetvalue(res, 0, 2));
        log_warn("request %s: sign-in throttled", r->id);
        char *ctx = login_context(r, l->username);
        const char *params[] = {ctx};
        r->handler_data = (void *)(long)(wait > 0 ? wait : 1);
        login_free(l);
        http_query(r, throttled_sql, 1, params, throttled);
        free(ctx);
        return;
    }
    snprintf(l->addr_row, sizeof(l->addr_row), "%s", PQgetvalue(res, 0, 6));
    if (!PQgetisnull(res, 0, 3)) {
        snprintf(l->user_id, sizeof(l->user_id), "%s", PQgetvalue(res, 0, 3));
        l->hash = xstrdup(PQgetvalue(res, 0, 4));
        l->active = strcmp(PQgetvalue(res, 0, 5), "t") == 0;
    }
    l->r = r;
    http_work(r, verify_run, verify_done, l, login_free);
}

void sessions_create(struct http_req *r)
{
    size_t len;
    const char *body = http_body(r, &len);
    struct problem *p = NULL;
    json_object *o = json_parse_body(body, len, &p);
    if (o == NULL) {
        http_reply_problem(r, p);
        return;
    }
    p = problem_new(422, "the sign-in request is not valid");
    if (json_validate(o, login_fields, NLOGIN_FIELDS, p) > 0) {
        json_object_put(o);
        http_reply_problem(r, p);
        return;
    }
    problem_free(p);
    struct login *l = xcalloc(1, sizeof(*l));
    l->username = xstrdup(json_str(o, "username"));
    l->password = xstrdup(json_str(o, "password"));
    char key[64];
    util_addr_key(http_client_addr(r), key, sizeof(key)); /* an IPv6 client: its /64 */
    l->addr = xstrdup(key);
    json_object *cookie = NULL;
    l->cookie = json_object_object_get_ex(o, "cookie", &cookie) && json_object_get_boolean(cookie);
    json_object_put(o);
    const char *params[] = {l->username, l->addr, XSTR(FAILS_PER_USER), XSTR(FAILS_PER_ADDR)};
    /* freed with r if r ends before the answer (the client goes, the database is lost):
     * the password with it (found in review: it leaked) */
    r->handler_data = l;
    r->handler_free = login_free;
    http_query(r, lookup_sql, 4, params, looked_up);
}

/* ---- DELETE /v1/sessions/current: the account.changed event ends the session's open
 * streams at once (stream.c). */

/* clang-format off */
static const char revoke_sql[] =
    "WITH s AS (UPDATE sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL "
    "           RETURNING id, user_id), "
    "ev AS (INSERT INTO event_queue (type, record_id) SELECT 'account.changed', user_id FROM s), "
        AUDIT_CTE("$2", "'session.revoke'", "'ok'", "'session'", "s.id::text", "NULL", "NULL",
                  ", s")
    " SELECT count(*) FROM audit";
/* clang-format on */

static void revoked(struct http_req *r, enum db_status st, PGresult *res)
{
    if (st != DB_OK) {
        http_reply_db_error(r, res);
        return;
    }
    if (r->user->via == AUTH_VIA_COOKIE)
        http_add_header(r, "Set-Cookie", AUTH_COOKIE_CLEAR);
    http_reply(r, 204, "application/json; charset=utf-8", NULL);
}

void sessions_delete(struct http_req *r)
{
    if (r->user->session_id[0] == '\0') {
        http_reply_error(r, 409, "signed in by client certificate: there is no session to end");
        return;
    }
    char *ctx = audit_context(r);
    const char *params[] = {r->user->session_id, ctx};
    http_query(r, revoke_sql, 2, params, revoked);
    free(ctx);
}

/* ---- GET /v1/me: from the authenticated user, no further query. */

void me_get(struct http_req *r)
{
    http_reply_json(r, 200, auth_user_json(r->user));
}
