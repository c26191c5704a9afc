-- Stages the classified events without a time (last in the log's order) for a rebuild. Its
-- own statement rather than a NULL bound of queries/classify_stage_range.sql: a day's range
-- must stay a plain filter on `ts`, which DuckDB prunes row groups by.
INSERT INTO classify_batch
SELECT ts, event, symbol, feature_set, key, slot, reason, outcome, config, data_version, file_id, line_no
FROM event_rows
WHERE classified_event(event) AND ts IS NULL
