/* Who is calling (bearer token or registered client certificate) and what they may do.
 * Every resource asks auth_allow() and nothing else. */
#ifndef RAISE_AUTH_H
#define RAISE_AUTH_H

#include "domain.h"

struct http_req;
struct pg_result;
struct json_object;

/* The session cookie a browser page signs in with (docs/api.md, "Cookie sessions"). */
#define AUTH_COOKIE "raise_session"
/* Set-Cookie value that makes a browser forget it. */
#define AUTH_COOKIE_CLEAR AUTH_COOKIE "=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0"

/* A session ends this long after its last use (SQL interval). */
#define AUTH_IDLE_EXPIRY "interval '8 hours'"
/* SQL condition: the session row s is live (not revoked, not 24 h past sign-in, used within
 * AUTH_IDLE_EXPIRY). For requests (auth.c) and open streams (stream.c) alike. */
#define AUTH_SESSION_LIVE(s)                                                                       \
    s ".revoked_at IS NULL AND " s ".expires_at > now() AND " s                                    \
      ".last_seen > now() - " AUTH_IDLE_EXPIRY
/* SQL expression: the hubs user row u is linked to, as an array ('{}' for none), in id
 * order, whatever its role (an admin's view of the user). */
#define AUTH_HUB_LINKS(u)                                                                          \
    "coalesce((SELECT array_agg(h.hub_id ORDER BY h.hub_id) FROM hub_managers h "                  \
    "WHERE h.user_id = " u ".id), '{}')"
/* SQL expression: the hubs user row u manages, as rights: its links while its role is
 * hub_manager, else none. PATCH /v1/users keeps the links when the role changes, and a hub
 * manager made a practitioner kept seeing every young person of the hub (found in review). */
#define AUTH_MANAGED_HUBS(u)                                                                       \
    "CASE WHEN " u ".role = 'hub_manager' THEN " AUTH_HUB_LINKS(u) " ELSE '{}' END"

/* How the caller proved who they are. */
enum auth_via { AUTH_VIA_TOKEN, AUTH_VIA_COOKIE, AUTH_VIA_CERTIFICATE };

struct auth_user {
    char id[37];
    char username[65];
    char display_name[4 * 200 + 1]; /* 200 characters of UTF-8, up to 4 bytes each */
    char agency_id[37];
    char agency_name[4 * 200 + 1];
    char agency_kind[16];
    int role;            /* enum role */
    char session_id[37]; /* "" when signed in by client certificate */
    enum auth_via via;
    char csrf[65]; /* AUTH_VIA_COOKIE: the X-CSRF-Token its requests must carry; else "" */
    char *hub_ids; /* owned; PostgreSQL array literal "{...}" of managed hubs */
};

/* Authenticate r (unless its route is public), check the route's roles, then run the
 * handler. Answers 401/403/503 itself. */
void auth_dispatch(struct http_req *r);
void auth_user_free(struct auth_user *u);
/* From a row of USER columns (see auth.c); owned. */
struct auth_user *auth_user_from_row(struct pg_result *res, int row, int col);
/* The user as GET /v1/me shows it (also the "user" of a new session). */
struct json_object *auth_user_json(const struct auth_user *u);

/* Actions on records, for auth_allow. */
enum auth_action { AUTH_READ, AUTH_WRITE };
enum auth_record {
    REC_ACCOUNTS, /* agencies, users, certificates: admin only */
    REC_AUDIT,    /* admin: all; hub manager: rows of their hubs */
    REC_HUB,      /* hubs: read by anyone signed in, written by admin */
};
/* The one authorization decision for (user, action, record). hub_id may be NULL. */
int auth_allow(const struct auth_user *u, enum auth_action a, enum auth_record rec,
               const char *hub_id);
/* SHA-256 of a token, hex. */
void auth_token_hash(const char *token, char out[65]);
/* The CSRF token of a session token: HMAC-SHA256 keyed with the token over a fixed label, hex.
 * Only someone who holds the session token can compute it, and a page cannot read the
 * HttpOnly cookie, so only the sign-in reply (or GET /v1/me) can tell the page. */
void auth_csrf_token(const char *token, char out[65]);

#endif
