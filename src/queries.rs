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
/// Creates the events database's tables and views.
pub const EVENTS_SCHEMA: &str = include_str!("../queries/schema.sql");
/// Upserts one file's checkpoint.
pub const INGEST_CHECKPOINT: &str = include_str!("../queries/ingest_checkpoint.sql");
/// Reads every file checkpoint.
pub const INGEST_FILES_LOAD: &str = include_str!("../queries/ingest_files_load.sql");
/// The `ordered_events` and `miss_causes` views: every miss's cause, inferred from the sequence.
pub const CLASSIFY_MISSES: &str = include_str!("../queries/classify_misses.sql");
/// `thresholds`, `hit_ratio_1m`, `hit_ratio_5m`, `alerts`.
pub const SLO: &str = include_str!("../queries/slo.sql");
/// `episode_misses`, `episode_signals`, `episodes`.
pub const EPISODES: &str = include_str!("../queries/episodes.sql");
