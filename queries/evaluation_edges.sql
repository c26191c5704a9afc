-- The ends of the evaluations a session materialized (`hit_ratio_5m`, over a range: see
-- src/analysis/evaluations.rs) and whether each breaches the warning rule (the critical rule's
-- threshold is lower: its breaches are the warning's too). An alert period at an end may go on
-- past it, so the session widens the range until neither end breaches or the data ends there.
WITH h AS (
    SELECT eval_time, breaches(requests, hit_ratio, (SELECT slo_target FROM thresholds)) AS breach
    FROM hit_ratio_5m
)
SELECT coalesce(arg_min(breach, eval_time), false) AS first_breach,
       coalesce(arg_max(breach, eval_time), false) AS last_breach,
       strftime(min(eval_time), '%Y-%m-%dT%H:%M:%S.%fZ') AS first_eval,
       strftime(max(eval_time), '%Y-%m-%dT%H:%M:%S.%fZ') AS last_eval,
       (SELECT strftime(min(minute) + INTERVAL 1 MINUTE, '%Y-%m-%dT%H:%M:%S.%fZ') FROM request_minutes) AS data_first,
       (SELECT strftime(eval_time, '%Y-%m-%dT%H:%M:%S.%fZ') FROM last_evaluation) AS data_last
FROM h;
