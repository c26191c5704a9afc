//! What an ingest run reports: each file's status and counts, and the totals.

use serde::Serialize;

/// What happened to one file.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct FileReport {
    pub path: String,
    pub file_id: Option<String>,
    pub format: Option<String>,
    pub lines: u64,
    pub events: u64,
    pub quarantined: u64,
    pub bytes: u64,
    pub status: FileStatus,
}

/// Where a file stands after a pass (serialized and shown as its words).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub enum FileStatus {
    #[default]
    #[serde(rename = "read")]
    Read,
    #[serde(rename = "up to date")]
    UpToDate,
    #[serde(rename = "rewritten; read again from the start")]
    Rewritten,
    #[serde(rename = "waiting for a first line")]
    WaitingForFirstLine,
    #[serde(rename = "incomplete compressed archive (still being written?); read when complete")]
    Incomplete,
    #[serde(rename = "replaced while being opened; read on the next pass")]
    Replaced,
    #[serde(rename = "vanished")]
    Vanished,
    #[serde(rename = "no known format")]
    NoKnownFormat,
    #[serde(rename = "not a regular file (a directory, pipe or device)")]
    NotAFile,
    #[serde(rename = "stopped (test)")]
    Stopped,
}

impl FileStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FileStatus::Read => "read",
            FileStatus::UpToDate => "up to date",
            FileStatus::Rewritten => "rewritten; read again from the start",
            FileStatus::WaitingForFirstLine => "waiting for a first line",
            FileStatus::Incomplete => "incomplete compressed archive (still being written?); read when complete",
            FileStatus::Replaced => "replaced while being opened; read on the next pass",
            FileStatus::Vanished => "vanished",
            FileStatus::NoKnownFormat => "no known format",
            FileStatus::NotAFile => "not a regular file (a directory, pipe or device)",
            FileStatus::Stopped => "stopped (test)",
        }
    }

    /// Everything the file holds so far was read, as expected (a rewritten file was read,
    /// but its lines are counted again: worth a look).
    pub fn read_through(self) -> bool {
        matches!(self, FileStatus::Read | FileStatus::UpToDate)
    }

    /// Not read now, but the next pass will (nothing is wrong).
    pub fn read_later(self) -> bool {
        matches!(self, FileStatus::WaitingForFirstLine | FileStatus::Incomplete | FileStatus::Replaced)
    }
}

impl std::fmt::Display for FileStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an ingest run did.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct IngestSummary {
    pub files: Vec<FileReport>,
    pub lines: u64,
    pub events: u64,
    pub quarantined: u64,
    pub bytes: u64,
    pub elapsed_s: f64,
}

impl IngestSummary {
    /// The one-line summary for logs and cron mail.
    pub fn line(&self) -> String {
        let rate = if self.elapsed_s > 0.0 { self.lines as f64 / self.elapsed_s } else { 0.0 };
        let mut s = format!(
            "ingested {} lines ({} events, {} quarantined, {:.1} MB) from {} files in {:.2} s ({:.0} lines/s)",
            self.lines,
            self.events,
            self.quarantined,
            self.bytes as f64 / 1e6,
            self.files.len(),
            self.elapsed_s,
            rate
        );
        let odd: Vec<String> = self
            .files
            .iter()
            .filter(|f| !f.status.read_through())
            .map(|f| format!("{}: {}", f.path, f.status))
            .collect();
        if !odd.is_empty() {
            s.push_str("; ");
            s.push_str(&odd.join("; "));
        }
        s
    }
}

/// What was read since the last call of the progress callback (called every chunk, so a
/// progress bar moves within a long transaction).
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pub bytes: u64,
    pub lines: u64,
}

impl IngestSummary {
    /// Counts a file's report in.
    pub(crate) fn add(&mut self, r: FileReport) {
        self.lines += r.lines;
        self.events += r.events;
        self.quarantined += r.quarantined;
        self.bytes += r.bytes;
        self.files.push(r);
    }
}
