/* Domain enums: one table each (roles, agency kinds). */
#ifndef RAISE_DOMAIN_H
#define RAISE_DOMAIN_H

/* The order matches the router's access bits: ACCESS_x == 1 << ROLE_x. */
enum role { ROLE_ADMIN, ROLE_HUB_MANAGER, ROLE_POLICE_LIAISON, ROLE_PRACTITIONER, ROLE_COUNT };

extern const char *const role_names[];   /* NULL-terminated, indexed by enum role */
extern const char *const agency_kinds[]; /* NULL-terminated */

/* -1 if unknown. */
int role_parse(const char *name);

#endif
