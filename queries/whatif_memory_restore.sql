-- The session's memory cap as it was before what-if's read (queries/whatif_memory.sql): the
-- queries that follow in the session (an incident's report after its sizing) keep their own.
SET memory_limit = getvariable('whatif_memory_before');
