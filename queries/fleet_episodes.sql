-- The fleet's episodes overlapping [from, until) (each a host's: its cache is its own), with
-- the host, and the file and line of their first evidence.
SELECT e.host, e.kind, strftime(e.start, '%Y-%m-%dT%H:%M:%S.%fZ') AS start,
       strftime(e."end", '%Y-%m-%dT%H:%M:%S.%fZ') AS "end",
       e.misses, e.keys, e.n_symbols, e.symbols[1:10] AS symbols, e.causes AS causes, e.runbook,
       e.first_signal, fs.path AS signal_path, e.signal_line_no,
       e.first_miss_line, fm.path AS miss_path, e.miss_line_no
FROM episodes e
LEFT JOIN ingest_files fs ON fs.file_id = e.signal_file_id
LEFT JOIN ingest_files fm ON fm.file_id = e.miss_file_id
WHERE e."end" >= CAST(? AS TIMESTAMP) AND e.start < CAST(? AS TIMESTAMP)
ORDER BY e.start, e.host, e.kind;
