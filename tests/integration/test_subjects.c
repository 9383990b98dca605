/* Young people: creation rules, visibility (team, non-team, other hub), search, paging,
 * team changes taking effect at once, and audit of every read. */
#define _GNU_SOURCE
#include "harness.h"

#include <check.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct itest_server srv;

/* A hub with a manager, a police agency + officer, a health agency + practitioner, and a
 * practitioner of an agency not on any team; plus a second hub with its own manager. */
static struct world {
    char *admin, *hub, *hub2, *hub_agency, *police, *health, *outsider_agency;
    char *mgr, *mgr2, *officer, *nurse, *outsider;
} w;

static void start(void)
{
    itest_ensure_db();
    itest_sql("DELETE FROM login_failures WHERE key LIKE 'addr:%'");
    itest_server_start(&srv, NULL);
    w.admin = itest_new_admin(&srv);
    w.hub = itest_new_hub(&srv, w.admin);
    w.hub2 = itest_new_hub(&srv, w.admin);
    w.hub_agency = itest_new_agency(&srv, w.admin, "hub");
    w.police = itest_new_agency(&srv, w.admin, "police");
    w.health = itest_new_agency(&srv, w.admin, "health");
    w.outsider_agency = itest_new_agency(&srv, w.admin, "housing");
    w.mgr = itest_new_user(&srv, w.admin, w.hub_agency, "hub_manager", w.hub, NULL);
    w.mgr2 = itest_new_user(&srv, w.admin, w.hub_agency, "hub_manager", w.hub2, NULL);
    w.officer = itest_new_user(&srv, w.admin, w.police, "police_liaison", NULL, NULL);
    w.nurse = itest_new_user(&srv, w.admin, w.health, "practitioner", NULL, NULL);
    w.outsider = itest_new_user(&srv, w.admin, w.outsider_agency, "practitioner", NULL, NULL);
}

static void stop(void)
{
    itest_server_stop(&srv, SIGTERM, 15);
    free(w.admin);
    free(w.hub);
    free(w.hub2);
    free(w.hub_agency);
    free(w.police);
    free(w.health);
    free(w.outsider_agency);
    free(w.mgr);
    free(w.mgr2);
    free(w.officer);
    free(w.nurse);
    free(w.outsider);
    memset(&w, 0, sizeof(w));
}

static const char *dob_years_ago(int years)
{
    static char buf[16];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    snprintf(buf, sizeof(buf), "%04d-%02d-%02d", tm.tm_year + 1900 - years, tm.tm_mon + 1,
             tm.tm_mday > 28 ? 28 : tm.tm_mday);
    return buf;
}

/* Create a young person on hub with the given team; returns the id (owned). */
static char *new_subject(const char *hub, const char *team_json, const char *name)
{
    char body[1024];
    snprintf(body, sizeof(body),
             "{\"hub_id\":\"%s\",\"reference\":\"%s\",\"given_name\":\"%s\","
             "\"family_name\":\"Testperson\",\"date_of_birth\":\"%s\",\"status\":"
             "\"edge_of_care\",\"key_worker\":\"Sam Keyworker\",\"team\":%s}",
             hub, itest_unique("REF-"), name, dob_years_ago(15), team_json);
    struct https_response r = {0};
    itest_call(&srv, w.mgr, "POST", "/v1/subjects", body, &r);
    ck_assert_msg(r.status == 201, "create: %d %s", r.status, r.body);
    json_object *o = itest_json(&r);
    char *id = strdup(itest_jstr(o, "id"));
    json_object_put(o);
    https_response_clear(&r);
    return id;
}

static int status_of(const char *token, const char *method, const char *path, const char *body)
{
    struct https_response r = {0};
    itest_call(&srv, token, method, path, body, &r);
    int st = r.status;
    https_response_clear(&r);
    return st;
}

START_TEST(create_and_see_by_need_to_know)
{
    char team[256], path[128];
    snprintf(team, sizeof(team), "[\"%s\"]", w.police);
    char *id = new_subject(w.hub, team, "Alex");
    snprintf(path, sizeof(path), "/v1/subjects/%s", id);
    ck_assert_int_eq(status_of(w.mgr, "GET", path, NULL), 200);     /* the hub's manager */
    ck_assert_int_eq(status_of(w.officer, "GET", path, NULL), 200); /* on the team */
    ck_assert_int_eq(status_of(w.nurse, "GET", path, NULL), 404);   /* not on the team */
    ck_assert_int_eq(status_of(w.outsider, "GET", path, NULL), 404);
    ck_assert_int_eq(status_of(w.mgr2, "GET", path, NULL), 404);  /* another hub */
    ck_assert_int_eq(status_of(w.admin, "GET", path, NULL), 403); /* admins: no case data */

    struct https_response r = {0};
    itest_call(&srv, w.officer, "GET", path, NULL, &r);
    json_object *o = itest_json(&r), *t;
    ck_assert_str_eq(itest_jstr(o, "given_name"), "Alex");
    ck_assert_str_eq(itest_jstr(o, "status"), "edge_of_care");
    ck_assert(json_object_object_get_ex(o, "team", &t) && json_object_array_length(t) == 1);
    ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(t, 0)), w.police);
    json_object_put(o);
    https_response_clear(&r);

    /* each read is in the audit log with the young person's id */
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM audit_log WHERE action = 'subject.read' AND subject_id = "
             "'%s'",
             id);
    char *n = itest_sql_value(sql);
    ck_assert_int_ge(atoi(n), 3);
    free(n);
    free(id);
}
END_TEST

/* Hub links count as rights only while the user is a hub manager: PATCH /v1/users keeps
 * them when the role changes, and a manager made a practitioner kept seeing every young
 * person of the hub (found in review). The admin still sees the links; they count again if
 * the user is made a hub manager again. */
START_TEST(hub_links_count_only_for_hub_managers)
{
    char team[128], path[128], upath[128], sql[160];
    snprintf(team, sizeof(team), "[\"%s\"]", w.health);
    char *id = new_subject(w.hub, team, "Morgan"), *uid = NULL;
    char *mgr = itest_new_user(&srv, w.admin, w.hub_agency, "hub_manager", w.hub, &uid);
    snprintf(path, sizeof(path), "/v1/subjects/%s", id);
    snprintf(upath, sizeof(upath), "/v1/users/%s", uid);
    ck_assert_int_eq(status_of(mgr, "GET", path, NULL), 200);

    struct https_response r = {0};
    itest_call(&srv, w.admin, "PATCH", upath, "{\"role\":\"practitioner\"}", &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(strstr(r.body, w.hub) != NULL, "the admin's view lost the link: %s", r.body);
    https_response_clear(&r);
    ck_assert_int_eq(status_of(mgr, "GET", path, NULL), 404);
    snprintf(sql, sizeof(sql), "/v1/subjects?hub_id=%s", w.hub);
    itest_call(&srv, mgr, "GET", sql, NULL, &r);
    ck_assert_str_eq(r.body, "{\"items\":[],\"next\":null}\n");
    https_response_clear(&r);
    itest_call(&srv, mgr, "GET", "/v1/me", NULL, &r);
    json_object *o = itest_json(&r), *hubs;
    ck_assert(json_object_object_get_ex(o, "hub_ids", &hubs));
    ck_assert_int_eq(json_object_array_length(hubs), 0);
    json_object_put(o);
    https_response_clear(&r);

    itest_call(&srv, w.admin, "PATCH", upath, "{\"role\":\"hub_manager\"}", &r);
    ck_assert_int_eq(r.status, 200);
    https_response_clear(&r);
    ck_assert_int_eq(status_of(mgr, "GET", path, NULL), 200);
    free(mgr);
    free(uid);
    free(id);
}
END_TEST

START_TEST(team_change_takes_effect_at_once)
{
    char team[256], path[128], body[256];
    snprintf(team, sizeof(team), "[\"%s\"]", w.police);
    char *id = new_subject(w.hub, team, "Jordan");
    snprintf(path, sizeof(path), "/v1/subjects/%s", id);
    ck_assert_int_eq(status_of(w.nurse, "GET", path, NULL), 404);
    snprintf(body, sizeof(body), "{\"team\":[\"%s\",\"%s\"],\"status\":\"in_care\"}", w.health,
             w.police);
    struct https_response r = {0};
    itest_call(&srv, w.mgr, "PATCH", path, body, &r);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    json_object *o = itest_json(&r), *t;
    ck_assert_str_eq(itest_jstr(o, "status"), "in_care");
    ck_assert(json_object_object_get_ex(o, "team", &t) && json_object_array_length(t) == 2);
    json_object_put(o);
    https_response_clear(&r);
    ck_assert_int_eq(status_of(w.nurse, "GET", path, NULL), 200);
    snprintf(body, sizeof(body), "{\"team\":[\"%s\"]}", w.health);
    ck_assert_int_eq(status_of(w.mgr, "PATCH", path, body), 200);
    ck_assert_int_eq(status_of(w.officer, "GET", path, NULL), 404); /* taken off: gone */
    /* the change is an event for the stream */
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM events WHERE type = 'subject.updated' AND subject_id = '%s'",
             id);
    char *n = itest_sql_value(sql);
    ck_assert_str_eq(n, "2");
    free(n);
    /* only the hub's managers may change it: visible to the nurse but forbidden */
    ck_assert_int_eq(status_of(w.nurse, "PATCH", path, "{\"status\":\"care_leaver\"}"), 403);
    ck_assert_int_eq(status_of(w.mgr2, "PATCH", path, "{\"status\":\"care_leaver\"}"), 404);
    free(id);
}
END_TEST

/* Two changes of one team at once: the one that waited for the other's row lock must not
 * keep what the other added (team [health]; [police] and then [education] at once: the stored
 * team was [police, education] while the second reply said [education]; found in review). */
START_TEST(concurrent_team_changes_last_one_wins)
{
    char team[128], path[128], body[256], sql[1024];
    snprintf(team, sizeof(team), "[\"%s\"]", w.health);
    char *id = new_subject(w.hub, team, "Sam");
    char *other = itest_new_agency(&srv, w.admin, "education"); /* on no one else's team */
    snprintf(path, sizeof(path), "/v1/subjects/%s", id);
    /* by hand, as a PATCH of [police] would: the row stays locked for 2 s */
    char tag[64];
    snprintf(tag, sizeof(tag), "team-race-%.36s", id);
    snprintf(sql, sizeof(sql),
             "BEGIN; UPDATE subjects SET updated_at = now() WHERE id = '%s'; "
             "DELETE FROM subject_team WHERE subject_id = '%s'; "
             "INSERT INTO subject_team (subject_id, agency_id) VALUES ('%s', '%s'); "
             "SELECT pg_sleep(2); COMMIT;",
             id, id, id, w.police);
    struct itest_hold *h = itest_hold_start(tag, sql);
    snprintf(body, sizeof(body), "{\"team\":[\"%s\"]}", other);
    struct https_response r = {0};
    itest_call(&srv, w.mgr, "PATCH", path, body, &r); /* waits for the hold */
    itest_hold_end(h);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    json_object *o = itest_json(&r), *got;
    ck_assert(json_object_object_get_ex(o, "team", &got) && json_object_array_length(got) == 1);
    json_object_put(o);
    https_response_clear(&r);
    snprintf(sql, sizeof(sql),
             "SELECT string_agg(agency_id::text, ',') FROM subject_team WHERE subject_id = '%s'",
             id);
    char *n = itest_sql_value(sql);
    ck_assert_str_eq(n, other); /* not the police too */
    free(n);
    free(other);
    free(id);
}
END_TEST

START_TEST(list_search_and_pages)
{
    char team[128];
    snprintf(team, sizeof(team), "[\"%s\"]", w.health);
    char *ids[5];
    for (int i = 0; i < 5; i++)
        ids[i] = new_subject(w.hub, team, i == 2 ? "Quincey" : "Robin");
    char path[256];
    struct https_response r = {0};
    /* search by name */
    snprintf(path, sizeof(path), "/v1/subjects?hub_id=%s&q=quinc", w.hub);
    itest_call(&srv, w.nurse, "GET", path, NULL, &r);
    json_object *o = itest_json(&r), *items, *next;
    ck_assert(json_object_object_get_ex(o, "items", &items));
    ck_assert_int_eq(json_object_array_length(items), 1);
    ck_assert_str_eq(itest_jstr(json_object_array_get_idx(items, 0), "id"), ids[2]);
    json_object_put(o);
    https_response_clear(&r);
    /* pages of 2, newest first, no repeats, no gaps */
    char seen[5][40];
    int nseen = 0;
    char cursor[256] = "";
    for (int page = 0; page < 10; page++) {
        snprintf(path, sizeof(path), "/v1/subjects?hub_id=%s&limit=2%s%s", w.hub,
                 cursor[0] ? "&before=" : "", cursor);
        itest_call(&srv, w.nurse, "GET", path, NULL, &r);
        ck_assert_int_eq(r.status, 200);
        o = itest_json(&r);
        ck_assert(json_object_object_get_ex(o, "items", &items));
        for (size_t i = 0; i < json_object_array_length(items); i++) {
            const char *id = itest_jstr(json_object_array_get_idx(items, i), "id");
            for (int k = 0; k < nseen; k++)
                ck_assert_str_ne(seen[k], id);
            if (nseen < 5)
                snprintf(seen[nseen++], 40, "%s", id);
        }
        int more = json_object_object_get_ex(o, "next", &next) && next != NULL;
        if (more)
            snprintf(cursor, sizeof(cursor), "%s", json_object_get_string(next));
        json_object_put(o);
        https_response_clear(&r);
        if (!more)
            break;
    }
    ck_assert_int_eq(nseen, 5);
    ck_assert_str_eq(seen[0], ids[4]); /* newest first */
    /* the outsider's list is empty; a bad cursor is a 400 */
    snprintf(path, sizeof(path), "/v1/subjects?hub_id=%s", w.hub);
    itest_call(&srv, w.outsider, "GET", path, NULL, &r);
    ck_assert_str_eq(r.body, "{\"items\":[],\"next\":null}\n");
    https_response_clear(&r);
    ck_assert_int_eq(status_of(w.nurse, "GET", "/v1/subjects?before=bm9wZQ", NULL), 400);
    ck_assert_int_eq(status_of(w.nurse, "GET", "/v1/subjects?hub_id=xyz", NULL), 400);
    /* a query string that does not parse is a 400, not a list without its filters (libevent
     * gives no parameter at all then: this was every young person the nurse may see) */
    snprintf(path, sizeof(path), "/v1/subjects?hub_id=%s&q=quinc&x", w.hub);
    itest_call(&srv, w.nurse, "GET", path, NULL, &r);
    itest_assert_problem(&r, 400, NULL);
    https_response_clear(&r);
    snprintf(path, sizeof(path), "/v1/subjects?q=quinc&&limit=1");
    ck_assert_int_eq(status_of(w.nurse, "GET", path, NULL), 400);
    /* q is characters of UTF-8 text: 100 two-byte ones are fine, a byte that is no UTF-8 is
     * not (it was a 400 that blamed the cursor) */
    char q[1024] = "/v1/subjects?q=";
    for (int i = 0; i < 100; i++)
        strcat(q, "%C3%A9");
    ck_assert_int_eq(status_of(w.nurse, "GET", q, NULL), 200);
    ck_assert_int_eq(status_of(w.nurse, "GET", "/v1/subjects?limit=+5", NULL), 400);
    ck_assert_int_eq(status_of(w.nurse, "GET", "/v1/subjects?limit=%205", NULL), 400);
    itest_call(&srv, w.nurse, "GET", "/v1/subjects?q=%FF", NULL, &r);
    itest_assert_problem(&r, 400, NULL);
    ck_assert_msg(strstr(r.body, "UTF-8") != NULL, "%s", r.body);
    https_response_clear(&r);
    for (int i = 0; i < 5; i++)
        free(ids[i]);
}
END_TEST

static const struct {
    const char *body, *field;
    int status;
} bad[] = {
    /* %1 hub, %2 dob */
    {"{\"hub_id\":\"%s\",\"reference\":\"R1\",\"given_name\":\"A\",\"family_name\":\"B\","
     "\"date_of_birth\":\"%s\",\"status\":\"in_care\",\"key_worker\":\"K\",\"extra\":1}",
     "extra", 422},
    {"{\"hub_id\":\"%s\",\"reference\":\"R1\",\"given_name\":\"A\",\"family_name\":\"B\","
     "\"date_of_birth\":\"%s\",\"status\":\"adopted\",\"key_worker\":\"K\"}",
     "status", 422},
    {"{\"hub_id\":\"%s\",\"reference\":\"\",\"given_name\":\"A\",\"family_name\":\"B\","
     "\"date_of_birth\":\"%s\",\"status\":\"in_care\",\"key_worker\":\"K\"}",
     "reference", 422},
    {"{\"hub_id\":\"%s\",\"reference\":\"R1\",\"given_name\":\"A\",\"family_name\":\"B\","
     "\"date_of_birth\":\"%s\",\"status\":\"in_care\",\"key_worker\":\"K\","
     "\"team\":[\"00000000-0000-0000-0000-000000000000\"]}",
     "team", 422},
    /* NUL in text: was stored as "NWD-1", the rest dropped without a word (review) */
    {"{\"hub_id\":\"%s\",\"reference\":\"NWD-1\\u0000x\",\"given_name\":\"A\","
     "\"family_name\":\"B\",\"date_of_birth\":\"%s\",\"status\":\"in_care\",\"key_worker\":\"K\"}",
     NULL, 400},
};

START_TEST(bad_subjects_write_nothing)
{
    char body[1024];
    snprintf(body, sizeof(body), bad[_i].body, w.hub, dob_years_ago(14));
    char *before = itest_sql_value("SELECT count(*) FROM subjects");
    struct https_response r = {0};
    itest_call(&srv, w.mgr, "POST", "/v1/subjects", body, &r);
    itest_assert_problem(&r, bad[_i].status, bad[_i].field);
    https_response_clear(&r);
    char *after = itest_sql_value("SELECT count(*) FROM subjects");
    ck_assert_str_eq(before, after);
    free(before);
    free(after);
}
END_TEST

START_TEST(age_reference_and_hub_rules)
{
    char body[1024];
    const char *tmpl = "{\"hub_id\":\"%s\",\"reference\":\"%s\",\"given_name\":\"A\","
                       "\"family_name\":\"B\",\"date_of_birth\":\"%s\",\"status\":\"in_care\","
                       "\"key_worker\":\"K\"}";
    struct https_response r = {0};
    snprintf(body, sizeof(body), tmpl, w.hub, "AGE-1", dob_years_ago(11));
    itest_call(&srv, w.mgr, "POST", "/v1/subjects", body, &r);
    itest_assert_problem(&r, 422, "date_of_birth");
    https_response_clear(&r);
    snprintf(body, sizeof(body), tmpl, w.hub, "AGE-2", dob_years_ago(26));
    itest_call(&srv, w.mgr, "POST", "/v1/subjects", body, &r);
    itest_assert_problem(&r, 422, "date_of_birth");
    https_response_clear(&r);
    snprintf(body, sizeof(body), tmpl, w.hub, "AGE-3", "2010-02-30");
    itest_call(&srv, w.mgr, "POST", "/v1/subjects", body, &r);
    itest_assert_problem(&r, 422, "date_of_birth");
    https_response_clear(&r);
    /* the age is named in the same 422 as the other bad fields, not in a second one */
    snprintf(body, sizeof(body), tmpl, w.hub, "", dob_years_ago(30));
    itest_call(&srv, w.mgr, "POST", "/v1/subjects", body, &r);
    itest_assert_problem(&r, 422, "date_of_birth");
    ck_assert_msg(strstr(r.body, "\"reference\"") != NULL, "%s", r.body);
    https_response_clear(&r);
    const char *ref = itest_unique("DUP-");
    snprintf(body, sizeof(body), tmpl, w.hub, ref, dob_years_ago(25));
    ck_assert_int_eq(status_of(w.mgr, "POST", "/v1/subjects", body), 201);
    itest_call(&srv, w.mgr, "POST", "/v1/subjects", body, &r);
    itest_assert_problem(&r, 409, "reference");
    https_response_clear(&r);
    /* another hub's manager cannot create on this hub */
    snprintf(body, sizeof(body), tmpl, w.hub, itest_unique("X-"), dob_years_ago(13));
    ck_assert_int_eq(status_of(w.mgr2, "POST", "/v1/subjects", body), 403);
    ck_assert_int_eq(status_of(w.officer, "POST", "/v1/subjects", body), 403);
    ck_assert_int_eq(status_of(w.mgr, "GET", "/v1/subjects/nope", NULL), 404);
}
END_TEST

/* ---- intelligence */

static const char *now_minus(int minutes)
{
    static char buf[32];
    time_t t = time(NULL) - minutes * 60;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

/* POST an item as token; returns the reply (caller clears). */
static void post_intel(const char *token, const char *key, const char *body,
                       struct https_response *r)
{
    char auth[256], idem[600];
    const char *h[4] = {NULL, "Content-Type: application/json", NULL, NULL};
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    h[0] = auth;
    if (key != NULL) {
        snprintf(idem, sizeof(idem), "Idempotency-Key: %s", key);
        h[2] = idem;
    }
    itest_request(&srv, "POST", "/v1/intelligence", h, body, r);
}

static char *graded_body(const char *subject, const char *extra)
{
    char *b = NULL;
    ck_assert_int_ge(asprintf(&b,
                              "{\"subject_id\":\"%s\",\"category\":\"missing_from_home\","
                              "\"summary\":\"Missing overnight, returned 07:00\","
                              "\"occurred_at\":\"%s\",\"risk_level\":\"high\","
                              "\"grading\":{\"scheme\":\"3x5x2\",\"source\":1,"
                              "\"assessment\":\"A\",\"handling\":\"C\",\"conditions\":"
                              "\"Not to be shared with the family\"}%s}",
                              subject, now_minus(30), extra ? extra : ""),
                     0);
    return b;
}

static char *team_subject(void)
{
    char team[256];
    snprintf(team, sizeof(team), "[\"%s\",\"%s\"]", w.police, w.health);
    return new_subject(w.hub, team, "Casey");
}

static int count_in_list(const char *token, const char *subject, const char *item)
{
    char path[256];
    struct https_response r = {0};
    snprintf(path, sizeof(path), "/v1/intelligence?subject_id=%s", subject);
    itest_call(&srv, token, "GET", path, NULL, &r);
    ck_assert_msg(r.status == 200 || r.status == 403, "%d %s", r.status, r.body);
    int n = strstr(r.body, item) != NULL;
    https_response_clear(&r);
    return n;
}

START_TEST(police_post_reaches_the_team_with_conditions)
{
    char *subject = team_subject();
    char *body = graded_body(subject, NULL);
    struct https_response r = {0};
    post_intel(w.officer, NULL, body, &r);
    ck_assert_msg(r.status == 201, "%d %s", r.status, r.body);
    json_object *o = itest_json(&r), *g;
    char *id = strdup(itest_jstr(o, "id"));
    ck_assert(json_object_object_get_ex(o, "grading", &g) && g != NULL);
    ck_assert_str_eq(itest_jstr(g, "text"), "1A C");
    ck_assert_str_eq(itest_jstr(g, "conditions"), "Not to be shared with the family");
    json_object_put(o);
    https_response_clear(&r);
    char path[128];
    snprintf(path, sizeof(path), "/v1/intelligence/%s", id);
    /* the team and the hub's manager see it, conditions included; others do not */
    itest_call(&srv, w.nurse, "GET", path, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert(strstr(r.body, "Not to be shared with the family") != NULL);
    https_response_clear(&r);
    ck_assert_int_eq(status_of(w.mgr, "GET", path, NULL), 200);
    ck_assert_int_eq(status_of(w.outsider, "GET", path, NULL), 404);
    ck_assert_int_eq(status_of(w.mgr2, "GET", path, NULL), 404);
    ck_assert_int_eq(count_in_list(w.nurse, subject, id), 1);
    ck_assert_int_eq(count_in_list(w.outsider, subject, id), 0);
    /* an event row for the stream, an audit row for the post and for each read */
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT (SELECT count(*) FROM events WHERE type = 'intelligence.posted' AND "
             "record_id = '%s') || '/' || (SELECT count(*) FROM audit_log WHERE record_id = "
             "'%s' AND action = 'intelligence.create')",
             id, id);
    char *n = itest_sql_value(sql);
    ck_assert_str_eq(n, "1/1");
    free(n);
    free(id);
    free(body);
    free(subject);
}
END_TEST

START_TEST(grading_required_of_police_only)
{
    char *subject = team_subject();
    char body[1024];
    snprintf(body, sizeof(body),
             "{\"subject_id\":\"%s\",\"category\":\"ae_attendance\",\"summary\":\"A&E visit\","
             "\"occurred_at\":\"%s\",\"risk_level\":\"medium\"}",
             subject, now_minus(60));
    struct https_response r = {0};
    post_intel(w.officer, NULL, body, &r);
    itest_assert_problem(&r, 422, "grading");
    https_response_clear(&r);
    post_intel(w.nurse, NULL, body, &r);
    ck_assert_msg(r.status == 201, "%d %s", r.status, r.body);
    ck_assert(strstr(r.body, "\"grading\":null") != NULL);
    https_response_clear(&r);
    /* a young person the author cannot see: as if it did not exist */
    char *hidden = new_subject(w.hub, "[]", "Hidden");
    snprintf(body, sizeof(body),
             "{\"subject_id\":\"%s\",\"category\":\"other\",\"summary\":\"x\","
             "\"occurred_at\":\"%s\",\"risk_level\":\"low\"}",
             hidden, now_minus(5));
    post_intel(w.nurse, NULL, body, &r);
    itest_assert_problem(&r, 422, "subject_id");
    https_response_clear(&r);
    free(hidden);
    free(subject);
}
END_TEST

/* n copies of an astral character written as a JSON escape (12 bytes for one character, as
 * clients that escape all non-ASCII send it). Owned. */
static char *escaped_emoji(int n)
{
    static const char one[] = "\\ud83d\\ude00";
    char *s = malloc((size_t)n * (sizeof(one) - 1) + 1);
    for (int i = 0; i < n; i++)
        memcpy(s + (size_t)i * (sizeof(one) - 1), one, sizeof(one) - 1);
    s[(size_t)n * (sizeof(one) - 1)] = '\0';
    return s;
}

/* Every text field at its most characters, each character escaped at its longest: one
 * item's body, so it must fit the route's body limit (64 KiB refused it with 413). */
START_TEST(an_item_at_its_limits_fits_escaped)
{
    char *subject = team_subject();
    char *summary = escaped_emoji(500), *detail = escaped_emoji(10000),
         *conditions = escaped_emoji(2000), *body = NULL;
    ck_assert_int_ge(asprintf(&body,
                              "{\"subject_id\":\"%s\",\"category\":\"other\",\"summary\":\"%s\","
                              "\"detail\":\"%s\",\"occurred_at\":\"%s\",\"risk_level\":\"low\","
                              "\"grading\":{\"scheme\":\"3x5x2\",\"source\":1,\"assessment\":"
                              "\"A\",\"handling\":\"C\",\"conditions\":\"%s\"}}",
                              subject, summary, detail, now_minus(5), conditions),
                     0);
    ck_assert(strlen(body) > 150000);
    struct https_response r = {0};
    post_intel(w.officer, NULL, body, &r);
    ck_assert_msg(r.status == 201, "%d %s", r.status, r.body);
    json_object *o = itest_json(&r);
    ck_assert_int_eq(strlen(itest_jstr(o, "detail")), 4 * 10000); /* UTF-8: 4 bytes each */
    json_object_put(o);
    https_response_clear(&r);
    free(body);
    free(summary);
    free(detail);
    free(conditions);
    free(subject);
}
END_TEST

START_TEST(restricted_items_reach_only_listed_agencies)
{
    char *subject = team_subject();
    char extra[128];
    snprintf(extra, sizeof(extra), ",\"restricted_to\":[\"%s\"]", w.police);
    char *body = graded_body(subject, extra);
    struct https_response r = {0};
    post_intel(w.officer, NULL, body, &r);
    ck_assert_msg(r.status == 201, "%d %s", r.status, r.body);
    json_object *o = itest_json(&r);
    char *id = strdup(itest_jstr(o, "id"));
    json_object_put(o);
    https_response_clear(&r);
    char path[128];
    snprintf(path, sizeof(path), "/v1/intelligence/%s", id);
    ck_assert_int_eq(status_of(w.officer, "GET", path, NULL), 200);
    ck_assert_int_eq(status_of(w.nurse, "GET", path, NULL), 404); /* on the team, not listed */
    ck_assert_int_eq(status_of(w.mgr, "GET", path, NULL), 404);
    ck_assert_int_eq(count_in_list(w.nurse, subject, id), 0);
    /* nor does the hub's audit log show the manager that it exists (it shows the officer's
     * other rows about the young person) */
    char audit[160];
    snprintf(audit, sizeof(audit), "/v1/audit?subject_id=%s&limit=200", subject);
    for (int i = 0; i < 2; i++) {
        const char *reader = i == 0 ? w.mgr : w.admin;
        itest_call(&srv, reader, "GET", audit, NULL, &r);
        ck_assert_int_eq(r.status, 200);
        ck_assert_msg((strstr(r.body, id) != NULL) == (reader == w.admin), "%s: %s",
                      i == 0 ? "manager" : "admin", r.body);
        ck_assert(strstr(r.body, "subject.create") != NULL);
        https_response_clear(&r);
    }
    /* restricting to an agency off the team is refused */
    snprintf(extra, sizeof(extra), ",\"restricted_to\":[\"%s\"]", w.outsider_agency);
    free(body);
    body = graded_body(subject, extra);
    post_intel(w.officer, NULL, body, &r);
    itest_assert_problem(&r, 422, "restricted_to");
    https_response_clear(&r);
    free(body);
    free(id);
    free(subject);
}
END_TEST

START_TEST(idempotency_key_makes_retries_safe)
{
    char *subject = team_subject();
    char *body = graded_body(subject, NULL);
    const char *key = itest_unique("key-");
    struct https_response a = {0}, b = {0};
    post_intel(w.officer, key, body, &a);
    post_intel(w.officer, key, body, &b);
    ck_assert_int_eq(a.status, 201);
    ck_assert_int_eq(b.status, 201);
    ck_assert_str_eq(a.body, b.body); /* the original response */
    https_response_clear(&a);
    https_response_clear(&b);
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM intelligence WHERE idempotency_key = '%s'",
             key);
    char *n = itest_sql_value(sql);
    ck_assert_str_eq(n, "1");
    free(n);
    char *other = graded_body(subject, ",\"detail\":\"different\"");
    post_intel(w.officer, key, other, &a);
    itest_assert_problem(&a, 422, "Idempotency-Key");
    https_response_clear(&a);
    free(other);

    /* a key that is not UTF-8 is named in a 422 (PostgreSQL refused it: a 500 before); the
     * length counts characters, as the database does: 200 two-byte ones are a key */
    char *count0 = itest_sql_value("SELECT count(*) FROM intelligence");
    post_intel(w.officer, "\xff\xfe", body, &a);
    itest_assert_problem(&a, 422, "Idempotency-Key");
    https_response_clear(&a);
    char *count1 = itest_sql_value("SELECT count(*) FROM intelligence");
    ck_assert_str_eq(count0, count1);
    char wide[512] = ""; /* the officer is new in every run: the key is theirs alone */
    for (int i = 0; i < 200; i++)
        strcat(wide, "\xc3\xa9"); /* é */
    post_intel(w.officer, wide, body, &a);
    ck_assert_msg(a.status == 201, "%d %s", a.status, a.body);
    https_response_clear(&a);
    strcat(wide, "x");
    post_intel(w.officer, wide, body, &a);
    itest_assert_problem(&a, 422, "Idempotency-Key");
    https_response_clear(&a);

    /* an X-Purpose that is not UTF-8 is left out, like one too long: the route's own */
    char auth[256];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", w.officer);
    const char *h[] = {auth, "Content-Type: application/json", "X-Purpose: \xff", NULL};
    itest_request(&srv, "POST", "/v1/intelligence", h, body, &a);
    ck_assert_msg(a.status == 201, "%d %s", a.status, a.body);
    json_object *o = itest_json(&a);
    char sql2[256];
    snprintf(sql2, sizeof(sql2),
             "SELECT raise_sequence_audit() >= 0 AND (SELECT purpose FROM audit_log WHERE "
             "record_id = '%s' AND action = 'intelligence.create') = 'sharing intelligence'",
             itest_jstr(o, "id"));
    json_object_put(o);
    https_response_clear(&a);
    char *purpose_ok = itest_sql_value(sql2);
    ck_assert_str_eq(purpose_ok, "t");
    free(purpose_ok);
    free(count0);
    free(count1);
    free(body);
    free(subject);
}
END_TEST

START_TEST(retraction_keeps_the_item)
{
    char *subject = team_subject();
    char *body = graded_body(subject, NULL);
    struct https_response r = {0};
    post_intel(w.officer, NULL, body, &r);
    json_object *o = itest_json(&r);
    char *id = strdup(itest_jstr(o, "id"));
    json_object_put(o);
    https_response_clear(&r);
    char path[128];
    snprintf(path, sizeof(path), "/v1/intelligence/%s/retract", id);
    ck_assert_int_eq(status_of(w.nurse, "POST", path, "{\"reason\":\"not mine\"}"), 403);
    ck_assert_int_eq(status_of(w.outsider, "POST", path, "{\"reason\":\"x\"}"), 404);
    itest_call(&srv, w.officer, "POST", path, "{\"reason\":\"Wrong young person\"}", &r);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    ck_assert(strstr(r.body, "\"reason\":\"Wrong young person\"") != NULL);
    https_response_clear(&r);
    ck_assert_int_eq(status_of(w.officer, "POST", path, "{\"reason\":\"again\"}"), 409);
    ck_assert_int_eq(count_in_list(w.nurse, subject, id), 1); /* still there, marked */
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM events WHERE type = 'intelligence.retracted' AND "
             "record_id = '%s'",
             id);
    char *n = itest_sql_value(sql);
    ck_assert_str_eq(n, "1");
    free(n);
    free(id);
    free(body);
    free(subject);
}
END_TEST

START_TEST(intelligence_pages_newest_first)
{
    char *subject = team_subject();
    char *ids[5];
    for (int i = 0; i < 5; i++) {
        char *body = graded_body(subject, NULL);
        struct https_response r = {0};
        post_intel(w.officer, NULL, body, &r);
        json_object *o = itest_json(&r);
        ids[i] = strdup(itest_jstr(o, "id"));
        json_object_put(o);
        https_response_clear(&r);
        free(body);
    }
    char path[512], cursor[256] = "";
    int seen = 0;
    for (int page = 0; page < 5; page++) {
        snprintf(path, sizeof(path), "/v1/intelligence?subject_id=%s&limit=2%s%s", subject,
                 cursor[0] ? "&before=" : "", cursor);
        struct https_response r = {0};
        itest_call(&srv, w.nurse, "GET", path, NULL, &r);
        ck_assert_int_eq(r.status, 200);
        json_object *o = itest_json(&r), *items, *next;
        json_object_object_get_ex(o, "items", &items);
        for (size_t i = 0; i < json_object_array_length(items); i++, seen++)
            ck_assert_str_eq(itest_jstr(json_object_array_get_idx(items, i), "id"), ids[4 - seen]);
        int more = json_object_object_get_ex(o, "next", &next) && next != NULL;
        if (more)
            snprintf(cursor, sizeof(cursor), "%s", json_object_get_string(next));
        json_object_put(o);
        https_response_clear(&r);
        if (!more)
            break;
    }
    ck_assert_int_eq(seen, 5);
    ck_assert_int_eq(status_of(w.nurse, "GET", "/v1/intelligence?category=nonsense", NULL), 400);
    ck_assert_int_eq(status_of(w.nurse, "GET", "/v1/intelligence?since=yesterday", NULL), 400);
    for (int i = 0; i < 5; i++)
        free(ids[i]);
    free(subject);
}
END_TEST

/* The database holds the intelligence rules itself (sql/003, kept as domains and one
 * function since sql/009): each row below breaks one rule and must be refused with a
 * check_violation, each control row must be accepted, and an event of an unknown type is
 * refused by event_queue. All in a transaction that is rolled back: nothing stays. */
/* clang-format off */
static const char rules_sql[] =
    "BEGIN; CREATE TEMP TABLE outcome (refused int, accepted int, odd text); "
    "DO $$ DECLARE base intelligence; c jsonb; refused int := 0; accepted int := 0; "
    "  odd text := ''; ok boolean; BEGIN "
    "  SELECT * INTO base FROM intelligence WHERE subject_id = '%s' LIMIT 1; "
    "  base.category := 'other'; base.gravity := NULL; base.grading_scheme := NULL; "
    "  base.grading_source := NULL; base.grading_assessment := NULL; base.handling := NULL; "
    "  base.conditions := NULL; base.idempotency_key := NULL; base.retracted_at := NULL; "
    "  base.retracted_by := NULL; base.retraction_reason := NULL; base.detail := NULL; "
    "  FOREACH c IN ARRAY ARRAY["
    /* each refused */
    "    '{\"category\":\"burglary\"}', '{\"risk_level\":\"severe\"}', '{\"summary\":\"\"}', "
    "    jsonb_build_object('summary', repeat('s', 501)), "
    "    jsonb_build_object('detail', repeat('d', 10001)), '{\"gravity\":9}', "
    "    '{\"gravity\":3,\"category\":\"other\"}', "
    "    '{\"grading_scheme\":\"4x4\",\"grading_source\":\"1\",\"grading_assessment\":\"A\",\"handling\":\"P\"}', "
    "    '{\"grading_scheme\":\"3x5x2\",\"grading_source\":\"4\",\"grading_assessment\":\"A\",\"handling\":\"P\"}', "
    "    '{\"grading_scheme\":\"3x5x2\",\"grading_source\":\"1\",\"grading_assessment\":\"F\",\"handling\":\"P\"}', "
    "    '{\"grading_scheme\":\"3x5x2\",\"grading_source\":\"1\",\"grading_assessment\":\"A\",\"handling\":\"X\"}', "
    "    '{\"grading_scheme\":\"5x5x5\",\"grading_source\":\"A\",\"grading_assessment\":\"1\",\"handling\":\"P\"}', "
    "    '{\"grading_scheme\":\"3x5x2\",\"grading_source\":\"1\",\"grading_assessment\":\"A\"}', "
    "    '{\"grading_source\":\"1\"}', "
    "    '{\"grading_scheme\":\"3x5x2\",\"grading_source\":\"1\",\"grading_assessment\":\"A\",\"handling\":\"C\"}', "
    "    jsonb_build_object('conditions', repeat('c', 2001)), "
    "    jsonb_build_object('retracted_at', now()), "
    "    jsonb_build_object('retracted_at', now(), 'retracted_by', base.author_id, 'retraction_reason', ''), "
    "    '{\"idempotency_key\":\"\"}', "
    /* each accepted */
    "    '{\"ok\":1}', '{\"ok\":1,\"gravity\":3,\"category\":\"arrest\"}', "
    "    '{\"ok\":1,\"grading_scheme\":\"3x5x2\",\"grading_source\":\"3\",\"grading_assessment\":\"E\",\"handling\":\"C\",\"conditions\":\"x\"}', "
    "    '{\"ok\":1,\"grading_scheme\":\"5x5x5\",\"grading_source\":\"E\",\"grading_assessment\":\"5\",\"handling\":\"5\"}', "
    "    jsonb_build_object('ok', 1, 'retracted_at', now(), 'retracted_by', base.author_id, 'retraction_reason', 'r')"
    "  ]::jsonb[] LOOP "
    "    ok := c ? 'ok'; "
    "    BEGIN "
    "      INSERT INTO intelligence SELECT * FROM jsonb_populate_record(base, "
    "        (c - 'ok') || jsonb_build_object('id', gen_random_uuid())); "
    "      accepted := accepted + 1; "
    "      IF NOT ok THEN odd := odd || ' accepted ' || c::text; END IF; "
    "    EXCEPTION WHEN check_violation THEN "
    "      refused := refused + 1; "
    "      IF ok THEN odd := odd || ' refused ' || c::text; END IF; "
    "    END; "
    "  END LOOP; "
    "  BEGIN "
    "    INSERT INTO event_queue (type, record_id) VALUES ('intelligence.deleted', base.id); "
    "    odd := odd || ' event type accepted'; "
    "  EXCEPTION WHEN check_violation THEN NULL; "
    "  END; "
    "  INSERT INTO outcome VALUES (refused, accepted, odd); "
    "END $$; "
    "SELECT refused || ' ' || accepted || odd FROM outcome; ROLLBACK;\n";
/* clang-format on */

START_TEST(the_database_holds_the_intelligence_rules)
{
    char *subject = team_subject();
    char *body = graded_body(subject, NULL); /* the row the broken ones are made from */
    struct https_response r = {0};
    post_intel(w.officer, NULL, body, &r);
    ck_assert_msg(r.status == 201, "%d %s", r.status, r.body);
    https_response_clear(&r);
    free(body);
    char sql[sizeof(rules_sql) + 64];
    snprintf(sql, sizeof(sql), rules_sql, subject);
    char *out = itest_sql_value(sql);
    ck_assert_ptr_nonnull(out);
    ck_assert_str_eq(out, "19 5");
    free(out);
    free(subject);
}
END_TEST

Suite *subjects_suite(void)
{
    Suite *s = suite_create("subjects");
    TCase *tc = tcase_create("subjects");
    tcase_add_unchecked_fixture(tc, start, stop);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, create_and_see_by_need_to_know);
    tcase_add_test(tc, hub_links_count_only_for_hub_managers);
    tcase_add_test(tc, team_change_takes_effect_at_once);
    tcase_add_test(tc, concurrent_team_changes_last_one_wins);
    tcase_add_test(tc, list_search_and_pages);
    tcase_add_loop_test(tc, bad_subjects_write_nothing, 0, sizeof(bad) / sizeof(bad[0]));
    tcase_add_test(tc, age_reference_and_hub_rules);
    suite_add_tcase(s, tc);
    TCase *ti = tcase_create("intelligence");
    tcase_add_unchecked_fixture(ti, start, stop);
    tcase_set_timeout(ti, 120);
    tcase_add_test(ti, police_post_reaches_the_team_with_conditions);
    tcase_add_test(ti, grading_required_of_police_only);
    tcase_add_test(ti, restricted_items_reach_only_listed_agencies);
    tcase_add_test(ti, an_item_at_its_limits_fits_escaped);
    tcase_add_test(ti, idempotency_key_makes_retries_safe);
    tcase_add_test(ti, retraction_keeps_the_item);
    tcase_add_test(ti, intelligence_pages_newest_first);
    tcase_add_test(ti, the_database_holds_the_intelligence_rules);
    suite_add_tcase(s, ti);
    return s;
}
