-- Every remembered key, oldest access first (so the in-memory LRU order is restored).
SELECT key, slot, symbol, feature_set, config_hash, start_ts, end_ts, data_version,
       path, bytes, created_at, last_access, state
FROM manifest
ORDER BY last_access, key;
