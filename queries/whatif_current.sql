-- The capacity the engine ran with at $1: the last startup or capacity change before it.
SELECT TRY_CAST(regexp_extract(raw, ' max_cache_size_gb=([0-9.eE+-]+)', 1) AS DOUBLE) AS capacity_gb
FROM event_rows
WHERE event IN ('startup', 'capacity_change') AND ts < CAST($1 AS TIMESTAMP)
ORDER BY ts DESC
LIMIT 1
