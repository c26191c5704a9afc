//! The request path: [`FeatureStore::get_or_compute`], the miss's reason, the computation,
//! the cache write, and the request's log line.

use std::path::PathBuf;
use std::time::Instant;

use arrow::array::RecordBatch;
use chrono::NaiveDateTime;

use super::cachefile;
use super::clock::fmt_ts;
use super::eventlog::quote;
use super::features::{ComputeError, MemoryBudget};
use super::manifest::{Entry, EntryState};
use super::{CacheKey, EngineError, FeatureRequest, FeatureStore, Features, LatencyMode, Level, MissReason, Mode, Outcome};
use crate::vocab::{Event, Field, FillOutcome, RetireReason};

/// The work a request did, for the latency model.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Work {
    pub(super) hit: bool,
    pub(super) bytes: u64,
    pub(super) cells: u64,
}

fn modelled_latency(w: Work) -> f64 {
    if w.hit {
        50e-6 + w.bytes as f64 / 150e6
    } else {
        200e-6 + w.cells as f64 * 0.2e-6 + w.bytes as f64 / 80e6
    }
}

pub(super) fn cells(batches: &[RecordBatch]) -> u64 {
    batches.iter().map(|b| (b.num_rows() * b.num_columns()) as u64).sum()
}

impl FeatureStore {
    /// Serves `req` from cache, or computes, stores and returns it.
    pub fn get_or_compute(&mut self, req: &FeatureRequest) -> Result<Features, EngineError> {
        let started = Instant::now();
        let now = self.clock.now();
        self.housekeeping(now);
        if req.end <= req.start {
            return Err(EngineError::BadRequest(format!(
                "range of `{}`/`{}` ends ({}) before it starts ({})",
                req.symbol,
                req.feature_set,
                fmt_ts(req.end),
                fmt_ts(req.start)
            )));
        }
        let key = self.key_for(req)?;
        let id = key.id();

        let mut reason = None;
        if self.mode == Mode::Available {
            if let Some(e) = self.index.cached(&id) {
                let path = e.path.clone();
                match cachefile::read(&path, &id) {
                    Ok(batches) => {
                        let bytes = self.record_hit(&id, now);
                        let secs = self.latency_of(started, Work { hit: true, bytes, cells: 0 });
                        self.metrics.hit(secs);
                        self.log_request(now, "Cache HIT", Event::Hit, &key, &id, bytes, secs, None);
                        return Ok(Features {
                            batches,
                            key,
                            key_id: id,
                            outcome: Outcome::Hit,
                        });
                    }
                    Err(err) => {
                        self.log.write(
                            now,
                            Level::Warn,
                            &format!("Cache file missing or unreadable for {}", quote(&req.symbol)),
                            Event::MissingFile,
                            &[
                                (Field::Symbol, &req.symbol),
                                (Field::FeatureSet, &req.feature_set),
                                (Field::Key, &id),
                                (Field::Path, &path.display()),
                                (Field::Error, &err),
                            ],
                        );
                        self.uncache(&id, EntryState::MissingFile, now);
                        reason = Some(MissReason::MissingFile);
                    }
                }
            }
        }
        let reason = match reason {
            Some(r) => r,
            None => self.miss_reason(&key, &id, now),
        };
        if self.symbols.insert(req.symbol.clone()) {
            self.new_symbols.push((req.symbol.clone(), now));
        }
        let result = self.fill(&key, &id, now);
        let work = match &result {
            Ok((b, _, bytes)) => Work { hit: false, bytes: *bytes, cells: cells(b) },
            Err(_) => Work::default(),
        };
        let secs = self.latency_of(started, work);
        self.metrics.miss(reason.as_str(), secs);
        match result {
            Ok((batches, stored, bytes)) => {
                let outcome = if stored {
                    FillOutcome::Stored
                } else if self.mode == Mode::Available {
                    FillOutcome::WriteFailed
                } else {
                    FillOutcome::Uncached
                };
                self.log_request(now, "Cache MISS", Event::Miss, &key, &id, bytes, secs, Some((reason, outcome)));
                self.maybe_flush(now);
                Ok(Features {
                    batches,
                    key,
                    key_id: id,
                    outcome: Outcome::Miss { reason, stored },
                })
            }
            Err(mut e) => {
                self.log_request(now, "Cache MISS", Event::Miss, &key, &id, 0, secs, Some((reason, FillOutcome::ComputeFailed)));
                self.maybe_flush(now);
                if let EngineError::Compute { reason: r, .. } = &mut e {
                    *r = Some(reason);
                }
                Err(e)
            }
        }
    }

    pub(super) fn latency_of(&self, started: Instant, work: Work) -> f64 {
        match self.latency {
            LatencyMode::Measured => started.elapsed().as_secs_f64(),
            LatencyMode::Modelled => modelled_latency(work),
        }
    }

    pub(super) fn key_for(&self, req: &FeatureRequest) -> Result<CacheKey, EngineError> {
        let set = self.features.get(&req.feature_set)?;
        let data_version = self
            .source
            .version(&req.symbol)
            .map_err(|source| EngineError::MarketData {
                symbol: req.symbol.clone(),
                source,
            })?;
        Ok(CacheKey {
            symbol: req.symbol.clone(),
            feature_set: req.feature_set.clone(),
            config_hash: set.config_hash.clone(),
            start: req.start,
            end: req.end,
            data_version,
        })
    }

    /// The engine's own reason for a miss of `key` (not cached or unreadable).
    pub(super) fn miss_reason(&mut self, key: &CacheKey, id: &str, now: NaiveDateTime) -> MissReason {
        if let Mode::Unavailable { .. } = self.mode {
            return MissReason::ManifestUnavailable;
        }
        if let Some(r) = self.index.get(id).and_then(|e| e.state.miss_reason()) {
            return r;
        }
        if let Some(why) = self.supersede(key, id, now) {
            return why.miss_reason();
        }
        if !self.symbols.contains(&key.symbol) {
            MissReason::NewSymbol
        } else {
            MissReason::NewKey
        }
    }

    /// Invalidates the key `key` replaces in its slot (an older version), if it is still
    /// cached; returns why that key is stale.
    pub(super) fn supersede(&mut self, key: &CacheKey, id: &str, now: NaiveDateTime) -> Option<RetireReason> {
        let s = self.index.superseded(key, id)?;
        if s.cached {
            self.retire(&s.id, s.reason, now);
        }
        Some(s.reason)
    }

    /// Computes `key` and, when the manifest is usable, stores it. Returns the batches,
    /// whether they were stored, and the stored size.
    pub(super) fn fill(&mut self, key: &CacheKey, id: &str, now: NaiveDateTime) -> Result<(Vec<RecordBatch>, bool, u64), EngineError> {
        let available = self.mode == Mode::Available;
        let batch = match self.compute(key, id, now) {
            Ok(b) => b,
            Err(e) => {
                if available {
                    self.remember(key, id, EntryState::ComputeFailed, 0, now);
                }
                return Err(e);
            }
        };
        let batches = vec![batch];
        if !available {
            return Ok((batches, false, 0));
        }
        match cachefile::write(&self.cfg.cache_dir, key, &batches, self.cfg.compression_level, now, &self.faults) {
            Ok(bytes) => {
                self.remember(key, id, EntryState::Cached, bytes, now);
                self.enforce_capacity(now, Some(id));
                Ok((batches, true, bytes))
            }
            Err(err) => {
                self.metrics.write_failure();
                let os = err.raw_os_error().map(|c| c.to_string()).unwrap_or_default();
                let what = if err.raw_os_error() == Some(libc::ENOSPC) { "disk full" } else { "I/O error" };
                self.log.write(
                    now,
                    Level::Error,
                    &format!("Cache write failed for {} ({what}); result served uncached", quote(&key.symbol)),
                    Event::WriteFailed,
                    &[
                        (Field::Symbol, &key.symbol),
                        (Field::FeatureSet, &key.feature_set),
                        (Field::Key, &id),
                        (Field::Slot, &key.slot()),
                        (Field::OsError, &os),
                        (Field::Error, &err),
                    ],
                );
                self.remember(key, id, EntryState::WriteFailed, 0, now);
                Ok((batches, false, 0))
            }
        }
    }

    pub(super) fn compute(&mut self, key: &CacheKey, id: &str, now: NaiveDateTime) -> Result<RecordBatch, EngineError> {
        let set = self.features.get(&key.feature_set)?.clone();
        let bars = self
            .source
            .bars(&key.symbol, key.start, key.end)
            .map_err(|source| EngineError::MarketData {
                symbol: key.symbol.clone(),
                source,
            })?;
        let mut budget = MemoryBudget::new(set.set.name(), self.memory_limit_bytes);
        let result = budget
            .charge(bars.get_array_memory_size() as u64)
            .and_then(|_| set.set.compute(&bars, &set.params, &mut budget));
        result.map_err(|source| {
            self.metrics.compute_failure();
            let (needed, limit) = match &source {
                ComputeError::OutOfMemory { needed_bytes, limit_bytes, .. } => (*needed_bytes, *limit_bytes),
                _ => (0, self.memory_limit_bytes),
            };
            let msg = match &source {
                ComputeError::OutOfMemory { .. } => format!(
                    "Feature computation failed for {}: out of memory (OOM)",
                    quote(&key.symbol)
                ),
                _ => format!("Feature computation failed for {}", quote(&key.symbol)),
            };
            self.log.write(
                now,
                Level::Error,
                &msg,
                Event::ComputeFailed,
                &[
                    (Field::Symbol, &key.symbol),
                    (Field::FeatureSet, &key.feature_set),
                    (Field::Key, &id),
                    (Field::Slot, &key.slot()),
                    (Field::NeededBytes, &needed),
                    (Field::LimitBytes, &limit),
                    (Field::Error, &source),
                ],
            );
            EngineError::Compute {
                symbol: key.symbol.clone(),
                feature_set: key.feature_set.clone(),
                key: id.to_string(),
                reason: None,
                source,
            }
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn log_request(
        &mut self,
        now: NaiveDateTime,
        what: &str,
        event: Event,
        key: &CacheKey,
        id: &str,
        bytes: u64,
        secs: f64,
        miss: Option<(MissReason, FillOutcome)>,
    ) {
        let msg = format!("{what} for {}", quote(&key.symbol));
        let latency_us = (secs * 1e6).round() as u64;
        let slot = key.slot();
        let (start, end) = (fmt_ts(key.start), fmt_ts(key.end));
        let mut fields: Vec<(Field, &dyn std::fmt::Display)> = vec![
            (Field::Op, &"get_or_compute"),
            (Field::Symbol, &key.symbol),
            (Field::FeatureSet, &key.feature_set),
            (Field::Key, &id),
            (Field::Slot, &slot),
            (Field::Config, &key.config_hash),
            (Field::DataVersion, &key.data_version),
            (Field::Start, &start),
            (Field::End, &end),
            (Field::Bytes, &bytes),
            (Field::LatencyUs, &latency_us),
        ];
        let reason;
        let outcome;
        if let Some((r, o)) = miss {
            reason = r;
            outcome = o;
            fields.push((Field::Reason, &reason));
            fields.push((Field::Outcome, &outcome));
        }
        self.log.write(now, Level::Info, &msg, event, &fields);
    }

    pub(super) fn record_hit(&mut self, id: &str, now: NaiveDateTime) -> u64 {
        let bytes = self.index.hit(id, now);
        self.dirty.insert(id.to_string());
        self.maybe_flush(now);
        bytes
    }

    /// Records `key` in `state` (replacing any previous record of it).
    pub(super) fn remember(&mut self, key: &CacheKey, id: &str, state: EntryState, bytes: u64, now: NaiveDateTime) {
        let path = if state == EntryState::Cached {
            cachefile::path_for(&self.cfg.cache_dir, key)
        } else {
            PathBuf::new()
        };
        self.index.insert(Entry::new(key.clone(), path, bytes, now, state));
        self.dirty.insert(id.to_string());
        self.publish_gauges();
    }

    /// Takes a cached key out of the cache accounting (the file is handled by the caller).
    pub(super) fn uncache(&mut self, id: &str, state: EntryState, now: NaiveDateTime) {
        self.index.set_state(id, state, now);
        self.dirty.insert(id.to_string());
        self.publish_gauges();
    }
}
