-- The time range of all requests in the database.
SELECT strftime(min(ts), '%Y-%m-%dT%H:%M:%S.%fZ') AS first_ts,
       strftime(max(ts), '%Y-%m-%dT%H:%M:%S.%fZ') AS last_ts
FROM events
WHERE event IN ('hit', 'miss');
