"""The cachescope feature store from Python.

    from cachescope import FeatureStore

    fs = FeatureStore()                       # cachescope.toml / $CACHESCOPE_CONFIG, env vars
    table = fs.get_or_compute("AAPL", "returns", "2026-11-25T14:30:00Z", "2026-11-25T21:00:00Z")
    fs.warm(["AAPL", "GOOGL", "MSFT", "TSLA"])  # the runbook's emergency cache warming

The engine is the Rust one `cachescope replay` runs: the same configuration, cache files,
manifest and log lines (docs/log-format.md), so `cachescope tail`, `report` and `incident`
work on a Python process's log unchanged.
"""

from ._cachescope import (
    BadRequestError,
    CacheIOError,
    CachescopeError,
    CacheWriteError,
    ClosedError,
    ComputeError,
    ComputeMemoryError,
    ConfigError,
    FeatureSetError,
    FeatureStore,
    ManifestError,
    MarketDataError,
    __version__,
)

__all__ = [
    "BadRequestError",
    "CacheIOError",
    "CachescopeError",
    "CacheWriteError",
    "ClosedError",
    "ComputeError",
    "ComputeMemoryError",
    "ConfigError",
    "FeatureSetError",
    "FeatureStore",
    "ManifestError",
    "MarketDataError",
    "__version__",
]
