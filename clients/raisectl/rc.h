/* raisectl's shared pieces: settings (flags, environment, config file), the token file, one
 * request to the server with its error reporting, and output helpers. */
#ifndef RAISECTL_RC_H
#define RAISECTL_RC_H

#include <json-c/json.h>
#include <stddef.h>

/* Exit statuses (docs/raisectl.md). */
enum { RC_OK = 0, RC_REFUSED = 1, RC_USAGE = 2, RC_UNREACHABLE = 3 };

struct rc {
    char *url, *ca, *cert, *key; /* owned; flags beat environment beat config file */
    char *token;                 /* owned; RAISE_TOKEN, else the token file; NULL = none */
    char host[256];
    int port;
    int json; /* --json: print the server's JSON */
};

/* Fill rc from the environment and the config file (flags already set stay). -1 after
 * printing a usage error (a bad URL). */
int rc_settle(struct rc *rc);
void rc_clear(struct rc *rc);
/* The token file's path (owned), creating its directory (0700) when create is set. */
char *rc_token_path(int create);

/* One request. body may be NULL; extra headers NULL-terminated (may be NULL). On 2xx *out is
 * the parsed JSON body (NULL if empty or not JSON) and RC_OK is returned; otherwise the
 * problem is printed on stderr and RC_REFUSED / RC_UNREACHABLE returned. raw (optional)
 * receives the raw body and its Content-Type on success (owned). */
int rc_call(struct rc *rc, const char *method, const char *path, json_object *body,
            const char *const *headers, json_object **out, char **raw, size_t *raw_len);

/* A query string builder: appends "?k=v" / "&k=v" with v percent-encoded. */
void rc_query_add(char *buf, size_t cap, const char *key, const char *value);

/* Print o as indented JSON on stdout. */
void rc_print_json(json_object *o);
/* Member access that never fails: "" for absent or null. */
const char *rc_str(json_object *o, const char *key);
json_object *rc_get(json_object *o, const char *key);
/* Fit s into width columns (UTF-8 aware, "..." when cut) into out (cap bytes). */
const char *rc_fit(const char *s, int width, char *out, size_t cap);

#endif
