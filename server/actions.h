/* Agency actions: who may see them, the document shared by the routes and the live stream,
 * and the overdue sweeper. */
#ifndef RAISE_ACTIONS_H
#define RAISE_ACTIONS_H

#include "intelligence.h"

struct db_pool;
struct event_base;

/* clang-format off */

/* An action a (of young person s) is visible to whoever may see s, and to its owner agency
 * (even if it has since left the team). */
#define ACTION_VISIBLE(a, s, agency, hubs)                                                          \
    "(" SUBJECT_VISIBLE(s, agency, hubs) " OR " a ".owner_agency_id = " agency "::uuid)"

/* Today in the action's hub's time zone. */
#define ACTION_TODAY(a)                                                                             \
    "(now() AT TIME ZONE (SELECT th.time_zone FROM hubs th WHERE th.id = " a ".hub_id))::date"

/* open | overdue | completed | cancelled: overdue is an open action due before today. */
#define ACTION_STATE(a)                                                                             \
    "CASE WHEN " a ".status = 'open' AND " a ".due_date < " ACTION_TODAY(a) " THEN 'overdue' "     \
    "ELSE " a ".status END"

/* The action as every route and stream event shows it (jsonb). */
#define ACTION_JSON(a)                                                                              \
    "jsonb_build_object("                                                                           \
    "'id', " a ".id, 'subject_id', " a ".subject_id, "                                              \
    "'subject_reference', (SELECT sr.reference FROM subjects sr WHERE sr.id = " a ".subject_id), "  \
    "'hub_id', " a ".hub_id, 'meeting_id', " a ".meeting_id, "                                      \
    "'between_meetings', " a ".meeting_id IS NULL, 'description', " a ".description, "              \
    "'owner_agency', (SELECT jsonb_build_object('id', oa.id, 'name', oa.name, 'kind', oa.kind) "    \
    "  FROM agencies oa WHERE oa.id = " a ".owner_agency_id), "                                     \
    "'assignee', (SELECT jsonb_build_object('id', au.id, 'display_name', au.display_name) "         \
    "  FROM users au WHERE au.id = " a ".assignee_id), "                                            \
    "'due_date', to_char(" a ".due_date, 'YYYY-MM-DD'), 'status', " a ".status, "                   \
    "'state', " ACTION_STATE(a) ", "                                                                \
    "'created_by', " a ".created_by, 'created_at', " TS(a ".created_at") ", "                       \
    "'updated_at', " TS(a ".updated_at") ", "                                                       \
    "'completed_at', " TS(a ".completed_at") ", 'completed_by', " a ".completed_by, "               \
    "'completion_note', " a ".completion_note, 'evidence_ref', " a ".evidence_ref, "                \
    "'cancelled_at', " TS(a ".cancelled_at") ", 'cancelled_by', " a ".cancelled_by, "               \
    "'cancel_reason', " a ".cancel_reason, 'cannot_complete_reason', " a ".blocked_reason, "        \
    "'overdue_since', " TS(a ".overdue_noted_at") ", "                                              \
    "'latest_progress', (SELECT jsonb_build_object('at', " TS("lp.at") ", 'note', lp.note, "        \
    "  'user_id', lp.user_id) FROM action_history lp WHERE lp.action_id = " a ".id "                \
    "  AND lp.kind = 'progress' ORDER BY lp.id DESC LIMIT 1))"

/* Every transition and update of the action, oldest first (jsonb array). */
#define ACTION_HISTORY(a)                                                                           \
    "coalesce((SELECT jsonb_agg(jsonb_build_object('at', " TS("ah.at") ", 'user_id', ah.user_id, " \
    "  'agency_id', ah.agency_id, 'kind', ah.kind, 'from', ah.from_status, 'to', ah.to_status, "   \
    "  'note', ah.note, 'evidence_ref', ah.evidence_ref) ORDER BY ah.id) "                          \
    "  FROM action_history ah WHERE ah.action_id = " a ".id), '[]'::jsonb)"

/* clang-format on */

/* The overdue sweeper: every overdue_check seconds (and at once on start), one statement
 * marks the open actions whose due date has passed (in their hub's time zone) and writes
 * exactly one action.overdue event each, however many server processes run it. */
struct actions_sweeper;
struct actions_sweeper *actions_sweeper_new(struct event_base *base, struct db_pool *db,
                                            int interval_s);
void actions_sweeper_free(struct actions_sweeper *sw);

#endif
