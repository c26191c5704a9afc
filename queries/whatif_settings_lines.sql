-- What-if: the lines that set the engine's settings in [$1, $3): every startup, capacity
-- change and retention change, in the log's order (time, then line). src/whatif/settings.rs
-- answers from them, for any moment or period from $2 on, the settings in effect and the
-- capacities the engine ran with: a report and its episodes read them once. What a line sets
-- (NULL where it does not say) is read from its text only from the last startup before
-- $2 on (`has_values`; all of them when there is none): the lines before it no longer decide
-- anything from $2 on. The text is compressed: reading it back for a month of lines cost 55-85
-- ms at 10M lines, for the lines of a day a few.
WITH s AS MATERIALIZED (
    SELECT event, ts, file_id, line_no, rowid AS rid FROM event_rows
    WHERE event IN ('startup', 'capacity_change', 'retention_change')
      AND ts >= CAST($1 AS TIMESTAMP) AND ts < CAST($3 AS TIMESTAMP)
),
-- A one-row table: the anchor (the last startup before $2) and the end, which say whose
-- texts are read.
bounds AS MATERIALIZED (
    SELECT coalesce(max(ts) FILTER (WHERE event = 'startup' AND ts < CAST($2 AS TIMESTAMP)), CAST($1 AS TIMESTAMP)) AS lo,
           CAST($3 AS TIMESTAMP) AS hi
    FROM s
),
-- The texts are looked up by the rows' ids (DuckDB reads `raw` only in the row groups that
-- hold them): filtering the scan by event and time read `raw` for every row from the anchor
-- on (143k rows for the 47 lines of a report's last 15 days at 10M lines: 30 -> 24 ms; the
-- whole history 252 -> 183 ms, one thread).
texts AS MATERIALIZED (
    SELECT e.ts, e.file_id, e.line_no, e.raw
    FROM event_rows e
    WHERE e.rowid IN (SELECT s.rid FROM s, bounds b WHERE s.ts >= b.lo AND s.ts < b.hi)
)
SELECT s.event, epoch_us(s.ts) AS us, s.line_no::BIGINT AS line_no, t.raw IS NOT NULL AS has_values,
       TRY_CAST(regexp_extract(t.raw, ' max_cache_size_gb=([0-9.eE+-]+)', 1) AS DOUBLE) AS capacity_gb,
       TRY_CAST(regexp_extract(t.raw, ' retention_days=([0-9.eE+-]+)', 1) AS DOUBLE) AS retention_days,
       TRY_CAST(regexp_extract(t.raw, ' cleanup_threshold=([0-9.eE+-]+)', 1) AS DOUBLE) AS cleanup_threshold,
       TRY_CAST(regexp_extract(t.raw, ' eviction_target=([0-9.eE+-]+)', 1) AS DOUBLE) AS eviction_target
FROM s LEFT JOIN texts t ON t.ts = s.ts AND t.file_id = s.file_id AND t.line_no = s.line_no
ORDER BY s.ts, s.line_no
