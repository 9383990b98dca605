/* The RAISE agenda: the risk score that orders young people (docs/agenda.md has the formula
 * in words), and the markdown and HTML renderings of an agenda built as JSON by the server.
 * Pure functions: no sockets, no database. */
#ifndef RAISE_AGENDA_H
#define RAISE_AGENDA_H

#include <json-c/json.h>
#include <stddef.h>

#define AGENDA_MARKING         "OFFICIAL-SENSITIVE"
#define AGENDA_WINDOW_DAYS     28   /* intelligence window when never discussed */
#define AGENDA_HALF_LIFE_DAYS  14.0 /* an item's weight halves every 14 days */
#define AGENDA_MISSING_WEIGHT  3.0  /* extra per missing-from-home episode */
#define AGENDA_GRAVITY_DEFAULT 2    /* an arrest, charge or offence without a gravity score */
#define AGENDA_OVERDUE_WEIGHT  2.0  /* per overdue action */
#define AGENDA_STALE_STEP_DAYS 14   /* +0.5 per 14 days since the last discussion ... */
#define AGENDA_STALE_MAX       3.0  /* ... up to 3 */
#define AGENDA_NEVER_WEIGHT    1.0  /* never discussed at RAISE */

/* One intelligence item as the score sees it. */
struct agenda_item {
    const char *category;   /* intel_categories */
    const char *risk_level; /* low, medium, high, critical */
    int gravity;            /* 1-8, 0 if none */
    double age_days;        /* from occurred_at to the agenda's reference time */
    int retracted;
};

struct agenda_input {
    const struct agenda_item *items;
    size_t nitems;
    int overdue_actions;   /* open and past their due date at the reference time */
    double days_since_met; /* since the last RAISE discussion; < 0 if never */
};

/* The score (rounded to one decimal place) and, when reasons is an array, one short
 * sentence per contribution, largest first. */
double agenda_score(const struct agenda_input *in, json_object *reasons);
/* The weight of a risk level: low 1, medium 2, high 4, critical 8 (0 if unknown). */
double agenda_risk_weight(const char *risk_level);
/* Order an array of agenda entries ({"score": n, "subject": {"reference": ...}}) by score,
 * highest first, then by reference. */
void agenda_sort(json_object *entries);

/* Renderings of an agenda JSON document (server/agenda.c builds it; docs/agenda.md shows
 * its shape). Both are marked OFFICIAL-SENSITIVE at the top and the bottom and escape every
 * value. Owned strings. */
char *agenda_markdown(json_object *agenda);
char *agenda_html(json_object *agenda);
/* The stylesheet embedded in the HTML page (for the Content-Security-Policy hash). */
extern const char agenda_css[];

/* Escapes, appended to a growing buffer. */
struct sbuf {
    char *s;
    size_t len, cap;
};
void sbuf_add(struct sbuf *b, const char *s);
void sbuf_addf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* &, <, >, ", ' as entities. */
void sbuf_html(struct sbuf *b, const char *s);
/* Markdown-safe inline text: HTML specials as entities, markdown punctuation backslashed,
 * line breaks as spaces. */
void sbuf_md(struct sbuf *b, const char *s);

#endif
