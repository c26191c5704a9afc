//! The log's vocabulary, defined once: the names of the events the engine writes, of their
//! fields, and the words its `reason=` and `outcome=` fields take (`docs/log-format.md`).
//!
//! The engine's writer ([`crate::engine::EventLog::write`]) takes an [`Event`] and
//! [`Field`]s, never strings; the ingester's reader (`ingest::formats`) recognises the same
//! [`Field`]s; the SQL in `queries/` names events, reasons and causes in these words, which
//! the tests below check, as they check that `docs/log-format.md` documents every event.

use std::fmt;

/// Declares an enum of words: each variant's name in the log, `ALL`, `as_str`, `parse`
/// and `Display`.
macro_rules! words {
    ($(#[$meta:meta])* $vis:vis enum $name:ident in $lens:ident { $($(#[$vmeta:meta])* $variant:ident = $word:literal,)* }) => {
        /// Each word's length, to match by length first (a `const` can be a pattern).
        #[allow(non_upper_case_globals)]
        mod $lens {
            $(pub const $variant: usize = $word.len();)*
        }

        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl $name {
            /// Every word, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The word as the log writes it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word,)*
                }
            }

            /// The variant a word names, if any.
            pub fn parse(word: &str) -> Option<$name> {
                // By length first: the reader calls this for every field of every line.
                match (word.len(), word) {
                    $(($lens::$variant, $word) => Some($name::$variant),)*
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

words! {
    /// What a log line records: its `event=` field.
    pub enum Event in event_len {
        Startup = "startup",
        Shutdown = "shutdown",
        /// A request served from cache.
        Hit = "hit",
        /// A request not served from cache (`reason=`, `outcome=`).
        Miss = "miss",
        /// A cached key made stale by new market data or configuration (`reason=`).
        Invalidation = "invalidation",
        /// A cached key removed for capacity or retention (`reason=`).
        Eviction = "eviction",
        CapacityCleanup = "capacity_cleanup",
        Cleanup = "cleanup",
        WarmFill = "warm_fill",
        Warm = "warm",
        WriteFailed = "write_failed",
        ComputeFailed = "compute_failed",
        MissingFile = "missing_file",
        DeleteFailed = "delete_failed",
        UnreadableFile = "unreadable_file",
        TempFilesRemoved = "temp_files_removed",
        MarketDataUpdate = "market_data_update",
        ConfigChange = "config_change",
        CapacityChange = "capacity_change",
        RetentionChange = "retention_change",
        ComputeLimitChange = "compute_limit_change",
        ManifestUnavailable = "manifest_unavailable",
        ManifestAvailable = "manifest_available",
        ManifestCreated = "manifest_created",
        ManifestRebuilt = "manifest_rebuilt",
        ManifestReconciled = "manifest_reconciled",
        ManifestError = "manifest_error",
        /// What the reader records for a line of another format that no rule recognises.
        Other = "other",
    }
}

words! {
    /// A `key=value` field's name. The first twelve also name columns of the events table
    /// (with `level` and `message`, which are the line's own parts in the engine's format and
    /// fields in JSON lines).
    pub enum Field in field_len {
        Event = "event",
        Level = "level",
        Message = "message",
        Symbol = "symbol",
        FeatureSet = "feature_set",
        Key = "key",
        Slot = "slot",
        Reason = "reason",
        Outcome = "outcome",
        Config = "config",
        DataVersion = "data_version",
        Bytes = "bytes",
        LatencyUs = "latency_us",
        Error = "error",
        Op = "op",
        Start = "start",
        End = "end",
        Path = "path",
        AgeS = "age_s",
        Version = "version",
        CacheDir = "cache_dir",
        ManifestPath = "manifest_path",
        CompressionLevel = "compression_level",
        MaxCacheSizeGb = "max_cache_size_gb",
        PreviousMaxCacheSizeGb = "previous_max_cache_size_gb",
        CleanupThreshold = "cleanup_threshold",
        EvictionTarget = "eviction_target",
        RetentionDays = "retention_days",
        PreviousRetentionDays = "previous_retention_days",
        ComputeLimitMb = "compute_limit_mb",
        PreviousComputeLimitMb = "previous_compute_limit_mb",
        MarketData = "market_data",
        FeatureSets = "feature_sets",
        PreviousConfig = "previous_config",
        Params = "params",
        Invalidated = "invalidated",
        Evicted = "evicted",
        FreedBytes = "freed_bytes",
        UsedBefore = "used_before",
        UsedAfter = "used_after",
        UsedBytes = "used_bytes",
        MaxBytes = "max_bytes",
        DryRun = "dry_run",
        RemovedFiles = "removed_files",
        RemainingFiles = "remaining_files",
        RemainingBytes = "remaining_bytes",
        OsError = "os_error",
        NeededBytes = "needed_bytes",
        LimitBytes = "limit_bytes",
        Symbols = "symbols",
        Requested = "requested",
        AlreadyCached = "already_cached",
        Stored = "stored",
        Failed = "failed",
        Holder = "holder",
        Pid = "pid",
        UnavailableS = "unavailable_s",
        Files = "files",
        SetAside = "set_aside",
        CachedFiles = "cached_files",
        CachedBytes = "cached_bytes",
        PendingManifestChanges = "pending_manifest_changes",
    }
}

words! {
    /// Why a request was not served from cache: a miss's `reason=`, in the engine's words.
    /// The analysis infers the same words from the events alone (`miss_causes.cause`).
    pub enum MissReason in miss_reason_len {
        NewSymbol = "new_symbol",
        NewKey = "new_key",
        InvalidatedData = "invalidated_data",
        InvalidatedConfig = "invalidated_config",
        EvictedCapacity = "evicted_capacity",
        EvictedRetention = "evicted_retention",
        WriteFailed = "write_failed",
        ComputeFailed = "compute_failed",
        MissingFile = "missing_file",
        ManifestUnavailable = "manifest_unavailable",
    }
}

words! {
    /// Why a cached key was retired: the `reason=` of an `invalidation` or `eviction` line.
    pub enum RetireReason in retire_reason_len {
        /// Invalidated: its market data changed.
        MarketData = "market_data",
        /// Invalidated: its feature set's configuration changed.
        Config = "config",
        /// Evicted to make room.
        Capacity = "capacity",
        /// Evicted by clean-up as older than the retention.
        Retention = "retention",
    }
}

/// A line's `reason=` in the engine's words (a miss's or a retirement's), `""` when it has
/// none, `other` for any other text: what the ingester counts by and the tailer labels its
/// metrics with, so that free text in a log cannot make a count, or a series, per line.
pub fn reason_word(reason: Option<&str>) -> &'static str {
    match reason {
        None | Some("") => "",
        Some(r) => MissReason::parse(r)
            .map(MissReason::as_str)
            .or_else(|| RetireReason::parse(r).map(RetireReason::as_str))
            .unwrap_or("other"),
    }
}

impl RetireReason {
    /// The event that records it.
    pub fn event(self) -> Event {
        match self {
            RetireReason::MarketData | RetireReason::Config => Event::Invalidation,
            RetireReason::Capacity | RetireReason::Retention => Event::Eviction,
        }
    }

    /// Why the next request of the key misses.
    pub fn miss_reason(self) -> MissReason {
        match self {
            RetireReason::MarketData => MissReason::InvalidatedData,
            RetireReason::Config => MissReason::InvalidatedConfig,
            RetireReason::Capacity => MissReason::EvictedCapacity,
            RetireReason::Retention => MissReason::EvictedRetention,
        }
    }
}

words! {
    /// What became of a miss's (or a warm-up's) result: its `outcome=`.
    pub enum FillOutcome in fill_outcome_len {
        Stored = "stored",
        /// Computed, but the cache file could not be written.
        WriteFailed = "write_failed",
        /// Computed while the manifest was unavailable: served, not stored.
        Uncached = "uncached",
        /// Not computed.
        ComputeFailed = "compute_failed",
    }
}

/// A miss's cause as the analysis infers it (`miss_causes.cause`): one of the engine's
/// reasons, or a vaguer word left when a log lacks what would decide between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cause {
    Engine(MissReason),
    /// Invalidated, for a reason the log does not say.
    Invalidated,
    /// Evicted, for a reason the log does not say.
    Evicted,
    Unknown,
}

impl Cause {
    /// Every cause: the engine's reasons, then the vague words.
    pub fn all() -> impl Iterator<Item = Cause> {
        MissReason::ALL
            .iter()
            .map(|r| Cause::Engine(*r))
            .chain([Cause::Invalidated, Cause::Evicted, Cause::Unknown])
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Cause::Engine(r) => r.as_str(),
            Cause::Invalidated => "invalidated",
            Cause::Evicted => "evicted",
            Cause::Unknown => "unknown",
        }
    }

    pub fn parse(word: &str) -> Option<Cause> {
        MissReason::parse(word)
            .map(Cause::Engine)
            .or_else(|| Cause::all().skip(MissReason::ALL.len()).find(|c| c.as_str() == word))
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Cause {
    /// The kind of episode whose misses have this cause (`None`: too vague to tell). The
    /// episodes' SQL reads this mapping from the `episode_causes` table, filled from here.
    pub fn episode_kind(self) -> Option<EpisodeKind> {
        let Cause::Engine(reason) = self else { return None };
        Some(match reason {
            MissReason::NewSymbol | MissReason::NewKey => EpisodeKind::NewSymbols,
            MissReason::InvalidatedData => EpisodeKind::InvalidationStorm,
            MissReason::InvalidatedConfig => EpisodeKind::ConfigChange,
            MissReason::EvictedCapacity => EpisodeKind::Thrashing,
            MissReason::EvictedRetention => EpisodeKind::Retention,
            MissReason::WriteFailed => EpisodeKind::DiskFull,
            MissReason::ComputeFailed => EpisodeKind::MemoryPressure,
            MissReason::ManifestUnavailable => EpisodeKind::ManifestOutage,
            MissReason::MissingFile => EpisodeKind::ExternalDeletion,
        })
    }

    /// Whether the runbook calls it expected churn (silence the alert, let the cache refill)
    /// rather than something to fix.
    pub fn expected_churn(self) -> bool {
        matches!(
            self,
            Cause::Engine(
                MissReason::NewSymbol | MissReason::NewKey | MissReason::InvalidatedData | MissReason::InvalidatedConfig
            ) | Cause::Invalidated
        )
    }
}

words! {
    /// What an engineer would name a stretch of misses (`episodes.kind`).
    pub enum EpisodeKind in episode_kind_len {
        NewSymbols = "new_symbols",
        InvalidationStorm = "invalidation_storm",
        ConfigChange = "config_change",
        Thrashing = "thrashing",
        Retention = "retention",
        DiskFull = "disk_full",
        MemoryPressure = "memory_pressure",
        ManifestOutage = "manifest_outage",
        ExternalDeletion = "external_deletion",
    }
}

impl EpisodeKind {
    /// The engine's reasons of the misses this episode explains.
    pub fn reasons(self) -> Vec<MissReason> {
        MissReason::ALL.iter().copied().filter(|r| Cause::from(*r).episode_kind() == Some(self)).collect()
    }

    /// How the runbook sees it: `expected_churn` to silence, or `actionable`.
    pub fn runbook_class(self) -> &'static str {
        if self.reasons().iter().all(|r| Cause::from(*r).expected_churn()) {
            "expected_churn"
        } else {
            "actionable"
        }
    }
}

impl From<MissReason> for Cause {
    fn from(r: MissReason) -> Cause {
        Cause::Engine(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn all_words() -> Vec<&'static str> {
        let mut v: Vec<&str> = Event::ALL.iter().map(|e| e.as_str()).collect();
        v.extend(Field::ALL.iter().map(|e| e.as_str()));
        v
    }

    #[test]
    fn every_episode_kind_explains_some_reason() {
        for k in EpisodeKind::ALL {
            assert!(!k.reasons().is_empty(), "{k}");
        }
        assert_eq!(EpisodeKind::NewSymbols.reasons(), vec![MissReason::NewSymbol, MissReason::NewKey]);
        assert_eq!(EpisodeKind::InvalidationStorm.runbook_class(), "expected_churn");
        assert_eq!(EpisodeKind::Thrashing.runbook_class(), "actionable");
    }

    #[test]
    fn words_parse_back_and_are_unique_within_their_kind() {
        for e in Event::ALL {
            assert_eq!(Event::parse(e.as_str()), Some(*e));
        }
        for f in Field::ALL {
            assert_eq!(Field::parse(f.as_str()), Some(*f));
        }
        for r in MissReason::ALL {
            assert_eq!(MissReason::parse(r.as_str()), Some(*r));
            assert_eq!(Cause::from(*r).as_str(), r.as_str());
        }
        for c in Cause::all() {
            assert_eq!(Cause::parse(c.as_str()), Some(c));
        }
        assert_eq!(Cause::parse("evicted"), Some(Cause::Evicted));
        assert_eq!(Cause::parse("nope"), None);
        assert_eq!(Field::parse("keys"), None);
        assert_eq!(Event::parse(""), None);
        let n = Field::ALL.len();
        assert_eq!(Field::ALL.iter().map(|f| f.as_str()).collect::<BTreeSet<_>>().len(), n);
        assert!(all_words().iter().all(|w| w.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')));
    }

    /// Every event the engine writes is documented, and every documented event is one.
    #[test]
    fn the_log_format_documents_every_event_and_field() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/log-format.md")).unwrap();
        let mut documented = BTreeSet::new();
        for line in doc.lines().filter(|l| l.starts_with("| `")) {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let name = cells[1].trim_matches('`');
            if cells.len() == 6 && name != "event" {
                let e = Event::parse(name).unwrap_or_else(|| panic!("docs/log-format.md documents `{name}`, which is not an Event"));
                documented.insert(e);
                // The fields column: every backquoted word that is a field name.
                for word in cells[4].split('`').skip(1).step_by(2).flat_map(|s| s.split_whitespace()) {
                    let word = word.split('=').next().unwrap();
                    if word.chars().all(|c| c.is_ascii_lowercase() || c == '_') && !word.is_empty() {
                        let known = Field::parse(word).is_some()
                            || Event::parse(word).is_some()
                            || RetireReason::parse(word).is_some()
                            || word == "get_or_compute";
                        assert!(known, "docs/log-format.md: `{word}` in the row of `{name}` is not in the vocabulary");
                    }
                }
            }
        }
        let missing: Vec<_> = Event::ALL.iter().filter(|e| **e != Event::Other && !documented.contains(*e)).collect();
        assert!(missing.is_empty(), "not documented in docs/log-format.md: {missing:?}");
    }

    /// The quoted words the SQL compares `event`, `reason`, `outcome` and `cause` with are
    /// words of this vocabulary: a renamed event cannot silently stop matching.
    #[test]
    fn the_sql_speaks_this_vocabulary() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/queries");
        let re = regex::Regex::new(
            r"(?i)\b(event|reason|outcome|cause|prev_event|lag_event|prev_reason|prev_outcome|followed_by|prev_followed_by|cause_hint|prev_eviction_summary|manifest_state|logged_reason|kind)\s*(=|<>|IN|NOT IN)\s*(\([^)]*\)|'[^']*')",
        )
        .unwrap();
        let quoted = regex::Regex::new(r"'([^']*)'").unwrap();
        let mut checked = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let sql = std::fs::read_to_string(&path).unwrap();
            for c in re.captures_iter(&sql) {
                let column = c[1].to_ascii_lowercase();
                for w in quoted.captures_iter(&c[3]) {
                    let w = &w[1];
                    let ok = match column.as_str() {
                        "reason" | "prev_reason" | "logged_reason" => {
                            MissReason::parse(w).is_some() || RetireReason::parse(w).is_some()
                        }
                        "outcome" | "prev_outcome" => FillOutcome::parse(w).is_some(),
                        "cause" | "cause_hint" => Cause::parse(w).is_some(),
                        // '': `episode_state`'s row for the kinds without one of their own.
                        "kind" => w.is_empty() || EpisodeKind::parse(w).is_some(),
                        _ => Event::parse(w).is_some(),
                    };
                    assert!(ok, "{}: `{column}` compared with '{w}', which is not in src/vocab.rs", path.display());
                    checked += 1;
                }
            }
        }
        assert!(checked > 50, "only {checked} words found: has the SQL's shape changed?");
    }
}
