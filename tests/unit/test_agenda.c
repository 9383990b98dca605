/* The agenda's risk score (table-driven: each row a young person's items and the score and
 * reasons docs/agenda.md says they get), the order, and escaping in both renderings. */
#include "agenda.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXI 4
static const struct score_case {
    const char *name;
    struct agenda_item items[MAXI];
    size_t n;
    int overdue;
    double days_since_met;
    double want;
    const char *reason; /* one expected reason ("" none) */
} cases[] = {
    {"nothing, discussed yesterday", {{0}}, 0, 0, 1, 0.0, ""},
    {"never discussed", {{0}}, 0, 0, -1, 1.0, "never discussed at RAISE"},
    {"not discussed for 30 days", {{0}}, 0, 0, 30, 1.0, "not discussed for 30 days"},
    {"not discussed for a year: capped", {{0}}, 0, 0, 365, 3.0, "not discussed for 365 days"},
    {"one fresh low item", {{"other", "low", 0, 0, 0}}, 1, 0, 1, 1.0, "1 new item of concern"},
    {"one fresh critical item",
     {{"self_harm", "critical", 0, 0, 0}},
     1,
     0,
     1,
     8.0,
     "1 new item of concern, 1 high or critical risk"},
    {"a critical item 14 days old counts half",
     {{"self_harm", "critical", 0, 14, 0}},
     1,
     0,
     1,
     4.0,
     ""},
    {"a critical item 28 days old counts a quarter",
     {{"other", "critical", 0, 28, 0}},
     1,
     0,
     1,
     2.0,
     ""},
    {"a fresh missing episode",
     {{"missing_from_home", "high", 0, 0, 0}},
     1,
     0,
     1,
     7.0,
     "1 missing from home episode"},
    {"an arrest with gravity 6",
     {{"arrest", "medium", 6, 0, 0}},
     1,
     0,
     1,
     8.0,
     "1 arrest, charge or offence (highest gravity 6)"},
    {"a charge without gravity counts 2", {{"charge", "low", 0, 0, 0}}, 1, 0, 1, 3.0, ""},
    {"retracted items count nothing", {{"arrest", "critical", 8, 0, 1}}, 1, 0, 1, 0.0, ""},
    {"positive progress is shown, not scored",
     {{"positive_progress", "high", 0, 0, 0}},
     1,
     0,
     1,
     0.0,
     "1 positive progress report (not scored)"},
    {"two overdue actions", {{0}}, 0, 2, 1, 4.0, "2 overdue actions"},
    {"everything",
     {{"missing_from_home", "critical", 0, 0, 0},
      {"arrest", "high", 5, 0, 0},
      {"positive_progress", "low", 0, 0, 0}},
     3,
     1,
     -1,
     8 + 3 + 4 + 5 + 2 + 1,
     "2 new items of concern, 2 high or critical risk"},
    {"future-dated items are not weighted above fresh",
     {{"other", "high", 0, -3, 0}},
     1,
     0,
     1,
     4.0,
     ""},
};

START_TEST(score_table)
{
    const struct score_case *c = &cases[_i];
    json_object *reasons = json_object_new_array();
    struct agenda_input in = {c->items, c->n, c->overdue, c->days_since_met};
    double got = agenda_score(&in, reasons);
    ck_assert_msg(fabs(got - c->want) < 0.051, "%s: want %.1f, got %.1f", c->name, c->want, got);
    const char *all = json_object_to_json_string(reasons);
    if (c->reason[0])
        ck_assert_msg(strstr(all, c->reason) != NULL, "%s: reasons %s", c->name, all);
    else if (c->n == 0 && c->overdue == 0 && c->days_since_met >= 0 && c->days_since_met < 14)
        ck_assert_int_eq(json_object_array_length(reasons), 0);
    /* without a reasons array the score is the same */
    ck_assert(fabs(agenda_score(&in, NULL) - got) < 1e-9);
    json_object_put(reasons);
}
END_TEST

START_TEST(reasons_largest_first)
{
    struct agenda_item items[] = {{"other", "low", 0, 0, 0}, {"arrest", "low", 8, 0, 0}};
    struct agenda_input in = {items, 2, 1, -1};
    json_object *reasons = json_object_new_array();
    agenda_score(&in, reasons);
    /* arrest 8 > items 2 > overdue 2 ... never 1 */
    ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(reasons, 0)),
                     "1 arrest, charge or offence (highest gravity 8)");
    ck_assert_str_eq(json_object_get_string(
                         json_object_array_get_idx(reasons, json_object_array_length(reasons) - 1)),
                     "never discussed at RAISE");
    /* the items and the overdue action tie at 2: in the order they are scored, every time
     * (qsort is not stable; review) */
    ck_assert_msg(strstr(json_object_get_string(json_object_array_get_idx(reasons, 1)), "item"),
                  "%s", json_object_to_json_string(reasons));
    ck_assert_msg(strstr(json_object_get_string(json_object_array_get_idx(reasons, 2)), "overdue"),
                  "%s", json_object_to_json_string(reasons));
    json_object_put(reasons);
}
END_TEST

static json_object *entry(const char *ref, double score)
{
    json_object *e = json_object_new_object(), *s = json_object_new_object();
    json_object_object_add(s, "reference", json_object_new_string(ref));
    json_object_object_add(e, "subject", s);
    json_object_object_add(e, "score", json_object_new_double(score));
    return e;
}

START_TEST(sort_by_score_then_reference)
{
    json_object *a = json_object_new_array();
    json_object_array_add(a, entry("B", 1));
    json_object_array_add(a, entry("C", 9.5));
    json_object_array_add(a, entry("A", 1));
    json_object_array_add(a, entry("D", 0));
    agenda_sort(a);
    const char *want[] = {"C", "A", "B", "D"};
    for (int i = 0; i < 4; i++) {
        json_object *s = NULL, *r = NULL;
        json_object_object_get_ex(json_object_array_get_idx(a, i), "subject", &s);
        json_object_object_get_ex(s, "reference", &r);
        ck_assert_str_eq(json_object_get_string(r), want[i]);
    }
    json_object_put(a);
}
END_TEST

static const char hostile[] = "<script>alert('x')</script> & *a* _b_ [c](d) # e | `f` \\ "
                              "line\nbreak";

/* A minimal agenda with hostile text in every kind of field. */
static json_object *hostile_agenda(void)
{
    char doc[2048];
    snprintf(doc, sizeof(doc),
             "{\"meeting\":{\"title\":\"%s\",\"hub_name\":\"%s\",\"chair\":{\"display_name\":"
             "\"%s\"},\"invited_agencies\":[{\"name\":\"%s\"}]},\"frozen\":false,"
             "\"young_people\":[{\"subject\":{\"reference\":\"%s\",\"given_name\":\"%s\","
             "\"family_name\":\"%s\",\"team\":[]},\"score\":1.5,\"reasons\":[\"%s\"],"
             "\"worried_about\":[{\"summary\":\"%s\",\"category\":\"other\",\"risk_level\":"
             "\"high\",\"grading\":{\"text\":\"2C C\",\"conditions\":\"%s\"}}],"
             "\"working_well\":[],\"needs_to_happen\":{\"overdue\":[{\"description\":\"%s\","
             "\"owner_agency\":{\"name\":\"%s\"},\"cannot_complete_reason\":\"%s\"}]}}]}",
             "T", "H", "C", "A", "R", "G", "F", "why", "S", "K", "D", "O", "B");
    json_object *o = json_tokener_parse(doc);
    /* put the hostile text in every string */
    json_object *m = NULL, *yp = NULL;
    json_object_object_get_ex(o, "meeting", &m);
    json_object_object_add(m, "title", json_object_new_string(hostile));
    json_object_object_get_ex(o, "young_people", &yp);
    json_object *e = json_object_array_get_idx(yp, 0), *s = NULL, *wa = NULL, *nth = NULL,
                *od = NULL, *g = NULL;
    json_object_object_get_ex(e, "subject", &s);
    json_object_object_add(s, "given_name", json_object_new_string(hostile));
    json_object_object_get_ex(e, "worried_about", &wa);
    json_object *it = json_object_array_get_idx(wa, 0);
    json_object_object_add(it, "summary", json_object_new_string(hostile));
    json_object_object_get_ex(it, "grading", &g);
    json_object_object_add(g, "conditions", json_object_new_string(hostile));
    json_object_object_get_ex(e, "needs_to_happen", &nth);
    json_object_object_get_ex(nth, "overdue", &od);
    json_object *act = json_object_array_get_idx(od, 0);
    json_object_object_add(act, "description", json_object_new_string(hostile));
    json_object_object_add(act, "cannot_complete_reason", json_object_new_string(hostile));
    return o;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

START_TEST(html_escapes_every_value)
{
    json_object *o = hostile_agenda();
    char *h = agenda_html(o);
    ck_assert(strstr(h, "<script>") == NULL);
    ck_assert(strstr(h, "alert('x')") == NULL);
    /* title (twice: <title> and <h1>), name, summary, conditions, description, reason */
    ck_assert_int_eq(count(h, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; "), 7);
    ck_assert(strncmp(h, "<!DOCTYPE html>", 15) == 0);
    ck_assert_int_eq(count(h, "<div class=\"marking\">OFFICIAL-SENSITIVE</div>"), 2);
    ck_assert(strstr(h, "@media print") != NULL && strstr(h, "size:A4") != NULL);
    ck_assert(strstr(h, "<style>") != NULL && strstr(h, agenda_css) != NULL);
    ck_assert(strstr(h, "<script") == NULL && strstr(h, "src=") == NULL);
    free(h);
    json_object_put(o);
}
END_TEST

START_TEST(markdown_escapes_every_value)
{
    json_object *o = hostile_agenda();
    char *m = agenda_markdown(o);
    ck_assert(strstr(m, "<script>") == NULL);
    const char *want = "&lt;script&gt;alert\\(&#39;x&#39;\\)&lt;/script&gt; &amp; \\*a\\* \\_b\\_ "
                       "\\[c\\]\\(d\\) \\# e \\| \\`f\\` \\\\ line break";
    ck_assert_msg(count(m, want) == 6, "%s", m);
    ck_assert(strncmp(m, "**OFFICIAL-SENSITIVE**\n", 23) == 0);
    ck_assert_str_eq(m + strlen(m) - 23, "**OFFICIAL-SENSITIVE**\n");
    /* a hostile value never starts a line: no heading, list or quote can be injected */
    ck_assert(strstr(m, "\n# e") == NULL && strstr(m, "\nbreak") == NULL);
    free(m);
    json_object_put(o);
}
END_TEST

/* A fixed agenda keeps actions cancelled after the start: every format shows them, and a
 * young person without any gets no empty "Cancelled" line. */
START_TEST(cancelled_actions_in_every_format)
{
    json_object *o = json_tokener_parse(
        "{\"meeting\":{\"title\":\"T\"},\"frozen\":true,\"young_people\":["
        "{\"subject\":{\"reference\":\"R1\",\"team\":[]},\"score\":1,\"reasons\":[],"
        "\"worried_about\":[],\"working_well\":[],\"needs_to_happen\":{\"overdue\":[],"
        "\"open\":[],\"completed\":[],\"cancelled\":[{\"description\":\"Gone plan\","
        "\"owner_agency\":{\"name\":\"Health\"}}]}},"
        "{\"subject\":{\"reference\":\"R2\",\"team\":[]},\"score\":0,\"reasons\":[],"
        "\"worried_about\":[],\"working_well\":[],\"needs_to_happen\":{\"overdue\":[],"
        "\"open\":[],\"completed\":[],\"cancelled\":[]}}]}");
    ck_assert_ptr_nonnull(o);
    char *m = agenda_markdown(o), *h = agenda_html(o);
    ck_assert_int_eq(count(m, "Cancelled actions:"), 1);
    ck_assert_msg(strstr(m, "Cancelled actions:\n\n- Gone plan") != NULL, "%s", m);
    ck_assert_int_eq(count(h, "Cancelled actions:"), 1);
    ck_assert(strstr(h, "<p>Cancelled actions:</p>\n<ul>\n<li>Gone plan") != NULL);
    ck_assert_int_eq(count(m, "Completed since the last meeting actions: none."), 2);
    free(m);
    free(h);
    json_object_put(o);
}
END_TEST

Suite *agenda_suite(void)
{
    Suite *s = suite_create("agenda");
    TCase *tc = tcase_create("agenda");
    tcase_add_loop_test(tc, score_table, 0, (int)(sizeof(cases) / sizeof(cases[0])));
    tcase_add_test(tc, reasons_largest_first);
    tcase_add_test(tc, sort_by_score_then_reference);
    tcase_add_test(tc, cancelled_actions_in_every_format);
    tcase_add_test(tc, html_escapes_every_value);
    tcase_add_test(tc, markdown_escapes_every_value);
    suite_add_tcase(s, tc);
    return s;
}
