-- Agencies and user accounts: the minimum the first admin needs.
-- The identity issue adds hubs, sessions, certificates and the audit log in later files.

CREATE TABLE agencies (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind        text NOT NULL CHECK (kind IN ('police', 'health', 'social_care', 'education',
                                              'housing', 'youth_justice', 'hub', 'other')),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX agencies_name_key ON agencies (lower(name));

CREATE TABLE users (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    username       text NOT NULL CHECK (username ~ '^[a-z0-9][a-z0-9._-]{2,63}$'),
    display_name   text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
    agency_id      uuid NOT NULL REFERENCES agencies (id),
    role           text NOT NULL CHECK (role IN ('admin', 'hub_manager', 'police_liaison',
                                                 'practitioner')),
    password_hash  text NOT NULL CHECK (password_hash LIKE 'scrypt$%'),
    active         boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_username_key ON users (username);
CREATE INDEX users_agency_idx ON users (agency_id);
