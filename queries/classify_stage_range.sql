-- Stages the classified events of [$1, $2) for a step of the classification (a rebuild).
INSERT INTO classify_batch
SELECT ts, event, symbol, feature_set, key, slot, reason, outcome, config, data_version, file_id, line_no
FROM event_rows
WHERE classified_event(event) AND ts >= CAST($1 AS TIMESTAMP) AND ts < CAST($2 AS TIMESTAMP)
