-- What-if sorts every request of the period into time order: its DuckDB memory is capped
-- (beyond it DuckDB spills to disk) so that sizing a month does not take the trading host's
-- memory (the runbook's cause 4). The session's own cap is kept first
-- (queries/whatif_memory_keep.sql), to be put back after the read
-- (queries/whatif_memory_restore.sql).
SET memory_limit = '512MB';
