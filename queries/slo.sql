-- SLO views over the requests (hits and misses), read from `request_minutes` (the per-minute
-- figures the ingester keeps): they cost what the period asked costs, not the history.
--
-- thresholds: every tunable number of the analysis, in one place (docs/analysis.md).
CREATE OR REPLACE VIEW thresholds AS
SELECT 0.95::DOUBLE AS slo_target,              -- FeatureStoreHitRatioLow below this...
       10    AS warning_for_minutes,     -- ...for this long
       0.80::DOUBLE AS critical_ratio,          -- FeatureStoreHitRatioCritical below this...
       5     AS critical_for_minutes,    -- ...for this long
       20    AS min_requests_5m,         -- no alert on fewer requests in 5 minutes (idle nights)
       30    AS budget_window_days,      -- error budget: (1 - slo_target) of requests over this window
       2     AS episode_gap_minutes,     -- signals (invalidations, failures, clean-ups, ...) closer than this are one episode
       15    AS episode_tail_minutes,    -- misses this long after the last signal still belong to it
       10    AS episode_min_misses,      -- smaller groups are not episodes
       100   AS storm_min_invalidations, -- an invalidation storm invalidates at least this many keys
       24    AS episode_context_hours;   -- a period's episodes are found from its signals and those of this long before it

-- An evaluation breaches a rule of `threshold` when its 5-minute window had enough requests
-- and a ratio below it (the alerts' rule, deploy/prometheus/featurestore-rules.yml).
CREATE OR REPLACE MACRO breaches(requests, hit_ratio, threshold) AS
    coalesce(requests >= (SELECT min_requests_5m FROM thresholds) AND hit_ratio < threshold, false);

CREATE OR REPLACE VIEW hit_ratio_1m AS
SELECT minute,
       sum(hits)::BIGINT AS hits,
       sum(misses)::BIGINT AS misses,
       sum(hits + misses)::BIGINT AS requests,
       sum(hits) / sum(hits + misses) AS hit_ratio
FROM request_minutes
GROUP BY minute;

-- The minute a time falls in, or the next one when it is not a minute's start.
CREATE OR REPLACE MACRO ceil_minute(t) AS
    CASE WHEN date_trunc('minute', t) = t THEN t ELSE date_trunc('minute', t) + INTERVAL 1 MINUTE END;

-- The data's first and last evaluation (the end of its first and last minute with requests):
-- the alerts' "now" is the last, whatever range a session materialized.
CREATE OR REPLACE VIEW evaluation_range AS
SELECT min(minute) + INTERVAL 1 MINUTE AS first_eval, max(minute) + INTERVAL 1 MINUTE AS last_eval
FROM request_minutes;

-- Requests, hits and misses in [lo, hi), exact to the microsecond: whole minutes from
-- `request_minutes`, the partial minutes at the two edges from `events`.
CREATE OR REPLACE MACRO requests_between(lo, hi) AS TABLE
WITH b AS (
    SELECT lo AS lo, hi AS hi,
           ceil_minute(lo) AS lo_m,
           date_trunc('minute', hi) AS hi_m
),
whole AS (
    SELECT sum(r.hits)::BIGINT AS hits, sum(r.misses)::BIGINT AS misses,
           min(r.first_ts) AS first_ts, max(r.last_ts) AS last_ts
    FROM request_minutes r, b
    WHERE r.minute >= b.lo_m AND r.minute < b.hi_m
),
-- The edges as two ranges of time, each bounded by columns of a one-row table, which DuckDB
-- turns into filters on the scans: they skip every row group outside the ranges. One range
-- minus the whole minutes read all 10M rows' times (0.2 s; 4 s at 100M), and bounds written
-- as expressions of `lo` were not pushed down when `lo` held a subquery (a budget's window).
edge_ranges AS (
    SELECT lo AS from1, least(lo_m, hi) AS until1, greatest(hi_m, lo_m) AS from2, hi AS until2 FROM b
),
edges AS (
    SELECT count(*) FILTER (WHERE e.event = 'hit') AS hits, count(*) FILTER (WHERE e.event = 'miss') AS misses,
           min(e.ts) AS first_ts, max(e.ts) AS last_ts
    FROM (SELECT e.event, e.ts FROM events e, edge_ranges r WHERE e.ts >= r.from1 AND e.ts < r.until1
          UNION ALL
          SELECT e.event, e.ts FROM events e, edge_ranges r WHERE e.ts >= r.from2 AND e.ts < r.until2) e
    WHERE e.event IN ('hit', 'miss')
)
SELECT coalesce(whole.hits, 0) + edges.hits AS hits,
       coalesce(whole.misses, 0) + edges.misses AS misses,
       coalesce(whole.hits, 0) + edges.hits + coalesce(whole.misses, 0) + edges.misses AS requests,
       least(whole.first_ts, edges.first_ts) AS first_ts,
       greatest(whole.last_ts, edges.last_ts) AS last_ts
FROM whole, edges;

-- The 5-minute ratio evaluated every minute, as Prometheus would: `eval_time` is the evaluation
-- time, the window is the five whole minutes before it. An evaluation whose window had no
-- request has no ratio and no row (Prometheus returns no sample for it either): minutes
-- missing between two rows had none. `hit_ratio_5m_between(lo, hi)`: the evaluations in
-- [lo, hi] (within the data's: from its first minute's end to its last's), read from
-- `evaluations_5m`, which the ingester keeps; a session materializes the range its question
-- needs (src/analysis/evaluations.rs), `hit_ratio_5m` is all of them.
CREATE OR REPLACE MACRO hit_ratio_5m_between(lo, hi) AS TABLE
WITH b AS (
    SELECT greatest(ceil_minute(lo), first_eval) AS lo_e, least(date_trunc('minute', hi), last_eval) AS hi_e
    FROM evaluation_range
)
SELECT e.eval_time, e.hits, e.requests, e.hits / e.requests AS hit_ratio
FROM evaluations_5m e, b
WHERE e.eval_time >= b.lo_e AND e.eval_time <= b.hi_e;

CREATE OR REPLACE VIEW hit_ratio_5m AS
SELECT * FROM hit_ratio_5m_between(TIMESTAMP '-infinity', TIMESTAMP 'infinity');

-- The runbook's two alerts with Prometheus semantics: pending from the first evaluation below
-- the threshold, firing once it has stayed below for the `for` duration, resolved at the first
-- evaluation back above (or with too little traffic).
CREATE OR REPLACE VIEW alerts AS
WITH rules AS (
    SELECT 1 AS rule, 'FeatureStoreHitRatioLow' AS alert, 'warning' AS severity, slo_target AS threshold,
           warning_for_minutes AS for_minutes, min_requests_5m FROM thresholds
    UNION ALL
    SELECT 2, 'FeatureStoreHitRatioCritical', 'critical', critical_ratio, critical_for_minutes, min_requests_5m FROM thresholds
),
-- The breaching evaluations of each rule. Evaluations come every minute (a missing one had no
-- request: no breach), so a run of consecutive breaching evaluations is a run of consecutive
-- minutes: each minute less its rank among the rule's breaches is the same for the whole run.
-- (Numbering every evaluation instead took 2 s over the 2.5M minutes of 4.7 years; the
-- breaches are few.) The ranks are numbered over the rule's number, the time and the ratio
-- alone: with the rules' names and thresholds beside them it took three times as long.
evals AS (
    SELECT r.rule, h.eval_time, h.hit_ratio
    FROM rules r JOIN hit_ratio_5m h ON breaches(h.requests, h.hit_ratio, r.threshold)
),
runs AS (
    SELECT *, eval_time - to_minutes(row_number() OVER (PARTITION BY rule ORDER BY eval_time)) AS grp
    FROM evals
),
-- A period's evaluations are consecutive minutes, every one a breach: its worst ratio is
-- theirs (a lookup of each period's minutes in every evaluation cost seconds over months).
periods AS (
    SELECT r.alert, r.severity, r.threshold, r.for_minutes, p.pending_since, p.last_breach, p.worst_ratio
    FROM (SELECT rule, min(eval_time) AS pending_since, max(eval_time) AS last_breach, min(hit_ratio) AS worst_ratio
          FROM runs GROUP BY rule, grp) p
    JOIN rules r USING (rule)
),
last_eval AS (SELECT last_eval AS eval_time FROM evaluation_range)
SELECT p.alert, p.severity, p.pending_since,
       CASE WHEN p.last_breach >= p.pending_since + to_minutes(p.for_minutes)
            THEN p.pending_since + to_minutes(p.for_minutes) END AS firing_since,
       CASE WHEN p.last_breach < l.eval_time THEN p.last_breach + INTERVAL 1 MINUTE END AS resolved_at,
       CASE WHEN p.last_breach < p.pending_since + to_minutes(p.for_minutes)
                THEN CASE WHEN p.last_breach < l.eval_time THEN 'inactive (never fired)' ELSE 'pending' END
            WHEN p.last_breach < l.eval_time THEN 'resolved'
            ELSE 'firing' END AS state,
       p.worst_ratio
FROM periods p CROSS JOIN last_eval l
ORDER BY p.pending_since, p.severity;
