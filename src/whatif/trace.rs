//! The request stream what-if sizing replays, in a compact form (16 bytes per event): what
//! each event does to a cache of any size, its key as a dense number, its size and its time.

/// What an event does to a cache, whatever its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum OpKind {
    /// A request the engine served from cache.
    Hit = 0,
    /// A request that missed and whose result was stored.
    MissStored = 1,
    /// A request that missed and whose result could not be stored (write or compute failure):
    /// a cache that still held the key would have served it.
    MissFailed = 2,
    /// A request served uncached while the manifest was unavailable: a miss at any size.
    MissUncached = 3,
    /// A warm-up that stored the key (not a request).
    WarmStored = 4,
    /// An invalidation or a file deleted behind the engine's back: the key is gone at any size.
    Drop = 5,
    /// A retention eviction as the engine logged it.
    RetentionEviction = 6,
    /// A retention clean-up ran (its retention: [`Trace::cleanup_retention_ms`]).
    Cleanup = 7,
}

impl OpKind {
    const ALL: [OpKind; 8] = [
        OpKind::Hit,
        OpKind::MissStored,
        OpKind::MissFailed,
        OpKind::MissUncached,
        OpKind::WarmStored,
        OpKind::Drop,
        OpKind::RetentionEviction,
        OpKind::Cleanup,
    ];

    /// Whether the event is a request (counted in hit ratios).
    pub fn is_request(self) -> bool {
        matches!(self, OpKind::Hit | OpKind::MissStored | OpKind::MissFailed | OpKind::MissUncached)
    }
}

const KIND_SHIFT: u32 = 29;
/// Keys are numbered below this (2^29, half a billion keys).
pub const MAX_KEYS: u32 = 1 << KIND_SHIFT;

/// One event: time (ms since the Unix epoch), key and kind packed, size in bytes (for a
/// clean-up: its index in [`Trace::cleanup_retention_ms`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Op {
    pub ms: i64,
    key_kind: u32,
    pub bytes: u32,
}

impl Op {
    pub fn new(ms: i64, kind: OpKind, key: u32, bytes: u64) -> Op {
        debug_assert!(key < MAX_KEYS);
        Op { ms, key_kind: key | (kind as u32) << KIND_SHIFT, bytes: bytes.min(u32::MAX as u64) as u32 }
    }

    pub fn kind(self) -> OpKind {
        OpKind::ALL[(self.key_kind >> KIND_SHIFT) as usize]
    }

    pub fn key(self) -> u32 {
        self.key_kind & (MAX_KEYS - 1)
    }
}

/// The events of a period, with the history before it that sets the cache's state.
#[derive(Debug, Default)]
pub struct Trace {
    pub ops: Vec<Op>,
    /// Events before this time (ms) only warm the cache up: they are not counted.
    pub from_ms: i64,
    /// The retention (ms) each clean-up ran with, by its index.
    pub cleanup_retention_ms: Vec<i64>,
    /// Distinct keys (numbered `0..keys`).
    pub keys: u32,
    /// Spatial sampling (SHARDS): only keys whose hash falls below this share were read.
    pub sample_rate: Option<f64>,
}

/// Spatial sampling of keys (SHARDS, Waldspurger et al., FAST'15): a key is in the sample when
/// its hash, as a share of the hash space, is below the rate. Every request of a sampled key
/// is kept, so its reuse is seen whole; a sampled cache of `rate x C` bytes behaves like the
/// whole cache of `C`.
pub fn sampled(hash: u64, rate: f64) -> bool {
    ((hash >> 11) as f64) < rate * (1u64 << 53) as f64
}

/// A key's hash for sampling: the same for the same key in every run (not `RandomState`).
pub fn key_hash(number: Option<u64>, text: &str) -> u64 {
    let mut x = match number {
        Some(n) => n,
        // FNV-1a.
        None => text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)),
    };
    // splitmix64's finaliser: engine keys are hashes already, but text keys need mixing.
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Trace {
    /// Whether `op` is a request of the period (not of the warm-up before it).
    pub fn counted(&self, op: &Op) -> bool {
        op.ms >= self.from_ms && op.kind().is_request()
    }

    /// The trace [`super::stream::read`] gives for `[warm_from_us, until_us)` with `from_ms`,
    /// cut out of this one, read over a span that covers it with each op's time in `us`
    /// (microseconds, as the database orders them): the same ops, the keys numbered again in
    /// order of first appearance and the clean-ups indexed again, as a read of its own does.
    pub fn slice(&self, us: &[i64], warm_from_us: i64, from_ms: i64, until_us: i64) -> Trace {
        debug_assert_eq!(us.len(), self.ops.len());
        let (lo, hi) = (us.partition_point(|t| *t < warm_from_us), us.partition_point(|t| *t < until_us));
        let mut ids = vec![u32::MAX; self.keys as usize];
        let mut t = Trace { from_ms, sample_rate: self.sample_rate, ..Default::default() };
        t.ops.reserve(hi.saturating_sub(lo));
        for op in &self.ops[lo..hi.max(lo)] {
            if op.kind() == OpKind::Cleanup {
                t.cleanup_retention_ms.push(self.cleanup_retention_ms[op.bytes as usize]);
                t.ops.push(Op::new(op.ms, OpKind::Cleanup, 0, t.cleanup_retention_ms.len() as u64 - 1));
                continue;
            }
            let id = &mut ids[op.key() as usize];
            if *id == u32::MAX {
                *id = t.keys;
                t.keys += 1;
            }
            t.ops.push(Op::new(op.ms, op.kind(), *id, op.bytes as u64));
        }
        t
    }

    /// The minute of the period (0 = the minute `from` falls in) of a time.
    pub fn minute(&self, ms: i64) -> usize {
        ((ms.div_euclid(60_000)) - self.from_ms.div_euclid(60_000)).max(0) as usize
    }
}

/// Retentions longer than this (1,000 years) act as this one: every log is younger, and the
/// times computed from it stay within chrono's and i64's range (`--retention-days 1e9`, or a
/// log's own `retention_days=1e9`, panicked subtracting it from the period's start).
const LONGEST_RETENTION_DAYS: f64 = 365_250.0;

/// The engine's retention (`retention_days`) in ms, rounded as the engine rounds it.
pub fn retention_ms(days: f64) -> i64 {
    (days.min(LONGEST_RETENTION_DAYS) * 86_400_000.0) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retention_of_any_length_is_a_time_span_that_can_be_subtracted() {
        assert_eq!(retention_ms(7.0), 604_800_000);
        let far = retention_ms(1e300);
        assert_eq!(far, retention_ms(LONGEST_RETENTION_DAYS));
        let now = chrono::DateTime::from_timestamp_millis(1_795_000_000_000).unwrap().naive_utc();
        assert!(now.checked_sub_signed(chrono::Duration::milliseconds(far + retention_ms(2.0))).is_some());
        assert!(far.checked_add(1_795_000_000_000).is_some());
    }

    #[test]
    fn an_op_keeps_its_kind_key_and_size() {
        for kind in OpKind::ALL {
            let op = Op::new(1_764_000_000_000, kind, MAX_KEYS - 1, 5_000_000_000);
            assert_eq!((op.kind(), op.key(), op.bytes), (kind, MAX_KEYS - 1, u32::MAX));
        }
        assert_eq!(std::mem::size_of::<Op>(), 16);
        assert!(OpKind::MissFailed.is_request() && !OpKind::WarmStored.is_request() && !OpKind::Cleanup.is_request());
    }

    #[test]
    fn a_slice_is_the_trace_of_its_own_span() {
        // Events at microsecond times, several in one millisecond: (us, kind, key, bytes).
        let events: Vec<(i64, OpKind, u32, u64)> = vec![
            (1_000_100, OpKind::MissStored, 7, 10),
            (1_000_400, OpKind::Hit, 7, 10),
            (1_000_900, OpKind::Cleanup, 0, 3_600_000),
            (2_500_000, OpKind::MissStored, 9, 20),
            (2_500_001, OpKind::Drop, 7, 0),
            (3_000_000, OpKind::Cleanup, 0, 7_200_000),
            (3_000_000, OpKind::MissStored, 7, 10),
            (4_000_000, OpKind::Hit, 9, 20),
        ];
        // A trace as `stream::read` builds it: keys numbered in order of first appearance
        // (of the events read), clean-ups indexed by their retention.
        let build = |lo: i64, hi: i64, from_ms: i64| -> (Trace, Vec<i64>) {
            let mut t = Trace { from_ms, ..Default::default() };
            let mut ids: Vec<u32> = Vec::new();
            let mut us = Vec::new();
            for (at, kind, key, bytes) in events.iter().filter(|e| e.0 >= lo && e.0 < hi) {
                let (key, bytes) = match kind {
                    OpKind::Cleanup => {
                        t.cleanup_retention_ms.push(*bytes as i64);
                        (0, t.cleanup_retention_ms.len() as u64 - 1)
                    }
                    _ => match ids.iter().position(|k| k == key) {
                        Some(i) => (i as u32, *bytes),
                        None => {
                            ids.push(*key);
                            (ids.len() as u32 - 1, *bytes)
                        }
                    },
                };
                t.ops.push(Op::new(at / 1000, *kind, key, bytes));
                us.push(*at);
            }
            t.keys = ids.len() as u32;
            (t, us)
        };
        let (all, us) = build(0, i64::MAX, 0);
        for (lo, hi) in [(0, i64::MAX), (1_000_400, 3_000_000), (1_000_401, 3_000_001), (2_500_001, 4_000_001), (5_000_000, 6_000_000), (1_000_000, 1_000_000)] {
            let (own, _) = build(lo, hi, 2_000);
            let cut = all.slice(&us, lo, 2_000, hi);
            assert_eq!((&cut.ops, &cut.cleanup_retention_ms, cut.keys, cut.from_ms), (&own.ops, &own.cleanup_retention_ms, own.keys, own.from_ms), "[{lo}, {hi})");
        }
    }

    #[test]
    fn sampling_keeps_about_the_rate_of_keys_and_always_the_same_ones() {
        for rate in [0.01, 0.1, 0.5] {
            let kept = (0..100_000u64).filter(|k| sampled(key_hash(Some(*k), ""), rate)).count() as f64 / 100_000.0;
            assert!((kept - rate).abs() < rate * 0.1 + 0.001, "{rate}: {kept}");
            let kept = (0..100_000u64).filter(|k| sampled(key_hash(None, &format!("key-{k}")), rate)).count() as f64 / 100_000.0;
            assert!((kept - rate).abs() < rate * 0.1 + 0.001, "{rate}: {kept}");
        }
        assert!(sampled(key_hash(Some(7), ""), 1.0));
        assert_eq!(key_hash(None, "abc"), key_hash(None, "abc"));
    }
}
