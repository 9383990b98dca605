/* The access matrix: every route x every kind of caller (x own hub / other hub for hub
 * managers) -> the exact status. A route added to server/routes.c without a row here fails
 * the coverage test, so the matrix grows with the API. docs/access.md is the same table. */
#define _GNU_SOURCE
#include "harness.h"
#include "routes.h"

#include <check.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum caller { ANON, ADMIN, MGR_OWN, MGR_OTHER, POLICE, PRAC, NCALLERS };
static const char *const caller_names[] = {
    "anonymous",      "admin",       "hub_manager(own hub)", "hub_manager(other hub)",
    "police_liaison", "practitioner"};

struct cell {
    const char *method, *pattern, *path, *body;
    int want[NCALLERS];
};

/* {u} = a unique suffix, {id} = the target user's id, {agency} = an agency id */
static const struct cell matrix[] = {
    {"GET", "/", "/", NULL, {200, 200, 200, 200, 200, 200}},
    {"GET", "/app/{file}", "/app/app.js", NULL, {200, 200, 200, 200, 200, 200}},
    {"GET", "/healthz", "/healthz", NULL, {200, 200, 200, 200, 200, 200}},
    {"GET", "/metrics", "/metrics", NULL, {200, 200, 200, 200, 200, 200}},
    {"POST",
     "/v1/sessions",
     "/v1/sessions",
     "{\"username\":\"nobody-{u}\",\"password\":\"not a password\"}",
     {401, 401, 401, 401, 401, 401}},
    {"GET", "/v1/me", "/v1/me", NULL, {401, 200, 200, 200, 200, 200}},
    {"POST",
     "/v1/agencies",
     "/v1/agencies",
     "{\"name\":\"Agency {u}\",\"kind\":\"health\"}",
     {401, 201, 403, 403, 403, 403}},
    {"GET", "/v1/agencies", "/v1/agencies", NULL, {401, 200, 200, 200, 200, 200}},
    {"POST",
     "/v1/hubs",
     "/v1/hubs",
     "{\"name\":\"Hub {u}\",\"local_authority\":\"Somerset\"}",
     {401, 201, 403, 403, 403, 403}},
    {"GET", "/v1/hubs", "/v1/hubs", NULL, {401, 200, 200, 200, 200, 200}},
    {"POST",
     "/v1/users",
     "/v1/users",
     "{\"username\":\"m{u}\",\"display_name\":\"M\",\"agency_id\":\"{agency}\","
     "\"role\":\"practitioner\",\"password\":\"long enough secret\"}",
     {401, 201, 403, 403, 403, 403}},
    {"GET", "/v1/users", "/v1/users", NULL, {401, 200, 403, 403, 403, 403}},
    {"PATCH",
     "/v1/users/{id}",
     "/v1/users/{id}",
     "{\"display_name\":\"Renamed {u}\"}",
     {401, 200, 403, 403, 403, 403}},
    {"POST",
     "/v1/users/{id}/certificates",
     "/v1/users/{id}/certificates",
     "{\"fingerprint\":\"{u}\"}",
     {401, 201, 403, 403, 403, 403}},
    /* a young person on hub A (hub_manager(own hub) manages A) with the police on the team */
    {"POST",
     "/v1/subjects",
     "/v1/subjects",
     "{\"hub_id\":\"{hub}\",\"reference\":\"M-{u}\",\"given_name\":\"Matrix\","
     "\"family_name\":\"Case\",\"date_of_birth\":\"2010-01-01\",\"status\":\"in_care\","
     "\"key_worker\":\"K\"}",
     {401, 403, 201, 403, 403, 403}},
    {"GET", "/v1/subjects", "/v1/subjects", NULL, {401, 403, 200, 200, 200, 200}},
    {"GET", "/v1/subjects/{id}", "/v1/subjects/{subject}", NULL, {401, 403, 200, 404, 200, 404}},
    {"PATCH",
     "/v1/subjects/{id}",
     "/v1/subjects/{subject}",
     "{\"status\":\"edge_of_care\"}",
     {401, 403, 200, 404, 403, 403}},
    /* intelligence about that young person; {intel} was posted by the police officer */
    {"POST",
     "/v1/intelligence",
     "/v1/intelligence",
     "{\"subject_id\":\"{subject}\",\"category\":\"risky_associate\",\"summary\":\"Seen "
     "with an adult of concern\",\"occurred_at\":\"2026-01-01T10:00:00Z\",\"risk_level\":"
     "\"high\",\"grading\":{\"source\":2,\"assessment\":\"B\",\"handling\":\"P\"}}",
     {401, 403, 201, 422, 201, 422}},
    {"GET", "/v1/intelligence", "/v1/intelligence", NULL, {401, 403, 200, 200, 200, 200}},
    {"GET",
     "/v1/intelligence/{id}",
     "/v1/intelligence/{intel}",
     NULL,
     {401, 403, 200, 404, 200, 404}},
    {"POST",
     "/v1/intelligence/{id}/retract",
     "/v1/intelligence/{intel}/retract",
     "{\"reason\":\"entered in error\"}",
     {401, 403, 403, 404, 200, 404}},
    /* {meeting}: hub A's, chaired by hub_manager(own hub), the police invited */
    {"POST",
     "/v1/meetings",
     "/v1/meetings",
     "{\"hub_id\":\"{hub}\",\"title\":\"RAISE {u}\",\"scheduled_for\":\"2026-12-01T10:00:00Z\"}",
     {401, 403, 201, 403, 403, 403}},
    {"GET", "/v1/meetings", "/v1/meetings", NULL, {401, 403, 200, 200, 200, 200}},
    {"GET", "/v1/meetings/{id}", "/v1/meetings/{meeting}", NULL, {401, 403, 200, 404, 200, 404}},
    {"PATCH",
     "/v1/meetings/{id}",
     "/v1/meetings/{meeting}",
     "{\"title\":\"Renamed {u}\"}",
     {401, 403, 200, 404, 403, 403}},
    {"GET",
     "/v1/meetings/{id}/agenda",
     "/v1/meetings/{meeting}/agenda",
     NULL,
     {401, 403, 200, 404, 200, 404}},
    {"GET",
     "/v1/hubs/{id}/agenda-suggestions",
     "/v1/hubs/{hub}/agenda-suggestions",
     NULL,
     {401, 403, 200, 403, 403, 403}},
    /* {action}: on hub A's young person, owned by the police (on the team) */
    {"POST",
     "/v1/meetings/{id}/actions",
     "/v1/meetings/{meeting}/actions",
     "{\"subject_id\":\"{subject}\",\"owner_agency_id\":\"{police}\",\"description\":\"Visit\","
     "\"due_date\":\"2099-01-01\"}",
     {401, 403, 201, 404, 403, 403}},
    {"POST",
     "/v1/actions",
     "/v1/actions",
     "{\"subject_id\":\"{subject}\",\"owner_agency_id\":\"{police}\",\"description\":\"Visit\","
     "\"due_date\":\"2099-01-01\"}",
     {401, 403, 201, 422, 403, 403}},
    {"GET", "/v1/actions", "/v1/actions", NULL, {401, 403, 200, 200, 200, 200}},
    {"GET", "/v1/actions/summary", "/v1/actions/summary", NULL, {401, 403, 200, 200, 200, 200}},
    {"GET", "/v1/actions/{id}", "/v1/actions/{action}", NULL, {401, 403, 200, 404, 200, 404}},
    {"POST",
     "/v1/actions/{id}/progress",
     "/v1/actions/{action}/progress",
     "{\"note\":\"Visit booked\"}",
     {401, 403, 403, 404, 200, 404}},
    {"POST",
     "/v1/actions/{id}/cannot-complete",
     "/v1/actions/{action}/cannot-complete",
     "{\"reason\":\"No one home\"}",
     {401, 403, 403, 404, 200, 404}},
    {"POST",
     "/v1/actions/{id}/complete",
     "/v1/actions/{action}/complete",
     "{\"note\":\"Visited\"}",
     {401, 403, 403, 404, 200, 404}},
    {"POST",
     "/v1/actions/{id}/reopen",
     "/v1/actions/{action}/reopen",
     "{\"reason\":\"Not done\"}",
     {401, 403, 200, 404, 403, 403}},
    {"POST",
     "/v1/actions/{id}/cancel",
     "/v1/actions/{action}/cancel",
     "{\"reason\":\"Moved\"}",
     {401, 403, 200, 404, 403, 403}},
    {"POST",
     "/v1/meetings/{id}/start",
     "/v1/meetings/{meeting}/start",
     NULL,
     {401, 403, 200, 404, 403, 403}},
    {"POST",
     "/v1/meetings/{id}/close",
     "/v1/meetings/{meeting}/close",
     NULL,
     {401, 403, 200, 404, 403, 403}},
    {"GET", "/v1/stream", "/v1/stream", NULL, {401, 200, 200, 200, 200, 200}},
    {"GET", "/v1/audit", "/v1/audit", NULL, {401, 200, 200, 200, 403, 403}},
    {"GET", "/v1/audit/verify", "/v1/audit/verify", NULL, {401, 200, 200, 200, 403, 403}},
    /* last: it ends the caller's session */
    {"DELETE",
     "/v1/sessions/current",
     "/v1/sessions/current",
     NULL,
     {401, 204, 204, 204, 204, 204}},
};
#define NCELLS (sizeof(matrix) / sizeof(matrix[0]))

/* Replace {name} placeholders in t with values from vars (pairs, NULL-terminated). */
static void fill(char *out, size_t cap, const char *t, const char *const *vars)
{
    size_t n = 0;
    while (*t != '\0' && n + 1 < cap) {
        const char *v = NULL;
        size_t skip = 0;
        for (int i = 0; *t == '{' && vars[i] != NULL; i += 2) {
            size_t k = strlen(vars[i]);
            if (strncmp(t + 1, vars[i], k) == 0 && t[k + 1] == '}')
                v = vars[i + 1], skip = k + 2;
        }
        if (v != NULL) {
            n += (size_t)snprintf(out + n, cap - n, "%s", v);
            t += skip;
        } else {
            out[n++] = *t++;
        }
    }
    out[n < cap ? n : cap - 1] = '\0';
}

START_TEST(every_route_has_a_row)
{
    for (size_t i = 0; i < routes_count; i++) {
        int found = 0;
        for (size_t j = 0; j < NCELLS; j++)
            found |= strcmp(matrix[j].method, router_method_name(routes[i].method)) == 0 &&
                     strcmp(matrix[j].pattern, routes[i].pattern) == 0;
        ck_assert_msg(found, "%s %s has no row in the access matrix",
                      router_method_name(routes[i].method), routes[i].pattern);
    }
}
END_TEST

START_TEST(every_route_every_caller)
{
    struct itest_server s;
    itest_sql("DELETE FROM login_failures WHERE key LIKE 'addr:%'"); /* earlier tests' */
    itest_server_start(&s, NULL);
    char *admin = itest_new_admin(&s);
    char *hub_agency = itest_new_agency(&s, admin, "hub");
    char *police_agency = itest_new_agency(&s, admin, "police");
    char *health = itest_new_agency(&s, admin, "health");
    char *hub_a = itest_new_hub(&s, admin), *hub_b = itest_new_hub(&s, admin);
    char *target = NULL;
    char *tok_target = itest_new_user(&s, admin, health, "practitioner", NULL, &target);
    char *tokens[NCALLERS] = {
        NULL,
        itest_new_admin(&s),
        itest_new_user(&s, admin, hub_agency, "hub_manager", hub_a, NULL),
        itest_new_user(&s, admin, hub_agency, "hub_manager", hub_b, NULL),
        itest_new_user(&s, admin, police_agency, "police_liaison", NULL, NULL),
        itest_new_user(&s, admin, health, "practitioner", NULL, NULL),
    };
    char sbody[512];
    snprintf(sbody, sizeof(sbody),
             "{\"hub_id\":\"%s\",\"reference\":\"%s\",\"given_name\":\"Matrix\","
             "\"family_name\":\"Subject\",\"date_of_birth\":\"2011-05-05\","
             "\"status\":\"edge_of_care\",\"key_worker\":\"K\",\"team\":[\"%s\"]}",
             hub_a, itest_unique("MS-"), police_agency);
    struct https_response sr = {0};
    itest_call(&s, tokens[MGR_OWN], "POST", "/v1/subjects", sbody, &sr);
    ck_assert_msg(sr.status == 201, "%s", sr.body);
    json_object *so = itest_json(&sr);
    char *subject = strdup(itest_jstr(so, "id"));
    json_object_put(so);
    https_response_clear(&sr);
    snprintf(sbody, sizeof(sbody),
             "{\"subject_id\":\"%s\",\"category\":\"arrest\",\"summary\":\"Arrested\","
             "\"occurred_at\":\"2026-01-02T10:00:00Z\",\"risk_level\":\"high\",\"gravity\":3,"
             "\"grading\":{\"source\":1,\"assessment\":\"A\",\"handling\":\"P\"}}",
             subject);
    itest_call(&s, tokens[POLICE], "POST", "/v1/intelligence", sbody, &sr);
    ck_assert_msg(sr.status == 201, "%s", sr.body);
    so = itest_json(&sr);
    char *intel = strdup(itest_jstr(so, "id"));
    json_object_put(so);
    https_response_clear(&sr);
    snprintf(sbody, sizeof(sbody),
             "{\"hub_id\":\"%s\",\"title\":\"Matrix\",\"scheduled_for\":"
             "\"2026-12-01T10:00:00Z\",\"subject_ids\":[\"%s\"],\"invited_agencies\":[\"%s\"]}",
             hub_a, subject, police_agency);
    itest_call(&s, tokens[MGR_OWN], "POST", "/v1/meetings", sbody, &sr);
    ck_assert_msg(sr.status == 201, "%s", sr.body);
    so = itest_json(&sr);
    char *meeting = strdup(itest_jstr(so, "id"));
    json_object_put(so);
    https_response_clear(&sr);
    snprintf(sbody, sizeof(sbody),
             "{\"subject_id\":\"%s\",\"owner_agency_id\":\"%s\",\"description\":\"Visit\","
             "\"due_date\":\"2099-01-01\"}",
             subject, police_agency);
    itest_call(&s, tokens[MGR_OWN], "POST", "/v1/actions", sbody, &sr);
    ck_assert_msg(sr.status == 201, "%s", sr.body);
    so = itest_json(&sr);
    char *action = strdup(itest_jstr(so, "id"));
    json_object_put(so);
    https_response_clear(&sr);
    int failures = 0;
    for (size_t i = 0; i < NCELLS; i++) {
        for (int c = 0; c < NCALLERS; c++) {
            char unique[80], path[256], body[1024];
            unsigned char raw[32];
            snprintf(unique, sizeof(unique), "%s", itest_unique("x"));
            if (strstr(matrix[i].pattern, "certificates")) { /* a fresh 64-hex fingerprint */
                FILE *f = fopen("/dev/urandom", "r");
                ck_assert_int_eq(fread(raw, 1, 32, f), 32);
                fclose(f);
                for (int k = 0; k < 32; k++)
                    snprintf(unique + 2 * k, 3, "%02x", raw[k]);
            }
            const char *vars[] = {"u",     unique,   "id",          target,    "agency",
                                  health,  "hub",    hub_a,         "subject", subject,
                                  "intel", intel,    "meeting",     meeting,   "action",
                                  action,  "police", police_agency, NULL};
            fill(path, sizeof(path), matrix[i].path, vars);
            if (matrix[i].body)
                fill(body, sizeof(body), matrix[i].body, vars);
            struct https_response r = {0};
            if (strcmp(matrix[i].pattern, "/v1/stream") == 0) { /* a 200 never ends */
                struct https_opts o = itest_opts(&s);
                char *cause = NULL, auth[256];
                snprintf(auth, sizeof(auth), "Authorization: Bearer %s", tokens[c]);
                const char *h[] = {tokens[c] ? auth : NULL, NULL};
                struct https_conn *conn = https_connect(&o, &cause);
                ck_assert_msg(conn && https_stream_open(conn, "GET", path, h, &r, &cause) == 0,
                              "%s", cause);
                https_close(conn);
            } else {
                itest_call(&s, tokens[c], matrix[i].method, path, matrix[i].body ? body : NULL, &r);
            }
            if (r.status != matrix[i].want[c]) {
                fprintf(stderr, "access: %s %s as %s: want %d, got %d: %s\n", matrix[i].method,
                        matrix[i].pattern, caller_names[c], matrix[i].want[c], r.status, r.body);
                failures++;
            }
            https_response_clear(&r);
        }
    }
    ck_assert_msg(failures == 0, "%d cells of the access matrix were wrong (see above)", failures);
    for (int c = 0; c < NCALLERS; c++)
        free(tokens[c]);
    free(tok_target);
    free(subject);
    free(intel);
    free(meeting);
    free(action);
    free(target);
    free(hub_a);
    free(hub_b);
    free(health);
    free(police_agency);
    free(hub_agency);
    free(admin);
    itest_server_stop(&s, SIGTERM, 15);
}
END_TEST

Suite *access_suite(void)
{
    Suite *s = suite_create("access");
    TCase *tc = tcase_create("matrix");
    tcase_add_unchecked_fixture(tc, itest_ensure_db, NULL);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, every_route_has_a_row);
    tcase_add_test(tc, every_route_every_caller);
    suite_add_tcase(s, tc);
    return s;
}
