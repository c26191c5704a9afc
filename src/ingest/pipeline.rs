//! Parsing and appending on two threads: the caller parses lines and builds each chunk's
//! columns while a worker thread, which owns the [`Sink`] for the duration of a file, appends
//! the previous chunk into the open transaction (DuckDB compressing strings is half an
//! ingest's work). Commits are the synchronisation points: the caller sends the checkpoint
//! and waits for the worker's answer, so exactly-once holds as with one thread (rows, names,
//! figures and checkpoint in one transaction). At most one chunk waits between the two, which
//! bounds memory.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use super::checkpoint::FileState;
use super::sink::{Chunk, Sink, Tx};
use super::IngestError;

/// What a checkpoint saved: the file's rows and quarantined lines since its last one, and
/// the transaction, if it was committed.
pub(super) struct Checkpointed {
    pub rows: u64,
    pub quarantined: u64,
    pub tx: Option<Tx>,
}

enum Cmd {
    Append(Chunk),
    /// The file's checkpoint, then (with the names) the commit, or not yet.
    Checkpoint(Box<FileState>, Option<Vec<(i32, String)>>),
}

/// A worker thread appending and committing on a [`Sink`].
pub(super) struct Pipeline {
    to_sink: SyncSender<Cmd>,
    replies: Receiver<Result<Checkpointed, IngestError>>,
    worker: JoinHandle<(Sink, Option<IngestError>)>,
}

impl Pipeline {
    /// Starts the worker, which owns `sink` until [`finish`](Self::finish).
    pub fn start(mut sink: Sink) -> Pipeline {
        let (to_sink, commands) = sync_channel::<Cmd>(0);
        let (answer, replies) = sync_channel(1);
        let worker = std::thread::Builder::new()
            .name("cachescope-append".into())
            .spawn(move || {
                // After a failed append, later chunks are dropped until the commit reports it.
                let mut failed: Option<IngestError> = None;
                for cmd in commands {
                    match cmd {
                        Cmd::Append(chunk) => {
                            if failed.is_none() {
                                failed = sink.append(chunk).err();
                            }
                        }
                        Cmd::Checkpoint(state, names) => {
                            let r = match failed.take() {
                                Some(e) => Err(e),
                                None => sink.checkpoint(&state).and_then(|(rows, quarantined)| {
                                    let tx = names.map(|n| sink.commit(&n)).transpose()?;
                                    Ok(Checkpointed { rows, quarantined, tx })
                                }),
                            };
                            let stop = r.is_err();
                            if answer.send(r).is_err() || stop {
                                break;
                            }
                        }
                    }
                }
                (sink, failed)
            })
            .expect("spawning the append thread");
        Pipeline { to_sink, replies, worker }
    }

    /// Hands a chunk to the worker (waits while it still appends the one before last).
    pub fn append(&self, chunk: Chunk) -> Result<(), IngestError> {
        self.to_sink.send(Cmd::Append(chunk)).map_err(|_| IngestError::AppendThread)
    }

    /// Saves `state` as the file's checkpoint after everything appended so far, then, given
    /// the new `names`, commits; waits.
    pub fn checkpoint(&self, state: &FileState, names: Option<&[(i32, String)]>) -> Result<Checkpointed, IngestError> {
        self.to_sink
            .send(Cmd::Checkpoint(Box::new(state.clone()), names.map(<[_]>::to_vec)))
            .map_err(|_| IngestError::AppendThread)?;
        self.replies.recv().map_err(|_| IngestError::AppendThread)?
    }

    /// Stops the worker and takes the sink back, with an error the worker met after the
    /// last commit (an append that failed), if any.
    pub fn finish(self) -> (Sink, Option<IngestError>) {
        drop(self.to_sink);
        match self.worker.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}
