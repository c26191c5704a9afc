-- episodes: what an engineer would name (new-symbol onboarding, invalidation storm, config
-- change, thrashing, too-short retention, disk full, memory pressure, manifest outage, external
-- deletion), with start, end, the misses they explain, symbols, keys and evidence lines.
-- Thresholds: the `thresholds` view.
--
-- 1. Signals: the events that cause an episode of each kind (invalidations, config changes,
--    capacity changes and capacity clean-ups, retention clean-ups, write failures, compute
--    failures and limit changes, manifest lock and release, missing files, first requests of
--    new symbols). Signals of one kind closer than `episode_gap_minutes` form one cluster.
-- 2. The episode's misses: misses whose inferred cause (the `miss_causes` table) belongs to
--    the kind, from the cluster's start to `episode_tail_minutes` after its last signal.
-- 3. start = the first signal (or miss); end = the last signal, or the time by which 95% of the
--    misses had happened if later. Clusters with fewer than `episode_min_misses` misses (or,
--    for storms, fewer than `storm_min_invalidations` invalidations) are not episodes.
--
-- `episode_clusters_in(lo, hi)` reads only the signals of [lo, hi) and the misses up to the
-- tail after them: every cluster, with `is_episode` and, for episodes, their evidence lines.
-- A cluster that began before `lo` starts at `lo` there. `episodes_in(lo, hi)` is its
-- episodes; `episodes_full` every episode of the history, the reference.
--
-- The ingester keeps the clusters that can no longer change (`episode_clusters`, from each
-- kind's `episode_state.frontier` on: src/ingest/episodes.rs), so `episodes_kept_in` and the
-- `episodes` view read them and find only the open ones from the signals.

-- The events an episode is found from, and those that decide what an invalidation was.
CREATE OR REPLACE MACRO episode_event(event) AS
    event IN ('invalidation', 'config_change', 'capacity_change', 'capacity_cleanup', 'cleanup',
          'write_failed', 'compute_failed', 'compute_limit_change', 'manifest_unavailable',
          'manifest_available', 'missing_file', 'market_data_update', 'miss');
CREATE OR REPLACE MACRO episode_follower(event) AS event IN ('market_data_update', 'config_change', 'miss');

-- Where the open clusters of kind `k` begin (`episode_state`): its own row's frontier, else
-- the frontier of kinds without a row, else (nothing kept) the beginning. Pass a qualified
-- column (`c.kind`): a bare `kind` would name the state's own column here.
CREATE OR REPLACE MACRO episode_frontier_of(k) AS
    coalesce((SELECT s.frontier FROM episode_state s WHERE s.kind = k),
             (SELECT s.frontier FROM episode_state s WHERE s.kind = ''),
             '-infinity'::TIMESTAMP);

-- How long after a cluster's last signal the data must go on for it to be closed.
CREATE OR REPLACE MACRO episode_settle_after() AS
    (SELECT to_minutes(greatest(episode_gap_minutes, episode_tail_minutes)) FROM thresholds);

CREATE OR REPLACE MACRO episode_clusters_in(lo, hi) AS TABLE
WITH t AS (SELECT * FROM thresholds),
-- The bounds as columns of a one-row table: DuckDB turns comparisons with them into filters
-- on the scans even when `lo` holds subqueries (a report's context, the kept frontiers).
b AS (SELECT lo AS lo, hi AS hi, hi + to_minutes((SELECT episode_tail_minutes FROM thresholds)) AS tail_end),
raw_signals AS (
    SELECT e.ts, e.event, e.file_id, e.line_no, e.rowid AS row_id
    FROM event_rows e, b
    WHERE episode_event(e.event) AND e.ts >= b.lo AND e.ts < b.hi
),
ordered AS (
    SELECT *, row_number() OVER (ORDER BY ts, file_id, line_no) AS seq FROM raw_signals
),
-- An invalidation's cause: what followed it (market_data_update, config_change or a miss),
-- found as queries/classify_rows.sql finds it.
followed AS (
    SELECT i.seq, f.event AS followed_by
    FROM (SELECT seq FROM ordered WHERE event = 'invalidation') i
    ASOF LEFT JOIN (SELECT seq, event FROM ordered WHERE episode_follower(event)) f
        ON i.seq < f.seq
),
new_symbols AS (
    SELECT m.ts, m.file_id, m.line_no FROM miss_causes m, b
    WHERE m.cause = 'new_symbol' AND m.ts >= b.lo AND m.ts < b.hi
),
signals AS (
    SELECT o.seq, o.ts, o.event, o.file_id, o.line_no, o.row_id,
           CASE
               WHEN o.event = 'invalidation' AND f.followed_by = 'config_change' THEN 'config_change'
               WHEN o.event = 'invalidation' THEN 'invalidation_storm'
               WHEN o.event = 'config_change' THEN 'config_change'
               WHEN o.event IN ('capacity_change', 'capacity_cleanup') THEN 'thrashing'
               WHEN o.event = 'cleanup' THEN 'retention'
               WHEN o.event = 'write_failed' THEN 'disk_full'
               WHEN o.event IN ('compute_failed', 'compute_limit_change') THEN 'memory_pressure'
               WHEN o.event IN ('manifest_unavailable', 'manifest_available') THEN 'manifest_outage'
               WHEN o.event = 'missing_file' THEN 'external_deletion'
               WHEN o.event = 'miss' THEN 'new_symbols'
           END AS kind
    FROM ordered o
    LEFT JOIN followed f USING (seq)
    LEFT JOIN new_symbols n ON n.ts = o.ts AND n.file_id = o.file_id AND n.line_no = o.line_no
    WHERE o.event NOT IN ('miss', 'market_data_update') OR n.line_no IS NOT NULL
),
clusters AS (
    SELECT kind, grp, min(ts) AS signal_start, max(ts) AS signal_end,
           count(*) FILTER (WHERE event = 'invalidation') AS invalidations,
           arg_min(file_id, seq) AS signal_file_id, arg_min(line_no, seq) AS signal_line_no,
           arg_min(row_id, seq) AS signal_row
    FROM (
        SELECT s.*, sum(CASE WHEN prev_ts IS NULL OR ts - prev_ts > to_minutes(t.episode_gap_minutes) THEN 1 ELSE 0 END)
                        OVER (PARTITION BY kind ORDER BY seq) AS grp
        FROM (SELECT *, lag(ts) OVER (PARTITION BY kind ORDER BY seq) AS prev_ts FROM signals WHERE kind IS NOT NULL) s, t
    )
    GROUP BY kind, grp
),
episode_misses AS (
    SELECT m.ts, m.symbol, m.key, m.cause, m.file_id, m.line_no, c.kind
    FROM miss_causes m JOIN episode_causes c USING (cause), b
    WHERE m.ts >= b.lo AND m.ts <= b.tail_end
),
members AS (
    -- Each miss belongs to the last cluster of its kind that began at or before it (the
    -- clusters of a kind follow each other: the next one's start bounds it), if it came
    -- within the tail of that cluster's last signal. An as-of join: a range join of every
    -- miss with every cluster of its kind grew with their product (25 s over a month).
    SELECT b.kind, b.grp, m.ts, m.symbol, m.key, m.cause, m.file_id, m.line_no
    FROM episode_misses m
    ASOF JOIN clusters b ON m.kind = b.kind AND m.ts >= b.signal_start, t
    WHERE m.ts <= b.signal_end + to_minutes(t.episode_tail_minutes)
),
agg AS (
    SELECT kind, grp, count(*) AS misses, quantile_disc(ts, 0.95) AS p95_miss, min(ts) AS first_miss,
           max(ts) AS last_miss, count(DISTINCT key) AS keys,
           list(DISTINCT symbol ORDER BY symbol) FILTER (WHERE symbol IS NOT NULL) AS symbols,
           list(DISTINCT cause ORDER BY cause) AS causes,
           arg_min(file_id, (ts, file_id, line_no)) AS miss_file_id,
           arg_min(line_no, (ts, file_id, line_no)) AS miss_line_no
    FROM members
    GROUP BY kind, grp
),
clustered AS MATERIALIZED (
    SELECT b.kind,
           least(b.signal_start, a.first_miss) AS start,
           greatest(b.signal_end, a.p95_miss) AS "end",
           coalesce(a.misses, 0) AS misses, coalesce(a.keys, 0) AS keys,
           coalesce(len(a.symbols), 0) AS n_symbols, a.symbols, a.causes,
           CASE WHEN b.kind IN ('new_symbols', 'invalidation_storm', 'config_change') THEN 'expected_churn'
                ELSE 'actionable' END AS runbook,
           b.signal_start, b.signal_end, b.signal_file_id, b.signal_line_no, b.signal_row,
           a.first_miss, a.miss_file_id, a.miss_line_no,
           a.last_miss, b.invalidations,
           coalesce(a.misses, 0) >= t.episode_min_misses
               AND (b.kind <> 'invalidation_storm' OR b.invalidations >= t.storm_min_invalidations) AS is_episode
    FROM clusters b LEFT JOIN agg a USING (kind, grp), t
),
found AS (SELECT * FROM clustered WHERE is_episode),
-- The evidence lines: the few episodes' first signal and first miss. Their log text is read
-- by row only: a join on time, file and line decompressed the text of every row between the
-- first and the last episode (a second over 173 days); the first misses' rows are found first
-- from the columns that place them.
miss_rows AS MATERIALIZED (
    SELECT DISTINCT e.rowid AS row_id, e.ts, e.file_id, e.line_no
    FROM found f JOIN event_rows e ON e.ts = f.first_miss AND e.file_id = f.miss_file_id AND e.line_no = f.miss_line_no
),
texts AS MATERIALIZED (
    SELECT rowid AS row_id, raw FROM event_rows
    WHERE rowid IN (SELECT signal_row FROM found UNION ALL SELECT row_id FROM miss_rows)
)
SELECT f.kind, f.start, f."end", f.misses, f.keys, f.n_symbols, f.symbols, f.causes, f.runbook,
       fs.raw AS first_signal, f.signal_file_id, f.signal_line_no,
       fm.raw AS first_miss_line, f.miss_file_id, f.miss_line_no,
       f.first_miss, f.last_miss, f.invalidations,
       f.signal_start, f.signal_end, f.is_episode
FROM clustered f
LEFT JOIN texts fs ON f.is_episode AND fs.row_id = f.signal_row
LEFT JOIN miss_rows mr ON f.is_episode AND mr.ts = f.first_miss AND mr.file_id = f.miss_file_id AND mr.line_no = f.miss_line_no
LEFT JOIN texts fm ON fm.row_id = mr.row_id;

-- The episodes of [lo, hi) found from the signals (every column of the `episodes` view).
CREATE OR REPLACE MACRO episodes_in(lo, hi) AS TABLE
SELECT * EXCLUDE (signal_start, signal_end, is_episode) FROM episode_clusters_in(lo, hi)
WHERE is_episode
ORDER BY start, kind;

-- Episodes of [lo, hi) as `episodes_in` finds them, from the clusters the ingester closed
-- and the open ones found from the signals after each kind's frontier. A closed episode is
-- whole even when it began before `lo`.
CREATE OR REPLACE MACRO episodes_kept_in(lo, hi) AS TABLE
SELECT * FROM (
    SELECT * EXCLUDE (signal_start, signal_end, is_episode)
    FROM episode_clusters
    WHERE is_episode AND "end" >= lo AND start < hi
    UNION ALL
    SELECT * FROM episodes_in(greatest(lo, (SELECT coalesce(min(frontier), '-infinity'::TIMESTAMP) FROM episode_state)), hi) e
    WHERE e.start >= episode_frontier_of(e.kind)
)
ORDER BY start, kind;

CREATE OR REPLACE VIEW episodes_full AS
SELECT * FROM episodes_in('-infinity'::TIMESTAMP, 'infinity'::TIMESTAMP);

CREATE OR REPLACE VIEW episodes AS
SELECT * FROM episodes_kept_in('-infinity'::TIMESTAMP, 'infinity'::TIMESTAMP);
