-- The settings the engine ran with at $1: the last startup, capacity or retention change
-- before it (NULL where the log does not say).
WITH s AS (
    SELECT event, ts, line_no, raw FROM event_rows
    WHERE event IN ('startup', 'capacity_change', 'retention_change') AND ts < CAST($1 AS TIMESTAMP)
)
SELECT
    (SELECT TRY_CAST(regexp_extract(raw, ' max_cache_size_gb=([0-9.eE+-]+)', 1) AS DOUBLE) FROM s
     WHERE event IN ('startup', 'capacity_change') ORDER BY ts DESC, line_no DESC LIMIT 1) AS capacity_gb,
    (SELECT TRY_CAST(regexp_extract(raw, ' retention_days=([0-9.eE+-]+)', 1) AS DOUBLE) FROM s
     WHERE event IN ('startup', 'retention_change') ORDER BY ts DESC, line_no DESC LIMIT 1) AS retention_days,
    (SELECT TRY_CAST(regexp_extract(raw, ' cleanup_threshold=([0-9.eE+-]+)', 1) AS DOUBLE) FROM s
     WHERE event = 'startup' ORDER BY ts DESC, line_no DESC LIMIT 1) AS cleanup_threshold,
    (SELECT TRY_CAST(regexp_extract(raw, ' eviction_target=([0-9.eE+-]+)', 1) AS DOUBLE) FROM s
     WHERE event = 'startup' ORDER BY ts DESC, line_no DESC LIMIT 1) AS eviction_target
