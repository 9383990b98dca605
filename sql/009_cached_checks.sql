-- The rules on intelligence and events move from table CHECKs into domains and one function,
-- which PostgreSQL keeps compiled per connection. Every rule still holds, in the database.
--
-- Why: a table's CHECK constraints are stored as node trees in text and PostgreSQL parses
-- them again for every statement that inserts into or updates the table (ExecRelCheck:
-- stringToNode, then planning the expression). The intelligence table's sixteen came to
-- ~25 KB of node text (an IN list of seventeen categories alone is 3.7 KB) and events'
-- type list to another 3 KB, re-read by every post (it queues an event row too) and every
-- sequencer run. Measured on one connection (2026-12-07): the post statement took ~320 us,
-- ~240 us with the rules as below, ~230 us with no rules at all. A domain's constraints
-- are read once per connection (the type cache) and a PL/pgSQL function is compiled once
-- per connection, so the rules cost about what evaluating them costs.
--
-- What a reader sees is unchanged: a domain over text is text to every query, operator and
-- client, and a value that breaks a rule is refused with the same SQLSTATE (23514,
-- check_violation). The error names the domain or intelligence_rules instead of the old
-- constraint; raised validates every field before it writes, so these are the second line.
-- The queues keep the rules of their tables (sql/007): event_queue.type takes the same
-- domain as events.type (test_stream.c compares the two).

CREATE DOMAIN intelligence_category AS text CHECK (VALUE IN ('missing_from_home',
    'returned_from_missing', 'arrest', 'charge', 'offence_at_hub', 'cse_concern',
    'cce_county_lines', 'risky_associate', 'self_harm', 'ae_attendance',
    'hospital_admission', 'substance_misuse', 'school_exclusion', 'placement_incident',
    'domestic_abuse', 'positive_progress', 'other'));
CREATE DOMAIN intelligence_risk AS text CHECK (VALUE IN ('low', 'medium', 'high', 'critical'));
CREATE DOMAIN intelligence_summary AS text CHECK (length(VALUE) BETWEEN 1 AND 500);
CREATE DOMAIN intelligence_detail AS text CHECK (length(VALUE) <= 10000);
CREATE DOMAIN intelligence_gravity AS smallint CHECK (VALUE BETWEEN 1 AND 8);
CREATE DOMAIN grading_scheme AS text CHECK (VALUE IN ('3x5x2', '5x5x5'));
CREATE DOMAIN handling_conditions AS text CHECK (length(VALUE) <= 2000);
CREATE DOMAIN retraction_reason AS text CHECK (length(VALUE) BETWEEN 1 AND 1000);
CREATE DOMAIN idempotency_key AS text CHECK (length(VALUE) BETWEEN 1 AND 200);
CREATE DOMAIN event_type AS text CHECK (VALUE IN ('intelligence.posted',
    'intelligence.retracted', 'subject.updated', 'meeting.scheduled', 'meeting.updated',
    'meeting.started', 'meeting.closed', 'action.created', 'action.updated',
    'action.completed', 'action.reopened', 'action.cancelled', 'action.overdue',
    'account.changed'));

-- The rules that join several columns (sql/003), as one: gravity only for arrest, charge and
-- offence categories; a grading is all of scheme, source, assessment and handling or none of
-- them; 3x5x2 is source 1-3, assessment A-E, handling P or C; 5x5x5 is source A-E,
-- assessment 1-5, handling 1-5; handling C needs its conditions; a retraction has its time,
-- user and reason together. A NULL from a part means "not broken", as it did in the CHECKs.
-- One rule is stricter than sql/003's: that said only "scheme set, or all three parts unset",
-- so a scheme with a part missing passed (a NULL part made the 3x5x2 test NULL, which a CHECK
-- lets through). raised never wrote such a row (it requires all three); now the database
-- refuses one too (test_subjects.c, the_database_holds_the_intelligence_rules).
CREATE FUNCTION intelligence_rules_hold(category text, gravity smallint, scheme text,
    source text, assessment text, handling text, conditions text, retracted_at timestamptz,
    retracted_by uuid, reason text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN (gravity IS NULL OR category IN ('arrest', 'charge', 'offence_at_hub'))
        AND (scheme IS NULL) = (source IS NULL) AND (scheme IS NULL) = (assessment IS NULL)
        AND (scheme IS NULL) = (handling IS NULL)
        AND (scheme IS DISTINCT FROM '3x5x2' OR (source IN ('1', '2', '3')
             AND assessment IN ('A', 'B', 'C', 'D', 'E') AND handling IN ('P', 'C')))
        AND (scheme IS DISTINCT FROM '5x5x5' OR (source IN ('A', 'B', 'C', 'D', 'E')
             AND assessment IN ('1', '2', '3', '4', '5')
             AND handling IN ('1', '2', '3', '4', '5')))
        AND (handling IS DISTINCT FROM 'C' OR conditions IS NOT NULL)
        AND (retracted_at IS NULL) = (retracted_by IS NULL)
        AND (retracted_at IS NULL) = (reason IS NULL);
END
$$;

ALTER TABLE intelligence
    DROP CONSTRAINT intelligence_category_check,
    ALTER category TYPE intelligence_category,
    DROP CONSTRAINT intelligence_risk_level_check,
    ALTER risk_level TYPE intelligence_risk,
    DROP CONSTRAINT intelligence_summary_check,
    ALTER summary TYPE intelligence_summary,
    DROP CONSTRAINT intelligence_detail_check,
    ALTER detail TYPE intelligence_detail,
    DROP CONSTRAINT intelligence_gravity_check,
    ALTER gravity TYPE intelligence_gravity,
    DROP CONSTRAINT intelligence_grading_scheme_check,
    ALTER grading_scheme TYPE grading_scheme,
    DROP CONSTRAINT intelligence_conditions_check,
    ALTER conditions TYPE handling_conditions,
    DROP CONSTRAINT intelligence_retraction_reason_check,
    ALTER retraction_reason TYPE retraction_reason,
    DROP CONSTRAINT intelligence_idempotency_key_check,
    ALTER idempotency_key TYPE idempotency_key,
    DROP CONSTRAINT intelligence_gravity_category,
    DROP CONSTRAINT intelligence_3x5x2,
    DROP CONSTRAINT intelligence_5x5x5,
    DROP CONSTRAINT intelligence_graded,
    DROP CONSTRAINT intelligence_conditions,
    DROP CONSTRAINT intelligence_retraction,
    ADD CONSTRAINT intelligence_rules CHECK (intelligence_rules_hold(category, gravity,
        grading_scheme, grading_source, grading_assessment, handling, conditions,
        retracted_at, retracted_by, retraction_reason));

ALTER TABLE events DROP CONSTRAINT events_type_check, ALTER type TYPE event_type;
ALTER TABLE event_queue DROP CONSTRAINT events_type_check, ALTER type TYPE event_type;

-- Changing a column's type drops its statistics. Without them the planner guessed hundreds
-- of rows for the idempotency-key lookup, preferred a fresh plan per post, and the post
-- statement took twice as long as before (planning each time), until autovacuum analysed.
-- An empty table is left as it is: analysed empty, the planner would trust its size of
-- zero, and a plan cached then (a sequential scan for the idempotency key) would stay with
-- the connection while the table grew.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM intelligence) THEN
        ANALYZE intelligence;
    END IF;
    IF EXISTS (SELECT 1 FROM events) THEN
        ANALYZE events;
    END IF;
    IF EXISTS (SELECT 1 FROM event_queue) THEN
        ANALYZE event_queue;
    END IF;
END
$$;
