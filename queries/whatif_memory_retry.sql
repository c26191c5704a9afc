-- What-if's second try when DuckDB's sort could not stay within queries/whatif_memory.sql's
-- cap (it occasionally fails to spill a block at a tight cap): twice the cap.
SET memory_limit = '1GB';
