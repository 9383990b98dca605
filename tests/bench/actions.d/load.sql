-- Bulk load for tests/bench/actions, run by psql as the database owner in the scratch
-- database once the world (agencies, hub, users, young people with teams) exists:
--   psql -v mine=AGENCY_ID -v manager=USER_ID -v total=100000 -v mine_n=5000 -f load.sql
-- :total actions in all, :mine_n of them owned by agency :mine (on young people whose team
-- has it), the rest owned by other agencies on each young person's team; hub_id is the
-- young person's hub; created by the hub manager :manager between meetings (meeting_id
-- NULL) over the last two years. A user of the owner agency (bench-act-user-*, one per
-- agency) is the assignee of 60% of them and completes them. Status by age:
--   created in the last 90 days: 70% open, 25% completed, 5% cancelled
--   older:                        3% open, 90% completed, 7% cancelled
-- due 3-63 days after creation, so older open actions are overdue (their overdue_noted_at
-- is set, as the sweeper would have, so it finds nothing to do during the run); 2% of the
-- open ones carry a "cannot complete" reason. action_history gets what the server writes:
-- 'created' for every action, 'completed' / 'cancelled' for those, and a 'progress' note on
-- 30% of the open ones. Deterministic (setseed).
\set ON_ERROR_STOP 1
SELECT setseed(0.4242);

CREATE TEMP TABLE agency_user AS
    SELECT DISTINCT ON (agency_id) agency_id, id AS user_id FROM users
    WHERE username LIKE 'bench-act-user-%' ORDER BY agency_id, username;

-- (subject, hub, agency) pairs: the measured agency's, and everyone else's
CREATE TEMP TABLE pair_mine AS
    SELECT row_number() OVER (ORDER BY s.reference) AS n, s.id AS subject_id, s.hub_id
    FROM subjects s JOIN subject_team t ON t.subject_id = s.id AND t.agency_id = :'mine';
CREATE TEMP TABLE pair_other AS
    SELECT row_number() OVER (ORDER BY s.reference, t.agency_id) AS n, s.id AS subject_id,
        s.hub_id, t.agency_id
    FROM subjects s JOIN subject_team t ON t.subject_id = s.id AND t.agency_id <> :'mine';

CREATE TEMP TABLE plan AS
WITH g AS (
    SELECT g, g <= :mine_n AS mine, random() AS r_pick, random() AS r_age, random() AS r_st,
        random() AS r_due, random() AS r_asg, random() AS r_prog, random() AS r_done
    FROM generate_series(1, :total) g
), p AS (
    SELECT g.*, CASE WHEN mine THEN pm.subject_id ELSE po.subject_id END AS subject_id,
        CASE WHEN mine THEN pm.hub_id ELSE po.hub_id END AS hub_id,
        CASE WHEN mine THEN :'mine'::uuid ELSE po.agency_id END AS owner_agency_id,
        now() - r_age * interval '730 days' AS created_at
    FROM g
    LEFT JOIN pair_mine pm ON mine
        AND pm.n = 1 + floor(r_pick * (SELECT count(*) FROM pair_mine))::bigint
    LEFT JOIN pair_other po ON NOT mine
        AND po.n = 1 + floor(r_pick * (SELECT count(*) FROM pair_other))::bigint
)
SELECT p.*, (p.created_at + (3 + floor(r_due * 61)::int) * interval '1 day')::date AS due_date,
    CASE WHEN p.created_at > now() - interval '90 days' THEN
             CASE WHEN r_st < 0.70 THEN 'open' WHEN r_st < 0.95 THEN 'completed' ELSE 'cancelled' END
         ELSE
             CASE WHEN r_st < 0.03 THEN 'open' WHEN r_st < 0.93 THEN 'completed' ELSE 'cancelled' END
    END AS status,
    au.user_id AS owner_user
FROM p JOIN agency_user au ON au.agency_id = p.owner_agency_id;

DO $$
BEGIN
    IF (SELECT count(*) FROM plan WHERE subject_id IS NULL) > 0 THEN
        RAISE EXCEPTION 'load.sql: some actions found no young person (is the measured agency on a team?)';
    END IF;
END
$$;

INSERT INTO actions (subject_id, hub_id, meeting_id, owner_agency_id, assignee_id,
        description, due_date, status, created_by, created_at, updated_at, completed_at,
        completed_by, completion_note, evidence_ref, cancelled_at, cancelled_by, cancel_reason,
        blocked_reason, overdue_noted_at)
    SELECT subject_id, hub_id, NULL, owner_agency_id,
        CASE WHEN r_asg < 0.6 THEN owner_user END,
        'Bench action ' || g || ': arrange a strategy discussion with the key worker and '
            || 'report back to the hub on school attendance and missing episodes',
        due_date, status, :'manager'::uuid, created_at,
        CASE WHEN status = 'open' THEN created_at
             ELSE least(now(), created_at + (1 + r_done * 60) * interval '1 day') END,
        CASE WHEN status = 'completed' THEN least(now(), created_at + (1 + r_done * 60) * interval '1 day') END,
        CASE WHEN status = 'completed' THEN owner_user END,
        CASE WHEN status = 'completed' THEN 'Done: met the young person and the carer; '
            || 'attendance plan agreed with the school' END,
        CASE WHEN status = 'completed' AND r_prog < 0.3 THEN 'CASE-REF-' || g END,
        CASE WHEN status = 'cancelled' THEN least(now(), created_at + (1 + r_done * 60) * interval '1 day') END,
        CASE WHEN status = 'cancelled' THEN :'manager'::uuid END,
        CASE WHEN status = 'cancelled' THEN 'Superseded by a new action agreed at the meeting' END,
        CASE WHEN status = 'open' AND r_prog > 0.98 THEN 'The family has moved out of the area' END,
        CASE WHEN status = 'open' AND due_date < (now() AT TIME ZONE 'Europe/London')::date
             THEN (due_date + 1)::timestamptz END
    FROM plan ORDER BY created_at;

CREATE TEMP TABLE ids AS
    SELECT id, status, owner_agency_id, created_at, completed_at, completed_by, cancelled_at
    FROM actions WHERE description LIKE 'Bench action %';

INSERT INTO action_history (action_id, at, user_id, agency_id, kind, from_status, to_status, note)
SELECT id, created_at, :'manager'::uuid, (SELECT agency_id FROM users WHERE id = :'manager'),
    'created', NULL, 'open', NULL FROM ids ORDER BY created_at;
INSERT INTO action_history (action_id, at, user_id, agency_id, kind, from_status, to_status, note)
SELECT ids.id, ids.completed_at, ids.completed_by, ids.owner_agency_id, 'completed', 'open',
    'completed', 'Done: met the young person and the carer; attendance plan agreed with the school'
FROM ids WHERE status = 'completed';
INSERT INTO action_history (action_id, at, user_id, agency_id, kind, from_status, to_status, note)
SELECT ids.id, ids.cancelled_at, :'manager'::uuid, (SELECT agency_id FROM users WHERE id = :'manager'),
    'cancelled', 'open', 'cancelled', 'Superseded by a new action agreed at the meeting'
FROM ids WHERE status = 'cancelled';
INSERT INTO action_history (action_id, at, user_id, agency_id, kind, from_status, to_status, note)
SELECT ids.id, ids.created_at + interval '2 days', au.user_id, ids.owner_agency_id, 'progress',
    'open', 'open', 'Spoke to the carer; visit booked for next week'
FROM ids JOIN agency_user au ON au.agency_id = ids.owner_agency_id
WHERE ids.status = 'open' AND random() < 0.3;

ANALYZE actions;
ANALYZE action_history;
ANALYZE subjects;
ANALYZE subject_team;
ANALYZE agencies;
ANALYZE users;
ANALYZE hubs;
ANALYZE audit_log;
