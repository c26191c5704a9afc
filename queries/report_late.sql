-- Report: lines classified out of the log's order since the last rebuild (none on a database
-- whose table is not built: readers then classify from `events`, queries/classify_fallback.sql).
SELECT coalesce(sum(late_events), 0)::BIGINT AS late_events FROM classify_state
