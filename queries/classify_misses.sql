-- miss_causes: every miss with a cause inferred from the sequence of events alone. The
-- engine's own `reason` is shown beside it (`logged_reason`) but never read to decide.
--
-- Order: by time, then file and line. Evidence, strongest first:
--   1. the manifest was unavailable (last manifest_unavailable/available event before it);
--   2. the key's own history (previous miss/eviction/invalidation/missing-file event of the
--      same key; failure lines belong to the miss that follows them, which carries outcome);
--   3. the slot's history (the previous key in the same symbol/feature set/range, when its
--      configuration or market-data version differs);
--   4. the symbol's history (never seen before: new symbol), else a new key.
-- Logs without keys (e.g. the Python trading system) fall back to the symbol's history and
-- say so in `basis`.
CREATE OR REPLACE VIEW ordered_events AS
SELECT *, row_number() OVER (ORDER BY ts, file_id, line_no) AS seq
FROM events;

CREATE OR REPLACE VIEW miss_causes AS
WITH ev AS (
    SELECT seq, ts, event, symbol, feature_set, key, slot, outcome, config, data_version,
           reason, raw, file_id, line_no
    FROM ordered_events
    WHERE event IN ('miss', 'hit', 'eviction', 'invalidation', 'missing_file', 'warm_fill',
                    'manifest_unavailable', 'manifest_available', 'capacity_cleanup', 'cleanup',
                    'market_data_update', 'config_change')
),
-- What caused each invalidation: an eager one is followed by its summary line
-- (market_data_update or config_change); a lazy one (found stale at request time) by the miss
-- that replaces it, whose versions tell.
invalidation_kind AS (
    SELECT seq,
           first_value(CASE WHEN event IN ('market_data_update', 'config_change', 'miss') THEN event END IGNORE NULLS)
               OVER (ORDER BY seq ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS followed_by
    FROM ev
),
-- Which clean-up each eviction belongs to: the next capacity_cleanup or cleanup summary line.
eviction_kind AS (
    SELECT seq,
           first_value(CASE WHEN event IN ('capacity_cleanup', 'cleanup') THEN event END IGNORE NULLS)
               OVER (ORDER BY seq ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS summary
    FROM ev
),
state AS (
    SELECT ev.*,
           last_value(CASE WHEN event IN ('manifest_unavailable', 'manifest_available') THEN event END IGNORE NULLS)
               OVER (ORDER BY seq ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS manifest_state,
           min(CASE WHEN event IN ('miss', 'hit', 'warm_fill') THEN seq END)
               OVER (PARTITION BY symbol) AS symbol_first_seq
    FROM ev
),
keyed AS (
    SELECT k.seq, k.key, k.event,
           lag(k.event) OVER w AS prev_event,
           lag(k.outcome) OVER w AS prev_outcome,
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
           h.key IS DISTINCT FROM lag(h.key) OVER (PARTITION BY h.slot ORDER BY h.seq) AS new_run,
           lag(h.config) OVER (PARTITION BY h.slot ORDER BY h.seq) AS lag_config,
           lag(h.data_version) OVER (PARTITION BY h.slot ORDER BY h.seq) AS lag_data_version,
           lag(h.event) OVER (PARTITION BY h.slot ORDER BY h.seq) AS lag_event,
           lag(i.followed_by) OVER (PARTITION BY h.slot ORDER BY h.seq) AS lag_followed_by
    FROM ev h LEFT JOIN invalidation_kind i USING (seq)
    WHERE h.slot IS NOT NULL AND h.config IS NOT NULL
      AND h.event IN ('miss', 'invalidation', 'warm_fill', 'eviction')
      AND coalesce(h.outcome, '') <> 'uncached'
),
slotted AS (
    -- For each miss: the latest earlier event of another key in the same slot, which is the
    -- last event before the current run of this key (runs of one key are consecutive).
    SELECT seq,
           last_value(CASE WHEN new_run THEN lag_config END IGNORE NULLS) OVER w AS prev_config,
           last_value(CASE WHEN new_run THEN lag_data_version END IGNORE NULLS) OVER w AS prev_data_version,
           last_value(CASE WHEN new_run THEN lag_event END IGNORE NULLS) OVER w AS prev_event,
           last_value(CASE WHEN new_run THEN coalesce(lag_followed_by, '-') END IGNORE NULLS) OVER w AS prev_followed_by,
           event
    FROM slot_hist
    WINDOW w AS (PARTITION BY slot ORDER BY seq ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
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
       s.outcome, s.config, s.data_version, s.raw, s.file_id, s.line_no, s.seq
FROM state s
LEFT JOIN keyed k USING (seq)
LEFT JOIN (SELECT * FROM slotted WHERE event = 'miss') sl USING (seq)
WHERE s.event = 'miss';
