-- A client certificate that verifies against `tls_client_ca` but signs in no one (never
-- registered, or its user deactivated) is audited as `certificate.use`, denied, about its
-- user if it has one (server/auth.c, cert_denied_sql), at most once a minute per
-- certificate: this is when the last such row was written. One row per certificate the
-- CA issued and someone presented, so it stays small.
CREATE TABLE certificate_denials (
    fingerprint  text PRIMARY KEY CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
    at           timestamptz NOT NULL
);
GRANT SELECT, INSERT, UPDATE ON certificate_denials TO raise_app;
