-- A token that was once a session's (revoked by a sign-out, expired, or its user
-- deactivated) and is used again is audited against that user as `session.use`, denied
-- (server/auth.c, denied_sql): a stolen token tried after sign-out is then on record. At
-- most one such row a minute per session: this is when the last one was written.
ALTER TABLE sessions ADD COLUMN denied_at timestamptz;
