-- After a stream (queries/stream_order_keep.sql): the ingester's setting back.
SET preserve_insertion_order = getvariable('stream_order_before');
