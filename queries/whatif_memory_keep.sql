-- The session's memory cap, kept on the connection that puts it back
-- (queries/whatif_memory_restore.sql): before what-if's read sets its own
-- (queries/whatif_memory.sql), and on a report's connection before a read on a second one
-- begins (src/whatif/early.rs: an interrupted read may not have put back its cap, and DuckDB's
-- cap is the whole database's).
SET VARIABLE whatif_memory_before = current_setting('memory_limit');
