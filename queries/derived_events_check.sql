-- The events the derived tables hold (`kept`, NULL when nothing is recorded) and the events
-- ingested (queries/schema.sql, `derived_events`).
SELECT (SELECT max(events) FROM derived_events) AS kept,
       (SELECT coalesce(sum(events), 0)::BIGINT FROM ingest_files) AS events;
