//! Times from Python: a `datetime` (naive: UTC; aware: converted to UTC) or an RFC 3339
//! string, as the trace format and the CLI take them.

use chrono::{DateTime, FixedOffset, NaiveDateTime};
use pyo3::prelude::*;

use crate::errors::BadRequestError;

pub fn utc(what: &str, v: &Bound<'_, PyAny>) -> PyResult<NaiveDateTime> {
    if let Ok(s) = v.extract::<String>() {
        return cachescope::engine::clock::parse_ts(&s)
            .ok_or_else(|| BadRequestError::new_err(format!("{what} `{s}` is not an RFC 3339 time such as 2026-11-25T14:30:00Z")));
    }
    if let Ok(t) = v.extract::<DateTime<FixedOffset>>() {
        return Ok(t.naive_utc());
    }
    if let Ok(t) = v.extract::<NaiveDateTime>() {
        return Ok(t);
    }
    Err(BadRequestError::new_err(format!(
        "{what} must be a datetime or an RFC 3339 string, not {}",
        v.get_type().name().map(|n| n.to_string()).unwrap_or_default()
    )))
}

/// A UTC time as a naive `datetime` (the engine's and DuckDB's convention).
pub fn to_py<'py>(py: Python<'py>, t: NaiveDateTime) -> PyResult<Bound<'py, PyAny>> {
    t.into_pyobject(py).map(|o| o.into_any())
}
