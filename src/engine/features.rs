//! Feature sets: the `FeatureSet` trait applications implement, the built-in sets computed
//! from OHLCV bars (returns, rolling volatility, VWAP, momentum, a larger multi-horizon set),
//! the memory budget every computation runs under, and the registry that tracks each set's
//! current configuration and its hash.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float64Array, RecordBatch, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

use super::key::digest;

/// A feature set's configuration: named numeric parameters.
pub type Params = BTreeMap<String, f64>;

/// Why a computation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ComputeError {
    #[error("out of memory (OOM): feature set `{feature_set}` needed {needed_bytes} bytes, the computation limit is {limit_bytes} bytes")]
    OutOfMemory {
        feature_set: String,
        needed_bytes: u64,
        limit_bytes: u64,
    },
    #[error("bad input bars: {0}")]
    BadInput(String),
}

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FeatureConfigError {
    #[error("unknown feature set `{0}`; `cachescope feature-sets` lists the available ones")]
    Unknown(String),
    #[error("feature set `{set}`: unknown parameter `{param}` (known: {known})")]
    UnknownParam {
        set: String,
        param: String,
        known: String,
    },
    #[error("feature set `{set}`: parameter `{param}` = {value} is invalid: {why}")]
    BadValue {
        set: String,
        param: String,
        value: f64,
        why: String,
    },
}

/// Memory accounting for one computation: every buffer a feature set allocates is charged
/// here first; going past the limit fails the computation instead of the process.
#[derive(Debug)]
pub struct MemoryBudget {
    feature_set: String,
    limit: u64,
    used: u64,
    peak: u64,
}

impl MemoryBudget {
    pub fn new(feature_set: &str, limit_bytes: u64) -> MemoryBudget {
        MemoryBudget {
            feature_set: feature_set.to_string(),
            limit: limit_bytes,
            used: 0,
            peak: 0,
        }
    }

    /// Charges `bytes`, failing when the total would pass the limit.
    pub fn charge(&mut self, bytes: u64) -> Result<(), ComputeError> {
        let needed = self.used + bytes;
        if needed > self.limit {
            return Err(ComputeError::OutOfMemory {
                feature_set: self.feature_set.clone(),
                needed_bytes: needed,
                limit_bytes: self.limit,
            });
        }
        self.used = needed;
        self.peak = self.peak.max(needed);
        Ok(())
    }

    /// A zeroed `f64` buffer of `n` values, charged to the budget.
    pub fn alloc(&mut self, n: usize) -> Result<Vec<f64>, ComputeError> {
        self.charge((n * std::mem::size_of::<f64>()) as u64)?;
        Ok(vec![0.0; n])
    }

    /// Bytes in use at the peak.
    pub fn peak(&self) -> u64 {
        self.peak
    }
}

/// A named computation from OHLCV bars to a table of features.
pub trait FeatureSet: Send + Sync {
    fn name(&self) -> &str;
    fn description(&self) -> &str;
    /// Parameters and their defaults.
    fn default_params(&self) -> Params;
    /// Checks a parameter value (the key is known to exist).
    fn check_param(&self, _param: &str, value: f64) -> Result<(), String> {
        if value.is_finite() && value >= 1.0 && value.fract() == 0.0 {
            Ok(())
        } else {
            Err("must be a whole number >= 1".into())
        }
    }
    /// Computes the features; every buffer is charged to `budget`.
    fn compute(
        &self,
        bars: &RecordBatch,
        params: &Params,
        budget: &mut MemoryBudget,
    ) -> Result<RecordBatch, ComputeError>;
}

/// Columns of a bar batch, checked.
struct Bars<'a> {
    ts: &'a TimestampMicrosecondArray,
    close: &'a [f64],
    high: &'a [f64],
    low: &'a [f64],
    volume: &'a [f64],
}

fn bars_of(b: &RecordBatch) -> Result<Bars<'_>, ComputeError> {
    let f = |name: &str| -> Result<&[f64], ComputeError> {
        b.column_by_name(name)
            .and_then(|c| c.as_any().downcast_ref::<Float64Array>())
            .map(|a| a.values().as_ref())
            .ok_or_else(|| ComputeError::BadInput(format!("column `{name}` missing or not Float64")))
    };
    Ok(Bars {
        ts: b
            .column_by_name("ts")
            .and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>())
            .ok_or_else(|| ComputeError::BadInput("column `ts` missing".into()))?,
        close: f("close")?,
        high: f("high")?,
        low: f("low")?,
        volume: f("volume")?,
    })
}

fn output(ts: &TimestampMicrosecondArray, cols: Vec<(String, Vec<f64>)>) -> RecordBatch {
    let mut fields = vec![Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), false)];
    let mut arrays: Vec<ArrayRef> = vec![Arc::new(ts.clone())];
    for (name, v) in cols {
        fields.push(Field::new(name, DataType::Float64, true));
        arrays.push(Arc::new(Float64Array::from(
            v.into_iter().map(|x| x.is_finite().then_some(x)).collect::<Vec<_>>(),
        )));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).expect("columns have equal length")
}

fn param(p: &Params, k: &str) -> usize {
    p.get(k).copied().unwrap_or(1.0) as usize
}

fn simple_returns(close: &[f64], out: &mut [f64]) {
    for i in 0..close.len() {
        out[i] = if i == 0 { f64::NAN } else { close[i] / close[i - 1] - 1.0 };
    }
}

/// Rolling sample standard deviation over `w` values (NaN until the window is full).
fn rolling_std(x: &[f64], w: usize, out: &mut [f64]) {
    let (mut s, mut s2, mut n) = (0.0, 0.0, 0usize);
    for i in 0..x.len() {
        if x[i].is_finite() {
            s += x[i];
            s2 += x[i] * x[i];
            n += 1;
        }
        if i >= w && x[i - w].is_finite() {
            s -= x[i - w];
            s2 -= x[i - w] * x[i - w];
            n -= 1;
        }
        out[i] = if n >= w.max(2) {
            let m = s / n as f64;
            ((s2 / n as f64 - m * m).max(0.0) * n as f64 / (n - 1) as f64).sqrt()
        } else {
            f64::NAN
        };
    }
}

fn momentum(close: &[f64], lookback: usize, out: &mut [f64]) {
    for i in 0..close.len() {
        out[i] = if i >= lookback { close[i] / close[i - lookback] - 1.0 } else { f64::NAN };
    }
}

/// `returns`: simple and log returns of the close.
pub struct Returns;
impl FeatureSet for Returns {
    fn name(&self) -> &str {
        "returns"
    }
    fn description(&self) -> &str {
        "simple and log returns of the close, bar over bar"
    }
    fn default_params(&self) -> Params {
        Params::new()
    }
    fn compute(&self, bars: &RecordBatch, _p: &Params, b: &mut MemoryBudget) -> Result<RecordBatch, ComputeError> {
        let x = bars_of(bars)?;
        let n = x.close.len();
        let mut ret = b.alloc(n)?;
        simple_returns(x.close, &mut ret);
        let mut log_ret = b.alloc(n)?;
        for i in 0..n {
            log_ret[i] = (1.0 + ret[i]).ln();
        }
        Ok(output(x.ts, vec![("ret".into(), ret), ("log_ret".into(), log_ret)]))
    }
}

/// `volatility`: rolling standard deviation of returns, raw and annualised.
pub struct Volatility;
impl FeatureSet for Volatility {
    fn name(&self) -> &str {
        "volatility"
    }
    fn description(&self) -> &str {
        "rolling standard deviation of one-minute returns over `window` bars, raw and annualised"
    }
    fn default_params(&self) -> Params {
        Params::from([("window".into(), 20.0)])
    }
    fn compute(&self, bars: &RecordBatch, p: &Params, b: &mut MemoryBudget) -> Result<RecordBatch, ComputeError> {
        let x = bars_of(bars)?;
        let n = x.close.len();
        let mut ret = b.alloc(n)?;
        simple_returns(x.close, &mut ret);
        let mut vol = b.alloc(n)?;
        rolling_std(&ret, param(p, "window"), &mut vol);
        let mut ann = b.alloc(n)?;
        let k = (252.0f64 * 390.0).sqrt();
        for i in 0..n {
            ann[i] = vol[i] * k;
        }
        Ok(output(x.ts, vec![("vol".into(), vol), ("vol_annualised".into(), ann)]))
    }
}

/// `vwap`: rolling volume-weighted average price and the close's deviation from it.
pub struct Vwap;
impl FeatureSet for Vwap {
    fn name(&self) -> &str {
        "vwap"
    }
    fn description(&self) -> &str {
        "rolling VWAP of the typical price over `window` bars, and close / VWAP - 1"
    }
    fn default_params(&self) -> Params {
        Params::from([("window".into(), 30.0)])
    }
    fn compute(&self, bars: &RecordBatch, p: &Params, b: &mut MemoryBudget) -> Result<RecordBatch, ComputeError> {
        let x = bars_of(bars)?;
        let n = x.close.len();
        let w = param(p, "window");
        let mut vwap = b.alloc(n)?;
        let mut dev = b.alloc(n)?;
        let (mut pv, mut v) = (0.0, 0.0);
        for i in 0..n {
            let typical = (x.high[i] + x.low[i] + x.close[i]) / 3.0;
            pv += typical * x.volume[i];
            v += x.volume[i];
            if i >= w {
                let old = (x.high[i - w] + x.low[i - w] + x.close[i - w]) / 3.0;
                pv -= old * x.volume[i - w];
                v -= x.volume[i - w];
            }
            vwap[i] = if v > 0.0 { pv / v } else { f64::NAN };
            dev[i] = x.close[i] / vwap[i] - 1.0;
        }
        Ok(output(x.ts, vec![("vwap".into(), vwap), ("vwap_dev".into(), dev)]))
    }
}

/// `momentum`: the close's change over `lookback` bars.
pub struct Momentum;
impl FeatureSet for Momentum {
    fn name(&self) -> &str {
        "momentum"
    }
    fn description(&self) -> &str {
        "close / close `lookback` bars earlier - 1"
    }
    fn default_params(&self) -> Params {
        Params::from([("lookback".into(), 10.0)])
    }
    fn compute(&self, bars: &RecordBatch, p: &Params, b: &mut MemoryBudget) -> Result<RecordBatch, ComputeError> {
        let x = bars_of(bars)?;
        let mut m = b.alloc(x.close.len())?;
        momentum(x.close, param(p, "lookback"), &mut m);
        Ok(output(x.ts, vec![("momentum".into(), m)]))
    }
}

/// `multi_horizon`: volatility and momentum at `horizons` doubling horizons from `base`
/// bars, plus a scratch matrix per horizon: the large set, first to feel a memory limit.
pub struct MultiHorizon;
impl FeatureSet for MultiHorizon {
    fn name(&self) -> &str {
        "multi_horizon"
    }
    fn description(&self) -> &str {
        "volatility and momentum at `horizons` doubling horizons starting at `base` bars (the large set)"
    }
    fn default_params(&self) -> Params {
        Params::from([("base".into(), 5.0), ("horizons".into(), 6.0)])
    }
    fn check_param(&self, param: &str, value: f64) -> Result<(), String> {
        let max = if param == "horizons" { 12.0 } else { 10_000.0 };
        if value.is_finite() && value >= 1.0 && value <= max && value.fract() == 0.0 {
            Ok(())
        } else {
            Err(format!("must be a whole number in 1..={max}"))
        }
    }
    fn compute(&self, bars: &RecordBatch, p: &Params, b: &mut MemoryBudget) -> Result<RecordBatch, ComputeError> {
        let x = bars_of(bars)?;
        let n = x.close.len();
        let mut ret = b.alloc(n)?;
        simple_returns(x.close, &mut ret);
        let mut cols = Vec::new();
        let base = param(p, "base");
        for k in 0..param(p, "horizons") {
            let h = base << k;
            // Scratch: the return windows this horizon aggregates, materialised.
            let mut scratch = b.alloc(n * 4)?;
            for (i, s) in scratch.iter_mut().enumerate() {
                *s = ret[i % n];
            }
            let mut vol = b.alloc(n)?;
            rolling_std(&ret, h, &mut vol);
            let mut mom = b.alloc(n)?;
            momentum(x.close, h, &mut mom);
            cols.push((format!("vol_{h}"), vol));
            cols.push((format!("mom_{h}"), mom));
        }
        Ok(output(x.ts, cols))
    }
}

/// The built-in feature sets.
pub fn builtin() -> Vec<Arc<dyn FeatureSet>> {
    vec![
        Arc::new(Returns),
        Arc::new(Volatility),
        Arc::new(Vwap),
        Arc::new(Momentum),
        Arc::new(MultiHorizon),
    ]
}

/// A feature set with its current configuration.
#[derive(Clone)]
pub struct Configured {
    pub set: Arc<dyn FeatureSet>,
    pub params: Params,
    pub config_hash: String,
}

impl Configured {
    /// The configuration as `k=v;k=v` (the trace format's notation).
    pub fn params_string(&self) -> String {
        params_to_string(&self.params)
    }
}

/// `k=v;k=v`, keys sorted.
pub fn params_to_string(p: &Params) -> String {
    p.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(";")
}

/// Parses `k=v;k=v` (empty string: no parameters).
pub fn parse_params(s: &str) -> Result<Params, String> {
    let mut p = Params::new();
    for part in s.split(';').map(str::trim).filter(|x| !x.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("`{part}` is not `name=value`"))?;
        let v: f64 = v
            .trim()
            .parse()
            .map_err(|_| format!("`{}` is not a number", v.trim()))?;
        p.insert(k.trim().to_string(), v);
    }
    Ok(p)
}

/// Hash of a set's name and parameters.
pub fn config_hash(name: &str, p: &Params) -> String {
    digest(&["config-v1", name, &params_to_string(p)])
}

/// The feature sets the engine knows and their current configuration.
#[derive(Clone)]
pub struct FeatureRegistry {
    sets: BTreeMap<String, Configured>,
}

impl FeatureRegistry {
    /// The built-in sets with `overrides` (from the configuration file) applied.
    pub fn with_builtins(overrides: &BTreeMap<String, Params>) -> Result<FeatureRegistry, FeatureConfigError> {
        let mut r = FeatureRegistry { sets: BTreeMap::new() };
        for s in builtin() {
            r.register(s);
        }
        for (name, p) in overrides {
            r.configure(name, p)?;
        }
        Ok(r)
    }

    /// Adds (or replaces) a feature set with its default configuration.
    pub fn register(&mut self, set: Arc<dyn FeatureSet>) {
        let params = set.default_params();
        let config_hash = config_hash(set.name(), &params);
        self.sets.insert(
            set.name().to_string(),
            Configured {
                set,
                params,
                config_hash,
            },
        );
    }

    pub fn get(&self, name: &str) -> Result<&Configured, FeatureConfigError> {
        self.sets
            .get(name)
            .ok_or_else(|| FeatureConfigError::Unknown(name.to_string()))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Configured> {
        self.sets.values()
    }

    /// Changes parameters of a set (unnamed ones keep their value); returns the new hash.
    pub fn configure(&mut self, name: &str, changes: &Params) -> Result<String, FeatureConfigError> {
        let c = self
            .sets
            .get_mut(name)
            .ok_or_else(|| FeatureConfigError::Unknown(name.to_string()))?;
        let defaults = c.set.default_params();
        let mut params = c.params.clone();
        for (k, v) in changes {
            if !defaults.contains_key(k) {
                return Err(FeatureConfigError::UnknownParam {
                    set: name.into(),
                    param: k.clone(),
                    known: if defaults.is_empty() {
                        "none".into()
                    } else {
                        defaults.keys().cloned().collect::<Vec<_>>().join(", ")
                    },
                });
            }
            c.set.check_param(k, *v).map_err(|why| FeatureConfigError::BadValue {
                set: name.into(),
                param: k.clone(),
                value: *v,
                why,
            })?;
            params.insert(k.clone(), *v);
        }
        c.config_hash = config_hash(name, &params);
        c.params = params;
        Ok(c.config_hash.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::clock::parse_ts;
    use crate::engine::market_data::{MarketData, SyntheticMarketData};

    fn day() -> RecordBatch {
        SyntheticMarketData::new(1)
            .bars("AAPL", parse_ts("2026-11-26T09:30:00Z").unwrap(), parse_ts("2026-11-26T16:00:00Z").unwrap())
            .unwrap()
    }

    #[test]
    fn builtins_compute_sensible_values() {
        let bars = day();
        let reg = FeatureRegistry::with_builtins(&BTreeMap::new()).unwrap();
        for c in reg.iter() {
            let mut b = MemoryBudget::new(c.set.name(), 1 << 30);
            let out = c.set.compute(&bars, &c.params, &mut b).unwrap();
            assert_eq!(out.num_rows(), 390, "{}", c.set.name());
            assert!(b.peak() > 0);
        }
        let close = bars.column_by_name("close").unwrap().as_any().downcast_ref::<Float64Array>().unwrap();
        let mut b = MemoryBudget::new("m", 1 << 30);
        let m = Momentum.compute(&bars, &Momentum.default_params(), &mut b).unwrap();
        let mom = m.column(1).as_any().downcast_ref::<Float64Array>().unwrap();
        assert!(mom.is_null(9));
        assert!((mom.value(10) - (close.value(10) / close.value(0) - 1.0)).abs() < 1e-12);
        let v = Volatility.compute(&bars, &Volatility.default_params(), &mut b).unwrap();
        let vol = v.column(1).as_any().downcast_ref::<Float64Array>().unwrap();
        assert!(vol.value(100) > 0.0 && vol.value(100) < 0.01);
    }

    #[test]
    fn rolling_std_matches_a_direct_computation() {
        let x = [1.0, 2.0, 4.0, 8.0, 3.0, 5.0];
        let mut out = [0.0; 6];
        rolling_std(&x, 3, &mut out);
        let w = &x[3..6];
        let m = w.iter().sum::<f64>() / 3.0;
        let sd = (w.iter().map(|v| (v - m).powi(2)).sum::<f64>() / 2.0).sqrt();
        assert!((out[5] - sd).abs() < 1e-12);
        assert!(out[1].is_nan());
    }

    #[test]
    fn budget_refuses_the_large_set_first() {
        let bars = day();
        let limit = 60_000;
        let mut b = MemoryBudget::new("multi_horizon", limit);
        let e = MultiHorizon.compute(&bars, &MultiHorizon.default_params(), &mut b).unwrap_err();
        assert!(e.to_string().contains("out of memory (OOM)"), "{e}");
        let mut b = MemoryBudget::new("returns", limit);
        Returns.compute(&bars, &Params::new(), &mut b).unwrap();
    }

    #[test]
    fn configure_changes_hash_and_validates() {
        let mut reg = FeatureRegistry::with_builtins(&BTreeMap::new()).unwrap();
        let before = reg.get("volatility").unwrap().config_hash.clone();
        let after = reg.configure("volatility", &parse_params("window=30").unwrap()).unwrap();
        assert_ne!(before, after);
        assert_eq!(reg.configure("volatility", &parse_params("window=20").unwrap()).unwrap(), before);
        assert!(matches!(reg.configure("volatility", &parse_params("span=3").unwrap()), Err(FeatureConfigError::UnknownParam { .. })));
        assert!(matches!(reg.configure("volatility", &parse_params("window=0.5").unwrap()), Err(FeatureConfigError::BadValue { .. })));
        assert!(matches!(reg.configure("nope", &Params::new()), Err(FeatureConfigError::Unknown(_))));
        assert!(parse_params("window").is_err());
        assert_eq!(params_to_string(&parse_params(" b=2; a=1 ").unwrap()), "a=1;b=2");
    }
}
