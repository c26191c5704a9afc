-- Before a query's rows are streamed through the tailer's socket: DuckDB streams the rows of
-- an ORDER BY out of order when insertion order need not be kept (a global setting, which
-- the ingester turns off for speed: src/ingest/setup.rs) and the query runs on several
-- threads; what-if's stream over a day of 10M lines came with 5 of 506k rows out of place.
-- Kept for the stream; queries/stream_order_restore.sql gives the setting back.
SET VARIABLE stream_order_before = current_setting('preserve_insertion_order');
SET preserve_insertion_order = true;
