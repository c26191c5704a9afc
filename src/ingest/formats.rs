//! Log line formats: the engine's (`docs/log-format.md`), Python's default logging layout
//! (`%(asctime)s - %(name)s - %(levelname)s - %(message)s`, as the original trading system
//! writes), JSON lines, and user-defined formats (a TOML file of named-capture regexes).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

use regex::Regex;
use serde::Deserialize;

use super::timestamps::{in_zone, line_ts, parse_ts_micros};
use super::zone::Zone;
pub use super::json_format::parse_json;
use crate::vocab::{Event, Field};

/// One parsed line, before it becomes a row.
/// Text borrows from the line where it can.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed<'a> {
    /// Microseconds since the Unix epoch (naive UTC).
    pub ts: Option<i64>,
    pub level: Option<Cow<'a, str>>,
    pub event: Cow<'a, str>,
    pub symbol: Option<Cow<'a, str>>,
    pub feature_set: Option<Cow<'a, str>>,
    pub key: Option<Cow<'a, str>>,
    pub slot: Option<Cow<'a, str>>,
    pub reason: Option<Cow<'a, str>>,
    pub outcome: Option<Cow<'a, str>>,
    pub config: Option<Cow<'a, str>>,
    pub data_version: Option<Cow<'a, str>>,
    pub bytes: Option<i64>,
    pub latency_us: Option<i64>,
    pub error: Option<Cow<'a, str>>,
    pub message: Option<Cow<'a, str>>,
}

impl<'a> Parsed<'a> {
    /// Sets a column by its field's name; other names are ignored. Numbers that do not parse
    /// are an error.
    #[inline(always)]
    pub(super) fn set(&mut self, name: &str, value: Cow<'a, str>) -> Result<(), String> {
        let Some(field) = Field::parse(name) else { return Ok(()) };
        let slot = match field {
            Field::Key => &mut self.key,
            Field::Slot => &mut self.slot,
            Field::Event => {
                self.event = value;
                return Ok(());
            }
            Field::Level => &mut self.level,
            Field::Error => &mut self.error,
            Field::Bytes => {
                self.bytes = Some(int_field(name, &value)?);
                return Ok(());
            }
            Field::Symbol => &mut self.symbol,
            Field::Reason => &mut self.reason,
            Field::Config => &mut self.config,
            Field::Outcome => &mut self.outcome,
            Field::Message => &mut self.message,
            Field::LatencyUs => {
                self.latency_us = Some(int_field(name, &value)?);
                return Ok(());
            }
            Field::FeatureSet => &mut self.feature_set,
            Field::DataVersion => &mut self.data_version,
            _ => return Ok(()),
        };
        *slot = Some(value);
        Ok(())
    }
}

/// The largest `bytes=` or `latency_us=` a line may say: 1 TiB, or 12.7 days. A larger (or a
/// negative) figure is a corrupt line, quarantined: kept, it made every sum it entered garbage
/// (`bytes=9223372036854775807` wrapped the minute's total round to a negative one).
const MAX_FIGURE: i64 = 1 << 40;

/// An integer field's value (a byte count or a latency), or why it is not one.
fn int_field(name: &str, value: &str) -> Result<i64, String> {
    match parse_int(value) {
        Ok(v) if (0..=MAX_FIGURE).contains(&v) => Ok(v),
        Ok(_) => Err(format!("{name}=`{value}` is out of range (0 to {MAX_FIGURE})")),
        Err(_) => Err(format!("{name}=`{value}` is not an integer")),
    }
}

/// A decimal integer: digits only, quickly; anything else (sign, overflow) through `str::parse`.
fn parse_int(s: &str) -> Result<i64, std::num::ParseIntError> {
    let b = s.as_bytes();
    if !b.is_empty() && b.len() <= 18 {
        let mut v = 0i64;
        let mut ok = true;
        for &c in b {
            ok &= c.is_ascii_digit();
            v = v * 10 + c.wrapping_sub(b'0') as i64;
        }
        if ok {
            return Ok(v);
        }
    }
    s.parse()
}

/// Bytes that may appear in a field name (`[a-z0-9_]`).
const NAME_BYTE: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = b'a';
    while c <= b'z' {
        t[c as usize] = true;
        c += 1;
    }
    let mut c = b'0';
    while c <= b'9' {
        t[c as usize] = true;
        c += 1;
    }
    t[b'_' as usize] = true;
    t
};

/// The parts of an engine log line before its fields.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EngineLine<'a> {
    pub ts_text: &'a str,
    /// Microseconds since the Unix epoch.
    pub ts: i64,
    pub level: &'a str,
    pub message: &'a str,
}

/// The one reader of the engine's line format (`docs/log-format.md`): checks the timestamp,
/// level and target, hands every `name=value` field (unquoted) to `on_field`, and returns the
/// rest. `Err` says why the line is not in the format.
pub fn scan_engine<'a>(
    line: &'a str,
    mut on_field: impl FnMut(&'a str, Cow<'a, str>) -> Result<(), String>,
) -> Result<EngineLine<'a>, String> {
    let (ts_text, rest) = line.split_once(' ').ok_or("no timestamp")?;
    let ts = line_ts(ts_text, parse_ts_micros(ts_text))?;
    let (level, rest) = rest.split_once(' ').ok_or("no level")?;
    if !matches!(level, "DEBUG" | "INFO" | "WARN" | "ERROR" | "TRACE") {
        return Err(format!("`{}` is not a level", truncate(level, 20)));
    }
    let (_target, rest) = split_colon_space(rest).ok_or("no `target: `")?;
    let b = rest.as_bytes();
    let mut i = 0;
    let mut message_end = None;
    while i < b.len() {
        let tok = i;
        let j = tok + b[tok..].iter().position(|&c| !NAME_BYTE[c as usize]).unwrap_or(b.len() - tok);
        let is_field = j > tok && j < b.len() && b[j] == b'=' && b[tok].is_ascii_lowercase();
        if is_field {
            if message_end.is_none() {
                message_end = Some(tok.saturating_sub(1));
            }
            let start = j + 1;
            let (value, next) = if b.get(start) == Some(&b'"') {
                read_value(rest, start)?
            } else {
                // Unquoted (almost every value): up to the next space.
                let end = memchr_space(&b[start..]).map_or(b.len(), |n| start + n);
                (Cow::Borrowed(&rest[start..end]), end)
            };
            // One call site, so the field handler is inlined here.
            on_field(&rest[tok..j], value)?;
            i = next;
        } else if message_end.is_some() {
            return Err(format!("unexpected text after the fields at column {}", tok + 1));
        } else if b[i] == b'"' {
            i = read_value(rest, i)?.1;
        } else {
            i = memchr_space(&b[i..]).map_or(b.len(), |n| i + n);
        }
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
    }
    Ok(EngineLine {
        ts_text,
        ts,
        level,
        message: &rest[..message_end.unwrap_or(rest.len())],
    })
}

/// The engine's format. Returns `Err` with a reason when the line is not in it.
pub fn parse_engine(line: &str) -> Result<Parsed<'_>, String> {
    let mut p = Parsed::default();
    let head = scan_engine(line, |name, value| p.set(name, value))?;
    if p.event.is_empty() {
        return Err("no `event=` field".into());
    }
    p.ts = Some(head.ts);
    p.level = Some(Cow::Borrowed(head.level));
    p.message = Some(Cow::Borrowed(head.message));
    Ok(p)
}

fn read_value(s: &str, start: usize) -> Result<(Cow<'_, str>, usize), String> {
    let b = s.as_bytes();
    if b.get(start) != Some(&b'"') {
        let end = memchr_space(&b[start..]).map_or(s.len(), |n| start + n);
        return Ok((Cow::Borrowed(&s[start..end]), end));
    }
    let mut out = String::new();
    let mut it = s[start + 1..].char_indices();
    while let Some((j, c)) = it.next() {
        match c {
            '"' => return Ok((Cow::Owned(out), start + 1 + j + 1)),
            '\\' => match it.next().map(|x| x.1) {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some('u') => {
                    let rest = &s[start + 1 + j + 2..];
                    let close = rest.find('}').ok_or("bad \\u escape")?;
                    let code = u32::from_str_radix(rest.get(1..close).ok_or("bad \\u escape")?, 16)
                        .map_err(|_| "bad \\u escape")?;
                    out.push(char::from_u32(code).ok_or("bad \\u escape")?);
                    for _ in 0..close + 1 {
                        it.next();
                    }
                }
                Some(c) => out.push(c),
                None => return Err("unterminated quoted value".into()),
            },
            c => out.push(c),
        }
    }
    Err("unterminated quoted value".into())
}

/// `s.split_once(": ")` without building a substring searcher for every line.
fn split_colon_space(s: &str) -> Option<(&str, &str)> {
    let b = s.as_bytes();
    let mut from = 0;
    while let Some(i) = b[from..].iter().position(|&c| c == b':') {
        let at = from + i;
        if b.get(at + 1) == Some(&b' ') {
            return Some((&s[..at], &s[at + 2..]));
        }
        from = at + 1;
    }
    None
}

/// The first space, eight bytes at a time (values are mostly 4-20 bytes: too short for
/// memchr's setup to pay, long enough for a byte loop's exit to mispredict).
fn memchr_space(b: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let mut i = 0;
    while let Some(chunk) = b.get(i..i + 8) {
        let x = u64::from_le_bytes(chunk.try_into().expect("8 bytes")) ^ (ONES * b' ' as u64);
        // A zero byte of `x` is a space; the lowest flagged byte is the first one.
        let zero = x.wrapping_sub(ONES) & !x & (ONES << 7);
        if zero != 0 {
            return Some(i + (zero.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    b[i..].iter().position(|&c| c == b' ').map(|n| i + n)
}

pub(super) fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// A message rule: a regex whose named groups fill columns, and the event it means.
#[derive(Debug, Clone)]
struct Rule {
    event: String,
    re: Regex,
    /// Only lines at WARN, ERROR or CRITICAL (a failure is never logged at INFO).
    warn_or_worse: bool,
}

/// A regex-defined format (Python's built in, or a user's TOML).
#[derive(Debug, Clone)]
pub struct RegexFormat {
    pub name: String,
    line: Regex,
    ts_format: Option<String>,
    rules: Vec<Rule>,
    /// A line that does not match `line` continues the record before it (Python's
    /// tracebacks and messages of several lines) instead of being quarantined.
    multiline: bool,
    /// The zone of its times when they do not say theirs.
    zone: Zone,
}

/// What a line continuing a record takes from it ([`Format::continuation`]): its time and
/// level, and whether the record already said which event it is.
#[derive(Debug, Clone, Default)]
pub struct Record {
    ts: Option<i64>,
    level: Option<Cow<'static, str>>,
    classified: bool,
}

impl Record {
    /// Remembered at every record line of a multi-line format: the usual levels are not
    /// copied (a copy per line, for the few lines that continue a record).
    pub fn of(p: &Parsed) -> Record {
        let level = p.level.as_deref().map(|l| match ["DEBUG", "INFO", "WARN", "ERROR", "CRITICAL"].into_iter().find(|w| *w == l) {
            Some(w) => Cow::Borrowed(w),
            None => Cow::Owned(l.to_owned()),
        });
        Record {
            ts: p.ts,
            level,
            classified: p.event != Event::Other.as_str(),
        }
    }
}

/// The user-defined format file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FormatFile {
    name: String,
    line: String,
    ts_format: Option<String>,
    #[serde(default)]
    multiline: bool,
    #[serde(default)]
    events: BTreeMap<String, String>,
}

/// Failure to load a user-defined format.
#[derive(Debug, thiserror::Error)]
#[error("format file {path}: {source}")]
pub struct FormatError {
    pub path: String,
    pub source: crate::BoxError,
}

impl RegexFormat {
    /// Python's default logging layout and the trading system's messages.
    pub fn python() -> RegexFormat {
        let r = |p: &str| Regex::new(p).expect("built-in regex");
        RegexFormat {
            name: "python".into(),
            line: r(r"^(?P<ts>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:,\d{1,6})?) - (?P<name>\S+) - (?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL) - (?P<message>.*)$"),
            ts_format: None,
            multiline: true,
            zone: Zone::Utc,
            rules: vec![
                Rule { event: Event::Hit.as_str().into(), re: r(r"Cache HIT for (?P<symbol>\S+)"), warn_or_worse: false },
                Rule { event: Event::Miss.as_str().into(), re: r(r"Cache MISS for (?P<symbol>\S+)"), warn_or_worse: false },
                Rule { event: Event::Invalidation.as_str().into(), re: r(r"Cache key (?P<key>\S+) invalidated"), warn_or_worse: false },
                Rule { event: Event::Eviction.as_str().into(), re: r(r"(?i)Cache key (?P<key>\S+) evicted|evict"), warn_or_worse: false },
                Rule { event: Event::WriteFailed.as_str().into(), re: r(r"(?i)no space left|ENOSPC|disk full"), warn_or_worse: true },
                // Real out-of-memory errors only: Python's MemoryError, the C library's ENOMEM
                // text, "out of memory" and OOM (not "memory usage 41%").
                Rule {
                    event: Event::ComputeFailed.as_str().into(),
                    re: r(r"\bMemoryError\b|(?i:\bout of memory\b|\bcannot allocate memory\b|\bENOMEM\b)|\bOOM\b"),
                    warn_or_worse: true,
                },
            ],
        }
    }

    /// Loads a user-defined format from TOML:
    ///
    /// ```toml
    /// name = "myapp"
    /// line = '^(?P<ts>\S+ \S+) \[(?P<level>\w+)\] (?P<message>.*)$'
    /// ts_format = "%Y-%m-%d %H:%M:%S%.f"      # optional; default RFC 3339
    /// [events]
    /// hit = 'cache hit (?P<symbol>\S+)'
    /// miss = 'cache miss (?P<symbol>\S+) because (?P<reason>\w+)'
    /// ```
    pub fn from_toml(path: &Path) -> Result<RegexFormat, FormatError> {
        let err = |source: crate::BoxError| FormatError {
            path: path.display().to_string(),
            source,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.into()))?;
        let f: FormatFile = toml::from_str(&text).map_err(|e| err(e.into()))?;
        let line = Regex::new(&f.line).map_err(|e| err(format!("`line`: {e}").into()))?;
        if !line.capture_names().any(|n| n == Some("message")) {
            return Err(err("`line` needs a `(?P<message>...)` group".into()));
        }
        let mut rules = Vec::new();
        for (event, re) in f.events {
            rules.push(Rule {
                re: Regex::new(&re).map_err(|e| err(format!("`events.{event}`: {e}").into()))?,
                event,
                warn_or_worse: false,
            });
        }
        Ok(RegexFormat {
            name: f.name,
            line,
            ts_format: f.ts_format,
            multiline: f.multiline,
            zone: Zone::Utc,
            rules,
        })
    }

    pub fn parse<'a>(&self, line: &'a str) -> Result<Parsed<'a>, String> {
        let caps = self.line.captures(line).ok_or_else(|| format!("does not match the {} format", self.name))?;
        let mut p = Parsed::default();
        if let Some(ts) = caps.name("ts") {
            let t = match &self.ts_format {
                Some(f) => match chrono::DateTime::parse_from_str(ts.as_str(), f) {
                    Ok(t) => Some(t.timestamp_micros()),
                    Err(_) => chrono::NaiveDateTime::parse_from_str(ts.as_str(), f)
                        .ok()
                        .and_then(|t| self.zone.to_utc(t.and_utc().timestamp_micros())),
                },
                None => in_zone(ts.as_str(), parse_ts_micros(ts.as_str()), self.zone),
            };
            p.ts = Some(line_ts(ts.as_str(), t)?);
        }
        for name in self.line.capture_names().flatten() {
            if name != "ts" {
                if let Some(m) = caps.name(name) {
                    p.set(name, Cow::Borrowed(m.as_str()))?;
                }
            }
        }
        if p.level.as_deref() == Some("WARNING") {
            p.level = Some(Cow::Borrowed("WARN"));
        }
        let message: &'a str = caps.name("message").map(|m| m.as_str()).unwrap_or("");
        self.name_event(&mut p, message)?;
        Ok(p)
    }

    /// Names the event of a record from its message: the first rule that matches it (rules
    /// for failures only at WARN or worse), else `other`.
    pub(super) fn name_event<'a>(&self, p: &mut Parsed<'a>, message: &'a str) -> Result<(), String> {
        p.event = Cow::Borrowed(Event::Other.as_str());
        let warn_or_worse = matches!(p.level.as_deref(), Some("WARN" | "ERROR" | "CRITICAL"));
        for rule in self.rules.iter().filter(|r| warn_or_worse || !r.warn_or_worse) {
            if let Some(c) = rule.re.captures(message) {
                p.event = Cow::Owned(rule.event.clone());
                for name in rule.re.capture_names().flatten() {
                    if let Some(m) = c.name(name) {
                        p.set(name, Cow::Borrowed(m.as_str()))?;
                    }
                }
                break;
            }
        }
        Ok(())
    }

    /// A line of a multi-line record (one that does not match `line`): an event at the
    /// record's time and level, named by the rules as part of the record's message, unless
    /// the record already named one (a traceback's `MemoryError` after an unnamed `ERROR`
    /// record is a compute failure; after `MemoryError computing ...` it is `other`). Indented
    /// lines name nothing: in a traceback they are source code (`raise MemoryError(...)`).
    fn continuation<'a>(&self, line: &'a str, record: &mut Record) -> Option<Parsed<'a>> {
        if !self.multiline || line.contains('\0') {
            return None;
        }
        let mut p = Parsed {
            ts: record.ts,
            level: record.level.clone(),
            message: Some(Cow::Borrowed(line)),
            ..Parsed::default()
        };
        let indented = line.starts_with(char::is_whitespace);
        if record.classified || indented || self.name_event(&mut p, line).is_err() {
            p = Parsed {
                event: Cow::Borrowed(Event::Other.as_str()),
                ts: p.ts,
                level: p.level,
                message: p.message,
                ..Parsed::default()
            };
        }
        record.classified |= p.event != Event::Other.as_str();
        Some(p)
    }
}

/// The `python` format, whose message rules also name the events of a Python JSON logger.
pub(super) static PYTHON: std::sync::LazyLock<RegexFormat> = std::sync::LazyLock::new(RegexFormat::python);

/// A format a file is read with.
#[derive(Debug, Clone)]
pub enum Format {
    Engine,
    /// JSON lines, naive times read in this zone.
    Json(Zone),
    Regex(RegexFormat),
}

impl Format {
    pub fn name(&self) -> &str {
        match self {
            Format::Engine => "engine",
            Format::Json(_) => "json",
            Format::Regex(r) => &r.name,
        }
    }

    pub fn parse<'a>(&self, line: &'a str) -> Result<Parsed<'a>, String> {
        match self {
            Format::Engine => parse_engine(line),
            Format::Json(zone) => parse_json(line, *zone),
            Format::Regex(r) => r.parse(line),
        }
    }

    /// Whether a record may span lines ([`Format::continuation`]).
    pub fn multiline(&self) -> bool {
        matches!(self, Format::Regex(r) if r.multiline)
    }

    /// `line`, which [`Format::parse`] refused, as a line of `record` when the format's
    /// records span lines (Python's); `None` when it is not one (it is quarantined).
    pub fn continuation<'a>(&self, line: &'a str, record: &mut Record) -> Option<Parsed<'a>> {
        match self {
            Format::Regex(r) => r.continuation(line, record),
            Format::Engine | Format::Json(_) => None,
        }
    }
}

/// The formats to try, in order, on a file's first line.
#[derive(Debug, Clone)]
pub struct Formats {
    list: Vec<Format>,
}

impl Default for Formats {
    fn default() -> Self {
        Formats {
            list: vec![Format::Engine, Format::Json(Zone::Utc), Format::Regex(PYTHON.clone())],
        }
    }
}

impl Formats {
    /// Only `f` (no detection).
    pub fn only(f: Format) -> Formats {
        Formats { list: vec![f] }
    }

    /// The built-ins, after user-defined ones.
    pub fn with_custom(custom: Vec<RegexFormat>) -> Formats {
        let mut list: Vec<Format> = custom.into_iter().map(Format::Regex).collect();
        list.extend(Formats::default().list);
        Formats { list }
    }

    /// Times written without a zone (Python's `asctime`) read in `zone` (`--timezone`).
    pub fn in_zone(mut self, zone: Zone) -> Formats {
        for f in &mut self.list {
            match f {
                Format::Engine => {}
                Format::Json(z) => *z = zone,
                Format::Regex(r) => r.zone = zone,
            }
        }
        self
    }

    /// The first format that parses `first_line`.
    pub fn detect(&self, first_line: &str) -> Option<&Format> {
        self.list.iter().find(|f| f.parse(first_line).is_ok())
    }

    pub fn by_name(&self, name: &str) -> Option<&Format> {
        self.list.iter().find(|f| f.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_json_utc(line: &str) -> Result<Parsed<'static>, String> {
        parse_json(line, Zone::Utc)
    }

    proptest::proptest! {
        #[test]
        fn scanning_helpers_agree_with_the_standard_library(
            s in "[ =:a-z0-9\\-]{0,40}",
            n in proptest::prelude::any::<i64>(),
        ) {
            let b = s.as_bytes();
            proptest::prop_assert_eq!(memchr_space(b), b.iter().position(|&c| c == b' '));
            proptest::prop_assert_eq!(split_colon_space(&s), s.split_once(": "));
            proptest::prop_assert_eq!(parse_int(&s).ok(), s.parse::<i64>().ok());
            let n = n.to_string();
            proptest::prop_assert_eq!(parse_int(&n).ok(), n.parse::<i64>().ok());
        }
    }

    #[test]
    fn engine_lines_parse_into_columns() {
        let l = r#"2026-11-26T14:45:35.500000Z ERROR cachescope::engine: Cache write failed for GOOGL (disk full); result served uncached event=write_failed symbol=GOOGL feature_set=returns key=05da354664213b0e slot=e5927e2fdd5cc517 os_error=28 error="writing cache file /x: No space left on device (os error 28)""#;
        let p = parse_engine(l).unwrap();
        assert_eq!(p.event, "write_failed");
        assert_eq!(p.level.as_deref(), Some("ERROR"));
        assert_eq!(p.symbol.as_deref(), Some("GOOGL"));
        assert_eq!(p.error.as_deref(), Some("writing cache file /x: No space left on device (os error 28)"));
        assert_eq!(p.message.as_deref(), Some("Cache write failed for GOOGL (disk full); result served uncached"));
        assert_eq!(p.ts, Some(crate::engine::clock::parse_ts("2026-11-26T14:45:35.5Z").unwrap().and_utc().timestamp_micros()));
        assert!(parse_engine("2026-11-26 garbage").is_err());
        assert!(parse_engine("2026-11-26T14:45:35.500000Z INFO x: no fields here").is_err());
        assert!(parse_engine("2026-11-26T14:45:35.500000Z INFO x: m event=hit bytes=lots").is_err());
    }

    #[test]
    fn python_lines_and_messages() {
        let f = RegexFormat::python();
        let p = f.parse("2026-11-26 09:30:00,123 - src.shared.feature_store - INFO - Cache MISS for AAPL").unwrap();
        assert_eq!((&*p.event, p.symbol.as_deref()), ("miss", Some("AAPL")));
        assert_eq!(p.ts, parse_ts_micros("2026-11-26T09:30:00.123Z"));
        let p = f.parse("2026-11-26 09:30:01,000 - fs - INFO - Cache key AAPL_returns_1 invalidated").unwrap();
        assert_eq!((&*p.event, p.key.as_deref()), ("invalidation", Some("AAPL_returns_1")));
        let p = f.parse("2026-11-26 09:30:02,000 - fs - ERROR - MemoryError while computing features").unwrap();
        assert_eq!(p.event, "compute_failed");
        assert_eq!(p.level.as_deref(), Some("ERROR"));
        for oom in [
            "ERROR - Feature computation failed for AAPL: out of memory (OOM)",
            "ERROR - [Errno 12] Cannot allocate memory",
            "WARNING - OOM killer took worker 3",
            "CRITICAL - MemoryError: Unable to allocate 3.1 GiB for an array",
        ] {
            let line = format!("2026-11-26 09:30:02,000 - fs - {oom}");
            let p = f.parse(&line).unwrap();
            assert_eq!(p.event, "compute_failed", "{oom}");
        }
        for not_oom in [
            "INFO - memory usage 41%",
            "WARNING - memory usage 91%, consider a larger host",
            "ERROR - zoom level invalid",
            "INFO - MemoryError count reset",
            "ERROR - room for improvement",
        ] {
            let line = format!("2026-11-26 09:30:02,000 - fs - {not_oom}");
            let p = f.parse(&line).unwrap();
            assert_eq!(p.event, "other", "{not_oom}");
        }
        let p = f.parse("2026-11-26 09:30:02,000 - fs - WARNING - something else").unwrap();
        assert_eq!((&*p.event, p.level.as_deref()), ("other", Some("WARN")));
        assert!(f.parse("not python").is_err());
    }

    #[test]
    fn lines_dated_outside_the_accepted_times_are_refused_in_every_format() {
        let python = RegexFormat::python();
        for (ts, ok) in [("1970-01-01T00:00:00.000000Z", false), ("9999-12-31T23:59:59.999999Z", false), ("2199-12-31T23:59:59.000000Z", true)] {
            let (engine, py) = (
                format!("{ts} INFO cachescope::engine: Cache MISS for AAPL event=miss symbol=AAPL"),
                format!("{} - trading - INFO - hello", ts[..19].replace('T', " ")),
            );
            let json = parse_json_utc(&format!(r#"{{"ts":"{ts}","event":"miss","symbol":"AAPL"}}"#));
            let (engine, py) = (parse_engine(&engine), python.parse(&py));
            for (name, r) in [("engine", engine.map(|p| p.ts)), ("json", json.map(|p| p.ts)), ("python", py.map(|p| p.ts))] {
                match r {
                    Ok(t) => assert!(ok && t.is_some(), "{name} {ts}: accepted"),
                    Err(e) => assert!(!ok && e.contains("outside the times cachescope accepts (2000-01-01 .. 2199-12-31)"), "{name} {ts}: {e}"),
                }
            }
        }
    }

    #[test]
    fn lines_of_a_python_record_continue_it_and_name_a_failure_once() {
        let f = Format::Regex(RegexFormat::python());
        let unnamed = f.parse("2026-11-26 09:30:00,123 - trading - ERROR - feature computation failed for TSLA").unwrap();
        assert_eq!(unnamed.event, "other");
        let mut r = Record::of(&unnamed);
        let tb = f.continuation("Traceback (most recent call last):", &mut r).unwrap();
        assert_eq!((&*tb.event, tb.ts, tb.level.as_deref()), ("other", unnamed.ts, Some("ERROR")));
        let code = f.continuation("    raise MemoryError(f\"cannot allocate {n} bytes\")", &mut r).unwrap();
        assert_eq!(code.event, "other", "a traceback's source line names nothing");
        let oom = f.continuation("MemoryError: cannot allocate 1073741824 bytes", &mut r).unwrap();
        assert_eq!(oom.event, "compute_failed");
        let again = f.continuation("MemoryError: during handling of the above", &mut r).unwrap();
        assert_eq!(again.event, "other", "one record, one failure");
        // Named by its own message: the traceback names nothing more.
        let named = f.parse("2026-11-26 09:30:01,000 - trading - ERROR - MemoryError computing features for NVDA").unwrap();
        let mut r = Record::of(&named);
        assert_eq!(f.continuation("MemoryError: x", &mut r).unwrap().event, "other");
        // At INFO, failure rules do not apply, as to a one-line record.
        let info = f.parse("2026-11-26 09:30:02,000 - trading - INFO - memory report").unwrap();
        assert_eq!(f.continuation("MemoryError: x", &mut Record::of(&info)).unwrap().event, "other");
        assert!(f.continuation("NUL \0 byte", &mut Record::of(&info)).is_none(), "binary garbage is quarantined");
        for single in [Format::Engine, Format::Json(Zone::Utc)] {
            assert!(single.continuation("  File \"x.py\", line 1", &mut Record::of(&info)).is_none());
        }
    }

    #[test]
    fn a_custom_format_continues_records_only_when_it_says_multiline() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.toml");
        let body = "name = \"myapp\"\nline = '^(?P<ts>\\S+ \\S+) \\[(?P<level>\\w+)\\] (?P<message>.*)$'\nts_format = \"%Y-%m-%d %H:%M:%S\"\n";
        let rec = "2026-11-26 09:30:00 [ERROR] failed";
        std::fs::write(&p, body).unwrap();
        let single = Format::Regex(RegexFormat::from_toml(&p).unwrap());
        let mut r = Record::of(&single.parse(rec).unwrap());
        assert!(single.continuation("  at line 2", &mut r).is_none());
        std::fs::write(&p, format!("{body}multiline = true\n")).unwrap();
        let multi = Format::Regex(RegexFormat::from_toml(&p).unwrap());
        let mut r = Record::of(&multi.parse(rec).unwrap());
        assert_eq!(multi.continuation("  at line 2", &mut r).unwrap().message.as_deref(), Some("  at line 2"));
    }

    #[test]
    fn byte_counts_and_latencies_beyond_any_request_are_refused() {
        let line = |fields: &str| parse_engine_owned(&format!("2026-11-26T14:30:00Z INFO cachescope::engine: Cache HIT for A event=hit symbol=A {fields}"));
        assert_eq!(line("bytes=1099511627776 latency_us=5").map(|p| p.0), Ok(Some(1 << 40)));
        for bad in ["bytes=1099511627777", "bytes=-1", "latency_us=9223372036854775807", "bytes=99999999999999999999"] {
            let e = line(bad).unwrap_err();
            assert!(e.contains("out of range") || e.contains("not an integer"), "{bad}: {e}");
        }
    }

    fn parse_engine_owned(l: &str) -> Result<(Option<i64>, Option<i64>), String> {
        parse_engine(l).map(|p| (p.bytes, p.latency_us))
    }

    #[test]
    fn detection_picks_the_right_format() {
        let f = Formats::default();
        assert_eq!(f.detect("2026-11-26T14:30:00.000000Z INFO cachescope::engine: FeatureStore started event=startup").unwrap().name(), "engine");
        assert_eq!(f.detect(r#"{"event":"hit"}"#).unwrap().name(), "json");
        assert_eq!(f.detect("2026-11-26 09:30:00,123 - a - INFO - hello").unwrap().name(), "python");
        assert!(f.detect("\u{0}\u{1}binary").is_none());
    }

    #[test]
    fn custom_formats_load_and_name_their_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.toml");
        std::fs::write(&p, "name = \"myapp\"\nline = '^(?P<ts>\\S+ \\S+) \\[(?P<level>\\w+)\\] (?P<message>.*)$'\nts_format = \"%Y-%m-%d %H:%M:%S\"\n[events]\nmiss = 'cache miss (?P<symbol>\\S+) because (?P<reason>\\w+)'\n").unwrap();
        let f = RegexFormat::from_toml(&p).unwrap();
        let x = f.parse("2026-11-26 09:30:00 [INFO] cache miss AAPL because evicted").unwrap();
        assert_eq!((&*x.event, x.symbol.as_deref(), x.reason.as_deref()), ("miss", Some("AAPL"), Some("evicted")));
        // A naive ts_format is read in the zone given (`--timezone`).
        let ny = Formats::with_custom(vec![f.clone()]).in_zone(Zone::parse("America/New_York").unwrap());
        let x = ny.by_name("myapp").unwrap().parse("2026-11-26 09:30:00 [INFO] cache miss AAPL because evicted").unwrap();
        assert_eq!(x.ts, parse_ts_micros("2026-11-26T14:30:00Z"));
        std::fs::write(&p, "name = \"x\"\nline = '(unclosed'\n").unwrap();
        let e = RegexFormat::from_toml(&p).unwrap_err().to_string();
        assert!(e.contains("`line`") && e.contains("f.toml"), "{e}");
    }

}
