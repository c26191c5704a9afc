-- What-if sizing's input, second part: in [$1, $2), every request that is not an ordinary
-- hit (hits with other keys, misses) with its key and the size of the key's cache file, the
-- warm-ups that stored keys, the events that take a key out at any capacity (invalidations,
-- files deleted behind the engine's back, retention evictions), and the retention clean-ups
-- that ran (with their retention). src/whatif/stream.rs numbers their files as `hit_rows`
-- does (queries/ingest_names_load.sql), reads an engine key of 16 hex digits as the number a
-- hit's is, sorts them in the order of queries/whatif_stream_hits.sql (time, then file and
-- line) and merges the two: a tenth of the requests, sorted in Rust in a few milliseconds,
-- where the join, the key's regular expression and DuckDB's sort cost 40-60 ms a week at 10M lines.
-- The clean-ups are a branch of their own so that only their lines' text is searched.
WITH lo_hi AS (SELECT CAST($1 AS TIMESTAMP) AS lo, CAST($2 AS TIMESTAMP) AS hi)
SELECT epoch_ms(e.ts) AS ms, epoch_us(e.ts) AS us, e.file_id, e.line_no::BIGINT AS line_no, e.event,
       e.key, e.bytes::BIGINT AS bytes, e.outcome, e.reason, NULL::DOUBLE AS retention_days
FROM event_rows e, lo_hi
WHERE e.event IN ('hit', 'miss', 'warm_fill', 'invalidation', 'missing_file', 'eviction') AND e.key IS NOT NULL
  AND e.ts >= lo_hi.lo AND e.ts < lo_hi.hi
UNION ALL
SELECT epoch_ms(e.ts), epoch_us(e.ts), e.file_id, e.line_no::BIGINT, e.event, NULL, NULL, NULL, NULL,
       TRY_CAST(regexp_extract(e.raw, ' retention_days=([0-9.eE+-]+)', 1) AS DOUBLE)
FROM event_rows e, lo_hi
WHERE e.event = 'cleanup' AND regexp_matches(e.raw, ' dry_run=false')
  AND e.ts >= lo_hi.lo AND e.ts < lo_hi.hi
