//! Rendering reports and incident summaries: Markdown, JSON, HTML (minijinja, with HTML
//! auto-escaping of everything that came from a log line) and the SVG chart (plotters): hit
//! ratio over time against the 95% and 80% lines, alert periods shaded, episodes marked.

use std::collections::BTreeMap;

use minijinja::{context, Environment, Value};
use plotters::prelude::*;

use crate::analysis::{Incident, Report};
use crate::engine::clock::parse_ts;

/// Failure to render.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// `{source:#}`: minijinja's alternate form names the template line that failed.
    #[error("rendering {what}: {source:#}")]
    Template { what: &'static str, source: minijinja::Error },
    #[error("rendering {what}: {source}")]
    Json { what: &'static str, source: serde_json::Error },
    #[error("drawing the chart: {0}")]
    Chart(#[source] crate::BoxError),
}

fn env() -> Environment<'static> {
    let mut env = Environment::new();
    env.add_template("report.md", include_str!("templates/report.md.j2")).expect("template parses");
    env.add_template("report.html", include_str!("templates/report.html.j2")).expect("template parses");
    env.add_template("incident.md", include_str!("templates/incident.md.j2")).expect("template parses");
    env.add_template("incident.html", include_str!("templates/incident.html.j2")).expect("template parses");
    env.add_template("hosts.md", include_str!("templates/hosts.md.j2")).expect("template parses");
    env.add_template("hosts.html", include_str!("templates/hosts.html.j2")).expect("template parses");
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            minijinja::AutoEscape::Html
        } else {
            minijinja::AutoEscape::None
        }
    });
    env.add_global("sizing_days", crate::whatif::sizing::REPORT_SIZING_DAYS);
    env.add_function("pct", |v: Option<f64>| -> String {
        v.map(|x| format!("{:.2}%", x * 100.0)).unwrap_or_else(|| "n/a".into())
    });
    env.add_function("num", |v: Option<f64>| -> String {
        v.map(|x| if x.abs() >= 100.0 { format!("{x:.0}") } else { format!("{x:.2}") })
            .unwrap_or_else(|| "n/a".into())
    });
    // A time for people: `HH:MM:SS` on the day of `day` (an RFC 3339 time), else with its
    // date; UTC is said once, beside the window.
    env.add_filter("clock", |ts: String, day: String| -> String {
        match (parse_ts(&ts), parse_ts(&day)) {
            (Some(t), Some(d)) if t.date() == d.date() => t.format("%H:%M:%S").to_string(),
            (Some(t), _) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
            (None, _) => ts,
        }
    });
    env.add_filter("day", |ts: String| -> String { parse_ts(&ts).map(|t| t.format("%Y-%m-%d").to_string()).unwrap_or(ts) });
    // Markdown table cells: no control characters, no pipes, no HTML.
    env.add_filter("md", |s: String| -> String {
        s.chars()
            .map(|c| if c.is_control() { '\u{fffd}' } else { c })
            .collect::<String>()
            .replace('|', "\\|")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    });
    // Text inside a fenced code block: no control characters, no fence.
    env.add_filter("code", |s: String| -> String {
        s.chars()
            .map(|c| if c.is_control() { '\u{fffd}' } else { c })
            .collect::<String>()
            .replace("```", "'''")
    });
    env
}

fn render(name: &'static str, ctx: Value) -> Result<String, RenderError> {
    env()
        .get_template(name)
        .and_then(|t| t.render(ctx))
        .map_err(|source| RenderError::Template { what: name, source })
}

/// The report as Markdown.
pub fn report_markdown(r: &Report) -> Result<String, RenderError> {
    render("report.md", Value::from_serialize(r))
}

/// The report as a self-contained HTML page with the chart inline.
pub fn report_html(r: &Report) -> Result<String, RenderError> {
    let chart = chart_svg(r)?;
    let mut v = serde_json::to_value(r).map_err(|source| RenderError::Json { what: "report.html", source })?;
    v["chart"] = serde_json::Value::String(chart);
    render("report.html", Value::from_serialize(&v))
}

/// The report as JSON (the documented shape).
pub fn report_json(r: &Report) -> String {
    serde_json::to_string_pretty(r).expect("report serialises")
}

fn incident_ctx(i: &Incident, chart: &str) -> Value {
    let evidence: BTreeMap<&str, &Vec<crate::analysis::Evidence>> = i.evidence.iter().map(|(c, v)| (c.as_str(), v)).collect();
    context! {
        r => Value::from_serialize(&i.report),
        escalation => Value::from_serialize(&i.escalation),
        budget_cost => i.budget_cost,
        evidence => Value::from_serialize(&evidence),
        timeline => Value::from_serialize(&i.timeline),
        chart => chart,
    }
}

/// The incident summary as Markdown; `chart_file` is the SVG's file name beside it.
pub fn incident_markdown(i: &Incident, chart_file: Option<&str>) -> Result<String, RenderError> {
    render("incident.md", incident_ctx(i, chart_file.unwrap_or("")))
}

/// The incident summary as a self-contained HTML page.
pub fn incident_html(i: &Incident) -> Result<String, RenderError> {
    let chart = chart_svg(&i.report)?;
    render("incident.html", incident_ctx(i, &chart))
}

/// The hit-ratio chart of a report as SVG.
pub fn chart_svg(r: &Report) -> Result<String, RenderError> {
    let t0 = r.period.from;
    let minutes = |t: &str| parse_ts(t).map(|x| (x - t0).num_seconds() as f64 / 60.0);
    let span = ((r.period.until - t0).num_seconds() as f64 / 60.0).max(1.0);
    let points: Vec<(f64, f64)> = r
        .timeline
        .iter()
        .filter_map(|p| Some((minutes(&p.t)?, p.hit_ratio?)))
        .collect();
    let lo = points.iter().map(|p| p.1).fold(0.75f64, f64::min).max(0.0);
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (960, 360)).into_drawing_area();
        let err = |e: DrawingAreaErrorKind<std::io::Error>| RenderError::Chart(Box::new(e));
        root.fill(&WHITE).map_err(err)?;
        let label = |m: &f64| {
            let t = t0 + chrono::Duration::seconds((*m * 60.0) as i64);
            t.format("%H:%M").to_string()
        };
        let mut chart = ChartBuilder::on(&root)
            .caption("5-minute hit ratio (UTC)", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..span, lo..1.0f64)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_label_formatter(&label)
            .y_label_formatter(&|y| format!("{:.0}%", y * 100.0))
            .disable_mesh()
            .draw()
            .map_err(err)?;
        for a in &r.alerts {
            let (Some(s), e) = (a.start.as_deref().and_then(minutes), a.end.as_deref().and_then(minutes)) else { continue };
            let color = if a.severity == "critical" { RGBColor(220, 50, 50).mix(0.18) } else { RGBColor(240, 170, 0).mix(0.18) };
            chart
                .draw_series(std::iter::once(Rectangle::new([(s.max(0.0), lo), (e.unwrap_or(span).min(span), 1.0)], color.filled())))
                .map_err(err)?;
        }
        for e in &r.episodes {
            if let Some(s) = minutes(&e.start) {
                if s >= 0.0 && s <= span {
                    chart
                        .draw_series(LineSeries::new(vec![(s, lo), (s, 1.0)], RGBColor(120, 120, 120).stroke_width(1)))
                        .map_err(err)?;
                    chart
                        .draw_series(std::iter::once(Text::new(e.kind.clone(), (s, lo + (1.0 - lo) * 0.04), ("sans-serif", 11))))
                        .map_err(err)?;
                }
            }
        }
        let slo = crate::analysis::SLO;
        let lines = [
            (slo.target, RGBColor(240, 170, 0), format!("{} (warning)", crate::analysis::SloPolicy::percent(slo.target))),
            (slo.critical_ratio, RGBColor(220, 50, 50), format!("{} (critical)", crate::analysis::SloPolicy::percent(slo.critical_ratio))),
        ];
        for (y, c, name) in lines {
            if y >= lo {
                chart
                    .draw_series(LineSeries::new(vec![(0.0, y), (span, y)], c.stroke_width(1)))
                    .map_err(err)?
                    .label(name)
                    .legend(move |(x, yy)| PathElement::new(vec![(x, yy), (x + 16, yy)], c));
            }
        }
        chart
            .draw_series(LineSeries::new(points, RGBColor(30, 90, 200).stroke_width(2)))
            .map_err(err)?
            .label("hit ratio (5m)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], RGBColor(30, 90, 200)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::MiddleLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(buf)
}
