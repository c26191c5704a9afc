-- The fleet view (`report|incident|slo --fleet`): every host's exported Parquet files
-- (docs/export.md) loaded into an in-memory database (src/fleet/load.rs), one table per
-- exported table with the host of its partition first, and the views the single-host analysis
-- reads (`request_minutes`, `evaluations_5m`, `miss_causes`, `episodes`, `ingest_files`, `events`) over the hosts
-- in `fleet_scope`: every host when it is empty (the fleet-wide figures: counts summed per
-- minute, never ratios averaged), one host when it names one (that host's own figures).
--
-- No automatic checkpoints: an in-memory database would compress what is being loaded, twice
-- the loading time for nothing kept.
SET checkpoint_threshold = '1TB';

CREATE TABLE fleet_minutes (
    host        VARCHAR   NOT NULL,
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

CREATE TABLE fleet_misses (
    host          VARCHAR   NOT NULL,
    ts            TIMESTAMP NOT NULL,
    symbol        VARCHAR,
    feature_set   VARCHAR,
    key           VARCHAR,
    slot          VARCHAR,
    cause         VARCHAR   NOT NULL,
    basis         VARCHAR,
    logged_reason VARCHAR,
    outcome       VARCHAR,
    config        VARCHAR,
    data_version  VARCHAR,
    file          VARCHAR,
    line_no       BIGINT,
    raw           VARCHAR,
    n             BIGINT    NOT NULL DEFAULT 1 -- misses this row stands for (src/fleet/tally.rs)
);

CREATE TABLE fleet_episodes (
    host            VARCHAR   NOT NULL,
    kind            VARCHAR   NOT NULL,
    start           TIMESTAMP NOT NULL,
    "end"           TIMESTAMP NOT NULL,
    misses          BIGINT    NOT NULL,
    keys            BIGINT    NOT NULL,
    n_symbols       BIGINT    NOT NULL,
    symbols         VARCHAR[] NOT NULL,
    causes          VARCHAR[] NOT NULL,
    runbook         VARCHAR   NOT NULL,
    first_signal    VARCHAR,
    signal_file     VARCHAR,
    signal_line_no  BIGINT,
    first_miss_line VARCHAR,
    miss_file       VARCHAR,
    miss_line_no    BIGINT
);

-- The host the views read (none: all).
CREATE TABLE fleet_scope (host VARCHAR NOT NULL);

-- Whether host `h` is in scope (no lookup of the hosts themselves: the fleet's rows are many).
CREATE MACRO in_scope(h) AS (NOT EXISTS (SELECT 1 FROM fleet_scope) OR h IN (SELECT host FROM fleet_scope));

-- The scope's per-minute figures, summed once per scope (queries/fleet_scope_minutes.sql).
CREATE TABLE fleet_scoped_minutes AS SELECT * EXCLUDE (host) FROM fleet_minutes WITH NO DATA;

CREATE VIEW request_minutes AS SELECT * FROM fleet_scoped_minutes;

-- The scope's 5-minute evaluations, computed once per scope from its minutes.
CREATE TABLE fleet_scoped_evaluations (eval_time TIMESTAMP NOT NULL, hits BIGINT NOT NULL, requests BIGINT NOT NULL);

CREATE VIEW evaluations_5m AS SELECT * FROM fleet_scoped_evaluations;

-- A log file is named with its host (`web-1:/var/log/trading-system.log`).
-- A counted row stands for `n` misses: it is read as `n` rows.
CREATE VIEW miss_causes AS
SELECT * EXCLUDE (copy) FROM (
    SELECT host, ts, symbol, feature_set, key, slot, cause, basis, logged_reason, outcome, config,
           data_version, host || ':' || coalesce(file, '?') AS file_id, line_no, raw,
           unnest(range(n)) AS copy
    FROM fleet_misses
    WHERE in_scope(host)
);

-- The misses' log lines, as a host's database has them.
CREATE VIEW miss_lines AS
SELECT DISTINCT ts, host || ':' || coalesce(file, '?') AS file_id, line_no, raw
FROM fleet_misses
WHERE in_scope(host) AND raw IS NOT NULL;

CREATE VIEW episodes AS
SELECT host, kind, start, "end", misses, keys, n_symbols, symbols, causes, runbook,
       first_signal, host || ':' || signal_file AS signal_file_id, signal_line_no,
       first_miss_line, host || ':' || miss_file AS miss_file_id, miss_line_no
FROM fleet_episodes
WHERE in_scope(host);

CREATE VIEW ingest_files AS
SELECT DISTINCT host || ':' || file AS file_id, host || ':' || file AS path
FROM (SELECT host, file FROM fleet_misses
      UNION ALL SELECT host, signal_file FROM fleet_episodes
      UNION ALL SELECT host, miss_file FROM fleet_episodes)
WHERE file IS NOT NULL;

-- No log lines: the fleet's periods are whole minutes, which `request_minutes` answers alone.
CREATE VIEW events AS
SELECT CAST(NULL AS TIMESTAMP) AS ts, CAST(NULL AS VARCHAR) AS event WHERE false;
