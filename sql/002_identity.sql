-- Identity: hubs, hub managers, sessions, client certificates, login throttling, and the
-- append-only, hash-chained audit log.

CREATE TABLE hubs (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    local_authority  text NOT NULL CHECK (length(local_authority) BETWEEN 1 AND 200),
    time_zone        text NOT NULL DEFAULT 'Europe/London',
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX hubs_name_key ON hubs (lower(name));

CREATE TABLE hub_managers (
    hub_id   uuid NOT NULL REFERENCES hubs (id),
    user_id  uuid NOT NULL REFERENCES users (id),
    PRIMARY KEY (user_id, hub_id)
);

CREATE TABLE sessions (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid NOT NULL REFERENCES users (id),
    token_hash  bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32), -- SHA-256 of the token
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,                                  -- absolute expiry
    revoked_at  timestamptz
);
CREATE INDEX sessions_user_idx ON sessions (user_id) WHERE revoked_at IS NULL;

CREATE TABLE user_certificates (
    fingerprint  text PRIMARY KEY CHECK (fingerprint ~ '^[0-9a-f]{64}$'), -- SHA-256 of DER
    user_id      uuid NOT NULL REFERENCES users (id),
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- One row per failed sign-in, per key ('user:<name>' and 'addr:<ip>'); the window is
-- counted in SQL so the policy holds across restarts and instances.
CREATE TABLE login_failures (
    key  text NOT NULL,
    at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_key_at_idx ON login_failures (key, at);

-- The audit log. seq, prev_hash and hash are set by the trigger below, which holds the
-- row lock on audit_head until commit: appends are serialized in commit order, so the
-- chain is correct with any number of writers on any number of instances.
CREATE TABLE audit_log (
    seq          bigint PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    user_id      uuid,
    username     text,
    agency_id    uuid,
    role         text,
    action       text NOT NULL,
    outcome      text NOT NULL DEFAULT 'ok',
    route        text NOT NULL,
    record_type  text,
    record_id    text,
    subject_id   uuid,
    hub_id       uuid,
    client_addr  text,
    request_id   text,
    purpose      text,
    prev_hash    bytea NOT NULL,
    hash         bytea NOT NULL
);
CREATE INDEX audit_log_user_idx ON audit_log (user_id, seq);
CREATE INDEX audit_log_subject_idx ON audit_log (subject_id, seq);
CREATE INDEX audit_log_hub_idx ON audit_log (hub_id, seq);
CREATE INDEX audit_log_at_idx ON audit_log (at);

CREATE TABLE audit_head (
    only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    seq       bigint NOT NULL,
    hash      bytea NOT NULL
);
INSERT INTO audit_head (seq, hash) VALUES (0, sha256(''::bytea));

-- The canonical text of a row that the hash covers (every column but the hashes).
CREATE FUNCTION audit_canonical(a audit_log) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
    SELECT convert_to(concat_ws(E'\x1f', a.seq,
        to_char(a.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        coalesce(a.user_id::text, ''), coalesce(a.username, ''), coalesce(a.agency_id::text, ''),
        coalesce(a.role, ''), a.action, a.outcome, a.route, coalesce(a.record_type, ''),
        coalesce(a.record_id, ''), coalesce(a.subject_id::text, ''), coalesce(a.hub_id::text, ''),
        coalesce(a.client_addr, ''), coalesce(a.request_id, ''), coalesce(a.purpose, '')), 'UTF8')
$$;

CREATE FUNCTION audit_chain() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    head audit_head%ROWTYPE;
BEGIN
    SELECT * INTO head FROM audit_head FOR UPDATE;
    NEW.seq := head.seq + 1;
    NEW.at := clock_timestamp();
    NEW.prev_hash := head.hash;
    NEW.hash := sha256(head.hash || audit_canonical(NEW));
    UPDATE audit_head SET seq = NEW.seq, hash = NEW.hash;
    RETURN NEW;
END
$$;
CREATE TRIGGER audit_chain BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_chain();

CREATE FUNCTION audit_refuse() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_refuse();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse();

-- The role the server works as (connections set `role = raise_app`): it may append to the
-- audit log and read it, never change or remove a row.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'raise_app') THEN
        CREATE ROLE raise_app NOLOGIN;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO raise_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON agencies, users, hubs, hub_managers, sessions,
    user_certificates, login_failures TO raise_app;
GRANT SELECT ON schema_migrations TO raise_app;
GRANT SELECT, INSERT ON audit_log TO raise_app;
-- audit_head is written only by audit_chain(), which runs as the schema owner.
