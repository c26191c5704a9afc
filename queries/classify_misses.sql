-- The full-history reference of the classification: every classified event of `events` in
-- the log's order (time, file, line) as `classify_input` of queries/classify_rows.sql.
-- `miss_causes_full` (src/queries.rs puts it together from that file and
-- queries/classify_causes.sql) is what the `miss_causes` table must equal; readers of a
-- database whose derived tables are not built read it instead.
CREATE OR REPLACE VIEW classify_input_all AS
SELECT ts, event, symbol, feature_set, key, slot, reason, outcome, config, data_version, file_id, line_no,
       NULL::VARCHAR AS followed_by, NULL::VARCHAR AS summary, true AS for_key, true AS for_slot,
       true AS for_symbol, true AS for_manifest, true AS is_new,
       row_number() OVER (ORDER BY ts, file_id, line_no) AS seq
FROM event_rows
WHERE classified_event(event);

-- `events` numbered in the log's order.
CREATE OR REPLACE VIEW ordered_events AS
SELECT *, row_number() OVER (ORDER BY ts, file_id, line_no) AS seq
FROM events;

-- The misses' log lines, by time and place (what `miss_causes` rows point at).
CREATE OR REPLACE VIEW miss_lines AS
SELECT ts, file_id, line_no, raw FROM event_rows WHERE event = 'miss';
