-- RAISE meetings (young people to discuss, invited agencies, attendance, minutes under the
-- Signs of Safety headings, the agenda frozen at start) and agency actions with their
-- history. Nothing here is ever deleted except a meeting's young people, invited agencies
-- and attendance before the meeting is closed.

CREATE TABLE meetings (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    hub_id         uuid NOT NULL REFERENCES hubs (id),
    title          text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    scheduled_for  timestamptz NOT NULL,
    location       text CHECK (length(location) <= 200),
    chair_id       uuid NOT NULL REFERENCES users (id),
    status         text NOT NULL DEFAULT 'scheduled'
                   CHECK (status IN ('scheduled', 'started', 'closed')),
    created_by     uuid NOT NULL REFERENCES users (id),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    started_at     timestamptz,
    started_by     uuid REFERENCES users (id),
    closed_at      timestamptz,
    closed_by      uuid REFERENCES users (id),
    CONSTRAINT meetings_lifecycle CHECK (
        (status = 'scheduled' AND started_at IS NULL AND closed_at IS NULL) OR
        (status = 'started' AND started_at IS NOT NULL AND closed_at IS NULL) OR
        (status = 'closed' AND started_at IS NOT NULL AND closed_at IS NOT NULL))
);
CREATE INDEX meetings_hub_idx ON meetings (hub_id, scheduled_for DESC, id DESC);

CREATE TABLE meeting_subjects (
    meeting_id  uuid NOT NULL REFERENCES meetings (id),
    subject_id  uuid NOT NULL REFERENCES subjects (id),
    added_at    timestamptz NOT NULL DEFAULT now(),
    since       timestamptz,        -- fixed at start: the agenda's window of intelligence
    PRIMARY KEY (meeting_id, subject_id)
);
CREATE INDEX meeting_subjects_subject_idx ON meeting_subjects (subject_id, meeting_id);

CREATE TABLE meeting_agencies (
    meeting_id  uuid NOT NULL REFERENCES meetings (id),
    agency_id   uuid NOT NULL REFERENCES agencies (id),
    PRIMARY KEY (meeting_id, agency_id)
);
CREATE INDEX meeting_agencies_agency_idx ON meeting_agencies (agency_id, meeting_id);

CREATE TABLE meeting_attendance (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    meeting_id  uuid NOT NULL REFERENCES meetings (id),
    position    int NOT NULL,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    agency_id   uuid NOT NULL REFERENCES agencies (id),
    user_id     uuid REFERENCES users (id)
);
CREATE INDEX meeting_attendance_meeting_idx ON meeting_attendance (meeting_id, position);

-- Minutes per young person, under the three Signs of Safety headings, and decisions.
CREATE TABLE meeting_minutes (
    meeting_id       uuid NOT NULL REFERENCES meetings (id),
    subject_id       uuid NOT NULL REFERENCES subjects (id),
    worried_about    text CHECK (length(worried_about) <= 20000),
    working_well     text CHECK (length(working_well) <= 20000),
    needs_to_happen  text CHECK (length(needs_to_happen) <= 20000),
    decisions        text CHECK (length(decisions) <= 20000),
    updated_by       uuid NOT NULL REFERENCES users (id),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (meeting_id, subject_id)
);

-- Agency actions. `overdue` is not a stored state: an open action whose due date has
-- passed in its hub's time zone. overdue_noted_at is set (once per open period) by whoever
-- writes its action.overdue event, so that event is written exactly once.
CREATE TABLE actions (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    subject_id        uuid NOT NULL REFERENCES subjects (id),
    hub_id            uuid NOT NULL REFERENCES hubs (id),
    meeting_id        uuid REFERENCES meetings (id),       -- NULL: agreed between meetings
    owner_agency_id   uuid NOT NULL REFERENCES agencies (id),
    assignee_id       uuid REFERENCES users (id),
    description       text NOT NULL CHECK (length(description) BETWEEN 1 AND 2000),
    due_date          date NOT NULL,
    status            text NOT NULL DEFAULT 'open'
                      CHECK (status IN ('open', 'completed', 'cancelled')),
    created_by        uuid NOT NULL REFERENCES users (id),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    completed_at      timestamptz,
    completed_by      uuid REFERENCES users (id),
    completion_note   text CHECK (length(completion_note) BETWEEN 1 AND 4000),
    evidence_ref      text CHECK (length(evidence_ref) BETWEEN 1 AND 500),
    cancelled_at      timestamptz,
    cancelled_by      uuid REFERENCES users (id),
    cancel_reason     text CHECK (length(cancel_reason) BETWEEN 1 AND 2000),
    blocked_reason    text CHECK (length(blocked_reason) BETWEEN 1 AND 2000), -- "cannot complete"
    overdue_noted_at  timestamptz,
    CONSTRAINT actions_completed CHECK ((status = 'completed') =
        (completed_at IS NOT NULL AND completed_by IS NOT NULL AND completion_note IS NOT NULL)),
    CONSTRAINT actions_cancelled CHECK ((status = 'cancelled') =
        (cancelled_at IS NOT NULL AND cancelled_by IS NOT NULL AND cancel_reason IS NOT NULL))
);
CREATE INDEX actions_subject_idx ON actions (subject_id, created_at DESC, id DESC);
CREATE INDEX actions_owner_idx ON actions (owner_agency_id, status, due_date, id);
CREATE INDEX actions_owner_created_idx ON actions (owner_agency_id, status, created_at DESC, id DESC);
CREATE INDEX actions_hub_idx ON actions (hub_id, status, due_date);
CREATE INDEX actions_meeting_idx ON actions (meeting_id) WHERE meeting_id IS NOT NULL;
CREATE INDEX actions_overdue_idx ON actions (due_date) WHERE status = 'open' AND
    overdue_noted_at IS NULL;

-- Every transition and update of an action: who, when, from, to, note.
CREATE TABLE action_history (
    id          bigserial PRIMARY KEY,
    action_id   uuid NOT NULL REFERENCES actions (id),
    at          timestamptz NOT NULL DEFAULT now(),
    user_id     uuid REFERENCES users (id),               -- NULL: the server (overdue)
    agency_id   uuid REFERENCES agencies (id),
    kind        text NOT NULL CHECK (kind IN ('created', 'completed', 'reopened', 'cancelled',
                                              'progress', 'cannot_complete', 'overdue')),
    from_status text CHECK (from_status IN ('open', 'completed', 'cancelled')),
    to_status   text NOT NULL CHECK (to_status IN ('open', 'completed', 'cancelled')),
    note        text CHECK (length(note) <= 4000),
    evidence_ref text CHECK (length(evidence_ref) <= 500)
);
CREATE INDEX action_history_action_idx ON action_history (action_id, id);

-- The agenda frozen at start: exactly which intelligence items and actions were on it.
CREATE TABLE meeting_agenda_items (
    meeting_id  uuid NOT NULL REFERENCES meetings (id),
    subject_id  uuid NOT NULL REFERENCES subjects (id),
    kind        text NOT NULL CHECK (kind IN ('intelligence', 'action')),
    record_id   uuid NOT NULL,
    PRIMARY KEY (meeting_id, kind, record_id)
);

ALTER TABLE events DROP CONSTRAINT events_type_check;
ALTER TABLE events ADD CONSTRAINT events_type_check CHECK (type IN ('intelligence.posted',
    'intelligence.retracted', 'subject.updated', 'meeting.scheduled', 'meeting.updated',
    'meeting.started', 'meeting.closed', 'action.created', 'action.updated',
    'action.completed', 'action.reopened', 'action.cancelled', 'action.overdue'));

GRANT SELECT, INSERT, UPDATE ON meetings, meeting_subjects, meeting_agencies,
    meeting_attendance, meeting_minutes, actions TO raise_app;
GRANT DELETE ON meeting_subjects, meeting_agencies, meeting_attendance TO raise_app;
GRANT SELECT, INSERT ON action_history, meeting_agenda_items TO raise_app;
GRANT USAGE ON SEQUENCE action_history_id_seq TO raise_app;
