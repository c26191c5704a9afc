-- The time range of the requests a derived table is built from.
SELECT min(ts) AS first_ts, max(ts) AS last_ts
FROM events
WHERE event IN ('hit', 'miss') AND ts IS NOT NULL;
