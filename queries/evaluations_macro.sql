-- The 5-minute evaluations with `eval_time` in [lo, hi] that have requests: an evaluation at
-- the end of minute m sums minutes m-4 .. m of `request_minutes` (every feature set), so each
-- minute counts in the five evaluations after its start. What `evaluations_5m` keeps.
-- The bounds come from a one-row CTE, which DuckDB turns into a filter on the scan (bounds
-- written as expressions of `lo` are not pushed down when `lo` holds a subquery).
CREATE OR REPLACE MACRO evaluations_5m_of(lo, hi) AS TABLE
WITH b AS (SELECT lo AS lo, hi AS hi, lo - INTERVAL 5 MINUTE AS lo_m),
per_minute AS (
    SELECT r.minute, sum(r.hits) AS hits, sum(r.hits + r.misses) AS requests
    FROM request_minutes r, b
    WHERE r.minute >= b.lo_m AND r.minute < b.hi
    GROUP BY r.minute
),
spread AS (
    SELECT m.minute + to_minutes(k.k) AS eval_time, m.hits, m.requests
    FROM per_minute m, range(1, 6) k(k)
)
SELECT s.eval_time, sum(s.hits)::BIGINT AS hits, sum(s.requests)::BIGINT AS requests
FROM spread s, b
WHERE s.eval_time >= b.lo AND s.eval_time <= b.hi
GROUP BY s.eval_time;
