//! Market data: the `MarketData` trait the engine computes features from, a deterministic
//! synthetic source (seeded, any symbol, any range, with versioned corrections) and a
//! Parquet-directory source (`<dir>/<SYMBOL>.parquet`, version from the file's size and mtime).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arrow::array::{Array, ArrayRef, Float64Array, RecordBatch, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::{Duration, NaiveDateTime, Timelike};

/// Failure to provide bars.
#[derive(Debug, thiserror::Error)]
pub enum MarketDataError {
    #[error("no market data for symbol `{symbol}` in {dir}")]
    UnknownSymbol { symbol: String, dir: PathBuf },
    #[error("range {start} .. {end} is empty or reversed")]
    BadRange { start: String, end: String },
    #[error("range {start} .. {end} has {bars} one-minute bars, more than the limit of {limit}")]
    RangeTooLarge {
        start: String,
        end: String,
        bars: i64,
        limit: i64,
    },
    #[error("cannot read market data file {path}: {source}")]
    Read { path: PathBuf, source: crate::BoxError },
}

/// Largest range a source serves in one call (about two years of minutes).
pub const MAX_BARS: i64 = 1_100_000;

/// The schema every source returns: one-minute OHLCV bars.
pub fn bar_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), false),
        Field::new("open", DataType::Float64, false),
        Field::new("high", DataType::Float64, false),
        Field::new("low", DataType::Float64, false),
        Field::new("close", DataType::Float64, false),
        Field::new("volume", DataType::Float64, false),
    ]))
}

/// `batch` with the bar schema: columns found by name (others ignored) and cast, so that bars
/// written by other tools read as they are (pyarrow writes `timestamp[ns, tz=UTC]` and integer
/// volumes); a time zone is dropped after conversion to UTC (the engine's times are naive UTC).
pub fn conform(batch: &RecordBatch) -> Result<RecordBatch, String> {
    let schema = bar_schema();
    let mut columns = Vec::with_capacity(schema.fields().len());
    for f in schema.fields() {
        let c = batch
            .column_by_name(f.name())
            .ok_or_else(|| format!("the bars have no `{}` column (need ts, open, high, low, close, volume)", f.name()))?;
        let c = match c.data_type() {
            DataType::Timestamp(unit, Some(_)) => {
                let data = c
                    .to_data()
                    .into_builder()
                    .data_type(DataType::Timestamp(*unit, None))
                    .build()
                    .map_err(|e| e.to_string())?;
                arrow::array::make_array(data)
            }
            _ => c.clone(),
        };
        columns.push(arrow::compute::cast(&c, f.data_type()).map_err(|e| format!("column `{}`: {e}", f.name()))?);
    }
    RecordBatch::try_new(schema, columns).map_err(|e| e.to_string())
}

/// A provider of OHLCV bars with a version per symbol: when the data of a symbol changes
/// (a correction, a late print), its version changes and cached features become stale.
pub trait MarketData: Send + Sync {
    /// A short name for logs (`synthetic(seed=7)`, `parquet(/data/bars)`).
    fn describe(&self) -> String;
    /// The current version of a symbol's data.
    fn version(&self, symbol: &str) -> Result<String, MarketDataError>;
    /// Bars with `start <= ts < end`.
    fn bars(
        &self,
        symbol: &str,
        start: NaiveDateTime,
        end: NaiveDateTime,
    ) -> Result<RecordBatch, MarketDataError>;
}

/// Deterministic synthetic bars: a random walk per symbol and UTC day, reproducible from
/// (seed, symbol, version, minute). `publish_correction` bumps a symbol's version, which
/// changes its prices, like a real market-data correction.
#[derive(Debug)]
pub struct SyntheticMarketData {
    seed: u64,
    versions: Mutex<HashMap<String, u64>>,
}

impl SyntheticMarketData {
    pub fn new(seed: u64) -> SyntheticMarketData {
        SyntheticMarketData {
            seed,
            versions: Mutex::new(HashMap::new()),
        }
    }

    /// A market-data correction for `symbol`: its version goes up by one.
    pub fn publish_correction(&self, symbol: &str) -> u64 {
        let mut v = self.versions.lock().unwrap_or_else(|e| e.into_inner());
        let e = v.entry(symbol.to_string()).or_insert(0);
        *e += 1;
        *e
    }

    fn version_num(&self, symbol: &str) -> u64 {
        let v = self.versions.lock().unwrap_or_else(|e| e.into_inner());
        v.get(symbol).copied().unwrap_or(0)
    }
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

fn unit(x: u64) -> f64 {
    ((x >> 11) as f64 + 0.5) / (1u64 << 53) as f64
}

fn check_range(start: NaiveDateTime, end: NaiveDateTime) -> Result<i64, MarketDataError> {
    if end <= start {
        return Err(MarketDataError::BadRange {
            start: start.to_string(),
            end: end.to_string(),
        });
    }
    let first = start.with_second(0).and_then(|t| t.with_nanosecond(0)).unwrap_or(start);
    let first = if first < start { first + Duration::minutes(1) } else { first };
    let bars = ((end - first).num_seconds() + 59) / 60;
    if bars > MAX_BARS {
        return Err(MarketDataError::RangeTooLarge {
            start: start.to_string(),
            end: end.to_string(),
            bars,
            limit: MAX_BARS,
        });
    }
    Ok(bars.max(0))
}

impl MarketData for SyntheticMarketData {
    fn describe(&self) -> String {
        format!("synthetic(seed={})", self.seed)
    }

    fn version(&self, symbol: &str) -> Result<String, MarketDataError> {
        Ok(format!("v{}", self.version_num(symbol)))
    }

    fn bars(
        &self,
        symbol: &str,
        start: NaiveDateTime,
        end: NaiveDateTime,
    ) -> Result<RecordBatch, MarketDataError> {
        let n = check_range(start, end)? as usize;
        let version = self.version_num(symbol);
        let sym = fnv(symbol) ^ self.seed.rotate_left(17);
        let base = 20.0 + (splitmix(sym) % 48_000) as f64 / 100.0;
        let mut ts = Vec::with_capacity(n);
        let (mut o, mut h, mut l, mut c, mut vol) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        // Walk from the start of the UTC day so any range of the same day agrees.
        let mut t = start.date().and_hms_opt(0, 0, 0).expect("midnight exists");
        let mut price = base;
        while t < end {
            let minute = t.and_utc().timestamp() / 60;
            let r = splitmix(sym ^ splitmix(minute as u64 ^ version.wrapping_mul(0xA24B_AED4_963E_E407)));
            let z = (unit(r) - 0.5) * 3.46; // uniform with unit variance
            let open = price;
            price *= 1.0 + 0.0008 * z;
            if t >= start {
                let spread = open.max(price) * 0.0004 * unit(splitmix(r));
                ts.push(t.and_utc().timestamp_micros());
                o.push(open);
                c.push(price);
                h.push(open.max(price) + spread);
                l.push(open.min(price) - spread);
                vol.push(100.0 + (splitmix(r ^ 7) % 10_000) as f64);
            }
            t += Duration::minutes(1);
        }
        let cols: Vec<ArrayRef> = vec![
            Arc::new(TimestampMicrosecondArray::from(ts)),
            Arc::new(Float64Array::from(o)),
            Arc::new(Float64Array::from(h)),
            Arc::new(Float64Array::from(l)),
            Arc::new(Float64Array::from(c)),
            Arc::new(Float64Array::from(vol)),
        ];
        Ok(RecordBatch::try_new(bar_schema(), cols).expect("columns match the bar schema"))
    }
}

/// Bars from `<dir>/<SYMBOL>.parquet`, each with the columns of [`bar_schema`].
#[derive(Debug, Clone)]
pub struct ParquetDirMarketData {
    dir: PathBuf,
}

impl ParquetDirMarketData {
    pub fn new(dir: impl Into<PathBuf>) -> ParquetDirMarketData {
        ParquetDirMarketData { dir: dir.into() }
    }

    fn path(&self, symbol: &str) -> Result<PathBuf, MarketDataError> {
        let safe = !symbol.is_empty()
            && symbol
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            && !symbol.starts_with('.');
        let p = self.dir.join(format!("{symbol}.parquet"));
        if !safe || !p.is_file() {
            return Err(MarketDataError::UnknownSymbol {
                symbol: symbol.to_string(),
                dir: self.dir.clone(),
            });
        }
        Ok(p)
    }

    /// Writes bars for `symbol` (used to build a directory from any other source).
    pub fn write(dir: &Path, symbol: &str, bars: &RecordBatch) -> Result<(), MarketDataError> {
        let path = dir.join(format!("{symbol}.parquet"));
        let err = |source: crate::BoxError| MarketDataError::Read {
            path: path.clone(),
            source,
        };
        let f = std::fs::File::create(&path).map_err(|e| err(e.into()))?;
        let mut w = parquet::arrow::ArrowWriter::try_new(f, bars.schema(), None)
            .map_err(|e| err(e.into()))?;
        w.write(bars).map_err(|e| err(e.into()))?;
        w.close().map_err(|e| err(e.into()))?;
        Ok(())
    }
}

impl MarketData for ParquetDirMarketData {
    fn describe(&self) -> String {
        format!("parquet({})", self.dir.display())
    }

    fn version(&self, symbol: &str) -> Result<String, MarketDataError> {
        let p = self.path(symbol)?;
        let m = std::fs::metadata(&p).map_err(|e| MarketDataError::Read {
            path: p.clone(),
            source: e.into(),
        })?;
        let mtime = m
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        Ok(format!("{}-{}", m.len(), mtime))
    }

    fn bars(
        &self,
        symbol: &str,
        start: NaiveDateTime,
        end: NaiveDateTime,
    ) -> Result<RecordBatch, MarketDataError> {
        check_range(start, end)?;
        let p = self.path(symbol)?;
        let err = |source: crate::BoxError| MarketDataError::Read {
            path: p.clone(),
            source,
        };
        let f = std::fs::File::open(&p).map_err(|e| err(e.into()))?;
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
            .and_then(|b| b.build())
            .map_err(|e| err(e.into()))?;
        let (s, e) = (start.and_utc().timestamp_micros(), end.and_utc().timestamp_micros());
        let mut cols: Vec<Vec<f64>> = vec![Vec::new(); 5];
        let mut ts = Vec::new();
        for batch in reader {
            let batch = conform(&batch.map_err(|e| err(e.into()))?).map_err(|e| err(e.into()))?;
            let get_f = |name: &str| -> Result<Float64Array, MarketDataError> {
                batch
                    .column_by_name(name)
                    .and_then(|c| c.as_any().downcast_ref::<Float64Array>().cloned())
                    .ok_or_else(|| err(format!("column `{name}` missing or not Float64").into()))
            };
            let t = batch
                .column_by_name("ts")
                .and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>().cloned())
                .ok_or_else(|| err("column `ts` missing or not timestamp(us)".into()))?;
            let fs = ["open", "high", "low", "close", "volume"]
                .iter()
                .map(|n| get_f(n))
                .collect::<Result<Vec<_>, _>>()?;
            for i in 0..batch.num_rows() {
                let v = t.value(i);
                if v >= s && v < e && !t.is_null(i) {
                    ts.push(v);
                    for (k, col) in fs.iter().enumerate() {
                        cols[k].push(col.value(i));
                    }
                }
            }
        }
        let mut arrays: Vec<ArrayRef> = vec![Arc::new(TimestampMicrosecondArray::from(ts))];
        arrays.extend(cols.into_iter().map(|c| Arc::new(Float64Array::from(c)) as ArrayRef));
        RecordBatch::try_new(bar_schema(), arrays).map_err(|e| err(e.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::clock::parse_ts;

    fn t(s: &str) -> NaiveDateTime {
        parse_ts(s).unwrap()
    }

    #[test]
    fn synthetic_is_deterministic_and_consistent_across_ranges() {
        let a = SyntheticMarketData::new(7);
        let b = SyntheticMarketData::new(7);
        let day = a.bars("AAPL", t("2026-11-26T09:30:00Z"), t("2026-11-26T16:00:00Z")).unwrap();
        assert_eq!(day.num_rows(), 390);
        assert_eq!(day, b.bars("AAPL", t("2026-11-26T09:30:00Z"), t("2026-11-26T16:00:00Z")).unwrap());
        let part = a.bars("AAPL", t("2026-11-26T10:00:00Z"), t("2026-11-26T10:10:00Z")).unwrap();
        assert_eq!(part.num_rows(), 10);
        assert_eq!(part.column(4).to_data(), day.column(4).slice(30, 10).to_data());
        let other = a.bars("MSFT", t("2026-11-26T09:30:00Z"), t("2026-11-26T16:00:00Z")).unwrap();
        assert_ne!(day.column(4).to_data(), other.column(4).to_data());
    }

    #[test]
    fn bars_written_by_other_tools_are_conformed() {
        use arrow::array::{Int64Array, TimestampNanosecondArray};
        let n = TimestampNanosecondArray::from(vec![1_764_000_000_000_000_000i64, 1_764_000_060_000_000_000]).with_timezone("UTC");
        let f = |v: f64| Arc::new(Float64Array::from(vec![v, v])) as ArrayRef;
        let b = RecordBatch::try_from_iter(vec![
            ("volume", Arc::new(Int64Array::from(vec![5, 6])) as ArrayRef),
            ("ts", Arc::new(n) as ArrayRef),
            ("open", f(1.0)),
            ("high", f(2.0)),
            ("low", f(0.5)),
            ("close", f(1.5)),
            ("extra", f(9.0)),
        ])
        .unwrap();
        let c = conform(&b).unwrap();
        assert_eq!(c.schema(), bar_schema());
        let ts = c.column(0).as_any().downcast_ref::<TimestampMicrosecondArray>().unwrap();
        assert_eq!(ts.value(1), 1_764_000_060_000_000);
        assert_eq!(c.column(5).as_any().downcast_ref::<Float64Array>().unwrap().value(1), 6.0);
        let missing = RecordBatch::try_from_iter(vec![("ts", Arc::new(TimestampMicrosecondArray::from(vec![0i64])) as ArrayRef)]).unwrap();
        assert!(conform(&missing).unwrap_err().contains("no `open` column"));
    }

    #[test]
    fn a_correction_changes_version_and_prices() {
        let a = SyntheticMarketData::new(1);
        let r = (t("2026-11-26T09:30:00Z"), t("2026-11-26T10:30:00Z"));
        let before = a.bars("AAPL", r.0, r.1).unwrap();
        assert_eq!(a.version("AAPL").unwrap(), "v0");
        a.publish_correction("AAPL");
        assert_eq!(a.version("AAPL").unwrap(), "v1");
        assert_ne!(before.column(4).to_data(), a.bars("AAPL", r.0, r.1).unwrap().column(4).to_data());
    }

    #[test]
    fn bad_ranges_are_refused() {
        let a = SyntheticMarketData::new(1);
        assert!(matches!(
            a.bars("A", t("2026-11-26T10:00:00Z"), t("2026-11-26T09:00:00Z")),
            Err(MarketDataError::BadRange { .. })
        ));
        assert!(matches!(
            a.bars("A", t("2020-01-01T00:00:00Z"), t("2026-01-01T00:00:00Z")),
            Err(MarketDataError::RangeTooLarge { .. })
        ));
    }

    #[test]
    fn parquet_dir_serves_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let syn = SyntheticMarketData::new(3);
        let all = syn.bars("MSFT", t("2026-11-26T09:30:00Z"), t("2026-11-26T16:00:00Z")).unwrap();
        ParquetDirMarketData::write(dir.path(), "MSFT", &all).unwrap();
        let src = ParquetDirMarketData::new(dir.path());
        let part = src.bars("MSFT", t("2026-11-26T10:00:00Z"), t("2026-11-26T11:00:00Z")).unwrap();
        assert_eq!(part.num_rows(), 60);
        assert_eq!(part.column(4).to_data(), all.column(4).slice(30, 60).to_data());
        assert!(src.version("MSFT").unwrap().starts_with(&format!("{}-", std::fs::metadata(dir.path().join("MSFT.parquet")).unwrap().len())));
        assert!(matches!(src.version("../etc/passwd"), Err(MarketDataError::UnknownSymbol { .. })));
        assert!(matches!(src.version("NOPE"), Err(MarketDataError::UnknownSymbol { .. })));
    }
}
