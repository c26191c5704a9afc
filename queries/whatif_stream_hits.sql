-- What-if sizing's input, first part: the ordinary hits (90% of requests) with their numeric
-- keys and the size of the key's cache file, in [$1, $2), in time order (ties by file and
-- line). src/whatif/stream.rs merges them with the other events
-- (queries/whatif_stream_others.sql), which follow the same order. Two sorted reads merged in
-- Rust cost two thirds of one sorted union: the hits' sort never carries the others' text
-- columns. `ms`: milliseconds since the epoch, `us`: microseconds (the merge's order, and
-- where one read serves several periods, src/whatif/trace.rs `Trace::slice`).
WITH lo_hi AS (SELECT CAST($1 AS TIMESTAMP) AS lo, CAST($2 AS TIMESTAMP) AS hi)
SELECT epoch_ms(h.ts) AS ms, epoch_us(h.ts) AS us, h.file::BIGINT AS file, h.line_no::BIGINT AS line_no,
       h.key AS key_num, coalesce(h.bytes, 0)::BIGINT AS bytes
FROM hit_rows h, lo_hi
WHERE h.key IS NOT NULL AND h.ts >= lo_hi.lo AND h.ts < lo_hi.hi
ORDER BY h.ts, h.file, h.line_no
