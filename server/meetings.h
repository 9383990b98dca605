/* RAISE meetings: who may see them, and the meeting document shared by the routes and the
 * live stream. */
#ifndef RAISE_MEETINGS_H
#define RAISE_MEETINGS_H

#include "intelligence.h"

#include <json-c/json.h>

struct auth_user;
struct http_req;

/* A meeting m is visible to the managers of its hub and to users of invited agencies. */
#define MEETING_VISIBLE(m, agency, hubs)                                                           \
    "(" m ".hub_id = ANY(" hubs "::uuid[]) OR EXISTS (SELECT 1 FROM meeting_agencies va "          \
    "WHERE va.meeting_id = " m ".id AND va.agency_id = " agency "::uuid))"

/* The whole meeting as one jsonb value: every young person on it with their team (under
 * "_team", for meeting_render's filter), minutes and the actions agreed in the meeting. */
#define MEETING_DOC(m) MEETING_HEAD(m) ", 'young_people', " MEETING_SUBJECTS(m) ")"

/* A meeting in a list: the same without its young people, minutes and actions; instead,
 * how many of its young people the reader (agency, hubs: SQL parameters) may see. */
#define MEETING_SUMMARY(m, agency, hubs)                                                           \
    MEETING_HEAD(m)                                                                                \
    ", 'young_people_count', (SELECT count(*) FROM meeting_subjects cs JOIN "                      \
    "subjects s ON s.id = cs.subject_id WHERE cs.meeting_id = " m                                  \
    ".id AND " SUBJECT_VISIBLE("s", agency, hubs) "))"

/* The meeting's own fields, as the start of a jsonb_build_object (not closed). */
/* clang-format off */
#define MEETING_HEAD(m)                                                                            \
    "jsonb_build_object('id', " m ".id, 'hub_id', " m ".hub_id, 'hub_name', (SELECT name FROM "    \
        "hubs WHERE id = " m ".hub_id), 'title', " m ".title, 'scheduled_for', "                   \
        TS(m ".scheduled_for") ", 'location', " m ".location, 'status', " m ".status, 'chair', "   \
        "(SELECT jsonb_build_object('id', id, 'display_name', display_name) FROM users WHERE id "  \
        "= " m ".chair_id), 'created_at', " TS(m ".created_at") ", 'updated_at', "                 \
        TS(m ".updated_at") ", 'started_at', " TS(m ".started_at") ", 'closed_at', "               \
        TS(m ".closed_at") ", 'invited_agencies', coalesce((SELECT "                               \
        "jsonb_agg(jsonb_build_object('id', a.id, 'name', a.name, 'kind', a.kind) ORDER BY "       \
        "a.name) FROM meeting_agencies ma JOIN agencies a ON a.id = ma.agency_id WHERE "           \
        "ma.meeting_id = " m ".id), '[]'), 'attendance', coalesce((SELECT "                        \
        "jsonb_agg(jsonb_build_object('name', t.name, 'agency_id', t.agency_id, 'user_id', "       \
        "t.user_id) ORDER BY t.position) FROM meeting_attendance t WHERE t.meeting_id = " m        \
        ".id), '[]')"
/* clang-format on */

/* clang-format off */
#define MEETING_SUBJECTS(m)                                                                        \
    "coalesce((SELECT jsonb_agg(jsonb_build_object('id', s.id, 'reference', s.reference, "         \
        "'given_name', s.given_name, 'family_name', s.family_name, 'status', s.status, "           \
        "'key_worker', s.key_worker, '_hub', s.hub_id, '_team', array(SELECT agency_id FROM "      \
        "subject_team st WHERE st.subject_id = s.id), 'minutes', (SELECT "                         \
        "jsonb_build_object('worried_about', mm.worried_about, 'working_well', mm.working_well, "  \
        "'needs_to_happen', mm.needs_to_happen, 'decisions', mm.decisions, 'updated_by', "         \
        "mm.updated_by, 'updated_at', " TS("mm.updated_at") ") FROM meeting_minutes mm WHERE "     \
        "mm.meeting_id = " m ".id AND mm.subject_id = s.id), 'actions', coalesce((SELECT "         \
        "jsonb_agg(jsonb_build_object('id', x.id, 'description', x.description, "                  \
        "'owner_agency_id', x.owner_agency_id, 'assignee_id', x.assignee_id, 'due_date', "         \
        "x.due_date, 'status', x.status) ORDER BY x.created_at, x.id) FROM actions x WHERE "       \
        "x.meeting_id = " m ".id AND x.subject_id = s.id), '[]')) ORDER BY s.reference) FROM "     \
        "meeting_subjects ms JOIN subjects s ON s.id = ms.subject_id WHERE ms.meeting_id = " m     \
        ".id), '[]')"
/* clang-format on */

/* The last meeting started before ref that the young person subject (an id) was on, other
 * than meeting: its id, or NULL. */
#define LAST_MEETING(subject, meeting, ref)                                                        \
    "(SELECT pm.id FROM meeting_subjects pms JOIN meetings pm ON pm.id = pms.meeting_id WHERE "    \
    "pms.subject_id = " subject " AND pm.id IS DISTINCT FROM " meeting                             \
    " AND pm.started_at IS NOT "                                                                   \
    "NULL AND pm.started_at < " ref " ORDER BY pm.started_at DESC, pm.id DESC LIMIT 1)"

/* The young person's last RAISE discussion before ref: when that meeting started, or NULL. */
#define LAST_MET(subject, meeting, ref)                                                            \
    "(SELECT started_at FROM meetings WHERE id = " LAST_MEETING(subject, meeting, ref) ")"

/* Is intelligence item i in an agenda's window that starts at since, the start of the last
 * meeting prev (NULL: none) that its young person was on? An item's created_at is when its
 * transaction began, not when it committed: one posted just before prev started and
 * committed just after was in neither prev's agenda (started before it could see it) nor
 * the next one's (created before since), and so on no agenda at all (review). So the
 * window reaches back an hour before since (no statement may run that long) for the items
 * prev's agenda does not hold. */
#define IN_WINDOW(i, since, prev)                                                                  \
    "(" i ".created_at >= " since " OR (" prev " IS NOT NULL AND " i ".created_at >= " since       \
    " - interval '1 hour' AND NOT EXISTS (SELECT 1 FROM meeting_agenda_items pa WHERE "            \
    "pa.meeting_id = " prev " AND pa.kind = 'intelligence' AND pa.record_id = " i ".id)))"

/* The meeting document (text of MEETING_DOC) as user u may see it: only the young people
 * (with their minutes and actions) u may see. Owned; NULL if the text is not JSON. */
json_object *meeting_render(const char *doc, const struct auth_user *u);
/* The same in steps, for a document read by many (the live stream): how many young people
 * the parsed document has; which of them u sees (seen[i] 1 or 0, for each); the document
 * with only those (owned; NULL if doc is). */
int meeting_people(json_object *doc);
void meeting_sees(json_object *doc, const struct auth_user *u, unsigned char *seen);
json_object *meeting_shown(json_object *doc, const unsigned char *seen);

#endif
