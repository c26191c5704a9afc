-- Each new miss of `classify_rows` (queries/classify_rows.sql) with its inferred cause and
-- the evidence it rests on (`basis`). The engine's own `reason` is kept beside it
-- (`logged_reason`) but never read to decide. Logs without keys (e.g. the Python trading
-- system) fall back to the symbol's history and say so in `basis`.
SELECT ts, symbol, feature_set, key, slot,
       CASE
           WHEN manifest_state = 'manifest_unavailable' THEN 'manifest_unavailable'
           WHEN key IS NULL AND symbol_first THEN 'new_symbol'
           WHEN key IS NULL THEN 'unknown'
           WHEN prev_event = 'missing_file' THEN 'missing_file'
           WHEN prev_event IN ('miss', 'warm_fill') AND prev_outcome = 'write_failed' THEN 'write_failed'
           WHEN prev_event IN ('miss', 'warm_fill') AND prev_outcome = 'compute_failed' THEN 'compute_failed'
           WHEN prev_event = 'eviction' AND prev_eviction_summary = 'capacity_cleanup' THEN 'evicted_capacity'
           WHEN prev_event = 'eviction' AND prev_eviction_summary = 'cleanup' THEN 'evicted_retention'
           WHEN prev_event = 'eviction' THEN 'evicted'
           -- An invalidation line says why (reason=market_data|config): the key's own first,
           -- then the slot's previous key's. This holds across an engine restart, when what
           -- follows the invalidation is no longer its summary line.
           WHEN prev_event = 'invalidation' AND prev_reason = 'market_data' THEN 'invalidated_data'
           WHEN prev_event = 'invalidation' AND prev_reason = 'config' THEN 'invalidated_config'
           WHEN prev_event IS NULL AND slot_prev_event = 'invalidation' AND slot_prev_reason = 'market_data' THEN 'invalidated_data'
           WHEN prev_event IS NULL AND slot_prev_event = 'invalidation' AND slot_prev_reason = 'config' THEN 'invalidated_config'
           -- Logs whose invalidation lines carry no reason: what followed the invalidation,
           -- then the versions.
           WHEN (prev_event IS NULL OR prev_event = 'invalidation') AND slot_prev_event = 'invalidation'
                AND slot_prev_followed_by = 'market_data_update' THEN 'invalidated_data'
           WHEN (prev_event IS NULL OR prev_event = 'invalidation') AND slot_prev_event = 'invalidation'
                AND slot_prev_followed_by = 'config_change' THEN 'invalidated_config'
           WHEN (prev_event IS NULL OR prev_event = 'invalidation') AND slot_prev_config IS NOT NULL
                AND slot_prev_config <> config THEN 'invalidated_config'
           WHEN (prev_event IS NULL OR prev_event = 'invalidation') AND slot_prev_data_version IS NOT NULL
                AND slot_prev_data_version <> data_version THEN 'invalidated_data'
           WHEN prev_event = 'invalidation' THEN 'invalidated'
           WHEN prev_event IS NULL AND symbol_first THEN 'new_symbol'
           WHEN prev_event IS NULL THEN 'new_key'
           ELSE 'unknown'
       END AS cause,
       CASE
           WHEN manifest_state = 'manifest_unavailable' THEN 'manifest state'
           WHEN key IS NULL THEN 'symbol history (the log has no cache keys)'
           WHEN prev_event IS NOT NULL THEN 'key history'
           WHEN slot_prev_config IS NOT NULL THEN 'slot history'
           ELSE 'symbol history'
       END AS basis,
       reason AS logged_reason,
       outcome, config, data_version, file_id, line_no
FROM classify_rows
WHERE event = 'miss' AND is_new
