-- What-if sizing's input, in order: every request (hit, miss) with its key and the size of
-- the key's cache file, the warm-ups that stored keys, the events that take a key out at any
-- capacity (invalidations, files deleted behind the engine's back, retention evictions), and
-- the retention clean-ups that ran (with their retention), in [$1, $2). Read from the two
-- tables behind `events` so that the 90% of requests that are ordinary hits keep their
-- numeric keys (no text to sort or hash); an engine key of 16 hex digits is the same number
-- in both. Ties in time are broken by file and line. `ms`: milliseconds since the epoch, `us`:
-- microseconds (where one read serves several periods, src/whatif/trace.rs `Trace::slice`).
WITH lo_hi AS (SELECT CAST($1 AS TIMESTAMP) AS lo, CAST($2 AS TIMESTAMP) AS hi)
SELECT epoch_ms(ts) AS ms, epoch_us(ts) AS us, event, key_num, key_text, bytes, outcome, reason, retention_days
FROM (
    SELECT h.ts, h.file, h.line_no, 'hit' AS event, h.key AS key_num, NULL::VARCHAR AS key_text,
           coalesce(h.bytes, 0) AS bytes, '' AS outcome, '' AS reason, NULL::DOUBLE AS retention_days
    FROM hit_rows h, lo_hi
    WHERE h.key IS NOT NULL AND h.ts >= lo_hi.lo AND h.ts < lo_hi.hi
    UNION ALL
    SELECT e.ts, n.id AS file, e.line_no, e.event,
           CASE WHEN regexp_full_match(e.key, '[0-9a-f]{16}') THEN ('0x' || e.key)::UBIGINT END AS key_num,
           coalesce(e.key, '') AS key_text, coalesce(e.bytes, 0) AS bytes, coalesce(e.outcome, '') AS outcome,
           coalesce(e.reason, '') AS reason,
           CASE WHEN e.event = 'cleanup'
                THEN TRY_CAST(regexp_extract(e.raw, ' retention_days=([0-9.eE+-]+)', 1) AS DOUBLE) END AS retention_days
    FROM event_rows e JOIN ingest_names n ON n.name = e.file_id, lo_hi
    WHERE ((e.event IN ('hit', 'miss', 'warm_fill', 'invalidation', 'missing_file', 'eviction') AND e.key IS NOT NULL)
           OR (e.event = 'cleanup' AND regexp_matches(e.raw, ' dry_run=false')))
      AND e.ts >= lo_hi.lo AND e.ts < lo_hi.hi
)
ORDER BY ts, file, line_no
