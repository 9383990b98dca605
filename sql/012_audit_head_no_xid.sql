-- An audit-lane run that moves nothing writes nothing.
--
-- audit_head_write() (sql/006) runs after every statement that inserts into audit_log, also
-- when it inserted no row, as the sequencer's does on an empty run. It compared the
-- transaction-local tail with pg_current_xact_id(), which gives the transaction an id when
-- it has none; and once a connection has chained a row, the tail setting reads '' (not
-- NULL) in its later transactions, so the comparison ran. So every empty run of the audit
-- lane got a transaction id, and with it a commit record and a WAL flush: "a run that finds
-- nothing writes nothing" (sql/007) did not hold for that lane (found in review,
-- 2026-12-07). A transaction that inserted a row has an id already; one that has none
-- inserted nothing, and there is no tail to write.
CREATE OR REPLACE FUNCTION audit_head_write() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    tail text := current_setting('raise.audit_tail', true);
BEGIN
    IF tail IS NOT NULL AND split_part(tail, ':', 1) = pg_current_xact_id_if_assigned()::text
    THEN
        UPDATE audit_head SET seq = split_part(tail, ':', 2)::bigint,
            hash = decode(split_part(tail, ':', 3), 'hex')
        WHERE seq < split_part(tail, ':', 2)::bigint;
    END IF;
    RETURN NULL;
END
$$;
