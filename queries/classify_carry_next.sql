-- The carried rows after a step of the classification (queries/classify_step.sql): those of
-- the affected keys, slots and symbols and the manifest's are replaced by what
-- `classify_rows` says of them now.
DELETE FROM classify_carry
WHERE EXISTS (SELECT 1 FROM classify_affected a
              WHERE a.role = classify_carry.role AND a.name IS NOT DISTINCT FROM classify_carry.name);

INSERT INTO classify_carry BY NAME
WITH r AS (
    SELECT ts, event, symbol, feature_set, key, slot, reason, outcome, config, data_version,
           file_id, line_no, followed_by, summary, seq, in_key, in_slot, run, symbol_first_seq, is_new, for_manifest
    FROM classify_rows
),
slot_rows AS (
    SELECT *, max(run) OVER (PARTITION BY slot) AS last_run,
           min(seq) OVER (PARTITION BY slot, run) AS run_first,
           max(seq) OVER (PARTITION BY slot, run) AS run_last
    FROM r WHERE in_slot
)
SELECT 'key' AS role, key AS name, * EXCLUDE (seq, in_key, in_slot, run, symbol_first_seq, is_new, for_manifest)
FROM r WHERE in_key
QUALIFY row_number() OVER (PARTITION BY key ORDER BY seq DESC) = 1
UNION ALL BY NAME
SELECT 'slot' AS role, slot AS name,
       * EXCLUDE (seq, in_key, in_slot, run, symbol_first_seq, is_new, for_manifest, last_run, run_first, run_last)
FROM slot_rows
WHERE (run = last_run AND seq IN (run_first, run_last)) OR (run = last_run - 1 AND seq = run_last)
UNION ALL BY NAME
SELECT 'symbol' AS role, symbol AS name, * EXCLUDE (seq, in_key, in_slot, run, symbol_first_seq, is_new, for_manifest)
FROM r WHERE seq = symbol_first_seq
UNION ALL BY NAME
SELECT 'manifest' AS role, NULL AS name, * EXCLUDE (seq, in_key, in_slot, run, symbol_first_seq, is_new, for_manifest)
FROM r WHERE event IN ('manifest_unavailable', 'manifest_available') AND (is_new OR for_manifest)
QUALIFY row_number() OVER (ORDER BY seq DESC) = 1;

DROP TABLE classify_new;
DROP TABLE classify_affected;
DROP TABLE classify_input;
DROP TABLE classify_rows;
