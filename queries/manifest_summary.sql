-- Per-state counts and bytes (for `cache stats` and tests).
SELECT state, count(*) AS keys, coalesce(sum(bytes), 0)::BIGINT AS bytes
FROM manifest
GROUP BY state
ORDER BY state;
