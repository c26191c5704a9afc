-- What-if: the lines that set the engine's settings in [$1, $3): every startup, capacity
-- change and retention change, in the log's order (time, then line). src/whatif/settings.rs
-- answers from them, for any moment or period from $2 on, the settings in effect and the
-- capacities the engine ran with: a report and its episodes read them once. What a line sets
-- (NULL where it does not say) is read from its text only from the last startup before
-- $2 on (`has_values`; all of them when there is none): the lines before it no longer decide
-- anything from $2 on. The text is compressed: reading it back for a month of lines cost 55-85
-- ms at 10M lines, for the lines of a day a few.
WITH s AS MATERIALIZED (
    SELECT event, ts, file_id, line_no FROM event_rows
    WHERE event IN ('startup', 'capacity_change', 'retention_change')
      AND ts >= CAST($1 AS TIMESTAMP) AND ts < CAST($3 AS TIMESTAMP)
),
-- A one-row table whose columns bound the scan below: DuckDB turns them into filters that
-- skip the row groups before the anchor (an expression of a subquery is not pushed down).
bounds AS MATERIALIZED (
    SELECT coalesce(max(ts) FILTER (WHERE event = 'startup' AND ts < CAST($2 AS TIMESTAMP)), CAST($1 AS TIMESTAMP)) AS lo,
           CAST($3 AS TIMESTAMP) AS hi
    FROM s
),
texts AS MATERIALIZED (
    SELECT e.ts, e.file_id, e.line_no, e.raw
    FROM event_rows e, bounds b
    WHERE e.event IN ('startup', 'capacity_change', 'retention_change') AND e.ts >= b.lo AND e.ts < b.hi
)
SELECT s.event, epoch_us(s.ts) AS us, s.line_no::BIGINT AS line_no, t.raw IS NOT NULL AS has_values,
       TRY_CAST(regexp_extract(t.raw, ' max_cache_size_gb=([0-9.eE+-]+)', 1) AS DOUBLE) AS capacity_gb,
       TRY_CAST(regexp_extract(t.raw, ' retention_days=([0-9.eE+-]+)', 1) AS DOUBLE) AS retention_days,
       TRY_CAST(regexp_extract(t.raw, ' cleanup_threshold=([0-9.eE+-]+)', 1) AS DOUBLE) AS cleanup_threshold,
       TRY_CAST(regexp_extract(t.raw, ' eviction_target=([0-9.eE+-]+)', 1) AS DOUBLE) AS eviction_target
FROM s LEFT JOIN texts t ON t.ts = s.ts AND t.file_id = s.file_id AND t.line_no = s.line_no
ORDER BY s.ts, s.line_no
