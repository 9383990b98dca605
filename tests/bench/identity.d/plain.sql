-- pgbench script for tests/bench/identity: one plain single-row INSERT (the baseline).
INSERT INTO bench_plain (payload) VALUES ('tests/bench/identity: plain append ' || md5(random()::text));
