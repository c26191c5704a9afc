-- A reader of a database whose `miss_causes` table is missing or outdated (written before
-- it, and not opened by an ingester since): the causes classified from `events` at every query.
CREATE OR REPLACE TEMP VIEW miss_causes AS SELECT * FROM miss_causes_full;
-- ...which classifies every line in the log's order: none came late.
CREATE OR REPLACE TEMP VIEW classify_state AS
SELECT NULL::TIMESTAMP AS wm_ts, NULL::VARCHAR AS wm_file, NULL::BIGINT AS wm_line,
       0::BIGINT AS late_events, 0::BIGINT AS late_misses
WHERE false;
