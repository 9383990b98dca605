/* Intelligence items: the columns and the rendering shared by the routes and the stream. */
#ifndef RAISE_INTELLIGENCE_H
#define RAISE_INTELLIGENCE_H

#include "subjects.h"

#include <json-c/json.h>
#include <libpq-fe.h>

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* An item is visible when its young person is, and it is not restricted or the caller's
 * agency is one it is restricted to. */
/* clang-format off */
#define INTEL_VISIBLE(i, s, agency, hubs)                                                          \
    "(" SUBJECT_VISIBLE(s, agency, hubs) " AND (" i ".restricted_to IS NULL OR " agency "::uuid "  \
        "= ANY(" i ".restricted_to)))"
/* clang-format on */

/* The columns render_item() reads, in this order. */
/* clang-format off */
#define INTEL_COLUMNS(i)                                                                           \
    i ".id, " i ".subject_id, " i ".category, " i ".summary, " i ".detail, " TS(i ".occurred_at")  \
        ", " i ".risk_level, " i ".gravity, " i ".grading_scheme, " i ".grading_source, " i        \
        ".grading_assessment, " i ".handling, " i ".conditions, " i ".restricted_to, " i           \
        ".author_id, " i ".author_agency_id, " TS(i ".created_at") ", " TS(i ".retracted_at") ", " \
        i ".retracted_by, " i ".retraction_reason"
/* clang-format on */
#define INTEL_NCOLS 20

/* The item in row, from INTEL_COLUMNS starting at column c, as GET shows it (grading and
 * handling conditions included). */
json_object *intelligence_render(PGresult *res, int row, int c);

#endif
