-- The settings the engine ran with at $1: the last startup, capacity or retention change
-- before it (NULL where the log does not say), looked for from $2 on (`startup_found`: the
-- last startup is among them, so all of them are; else src/whatif/mod.rs looks further back). The lines are picked by time, file and line
-- first, and only theirs are read back (an as-of lookup): the log text is compressed, and
-- reading it for every such line of the history cost a third of a second at 10M lines.
WITH s AS MATERIALIZED (
    SELECT event, ts, file_id, line_no FROM event_rows
    WHERE event IN ('startup', 'capacity_change', 'retention_change')
      AND ts < CAST($1 AS TIMESTAMP) AND ts >= CAST($2 AS TIMESTAMP)
),
picked AS MATERIALIZED (
    (SELECT 'capacity' AS setting, ts, file_id, line_no FROM s
     WHERE event IN ('startup', 'capacity_change') ORDER BY ts DESC, line_no DESC LIMIT 1)
    UNION ALL
    (SELECT 'retention', ts, file_id, line_no FROM s
     WHERE event IN ('startup', 'retention_change') ORDER BY ts DESC, line_no DESC LIMIT 1)
    UNION ALL
    (SELECT 'startup', ts, file_id, line_no FROM s
     WHERE event = 'startup' ORDER BY ts DESC, line_no DESC LIMIT 1)
),
texts AS MATERIALIZED (
    SELECT p.setting, e.raw
    FROM picked p JOIN event_rows e ON e.ts = p.ts AND e.file_id = p.file_id AND e.line_no = p.line_no
)
SELECT
    (SELECT TRY_CAST(regexp_extract(raw, ' max_cache_size_gb=([0-9.eE+-]+)', 1) AS DOUBLE) FROM texts WHERE setting = 'capacity') AS capacity_gb,
    (SELECT TRY_CAST(regexp_extract(raw, ' retention_days=([0-9.eE+-]+)', 1) AS DOUBLE) FROM texts WHERE setting = 'retention') AS retention_days,
    (SELECT TRY_CAST(regexp_extract(raw, ' cleanup_threshold=([0-9.eE+-]+)', 1) AS DOUBLE) FROM texts WHERE setting = 'startup') AS cleanup_threshold,
    (SELECT TRY_CAST(regexp_extract(raw, ' eviction_target=([0-9.eE+-]+)', 1) AS DOUBLE) FROM texts WHERE setting = 'startup') AS eviction_target,
    EXISTS (SELECT 1 FROM picked WHERE setting = 'startup') AS startup_found
