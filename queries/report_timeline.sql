-- The 5-minute hit ratio at the evaluations in [$1, $2], for charts and timelines: every one
-- when there are at most $3, else at most $3 points, each the lowest ratio of its stretch of
-- consecutive evaluations (a dip is never averaged away) with its time and requests, or the
-- stretch's first evaluation when it had no traffic.
WITH h AS (
    SELECT eval_time, hit_ratio, requests FROM hit_ratio_5m
    WHERE eval_time >= CAST($1 AS TIMESTAMP) AND eval_time <= CAST($2 AS TIMESTAMP)
),
per AS (SELECT greatest(1, ceil(count(*) / CAST($3 AS DOUBLE)))::BIGINT AS n FROM h),
stretches AS (
    SELECT h.*, (row_number() OVER (ORDER BY eval_time) - 1) // per.n AS stretch FROM h, per
),
points AS (
    SELECT coalesce(arg_min(eval_time, hit_ratio), min(eval_time)) AS eval_time,
           min(hit_ratio) AS hit_ratio,
           coalesce(arg_min(requests, hit_ratio), arg_min(requests, eval_time)) AS requests
    FROM stretches GROUP BY stretch
)
SELECT strftime(eval_time, '%Y-%m-%dT%H:%M:%S.%fZ') AS eval_time, hit_ratio, requests
FROM points
ORDER BY eval_time;
