-- Export: the per-minute figures of [$1, $2) (one UTC day), times as microseconds since the
-- epoch (naive UTC).
SELECT epoch_us(minute) AS minute_us, feature_set, hits, misses, hit_bytes, miss_bytes, latency_us,
       epoch_us(first_ts) AS first_us, epoch_us(last_ts) AS last_us
FROM request_minutes
WHERE minute >= CAST($1 AS TIMESTAMP) AND minute < CAST($2 AS TIMESTAMP)
ORDER BY minute, feature_set
