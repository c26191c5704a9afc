-- Episodes overlapping [$1, $2), with the file and line of their first evidence: found from
-- the signals of the period and of `episode_context_hours` before it (queries/episodes.sql).
SELECT e.kind, strftime(e.start, '%Y-%m-%dT%H:%M:%S.%fZ') AS start,
       strftime(e."end", '%Y-%m-%dT%H:%M:%S.%fZ') AS "end",
       e.misses, e.keys, e.n_symbols, e.symbols[1:10] AS symbols, e.causes AS causes, e.runbook,
       e.first_signal, fs.path AS signal_path, e.signal_line_no,
       e.first_miss_line, fm.path AS miss_path, e.miss_line_no
FROM episodes_kept_in(CAST($1 AS TIMESTAMP) - to_hours((SELECT episode_context_hours FROM thresholds)), CAST($2 AS TIMESTAMP)) e
LEFT JOIN ingest_files fs ON fs.file_id = e.signal_file_id
LEFT JOIN ingest_files fm ON fm.file_id = e.miss_file_id
WHERE e."end" >= CAST($1 AS TIMESTAMP) AND e.start < CAST($2 AS TIMESTAMP)
ORDER BY e.start;
