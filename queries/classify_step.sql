-- The ingester's classification of a commit's rows (`classify_batch`), in the transaction
-- that commits them: the misses among them are classified once, from these rows and the
-- rows of the history they need (`classify_carry`), and the carried rows are brought up to
-- date. The same SQL as the full-history reference (queries/classify_rows.sql,
-- queries/classify_causes.sql) runs over them; src/ingest/classify.rs runs these statements,
-- then those two, then queries/classify_carry_next.sql.

-- The rows staged since the last step (`classify_batch` is emptied once, at the commit:
-- rows deleted inside the transaction would stay in memory until then). A view: a copy of
-- them cost as much as the statements that read them.
SET VARIABLE classify_step_after = coalesce(getvariable('classify_staged_until'), -1);
SET VARIABLE classify_staged_until = (SELECT max(rowid) FROM classify_batch);
CREATE OR REPLACE TEMP VIEW classify_new AS
SELECT * EXCLUDE (r) FROM (SELECT rowid AS r, * FROM classify_batch)
WHERE classified_event(event)
  AND r > getvariable('classify_step_after') AND r <= getvariable('classify_staged_until');

INSERT INTO classify_state
SELECT NULL, NULL, NULL, 0, 0 WHERE NOT EXISTS (SELECT 1 FROM classify_state);

-- Rows older (in the log's order) than the last row already classified.
UPDATE classify_state SET
    late_events = late_events + l.events,
    late_misses = late_misses + l.misses
FROM (
    SELECT count(*) AS events, count(*) FILTER (WHERE n.event = 'miss') AS misses
    FROM classify_new n, classify_state w
    WHERE w.wm_line IS NOT NULL
      AND log_order_before(n.ts, n.file_id, n.line_no, w.wm_ts, w.wm_file, w.wm_line)
) l;

UPDATE classify_state SET wm_ts = m.ts, wm_file = m.file_id, wm_line = m.line_no
FROM (SELECT ts, file_id, line_no FROM classify_new ORDER BY ts DESC NULLS FIRST, file_id DESC, line_no DESC LIMIT 1) m
WHERE classify_state.wm_line IS NULL
   OR log_order_before(classify_state.wm_ts, classify_state.wm_file, classify_state.wm_line, m.ts, m.file_id, m.line_no);

-- The keys, slots and symbols whose carried rows the new rows need, and the carried rows
-- whose follower or summary line may be among them.
CREATE OR REPLACE TEMP TABLE classify_affected AS
WITH has AS (
    SELECT coalesce(bool_or(event IN ('capacity_cleanup', 'cleanup')), false) AS summary,
           coalesce(bool_or(event IN ('market_data_update', 'config_change', 'miss')), false) AS follower
    FROM classify_new
),
pending AS (
    SELECT c.key, c.slot FROM classify_carry c, has
    WHERE (c.event = 'eviction' AND c.summary IS NULL AND has.summary)
       OR (c.event = 'invalidation' AND c.followed_by IS NULL AND has.follower)
)
SELECT 'key' AS role, key AS name FROM classify_new WHERE key IS NOT NULL
UNION SELECT 'key', key FROM pending WHERE key IS NOT NULL
UNION SELECT 'slot', slot FROM classify_new WHERE slot IS NOT NULL
UNION SELECT 'slot', slot FROM pending WHERE slot IS NOT NULL
UNION SELECT 'symbol', symbol FROM classify_new
UNION SELECT 'manifest', NULL;

-- The carried rows (once each, with the roles they play) first, then the new rows in the
-- log's order: a late row is classified as if it came last.
CREATE OR REPLACE TEMP TABLE classify_input AS
WITH carried AS (
    SELECT c.ts, c.event, c.symbol, c.feature_set, c.key, c.slot, c.reason, c.outcome, c.config,
           c.data_version, c.file_id, c.line_no,
           any_value(c.followed_by) AS followed_by, any_value(c.summary) AS summary,
           bool_or(c.role = 'key') AS for_key, bool_or(c.role = 'slot') AS for_slot,
           bool_or(c.role = 'symbol') AS for_symbol, bool_or(c.role = 'manifest') AS for_manifest
    FROM classify_carry c
    SEMI JOIN classify_affected a ON a.role = c.role AND a.name IS NOT DISTINCT FROM c.name
    GROUP BY ALL
)
SELECT *, row_number() OVER (ORDER BY is_new, ts, file_id, line_no) AS seq
FROM (
    SELECT *, false AS is_new FROM carried
    UNION ALL BY NAME
    SELECT *, NULL::VARCHAR AS followed_by, NULL::VARCHAR AS summary, true AS for_key, true AS for_slot,
           true AS for_symbol, true AS for_manifest, true AS is_new
    FROM classify_new
);
