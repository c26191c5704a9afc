-- The time range of all requests in the database (from the per-minute figures).
SELECT strftime(min(first_ts), '%Y-%m-%dT%H:%M:%S.%fZ') AS first_ts,
       strftime(max(last_ts), '%Y-%m-%dT%H:%M:%S.%fZ') AS last_ts
FROM request_minutes;
