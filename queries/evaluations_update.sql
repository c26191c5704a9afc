-- Recomputes the evaluations whose window holds a minute a commit added to (staged in
-- `evaluations_stage`): the five after each such minute's start, each from the five minutes
-- before it (`evaluations_5m_of`'s window, queries/evaluations_macro.sql). Only those minutes
-- of `request_minutes` are read, however far apart the staged ones are (a late line in a
-- commit of new ones: 11 ms at 100M lines, where one range from the first to the last
-- computed every evaluation in 0.55-0.68 s). Figures only grow, so no evaluation has to go.
INSERT OR REPLACE INTO evaluations_5m
WITH evals AS (
    SELECT DISTINCT s.minute + to_minutes(k.k) AS eval_time FROM evaluations_stage s, range(1, 6) k(k)
),
needed AS (
    SELECT DISTINCT e.eval_time - to_minutes(k.k) AS minute FROM evals e, range(1, 6) k(k)
),
per_minute AS (
    SELECT r.minute, sum(r.hits) AS hits, sum(r.hits + r.misses) AS requests
    FROM request_minutes r SEMI JOIN needed n ON r.minute = n.minute
    GROUP BY r.minute
)
SELECT e.eval_time, sum(m.hits)::BIGINT AS hits, sum(m.requests)::BIGINT AS requests
FROM evals e JOIN per_minute m ON m.minute >= e.eval_time - INTERVAL 5 MINUTE AND m.minute < e.eval_time
GROUP BY e.eval_time;
DELETE FROM evaluations_stage;
