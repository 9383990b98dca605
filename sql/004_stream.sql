-- The live stream reads where the event log stands when a subscriber connects.
GRANT SELECT ON event_head TO raise_app;
