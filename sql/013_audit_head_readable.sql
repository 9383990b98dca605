-- GET /v1/audit/verify compares the chain's last row with audit_head: with the newest rows
-- removed, no row after them shows a gap, and the check passed until the next row was
-- appended (found in review, 2026-12-07). The server's role may read the head (its seq and
-- hash are those of the last row); only audit_chain() and audit_head_write() write it.
GRANT SELECT ON audit_head TO raise_app;
