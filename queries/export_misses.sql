-- Export: the misses of [$1, $2) (one UTC day), each with the cause the classification gives
-- it (`miss_causes`), the engine's own reason, and its log line and place.
SELECT epoch_us(m.ts) AS ts_us, m.symbol, m.feature_set, m.key, m.slot, m.cause, m.basis,
       m.logged_reason, m.outcome, m.config, m.data_version, f.path AS file, m.line_no, m.raw
FROM miss_causes m LEFT JOIN ingest_files f ON f.file_id = m.file_id
WHERE m.ts >= CAST($1 AS TIMESTAMP) AND m.ts < CAST($2 AS TIMESTAMP)
ORDER BY m.ts, m.file_id, m.line_no
