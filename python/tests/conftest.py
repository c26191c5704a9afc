"""Fixtures: a feature store on a temporary cache directory and log, and the `cachescope`
binary (built by `cargo test --release` / `cargo build --release`) to ingest its log."""

import os
import pathlib
import shutil
import subprocess

import pytest

# Trading day 2026-11-24 (a Tuesday): the previous session's bars.
START = "2026-11-23T14:30:00Z"
END = "2026-11-23T21:00:00Z"


def cachescope_bin() -> str:
    exe = os.environ.get("CACHESCOPE_BIN")
    if exe:
        return exe
    target = os.environ.get("CARGO_TARGET_DIR", str(pathlib.Path(__file__).resolve().parents[2] / "target"))
    exe = os.path.join(target, "release", "cachescope")
    if os.path.exists(exe):
        return exe
    found = shutil.which("cachescope")
    if not found:
        pytest.fail("the cachescope binary is needed: cargo build --release (or set CACHESCOPE_BIN)")
    return found


def run(*args: str) -> str:
    out = subprocess.run([cachescope_bin(), *args], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A cache directory and a log path of the test's own, through the environment."""
    monkeypatch.setenv("CACHESCOPE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("CACHESCOPE_CONFIG", raising=False)
    monkeypatch.delenv("FEATURE_CACHE_RETENTION_DAYS", raising=False)
    monkeypatch.chdir(tmp_path)
    log = tmp_path / "trading-system.log"
    monkeypatch.setenv("CACHESCOPE_LOG", str(log))
    return tmp_path, log


def log_events(log: pathlib.Path) -> list[dict]:
    """The engine's log lines as {event: ..., field: value} (docs/log-format.md)."""
    rows = []
    for line in log.read_text().splitlines():
        fields = {}
        for part in line.split(" "):
            if "=" in part:
                k, v = part.split("=", 1)
                fields[k] = v
        rows.append(fields)
    return rows
