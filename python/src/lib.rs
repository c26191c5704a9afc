//! `cachescope._cachescope`: the feature store engine as a Python extension (PyO3). The
//! engine is the core crate's `FeatureStore`, unchanged: the same configuration, cache files,
//! manifest and log contract as `cachescope replay` and `cache warm`. This crate only adapts
//! types: times (`time.rs`), errors (`errors.rs`), market data from Python (`market.rs`), and
//! the `FeatureStore` class (`store.rs`).

mod errors;
mod market;
mod store;
mod time;

use pyo3::prelude::*;

#[pymodule]
fn _cachescope(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<store::FeatureStore>()?;
    errors::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
