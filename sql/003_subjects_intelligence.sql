-- Young people (subjects), their team of agencies, graded intelligence, and the event log
-- the live stream reads.

CREATE TABLE subjects (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    hub_id         uuid NOT NULL REFERENCES hubs (id),
    reference      text NOT NULL CHECK (length(reference) BETWEEN 1 AND 64),
    given_name     text NOT NULL CHECK (length(given_name) BETWEEN 1 AND 100),
    family_name    text NOT NULL CHECK (length(family_name) BETWEEN 1 AND 100),
    date_of_birth  date NOT NULL,
    status         text NOT NULL CHECK (status IN ('in_care', 'edge_of_care', 'edging_to_care',
                                                   'care_leaver')),
    key_worker     text NOT NULL CHECK (length(key_worker) BETWEEN 1 AND 200),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT subjects_reference_key UNIQUE (hub_id, reference)
);
CREATE INDEX subjects_hub_created_idx ON subjects (hub_id, created_at DESC, id DESC);

CREATE TABLE subject_team (
    subject_id  uuid NOT NULL REFERENCES subjects (id),
    agency_id   uuid NOT NULL REFERENCES agencies (id),
    PRIMARY KEY (subject_id, agency_id)
);
CREATE INDEX subject_team_agency_idx ON subject_team (agency_id, subject_id);

CREATE TABLE intelligence (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    subject_id          uuid NOT NULL REFERENCES subjects (id),
    author_id           uuid NOT NULL REFERENCES users (id),
    author_agency_id    uuid NOT NULL REFERENCES agencies (id),
    category            text NOT NULL CHECK (category IN ('missing_from_home',
        'returned_from_missing', 'arrest', 'charge', 'offence_at_hub', 'cse_concern',
        'cce_county_lines', 'risky_associate', 'self_harm', 'ae_attendance',
        'hospital_admission', 'substance_misuse', 'school_exclusion', 'placement_incident',
        'domestic_abuse', 'positive_progress', 'other')),
    summary             text NOT NULL CHECK (length(summary) BETWEEN 1 AND 500),
    detail              text CHECK (length(detail) <= 10000),
    occurred_at         timestamptz NOT NULL,
    risk_level          text NOT NULL CHECK (risk_level IN ('low', 'medium', 'high', 'critical')),
    gravity             smallint CHECK (gravity BETWEEN 1 AND 8),
    grading_scheme      text CHECK (grading_scheme IN ('3x5x2', '5x5x5')),
    grading_source      text,
    grading_assessment  text,
    handling            text,
    conditions          text CHECK (length(conditions) <= 2000),
    restricted_to       uuid[],          -- NULL: the whole team; else these agencies only
    created_at          timestamptz NOT NULL DEFAULT now(),
    retracted_at        timestamptz,
    retracted_by        uuid REFERENCES users (id),
    retraction_reason   text CHECK (length(retraction_reason) BETWEEN 1 AND 1000),
    idempotency_key     text CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    request_hash        text,
    CONSTRAINT intelligence_gravity_category CHECK (gravity IS NULL OR
        category IN ('arrest', 'charge', 'offence_at_hub')),
    CONSTRAINT intelligence_3x5x2 CHECK (grading_scheme IS DISTINCT FROM '3x5x2' OR (
        grading_source IN ('1', '2', '3') AND grading_assessment IN ('A', 'B', 'C', 'D', 'E')
        AND handling IN ('P', 'C'))),
    CONSTRAINT intelligence_5x5x5 CHECK (grading_scheme IS DISTINCT FROM '5x5x5' OR (
        grading_source IN ('A', 'B', 'C', 'D', 'E')
        AND grading_assessment IN ('1', '2', '3', '4', '5')
        AND handling IN ('1', '2', '3', '4', '5'))),
    CONSTRAINT intelligence_graded CHECK ((grading_scheme IS NULL) =
        (grading_source IS NULL AND grading_assessment IS NULL AND handling IS NULL)),
    CONSTRAINT intelligence_conditions CHECK (handling IS DISTINCT FROM 'C' OR
        conditions IS NOT NULL),
    CONSTRAINT intelligence_retraction CHECK ((retracted_at IS NULL) = (retracted_by IS NULL)
        AND (retracted_at IS NULL) = (retraction_reason IS NULL)),
    CONSTRAINT intelligence_idempotency_key UNIQUE (author_id, idempotency_key)
);
CREATE INDEX intelligence_subject_idx ON intelligence (subject_id, created_at DESC, id DESC);
CREATE INDEX intelligence_created_idx ON intelligence (created_at DESC, id DESC);

-- Events: one row per state change, written in the same transaction as the change. The id
-- is taken under the event_head row lock, held until commit, so ids are assigned in commit
-- order: a reader that has seen id N can never later find a committed event below N.
CREATE TABLE events (
    id          bigint PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    type        text NOT NULL CHECK (type IN ('intelligence.posted', 'intelligence.retracted',
        'subject.updated', 'meeting.scheduled', 'meeting.updated', 'meeting.started',
        'meeting.closed', 'action.created', 'action.completed', 'action.reopened',
        'action.cancelled', 'action.overdue')),
    subject_id  uuid REFERENCES subjects (id),
    hub_id      uuid REFERENCES hubs (id),
    record_id   uuid NOT NULL
);
CREATE INDEX events_subject_idx ON events (subject_id, id);

CREATE TABLE event_head (
    only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    id        bigint NOT NULL
);
INSERT INTO event_head (id) VALUES (0);

CREATE FUNCTION events_number() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    UPDATE event_head SET id = id + 1 RETURNING id INTO NEW.id;
    PERFORM pg_notify('raise_events', NEW.id::text);
    RETURN NEW;
END
$$;
CREATE TRIGGER events_number BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_number();

GRANT SELECT, INSERT, UPDATE ON subjects, subject_team, intelligence TO raise_app;
GRANT DELETE ON subject_team TO raise_app;
GRANT SELECT, INSERT ON events TO raise_app;
