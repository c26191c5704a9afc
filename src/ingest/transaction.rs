//! The ingester's transactions: each file's checkpoint saved with its rows, and the commits
//! that make them visible, one per `--batch-lines` of a run's files and at its end (a run
//! over many small files commits them together); a rollback forgets every file of the open
//! transaction and puts their committed checkpoints back.

use std::collections::HashMap;

use super::batch::Batch;
use super::checkpoint::FileState;
use super::pipeline::Pipeline;
use super::source::LineReader;
use super::{sink, FileReport, IngestError, Ingester};

/// Checkpoints in the open transaction, not committed yet: a run over many small files
/// commits them once (300 files of 50 lines took 44 s, a commit each, ~150 ms of derived
/// tables' work apiece).
#[derive(Debug, Default)]
pub(super) struct Staged {
    /// `files` as committed, taken at the transaction's first checkpoint: put back if it
    /// rolls back.
    files: Option<HashMap<String, FileState>>,
    lines: u64,
    bytes: u64,
}

impl Ingester {
    /// Commits the waiting checkpoints once they cover `batch_lines`.
    pub(super) fn flush_if_due(&mut self) -> Result<(), IngestError> {
        if self.staged.lines >= self.batch_lines as u64 {
            self.flush()?;
        }
        Ok(())
    }

    /// Commits the checkpoints waiting in the open transaction, if any; on an error nothing
    /// of it lands.
    pub(super) fn flush(&mut self) -> Result<(), IngestError> {
        if self.staged.files.is_none() {
            return Ok(());
        }
        if self.faults.fail_commit_after == Some(self.batches) {
            self.roll_back();
            return Err(IngestError::InjectedFailure);
        }
        let sink = self.sink.as_mut().expect("the sink is back between files");
        match sink.commit(self.names.pending()) {
            Ok(tx) => {
                self.committed_tx(tx);
                Ok(())
            }
            Err(e) => {
                self.roll_back();
                Err(e)
            }
        }
    }

    /// Rolls the open transaction back: its rows, names and checkpoints are forgotten (the
    /// files are read again from their committed checkpoints).
    pub(super) fn roll_back(&mut self) {
        if let Some(sink) = self.sink.as_mut() {
            sink.abort();
        }
        self.names.rolled_back();
        if let Some(files) = self.staged.files.take() {
            self.files = files;
        }
        self.staged = Staged::default();
    }

    /// Takes a commit's work into account; returns whether a test hook says to stop.
    fn committed_tx(&mut self, tx: sink::Tx) -> bool {
        self.names.committed();
        for (k, n) in tx.counts {
            *self.committed.entry(k).or_default() += n;
        }
        let staged = std::mem::take(&mut self.staged);
        self.committed_lines += staged.lines;
        self.committed_bytes += staged.bytes;
        self.committed_quarantined += tx.quarantined;
        self.last_commit = Some(chrono::Utc::now().naive_utc());
        self.batches += 1;
        self.faults.stop_after_batches == Some(self.batches)
    }

    /// Saves the batch and the file's checkpoint in the open transaction and, `now`, commits
    /// it (else the run commits it: [`flush`](Self::flush)). Returns whether a test hook says
    /// to stop as if killed. On an error the caller rolls back.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn commit(
        &mut self,
        pipe: &Pipeline,
        batch: &mut Batch,
        state: &mut FileState,
        reader: &LineReader,
        line_no: u64,
        report: &mut FileReport,
        now: bool,
    ) -> Result<bool, IngestError> {
        self.send_chunk(pipe, batch)?;
        let mut next = state.clone();
        next.offset = reader.position();
        next.line_no = line_no;
        next.tail_hash = reader.tail_hash();
        if now && self.faults.fail_commit_after == Some(self.batches) {
            return Err(IngestError::InjectedFailure);
        }
        let saved = pipe.checkpoint(&next, now.then(|| self.names.pending()))?;
        next.events += saved.rows;
        next.quarantined += saved.quarantined;
        report.lines += line_no - state.line_no;
        report.events += saved.rows;
        report.quarantined += saved.quarantined;
        self.staged.files.get_or_insert_with(|| self.files.clone());
        self.staged.lines += line_no - state.line_no;
        self.staged.bytes += next.offset - state.offset;
        *state = next;
        self.files.insert(state.file_id.clone(), state.clone());
        Ok(saved.tx.is_some_and(|tx| self.committed_tx(tx)))
    }
}
