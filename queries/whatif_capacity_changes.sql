-- What-if: how many times the capacity changed in [$1, $2) (the measured ratio then mixes
-- capacities, which a single-capacity prediction does not), and the smallest capacity the
-- engine ran with in it (the one in effect at $1, or set during the period). Only the lines
-- that set those capacities are read back for their text (queries/whatif_current.sql). Looked
-- for from $3 on (`in_effect_found`: the line in effect at $1 is among them; else
-- src/whatif/mod.rs looks further back).
WITH c AS MATERIALIZED (
    SELECT event, ts, file_id, line_no FROM event_rows
    WHERE event IN ('startup', 'capacity_change') AND ts < CAST($2 AS TIMESTAMP) AND ts >= CAST($3 AS TIMESTAMP)
),
wanted AS MATERIALIZED (
    (SELECT ts, file_id, line_no FROM c WHERE ts <= CAST($1 AS TIMESTAMP) ORDER BY ts DESC, line_no DESC LIMIT 1)
    UNION ALL
    SELECT ts, file_id, line_no FROM c WHERE ts > CAST($1 AS TIMESTAMP)
),
gb AS (
    SELECT TRY_CAST(regexp_extract(e.raw, ' max_cache_size_gb=([0-9.eE+-]+)', 1) AS DOUBLE) AS gb
    FROM wanted w JOIN event_rows e ON e.ts = w.ts AND e.file_id = w.file_id AND e.line_no = w.line_no
)
SELECT
    (SELECT count(*) FROM c WHERE event = 'capacity_change' AND ts >= CAST($1 AS TIMESTAMP)) AS changes,
    (SELECT min(gb) FROM gb) AS smallest_gb,
    EXISTS (SELECT 1 FROM c WHERE ts <= CAST($1 AS TIMESTAMP)) AS in_effect_found
