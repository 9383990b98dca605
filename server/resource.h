/* Shared pieces of resource handlers (see resource.c). */
#ifndef RAISE_RESOURCE_H
#define RAISE_RESOURCE_H

#include "db.h"
#include "http.h"

#include <json-c/json.h>
#include <stddef.h>

struct http_req;
struct json_field;

/* A failed statement: a known constraint violation becomes 409/422 naming the field; anything
 * else is a logged 500. */
void res_reply_error(struct http_req *r, PGresult *res);
/* Parse + validate the body against fields; NULL after replying 400/422. */
json_object *res_read_body(struct http_req *r, const struct json_field *f, size_t n);
/* The same, with extra checks (extra adds its field errors to p) named in the same 422. */
struct problem;
json_object *res_read_body_ex(struct http_req *r, const struct json_field *f, size_t n,
                              void (*extra)(json_object *o, struct problem *p));
/* A row as an object: column names are keys; "*_ids"/"team"/"restricted_to" uuid[] columns
 * become arrays, "active" a boolean, NULL null. */
json_object *res_row_json(PGresult *res, int row);
/* The same for columns from..to-1. */
json_object *res_row_json_range(PGresult *res, int row, int from, int to);
/* Reply with the first row (404 if none), status on success. */
void res_reply_row(struct http_req *r, enum db_status st, PGresult *res, int status);
void res_created(struct http_req *r, enum db_status st, PGresult *res);
void res_updated(struct http_req *r, enum db_status st, PGresult *res);
/* Reply {"items": rows, "next": cursor}: r->handler_data holds the page limit; the statement
 * fetched limit + 1 rows; column `cursor_column` of the last row is the next cursor. */
void res_listed(struct http_req *r, enum db_status st, PGresult *res);
/* The "next" member of a page: the base64url of column col of row limit-1 when the statement
 * fetched more than limit rows (n), else JSON null. */
json_object *res_next_cursor(PGresult *res, int n, int limit, int col);
/* limit (default 50, max 200) and before (decoded cursor, owned, may be NULL); -1 after 400. */
int res_page(struct http_req *r, int *limit, char **before);
/* A list statement with $1 = before, $2 = limit. */
void res_run_list(struct http_req *r, const char *sql);
/* Read one record the caller may see: sql takes $1 the {id} path parameter, $2 the caller's
 * agency, $3 their hubs, $4 the audit context; done gets the result (handler_data = 200). */
void res_get_visible(struct http_req *r, const char *sql, http_db_cb done);
/* Reply with column 0 of the first row, a JSON document, with the status in handler_data;
 * 404 when there is no row. */
void res_reply_document(struct http_req *r, enum db_status st, PGresult *res);
/* The {id} path parameter (lowercased, owned); NULL after a 404 if it is not a UUID. */
char *res_path_id(struct http_req *r);
/* A statement that may have to run again (res_query_again): like http_query, but its
 * parameters are copied and kept until its callback has returned without running it again.
 * The callback has handler_data to itself. */
void res_query_kept(struct http_req *r, const char *sql, int nparams, const char *const *params,
                    http_db_cb cb);
/* From the kept statement's callback: run it once more if it has run fewer than most times
 * (1: sent, the callback comes again; 0: not, and nothing is sent). For a statement that
 * found its row changed since it began and wrote nothing. */
int res_query_again(struct http_req *r, int most);

#endif
