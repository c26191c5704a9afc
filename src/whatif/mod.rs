//! What-if cache sizing (`cachescope whatif`; issue #14, in progress): the hit ratio the
//! feature store would have had at other capacities, from the request stream in the events
//! database: the exact one-pass LRU curve ([`stack::StackDistances`], [`Curve`]), what no
//! capacity fixes (the ceiling), and the smallest capacity that holds the SLO over the
//! period. Not modelled yet: the engine's clean-up threshold and eviction target (it evicts
//! in batches, below pure LRU's occupancy), retention, 5-minute windows, the SVG curve.

pub mod stack;
pub mod stream;

pub use stack::StackDistances;

use serde::Serialize;

use crate::analysis::{self, SLO};
use crate::engine::clock::fmt_ts;
use crate::queries;
use crate::query::Session;

/// Failure of a what-if analysis.
#[derive(Debug, thiserror::Error)]
pub enum WhatIfError {
    #[error(transparent)]
    Analysis(#[from] analysis::AnalysisError),
    #[error("reading the request stream: {0}")]
    Db(#[from] duckdb::Error),
    #[error("what-if reads every request from the database file, and a running `cachescope tail` holds it: stop tail while what-if runs (tail resumes where it stopped), or run it on a copy made while tail is stopped")]
    HeldByTailer,
    #[error("the database has no requests (hits or misses) to size a cache from")]
    NoRequests,
}

/// The capacity the engine ran with and what it served.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Current {
    pub capacity_gb: Option<f64>,
    pub retention_days: Option<f64>,
    /// Measured: the share of requests the engine served from cache.
    pub hit_ratio: Option<f64>,
    /// The LRU model's hit ratio at the current capacity (how far the model is from the engine).
    pub predicted_hit_ratio: Option<f64>,
    /// Times the capacity changed during the period: the measured ratio then mixes capacities.
    pub capacity_changes: u64,
}

/// One capacity's predicted hit ratio.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SizePoint {
    pub capacity_gb: f64,
    pub retention_days: Option<f64>,
    pub hit_ratio: f64,
    /// Minutes whose 5-minute ratio would be below the SLO (not computed yet).
    pub minutes_below_slo: Option<u64>,
}

/// The capacity (and retention) to set.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Recommendation {
    pub capacity_gb: f64,
    pub retention_days: Option<f64>,
}

/// `cachescope whatif`'s answer (its JSON shape).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WhatIf {
    pub from: String,
    pub until: String,
    pub requests: u64,
    pub keys: u64,
    pub working_set_gb: f64,
    pub current: Current,
    /// What an infinite cache would have served: first requests of keys, misses the engine
    /// could not store, invalidations and deleted files limit every capacity.
    pub ceiling_hit_ratio: f64,
    pub points: Vec<SizePoint>,
    /// The smallest capacity whose hit ratio over the period meets the SLO (`None`: none can).
    pub recommendation: Option<Recommendation>,
    pub slo_target: f64,
    pub model: String,
}

const GB: f64 = 1e9;

/// Sizes the cache from every request of the database (`capacities_gb`: the points to show;
/// none: a curve from a hundredth of the working set to all of it).
pub fn whatif(db: &Session, capacities_gb: &[f64]) -> Result<WhatIf, WhatIfError> {
    let conn = db.direct_connection().ok_or(WhatIfError::HeldByTailer)?;
    let period = analysis::data_range(db)?.ok_or(WhatIfError::NoRequests)?;
    let (from, until) = (period.from.to_string(), period.until.to_string());
    conn.execute_batch(queries::WHATIF_MEMORY)?;
    let d = stream::distances(conn, &from, &until)?;
    if d.distances.is_empty() {
        return Err(WhatIfError::NoRequests);
    }
    let requests = d.distances.len() as u64;
    let curve = Curve::new(d.distances);
    let current_gb: Option<f64> = conn
        .query_row(queries::WHATIF_CURRENT, [&until], |r| r.get("capacity_gb"))
        .or_else(|e| if matches!(e, duckdb::Error::QueryReturnedNoRows) { Ok(None) } else { Err(e) })?;
    let capacity_changes: i64 = conn.query_row(queries::WHATIF_CAPACITY_CHANGES, [&from, &until], |r| r.get("changes"))?;
    let measured = analysis::hit_ratio(db, period)?;
    let working_set_gb = d.working_set_bytes as f64 / GB;
    let mut sizes: Vec<f64> = if capacities_gb.is_empty() {
        (0..=12).map(|i| working_set_gb * 10f64.powf(-2.0 + 2.0 * i as f64 / 12.0)).collect()
    } else {
        capacities_gb.to_vec()
    };
    let recommendation = curve.smallest_for(SLO.target).map(|b| b as f64 / GB);
    sizes.extend(current_gb);
    sizes.extend(recommendation);
    sizes.sort_by(f64::total_cmp);
    sizes.dedup();
    let ratio = |gb: f64| curve.hit_ratio((gb * GB).round() as u64).unwrap_or(0.0);
    Ok(WhatIf {
        from: fmt_ts(period.from),
        until: fmt_ts(period.until),
        requests,
        keys: d.keys,
        working_set_gb,
        current: Current {
            capacity_gb: current_gb,
            retention_days: None,
            hit_ratio: measured,
            predicted_hit_ratio: current_gb.map(ratio),
            capacity_changes: capacity_changes.max(0) as u64,
        },
        ceiling_hit_ratio: curve.ceiling().unwrap_or(0.0),
        points: sizes
            .into_iter()
            .map(|gb| SizePoint { capacity_gb: gb, retention_days: None, hit_ratio: ratio(gb), minutes_below_slo: None })
            .collect(),
        recommendation: recommendation.map(|gb| Recommendation { capacity_gb: gb, retention_days: None }),
        slo_target: SLO.target,
        model: "least-recently-used by bytes, exact; the engine's clean-up threshold and eviction target, retention and 5-minute windows not modelled yet".into(),
    })
}

impl WhatIf {
    /// The Markdown `cachescope whatif` prints.
    pub fn markdown(&self) -> String {
        let pct = |x: f64| format!("{:.2}%", x * 100.0);
        let mut s = format!(
            "# What-if cache sizing\n\n{} .. {}: {} requests of {} keys; working set {:.6} GB.\n\n",
            self.from, self.until, self.requests, self.keys, self.working_set_gb
        );
        match (self.current.capacity_gb, self.current.hit_ratio) {
            (Some(gb), Some(h)) => {
                s += &format!(
                    "Current: `max_cache_size_gb = {gb}` served {}; the model predicts {} at that size.",
                    pct(h),
                    self.current.predicted_hit_ratio.map(pct).unwrap_or_default()
                );
                if self.current.capacity_changes > 0 {
                    s += &format!(
                        " The capacity changed {} times during the period, so the measured ratio mixes capacities.",
                        self.current.capacity_changes
                    );
                }
                s += "\n\n";
            }
            (None, Some(h)) => s += &format!("Current: the log does not say the capacity; the engine served {}.\n\n", pct(h)),
            _ => {}
        }
        s += &format!(
            "Ceiling: an infinite cache would have served {} (first requests of keys, misses that could not be stored, invalidations and deleted files).\n\n",
            pct(self.ceiling_hit_ratio)
        );
        s += "| capacity (GB) | predicted hit ratio |\n| ---: | ---: |\n";
        for p in &self.points {
            s += &format!("| {:.6} | {} |\n", p.capacity_gb, pct(p.hit_ratio));
        }
        s += "\n";
        match &self.recommendation {
            Some(r) => s += &format!(
                "Smallest capacity for >= {} over the period: **`max_cache_size_gb = {:.6}`**.\n",
                pct(self.slo_target),
                r.capacity_gb
            ),
            None => s += &format!(
                "No capacity reaches {} over the period: the ceiling is {}; the misses no size fixes stand in the way (see `cachescope report`'s causes).\n",
                pct(self.slo_target),
                pct(self.ceiling_hit_ratio)
            ),
        }
        s += &format!("\nModel: {}.\n", self.model);
        s
    }
}

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
