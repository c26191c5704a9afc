-- What the classification of misses reads about each row of `classify_input`: the rows it
-- reads in order (`seq`), each with the evidence before it. Shared by the full-history
-- reference (`miss_causes_full`: the input is every event) and the ingester's incremental
-- step (queries/classify_step.sql: the input is a commit's rows plus the rows of the history
-- they need, carried in `classify_carry`). `classify_input` has the columns of
-- `classify_batch` plus `seq`, `is_new` (a row to classify, not a carried one), the roles a
-- carried row plays (`for_key`, `for_slot`, `for_symbol`, `for_manifest`; true for new rows)
-- and, for a carried row, its `followed_by` and `summary` if they were already known.
--
-- Evidence, strongest first (the causes: queries/classify_causes.sql):
--   1. the manifest was unavailable (last manifest_unavailable/available event before it);
--   2. the key's own history (previous miss/eviction/invalidation/missing-file event of the
--      same key; failure lines belong to the miss that follows them, which carries outcome);
--   3. the slot's history (the previous key in the same symbol/feature set/range: its
--      invalidation line's reason, else its configuration or market-data version);
--   4. the symbol's history (never seen before: new symbol), else a new key.
--
-- The cost is in sorting rows (a step runs on one core while the next lines are parsed), so
-- each window or as-of join sorts only the few columns it needs, over the rows it concerns,
-- and the evidence is computed for the new misses only (every other row is read for the
-- rows carried to the next step: queries/classify_carry_next.sql).
WITH
-- What followed each invalidation: an eager one is followed by its summary line
-- (market_data_update or config_change); a lazy one (found stale at request time) by the miss
-- that replaces it, whose versions tell. `followed_by` is the next of these three events.
invalidation_followers AS (
    SELECT i.seq, f.event AS followed_by
    FROM (SELECT seq FROM classify_input WHERE event = 'invalidation' AND followed_by IS NULL) i
    ASOF LEFT JOIN (SELECT seq, event FROM classify_input WHERE event IN ('market_data_update', 'config_change', 'miss')) f
        ON i.seq < f.seq
),
-- Which clean-up each eviction belongs to: the next capacity_cleanup or cleanup summary line.
eviction_summaries AS (
    SELECT e.seq, s.event AS summary
    FROM (SELECT seq FROM classify_input WHERE event = 'eviction' AND summary IS NULL) e
    ASOF LEFT JOIN (SELECT seq, event FROM classify_input WHERE event IN ('capacity_cleanup', 'cleanup')) s
        ON e.seq < s.seq
),
-- The first miss or warm-up of each symbol.
symbol_firsts AS (
    SELECT min(seq) AS seq FROM classify_input
    WHERE event IN ('miss', 'warm_fill') AND (is_new OR for_symbol)
    GROUP BY symbol
),
resolved AS (
    SELECT e.* REPLACE (coalesce(e.followed_by, i.followed_by) AS followed_by,
                        coalesce(e.summary, s.summary) AS summary),
           e.seq IN (SELECT seq FROM symbol_firsts) AS symbol_first,
           e.key IS NOT NULL
               AND e.event IN ('miss', 'eviction', 'invalidation', 'missing_file', 'warm_fill')
               AND coalesce(e.outcome, '') <> 'uncached' AND (e.is_new OR e.for_key) AS in_key,
           e.slot IS NOT NULL AND e.config IS NOT NULL
               AND e.event IN ('miss', 'invalidation', 'warm_fill', 'eviction')
               AND coalesce(e.outcome, '') <> 'uncached' AND (e.is_new OR e.for_slot) AS in_slot
    FROM classify_input e
    LEFT JOIN invalidation_followers i USING (seq)
    LEFT JOIN eviction_summaries s USING (seq)
),
-- The last manifest event before each new miss.
manifest AS (
    SELECT m.seq, mm.event AS manifest_state
    FROM (SELECT seq FROM classify_input WHERE event = 'miss' AND is_new) m
    ASOF JOIN (SELECT seq, event FROM classify_input WHERE event IN ('manifest_unavailable', 'manifest_available')) mm
        ON m.seq > mm.seq
),
-- The key's previous event, for each new miss.
keyed AS (
    SELECT seq,
           lag(event) OVER w AS prev_event,
           lag(outcome) OVER w AS prev_outcome,
           lag(reason) OVER w AS prev_reason,
           lag(summary) OVER w AS prev_eviction_summary
    FROM resolved
    WHERE in_key
    WINDOW w AS (PARTITION BY key ORDER BY seq)
    QUALIFY event = 'miss' AND is_new
),
-- The slot's history: events that say which configuration and data version their key had.
-- A run is a stretch of one key's events in the slot; its first row's lagged values are the
-- last event of another key before it.
slot_hist AS (
    SELECT seq, slot, event, is_new,
           lag(seq) OVER w IS NULL OR key IS DISTINCT FROM lag(key) OVER w AS slot_run_start,
           lag(seq) OVER w AS slot_prev_seq,
           lag(config) OVER w AS lag_config,
           lag(data_version) OVER w AS lag_data_version,
           lag(event) OVER w AS lag_event,
           lag(reason) OVER w AS lag_reason,
           CASE WHEN lag(event) OVER w IS NOT NULL THEN coalesce(lag(followed_by) OVER w, '-') END AS lag_followed_by
    FROM resolved
    WHERE in_slot
    WINDOW w AS (PARTITION BY slot ORDER BY seq)
),
-- For each new miss: the latest earlier event of another key in the same slot, which is
-- the last event before the current run of its key: the lagged values on the run's first row.
slotted AS (
    SELECT m.seq, r.lag_config AS slot_prev_config, r.lag_data_version AS slot_prev_data_version,
           r.lag_event AS slot_prev_event, r.lag_reason AS slot_prev_reason,
           r.lag_followed_by AS slot_prev_followed_by
    FROM (SELECT seq, slot FROM slot_hist WHERE event = 'miss' AND is_new) m
    ASOF JOIN (SELECT * FROM slot_hist WHERE slot_run_start) r ON m.slot = r.slot AND m.seq >= r.seq
)
SELECT r.*, h.slot_run_start, h.slot_prev_seq, mf.manifest_state,
       k.prev_event, k.prev_outcome, k.prev_reason, k.prev_eviction_summary,
       sl.slot_prev_config, sl.slot_prev_data_version, sl.slot_prev_event,
       sl.slot_prev_reason, sl.slot_prev_followed_by
FROM resolved r
LEFT JOIN slot_hist h USING (seq)
LEFT JOIN manifest mf USING (seq)
LEFT JOIN keyed k USING (seq)
LEFT JOIN slotted sl USING (seq)
