"""Hit latency from Python: `get_or_compute` on a warm cache, the same cache and order as the
Rust hit-path bench (benches/hit_path.rs): 200 keys (50 symbols x 4 feature sets, one trading
day of 390 rows each, ZSTD level 3), 1,000 warm-up hits, then 20,000 timed hits in the same
pseudo-random order, the engine log written to a real file and flushed after every line.

    python python/benches/hit_path.py          # after: pip install ./python
"""

import os
import statistics
import sys
import tempfile
import time

from cachescope import FeatureStore

N = int(os.environ.get("HIT_BENCH_N", "20000"))
START, END = "2026-11-25T14:30:00Z", "2026-11-25T21:00:00Z"


def pct(sorted_values, p):
    return sorted_values[round((len(sorted_values) - 1) * p)]


def main():
    with tempfile.TemporaryDirectory() as d:
        os.environ["CACHESCOPE_CACHE_DIR"] = os.path.join(d, "cache")
        fs = FeatureStore(log=os.path.join(d, "engine.log"))
        reqs = [(f"SYM{i:03}", s) for i in range(50) for s in ("returns", "volatility", "vwap", "momentum")]
        for sym, s in reqs:
            fs.get_or_compute(sym, s, START, END)
        order = [((i * 2_654_435_761) >> 3) % len(reqs) for i in range(N)]
        for i in order[:1000]:
            fs.get_or_compute(*reqs[i], START, END)
        lat = []
        clock = time.perf_counter_ns
        t = clock()
        for i in order:
            t0 = clock()
            fs.get_or_compute(*reqs[i], START, END)
            lat.append((clock() - t0) / 1000.0)
        total = (clock() - t) / 1e9
        stats = fs.stats()
        fs.close()
        assert stats["cached_files"] == 200
    lat.sort()
    print(f"Python {sys.version.split()[0]}, {N} hits over {len(reqs)} warm keys (390-row files), log flushed per line")
    print("| measurement | per second | p50 (us) | p99 (us) | mean (us) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print(f"| get_or_compute hit from Python (pyarrow.Table) | {N / total:.0f} | {pct(lat, 0.5):.1f} | {pct(lat, 0.99):.1f} | {statistics.fmean(lat):.1f} |")


if __name__ == "__main__":
    main()
