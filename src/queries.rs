//! Every SQL statement cachescope runs, kept in `queries/*.sql` and loaded here. Nothing is
//! assembled from user input: values are bound as parameters.

/// Creates the manifest tables, the runbook's index and the per-connection staging tables.
pub const MANIFEST_SCHEMA: &str = include_str!("../queries/manifest_schema.sql");
/// Applies a staged batch of manifest rows and symbols.
pub const MANIFEST_MERGE: &str = include_str!("../queries/manifest_merge.sql");
/// Reads every manifest row.
pub const MANIFEST_LOAD: &str = include_str!("../queries/manifest_load.sql");
/// Reads every remembered symbol.
pub const SYMBOLS_LOAD: &str = include_str!("../queries/symbols_load.sql");
/// Keys and bytes per state.
pub const MANIFEST_SUMMARY: &str = include_str!("../queries/manifest_summary.sql");
/// Attaches the events database for writing, with the ingester's storage options.
pub const INGEST_ATTACH: &str = include_str!("../queries/ingest_attach.sql");
/// Makes the attached events database a connection's default.
pub const INGEST_USE: &str = include_str!("../queries/ingest_use.sql");
/// Creates the events database's tables and views.
pub const EVENTS_SCHEMA: &str = include_str!("../queries/schema.sql");
/// Whether the database has the old layout (`events` a table).
pub const SCHEMA_LAYOUT: &str = include_str!("../queries/schema_layout.sql");
/// Renames the old `events` table to `event_rows`.
pub const SCHEMA_UPGRADE: &str = include_str!("../queries/schema_upgrade.sql");
/// `event_rows` from the old `events` table, for read-only sessions.
pub const SCHEMA_COMPAT: &str = include_str!("../queries/schema_compat.sql");
/// Reads the names of `hit_rows`' ids.
pub const INGEST_NAMES_LOAD: &str = include_str!("../queries/ingest_names_load.sql");
/// Upserts one file's checkpoint.
pub const INGEST_CHECKPOINT: &str = include_str!("../queries/ingest_checkpoint.sql");
/// Reads every file checkpoint.
pub const INGEST_FILES_LOAD: &str = include_str!("../queries/ingest_files_load.sql");
/// The `classify_input_all` and `ordered_events` views (the reference's input).
pub const CLASSIFY_MISSES: &str = include_str!("../queries/classify_misses.sql");
/// What the classification reads about each row of `classify_input`.
pub const CLASSIFY_ROWS: &str = include_str!("../queries/classify_rows.sql");
/// Each new miss of `classify_rows` with its cause.
pub const CLASSIFY_CAUSES: &str = include_str!("../queries/classify_causes.sql");
/// A step of the incremental classification: the input of a commit's rows.
pub const CLASSIFY_STEP: &str = include_str!("../queries/classify_step.sql");
/// A step of the incremental classification: the carried rows brought up to date.
pub const CLASSIFY_CARRY_NEXT: &str = include_str!("../queries/classify_carry_next.sql");
/// Records that no derived table is built (a rebuild has begun).
pub const DERIVED_UNBUILT: &str = include_str!("../queries/derived_unbuilt.sql");
/// Empties the staged rows after a transaction's last step.
pub const CLASSIFY_DONE: &str = include_str!("../queries/classify_done.sql");
/// Empties the classification before a rebuild.
pub const CLASSIFY_CLEAR: &str = include_str!("../queries/classify_clear.sql");
/// Stages the classified events of a time range (a rebuild).
pub const CLASSIFY_STAGE_RANGE: &str = include_str!("../queries/classify_stage_range.sql");
/// Stages the classified events without a time (a rebuild).
pub const CLASSIFY_STAGE_UNTIMED: &str = include_str!("../queries/classify_stage_untimed.sql");
/// Episodes at a commit: the earliest new row, when it is late for some kind.
pub const EPISODES_LATE: &str = include_str!("../queries/episodes_late.sql");
/// Episodes: the last line of a range that decides what an invalidation was.
pub const EPISODES_DECIDING: &str = include_str!("../queries/episodes_deciding.sql");
/// Episodes: reopens the closed clusters a late row can change.
pub const EPISODES_REWIND: &str = include_str!("../queries/episodes_rewind.sql");
/// Episodes: closes the clusters that can no longer change and moves the frontiers on.
pub const EPISODES_ADVANCE: &str = include_str!("../queries/episodes_advance.sql");
/// Episodes: where the next advance starts (the lowest frontier).
pub const EPISODES_SPAN: &str = include_str!("../queries/episodes_span.sql");
/// Episodes: the first signal (where advancing starts when nothing is kept).
pub const EPISODES_FIRST: &str = include_str!("../queries/episodes_first.sql");
/// Episodes: the last row from a time on, and how many rows that is.
pub const EPISODES_ROWS: &str = include_str!("../queries/episodes_rows.sql");
/// Empties the kept episodes before a rebuild.
pub const EPISODES_CLEAR: &str = include_str!("../queries/episodes_clear.sql");
/// Report: misses classified out of order.
pub const REPORT_LATE: &str = include_str!("../queries/report_late.sql");
/// A reader's `miss_causes` on a database whose table is not built.
pub const CLASSIFY_FALLBACK: &str = include_str!("../queries/classify_fallback.sql");
/// Drops the views of earlier versions that are gone.
pub const SCHEMA_OLD_VIEWS: &str = include_str!("../queries/schema_old_views.sql");
/// Whether `miss_causes` is still a view.
pub const SCHEMA_MISS_CAUSES_VIEW: &str = include_str!("../queries/schema_miss_causes_view.sql");

/// The `miss_causes_full` view: the classification of the whole history (the reference the
/// `miss_causes` table must equal), put together from the two files the ingester's step runs
/// too, so that the rules are written once.
pub fn classify_reference() -> String {
    format!(
        "CREATE OR REPLACE VIEW miss_causes_full AS\nWITH classify_input AS MATERIALIZED (SELECT * FROM classify_input_all),\nclassify_rows AS (\n{CLASSIFY_ROWS}\n)\n{CLASSIFY_CAUSES}"
    )
}

/// The step's `classify_rows` (over the temporary `classify_input`).
pub fn classify_step_rows() -> String {
    format!("CREATE OR REPLACE TEMP TABLE classify_rows AS\n{CLASSIFY_ROWS}")
}

/// The step's insert of the new misses' causes.
pub fn classify_step_insert() -> String {
    format!("INSERT INTO miss_causes BY NAME\n{CLASSIFY_CAUSES}")
}
/// `thresholds`, `hit_ratio_1m`, `hit_ratio_5m`, `alerts`.
pub const SLO: &str = include_str!("../queries/slo.sql");
/// The `episodes_in` macro and the `episodes` view.
pub const EPISODES: &str = include_str!("../queries/episodes.sql");
/// The `episode_causes` table (cause -> episode kind).
pub const EPISODE_CAUSES: &str = include_str!("../queries/episode_causes.sql");
/// One row of `episode_causes`.
pub const EPISODE_CAUSES_INSERT: &str = include_str!("../queries/episode_causes_insert.sql");

/// The classification's views: its input and the full-history reference.
pub fn classify_views() -> [std::borrow::Cow<'static, str>; 2] {
    use std::borrow::Cow;
    [Cow::Borrowed(CLASSIFY_MISSES), Cow::Owned(classify_reference())]
}

/// The analysis' views that read the classification, in the order they depend on each other.
pub const ANALYSIS_VIEWS: [&str; 2] = [SLO, EPISODES];

/// Which derived tables a reader can read as kept (the others it computes at every query).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fresh {
    /// `request_minutes`, `miss_causes` and the classification's state, `episode_clusters`.
    pub derived: bool,
    /// `evaluations_5m` (computed from `request_minutes` when not).
    pub evaluations: bool,
}

impl Fresh {
    /// Every derived table is up to date (a writer's, which built them).
    pub const ALL: Fresh = Fresh { derived: true, evaluations: true };
}

/// Installs the analysis' views and the tables they read that this binary defines
/// (`episode_causes`): stored in the database (the writer, in its schema transaction), or as
/// temporary objects shadowing the stored ones for one connection (`temp`, a reader: a
/// database written by another version reads with this binary's views). A reader of a
/// database whose derived tables are not built (`fresh`) computes them from `events` (or the
/// evaluations from `request_minutes`) instead, at the old cost.
pub fn install_views(conn: &duckdb::Connection, temp: bool, fresh: Fresh) -> duckdb::Result<()> {
    let local = |sql: &str| -> String {
        if temp {
            sql.replace("CREATE OR REPLACE VIEW", "CREATE OR REPLACE TEMP VIEW")
                .replace("CREATE OR REPLACE TABLE", "CREATE OR REPLACE TEMP TABLE")
                .replace("CREATE OR REPLACE MACRO", "CREATE OR REPLACE TEMP MACRO")
        } else {
            sql.to_string()
        }
    };
    conn.execute_batch(&local(EPISODE_CAUSES))?;
    let mut insert = conn.prepare(EPISODE_CAUSES_INSERT)?;
    for cause in crate::vocab::Cause::all() {
        if let Some(kind) = cause.episode_kind() {
            insert.execute([cause.as_str(), kind.as_str()])?;
        }
    }
    conn.execute_batch(&local(DERIVED_MACROS))?;
    // A view is bound when it is created: the fallbacks stand in for the derived tables
    // before the views that read them, and after those they read.
    let fallback = temp && !fresh.derived;
    if fallback {
        conn.execute_batch(REQUEST_MINUTES_FALLBACK)?;
    }
    conn.execute_batch(&local(EVALUATIONS_MACRO))?;
    if temp && (!fresh.derived || !fresh.evaluations) {
        conn.execute_batch(EVALUATIONS_FALLBACK)?;
    }
    for sql in classify_views() {
        conn.execute_batch(&local(&sql))?;
    }
    if fallback {
        conn.execute_batch(CLASSIFY_FALLBACK)?;
    }
    for sql in ANALYSIS_VIEWS {
        conn.execute_batch(&local(sql))?;
    }
    Ok(())
}

/// A fingerprint of the views this binary installs: a reader served by a tailer compares
/// it with its own to notice a tailer of another version.
/// Computed once per process (every socket answer carries it).
pub fn views_fingerprint() -> &'static str {
    static FINGERPRINT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    FINGERPRINT.get_or_init(|| {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        let classify = classify_views();
        for sql in classify.iter().map(|v| &**v).chain(ANALYSIS_VIEWS).chain([EPISODE_CAUSES, DERIVED_MACROS, EVALUATIONS_MACRO]) {
            h.update(sql.as_bytes());
            h.update([0]);
        }
        for cause in crate::vocab::Cause::all() {
            h.update(format!("{cause}={}\0", cause.episode_kind().map_or("", |k| k.as_str())));
        }
        h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
    })
}
/// Report: totals in a period.
pub const REPORT_TOTALS: &str = include_str!("../queries/report_totals.sql");
/// Report: misses by cause with top symbols.
pub const REPORT_CAUSES: &str = include_str!("../queries/report_causes.sql");
/// Report: episodes overlapping a period.
pub const REPORT_EPISODES: &str = include_str!("../queries/report_episodes.sql");
/// Alert periods of a period: those that fired (a report), or all going on (`slo --at`).
pub const REPORT_ALERTS: &str = include_str!("../queries/report_alerts.sql");
/// Report: error budget and breach minutes.
pub const REPORT_BUDGET: &str = include_str!("../queries/report_budget.sql");
/// Report: the 5-minute ratio over a period.
pub const REPORT_TIMELINE: &str = include_str!("../queries/report_timeline.sql");
/// Incident: evidence lines per cause.
pub const INCIDENT_EVIDENCE: &str = include_str!("../queries/incident_evidence.sql");
/// The time range of all requests.
pub const DATA_RANGE: &str = include_str!("../queries/data_range.sql");
/// Doctor: the latest ratio, firing alerts, the last hour's failures and invalidations.
pub const DOCTOR_EVENTS: &str = include_str!("../queries/doctor_events.sql");
/// Adds a commit's staged per-minute figures to `request_minutes`.
pub const REQUEST_MINUTES_MERGE: &str = include_str!("../queries/request_minutes_merge.sql");
/// Adds one row's figures to `request_minutes`.
pub const REQUEST_MINUTES_UPSERT: &str = include_str!("../queries/request_minutes_upsert.sql");
/// Empties `request_minutes` before a rebuild.
pub const REQUEST_MINUTES_CLEAR: &str = include_str!("../queries/request_minutes_clear.sql");
/// `request_minutes` of [$1, $2) from `events`.
pub const REQUEST_MINUTES_REBUILD: &str = include_str!("../queries/request_minutes_rebuild.sql");
/// Stages one minute a commit added to (whose evaluations are recomputed).
pub const EVALUATIONS_STAGE: &str = include_str!("../queries/evaluations_stage.sql");
/// Recomputes the evaluations over the staged minutes.
pub const EVALUATIONS_UPDATE: &str = include_str!("../queries/evaluations_update.sql");
/// `evaluations_5m` of [$1, $2] from `request_minutes`.
pub const EVALUATIONS_REBUILD: &str = include_str!("../queries/evaluations_rebuild.sql");
/// Empties `evaluations_5m` before a rebuild.
pub const EVALUATIONS_CLEAR: &str = include_str!("../queries/evaluations_clear.sql");
/// `evaluations_5m_of(lo, hi)`: the evaluations' definition over `request_minutes` (the
/// fleet's too, which has no `events` for the other derived macros).
pub const EVALUATIONS_MACRO: &str = include_str!("../queries/evaluations_macro.sql");
/// A reader's `evaluations_5m` on a database without an up-to-date one.
pub const EVALUATIONS_FALLBACK: &str = include_str!("../queries/evaluations_fallback.sql");
/// Records that the derived tables hold every event ingested.
pub const DERIVED_EVENTS_SAVE: &str = include_str!("../queries/derived_events_save.sql");
/// The events the derived tables hold, and the events ingested.
pub const DERIVED_EVENTS_CHECK: &str = include_str!("../queries/derived_events_check.sql");
/// Records that one derived table is not built (a rebuild of it alone has begun).
pub const DERIVED_UNBUILT_ONE: &str = include_str!("../queries/derived_unbuilt_one.sql");
/// The version each derived table was built with.
pub const DERIVED_VERSION: &str = include_str!("../queries/derived_version.sql");
/// Records a built derived table.
pub const DERIVED_BUILT: &str = include_str!("../queries/derived_built.sql");
/// The derived tables' definitions over `events` (table macros).
pub const DERIVED_MACROS: &str = include_str!("../queries/derived_macros.sql");
/// A reader's `request_minutes` on a database without an up-to-date one.
pub const REQUEST_MINUTES_FALLBACK: &str = include_str!("../queries/request_minutes_fallback.sql");
/// Whether a derived tables' record (`derived_tables`, `derived_events`) exists.
pub const DERIVED_EXISTS: &str = include_str!("../queries/derived_exists.sql");
/// The time range derived tables are built from.
pub const DERIVED_RANGE: &str = include_str!("../queries/derived_range.sql");
/// What-if: the ordinary hits (numeric keys) in order.
pub const WHATIF_STREAM_HITS: &str = include_str!("../queries/whatif_stream_hits.sql");
/// What-if: every other event a cache replays, in the same order as the hits.
pub const WHATIF_STREAM_OTHERS: &str = include_str!("../queries/whatif_stream_others.sql");
/// What-if: its DuckDB memory cap.
pub const WHATIF_MEMORY: &str = include_str!("../queries/whatif_memory.sql");
/// What-if: the session's memory cap kept, to be put back.
pub const WHATIF_MEMORY_KEEP: &str = include_str!("../queries/whatif_memory_keep.sql");
/// What-if's memory cap when the first one was too tight.
pub const WHATIF_MEMORY_RETRY: &str = include_str!("../queries/whatif_memory_retry.sql");
/// Keeps the order of a query's rows through the tailer's socket, whatever the ingester set.
pub const QUERY_ORDER_KEEP: &str = include_str!("../queries/query_order_keep.sql");
/// The ingester's order setting, read before requests change it.
pub const QUERY_ORDER_SETTING: &str = include_str!("../queries/query_order_setting.sql");
/// Puts the session's memory cap back after what-if's read.
pub const WHATIF_MEMORY_RESTORE: &str = include_str!("../queries/whatif_memory_restore.sql");
/// What-if: the lines that set the engine's settings in a range.
pub const WHATIF_SETTINGS_LINES: &str = include_str!("../queries/whatif_settings_lines.sql");
/// Export: the days of a period that have requests.
pub const EXPORT_DAYS: &str = include_str!("../queries/export_days.sql");
/// Export: a day's per-minute figures.
pub const EXPORT_MINUTES: &str = include_str!("../queries/export_minutes.sql");
/// Export: a day's misses with their causes.
pub const EXPORT_MISSES: &str = include_str!("../queries/export_misses.sql");
/// Export: the episodes that start on a day.
pub const EXPORT_EPISODES: &str = include_str!("../queries/export_episodes.sql");
/// The fleet's tables (from Parquet) and the views the analysis reads over them.
pub const FLEET_SCHEMA: &str = include_str!("../queries/fleet_schema.sql");
/// The fleet's views read every host...
pub const FLEET_SCOPE_CLEAR: &str = include_str!("../queries/fleet_scope_clear.sql");
/// ...or one.
pub const FLEET_SCOPE_SET: &str = include_str!("../queries/fleet_scope_set.sql");
/// Sums the per-minute figures of the hosts in scope.
pub const FLEET_SCOPE_MINUTES: &str = include_str!("../queries/fleet_scope_minutes.sql");
/// Empties the fleet's misses and episodes.
pub const FLEET_DETAILS_CLEAR: &str = include_str!("../queries/fleet_details_clear.sql");
/// The fleet's hosts.
pub const FLEET_HOSTS: &str = include_str!("../queries/fleet_hosts.sql");
/// Misses by host and cause.
pub const FLEET_CAUSES_BY_HOST: &str = include_str!("../queries/fleet_causes_by_host.sql");
/// The fleet's episodes, with their host.
pub const FLEET_EPISODES: &str = include_str!("../queries/fleet_episodes.sql");
/// `sql --schema`: tables and views with their columns.
pub const SQL_SCHEMA: &str = include_str!("../queries/sql_schema.sql");
/// Whether a session's materialized evaluations must widen (an end breaches).
pub const EVALUATION_EDGES: &str = include_str!("../queries/evaluation_edges.sql");
/// The last alert that fired.
pub const LAST_ALERT: &str = include_str!("../queries/last_alert.sql");
