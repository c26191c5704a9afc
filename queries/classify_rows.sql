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
-- Window functions that look for the previous or next marker row are written as running
-- counts plus a join (linear), not as first/last_value IGNORE NULLS over unbounded frames.
WITH ev AS (SELECT * FROM classify_input),
-- What followed each invalidation: an eager one is followed by its summary line
-- (market_data_update or config_change); a lazy one (found stale at request time) by the miss
-- that replaces it, whose versions tell. `followed_by` is the next of these three events.
fmarked AS (
    SELECT seq, event,
           sum(CASE WHEN event IN ('market_data_update', 'config_change', 'miss') THEN 1 ELSE 0 END)
               OVER (ORDER BY seq ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS n_followers
    FROM ev
    WHERE event IN ('invalidation', 'market_data_update', 'config_change', 'miss')
),
followers AS (
    SELECT event, row_number() OVER (ORDER BY seq) AS n FROM fmarked
    WHERE event IN ('market_data_update', 'config_change', 'miss')
),
invalidation_followers AS (
    SELECT m.seq, f.event AS followed_by
    FROM fmarked m LEFT JOIN followers f ON f.n = m.n_followers + 1
    WHERE m.event = 'invalidation'
),
marked AS (
    SELECT seq,
           sum(CASE WHEN event IN ('capacity_cleanup', 'cleanup') THEN 1 ELSE 0 END)
               OVER (ORDER BY seq ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS n_summaries,
           sum(CASE WHEN event IN ('manifest_unavailable', 'manifest_available') THEN 1 ELSE 0 END)
               OVER (ORDER BY seq ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
             - CASE WHEN event IN ('manifest_unavailable', 'manifest_available') THEN 1 ELSE 0 END AS n_manifest
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
resolved AS (
    SELECT e.* REPLACE (
               coalesce(e.followed_by, i.followed_by) AS followed_by,
               coalesce(e.summary, CASE WHEN e.event = 'eviction' THEN s.event END) AS summary),
           mm.event AS manifest_state,
           min(CASE WHEN e.event IN ('miss', 'warm_fill') AND (e.is_new OR e.for_symbol) THEN e.seq END)
               OVER (PARTITION BY e.symbol) AS symbol_first_seq,
           e.key IS NOT NULL
               AND e.event IN ('miss', 'eviction', 'invalidation', 'missing_file', 'warm_fill')
               AND coalesce(e.outcome, '') <> 'uncached' AND (e.is_new OR e.for_key) AS in_key,
           e.slot IS NOT NULL AND e.config IS NOT NULL
               AND e.event IN ('miss', 'invalidation', 'warm_fill', 'eviction')
               AND coalesce(e.outcome, '') <> 'uncached' AND (e.is_new OR e.for_slot) AS in_slot
    FROM ev e
    JOIN marked m USING (seq)
    LEFT JOIN summaries s ON s.n = m.n_summaries + 1
    LEFT JOIN manifest_marks mm ON mm.n = m.n_manifest
    LEFT JOIN invalidation_followers i USING (seq)
),
keyed AS (
    SELECT seq,
           lag(event) OVER w AS prev_event,
           lag(outcome) OVER w AS prev_outcome,
           lag(reason) OVER w AS prev_reason,
           lag(summary) OVER w AS prev_eviction_summary
    FROM resolved
    WHERE in_key
    WINDOW w AS (PARTITION BY key ORDER BY seq)
),
slot_hist AS (
    -- The slot's history: events that say which configuration and data version their key had.
    SELECT seq, slot,
           lag(reason) OVER w AS lag_reason,
           key IS DISTINCT FROM lag(key) OVER w AS new_run,
           lag(config) OVER w AS lag_config,
           lag(data_version) OVER w AS lag_data_version,
           lag(event) OVER w AS lag_event,
           lag(followed_by) OVER w AS lag_followed_by
    FROM resolved
    WHERE in_slot
    WINDOW w AS (PARTITION BY slot ORDER BY seq)
),
slot_runs AS (
    SELECT *, sum(CASE WHEN new_run THEN 1 ELSE 0 END)
                  OVER (PARTITION BY slot ORDER BY seq ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS run
    FROM slot_hist
),
slotted AS (
    -- For each row: the latest earlier event of another key in the same slot, which is the
    -- last event before the current run of this key (runs of one key are consecutive): the
    -- lagged values on the run's first row.
    SELECT seq, run,
           first_value(lag_config) OVER w AS slot_prev_config,
           first_value(lag_data_version) OVER w AS slot_prev_data_version,
           first_value(lag_event) OVER w AS slot_prev_event,
           first_value(lag_reason) OVER w AS slot_prev_reason,
           first_value(CASE WHEN lag_event IS NOT NULL THEN coalesce(lag_followed_by, '-') END) OVER w AS slot_prev_followed_by
    FROM slot_runs
    WINDOW w AS (PARTITION BY slot, run ORDER BY seq ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
)
SELECT r.*, k.prev_event, k.prev_outcome, k.prev_reason, k.prev_eviction_summary,
       sl.run, sl.slot_prev_config, sl.slot_prev_data_version, sl.slot_prev_event,
       sl.slot_prev_reason, sl.slot_prev_followed_by
FROM resolved r
LEFT JOIN keyed k USING (seq)
LEFT JOIN slotted sl USING (seq)
