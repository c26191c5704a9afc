//! JSON lines: the engine's fields by name, and Python's JSON loggers (python-json-logger),
//! whose records are named by their message as the `python` format names its lines.

use std::borrow::Cow;

use super::formats::{Parsed, PYTHON};
use super::timestamps::{in_zone, line_ts, parse_ts_micros};
use super::zone::Zone;
use crate::vocab::Event;

/// JSON lines: an object per line with `ts`/`timestamp`/`time`, `level`, `event`,
/// `message`/`msg` and any of the event columns.
pub fn parse_json(line: &str, zone: Zone) -> Result<Parsed<'static>, String> {
    let v: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let obj = v.as_object().ok_or("not a JSON object")?;
    let mut p = Parsed::default();
    let mut exception = None;
    for (k, val) in obj {
        let text = match val {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => continue,
            other => other.to_string(),
        };
        match k.as_str() {
            // Python's JSON loggers (python-json-logger) write `asctime` and `levelname`;
            // Logstash and Elastic's layouts `@timestamp`.
            "ts" | "timestamp" | "time" | "asctime" | "@timestamp" => p.ts = Some(line_ts(&text, in_zone(&text, parse_ts_micros(&text), zone))?),
            "msg" => p.message = Some(Cow::Owned(text)),
            "levelname" => p.level = Some(Cow::Owned(text)),
            // `logger.exception`'s traceback: its last line is the exception.
            "exc_info" => exception = text.lines().rev().find(|l| !l.trim().is_empty()).map(str::to_owned),
            name => p.set(name, Cow::Owned(text))?,
        }
    }
    if p.level.as_deref() == Some("WARNING") {
        p.level = Some(Cow::Borrowed("WARN"));
    }
    if p.event.is_empty() {
        // No `event`: a Python logger's record, named by its message as the `python` format
        // names one (`Cache MISS for AAPL` is a miss).
        p.event = Cow::Borrowed(Event::Other.as_str());
        // A traceback names what its record does not, as in the `python` format.
        let texts = [p.message.clone().map(Cow::into_owned), exception];
        for text in texts.iter().flatten() {
            if p.event != Event::Other.as_str() {
                break;
            }
            let mut named = Parsed { level: p.level.clone(), ..Parsed::default() };
            PYTHON.name_event(&mut named, text)?;
            p.event = Cow::Owned(named.event.into_owned());
            let own = |c: Option<Cow<'_, str>>| c.map(|c| Cow::Owned(c.into_owned()));
            p.symbol = p.symbol.take().or(own(named.symbol));
            p.feature_set = p.feature_set.take().or(own(named.feature_set));
            p.key = p.key.take().or(own(named.key));
            p.reason = p.reason.take().or(own(named.reason));
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_json_utc(line: &str) -> Result<Parsed<'static>, String> {
        parse_json(line, Zone::Utc)
    }

    #[test]
    fn json_lines() {
        let p = parse_json_utc(r#"{"ts":"2026-11-26T09:30:00Z","level":"INFO","event":"miss","symbol":"AAPL","reason":"new_key","bytes":12}"#).unwrap();
        assert_eq!((&*p.event, p.bytes), ("miss", Some(12)));
        assert!(parse_json_utc("[1,2]").is_err());
        assert!(parse_json_utc(r#"{"ts":"yesterday"}"#).is_err());
    }

    #[test]
    fn json_of_a_python_logger_is_named_by_its_message_or_its_traceback() {
        let p = parse_json_utc(r#"{"asctime": "2026-11-26 09:30:00,123", "name": "fs", "levelname": "WARNING", "message": "Cache MISS for AMD"}"#).unwrap();
        assert_eq!((&*p.event, p.symbol.as_deref(), p.level.as_deref()), ("miss", Some("AMD"), Some("WARN")));
        assert_eq!(p.ts, parse_ts_micros("2026-11-26T09:30:00.123Z"));
        let p = parse_json_utc(r#"{"@timestamp": "2026-11-26T09:30:00Z", "levelname": "ERROR", "message": "feature computation failed", "exc_info": "Traceback (most recent call last):\n    raise MemoryError()\nMemoryError: cannot allocate"}"#).unwrap();
        assert_eq!(p.event, "compute_failed");
        // At INFO, a failure's words name nothing; an explicit `event` is kept as it is.
        let p = parse_json_utc(r#"{"asctime": "2026-11-26 09:30:00,123", "levelname": "INFO", "message": "MemoryError seen"}"#).unwrap();
        assert_eq!(p.event, "other");
        let p = parse_json_utc(r#"{"ts": "2026-11-26T09:30:00Z", "event": "hit", "message": "Cache MISS for AMD"}"#).unwrap();
        assert_eq!(p.event, "hit");
    }
}
