//! Counting a whole day of misses by symbol and cause before it reaches DuckDB: a report
//! over a month of a fleet asks how many misses of each cause and symbol there were, and a
//! day's tens of thousands of miss rows become a few thousand counted rows (`n`, which the
//! fleet's `miss_causes` view expands back into rows as it reads them). Only a day wholly
//! inside the period is counted (any of its times then passes the period's filter); each
//! count keeps the day's first time of its misses.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

/// The columns a tally appends to `fleet_misses`.
pub const COLUMNS: [&str; 5] = ["host", "ts", "symbol", "cause", "n"];

/// Misses counted by cause and symbol: (misses, first time).
#[derive(Debug, Default)]
pub struct Tally {
    counts: HashMap<String, BySymbol>,
}

#[derive(Debug, Default)]
struct BySymbol {
    named: HashMap<String, (i64, i64)>,
    /// Misses that name no symbol.
    unnamed: Option<(i64, i64)>,
}

fn count(c: &mut (i64, i64), t: i64) {
    c.0 += 1;
    c.1 = c.1.min(t);
}

fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T, arrow::error::ArrowError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| arrow::error::ArrowError::SchemaError(format!("no `{name}` column of the export's type")))
}

impl Tally {
    /// Counts a batch's misses (its `ts`, `symbol` and `cause` columns).
    pub fn add(&mut self, batch: &RecordBatch) -> Result<(), arrow::error::ArrowError> {
        let ts = column::<TimestampMicrosecondArray>(batch, "ts")?;
        let symbol = column::<StringArray>(batch, "symbol")?;
        let cause = column::<StringArray>(batch, "cause")?;
        for i in 0..batch.num_rows() {
            let by_symbol = match self.counts.get_mut(cause.value(i)) {
                Some(m) => m,
                None => self.counts.entry(cause.value(i).to_string()).or_default(),
            };
            let t = ts.value(i);
            if symbol.is_null(i) {
                count(by_symbol.unnamed.get_or_insert((0, t)), t);
            } else if let Some(c) = by_symbol.named.get_mut(symbol.value(i)) {
                count(c, t);
            } else {
                by_symbol.named.insert(symbol.value(i).to_string(), (1, t));
            }
        }
        Ok(())
    }

    /// The counts as rows of [`COLUMNS`], for `host`.
    pub fn batch(&self, host: &str) -> Result<RecordBatch, arrow::error::ArrowError> {
        let rows: Vec<(&str, Option<&str>, i64, i64)> = self
            .counts
            .iter()
            .flat_map(|(c, m)| {
                let named = m.named.iter().map(move |(s, (n, t))| (c.as_str(), Some(s.as_str()), *n, *t));
                named.chain(m.unnamed.map(|(n, t)| (c.as_str(), None, n, t)))
            })
            .collect();
        let schema = Arc::new(Schema::new(vec![
            Field::new("host", DataType::Utf8, false),
            Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), false),
            Field::new("symbol", DataType::Utf8, true),
            Field::new("cause", DataType::Utf8, false),
            Field::new("n", DataType::Int64, false),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(host, rows.len()))),
            Arc::new(TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.3))),
            Arc::new(StringArray::from_iter(rows.iter().map(|r| r.1))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.2))),
        ];
        RecordBatch::try_new(schema, columns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misses_are_counted_by_cause_and_symbol_with_their_first_time() {
        let b = RecordBatch::try_from_iter(vec![
            ("ts", Arc::new(TimestampMicrosecondArray::from(vec![30, 10, 20, 40])) as ArrayRef),
            ("symbol", Arc::new(StringArray::from(vec![Some("AAPL"), Some("AAPL"), None, Some("AAPL")])) as ArrayRef),
            ("cause", Arc::new(StringArray::from(vec!["new_key", "new_key", "new_key", "evicted_capacity"])) as ArrayRef),
        ])
        .unwrap();
        let mut t = Tally::default();
        t.add(&b).unwrap();
        t.add(&b.slice(0, 1)).unwrap();
        let out = t.batch("web-1").unwrap();
        let mut rows: Vec<(String, Option<String>, i64, i64)> = (0..out.num_rows())
            .map(|i| {
                let s = column::<StringArray>(&out, "symbol").unwrap();
                (
                    column::<StringArray>(&out, "cause").unwrap().value(i).to_string(),
                    s.is_valid(i).then(|| s.value(i).to_string()),
                    column::<Int64Array>(&out, "n").unwrap().value(i),
                    column::<TimestampMicrosecondArray>(&out, "ts").unwrap().value(i),
                )
            })
            .collect();
        rows.sort();
        assert_eq!(
            rows,
            [
                ("evicted_capacity".into(), Some("AAPL".into()), 1, 40),
                ("new_key".into(), None, 1, 20),
                ("new_key".into(), Some("AAPL".into()), 3, 10),
            ]
        );
        assert!(column::<StringArray>(&out, "host").unwrap().iter().all(|h| h == Some("web-1")));
    }
}
