-- Adds one minute's figures to `request_minutes` (commits with few minutes, such as a
-- tailer's: one statement per row costs less than staging them).
INSERT INTO request_minutes (minute, feature_set, hits, misses, hit_bytes, miss_bytes, latency_us, first_ts, last_ts)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (minute, feature_set) DO UPDATE SET
    hits       = hits + excluded.hits,
    misses     = misses + excluded.misses,
    hit_bytes  = hit_bytes + excluded.hit_bytes,
    miss_bytes = miss_bytes + excluded.miss_bytes,
    latency_us = latency_us + excluded.latency_us,
    first_ts   = least(first_ts, excluded.first_ts),
    last_ts    = greatest(last_ts, excluded.last_ts);
