/* Integration test runner: one throwaway PostgreSQL cluster for the whole run. */
#include "harness.h"

#include <check.h>
#include <stdlib.h>

Suite *foundation_suite(void);
Suite *identity_suite(void);
Suite *access_suite(void);
Suite *subjects_suite(void);
Suite *stream_suite(void);
Suite *meetings_suite(void);
Suite *actions_suite(void);
Suite *web_suite(void);
Suite *raisectl_suite(void);
Suite *browser_suite(void);

int main(void)
{
    itest_global_setup();
    SRunner *sr = srunner_create(foundation_suite());
    srunner_add_suite(sr, identity_suite());
    srunner_add_suite(sr, subjects_suite());
    srunner_add_suite(sr, stream_suite());
    srunner_add_suite(sr, meetings_suite());
    srunner_add_suite(sr, actions_suite());
    srunner_add_suite(sr, web_suite());
    srunner_add_suite(sr, access_suite());
    srunner_add_suite(sr, raisectl_suite());
    srunner_add_suite(sr, browser_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    itest_global_teardown();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
