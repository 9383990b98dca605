-- pgbench script for tests/bench/identity: one single-row INSERT into audit_log. The
-- audit_chain trigger sets seq, at, prev_hash and hash under the row lock on audit_head,
-- so appends are serialized until commit. The row looks like one the server writes.
INSERT INTO audit_log (username, route, client_addr, request_id, purpose, action, outcome, record_type)
VALUES ('pgbench', 'pgbench tests/bench/identity', 'local', md5(random()::text),
        'audit append benchmark', 'bench.append', 'ok', 'bench');
