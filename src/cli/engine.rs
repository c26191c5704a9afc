//! `replay`, `demo`, `cache`, `doctor` and `feature-sets`: the glue from the command line to
//! the engine, [`crate::replay`] and [`crate::sim`].

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::engine::{Config, FeatureRegistry};
use crate::replay::{self, ReplayOptions, ReplaySummary, Trace};
use crate::sim::{Scenario, SimOptions};

use super::ingest::open_ingester;
use super::{parse_time, CacheOp, Format, UsageError};

#[allow(clippy::too_many_arguments)]
pub(super) fn cmd_replay(
    trace: &Path,
    config: Option<&Path>,
    cache_dir: Option<PathBuf>,
    log: PathBuf,
    seed: u64,
    metrics_out: Option<PathBuf>,
    metrics_addr: Option<std::net::SocketAddr>,
    deterministic: bool,
    format: Format,
) -> anyhow::Result<()> {
    let parsed = Trace::from_path(trace)?;
    let mut cfg = match config {
        Some(p) => Config::load(Some(p))?,
        None => defaults_without_file()?,
    };
    let mut _temp = None;
    match (cache_dir, config) {
        (Some(dir), _) => {
            cfg.manifest_path = dir.join("manifest.duckdb");
            cfg.cache_dir = dir;
        }
        (None, None) => {
            let t = tempfile::Builder::new()
                .prefix("cachescope-replay-")
                .tempdir()
                .context("creating a temporary cache directory")?;
            cfg.cache_dir = t.path().to_path_buf();
            cfg.manifest_path = t.path().join("manifest.duckdb");
            _temp = Some(t);
        }
        (None, Some(_)) => {}
    }
    let opts = ReplayOptions {
        config: cfg,
        log,
        seed,
        lock_helper: std::env::current_exe().context("locating the cachescope binary")?,
        metrics_out,
        metrics_addr,
        deterministic,
    };
    let started = std::time::Instant::now();
    let sum = replay::replay(&parsed, &opts)?;
    let elapsed = started.elapsed().as_secs_f64();
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&sum)?),
        Format::Text => print!("{}", render_summary(&sum, elapsed, _temp.is_some())),
    }
    Ok(())
}

pub(super) fn cmd_demo(dir: Option<PathBuf>) -> anyhow::Result<()> {
    use crate::{analysis, report, sim};
    let dir = match dir {
        Some(d) => d,
        None => tempfile::Builder::new().prefix("cachescope-demo-").tempdir()?.keep(),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    eprintln!("simulating mixed_day (seed 1, scale 0.5) into {} ...", dir.display());
    let truth = sim::simulate(&SimOptions {
        scenario: Scenario::MixedDay,
        seed: 1,
        scale: 0.5,
        out: dir.clone(),
        lock_helper: std::env::current_exe().context("locating the cachescope binary")?,
    })?;
    let db = dir.join("events.duckdb");
    let _ = std::fs::remove_file(&db);
    let mut ing = open_ingester(&db, None, &[], Vec::new(), crate::ingest::zone::Zone::Utc)?;
    let sum = ing.ingest(&[dir.join("trading-system.log")], false, |_| {})?;
    drop(ing);
    eprintln!("{}", sum.line());
    let session = analysis::session(&db)?;
    let period = analysis::data_range(&session)?.ok_or_else(|| anyhow::anyhow!("the simulated log has no requests"))?;
    let r = crate::whatif::sizing::report(&session, period, None)?;
    print!("{}", report::report_markdown(&r)?);
    let inc = crate::whatif::sizing::incident(&session, period, None)?;
    std::fs::write(dir.join("incident.svg"), report::chart_svg(&inc.report)?)?;
    std::fs::write(dir.join("incident.md"), report::incident_markdown(&inc, Some("incident.svg"))?)?;
    std::fs::write(dir.join("incident.html"), report::incident_html(&inc)?)?;
    println!();
    println!("simulated truth: {} episodes; wrote {}/{{incident.md,incident.svg,incident.html,events.duckdb}}", truth.episodes.len(), dir.display());
    Ok(())
}

pub(super) fn cmd_cache(op: CacheOp, config: Option<&Path>, log: Option<&Path>) -> anyhow::Result<()> {
    use crate::engine::{EventLog, FeatureStore, ParquetDirMarketData};
    let cfg = Config::load(config)?;
    let open = |market: Option<&Path>| -> anyhow::Result<FeatureStore> {
        let mut b = FeatureStore::builder(cfg.clone()).log(match log {
            Some(p) => EventLog::append_to(p, true).with_context(|| format!("opening the log {}", p.display()))?,
            None => EventLog::sink(),
        });
        if let Some(dir) = market {
            b = b.market_data(std::sync::Arc::new(ParquetDirMarketData::new(dir)));
        }
        Ok(b.open()?)
    };
    match op {
        CacheOp::Warm { symbols, feature_sets, range, market_data } => {
            let mut store = open(market_data.as_deref())?;
            let sets: Vec<String> = if feature_sets.is_empty() {
                store.feature_sets().iter().map(|c| c.set.name().to_string()).collect()
            } else {
                feature_sets
            };
            let (start, end) = match range {
                Some(r) => {
                    let (a, b) = r
                        .split_once("..")
                        .ok_or_else(|| UsageError(format!("--range `{r}` is not START..END")))?;
                    (parse_time("--range start", a)?, parse_time("--range end", b)?)
                }
                None => crate::engine::session::previous(chrono::Utc::now().naive_utc()),
            };
            let r = store.warm(&symbols, &sets, start, end)?;
            println!(
                "warmed {} symbols x {} feature sets ({} .. {}): {} stored, {} already cached, {} failed",
                symbols.len(),
                sets.len(),
                crate::engine::clock::fmt_ts(start),
                crate::engine::clock::fmt_ts(end),
                r.stored,
                r.already_cached,
                r.failed
            );
            store.close();
            if r.failed > 0 {
                anyhow::bail!("{} warm-ups failed (see the engine log)", r.failed);
            }
        }
        CacheOp::Cleanup { dry_run } => {
            let mut store = open(None)?;
            let r = store.cleanup(dry_run);
            println!(
                "{}{} files older than {} days ({} bytes); {} files ({} bytes) remain",
                if dry_run { "would remove " } else { "removed " },
                r.removed_files,
                r.retention_days,
                r.freed_bytes,
                r.remaining_files,
                r.remaining_bytes
            );
            store.close();
        }
        CacheOp::RebuildManifest => {
            let manifest = cfg.manifest_path.clone();
            if manifest.exists() {
                let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.6f");
                let backup = PathBuf::from(format!("{}.backup-{stamp}", manifest.display()));
                std::fs::copy(&manifest, &backup).with_context(|| format!("backing up {} to {}", manifest.display(), backup.display()))?;
                std::fs::remove_file(&manifest).with_context(|| format!("removing {}", manifest.display()))?;
                let _ = std::fs::remove_file(format!("{}.wal", manifest.display()));
                println!("backed up {} to {}", manifest.display(), backup.display());
            }
            let store = open(None)?;
            let st = store.stats();
            println!(
                "rebuilt {} from the cache files: {} files, {} bytes",
                manifest.display(),
                st.cached_files,
                st.cached_bytes
            );
            store.close();
        }
        CacheOp::Stats { output } => {
            let json = output.json();
            let store = open(None)?;
            let st = store.stats();
            if json {
                println!("{}", serde_json::to_string_pretty(&st)?);
            } else {
                println!(
                    "cache {}: {} files, {} bytes of {} ({:.1}% of max_cache_size_gb); manifest {}",
                    cfg.cache_dir.display(),
                    st.cached_files,
                    st.cached_bytes,
                    st.max_bytes,
                    st.cached_bytes as f64 * 100.0 / st.max_bytes.max(1) as f64,
                    if st.manifest_available { "available" } else { "LOCKED by another process" }
                );
                println!("remembered keys by state: {}", st.by_state.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", "));
                println!("symbols seen: {}", st.symbols);
            }
            store.close();
        }
    }
    Ok(())
}

/// `doctor` found warnings (1) or failures (2).
#[derive(Debug, thiserror::Error)]
#[error("doctor: {0} check(s) need attention")]
pub struct DoctorFindings(pub usize, pub u8);

pub(super) fn cmd_doctor(config: Option<&Path>, db: Option<&Path>, format: Format) -> anyhow::Result<()> {
    use crate::doctor;
    let cfg = Config::load(config)?;
    let checks = doctor::run(&cfg, db, chrono::Utc::now().naive_utc());
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&checks)?),
        Format::Text => {
            for c in &checks {
                println!("[{:<4}] {}: {}", c.status.as_str(), c.name, crate::query::printable(&c.figure));
                if !c.action.is_empty() {
                    println!("       -> {}", c.action);
                }
            }
        }
    }
    let code = doctor::exit_code(&checks);
    if code > 0 {
        let n = checks.iter().filter(|c| c.status != doctor::Status::Ok).count();
        return Err(DoctorFindings(n, code).into());
    }
    Ok(())
}

pub(super) fn defaults_without_file() -> anyhow::Result<Config> {
    let env = std::env::vars().collect();
    let home = std::env::var_os("HOME").map(PathBuf::from);
    Ok(Config::from_parts(None, None, &env, Some(home.as_deref().unwrap_or(Path::new("/tmp"))))?)
}

/// The human summary of a replay.
pub fn render_summary(s: &ReplaySummary, elapsed_s: f64, temp_cache: bool) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "replayed {} rows ({} .. {}) in {:.2} s",
        s.rows,
        s.first_ts.as_deref().unwrap_or("-"),
        s.last_ts.as_deref().unwrap_or("-"),
        elapsed_s
    );
    let ratio = s
        .hit_ratio
        .map(|r| {
            let slo = crate::analysis::SLO.target;
            let verdict = if r >= slo { "met" } else { "BREACHED" };
            format!("{:.2}% (SLO >= {}: {verdict})", r * 100.0, crate::analysis::SloPolicy::percent(slo))
        })
        .unwrap_or_else(|| "n/a (no requests)".into());
    let _ = writeln!(o, "requests {}  hits {}  misses {}  hit ratio {}", s.requests, s.hits, s.misses, ratio);
    if s.failed_requests > 0 {
        let _ = writeln!(o, "failed requests (computation errors): {}", s.failed_requests);
    }
    let _ = writeln!(o, "misses by reason:");
    let mut reasons: Vec<_> = s.misses_by_reason.iter().filter(|(_, n)| **n > 0).collect();
    reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    if reasons.is_empty() {
        let _ = writeln!(o, "  (none)");
    }
    for (r, n) in reasons {
        let share = if s.misses > 0 { *n as f64 * 100.0 / s.misses as f64 } else { 0.0 };
        let _ = writeln!(o, "  {r:<22}{n:>8}  {share:5.1}%");
    }
    let _ = writeln!(
        o,
        "invalidated {}  cleanup removed {}  warmed {}  files deleted externally {}",
        s.invalidated, s.cleanup_removed_files, s.warmed, s.files_deleted
    );
    let _ = writeln!(
        o,
        "cache at end: {} files, {} bytes in {}{}",
        s.cached_files_at_end,
        s.cached_bytes_at_end,
        s.cache_dir,
        if temp_cache { " (temporary, removed)" } else { "" }
    );
    let _ = writeln!(o, "log: {}", s.log);
    o
}

pub(super) fn cmd_feature_sets(config: Option<&Path>, format: Format) -> anyhow::Result<()> {
    let overrides = match config {
        Some(p) => Config::load(Some(p))?.feature_sets,
        None => Default::default(),
    };
    let reg = FeatureRegistry::with_builtins(&overrides).context("applying [feature_sets] overrides")?;
    match format {
        Format::Json => {
            let v: Vec<_> = reg
                .iter()
                .map(|c| {
                    serde_json::json!({
                        "name": c.set.name(),
                        "description": c.set.description(),
                        "params": c.params,
                        "config_hash": c.config_hash,
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Format::Text => {
            println!("{:<15} {:<17} {:<22} description", "name", "config_hash", "params");
            for c in reg.iter() {
                let p = c.params_string();
                println!(
                    "{:<15} {:<17} {:<22} {}",
                    c.set.name(),
                    c.config_hash,
                    if p.is_empty() { "-".to_string() } else { p },
                    c.set.description()
                );
            }
        }
    }
    Ok(())
}
