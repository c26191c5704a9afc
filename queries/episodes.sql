-- episodes: what an engineer would name (new-symbol onboarding, invalidation storm, config
-- change, thrashing, too-short retention, disk full, memory pressure, manifest outage, external
-- deletion), with start, end, the misses they explain, symbols, keys and evidence lines.
-- Thresholds: the `thresholds` view.
--
-- 1. Signals: the events that cause an episode of each kind (invalidations, config changes,
--    capacity changes and capacity clean-ups, retention clean-ups, write failures, compute
--    failures and limit changes, manifest lock and release, missing files, first requests of
--    new symbols). Signals of one kind closer than `episode_gap_minutes` form one cluster.
-- 2. The episode's misses: misses whose inferred cause belongs to the kind, from the cluster's
--    start to `episode_tail_minutes` after its last signal.
-- 3. start = the first signal (or miss); end = the last signal, or the time by which 95% of the
--    misses had happened if later. Clusters with fewer than `episode_min_misses` misses (or,
--    for storms, fewer than `storm_min_invalidations` invalidations) are not episodes.
CREATE OR REPLACE VIEW episode_signals AS
WITH tagged AS (
    -- An invalidation's cause: what followed it (`invalidation_followers`).
    SELECT o.seq, o.ts, o.event, m.cause AS cause_hint, i.followed_by
    FROM signal_events o
    LEFT JOIN miss_causes m USING (seq)
    LEFT JOIN invalidation_followers i USING (seq)
    WHERE o.event IN ('invalidation', 'config_change', 'capacity_change', 'capacity_cleanup', 'cleanup',
                      'write_failed', 'compute_failed', 'compute_limit_change', 'manifest_unavailable',
                      'manifest_available', 'missing_file', 'miss')
)
SELECT seq, ts, event,
       CASE
           WHEN event = 'invalidation' AND followed_by = 'config_change' THEN 'config_change'
           WHEN event = 'invalidation' THEN 'invalidation_storm'
           WHEN event = 'config_change' THEN 'config_change'
           WHEN event IN ('capacity_change', 'capacity_cleanup') THEN 'thrashing'
           WHEN event = 'cleanup' THEN 'retention'
           WHEN event = 'write_failed' THEN 'disk_full'
           WHEN event IN ('compute_failed', 'compute_limit_change') THEN 'memory_pressure'
           WHEN event IN ('manifest_unavailable', 'manifest_available') THEN 'manifest_outage'
           WHEN event = 'missing_file' THEN 'external_deletion'
           WHEN event = 'miss' AND cause_hint = 'new_symbol' THEN 'new_symbols'
       END AS kind
FROM tagged
WHERE event <> 'miss' OR cause_hint = 'new_symbol';

CREATE OR REPLACE VIEW episode_misses AS
SELECT m.*, c.kind
FROM miss_causes m LEFT JOIN episode_causes c USING (cause);

CREATE OR REPLACE VIEW episodes AS
WITH t AS (SELECT * FROM thresholds),
clusters AS (
    SELECT kind, grp, min(ts) AS signal_start, max(ts) AS signal_end,
           count(*) FILTER (WHERE event = 'invalidation') AS invalidations,
           min(seq) AS first_signal_seq
    FROM (
        SELECT s.*, sum(CASE WHEN prev_ts IS NULL OR ts - prev_ts > to_minutes(t.episode_gap_minutes) THEN 1 ELSE 0 END)
                        OVER (PARTITION BY kind ORDER BY seq) AS grp
        FROM (SELECT *, lag(ts) OVER (PARTITION BY kind ORDER BY seq) AS prev_ts FROM episode_signals WHERE kind IS NOT NULL) s, t
    )
    GROUP BY kind, grp
),
bounded AS (
    -- A cluster's misses stop at the next cluster of the same kind.
    SELECT c.*, lead(signal_start) OVER (PARTITION BY kind ORDER BY signal_start) AS next_start
    FROM clusters c
),
members AS (
    SELECT b.kind, b.grp, m.seq, m.ts, m.symbol, m.key, m.cause
    FROM bounded b, t
    JOIN episode_misses m ON m.kind = b.kind
     AND m.ts >= b.signal_start
     AND m.ts <= b.signal_end + to_minutes(t.episode_tail_minutes)
     AND (b.next_start IS NULL OR m.ts < b.next_start)
),
agg AS (
    SELECT kind, grp, count(*) AS misses, quantile_disc(ts, 0.95) AS p95_miss, min(ts) AS first_miss,
           max(ts) AS last_miss, count(DISTINCT key) AS keys,
           list(DISTINCT symbol ORDER BY symbol) FILTER (WHERE symbol IS NOT NULL) AS symbols,
           list(DISTINCT cause ORDER BY cause) AS causes,
           min(seq) AS first_miss_seq
    FROM members
    GROUP BY kind, grp
)
SELECT b.kind,
       least(b.signal_start, a.first_miss) AS start,
       greatest(b.signal_end, a.p95_miss) AS "end",
       a.misses, a.keys, coalesce(len(a.symbols), 0) AS n_symbols, a.symbols, a.causes,
       CASE WHEN b.kind IN ('new_symbols', 'invalidation_storm', 'config_change') THEN 'expected_churn'
            ELSE 'actionable' END AS runbook,
       fs.raw AS first_signal, fs.file_id AS signal_file_id, fs.line_no AS signal_line_no,
       fm.raw AS first_miss_line, fm.file_id AS miss_file_id, fm.line_no AS miss_line_no,
       a.first_miss, a.last_miss, b.invalidations
FROM bounded b JOIN agg a USING (kind, grp)
LEFT JOIN signal_events fs ON fs.seq = b.first_signal_seq
LEFT JOIN signal_events fm ON fm.seq = a.first_miss_seq, t
WHERE a.misses >= t.episode_min_misses
  AND (b.kind <> 'invalidation_storm' OR b.invalidations >= t.storm_min_invalidations)
ORDER BY start, kind;
