-- Alert periods overlapping [$1, $2): those that fired ($3 true: a report's), or every one
-- pending or firing there ($3 false: `slo --at`, asked of [at, at + 1 us)).
SELECT alert, severity,
       strftime(pending_since, '%Y-%m-%dT%H:%M:%S.%fZ') AS pending_since,
       strftime(firing_since, '%Y-%m-%dT%H:%M:%S.%fZ') AS start,
       strftime(resolved_at, '%Y-%m-%dT%H:%M:%S.%fZ') AS "end",
       state, worst_ratio
FROM alerts
WHERE coalesce(resolved_at, TIMESTAMP '9999-12-31') >= CAST($1 AS TIMESTAMP)
  AND CASE WHEN CAST($3 AS BOOLEAN) THEN firing_since < CAST($2 AS TIMESTAMP)
           ELSE pending_since < CAST($2 AS TIMESTAMP) END
ORDER BY coalesce(firing_since, pending_since), severity;
