//! Keeping the manifest in step: periodic lock probes (entering and leaving uncached mode
//! when another process holds the manifest), batched writes of the changed entries, and the
//! final flush at shutdown.

use chrono::NaiveDateTime;

use super::manifest::{Entry, LockStatus, ManifestError};
use super::{FeatureStore, Level, Mode};
use crate::vocab::{Event, Field};

impl FeatureStore {
    /// Per-operation upkeep: notice a manifest lock taken or released by another process,
    /// and write the manifest when a batch is due.
    pub(super) fn housekeeping(&mut self, now: NaiveDateTime) {
        let due = match self.last_probe {
            None => true,
            Some(t) => (now - t).num_milliseconds() as f64 >= self.cfg.manifest_probe_interval_s * 1000.0,
        };
        if due {
            self.last_probe = Some(now);
            self.check_manifest(now);
        }
        self.maybe_flush(now);
    }

    /// Probes the manifest lock now: enters or leaves uncached mode.
    pub fn check_manifest(&mut self, now: NaiveDateTime) {
        match (self.manifest.probe(), &self.mode) {
            (LockStatus::Free, Mode::Unavailable { since, .. }) => {
                let since = *since;
                if !self.loaded {
                    if let Err(e) = self.load_manifest(now) {
                        self.log.write(
                            now,
                            Level::Error,
                            "Manifest still unusable",
                            Event::ManifestError, &[(Field::Error, &e)],
                        );
                        return;
                    }
                    if !self.loaded {
                        return;
                    }
                }
                self.mode = Mode::Available;
                self.metrics.set_manifest_available(true);
                let down = (now - since).num_milliseconds() as f64 / 1000.0;
                self.log.write(
                    now,
                    Level::Warn,
                    "Manifest available again; cache re-enabled",
                    Event::ManifestAvailable, &[(Field::Path, &self.manifest.path().display()), (Field::UnavailableS, &down)],
                );
                self.flush_now(now);
            }
            (LockStatus::HeldBy { .. }, Mode::Available) => self.enter_unavailable(now, None),
            _ => {}
        }
    }

    /// Switches to uncached mode, naming the lock holder: from the kernel's lock table when
    /// it knows, else from DuckDB's error text.
    pub(super) fn enter_unavailable(&mut self, now: NaiveDateTime, reported: Option<String>) {
        if matches!(self.mode, Mode::Unavailable { .. }) {
            return;
        }
        let (holder, pid) = match self.manifest.probe() {
            held @ LockStatus::HeldBy { pid, .. } => (held.describe(), pid.to_string()),
            LockStatus::Free => (reported.unwrap_or_else(|| "unknown process".into()), String::new()),
        };
        self.log.write(
            now,
            Level::Error,
            &format!(
                "Manifest {} is locked by another process; running UNCACHED: every request will be recomputed",
                self.manifest.path().display()
            ),
            Event::ManifestUnavailable,
            &[
                (Field::Path, &self.manifest.path().display()),
                (Field::Holder, &holder),
                (Field::Pid, &pid),
            ],
        );
        if self.replayed {
            eprintln!(
                "cachescope: simulated manifest outage (the trace's lock_manifest): a helper process holds {}; the replayed engine runs UNCACHED until unlock_manifest, as a real one would",
                self.manifest.path().display()
            );
        } else {
            eprintln!(
                "cachescope: WARNING: manifest {} is locked by {holder}; the feature store runs UNCACHED until it is released",
                self.manifest.path().display()
            );
        }
        self.metrics.set_manifest_available(false);
        self.mode = Mode::Unavailable { since: now, holder };
    }

    pub(super) fn maybe_flush(&mut self, now: NaiveDateTime) {
        if self.dirty.is_empty() && self.new_symbols.is_empty() {
            return;
        }
        let by_count = self.dirty.len() >= self.cfg.manifest_flush_every;
        let by_time = (now - self.last_flush).num_milliseconds() as f64 >= self.cfg.manifest_flush_interval_s * 1000.0;
        if by_count || by_time {
            self.flush_now(now);
        }
    }

    /// Writes pending manifest changes now (no-op while the manifest is unavailable).
    pub(super) fn flush_now(&mut self, now: NaiveDateTime) {
        if self.mode != Mode::Available || !self.loaded {
            return;
        }
        self.last_flush = now;
        if self.dirty.is_empty() && self.new_symbols.is_empty() {
            return;
        }
        let mut ids: Vec<&String> = self.dirty.iter().collect();
        ids.sort();
        let batch: Vec<&Entry> = ids.iter().filter_map(|id| self.index.get(id)).collect();
        match self.manifest.write(&batch, &self.new_symbols) {
            Ok(()) => {
                self.dirty.clear();
                self.new_symbols.clear();
            }
            Err(ManifestError::Locked { holder, .. }) => self.enter_unavailable(now, Some(holder)),
            Err(e) => {
                self.log.write(
                    now,
                    Level::Error,
                    "Manifest write failed; changes kept in memory and retried",
                    Event::ManifestError, &[(Field::Path, &self.manifest.path().display()), (Field::Error, &e)],
                );
            }
        }
    }

    /// Writes pending manifest changes and the log.
    pub fn flush(&mut self) {
        let now = self.clock.now();
        self.flush_now(now);
        self.log.flush();
    }

    /// Flushes everything and logs the shutdown.
    pub fn close(mut self) {
        self.shutdown();
    }

    pub(super) fn shutdown(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        let now = self.clock.now();
        self.flush_now(now);
        let (files, bytes) = self.cached_totals();
        self.log.write(
            now,
            Level::Info,
            "FeatureStore stopped",
            Event::Shutdown,
            &[
                (Field::CachedFiles, &files),
                (Field::CachedBytes, &bytes),
                (Field::PendingManifestChanges, &self.dirty.len()),
            ],
        );
        self.log.flush();
    }
}
