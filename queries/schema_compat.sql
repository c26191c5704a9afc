-- For a read-only session on a database of the old layout (`events` a table, not upgraded
-- yet because nothing has ingested into it since): the analysis reads `event_rows` (and its
-- rowid), so the events that are not hits are copied into a temporary table of that name.
CREATE OR REPLACE TEMP TABLE event_rows AS SELECT * FROM main.events WHERE event <> 'hit';
