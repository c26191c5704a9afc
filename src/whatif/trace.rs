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
}

impl Trace {
    /// Whether `op` is a request of the period (not of the warm-up before it).
    pub fn counted(&self, op: &Op) -> bool {
        op.ms >= self.from_ms && op.kind().is_request()
    }

    /// The minute of the period (0 = the minute `from` falls in) of a time.
    pub fn minute(&self, ms: i64) -> usize {
        ((ms.div_euclid(60_000)) - self.from_ms.div_euclid(60_000)).max(0) as usize
    }
}

/// The engine's retention (`retention_days`) in ms, rounded as the engine rounds it.
pub fn retention_ms(days: f64) -> i64 {
    (days * 86_400_000.0) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_op_keeps_its_kind_key_and_size() {
        for kind in OpKind::ALL {
            let op = Op::new(1_764_000_000_000, kind, MAX_KEYS - 1, 5_000_000_000);
            assert_eq!((op.kind(), op.key(), op.bytes), (kind, MAX_KEYS - 1, u32::MAX));
        }
        assert_eq!(std::mem::size_of::<Op>(), 16);
        assert!(OpKind::MissFailed.is_request() && !OpKind::WarmStored.is_request() && !OpKind::Cleanup.is_request());
    }
}
