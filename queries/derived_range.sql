-- The time range of the events the derived tables are built from.
SELECT min(ts) AS first_ts, max(ts) AS last_ts
FROM events
WHERE ts IS NOT NULL;
