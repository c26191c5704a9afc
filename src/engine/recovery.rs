//! Start-up recovery: the first log line, the manifest loaded into the index, rebuilt from
//! the cache files' footers when it is missing or corrupt, files a crash left out of it
//! adopted, and temp files of interrupted writes removed.

use std::path::{Path, PathBuf};

use chrono::{Duration, NaiveDateTime};

use super::cachefile;
use super::manifest::{Entry, EntryState, ManifestError};
use super::{EngineError, FeatureStore, Level};
use crate::vocab::{Event, Field};

impl FeatureStore {
    pub(super) fn log_startup(&mut self, now: NaiveDateTime) {
        let c = &self.cfg;
        let sets = self
            .features
            .iter()
            .map(|s| format!("{}:{}", s.set.name(), s.config_hash))
            .collect::<Vec<_>>()
            .join(",");
        self.log.write(
            now,
            Level::Info,
            "FeatureStore started",
            Event::Startup,
            &[
                (Field::Version, &env!("CARGO_PKG_VERSION")),
                (Field::CacheDir, &c.cache_dir.display()),
                (Field::ManifestPath, &c.manifest_path.display()),
                (Field::CompressionLevel, &c.compression_level),
                (Field::MaxCacheSizeGb, &c.max_cache_size_gb),
                (Field::CleanupThreshold, &c.cleanup_threshold),
                (Field::EvictionTarget, &c.eviction_target),
                (Field::RetentionDays, &c.retention_days),
                (Field::ComputeLimitMb, &c.memory_limit_mb),
                (Field::MarketData, &self.source.describe()),
                (Field::FeatureSets, &sets),
            ],
        );
    }

    /// Loads the manifest into memory, rebuilding it from the file footers when it is
    /// missing or corrupt, and adopting files a crash left out of it.
    pub(super) fn load_manifest(&mut self, now: NaiveDateTime) -> Result<(), EngineError> {
        let existed = self.manifest.exists();
        match self.manifest.load() {
            Ok(loaded) => {
                for e in loaded.entries {
                    self.insert_loaded(e);
                }
                self.symbols.extend(loaded.symbols);
                self.loaded = true;
                if !existed {
                    self.rebuild_from_files(now, "missing", None)?;
                } else {
                    self.adopt_unlisted_files(now);
                }
            }
            Err(ManifestError::Locked { holder, .. }) => {
                self.enter_unavailable(now, Some(holder));
                return Ok(());
            }
            Err(ManifestError::Corrupt { source, .. }) => {
                let message = source.to_string();
                let aside = self.manifest.set_aside(now)?;
                self.loaded = true;
                self.rebuild_from_files(now, "corrupt", Some((aside, message)))?;
            }
            Err(e @ ManifestError::Io { .. }) => return Err(e.into()),
        }
        self.flush_now(now);
        Ok(())
    }

    pub(super) fn insert_loaded(&mut self, e: Entry) {
        // Loaded oldest access first, so the newest key of a slot wins.
        self.index.insert(e);
    }

    pub(super) fn rebuild_from_files(
        &mut self,
        now: NaiveDateTime,
        why: &str,
        aside: Option<(PathBuf, String)>,
    ) -> Result<(), EngineError> {
        let (files, _) = cachefile::scan(&self.cfg.cache_dir).map_err(|source| EngineError::Io {
            what: "cannot scan the cache directory",
            path: self.cfg.cache_dir.clone(),
            source,
        })?;
        let mut adopted = 0u64;
        let mut bytes = 0u64;
        for p in files {
            if let Some(e) = self.entry_from_footer(now, &p) {
                adopted += 1;
                bytes += e.bytes;
                self.symbols.insert(e.key.symbol.clone());
                self.new_symbols.push((e.key.symbol.clone(), e.created));
                self.dirty.insert(e.id.clone());
                self.insert_loaded(e);
            }
        }
        let (aside_path, error) = aside
            .map(|(p, m)| (p.display().to_string(), m))
            .unwrap_or_default();
        if why == "missing" && adopted == 0 {
            self.log.write(
                now,
                Level::Info,
                "Manifest created",
                Event::ManifestCreated, &[(Field::Path, &self.manifest.path().display())],
            );
            return Ok(());
        }
        self.log.write(
            now,
            Level::Warn,
            &format!("Manifest {why}; rebuilt from cache file footers"),
            Event::ManifestRebuilt,
            &[
                (Field::Reason, &why),
                (Field::Path, &self.manifest.path().display()),
                (Field::Files, &adopted),
                (Field::Bytes, &bytes),
                (Field::SetAside, &aside_path),
                (Field::Error, &error),
            ],
        );
        Ok(())
    }

    /// Reads a footer into a cached entry, logging files that cannot be used.
    pub(super) fn entry_from_footer(&mut self, now: NaiveDateTime, p: &Path) -> Option<Entry> {
        match cachefile::read_footer(p) {
            Ok(f) if cachefile::path_for(&self.cfg.cache_dir, &f.key) == p => {
                let mut e = Entry::new(f.key, p.to_path_buf(), f.bytes, f.created, EntryState::Cached);
                e.last_access = f.created;
                Some(e)
            }
            Ok(f) => {
                self.log.write(
                    now,
                    Level::Warn,
                    "Cache file is not where its key belongs; ignored",
                    Event::UnreadableFile, &[(Field::Path, &p.display()), (Field::Key, &f.key_id)],
                );
                None
            }
            Err(err) => {
                self.log.write(
                    now,
                    Level::Warn,
                    "Cache file unreadable; ignored",
                    Event::UnreadableFile, &[(Field::Path, &p.display()), (Field::Error, &err)],
                );
                None
            }
        }
    }

    /// Files written just before a crash may be missing from the manifest: adopt them.
    pub(super) fn adopt_unlisted_files(&mut self, now: NaiveDateTime) {
        let Ok((files, _)) = cachefile::scan(&self.cfg.cache_dir) else {
            return;
        };
        let mut adopted = 0u64;
        for p in files {
            let listed = p
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(cachefile::EXTENSION))
                .and_then(|id| self.index.cached(id))
                .is_some_and(|e| e.path == p);
            if listed {
                continue;
            }
            if let Some(e) = self.entry_from_footer(now, &p) {
                if self.index.cached(&e.id).is_some() {
                    continue;
                }
                adopted += 1;
                self.dirty.insert(e.id.clone());
                self.insert_loaded(e);
            }
        }
        if adopted > 0 {
            self.log.write(
                now,
                Level::Warn,
                "Cache files missing from the manifest adopted",
                Event::ManifestReconciled, &[(Field::Files, &adopted)],
            );
        }
    }

    pub(super) fn remove_stale_temps(&mut self, now: NaiveDateTime, older_than: Option<Duration>) -> u64 {
        let Ok((_, temps)) = cachefile::scan(&self.cfg.cache_dir) else {
            return 0;
        };
        let mut n = 0;
        for t in temps {
            let old_enough = match older_than {
                None => true,
                Some(age) => std::fs::metadata(&t)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|m| m.elapsed().ok())
                    .is_some_and(|e| e.as_secs_f64() > age.num_seconds() as f64),
            };
            if old_enough && std::fs::remove_file(&t).is_ok() {
                n += 1;
            }
        }
        if n > 0 {
            self.log.write(
                now,
                Level::Warn,
                "Removed temp files left by an interrupted write",
                Event::TempFilesRemoved, &[(Field::Files, &n)],
            );
        }
        n
    }
}
