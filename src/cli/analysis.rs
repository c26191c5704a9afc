//! `sql`, `report`, `incident` and `slo`: the glue from the command line to [`crate::query`],
//! [`crate::analysis`] and [`crate::report`].

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::args::PeriodArgs;
use crate::fleet::Fleet;
use super::{parse_time, ReportFormat, SqlFormat, UsageError};

pub(super) fn cmd_sql(query: Option<String>, db: Option<PathBuf>, format: SqlFormat, schema: bool) -> anyhow::Result<()> {
    use crate::query;
    let db = db.unwrap_or_else(crate::ingest::default_db);
    let sql = match (schema, query) {
        (true, _) => query::SCHEMA_SQL.to_string(),
        (false, Some(q)) => q,
        (false, None) => anyhow::bail!(UsageError("give a query, or --schema to list the tables and views".into())),
    };
    let r = query::query(&db, &sql)?;
    match format {
        SqlFormat::Table => print!("{}", query::render_table(&r)),
        SqlFormat::Csv => print!("{}", query::render_csv(&r)?),
        SqlFormat::Json => {
            let objs: Vec<serde_json::Map<String, serde_json::Value>> = r
                .rows
                .iter()
                .map(|row| r.columns.iter().cloned().zip(row.iter().cloned()).collect())
                .collect();
            println!("{}", serde_json::to_string_pretty(&objs)?);
        }
    }
    Ok(())
}

pub(super) fn parse_duration(v: &str) -> anyhow::Result<chrono::Duration> {
    let (num, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len()));
    let n: i64 = num.parse().map_err(|_| UsageError(format!("--since `{v}` is not a duration like 24h, 90m or 7d")))?;
    let d = match unit {
        "s" => chrono::Duration::try_seconds(n),
        "m" => chrono::Duration::try_minutes(n),
        "h" | "" => chrono::Duration::try_hours(n),
        "d" => chrono::Duration::try_days(n),
        _ => anyhow::bail!(UsageError(format!("--since `{v}`: unit must be s, m, h or d"))),
    };
    Ok(d.ok_or_else(|| UsageError(format!("--since `{v}` is longer than any history; give at most a few thousand years")))?)
}

/// The period the command line gives whole (`--since`, or `--from` and `--until`), known before
/// the database is read.
pub(super) fn given_period(p: &PeriodArgs) -> anyhow::Result<Option<crate::analysis::Period>> {
    use crate::analysis::Period;
    let now = chrono::Utc::now().naive_utc();
    Ok(match p {
        PeriodArgs { since: Some(s), .. } => {
            let from = now.checked_sub_signed(parse_duration(s)?);
            Some(Period { from: from.ok_or_else(|| UsageError(format!("--since `{s}` reaches before the earliest time there is; give a shorter duration")))?, until: now })
        }
        PeriodArgs { from: Some(f), until: Some(u), .. } => {
            let (from, until) = (parse_time("--from", f)?, parse_time("--until", u)?);
            if until <= from {
                anyhow::bail!(UsageError("the period is empty: --until must be after --from".into()));
            }
            Some(Period { from, until })
        }
        _ => None,
    })
}

pub(super) fn period_of(db: &crate::query::Session, p: PeriodArgs) -> anyhow::Result<crate::analysis::Period> {
    use crate::analysis::{data_range, Period};
    if let Some(given) = given_period(&p)? {
        return Ok(given);
    }
    let PeriodArgs { from, until, .. } = p;
    let now = chrono::Utc::now().naive_utc();
    let range = data_range(db)?;
    let until = match until {
        Some(u) => parse_time("--until", &u)?,
        None => range.map(|r| r.until).unwrap_or(now),
    };
    // A database with no requests yet (a tailer just started) gets the day before `until`:
    // an empty report says so ("no traffic"), where an empty period was a usage error.
    let from = match from {
        Some(f) => parse_time("--from", &f)?,
        None => range.map(|r| r.from).unwrap_or(until - chrono::Duration::days(1)),
    };
    if until <= from {
        anyhow::bail!(UsageError("the period is empty: --until must be after --from".into()));
    }
    Ok(Period { from, until })
}

pub(super) fn write_or_print(out: Option<&Path>, text: &str) -> anyhow::Result<()> {
    match out {
        Some(p) => std::fs::write(p, text).with_context(|| format!("writing {}", p.display())),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

/// Exit code of `report --fail-on-breach` when the SLO was breached.
pub const EXIT_SLO_BREACHED: u8 = 4;

/// The SLO was breached (for `--fail-on-breach`).
#[derive(Debug, thiserror::Error)]
#[error("the SLO was breached in the period ({0} minutes below target)")]
pub struct SloBreached(pub i64);

pub(super) fn cmd_report(
    db: Option<PathBuf>,
    fleet: Option<String>,
    period: PeriodArgs,
    format: ReportFormat,
    out: Option<PathBuf>,
    fail_on_breach: bool,
) -> anyhow::Result<()> {
    use crate::report;
    let r = match fleet {
        Some(pattern) => {
            let mut f = Fleet::open(&pattern)?;
            let period = Fleet::whole_minutes(period_of(f.session(), period)?);
            f.report(period)?
        }
        None => {
            use crate::whatif::sizing::{self, Known};
            let given = given_period(&period)?;
            let known = match (given, &period) {
                (Some(p), _) => Known::Given(p),
                (None, PeriodArgs { since: None, from: None, until: None }) => Known::Whole,
                (None, _) => Known::Later,
            };
            let (db, early) = sizing::session(&db.unwrap_or_else(crate::ingest::default_db), known)?;
            let period = match given {
                Some(p) => p,
                None => period_of(&db, period)?,
            };
            sizing::report(&db, period, early)?
        }
    };
    let text = match format {
        ReportFormat::Md => report::report_markdown(&r)?,
        ReportFormat::Json => report::report_json(&r) + "\n",
        ReportFormat::Html => report::report_html(&r)?,
    };
    write_or_print(out.as_deref(), &text)?;
    if fail_on_breach && r.slo.status == "breached" {
        return Err(SloBreached(r.slo.breach_minutes).into());
    }
    Ok(())
}

pub(super) fn cmd_incident(
    db: Option<PathBuf>,
    fleet: Option<String>,
    from: Option<String>,
    to: Option<String>,
    last_alert: bool,
    format: ReportFormat,
    out: Option<PathBuf>,
) -> anyhow::Result<()> {
    use crate::{analysis, report};
    let given = || -> anyhow::Result<analysis::Period> {
        let (f, t) = (from.unwrap_or_default(), to.unwrap_or_default());
        Ok(analysis::Period { from: parse_time("--from", &f)?, until: parse_time("--to", &t)? })
    };
    let inc = match fleet {
        Some(pattern) => {
            let mut f = Fleet::open(&pattern)?;
            let period = Fleet::whole_minutes(if last_alert { f.last_alert()? } else { given()? });
            f.incident(period)?
        }
        None => {
            use crate::whatif::sizing::Known;
            let known = if last_alert { Known::Later } else { Known::Given(given()?) };
            let (db, early) = crate::whatif::sizing::session(&db.unwrap_or_else(crate::ingest::default_db), known)?;
            let period = match known {
                Known::Given(p) => p,
                _ => analysis::last_alert(&db)?,
            };
            crate::whatif::sizing::incident(&db, period, early)?
        }
    };
    match format {
        ReportFormat::Html => write_or_print(out.as_deref(), &report::incident_html(&inc)?),
        ReportFormat::Json => write_or_print(out.as_deref(), &(serde_json::to_string_pretty(&inc)? + "\n")),
        ReportFormat::Md => {
            let chart = match &out {
                Some(p) => {
                    let svg = p.with_extension("svg");
                    std::fs::write(&svg, report::chart_svg(&inc.report)?).with_context(|| format!("writing {}", svg.display()))?;
                    svg.file_name().map(|n| n.to_string_lossy().to_string())
                }
                None => None,
            };
            write_or_print(out.as_deref(), &report::incident_markdown(&inc, chart.as_deref())?)
        }
    }
}

pub(super) struct WhatIfArgs {
    pub db: Option<PathBuf>,
    pub period: PeriodArgs,
    pub capacity_gb: Vec<f64>,
    pub retention_days: Vec<f64>,
    pub sample: Option<f64>,
    pub format: super::args::WhatIfFormat,
    pub out: Option<PathBuf>,
}

pub(super) fn cmd_whatif(a: WhatIfArgs) -> anyhow::Result<()> {
    use super::args::WhatIfFormat;
    if let Some(bad) = a.capacity_gb.iter().find(|c| !c.is_finite() || **c < 0.0) {
        anyhow::bail!(UsageError(format!("--capacity-gb {bad}: give sizes in GB, 0 or more")));
    }
    if let Some(bad) = a.retention_days.iter().find(|d| !d.is_finite() || **d <= 0.0) {
        anyhow::bail!(UsageError(format!("--retention-days {bad}: give retentions in days, more than 0")));
    }
    if let Some(bad) = a.sample.filter(|r| !(*r > 0.0 && *r <= 1.0)) {
        anyhow::bail!(UsageError(format!("--sample {bad}: give the share of keys to simulate, more than 0 and at most 1")));
    }
    let db = crate::query::Session::open(&a.db.unwrap_or_else(crate::ingest::default_db))?;
    db.use_own_views()?;
    let whole = a.period.since.is_none() && a.period.from.is_none() && a.period.until.is_none();
    let period = if whole { None } else { Some(period_of(&db, a.period)?) };
    let q = crate::whatif::Question { period, capacities_gb: a.capacity_gb, retention_days: a.retention_days, skip_curve: false, sample_rate: a.sample };
    let w = crate::whatif::whatif(&db, &q)?;
    let text = match a.format {
        WhatIfFormat::Md => w.markdown(),
        WhatIfFormat::Json => serde_json::to_string_pretty(&w)? + "\n",
        WhatIfFormat::Svg => crate::whatif::chart::svg(&w)?,
    };
    write_or_print(a.out.as_deref(), &text)
}

pub(super) fn cmd_export(
    db: Option<PathBuf>,
    out: PathBuf,
    host: Option<String>,
    period: PeriodArgs,
    json: bool,
) -> anyhow::Result<()> {
    let host = match host {
        Some(h) => h,
        None => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .context("reading this machine's host name; give it with --host")?,
    };
    if !crate::export::valid_host(&host) {
        anyhow::bail!(UsageError(format!("--host `{host}`: use letters, digits, `.`, `-` and `_` (it names a directory)")));
    }
    let db = crate::analysis::session(&db.unwrap_or_else(crate::ingest::default_db))?;
    let period = period_of(&db, period)?;
    let s = crate::export::export(&db, &out, &host, period)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        println!(
            "exported {} days of host {} ({}): {} files, {} rows, {} bytes into {}",
            s.days.len(),
            s.host,
            s.days.first().zip(s.days.last()).map(|(a, b)| format!("{a} .. {b}")).unwrap_or_else(|| "no requests".into()),
            s.files,
            s.rows,
            s.bytes,
            out.display()
        );
    }
    Ok(())
}

pub(super) fn cmd_slo(db: Option<PathBuf>, fleet: Option<String>, at: Option<String>, json: bool) -> anyhow::Result<()> {
    use crate::analysis;
    let at = at.map(|a| parse_time("--at", &a)).transpose()?;
    if let Some(pattern) = fleet {
        let status = Fleet::open(&pattern)?.slo(at)?;
        match json {
            true => println!("{}", serde_json::to_string_pretty(&status)?),
            false => print!("{}", status.text()),
        }
        return Ok(());
    }
    let db = analysis::session(&db.unwrap_or_else(crate::ingest::default_db))?;
    let status = analysis::slo_status(&db, at)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", status.text());
    }
    Ok(())
}
