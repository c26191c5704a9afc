//! `report|incident|slo --fleet`: three hosts' simulated logs, each ingested into its own
//! database and exported; the fleet's figures against one database that ingested all three
//! logs (the SLO, error budget and alerts: summed counts are the same requests) and against
//! each host's own database (its figures, alerts, causes and episodes: a miss is classified on
//! the host whose cache missed, which one database of every host's lines cannot do). Hostile
//! input: nothing found, a stray file, two copies of a day, garbage, a wrong schema.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use assert_cmd::Command;
use serde_json::Value;

fn cachescope() -> Command {
    let mut c = Command::cargo_bin("cachescope").unwrap();
    c.env_remove("CACHESCOPE_DB");
    c
}

const HOSTS: [(&str, &str, &str); 3] = [("web-1", "thrashing", "1"), ("web-2", "steady", "2"), ("web-3", "retention", "3")];
/// The whole minutes around the simulated day's requests.
const FROM: &str = "2026-11-24T14:30:00Z";
const UNTIL: &str = "2026-11-24T14:50:00Z";

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    export: PathBuf,
    /// One database that ingested all three logs.
    all: PathBuf,
}

impl Fixture {
    fn db(&self, host: &str) -> PathBuf {
        self.root.join(host).join("ev.duckdb")
    }
}

fn ok(c: &mut Command) -> String {
    let o = c.output().unwrap();
    assert!(o.status.success(), "{:?}: {}", c, String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let export = root.join("export");
        let all = root.join("all.duckdb");
        let mut logs = Vec::new();
        for (host, scenario, seed) in HOSTS {
            let d = root.join(host);
            ok(cachescope().args(["simulate", "--scenario", scenario, "--seed", seed, "--out"]).arg(&d));
            let log = d.join("trading-system.log");
            ok(cachescope().arg("ingest").arg("--db").arg(d.join("ev.duckdb")).arg(&log));
            ok(cachescope().args(["export", "--host", host, "--out"]).arg(&export).arg("--db").arg(d.join("ev.duckdb")));
            logs.push(log);
        }
        ok(cachescope().arg("ingest").arg("--db").arg(&all).args(&logs));
        Fixture { _dir: dir, root, export, all }
    })
}

/// `a` and `b` equal, numbers to 1e-9 relative (DuckDB's floating sums may add in another
/// order between runs).
#[track_caller]
fn assert_same(a: &Value, b: &Value, what: &str) {
    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => {
                let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
                x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs())
            }
            (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y)),
            (Value::Object(x), Value::Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w))),
            _ => a == b,
        }
    }
    assert!(same(a, b), "{what}:\n{a}\n!=\n{b}");
}

fn json(c: &mut Command) -> Value {
    serde_json::from_str(&ok(c)).unwrap()
}

fn report(source: &[&str]) -> Value {
    json(cachescope().arg("report").args(source).args(["--from", FROM, "--until", UNTIL, "--format", "json"]))
}

fn db_arg(p: &Path) -> Vec<&str> {
    vec!["--db", p.to_str().unwrap()]
}

/// Misses by cause in a report.
fn causes(r: &Value) -> std::collections::BTreeMap<String, i64> {
    r["causes"].as_array().unwrap().iter().map(|c| (c["cause"].as_str().unwrap().to_string(), c["misses"].as_i64().unwrap())).collect()
}

#[test]
fn the_fleet_report_is_the_combined_databases_slo_and_each_hosts_own_figures() {
    let f = fixture();
    let fleet = report(&["--fleet", f.export.to_str().unwrap()]);
    let all = report(&db_arg(&f.all));
    // The same requests, summed per minute: every SLO figure is the combined database's.
    for k in ["period", "requests", "hits", "misses", "hit_ratio", "slo", "error_budget", "alerts"] {
        assert_same(&fleet[k], &all[k], k);
    }
    assert!(fleet["requests"].as_i64().unwrap() > 30_000);
    let hosts = fleet["fleet"]["hosts"].as_array().unwrap();
    assert_eq!(hosts.iter().map(|h| h["host"].as_str().unwrap()).collect::<Vec<_>>(), ["web-1", "web-2", "web-3"]);
    let mut summed = std::collections::BTreeMap::new();
    let mut episodes = Vec::new();
    for (h, (host, _, _)) in hosts.iter().zip(HOSTS) {
        let own = report(&db_arg(&f.db(host)));
        for k in ["requests", "hits", "misses", "hit_ratio", "slo", "alerts"] {
            assert_same(&h[k], &own[k], &format!("{host} {k}"));
        }
        assert_same(&h["budget_consumed"], &own["error_budget"]["consumed"], host);
        // Causes by host are the host's own classification.
        let by_host: std::collections::BTreeMap<String, i64> = fleet["fleet"]["causes_by_host"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["host"] == host)
            .map(|c| (c["cause"].as_str().unwrap().to_string(), c["misses"].as_i64().unwrap()))
            .collect();
        assert_eq!(by_host, causes(&own), "{host}");
        for (c, n) in causes(&own) {
            *summed.entry(c).or_insert(0) += n;
        }
        for mut e in own["episodes"].as_array().unwrap().clone() {
            e.as_object_mut().unwrap().insert("host".into(), host.into());
            // Evidence paths name the host.
            for v in e["evidence"].as_array_mut().unwrap() {
                v["path"] = format!("{host}:{}", v["path"].as_str().unwrap()).into();
            }
            episodes.push(e);
        }
    }
    assert_eq!(causes(&fleet), summed);
    let key = |e: &Value| (e["start"].as_str().unwrap().to_string(), e["host"].as_str().unwrap().to_string());
    episodes.sort_by_key(key);
    assert_same(&fleet["episodes"], &Value::from(episodes.clone()), "episodes");
    assert!(episodes.len() >= 2, "thrashing on web-1 and retention on web-3: {episodes:?}");
    // The host that breached is the one that thrashed; the fleet's figures are from counts.
    assert_eq!(hosts[0]["slo"]["status"], "breached");
    assert_eq!(hosts[1]["slo"]["status"], "met");
    let (hits, requests) = hosts.iter().fold((0, 0), |(a, b), h| (a + h["hits"].as_i64().unwrap(), b + h["requests"].as_i64().unwrap()));
    assert_same(&fleet["hit_ratio"], &Value::from(hits as f64 / requests as f64), "hit ratio");
}

#[test]
fn the_fleet_slo_is_the_combined_databases_and_each_hosts_at_the_same_moment() {
    let f = fixture();
    let fleet = json(cachescope().args(["slo", "--json", "--fleet"]).arg(f.export.join("*")));
    let at = fleet["fleet"]["at"].as_str().unwrap().to_string();
    let all = json(cachescope().args(["slo", "--json", "--at", &at]).args(db_arg(&f.all)));
    assert_same(&fleet["fleet"], &all, "fleet");
    for (h, (host, _, _)) in fleet["hosts"].as_array().unwrap().iter().zip(HOSTS) {
        let mut own = json(cachescope().args(["slo", "--json", "--at", &at]).args(db_arg(&f.db(host))));
        own.as_object_mut().unwrap().insert("host".into(), host.into());
        assert_same(h, &own, host);
    }
    let text = ok(cachescope().args(["slo", "--fleet"]).arg(&f.export));
    assert!(text.starts_with("fleet (3 hosts) at "), "{text}");
    assert!(text.contains("host web-1") && text.contains("FeatureStoreHitRatioLow firing"), "{text}");
}

#[test]
fn a_fleet_incident_takes_the_last_alert_of_any_host_and_escalates_on_it() {
    let f = fixture();
    let inc = json(cachescope().args(["incident", "--last-alert", "--format", "json", "--fleet"]).arg(&f.export));
    // Only web-1's own ratio fired (the fleet's stayed above the warning for less than its `for`).
    assert!(inc["report"]["alerts"].as_array().unwrap().is_empty());
    assert_eq!(inc["escalation"]["level"], 1, "{}", inc["escalation"]);
    let events: Vec<&str> = inc["timeline"].as_array().unwrap().iter().map(|t| t["event"].as_str().unwrap()).collect();
    assert!(events.contains(&"web-1: FeatureStoreHitRatioLow **firing** (warning)"), "{events:?}");
    assert!(events.iter().any(|e| e.starts_with("episode thrashing on web-1 starts")), "{events:?}");
    // Evidence lines name their host's file.
    let evidence = &inc["evidence"].as_array().unwrap()[0][1][0]["path"];
    assert!(evidence.as_str().unwrap().starts_with("web-1:"), "{evidence}");
    // Markdown and HTML say the hosts.
    let md = ok(cachescope().args(["incident", "--last-alert", "--fleet"]).arg(&f.export));
    assert!(md.contains("## Hosts") && md.contains("| web-3 | evicted_retention |"), "{md}");
    let html = ok(cachescope().args(["report", "--format", "html", "--fleet"]).arg(&f.export));
    assert!(html.contains("<h2>Hosts</h2>") && html.contains("<td>web-2</td>"), "{html}");
}

#[test]
fn the_fleet_markdown_report() {
    let f = fixture();
    let md = ok(cachescope().args(["report", "--fleet"]).arg(&f.export));
    insta::assert_snapshot!(md);
}

fn fails(c: &mut Command) -> String {
    let o = c.output().unwrap();
    assert!(!o.status.success(), "{c:?} succeeded");
    String::from_utf8(o.stderr).unwrap()
}

fn copy_tree(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let t = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&t).unwrap();
            copy_tree(&e.path(), &t);
        } else {
            std::fs::copy(e.path(), t).unwrap();
        }
    }
}

#[test]
fn bad_fleets_are_refused_saying_which_file_and_what_to_do() {
    let f = fixture();
    let d = tempfile::tempdir().unwrap();
    let err = fails(cachescope().args(["report", "--fleet"]).arg(d.path().join("nope*")));
    assert!(err.contains("no exported files at"), "{err}");
    // Two copies of the same export would count twice.
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    for x in [&a, &b] {
        std::fs::create_dir_all(x).unwrap();
        copy_tree(&f.export, x);
    }
    let err = fails(cachescope().args(["report", "--fleet"]).arg(d.path()));
    assert!(err.contains("would count twice"), "{err}");
    // Garbage where a day's figures should be.
    let day = b.join("request_minutes/host=web-2/date=2026-11-24/part-0.parquet");
    std::fs::remove_dir_all(&a).unwrap();
    std::fs::write(&day, b"\x00garbage\xff not parquet").unwrap();
    let err = fails(cachescope().args(["slo", "--fleet"]).arg(&b));
    assert!(err.contains(&format!("{} is not a readable Parquet file", day.display())), "{err}");
    // Another table's file in its place.
    std::fs::copy(b.join("misses/host=web-2/date=2026-11-24/part-0.parquet"), &day).unwrap();
    let err = fails(cachescope().args(["slo", "--fleet"]).arg(&b));
    assert!(err.contains("is not a `cachescope export` file: no column `minute`"), "{err}");
    // A Parquet file outside the layout.
    let stray = b.join("misses/host=web-2/stray.parquet");
    std::fs::copy(b.join("misses/host=web-2/date=2026-11-24/part-0.parquet"), &stray).unwrap();
    let err = fails(cachescope().args(["report", "--fleet"]).arg(&stray));
    assert!(err.contains("is not in the export layout"), "{err}");
    let err = fails(cachescope().args(["report", "--db", "x.duckdb", "--fleet"]).arg(&b));
    assert!(err.contains("cannot be used with"), "{err}");
}

#[test]
fn one_fleet_answers_several_periods_each_with_its_own_misses() {
    use cachescope::analysis::Period;
    use cachescope::fleet::Fleet;
    let f = fixture();
    let t = |s: &str| cachescope::engine::clock::parse_ts(s).unwrap();
    let whole = Period { from: t(FROM), until: t(UNTIL) };
    let early = Period { from: t(FROM), until: t("2026-11-24T14:40:00Z") };
    let mut fleet = Fleet::open(f.export.to_str().unwrap()).unwrap();
    let a = fleet.report(early).unwrap();
    let b = fleet.report(whole).unwrap();
    let c = fleet.incident(early).unwrap();
    let by_cause = |r: &cachescope::analysis::Report| r.causes.iter().map(|c| c.misses).sum::<i64>();
    let counts = |r: &cachescope::analysis::Report| r.causes.iter().map(|c| (c.cause.clone(), c.misses, c.top_symbols.clone())).collect::<Vec<_>>();
    assert_eq!(by_cause(&a), a.misses, "the causes count the period's misses");
    assert_eq!(by_cause(&b), b.misses);
    assert!(a.misses < b.misses, "{} {}", a.misses, b.misses);
    assert_eq!(counts(&c.report), counts(&a), "an incident loads the lines of the same misses");
    assert!(c.evidence.iter().all(|(_, lines)| lines.iter().all(|l| !l.text.is_empty())));
    // A day wholly inside the period is counted as it loads (src/fleet/tally.rs): the same
    // causes, symbols and hosts as the misses listed one by one.
    let day = Period { from: t("2026-11-24T00:00:00Z"), until: t("2026-11-25T00:00:00Z") };
    let counted = fleet.report(day).unwrap();
    let listed = fleet.incident(day).unwrap().report;
    assert_eq!(counts(&counted), counts(&listed));
    assert_eq!(counts(&counted), counts(&b), "every miss of the day is in the simulated 20 minutes");
    let by_host = |r: &cachescope::analysis::Report| r.fleet.as_ref().unwrap().causes_by_host.iter().map(|c| (c.host.clone(), c.cause.clone(), c.misses)).collect::<Vec<_>>();
    assert_eq!(by_host(&counted), by_host(&listed));
    // The same report as the command's, after the other periods.
    assert_same(&serde_json::to_value(&b).unwrap(), &report(&["--fleet", f.export.to_str().unwrap()]), "report");
}

#[test]
fn a_fleet_without_some_hosts_misses_says_which_days_have_no_causes() {
    let f = fixture();
    // Only the per-minute figures of web-1 (a glob that leaves the misses and episodes out).
    let glob = format!("{}/request_minutes/host=web-1/*/*.parquet", f.export.display());
    let r = json(cachescope().args(["report", "--format", "json", "--fleet", &glob]));
    assert_eq!(r["misses"], 934, "the misses count in the figures");
    assert!(r["causes"].as_array().unwrap().is_empty());
    let missing: Vec<(String, String, String)> = r["fleet"]["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["host"].as_str().unwrap().into(), m["table"].as_str().unwrap().into(), m["day"].as_str().unwrap().into()))
        .collect();
    assert_eq!(missing, [("web-1".into(), "misses".into(), "2026-11-24".into()), ("web-1".into(), "episodes".into(), "2026-11-24".into())]);
    let md = ok(cachescope().args(["report", "--fleet", &glob]));
    assert!(md.starts_with("# Feature store cache report: fleet of 1 host\n"), "{md}");
    assert!(md.contains("Not in the fleet's files (not exported, or left out by the glob): web-1's misses of 2026-11-24, web-1's episodes of 2026-11-24."), "{md}");
    // With every file, nothing is missing.
    let all = json(cachescope().args(["report", "--format", "json", "--fleet"]).arg(&f.export));
    assert_eq!(all["fleet"]["missing"], serde_json::json!([]));
}
