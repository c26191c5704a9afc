-- The 5-minute hit ratio at the evaluations in [$1, $2], for charts and timelines: every one
-- when there are at most $3, else at most $3 points, each the lowest ratio of its stretch of
-- consecutive evaluations (a dip is never averaged away) with its time and requests, or the
-- stretch's first evaluation when it had no traffic. There is an evaluation every minute of
-- the data's range (`hit_ratio_5m` keeps those with requests), so the stretches are counted
-- in minutes: no numbering of millions of rows for a whole history.
WITH b AS (
    SELECT greatest(ceil_minute(CAST($1 AS TIMESTAMP)), first_eval) AS lo_e,
           least(date_trunc('minute', CAST($2 AS TIMESTAMP)), last_eval) AS hi_e
    FROM evaluation_range
),
evals AS (SELECT lo_e, hi_e, datediff('minute', lo_e, hi_e) + 1 AS minutes FROM b WHERE lo_e <= hi_e),
per AS (
    SELECT lo_e, hi_e, minutes, greatest(1, ceil(minutes / CAST($3 AS DOUBLE)))::BIGINT AS n FROM evals
),
stretches AS (
    SELECT s.s AS stretch, per.lo_e + to_minutes(s.s * per.n) AS first_eval
    FROM per, range(0, (per.minutes - 1) // per.n + 1) s(s)
),
h AS (
    SELECT datediff('minute', per.lo_e, h.eval_time) // per.n AS stretch, h.eval_time, h.hit_ratio, h.requests
    FROM hit_ratio_5m h, per
    WHERE h.eval_time >= per.lo_e AND h.eval_time <= per.hi_e
),
lowest AS (
    SELECT stretch, arg_min(eval_time, (hit_ratio, eval_time)) AS eval_time, min(hit_ratio) AS hit_ratio,
           arg_min(requests, (hit_ratio, eval_time)) AS requests
    FROM h GROUP BY stretch
),
points AS (
    SELECT coalesce(l.eval_time, s.first_eval) AS eval_time, l.hit_ratio, coalesce(l.requests, 0) AS requests
    FROM stretches s LEFT JOIN lowest l USING (stretch)
)
SELECT strftime(eval_time, '%Y-%m-%dT%H:%M:%S.%fZ') AS eval_time, hit_ratio, requests
FROM points
ORDER BY eval_time;
