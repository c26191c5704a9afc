//! Query results for people and programs: an aligned text table (control characters
//! stripped, for terminal safety) and CSV (RFC 4180 quoting).

use super::{QueryError, QueryResult};

/// Strips control characters (terminal safety) from text shown in a terminal.
pub fn printable(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { '\u{fffd}' } else { c }).collect()
}

/// Formats a result as an aligned text table.
pub fn render_table(r: &QueryResult) -> String {
    let cell = |v: &serde_json::Value| match v {
        serde_json::Value::Null => "NULL".to_string(),
        serde_json::Value::String(s) => printable(s),
        other => other.to_string(),
    };
    let cells: Vec<Vec<String>> = r.rows.iter().map(|row| row.iter().map(cell).collect()).collect();
    let mut width: Vec<usize> = r.columns.iter().map(|c| c.chars().count()).collect();
    for row in &cells {
        for (i, c) in row.iter().enumerate() {
            width[i] = width[i].max(c.chars().count().min(80));
        }
    }
    let mut out = String::new();
    let line = |vals: &[String], out: &mut String| {
        let parts: Vec<String> = vals
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let v: String = v.chars().take(80).collect();
                format!("{v:<w$}", w = width[i])
            })
            .collect();
        out.push_str(parts.join("  ").trim_end());
        out.push('\n');
    };
    line(&r.columns.iter().map(|c| printable(c)).collect::<Vec<_>>(), &mut out);
    line(&width.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>(), &mut out);
    for row in &cells {
        line(row, &mut out);
    }
    out.push_str(&format!("({} rows)\n", r.rows.len()));
    out
}

/// Formats a result as CSV (RFC 4180 quoting).
pub fn render_csv(r: &QueryResult) -> Result<String, QueryError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let e = QueryError::Csv;
    w.write_record(&r.columns).map_err(e)?;
    for row in &r.rows {
        w.write_record(row.iter().map(|v| match v {
            serde_json::Value::Null => String::new(),
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        }))
        .map_err(e)?;
    }
    let bytes = w.into_inner().map_err(|x| QueryError::Csv(x.into_error().into()))?;
    Ok(String::from_utf8_lossy(&bytes).to_string())
}

