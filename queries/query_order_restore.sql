-- After a request through the tailer's socket (queries/query_order_keep.sql): the
-- ingester's setting back.
SET preserve_insertion_order = getvariable('query_order_before');
