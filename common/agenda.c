/* The agenda's risk score and its markdown and HTML renderings (see agenda.h and
 * docs/agenda.md). */
#include "agenda.h"

#include "xmalloc.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- buffers and escaping */

static void sbuf_grow(struct sbuf *b, size_t more)
{
    if (b->len + more + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + more + 1)
        cap *= 2;
    b->s = xrealloc(b->s, cap);
    b->cap = cap;
}

static void sbuf_addn(struct sbuf *b, const char *s, size_t n)
{
    sbuf_grow(b, n);
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void sbuf_add(struct sbuf *b, const char *s)
{
    sbuf_addn(b, s, strlen(s));
}

void sbuf_addf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n > 0) {
        sbuf_grow(b, (size_t)n);
        vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap2);
        b->len += (size_t)n;
    }
    va_end(ap2);
}

static const char *html_entity(char c)
{
    switch (c) {
    case '&':
        return "&amp;";
    case '<':
        return "&lt;";
    case '>':
        return "&gt;";
    case '"':
        return "&quot;";
    case '\'':
        return "&#39;";
    default:
        return NULL;
    }
}

void sbuf_html(struct sbuf *b, const char *s)
{
    for (const char *p = s ? s : ""; *p; p++) {
        const char *e = html_entity(*p);
        if (e != NULL)
            sbuf_add(b, e);
        else
            sbuf_addn(b, p, 1);
    }
}

void sbuf_md(struct sbuf *b, const char *s)
{
    static const char punct[] = "\\`*_{}[]()#+-.!|~";
    for (const char *p = s ? s : ""; *p; p++) {
        const char *e = html_entity(*p);
        if (e != NULL)
            sbuf_add(b, e);
        else if (*p == '\n' || *p == '\r' || *p == '\t')
            sbuf_add(b, " ");
        else if (strchr(punct, *p) != NULL) {
            char esc[3] = {'\\', *p, '\0'};
            sbuf_add(b, esc);
        } else
            sbuf_addn(b, p, 1);
    }
}

/* ---- the score */

double agenda_risk_weight(const char *risk_level)
{
    static const struct {
        const char *name;
        double w;
    } w[] = {{"low", 1}, {"medium", 2}, {"high", 4}, {"critical", 8}};
    for (size_t i = 0; risk_level != NULL && i < sizeof(w) / sizeof(w[0]); i++)
        if (strcmp(w[i].name, risk_level) == 0)
            return w[i].w;
    return 0;
}

static int is_offence(const char *c)
{
    return strcmp(c, "arrest") == 0 || strcmp(c, "charge") == 0 || strcmp(c, "offence_at_hub") == 0;
}

struct reason {
    double points;
    char text[160];
    int order; /* as added: ties keep it */
};

/* Most points first; equal points in the order they were added (qsort is not stable: the
 * order of equal ones was whatever it left; found in review). */
static int by_points(const void *a, const void *b)
{
    const struct reason *x = a, *y = b;
    double d = y->points - x->points;
    return d > 0 ? 1 : d < 0 ? -1 : (x->order > y->order) - (x->order < y->order);
}

static const char *plural(int n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

double agenda_score(const struct agenda_input *in, json_object *reasons)
{
    double risk = 0, missing = 0, offences = 0;
    int nrisk = 0, nhigh = 0, nmissing = 0, noffences = 0, maxgravity = 0, ngood = 0;
    for (size_t i = 0; i < in->nitems; i++) {
        const struct agenda_item *it = &in->items[i];
        if (it->retracted || it->category == NULL)
            continue;
        if (strcmp(it->category, "positive_progress") == 0) {
            ngood++;
            continue; /* a strength is shown under "working well"; it does not cancel a risk */
        }
        double recency = pow(0.5, (it->age_days > 0 ? it->age_days : 0) / AGENDA_HALF_LIFE_DAYS);
        risk += agenda_risk_weight(it->risk_level) * recency;
        nrisk++;
        if (strcmp(it->risk_level, "high") == 0 || strcmp(it->risk_level, "critical") == 0)
            nhigh++;
        if (strcmp(it->category, "missing_from_home") == 0) {
            missing += AGENDA_MISSING_WEIGHT * recency;
            nmissing++;
        }
        if (is_offence(it->category)) {
            int g = it->gravity > 0 ? it->gravity : AGENDA_GRAVITY_DEFAULT;
            offences += g * recency;
            noffences++;
            if (it->gravity > maxgravity)
                maxgravity = it->gravity;
        }
    }
    double overdue = AGENDA_OVERDUE_WEIGHT * (in->overdue_actions > 0 ? in->overdue_actions : 0);
    double stale;
    if (in->days_since_met < 0)
        stale = AGENDA_NEVER_WEIGHT;
    else {
        stale = 0.5 * floor(in->days_since_met / AGENDA_STALE_STEP_DAYS);
        if (stale > AGENDA_STALE_MAX)
            stale = AGENDA_STALE_MAX;
    }
    double total = risk + missing + offences + overdue + stale;
    total = round(total * 10) / 10;
    if (reasons == NULL)
        return total;

    struct reason r[6];
    int n = 0;
    if (nrisk > 0) {
        r[n].points = risk;
        if (nhigh > 0)
            snprintf(r[n].text, sizeof(r[n].text), "%d new %s, %d high or critical risk", nrisk,
                     plural(nrisk, "item of concern", "items of concern"), nhigh);
        else
            snprintf(r[n].text, sizeof(r[n].text), "%d new %s", nrisk,
                     plural(nrisk, "item of concern", "items of concern"));
        n++;
    }
    if (nmissing > 0) {
        r[n].points = missing;
        snprintf(r[n].text, sizeof(r[n].text), "%d missing from home %s", nmissing,
                 plural(nmissing, "episode", "episodes"));
        n++;
    }
    if (noffences > 0) {
        r[n].points = offences;
        if (maxgravity > 0)
            snprintf(r[n].text, sizeof(r[n].text), "%d %s (highest gravity %d)", noffences,
                     plural(noffences, "arrest, charge or offence", "arrests, charges or offences"),
                     maxgravity);
        else
            snprintf(
                r[n].text, sizeof(r[n].text), "%d %s", noffences,
                plural(noffences, "arrest, charge or offence", "arrests, charges or offences"));
        n++;
    }
    if (in->overdue_actions > 0) {
        r[n].points = overdue;
        snprintf(r[n].text, sizeof(r[n].text), "%d overdue %s", in->overdue_actions,
                 plural(in->overdue_actions, "action", "actions"));
        n++;
    }
    if (in->days_since_met < 0) {
        r[n].points = stale;
        snprintf(r[n].text, sizeof(r[n].text), "never discussed at RAISE");
        n++;
    } else if (stale > 0) {
        r[n].points = stale;
        snprintf(r[n].text, sizeof(r[n].text), "not discussed for %d days",
                 (int)in->days_since_met);
        n++;
    }
    if (ngood > 0) {
        r[n].points = 0;
        snprintf(r[n].text, sizeof(r[n].text), "%d positive progress %s (not scored)", ngood,
                 plural(ngood, "report", "reports"));
        n++;
    }
    for (int i = 0; i < n; i++)
        r[i].order = i;
    qsort(r, (size_t)n, sizeof(r[0]), by_points);
    for (int i = 0; i < n; i++)
        json_object_array_add(reasons, json_object_new_string(r[i].text));
    return total;
}

static const char *jget(json_object *o, const char *key)
{
    json_object *v;
    if (o == NULL || !json_object_object_get_ex(o, key, &v) || v == NULL)
        return NULL;
    return json_object_get_string(v);
}

static json_object *jobj(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (o != NULL)
        json_object_object_get_ex(o, key, &v);
    return v;
}

static int by_score(const void *a, const void *b)
{
    json_object *x = *(json_object *const *)a, *y = *(json_object *const *)b;
    double d = json_object_get_double(jobj(y, "score")) - json_object_get_double(jobj(x, "score"));
    if (d != 0)
        return d > 0 ? 1 : -1;
    const char *rx = jget(jobj(x, "subject"), "reference"),
               *ry = jget(jobj(y, "subject"), "reference");
    return strcmp(rx ? rx : "", ry ? ry : "");
}

void agenda_sort(json_object *entries)
{
    json_object_array_sort(entries, by_score);
}

/* ---- renderings */

static const char *const headings[][2] = {
    {"worried_about", "What are we worried about?"},
    {"working_well", "What's working well?"},
    {"needs_to_happen", "What needs to happen?"},
};
static const char *const action_groups[][2] = {
    {"overdue", "Overdue"},
    {"open", "Open"},
    {"completed", "Completed since the last meeting"},
    {"cancelled", "Cancelled"}, /* only on a fixed agenda; shown only when there are some */
};
#define N_ACTION_GROUPS (sizeof(action_groups) / sizeof(action_groups[0]))

static const char *or_dash(const char *s)
{
    return s && *s ? s : "-";
}

static const char *grading_text(json_object *item)
{
    return jget(jobj(item, "grading"), "text");
}

static void md_item(struct sbuf *b, json_object *it)
{
    sbuf_add(b, "- **");
    sbuf_md(b, jget(it, "risk_level"));
    sbuf_add(b, "** ");
    sbuf_md(b, jget(it, "category"));
    sbuf_add(b, " (");
    sbuf_md(b, jget(it, "occurred_at"));
    sbuf_add(b, "): ");
    sbuf_md(b, jget(it, "summary"));
    const char *g = grading_text(it);
    if (g != NULL) {
        sbuf_add(b, " Grading ");
        sbuf_md(b, g);
        sbuf_add(b, ".");
    }
    const char *gravity = jget(it, "gravity");
    if (gravity != NULL) {
        sbuf_add(b, " Gravity ");
        sbuf_md(b, gravity);
        sbuf_add(b, ".");
    }
    const char *cond = jget(jobj(it, "grading"), "conditions");
    if (cond != NULL) {
        sbuf_add(b, " **Handling conditions:** ");
        sbuf_md(b, cond);
    }
    if (jobj(it, "retracted") != NULL) {
        sbuf_add(b, " **Retracted:** ");
        sbuf_md(b, jget(jobj(it, "retracted"), "reason"));
    }
    sbuf_add(b, "\n");
}

static void md_action(struct sbuf *b, json_object *a)
{
    sbuf_add(b, "- ");
    sbuf_md(b, jget(a, "description"));
    sbuf_add(b, " (owner: ");
    sbuf_md(b, jget(jobj(a, "owner_agency"), "name"));
    sbuf_add(b, ", due ");
    sbuf_md(b, jget(a, "due_date"));
    sbuf_add(b, ")");
    if (jget(a, "completion_note") != NULL) {
        sbuf_add(b, " Done: ");
        sbuf_md(b, jget(a, "completion_note"));
    }
    if (jget(a, "cannot_complete_reason") != NULL) {
        sbuf_add(b, " **Cannot complete:** ");
        sbuf_md(b, jget(a, "cannot_complete_reason"));
    }
    if (jget(jobj(a, "latest_progress"), "note") != NULL) {
        sbuf_add(b, " Progress: ");
        sbuf_md(b, jget(jobj(a, "latest_progress"), "note"));
    }
    sbuf_add(b, "\n");
}

static void md_team(struct sbuf *b, json_object *team)
{
    size_t n = team ? json_object_array_length(team) : 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            sbuf_add(b, ", ");
        sbuf_md(b, jget(json_object_array_get_idx(team, i), "name"));
    }
    if (n == 0)
        sbuf_add(b, "-");
}

char *agenda_markdown(json_object *agenda)
{
    struct sbuf b = {0};
    json_object *m = jobj(agenda, "meeting");
    sbuf_add(&b, "**" AGENDA_MARKING "**\n\n# RAISE meeting: ");
    sbuf_md(&b, jget(m, "title"));
    sbuf_add(&b, "\n\n");
    sbuf_add(&b, "- Hub: ");
    sbuf_md(&b, jget(m, "hub_name"));
    sbuf_add(&b, "\n- When: ");
    sbuf_md(&b, jget(m, "scheduled_for"));
    sbuf_add(&b, "\n- Where: ");
    sbuf_md(&b, or_dash(jget(m, "location")));
    sbuf_add(&b, "\n- Chair: ");
    sbuf_md(&b, jget(jobj(m, "chair"), "display_name"));
    sbuf_add(&b, "\n- Invited: ");
    md_team(&b, jobj(m, "invited_agencies"));
    sbuf_add(&b, "\n- Status: ");
    sbuf_md(&b, jget(m, "status"));
    sbuf_add(&b, json_object_get_boolean(jobj(agenda, "frozen"))
                     ? " (agenda fixed when the meeting started)"
                     : " (agenda built live)");
    sbuf_add(&b, "\n");
    json_object *yp = jobj(agenda, "young_people");
    size_t n = yp ? json_object_array_length(yp) : 0;
    if (n == 0)
        sbuf_add(&b, "\nNo young people on this agenda.\n");
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(yp, i), *s = jobj(e, "subject");
        sbuf_addf(&b, "\n## %zu. ", i + 1);
        sbuf_md(&b, jget(s, "given_name"));
        sbuf_add(&b, " ");
        sbuf_md(&b, jget(s, "family_name"));
        sbuf_add(&b, " (");
        sbuf_md(&b, jget(s, "reference"));
        sbuf_add(&b, ")\n\n");
        sbuf_add(&b, "- Status: ");
        sbuf_md(&b, jget(s, "status"));
        sbuf_add(&b, "\n- Key worker: ");
        sbuf_md(&b, jget(s, "key_worker"));
        sbuf_add(&b, "\n- Team: ");
        md_team(&b, jobj(s, "team"));
        sbuf_add(&b, "\n- Risk score: ");
        sbuf_md(&b, json_object_get_string(jobj(e, "score")));
        json_object *rs = jobj(e, "reasons");
        for (size_t k = 0; rs && k < json_object_array_length(rs); k++) {
            sbuf_add(&b, k == 0 ? " (" : "; ");
            sbuf_md(&b, json_object_get_string(json_object_array_get_idx(rs, k)));
            if (k + 1 == json_object_array_length(rs))
                sbuf_add(&b, ")");
        }
        sbuf_add(&b, "\n- Intelligence since: ");
        sbuf_md(&b, jget(e, "since"));
        sbuf_add(&b, "\n");
        for (int h = 0; h < 2; h++) {
            json_object *items = jobj(e, headings[h][0]);
            sbuf_addf(&b, "\n### %s\n\n", headings[h][1]);
            size_t ni = items ? json_object_array_length(items) : 0;
            for (size_t k = 0; k < ni; k++)
                md_item(&b, json_object_array_get_idx(items, k));
            if (ni == 0)
                sbuf_add(&b, "Nothing new.\n");
        }
        sbuf_addf(&b, "\n### %s\n", headings[2][1]);
        json_object *acts = jobj(e, "needs_to_happen");
        for (size_t g = 0; g < N_ACTION_GROUPS; g++) {
            json_object *list = jobj(acts, action_groups[g][0]);
            size_t na = list ? json_object_array_length(list) : 0;
            if (na == 0 && g == N_ACTION_GROUPS - 1)
                continue;
            sbuf_addf(&b, "\n%s actions:%s\n", action_groups[g][1], na ? "\n" : " none.");
            for (size_t k = 0; k < na; k++)
                md_action(&b, json_object_array_get_idx(list, k));
        }
    }
    sbuf_add(&b, "\n**" AGENDA_MARKING "**\n");
    return b.s;
}

const char agenda_css[] =
    "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:60em;color:#111;"
    "line-height:1.4}"
    ".marking{text-align:center;font-weight:bold;letter-spacing:.1em;border:2px solid #111;"
    "padding:.3em;margin:1em 0}"
    "h1{font-size:1.6em}h2{font-size:1.3em;border-top:1px solid #999;padding-top:.6em;"
    "margin-top:1.6em}h3{font-size:1.05em;margin-bottom:.3em}"
    "dl{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em}dt{font-weight:bold}"
    "dd{margin:0}ul{margin:.2em 0 .6em 1.2em;padding:0}"
    ".risk{font-weight:bold;text-transform:uppercase;font-size:.85em}"
    ".critical,.high{color:#a00}.cond{background:#fff3cd;padding:0 .2em}"
    ".overdue{color:#a00;font-weight:bold}.none{color:#555;font-style:italic}"
    "@page{size:A4;margin:18mm 15mm}"
    "@media print{body{margin:0;max-width:none;font-size:10.5pt}"
    "section{break-inside:avoid-page}h2{break-after:avoid}"
    ".marking{position:static}}";

static void html_item(struct sbuf *b, json_object *it)
{
    const char *risk = or_dash(jget(it, "risk_level"));
    sbuf_add(b, "<li><span class=\"risk ");
    sbuf_html(b, risk);
    sbuf_add(b, "\">");
    sbuf_html(b, risk);
    sbuf_add(b, "</span> ");
    sbuf_html(b, jget(it, "category"));
    sbuf_add(b, " <small>");
    sbuf_html(b, jget(it, "occurred_at"));
    sbuf_add(b, "</small>: ");
    sbuf_html(b, jget(it, "summary"));
    if (grading_text(it) != NULL) {
        sbuf_add(b, " <small>Grading ");
        sbuf_html(b, grading_text(it));
        sbuf_add(b, "</small>");
    }
    if (jget(it, "gravity") != NULL) {
        sbuf_add(b, " <small>Gravity ");
        sbuf_html(b, jget(it, "gravity"));
        sbuf_add(b, "</small>");
    }
    const char *cond = jget(jobj(it, "grading"), "conditions");
    if (cond != NULL) {
        sbuf_add(b, "<br><span class=\"cond\">Handling conditions: ");
        sbuf_html(b, cond);
        sbuf_add(b, "</span>");
    }
    if (jobj(it, "retracted") != NULL) {
        sbuf_add(b, "<br><strong>Retracted:</strong> ");
        sbuf_html(b, jget(jobj(it, "retracted"), "reason"));
    }
    sbuf_add(b, "</li>\n");
}

static void html_action(struct sbuf *b, json_object *a, int overdue)
{
    sbuf_add(b, overdue ? "<li class=\"overdue\">" : "<li>");
    sbuf_html(b, jget(a, "description"));
    sbuf_add(b, " <small>(owner: ");
    sbuf_html(b, jget(jobj(a, "owner_agency"), "name"));
    sbuf_add(b, ", due ");
    sbuf_html(b, jget(a, "due_date"));
    sbuf_add(b, ")</small>");
    if (jget(a, "completion_note") != NULL) {
        sbuf_add(b, "<br>Done: ");
        sbuf_html(b, jget(a, "completion_note"));
    }
    if (jget(a, "cannot_complete_reason") != NULL) {
        sbuf_add(b, "<br><strong>Cannot complete:</strong> ");
        sbuf_html(b, jget(a, "cannot_complete_reason"));
    }
    if (jget(jobj(a, "latest_progress"), "note") != NULL) {
        sbuf_add(b, "<br>Progress: ");
        sbuf_html(b, jget(jobj(a, "latest_progress"), "note"));
    }
    sbuf_add(b, "</li>\n");
}

static void html_team(struct sbuf *b, json_object *team)
{
    size_t n = team ? json_object_array_length(team) : 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            sbuf_add(b, ", ");
        sbuf_html(b, jget(json_object_array_get_idx(team, i), "name"));
    }
    if (n == 0)
        sbuf_add(b, "-");
}

static void html_dt(struct sbuf *b, const char *term, const char *value)
{
    sbuf_add(b, "<dt>");
    sbuf_add(b, term);
    sbuf_add(b, "</dt><dd>");
    sbuf_html(b, or_dash(value));
    sbuf_add(b, "</dd>\n");
}

char *agenda_html(json_object *agenda)
{
    struct sbuf b = {0};
    json_object *m = jobj(agenda, "meeting");
    sbuf_add(&b, "<!DOCTYPE html>\n<html lang=\"en-GB\"><head><meta charset=\"utf-8\">\n"
                 "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                 "<title>" AGENDA_MARKING " - RAISE agenda: ");
    sbuf_html(&b, jget(m, "title"));
    sbuf_add(&b, "</title>\n<style>");
    sbuf_add(&b, agenda_css);
    sbuf_add(&b, "</style></head>\n<body>\n<div class=\"marking\">" AGENDA_MARKING "</div>\n"
                 "<h1>RAISE meeting: ");
    sbuf_html(&b, jget(m, "title"));
    sbuf_add(&b, "</h1>\n<dl>\n");
    html_dt(&b, "Hub", jget(m, "hub_name"));
    html_dt(&b, "When", jget(m, "scheduled_for"));
    html_dt(&b, "Where", jget(m, "location"));
    html_dt(&b, "Chair", jget(jobj(m, "chair"), "display_name"));
    sbuf_add(&b, "<dt>Invited</dt><dd>");
    html_team(&b, jobj(m, "invited_agencies"));
    sbuf_add(&b, "</dd>\n");
    html_dt(&b, "Status", jget(m, "status"));
    sbuf_add(&b, "</dl>\n<p>");
    sbuf_add(&b, json_object_get_boolean(jobj(agenda, "frozen"))
                     ? "Agenda fixed when the meeting started."
                     : "Agenda built live from the latest intelligence and actions.");
    sbuf_add(&b, "</p>\n");
    json_object *yp = jobj(agenda, "young_people");
    size_t n = yp ? json_object_array_length(yp) : 0;
    if (n == 0)
        sbuf_add(&b, "<p class=\"none\">No young people on this agenda.</p>\n");
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(yp, i), *s = jobj(e, "subject");
        sbuf_addf(&b, "<section>\n<h2>%zu. ", i + 1);
        sbuf_html(&b, jget(s, "given_name"));
        sbuf_add(&b, " ");
        sbuf_html(&b, jget(s, "family_name"));
        sbuf_add(&b, " (");
        sbuf_html(&b, jget(s, "reference"));
        sbuf_add(&b, ")</h2>\n<dl>\n");
        html_dt(&b, "Status", jget(s, "status"));
        html_dt(&b, "Key worker", jget(s, "key_worker"));
        sbuf_add(&b, "<dt>Team</dt><dd>");
        html_team(&b, jobj(s, "team"));
        sbuf_add(&b, "</dd>\n<dt>Risk score</dt><dd>");
        sbuf_html(&b, json_object_get_string(jobj(e, "score")));
        json_object *rs = jobj(e, "reasons");
        for (size_t k = 0; rs && k < json_object_array_length(rs); k++) {
            sbuf_add(&b, k == 0 ? " (" : "; ");
            sbuf_html(&b, json_object_get_string(json_object_array_get_idx(rs, k)));
            if (k + 1 == json_object_array_length(rs))
                sbuf_add(&b, ")");
        }
        sbuf_add(&b, "</dd>\n");
        html_dt(&b, "Intelligence since", jget(e, "since"));
        sbuf_add(&b, "</dl>\n");
        for (int h = 0; h < 2; h++) {
            json_object *items = jobj(e, headings[h][0]);
            size_t ni = items ? json_object_array_length(items) : 0;
            sbuf_addf(&b, "<h3>%s</h3>\n", headings[h][1]);
            if (ni == 0)
                sbuf_add(&b, "<p class=\"none\">Nothing new.</p>\n");
            else
                sbuf_add(&b, "<ul>\n");
            for (size_t k = 0; k < ni; k++)
                html_item(&b, json_object_array_get_idx(items, k));
            if (ni > 0)
                sbuf_add(&b, "</ul>\n");
        }
        sbuf_addf(&b, "<h3>%s</h3>\n", headings[2][1]);
        json_object *acts = jobj(e, "needs_to_happen");
        for (size_t g = 0; g < N_ACTION_GROUPS; g++) {
            json_object *list = jobj(acts, action_groups[g][0]);
            size_t na = list ? json_object_array_length(list) : 0;
            if (na == 0 && g == N_ACTION_GROUPS - 1)
                continue;
            sbuf_addf(&b, "<p>%s actions:%s</p>\n", action_groups[g][1], na ? "" : " none.");
            if (na > 0)
                sbuf_add(&b, "<ul>\n");
            for (size_t k = 0; k < na; k++)
                html_action(&b, json_object_array_get_idx(list, k), g == 0);
            if (na > 0)
                sbuf_add(&b, "</ul>\n");
        }
        sbuf_add(&b, "</section>\n");
    }
    sbuf_add(&b, "<div class=\"marking\">" AGENDA_MARKING "</div>\n</body></html>\n");
    return b.s;
}
