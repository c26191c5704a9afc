-- Before a request through the tailer's socket runs: DuckDB returns the rows of an ORDER BY
-- out of order when insertion order need not be kept (a global setting, which the ingester
-- turns off for speed: src/ingest/setup.rs) and the query runs on several threads. Measured
-- through a tailer: what-if's stream over a day of 10M lines had 5 of 506k rows out of
-- place, and `cachescope sql` of 1.7M rows `ORDER BY ts` came back as two ordered runs.
-- Kept while the request runs; queries/query_order_restore.sql gives the setting back.
SET VARIABLE query_order_before = current_setting('preserve_insertion_order');
SET preserve_insertion_order = true;
