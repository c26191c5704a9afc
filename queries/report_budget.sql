-- Error budget: (1 - slo_target) of the requests over `budget_window_days` ending at `until`
-- ($1, $2), and the minutes of the report period ($3, $4) the 5-minute ratio was below target.
-- The period's burn rate is src/analysis/mod.rs's, from the period's totals, counted once.
WITH t AS (SELECT * FROM thresholds),
win AS (
    SELECT requests, misses
    FROM requests_between(CAST(? AS TIMESTAMP) - to_days((SELECT budget_window_days FROM thresholds)), CAST(? AS TIMESTAMP))
),
breach AS (
    SELECT count(*) AS minutes
    FROM hit_ratio_5m h, t
    WHERE h.eval_time > CAST(? AS TIMESTAMP) AND h.eval_time <= CAST(? AS TIMESTAMP)
      AND breaches(h.requests, h.hit_ratio, t.slo_target)
)
SELECT t.slo_target, t.budget_window_days,
       win.requests AS window_requests, win.misses AS window_misses,
       (1 - t.slo_target) * win.requests AS window_allowed_misses,
       CASE WHEN win.requests > 0 THEN win.misses / ((1 - t.slo_target) * win.requests) END AS window_consumed,
       breach.minutes AS breach_minutes
FROM t, win, breach;
