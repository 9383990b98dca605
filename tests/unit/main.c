/* Unit test runner: every suite of pure functions. */
#include <check.h>
#include <stdlib.h>

Suite *config_suite(void);
Suite *router_suite(void);
Suite *problem_suite(void);
Suite *https_suite(void);
Suite *intel_suite(void);
Suite *json_suite(void);
Suite *agenda_suite(void);
Suite *cookie_suite(void);

int main(void)
{
    SRunner *sr = srunner_create(config_suite());
    srunner_add_suite(sr, router_suite());
    srunner_add_suite(sr, problem_suite());
    srunner_add_suite(sr, https_suite());
    srunner_add_suite(sr, intel_suite());
    srunner_add_suite(sr, json_suite());
    srunner_add_suite(sr, agenda_suite());
    srunner_add_suite(sr, cookie_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
