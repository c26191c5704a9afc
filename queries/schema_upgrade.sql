-- Databases written before `events` became a view kept every row in a table named `events`:
-- that table is `event_rows` now (same columns). Run only when `events` is a table.
ALTER TABLE events RENAME TO event_rows;
