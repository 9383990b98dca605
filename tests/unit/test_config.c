#include "config.h"
#include "log.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *write_tmp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/raise-cfg-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

START_TEST(defaults)
{
    struct config c;
    config_init(&c);
    ck_assert_str_eq(c.listen_host, "127.0.0.1");
    ck_assert_int_eq(c.listen_port, 8443);
    ck_assert_int_eq(c.workers, 0);
    ck_assert_int_eq(c.log_level, LOG_INFO);
    ck_assert_ptr_null(c.database_url);
    ck_assert_int_eq(c.metrics, METRICS_LOCAL);
    config_clear(&c);
}
END_TEST

START_TEST(file_then_env_wins)
{
    char *path = write_tmp("# comment\n\nlisten = 0.0.0.0:9000\nworkers=3\n"
                           "database_url = \"host=/tmp port=1\"\nlog_level = warn\n"
                           "tls_cert = /a.pem\n");
    char *env[] = {"RAISE_WORKERS=5", "RAISE_TLS_KEY=/k.pem", "RAISE_URL=https://ignored",
                   "OTHER=1", NULL};
    struct config c;
    char *cause = NULL;
    config_init(&c);
    ck_assert_int_eq(config_load(&c, path, env, &cause), 0);
    ck_assert_str_eq(c.listen_host, "0.0.0.0");
    ck_assert_int_eq(c.listen_port, 9000);
    ck_assert_int_eq(c.workers, 5); /* environment beats the file */
    ck_assert_str_eq(c.database_url, "host=/tmp port=1");
    ck_assert_int_eq(c.log_level, LOG_WARN);
    ck_assert_str_eq(c.tls_cert, "/a.pem");
    ck_assert_str_eq(c.tls_key, "/k.pem");
    ck_assert_int_eq(config_check_server(&c, &cause), 0);
    config_clear(&c);
    unlink(path);
}
END_TEST

static const struct {
    const char *key, *value, *must_mention;
} bad_values[] = {
    {"listen", "8443", "listen"},
    {"listen", "host:99999", "listen"},
    {"listen", "host:", "listen"},
    {"listen", ":80", "listen"},
    {"listen", "[::1:80", "listen"},
    {"workers", "-1", "workers"},
    {"workers", "two", "workers"},
    {"workers", "1000", "workers"},
    {"workers", "", "workers"},
    {"workers", " 3", "workers"},
    {"db_pool_size", "0", "db_pool_size"},
    {"log_level", "verbose", "log_level"},
    {"metrics", "maybe", "metrics"},
    {"max_body_size", "12x", "max_body_size"},
    {"nonsense", "1", "nonsense"},
};

START_TEST(bad_value_names_key)
{
    struct config c;
    char *cause = NULL;
    config_init(&c);
    ck_assert_int_eq(config_set(&c, bad_values[_i].key, bad_values[_i].value, &cause), -1);
    ck_assert_ptr_nonnull(strstr(cause, bad_values[_i].must_mention));
    ck_assert_ptr_null(strchr(cause, '\n')); /* one line */
    free(cause);
    config_clear(&c);
}
END_TEST

static const struct {
    const char *value, *host;
    int port;
} good_listen[] = {
    {"127.0.0.1:0", "127.0.0.1", 0},
    {"[::1]:8443", "::1", 8443},
    {"localhost:65535", "localhost", 65535},
};

START_TEST(listen_forms)
{
    struct config c;
    char *cause = NULL;
    config_init(&c);
    ck_assert_int_eq(config_set(&c, "listen", good_listen[_i].value, &cause), 0);
    ck_assert_str_eq(c.listen_host, good_listen[_i].host);
    ck_assert_int_eq(c.listen_port, good_listen[_i].port);
    config_clear(&c);
}
END_TEST

START_TEST(file_errors_name_line)
{
    static const char *files[][2] = {
        {"listen = 127.0.0.1:1\nbogus_key = 1\n", ":2"},
        {"workers = 2\nthis line has no equals\n", ":2"},
        {"workers = lots\n", "workers"},
    };
    struct config c;
    char *cause = NULL;
    config_init(&c);
    char *path = write_tmp(files[_i][0]);
    ck_assert_int_eq(config_load_file(&c, path, &cause), -1);
    ck_assert_msg(strstr(cause, files[_i][1]) != NULL, "cause '%s'", cause);
    free(cause);
    unlink(path);
    config_clear(&c);
}
END_TEST

START_TEST(env_bad_value_names_variable)
{
    char *env[] = {"RAISE_DB_POOL_SIZE=zero", NULL};
    struct config c;
    char *cause = NULL;
    config_init(&c);
    ck_assert_int_eq(config_load_env(&c, env, &cause), -1);
    ck_assert_ptr_nonnull(strstr(cause, "RAISE_DB_POOL_SIZE"));
    free(cause);
    config_clear(&c);
}
END_TEST

START_TEST(missing_file_and_required_keys)
{
    struct config c;
    char *cause = NULL;
    config_init(&c);
    ck_assert_int_eq(config_load_file(&c, "/nonexistent/raised.conf", &cause), -1);
    ck_assert_ptr_nonnull(strstr(cause, "/nonexistent/raised.conf"));
    free(cause);
    ck_assert_int_eq(config_check_server(&c, &cause), -1);
    ck_assert_ptr_nonnull(strstr(cause, "database_url"));
    free(cause);
    config_clear(&c);
}
END_TEST

Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, defaults);
    tcase_add_test(tc, file_then_env_wins);
    tcase_add_loop_test(tc, bad_value_names_key, 0, sizeof(bad_values) / sizeof(bad_values[0]));
    tcase_add_loop_test(tc, listen_forms, 0, sizeof(good_listen) / sizeof(good_listen[0]));
    tcase_add_loop_test(tc, file_errors_name_line, 0, 3);
    tcase_add_test(tc, env_bad_value_names_variable);
    tcase_add_test(tc, missing_file_and_required_keys);
    suite_add_tcase(s, tc);
    return s;
}
