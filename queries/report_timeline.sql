-- The 5-minute hit ratio at every evaluation in [from, until], for charts and timelines.
SELECT strftime(eval_time, '%Y-%m-%dT%H:%M:%S.%fZ') AS eval_time, hit_ratio, requests
FROM hit_ratio_5m
WHERE eval_time >= CAST(? AS TIMESTAMP) AND eval_time <= CAST(? AS TIMESTAMP)
ORDER BY eval_time;
