"""Type stubs of the cachescope feature store (the extension module cachescope._cachescope)."""

import datetime
import os
from typing import Callable, Iterable, Literal, Optional, TypedDict, Union

import pyarrow

__version__: str

Time = Union[datetime.datetime, str]
"""A `datetime` (naive: UTC; aware: converted to UTC) or an RFC 3339 string."""

MarketDataSource = Union[
    None,
    str,
    os.PathLike,
    Callable[[str, datetime.datetime, datetime.datetime], pyarrow.Table],
]
"""`None`: synthetic bars; a directory of `SYMBOL.parquet` files; or a callable
`(symbol, start, end) -> pyarrow.Table` with columns ts, open, high, low, close, volume."""

class WarmReport(TypedDict):
    requested: int
    already_cached: int
    stored: int
    failed: int

class CleanupReport(TypedDict):
    dry_run: bool
    retention_days: float
    removed_files: int
    freed_bytes: int
    removed_temp_files: int
    remaining_files: int
    remaining_bytes: int

class StoreStats(TypedDict):
    cached_files: int
    cached_bytes: int
    max_bytes: int
    remembered_keys: int
    symbols: int
    manifest_available: bool
    by_state: dict[str, int]

class FeatureSetInfo(TypedDict):
    description: str
    params: dict[str, float]
    config_hash: str

class FeatureStore:
    """A feature store: the same engine, configuration, cache files, manifest and log lines
    as `cachescope replay` and `cachescope cache warm`. Safe to share between threads (calls
    are served one at a time, with the GIL released while the engine works)."""

    def __init__(
        self,
        config: Optional[Union[str, os.PathLike]] = None,
        log: Optional[Union[str, os.PathLike]] = None,
        market_data: MarketDataSource = None,
        metrics_addr: Optional[str] = None,
    ) -> None:
        """`config`: a cachescope.toml (default `$CACHESCOPE_CONFIG`, else ./cachescope.toml,
        else defaults; environment variables such as FEATURE_CACHE_RETENTION_DAYS apply).
        `log`: the engine log to append to (default `$CACHESCOPE_LOG`, else standard error).
        `metrics_addr`: serve Prometheus metrics at http://ADDR/metrics."""
    def get_or_compute(self, symbol: str, feature_set: str, start: Time, end: Time) -> pyarrow.Table:
        """The features of `symbol` for [start, end), from cache or computed (and stored).
        Warns `CacheWriteError` when the result could not be stored (served uncached).
        Raises `ComputeMemoryError` when the computation needs more than `memory_limit_mb`,
        `MarketDataError` when the source fails, `FeatureSetError` for an unknown set."""
    def warm(
        self,
        symbols: Iterable[str],
        feature_sets: Optional[Iterable[str]] = None,
        start: Optional[Time] = None,
        end: Optional[Time] = None,
    ) -> WarmReport:
        """The runbook's emergency cache warming (default: every feature set, the previous
        New York session)."""
    def cleanup(self, dry_run: bool = False) -> CleanupReport:
        """Retention clean-up: cache files older than `retention_days` go."""
    def stats(self) -> StoreStats: ...
    def market_data_update(self, symbol: str) -> int:
        """A correction of `symbol`'s data was published: its cached keys are invalidated;
        returns how many."""
    def feature_sets(self) -> dict[str, FeatureSetInfo]: ...
    def metrics_text(self) -> str:
        """The Prometheus metrics (OpenMetrics text)."""
    def config(self) -> dict[str, object]:
        """The effective configuration."""
    def flush(self) -> None:
        """Writes pending manifest changes (also done by close and at exit)."""
    def close(self) -> None:
        """Closes the store; later calls raise `ClosedError`. Idempotent."""
    def _set_disk_full(self, on: bool) -> None:
        """Test hook: cache writes fail as on a full disk while on."""
    def __enter__(self) -> "FeatureStore": ...
    def __exit__(self, *args: object) -> Literal[False]: ...

class CachescopeError(Exception): ...
class ConfigError(CachescopeError): ...
class FeatureSetError(CachescopeError): ...
class MarketDataError(CachescopeError): ...
class ComputeError(CachescopeError): ...
class ComputeMemoryError(ComputeError): ...
class BadRequestError(CachescopeError): ...
class CacheIOError(CachescopeError): ...
class ManifestError(CachescopeError): ...
class ClosedError(CachescopeError): ...
class CacheWriteError(UserWarning):
    """A warning: a result could not be written to the cache and was served uncached."""
