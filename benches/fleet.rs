//! `report|incident|slo --fleet` over a month of several hosts' exports: whole processes, wall
//! time and peak RSS. The exports are synthetic but shaped like a busy host's (the trading
//! session's minutes over five feature sets, ~4% misses with log lines of the engine's length,
//! two episodes a day), written with the export's own schemas and writer.
//!
//! ```sh
//! cargo build --release && cargo bench --bench fleet                  # 10 hosts x 30 days
//! FLEET_BENCH_HOSTS=3 FLEET_BENCH_DAYS=7 FLEET_BENCH_DIR=/tmp/fleet-bench cargo bench --bench fleet
//! ```

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, ListBuilder, RecordBatch, StringArray, StringBuilder, TimestampMicrosecondArray};
use cachescope::export::{partition_file, tables, write};
use chrono::{Duration, NaiveDate, NaiveDateTime};
use common::run;

const FEATURE_SETS: [&str; 5] = ["returns", "momentum", "volatility", "multi_horizon", "microstructure"];
const CAUSES: [&str; 4] = ["evicted_capacity", "new_key", "invalidated_data", "evicted_retention"];
/// Requests per minute and feature set (~80 requests/s a host, `simulate --scale 20`).
const REQUESTS: i64 = 960;
/// Misses among them.
const MISSES: i64 = 40;

fn us(t: NaiveDateTime) -> i64 {
    t.and_utc().timestamp_micros()
}

/// One host's day: the session 14:30-21:00 UTC.
fn day(out: &Path, host: &str, d: NaiveDate, h: usize) -> u64 {
    let open = d.and_hms_opt(14, 30, 0).unwrap();
    let minutes: Vec<NaiveDateTime> = (0..390).map(|m| open + Duration::minutes(m)).collect();
    // Per-minute figures.
    let rows = minutes.len() * FEATURE_SETS.len();
    let mut mt = Vec::with_capacity(rows);
    let mut fs = Vec::with_capacity(rows);
    for m in &minutes {
        for f in FEATURE_SETS {
            mt.push(us(*m));
            fs.push(f);
        }
    }
    let c = |v: i64| Arc::new(Int64Array::from_iter_values(std::iter::repeat_n(v, rows))) as ArrayRef;
    let t = |v: &[i64], plus: i64| Arc::new(TimestampMicrosecondArray::from_iter_values(v.iter().map(|x| x + plus))) as ArrayRef;
    let minutes_batch = RecordBatch::try_new(
        tables::minutes_schema(),
        vec![t(&mt, 0), Arc::new(StringArray::from(fs)), c(REQUESTS - MISSES), c(MISSES), c(5_000_000), c(300_000), c(400_000), t(&mt, 100), t(&mt, 59_999_000)],
    )
    .unwrap();
    // Misses with their lines.
    let n = rows * MISSES as usize;
    let (mut ts, mut sym, mut set, mut key, mut cause, mut raw) = (vec![], vec![], vec![], vec![], vec![], vec![]);
    for i in 0..n {
        let at = mt[i / MISSES as usize] + (i as i64 % MISSES) * 1_000_000;
        let s = format!("SYM{}", (i * 7919 + h) % 500);
        let k = format!("{:016x}", (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ h as u64);
        let f = FEATURE_SETS[i % FEATURE_SETS.len()];
        let c = CAUSES[(i / 3) % CAUSES.len()];
        raw.push(format!(
            "{} INFO cachescope::engine: Cache MISS for {s} event=miss op=get_or_compute symbol={s} feature_set={f} key={k} slot={k} config=27f61cb7c5898ee5 data_version=v0 start=2026-11-23T14:30:00.000000Z end=2026-11-23T21:00:00.000000Z bytes={} latency_us={} reason={c} outcome=stored",
            cachescope::engine::clock::fmt_ts(chrono::DateTime::from_timestamp_micros(at).unwrap().naive_utc()),
            4000 + i % 5000,
            300 + i % 2000
        ));
        ts.push(at);
        sym.push(s);
        set.push(f);
        key.push(k);
        cause.push(c);
    }
    let st = |v: Vec<String>| Arc::new(StringArray::from(v)) as ArrayRef;
    let same = |v: &str| Arc::new(StringArray::from_iter_values(std::iter::repeat_n(v, n))) as ArrayRef;
    let misses_batch = RecordBatch::try_new(
        tables::misses_schema(),
        vec![
            Arc::new(TimestampMicrosecondArray::from(ts)),
            st(sym),
            Arc::new(StringArray::from(set)),
            st(key.clone()),
            st(key),
            Arc::new(StringArray::from(cause.clone())),
            same("engine_reason"),
            Arc::new(StringArray::from(cause)),
            same("stored"),
            same("27f61cb7c5898ee5"),
            same("v0"),
            same("/var/log/trading-system.log"),
            Arc::new(Int64Array::from_iter_values(0..n as i64)),
            st(raw),
        ],
    )
    .unwrap();
    // Two episodes.
    let mut symbols = ListBuilder::new(StringBuilder::new());
    let mut causes = ListBuilder::new(StringBuilder::new());
    for k in 0..2 {
        for s in 0..50 {
            symbols.values().append_value(format!("SYM{s}"));
        }
        symbols.append(true);
        causes.values().append_value(CAUSES[k]);
        causes.append(true);
    }
    let s2 = |a: &str, b: &str| Arc::new(StringArray::from(vec![a, b])) as ArrayRef;
    let i2 = |a: i64| Arc::new(Int64Array::from(vec![a, a])) as ArrayRef;
    let episodes_batch = RecordBatch::try_new(
        tables::episodes_schema(),
        vec![
            s2("thrashing", "invalidation_storm"),
            Arc::new(TimestampMicrosecondArray::from(vec![mt[500], mt[1200]])),
            Arc::new(TimestampMicrosecondArray::from(vec![mt[600], mt[1300]])),
            i2(2000),
            i2(1500),
            i2(50),
            Arc::new(symbols.finish()),
            Arc::new(causes.finish()),
            s2("actionable", "expected_churn"),
            s2("capacity_cleanup line", "invalidation line"),
            s2("/var/log/trading-system.log", "/var/log/trading-system.log"),
            i2(10),
            s2("miss line", "miss line"),
            s2("/var/log/trading-system.log", "/var/log/trading-system.log"),
            i2(11),
        ],
    )
    .unwrap();
    let date = d.format("%Y-%m-%d").to_string();
    [(tables::MINUTES, minutes_batch), (tables::MISSES, misses_batch), (tables::EPISODES, episodes_batch)]
        .iter()
        .map(|(table, b)| write::replace(&partition_file(out, table, host, &date), b).unwrap())
        .sum()
}

fn main() {
    let hosts: usize = std::env::var("FLEET_BENCH_HOSTS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let days: i64 = std::env::var("FLEET_BENCH_DAYS").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| format!("{}/target", env!("CARGO_MANIFEST_DIR")));
    let cachescope = PathBuf::from(&target).join("release/cachescope");
    assert!(cachescope.exists(), "build the binary first: cargo build --release ({})", cachescope.display());
    let dir = tempfile::tempdir().unwrap();
    // FLEET_BENCH_DIR: write the export there and keep it (to time other commands on it).
    let out = std::env::var("FLEET_BENCH_DIR").map(PathBuf::from).unwrap_or_else(|_| dir.path().join("export"));
    let first = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    let mut bytes = 0;
    for h in 0..hosts {
        for d in 0..days {
            bytes += day(&out, &format!("web-{h}"), first + Duration::days(d), h);
        }
    }
    let last = first + Duration::days(days - 1);
    let requests = hosts as i64 * days * 390 * FEATURE_SETS.len() as i64 * REQUESTS;
    let misses = hosts as i64 * days * 390 * FEATURE_SETS.len() as i64 * MISSES;
    println!("{hosts} hosts x {days} days: {requests} requests, {misses} misses; {:.0} MB of Parquet", bytes as f64 / 1e6);
    let fleet = out.to_str().unwrap();
    let day_from = format!("{last}T00:00:00Z");
    let day_until = format!("{}T00:00:00Z", last + Duration::days(1));
    let hour_from = format!("{last}T15:00:00Z");
    let hour_to = format!("{last}T16:00:00Z");
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("slo --fleet", vec!["slo", "--fleet", fleet]),
        ("report --fleet, last day (the cron report)", vec!["report", "--format", "json", "--fleet", fleet, "--from", &day_from, "--until", &day_until]),
        ("report --fleet, whole month", vec!["report", "--format", "json", "--fleet", fleet]),
        ("incident --fleet, one hour (with log lines)", vec!["incident", "--format", "json", "--fleet", fleet, "--from", &hour_from, "--to", &hour_to]),
    ];
    let mut base = None;
    println!("| command | wall (s) | peak RSS (MB) | wall / slo |");
    println!("| --- | ---: | ---: | ---: |");
    for (name, args) in cases {
        // Best of three.
        let r = (0..3).map(|_| run(Command::new(&cachescope).args(&args))).min_by(|a, b| a.secs.total_cmp(&b.secs)).unwrap();
        let b = *base.get_or_insert(r.secs);
        println!("| `{name}` | {:.2} | {:.0} | {:.1} |", r.secs, r.max_rss_mb, r.secs / b);
    }
}
