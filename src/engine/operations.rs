//! Maintenance operations: market-data updates, configuration and setting changes,
//! retention clean-up, and the runbook's cache warming.

use std::time::Instant;

use chrono::{Duration, NaiveDateTime};

use super::clock::fmt_ts;
use super::eventlog::quote;
use super::manifest::EntryState;
use super::{Config, EngineError, FeatureRequest, FeatureStore, Level, Mode, Params};
use super::{CleanupReport, WarmReport};
use super::request::{cells, Work};
use crate::vocab::{Event, Field, FillOutcome, RetireReason};

impl FeatureStore {
    /// A market-data update for `symbol`: every cached key built on an older version is
    /// invalidated (its file deleted). Returns how many.
    pub fn market_data_updated(&mut self, symbol: &str) -> Result<u64, EngineError> {
        let now = self.clock.now();
        self.housekeeping(now);
        let version = self.source.version(symbol).map_err(|source| EngineError::MarketData {
            symbol: symbol.to_string(),
            source,
        })?;
        let stale = self.invalidate_where(RetireReason::MarketData, now, |k| {
            k.symbol == symbol && k.data_version != version
        });
        self.log.write(
            now,
            Level::Info,
            &format!("Market data updated for {}", quote(symbol)),
            Event::MarketDataUpdate,
            &[
                (Field::Symbol, &symbol),
                (Field::DataVersion, &version),
                (Field::Invalidated, &stale),
            ],
        );
        self.maybe_flush(now);
        Ok(stale)
    }

    /// Changes a feature set's configuration; every cached key of the set with another
    /// configuration hash is invalidated. Returns the new hash and how many were invalidated.
    pub fn set_feature_config(&mut self, name: &str, changes: &Params) -> Result<(String, u64), EngineError> {
        let now = self.clock.now();
        self.housekeeping(now);
        let previous = self.features.get(name)?.config_hash.clone();
        let hash = self.features.configure(name, changes)?;
        let params = self.features.get(name)?.params_string();
        let stale = self.invalidate_where(RetireReason::Config, now, |k| {
            k.feature_set == name && k.config_hash != hash
        });
        self.log.write(
            now,
            Level::Info,
            &format!("Feature set {name} configuration changed"),
            Event::ConfigChange,
            &[
                (Field::FeatureSet, &name),
                (Field::Config, &hash),
                (Field::PreviousConfig, &previous),
                (Field::Params, &params),
                (Field::Invalidated, &stale),
            ],
        );
        self.maybe_flush(now);
        Ok((hash, stale))
    }

    /// Changes the capacity; shrinking it evicts at once.
    pub fn set_max_cache_size_gb(&mut self, gb: f64) -> Result<(), EngineError> {
        let used = self.index.cached_totals().1;
        let now = self.change_setting(|c| &mut c.max_cache_size_gb, gb, "Cache capacity changed", Event::CapacityChange, (Field::MaxCacheSizeGb, Field::PreviousMaxCacheSizeGb), &[(Field::UsedBytes, &used)])?;
        self.enforce_capacity(now, None);
        self.maybe_flush(now);
        Ok(())
    }

    /// Changes the retention used by the next `cleanup()`.
    pub fn set_retention_days(&mut self, days: f64) -> Result<(), EngineError> {
        self.change_setting(|c| &mut c.retention_days, days, "Cache retention changed", Event::RetentionChange, (Field::RetentionDays, Field::PreviousRetentionDays), &[])?;
        Ok(())
    }

    /// Changes the memory budget of each feature computation.
    pub fn set_memory_limit_mb(&mut self, mb: f64) -> Result<(), EngineError> {
        self.change_setting(|c| &mut c.memory_limit_mb, mb, "Feature computation limit changed", Event::ComputeLimitChange, (Field::ComputeLimitMb, Field::PreviousComputeLimitMb), &[])?;
        self.memory_limit_bytes = (mb * 1e6) as u64;
        Ok(())
    }

    /// Sets one number of the configuration (validated as a whole) and logs `event` with the
    /// new value and the old one as the two `names`, then `extra`. Returns the time.
    pub(super) fn change_setting(
        &mut self,
        field: fn(&mut Config) -> &mut f64,
        value: f64,
        message: &str,
        event: Event,
        names: (Field, Field),
        extra: &[(Field, &dyn std::fmt::Display)],
    ) -> Result<NaiveDateTime, EngineError> {
        let mut c = self.cfg.clone();
        let previous = *field(&mut c);
        *field(&mut c) = value;
        c.validate()?;
        self.cfg = c;
        let now = self.clock.now();
        let mut fields: Vec<(Field, &dyn std::fmt::Display)> = vec![(names.0, &value), (names.1, &previous)];
        fields.extend_from_slice(extra);
        self.log.write(now, Level::Warn, message, event, &fields);
        Ok(now)
    }

    /// Deletes cache files older than `retention_days` (by creation time) and temp files
    /// left by interrupted writes. With `dry_run`, only reports what it would do.
    pub fn cleanup(&mut self, dry_run: bool) -> CleanupReport {
        let now = self.clock.now();
        self.housekeeping(now);
        let cutoff = now - Duration::milliseconds((self.cfg.retention_days * 86_400_000.0) as i64);
        let mut old: Vec<(NaiveDateTime, String, u64)> = self
            .index
            .entries()
            .filter(|e| e.state == EntryState::Cached && e.created < cutoff)
            .map(|e| (e.created, e.id.clone(), e.bytes))
            .collect();
        old.sort();
        let mut report = CleanupReport {
            dry_run,
            retention_days: self.cfg.retention_days,
            ..Default::default()
        };
        for (_, id, bytes) in &old {
            report.removed_files += 1;
            report.freed_bytes += if dry_run { *bytes } else { self.retire(id, RetireReason::Retention, now) };
        }
        if !dry_run {
            report.removed_temp_files = self.remove_stale_temps(now, Some(Duration::hours(1)));
        }
        let (files, bytes) = self.cached_totals();
        report.remaining_files = files - if dry_run { report.removed_files } else { 0 };
        report.remaining_bytes = bytes - if dry_run { report.freed_bytes } else { 0 };
        self.log.write(
            now,
            Level::Info,
            if dry_run { "Cache cleanup dry run" } else { "Cache cleanup finished" },
            Event::Cleanup,
            &[
                (Field::DryRun, &dry_run),
                (Field::RetentionDays, &report.retention_days),
                (Field::RemovedFiles, &report.removed_files),
                (Field::FreedBytes, &report.freed_bytes),
                (Field::RemainingFiles, &report.remaining_files),
                (Field::RemainingBytes, &report.remaining_bytes),
            ],
        );
        if !dry_run {
            self.flush_now(now);
        }
        report
    }

    /// The runbook's emergency cache warming: computes and stores every (symbol, feature
    /// set) for the range that is not cached yet. Warm-ups are not requests: they log
    /// `warm_fill` lines, not `Cache MISS`.
    pub fn warm(
        &mut self,
        symbols: &[String],
        feature_sets: &[String],
        start: NaiveDateTime,
        end: NaiveDateTime,
    ) -> Result<WarmReport, EngineError> {
        let now = self.clock.now();
        self.housekeeping(now);
        if end <= start {
            return Err(EngineError::BadRequest(format!(
                "warm range ends ({}) before it starts ({})",
                fmt_ts(end),
                fmt_ts(start)
            )));
        }
        for fs in feature_sets {
            self.features.get(fs)?;
        }
        let mut report = WarmReport::default();
        for sym in symbols {
            for fs in feature_sets {
                report.requested += 1;
                let started = Instant::now();
                let key = self.key_for(&FeatureRequest::new(sym, fs, start, end))?;
                let id = key.id();
                let cached = self.index.cached(&id).is_some_and(|e| e.path.is_file());
                if cached {
                    report.already_cached += 1;
                    continue;
                }
                if self.mode != Mode::Available {
                    report.failed += 1;
                    continue;
                }
                self.supersede(&key, &id, now);
                if self.symbols.insert(sym.clone()) {
                    self.new_symbols.push((sym.clone(), now));
                }
                let (outcome, bytes, n) = match self.fill(&key, &id, now) {
                    Ok((b, true, bytes)) => {
                        report.stored += 1;
                        (FillOutcome::Stored, bytes, cells(&b))
                    }
                    Ok((b, false, _)) => {
                        report.failed += 1;
                        (FillOutcome::WriteFailed, 0, cells(&b))
                    }
                    Err(_) => {
                        report.failed += 1;
                        (FillOutcome::ComputeFailed, 0, 0)
                    }
                };
                let secs = self.latency_of(started, Work { hit: false, bytes, cells: n });
                let latency_us = (secs * 1e6).round() as u64;
                self.log.write(
                    now,
                    Level::Info,
                    &format!("Cache warm-up filled {}", quote(sym)),
                    Event::WarmFill,
                    &[
                        (Field::Symbol, sym),
                        (Field::FeatureSet, fs),
                        (Field::Key, &id),
                        (Field::Slot, &key.slot()),
                        (Field::Config, &key.config_hash),
                        (Field::DataVersion, &key.data_version),
                        (Field::Bytes, &bytes),
                        (Field::LatencyUs, &latency_us),
                        (Field::Outcome, &outcome),
                    ],
                );
            }
        }
        self.log.write(
            now,
            Level::Info,
            "Cache warm-up finished",
            Event::Warm,
            &[
                (Field::Symbols, &symbols.len()),
                (Field::FeatureSets, &feature_sets.join(",")),
                (Field::Start, &fmt_ts(start)),
                (Field::End, &fmt_ts(end)),
                (Field::Requested, &report.requested),
                (Field::AlreadyCached, &report.already_cached),
                (Field::Stored, &report.stored),
                (Field::Failed, &report.failed),
            ],
        );
        self.flush_now(now);
        Ok(report)
    }
}
