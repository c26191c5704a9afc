-- The derived tables' definitions over `events`: what the ingester's incremental figures must
-- equal, what `cachescope reclassify` rebuilds them from, and what a reader falls back to on
-- a database written before them.

-- `request_minutes` of the requests in [lo, hi).
CREATE OR REPLACE MACRO request_minutes_of(lo, hi) AS TABLE
SELECT date_trunc('minute', ts) AS minute,
       coalesce(feature_set, '') AS feature_set,
       count(*) FILTER (WHERE event = 'hit') AS hits,
       count(*) FILTER (WHERE event = 'miss') AS misses,
       coalesce(sum(bytes) FILTER (WHERE event = 'hit'), 0) AS hit_bytes,
       coalesce(sum(bytes) FILTER (WHERE event = 'miss'), 0) AS miss_bytes,
       coalesce(sum(latency_us), 0) AS latency_us,
       min(ts) AS first_ts,
       max(ts) AS last_ts
FROM events
WHERE event IN ('hit', 'miss') AND ts IS NOT NULL AND ts >= lo AND ts < hi
GROUP BY ALL;

-- The events the classification of misses reads (queries/classify_rows.sql).
CREATE OR REPLACE MACRO classified_event(e) AS
    e IN ('miss', 'eviction', 'invalidation', 'missing_file', 'warm_fill', 'manifest_unavailable',
          'manifest_available', 'capacity_cleanup', 'cleanup', 'market_data_update', 'config_change');

-- Whether line (ts, file, line) comes before line (ts2, file2, line2) in the log's order:
-- time (lines without one last), file, line.
CREATE OR REPLACE MACRO log_order_before(ts, file, line, ts2, file2, line2) AS
    coalesce(ts, 'infinity'::TIMESTAMP) < coalesce(ts2, 'infinity'::TIMESTAMP)
    OR (coalesce(ts, 'infinity'::TIMESTAMP) = coalesce(ts2, 'infinity'::TIMESTAMP)
        AND (file < file2 OR (file = file2 AND line < line2)));
