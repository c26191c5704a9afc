//! Byte-weighted LRU stack distances in one pass (Olken's method with a Fenwick tree): for
//! each request, the smallest cache, in bytes, that would have served it from cache under
//! least-recently-used replacement. A cache of `C` bytes under LRU holds the most recently
//! used keys whose sizes add up to at most `C` (the stack inclusion property), so a request
//! of a key last used at position `p` hits at `C` exactly when the key's size plus the sizes
//! of the distinct keys used since `p` fit in `C`. Each key's size is kept at the position of
//! its last use; the sum over positions after `p` is a Fenwick prefix-sum query:
//! O(log n) per request, one pass for every capacity at once.

use std::collections::HashMap;

/// The stack of keys by recency, as sizes at their last positions.
#[derive(Debug, Default)]
pub struct StackDistances {
    /// Fenwick tree over positions (1-based inside), holding each key's size at its last use.
    tree: Vec<i64>,
    /// Each key's last position, size, and whether it was dropped since.
    last: HashMap<u64, (usize, u64, bool), foldhash::fast::RandomState>,
    /// Bytes of all keys on the stack.
    total: u64,
    next: usize,
}

impl StackDistances {
    /// A stack for up to `requests` uses (it grows past that, at the cost of a rebuild).
    pub fn with_capacity(requests: usize) -> StackDistances {
        StackDistances {
            tree: vec![0; requests + 1],
            ..Default::default()
        }
    }

    fn add(&mut self, pos: usize, delta: i64) {
        let mut i = pos + 1;
        while i < self.tree.len() {
            self.tree[i] += delta;
            i += i & i.wrapping_neg();
        }
    }

    /// Sum of sizes at positions `0..=pos`.
    fn prefix(&self, pos: usize) -> i64 {
        let mut i = pos + 1;
        let mut s = 0;
        while i > 0 {
            s += self.tree[i];
            i -= i & i.wrapping_neg();
        }
        s
    }

    fn grow(&mut self) {
        // Rebuild at twice the size from the keys' last positions.
        let n = (self.tree.len() * 2).max(16);
        self.tree = vec![0; n];
        let entries: Vec<(usize, u64)> = self.last.values().map(|e| (e.0, e.1)).collect();
        for (p, b) in entries {
            self.add(p, b as i64);
        }
    }

    /// A use of `key`, whose cached copy is `bytes` big: the smallest LRU cache (bytes) that
    /// would have served it, or `None` when no cache would (first use, or dropped since).
    pub fn access(&mut self, key: u64, bytes: u64) -> Option<u64> {
        if self.next + 1 >= self.tree.len() {
            self.grow();
        }
        let pos = self.next;
        self.next += 1;
        let distance = match self.last.get(&key).copied() {
            Some((p, b, dropped)) => {
                let since = (self.prefix(pos) - self.prefix(p)) as u64;
                self.add(p, -(b as i64));
                self.total -= b;
                (!dropped).then_some(since + b)
            }
            None => None,
        };
        self.add(pos, bytes as i64);
        self.total += bytes;
        self.last.insert(key, (pos, bytes, false));
        distance
    }

    /// An event that takes `key` out of the cache at any size (invalidated, deleted behind
    /// the cache's back, a result that could not be stored): its next use misses. Its bytes
    /// stay on the stack as a hole until then, so keys below it are judged as if the space
    /// were still taken: the real cache, which frees it, can only hit more. Exact without
    /// drops; never optimistic with them (both checked against a direct simulation).
    pub fn drop_key(&mut self, key: u64) {
        if let Some(entry) = self.last.get_mut(&key) {
            entry.2 = true;
        }
    }

    /// Bytes of every key on the stack (holes included): the cache that would never evict.
    pub fn working_set_bytes(&self) -> u64 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// LRU by bytes, simulated directly: the cache holds keys most recent first; a use hits
    /// when the key is there, then moves it to the front; then keys are evicted from the back
    /// until the total fits (a key larger than the cache evicts everything, itself too).
    fn lru_hits(ops: &[(u64, u64, bool)], capacity: u64) -> Vec<bool> {
        let mut cache: Vec<(u64, u64)> = Vec::new();
        let mut hits = Vec::new();
        for &(key, bytes, drop) in ops {
            let found = cache.iter().position(|e| e.0 == key);
            if drop {
                if let Some(i) = found {
                    cache.remove(i);
                }
                continue;
            }
            hits.push(found.is_some());
            if let Some(i) = found {
                cache.remove(i);
            }
            cache.insert(0, (key, bytes));
            while cache.iter().map(|e| e.1).sum::<u64>() > capacity {
                cache.pop();
            }
        }
        hits
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, .. ProptestConfig::default() })]
        /// The one-pass distances give, at every capacity, the hits of a direct LRU simulation.
        #[test]
        fn distances_agree_with_lru_at_every_capacity(
            ops in proptest::collection::vec((0..12u64, 1..50u64, proptest::bool::weighted(0.08)), 1..120),
            capacities in proptest::collection::vec(0..400u64, 1..6),
        ) {
            // A key keeps its size while it stays the same key (as a cache file does).
            let mut size: HashMap<u64, u64> = HashMap::new();
            let ops: Vec<(u64, u64, bool)> = ops.into_iter().map(|(k, b, d)| (k, *size.entry(k).or_insert(b), d)).collect();
            let mut s = StackDistances::with_capacity(4);
            let mut distances = Vec::new();
            for &(k, b, d) in &ops {
                if d {
                    s.drop_key(k);
                } else {
                    distances.push(s.access(k, b));
                }
            }
            let drops = ops.iter().any(|o| o.2);
            for c in capacities {
                let from_stack: Vec<bool> = distances.iter().map(|d| d.is_some_and(|d| d <= c)).collect();
                let lru = lru_hits(&ops, c);
                if drops {
                    // Never a hit the cache would not have had.
                    prop_assert!(from_stack.iter().zip(&lru).all(|(s, l)| !*s || *l), "capacity {}: {:?} vs {:?}", c, from_stack, lru);
                } else {
                    prop_assert_eq!(from_stack, lru, "capacity {}", c);
                }
            }
        }
    }

    #[test]
    fn a_first_use_never_hits_and_a_repeat_costs_what_came_between() {
        let mut s = StackDistances::with_capacity(2);
        assert_eq!(s.access(1, 10), None);
        assert_eq!(s.access(2, 5), None);
        assert_eq!(s.access(3, 7), None);
        // Key 1 again: itself (10) and the two used since (5 + 7).
        assert_eq!(s.access(1, 10), Some(22));
        // Key 3 again: itself and key 1 used since.
        assert_eq!(s.access(3, 7), Some(17));
        assert_eq!(s.working_set_bytes(), 22);
        s.drop_key(2);
        assert_eq!(s.access(2, 5), None, "a dropped key misses at any size");
        assert_eq!(s.access(2, 5), Some(5));
    }
}
