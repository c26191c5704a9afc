//! Market data for a Python feature store: the engine's synthetic source, a directory of
//! `SYMBOL.parquet` files, or a Python callable `(symbol, start, end) -> pyarrow.Table`.
//! A callable's failures become the engine's failed computations with the Python traceback
//! in the error (never a crash); its versions move when `market_data_update` is called.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use arrow::pyarrow::{FromPyArrow, Table};
use cachescope::engine::market_data::{self, MarketData, MarketDataError, SyntheticMarketData};
use cachescope::engine::ParquetDirMarketData;
use chrono::NaiveDateTime;
use pyo3::prelude::*;

/// The source a store computes from, kept so that `market_data_update` can move its version.
#[derive(Clone)]
pub enum Source {
    Synthetic(Arc<SyntheticMarketData>),
    Parquet(Arc<ParquetDirMarketData>),
    Python(Arc<PyMarketData>),
}

impl Source {
    /// `None`: the synthetic source; a `str`/`os.PathLike`: a directory of Parquet files;
    /// a callable: a Python source.
    pub fn from_py(v: Option<&Bound<'_, PyAny>>) -> PyResult<Source> {
        let Some(v) = v.filter(|v| !v.is_none()) else {
            return Ok(Source::Synthetic(Arc::new(SyntheticMarketData::new(0))));
        };
        if v.is_callable() {
            let name = v.repr().map(|r| r.to_string()).unwrap_or_else(|_| "callable".into());
            return Ok(Source::Python(Arc::new(PyMarketData { func: v.clone().unbind(), name, versions: Mutex::new(HashMap::new()) })));
        }
        let path: std::path::PathBuf = v.extract().map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err("market_data must be None (synthetic), a directory of SYMBOL.parquet files, or a callable (symbol, start, end) -> pyarrow.Table")
        })?;
        if !path.is_dir() {
            return Err(pyo3::exceptions::PyFileNotFoundError::new_err(format!("market_data directory {} does not exist", path.display())));
        }
        Ok(Source::Parquet(Arc::new(ParquetDirMarketData::new(path))))
    }

    pub fn as_market_data(&self) -> Arc<dyn MarketData> {
        match self {
            Source::Synthetic(s) => s.clone(),
            Source::Parquet(p) => p.clone(),
            Source::Python(p) => p.clone(),
        }
    }

    /// A correction for `symbol` was published: the source's version moves (a Parquet
    /// directory's version is its file's size and time: rewriting the file moves it).
    pub fn bump(&self, symbol: &str) {
        match self {
            Source::Synthetic(s) => {
                s.publish_correction(symbol);
            }
            Source::Python(p) => {
                *p.versions.lock().unwrap_or_else(|e| e.into_inner()).entry(symbol.to_string()).or_insert(0) += 1;
            }
            Source::Parquet(_) => {}
        }
    }
}

/// A Python callable as the engine's market data.
pub struct PyMarketData {
    func: Py<PyAny>,
    name: String,
    versions: Mutex<HashMap<String, u64>>,
}

fn failed(symbol: &str, text: String) -> MarketDataError {
    MarketDataError::Read { path: format!("<python market data for {symbol}>").into(), source: text.into() }
}

/// The Python exception with its traceback, as text.
fn traceback(py: Python<'_>, e: &PyErr) -> String {
    let formatted = (|| -> PyResult<String> {
        let tb = py.import("traceback")?;
        let lines = tb.call_method1("format_exception", (e.get_type(py), e.value(py), e.traceback(py)))?;
        Ok(lines.extract::<Vec<String>>()?.concat())
    })();
    formatted.unwrap_or_else(|_| e.to_string()).trim_end().to_string()
}

impl MarketData for PyMarketData {
    fn describe(&self) -> String {
        format!("python({})", self.name)
    }

    fn version(&self, symbol: &str) -> Result<String, MarketDataError> {
        let v = self.versions.lock().unwrap_or_else(|e| e.into_inner()).get(symbol).copied().unwrap_or(0);
        Ok(format!("py{v}"))
    }

    fn bars(&self, symbol: &str, start: NaiveDateTime, end: NaiveDateTime) -> Result<RecordBatch, MarketDataError> {
        Python::attach(|py| {
            let out = self
                .func
                .call1(py, (symbol, crate::time::to_py(py, start).map_err(|e| failed(symbol, e.to_string()))?, crate::time::to_py(py, end).map_err(|e| failed(symbol, e.to_string()))?))
                .map_err(|e| failed(symbol, traceback(py, &e)))?;
            let out = out.bind(py);
            let table = Table::from_pyarrow_bound(out)
                .or_else(|_| RecordBatch::from_pyarrow_bound(out).and_then(|b| Table::try_new(vec![b.clone()], b.schema()).map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))))
                .map_err(|e| failed(symbol, format!("the callable must return a pyarrow.Table or RecordBatch: {}", traceback(py, &e))))?;
            conform(symbol, &table)
        })
    }
}

/// The bars with the engine's schema (the core's `conform`: columns by name, cast).
fn conform(symbol: &str, table: &Table) -> Result<RecordBatch, MarketDataError> {
    let whole = concat_batches(&table.schema(), table.record_batches()).map_err(|e| failed(symbol, e.to_string()))?;
    market_data::conform(&whole).map_err(|e| failed(symbol, e))
}
