-- pgbench script for tests/bench/stream: the floor, the least any server that keeps the
-- stream issue's rules must ask of PostgreSQL per post, as bare SQL from pgbench: one
-- statement that writes the item, its event row and its audit row together ("every state
-- change writes an event row in the same transaction as the change"; every change is
-- audited). Plain scratch tables (bench_stream_plain, bench_stream_floor_*), primary keys
-- only: no foreign keys, no triggers, no numbering in commit order, no hash chain, and no
-- TLS, HTTP or JSON work on the same CPUs. The bench runs it twice: alone, and after a
-- session lookup by the token's hash in a transaction of its own, as raised makes one for
-- every request. Whatever raised does on top costs more than this.
WITH i AS (INSERT INTO bench_stream_plain (subject_id, author_id, author_agency_id, category,
        summary, occurred_at, risk_level, grading_scheme, grading_source, grading_assessment,
        handling)
    VALUES (gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 'risky_associate',
        'tests/bench/stream: pgbench floor ' || md5(random()::text), '2026-01-01T10:00:00Z',
        'high', '3x5x2', '1', 'A', 'P')
    RETURNING *),
e AS (INSERT INTO bench_stream_floor_event (type, subject_id, record_id, payload)
    SELECT 'intelligence.created', i.subject_id, i.id, to_jsonb(i) FROM i),
a AS (INSERT INTO bench_stream_floor_audit (action, record_id, context)
    SELECT 'intelligence.create', i.id, jsonb_build_object('user', i.author_id,
        'agency', i.author_agency_id, 'route', 'POST /v1/intelligence', 'addr', '127.0.0.1',
        'request', md5(random()::text), 'purpose', 'tests/bench/stream floor') FROM i)
SELECT id FROM i;
