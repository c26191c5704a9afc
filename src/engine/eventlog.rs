//! The engine's log: one line per event, the contract every later stage parses
//! (`docs/log-format.md`):
//!
//! ```text
//! 2026-11-26T09:30:00.250000Z INFO cachescope::engine: Cache MISS for AAPL event=miss op=get_or_compute symbol=AAPL ...
//! ```
//!
//! UTC timestamp with microseconds, level, target, a message without `=`, then `key=value`
//! fields. A value (or a symbol inside the message) that is empty or contains a space, `=`,
//! `"`, `\` or a control character is written as a double-quoted string with `\"`, `\\`,
//! `\n`, `\r`, `\t` and `\u{XX}` escapes. `ingest::formats::scan_engine` reads it back.

use std::fmt::Write as _;
use std::io::{self, Write};

use chrono::NaiveDateTime;

use super::clock::fmt_ts;
use crate::vocab::{Event, Field};

/// Severity of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

/// The log target of engine events.
pub const TARGET: &str = "cachescope::engine";

/// Whether a value must be quoted.
fn needs_quotes(v: &str) -> bool {
    v.is_empty()
        || v
            .chars()
            .any(|c| c == ' ' || c == '=' || c == '"' || c == '\\' || c.is_control())
}

/// Appends `v`, quoted and escaped when needed.
pub fn push_value(out: &mut String, v: &str) {
    if !needs_quotes(v) {
        out.push_str(v);
        return;
    }
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A value as it appears in the log (quoted when needed).
pub fn quote(v: &str) -> String {
    let mut s = String::new();
    push_value(&mut s, v);
    s
}

/// Where the log goes, and how eagerly it is flushed.
pub struct EventLog {
    out: Box<dyn Write + Send>,
    flush_each_line: bool,
    line: String,
    failed: bool,
    redactions: Vec<(String, String)>,
    field_redactions: Vec<(Field, String, String)>,
}

impl EventLog {
    /// A log that flushes after each line (for files other processes tail).
    pub fn new(out: Box<dyn Write + Send>, flush_each_line: bool) -> EventLog {
        EventLog {
            out,
            flush_each_line,
            line: String::with_capacity(512),
            failed: false,
            redactions: Vec::new(),
            field_redactions: Vec::new(),
        }
    }

    /// Appends to (or creates) a log file.
    pub fn append_to(path: &std::path::Path, flush_each_line: bool) -> io::Result<EventLog> {
        let f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        Ok(EventLog::on_file(f, flush_each_line))
    }

    /// Creates (truncating) a log file.
    pub fn create(path: &std::path::Path, flush_each_line: bool) -> io::Result<EventLog> {
        Ok(EventLog::on_file(std::fs::File::create(path)?, flush_each_line))
    }

    fn on_file(f: std::fs::File, flush_each_line: bool) -> EventLog {
        let out: Box<dyn Write + Send> = if flush_each_line {
            Box::new(f)
        } else {
            Box::new(io::BufWriter::with_capacity(1 << 20, f))
        };
        EventLog::new(out, flush_each_line)
    }

    /// Replaces `from` by `to` wherever it appears in a message or a value. Used to make
    /// simulated logs reproducible (temporary paths, helper process paths).
    pub fn redact(&mut self, from: impl Into<String>, to: impl Into<String>) {
        let from = from.into();
        if !from.is_empty() {
            self.redactions.push((from, to.into()));
        }
    }

    /// Replaces the whole value `from` of field `field` by `to` (e.g. a helper's PID).
    pub fn redact_field(&mut self, field: Field, from: impl Into<String>, to: impl Into<String>) {
        self.field_redactions.push((field, from.into(), to.into()));
    }

    fn apply_redactions(&self, s: &mut String) {
        for (from, to) in &self.redactions {
            if s.contains(from.as_str()) {
                *s = s.replace(from.as_str(), to);
            }
        }
    }

    /// A log that discards everything.
    pub fn sink() -> EventLog {
        EventLog::new(Box::new(io::sink()), false)
    }

    /// Writes one event line: `event=` first, then the fields `(name, value)`; values are
    /// quoted when needed. A failing log never fails the request: the first failure is
    /// reported on stderr.
    pub fn write(&mut self, ts: NaiveDateTime, level: Level, message: &str, event: Event, fields: &[(Field, &dyn std::fmt::Display)]) {
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        line.push_str(&fmt_ts(ts));
        line.push(' ');
        line.push_str(level.as_str());
        line.push(' ');
        line.push_str(TARGET);
        line.push_str(": ");
        // The message never contains `=`; callers quote any untrusted part with `quote`.
        let mut msg = message.replace('=', ":");
        self.apply_redactions(&mut msg);
        line.push_str(&msg);
        line.push(' ');
        line.push_str(Field::Event.as_str());
        line.push('=');
        line.push_str(event.as_str());
        let mut buf = String::new();
        for (k, v) in fields {
            line.push(' ');
            line.push_str(k.as_str());
            line.push('=');
            buf.clear();
            let _ = write!(buf, "{v}");
            self.apply_redactions(&mut buf);
            for (field, from, to) in &self.field_redactions {
                if field == k && buf == *from {
                    buf.clone_from(to);
                }
            }
            push_value(&mut line, &buf);
        }
        line.push('\n');
        let r = self.out.write_all(line.as_bytes()).and_then(|_| {
            if self.flush_each_line {
                self.out.flush()
            } else {
                Ok(())
            }
        });
        self.line = line;
        if let Err(e) = r {
            if !self.failed {
                eprintln!("cachescope: cannot write the engine log: {e}; further log lines may be lost");
                self.failed = true;
            }
        }
    }

    pub fn flush(&mut self) {
        let _ = self.out.flush();
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::clock::parse_ts;

    /// (ts, level, message, fields) through the ingester's reader of this format.
    fn parse_line(line: &str) -> Option<(String, String, String, Vec<(String, String)>)> {
        let mut fields = Vec::new();
        let head = crate::ingest::formats::scan_engine(line, |k, v| {
            fields.push((k.to_string(), v.into_owned()));
            Ok(())
        })
        .ok()?;
        Some((head.ts_text.into(), head.level.into(), head.message.into(), fields))
    }
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_have_the_documented_shape_and_parse_back() {
        let buf = Buf::default();
        let mut log = EventLog::new(Box::new(buf.clone()), true);
        let t = parse_ts("2026-11-26T09:30:00.25Z").unwrap();
        let weird = "BRK B=\"x\"\n\u{1b}";
        log.write(
            t,
            Level::Info,
            &format!("Cache MISS for {}", quote(weird)),
            Event::Miss,
            &[(Field::Symbol, &weird), (Field::Bytes, &42), (Field::Error, &"")],
        );
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.starts_with("2026-11-26T09:30:00.250000Z INFO cachescope::engine: Cache MISS for \"BRK B"), "{text}");
        let (ts, level, msg, fields) = parse_line(text.trim_end()).unwrap();
        assert_eq!(ts, "2026-11-26T09:30:00.250000Z");
        assert_eq!(level, "INFO");
        assert!(msg.starts_with("Cache MISS for \""), "{msg}");
        assert_eq!(
            fields,
            vec![
                ("event".to_string(), "miss".to_string()),
                ("symbol".to_string(), weird.to_string()),
                ("bytes".to_string(), "42".to_string()),
                ("error".to_string(), "".to_string()),
            ]
        );
    }

    #[test]
    fn equals_signs_never_reach_the_message() {
        let buf = Buf::default();
        let mut log = EventLog::new(Box::new(buf.clone()), true);
        log.write(parse_ts("2026-11-26T09:30:00Z").unwrap(), Level::Warn, "a=b", Event::Other, &[]);
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let (_, _, msg, fields) = parse_line(text.trim_end()).unwrap();
        assert_eq!(msg, "a:b");
        assert_eq!(fields, vec![("event".to_string(), "other".to_string())]);
    }
}
