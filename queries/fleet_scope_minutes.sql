-- The per-minute figures of the hosts in scope, summed (every SLO view reads them: summed once
-- per scope, not per query), their 5-minute evaluations, and the ratios the previous scope's
-- questions materialized dropped (each materializes `hit_ratio_5m` of its range again).
CREATE OR REPLACE TABLE fleet_scoped_minutes AS
SELECT minute, feature_set,
       sum(hits)::BIGINT AS hits, sum(misses)::BIGINT AS misses,
       sum(hit_bytes)::BIGINT AS hit_bytes, sum(miss_bytes)::BIGINT AS miss_bytes,
       sum(latency_us)::BIGINT AS latency_us,
       min(first_ts) AS first_ts, max(last_ts) AS last_ts
FROM fleet_minutes
WHERE in_scope(host)
GROUP BY minute, feature_set;
-- Its 5-minute evaluations (queries/evaluations_macro.sql), from those.
CREATE OR REPLACE TABLE fleet_scoped_evaluations AS
SELECT * FROM evaluations_5m_of('-infinity'::TIMESTAMP, 'infinity'::TIMESTAMP);
DROP VIEW IF EXISTS temp.hit_ratio_5m;
