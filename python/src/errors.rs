//! The engine's errors as Python exceptions, in the engine's own words. One base class,
//! `CachescopeError`; each kind also derives from the built-in Python would use for it, so
//! `except MemoryError` and `except ValueError` work as a Python developer expects.

use cachescope::engine::EngineError;
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyUserWarning};
use pyo3::prelude::*;

create_exception!(cachescope, CachescopeError, PyException, "Base class of the feature store's errors.");
create_exception!(cachescope, ConfigError, CachescopeError, "The configuration (cachescope.toml or its environment variables) is invalid.");
create_exception!(cachescope, FeatureSetError, CachescopeError, "Unknown feature set or parameter.");
create_exception!(cachescope, MarketDataError, CachescopeError, "The market data source failed (a Python source's traceback is in the message).");
create_exception!(cachescope, ComputeError, CachescopeError, "A feature computation failed.");
create_exception!(cachescope, ComputeMemoryError, ComputeError, "A feature computation needed more memory than `memory_limit_mb` allows.");
create_exception!(cachescope, BadRequestError, CachescopeError, "The request is invalid (an empty or reversed range, a bad time).");
create_exception!(cachescope, CacheIOError, CachescopeError, "Reading or writing the cache directory failed.");
create_exception!(cachescope, ManifestError, CachescopeError, "The manifest could not be opened or written.");
create_exception!(cachescope, ClosedError, CachescopeError, "The feature store was closed.");
create_exception!(
    cachescope,
    CacheWriteError,
    PyUserWarning,
    "A warning: a result could not be written to the cache (disk full, I/O error) and was served uncached."
);

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    for (name, class) in [
        ("CachescopeError", py.get_type::<CachescopeError>()),
        ("ConfigError", py.get_type::<ConfigError>()),
        ("FeatureSetError", py.get_type::<FeatureSetError>()),
        ("MarketDataError", py.get_type::<MarketDataError>()),
        ("ComputeError", py.get_type::<ComputeError>()),
        ("ComputeMemoryError", py.get_type::<ComputeMemoryError>()),
        ("BadRequestError", py.get_type::<BadRequestError>()),
        ("CacheIOError", py.get_type::<CacheIOError>()),
        ("ManifestError", py.get_type::<ManifestError>()),
        ("ClosedError", py.get_type::<ClosedError>()),
        ("CacheWriteError", py.get_type::<CacheWriteError>()),
    ] {
        m.add(name, class)?;
    }
    Ok(())
}

/// The Python exception for an engine error, with the engine's message and its causes.
pub fn to_py(e: EngineError) -> PyErr {
    use cachescope::engine::features::ComputeError as Compute;
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        source = s.source();
    }
    match e {
        EngineError::Config(_) => ConfigError::new_err(msg),
        EngineError::FeatureConfig(_) => FeatureSetError::new_err(msg),
        EngineError::MarketData { .. } => MarketDataError::new_err(msg),
        EngineError::Compute { source: Compute::OutOfMemory { .. }, .. } => ComputeMemoryError::new_err(msg),
        EngineError::Compute { .. } => ComputeError::new_err(msg),
        EngineError::BadRequest(_) => BadRequestError::new_err(msg),
        EngineError::Io { .. } => CacheIOError::new_err(msg),
        EngineError::Manifest(_) => ManifestError::new_err(msg),
    }
}
