-- Adds a commit's figures (staged in `request_minutes_stage`) to `request_minutes`.
INSERT INTO request_minutes BY NAME
SELECT * FROM request_minutes_stage
ON CONFLICT (minute, feature_set) DO UPDATE SET
    hits       = hits + excluded.hits,
    misses     = misses + excluded.misses,
    hit_bytes  = hit_bytes + excluded.hit_bytes,
    miss_bytes = miss_bytes + excluded.miss_bytes,
    latency_us = latency_us + excluded.latency_us,
    first_ts   = least(first_ts, excluded.first_ts),
    last_ts    = greatest(last_ts, excluded.last_ts);
DELETE FROM request_minutes_stage;
