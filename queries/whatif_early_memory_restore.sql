-- The session's memory cap put back after an early read was interrupted
-- (queries/whatif_early_memory_keep.sql).
SET memory_limit = getvariable('early_memory_before');
