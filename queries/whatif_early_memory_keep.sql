-- The session's memory cap, kept on its own connection before what-if's read begins on a
-- second one (src/whatif/early.rs): an interrupted read may not have put back the cap it sets
-- (queries/whatif_memory.sql; DuckDB's cap is the whole database's).
SET VARIABLE early_memory_before = current_setting('memory_limit');
