-- `cachescope doctor`'s figures from the events database, as one row: the latest 5-minute hit
-- ratio, the alerts firing now, and the failures and invalidations of the last hour of the log.
WITH latest AS (
    SELECT hit_ratio, strftime(eval_time, '%Y-%m-%dT%H:%M:%SZ') AS eval_time
    FROM hit_ratio_5m
    ORDER BY eval_time DESC
    LIMIT 1
),
firing AS (
    SELECT count(*) AS n, string_agg(alert, ', ') AS names
    FROM alerts
    WHERE resolved_at IS NULL AND firing_since IS NOT NULL
),
recent AS (
    SELECT count(*) FILTER (WHERE event = 'write_failed') AS write_failures,
           count(*) FILTER (WHERE event = 'compute_failed') AS compute_failures,
           count(*) FILTER (WHERE event = 'invalidation') AS invalidations
    FROM events
    WHERE ts >= (SELECT max(ts) FROM events) - INTERVAL 1 HOUR
)
SELECT (SELECT hit_ratio FROM latest) AS hit_ratio,
       (SELECT eval_time FROM latest) AS eval_time,
       firing.n AS alerts_firing,
       firing.names AS alerts_firing_names,
       recent.write_failures,
       recent.compute_failures,
       recent.invalidations,
       (SELECT storm_min_invalidations FROM thresholds) AS storm_min_invalidations
FROM firing, recent;
