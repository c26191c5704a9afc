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
