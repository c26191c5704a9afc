"""The trading system's own Python logging, as written by the standard library's handlers,
ingested whole: records of several lines (tracebacks from `logger.exception`, messages with
newlines) continue their record instead of being quarantined, and a traceback's
`MemoryError` names an unnamed ERROR record a compute failure."""

import logging

from conftest import run


def _logger(path, datefmt=None):
    handler = logging.FileHandler(path, mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s", datefmt=datefmt))
    log = logging.getLogger(f"src.shared.feature_store.{path.name}")
    log.propagate = False
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    return log, handler


def _compute(n):
    raise MemoryError(f"cannot allocate {n} bytes")


def _write_day(log):
    for i in range(40):
        log.info("Cache HIT for AAPL" if i % 4 else "Cache MISS for MSFT")
    try:
        _compute(1 << 30)
    except MemoryError:
        # The record names no failure; its traceback does.
        log.exception("feature computation failed for TSLA")
    try:
        _compute(1 << 31)
    except MemoryError:
        # The record names it already: the traceback adds no second failure.
        log.exception("MemoryError computing features for NVDA")
    log.info("config reloaded:\n  returns: 27f61cb7\n  vwap: 829ea4b7")
    log.info("Cache MISS for TSLA")


def _ingest_and_count(tmp_path, path):
    db = tmp_path / (path.name + ".duckdb")
    run("ingest", "--db", str(db), str(path))  # exit code 0: nothing quarantined

    def one(sql):
        return run("sql", "--format", "csv", "--db", str(db), sql).splitlines()[1]

    return db, one


def test_tracebacks_and_multi_line_messages_continue_their_record(tmp_path):
    for datefmt in (None, "%Y-%m-%d %H:%M:%S"):
        path = tmp_path / ("trading-system.log" if datefmt is None else "whole-seconds.log")
        log, handler = _logger(path, datefmt)
        _write_day(log)
        handler.close()
        lines = path.read_text().splitlines()
        assert any(line.startswith("Traceback") for line in lines)
        db, one = _ingest_and_count(tmp_path, path)
        assert one("SELECT count(*) FROM events") == str(len(lines)), "every line kept, once"
        assert one("SELECT count(*) FROM ingest_errors") == "0"
        assert one("SELECT count(*) FROM events WHERE event = 'compute_failed'") == "2"
        # The unnamed record's traceback line is the failure, at the record's time and level.
        row = one(
            "SELECT e.level, e.ts = r.ts FROM events e JOIN events r ON r.line_no = "
            "(SELECT max(line_no) FROM events WHERE message LIKE 'feature computation failed%') "
            "WHERE e.event = 'compute_failed' AND e.message LIKE 'MemoryError:%'"
        )
        assert row == "ERROR,true", row
        assert one("SELECT count(*) FROM events WHERE event = 'miss'") == "11"
        assert one("SELECT count(*) FROM events WHERE event = 'hit'") == "30"
        assert one("SELECT count(*) FROM events WHERE message = '  vwap: 829ea4b7' AND level = 'INFO'") == "1"


def test_a_json_logger_of_python_is_read_by_its_messages(tmp_path):
    """python-json-logger's records (`asctime`, `levelname`, `message`, `exc_info`): the
    same events as the text layout, with their times."""
    try:
        from pythonjsonlogger.json import JsonFormatter
    except ImportError:  # python-json-logger < 3.1
        from pythonjsonlogger.jsonlogger import JsonFormatter
    path = tmp_path / "trading-system.jsonl"
    handler = logging.FileHandler(path, mode="w")
    handler.setFormatter(JsonFormatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    log = logging.getLogger("src.shared.feature_store.json")
    log.propagate = False
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    _write_day(log)
    log.warning("Cache MISS for AMD")
    handler.close()
    lines = path.read_text().splitlines()
    assert all(line.startswith("{") for line in lines), "one JSON object per record"
    db, one = _ingest_and_count(tmp_path, path)
    assert one("SELECT count(*) FROM events") == str(len(lines))
    assert one("SELECT count(*) FROM events WHERE ts IS NULL") == "0", "asctime is the time"
    assert one("SELECT count(*) FROM events WHERE event = 'miss'") == "12"
    assert one("SELECT count(*) FROM events WHERE event = 'hit'") == "30"
    assert one("SELECT count(*) FROM events WHERE event = 'miss' AND level = 'WARN' AND symbol = 'AMD'") == "1"
    # One failure named by its message, one by its traceback's last line.
    assert one("SELECT count(*) FROM events WHERE event = 'compute_failed' AND level = 'ERROR'") == "2"
    assert one("SELECT requests FROM (SELECT sum(hits + misses) AS requests FROM request_minutes)") == "42"


def test_local_times_are_read_in_the_zone_the_host_writes_them(tmp_path, monkeypatch):
    """Python's asctime is the host's local time: on a New York host, --timezone (or `local`
    with the host's TZ) gives the records their true UTC times; without it they are 4-5 hours
    off."""
    import time

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        path = tmp_path / "ny.log"
        log, handler = _logger(path)
        before = time.time()
        log.info("Cache MISS for MSFT")
        log.info("Cache HIT for MSFT")
        after = time.time()
        handler.close()
        for zone in ("America/New_York", "local", "UTC"):
            db = tmp_path / f"{zone.replace('/', '_')}.duckdb"
            run("ingest", "--timezone", zone, "--db", str(db), str(path))
            out = run("sql", "--format", "csv", "--db", str(db), "SELECT epoch(min(ts)), epoch(max(ts)) FROM events")
            first, last = map(float, out.splitlines()[1].split(","))
            if zone == "UTC":
                assert first - before > 3 * 3600 or before - first > 3 * 3600, "read as UTC, New York's times are hours off"
            else:
                assert before - 0.002 <= first <= last <= after + 0.002, (zone, before, first, last, after)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
