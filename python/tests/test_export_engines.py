"""`cachescope export` read by existing engines: three hosts' simulated days, each ingested
into its own database and exported under its host name, then read back by ClickHouse's engine
(chdb, in-process) and by DuckDB with Hive partitioning: the per-host totals and causes are
each database's own."""

import pytest

from conftest import run

HOSTS = {"web-1": ("thrashing", "1"), "web-2": ("steady", "2"), "web-3": ("retention", "3")}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    root = tmp_path_factory.mktemp("fleet")
    out = root / "export"
    dbs = {}
    for host, (scenario, seed) in HOSTS.items():
        d = root / host
        run("simulate", "--scenario", scenario, "--seed", seed, "--out", str(d))
        db = d / "ev.duckdb"
        run("ingest", "--db", str(db), str(d / "trading-system.log"))
        run("export", "--db", str(db), "--out", str(out), "--host", host)
        dbs[host] = db
    return out, dbs


def db_totals(db):
    lines = run("sql", "--format", "csv", "--db", str(db), "SELECT sum(hits) AS h, sum(misses) AS m FROM request_minutes").splitlines()
    return tuple(int(x) for x in lines[1].split(","))


def db_causes(db):
    lines = run("sql", "--format", "csv", "--db", str(db), "SELECT cause, count(*) AS n FROM miss_causes GROUP BY ALL ORDER BY 1").splitlines()[1:]
    return {c: int(n) for c, n in (line.rsplit(",", 1) for line in lines)}


def test_clickhouse_reads_each_hosts_totals_and_causes(fleet):
    chdb = pytest.importorskip("chdb")
    out, dbs = fleet
    q = lambda sql: [line.split(",") for line in str(chdb.query(sql, "CSV")).strip().splitlines()]  # noqa: E731
    totals = q(f"SELECT host, sum(hits), sum(misses) FROM file('{out}/request_minutes/*/*/*.parquet', Parquet) GROUP BY host ORDER BY host SETTINGS use_hive_partitioning = 1")
    assert {h.strip('"'): (int(a), int(b)) for h, a, b in totals} == {h: db_totals(db) for h, db in dbs.items()}
    causes = q(f"SELECT host, cause, count() FROM file('{out}/misses/*/*/*.parquet', Parquet) GROUP BY host, cause ORDER BY host, cause SETTINGS use_hive_partitioning = 1")
    got = {}
    for h, c, n in causes:
        got.setdefault(h.strip('"'), {})[c.strip('"')] = int(n)
    assert got == {h: db_causes(db) for h, db in dbs.items()}
    # The fleet-wide hit ratio from summed counts.
    (ratio,) = q(f"SELECT sum(hits) / sum(hits + misses) FROM file('{out}/request_minutes/*/*/*.parquet', Parquet)")[0]
    hits = sum(db_totals(db)[0] for db in dbs.values())
    requests = sum(sum(db_totals(db)) for db in dbs.values())
    assert abs(float(ratio) - hits / requests) < 1e-12


def test_duckdb_reads_the_same_with_hive_partitioning(fleet):
    duckdb = pytest.importorskip("duckdb")
    out, dbs = fleet
    rows = duckdb.sql(f"SELECT host, sum(hits)::BIGINT, sum(misses)::BIGINT FROM read_parquet('{out}/request_minutes/*/*/*.parquet', hive_partitioning = true) GROUP BY host ORDER BY host").fetchall()
    assert {h: (a, b) for h, a, b in rows} == {h: db_totals(db) for h, db in dbs.items()}


def db_episodes(db):
    lines = run("sql", "--format", "csv", "--db", str(db), "SELECT kind, sum(misses)::BIGINT AS n FROM episodes GROUP BY ALL ORDER BY 1").splitlines()[1:]
    return {k: int(n) for k, n in (line.rsplit(",", 1) for line in lines)}


def test_clickhouse_and_duckdb_read_the_episodes_with_their_symbol_lists(fleet):
    chdb = pytest.importorskip("chdb")
    duckdb = pytest.importorskip("duckdb")
    out, dbs = fleet
    want = {h: db_episodes(db) for h, db in dbs.items()}
    got = {}
    rows = str(chdb.query(f"SELECT host, kind, sum(misses), sum(length(symbols)) FROM file('{out}/episodes/*/*/*.parquet', Parquet) GROUP BY host, kind ORDER BY host, kind SETTINGS use_hive_partitioning = 1", "CSV")).strip().splitlines()
    for line in rows:
        h, k, n, symbols = (x.strip('"') for x in line.split(","))
        got.setdefault(h, {})[k] = int(n)
        assert int(symbols) > 0
    assert {h: e for h, e in got.items() if e} == {h: e for h, e in want.items() if e}
    assert want["web-1"].get("thrashing", 0) > 0 and want["web-3"].get("retention", 0) > 0
    rows = duckdb.sql(f"SELECT host, kind, sum(misses)::BIGINT FROM read_parquet('{out}/episodes/*/*/*.parquet', hive_partitioning = true) GROUP BY ALL").fetchall()
    assert {(h, k): n for h, k, n in rows} == {(h, k): n for h, e in want.items() for k, n in e.items()}
