-- pgbench script for tests/bench/identity: the sequencer, as a raised process runs it (one
-- run at a time): moves what is committed in audit_queue into audit_log, hash-chained.
SELECT raise_sequence();
