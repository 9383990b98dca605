/* Young people (subjects): who may see them, in SQL, for every resource that needs it. */
#ifndef RAISE_SUBJECTS_H
#define RAISE_SUBJECTS_H

/* A young person s is visible to a user of agency A managing hubs H when s belongs to one of
 * H, or A is on s's team. Parameters are SQL expressions for s, A (uuid) and H (uuid[]). */
#define SUBJECT_VISIBLE(s, agency, hubs)                                                           \
    "(" s ".hub_id = ANY(" hubs "::uuid[]) OR EXISTS (SELECT 1 FROM subject_team vt "              \
    "WHERE vt.subject_id = " s ".id AND vt.agency_id = " agency "::uuid))"

/* A subject's columns as the API shows them. */
/* clang-format off */
#define SUBJECT_COLUMNS(s)                                                                         \
    s ".id, " s ".hub_id, " s ".reference, " s ".given_name, " s ".family_name, to_char(" s        \
        ".date_of_birth, 'YYYY-MM-DD') AS date_of_birth, " s ".status, " s ".key_worker, to_char(" \
        s ".created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS created_at, "      \
        "to_char(" s ".updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS "       \
        "updated_at"
/* clang-format on */

/* Age in whole years on the date today (both "YYYY-MM-DD"); -1 if dob is not a real date or
 * is after today. */
int subjects_age(const char *dob, const char *today);

#endif
