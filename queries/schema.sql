-- The events database written by `cachescope ingest` / `tail`. An ordinary DuckDB file.
--
-- `events` (a view, one row per recognised log line) is what people and the analysis read.
-- It is stored in two tables: ordinary hits (86%+ of a day's lines) as narrow rows of
-- numbers in `hit_rows`, everything else whole in `event_rows`. Storing a hit's symbol,
-- feature set and file as ids and its key as a number is what makes ingestion fast: DuckDB
-- spends most of an ingest compressing strings (see BENCHMARKS.md).

-- Every event but the ordinary hits (and any hit that does not fit `hit_rows`).
CREATE TABLE IF NOT EXISTS event_rows (
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
    message      VARCHAR USING COMPRESSION zstd, -- hits: NULL
    raw          VARCHAR USING COMPRESSION zstd, -- the whole line, kept for every event that is not a hit
    file_id      VARCHAR NOT NULL,   -- fingerprint of the file the line came from (see ingest_files)
    byte_offset  BIGINT  NOT NULL,   -- offset of the line's first byte in the (decompressed) file
    line_no      BIGINT  NOT NULL    -- 1-based line number in the file
);

-- Hits at level INFO with no reason, outcome or error, whose key (if any) is 16 hex digits.
CREATE TABLE IF NOT EXISTS hit_rows (
    ts           TIMESTAMP,
    symbol       INTEGER,            -- ingest_names.id
    feature_set  INTEGER,            -- ingest_names.id
    key          UBIGINT,            -- the 16 hex digits as a number
    bytes        BIGINT,
    latency_us   BIGINT,
    file         INTEGER NOT NULL,   -- ingest_names.id of the file_id
    byte_offset  BIGINT  NOT NULL,
    line_no      BIGINT  NOT NULL
);

-- Symbols, feature sets and file ids of `hit_rows`, by id.
CREATE TABLE IF NOT EXISTS ingest_names (
    id   INTEGER PRIMARY KEY,
    name VARCHAR NOT NULL
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

-- Requests by minute and feature set: a derived table the ingester keeps in the transaction
-- that commits the rows (src/ingest/minutes.rs), so it is exactly-once like them. Counts and
-- sums add up, so late lines land in their own minutes; it always equals
-- queries/request_minutes_rebuild.sql over `events` (tests check it). The SLO views read it.
CREATE TABLE IF NOT EXISTS request_minutes (
    minute      TIMESTAMP NOT NULL,  -- start of the minute (naive UTC)
    feature_set VARCHAR   NOT NULL,  -- '' when the line names none
    hits        BIGINT    NOT NULL,
    misses      BIGINT    NOT NULL,
    hit_bytes   BIGINT    NOT NULL,  -- bytes the hits read
    miss_bytes  BIGINT    NOT NULL,  -- bytes the misses wrote
    latency_us  BIGINT    NOT NULL,  -- sum of the requests' latency
    first_ts    TIMESTAMP NOT NULL,  -- first and last request in the minute
    last_ts     TIMESTAMP NOT NULL,
    PRIMARY KEY (minute, feature_set)
);

-- A commit's figures on their way into `request_minutes` (empty between commits).
CREATE TABLE IF NOT EXISTS request_minutes_stage (
    minute      TIMESTAMP NOT NULL,
    feature_set VARCHAR   NOT NULL,
    hits        BIGINT    NOT NULL,
    misses      BIGINT    NOT NULL,
    hit_bytes   BIGINT    NOT NULL,
    miss_bytes  BIGINT    NOT NULL,
    latency_us  BIGINT    NOT NULL,
    first_ts    TIMESTAMP NOT NULL,
    last_ts     TIMESTAMP NOT NULL
);

-- The 5-minute hit ratio's evaluations (queries/slo.sql), kept with the minutes they are
-- computed from: an evaluation at `eval_time` sums the five whole minutes before it. Only
-- evaluations with requests are kept (a window without any has no ratio, as in Prometheus).
-- The ingester recomputes, in the transaction that commits the rows, the evaluations whose
-- window holds a minute the commit added to (`evaluations_stage`), late minutes included, so
-- it always equals `evaluations_5m_of` over `request_minutes` (queries/evaluations_macro.sql;
-- tests check it).
CREATE TABLE IF NOT EXISTS evaluations_5m (
    eval_time TIMESTAMP NOT NULL PRIMARY KEY,  -- a minute's end (naive UTC)
    hits      BIGINT    NOT NULL,              -- requests served from cache in the window
    requests  BIGINT    NOT NULL               -- requests in the window (never 0)
);

-- The minutes a commit added to `request_minutes` (empty between commits).
CREATE TABLE IF NOT EXISTS evaluations_stage (
    minute TIMESTAMP NOT NULL
);

-- Every miss with the cause the classification infers (queries/classify_causes.sql): a
-- derived table the ingester keeps in the transaction that commits the rows, classifying a
-- commit's misses once from its rows and the rows of the history they need
-- (`classify_carry`). It equals the classification of the whole history
-- (`miss_causes_full`) unless lines arrived late (`classify_state`); `cachescope
-- reclassify` rebuilds it from `events`. The log line itself is in `events` (file_id, line_no).
CREATE TABLE IF NOT EXISTS miss_causes (
    ts            TIMESTAMP,
    symbol        VARCHAR,
    feature_set   VARCHAR,
    key           VARCHAR,
    slot          VARCHAR,
    cause         VARCHAR NOT NULL,  -- vocab::Cause
    basis         VARCHAR NOT NULL,  -- the evidence the cause rests on
    logged_reason VARCHAR,           -- the engine's own reason (never read to decide)
    outcome       VARCHAR,
    config        VARCHAR,
    data_version  VARCHAR,
    file_id       VARCHAR NOT NULL,
    line_no       BIGINT  NOT NULL
);

-- A commit's rows on their way into the classification (empty between commits): the
-- columns of `event_rows` it reads.
CREATE TABLE IF NOT EXISTS classify_batch (
    ts           TIMESTAMP,
    event        VARCHAR NOT NULL,
    symbol       VARCHAR,
    feature_set  VARCHAR,
    key          VARCHAR,
    slot         VARCHAR,
    reason       VARCHAR,
    outcome      VARCHAR,
    config       VARCHAR,
    data_version VARCHAR,
    file_id      VARCHAR NOT NULL,
    line_no      BIGINT  NOT NULL
);

-- The rows of the history the classification of later rows needs, by the role they play
-- (`name`: the key, slot or symbol they stand for): a key's last event; a slot's last event,
-- the first event of its last run of one key and the event before that run; a symbol's first
-- miss; the last manifest event. An invalidation's `followed_by` and an eviction's
-- `summary` (what came after them) are NULL until that line is read.
CREATE TABLE IF NOT EXISTS classify_carry AS
SELECT NULL::VARCHAR AS role,        -- key, slot, symbol, manifest
       NULL::VARCHAR AS name,        -- the key, slot or symbol (manifest: NULL)
       *,
       NULL::VARCHAR AS followed_by,
       NULL::VARCHAR AS summary
FROM classify_batch WITH NO DATA;

-- How far the classification has gone (one row): the last row classified, in the log's
-- order (time, file, line), and the rows that arrived after later ones had been classified
-- (an archive ingested after its successor, two logs into one database). Late rows are
-- classified as if they came last; reports say how many there are until `reclassify`.
CREATE TABLE IF NOT EXISTS classify_state (
    wm_ts        TIMESTAMP,
    wm_file      VARCHAR,
    wm_line      BIGINT,
    late_events  BIGINT NOT NULL,
    late_misses  BIGINT NOT NULL
);

-- The clusters of signals (queries/episodes.sql) that can no longer change, episodes or
-- not: a derived table the ingester keeps in the transaction that commits the rows
-- (src/ingest/episodes.rs). A cluster is closed once the data has gone on past its last
-- signal by the longer of `episode_gap_minutes` and `episode_tail_minutes` (so no signal
-- can join it and every miss it explains is in) and a later line decides what each of its
-- invalidations was. Evidence lines are kept for episodes only.
CREATE TABLE IF NOT EXISTS episode_clusters (
    kind            VARCHAR   NOT NULL,  -- vocab::EpisodeKind
    start           TIMESTAMP NOT NULL,
    "end"           TIMESTAMP NOT NULL,
    misses          BIGINT    NOT NULL,
    keys            BIGINT    NOT NULL,
    n_symbols       BIGINT    NOT NULL,
    symbols         VARCHAR[],
    causes          VARCHAR[],
    runbook         VARCHAR   NOT NULL,
    first_signal    VARCHAR,
    signal_file_id  VARCHAR,
    signal_line_no  BIGINT,
    first_miss_line VARCHAR,
    miss_file_id    VARCHAR,
    miss_line_no    BIGINT,
    first_miss      TIMESTAMP,
    last_miss       TIMESTAMP,
    invalidations   BIGINT    NOT NULL,
    signal_start    TIMESTAMP NOT NULL,
    signal_end      TIMESTAMP NOT NULL,
    is_episode      BOOLEAN   NOT NULL
);

-- How far each kind's clusters are closed: every cluster of `kind` with a signal before
-- `frontier` is in `episode_clusters`, and none of them reaches it. The row of kind '' is
-- the frontier of the kinds without a row of their own.
CREATE TABLE IF NOT EXISTS episode_state (
    kind     VARCHAR PRIMARY KEY,
    frontier TIMESTAMP NOT NULL
);

-- The derived tables that are built, by the version of their definition: an older version
-- (or none, in a database written before they existed) is rebuilt from `events` when the
-- ingester opens the database, or by `cachescope reclassify`.
CREATE TABLE IF NOT EXISTS derived_tables (
    name     VARCHAR PRIMARY KEY,
    version  INTEGER   NOT NULL,
    built_at TIMESTAMP NOT NULL
);

-- The events the derived tables hold: the sum of `ingest_files.events` at the last commit of
-- an ingester that keeps them (written in that commit). Rows committed by another version's
-- ingester that does not keep them all (a rollback of cachescope, then forward again) move
-- that sum on without this: readers and the next ingester then see the tables as stale
-- (src/ingest/derived.rs). No row: a database written before this record, trusted as it is.
CREATE TABLE IF NOT EXISTS derived_events (
    events BIGINT NOT NULL
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

-- One row per recognised log line, in the columns of `event_rows`. The ids of `hit_rows`
-- are dense from 0 (the ingester allocates them so), so names are looked up by position in
-- one list rather than by joins, which DuckDB would run even for queries that never read a
-- name.
CREATE OR REPLACE VIEW events AS
SELECT * FROM event_rows
UNION ALL BY NAME
SELECT h.ts, 'INFO' AS level, 'hit' AS event, n.names[h.symbol + 1] AS symbol,
       n.names[h.feature_set + 1] AS feature_set, lower(printf('%016x', h.key)) AS key,
       h.bytes, h.latency_us, n.names[h.file + 1] AS file_id, h.byte_offset, h.line_no
FROM hit_rows h, (SELECT list(name ORDER BY id) AS names FROM ingest_names) n;

-- Misses (always stored whole) with the path of their file.
CREATE OR REPLACE VIEW miss_events AS
    SELECT e.ts, e.symbol, e.feature_set, e.key, e.slot, e.reason, e.outcome, e.config,
           e.data_version, e.bytes, e.latency_us, f.path, e.line_no, e.raw
    FROM event_rows e LEFT JOIN ingest_files f USING (file_id)
    WHERE e.event = 'miss';
