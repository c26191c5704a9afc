-- The ingester's preserve_insertion_order (a global setting), read before the first of the
-- requests running through the tailer's socket sets it (queries/query_order_keep.sql): it is
-- given back after the last of them, on whichever session's connection that one ran (a
-- `SET VARIABLE` is its connection's own, so it cannot carry the setting across sessions).
SELECT current_setting('preserve_insertion_order')::BOOLEAN AS preserve_insertion_order
