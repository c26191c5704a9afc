-- The derived tables' definitions over `events`: what the ingester's incremental figures must
-- equal, what `cachescope reclassify` rebuilds them from, and what a reader falls back to on
-- a database written before them.

-- `request_minutes` of the requests in [lo, hi).
CREATE OR REPLACE MACRO request_minutes_of(lo, hi) AS TABLE
SELECT date_trunc('minute', ts) AS minute,
       coalesce(feature_set, '') AS feature_set,
       count(*) FILTER (WHERE event = 'hit') AS hits,
       count(*) FILTER (WHERE event = 'miss') AS misses,
       coalesce(sum(bytes) FILTER (WHERE event = 'hit'), 0) AS hit_bytes,
       coalesce(sum(bytes) FILTER (WHERE event = 'miss'), 0) AS miss_bytes,
       coalesce(sum(latency_us), 0) AS latency_us,
       min(ts) AS first_ts,
       max(ts) AS last_ts
FROM events
WHERE event IN ('hit', 'miss') AND ts IS NOT NULL AND ts >= lo AND ts < hi
GROUP BY ALL;
