-- Alert periods that fired and overlap [from, until).
SELECT alert, severity,
       strftime(pending_since, '%Y-%m-%dT%H:%M:%S.%fZ') AS pending_since,
       strftime(firing_since, '%Y-%m-%dT%H:%M:%S.%fZ') AS start,
       strftime(resolved_at, '%Y-%m-%dT%H:%M:%S.%fZ') AS "end",
       state, worst_ratio
FROM alerts
WHERE firing_since IS NOT NULL
  AND coalesce(resolved_at, TIMESTAMP '9999-12-31') >= CAST(? AS TIMESTAMP)
  AND firing_since < CAST(? AS TIMESTAMP)
ORDER BY firing_since, severity;
