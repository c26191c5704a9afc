-- Export: the misses of [$1, $2) (one UTC day), each with the cause the classification gives
-- it (`miss_causes`), the engine's own reason, and its log line (`miss_lines`) and place.
SELECT epoch_us(m.ts) AS ts_us, m.symbol, m.feature_set, m.key, m.slot, m.cause, m.basis,
       m.logged_reason, m.outcome, m.config, m.data_version, f.path AS file, m.line_no, l.raw
FROM miss_causes m
LEFT JOIN ingest_files f ON f.file_id = m.file_id
LEFT JOIN (SELECT * FROM miss_lines WHERE ts >= CAST($1 AS TIMESTAMP) AND ts < CAST($2 AS TIMESTAMP)) l
       ON l.ts = m.ts AND l.file_id = m.file_id AND l.line_no = m.line_no
WHERE m.ts >= CAST($1 AS TIMESTAMP) AND m.ts < CAST($2 AS TIMESTAMP)
ORDER BY m.ts, m.file_id, m.line_no
