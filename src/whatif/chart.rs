//! The what-if curve as SVG: predicted hit ratio against capacity (log scale), the engine's
//! policy and pure LRU, the SLO line, the current capacity and the recommendations marked.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{WhatIf, WhatIfError};

/// Draws `w`'s curve (the points with the log's own retention).
pub fn svg(w: &WhatIf) -> Result<String, WhatIfError> {
    let pts: Vec<&super::SizePoint> = w.points.iter().filter(|p| p.retention_days.is_none() && p.capacity_gb > 0.0).collect();
    let xs = pts.iter().map(|p| p.capacity_gb).chain(w.current.capacity_gb);
    let (mut x0, mut x1) = xs.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
    if x0 > x1 {
        (x0, x1) = (1e-6, 1.0);
    }
    let (x0, x1) = (x0 / 1.5, x1 * 1.5);
    let lo = pts.iter().map(|p| p.hit_ratio).fold(0.5f64, f64::min).max(0.0);
    let target = w.slo_target;
    let mut buf = String::new();
    {
        let err = |e: DrawingAreaErrorKind<std::io::Error>| WhatIfError::Chart(Box::new(e));
        let root = SVGBackend::with_string(&mut buf, (860, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("Predicted hit ratio by cache capacity, {} .. {}", w.from, w.until), ("sans-serif", 16))
            .margin(14)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d((x0..x1).log_scale(), lo..1.0f64)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("max_cache_size_gb")
            .y_desc("hit ratio")
            .x_label_formatter(&|x| gb_label(*x))
            .y_label_formatter(&|y| format!("{:.0}%", y * 100.0))
            .draw()
            .map_err(err)?;
        let blue = RGBColor(40, 90, 200);
        chart
            .draw_series(LineSeries::new(pts.iter().map(|p| (p.capacity_gb, p.hit_ratio)), blue.stroke_width(2)))
            .map_err(err)?
            .label("engine policy")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], blue.stroke_width(2)));
        chart.draw_series(pts.iter().map(|p| Circle::new((p.capacity_gb, p.hit_ratio), 3, blue.filled()))).map_err(err)?;
        let grey = RGBColor(130, 130, 130);
        chart
            .draw_series(LineSeries::new(pts.iter().filter_map(|p| Some((p.capacity_gb, p.lru_hit_ratio?))), grey.stroke_width(1)))
            .map_err(err)?
            .label("pure LRU")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], grey.stroke_width(1)));
        let orange = RGBColor(240, 170, 0);
        chart
            .draw_series(LineSeries::new(vec![(x0, target), (x1, target)], orange.stroke_width(1)))
            .map_err(err)?
            .label(format!("SLO {}", crate::analysis::SloPolicy::percent(target)))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], orange.stroke_width(1)));
        // Markers: a vertical line each, labelled at staggered heights, the label on the side
        // with room.
        let mid = (x0.ln() + x1.ln()) / 2.0;
        let mut marks: Vec<(f64, RGBColor, String)> = Vec::new();
        if let Some(c) = w.current.capacity_gb {
            marks.push((c, RGBColor(90, 90, 90), format!("current {c} GB")));
        }
        let green = RGBColor(30, 150, 60);
        if let Some(r) = &w.recommendation {
            marks.push((r.capacity_gb, green, format!("{} GB: period >= {}", r.capacity_gb, crate::analysis::SloPolicy::percent(target))));
        }
        if let Some(r) = &w.recommendation_every_window {
            marks.push((r.capacity_gb, green, format!("{} GB: every 5-minute window", r.capacity_gb)));
        }
        for (i, (x, color, text)) in marks.into_iter().enumerate() {
            chart.draw_series(LineSeries::new(vec![(x, lo), (x, 1.0)], color.stroke_width(1))).map_err(err)?;
            let anchor = if x.ln() > mid { HPos::Right } else { HPos::Left };
            let style = ("sans-serif", 12).into_font().color(&color).pos(Pos::new(anchor, VPos::Center));
            let y = lo + (1.0 - lo) * (0.08 + 0.07 * i as f64);
            chart.draw_series(std::iter::once(Text::new(format!(" {text} "), (x, y), style))).map_err(err)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(buf)
}

/// A capacity as people write it: `0.0001`, `0.5`, `20`.
fn gb_label(x: f64) -> String {
    let s = format!("{x:.9}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn capacity_labels_drop_trailing_zeros() {
        assert_eq!(super::gb_label(0.0001), "0.0001");
        assert_eq!(super::gb_label(20.0), "20");
        assert_eq!(super::gb_label(0.25), "0.25");
    }
}
