//! What-if cache sizing (#14, in progress): the hit ratio a feature store would have had at
//! other capacities, computed from the request stream in the events database. Built so far:
//! the exact one-pass LRU curve ([`stack::StackDistances`]) and [`Curve`], the hit ratio at
//! any capacity from it. Still to come (issue #14): reading the stream from the events
//! database, the engine's clean-up threshold and eviction target, retention, the ceiling,
//! the recommendation, the command and its outputs.

pub mod stack;

pub use stack::StackDistances;

/// Hit ratios by capacity, from each request's stack distance.
#[derive(Debug, Clone, Default)]
pub struct Curve {
    /// The finite distances, sorted.
    distances: Vec<u64>,
    /// Requests in all (those no cache serves included).
    requests: u64,
}

impl Curve {
    /// The curve of requests whose distances are `distances` (`None`: no cache serves it).
    pub fn new(distances: impl IntoIterator<Item = Option<u64>>) -> Curve {
        let mut requests = 0;
        let mut finite = Vec::new();
        for d in distances {
            requests += 1;
            if let Some(d) = d {
                finite.push(d);
            }
        }
        finite.sort_unstable();
        Curve { distances: finite, requests }
    }

    /// The share of requests an LRU cache of `bytes` would have served.
    pub fn hit_ratio(&self, bytes: u64) -> Option<f64> {
        (self.requests > 0).then(|| self.distances.partition_point(|d| *d <= bytes) as f64 / self.requests as f64)
    }

    /// What an infinite cache would have served: the ceiling no capacity passes.
    pub fn ceiling(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.distances.len() as f64 / self.requests as f64)
    }

    /// The smallest capacity (bytes) whose hit ratio is at least `target`, if any is.
    pub fn smallest_for(&self, target: f64) -> Option<u64> {
        if self.requests == 0 {
            return None;
        }
        let needed = (target * self.requests as f64).ceil() as usize;
        match needed {
            0 => Some(0),
            n if n <= self.distances.len() => Some(self.distances[n - 1]),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_curve_rises_to_its_ceiling_and_names_the_smallest_size_for_a_target() {
        let c = Curve::new([None, Some(10), Some(30), Some(20), None, Some(10), Some(50), Some(40), Some(10), Some(20)]);
        assert_eq!(c.hit_ratio(0), Some(0.0));
        assert_eq!(c.hit_ratio(10), Some(0.3));
        assert_eq!(c.hit_ratio(25), Some(0.5));
        assert_eq!(c.hit_ratio(u64::MAX), Some(0.8));
        assert_eq!(c.ceiling(), Some(0.8));
        assert_eq!(c.smallest_for(0.5), Some(20));
        assert_eq!(c.smallest_for(0.8), Some(50));
        assert_eq!(c.smallest_for(0.9), None, "above the ceiling no size will do");
        assert_eq!(Curve::new([]).hit_ratio(5), None);
    }
}
