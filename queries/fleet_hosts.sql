-- The fleet's hosts, with the first and last request each exported.
SELECT host, strftime(min(first_ts), '%Y-%m-%dT%H:%M:%S.%fZ') AS first_ts,
       strftime(max(last_ts), '%Y-%m-%dT%H:%M:%S.%fZ') AS last_ts
FROM fleet_minutes
GROUP BY host
ORDER BY host
