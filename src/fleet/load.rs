//! Loading one exported Parquet file into the fleet's in-memory table of its kind (`fleet_*`,
//! queries/fleet_schema.sql): read with the `parquet` crate (the bundled DuckDB has no Parquet
//! extension), checked against the export's schema (docs/export.md; by column name, so a file
//! rewritten by another engine with its columns in another order still reads), prefixed with
//! the host of its partition, and appended as Arrow batches. A report reads the misses'
//! counts, not their lines: it reads only the columns it needs ([`MISSES_COUNTED`]; the others
//! load as NULL), which is most of a `misses` file's bytes left on disk.

use std::fs::File;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, RecordBatch, StringArray, TimestampMicrosecondArray};
use chrono::NaiveDateTime;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use duckdb::Connection;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;

use super::discover::Part;
use super::tally::{self, Tally};
use super::FleetError;
use crate::export::tables;

/// The columns of a `misses` file a report reads (causes by symbol and host; the others,
/// the log lines and their keys, only an incident's evidence needs).
pub const MISSES_COUNTED: [&str; 3] = ["ts", "symbol", "cause"];

/// The export's schema of `table`, and the fleet table it loads into.
fn target(table: &str) -> (SchemaRef, &'static str) {
    match table {
        tables::MINUTES => (tables::minutes_schema(), "fleet_minutes"),
        tables::MISSES => (tables::misses_schema(), "fleet_misses"),
        _ => (tables::episodes_schema(), "fleet_episodes"),
    }
}

/// Whether a file's column type is the export's (list item names differ between writers).
fn same_type(file: &DataType, want: &DataType) -> bool {
    match (file, want) {
        (DataType::List(a) | DataType::LargeList(a), DataType::List(b)) => same_type(a.data_type(), b.data_type()),
        (DataType::LargeUtf8 | DataType::Utf8View, DataType::Utf8) => true,
        _ => file == want,
    }
}

/// What of a file to load.
pub struct Slice {
    /// The misses with their log lines (else only [`MISSES_COUNTED`] of a `misses` file).
    pub lines: bool,
    /// Only the misses of `[from, until)`.
    pub during: Option<(NaiveDateTime, NaiveDateTime)>,
}

impl Slice {
    /// Whether `part` is a day of misses a report counts rather than lists: read without its
    /// lines, and wholly inside the period.
    fn counts_whole_day(&self, part: &Part) -> bool {
        let day = part.day.and_hms_opt(0, 0, 0).expect("midnight");
        !self.lines && part.table == tables::MISSES && self.during.is_some_and(|(from, until)| from <= day && day + chrono::Duration::days(1) <= until)
    }
}

/// Appends `part`'s rows (of `slice`) to its fleet table; returns how many rows of the file
/// it took (after the period's filter; a tally appends fewer).
pub fn load(conn: &Connection, part: &Part, slice: &Slice) -> Result<u64, FleetError> {
    let lines = slice.lines;
    let parquet_err = |source: parquet::errors::ParquetError| FleetError::Parquet { path: part.path.clone(), source: source.into() };
    let file = File::open(&part.path).map_err(|source| FleetError::Read { path: part.path.clone(), source })?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file).map_err(parquet_err)?;
    let (want, table) = target(part.table);
    let have = reader.schema().clone();
    // Where each of the export's columns is in the file.
    let mut at = Vec::with_capacity(want.fields().len());
    for f in want.fields() {
        match have.index_of(f.name()) {
            Ok(i) if same_type(have.field(i).data_type(), f.data_type()) => at.push(i),
            Ok(i) => {
                return Err(FleetError::Schema {
                    path: part.path.clone(),
                    problem: format!("column `{}` is {}, not {} as `cachescope export` writes it", f.name(), have.field(i).data_type(), f.data_type()),
                })
            }
            Err(_) => {
                return Err(FleetError::Schema {
                    path: part.path.clone(),
                    problem: format!("no column `{}` (a `{}` file has {})", f.name(), part.table, names(&want)),
                })
            }
        }
    }
    let read = |name: &str| lines || part.table != tables::MISSES || MISSES_COUNTED.contains(&name);
    let mut roots: Vec<usize> = want.fields().iter().zip(&at).filter(|(f, _)| read(f.name())).map(|(_, &i)| i).collect();
    roots.sort_unstable();
    let mask = ProjectionMask::roots(reader.parquet_schema(), roots);
    // Only the columns read are appended (the others are NULL): appending a column costs a
    // call per value, NULL or not.
    let wanted: Vec<&Arc<Field>> = want.fields().iter().filter(|f| read(f.name())).collect();
    let read_schema = Arc::new(Schema::new(wanted.iter().map(|f| Arc::clone(f)).collect::<Vec<_>>()));
    let mut fields = vec![Arc::new(Field::new("host", DataType::Utf8, false))];
    fields.extend(read_schema.fields().iter().cloned());
    let schema = Arc::new(Schema::new(fields));
    let arrow_err = |e: arrow::error::ArrowError| FleetError::Parquet { path: part.path.clone(), source: e.into() };
    let load_err = |source: duckdb::Error| FleetError::Load { path: part.path.clone(), source };
    // A report's whole day of misses is counted before it is appended (and needs no filter:
    // every row of the day is in the period).
    let mut tally = slice.counts_whole_day(part).then(Tally::default);
    let during_period = slice.during.filter(|_| part.table == tables::MISSES && tally.is_none());
    let names: Vec<&str> = match tally {
        Some(_) => tally::COLUMNS.to_vec(),
        None => schema.fields().iter().map(|f| f.name().as_str()).collect(),
    };
    let mut appender = conn.appender_with_columns(table, &names).map_err(load_err)?;
    let mut rows = 0u64;
    for batch in reader.with_projection(mask).build().map_err(parquet_err)? {
        let mut batch = batch.map_err(arrow_err)?;
        if let Some((from, until)) = during_period {
            batch = during(&batch, from, until).map_err(arrow_err)?;
        }
        let n = batch.num_rows();
        // The export's columns, in its order and types.
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(wanted.len() + 1);
        for f in &wanted {
            let c = batch.column_by_name(f.name()).ok_or_else(|| FleetError::Schema { path: part.path.clone(), problem: format!("no column `{}`", f.name()) })?;
            columns.push(if c.data_type() == f.data_type() { c.clone() } else { arrow::compute::cast(c, f.data_type()).map_err(arrow_err)? });
        }
        match tally.as_mut() {
            Some(t) => t.add(&RecordBatch::try_new(read_schema.clone(), columns).map_err(arrow_err)?).map_err(arrow_err)?,
            None => {
                columns.insert(0, Arc::new(StringArray::from_iter_values(std::iter::repeat_n(part.host.as_str(), n))));
                let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| FleetError::Schema { path: part.path.clone(), problem: e.to_string() })?;
                appender.append_record_batch(batch).map_err(load_err)?;
            }
        }
        rows += n as u64;
    }
    if let Some(t) = tally {
        appender.append_record_batch(t.batch(&part.host).map_err(arrow_err)?).map_err(load_err)?;
    }
    appender.flush().map_err(load_err)?;
    Ok(rows)
}

/// The rows of a `misses` batch whose `ts` is in `[from, until)`.
fn during(batch: &RecordBatch, from: NaiveDateTime, until: NaiveDateTime) -> Result<RecordBatch, arrow::error::ArrowError> {
    let (lo, hi) = (from.and_utc().timestamp_micros(), until.and_utc().timestamp_micros());
    let ts = batch
        .column_by_name("ts")
        .and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>())
        .ok_or_else(|| arrow::error::ArrowError::SchemaError("no `ts` column of microseconds".into()))?;
    let keep: BooleanArray = ts.iter().map(|t| Some(t.is_some_and(|t| t >= lo && t < hi))).collect();
    arrow::compute::filter_record_batch(batch, &keep)
}

fn names(s: &Schema) -> String {
    s.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fleet's tables (queries/fleet_schema.sql) repeat the export's schemas as DDL: the
    /// same columns in the same order, after the host (and before a tally's count).
    #[test]
    fn the_fleet_tables_are_the_exported_tables_with_their_host() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(crate::queries::FLEET_SCHEMA).unwrap();
        for table in crate::export::TABLES {
            let (schema, fleet_table) = target(table);
            let mut st = conn.prepare("SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position").unwrap();
            let cols: Vec<String> = st.query_map([fleet_table], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
            let mut want: Vec<String> = std::iter::once("host".to_string()).chain(schema.fields().iter().map(|f| f.name().clone())).collect();
            if fleet_table == "fleet_misses" {
                want.push("n".into());
            }
            assert_eq!(cols, want, "{fleet_table}");
        }
    }
}
