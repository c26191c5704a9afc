-- What-if: how many times the capacity changed in [$1, $2) (the measured ratio then mixes
-- capacities, which a single-capacity prediction does not).
SELECT count(*) AS changes FROM event_rows
WHERE event = 'capacity_change' AND ts >= CAST($1 AS TIMESTAMP) AND ts < CAST($2 AS TIMESTAMP)
