/* The audit log: every resource writes its audit row in the same statement (and so the same
 * transaction) as the change or read it records, with one CTE:
 *
 *   WITH ..., AUDIT_CTE("$5", "'user.create'", "'ok'", "'user'", "u.id::text", "NULL", "NULL")
 *
 * where $5 is audit_context(r): who, from where, which request, why (JSON). The SQL pieces
 * are expressions, so they can refer to earlier CTEs. The database chains the row. */
#ifndef RAISE_AUDIT_H
#define RAISE_AUDIT_H

struct http_req;

/* The one INSERT both forms below are: who (four expressions: user id, username, agency id,
 * role), the rest from ctx, and from more of the FROM list (empty, or starting ", "). */
#define AUDIT_CTE_BY(ctx, who, action, outcome, rtype, rid, subject, hub, from)                    \
    "audit AS (INSERT INTO audit_queue (user_id, username, agency_id, role, route, client_addr, "  \
    "request_id, purpose, action, outcome, record_type, record_id, subject_id, hub_id) "           \
    "SELECT " who ", c->>'route', c->>'client_addr', c->>'request_id', c->>'purpose', " action     \
    ", " outcome ", " rtype ", " rid ", " subject ", " hub " FROM (SELECT " ctx                    \
    "::jsonb AS c) ctx" from " RETURNING qid)"

#define AUDIT_CTE(ctx, action, outcome, rtype, rid, subject, hub, from)                            \
    AUDIT_CTE_BY(ctx,                                                                              \
                 "(c->>'user_id')::uuid, c->>'username', (c->>'agency_id')::uuid, c->>'role'",     \
                 action, outcome, rtype, rid, subject, hub, from)

/* The same, written about a user other than the caller (there may be none): u is a table
 * alias with id, username, agency_id and role (NULLs when an outer join found no one), from
 * the joins in from. For a request with no signed-in caller: a dead session's token, a
 * certificate that signs in no one. */
#define AUDIT_CTE_ABOUT(ctx, u, action, outcome, rtype, rid, from)                                 \
    AUDIT_CTE_BY(ctx, u ".id, " u ".username, " u ".agency_id, " u ".role", action, outcome,       \
                 rtype, rid, "NULL", "NULL", ", " from)

/* JSON for AUDIT_CTE's ctx parameter (owned): user, agency, role, route pattern, client
 * address, request id, and purpose (X-Purpose header, else the route's purpose). */
char *audit_context(const struct http_req *r);

void audit_list(struct http_req *r);
void audit_verify(struct http_req *r);

#endif
