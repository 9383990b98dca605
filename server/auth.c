#include "auth.h"

#include "audit.h"
#include "db.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "problem.h"
#include "raise_limits.h"
#include "util.h"
#include "xmalloc.h"

#include <event2/http.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* clang-format off */
/* Columns every lookup returns, in this order. */
#define USER_COLUMNS                                                                               \
    "u.id, u.username, u.display_name, u.role, u.agency_id, a.name, a.kind, "                      \
    AUTH_MANAGED_HUBS("u") " "

/* A session is live until revoked, 24 h after sign-in, or 8 h after its last use. Use is
 * recorded at most once a minute so reads do not each write. */
static const char by_token_sql[] =
    "WITH s AS (SELECT id, user_id, last_seen FROM sessions "
    "           WHERE token_hash = decode($1, 'hex') AND " AUTH_SESSION_LIVE("sessions") "), "
    "touch AS (UPDATE sessions SET last_seen = now() FROM s "
    "          WHERE sessions.id = s.id AND s.last_seen < now() - interval '1 minute') "
    "SELECT " USER_COLUMNS ", s.id "
    "FROM s JOIN users u ON u.id = s.user_id AND u.active "
    "JOIN agencies a ON a.id = u.agency_id";
/* clang-format on */

/* A token that was once a session's (revoked, expired, or its user deactivated), used
 * again: audited against that session's user as session.use, denied, at most once a minute
 * per session (sessions.denied_at, sql/015), so a stolen token tried after sign-out is on
 * record. A token that never was a session writes nothing: guessing costs the guesser an
 * index lookup, not the audit log a row. */
/* clang-format off */
static const char denied_sql[] =
    "WITH dead AS (UPDATE sessions SET denied_at = now() WHERE token_hash = decode($1, 'hex') "
    "  AND (denied_at IS NULL OR denied_at < now() - interval '1 minute') RETURNING id, user_id), "
    AUDIT_CTE_ABOUT("$2", "u", "'session.use'", "'denied'", "'session'", "dead.id::text",
                    "dead JOIN users u ON u.id = dead.user_id")
    " SELECT count(*) FROM audit";
/* clang-format on */

/* A certificate that verified but signs in no one (never registered, or its user is
 * deactivated): audited at most once a minute per certificate (sql/016), about its user if
 * it has one. Only the CA's certificates get this far, so this cannot be used to fill the
 * log. */
/* clang-format off */
static const char cert_denied_sql[] =
    "WITH d AS (INSERT INTO certificate_denials AS cd (fingerprint, at) VALUES ($1, now()) "
    "  ON CONFLICT (fingerprint) DO UPDATE SET at = now() "
    "  WHERE cd.at < now() - interval '1 minute' RETURNING fingerprint), "
    AUDIT_CTE_ABOUT("$2", "u", "'certificate.use'", "'denied'", "'certificate'", "d.fingerprint",
                    "d LEFT JOIN user_certificates uc ON uc.fingerprint = d.fingerprint "
                    "LEFT JOIN users u ON u.id = uc.user_id")
    " SELECT count(*) FROM audit";
/* clang-format on */

static const char by_cert_sql[] = "SELECT " USER_COLUMNS ", '' FROM user_certificates c "
                                  "JOIN users u ON u.id = c.user_id AND u.active "
                                  "JOIN agencies a ON a.id = u.agency_id WHERE c.fingerprint = $1";

void auth_user_free(struct auth_user *u)
{
    if (u == NULL)
        return;
    free(u->hub_ids);
    free(u);
}

void auth_token_hash(const char *token, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    EVP_Digest(token, strlen(token), md, &n, EVP_sha256(), NULL);
    util_hex(md, sizeof(md), out);
}

/* Fixed, versioned: changing it signs every page out of its CSRF token (not its session). */
static const char csrf_label[] = "raised csrf token v1";

void auth_csrf_token(const char *token, char out[65])
{
    unsigned char md[32];
    size_t n = 0;
    if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, token, strlen(token),
                  (const unsigned char *)csrf_label, sizeof(csrf_label) - 1, md, sizeof(md),
                  &n) == NULL ||
        n != sizeof(md)) {
        /* never matches a header: util_equal_ct compares 64 hex characters */
        memset(out, 'x', 64);
        out[64] = '\0';
        return;
    }
    util_hex(md, sizeof(md), out);
}

static void copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

struct auth_user *auth_user_from_row(PGresult *res, int row, int col)
{
    struct auth_user *u = xcalloc(1, sizeof(*u));
    copy(u->id, sizeof(u->id), PQgetvalue(res, row, col + 0));
    copy(u->username, sizeof(u->username), PQgetvalue(res, row, col + 1));
    copy(u->display_name, sizeof(u->display_name), PQgetvalue(res, row, col + 2));
    u->role = role_parse(PQgetvalue(res, row, col + 3));
    copy(u->agency_id, sizeof(u->agency_id), PQgetvalue(res, row, col + 4));
    copy(u->agency_name, sizeof(u->agency_name), PQgetvalue(res, row, col + 5));
    copy(u->agency_kind, sizeof(u->agency_kind), PQgetvalue(res, row, col + 6));
    u->hub_ids = xstrdup(PQgetvalue(res, row, col + 7));
    if (PQnfields(res) > col + 8)
        copy(u->session_id, sizeof(u->session_id), PQgetvalue(res, row, col + 8));
    u->via = u->session_id[0] ? AUTH_VIA_TOKEN : AUTH_VIA_CERTIFICATE;
    return u;
}

static void unauthorized(struct http_req *r, const char *detail)
{
    http_add_header(r, "WWW-Authenticate", "Bearer realm=\"raise\"");
    if (r->auth_csrf[0] != '\0') /* a dead cookie: the browser may as well forget it */
        http_add_header(r, "Set-Cookie", AUTH_COOKIE_CLEAR);
    http_reply_error(r, 401, detail);
}

/* A cookie is sent by the browser whoever made the page that asks, so a request that may
 * change something must also prove it came from a page that was told the CSRF token. */
static int csrf_ok(const struct http_req *r)
{
    if (r->route->method == METHOD_GET) /* and HEAD, which matches GET routes */
        return 1;
    const char *h = http_header(r, "X-CSRF-Token");
    return h != NULL && strlen(h) == 64 && util_equal_ct(h, r->auth_csrf, 64);
}

/* A browser presents a client certificate to a site whoever made the page that asks, as it
 * sends a cookie; a page of another site could then make a request that changes something
 * (a form's POST with no body passes the JSON-only rule). Machine clients send neither
 * header below; a browser sends Origin with every POST and, recent ones, Sec-Fetch-Site. So
 * a request signed in by certificate that may change something is refused when either says
 * it came from a page of another origin. A read too when Sec-Fetch-Site says so (Origin is
 * often missing on a GET): another site's page cannot see the reply, but an <img> of a
 * young person's record would write an audit row saying its holder read it (review). */
static int cert_cross_site(const struct http_req *r)
{
    const char *site = http_header(r, "Sec-Fetch-Site");
    if (site != NULL && strcmp(site, "same-origin") != 0 && strcmp(site, "none") != 0)
        return 1;
    if (r->route->method == METHOD_GET)
        return 0;
    const char *origin = http_header(r, "Origin"), *host = http_header(r, "Host");
    if (origin == NULL)
        return 0;
    return host == NULL || strncasecmp(origin, "https://", 8) != 0 ||
           strcasecmp(origin + 8, host) != 0;
}

static void denied_done(struct http_req *r, enum db_status st, PGresult *res)
{
    if (st != DB_OK)
        log_error("request %s: a dead session's use not audited (%s)", r->id, db_sqlstate(res));
    unauthorized(r, "the credentials are missing, expired or revoked; sign in again");
}

static void looked_up(struct http_req *r, enum db_status st, PGresult *res);

/* A lookup by a token's or certificate's hash: found, as any lookup; not found, its use is
 * audited by denied (denied_sql: if the token was once a session's; cert_denied_sql), then
 * 401. handler_data holds the hash until here. */
static void credential_looked_up(struct http_req *r, enum db_status st, PGresult *res,
                                 const char *denied)
{
    char *digest = r->handler_data;
    r->handler_data = NULL;
    r->handler_free = NULL;
    if (st == DB_OK && PQntuples(res) == 0 && digest != NULL) {
        char *ctx = audit_context(r);
        const char *params[] = {digest, ctx};
        http_query(r, denied, 2, params, denied_done);
        free(ctx);
        free(digest);
        return;
    }
    free(digest);
    looked_up(r, st, res);
}

static void token_looked_up(struct http_req *r, enum db_status st, PGresult *res)
{
    credential_looked_up(r, st, res, denied_sql);
}

static void cert_looked_up(struct http_req *r, enum db_status st, PGresult *res)
{
    credential_looked_up(r, st, res, cert_denied_sql);
}

static void looked_up(struct http_req *r, enum db_status st, PGresult *res)
{
    if (st != DB_OK) {
        http_reply_db_error(r, res);
        return;
    }
    if (PQntuples(res) != 1) {
        unauthorized(r, "the credentials are missing, expired or revoked; sign in again");
        return;
    }
    r->user = auth_user_from_row(res, 0, 0);
    if (r->auth_csrf[0] != '\0') {
        r->user->via = AUTH_VIA_COOKIE;
        memcpy(r->user->csrf, r->auth_csrf, sizeof(r->user->csrf));
        if (!csrf_ok(r)) {
            http_reply_error(r, 403, "missing or wrong X-CSRF-Token");
            return;
        }
    } else if (r->user->via == AUTH_VIA_CERTIFICATE && cert_cross_site(r)) {
        http_reply_error(r, 403, "signed in by client certificate from another site's page");
        return;
    }
    if (r->user->role < 0 || !(r->route->access & (1 << r->user->role))) {
        http_reply_error(r, 403, "your role may not do this");
        return;
    }
    http_handle(r);
}

/* SHA-256 of the verified client certificate, or 0 if there is none. */
static int client_fingerprint(const struct http_req *r, char out[65])
{
    SSL *ssl = http_ssl(r);
    if (ssl == NULL || SSL_get_verify_result(ssl) != X509_V_OK)
        return 0;
    X509 *cert = SSL_get1_peer_certificate(ssl);
    if (cert == NULL)
        return 0;
    unsigned char md[32];
    unsigned int n = 0;
    int ok = X509_digest(cert, EVP_sha256(), md, &n) == 1 && n == sizeof(md);
    X509_free(cert);
    if (ok)
        util_hex(md, sizeof(md), out);
    return ok;
}

static void lookup(struct http_req *r, const char *sql, const char digest[65], http_db_cb done)
{
    const char *params[] = {digest};
    r->handler_data = xstrdup(digest);
    r->handler_free = free; /* if r ends before the lookup answers */
    http_query(r, sql, 1, params, done);
}

void auth_dispatch(struct http_req *r)
{
    if (r->route->access == 0) {
        http_handle(r);
        return;
    }
    const char *h = http_header(r, "Authorization");
    char digest[65];
    if (h != NULL) {
        if (strncasecmp(h, "Bearer ", 7) != 0 || strlen(h + 7) < LIMIT_TOKEN_MIN ||
            strlen(h + 7) > LIMIT_TOKEN_MAX) {
            unauthorized(r, "use Authorization: Bearer <token>");
            return;
        }
        auth_token_hash(h + 7, digest);
        lookup(r, by_token_sql, digest, token_looked_up);
        return;
    }
    char cookie[LIMIT_TOKEN_MAX + 1];
    int n = http_cookie(r, AUTH_COOKIE, cookie, sizeof(cookie));
    if (n == -2) { /* sent, but no session's (too long, a quote): as a dead cookie, not as none
                    * (it fell through to a client certificate, and was never cleared) */
        http_add_header(r, "Set-Cookie", AUTH_COOKIE_CLEAR);
        unauthorized(r, "the credentials are missing, expired or revoked; sign in again");
        return;
    }
    if (n >= 0) {
        auth_csrf_token(cookie, r->auth_csrf);
        if (n < LIMIT_TOKEN_MIN) {
            explicit_bzero(cookie, sizeof(cookie));
            unauthorized(r, "the credentials are missing, expired or revoked; sign in again");
            return;
        }
        auth_token_hash(cookie, digest);
        explicit_bzero(cookie, sizeof(cookie));
        lookup(r, by_token_sql, digest, token_looked_up);
        return;
    }
    if (client_fingerprint(r, digest)) {
        lookup(r, by_cert_sql, digest, cert_looked_up);
        return;
    }
    unauthorized(r, "sign in first (POST /v1/sessions) and send the token as a bearer token");
}

/* The access rules, one place; docs/access.md is this function as a table. The route table
 * has already checked the caller's role may use the route at all. */
int auth_allow(const struct auth_user *u, enum auth_action a, enum auth_record rec,
               const char *hub_id)
{
    switch (rec) {
    case REC_ACCOUNTS: /* agencies are listed to everyone; users and changes: admins */
        return u->role == ROLE_ADMIN || (a == AUTH_READ && hub_id == NULL);
    case REC_HUB:
        return a == AUTH_READ || u->role == ROLE_ADMIN;
    case REC_AUDIT:
        /* Admins read every row. Hub managers read rows about their own hubs: hub_id NULL
         * asks "every row", which only an admin may. Nobody writes audit rows by hand. */
        if (a != AUTH_READ)
            return 0;
        if (u->role == ROLE_ADMIN)
            return 1;
        return u->role == ROLE_HUB_MANAGER && hub_id != NULL && strstr(u->hub_ids, hub_id);
    }
    return 0;
}

json_object *auth_user_json(const struct auth_user *u)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string(u->id));
    json_object_object_add(o, "username", json_object_new_string(u->username));
    json_object_object_add(o, "display_name", json_object_new_string(u->display_name));
    json_object_object_add(o, "role", json_object_new_string(role_names[u->role]));
    json_object *agency = json_object_new_object();
    json_object_object_add(agency, "id", json_object_new_string(u->agency_id));
    json_object_object_add(agency, "name", json_object_new_string(u->agency_name));
    json_object_object_add(agency, "kind", json_object_new_string(u->agency_kind));
    json_object_object_add(o, "agency", agency);
    json_object *hubs = json_from_pg_array(u->hub_ids);
    json_object_object_add(o, "hub_ids", hubs);
    static const char *const via_names[] = {"token", "cookie", "certificate"};
    json_object_object_add(o, "authenticated_by", json_object_new_string(via_names[u->via]));
    if (u->via == AUTH_VIA_COOKIE)
        json_object_object_add(o, "csrf_token", json_object_new_string(u->csrf));
    return o;
}
