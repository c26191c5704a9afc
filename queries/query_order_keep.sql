-- Before the first of the requests running through the tailer's socket: DuckDB returns the
-- rows of an ORDER BY out of order when insertion order need not be kept (a global setting,
-- which the ingester turns off for speed: src/ingest/setup.rs) and the query runs on several
-- threads. Measured through a tailer: what-if's stream over a day of 10M lines had 5 of 506k
-- rows out of place, and `cachescope sql` of 1.7M rows `ORDER BY ts` came back as two ordered
-- runs. Kept while any request runs; the ingester's own setting (read first:
-- queries/query_order_setting.sql) is given back after the last one (src/query/server.rs).
SET preserve_insertion_order = true;
