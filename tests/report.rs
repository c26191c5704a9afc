//! `report`, `incident`, `slo` and `demo` on the simulator's fixtures (real binary, real files).

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

fn cachescope() -> Command {
    let mut c = Command::cargo_bin("cachescope").unwrap();
    c.env_remove("CACHESCOPE_DB");
    c
}

/// The fixture's log ingested into a fresh database in `dir`.
fn fixture_db(dir: &Path, scenario: &str) -> PathBuf {
    let z = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("fixtures/{scenario}/trading-system.log.zst"))).unwrap();
    let log = dir.join("trading-system.log");
    std::fs::write(&log, zstd::decode_all(&z[..]).unwrap()).unwrap();
    let db = dir.join("events.duckdb");
    let out = cachescope().arg("ingest").arg("--db").arg(&db).arg(&log).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    db
}

fn run(args: &[&str], db: &Path) -> Output {
    cachescope().args(args).arg("--db").arg(db).output().unwrap()
}

#[test]
fn markdown_report_of_the_mixed_day() {
    let d = tempfile::tempdir().unwrap();
    let db = fixture_db(d.path(), "mixed_day");
    let out = run(&["report", "--format", "md"], &db);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    insta::assert_snapshot!("mixed_day_report_md", String::from_utf8(out.stdout).unwrap());
}

#[test]
fn json_report_has_the_documented_shape_and_fail_on_breach_gates_cron() {
    let d = tempfile::tempdir().unwrap();
    let db = fixture_db(d.path(), "mixed_day");
    let out = run(&["report", "--format", "json", "--fail-on-breach"], &db);
    assert_eq!(out.status.code(), Some(4), "breached day fails the gate");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for k in ["requests", "hits", "misses", "hit_ratio", "causes", "episodes", "alerts", "error_budget", "slo", "period"] {
        assert!(v.get(k).is_some(), "missing {k}: {v}");
    }
    assert_eq!(v["requests"].as_i64().unwrap(), v["hits"].as_i64().unwrap() + v["misses"].as_i64().unwrap());
    let c = &v["causes"][0];
    assert!(c["cause"].is_string() && c["misses"].is_i64() && c["share"].is_f64(), "{c}");
    let shares: f64 = v["causes"].as_array().unwrap().iter().map(|c| c["share"].as_f64().unwrap()).sum();
    assert!((shares - 1.0).abs() < 1e-9);
    let e = &v["episodes"][0];
    for k in ["kind", "start", "end", "misses"] {
        assert!(e.get(k).is_some(), "episode lacks {k}");
    }
    let a = &v["alerts"][0];
    for k in ["alert", "severity", "start", "end"] {
        assert!(a.get(k).is_some(), "alert lacks {k}");
    }
    // Alerts in time order, whichever alert they are.
    let starts: Vec<&str> = v["alerts"].as_array().unwrap().iter().map(|a| a["start"].as_str().unwrap()).collect();
    let mut sorted = starts.clone();
    sorted.sort();
    assert_eq!(starts, sorted);
    // No episode quotes the same evidence line twice.
    for e in v["episodes"].as_array().unwrap() {
        let ev: Vec<String> = e["evidence"].as_array().unwrap().iter().map(|x| format!("{}:{}", x["path"], x["line"])).collect();
        let mut uniq = ev.clone();
        uniq.dedup();
        assert_eq!(ev, uniq, "{}", e["kind"]);
    }
    assert_eq!(v["slo"]["status"], "breached");
    assert!(v["error_budget"]["consumed"].as_f64().unwrap() > 1.0);

    // A period of the steady day holds the SLO: exit 0.
    let d2 = tempfile::tempdir().unwrap();
    let steady = fixture_db(d2.path(), "steady");
    let out = run(&["report", "--format", "json", "--fail-on-breach"], &steady);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["slo"]["status"], "met");
    assert!(v["episodes"].as_array().unwrap().is_empty() && v["alerts"].as_array().unwrap().is_empty());
    // --from/--until restrict the period.
    let out = run(&["report", "--format", "json", "--from", "2026-11-24T14:30:00Z", "--until", "2026-11-24T14:35:00Z"], &steady);
    let part: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(part["requests"].as_i64().unwrap() < v["requests"].as_i64().unwrap());
    let bad = run(&["report", "--from", "yesterday"], &steady);
    assert_eq!(bad.status.code(), Some(2));
    // Durations past any history are usage errors, not panics.
    for since in ["999999999999d", "99999999999999h", "9223372036854775807s"] {
        let bad = run(&["report", "--since", since], &steady);
        let err = String::from_utf8_lossy(&bad.stderr);
        assert_eq!(bad.status.code(), Some(2), "--since {since}: {err}");
        assert!(err.contains(&format!("--since `{since}`")) && !err.contains("panicked"), "--since {since}: {err}");
    }
}

#[test]
fn incident_for_the_last_alert_names_level_owner_causes_evidence_and_chart() {
    let d = tempfile::tempdir().unwrap();
    let db = fixture_db(d.path(), "mixed_day");
    let md = d.path().join("incident.md");
    let out = cachescope().args(["incident", "--last-alert", "--out"]).arg(&md).arg("--db").arg(&db).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&md).unwrap();
    assert!(text.contains("Level 2, Critical Alert"), "{text}");
    assert!(text.contains("dev-data-oncall + platform-oncall"));
    assert!(text.contains("### 1. manifest_unavailable"), "{text}");
    assert!(text.contains("2. DuckDB Manifest Database Issues"));
    assert!(text.contains("trading-system.log:"), "evidence with file and line");
    assert!(text.contains("](incident.svg)"));
    // For people: the date and UTC said once, times to the second, the timeline in time order.
    assert!(text.contains("Window: 2026-11-24 19:"), "{text}");
    assert!(text.contains(" UTC (all times UTC)"), "{text}");
    let timeline: Vec<&str> = text
        .split("### Timeline")
        .nth(1)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| time") && !l.starts_with("| ---"))
        .map(|l| l.split(" | ").next().unwrap().trim_start_matches("| "))
        .take_while(|t| t.len() == 8)
        .collect();
    assert!(timeline.len() >= 4, "{text}");
    let mut sorted = timeline.clone();
    sorted.sort();
    assert_eq!(timeline, sorted, "timeline out of order: {text}");
    let summary = text.split("## Episodes").next().unwrap();
    assert!(!summary.contains(".000000") && !summary.contains("Z |"), "microseconds or Z in the summary: {summary}");
    let svg = std::fs::read_to_string(d.path().join("incident.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("95% (warning)") && svg.contains("manifest_outage"));
    // The whole day: thrashing long enough for Level 3.
    let out = cachescope()
        .args(["incident", "--from", "2026-11-24T14:30:00Z", "--to", "2026-11-24T21:00:00Z", "--format", "html", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let html = String::from_utf8(out.stdout).unwrap();
    assert!(html.contains("Level 3, Extended Outage"), "critical fired for 30 minutes in the thrashing episode");
    assert!(html.contains("<svg"));
}

/// A database with no requests yet (a tailer that has not read a line): the cron report,
/// `--fail-on-breach` included, reports no traffic over the last day instead of failing
/// with "the period is empty", and so does the export.
#[test]
fn a_database_with_no_requests_yet_reports_no_traffic() {
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("empty.log");
    std::fs::write(&log, "").unwrap();
    let db = d.path().join("events.duckdb");
    cachescope().arg("ingest").arg("--db").arg(&db).arg(&log).assert().success();
    let out = run(&["report", "--format", "json", "--fail-on-breach"], &db);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["requests"], 0, "{j}");
    let (from, until) = (j["period"]["from"].as_str().unwrap(), j["period"]["until"].as_str().unwrap());
    let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap();
    assert_eq!((at(until) - at(from)).num_hours(), 24, "{from} .. {until}");
    assert!((chrono::Utc::now() - at(until).to_utc()).num_minutes().abs() < 5, "ends now: {until}");
    let out = run(&["report", "--format", "md"], &db);
    assert!(String::from_utf8_lossy(&out.stdout).contains("no traffic"), "{}", String::from_utf8_lossy(&out.stdout));
    let out = cachescope().args(["export", "--host", "web-1", "--out"]).arg(d.path().join("fleet")).arg("--db").arg(&db).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no requests"), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn slo_reports_alert_states_at_a_moment() {
    let d = tempfile::tempdir().unwrap();
    let db = fixture_db(d.path(), "mixed_day");
    let out = run(&["slo", "--format", "json", "--at", "2026-11-24T17:30:00Z"], &db);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["hit_ratio_5m"].as_f64().unwrap() < 0.8);
    let states: Vec<&str> = v["alerts"].as_array().unwrap().iter().map(|a| a["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["firing", "firing"]);
    let out = run(&["slo", "--json", "--at", "2026-11-24T15:00:00Z"], &db);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["alerts"].as_array().unwrap().iter().all(|a| a["state"] == "inactive"));
}

#[test]
fn html_escapes_everything_from_the_log_and_terminal_output_strips_controls() {
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("evil.log");
    let mut body = String::new();
    for i in 0..30 {
        body += &format!(
            "2026-11-24T14:30:{:02}.000000Z INFO cachescope::engine: Cache MISS for x event=miss op=get_or_compute symbol=<script>alert({i})</script> feature_set=returns key=k{i:02} slot=s{i:02} config=c data_version=v0 bytes=1 latency_us=1 reason=new_key outcome=stored\n",
            i
        );
    }
    body += "2026-11-24T14:31:00.000000Z INFO cachescope::engine: Cache MISS for x event=miss op=get_or_compute symbol=\"ESC\\u{1b}[2J\" feature_set=returns key=kz slot=sz config=c data_version=v0 bytes=1 latency_us=1 reason=new_key outcome=stored\n";
    std::fs::write(&log, body).unwrap();
    let db = d.path().join("ev.duckdb");
    assert!(cachescope().arg("ingest").arg("--db").arg(&db).arg(&log).output().unwrap().status.success());
    let html = String::from_utf8(run(&["report", "--format", "html"], &db).stdout).unwrap();
    assert!(!html.contains("<script>alert"), "unescaped symbol in HTML");
    assert!(html.contains("&lt;script&gt;alert"));
    let inc = String::from_utf8(
        cachescope()
            .args(["incident", "--from", "2026-11-24T14:00:00Z", "--to", "2026-11-24T15:00:00Z", "--format", "html", "--db"])
            .arg(&db)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(!inc.contains("<script>alert"));
    let table = String::from_utf8(run(&["sql", "SELECT DISTINCT symbol FROM events ORDER BY 1"], &db).stdout).unwrap();
    assert!(!table.contains('\u{1b}'), "{table:?}");
    let csv = String::from_utf8(run(&["sql", "--format", "csv", "SELECT 'a,\"b' AS x"], &db).stdout).unwrap();
    assert_eq!(csv, "x\n\"a,\"\"b\"\n");
}

#[test]
fn demo_writes_the_report_and_the_incident() {
    let d = tempfile::tempdir().unwrap();
    let out = cachescope().args(["demo", "--dir"]).arg(d.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("# Feature store cache report"));
    assert!(text.contains("| thrashing |"));
    assert!(text.contains("## Cache sizing"), "the main job sizes the cache when evictions lead: {text}");
    for f in ["incident.md", "incident.svg", "incident.html", "events.duckdb", "scenario.json", "trading-system.log"] {
        assert!(d.path().join(f).exists(), "{f}");
    }
}
