//! Requests and cache keys. A key names everything its content depends on: symbol,
//! feature set, the hash of the feature set's configuration, the time range and the
//! market-data version. A *slot* is a request without the versions: the place a key fills,
//! so a miss can be linked to the stale key it replaces.

use chrono::NaiveDateTime;
use sha2::{Digest, Sha256};

use super::clock::fmt_ts;

/// What a caller asks for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FeatureRequest {
    pub symbol: String,
    pub feature_set: String,
    pub start: NaiveDateTime,
    pub end: NaiveDateTime,
}

impl FeatureRequest {
    pub fn new(symbol: &str, feature_set: &str, start: NaiveDateTime, end: NaiveDateTime) -> Self {
        FeatureRequest {
            symbol: symbol.to_string(),
            feature_set: feature_set.to_string(),
            start,
            end,
        }
    }

    /// The slot id: a hash of symbol, feature set and range.
    pub fn slot(&self) -> String {
        digest(&[
            "slot-v1",
            &self.symbol,
            &self.feature_set,
            &fmt_ts(self.start),
            &fmt_ts(self.end),
        ])
    }
}

/// Every field a cached result depends on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    pub symbol: String,
    pub feature_set: String,
    pub config_hash: String,
    pub start: NaiveDateTime,
    pub end: NaiveDateTime,
    pub data_version: String,
}

impl CacheKey {
    /// The key id: 16 hex digits of SHA-256 over all fields.
    pub fn id(&self) -> String {
        digest(&[
            "key-v1",
            &self.symbol,
            &self.feature_set,
            &self.config_hash,
            &fmt_ts(self.start),
            &fmt_ts(self.end),
            &self.data_version,
        ])
    }

    pub fn slot(&self) -> String {
        self.request().slot()
    }

    pub fn request(&self) -> FeatureRequest {
        FeatureRequest::new(&self.symbol, &self.feature_set, self.start, self.end)
    }
}

/// 16 hex digits of SHA-256 over NUL-separated parts.
pub fn digest(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    hex::encode(&h.finalize()[..8])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::clock::parse_ts;

    fn key(version: &str, config: &str) -> CacheKey {
        CacheKey {
            symbol: "AAPL".into(),
            feature_set: "returns".into(),
            config_hash: config.into(),
            start: parse_ts("2026-11-26T00:00:00Z").unwrap(),
            end: parse_ts("2026-11-27T00:00:00Z").unwrap(),
            data_version: version.into(),
        }
    }

    #[test]
    fn every_field_changes_the_key_but_not_the_slot() {
        let a = key("v1", "c1");
        let b = key("v2", "c1");
        let c = key("v1", "c2");
        assert_ne!(a.id(), b.id());
        assert_ne!(a.id(), c.id());
        assert_eq!(a.slot(), b.slot());
        assert_eq!(a.id().len(), 16);
        assert_eq!(a.id(), key("v1", "c1").id());
    }

    #[test]
    fn separators_prevent_ambiguous_concatenation() {
        assert_ne!(digest(&["ab", "c"]), digest(&["a", "bc"]));
    }
}
