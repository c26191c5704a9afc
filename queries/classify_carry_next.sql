-- The carried rows after a step of the classification (queries/classify_step.sql): those of
-- the affected keys, slots and symbols and the manifest's are replaced by what
-- `classify_rows` says of them now.
DELETE FROM classify_carry
WHERE EXISTS (SELECT 1 FROM classify_affected a
              WHERE a.role = classify_carry.role AND a.name IS NOT DISTINCT FROM classify_carry.name);

-- `r` is read five times; materializing it copied every row of `classify_rows` (a table
-- already): 117 -> 62 ms for two steps of 101k and 63k staged rows (DuckDB from Python, the
-- ingester's settings, best of six).
INSERT INTO classify_carry BY NAME
WITH r AS NOT MATERIALIZED (
    SELECT ts, event, symbol, feature_set, key, slot, reason, outcome, config, data_version,
           file_id, line_no, followed_by, summary, seq, in_key, in_slot, slot_run_start, slot_prev_seq,
           symbol_first, is_new, for_manifest
    FROM classify_rows
),
-- Per key its last event; per slot its last event, the first event of its last run and the
-- event before that run; per symbol its first miss or warm-up; the last manifest event.
last_of_key AS (
    SELECT max(seq) AS seq FROM r WHERE in_key GROUP BY key
),
slot_ends AS (
    SELECT max(seq) AS last, max(seq) FILTER (WHERE slot_run_start) AS run_first,
           arg_max(slot_prev_seq, seq) FILTER (WHERE slot_run_start) AS before_run
    FROM r WHERE in_slot GROUP BY slot
),
slot_rows AS (
    SELECT last AS seq FROM slot_ends
    UNION SELECT run_first FROM slot_ends
    UNION SELECT before_run FROM slot_ends
),
SELECT 'key' AS role, key AS name, r.* EXCLUDE (seq, in_key, in_slot, slot_run_start, slot_prev_seq, symbol_first, is_new, for_manifest)
FROM r SEMI JOIN last_of_key USING (seq)
UNION ALL BY NAME
SELECT 'slot' AS role, slot AS name, r.* EXCLUDE (seq, in_key, in_slot, slot_run_start, slot_prev_seq, symbol_first, is_new, for_manifest)
FROM r SEMI JOIN slot_rows USING (seq)
UNION ALL BY NAME
SELECT 'symbol' AS role, symbol AS name, r.* EXCLUDE (seq, in_key, in_slot, slot_run_start, slot_prev_seq, symbol_first, is_new, for_manifest)
FROM r WHERE symbol_first
UNION ALL BY NAME
SELECT 'manifest' AS role, NULL AS name, r.* EXCLUDE (seq, in_key, in_slot, slot_run_start, slot_prev_seq, symbol_first, is_new, for_manifest)
FROM r WHERE event IN ('manifest_unavailable', 'manifest_available') AND (is_new OR for_manifest)
QUALIFY row_number() OVER (ORDER BY seq DESC) = 1;

DROP VIEW classify_new;
DROP TABLE classify_affected;
DROP TABLE classify_input;
DROP TABLE classify_rows;
