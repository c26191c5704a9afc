-- Empties `request_minutes` before a rebuild (in the rebuild's transaction): dropped, and
-- created again by queries/schema.sql. Deleting its rows one by one from its primary key's
-- index ran out of the ingester's memory at 3.4M rows (100M lines).
DROP TABLE request_minutes;
