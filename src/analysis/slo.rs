//! The SLO and its alerts, written once: the runbook's values (at least 95% of requests from
//! cache; the warning below 95% for 10 minutes, the critical below 80% for 5 minutes, over
//! 5-minute windows of at least 20 requests; the error budget over 30 days). The SQL's
//! `thresholds` view (queries/slo.sql) and the Prometheus rules
//! (deploy/prometheus/featurestore-rules.yml) hold the same numbers; tests check that they
//! agree with this.

/// The SLO's numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SloPolicy {
    /// Share of requests to serve from cache; FeatureStoreHitRatioLow fires below it...
    pub target: f64,
    /// ...for this long.
    pub warning_for_minutes: u32,
    /// FeatureStoreHitRatioCritical fires below this...
    pub critical_ratio: f64,
    /// ...for this long.
    pub critical_for_minutes: u32,
    /// No alert on fewer requests in a 5-minute window (idle nights).
    pub min_requests_5m: u32,
    /// The error budget, `1 - target` of requests, is counted over this window.
    pub budget_window_days: u32,
}

/// The runbook's SLO.
pub const SLO: SloPolicy = SloPolicy {
    target: 0.95,
    warning_for_minutes: 10,
    critical_ratio: 0.80,
    critical_for_minutes: 5,
    min_requests_5m: 20,
    budget_window_days: 30,
};

/// The runbook's two alerts, as the rules and the `alerts` view name them.
pub const ALERTS: [&str; 2] = ["FeatureStoreHitRatioLow", "FeatureStoreHitRatioCritical"];

impl SloPolicy {
    /// `95%`, `80%`: a ratio as people read it.
    pub fn percent(ratio: f64) -> String {
        format!("{}%", (ratio * 100.0).round())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sql_thresholds_are_the_slo() {
        let c = duckdb::Connection::open_in_memory().unwrap();
        c.execute_batch(crate::queries::EVENTS_SCHEMA).unwrap();
        c.execute_batch(crate::queries::SLO).unwrap();
        let (target, warn_for, critical, crit_for, min_req, days): (f64, i32, f64, i32, i32, i32) = c
            .query_row(
                "SELECT slo_target, warning_for_minutes, critical_ratio, critical_for_minutes, min_requests_5m, budget_window_days FROM thresholds",
                [],
                |r| Ok((r.get("slo_target")?, r.get("warning_for_minutes")?, r.get("critical_ratio")?, r.get("critical_for_minutes")?, r.get("min_requests_5m")?, r.get("budget_window_days")?)),
            )
            .unwrap();
        assert_eq!(
            SloPolicy {
                target,
                warning_for_minutes: warn_for as u32,
                critical_ratio: critical,
                critical_for_minutes: crit_for as u32,
                min_requests_5m: min_req as u32,
                budget_window_days: days as u32,
            },
            SLO
        );
    }

    #[test]
    fn the_prometheus_rules_are_the_slo() {
        let rules = include_str!("../../deploy/prometheus/featurestore-rules.yml");
        // Each alert's expression and `for:`, as the rules file states them.
        let alert = |name: &str| -> (String, String) {
            let at = rules.find(&format!("alert: {name}")).unwrap_or_else(|| panic!("no alert {name}"));
            let body = &rules[at..];
            let expr = body.lines().find_map(|l| l.trim().strip_prefix("expr: ")).unwrap().to_string();
            let for_ = body.lines().find_map(|l| l.trim().strip_prefix("for: ")).unwrap().to_string();
            (expr, for_)
        };
        let min_rate = format!("featurestore:request_rate_5m >= ({} / 300)", SLO.min_requests_5m);
        let (expr, for_) = alert("FeatureStoreHitRatioLow");
        assert_eq!(for_, format!("{}m", SLO.warning_for_minutes));
        assert_eq!(expr, format!("featurestore:hit_ratio_5m < {:.2} and {min_rate}", SLO.target));
        let (expr, for_) = alert("FeatureStoreHitRatioCritical");
        assert_eq!(for_, format!("{}m", SLO.critical_for_minutes));
        assert_eq!(expr, format!("featurestore:hit_ratio_5m < {:.2} and {min_rate}", SLO.critical_ratio));
        // The burn-rate alerts spend the budget of 1 - target over the window.
        let budget = format!("{:.2}", 1.0 - SLO.target);
        let burn: Vec<&str> = rules.lines().filter(|l| l.contains("expr: featurestore:miss_ratio_")).collect();
        assert_eq!(burn.len(), 2, "the fast and the slow burn-rate alerts");
        for l in burn {
            assert_eq!(l.matches(&format!(" * {budget})")).count(), 2, "{l} does not spend a budget of {budget}");
            assert!(l.ends_with(&min_rate), "{l}");
        }
        assert!(rules.contains(&format!("below {} for {} minutes", SloPolicy::percent(SLO.target), SLO.warning_for_minutes)));
        assert!(rules.contains(&format!("below {} for {} minutes", SloPolicy::percent(SLO.critical_ratio), SLO.critical_for_minutes)));
        assert!(rules.contains(&format!("over {} days", SLO.budget_window_days)) || rules.contains(&format!("{}-day", SLO.budget_window_days)));
    }
}
