-- Event numbering no longer waits behind audit chaining.
--
-- raise_sequence() (sql/007) moved events and audit rows in one transaction, so an event
-- was not numbered (or NOTIFYed) until the audit rows queued with it were chained. The
-- stream's own delivery audit queues about one row per subscriber per second, and chaining
-- 500 of them takes ~25 ms here (65 ms for 1,000): every post that committed during such a
-- run reached its subscribers that much later (the stream benchmark's p99 at 20 posts/s).
-- Now each has its own function and its own advisory lock, and raised runs them on two
-- connections: events are numbered within about a millisecond of their commit whatever
-- the audit chain is doing. raise_sequence() still does both (in one transaction), for
-- `raised create-admin`, a stopping server and tests.

CREATE FUNCTION raise_sequence_events() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    head bigint;
    n integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('raise_sequence_events'));
    SELECT id INTO head FROM event_head;
    WITH q AS (DELETE FROM event_queue WHERE qid IN
                   (SELECT qid FROM event_queue ORDER BY qid LIMIT 5000) RETURNING *)
    INSERT INTO events (id, at, type, subject_id, hub_id, record_id)
    SELECT head + row_number() OVER (ORDER BY qid), at, type, subject_id, hub_id, record_id
    FROM q;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        UPDATE event_head SET id = head + n;
        PERFORM pg_notify('raise_events', (head + n)::text);
    END IF;
    RETURN n;
END
$$;

CREATE FUNCTION raise_sequence_audit() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    n integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('raise_sequence_audit'));
    WITH q AS (DELETE FROM audit_queue WHERE qid IN
                   (SELECT qid FROM audit_queue ORDER BY qid LIMIT 5000) RETURNING *)
    INSERT INTO audit_log (at, user_id, username, agency_id, role, action, outcome, route,
        record_type, record_id, subject_id, hub_id, client_addr, request_id, purpose)
    SELECT at, user_id, username, agency_id, role, action, outcome, route, record_type,
        record_id, subject_id, hub_id, client_addr, request_id, purpose
    FROM q ORDER BY qid;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- Both, in one transaction (events first: the locks are always taken in this order).
CREATE OR REPLACE FUNCTION raise_sequence() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    RETURN raise_sequence_events() + raise_sequence_audit();
END
$$;

REVOKE ALL ON FUNCTION raise_sequence_events(), raise_sequence_audit() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION raise_sequence_events(), raise_sequence_audit() TO raise_app;
