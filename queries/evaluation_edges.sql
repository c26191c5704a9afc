-- Whether the evaluations a session materialized (`hit_ratio_5m`, over a range: see
-- src/analysis/evaluations.rs) must widen: an end that breaches the warning rule (the
-- critical rule's threshold is lower: its breaches are the warning's too) may be inside an
-- alert period that goes on past it, unless the data ends there.
WITH h AS (
    SELECT eval_time, breaches(requests, hit_ratio, (SELECT slo_target FROM thresholds)) AS breach
    FROM hit_ratio_5m
),
ends AS (
    SELECT arg_min(breach, eval_time) AS first_breach, min(eval_time) AS first_eval,
           arg_max(breach, eval_time) AS last_breach, max(eval_time) AS last_eval
    FROM h
)
SELECT coalesce(ends.first_breach AND ends.first_eval > r.first_eval, false) AS widen_earlier,
       coalesce(ends.last_breach AND ends.last_eval < r.last_eval, false) AS widen_later
FROM ends, evaluation_range r;
