/* raisectl's command table and the commands that need code of their own. */
#ifndef RAISECTL_CMDS_H
#define RAISECTL_CMDS_H

#include "rc.h"

#include <json-c/json.h>
#include <stddef.h>

enum opt_kind {
    K_STR,   /* a string */
    K_INT,   /* a whole number */
    K_LIST,  /* comma-separated -> JSON array of strings */
    K_BOOL,  /* a switch, no value */
    K_MULTI, /* repeatable string */
};
#define REQ 1

struct opt {
    const char *flag; /* --flag (a one-letter flag is -f) */
    const char *key;  /* JSON member or query parameter it becomes; NULL = the command's own */
    enum opt_kind kind;
    int required;
    const char *meta, *help;
};

/* A table column: header, JSON member ("a.b" nests; arrays of strings are joined), width
 * (0 = the rest of 100 columns). */
struct column {
    const char *header, *path;
    int width;
};

/* Parsed arguments: the options given (flag -> string, true, or array) and the positional. */
struct args {
    json_object *vals; /* owned */
    const char *pos;   /* borrowed; the ID argument, or NULL */
};

struct cmd;
typedef int (*cmd_fn)(struct rc *rc, const struct cmd *c, struct args *a);

struct cmd {
    const char *group, *name;  /* "intel", "post"; name NULL for one-word commands */
    const char *method, *path; /* the route; "{}" is the positional argument */
    int npos;                  /* positional arguments: 0 or 1 */
    const char *pos_name;
    const struct opt *opts;       /* {NULL}-terminated */
    cmd_fn run;                   /* NULL = cmd_generic */
    const struct column *columns; /* a list: print items as a table */
    const char *done;             /* a change: "posted intelligence" + id */
    const char *summary, *example;
};

extern const struct cmd cmds[];
extern const size_t ncmds;

int cmds_main(int argc, char **argv);

/* The generic command: options -> body (or query for GET), call, print. */
int cmd_generic(struct rc *rc, const struct cmd *c, struct args *a);
/* Body (or NULL if the command has no body options) from the options with a key. -1 + usage
 * message on a bad value. */
int cmds_body(const struct cmd *c, struct args *a, json_object **body);
/* The route's path with the positional argument in place of "{}" (owned). */
char *cmds_path(const struct cmd *c, const struct args *a);
/* Print a changed record (done line or JSON) or a read one. */
void cmds_print(struct rc *rc, const struct cmd *c, json_object *o);
void cmds_table(const struct column *cols, json_object *items);
int cmds_usage(const struct cmd *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The option's value as a string, or NULL. */
const char *arg_str(struct args *a, const char *flag);
/* One line from stdin without its newline (owned), or NULL. */
char *read_line_stdin(void);

int cmd_login(struct rc *rc, const struct cmd *c, struct args *a);
int cmd_logout(struct rc *rc, const struct cmd *c, struct args *a);
int cmd_feed(struct rc *rc, const struct cmd *c, struct args *a);
int cmd_intel_post(struct rc *rc, const struct cmd *c, struct args *a);
int cmd_agenda(struct rc *rc, const struct cmd *c, struct args *a);
int cmd_suggest(struct rc *rc, const struct cmd *c, struct args *a);
int cmd_actions_add(struct rc *rc, const struct cmd *c, struct args *a);
int cmd_actions_mine(struct rc *rc, const struct cmd *c, struct args *a);
int cmd_meetings_attendance(struct rc *rc, const struct cmd *c, struct args *a);
int cmd_meetings_minutes(struct rc *rc, const struct cmd *c, struct args *a);
int cmd_users_add(struct rc *rc, const struct cmd *c, struct args *a);
int cmd_users_deactivate(struct rc *rc, const struct cmd *c, struct args *a);

#endif
