-- A reader of a database whose `miss_causes` table is missing or outdated (written before
-- it, and not opened by an ingester since): the causes classified from `events` at every query.
CREATE OR REPLACE TEMP VIEW miss_causes AS SELECT * FROM miss_causes_full;
-- ...which classifies every line in the log's order: none came late.
CREATE OR REPLACE TEMP VIEW classify_state AS
SELECT NULL::TIMESTAMP AS wm_ts, NULL::VARCHAR AS wm_file, NULL::BIGINT AS wm_line,
       0::BIGINT AS late_events, 0::BIGINT AS late_misses
WHERE false;
-- ...and whose episodes are all found from the signals (nothing kept).
CREATE OR REPLACE TEMP VIEW episode_state AS
SELECT NULL::VARCHAR AS kind, NULL::TIMESTAMP AS frontier WHERE false;
CREATE OR REPLACE TEMP VIEW episode_clusters AS
SELECT NULL::VARCHAR AS kind, NULL::TIMESTAMP AS start, NULL::TIMESTAMP AS "end", NULL::BIGINT AS misses,
       NULL::BIGINT AS keys, NULL::BIGINT AS n_symbols, NULL::VARCHAR[] AS symbols, NULL::VARCHAR[] AS causes,
       NULL::VARCHAR AS runbook, NULL::VARCHAR AS first_signal, NULL::VARCHAR AS signal_file_id,
       NULL::BIGINT AS signal_line_no, NULL::VARCHAR AS first_miss_line, NULL::VARCHAR AS miss_file_id,
       NULL::BIGINT AS miss_line_no, NULL::TIMESTAMP AS first_miss, NULL::TIMESTAMP AS last_miss,
       NULL::BIGINT AS invalidations, NULL::TIMESTAMP AS signal_start, NULL::TIMESTAMP AS signal_end,
       NULL::BOOLEAN AS is_episode
WHERE false;
