//! The transaction sink: parsed rows moved into one open DuckDB transaction chunk by chunk
//! (memory stays a few chunks whatever the transaction's size), then committed together with
//! the names they refer to, the per-minute figures and 5-minute evaluations, the
//! classification of its misses ([`super::classify`]), the kept episodes, the file's
//! checkpoint and the record that the derived tables hold every event, or rolled back whole.
//! Nothing is visible before the commit, so a crash anywhere loses or repeats nothing. It
//! runs on the append thread ([`super::pipeline`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use arrow::datatypes::SchemaRef;
use duckdb::types::{TimeUnit, Value};
use duckdb::{params, Connection};

use super::batch::{self, Batch, Finished};
use super::checkpoint::{self, FileState};
use super::{classify, episodes};
use super::minutes::{Agg, MinuteCounts};
use super::{db_error, IngestError};
use crate::queries;

/// One `request_minutes` row's values, in the table's column order.
fn minute_values((minute, feature_set, a): &(i64, Box<str>, Agg)) -> [Value; 9] {
    let ts = |us: i64| Value::Timestamp(TimeUnit::Microsecond, us);
    [
        ts(*minute),
        Value::Text(feature_set.to_string()),
        Value::BigInt(a.hits),
        Value::BigInt(a.misses),
        Value::BigInt(a.hit_bytes),
        Value::BigInt(a.miss_bytes),
        Value::BigInt(a.latency_us),
        ts(a.first_ts),
        ts(a.last_ts),
    ]
}

/// Milliseconds since the last lap (for the commit's debug line).
struct Lap(std::time::Instant);

impl Lap {
    fn new() -> Lap {
        Lap(std::time::Instant::now())
    }

    fn ms(&mut self) -> u64 {
        let ms = self.0.elapsed().as_millis() as u64;
        self.0 = std::time::Instant::now();
        ms
    }
}

/// Up to this many (minute, feature set) rows a commit upserts one by one.
const FEW_MINUTES: usize = 16;

/// How much of a transaction's work is done before its commit (inside the open transaction,
/// so it may be done any number of times), so that memory stays bounded whatever the
/// transaction's size.
#[derive(Debug, Clone, Copy)]
pub struct Steps {
    /// Staged rows that make the classification run: a step's windows stay this small,
    /// within the ingester's memory cap.
    pub classify_rows: u64,
    /// (minute, feature set) rows of figures that are added to `request_minutes`: a
    /// catch-up over months held a row per minute until the commit, then upserted them all
    /// at once (the ingest's peak of memory: 10M lines, 65k rows, +35 MB).
    pub minute_rows: usize,
    /// Rows of `event_rows` the kept episodes are advanced over at once (src/ingest/episodes.rs).
    pub episode_rows: u64,
}

impl Default for Steps {
    fn default() -> Steps {
        Steps { classify_rows: 100_000, minute_rows: 4_096, episode_rows: 500_000 }
    }
}

/// What the open transaction holds so far.
#[derive(Debug, Default)]
pub(super) struct Tx {
    open: bool,
    /// The file being read (for quarantined lines).
    file_id: String,
    path: String,
    pub rows: u64,
    pub quarantined: u64,
    /// Rows and quarantined lines of the file being read since its last checkpoint.
    file_rows: u64,
    file_quarantined: u64,
    /// Events by (event, reason).
    pub counts: HashMap<(crate::vocab::Event, &'static str), u64>,
    /// Requests by minute and feature set, added to `request_minutes` at the commit.
    minutes: MinuteCounts,
    /// Rows in `classify_batch` not yet classified.
    staged: u64,
    /// Whether rows were staged in `classify_batch` in this transaction (to empty at the commit).
    stage_used: bool,
}

/// A chunk of rows ready to append: the columns of both tables, the quarantined lines and
/// the requests' per-minute figures. Built on the parsing thread.
pub(super) struct Chunk {
    finished: Finished,
    errors: Vec<(u64, u64, String, String)>,
    minutes: MinuteCounts,
}

/// The tables' Arrow schemas, made once.
pub(super) struct Schemas {
    event_rows: SchemaRef,
    hit_rows: SchemaRef,
}

impl Default for Schemas {
    fn default() -> Schemas {
        Schemas {
            event_rows: batch::event_rows_schema(),
            hit_rows: batch::hit_rows_schema(),
        }
    }
}

impl Chunk {
    /// The rows gathered in `batch` so far (which starts empty again).
    pub fn take(batch: &mut Batch, schemas: &Schemas) -> Chunk {
        let errors = std::mem::take(&mut batch.errors);
        let minutes = std::mem::take(&mut batch.minutes);
        let finished = batch.finish(&schemas.event_rows, &schemas.hit_rows);
        Chunk { finished, errors, minutes }
    }

    pub fn is_empty(&self) -> bool {
        self.finished.rows == 0 && self.errors.is_empty()
    }
}

/// The ingester's connection and its open transaction.
pub(super) struct Sink {
    conn: Connection,
    db: PathBuf,
    tx: Tx,
    pub steps: Steps,
    /// How often the kept episodes are advanced (`None`: at every commit that staged rows).
    pub episodes_every: Option<std::time::Duration>,
    /// When they were last advanced.
    episodes_advanced: Option<std::time::Instant>,
}

impl Sink {
    pub fn new(conn: Connection, db: &Path) -> Sink {
        Sink {
            conn,
            db: db.to_path_buf(),
            tx: Tx::default(),
            steps: Steps::default(),
            episodes_every: None,
            episodes_advanced: None,
        }
    }

    /// The file the next rows come from (named in quarantined lines).
    pub fn start_file(&mut self, file_id: &str, path: &str) {
        self.tx.file_id = file_id.to_string();
        self.tx.path = path.to_string();
    }

    /// Moves a chunk into the open transaction (opening it). Nothing is visible until
    /// [`commit`](Self::commit).
    pub fn append(&mut self, chunk: Chunk) -> Result<(), IngestError> {
        let Chunk { finished, errors, mut minutes } = chunk;
        if finished.rows == 0 && errors.is_empty() {
            return Ok(());
        }
        self.begin()?;
        let dberr = db_error(&self.db);
        if let Some(record) = &finished.event_rows {
            // The columns the classification reads, staged for the commit's step.
            let staged = record.project(&classify::BATCH_COLUMNS).expect("classify_batch's columns are event_rows'");
            self.tx.staged += staged.num_rows() as u64;
            self.tx.stage_used = true;
            let mut app = self.conn.appender("classify_batch").map_err(dberr)?;
            app.append_record_batch(staged).map_err(dberr)?;
            app.flush().map_err(dberr)?;
        }
        for (table, record) in [("event_rows", finished.event_rows), ("hit_rows", finished.hit_rows)] {
            if let Some(record) = record {
                let mut app = self.conn.appender(table).map_err(dberr)?;
                app.append_record_batch(record).map_err(dberr)?;
                app.flush().map_err(dberr)?;
            }
        }
        if !errors.is_empty() {
            let now = chrono::Utc::now().naive_utc();
            let mut app = self.conn.appender("ingest_errors").map_err(dberr)?;
            for (off, line, pre, err) in &errors {
                app.append_row(params![self.tx.file_id, self.tx.path, *off as i64, *line as i64, pre, err, now])
                    .map_err(dberr)?;
            }
            app.flush().map_err(dberr)?;
        }
        if self.tx.staged >= self.steps.classify_rows {
            self.classify()?;
        }
        self.tx.minutes.merge(&mut minutes);
        if self.tx.minutes.len() >= self.steps.minute_rows {
            self.merge_minutes()?;
        }
        self.tx.rows += finished.rows;
        self.tx.quarantined += errors.len() as u64;
        self.tx.file_rows += finished.rows;
        self.tx.file_quarantined += errors.len() as u64;
        for (k, n) in finished.counts {
            *self.tx.counts.entry(k).or_default() += n;
        }
        Ok(())
    }

    /// Opens the transaction if none is open.
    fn begin(&mut self) -> Result<(), IngestError> {
        if !self.tx.open {
            self.conn.execute_batch("BEGIN TRANSACTION").map_err(db_error(&self.db))?;
            self.tx.open = true;
        }
        Ok(())
    }

    /// Saves the file's `checkpoint` in the open transaction (opening it). Its `events` and
    /// `quarantined` are before the rows appended since its last checkpoint: they are added
    /// here, where they are counted, and returned. Several files' checkpoints may wait for
    /// one [`commit`](Self::commit): a run over many small files commits once.
    pub fn checkpoint(&mut self, checkpoint: &FileState) -> Result<(u64, u64), IngestError> {
        self.begin()?;
        let mut checkpoint = checkpoint.clone();
        checkpoint.events += self.tx.file_rows;
        checkpoint.quarantined += self.tx.file_quarantined;
        checkpoint::save(&self.conn, &self.db, &checkpoint)?;
        Ok((std::mem::take(&mut self.tx.file_rows), std::mem::take(&mut self.tx.file_quarantined)))
    }

    /// Commits what was appended and checkpointed, with the new `names`; returns what the
    /// transaction held. On an error the caller calls [`abort`](Self::abort).
    pub fn commit(&mut self, names: &[(i32, String)]) -> Result<Tx, IngestError> {
        self.begin()?;
        let dberr = db_error(&self.db);
        if !names.is_empty() {
            let mut app = self.conn.appender("ingest_names").map_err(dberr)?;
            for (id, name) in names {
                app.append_row(params![id, name]).map_err(dberr)?;
            }
            app.flush().map_err(dberr)?;
        }
        // Each part timed for `RUST_LOG=cachescope=debug` (what a tailer's commit costs).
        let mut lap = Lap::new();
        self.merge_minutes()?;
        let minutes_ms = lap.ms();
        self.classify()?;
        let classify_ms = lap.ms();
        let (mut late_ms, mut advance_ms) = (0, 0);
        if self.tx.stage_used {
            let dberr = db_error(&self.db);
            episodes::reopen_late(&self.conn).map_err(dberr)?;
            late_ms = lap.ms();
            let due = match (self.episodes_every, self.episodes_advanced) {
                (Some(every), Some(at)) => at.elapsed() >= every,
                _ => true,
            };
            if due {
                episodes::advance_all(&self.conn, self.steps.episode_rows).map_err(dberr)?;
                self.episodes_advanced = Some(std::time::Instant::now());
            }
            classify::done(&self.conn).map_err(dberr)?;
            advance_ms = lap.ms();
        }
        super::derived::record_events(&self.conn).map_err(db_error(&self.db))?;
        self.conn.execute_batch("COMMIT").map_err(db_error(&self.db))?;
        tracing::debug!(
            rows = self.tx.rows,
            minutes_ms,
            classify_ms,
            late_ms,
            advance_ms,
            commit_ms = lap.ms(),
            "committed"
        );
        let file = (self.tx.file_id.clone(), self.tx.path.clone());
        let tx = std::mem::take(&mut self.tx);
        (self.tx.file_id, self.tx.path) = file;
        Ok(tx)
    }

    /// Classifies the staged rows (in the open transaction).
    fn classify(&mut self) -> Result<(), IngestError> {
        if self.tx.staged > 0 {
            classify::step(&self.conn).map_err(db_error(&self.db))?;
            self.tx.staged = 0;
        }
        Ok(())
    }

    /// Adds the per-minute figures gathered since the last merge to `request_minutes` (at
    /// the commit, and before it when they pile up: [`Steps::minute_rows`]): a few rows (a
    /// tailer's commit) one upsert each; more through the stage table, one appender and one
    /// upsert whatever their number (a tailer's commit took ~10 ms more through the stage).
    /// Then recomputes the 5-minute evaluations over the minutes added to (`evaluations_5m`).
    fn merge_minutes(&mut self) -> Result<(), IngestError> {
        if self.tx.minutes.is_empty() {
            return Ok(());
        }
        let dberr = db_error(&self.db);
        let rows = self.tx.minutes.take();
        // The minutes added to (sorted: a minute's feature sets are neighbours), whose
        // evaluations are recomputed after the merge.
        let mut touched: Vec<i64> = rows.iter().map(|r| r.0).collect();
        touched.dedup();
        let minute = |us: i64| Value::Timestamp(TimeUnit::Microsecond, us);
        if rows.len() <= FEW_MINUTES {
            let mut upsert = self.conn.prepare_cached(queries::REQUEST_MINUTES_UPSERT).map_err(dberr)?;
            for row in &rows {
                upsert.execute(minute_values(row)).map_err(dberr)?;
            }
            let mut stage = self.conn.prepare_cached(queries::EVALUATIONS_STAGE).map_err(dberr)?;
            for m in touched {
                stage.execute([minute(m)]).map_err(dberr)?;
            }
        } else {
            let mut app = self.conn.appender("request_minutes_stage").map_err(dberr)?;
            for row in &rows {
                app.append_row(minute_values(row)).map_err(dberr)?;
            }
            app.flush().map_err(dberr)?;
            drop(app);
            self.conn.execute_batch(queries::REQUEST_MINUTES_MERGE).map_err(dberr)?;
            let mut app = self.conn.appender("evaluations_stage").map_err(dberr)?;
            for m in touched {
                app.append_row([minute(m)]).map_err(dberr)?;
            }
            app.flush().map_err(dberr)?;
        }
        self.conn.execute_batch(queries::EVALUATIONS_UPDATE).map_err(dberr)?;
        Ok(())
    }

    /// The connection, for work that runs outside a batch (rebuilding derived tables).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Rolls back the open transaction (if any).
    pub fn abort(&mut self) {
        if self.tx.open {
            let _ = self.conn.execute_batch("ROLLBACK");
            classify::forget(&self.conn);
        }
        self.tx = Tx::default();
    }
}
