-- The most recent alert period that fired: its pending start and its resolution (or now).
SELECT strftime(pending_since, '%Y-%m-%dT%H:%M:%S.%fZ') AS pending_since,
       strftime(coalesce(resolved_at, (SELECT last_eval FROM evaluation_range)), '%Y-%m-%dT%H:%M:%S.%fZ') AS until
FROM alerts WHERE firing_since IS NOT NULL
ORDER BY firing_since DESC LIMIT 1;
