-- What-if sizing's input, in order: every request (hit, miss) with its key and the size of
-- the key's cache file, the warm-ups that stored keys, and the events that take a key out at
-- any capacity (invalidations, files deleted behind the engine's back, retention clean-ups),
-- in [$1, $2).
SELECT event, key, coalesce(bytes, 0) AS bytes, coalesce(outcome, '') AS outcome, coalesce(reason, '') AS reason
FROM events
WHERE event IN ('hit', 'miss', 'warm_fill', 'invalidation', 'missing_file', 'eviction')
  AND key IS NOT NULL AND ts >= CAST($1 AS TIMESTAMP) AND ts < CAST($2 AS TIMESTAMP)
ORDER BY ts, file_id, line_no
