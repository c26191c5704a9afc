-- miss_causes: every miss with a cause inferred from the sequence of events alone. The
-- engine's own `reason` is shown beside it (`logged_reason`) but never read to decide.
--
-- Order: by time, then file and line. Evidence, strongest first:
--   1. the manifest was unavailable (last manifest_unavailable/available event before it);
--   2. the key's own history (previous miss/eviction/invalidation/missing-file event of the
--      same key; failure lines belong to the miss that follows them, which carries outcome);
--   3. the slot's history (the previous key in the same symbol/feature set/range: its
--      invalidation line's reason, else its configuration or market-data version);
--   4. the symbol's history (never seen before: new symbol), else a new key.
-- Logs without keys (e.g. the Python trading system) fall back to the symbol's history and
-- say so in `basis`.
CREATE OR REPLACE VIEW ordered_events AS
SELECT *, row_number() OVER (ORDER BY ts, file_id, line_no) AS seq
FROM events;

-- Everything but hits, in order: what the classification and the episodes read. A hit never
-- explains a miss (the first event of a key or a symbol is always a miss or a warm-up), and
-- leaving the 90%+ of hits out makes the sort ten times smaller. Every event that is not a
-- hit is in `event_rows` (see schema.sql).
CREATE OR REPLACE VIEW signal_events AS
SELECT e.*, o.seq
FROM (
    -- Sort narrow rows only, then fetch the wide ones.
    SELECT rowid AS rid, row_number() OVER (ORDER BY ts, file_id, line_no) AS seq
    FROM event_rows
    WHERE event <> 'hit'
) o
JOIN (SELECT rowid AS rid, * FROM event_rows WHERE event <> 'hit') e USING (rid);

-- What caused each invalidation: an eager one is followed by its summary line
-- (market_data_update or config_change); a lazy one (found stale at request time) by the miss
-- that replaces it, whose versions tell. `followed_by` is the next of these three events.
-- The episodes read it too. Looking for the next marker row is written as a running count
-- plus a join (linear), not as first_value IGNORE NULLS over an unbounded frame.
CREATE OR REPLACE VIEW invalidation_followers AS
WITH marked AS (
    SELECT seq, event,
           sum(CASE WHEN event IN ('market_data_update', 'config_change', 'miss') THEN 1 ELSE 0 END)
               OVER (ORDER BY seq ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS n_followers
    FROM signal_events
    WHERE event IN ('invalidation', 'market_data_update', 'config_change', 'miss')
),
followers AS (
    SELECT event, row_number() OVER (ORDER BY seq) AS n FROM marked
    WHERE event IN ('market_data_update', 'config_change', 'miss')
)
SELECT m.seq, f.event AS followed_by
FROM marked m LEFT JOIN followers f ON f.n = m.n_followers + 1
WHERE m.event = 'invalidation';

CREATE OR REPLACE VIEW miss_causes AS
WITH ev AS (
    -- Narrow rows for the windows; the raw line is joined back at the end.
    SELECT seq, ts, event, symbol, feature_set, key, slot, outcome, config, data_version, reason
    FROM signal_events
    WHERE event IN ('miss', 'eviction', 'invalidation', 'missing_file', 'warm_fill',
                    'manifest_unavailable', 'manifest_available', 'capacity_cleanup', 'cleanup',
                    'market_data_update', 'config_change')
),
-- Window functions that look for the previous or next marker row are written as running
-- counts plus a join (linear), not as first/last_value IGNORE NULLS over unbounded frames.
marked AS (
    SELECT *,
           sum(CASE WHEN event IN ('capacity_cleanup', 'cleanup') THEN 1 ELSE 0 END)
               OVER (ORDER BY seq ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS n_summaries,
           sum(CASE WHEN event IN ('manifest_unavailable', 'manifest_available') THEN 1 ELSE 0 END)
               OVER (ORDER BY seq ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS n_manifest
    FROM ev
),
summaries AS (
    SELECT event, row_number() OVER (ORDER BY seq) AS n FROM ev
    WHERE event IN ('capacity_cleanup', 'cleanup')
),
manifest_marks AS (
    SELECT event, row_number() OVER (ORDER BY seq) AS n FROM ev
    WHERE event IN ('manifest_unavailable', 'manifest_available')
),
-- Which clean-up each eviction belongs to: the next capacity_cleanup or cleanup summary line.
eviction_kind AS (
    SELECT m.seq, s.event AS summary
    FROM marked m LEFT JOIN summaries s ON s.n = m.n_summaries + 1
    WHERE m.event = 'eviction'
),
state AS (
    SELECT m.seq, m.ts, m.event, m.symbol, m.feature_set, m.key, m.slot, m.outcome, m.config,
           m.data_version, m.reason,
           mm.event AS manifest_state,
           min(CASE WHEN m.event IN ('miss', 'warm_fill') THEN m.seq END)
               OVER (PARTITION BY m.symbol) AS symbol_first_seq
    FROM marked m
    LEFT JOIN manifest_marks mm
           ON mm.n = m.n_manifest - CASE WHEN m.event IN ('manifest_unavailable', 'manifest_available') THEN 1 ELSE 0 END
),
keyed AS (
    SELECT k.seq, k.key, k.event,
           lag(k.event) OVER w AS prev_event,
           lag(k.outcome) OVER w AS prev_outcome,
           lag(k.reason) OVER w AS prev_reason,
           lag(e.summary) OVER w AS prev_eviction_summary
    FROM ev k LEFT JOIN eviction_kind e USING (seq)
    WHERE k.key IS NOT NULL
      AND k.event IN ('miss', 'eviction', 'invalidation', 'missing_file', 'warm_fill')
      AND coalesce(k.outcome, '') <> 'uncached'
    WINDOW w AS (PARTITION BY k.key ORDER BY k.seq)
),
slot_hist AS (
    -- The slot's history: events that say which configuration and data version their key had.
    SELECT h.seq, h.slot, h.key, h.event, h.config, h.data_version, i.followed_by,
           lag(h.reason) OVER (PARTITION BY h.slot ORDER BY h.seq) AS lag_reason,
           h.key IS DISTINCT FROM lag(h.key) OVER (PARTITION BY h.slot ORDER BY h.seq) AS new_run,
           lag(h.config) OVER (PARTITION BY h.slot ORDER BY h.seq) AS lag_config,
           lag(h.data_version) OVER (PARTITION BY h.slot ORDER BY h.seq) AS lag_data_version,
           lag(h.event) OVER (PARTITION BY h.slot ORDER BY h.seq) AS lag_event,
           lag(i.followed_by) OVER (PARTITION BY h.slot ORDER BY h.seq) AS lag_followed_by
    FROM ev h LEFT JOIN invalidation_followers i USING (seq)
    WHERE h.slot IS NOT NULL AND h.config IS NOT NULL
      AND h.event IN ('miss', 'invalidation', 'warm_fill', 'eviction')
      AND coalesce(h.outcome, '') <> 'uncached'
),
slot_runs AS (
    SELECT *, sum(CASE WHEN new_run THEN 1 ELSE 0 END)
                  OVER (PARTITION BY slot ORDER BY seq ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS run
    FROM slot_hist
),
slotted AS (
    -- For each miss: the latest earlier event of another key in the same slot, which is the
    -- last event before the current run of this key (runs of one key are consecutive): the
    -- lagged values on the run's first row.
    SELECT seq, event,
           first_value(lag_config) OVER w AS prev_config,
           first_value(lag_data_version) OVER w AS prev_data_version,
           first_value(lag_event) OVER w AS prev_event,
           first_value(lag_reason) OVER w AS prev_reason,
           first_value(CASE WHEN lag_event IS NOT NULL THEN coalesce(lag_followed_by, '-') END) OVER w AS prev_followed_by
    FROM slot_runs
    WINDOW w AS (PARTITION BY slot, run ORDER BY seq ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
)
SELECT s.ts, s.symbol, s.feature_set, s.key, s.slot,
       CASE
           WHEN s.manifest_state = 'manifest_unavailable' THEN 'manifest_unavailable'
           WHEN s.key IS NULL AND s.seq = s.symbol_first_seq THEN 'new_symbol'
           WHEN s.key IS NULL THEN 'unknown'
           WHEN k.prev_event = 'missing_file' THEN 'missing_file'
           WHEN k.prev_event IN ('miss', 'warm_fill') AND k.prev_outcome = 'write_failed' THEN 'write_failed'
           WHEN k.prev_event IN ('miss', 'warm_fill') AND k.prev_outcome = 'compute_failed' THEN 'compute_failed'
           WHEN k.prev_event = 'eviction' AND k.prev_eviction_summary = 'capacity_cleanup' THEN 'evicted_capacity'
           WHEN k.prev_event = 'eviction' AND k.prev_eviction_summary = 'cleanup' THEN 'evicted_retention'
           WHEN k.prev_event = 'eviction' THEN 'evicted'
           -- An invalidation line says why (reason=market_data|config): the key's own first,
           -- then the slot's previous key's. This holds across an engine restart, when what
           -- follows the invalidation is no longer its summary line.
           WHEN k.prev_event = 'invalidation' AND k.prev_reason = 'market_data' THEN 'invalidated_data'
           WHEN k.prev_event = 'invalidation' AND k.prev_reason = 'config' THEN 'invalidated_config'
           WHEN k.prev_event IS NULL AND sl.prev_event = 'invalidation' AND sl.prev_reason = 'market_data' THEN 'invalidated_data'
           WHEN k.prev_event IS NULL AND sl.prev_event = 'invalidation' AND sl.prev_reason = 'config' THEN 'invalidated_config'
           -- Logs whose invalidation lines carry no reason: what followed the invalidation,
           -- then the versions.
           WHEN (k.prev_event IS NULL OR k.prev_event = 'invalidation') AND sl.prev_event = 'invalidation'
                AND sl.prev_followed_by = 'market_data_update' THEN 'invalidated_data'
           WHEN (k.prev_event IS NULL OR k.prev_event = 'invalidation') AND sl.prev_event = 'invalidation'
                AND sl.prev_followed_by = 'config_change' THEN 'invalidated_config'
           WHEN (k.prev_event IS NULL OR k.prev_event = 'invalidation') AND sl.prev_config IS NOT NULL
                AND sl.prev_config <> s.config THEN 'invalidated_config'
           WHEN (k.prev_event IS NULL OR k.prev_event = 'invalidation') AND sl.prev_data_version IS NOT NULL
                AND sl.prev_data_version <> s.data_version THEN 'invalidated_data'
           WHEN k.prev_event = 'invalidation' THEN 'invalidated'
           WHEN k.prev_event IS NULL AND s.seq = s.symbol_first_seq THEN 'new_symbol'
           WHEN k.prev_event IS NULL THEN 'new_key'
           ELSE 'unknown'
       END AS cause,
       CASE
           WHEN s.manifest_state = 'manifest_unavailable' THEN 'manifest state'
           WHEN s.key IS NULL THEN 'symbol history (the log has no cache keys)'
           WHEN k.prev_event IS NOT NULL THEN 'key history'
           WHEN sl.prev_config IS NOT NULL THEN 'slot history'
           ELSE 'symbol history'
       END AS basis,
       s.reason AS logged_reason,
       s.outcome, s.config, s.data_version, se.raw, se.file_id, se.line_no, s.seq
FROM state s
JOIN signal_events se USING (seq)
LEFT JOIN keyed k USING (seq)
LEFT JOIN (SELECT * FROM slotted WHERE event = 'miss') sl USING (seq)
WHERE s.event = 'miss';
