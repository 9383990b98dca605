/* One-shot commands run from the shell (blocking libpq is fine here, no event loop runs). */
#ifndef RAISE_CLI_H
#define RAISE_CLI_H

#include <stdio.h>

/* Create the first admin (and the agency, kind "other", if it does not exist). Prints
 * "username: U" and "password: P" on out; the password is random and shown only here.
 * 0 ok, -1 + *cause (owned). */
int cli_create_admin(const char *conninfo, const char *username, const char *agency_name, FILE *out,
                     char **cause);

#endif
