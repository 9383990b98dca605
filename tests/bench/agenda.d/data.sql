-- Bulk rows for tests/bench/agenda, run once as the database owner on the scratch database
-- after the young people, their teams and one intelligence item each were made through the
-- API. Rows are valid for every CHECK in sql/003 and sql/005 and look like what the server
-- writes; random() is seeded, so two runs make the same mix (only ids and times differ).
-- psql variables (set by tests/bench/agenda with -v):
--   hub             the hub's id
--   manager_user    the hub manager (creates the actions)
--   police_agency police_user, health_agency health_user, social_agency social_user:
--                   the three team agencies and one author in each
--   items           intelligence items to add per young person (the API added one more)
--   actions         actions per young person
--   window_pct      % of each young person's items created inside a never-discussed
--                   young person's agenda window (the last 28 days); the rest 30-330 days ago
\set ON_ERROR_STOP 1
SELECT setseed(0.4242);

CREATE TEMP TABLE bench_authors (k int, agency_id uuid, user_id uuid);
INSERT INTO bench_authors VALUES (1, :'police_agency', :'police_user'),
    (2, :'health_agency', :'health_user'), (3, :'social_agency', :'social_user');

-- Each young person's team agencies that have an author (the police are on every team).
CREATE TEMP TABLE bench_teams AS
SELECT s.id AS subject_id, array_agg(a.k ORDER BY a.k) AS ks
FROM subjects s JOIN subject_team st ON st.subject_id = s.id
JOIN bench_authors a ON a.agency_id = st.agency_id
WHERE s.hub_id = :'hub' GROUP BY s.id;

-- ---------------------------------------------------------------- intelligence
CREATE TEMP TABLE bench_intel AS
SELECT t.subject_id, t.ks[1 + (n % cardinality(t.ks))] AS k, n,
       (n <= ceil(:items * :window_pct / 100.0)) AS recent,
       random() AS r_cat, random() AS r_risk, random() AS r_grav, random() AS r_restr,
       random() AS r_age, random() AS r_occ, random() AS r_grade, random() AS r_retr,
       random() AS r_detail
FROM bench_teams t, generate_series(1, :items) AS n;

INSERT INTO intelligence (subject_id, author_id, author_agency_id, category, summary, detail,
    occurred_at, risk_level, gravity, grading_scheme, grading_source, grading_assessment,
    handling, conditions, restricted_to, created_at, retracted_at, retracted_by,
    retraction_reason)
SELECT subject_id, user_id, agency_id, category,
       'Bench item ' || n || ': ' || replace(category, '_', ' ') || ' reported by ' ||
           (ARRAY['the police', 'health', 'social care'])[k] ||
           '; seen near the station with two older associates, returned late and would not say where',
       CASE WHEN r_detail < 0.4 THEN repeat('Further detail from the reporting officer about the '
           || 'circumstances, who was present and what was said. ', 4) END,
       created_at - (r_occ * interval '36 hours'),
       (ARRAY['low', 'low', 'medium', 'medium', 'medium', 'high', 'high', 'critical'])[1 + floor(r_risk * 8)::int],
       CASE WHEN category IN ('arrest', 'charge', 'offence_at_hub') AND r_grav >= 0.2
           THEN 1 + floor(r_grav * 8)::int % 8 END,
       g_scheme, g_source, g_assess, g_handling,
       CASE WHEN g_handling = 'C' THEN 'Not to be disclosed to the family or carers' END,
       CASE WHEN k = 1 AND r_restr < 0.10 THEN ARRAY[agency_id]
            WHEN k = 2 AND r_restr < 0.08 THEN ARRAY[agency_id]
            WHEN k = 3 AND r_restr < 0.05 THEN ARRAY[agency_id] END,
       created_at,
       CASE WHEN r_retr < 0.02 THEN least(created_at + interval '1 hour', now()) END,
       CASE WHEN r_retr < 0.02 THEN user_id END,
       CASE WHEN r_retr < 0.02 THEN 'Entered against the wrong young person' END
FROM (
    SELECT b.*, a.agency_id, a.user_id,
           (ARRAY['missing_from_home', 'missing_from_home', 'returned_from_missing', 'arrest',
                  'charge', 'offence_at_hub', 'cse_concern', 'cce_county_lines',
                  'risky_associate', 'self_harm', 'ae_attendance', 'hospital_admission',
                  'substance_misuse', 'school_exclusion', 'placement_incident',
                  'domestic_abuse', 'positive_progress', 'positive_progress', 'other'])
               [1 + floor(r_cat * 19)::int] AS category,
           CASE WHEN recent THEN now() - r_age * interval '27 days'
                ELSE now() - interval '30 days' - r_age * interval '300 days' END AS created_at,
           CASE WHEN b.k = 1 OR r_grade < 0.3 THEN '3x5x2' END AS g_scheme,
           CASE WHEN b.k = 1 OR r_grade < 0.3 THEN (1 + floor(r_grade * 3)::int % 3)::text END AS g_source,
           CASE WHEN b.k = 1 OR r_grade < 0.3 THEN (ARRAY['A', 'B', 'C', 'D', 'E'])[1 + floor(r_occ * 5)::int % 5] END AS g_assess,
           CASE WHEN b.k = 1 OR r_grade < 0.3 THEN CASE WHEN r_detail < 0.25 THEN 'C' ELSE 'P' END END AS g_handling
    FROM bench_intel b JOIN bench_authors a ON a.k = b.k
) x;

-- ---------------------------------------------------------------- actions
-- By j % 20: 0-7 open and due in the next 60 days, 8-12 open and overdue (due 1-30 days
-- ago), 13-18 completed (some before the window, so not on the agenda), 19 cancelled.
CREATE TEMP TABLE bench_actions AS
SELECT gen_random_uuid() AS id, t.subject_id, t.ks[1 + (j % cardinality(t.ks))] AS k, j,
       CASE WHEN j % 20 < 13 THEN 'open' WHEN j % 20 < 19 THEN 'completed' ELSE 'cancelled' END AS status,
       j % 20 BETWEEN 8 AND 12 AS overdue,
       random() AS r_due, random() AS r_created, random() AS r_done, random() AS r_misc
FROM bench_teams t, generate_series(1, :actions) AS j;

INSERT INTO actions (id, subject_id, hub_id, meeting_id, owner_agency_id, assignee_id,
    description, due_date, status, created_by, created_at, updated_at, completed_at,
    completed_by, completion_note, evidence_ref, cancelled_at, cancelled_by, cancel_reason,
    blocked_reason, overdue_noted_at)
SELECT b.id, b.subject_id, :'hub', NULL, a.agency_id,
       CASE WHEN b.r_misc < 0.7 THEN a.user_id END,
       'Bench action ' || b.j || ': ' || (ARRAY['arrange a return home interview',
           'refer to the exploitation panel', 'review the placement plan',
           'share the school attendance record', 'book a sexual health appointment',
           'complete a disruption plan for the associates named'])[1 + b.j % 6],
       CASE WHEN b.status = 'open' AND b.overdue THEN current_date - (1 + floor(b.r_due * 30)::int)
            WHEN b.status = 'open' THEN current_date + (1 + floor(b.r_due * 60)::int)
            ELSE current_date - floor(b.r_due * 40)::int END,
       b.status, :'manager_user', c.created_at, greatest(c.created_at, c.done_at),
       CASE WHEN b.status = 'completed' THEN c.done_at END,
       CASE WHEN b.status = 'completed' THEN a.user_id END,
       CASE WHEN b.status = 'completed' THEN 'Done: seen at home, plan agreed with the carers' END,
       CASE WHEN b.status = 'completed' AND b.r_misc < 0.5 THEN 'CASE-' || (1000 + b.j) END,
       CASE WHEN b.status = 'cancelled' THEN c.done_at END,
       CASE WHEN b.status = 'cancelled' THEN :'manager_user'::uuid END,
       CASE WHEN b.status = 'cancelled' THEN 'No longer needed after the placement move' END,
       CASE WHEN b.status = 'open' AND b.r_misc > 0.9 THEN 'Young person not engaging; carers refuse contact' END,
       CASE WHEN b.status = 'open' AND b.overdue THEN now() END
FROM bench_actions b JOIN bench_authors a ON a.k = b.k
CROSS JOIN LATERAL (SELECT now() - interval '20 days' - b.r_created * interval '40 days' AS created_at) c0
CROSS JOIN LATERAL (SELECT c0.created_at, least(now(), greatest(c0.created_at + interval '1 day',
                           now() - b.r_done * interval '40 days')) AS done_at) c;

-- History: created for every action, 1-2 progress notes for about half, and the closing
-- transition for completed and cancelled ones.
INSERT INTO action_history (action_id, at, user_id, agency_id, kind, from_status, to_status, note)
SELECT a.id, a.created_at, a.created_by, (SELECT agency_id FROM users WHERE id = a.created_by),
       'created', NULL, 'open', NULL
FROM actions a JOIN bench_actions b ON b.id = a.id;
INSERT INTO action_history (action_id, at, user_id, agency_id, kind, from_status, to_status, note)
SELECT a.id, a.created_at + p * interval '2 days', au.user_id, a.owner_agency_id, 'progress',
       'open', 'open', 'Progress ' || p || ': visit made, next one booked'
FROM actions a JOIN bench_actions b ON b.id = a.id JOIN bench_authors au ON au.k = b.k,
     generate_series(1, 2) AS p
WHERE b.r_misc < 0.5 AND p <= 1 + (b.j % 2);
INSERT INTO action_history (action_id, at, user_id, agency_id, kind, from_status, to_status, note)
SELECT a.id, coalesce(a.completed_at, a.cancelled_at), coalesce(a.completed_by, a.cancelled_by),
       a.owner_agency_id, CASE a.status WHEN 'completed' THEN 'completed' ELSE 'cancelled' END,
       'open', a.status, coalesce(a.completion_note, a.cancel_reason)
FROM actions a JOIN bench_actions b ON b.id = a.id WHERE a.status <> 'open';

ANALYZE;
