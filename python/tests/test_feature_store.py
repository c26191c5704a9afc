"""The engine from Python: the runbook's snippet, hits and misses logged as the Rust engine
logs them (and classified by cachescope at 100% agreement), threads, market data sources and
every fault seen from Python."""

import datetime
import subprocess
import sys
import threading
import time
import urllib.request
import warnings

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import cachescope
from cachescope import FeatureStore

from conftest import END, START, log_events, run


def test_the_runbooks_warming_snippet_with_only_the_import_changed(env):
    # --- the runbook's "Emergency Cache Warming", import changed ---
    from cachescope import FeatureStore

    fs = FeatureStore()

    # Warm cache for critical symbols
    critical_symbols = ["AAPL", "GOOGL", "MSFT", "TSLA"]
    for symbol in critical_symbols:
        # Trigger cache warming (implementation specific)
        pass
    # --- end of the snippet; the implementation-specific step: ---
    report = fs.warm(critical_symbols, start=START, end=END)
    sets = fs.feature_sets()
    assert report == {"requested": 4 * len(sets), "already_cached": 0, "stored": 4 * len(sets), "failed": 0}
    assert fs.warm(critical_symbols, start=START, end=END)["already_cached"] == 4 * len(sets)
    # Warmed keys are hits.
    fs.get_or_compute("AAPL", "returns", START, END)
    fs.close()
    _, log = env
    events = [e.get("event") for e in log_events(log)]
    assert events.count("warm_fill") == 4 * len(sets) and events[-2:] == ["hit", "shutdown"]


def test_get_or_compute_returns_arrow_tables_hit_after_miss(env):
    with FeatureStore() as fs:
        t = fs.get_or_compute("AAPL", "returns", START, END)
        assert isinstance(t, pa.Table) and t.num_rows > 0 and "ts" in t.column_names
        again = fs.get_or_compute("AAPL", "returns", datetime.datetime(2026, 11, 23, 14, 30), datetime.datetime(2026, 11, 23, 21, 0, tzinfo=datetime.timezone.utc))
        assert again.equals(t), "naive datetimes are UTC; aware ones are converted"
        s = fs.stats()
        assert s["cached_files"] == 1 and s["manifest_available"]
    _, log = env
    lines = [e for e in log_events(log) if e.get("event") in ("hit", "miss")]
    assert [e["event"] for e in lines] == ["miss", "hit"]
    assert lines[0]["reason"] == "new_symbol" and lines[0]["outcome"] == "stored"


def test_a_python_processs_log_is_ingested_and_classified_as_the_engine_says(env):
    tmp, log = env
    symbols = ["AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "META"]
    with FeatureStore() as fs:
        for rnd in range(3):
            for s in symbols:
                for fset in ("returns", "volatility", "vwap"):
                    fs.get_or_compute(s, fset, START, END)
            fs.market_data_update(symbols[rnd])
        # A file deleted behind the engine's back, then asked for.
        path = next((tmp / "cache").rglob("*.parquet*"))
        path.unlink()
        for s in symbols:
            fs.get_or_compute(s, "returns", START, END)
    db = tmp / "ev.duckdb"
    run("ingest", "--db", str(db), str(log))
    out = run("sql", "--format", "csv", "--db", str(db), "SELECT count(*) AS n, count(*) FILTER (WHERE cause = logged_reason) AS agree, count(DISTINCT logged_reason) AS reasons FROM miss_causes")
    n, agree, reasons = map(int, out.splitlines()[1].split(","))
    assert n > 0 and agree == n, out
    assert reasons >= 3, "new symbols, invalidated data and a missing file: " + out
    totals = run("sql", "--format", "csv", "--db", str(db), "SELECT sum(hits), sum(misses) FROM request_minutes")
    hits, misses = map(int, totals.splitlines()[1].split(","))
    assert hits + misses == 3 * 6 * 3 + 6


def test_threads_share_one_store_and_the_gil_is_released(env):
    fs = FeatureStore()
    symbols = [f"S{i:03d}" for i in range(40)]
    errors = []

    def work(part):
        try:
            for s in part:
                for _ in range(3):
                    assert fs.get_or_compute(s, "returns", START, END).num_rows > 0
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work, args=(symbols[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert fs.stats()["cached_files"] == 40
    # While a long warm-up runs on another thread, this one keeps running Python.
    many = [f"W{i:03d}" for i in range(150)]
    worker = threading.Thread(target=fs.warm, args=(many,), kwargs={"start": START, "end": END})
    spins = 0
    worker.start()
    while worker.is_alive():
        spins += 1
    assert spins > 10_000, f"the main thread ran only {spins} times while warm() ran"
    fs.close()
    _, log = env
    reqs = [e for e in log_events(log) if e.get("event") in ("hit", "miss")]
    assert len(reqs) == 120 and sum(e["event"] == "miss" for e in reqs) == 40


SLOW_SOURCE = """
import datetime, sys, threading, time
import pyarrow as pa
from cachescope import FeatureStore
started = threading.Event()

def slow(symbol, start, end):
    started.set()
    time.sleep(0.3)
    n = int((end - start).total_seconds() // 60)
    ts = pa.array([start + datetime.timedelta(minutes=i) for i in range(n)], pa.timestamp("us"))
    price = pa.array([100.0] * n)
    return pa.table({"ts": ts, "open": price, "high": price, "low": price, "close": price, "volume": price})

with FeatureStore(market_data=slow) as fs:
    worker = threading.Thread(target=fs.get_or_compute, args=("SLOW", "returns", sys.argv[1], sys.argv[2]))
    worker.start()
    assert started.wait(5)
    assert "FeatureStore(cache_dir=" in repr(fs)
    assert fs.stats()["cached_files"] == 1, "served after the computation"
    worker.join(5)
    assert not worker.is_alive()
print("ok")
"""


def test_a_slow_python_source_does_not_block_other_threads_calls(env):
    # While one thread's computation waits in a Python source, other threads may call the
    # store (repr, stats): they wait for the engine, never deadlock on the GIL. In a process
    # of its own: a deadlock there is a failed test, not a hung suite.
    out = subprocess.run([sys.executable, "-c", SLOW_SOURCE, START, END], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_market_data_from_a_callable_a_parquet_directory_and_a_failing_callable(env):
    tmp, _ = env
    calls = []

    def bars(symbol, start, end):
        calls.append((symbol, start, end))
        n = int((end - start).total_seconds() // 60)
        ts = pa.array([start + datetime.timedelta(minutes=i) for i in range(n)], pa.timestamp("ns", tz="UTC"))
        price = pa.array([100.0 + i * 0.01 for i in range(n)])
        return pa.table({"ts": ts, "open": price, "high": price, "low": price, "close": price, "volume": pa.array([1000] * n)})

    with FeatureStore(market_data=bars) as fs:
        t = fs.get_or_compute("ACME", "returns", START, END)
        assert t.num_rows > 0 and calls[0][0] == "ACME" and calls[0][1] == datetime.datetime(2026, 11, 23, 14, 30)
        fs.get_or_compute("ACME", "returns", START, END)
        assert len(calls) == 1, "the second is a hit"
        assert fs.market_data_update("ACME") == 1
        fs.get_or_compute("ACME", "returns", START, END)
        assert len(calls) == 2, "a correction invalidates the cached key"
    # A directory of SYMBOL.parquet files.
    d = tmp / "bars"
    d.mkdir()
    pq.write_table(bars("XYZ", datetime.datetime(2026, 11, 23, 14, 30), datetime.datetime(2026, 11, 23, 21, 0)), d / "XYZ.parquet")
    with FeatureStore(market_data=str(d)) as fs:
        assert fs.get_or_compute("XYZ", "vwap", START, END).num_rows > 0
        with pytest.raises(cachescope.MarketDataError, match="no market data for symbol `NOPE`"):
            fs.get_or_compute("NOPE", "vwap", START, END)

    def broken(symbol, start, end):
        return 1 / 0

    with FeatureStore(market_data=broken) as fs:
        with pytest.raises(cachescope.MarketDataError) as e:
            fs.get_or_compute("ACME", "returns", START, END)
        assert "ZeroDivisionError" in str(e.value) and "in broken" in str(e.value), str(e.value)
        # The store goes on.
        with pytest.raises(cachescope.MarketDataError):
            fs.get_or_compute("ACME", "vwap", START, END)
        assert fs.stats()["manifest_available"]


def test_every_fault_seen_from_python(env):
    tmp, log = env
    # Disk full: the result is served, with a CacheWriteError warning, not an exception.
    fs = FeatureStore()
    fs._set_disk_full(True)
    with pytest.warns(cachescope.CacheWriteError, match="could not be written"):
        t = fs.get_or_compute("AAPL", "returns", START, END)
    assert t.num_rows > 0
    fs._set_disk_full(False)
    # A deleted file: recomputed, logged as missing_file.
    fs.get_or_compute("MSFT", "returns", START, END)
    for p in (tmp / "cache").rglob("*.parquet*"):
        p.unlink()
    assert fs.get_or_compute("MSFT", "returns", START, END).num_rows > 0
    fs.close()
    # The memory limit: ComputeMemoryError, in the engine's words.
    (tmp / "small.toml").write_text("[feature_store]\nmemory_limit_mb = 0.01\n")
    with FeatureStore(config=str(tmp / "small.toml")) as fs:
        with pytest.raises(cachescope.ComputeMemoryError, match="out of memory"):
            fs.get_or_compute("AAPL", "multi_horizon", START, END)
        assert isinstance(cachescope.ComputeMemoryError("x"), cachescope.ComputeError)
    # A manifest locked by another process (DuckDB from Python): served uncached, logged.
    # The engine probes the lock every manifest_probe_interval_s.
    (tmp / "probe.toml").write_text("[feature_store]\nmanifest_probe_interval_s = 0.05\n")
    fs = FeatureStore(config=str(tmp / "probe.toml"))
    manifest = fs.config()["manifest_path"]
    # Another process: a lock is another process's (POSIX record locks are per process).
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('held', flush=True); sys.stdin.read()", manifest],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    time.sleep(0.2)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            t = fs.get_or_compute("GOOGL", "returns", START, END)
        assert t.num_rows > 0 and not fs.stats()["manifest_available"]
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
    time.sleep(0.2)
    fs.get_or_compute("GOOGL", "vwap", START, END)
    assert fs.stats()["manifest_available"]
    fs.close()
    events = log_events(log)
    assert any(e.get("outcome") == "compute_failed" for e in events)
    assert any(e.get("event") == "write_failed" for e in events)
    assert any(e.get("reason") == "missing_file" for e in events)
    assert any(e.get("reason") == "manifest_unavailable" for e in events)


def test_configuration_errors_and_closing(env, monkeypatch):
    monkeypatch.setenv("FEATURE_CACHE_RETENTION_DAYS", "14")
    fs = FeatureStore()
    assert fs.config()["retention_days"] == 14
    with pytest.raises(cachescope.FeatureSetError, match="unknown feature set `nope`"):
        fs.get_or_compute("AAPL", "nope", START, END)
    with pytest.raises(cachescope.BadRequestError, match="not an RFC 3339 time"):
        fs.get_or_compute("AAPL", "returns", "yesterday", END)
    with pytest.raises(cachescope.BadRequestError):
        fs.get_or_compute("AAPL", "returns", END, START)
    fs.close()
    fs.close()
    with pytest.raises(cachescope.ClosedError):
        fs.stats()
    monkeypatch.setenv("FEATURE_CACHE_RETENTION_DAYS", "-1")
    with pytest.raises(cachescope.ConfigError, match="FEATURE_CACHE_RETENTION_DAYS"):
        FeatureStore()


def test_retention_cleanup_from_python(env, monkeypatch):
    # 0.00001 days: 0.864 s.
    monkeypatch.setenv("FEATURE_CACHE_RETENTION_DAYS", "0.00001")
    with FeatureStore() as fs:
        fs.get_or_compute("AAPL", "returns", START, END)
        fs.get_or_compute("MSFT", "returns", START, END)
        time.sleep(1.0)
        dry = fs.cleanup(dry_run=True)
        assert dry["dry_run"] and dry["removed_files"] == 2 and fs.stats()["cached_files"] == 2
        done = fs.cleanup()
        assert done["removed_files"] == 2 and done["remaining_files"] == 0 and fs.stats()["cached_files"] == 0
    _, log = env
    assert [e.get("reason") for e in log_events(log) if e.get("event") == "eviction"] == ["retention", "retention"]


def test_metrics_are_served_for_prometheus(env):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with FeatureStore(metrics_addr=f"127.0.0.1:{port}") as fs:
        fs.get_or_compute("AAPL", "returns", START, END)
        fs.get_or_compute("AAPL", "returns", START, END)
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert 'featurestore_requests_total{result="hit"} 1' in body, body
        assert "featurestore_requests_total" in fs.metrics_text()
