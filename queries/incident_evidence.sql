-- Up to 5 evidence lines per inferred cause in [from, until): the first misses (in the log's
-- order: time, file, line), with file and line.
SELECT cause, raw, path, line_no FROM (
    SELECT m.cause, m.raw, f.path, m.line_no,
           row_number() OVER (PARTITION BY m.cause ORDER BY m.ts, m.file_id, m.line_no) AS n
    FROM miss_causes m LEFT JOIN ingest_files f USING (file_id)
    WHERE m.ts >= CAST(? AS TIMESTAMP) AND m.ts < CAST(? AS TIMESTAMP)
) WHERE n <= 5
ORDER BY cause, line_no;
