-- pgbench script for tests/bench/stream: one single-row INSERT into the scratch table
-- bench_stream_plain, which has the columns of an intelligence row that a post fills
-- (three uuids, category, summary, occurred_at, risk level, grading, created_at) but no
-- foreign keys, no secondary index, no event row and no audit row: the baseline.
INSERT INTO bench_stream_plain (subject_id, author_id, author_agency_id, category, summary,
    occurred_at, risk_level, grading_scheme, grading_source, grading_assessment, handling)
VALUES (gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 'risky_associate',
    'tests/bench/stream: pgbench plain insert ' || md5(random()::text),
    '2026-01-01T10:00:00Z', 'high', '3x5x2', '1', 'A', 'P');
