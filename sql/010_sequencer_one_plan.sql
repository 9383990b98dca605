-- The sequencer's two moving statements get one good plan per connection and keep it.
--
-- 1. raise_sequence_events() reads event_head inside its moving statement (a scalar
--    subquery), so that statement takes no PL/pgSQL variable. With the variable `head` it
--    was a statement with a parameter, and for those PostgreSQL's plan cache plans the
--    first five runs for their values, then keeps a generic plan only if its estimated
--    cost beats those five's average. The queue's statistics swing (empty, then a
--    backlog, then empty again as autovacuum sees it), so once a generic plan was made
--    when the queue looked large, every run was planned afresh: 0.17 ms of planning on
--    top of ~0.4 ms of work, in 2,000-2,400 of ~3,000 runs, in two of seven benchmark
--    runs on 2026-12-07 (pg_stat_statements). On one connection: five runs on an empty
--    queue, then 2,000 rows queued and ANALYZE, then 31 runs: 36 runs, 37 plans. Without
--    a parameter the plan is made once per connection. (A join with event_head instead
--    of the subquery was tried: with no statistics on event_head the planner expected
--    715,000 rows, passed jit_above_cost, and JIT-compiled every run for ~12 ms.)
--
-- 2. Both functions run with enable_seqscan off and jit off. A plan made once is made
--    when the queue is small, where a sequential scan looks cheapest, and kept while the
--    queue fills with dead rows between autovacuum's visits (~2,000 a second under load):
--    with 100,000 dead rows a run took 1.4 ms scanning the table against 0.45 ms through
--    its primary key. The rows to move are named as an array (qid = ANY(ARRAY(...))), so
--    the delete looks each up in the key instead of walking the whole index to join with
--    them. JIT never pays for statements this small.
--
-- The numbering is unchanged: under the advisory lock, the statement reads the head the
-- last run committed, numbers the rows after it, and the head moves by as many.
-- test_stream.c (sequencer_plans_once) counts the plans and checks the settings.
CREATE OR REPLACE FUNCTION raise_sequence_events() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public
SET enable_seqscan = off SET jit = off AS $$
DECLARE
    head bigint;
    n integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('raise_sequence_events'));
    WITH q AS (DELETE FROM event_queue WHERE qid = ANY (ARRAY(
                   SELECT qid FROM event_queue ORDER BY qid LIMIT 5000)) RETURNING *)
    INSERT INTO events (id, at, type, subject_id, hub_id, record_id)
    SELECT (SELECT id FROM event_head) + row_number() OVER (ORDER BY qid), at, type,
        subject_id, hub_id, record_id
    FROM q;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        UPDATE event_head SET id = id + n RETURNING id INTO head;
        PERFORM pg_notify('raise_events', head::text);
    END IF;
    RETURN n;
END
$$;

CREATE OR REPLACE FUNCTION raise_sequence_audit() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public
SET enable_seqscan = off SET jit = off AS $$
DECLARE
    n integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('raise_sequence_audit'));
    WITH q AS (DELETE FROM audit_queue WHERE qid = ANY (ARRAY(
                   SELECT qid FROM audit_queue ORDER BY qid LIMIT 5000)) RETURNING *)
    INSERT INTO audit_log (at, user_id, username, agency_id, role, action, outcome, route,
        record_type, record_id, subject_id, hub_id, client_addr, request_id, purpose)
    SELECT at, user_id, username, agency_id, role, action, outcome, route, record_type,
        record_id, subject_id, hub_id, client_addr, request_id, purpose
    FROM q ORDER BY qid;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
