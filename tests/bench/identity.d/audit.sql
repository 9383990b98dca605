-- pgbench script for tests/bench/identity: one audit row the way the server writes one since
-- sql/007: a single-row INSERT into audit_queue (no lock). The chaining happens in
-- raise_sequence(), which the bench runs meanwhile from one more pgbench client
-- (sequence.sql), as each raised process does. The row looks like one the server writes.
INSERT INTO audit_queue (username, route, client_addr, request_id, purpose, action, outcome, record_type)
VALUES ('pgbench', 'pgbench tests/bench/identity', 'local', md5(random()::text),
        'audit append benchmark', 'bench.append', 'ok', 'bench');
