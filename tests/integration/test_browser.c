/* The web page in a real browser: Debian's chromium driven by playwright-core
 * (tests/browser/web.test.mjs) against the real server and database. This file sets up the
 * world (a hub, three agencies, a hub manager, a police liaison officer and a health
 * practitioner, one young person), writes it to a JSON file and runs the script, which
 * saves its screenshots and the printed agenda under the build directory's browser/ folder. */
#include "harness.h"
#include "xmalloc.h"

#include <check.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct itest_server a;

/* A user with a known password; adds {username, password, display_name, id} to users. */
static void add_user(json_object *users, const char *key, const char *admin, const char *agency,
                     const char *role, const char *hub)
{
    char *id = NULL, sql[160];
    char *token = itest_new_user(&a, admin, agency, role, hub, &id);
    snprintf(sql, sizeof(sql), "SELECT username || '|' || display_name FROM users WHERE id = '%s'",
             id);
    char *row = itest_sql_value(sql);
    ck_assert_ptr_nonnull(row);
    char *bar = strchr(row, '|');
    ck_assert_ptr_nonnull(bar);
    *bar = '\0';
    json_object *u = json_object_new_object();
    json_object_object_add(u, "id", json_object_new_string(id));
    json_object_object_add(u, "username", json_object_new_string(row));
    json_object_object_add(u, "display_name", json_object_new_string(bar + 1));
    json_object_object_add(u, "password", json_object_new_string("long enough secret"));
    json_object_object_add(users, key, u);
    free(row);
    free(id);
    free(token);
}

START_TEST(web_page_in_chromium)
{
    itest_server_start(&a, "stream_heartbeat = 2\n");
    char *admin = itest_new_admin(&a);
    char *hub = itest_new_hub(&a, admin);
    char *hub_agency = itest_new_agency(&a, admin, "hub");
    char *police = itest_new_agency(&a, admin, "police");
    char *health = itest_new_agency(&a, admin, "health");
    json_object *users = json_object_new_object();
    add_user(users, "manager", admin, hub_agency, "hub_manager", hub);
    add_user(users, "officer", admin, police, "police_liaison", NULL);
    add_user(users, "nurse", admin, health, "practitioner", NULL);

    /* the young person, on the police and health team */
    char ref[64], body[1024];
    snprintf(ref, sizeof(ref), "WEB-%06d", getpid() % 1000000);
    snprintf(body, sizeof(body),
             "{\"hub_id\":\"%s\",\"reference\":\"%s\",\"given_name\":\"Robin\",\"family_name\":"
             "\"Browser\",\"date_of_birth\":\"2010-05-05\",\"status\":\"edge_of_care\","
             "\"key_worker\":\"Kim Key\",\"team\":[\"%s\",\"%s\"]}",
             hub, ref, police, health);
    const char *mgr = json_object_get_string(
        json_object_object_get(json_object_object_get(users, "manager"), "username"));
    char *mgr_token = itest_login(&a, mgr, "long enough secret");
    struct https_response r = {0};
    itest_call(&a, mgr_token, "POST", "/v1/subjects", body, &r);
    ck_assert_msg(r.status == 201, "subject: %d %s", r.status, r.body);
    json_object *subject = itest_json(&r);
    https_response_clear(&r);

    char url[64], out[PATH_MAX], conf[PATH_MAX], log[PATH_MAX], cert[PATH_MAX];
    snprintf(cert, sizeof(cert), "%s/server.pem", itest.certs);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d", a.port);
    snprintf(out, sizeof(out), "%s/browser", RAISE_BUILD_DIR);
    snprintf(conf, sizeof(conf), "%s/browser-%d.json", itest.dir, getpid());
    snprintf(log, sizeof(log), "%s/browser-%d.log", itest.dir, getpid());
    json_object *c = json_object_new_object();
    json_object_object_add(c, "url", json_object_new_string(url));
    json_object_object_add(c, "server_cert", json_object_new_string(cert));
    json_object_object_add(c, "out_dir", json_object_new_string(out));
    json_object_object_add(c, "hub_id", json_object_new_string(hub));
    json_object_object_add(c, "police_agency_id", json_object_new_string(police));
    json_object_object_add(c, "health_agency_id", json_object_new_string(health));
    json_object_object_add(c, "subject_id", json_object_new_string(itest_jstr(subject, "id")));
    json_object_object_add(c, "subject_reference", json_object_new_string(ref));
    json_object_object_add(c, "users", users);
    ck_assert_int_eq(json_object_to_file_ext(conf, c, JSON_C_TO_STRING_PRETTY), 0);
    json_object_put(c);

    int st = itest_sh("cd '%s/tests/browser' && timeout 600 node web.test.mjs '%s' >'%s' 2>&1",
                      RAISE_SOURCE_DIR, conf, log);
    if (st != 0)
        itest_sh("cat '%s' >&2; echo '---- server log (last 40 lines)' >&2; tail -n 40 '%s' >&2",
                 log, a.log);
    else
        itest_sh("cat '%s'", log);
    ck_assert_msg(st == 0,
                  "the browser tests failed (exit %d; their output is above, screenshots in %s)",
                  st, out);

    json_object_put(subject);
    free(mgr_token);
    free(admin);
    free(hub);
    free(hub_agency);
    free(police);
    free(health);
    itest_server_stop(&a, SIGTERM, 15);
}
END_TEST

Suite *browser_suite(void)
{
    Suite *s = suite_create("browser");
    TCase *tc = tcase_create("browser");
    tcase_add_unchecked_fixture(tc, itest_ensure_db, NULL);
    tcase_set_timeout(tc, 700);
    tcase_add_test(tc, web_page_in_chromium);
    suite_add_tcase(s, tc);
    return s;
}
