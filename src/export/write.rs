//! Writing one exported file so that readers only ever see a whole one: the batch goes to a
//! hidden temporary file beside the target (`.part-0.parquet.<pid>.tmp`, which no `*.parquet`
//! glob matches), is synced, then renamed over the target (atomic within a file system), and
//! the directory synced. Temporary files a killed export left behind are removed first.

use std::fs::File;
use std::path::Path;

use arrow::array::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::ExportError;

/// Rows per row group: DuckDB's guide asks for 100K-1M rows per row group (its parallelism is
/// per row group); a host's day of misses usually fits one.
pub const ROW_GROUP_ROWS: usize = 1_000_000;

/// Writes `batch` to `path`, replacing it atomically; returns the file's size.
pub fn replace(path: &Path, batch: &RecordBatch) -> Result<u64, ExportError> {
    let err = |source: crate::BoxError| ExportError::Write { path: path.to_path_buf(), source };
    let dir = path.parent().ok_or_else(|| err("no parent directory".into()))?;
    std::fs::create_dir_all(dir).map_err(|e| err(e.into()))?;
    let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| err("not a file name".into()))?;
    // Left by an export that was killed: never visible, removed now.
    for entry in std::fs::read_dir(dir).map_err(|e| err(e.into()))?.flatten() {
        let n = entry.file_name();
        let n = n.to_string_lossy();
        if n.starts_with(&format!(".{name}.")) && n.ends_with(".tmp") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| -> Result<u64, crate::BoxError> {
        let file = File::create(&tmp)?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .build();
        let mut w = ArrowWriter::try_new(file, batch.schema(), Some(props))?;
        w.write(batch)?;
        let file = w.into_inner()?;
        file.sync_all()?;
        let bytes = file.metadata()?.len();
        std::fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()?;
        Ok(bytes)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(err)
}
