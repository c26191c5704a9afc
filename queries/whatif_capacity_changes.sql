-- What-if: how many times the capacity changed in [$1, $2) (the measured ratio then mixes
-- capacities, which a single-capacity prediction does not), and the smallest capacity the
-- engine ran with in it (the one in effect at $1, or set during the period).
WITH c AS (
    SELECT event, ts, line_no,
           TRY_CAST(regexp_extract(raw, ' max_cache_size_gb=([0-9.eE+-]+)', 1) AS DOUBLE) AS gb
    FROM event_rows WHERE event IN ('startup', 'capacity_change') AND ts < CAST($2 AS TIMESTAMP)
)
SELECT
    (SELECT count(*) FROM c WHERE event = 'capacity_change' AND ts >= CAST($1 AS TIMESTAMP)) AS changes,
    (SELECT min(gb) FROM (
        (SELECT gb FROM c WHERE ts <= CAST($1 AS TIMESTAMP) ORDER BY ts DESC, line_no DESC LIMIT 1)
        UNION ALL
        SELECT gb FROM c WHERE ts > CAST($1 AS TIMESTAMP))) AS smallest_gb
