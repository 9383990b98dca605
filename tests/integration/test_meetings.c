/* RAISE meetings and the agenda: scheduling rules, visibility per reader (young people,
 * restricted items never even counted), grouping under the Signs of Safety headings, the
 * order by risk, the snapshot fixed at start, 409 after close, the three formats with
 * hostile text escaped, suggestions, and a constant number of database round trips. */
#define _GNU_SOURCE
#include "harness.h"

#include <check.h>
#include <ctype.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct itest_server srv;

/* A hub with two managers, police, health and housing agencies with one user each, and a
 * second hub with its own manager. */
static struct world {
    char *admin, *hub, *hub2, *hub_agency, *police, *health, *housing;
    char *mgr, *mgr_b, *mgr2, *officer, *nurse, *outsider;
    char *mgr_b_id;
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
    w.housing = itest_new_agency(&srv, w.admin, "housing");
    w.mgr = itest_new_user(&srv, w.admin, w.hub_agency, "hub_manager", w.hub, NULL);
    w.mgr_b = itest_new_user(&srv, w.admin, w.hub_agency, "hub_manager", w.hub, &w.mgr_b_id);
    w.mgr2 = itest_new_user(&srv, w.admin, w.hub_agency, "hub_manager", w.hub2, NULL);
    w.officer = itest_new_user(&srv, w.admin, w.police, "police_liaison", NULL, NULL);
    w.nurse = itest_new_user(&srv, w.admin, w.health, "practitioner", NULL, NULL);
    w.outsider = itest_new_user(&srv, w.admin, w.housing, "practitioner", NULL, NULL);
}

static void stop(void)
{
    itest_server_stop(&srv, SIGTERM, 15);
    char **all[] = {&w.admin,   &w.hub,     &w.hub2,     &w.hub_agency, &w.police,
                    &w.health,  &w.housing, &w.mgr,      &w.mgr_b,      &w.mgr2,
                    &w.officer, &w.nurse,   &w.outsider, &w.mgr_b_id};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        free(*all[i]);
    memset(&w, 0, sizeof(w));
}

static const char *dob(void)
{
    static char buf[16];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    snprintf(buf, sizeof(buf), "%04d-06-01", tm.tm_year + 1900 - 15);
    return buf;
}

/* An RFC 3339 time days from now (negative: ago). */
static const char *when(int days)
{
    static char buf[8][32];
    static int k;
    time_t t = time(NULL) + (time_t)days * 86400;
    struct tm tm;
    gmtime_r(&t, &tm);
    char *b = buf[k++ % 8];
    strftime(b, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return b;
}

static json_object *call(const char *token, const char *method, const char *path, const char *body,
                         int want)
{
    struct https_response r = {0};
    itest_call(&srv, token, method, path, body, &r);
    ck_assert_msg(r.status == want, "%s %s: want %d, got %d %s", method, path, want, r.status,
                  r.body ? r.body : "");
    /* a refusal's problem+json is checked by status only: nothing to free */
    json_object *o = want < 300 && r.body_len && r.body[0] == '{' ? itest_json(&r) : NULL;
    https_response_clear(&r);
    return o;
}

static char *new_subject(const char *name, const char *team_json)
{
    char body[1024];
    snprintf(body, sizeof(body),
             "{\"hub_id\":\"%s\",\"reference\":\"%s\",\"given_name\":\"%s\",\"family_name\":"
             "\"Case\",\"date_of_birth\":\"%s\",\"status\":\"edge_of_care\",\"key_worker\":"
             "\"Kim Keyworker\",\"team\":%s}",
             w.hub, itest_unique(name), name, dob(), team_json);
    json_object *o = call(w.mgr, "POST", "/v1/subjects", body, 201);
    char *id = strdup(itest_jstr(o, "id"));
    json_object_put(o);
    return id;
}

/* Post an item as token; extra is more JSON members (with a leading comma) or "". */
static char *post_intel(const char *token, const char *subject, const char *category,
                        const char *risk, const char *summary, const char *extra)
{
    char body[2048];
    snprintf(body, sizeof(body),
             "{\"subject_id\":\"%s\",\"category\":\"%s\",\"summary\":\"%s\",\"occurred_at\":"
             "\"%s\",\"risk_level\":\"%s\"%s%s}",
             subject, category, summary, when(-1), risk,
             strstr(extra, "\"grading\"") ? ""
                                          : ",\"grading\":{\"source\":1,\"assessment\":\"A\","
                                            "\"handling\":\"P\"}",
             extra);
    json_object *o = call(token, "POST", "/v1/intelligence", body, 201);
    char *id = strdup(itest_jstr(o, "id"));
    json_object_put(o);
    return id;
}

/* A meeting scheduled days from now (negative: ago). */
static char *new_meeting_on(int days, const char *subjects_json, const char *agencies_json)
{
    char body[2048];
    snprintf(body, sizeof(body),
             "{\"hub_id\":\"%s\",\"title\":\"Weekly RAISE\",\"scheduled_for\":\"%s\","
             "\"location\":\"Hub meeting room\",\"subject_ids\":%s,\"invited_agencies\":%s}",
             w.hub, when(days), subjects_json, agencies_json);
    json_object *o = call(w.mgr, "POST", "/v1/meetings", body, 201);
    char *id = strdup(itest_jstr(o, "id"));
    ck_assert_str_eq(itest_jstr(o, "status"), "scheduled");
    json_object_put(o);
    return id;
}

static char *new_meeting(const char *subjects_json, const char *agencies_json)
{
    return new_meeting_on(1, subjects_json, agencies_json);
}

static json_object *member(json_object *o, const char *key)
{
    json_object *v = NULL;
    json_object_object_get_ex(o, key, &v);
    return v;
}

static size_t young_people(json_object *o)
{
    json_object *yp = member(o, "young_people");
    return yp ? json_object_array_length(yp) : 0;
}

/* The raw agenda text in a format ("json", "markdown", "html"), checking the type. */
static char *agenda_text(const char *token, const char *meeting, const char *query,
                         const char *accept, const char *want_type)
{
    char path[256];
    snprintf(path, sizeof(path), "/v1/meetings/%s/agenda%s", meeting, query);
    char auth[256], acc[128];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    snprintf(acc, sizeof(acc), "Accept: %s", accept ? accept : "*/*");
    const char *headers[] = {auth, acc, NULL};
    struct https_response r = {0};
    itest_request(&srv, "GET", path, headers, NULL, &r);
    ck_assert_msg(r.status == 200, "agenda: %d %s", r.status, r.body ? r.body : "");
    const char *ct = https_response_header(&r, "Content-Type");
    ck_assert_msg(ct && strncmp(ct, want_type, strlen(want_type)) == 0, "type %s", ct);
    char *text = strndup(r.body, r.body_len);
    https_response_clear(&r);
    return text;
}

static json_object *agenda(const char *token, const char *meeting)
{
    char *t = agenda_text(token, meeting, "", "application/json", "application/json");
    json_object *o = json_tokener_parse(t);
    free(t);
    ck_assert(o != NULL);
    return o;
}

/* The agenda entry for a young person, or NULL. */
static json_object *entry(json_object *ag, const char *subject)
{
    json_object *yp = member(ag, "young_people");
    for (size_t i = 0; yp && i < json_object_array_length(yp); i++) {
        json_object *e = json_object_array_get_idx(yp, i);
        if (strcmp(json_object_get_string(member(member(e, "subject"), "id")), subject) == 0)
            return e;
    }
    return NULL;
}

static int has_summary(json_object *list, const char *summary)
{
    for (size_t i = 0; list && i < json_object_array_length(list); i++)
        if (strcmp(json_object_get_string(member(json_object_array_get_idx(list, i), "summary")),
                   summary) == 0)
            return 1;
    return 0;
}

START_TEST(schedule_rules_and_visibility)
{
    char team[256], subjects[256], invited[256], path[128], body[512];
    snprintf(team, sizeof(team), "[\"%s\"]", w.police);
    char *a = new_subject("Ava", team);
    snprintf(team, sizeof(team), "[\"%s\"]", w.health);
    char *b = new_subject("Ben", team);
    snprintf(subjects, sizeof(subjects), "[\"%s\",\"%s\"]", a, b);
    snprintf(invited, sizeof(invited), "[\"%s\",\"%s\"]", w.police, w.health);
    char *m = new_meeting(subjects, invited);
    snprintf(path, sizeof(path), "/v1/meetings/%s", m);

    json_object *o = call(w.mgr, "GET", path, NULL, 200);
    ck_assert_int_eq(young_people(o), 2); /* the hub's manager sees everyone */
    ck_assert_int_eq(json_object_array_length(member(o, "invited_agencies")), 2);
    ck_assert(member(member(o, "chair"), "display_name") != NULL);
    json_object_put(o);
    o = call(w.officer, "GET", path, NULL, 200); /* police: only the young person on its team */
    ck_assert_int_eq(young_people(o), 1);
    ck_assert_str_eq(itest_jstr(json_object_array_get_idx(member(o, "young_people"), 0), "id"), a);
    ck_assert(strstr(json_object_to_json_string(o), "_team") == NULL);
    json_object_put(o);
    o = call(w.nurse, "GET", path, NULL, 200);
    ck_assert_int_eq(young_people(o), 1);
    json_object_put(o);
    call(w.outsider, "GET", path, NULL, 404); /* not invited */
    call(w.mgr2, "GET", path, NULL, 404);     /* another hub */
    call(w.admin, "GET", path, NULL, 403);

    /* list: by hub and date range */
    char list[256];
    snprintf(list, sizeof(list), "/v1/meetings?hub_id=%s&from=%s&to=%s", w.hub, when(0), when(2));
    /* each a summary: how many of its young people the reader may see, not who, and no
     * minutes or actions */
    static const struct {
        char **token;
        int count;
    } lists[] = {{&w.officer, 1}, {&w.mgr, 2}};
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
        o = call(*lists[i].token, "GET", list, NULL, 200);
        ck_assert_int_eq(json_object_array_length(member(o, "items")), 1);
        json_object *item = json_object_array_get_idx(member(o, "items"), 0);
        ck_assert_str_eq(itest_jstr(item, "id"), m);
        ck_assert_int_eq(json_object_get_int(member(item, "young_people_count")), lists[i].count);
        ck_assert(!json_object_object_get_ex(item, "young_people", NULL));
        ck_assert(strstr(json_object_to_json_string(item), a) == NULL);
        ck_assert(member(member(item, "chair"), "display_name") != NULL);
        json_object_put(o);
    }
    {
        char q[320];
        snprintf(q, sizeof(q),
                 "SELECT count(*) || ' ' || count(subject_id) FROM audit_log WHERE action = "
                 "'meeting.list' AND record_id = '%s' AND role IN ('police_liaison', "
                 "'hub_manager')",
                 m);
        char *v = NULL;
        for (int k = 0; k < 40 && (v == NULL || strcmp(v, "2 0") != 0); k++) {
            free(v); /* the audit lane chains the rows just after the replies */
            itest_sleep_ms(k ? 50 : 0);
            v = itest_sql_value(q);
        }
        ck_assert_msg(v && strcmp(v, "2 0") == 0, "%s", v);
        free(v);
    }
    snprintf(list, sizeof(list), "/v1/meetings?hub_id=%s&from=%s", w.hub, when(3));
    o = call(w.mgr, "GET", list, NULL, 200);
    ck_assert_int_eq(json_object_array_length(member(o, "items")), 0);
    json_object_put(o);
    o = call(w.outsider, "GET", "/v1/meetings", NULL, 200);
    ck_assert_int_eq(json_object_array_length(member(o, "items")), 0);
    json_object_put(o);
    call(w.mgr, "GET", "/v1/meetings?from=yesterday", NULL, 400);

    /* scheduling rules */
    snprintf(body, sizeof(body), "{\"hub_id\":\"%s\",\"title\":\"X\",\"scheduled_for\":\"%s\"}",
             w.hub, when(1));
    call(w.mgr2, "POST", "/v1/meetings", body, 403); /* not this hub's manager */
    call(w.officer, "POST", "/v1/meetings", body, 403);
    struct https_response r = {0};
    snprintf(body, sizeof(body),
             "{\"hub_id\":\"%s\",\"title\":\"\",\"scheduled_for\":\"soon\",\"subject_ids\":"
             "[\"%s\"],\"colour\":1}",
             w.hub, a);
    itest_call(&srv, w.mgr, "POST", "/v1/meetings", body, &r);
    itest_assert_problem(&r, 422, "title");
    ck_assert(strstr(r.body, "scheduled_for") && strstr(r.body, "colour"));
    https_response_clear(&r);
    /* a young person of another hub */
    char *c2 = NULL;
    {
        snprintf(body, sizeof(body),
                 "{\"hub_id\":\"%s\",\"reference\":\"%s\",\"given_name\":\"Cy\",\"family_name\":"
                 "\"Other\",\"date_of_birth\":\"%s\",\"status\":\"in_care\",\"key_worker\":"
                 "\"K\"}",
                 w.hub2, itest_unique("O"), dob());
        o = call(w.mgr2, "POST", "/v1/subjects", body, 201);
        c2 = strdup(itest_jstr(o, "id"));
        json_object_put(o);
    }
    char *before = itest_sql_value("SELECT count(*) FROM meetings");
    snprintf(body, sizeof(body),
             "{\"hub_id\":\"%s\",\"title\":\"X\",\"scheduled_for\":\"%s\",\"subject_ids\":"
             "[\"%s\"]}",
             w.hub, when(1), c2);
    itest_call(&srv, w.mgr, "POST", "/v1/meetings", body, &r);
    itest_assert_problem(&r, 422, "subject_ids");
    https_response_clear(&r);
    char *after = itest_sql_value("SELECT count(*) FROM meetings");
    ck_assert_str_eq(before, after); /* nothing written */

    /* the schedule is streamed and audited */
    char sql[640];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM events WHERE type = 'meeting.scheduled' "
             "AND record_id = '%s'",
             m);
    char *n = itest_sql_value(sql);
    ck_assert_str_eq(n, "1");
    free(n);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM audit_log WHERE action = 'meeting.read' AND record_id = '%s'",
             m);
    n = itest_sql_value(sql);
    ck_assert(atoi(n) >= 3);
    free(n);
    /* each read is audited under every young person the reader saw, and no other */
    static const struct {
        const char *role, *want;
    } reads[] = {{"hub_manager", "ab"}, {"police_liaison", "a"}, {"practitioner", "b"}};
    for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
        snprintf(sql, sizeof(sql),
                 "SELECT coalesce(string_agg(x, '' ORDER BY x), 'none') FROM (SELECT DISTINCT "
                 "CASE subject_id WHEN '%s' THEN 'a' WHEN '%s' THEN 'b' ELSE '?' END x FROM "
                 "audit_log WHERE action = 'meeting.read' AND record_id = '%s' AND role = '%s') t",
                 a, b, m, reads[i].role);
        n = itest_sql_value(sql);
        ck_assert_msg(strcmp(n, reads[i].want) == 0, "%s: %s", reads[i].role, n);
        free(n);
    }
    /* a reader who sees none of its young people: one row, naming none */
    snprintf(subjects, sizeof(subjects), "[\"%s\"]", a);
    snprintf(invited, sizeof(invited), "[\"%s\"]", w.health);
    char *m2 = new_meeting(subjects, invited);
    snprintf(path, sizeof(path), "/v1/meetings/%s", m2);
    o = call(w.nurse, "GET", path, NULL, 200);
    ck_assert_int_eq(young_people(o), 0);
    json_object_put(o);
    /* its agenda: the same */
    static const char *const reads_m2[] = {"meeting.read", "meeting.agenda"};
    snprintf(path, sizeof(path), "/v1/meetings/%s/agenda", m2);
    json_object_put(call(w.nurse, "GET", path, NULL, 200));
    for (size_t i = 0; i < sizeof(reads_m2) / sizeof(reads_m2[0]); i++) {
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) || ' ' || count(subject_id) FROM audit_log WHERE action = "
                 "'%s' AND record_id = '%s' AND role = 'practitioner'",
                 reads_m2[i], m2);
        n = itest_sql_value(sql);
        ck_assert_msg(strcmp(n, "1 0") == 0, "%s: %s", reads_m2[i], n);
        free(n);
    }
    free(m2);
    free(before);
    free(after);
    free(c2);
    free(a);
    free(b);
    free(m);
}
END_TEST

START_TEST(agenda_groups_orders_and_hides)
{
    char team[256], subjects[256], invited[256], extra[256];
    snprintf(team, sizeof(team), "[\"%s\",\"%s\"]", w.police, w.health);
    char *calm = new_subject("Calm", team), *risky = new_subject("Risky", team);
    free(post_intel(w.officer, calm, "school_exclusion", "low", "Excluded for a day", ""));
    char *i1 = post_intel(w.officer, risky, "missing_from_home", "critical",
                          "Missing overnight, found in another town", "");
    free(post_intel(w.officer, risky, "arrest", "high", "Arrested for robbery", ",\"gravity\":5"));
    free(
        post_intel(w.nurse, risky, "positive_progress", "low", "Attended every CAMHS session", ""));
    snprintf(extra, sizeof(extra), ",\"restricted_to\":[\"%s\"]", w.police);
    free(post_intel(w.officer, risky, "cce_county_lines", "critical",
                    "Police-only county lines intelligence", extra));
    /* an overdue action owned by health, and an open one */
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "INSERT INTO actions (subject_id, hub_id, owner_agency_id, description, due_date, "
             "created_by) SELECT '%s', '%s', '%s', 'Arrange a health assessment', "
             "current_date - 3, id FROM users LIMIT 1; "
             "INSERT INTO actions (subject_id, hub_id, owner_agency_id, description, due_date, "
             "created_by) SELECT '%s', '%s', '%s', 'Safety plan review', current_date + 7, id "
             "FROM users LIMIT 1",
             risky, w.hub, w.health, risky, w.hub, w.health);
    ck_assert_int_eq(itest_sql(sql), 0);

    snprintf(subjects, sizeof(subjects), "[\"%s\",\"%s\"]", calm, risky);
    snprintf(invited, sizeof(invited), "[\"%s\",\"%s\"]", w.police, w.health);
    char *m = new_meeting(subjects, invited);

    json_object *ag = agenda(w.officer, m);
    ck_assert_str_eq(itest_jstr(ag, "marking"), "OFFICIAL-SENSITIVE");
    ck_assert_int_eq(young_people(ag), 2);
    /* ordered by score: the young person with the missing episode and arrest first */
    json_object *first = json_object_array_get_idx(member(ag, "young_people"), 0);
    ck_assert_str_eq(itest_jstr(member(first, "subject"), "id"), risky);
    json_object *e = entry(ag, risky);
    ck_assert(has_summary(member(e, "worried_about"), "Missing overnight, found in another town"));
    ck_assert(has_summary(member(e, "worried_about"), "Police-only county lines intelligence"));
    ck_assert(has_summary(member(e, "working_well"), "Attended every CAMHS session"));
    ck_assert(!has_summary(member(e, "worried_about"), "Attended every CAMHS session"));
    json_object *item = json_object_array_get_idx(member(e, "worried_about"), 0);
    ck_assert(member(item, "grading") != NULL);
    json_object *nth = member(e, "needs_to_happen");
    ck_assert_int_eq(json_object_array_length(member(nth, "overdue")), 1);
    ck_assert_int_eq(json_object_array_length(member(nth, "open")), 1);
    ck_assert_str_eq(
        itest_jstr(json_object_array_get_idx(member(nth, "overdue"), 0), "description"),
        "Arrange a health assessment");
    const char *reasons = json_object_to_json_string(member(e, "reasons"));
    ck_assert_msg(strstr(reasons, "1 missing from home episode") != NULL, "%s", reasons);
    ck_assert_msg(strstr(reasons, "1 overdue action") != NULL, "%s", reasons);
    ck_assert_msg(strstr(reasons, "highest gravity 5") != NULL, "%s", reasons);
    ck_assert_msg(strstr(reasons, "3 new items of concern") != NULL, "%s", reasons);
    double police_score = json_object_get_double(member(e, "score"));
    json_object_put(ag);

    /* the nurse is not allowed the restricted item: not shown, not counted, not scored */
    ag = agenda(w.nurse, m);
    e = entry(ag, risky);
    ck_assert(!has_summary(member(e, "worried_about"), "Police-only county lines intelligence"));
    reasons = json_object_to_json_string(member(e, "reasons"));
    ck_assert_msg(strstr(reasons, "2 new items of concern") != NULL, "%s", reasons);
    ck_assert(json_object_get_double(member(e, "score")) < police_score);
    char *all = strdup(json_object_to_json_string(ag));
    ck_assert(strstr(all, "county lines") == NULL);
    free(all);
    json_object_put(ag);
    char *md = agenda_text(w.nurse, m, "?format=markdown", NULL, "text/markdown");
    char *html = agenda_text(w.nurse, m, "", "text/html", "text/html");
    ck_assert(strstr(md, "county lines") == NULL && strstr(html, "county lines") == NULL);
    ck_assert(strstr(md, "Missing overnight") != NULL && strstr(html, "Missing overnight"));
    free(md);
    free(html);

    /* a retracted item leaves the live agenda */
    char path[256];
    snprintf(path, sizeof(path), "/v1/intelligence/%s/retract", i1);
    json_object_put(call(w.officer, "POST", path, "{\"reason\":\"wrong young person\"}", 200));
    ag = agenda(w.mgr, m);
    ck_assert(!has_summary(member(entry(ag, risky), "worried_about"),
                           "Missing overnight, found in another town"));
    json_object_put(ag);

    /* the housing practitioner is not invited */
    snprintf(path, sizeof(path), "/v1/meetings/%s/agenda", m);
    call(w.outsider, "GET", path, NULL, 404);
    call(w.mgr2, "GET", path, NULL, 404);
    free(i1);
    free(calm);
    free(risky);
    free(m);
}
END_TEST

START_TEST(start_fixes_agenda_close_locks)
{
    char team[256], subjects[256], invited[256], path[256], body[1024];
    snprintf(team, sizeof(team), "[\"%s\"]", w.police);
    char *a = new_subject("Dee", team), *b = new_subject("Eli", team);
    free(post_intel(w.officer, a, "self_harm", "high", "Before the meeting", ""));
    snprintf(subjects, sizeof(subjects), "[\"%s\"]", a);
    snprintf(invited, sizeof(invited), "[\"%s\"]", w.police);
    char *m = new_meeting(subjects, invited);

    /* attendance and minutes before the start; a minute for someone not on it is 422 */
    snprintf(path, sizeof(path), "/v1/meetings/%s", m);
    snprintf(body, sizeof(body),
             "{\"attendance\":[{\"name\":\"PC Lee\",\"agency_id\":\"%s\"}],\"minutes\":"
             "[{\"subject_id\":\"%s\",\"worried_about\":\"Self-harm\"}]}",
             w.police, a);
    json_object *o = call(w.mgr, "PATCH", path, body, 200);
    ck_assert_int_eq(json_object_array_length(member(o, "attendance")), 1);
    json_object *yp = json_object_array_get_idx(member(o, "young_people"), 0);
    ck_assert_str_eq(itest_jstr(member(yp, "minutes"), "worried_about"), "Self-harm");
    json_object_put(o);
    struct https_response r = {0};
    snprintf(body, sizeof(body), "{\"minutes\":[{\"subject_id\":\"%s\",\"decisions\":\"x\"}]}", b);
    itest_call(&srv, w.mgr, "PATCH", path, body, &r);
    itest_assert_problem(&r, 422, "minutes");
    https_response_clear(&r);
    /* the same young person added and removed, in other letter case: 422 (review) */
    char upper[40];
    snprintf(upper, sizeof(upper), "%s", b);
    for (char *c = upper; *c; c++)
        *c = (char)toupper((unsigned char)*c);
    snprintf(body, sizeof(body), "{\"add_subjects\":[\"%s\"],\"remove_subjects\":[\"%s\"]}", upper,
             b);
    itest_call(&srv, w.mgr, "PATCH", path, body, &r);
    itest_assert_problem(&r, 422, "remove_subjects");
    https_response_clear(&r);
    /* one young person twice in one PATCH's minutes: 422, not a 500 (review) */
    snprintf(body, sizeof(body),
             "{\"minutes\":[{\"subject_id\":\"%s\",\"decisions\":\"a\"},"
             "{\"subject_id\":\"%s\",\"working_well\":\"b\"}]}",
             a, a);
    itest_call(&srv, w.mgr, "PATCH", path, body, &r);
    itest_assert_problem(&r, 422, "minutes");
    https_response_clear(&r);
    itest_call(&srv, w.mgr, "PATCH", path, "{\"attendance\":[{\"name\":\"\"}]}", &r);
    itest_assert_problem(&r, 422, "attendance[0].name");
    ck_assert(strstr(r.body, "attendance[0].agency_id") != NULL);
    https_response_clear(&r);
    call(w.officer, "PATCH", path, "{\"title\":\"x\"}", 403);

    /* only the chair starts; then the agenda is fixed */
    char sp[256];
    snprintf(sp, sizeof(sp), "/v1/meetings/%s/start", m);
    call(w.mgr_b, "POST", sp, NULL, 403);
    snprintf(sp, sizeof(sp), "/v1/meetings/%s/close", m);
    call(w.mgr, "POST", sp, NULL, 409); /* not started */
    snprintf(sp, sizeof(sp), "/v1/meetings/%s/start", m);
    o = call(w.mgr, "POST", sp, NULL, 200);
    ck_assert_str_eq(itest_jstr(o, "status"), "started");
    json_object_put(o);
    call(w.mgr, "POST", sp, NULL, 409);
    free(post_intel(w.officer, a, "arrest", "high", "After the start", ""));
    json_object *ag = agenda(w.officer, m);
    ck_assert(json_object_get_boolean(member(ag, "frozen")));
    json_object *e = entry(ag, a);
    ck_assert(has_summary(member(e, "worried_about"), "Before the meeting"));
    ck_assert(!has_summary(member(e, "worried_about"), "After the start"));
    json_object_put(ag);
    /* its young people are fixed with the agenda */
    snprintf(body, sizeof(body), "{\"add_subjects\":[\"%s\"]}", b);
    call(w.mgr, "PATCH", path, body, 409);
    /* the chair can hand over; the new chair closes */
    snprintf(body, sizeof(body), "{\"chair_id\":\"%s\"}", w.mgr_b_id);
    json_object_put(call(w.mgr, "PATCH", path, body, 200));
    snprintf(sp, sizeof(sp), "/v1/meetings/%s/close", m);
    call(w.mgr, "POST", sp, NULL, 403);
    json_object_put(call(w.mgr_b, "POST", sp, NULL, 200));
    call(w.mgr_b, "POST", sp, NULL, 409);
    /* closed: minutes and attendance are locked */
    snprintf(body, sizeof(body), "{\"minutes\":[{\"subject_id\":\"%s\",\"decisions\":\"x\"}]}", a);
    call(w.mgr, "PATCH", path, body, 409);
    call(w.mgr_b, "PATCH", path, "{\"attendance\":[]}", 409);

    /* a later meeting's agenda starts from this discussion: the earlier item is gone */
    snprintf(subjects, sizeof(subjects), "[\"%s\"]", a);
    char *m2 = new_meeting(subjects, invited);
    ag = agenda(w.officer, m2);
    e = entry(ag, a);
    ck_assert(has_summary(member(e, "worried_about"), "After the start"));
    ck_assert(!has_summary(member(e, "worried_about"), "Before the meeting"));
    ck_assert(member(e, "last_discussed") != NULL);
    json_object_put(ag);

    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT string_agg(type, ',' ORDER BY id) FROM events WHERE record_id = '%s'", m);
    char *types = itest_sql_value(sql);
    ck_assert_str_eq(types, "meeting.scheduled,meeting.updated,meeting.started,"
                            "meeting.updated,meeting.closed");
    free(types);
    free(a);
    free(b);
    free(m);
    free(m2);
}
END_TEST

/* Two changes of one meeting's attendance at once: the one that waited for the other's lock
 * must replace the list whole, not add to what the other wrote (two lists became one list of
 * both; found in review). The other change is made by hand here, in a transaction that holds
 * the meeting's row for 2 s while the PATCH waits. */
START_TEST(concurrent_attendance_changes_do_not_merge)
{
    char team[256], subjects[256], invited[256], path[256], body[512], sql[1024], *n;
    snprintf(team, sizeof(team), "[\"%s\"]", w.police);
    char *a = new_subject("Fay", team);
    snprintf(subjects, sizeof(subjects), "[\"%s\"]", a);
    snprintf(invited, sizeof(invited), "[\"%s\"]", w.police);
    char *m = new_meeting(subjects, invited);
    snprintf(path, sizeof(path), "/v1/meetings/%s", m);
    char tag[64];
    snprintf(tag, sizeof(tag), "attendance-race-%.36s", m);
    snprintf(sql, sizeof(sql),
             "BEGIN; UPDATE meetings SET updated_at = now() WHERE id = '%s'; "
             "DELETE FROM meeting_attendance WHERE meeting_id = '%s'; "
             "INSERT INTO meeting_attendance (meeting_id, position, name, agency_id) "
             "VALUES ('%s', 1, 'By hand', '%s'); SELECT pg_sleep(2); COMMIT;",
             m, m, m, w.police);
    struct itest_hold *h = itest_hold_start(tag, sql);
    snprintf(body, sizeof(body),
             "{\"attendance\":[{\"name\":\"PC Patched\",\"agency_id\":\"%s\"}]}", w.police);
    json_object *o = call(w.mgr, "PATCH", path, body, 200); /* waits for the hold */
    itest_hold_end(h);
    ck_assert_int_eq(json_object_array_length(member(o, "attendance")), 1);
    json_object_put(o);
    snprintf(sql, sizeof(sql),
             "SELECT string_agg(name, ',' ORDER BY position) FROM meeting_attendance WHERE "
             "meeting_id = '%s'",
             m);
    n = itest_sql_value(sql);
    ck_assert_str_eq(n, "PC Patched"); /* not "By hand" too */
    free(n);
    free(m);
    free(a);
}
END_TEST

/* A young person added while the start waited for the meeting's lock is on its agenda too,
 * with a window (found in review: the start read the meeting's young people as they were
 * before it waited, and the one added had no window and no agenda items). The addition is
 * made by hand here, as a PATCH would, holding the meeting's row for 2 s. */
START_TEST(a_start_sees_a_young_person_added_while_it_waited)
{
    char team[256], subjects[256], invited[256], path[256], sql[1024], tag[64];
    snprintf(team, sizeof(team), "[\"%s\"]", w.police);
    char *a = new_subject("Gus", team), *b = new_subject("Hal", team);
    free(post_intel(w.officer, b, "arrest", "high", "For the late addition", ""));
    snprintf(subjects, sizeof(subjects), "[\"%s\"]", a);
    snprintf(invited, sizeof(invited), "[\"%s\"]", w.police);
    char *m = new_meeting(subjects, invited);
    snprintf(tag, sizeof(tag), "start-race-%.36s", m);
    snprintf(sql, sizeof(sql),
             "BEGIN; UPDATE meetings SET updated_at = now() WHERE id = '%s'; "
             "INSERT INTO meeting_subjects (meeting_id, subject_id) VALUES ('%s', '%s'); "
             "SELECT pg_sleep(2); COMMIT;",
             m, m, b);
    struct itest_hold *h = itest_hold_start(tag, sql);
    snprintf(path, sizeof(path), "/v1/meetings/%s/start", m);
    json_object_put(call(w.mgr, "POST", path, NULL, 200)); /* waits for the hold */
    itest_hold_end(h);
    snprintf(sql, sizeof(sql),
             "SELECT (SELECT since IS NOT NULL FROM meeting_subjects WHERE meeting_id = '%s' AND "
             "subject_id = '%s') || '/' || (SELECT count(*) FROM meeting_agenda_items WHERE "
             "meeting_id = '%s' AND subject_id = '%s')",
             m, b, m, b);
    char *n = itest_sql_value(sql);
    ck_assert_str_eq(n, "true/1"); /* a window, and the arrest on the agenda */
    free(n);
    free(m);
    free(a);
    free(b);
}
END_TEST

START_TEST(formats_escape_everything)
{
    char team[256], subjects[256], invited[256];
    snprintf(team, sizeof(team), "[\"%s\"]", w.police);
    char *a = new_subject("Fay", team);
    const char *evil = "<script>alert(1)</script> *bold* _u_ [link](http://x) # not a heading | "
                       "& `code`";
    char *id = post_intel(w.officer, a, "other", "medium", evil,
                          ",\"grading\":{\"source\":2,\"assessment\":\"B\",\"handling\":\"C\","
                          "\"conditions\":\"<b>Do not</b> share with the family\"}");
    snprintf(subjects, sizeof(subjects), "[\"%s\"]", a);
    snprintf(invited, sizeof(invited), "[\"%s\"]", w.police);
    char *m = new_meeting(subjects, invited);

    char *html = agenda_text(w.officer, m, "?format=html", "application/json", "text/html");
    ck_assert(strstr(html, "<script>") == NULL);
    ck_assert(strstr(html, "&lt;script&gt;alert(1)&lt;/script&gt;") != NULL);
    ck_assert(strstr(html, "&lt;b&gt;Do not&lt;/b&gt; share with the family") != NULL);
    ck_assert(strstr(html, "<b>Do not") == NULL);
    ck_assert(strstr(html, "2B C") != NULL);
    ck_assert(strstr(html, "OFFICIAL-SENSITIVE") != strstr(html, "</body>")); /* top ... */
    char *last = strstr(html, "<div class=\"marking\">OFFICIAL-SENSITIVE</div>\n</body>");
    ck_assert(last != NULL); /* ... bottom */
    ck_assert(strstr(html, "<div class=\"marking\">OFFICIAL-SENSITIVE</div>") < last);
    ck_assert(strstr(html, "@page{size:A4") != NULL);
    free(html);

    char *md = agenda_text(w.officer, m, "", "text/markdown", "text/markdown");
    ck_assert(strncmp(md, "**OFFICIAL-SENSITIVE**", 22) == 0);
    ck_assert(strstr(md, "**OFFICIAL-SENSITIVE**\n") != NULL &&
              strcmp(md + strlen(md) - 23, "**OFFICIAL-SENSITIVE**\n") == 0);
    ck_assert(strstr(md, "<script>") == NULL);
    ck_assert(strstr(md, "&lt;script&gt;") != NULL);
    ck_assert(strstr(md, "\\*bold\\*") != NULL);
    ck_assert(strstr(md, "\\[link\\]\\(http://x\\)") != NULL);
    ck_assert(strstr(md, "\\# not a heading \\|") != NULL);
    ck_assert(strstr(md, "\\`code\\`") != NULL);
    ck_assert(strstr(md, "Handling conditions:** &lt;b&gt;Do not&lt;/b&gt;") != NULL);
    free(md);

    char *json = agenda_text(w.officer, m, "?format=json", "text/html", "application/json");
    json_object *o = json_tokener_parse(json);
    ck_assert(o != NULL);
    ck_assert(has_summary(member(entry(o, a), "worried_about"), evil));
    json_object_put(o);
    free(json);

    /* the HTML page may load nothing and run nothing */
    char path[256], auth[256];
    snprintf(path, sizeof(path), "/v1/meetings/%s/agenda?format=html", m);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", w.officer);
    const char *headers[] = {auth, NULL};
    struct https_response r = {0};
    itest_request(&srv, "GET", path, headers, NULL, &r);
    const char *csp = https_response_header(&r, "Content-Security-Policy");
    ck_assert(csp && strstr(csp, "default-src 'none'") && strstr(csp, "style-src 'sha256-"));
    https_response_clear(&r);
    snprintf(path, sizeof(path), "/v1/meetings/%s/agenda?format=pdf", m);
    itest_call(&srv, w.officer, "GET", path, NULL, &r);
    ck_assert_int_eq(r.status, 400);
    https_response_clear(&r);
    snprintf(path, sizeof(path), "/v1/meetings/%s/agenda", m);
    const char *xml[] = {auth, "Accept: application/xml", NULL};
    itest_request(&srv, "GET", path, xml, NULL, &r);
    itest_assert_problem(&r, 406, NULL);
    https_response_clear(&r);
    const char *refused[] = {auth, "Accept: text/html;q=0, text/markdown;q=0", NULL};
    itest_request(&srv, "GET", path, refused, NULL, &r);
    itest_assert_problem(&r, 406, NULL); /* q=0 refuses; it was served the first one named */
    https_response_clear(&r);
    /* q: HTML refused, markdown preferred to JSON */
    char *pref = agenda_text(w.officer, m, "", "text/html;q=0, application/json;q=0.5, */*",
                             "text/markdown");
    free(pref);
    free(id);
    free(a);
    free(m);
}
END_TEST

/* A chair who no longer manages the meeting's hub, but still sees the meeting (their agency
 * is invited), may not start or close it: the chair must be a manager of the hub, and a
 * PATCH already required it (review). */
START_TEST(a_chair_who_no_longer_manages_the_hub_cannot_start)
{
    char *uid = NULL,
         *chair = itest_new_user(&srv, w.admin, w.hub_agency, "hub_manager", w.hub, &uid);
    char invited[96], path[128], body[128];
    snprintf(invited, sizeof(invited), "[\"%s\"]", w.hub_agency);
    char mbody[512];
    snprintf(mbody, sizeof(mbody),
             "{\"hub_id\":\"%s\",\"title\":\"Chair moves\",\"scheduled_for\":\"%s\","
             "\"invited_agencies\":%s}",
             w.hub, when(1), invited);
    json_object *m = call(chair, "POST", "/v1/meetings", mbody, 201);
    snprintf(path, sizeof(path), "/v1/users/%s", uid);
    snprintf(body, sizeof(body), "{\"hub_ids\":[\"%s\"]}", w.hub2);
    json_object_put(call(w.admin, "PATCH", path, body, 200));
    snprintf(path, sizeof(path), "/v1/meetings/%s", itest_jstr(m, "id"));
    json_object_put(call(chair, "GET", path, NULL, 200)); /* still sees it: agency invited */
    snprintf(path, sizeof(path), "/v1/meetings/%s/start", itest_jstr(m, "id"));
    call(chair, "POST", path, NULL, 403);
    snprintf(path, sizeof(path), "/v1/meetings/%s", itest_jstr(m, "id"));
    json_object *now = call(w.mgr, "GET", path, NULL, 200);
    ck_assert_str_eq(itest_jstr(now, "status"), "scheduled");
    json_object_put(now);
    json_object_put(m);
    free(chair);
    free(uid);
}
END_TEST

/* An item posted as a meeting starts, committed just after: not on that meeting's agenda (it
 * could not see it), but on the next one's. Its created_at, when its transaction began, is
 * before the first meeting's start: with the window "created since the last meeting" it was
 * on no agenda at all (review). */
START_TEST(an_item_committed_as_a_meeting_starts_is_on_the_next_agenda)
{
    char team[128], subjects[96], invited[96], path[128];
    snprintf(team, sizeof(team), "[\"%s\"]", w.police);
    char *c = new_subject("Late", team);
    char *first = post_intel(w.officer, c, "cse_concern", "high", "Before the first meeting", "");
    snprintf(subjects, sizeof(subjects), "[\"%s\"]", c);
    snprintf(invited, sizeof(invited), "[\"%s\"]", w.police);
    char *m1 = new_meeting_on(-1, subjects, invited);
    char tag[64], hold[1024];
    snprintf(tag, sizeof(tag), "late-item-%.36s", m1);
    snprintf(hold, sizeof(hold),
             "BEGIN; INSERT INTO intelligence (subject_id, author_id, author_agency_id, category, "
             "summary, occurred_at, risk_level, grading_scheme, grading_source, "
             "grading_assessment, handling) SELECT subject_id, author_id, author_agency_id, "
             "category, 'Committed as the meeting started', occurred_at, risk_level, "
             "grading_scheme, grading_source, grading_assessment, handling FROM intelligence "
             "WHERE id = '%s'; SELECT pg_sleep(2); COMMIT;",
             first);
    struct itest_hold *h = itest_hold_start(tag, hold);
    snprintf(path, sizeof(path), "/v1/meetings/%s/start", m1);
    json_object_put(call(w.mgr, "POST", path, NULL, 200)); /* while the item is uncommitted */
    itest_hold_end(h);
    json_object *ag = agenda(w.mgr, m1), *e = entry(ag, c);
    ck_assert_ptr_nonnull(e);
    ck_assert(has_summary(member(e, "worried_about"), "Before the first meeting"));
    ck_assert(!has_summary(member(e, "worried_about"), "Committed as the meeting started"));
    json_object_put(ag);
    char *m2 = new_meeting_on(1, subjects, invited);
    for (int started = 0; started < 2; started++) { /* live, then fixed at its start */
        ag = agenda(w.mgr, m2);
        e = entry(ag, c);
        ck_assert_ptr_nonnull(e);
        ck_assert_msg(has_summary(member(e, "worried_about"), "Committed as the meeting started"),
                      "%s", json_object_to_json_string(e));
        ck_assert(!has_summary(member(e, "worried_about"), "Before the first meeting"));
        json_object_put(ag);
        snprintf(path, sizeof(path), "/v1/meetings/%s/start", m2);
        if (!started)
            json_object_put(call(w.mgr, "POST", path, NULL, 200));
    }
    free(m2);
    free(m1);
    free(first);
    free(c);
}
END_TEST

START_TEST(suggestions_rank_with_reasons)
{
    char team[256], path[256];
    snprintf(team, sizeof(team), "[\"%s\"]", w.police);
    char *quiet = new_subject("Quiet", team), *loud = new_subject("Loud", team);
    free(post_intel(w.officer, loud, "cse_concern", "critical", "Seen with older men", ""));
    /* next_meeting: an upcoming meeting before one that was never held; with none upcoming,
     * the last one not held (its scheduled_for says it is past) */
    char both[160], one[96], agencies[64];
    snprintf(both, sizeof(both), "[\"%s\",\"%s\"]", quiet, loud);
    snprintf(one, sizeof(one), "[\"%s\"]", loud);
    snprintf(agencies, sizeof(agencies), "[\"%s\"]", w.police);
    char *long_ago = new_meeting_on(-20, both, agencies),
         *stale = new_meeting_on(-10, both, agencies);
    char *soon = new_meeting_on(3, one, agencies), *later = new_meeting_on(9, one, agencies);
    snprintf(path, sizeof(path), "/v1/hubs/%s/agenda-suggestions?limit=200", w.hub);
    json_object *o = call(w.mgr, "GET", path, NULL, 200);
    json_object *items = member(o, "items");
    ck_assert(json_object_array_length(items) >= 2);
    /* the scores are in order, and the loud one is above the quiet one */
    int at_loud = -1, at_quiet = -1;
    double prev = 1e9;
    for (size_t i = 0; i < json_object_array_length(items); i++) {
        json_object *e = json_object_array_get_idx(items, i);
        double s = json_object_get_double(member(e, "score"));
        ck_assert(s <= prev);
        prev = s;
        const char *id = itest_jstr(member(e, "subject"), "id");
        if (strcmp(id, loud) == 0) {
            at_loud = (int)i;
            ck_assert_str_eq(itest_jstr(member(e, "next_meeting"), "id"), soon);
        }
        if (strcmp(id, quiet) == 0) {
            at_quiet = (int)i;
            ck_assert_str_eq(itest_jstr(member(e, "next_meeting"), "id"), stale);
            ck_assert(strstr(json_object_to_json_string(member(e, "reasons")),
                             "never discussed at RAISE") != NULL);
        }
    }
    ck_assert(at_loud >= 0 && at_quiet > at_loud);
    json_object_put(o);
    snprintf(path, sizeof(path), "/v1/hubs/%s/agenda-suggestions?limit=1", w.hub);
    o = call(w.mgr, "GET", path, NULL, 200);
    ck_assert_int_eq(json_object_array_length(member(o, "items")), 1);
    json_object_put(o);
    call(w.mgr2, "GET", path, NULL, 403);
    call(w.officer, "GET", path, NULL, 403);
    snprintf(path, sizeof(path), "/v1/hubs/%s/agenda-suggestions?limit=0", w.hub);
    call(w.mgr, "GET", path, NULL, 400);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM audit_log WHERE action = 'hub.agenda_suggestions' AND "
             "subject_id = '%s'",
             loud);
    char *n = itest_sql_value(sql);
    ck_assert(atoi(n) >= 1);
    free(n);
    free(quiet);
    free(loud);
    free(long_ago);
    free(stale);
    free(soon);
    free(later);
}
END_TEST

static long queries_total(void)
{
    struct https_response r = {0};
    itest_call(&srv, NULL, "GET", "/metrics", NULL, &r);
    const char *p = strstr(r.body, "\nraise_db_queries_total ");
    long v = p ? strtol(p + 24, NULL, 10) : -1;
    https_response_clear(&r);
    return v;
}

/* The agenda takes the same number of round trips for 1 young person as for 8. */
START_TEST(agenda_round_trips_are_constant)
{
    char team[256], list[1024] = "[", invited[256];
    snprintf(team, sizeof(team), "[\"%s\"]", w.police);
    snprintf(invited, sizeof(invited), "[\"%s\"]", w.police);
    char *ids[8];
    for (int i = 0; i < 8; i++) {
        ids[i] = new_subject("Many", team);
        free(post_intel(w.officer, ids[i], "substance_misuse", "medium", "Cannabis", ""));
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s\"%s\"", i ? "," : "",
                 ids[i]);
    }
    strcat(list, "]");
    char one[64];
    snprintf(one, sizeof(one), "[\"%s\"]", ids[0]);
    char *small = new_meeting(one, invited), *big = new_meeting(list, invited);
    long d_small = -1, d_big = -1;
    for (int attempt = 0; attempt < 3 && !(d_small == 1 && d_big == 1); attempt++) {
        long q0 = queries_total();
        json_object_put(agenda(w.mgr, small));
        long q1 = queries_total();
        json_object *ag = agenda(w.mgr, big);
        long q2 = queries_total();
        ck_assert_int_eq(young_people(ag), 8);
        json_object_put(ag);
        /* /metrics itself sends no query; the first call's token lookup is one query */
        d_small = q1 - q0 - 1;
        d_big = q2 - q1 - 1;
    }
    ck_assert_int_eq(d_small, 1);
    ck_assert_int_eq(d_big, 1);
    for (int i = 0; i < 8; i++)
        free(ids[i]);
    free(small);
    free(big);
}
END_TEST

Suite *meetings_suite(void)
{
    Suite *s = suite_create("meetings");
    TCase *tc = tcase_create("meetings");
    tcase_add_checked_fixture(tc, start, stop);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, schedule_rules_and_visibility);
    tcase_add_test(tc, agenda_groups_orders_and_hides);
    tcase_add_test(tc, start_fixes_agenda_close_locks);
    tcase_add_test(tc, concurrent_attendance_changes_do_not_merge);
    tcase_add_test(tc, a_start_sees_a_young_person_added_while_it_waited);
    tcase_add_test(tc, formats_escape_everything);
    tcase_add_test(tc, suggestions_rank_with_reasons);
    tcase_add_test(tc, an_item_committed_as_a_meeting_starts_is_on_the_next_agenda);
    tcase_add_test(tc, a_chair_who_no_longer_manages_the_hub_cannot_start);
    tcase_add_test(tc, agenda_round_trips_are_constant);
    suite_add_tcase(s, tc);
    return s;
}
