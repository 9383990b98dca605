-- account.changed: a user's sign-in state or rights changed (a session signed out; an
-- administrator changed the role, managed hubs, password or active flag). Written in the
-- same transaction as the change, like every event, and numbered by the sequencer, so it
-- sits in the log between the events that came before the change and those after it.
-- It is never sent to a client (record_id is the user's id; it has no young person, hub or
-- team, so no reader's need-to-know covers it). An open stream of that user stops at it,
-- re-reads the user's rights and sessions, and then either ends (signed out, deactivated)
-- or goes on with the new rights: nothing after the change reaches a stream under the old
-- ones, on any server process.
ALTER TABLE events DROP CONSTRAINT events_type_check,
    ADD CONSTRAINT events_type_check CHECK (type IN ('intelligence.posted',
    'intelligence.retracted', 'subject.updated', 'meeting.scheduled', 'meeting.updated',
    'meeting.started', 'meeting.closed', 'action.created', 'action.updated',
    'action.completed', 'action.reopened', 'action.cancelled', 'action.overdue',
    'account.changed'));

-- The queue keeps the same rule (sql/007: a row it accepted must always move), copied from
-- the table so the two cannot differ.
ALTER TABLE event_queue DROP CONSTRAINT events_type_check;
DO $$
BEGIN
    EXECUTE 'ALTER TABLE event_queue ADD CONSTRAINT events_type_check '
        || pg_get_constraintdef((SELECT oid FROM pg_constraint
                                 WHERE conrelid = 'events'::regclass
                                   AND conname = 'events_type_check'));
END
$$;
