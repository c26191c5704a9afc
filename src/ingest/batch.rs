//! One transaction's worth of rows: parsed lines become Arrow columns for `event_rows` (whole
//! events) or `hit_rows` (ordinary hits, as numbers), plus the names those numbers stand for.
//! See `queries/schema.sql` for why hits are stored apart.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Int32Builder, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder, UInt64Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use super::formats::Parsed;
use super::minutes::MinuteCounts;
use crate::vocab::{reason_word, Event};

/// Distinct names (symbols, feature sets, file ids) kept in memory for `hit_rows`: a few MB
/// at most, so a tailer stays small; past it, hits with new names are stored whole.
const MAX_NAMES: usize = 100_000;

pub(crate) fn event_rows_schema() -> SchemaRef {
    let s = |n: &str| Field::new(n, DataType::Utf8, true);
    let i = |n: &str| Field::new(n, DataType::Int64, true);
    Arc::new(Schema::new(vec![
        Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        s("level"),
        Field::new("event", DataType::Utf8, false),
        s("symbol"),
        s("feature_set"),
        s("key"),
        s("slot"),
        s("reason"),
        s("outcome"),
        s("config"),
        s("data_version"),
        i("bytes"),
        i("latency_us"),
        s("error"),
        s("message"),
        s("raw"),
        Field::new("file_id", DataType::Utf8, false),
        Field::new("byte_offset", DataType::Int64, false),
        Field::new("line_no", DataType::Int64, false),
    ]))
}

pub(crate) fn hit_rows_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        Field::new("symbol", DataType::Int32, true),
        Field::new("feature_set", DataType::Int32, true),
        Field::new("key", DataType::UInt64, true),
        Field::new("bytes", DataType::Int64, true),
        Field::new("latency_us", DataType::Int64, true),
        Field::new("file", DataType::Int32, false),
        Field::new("byte_offset", DataType::Int64, false),
        Field::new("line_no", DataType::Int64, false),
    ]))
}

/// Ids of the names in `ingest_names`. New names are pending until their batch commits;
/// a failed commit forgets them, so ids in memory always match the database.
#[derive(Debug, Default)]
pub(crate) struct Names {
    ids: HashMap<String, i32, foldhash::fast::RandomState>,
    pending: Vec<(i32, String)>,
    next: i32,
}

impl Names {
    pub(crate) fn load(rows: impl IntoIterator<Item = (i32, String)>) -> Names {
        let mut n = Names::default();
        for (id, name) in rows {
            n.next = n.next.max(id + 1);
            n.ids.insert(name, id);
        }
        n
    }

    /// The id of `name`, allocating one; `None` when the table is full.
    pub(crate) fn id(&mut self, name: &str) -> Option<i32> {
        if let Some(&id) = self.ids.get(name) {
            return Some(id);
        }
        if self.ids.len() >= MAX_NAMES {
            return None;
        }
        let id = self.next;
        self.next += 1;
        self.ids.insert(name.to_string(), id);
        self.pending.push((id, name.to_string()));
        Some(id)
    }

    /// Names allocated since the last commit, to insert with the batch.
    pub(crate) fn pending(&self) -> &[(i32, String)] {
        &self.pending
    }

    pub(crate) fn committed(&mut self) {
        self.pending.clear();
    }

    /// Forgets the names of a batch that did not commit.
    pub(crate) fn rolled_back(&mut self) {
        for (id, name) in self.pending.drain(..) {
            self.ids.remove(&name);
            self.next = self.next.min(id);
        }
    }
}

/// A key of 16 lowercase hex digits (the engine's), as the number `hit_rows` stores.
fn hex_key(k: &str) -> Option<u64> {
    let b = k.as_bytes();
    if b.len() != 16 {
        return None;
    }
    // 0xff marks a byte that is not a lowercase hex digit.
    const DIGIT: [u8; 256] = {
        let mut t = [0xffu8; 256];
        let mut i = 0;
        while i < 10 {
            t[b'0' as usize + i] = i as u8;
            i += 1;
        }
        let mut i = 0;
        while i < 6 {
            t[b'a' as usize + i] = 10 + i as u8;
            i += 1;
        }
        t
    };
    let mut v = 0u64;
    let mut bad = 0u8;
    for &c in b {
        let d = DIGIT[c as usize];
        bad |= d & 0xf0;
        v = (v << 4) | (d & 0x0f) as u64;
    }
    (bad == 0).then_some(v)
}

/// Column builders for one batch.
pub(crate) struct Batch {
    ts: TimestampMicrosecondBuilder,
    strings: Vec<StringBuilder>, // level..data_version (10), then error, message, raw, file_id
    bytes: Int64Builder,
    latency: Int64Builder,
    offset: Int64Builder,
    line: Int64Builder,
    rows: usize,
    h_ts: TimestampMicrosecondBuilder,
    h_symbol: Int32Builder,
    h_feature_set: Int32Builder,
    h_key: UInt64Builder,
    h_bytes: Int64Builder,
    h_latency: Int64Builder,
    h_file: Int32Builder,
    h_offset: Int64Builder,
    h_line: Int64Builder,
    hits: usize,
    /// Text held by the builders (whole events' lines), to bound a chunk's memory.
    text_bytes: usize,
    pub(crate) errors: Vec<(u64, u64, String, String)>,
    /// Whole events of this batch by (event, reason), for exporters (hits: `hits`): events of
    /// the vocabulary only, reasons as [`reason_word`] says, so a short list.
    counts: Vec<((Event, &'static str), u64)>,
    /// The batch's requests by minute and feature set (`request_minutes`).
    pub(crate) minutes: MinuteCounts,
}

/// What [`Batch::finish`] hands to the transaction.
pub(crate) struct Finished {
    pub event_rows: Option<RecordBatch>,
    pub hit_rows: Option<RecordBatch>,
    pub rows: u64,
    /// Events by (event, reason).
    pub counts: Vec<((Event, &'static str), u64)>,
}

impl Batch {
    pub(crate) fn new() -> Batch {
        Batch {
            ts: TimestampMicrosecondBuilder::new(),
            strings: (0..14).map(|_| StringBuilder::new()).collect(),
            bytes: Int64Builder::new(),
            latency: Int64Builder::new(),
            offset: Int64Builder::new(),
            line: Int64Builder::new(),
            rows: 0,
            h_ts: TimestampMicrosecondBuilder::new(),
            h_symbol: Int32Builder::new(),
            h_feature_set: Int32Builder::new(),
            h_key: UInt64Builder::new(),
            h_bytes: Int64Builder::new(),
            h_latency: Int64Builder::new(),
            h_file: Int32Builder::new(),
            h_offset: Int64Builder::new(),
            h_line: Int64Builder::new(),
            hits: 0,
            text_bytes: 0,
            errors: Vec::new(),
            counts: Vec::new(),
            minutes: MinuteCounts::default(),
        }
    }

    /// Adds one event. `file` is the file id's entry in `names` (when it has one).
    pub(crate) fn push(
        &mut self,
        p: &Parsed,
        raw: &str,
        file_id: &str,
        file: Option<i32>,
        names: &mut Names,
        offset: u64,
        line: u64,
    ) {
        if let Some(file) = file {
            if self.push_hit(p, file, names, offset, line) {
                return;
            }
        }
        self.ts.append_option(p.ts);
        // A hit keeps only what analysis reads of it; everything else keeps it all.
        let full = p.event != Event::Hit.as_str();
        let s = &mut self.strings;
        s[0].append_option(p.level.as_deref());
        s[1].append_value(p.event.as_ref());
        s[2].append_option(p.symbol.as_deref());
        s[3].append_option(p.feature_set.as_deref());
        s[4].append_option(p.key.as_deref());
        s[5].append_option(p.slot.as_deref().filter(|_| full));
        s[6].append_option(p.reason.as_deref());
        s[7].append_option(p.outcome.as_deref());
        s[8].append_option(p.config.as_deref().filter(|_| full));
        s[9].append_option(p.data_version.as_deref().filter(|_| full));
        self.bytes.append_option(p.bytes);
        self.latency.append_option(p.latency_us);
        s[10].append_option(p.error.as_deref());
        s[11].append_option(p.message.as_deref().filter(|_| full));
        s[12].append_option(full.then_some(raw));
        s[13].append_value(file_id);
        self.offset.append_value(offset as i64);
        self.line.append_value(line as i64);
        self.rows += 1;
        self.text_bytes += 2 * raw.len() + 64;
        if !full || p.event == Event::Miss.as_str() {
            self.minutes.request(p.ts, p.feature_set.as_deref(), !full, p.bytes, p.latency_us);
        }
        if let Some(event) = Event::parse(&p.event) {
            let key = (event, reason_word(p.reason.as_deref()));
            match self.counts.iter_mut().find(|(k, _)| *k == key) {
                Some((_, n)) => *n += 1,
                None => self.counts.push((key, 1)),
            }
        }
    }

    /// Adds an ordinary hit to `hit_rows`; `false` if it does not fit there.
    fn push_hit(&mut self, p: &Parsed, file: i32, names: &mut Names, offset: u64, line: u64) -> bool {
        if p.event != Event::Hit.as_str() || p.level.as_deref() != Some("INFO") || p.reason.is_some() || p.outcome.is_some() || p.error.is_some() {
            return false;
        }
        let key = match p.key.as_deref() {
            None => None,
            Some(k) => match hex_key(k) {
                Some(v) => Some(v),
                None => return false,
            },
        };
        let mut name = |n: Option<&str>| -> Result<Option<i32>, ()> {
            match n {
                None => Ok(None),
                Some(n) => names.id(n).map(Some).ok_or(()),
            }
        };
        let (Ok(symbol), Ok(feature_set)) = (name(p.symbol.as_deref()), name(p.feature_set.as_deref())) else {
            return false;
        };
        self.h_ts.append_option(p.ts);
        self.h_symbol.append_option(symbol);
        self.h_feature_set.append_option(feature_set);
        self.h_key.append_option(key);
        self.h_bytes.append_option(p.bytes);
        self.h_latency.append_option(p.latency_us);
        self.h_file.append_value(file);
        self.h_offset.append_value(offset as i64);
        self.h_line.append_value(line as i64);
        self.hits += 1;
        self.minutes.request(p.ts, p.feature_set.as_deref(), true, p.bytes, p.latency_us);
        true
    }

    /// Events in the batch.
    pub(crate) fn len(&self) -> usize {
        self.rows + self.hits
    }

    /// Roughly the bytes the builders and quarantined lines hold.
    pub(crate) fn memory(&self) -> usize {
        self.text_bytes + self.hits * 64 + self.errors.len() * 600
    }

    /// The batch's columns; the builders start empty again.
    pub(crate) fn finish(&mut self, event_rows: &SchemaRef, hit_rows: &SchemaRef) -> Finished {
        let mut counts = std::mem::take(&mut self.counts);
        if self.hits > 0 {
            counts.push(((Event::Hit, ""), self.hits as u64));
        }
        let rows = self.len() as u64;
        let events = (self.rows > 0).then(|| {
            let mut cols: Vec<ArrayRef> = vec![Arc::new(self.ts.finish())];
            for i in 0..10 {
                cols.push(Arc::new(self.strings[i].finish()));
            }
            cols.push(Arc::new(self.bytes.finish()));
            cols.push(Arc::new(self.latency.finish()));
            for i in 10..14 {
                cols.push(Arc::new(self.strings[i].finish()));
            }
            cols.push(Arc::new(self.offset.finish()));
            cols.push(Arc::new(self.line.finish()));
            RecordBatch::try_new(event_rows.clone(), cols).expect("builders match event_rows")
        });
        let hits = (self.hits > 0).then(|| {
            let cols: Vec<ArrayRef> = vec![
                Arc::new(self.h_ts.finish()),
                Arc::new(self.h_symbol.finish()),
                Arc::new(self.h_feature_set.finish()),
                Arc::new(self.h_key.finish()),
                Arc::new(self.h_bytes.finish()),
                Arc::new(self.h_latency.finish()),
                Arc::new(self.h_file.finish()),
                Arc::new(self.h_offset.finish()),
                Arc::new(self.h_line.finish()),
            ];
            RecordBatch::try_new(hit_rows.clone(), cols).expect("builders match hit_rows")
        });
        self.rows = 0;
        self.hits = 0;
        self.text_bytes = 0;
        Finished {
            event_rows: events,
            hit_rows: hits,
            rows,
            counts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn hit(key: Option<&'static str>) -> Parsed<'static> {
        Parsed {
            ts: Some(1),
            level: Some(Cow::Borrowed("INFO")),
            event: Cow::Borrowed(Event::Hit.as_str()),
            symbol: Some(Cow::Borrowed("AAPL")),
            feature_set: Some(Cow::Borrowed("vwap")),
            key: key.map(Cow::Borrowed),
            ..Default::default()
        }
    }

    #[test]
    fn only_keys_that_round_trip_are_numbers() {
        assert_eq!(hex_key("00000000000000ff"), Some(255));
        assert_eq!(hex_key("b16c814034a985d8"), Some(0xb16c814034a985d8));
        assert_eq!(hex_key("B16C814034A985D8"), None, "upper case would come back lower");
        assert_eq!(hex_key("b16c814034a985d"), None);
        assert_eq!(hex_key("b16c814034a985dg"), None);
    }

    #[test]
    fn ordinary_hits_go_to_hit_rows_and_the_rest_whole() {
        let mut names = Names::default();
        let mut b = Batch::new();
        b.push(&hit(Some("b16c814034a985d8")), "line", "f", Some(0), &mut names, 0, 1);
        b.push(&hit(None), "line", "f", Some(0), &mut names, 5, 2);
        b.push(&hit(Some("not-hex")), "line", "f", Some(0), &mut names, 10, 3);
        let mut odd = hit(Some("b16c814034a985d8"));
        odd.level = Some(Cow::Borrowed("WARN"));
        b.push(&odd, "line", "f", Some(0), &mut names, 15, 4);
        b.push(&hit(Some("b16c814034a985d8")), "line", "f", None, &mut names, 20, 5);
        let f = b.finish(&event_rows_schema(), &hit_rows_schema());
        assert_eq!(f.hit_rows.unwrap().num_rows(), 2);
        assert_eq!(f.event_rows.unwrap().num_rows(), 3);
        assert_eq!(f.rows, 5);
        assert_eq!(f.counts.iter().map(|(_, n)| n).sum::<u64>(), 5);
        assert_eq!(names.pending().len(), 2, "AAPL and vwap");
    }

    #[test]
    fn past_the_name_limit_hits_with_new_names_are_stored_whole() {
        let mut names = Names::load((0..MAX_NAMES as i32 - 1).map(|i| (i, format!("S{i}"))));
        assert_eq!(names.id("vwap"), Some(MAX_NAMES as i32 - 1), "the last free id");
        assert_eq!(names.id("NEW"), None);
        let mut b = Batch::new();
        let mut known = hit(Some("b16c814034a985d8"));
        known.symbol = Some(Cow::Borrowed("S7"));
        b.push(&known, "line", "f", Some(0), &mut names, 0, 1);
        let mut new = hit(Some("b16c814034a985d8"));
        new.symbol = Some(Cow::Borrowed("NEW"));
        b.push(&new, "line", "f", Some(0), &mut names, 5, 2);
        let f = b.finish(&event_rows_schema(), &hit_rows_schema());
        assert_eq!(f.hit_rows.map(|r| r.num_rows()), Some(1));
        assert_eq!(f.event_rows.map(|r| r.num_rows()), Some(1));
    }

    #[test]
    fn a_rolled_back_batch_forgets_its_names() {
        let mut names = Names::load([(0, "f".to_string())]);
        assert_eq!(names.id("f"), Some(0));
        assert_eq!(names.id("AAPL"), Some(1));
        names.committed();
        assert_eq!(names.id("MSFT"), Some(2));
        names.rolled_back();
        assert!(names.pending().is_empty());
        assert_eq!(names.id("NVDA"), Some(2), "the id of the lost name is reused");
        assert_eq!(names.id("AAPL"), Some(1));
    }
}
