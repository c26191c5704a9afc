-- The cache manifest: one row per key the engine has cached or remembers.
-- `state` is `cached` for a live file; otherwise why the key is no longer cached
-- (evicted_capacity, evicted_retention, invalidated_data, invalidated_config,
-- missing_file, write_failed, compute_failed), which is how the engine knows why a later
-- miss on the same key happens.
CREATE TABLE IF NOT EXISTS manifest (
    key          VARCHAR   NOT NULL,
    slot         VARCHAR   NOT NULL,
    symbol       VARCHAR   NOT NULL,
    feature_set  VARCHAR   NOT NULL,
    config_hash  VARCHAR   NOT NULL,
    start_ts     TIMESTAMP NOT NULL,
    end_ts       TIMESTAMP NOT NULL,
    data_version VARCHAR   NOT NULL,
    path         VARCHAR   NOT NULL,
    bytes        BIGINT    NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    last_access  TIMESTAMP NOT NULL,
    state        VARCHAR   NOT NULL
);
-- The runbook's index.
CREATE INDEX IF NOT EXISTS idx_symbol_timestamp ON manifest(symbol, start_ts, end_ts);
-- Every symbol ever requested (a first request is a `new_symbol` miss).
CREATE TABLE IF NOT EXISTS seen_symbols (
    symbol     VARCHAR   NOT NULL,
    first_seen TIMESTAMP NOT NULL
);
CREATE TEMP TABLE manifest_stage AS SELECT * FROM manifest LIMIT 0;
CREATE TEMP TABLE symbols_stage AS SELECT * FROM seen_symbols LIMIT 0;
