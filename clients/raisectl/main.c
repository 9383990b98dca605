/* raisectl: the command-line client (docs/raisectl.md). Most commands are one row of the
 * command table: which route, which flags become which JSON members or query parameters, and
 * how to print the answer for people; the few that need more (login, feed, intel post,
 * agenda...) have a function of their own in cmds.c. */
#define _GNU_SOURCE
#include "cmds.h"

#include "xmalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- options shared by several commands */

#define LIST_OPTS                                                                                  \
    {"limit", "limit", K_INT, 0, "N", "at most N rows (1-200, default 50)"},                       \
    {                                                                                              \
        "before", "before", K_STR, 0, "CURSOR", "the next page (printed under a table)"            \
    }

static const struct opt o_none[] = {{0}};
static const struct opt o_page[] = {LIST_OPTS, {0}};
static const struct opt o_login[] = {
    {"username", NULL, K_STR, 0, "NAME", "your username (asked for if not given)"},
    {"password-stdin", NULL, K_BOOL, 0, NULL, "read the password from the first line of stdin"},
    {0}};
static const struct opt o_feed[] = {
    {"since", NULL, K_STR, 0, "ID", "replay the events after event ID first"}, {0}};
static const struct opt o_intel_post[] = {
    {"subject", "subject_id", K_STR, 0, "ID", "the young person"},
    {"category", "category", K_STR, 0, "CAT", "missing_from_home, arrest, cse_concern... "},
    {"summary", "summary", K_STR, 0, "TEXT", "one line"},
    {"detail", "detail", K_STR, 0, "TEXT", "more (up to 10,000 characters)"},
    {"occurred-at", "occurred_at", K_STR, 0, "TIME", "when it happened (RFC 3339; default now)"},
    {"risk", "risk_level", K_STR, 0, "LEVEL", "low, medium, high or critical"},
    {"grade", NULL, K_STR, 0, "1A", "3x5x2 source (1-3) and assessment (A-E), e.g. 2B"},
    {"handling", NULL, K_STR, 0, "P|C", "handling code: P, or C with --conditions"},
    {"conditions", NULL, K_STR, 0, "TEXT", "the handling conditions (required with C)"},
    {"gravity", "gravity", K_INT, 0, "N", "1-8, for arrest, charge and offence at hub"},
    {"restrict", "restricted_to", K_LIST, 0, "AGENCY,...", "only these agencies on the team"},
    {"idempotency-key", NULL, K_STR, 0, "KEY", "retry key (default: a new random one)"},
    {"file", NULL, K_STR, 0, "FILE|-", "a JSON body (- = stdin); flags override its fields"},
    {0}};
static const struct opt o_intel_list[] = {
    {"subject", "subject_id", K_STR, 0, "ID", "one young person"},
    {"since", "since", K_STR, 0, "TIME", "posted at or after TIME"},
    {"category", "category", K_STR, 0, "CAT", "one category"},
    LIST_OPTS,
    {0}};
static const struct opt o_reason[] = {{"reason", "reason", K_STR, REQ, "TEXT", "why"}, {0}};
static const struct opt o_subj_add[] = {
    {"hub", "hub_id", K_STR, REQ, "ID", "the hub"},
    {"reference", "reference", K_STR, REQ, "REF", "the hub's reference, unique in the hub"},
    {"given-name", "given_name", K_STR, REQ, "NAME", "given name"},
    {"family-name", "family_name", K_STR, REQ, "NAME", "family name"},
    {"dob", "date_of_birth", K_STR, REQ, "DATE", "date of birth (age 12-25)"},
    {"status", "status", K_STR, REQ, "S", "in_care, edge_of_care, edging_to_care, care_leaver"},
    {"key-worker", "key_worker", K_STR, REQ, "NAME", "key worker"},
    {"team", "team", K_LIST, REQ, "AGENCY,...", "the agencies around them"},
    {0}};
static const struct opt o_subj_list[] = {{"hub", "hub_id", K_STR, 0, "ID", "one hub"},
                                         {"q", "q", K_STR, 0, "TEXT", "name or reference"},
                                         LIST_OPTS,
                                         {0}};
static const struct opt o_subj_update[] = {
    {"status", "status", K_STR, 0, "S", "in_care, edge_of_care, edging_to_care, care_leaver"},
    {"key-worker", "key_worker", K_STR, 0, "NAME", "key worker"},
    {"team", "team", K_LIST, 0, "AGENCY,...", "the new team (replaces it)"},
    {0}};
static const struct opt o_meet_sched[] = {
    {"hub", "hub_id", K_STR, REQ, "ID", "the hub"},
    {"title", "title", K_STR, REQ, "TEXT", "title"},
    {"at", "scheduled_for", K_STR, REQ, "TIME", "when (RFC 3339 UTC)"},
    {"location", "location", K_STR, 0, "TEXT", "where"},
    {"subjects", "subject_ids", K_LIST, 0, "ID,...", "young people to discuss"},
    {"invite", "invited_agencies", K_LIST, 0, "AGENCY,...", "agencies to invite"},
    {0}};
static const struct opt o_meet_list[] = {{"hub", "hub_id", K_STR, 0, "ID", "one hub"},
                                         {"from", "from", K_STR, 0, "TIME", "from TIME"},
                                         {"to", "to", K_STR, 0, "TIME", "until TIME"},
                                         LIST_OPTS,
                                         {0}};
static const struct opt o_meet_add[] = {
    {"subjects", "add_subjects", K_LIST, REQ, "ID,...", "young people to add"}, {0}};
static const struct opt o_meet_att[] = {
    {"attendee", NULL, K_MULTI, REQ, "NAME,AGENCY[,USER]", "one who came (repeat)"}, {0}};
static const struct opt o_meet_min[] = {
    {"subject", NULL, K_STR, REQ, "ID", "the young person"},
    {"worried", NULL, K_STR, 0, "TEXT", "what are we worried about?"},
    {"working-well", NULL, K_STR, 0, "TEXT", "what's working well?"},
    {"needs", NULL, K_STR, 0, "TEXT", "what needs to happen?"},
    {"decisions", NULL, K_STR, 0, "TEXT", "decisions taken"},
    {0}};
static const struct opt o_agenda[] = {
    {"format", NULL, K_STR, 0, "md|html|json", "markdown (default), HTML or JSON"},
    {"o", NULL, K_STR, 0, "FILE", "write to FILE instead of stdout"},
    {0}};
static const struct opt o_suggest[] = {{"limit", "limit", K_INT, 0, "N", "1-200 (default 20)"},
                                       {0}};
static const struct opt o_act_add[] = {
    {"subject", "subject_id", K_STR, REQ, "ID", "the young person"},
    {"owner", "owner_agency_id", K_STR, REQ, "AGENCY", "the agency that owns it (on the team)"},
    {"description", "description", K_STR, REQ, "TEXT", "what is to be done"},
    {"due", "due_date", K_STR, REQ, "DATE", "due date (YYYY-MM-DD)"},
    {"assignee", "assignee_id", K_STR, 0, "USER", "a user of the owner agency"},
    {"meeting", NULL, K_STR, 0, "ID", "agreed in this meeting (default: between meetings)"},
    {0}};
static const struct opt o_act_list[] = {
    {"agency", "agency_id", K_STR, 0, "ID", "owner agency"},
    {"subject", "subject_id", K_STR, 0, "ID", "young person"},
    {"hub", "hub_id", K_STR, 0, "ID", "hub"},
    {"meeting", "meeting_id", K_STR, 0, "ID", "meeting"},
    {"status", "status", K_STR, 0, "S,...", "open, overdue, completed, cancelled"},
    {"assignee", "assignee", K_STR, 0, "me|ID", "assigned to"},
    {"due-before", "due_before", K_STR, 0, "DATE", "due before DATE"},
    {"sort", "sort", K_STR, 0, "created|due", "newest first (default) or soonest due"},
    LIST_OPTS,
    {0}};
static const struct opt o_act_complete[] = {
    {"note", "note", K_STR, REQ, "TEXT", "what was done"},
    {"evidence", "evidence_ref", K_STR, 0, "REF", "where the evidence is"},
    {0}};
static const struct opt o_note[] = {{"note", "note", K_STR, REQ, "TEXT", "the update"}, {0}};
static const struct opt o_reopen[] = {{"reason", "reason", K_STR, REQ, "TEXT", "why"},
                                      {"due", "due_date", K_STR, 0, "DATE", "a new due date"},
                                      {0}};
static const struct opt o_summary[] = {{"agency", "agency_id", K_STR, 0, "ID", "owner agency"},
                                       {"hub", "hub_id", K_STR, 0, "ID", "hub"},
                                       {0}};
static const struct opt o_agency_add[] = {
    {"name", "name", K_STR, REQ, "NAME", "name"},
    {"kind", "kind", K_STR, REQ, "K", "police, health, social_care, education, housing, ..."},
    {0}};
static const struct opt o_hub_add[] = {
    {"name", "name", K_STR, REQ, "NAME", "name"},
    {"local-authority", "local_authority", K_STR, REQ, "LA", "the council"},
    {0}};
static const struct opt o_user_add[] = {
    {"username", "username", K_STR, REQ, "U", "sign-in name"},
    {"display-name", "display_name", K_STR, REQ, "NAME", "shown name"},
    {"agency", "agency_id", K_STR, REQ, "ID", "their agency"},
    {"role", "role", K_STR, REQ, "R", "hub_manager, police_liaison, practitioner or admin"},
    {"hubs", "hub_ids", K_LIST, 0, "ID,...", "hubs a hub manager manages"},
    {"password-stdin", NULL, K_BOOL, 0, NULL, "read the password from stdin (else generated)"},
    {0}};
static const struct opt o_cert[] = {
    {"fingerprint", "fingerprint", K_STR, REQ, "SHA256", "the certificate's SHA-256 (hex)"}, {0}};

/* ---- how lists print: columns of JSON members ("a.b" = member b of member a) */

static const struct column c_intel[] = {{"ID", "id", 36},
                                        {"RISK", "risk_level", 8},
                                        {"CATEGORY", "category", 17},
                                        {"SUMMARY", "summary", 0},
                                        {0}};
static const struct column c_subjects[] = {{"ID", "id", 36},
                                           {"REFERENCE", "reference", 14},
                                           {"GIVEN", "given_name", 12},
                                           {"FAMILY", "family_name", 12},
                                           {"STATUS", "status", 0},
                                           {0}};
static const struct column c_meetings[] = {{"ID", "id", 36},
                                           {"WHEN", "scheduled_for", 20},
                                           {"STATUS", "status", 9},
                                           {"TITLE", "title", 0},
                                           {0}};
static const struct column c_actions[] = {{"ID", "id", 36},
                                          {"STATE", "state", 9},
                                          {"DUE", "due_date", 10},
                                          {"OWNER", "owner_agency.name", 14},
                                          {"DESCRIPTION", "description", 0},
                                          {0}};
static const struct column c_named[] = {
    {"ID", "id", 36}, {"NAME", "name", 30}, {"KIND", "kind", 0}, {0}};
static const struct column c_hubs[] = {
    {"ID", "id", 36}, {"NAME", "name", 30}, {"LOCAL AUTHORITY", "local_authority", 0}, {0}};
static const struct column c_users[] = {{"ID", "id", 36},
                                        {"USERNAME", "username", 20},
                                        {"ROLE", "role", 15},
                                        {"ACTIVE", "active", 0},
                                        {0}};

/* ---- the commands */

const struct cmd cmds[] = {
    {"login", NULL, NULL, NULL, 0, NULL, o_login, cmd_login, NULL, NULL,
     "sign in and keep the token", "raisectl login --username j.smith"},
    {"logout", NULL, NULL, NULL, 0, NULL, o_none, cmd_logout, NULL, NULL,
     "sign out and remove the token", "raisectl logout"},
    {"whoami", NULL, "GET", "/v1/me", 0, NULL, o_none, NULL, NULL, NULL, "the signed-in user",
     "raisectl whoami"},
    {"feed", NULL, NULL, NULL, 0, NULL, o_feed, cmd_feed, NULL, NULL,
     "the live feed, one line per event", "raisectl feed"},
    {"intel", "post", "POST", "/v1/intelligence", 0, NULL, o_intel_post, cmd_intel_post, NULL,
     "posted intelligence", "share intelligence",
     "raisectl intel post --subject ID --category arrest --summary \"Arrested in town\" "
     "--risk high --gravity 3 --grade 1A --handling C --conditions \"Not to the family\""},
    {"intel", "list", "GET", "/v1/intelligence", 0, NULL, o_intel_list, NULL, c_intel, NULL,
     "intelligence you may see, newest first", "raisectl intel list --subject ID"},
    {"intel", "show", "GET", "/v1/intelligence/{}", 1, "ID", o_none, NULL, NULL, NULL, "one item",
     "raisectl intel show ID"},
    {"intel", "retract", "POST", "/v1/intelligence/{}/retract", 1, "ID", o_reason, NULL, NULL,
     "retracted intelligence", "retract an item",
     "raisectl intel retract ID --reason \"Entered in error\""},
    {"subjects", "add", "POST", "/v1/subjects", 0, NULL, o_subj_add, NULL, NULL,
     "added young person", "add a young person",
     "raisectl subjects add --hub ID --reference NWD-1 --given-name Sam --family-name Lee "
     "--dob 2010-04-01 --status edge_of_care --key-worker \"Kim\" --team AGENCY,AGENCY"},
    {"subjects", "list", "GET", "/v1/subjects", 0, NULL, o_subj_list, NULL, c_subjects, NULL,
     "young people you may see", "raisectl subjects list --q lee"},
    {"subjects", "show", "GET", "/v1/subjects/{}", 1, "ID", o_none, NULL, NULL, NULL,
     "one young person", "raisectl subjects show ID"},
    {"subjects", "update", "PATCH", "/v1/subjects/{}", 1, "ID", o_subj_update, NULL, NULL,
     "updated young person", "change status, key worker or team",
     "raisectl subjects update ID --status in_care"},
    {"meetings", "schedule", "POST", "/v1/meetings", 0, NULL, o_meet_sched, NULL, NULL,
     "scheduled meeting", "schedule a RAISE meeting",
     "raisectl meetings schedule --hub ID --title \"Weekly RAISE\" --at 2026-12-10T10:00:00Z "
     "--subjects ID,ID --invite AGENCY,AGENCY"},
    {"meetings", "list", "GET", "/v1/meetings", 0, NULL, o_meet_list, NULL, c_meetings, NULL,
     "meetings you may see", "raisectl meetings list --hub ID"},
    {"meetings", "show", "GET", "/v1/meetings/{}", 1, "ID", o_none, NULL, NULL, NULL, "one meeting",
     "raisectl meetings show ID"},
    {"meetings", "add", "PATCH", "/v1/meetings/{}", 1, "ID", o_meet_add, NULL, NULL,
     "updated meeting", "add young people", "raisectl meetings add ID --subjects ID,ID"},
    {"meetings", "attendance", "PATCH", "/v1/meetings/{}", 1, "ID", o_meet_att,
     cmd_meetings_attendance, NULL, "updated meeting", "record who came (replaces the list)",
     "raisectl meetings attendance ID --attendee \"Jo Bloggs,AGENCY\" --attendee \"Al,AGENCY\""},
    {"meetings", "minutes", "PATCH", "/v1/meetings/{}", 1, "ID", o_meet_min, cmd_meetings_minutes,
     NULL, "updated meeting", "minutes for one young person",
     "raisectl meetings minutes ID --subject ID --worried \"Missing twice\" --needs \"Visit\""},
    {"meetings", "start", "POST", "/v1/meetings/{}/start", 1, "ID", o_none, NULL, NULL,
     "started meeting", "start: the agenda is fixed", "raisectl meetings start ID"},
    {"meetings", "close", "POST", "/v1/meetings/{}/close", 1, "ID", o_none, NULL, NULL,
     "closed meeting", "close: minutes are locked", "raisectl meetings close ID"},
    {"agenda", NULL, "GET", "/v1/meetings/{}/agenda", 1, "MEETING", o_agenda, cmd_agenda, NULL,
     NULL, "a meeting's agenda", "raisectl agenda MEETING --format html -o agenda.html"},
    {"suggest", NULL, "GET", "/v1/hubs/{}/agenda-suggestions", 1, "HUB", o_suggest, cmd_suggest,
     NULL, NULL, "young people to discuss, ranked by risk", "raisectl suggest HUB"},
    {"actions", "add", "POST", "/v1/actions", 0, NULL, o_act_add, cmd_actions_add, NULL,
     "recorded action", "record an action",
     "raisectl actions add --meeting ID --subject ID --owner AGENCY --description \"Book a "
     "CAMHS review\" --due 2026-12-20"},
    {"actions", "mine", NULL, NULL, 0, NULL, o_page, cmd_actions_mine, c_actions, NULL,
     "your agency's open and overdue actions", "raisectl actions mine"},
    {"actions", "list", "GET", "/v1/actions", 0, NULL, o_act_list, NULL, c_actions, NULL,
     "actions you may see", "raisectl actions list --status overdue --hub ID"},
    {"actions", "show", "GET", "/v1/actions/{}", 1, "ID", o_none, NULL, NULL, NULL,
     "one action with its history", "raisectl actions show ID"},
    {"actions", "complete", "POST", "/v1/actions/{}/complete", 1, "ID", o_act_complete, NULL, NULL,
     "completed action", "done, and what was done",
     "raisectl actions complete ID --note \"Review held\" --evidence CAMHS-123"},
    {"actions", "update", "POST", "/v1/actions/{}/progress", 1, "ID", o_note, NULL, NULL,
     "updated action", "a progress update", "raisectl actions update ID --note \"Referral sent\""},
    {"actions", "cannot", "POST", "/v1/actions/{}/cannot-complete", 1, "ID", o_reason, NULL, NULL,
     "updated action", "it cannot be done, and why",
     "raisectl actions cannot ID --reason \"No appointments until March\""},
    {"actions", "reopen", "POST", "/v1/actions/{}/reopen", 1, "ID", o_reopen, NULL, NULL,
     "reopened action", "reopen (hub managers)",
     "raisectl actions reopen ID --reason \"Not done\" --due 2026-12-24"},
    {"actions", "cancel", "POST", "/v1/actions/{}/cancel", 1, "ID", o_reason, NULL, NULL,
     "cancelled action", "cancel (hub managers)",
     "raisectl actions cancel ID --reason \"Moved away\""},
    {"actions", "summary", "GET", "/v1/actions/summary", 0, NULL, o_summary, NULL, NULL, NULL,
     "counts per state", "raisectl actions summary --hub ID"},
    {"agencies", "add", "POST", "/v1/agencies", 0, NULL, o_agency_add, NULL, NULL, "added agency",
     "add an agency (admin)",
     "raisectl agencies add --name \"North Yorkshire Police\" --kind police"},
    {"agencies", "list", "GET", "/v1/agencies", 0, NULL, o_page, NULL, c_named, NULL,
     "every agency", "raisectl agencies list"},
    {"hubs", "add", "POST", "/v1/hubs", 0, NULL, o_hub_add, NULL, NULL, "added hub",
     "add a hub (admin)",
     "raisectl hubs add --name \"Scarborough hub\" --local-authority \"North Yorkshire\""},
    {"hubs", "list", "GET", "/v1/hubs", 0, NULL, o_page, NULL, c_hubs, NULL, "every hub",
     "raisectl hubs list"},
    {"users", "add", "POST", "/v1/users", 0, NULL, o_user_add, cmd_users_add, NULL, "added user",
     "add a user (admin)",
     "raisectl users add --username j.smith --display-name \"Jo Smith\" --agency ID "
     "--role practitioner"},
    {"users", "list", "GET", "/v1/users", 0, NULL, o_page, NULL, c_users, NULL, "every user",
     "raisectl users list"},
    {"users", "deactivate", "PATCH", "/v1/users/{}", 1, "ID", o_none, cmd_users_deactivate, NULL,
     "deactivated user", "deactivate a user (signs them out everywhere)",
     "raisectl users deactivate ID"},
    {"users", "cert", "POST", "/v1/users/{}/certificates", 1, "ID", o_cert, NULL, NULL,
     "registered a certificate for user", "register a client certificate",
     "raisectl users cert ID --fingerprint 9f86d0..."},
};
const size_t ncmds = sizeof(cmds) / sizeof(cmds[0]);

int main(int argc, char **argv)
{
    return cmds_main(argc, argv);
}
