-- Sign-in throttling that parallel attempts cannot get past.
--
-- Until now a sign-in read the failure counts, checked the password (scrypt, ~75 ms on a
-- helper thread) and only then recorded a failure. Attempts sent at once all read the
-- counts before the first failure was written: a thousand parallel guesses were all
-- checked, where the limit is 5 per username and 20 per address in 15 minutes (found in
-- review, 2026-12-07).
--
-- raise_login_attempt() takes a transaction-level advisory lock per username and per
-- address (always in that order: no deadlock), and only then counts, in statements that
-- see what the attempt before it committed. An attempt under both limits is counted at
-- once, as a failure in login_failures, before its password is checked: the sign-in
-- removes those two rows again if the password is right (sessions.c). So at most 5
-- attempts per username (20 per address) are ever checked in 15 minutes, however many
-- arrive together, and the rest are refused (429) without a check.
--
-- The limits are the caller's (sessions.c: 5 and 20). Returns the counts before this
-- attempt (at a limit: throttled), the seconds until the counts would be under both limits
-- again, the account (NULL if none), and where this attempt's
-- address row is (NULL if it was throttled and counted nothing).
CREATE FUNCTION raise_login_attempt(p_username text, p_addr text, p_user_limit int,
    p_addr_limit int, OUT user_fails bigint, OUT addr_fails bigint, OUT wait int,
    OUT user_id uuid, OUT password_hash text, OUT active boolean, OUT addr_row tid)
LANGUAGE plpgsql AS $$
DECLARE
    ukey text := 'user:' || p_username;
    akey text := 'addr:' || p_addr;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('raise login ' || ukey));
    PERFORM pg_advisory_xact_lock(hashtext('raise login ' || akey));
    SELECT count(*) INTO user_fails FROM login_failures
     WHERE key = ukey AND at > now() - interval '15 minutes';
    SELECT count(*) INTO addr_fails FROM login_failures
     WHERE key = akey AND at > now() - interval '15 minutes';
    SELECT greatest(
        (SELECT ceil(extract(epoch FROM f.at + interval '15 minutes' - now()))::int
           FROM login_failures f WHERE f.key = ukey AND f.at > now() - interval '15 minutes'
          ORDER BY f.at DESC OFFSET p_user_limit - 1 LIMIT 1),
        (SELECT ceil(extract(epoch FROM f.at + interval '15 minutes' - now()))::int
           FROM login_failures f WHERE f.key = akey AND f.at > now() - interval '15 minutes'
          ORDER BY f.at DESC OFFSET p_addr_limit - 1 LIMIT 1))
      INTO wait;
    SELECT u.id, u.password_hash, u.active INTO user_id, password_hash, active
      FROM users u WHERE u.username = p_username;
    IF user_fails < p_user_limit AND addr_fails < p_addr_limit THEN
        INSERT INTO login_failures (key) VALUES (ukey);
        INSERT INTO login_failures (key) VALUES (akey) RETURNING ctid INTO addr_row;
    END IF;
END $$;
GRANT EXECUTE ON FUNCTION raise_login_attempt(text, text, int, int) TO raise_app;
