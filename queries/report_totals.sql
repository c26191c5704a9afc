-- Requests, hits, misses in [from, until).
SELECT hits, misses, requests,
       strftime(first_ts, '%Y-%m-%dT%H:%M:%S.%fZ') AS first_ts,
       strftime(last_ts, '%Y-%m-%dT%H:%M:%S.%fZ') AS last_ts
FROM requests_between(CAST(? AS TIMESTAMP), CAST(? AS TIMESTAMP));
