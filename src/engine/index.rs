//! The engine's in-memory index of every key the manifest remembers: the entries by id, the
//! newest key of each slot, and the cached keys in least-recently-used order with their total
//! bytes. Pure bookkeeping: no files, no log, no clock; the store does those around it.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDateTime;

use super::key::CacheKey;
use super::manifest::{Entry, EntryState};
use crate::vocab::RetireReason;

/// See the module's header.
#[derive(Debug, Default)]
pub struct Index {
    entries: HashMap<String, Entry>,
    /// Slot -> the id of the newest key that filled it.
    slots: HashMap<String, String>,
    /// Cached ids by recency (a growing sequence number; smallest is least recent).
    lru: BTreeMap<u64, String>,
    lru_pos: HashMap<String, u64>,
    seq: u64,
    cached_bytes: u64,
}

/// The key a request's key replaces in its slot, and why that one is stale.
#[derive(Debug, Clone, PartialEq)]
pub struct Superseded {
    pub id: String,
    /// `MarketData` or `Config`.
    pub reason: RetireReason,
    /// Whether it is still cached (its file still there to delete).
    pub cached: bool,
}

impl Index {
    pub fn new() -> Index {
        Index::default()
    }

    pub fn get(&self, id: &str) -> Option<&Entry> {
        self.entries.get(id)
    }

    /// The entry of `id` if it is cached.
    pub fn cached(&self, id: &str) -> Option<&Entry> {
        self.entries.get(id).filter(|e| e.state == EntryState::Cached)
    }

    /// Every remembered entry, in no order.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// How many keys are remembered (cached or not).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Cached files and their bytes.
    pub fn cached_totals(&self) -> (u64, u64) {
        (self.lru.len() as u64, self.cached_bytes)
    }

    /// Records `e` (replacing any previous record of its key, whose bytes leave the total);
    /// it becomes its slot's newest key and, if cached, the most recently used.
    pub fn insert(&mut self, e: Entry) {
        let id = e.id.clone();
        self.forget_cached(&id);
        if e.state == EntryState::Cached {
            self.cached_bytes += e.bytes;
            self.touch(&id);
        }
        self.slots.insert(e.slot.clone(), id.clone());
        self.entries.insert(id, e);
    }

    /// A hit: `id` becomes the most recently used and its last access `now`. Returns its
    /// bytes (0 if unknown).
    pub fn hit(&mut self, id: &str, now: NaiveDateTime) -> u64 {
        let bytes = match self.entries.get_mut(id) {
            Some(e) => {
                e.last_access = now;
                e.bytes
            }
            None => return 0,
        };
        self.touch(id);
        bytes
    }

    /// Takes `id` out of the cache (bytes, recency) and records it in `state` at `now`.
    pub fn set_state(&mut self, id: &str, state: EntryState, now: NaiveDateTime) {
        self.forget_cached(id);
        if let Some(e) = self.entries.get_mut(id) {
            e.state = state;
            e.last_access = now;
        }
    }

    /// The key that last filled `key`'s slot, when it is another (older) version, and why it
    /// is stale: its own invalidation if it was invalidated, else a configuration that
    /// differs, else older market data.
    pub fn superseded(&self, key: &CacheKey, id: &str) -> Option<Superseded> {
        let prev = self.slots.get(&key.slot())?;
        if prev == id {
            return None;
        }
        let p = self.entries.get(prev)?;
        let reason = match p.state {
            EntryState::InvalidatedData => RetireReason::MarketData,
            EntryState::InvalidatedConfig => RetireReason::Config,
            _ if p.key.config_hash != key.config_hash => RetireReason::Config,
            _ => RetireReason::MarketData,
        };
        Some(Superseded {
            id: prev.clone(),
            reason,
            cached: p.state == EntryState::Cached,
        })
    }

    /// Cached ids, least recently used first.
    pub fn least_recent(&self) -> impl Iterator<Item = &String> {
        self.lru.values()
    }

    /// The least recently used cached id at or after recency `from` (for walking the order
    /// while evicting), with its recency.
    pub fn least_recent_from(&self, from: u64) -> Option<(u64, &String)> {
        self.lru.range(from..).next().map(|(p, id)| (*p, id))
    }

    fn touch(&mut self, id: &str) {
        if let Some(old) = self.lru_pos.remove(id) {
            self.lru.remove(&old);
        }
        self.seq += 1;
        self.lru.insert(self.seq, id.to_string());
        self.lru_pos.insert(id.to_string(), self.seq);
    }

    /// Removes `id` from the cache accounting if it is cached.
    fn forget_cached(&mut self, id: &str) {
        if let Some(e) = self.entries.get(id) {
            if e.state == EntryState::Cached {
                self.cached_bytes = self.cached_bytes.saturating_sub(e.bytes);
            }
        }
        if let Some(pos) = self.lru_pos.remove(id) {
            self.lru.remove(&pos);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::clock::parse_ts;

    fn t(s: &str) -> NaiveDateTime {
        parse_ts(&format!("2026-11-26T{s}Z")).unwrap()
    }

    fn key(symbol: &str, config: &str, version: &str) -> CacheKey {
        CacheKey {
            symbol: symbol.into(),
            feature_set: "returns".into(),
            config_hash: config.into(),
            start: t("14:30:00"),
            end: t("21:00:00"),
            data_version: version.into(),
        }
    }

    fn entry(k: &CacheKey, bytes: u64, state: EntryState) -> Entry {
        Entry::new(k.clone(), std::path::PathBuf::from(format!("/c/{}", k.id())), bytes, t("09:00:00"), state)
    }

    #[test]
    fn cached_bytes_and_recency_follow_inserts_hits_and_state_changes() {
        let mut ix = Index::new();
        let (a, b, c) = (key("A", "c1", "v0"), key("B", "c1", "v0"), key("C", "c1", "v0"));
        ix.insert(entry(&a, 10, EntryState::Cached));
        ix.insert(entry(&b, 20, EntryState::Cached));
        ix.insert(entry(&c, 40, EntryState::EvictedCapacity));
        assert_eq!(ix.cached_totals(), (2, 30));
        assert_eq!(ix.least_recent().cloned().collect::<Vec<_>>(), [a.id(), b.id()]);
        assert_eq!(ix.hit(&a.id(), t("10:00:00")), 10);
        assert_eq!(ix.get(&a.id()).unwrap().last_access, t("10:00:00"));
        assert_eq!(ix.least_recent().cloned().collect::<Vec<_>>(), [b.id(), a.id()]);
        assert_eq!(ix.hit("unknown", t("10:00:00")), 0);
        // Re-inserting a cached key replaces its bytes, not adds them.
        ix.insert(entry(&a, 15, EntryState::Cached));
        assert_eq!(ix.cached_totals(), (2, 35));
        ix.set_state(&b.id(), EntryState::EvictedCapacity, t("11:00:00"));
        assert_eq!(ix.cached_totals(), (1, 15));
        assert!(ix.cached(&b.id()).is_none() && ix.get(&b.id()).is_some());
        // Leaving an uncached key's state twice changes nothing more.
        ix.set_state(&b.id(), EntryState::EvictedRetention, t("11:00:00"));
        assert_eq!(ix.cached_totals(), (1, 15));
        assert_eq!(ix.len(), 3);
        let (pos, id) = ix.least_recent_from(0).unwrap();
        assert_eq!(id, &a.id());
        assert!(ix.least_recent_from(pos + 1).is_none());
    }

    #[test]
    fn a_newer_key_of_a_slot_supersedes_the_older_one_with_the_reason() {
        let mut ix = Index::new();
        let old = key("A", "c1", "v0");
        ix.insert(entry(&old, 10, EntryState::Cached));
        assert_eq!(ix.superseded(&old, &old.id()), None, "a key does not supersede itself");
        let newer_data = key("A", "c1", "v1");
        assert_eq!(
            ix.superseded(&newer_data, &newer_data.id()),
            Some(Superseded { id: old.id(), reason: RetireReason::MarketData, cached: true })
        );
        let newer_config = key("A", "c2", "v0");
        assert_eq!(ix.superseded(&newer_config, &newer_config.id()).unwrap().reason, RetireReason::Config);
        // An invalidated predecessor keeps its own reason.
        ix.set_state(&old.id(), EntryState::InvalidatedConfig, t("10:00:00"));
        assert_eq!(
            ix.superseded(&newer_data, &newer_data.id()),
            Some(Superseded { id: old.id(), reason: RetireReason::Config, cached: false })
        );
        // The newest key of the slot is the one asked about next.
        ix.insert(entry(&newer_data, 10, EntryState::Cached));
        let third = key("A", "c1", "v2");
        assert_eq!(ix.superseded(&third, &third.id()).unwrap().id, newer_data.id());
        assert_eq!(ix.superseded(&key("B", "c1", "v0"), &key("B", "c1", "v0").id()), None);
    }
}
