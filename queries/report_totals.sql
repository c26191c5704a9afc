-- Requests, hits, misses in [from, until).
SELECT count(*) FILTER (WHERE event = 'hit') AS hits,
       count(*) FILTER (WHERE event = 'miss') AS misses,
       count(*) AS requests,
       strftime(min(ts), '%Y-%m-%dT%H:%M:%S.%fZ') AS first_ts,
       strftime(max(ts), '%Y-%m-%dT%H:%M:%S.%fZ') AS last_ts
FROM events
WHERE event IN ('hit', 'miss') AND ts >= CAST(? AS TIMESTAMP) AND ts < CAST(? AS TIMESTAMP);
