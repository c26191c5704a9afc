-- Up to 5 evidence lines per inferred cause in [$1, $2): the first misses (in the log's
-- order: time, file, line), with file and line; the lines themselves from `miss_lines`.
SELECT m.cause, l.raw, f.path, m.line_no FROM (
    SELECT cause, ts, file_id, line_no,
           row_number() OVER (PARTITION BY cause ORDER BY ts, file_id, line_no) AS n
    FROM miss_causes
    WHERE ts >= CAST($1 AS TIMESTAMP) AND ts < CAST($2 AS TIMESTAMP)
) m
LEFT JOIN miss_lines l ON l.ts = m.ts AND l.file_id = m.file_id AND l.line_no = m.line_no
LEFT JOIN ingest_files f ON f.file_id = m.file_id
WHERE m.n <= 5
ORDER BY m.cause, m.line_no;
