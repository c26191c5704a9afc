-- Misses by host and inferred cause in [from, until), with the share of the host's misses.
SELECT host, cause, count(*) AS misses, count(*) / sum(count(*)) OVER (PARTITION BY host) AS share
FROM miss_causes
WHERE ts >= CAST($1 AS TIMESTAMP) AND ts < CAST($2 AS TIMESTAMP)
GROUP BY host, cause
ORDER BY host, misses DESC, cause
