-- The events database written by `cachescope ingest` / `tail`. An ordinary DuckDB file.

-- One row per recognised log line.
CREATE TABLE IF NOT EXISTS events (
    ts           TIMESTAMP,          -- naive UTC
    level        VARCHAR,
    event        VARCHAR NOT NULL,   -- hit, miss, invalidation, eviction, write_failed, compute_failed, cleanup, ... , other
    symbol       VARCHAR,
    feature_set  VARCHAR,
    key          VARCHAR,
    slot         VARCHAR,            -- hits: NULL (the miss before them has it)
    reason       VARCHAR,            -- the writer's own reason (engine: miss/eviction/invalidation reason)
    outcome      VARCHAR,
    config       VARCHAR,            -- hits: NULL
    data_version VARCHAR,            -- hits: NULL
    bytes        BIGINT,
    latency_us   BIGINT,
    error        VARCHAR,
    message      VARCHAR,            -- hits: NULL
    raw          VARCHAR,            -- the whole line, kept for every event that is not a hit
    file_id      VARCHAR NOT NULL,   -- fingerprint of the file the line came from (see ingest_files)
    byte_offset  BIGINT  NOT NULL,   -- offset of the line's first byte in the (decompressed) file
    line_no      BIGINT  NOT NULL    -- 1-based line number in the file
);

-- Per file identity: where it was seen and how far it was read (committed with the rows).
CREATE TABLE IF NOT EXISTS ingest_files (
    file_id     VARCHAR PRIMARY KEY, -- fingerprint of the first line
    path        VARCHAR NOT NULL,    -- last path it was read under
    paths       VARCHAR NOT NULL,    -- every path it was read under, ';'-separated
    dev         UBIGINT,
    inode       UBIGINT,
    format      VARCHAR,
    byte_offset BIGINT  NOT NULL,    -- bytes consumed (complete lines only)
    line_no     BIGINT  NOT NULL,    -- lines consumed
    tail_hash   VARCHAR NOT NULL,    -- hash of the bytes just before byte_offset (detects rewrites)
    events      BIGINT  NOT NULL,
    quarantined BIGINT  NOT NULL,
    updated_at  TIMESTAMP NOT NULL
);

-- Lines that could not be parsed: kept here, never dropped silently.
CREATE TABLE IF NOT EXISTS ingest_errors (
    file_id     VARCHAR NOT NULL,
    path        VARCHAR NOT NULL,
    byte_offset BIGINT  NOT NULL,
    line_no     BIGINT  NOT NULL,
    prefix      VARCHAR NOT NULL,    -- the first 512 bytes of the line, lossily decoded
    error       VARCHAR NOT NULL,
    ingested_at TIMESTAMP NOT NULL
);

CREATE OR REPLACE VIEW miss_events AS
    SELECT e.ts, e.symbol, e.feature_set, e.key, e.slot, e.reason, e.outcome, e.config,
           e.data_version, e.bytes, e.latency_us, f.path, e.line_no, e.raw
    FROM events e LEFT JOIN ingest_files f USING (file_id)
    WHERE e.event = 'miss';
