-- Records that the derived tables hold every event ingested so far (queries/schema.sql,
-- `derived_events`): at each commit, and after a rebuild.
DELETE FROM derived_events;
INSERT INTO derived_events SELECT coalesce(sum(events), 0)::BIGINT FROM ingest_files;
