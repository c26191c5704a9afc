//! Files as the ingester sees them: plain or compressed (gzip, zstd, told by their magic
//! bytes), identified by a fingerprint of their first line (the same in a live file, its
//! renamed copy and its compressed archive), read line by line with byte offsets, bounded
//! memory for any line length, and partial last lines left for later.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Longest line kept; longer lines are quarantined (their first bytes kept).
pub const MAX_LINE: usize = 1 << 20;
/// Bytes of a file read to find its first line.
const FINGERPRINT_WINDOW: usize = 8192;
/// Bytes before the checkpoint whose hash detects a rewritten file.
pub const TAIL_WINDOW: usize = 64;

/// How a file is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// Opens `path`'s content (decompressed), telling the compression from the magic bytes.
pub fn open(path: &Path) -> io::Result<(Box<dyn BufRead + Send>, Compression, File)> {
    let mut f = File::open(path)?;
    let mut magic = [0u8; 4];
    let n = read_full(&mut f, &mut magic)?;
    f.seek(SeekFrom::Start(0))?;
    let keep = f.try_clone()?;
    let c = if n >= 2 && magic[..2] == [0x1f, 0x8b] {
        Compression::Gzip
    } else if n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
        Compression::Zstd
    } else {
        Compression::None
    };
    let r: Box<dyn BufRead + Send> = match c {
        Compression::None => Box::new(BufReader::with_capacity(1 << 20, f)),
        Compression::Gzip => Box::new(BufReader::with_capacity(1 << 20, flate2::read::MultiGzDecoder::new(BufReader::new(f)))),
        Compression::Zstd => Box::new(BufReader::with_capacity(1 << 20, zstd::Decoder::new(f)?)),
    };
    Ok((r, c, keep))
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A file's identity: the hash of its first line (or of its first 8 KiB when that holds no
/// newline). `None` while the file has neither a complete first line nor 8 KiB.
pub fn fingerprint(path: &Path) -> io::Result<Option<String>> {
    fingerprint_of(path).map(|(fp, _)| fp)
}

/// [`fingerprint`] with the (device, inode, size, mtime in ns) of the very file it was read
/// from: a rotator may put another file under the same name at any moment.
pub fn fingerprint_of(path: &Path) -> io::Result<(Option<String>, (u64, u64, u64, i128))> {
    let (mut r, c, file) = open(path)?;
    let m = file.metadata()?;
    let stamp = (m.dev(), m.ino(), m.len(), m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128);
    Ok((first_line_hash(&mut r, c)?, stamp))
}

fn first_line_hash(r: &mut impl Read, c: Compression) -> io::Result<Option<String>> {
    let mut buf = vec![0u8; FINGERPRINT_WINDOW];
    let n = read_full(r, &mut buf)?;
    let head = &buf[..n];
    let first = match head.iter().position(|&b| b == b'\n') {
        Some(i) => &head[..=i],
        None if n == FINGERPRINT_WINDOW => head,
        // A compressed archive is complete: its only line is its identity.
        None if c != Compression::None && n > 0 => head,
        None => return Ok(None),
    };
    Ok(Some(hash(first)))
}

/// 16 hex digits of SHA-256.
pub fn hash(bytes: &[u8]) -> String {
    hex::encode(&Sha256::digest(bytes)[..8])
}

/// Device and inode of a path.
pub fn dev_inode(f: &File) -> (u64, u64) {
    f.metadata().map(|m| (m.dev(), m.ino())).unwrap_or((0, 0))
}

/// One line read from a file.
#[derive(Debug)]
pub enum Item<'a> {
    /// A complete line (without its newline) starting at `offset`.
    Line { offset: u64, bytes: &'a [u8] },
    /// A line longer than [`MAX_LINE`]: its first bytes, and where it started.
    TooLong { offset: u64, prefix: &'a [u8], len: u64 },
}

/// Reads lines from a position, tracking offsets and the bytes before the position.
pub struct LineReader {
    inner: Box<dyn BufRead + Send>,
    /// Offset of the next unread byte of content.
    pos: u64,
    line: Vec<u8>,
    /// Whether an unterminated last line counts (compressed archives are complete).
    eof_terminates: bool,
    /// The last bytes consumed (for the rewrite check).
    tail: Vec<u8>,
    /// Bytes of the reader's buffer handed out as the last line, consumed on the next call.
    consume_next: usize,
}

/// A file opened at an offset by [`LineReader::at`].
pub struct Opened {
    pub reader: LineReader,
    /// Hash of the `TAIL_WINDOW` bytes before the offset; `None` if the content is shorter.
    pub tail_hash: Option<String>,
    /// Device and inode of the file actually opened.
    pub file: (u64, u64),
}

impl LineReader {
    /// Skips to `offset` (seeking plain files, decompressing others).
    pub fn at(path: &Path, offset: u64) -> io::Result<Opened> {
        let (mut r, c, file) = open(path)?;
        let id = dev_inode(&file);
        let size = file.metadata()?.len();
        let back = offset.min(TAIL_WINDOW as u64);
        let mut tail = vec![0u8; back as usize];
        if c == Compression::None {
            drop(r);
            let mut f = file.try_clone()?;
            if offset > size {
                return Ok(Opened { reader: LineReader::new(Box::new(BufReader::new(io::empty())), offset, false), tail_hash: None, file: id });
            }
            f.seek(SeekFrom::Start(offset - back))?;
            let got = read_full(&mut f, &mut tail)?;
            if got < back as usize {
                return Ok(Opened { reader: LineReader::new(Box::new(BufReader::new(io::empty())), offset, false), tail_hash: None, file: id });
            }
            let r = Box::new(BufReader::with_capacity(1 << 20, f));
            let mut lr = LineReader::new(r, offset, false);
            lr.tail = tail.clone();
            return Ok(Opened { reader: lr, tail_hash: Some(hash(&tail)), file: id });
        }
        // Compressed: decompress and discard up to the offset.
        let skip = offset - back;
        let copied = io::copy(&mut (&mut r).take(skip), &mut io::sink())?;
        let got = read_full(&mut r, &mut tail)?;
        if copied < skip || got < back as usize {
            return Ok(Opened { reader: LineReader::new(Box::new(BufReader::new(io::empty())), offset, true), tail_hash: None, file: id });
        }
        let mut lr = LineReader::new(r, offset, true);
        lr.tail = tail.clone();
        Ok(Opened { reader: lr, tail_hash: Some(hash(&tail)), file: id })
    }

    fn new(inner: Box<dyn BufRead + Send>, pos: u64, eof_terminates: bool) -> LineReader {
        LineReader {
            inner,
            pos,
            line: Vec::with_capacity(4096),
            eof_terminates,
            tail: Vec::new(),
            consume_next: 0,
        }
    }

    /// Offset just past the last complete line returned.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Hash of the bytes before [`position`](Self::position).
    pub fn tail_hash(&self) -> String {
        hash(&self.tail)
    }

    fn remember_tail(&mut self, consumed: &[u8]) {
        if consumed.len() >= TAIL_WINDOW {
            self.tail.clear();
            self.tail.extend_from_slice(&consumed[consumed.len() - TAIL_WINDOW..]);
        } else {
            self.tail.extend_from_slice(consumed);
            if self.tail.len() > TAIL_WINDOW {
                let cut = self.tail.len() - TAIL_WINDOW;
                self.tail.drain(..cut);
            }
        }
    }

    /// The next line, `None` at the end of the complete lines (a partial last line of a
    /// plain file stays unread until its newline arrives).
    pub fn next_item(&mut self) -> io::Result<Option<Item<'_>>> {
        if self.consume_next > 0 {
            self.inner.consume(std::mem::take(&mut self.consume_next));
        }
        // Fast path: a whole line of at least TAIL_WINDOW bytes in the buffer is handed out
        // where it lies, without a copy.
        let whole = match self.inner.fill_buf() {
            Ok(buf) => memchr::memchr(b'\n', buf).filter(|&i| i + 1 >= TAIL_WINDOW && i <= MAX_LINE),
            Err(_) => None, // the general path below reports or retries it
        };
        if let Some(i) = whole {
            let buf = self.inner.fill_buf()?; // the same buffered bytes, no I/O
            self.tail.clear();
            self.tail.extend_from_slice(&buf[i + 1 - TAIL_WINDOW..=i]);
            let start = self.pos;
            self.pos += (i + 1) as u64;
            self.consume_next = i + 1;
            let end = if i > 0 && buf[i - 1] == b'\r' { i - 1 } else { i };
            return Ok(Some(Item::Line { offset: start, bytes: &buf[..end] }));
        }
        self.line.clear();
        let start = self.pos;
        let mut total: u64 = 0;
        let mut too_long = false;
        let mut pending: Vec<u8> = Vec::with_capacity(2 * TAIL_WINDOW);
        loop {
            let buf = match self.inner.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buf.is_empty() {
                // End of the content.
                if total == 0 {
                    return Ok(None);
                }
                if !self.eof_terminates {
                    // Partial line: not consumed; the caller stops here. Since the bytes were
                    // consumed from the reader, this reader must not be used further.
                    self.pos = start;
                    return Ok(None);
                }
                self.pos = start + total;
                self.remember_tail(&pending);
                return Ok(Some(if too_long {
                    Item::TooLong { offset: start, prefix: &self.line[..], len: total }
                } else {
                    Item::Line { offset: start, bytes: &self.line[..] }
                }));
            }
            let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (&buf[..=i], true),
                None => (buf, false),
            };
            let n = chunk.len();
            if !too_long {
                let room = MAX_LINE + 1 - self.line.len().min(MAX_LINE + 1);
                self.line.extend_from_slice(&chunk[..n.min(room)]);
                if self.line.len() > MAX_LINE {
                    too_long = true;
                    self.line.truncate(512);
                }
            }
            // The last bytes of the line, for the rewrite check (also for lines not kept whole).
            pending.extend_from_slice(&chunk[n.saturating_sub(TAIL_WINDOW)..]);
            if pending.len() > TAIL_WINDOW {
                pending.drain(..pending.len() - TAIL_WINDOW);
            }
            self.inner.consume(n);
            total += n as u64;
            if done {
                self.pos = start + total;
                self.remember_tail(&pending);
                if !too_long {
                    self.line.pop(); // the newline
                    if self.line.last() == Some(&b'\r') {
                        self.line.pop();
                    }
                    return Ok(Some(Item::Line { offset: start, bytes: &self.line[..] }));
                }
                return Ok(Some(Item::TooLong { offset: start, prefix: &self.line[..], len: total }));
            }
        }
    }
}

/// The archives rotators leave beside `path`, oldest first:
/// - numbered (logrotate's default, Python's `RotatingFileHandler`): `NAME.1`, `NAME.2.gz`,
///   `NAME.3.zst`, the highest number first;
/// - dated (logrotate's `dateext`: `NAME-YYYYMMDD`, `NAME-YYYYMMDDHH`, `NAME-YYYYMMDD-EPOCH`;
///   Python's `TimedRotatingFileHandler`: `NAME.YYYY-MM-DD`, `NAME.YYYY-MM-DD_HH`,
///   `NAME.YYYY-MM-DD_HH-MM`, `NAME.YYYY-MM-DD_HH-MM-SS`), with or without `.gz`/`.zst`,
///   in the order of their dates.
///
/// Other names can be given as globs ([`glob_archives`]).
pub fn rotated_siblings(path: &Path) -> io::Result<Vec<PathBuf>> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Ok(vec![]);
    };
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let mut numbered: Vec<(u64, PathBuf)> = Vec::new();
    let mut dated: Vec<(String, PathBuf)> = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let Some(other) = e.file_name().to_str().map(String::from) else { continue };
        let Some(rest) = other.strip_prefix(name) else { continue };
        let stem = rest.strip_suffix(".gz").or_else(|| rest.strip_suffix(".zst")).unwrap_or(rest);
        // logrotate renames an archive whose name it needs again to `NAME-DATE.backup`.
        let stem = stem.strip_suffix(".backup").unwrap_or(stem);
        let kind = match archive_suffix(stem) {
            Some(k) => k,
            None => continue,
        };
        if !e.file_type()?.is_file() {
            continue;
        }
        match kind {
            Suffix::Number(n) => numbered.push((n, e.path())),
            Suffix::Date(d) => dated.push((d, e.path())),
        }
    }
    numbered.sort_by(|a, b| b.0.cmp(&a.0));
    dated.sort();
    Ok(numbered.into_iter().map(|x| x.1).chain(dated.into_iter().map(|x| x.1)).collect())
}

enum Suffix {
    Number(u64),
    /// The date's digits, comparable as text.
    Date(String),
}

/// What follows a log's name in an archive's name (compression suffix removed).
fn archive_suffix(rest: &str) -> Option<Suffix> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(n) = rest.strip_prefix('.').filter(|n| digits(n)) {
        return n.parse().ok().map(Suffix::Number);
    }
    // logrotate dateext: -YYYYMMDD, -YYYYMMDDHH, -YYYYMMDD-EPOCH (dateformat -%Y%m%d-%s).
    if let Some(d) = rest.strip_prefix('-') {
        let mut parts = d.split('-');
        let date = parts.next()?;
        let epoch = parts.next();
        if parts.next().is_none() && digits(date) && (date.len() == 8 || date.len() == 10) && epoch.is_none_or(digits) {
            return Some(Suffix::Date(format!("{date:0<14}{:0>20}", epoch.unwrap_or(""))));
        }
        return None;
    }
    // TimedRotatingFileHandler: .YYYY-MM-DD, then optionally _HH, _HH-MM, _HH-MM-SS.
    let d = rest.strip_prefix('.')?;
    let (day, time) = d.split_once('_').map_or((d, None), |(a, b)| (a, Some(b)));
    let day_ok = day.len() == 10 && day.split('-').map(str::len).eq([4, 2, 2]) && day.split('-').all(digits);
    let time_ok = time.is_none_or(|t| {
        let p: Vec<&str> = t.split('-').collect();
        (1..=3).contains(&p.len()) && p.iter().all(|x| x.len() == 2 && digits(x))
    });
    (day_ok && time_ok).then(|| Suffix::Date(format!("{:0<14}{:0>20}", d.replace(['-', '_'], ""), "")))
}

/// The files matched by the user's archive globs (`--archives`), oldest first (by
/// modification time, then name). A pattern that is not a valid glob is an error.
pub fn glob_archives(patterns: &[String]) -> Result<Vec<PathBuf>, glob::PatternError> {
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
    for p in patterns {
        for entry in glob::glob(p)?.flatten() {
            if let Ok(m) = std::fs::metadata(&entry) {
                if m.is_file() && !found.iter().any(|(_, f)| *f == entry) {
                    found.push((m.modified().unwrap_or(std::time::UNIX_EPOCH), entry));
                }
            }
        }
    }
    found.sort();
    Ok(found.into_iter().map(|x| x.1).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn lines(path: &Path, from: u64) -> Vec<(u64, String)> {
        let mut r = LineReader::at(path, from).unwrap().reader;
        let mut out = vec![];
        while let Some(item) = r.next_item().unwrap() {
            match item {
                Item::Line { offset, bytes } => out.push((offset, String::from_utf8_lossy(bytes).to_string())),
                Item::TooLong { offset, len, .. } => out.push((offset, format!("<too long {len}>"))),
            }
        }
        out
    }

    #[test]
    fn partial_lines_wait_in_plain_files() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.log");
        std::fs::write(&p, "one\ntwo\nthr").unwrap();
        assert_eq!(lines(&p, 0), vec![(0, "one".into()), (4, "two".into())]);
        let mut r = LineReader::at(&p, 0).unwrap().reader;
        while r.next_item().unwrap().is_some() {}
        assert_eq!(r.position(), 8);
        std::fs::OpenOptions::new().append(true).open(&p).unwrap().write_all(b"ee\n").unwrap();
        assert_eq!(lines(&p, 8), vec![(8, "three".into())]);
    }

    #[test]
    fn compressed_archives_read_the_same_with_offsets_and_fingerprints() {
        let d = tempfile::tempdir().unwrap();
        let body = "first line\nsecond\nthird no newline";
        let plain = d.path().join("x.log.1");
        std::fs::write(&plain, body).unwrap();
        let zst = d.path().join("x.log.2.zst");
        std::fs::write(&zst, zstd::encode_all(body.as_bytes(), 3).unwrap()).unwrap();
        let gz = d.path().join("x.log.3.gz");
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(body.as_bytes()).unwrap();
        std::fs::write(&gz, e.finish().unwrap()).unwrap();
        let fp = fingerprint(&plain).unwrap().unwrap();
        assert_eq!(fingerprint(&zst).unwrap().unwrap(), fp);
        assert_eq!(fingerprint(&gz).unwrap().unwrap(), fp);
        assert_eq!(lines(&zst, 11), vec![(11, "second".into()), (18, "third no newline".into())]);
        assert_eq!(lines(&gz, 11), lines(&zst, 11));
        assert_eq!(lines(&plain, 11), vec![(11, "second".into())]);
        let tail_plain = LineReader::at(&plain, 18).unwrap().tail_hash;
        let tail_zst = LineReader::at(&zst, 18).unwrap().tail_hash;
        assert_eq!(tail_plain, tail_zst);
        assert_eq!(rotated_siblings(&d.path().join("x.log")).unwrap(), vec![gz, zst, plain]);
    }

    #[test]
    fn the_common_rotators_archive_names_are_found_in_date_order() {
        let d = tempfile::tempdir().unwrap();
        let names = [
            // logrotate dateext, with dateformat -%Y%m%d-%s, -%Y%m%d%H and the default.
            "app.log-20261129-1764460800.zst",
            "app.log-20261130-1764547200.gz",
            "app.log-20261128",
            "app.log-2026112810",
            "app.log-2026112811.backup",
            // Python's TimedRotatingFileHandler.
            "app.log.2026-11-27",
            "app.log.2026-11-27_13",
            "app.log.2026-11-27_13-05",
            "app.log.2026-11-27_13-05-09",
            // numbered
            "app.log.1",
            "app.log.12.gz",
            // not archives of app.log
            "app.log",
            "app.log.bak",
            "app.log-old",
            "app.log.2026-1-27",
            "app.log-2026113",
            "app.logger.1",
            "other.log.1",
        ];
        for n in names {
            std::fs::write(d.path().join(n), "x\n").unwrap();
        }
        let got: Vec<String> = rotated_siblings(&d.path().join("app.log"))
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
            .collect();
        assert_eq!(
            got,
            [
                "app.log.12.gz",
                "app.log.1",
                "app.log.2026-11-27",
                "app.log.2026-11-27_13",
                "app.log.2026-11-27_13-05",
                "app.log.2026-11-27_13-05-09",
                "app.log-20261128",
                "app.log-2026112810",
            "app.log-2026112811.backup",
                "app.log-20261129-1764460800.zst",
                "app.log-20261130-1764547200.gz",
            ]
        );
        let globbed = glob_archives(&[format!("{}/*.bak", d.path().display()), format!("{}/app.log-old", d.path().display())]).unwrap();
        assert_eq!(globbed.len(), 2);
        assert!(glob_archives(&["[".into()]).is_err());
    }

    #[test]
    fn overlong_lines_are_cut_and_reading_goes_on() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.log");
        let mut body = vec![b'x'; MAX_LINE + 10];
        body.extend_from_slice(b"\nnext\n");
        std::fs::write(&p, &body).unwrap();
        let got = lines(&p, 0);
        assert_eq!(got[0], (0, format!("<too long {}>", MAX_LINE + 11)));
        assert_eq!(got[1], ((MAX_LINE + 11) as u64, "next".to_string()));
    }

    #[test]
    fn no_fingerprint_until_a_first_line_exists() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.log");
        std::fs::write(&p, "").unwrap();
        assert_eq!(fingerprint(&p).unwrap(), None);
        std::fs::write(&p, "partial").unwrap();
        assert_eq!(fingerprint(&p).unwrap(), None);
        std::fs::write(&p, "partial\nmore").unwrap();
        assert_eq!(fingerprint(&p).unwrap(), Some(hash(b"partial\n")));
    }
}
