-- The audit chain takes audit_head once per transaction, not once per row.
--
-- Before, every audit row locked audit_head (SELECT ... FOR UPDATE) and rewrote it, so a
-- statement that audits 50 reads (a list page: one row per young person shown) created 50
-- versions of that one row while other writers queued on it; at 8 concurrent lists the queue
-- on audit_head, not the queries, set the pace (34 lists/s; 176/s with one audit row per
-- list). Now the first audit row of a transaction locks audit_head and reads the tail of the
-- chain; later rows of the same transaction chain from the tail kept in a transaction-local
-- setting; one statement-level trigger writes the new tail to audit_head once per statement.
-- The lock is still held until commit, so the chain stays in commit order and gap-free.
--
-- The setting is checked against the current transaction id, so a value left by an earlier
-- transaction is never used. Whoever sets it by hand can only break the chain, which
-- GET /v1/audit/verify reports (each row's prev_hash must be the previous row's hash).

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
    NEW.at := clock_timestamp();
    NEW.hash := sha256(NEW.prev_hash || audit_canonical(NEW));
    PERFORM set_config('raise.audit_tail',
                       xid || ':' || NEW.seq || ':' || encode(NEW.hash, 'hex'), true);
    RETURN NEW;
END
$$;

-- After each statement that appended rows: the new tail into audit_head (already locked by
-- this transaction's first row).
CREATE FUNCTION audit_head_write() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    tail text := current_setting('raise.audit_tail', true);
BEGIN
    IF tail IS NOT NULL AND split_part(tail, ':', 1) = pg_current_xact_id()::text THEN
        UPDATE audit_head SET seq = split_part(tail, ':', 2)::bigint,
            hash = decode(split_part(tail, ':', 3), 'hex')
        WHERE seq < split_part(tail, ':', 2)::bigint;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER audit_head_write AFTER INSERT ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_head_write();
