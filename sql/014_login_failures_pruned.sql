-- Failed sign-ins older than a day were removed only for the keys of a later failure, so
-- the rows of usernames (and addresses) that never fail again stayed for ever: a client
-- trying many usernames left rows that nothing removed (found in review, 2026-12-07).
-- Every failed sign-in now also removes up to 100 of the oldest rows past a day, whatever
-- their key (server/sessions.c, failure_sql); this index finds them.
CREATE INDEX login_failures_at_idx ON login_failures (at);
