-- Writers queue their event and audit rows; one sequencer numbers the events and chains the
-- audit rows after the writers have committed.
--
-- Before, every transaction that wrote an event or an audit row (every request: reads are
-- audited too) took the single event_head and audit_head row locks and held them through
-- its commit, WAL flush included, so all of them ran one after another through that point
-- and PostgreSQL could never flush several commits at once (POST /v1/intelligence: ~700
-- transactions a second at most at 8 clients, against ~6,400 for a plain INSERT).
--
-- Now a request inserts into event_queue and audit_queue, which need no lock, in the same
-- transaction as the change it records (so nothing is lost: the rows are as durable as the
-- change). Two functions, each under its own advisory lock shared by every server process,
-- then move whatever is committed: raise_sequence_events() into events (numbered
-- event_head + 1, + 2, ...), NOTIFYing raise_events with the new last event id, and
-- raise_sequence_audit() into audit_log (chained by audit_chain(), as before). The
-- guarantees are the ones we had:
--   * event ids are strictly increasing in the order they become visible: only the
--     sequencer inserts into events, its runs are serialised by the lock, and each run's
--     ids follow the previous run's, which committed before it started; a reader that has
--     seen id N can never later find a new event below N;
--   * the audit chain is gap-free, in the sequencer's order (queue order within a run);
--     `at` is still the time of the request's own write (clock_timestamp() in its
--     transaction), so seq order and `at` order can differ by the few milliseconds between
--     a request's write and its commit.
-- They are two so that numbering never waits behind chaining: the stream's own delivery
-- audit queues about one row per subscriber per second, and chaining 500 of them takes
-- ~25 ms here; in one transaction every event committed meanwhile would wait for that.
-- raised runs each on a connection of its own after its requests' statements (batched: one
-- run at a time, the next run takes everything queued meanwhile) and once a second in case
-- another process died between its commit and its run. raise_sequence() does both in one
-- transaction, for `raised create-admin`, a stopping server and tests.

-- The queues have the columns, defaults and CHECK constraints of the tables they feed (LIKE),
-- so a row that was queued can always be moved: a queued row the destination refused would
-- stop the sequencer for everyone. A migration that changes a CHECK on events or audit_log
-- must change the queue's too (test_stream.c compares them). Foreign keys are checked here,
-- at the request, as well.
CREATE TABLE event_queue (
    qid bigserial PRIMARY KEY,
    LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS
);
ALTER TABLE event_queue DROP COLUMN id,
    ADD FOREIGN KEY (subject_id) REFERENCES subjects (id),
    ADD FOREIGN KEY (hub_id) REFERENCES hubs (id);

CREATE TABLE audit_queue (
    qid bigserial PRIMARY KEY,
    LIKE audit_log INCLUDING DEFAULTS INCLUDING CONSTRAINTS
);
ALTER TABLE audit_queue DROP COLUMN seq, DROP COLUMN prev_hash, DROP COLUMN hash,
    ALTER COLUMN at SET DEFAULT clock_timestamp();

-- Only raise_sequence_events() numbers events now.
DROP TRIGGER events_number ON events;
DROP FUNCTION events_number();

-- audit_chain() keeps the row's `at` (set when the request queued it) instead of the time
-- the sequencer chains it. Only the sequencer (and the schema owner) may insert now.
CREATE OR REPLACE FUNCTION audit_chain() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    head audit_head%ROWTYPE;
    tail text := current_setting('raise.audit_tail', true);
    xid text := pg_current_xact_id()::text;
BEGIN
    IF tail IS NOT NULL AND split_part(tail, ':', 1) = xid THEN
        NEW.seq := split_part(tail, ':', 2)::bigint + 1;
        NEW.prev_hash := decode(split_part(tail, ':', 3), 'hex');
    ELSE
        SELECT * INTO head FROM audit_head FOR UPDATE;
        NEW.seq := head.seq + 1;
        NEW.prev_hash := head.hash;
    END IF;
    NEW.at := coalesce(NEW.at, clock_timestamp());
    NEW.hash := sha256(NEW.prev_hash || audit_canonical(NEW));
    PERFORM set_config('raise.audit_tail',
                       xid || ':' || NEW.seq || ':' || encode(NEW.hash, 'hex'), true);
    RETURN NEW;
END
$$;

-- One run of either: at most 5,000 rows (a run stays well inside the statement timeout
-- after a backlog); each returns how many rows it moved: a caller that gets 5,000 runs
-- again. An advisory lock, not a row lock, serialises the runs of each until commit: a run
-- that finds nothing to do writes nothing and costs no WAL flush.
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
CREATE FUNCTION raise_sequence() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    RETURN raise_sequence_events() + raise_sequence_audit();
END
$$;

-- raise_app queues (every column but qid and at: a request cannot backdate its audit row)
-- and runs the sequencer; it no longer inserts into events or audit_log itself.
REVOKE INSERT ON events, audit_log FROM raise_app;
GRANT INSERT (type, subject_id, hub_id, record_id) ON event_queue TO raise_app;
GRANT INSERT (user_id, username, agency_id, role, action, outcome, route, record_type,
    record_id, subject_id, hub_id, client_addr, request_id, purpose) ON audit_queue TO raise_app;
GRANT SELECT (qid) ON event_queue, audit_queue TO raise_app;
GRANT USAGE ON SEQUENCE event_queue_qid_seq, audit_queue_qid_seq TO raise_app;
REVOKE ALL ON FUNCTION raise_sequence(), raise_sequence_events(), raise_sequence_audit()
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION raise_sequence(), raise_sequence_events(), raise_sequence_audit()
    TO raise_app;
