-- What-if sizing's input, second part: in [$1, $2), every request that is not an ordinary
-- hit (hits with other keys, misses) with its key and the size of the key's cache file, the
-- warm-ups that stored keys, the events that take a key out at any capacity (invalidations,
-- files deleted behind the engine's back, retention evictions), and the retention clean-ups
-- that ran (with their retention), in the order of queries/whatif_stream_hits.sql (time, then
-- file and line), with which src/whatif/stream.rs merges them. An engine key of 16 hex digits
-- is the same number as a hit's. The clean-ups are a branch of their own so that only their
-- lines' text is searched.
WITH lo_hi AS (SELECT CAST($1 AS TIMESTAMP) AS lo, CAST($2 AS TIMESTAMP) AS hi)
SELECT epoch_ms(ts) AS ms, epoch_us(ts) AS us, file, line_no, event, key_num, key_text, bytes, outcome, reason, retention_days
FROM (
    SELECT e.ts, n.id::BIGINT AS file, e.line_no::BIGINT AS line_no, e.event,
           CASE WHEN regexp_full_match(e.key, '[0-9a-f]{16}') THEN ('0x' || e.key)::UBIGINT END AS key_num,
           e.key AS key_text, coalesce(e.bytes, 0)::BIGINT AS bytes, coalesce(e.outcome, '') AS outcome,
           coalesce(e.reason, '') AS reason, NULL::DOUBLE AS retention_days
    FROM event_rows e JOIN ingest_names n ON n.name = e.file_id, lo_hi
    WHERE e.event IN ('hit', 'miss', 'warm_fill', 'invalidation', 'missing_file', 'eviction') AND e.key IS NOT NULL
      AND e.ts >= lo_hi.lo AND e.ts < lo_hi.hi
    UNION ALL
    SELECT e.ts, n.id::BIGINT, e.line_no::BIGINT, e.event, NULL, '', 0, '', '',
           TRY_CAST(regexp_extract(e.raw, ' retention_days=([0-9.eE+-]+)', 1) AS DOUBLE)
    FROM event_rows e JOIN ingest_names n ON n.name = e.file_id, lo_hi
    WHERE e.event = 'cleanup' AND regexp_matches(e.raw, ' dry_run=false')
      AND e.ts >= lo_hi.lo AND e.ts < lo_hi.hi
)
ORDER BY ts, file, line_no
