//! Taking keys out of the cache: invalidation (stale data or configuration), eviction
//! (capacity, retention), and the file deletion both share.

use chrono::NaiveDateTime;

use super::key::CacheKey;
use super::manifest::EntryState;
use super::{FeatureStore, Level};
use crate::vocab::{Event, Field, RetireReason};

impl FeatureStore {
    pub(super) fn delete_file(&mut self, id: &str) -> u64 {
        let Some(e) = self.index.get(id) else { return 0 };
        let bytes = e.bytes;
        if let Err(err) = std::fs::remove_file(&e.path) {
            if err.kind() != std::io::ErrorKind::NotFound {
                let path = e.path.clone();
                let now = self.clock.now();
                self.log.write(
                    now,
                    Level::Warn,
                    "Cannot delete cache file",
                    Event::DeleteFailed, &[(Field::Key, &id), (Field::Path, &path.display()), (Field::Error, &err)],
                );
            }
        }
        bytes
    }

    /// Invalidates every cached key matching `stale`, least recently used first; returns how many.
    pub(super) fn invalidate_where(&mut self, why: RetireReason, now: NaiveDateTime, stale: impl Fn(&CacheKey) -> bool) -> u64 {
        let ids: Vec<String> = self
            .index
            .least_recent()
            .filter(|id| self.index.get(id).is_some_and(|e| stale(&e.key)))
            .cloned()
            .collect();
        for id in &ids {
            self.retire(id, why, now);
        }
        ids.len() as u64
    }

    /// Takes a cached key out of the cache for good: deletes its file, records why (it was
    /// invalidated or evicted), counts and logs it. Returns the bytes freed.
    pub(super) fn retire(&mut self, id: &str, why: RetireReason, now: NaiveDateTime) -> u64 {
        let bytes = self.delete_file(id);
        self.uncache(id, EntryState::from(why), now);
        let event = why.event();
        let verb = if event == Event::Eviction { "evicted" } else { "invalidated" };
        let Some(e) = self.index.get(id) else { return bytes };
        let age_s = (now - e.created).num_milliseconds() as f64 / 1000.0;
        let (sym, fs, slot, cfg, dv) = (
            e.key.symbol.clone(),
            e.key.feature_set.clone(),
            e.slot.clone(),
            e.key.config_hash.clone(),
            e.key.data_version.clone(),
        );
        let mut fields: Vec<(Field, &dyn std::fmt::Display)> = vec![
            (Field::Reason, &why),
            (Field::Symbol, &sym),
            (Field::FeatureSet, &fs),
            (Field::Key, &id),
            (Field::Slot, &slot),
            (Field::Config, &cfg),
            (Field::DataVersion, &dv),
            (Field::Bytes, &bytes),
        ];
        if event == Event::Eviction {
            self.metrics.eviction(why.as_str(), bytes);
            fields.push((Field::AgeS, &age_s));
        } else {
            self.metrics.invalidation(why.as_str());
        }
        self.log.write(now, Level::Info, &format!("Cache key {id} {verb}"), event, &fields);
        bytes
    }

    /// Evicts least-recently-used files when usage passes the threshold, down to the target.
    pub(super) fn enforce_capacity(&mut self, now: NaiveDateTime, keep: Option<&str>) {
        let max = self.cfg.max_cache_bytes() as f64;
        let cached_bytes = || self.index.cached_totals().1;
        if (cached_bytes() as f64) <= self.cfg.cleanup_threshold * max {
            return;
        }
        let used_before = cached_bytes();
        let target = (self.cfg.eviction_target * max) as u64;
        let mut evicted = 0u64;
        let mut freed = 0u64;
        let mut cursor = 0u64;
        while self.index.cached_totals().1 > target {
            let Some((pos, id)) = self.index.least_recent_from(cursor) else { break };
            cursor = pos + 1;
            if Some(id.as_str()) == keep {
                continue;
            }
            let id = id.clone();
            freed += self.retire(&id, RetireReason::Capacity, now);
            evicted += 1;
        }
        self.log.write(
            now,
            Level::Warn,
            "Cache over capacity; least-recently-used files evicted",
            Event::CapacityCleanup,
            &[
                (Field::Evicted, &evicted),
                (Field::FreedBytes, &freed),
                (Field::UsedBefore, &used_before),
                (Field::UsedAfter, &self.index.cached_totals().1),
                (Field::MaxBytes, &self.cfg.max_cache_bytes()),
            ],
        );
    }
}
