-- raise_sequence_events() reads event_head inside its moving statement, so that statement
-- takes no PL/pgSQL variable and PostgreSQL plans it once per connection.
--
-- Why: the statement used the variable `head`, which makes it a statement with a parameter,
-- and for those PostgreSQL's plan cache plans the first five runs for their values and
-- then compares a generic plan's estimated cost with the average of those five. The
-- queue's statistics swing (empty, then a backlog, then empty again as autovacuum sees
-- it), so a generic plan made when the queue looked large cost more than the average of
-- five made when it looked empty, and from then on every run was planned afresh: 0.17 ms
-- of planning on top of ~0.4 ms of work, in 2,000-2,400 of ~3,000 runs, in two of seven
-- benchmark runs on 2026-12-07 (pg_stat_statements). On one connection: five runs on an
-- empty queue, then 2,000 rows queued and ANALYZE, then 31 runs: 36 runs, 37 plans.
-- Without a parameter there is nothing to plan for, and the plan is made once per
-- connection. test_stream.c (sequencer_plans_once) does the same and counts the plans.
--
-- The numbering is unchanged: under the advisory lock, the statement reads the head the
-- last run committed, numbers the rows after it, and the head moves by as many.
CREATE OR REPLACE FUNCTION raise_sequence_events() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    head bigint;
    n integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('raise_sequence_events'));
    WITH q AS (DELETE FROM event_queue WHERE qid IN
                   (SELECT qid FROM event_queue ORDER BY qid LIMIT 5000) RETURNING *)
    INSERT INTO events (id, at, type, subject_id, hub_id, record_id)
    SELECT h.id + row_number() OVER (ORDER BY q.qid), q.at, q.type, q.subject_id, q.hub_id,
        q.record_id
    FROM q, event_head h;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        UPDATE event_head SET id = id + n RETURNING id INTO head;
        PERFORM pg_notify('raise_events', head::text);
    END IF;
    RETURN n;
END
$$;
