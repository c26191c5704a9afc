-- Export: the episodes that start in [$1, $2) (one UTC day), with their first evidence lines
-- and the files they are in; times as microseconds since the epoch (naive UTC). Found from
-- the signals of the day and of `episode_context_hours` on either side (queries/episodes.sql).
SELECT e.kind, epoch_us(e.start) AS start_us, epoch_us(e."end") AS end_us,
       e.misses, e.keys, e.n_symbols, coalesce(e.symbols, []) AS symbols, coalesce(e.causes, []) AS causes, e.runbook,
       e.first_signal, fs.path AS signal_file, e.signal_line_no,
       e.first_miss_line, fm.path AS miss_file, e.miss_line_no
FROM episodes_kept_in(CAST($1 AS TIMESTAMP) - to_hours((SELECT episode_context_hours FROM thresholds)),
                 CAST($2 AS TIMESTAMP) + to_hours((SELECT episode_context_hours FROM thresholds))) e
LEFT JOIN ingest_files fs ON fs.file_id = e.signal_file_id
LEFT JOIN ingest_files fm ON fm.file_id = e.miss_file_id
WHERE e.start >= CAST($1 AS TIMESTAMP) AND e.start < CAST($2 AS TIMESTAMP)
ORDER BY e.start, e.kind
