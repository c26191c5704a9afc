//! Cache files: Parquet with ZSTD, named `<cache_dir>/<feature_set>/<key>.parquet.zst`, the
//! footer's key-value metadata carrying every field of the key (so the manifest can be rebuilt
//! from the files alone). Written atomically: a hidden temp file, fsync, rename, fsync of the
//! directory. The write path goes through [`DiskFaults`], where a simulated full disk returns
//! the very `io::Error` the OS gives (raw OS error 28, ENOSPC).

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arrow::array::RecordBatch;
use chrono::NaiveDateTime;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};

use super::clock::{fmt_ts, parse_ts};
use super::key::CacheKey;

/// Extension of every cache file (the runbook's `find -name "*.parquet.zst"` matches it).
pub const EXTENSION: &str = ".parquet.zst";
const META_PREFIX: &str = "cachescope.";
const FORMAT_VERSION: &str = "1";

/// Failure to write or read a cache file.
#[derive(Debug, thiserror::Error)]
pub enum CacheFileError {
    #[error("writing cache file {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("reading cache file {path}: {source}")]
    Read { path: PathBuf, source: crate::BoxError },
    #[error("cache file {path} holds key {found}, expected {expected}")]
    WrongKey {
        path: PathBuf,
        expected: String,
        found: String,
    },
}

impl CacheFileError {
    /// The OS error behind a failed write, if any (28 is ENOSPC).
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            CacheFileError::Write { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// Faults injected at the file-system boundary.
#[derive(Debug, Default)]
pub struct DiskFaults {
    disk_full: AtomicBool,
}

impl DiskFaults {
    pub fn set_disk_full(&self, on: bool) {
        self.disk_full.store(on, Ordering::SeqCst);
    }
    pub fn disk_full(&self) -> bool {
        self.disk_full.load(Ordering::SeqCst)
    }
}

/// A file whose writes fail with ENOSPC while the disk is "full".
struct GuardedFile {
    file: File,
    faults: Arc<DiskFaults>,
}

impl Write for GuardedFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.faults.disk_full() {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        self.file.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        if self.faults.disk_full() {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        self.file.flush()
    }
}

/// Where the file for `key` lives.
pub fn path_for(cache_dir: &Path, key: &CacheKey) -> PathBuf {
    cache_dir
        .join(&key.feature_set)
        .join(format!("{}{EXTENSION}", key.id()))
}

/// The key fields as footer metadata.
fn metadata(key: &CacheKey, created: NaiveDateTime) -> Vec<KeyValue> {
    [
        ("format_version", FORMAT_VERSION.to_string()),
        ("key", key.id()),
        ("symbol", key.symbol.clone()),
        ("feature_set", key.feature_set.clone()),
        ("config_hash", key.config_hash.clone()),
        ("start", fmt_ts(key.start)),
        ("end", fmt_ts(key.end)),
        ("data_version", key.data_version.clone()),
        ("created", fmt_ts(created)),
    ]
    .into_iter()
    .map(|(k, v)| KeyValue::new(format!("{META_PREFIX}{k}"), v))
    .collect()
}

/// Writes `batches` for `key` atomically; returns the file's size in bytes. On any failure
/// the temp file is removed and nothing appears under the real name.
pub fn write(
    cache_dir: &Path,
    key: &CacheKey,
    batches: &[RecordBatch],
    level: i32,
    created: NaiveDateTime,
    faults: &Arc<DiskFaults>,
) -> Result<u64, CacheFileError> {
    let path = path_for(cache_dir, key);
    let dir = path.parent().expect("cache file has a parent").to_path_buf();
    let tmp = dir.join(format!(".{}{EXTENSION}.tmp-{}", key.id(), std::process::id()));
    let werr = |source: io::Error| CacheFileError::Write {
        path: path.clone(),
        source,
    };
    let result = (|| -> io::Result<u64> {
        std::fs::create_dir_all(&dir)?;
        let file = File::create(&tmp)?;
        let guarded = GuardedFile {
            file,
            faults: faults.clone(),
        };
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(
                ZstdLevel::try_new(level).map_err(io::Error::other)?,
            ))
            .set_key_value_metadata(Some(metadata(key, created)))
            .build();
        let schema = batches
            .first()
            .map(|b| b.schema())
            .ok_or_else(|| io::Error::other("no record batch to write"))?;
        let mut w = ArrowWriter::try_new(guarded, schema, Some(props)).map_err(parquet_io)?;
        for b in batches {
            w.write(b).map_err(parquet_io)?;
        }
        let guarded = w.into_inner().map_err(parquet_io)?;
        guarded.file.sync_all()?;
        let bytes = guarded.file.metadata()?.len();
        drop(guarded);
        std::fs::rename(&tmp, &path)?;
        File::open(&dir)?.sync_all()?;
        Ok(bytes)
    })();
    match result {
        Ok(bytes) => Ok(bytes),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(werr(e))
        }
    }
}

/// Recovers the `io::Error` inside a parquet error, so ENOSPC stays ENOSPC.
fn parquet_io(e: parquet::errors::ParquetError) -> io::Error {
    match e {
        parquet::errors::ParquetError::External(inner) => match inner.downcast::<io::Error>() {
            Ok(ioe) => *ioe,
            Err(other) => io::Error::other(other.to_string()),
        },
        other => {
            // The arrow writer wraps I/O errors as `General("... os error N ...")` in some paths.
            let msg = other.to_string();
            if let Some(code) = msg
                .split("os error ")
                .nth(1)
                .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|d| d.parse::<i32>().ok())
            {
                io::Error::from_raw_os_error(code)
            } else {
                io::Error::other(msg)
            }
        }
    }
}

/// Reads the file for `key`, refusing it if its footer names another key.
pub fn read(path: &Path, key_id: &str) -> Result<Vec<RecordBatch>, CacheFileError> {
    let rerr = |source: crate::BoxError| CacheFileError::Read {
        path: path.to_path_buf(),
        source,
    };
    let f = File::open(path).map_err(|e| rerr(e.into()))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| rerr(e.into()))?;
    let found = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| {
            kv.iter()
                .find(|e| e.key == "cachescope.key")
                .and_then(|e| e.value.clone())
        })
        .unwrap_or_default();
    if found != key_id {
        return Err(CacheFileError::WrongKey {
            path: path.to_path_buf(),
            expected: key_id.to_string(),
            found,
        });
    }
    let reader = builder.build().map_err(|e| rerr(e.into()))?;
    reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| rerr(e.into()))
}

/// What a footer says about its file.
#[derive(Debug, Clone, PartialEq)]
pub struct FooterInfo {
    pub key: CacheKey,
    pub key_id: String,
    pub created: NaiveDateTime,
    pub bytes: u64,
}

/// Reads only the footer of a cache file.
pub fn read_footer(path: &Path) -> Result<FooterInfo, CacheFileError> {
    let rerr = |source: crate::BoxError| CacheFileError::Read {
        path: path.to_path_buf(),
        source,
    };
    let f = File::open(path).map_err(|e| rerr(e.into()))?;
    let bytes = f.metadata().map_err(|e| rerr(e.into()))?.len();
    let reader = SerializedFileReader::new(f).map_err(|e| rerr(e.into()))?;
    let kv = reader
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .cloned()
        .unwrap_or_default();
    let get = |k: &str| -> Result<String, CacheFileError> {
        kv.iter()
            .find(|e| e.key == format!("{META_PREFIX}{k}"))
            .and_then(|e| e.value.clone())
            .ok_or_else(|| rerr(format!("footer has no `{META_PREFIX}{k}`: not a cachescope cache file").into()))
    };
    let ts = |k: &str| -> Result<NaiveDateTime, CacheFileError> {
        let v = get(k)?;
        parse_ts(&v).ok_or_else(|| rerr(format!("footer `{META_PREFIX}{k}` = `{v}` is not a timestamp").into()))
    };
    let key = CacheKey {
        symbol: get("symbol")?,
        feature_set: get("feature_set")?,
        config_hash: get("config_hash")?,
        start: ts("start")?,
        end: ts("end")?,
        data_version: get("data_version")?,
    };
    let key_id = get("key")?;
    if key.id() != key_id {
        return Err(rerr(format!("footer key {key_id} does not match its fields ({})", key.id()).into()));
    }
    Ok(FooterInfo {
        key,
        key_id,
        created: ts("created")?,
        bytes,
    })
}

/// Every `*.parquet.zst` under `cache_dir` (recursively), and stale temp files separately.
pub fn scan(cache_dir: &Path) -> io::Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let mut files = Vec::new();
    let mut temps = Vec::new();
    let mut stack = vec![cache_dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let rd = match std::fs::read_dir(&d) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for e in rd {
            let e = e?;
            let ft = e.file_type()?;
            let name = e.file_name().to_string_lossy().to_string();
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() && name.starts_with('.') && name.contains(".tmp-") {
                temps.push(e.path());
            } else if ft.is_file() && name.ends_with(EXTENSION) {
                files.push(e.path());
            }
        }
    }
    files.sort();
    temps.sort();
    Ok((files, temps))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::market_data::{MarketData, SyntheticMarketData};

    fn key() -> CacheKey {
        CacheKey {
            symbol: "AAPL".into(),
            feature_set: "returns".into(),
            config_hash: "c".into(),
            start: parse_ts("2026-11-26T09:30:00Z").unwrap(),
            end: parse_ts("2026-11-26T16:00:00Z").unwrap(),
            data_version: "v0".into(),
        }
    }

    #[test]
    fn round_trip_with_footer_and_zstd() {
        let dir = tempfile::tempdir().unwrap();
        let k = key();
        let bars = SyntheticMarketData::new(1).bars("AAPL", k.start, k.end).unwrap();
        let faults = Arc::new(DiskFaults::default());
        let now = parse_ts("2026-11-26T09:31:00Z").unwrap();
        let bytes = write(dir.path(), &k, &[bars.clone()], 3, now, &faults).unwrap();
        let p = path_for(dir.path(), &k);
        assert!(p.to_string_lossy().ends_with(".parquet.zst"));
        assert_eq!(std::fs::metadata(&p).unwrap().len(), bytes);
        assert_eq!(read(&p, &k.id()).unwrap(), vec![bars]);
        let f = read_footer(&p).unwrap();
        assert_eq!(f.key, k);
        assert_eq!(f.created, now);
        let meta = SerializedFileReader::new(File::open(&p).unwrap()).unwrap();
        let col = meta.metadata().row_group(0).column(1).compression();
        assert!(matches!(col, Compression::ZSTD(_)), "{col:?}");
        assert!(matches!(read(&p, "other"), Err(CacheFileError::WrongKey { .. })));
    }

    #[test]
    fn disk_full_gives_enospc_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let k = key();
        let bars = SyntheticMarketData::new(1).bars("AAPL", k.start, k.end).unwrap();
        let faults = Arc::new(DiskFaults::default());
        faults.set_disk_full(true);
        let e = write(dir.path(), &k, &[bars], 3, k.start, &faults).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
        assert!(e.to_string().contains("os error 28"), "{e}");
        let (files, temps) = scan(dir.path()).unwrap();
        assert!(files.is_empty() && temps.is_empty(), "{files:?} {temps:?}");
    }

    #[test]
    fn footer_of_a_foreign_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.parquet.zst");
        std::fs::write(&p, b"not parquet").unwrap();
        assert!(read_footer(&p).is_err());
    }
}
