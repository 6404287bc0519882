//! Labeled datasets from pasted text or files, read as bytes: TSV, CSV (quoted fields, optional
//! header), JSON Lines (`{"text": ..., "label": ...}`), and text pairs (a third column / `text_b`).
//! Every problem becomes a message with its line number; bad rows are skipped, never fatal, except
//! when nothing trainable is left (no rows, or a single class).

use crate::error::{Error, Result};
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub text: String,
    /// The second segment of a text-pair row.
    pub text_b: Option<String>,
    pub label: String,
    /// 1-based line of the source.
    pub line: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Warning,
    Error,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// 1-based line, or 0 for the whole dataset.
    pub line: usize,
    pub severity: Severity,
    pub text: String,
}

impl std::fmt::Display for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sev = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        if self.line > 0 {
            write!(f, "line {}: {sev}: {}", self.line, self.text)
        } else {
            write!(f, "{sev}: {}", self.text)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Tsv,
    Csv,
    JsonLines,
}

#[derive(Debug, Clone, Default)]
pub struct Dataset {
    pub examples: Vec<Example>,
    /// Labels in first-seen order of their sorted names: index = class id.
    pub labels: Vec<String>,
    pub messages: Vec<Message>,
    /// The input read as plain text (a corpus), not as labeled rows.
    pub plain: bool,
    /// The input is no data at all (not text, empty, or over the size limit): its one message says
    /// why, and it must not replace data already in use.
    pub unreadable: bool,
}

impl Dataset {
    pub fn label_id(&self, label: &str) -> Option<usize> {
        self.labels.iter().position(|l| l == label)
    }
    pub fn label_counts(&self) -> Vec<(String, usize)> {
        let mut c: BTreeMap<&str, usize> = BTreeMap::new();
        for e in &self.examples {
            *c.entry(&e.label).or_default() += 1;
        }
        self.labels.iter().map(|l| (l.clone(), c.get(l.as_str()).copied().unwrap_or(0))).collect()
    }
    pub fn has_errors(&self) -> bool {
        self.messages.iter().any(|m| m.severity == Severity::Error)
    }
    /// Whether training can start: rows left, at least two classes, and classes that have examples
    /// to learn from (when most classes hold one example, the "labels" are text: the data is not
    /// labeled rows).
    pub fn trainable(&self) -> Result<()> {
        self.why_untrainable().map_or(Ok(()), |message| Err(Error::Data { line: 0, message }))
    }

    /// Why training cannot start, in words (None: it can).
    pub fn why_untrainable(&self) -> Option<String> {
        if self.unreadable {
            return Some(self.messages.first().map(|m| m.text.clone()).unwrap_or_default());
        }
        if self.examples.is_empty() {
            return Some(self.messages.iter().find(|m| m.line == 0).map(|m| m.text.clone()).unwrap_or_else(|| "no usable labeled rows".into()));
        }
        if self.labels.len() < 2 {
            return Some(format!("only one class ({}); a classifier needs at least two labels", self.labels.first().cloned().unwrap_or_default()));
        }
        let singles = self.label_counts().iter().filter(|(_, n)| *n < 2).count();
        if 2 * singles > self.labels.len() {
            return Some(format!(
                "{singles} of the {} classes have a single example ({} rows in all): this does not look like labeled data. A classifier needs several examples of each label, one per row: `label<TAB>text`",
                self.labels.len(),
                self.examples.len()
            ));
        }
        None
    }
}

/// Guesses the format from the first non-empty line.
pub fn detect_format(bytes: &[u8]) -> Format {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]);
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    if first.trim_start().starts_with('{') {
        Format::JsonLines
    } else if first.contains('\t') {
        Format::Tsv
    } else {
        Format::Csv
    }
}

/// Splits one CSV record (RFC 4180 quotes, doubled quotes inside) or TSV line into fields.
fn split_fields(line: &str, sep: char) -> Result<Vec<String>> {
    if sep == '\t' {
        return Ok(line.split('\t').map(|s| s.to_string()).collect());
    }
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    cur.push('"');
                    chars.next();
                } else {
                    quoted = false;
                }
            } else {
                cur.push(c);
            }
        } else if c == '"' && at_start {
            quoted = true;
            at_start = false;
        } else if c == sep {
            fields.push(std::mem::take(&mut cur));
            at_start = true;
        } else {
            cur.push(c);
            at_start = false;
        }
    }
    if quoted {
        return Err(Error::Data { line: 0, message: "a quoted field is not closed".into() });
    }
    fields.push(cur);
    Ok(fields)
}

/// Records of a CSV file: a quoted field may span lines. Returns (first line number, record text).
/// CSV records (line, text) and the line of a quote that never closes (its record is not among
/// them: it would swallow the rest of the file as one field).
fn csv_records(text: &str) -> (Vec<(usize, String)>, Option<usize>) {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut start = 0;
    let mut quotes = 0usize;
    for (i, line) in text.lines().enumerate() {
        if cur.is_empty() && quotes % 2 == 0 {
            start = i + 1;
        } else {
            cur.push('\n');
        }
        cur.push_str(line);
        quotes += line.matches('"').count();
        if quotes % 2 == 0 {
            out.push((start, std::mem::take(&mut cur)));
            quotes = 0;
        }
    }
    if !cur.is_empty() {
        return (out, Some(start));
    }
    (out, None)
}

/// The most labeled text read at once: a larger file is refused before it is read, naming this.
pub const MAX_BYTES: u64 = 64 << 20;
/// Rows beyond this are skipped, with one message naming the limit.
pub const MAX_ROWS: usize = 50_000;
/// A longer text is cut to this many characters, with a message (the model reads at most 512
/// tokens of it anyway).
pub const MAX_TEXT_CHARS: usize = 20_000;

/// Refuses data of `bytes` bytes over [`MAX_BYTES`] before anything is read or allocated.
pub fn check_size(bytes: u64) -> Result<()> {
    if bytes > MAX_BYTES {
        return Err(Error::Limit(format!(
            "the data is {:.1} MB; BERT Lab reads at most {} MB of labeled text at once (split the file or take a sample of it)",
            bytes as f64 / 1e6,
            MAX_BYTES >> 20
        )));
    }
    Ok(())
}

/// `s` cut to [`MAX_TEXT_CHARS`] characters, and whether it was cut.
fn cap_text(s: String) -> (String, bool) {
    match s.char_indices().nth(MAX_TEXT_CHARS) {
        Some((at, _)) => (s[..at].to_string(), true),
        None => (s, false),
    }
}

const LABEL_NAMES: &[&str] = &["label", "labels", "class", "category", "target", "sentiment", "topic"];
const TEXT_NAMES: &[&str] = &["text", "sentence", "sentence1", "review", "content", "text_a", "document"];
const TEXT_B_NAMES: &[&str] = &["text_b", "sentence2", "text_pair", "pair"];

/// Reads a dataset. Invalid UTF-8 lines, empty and unlabeled rows are reported and skipped;
/// duplicate rows are removed (reported with both line numbers); a single class is an error.
pub fn parse(bytes: &[u8], format: Option<Format>) -> Dataset {
    let mut ds = Dataset::default();
    if let Err(e) = check_size(bytes.len() as u64) {
        ds.messages.push(Message { line: 0, severity: Severity::Error, text: e.to_string() });
        ds.unreadable = true;
        return ds;
    }
    if bytes.trim_ascii().is_empty() {
        ds.messages.push(Message { line: 0, severity: Severity::Error, text: "the file is empty: there is nothing in it to read".into() });
        ds.unreadable = true;
        return ds;
    }
    // a binary file (a spreadsheet, an archive, an image) is not read row by row into noise
    let head = &bytes[..bytes.len().min(8192)];
    // (a NUL or two inside a text is data; binary formats are full of them)
    let nuls = head.iter().filter(|&&b| b == 0).count();
    if nuls * 100 > head.len() || (head.len() >= 64 && String::from_utf8_lossy(head).matches('\u{FFFD}').count() * 20 > head.len()) {
        ds.messages.push(Message { line: 0, severity: Severity::Error, text: "the file is not text (it holds NUL bytes or is mostly not UTF-8: a spreadsheet, an archive or an image?). Save the data as UTF-8 text: TSV, CSV or JSON lines".into() });
        ds.unreadable = true;
        return ds;
    }
    let guessed = format.is_none();
    let format = format.unwrap_or_else(|| detect_format(bytes));
    let mut records_read = 0usize;
    // a file's final newline ends its last row; it does not start an empty one
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    // Valid UTF-8 with Unix line ends (the common case) is read in place; otherwise it is decoded
    // line by line, so an invalid byte costs one line, with its number. Either way the rows are the
    // only copy of the text that is kept (peak memory: the input and the rows).
    let text: std::borrow::Cow<str> = match std::str::from_utf8(bytes) {
        Ok(s) if !s.contains('\r') => std::borrow::Cow::Borrowed(s),
        _ => {
            let mut text = String::with_capacity(bytes.len());
            for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
                match std::str::from_utf8(raw) {
                    Ok(s) => text.push_str(s.strip_suffix('\r').unwrap_or(s)),
                    Err(_) => ds.messages.push(Message { line: i + 1, severity: Severity::Error, text: "invalid UTF-8; the row is skipped (save the file as UTF-8)".into() }),
                }
                text.push('\n');
            }
            std::borrow::Cow::Owned(text)
        }
    };
    let mut rows: Vec<Example> = Vec::new();
    match format {
        Format::JsonLines => {
            for (i, line) in text.lines().enumerate() {
                let n = i + 1;
                if line.trim().is_empty() {
                    continue;
                }
                let v: serde_json::Value = match serde_json::from_str(line) {
                    Ok(v) => v,
                    Err(e) => {
                        ds.messages.push(Message { line: n, severity: Severity::Error, text: format!("not valid JSON ({e}); the row is skipped") });
                        continue;
                    }
                };
                let field = |names: &[&str]| names.iter().find_map(|k| v.get(*k)).map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string()));
                let text = field(TEXT_NAMES).unwrap_or_default();
                let label = field(LABEL_NAMES).unwrap_or_default();
                let text_b = field(TEXT_B_NAMES);
                rows.push(Example { text, text_b, label, line: n });
            }
        }
        Format::Tsv | Format::Csv => {
            let sep = if format == Format::Tsv { '\t' } else { ',' };
            // CSV rows may span lines (quoted newlines) and are joined; TSV rows are read in place
            let records: Box<dyn Iterator<Item = (usize, std::borrow::Cow<str>)>> = if sep == ',' {
                let (records, unclosed) = csv_records(&text);
                if let Some(line) = unclosed {
                    ds.messages.push(Message { line, severity: Severity::Error, text: "a quote (\") opened on this line never closes, so everything after it would be one field; the rows from here on are skipped. Close the quote, or write a quote inside a field as \"\"".into() });
                }
                Box::new(records.into_iter().map(|(n, r)| (n, std::borrow::Cow::Owned(r))))
            } else {
                Box::new(text.lines().enumerate().map(|(i, l)| (i + 1, std::borrow::Cow::Borrowed(l))))
            };
            let mut cols: Option<(usize, usize, Option<usize>)> = None;
            let mut first = true;
            for (n, rec) in records {
                if rec.trim().is_empty() {
                    if !first {
                        ds.messages.push(Message { line: n, severity: Severity::Warning, text: "empty row skipped".into() });
                    }
                    continue;
                }
                records_read += 1;
                let fields = match split_fields(&rec, sep) {
                    Ok(f) => f,
                    Err(e) => {
                        ds.messages.push(Message { line: n, severity: Severity::Error, text: format!("{e}; the row is skipped") });
                        continue;
                    }
                };
                if first {
                    first = false;
                    let lower: Vec<String> = fields.iter().map(|f| f.trim().to_lowercase()).collect();
                    let find = |names: &[&str]| lower.iter().position(|f| names.contains(&f.as_str()));
                    if let (Some(l), Some(t)) = (find(LABEL_NAMES), find(TEXT_NAMES)) {
                        cols = Some((l, t, find(TEXT_B_NAMES)));
                        continue; // a header
                    }
                }
                // no header: label first, then text, then an optional second text
                let (l, t, tb) = cols.unwrap_or((0, 1, if fields.len() >= 3 { Some(2) } else { None }));
                let get = |i: usize| fields.get(i).map(|s| s.trim().to_string()).unwrap_or_default();
                rows.push(Example { text: get(t), text_b: tb.map(get).filter(|s| !s.is_empty()), label: get(l), line: n });
            }
        }
    }
    // validate rows
    if rows.len() > MAX_ROWS {
        let first_skipped = rows[MAX_ROWS].line;
        ds.messages.push(Message {
            line: first_skipped,
            severity: Severity::Warning,
            text: format!("only the first {MAX_ROWS} rows are read (the limit); {} rows from here on are skipped", rows.len() - MAX_ROWS),
        });
        rows.truncate(MAX_ROWS);
    }
    // duplicates are found by a hash of (text, second text, label), then compared in full: the
    // texts are not copied into the map
    let mut seen: HashMap<u64, Vec<usize>> = HashMap::new();
    let key_hash = |r: &Example| {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (&r.text, &r.text_b, &r.label).hash(&mut h);
        h.finish()
    };
    for mut r in rows {
        let (text, cut_a) = cap_text(std::mem::take(&mut r.text));
        r.text = text;
        let cut_b = match r.text_b.take() {
            Some(b) => {
                let (b, cut) = cap_text(b);
                r.text_b = Some(b);
                cut
            }
            None => false,
        };
        if cut_a || cut_b {
            ds.messages.push(Message { line: r.line, severity: Severity::Warning, text: format!("text longer than {MAX_TEXT_CHARS} characters; cut to the first {MAX_TEXT_CHARS} (the model reads at most 512 tokens)") });
        }
        if r.text.trim().is_empty() {
            ds.messages.push(Message { line: r.line, severity: Severity::Warning, text: "no text; the row is skipped".into() });
            continue;
        }
        if r.label.trim().is_empty() {
            ds.messages.push(Message { line: r.line, severity: Severity::Warning, text: "no label; the row is skipped (unlabeled text can still be used for pretraining)".into() });
            continue;
        }
        let same = seen.entry(key_hash(&r)).or_default();
        if let Some(&first) = same.iter().find(|&&i| {
            let e = &ds.examples[i];
            e.text == r.text && e.text_b == r.text_b && e.label == r.label
        }) {
            ds.messages.push(Message { line: r.line, severity: Severity::Warning, text: format!("duplicate of line {}; removed before the train/validation split", ds.examples[first].line) });
            continue;
        }
        same.push(ds.examples.len());
        ds.examples.push(r);
    }
    let mut labels: Vec<String> = ds.examples.iter().map(|e| e.label.clone()).collect();
    labels.sort();
    labels.dedup();
    ds.labels = labels;
    // plain text (a corpus for pretraining: sentences, commas inside them, no tabs) guessed as CSV:
    // most lines give no "text" column, and what does give one has a "label" per row
    if format == Format::Csv && guessed && plain_text(&ds, records_read) {
        return Dataset {
            plain: true,
            messages: vec![Message { line: 0, severity: Severity::Warning, text: format!("{records_read} lines of plain text (not rows of label and text): ready for pretraining. To fine-tune a classifier, bring labeled rows: `label<TAB>text`, CSV with label and text columns, or JSON lines") }],
            ..Default::default()
        };
    }
    summarise_messages(&mut ds.messages);
    if ds.examples.is_empty() {
        ds.messages.push(Message { line: 0, severity: Severity::Error, text: "no usable labeled rows: expected lines like `label<TAB>text`, CSV with label and text columns, or JSON lines {\"text\": ..., \"label\": ...}".into() });
    } else if ds.labels.len() == 1 {
        ds.messages.push(Message { line: 0, severity: Severity::Error, text: format!("every row has the label \"{}\": a classifier needs at least two classes", ds.labels[0]) });
    }
    ds
}

/// Whether CSV-parsed `ds` (from `records` non-empty records) is plain text: fewer than half the
/// records became examples, or most of its "classes" hold a single example.
fn plain_text(ds: &Dataset, records: usize) -> bool {
    if records < 4 {
        return false;
    }
    let singles = ds.label_counts().iter().filter(|(_, n)| *n < 2).count();
    2 * ds.examples.len() < records || (ds.labels.len() > 2 && 2 * singles > ds.labels.len())
}

/// How many messages of one kind are listed before the rest are summed up in one line.
pub const MESSAGES_PER_KIND: usize = 5;

/// Keeps the first [`MESSAGES_PER_KIND`] messages of each kind (the same text on other lines) and
/// says how many more there are, with their last line, in one message after them.
fn summarise_messages(messages: &mut Vec<Message>) {
    let mut count: HashMap<(Severity, String), (usize, usize)> = HashMap::new();
    let mut kept = Vec::new();
    for m in messages.drain(..) {
        let e = count.entry((m.severity, m.text.clone())).or_insert((0, 0));
        e.0 += 1;
        e.1 = m.line;
        if e.0 <= MESSAGES_PER_KIND {
            kept.push(m);
        }
    }
    let mut out = Vec::new();
    for (i, m) in kept.iter().enumerate() {
        out.push(m.clone());
        let (n, last) = count[&(m.severity, m.text.clone())];
        // after the last one listed of its kind
        let listed_last = kept[i + 1..].iter().all(|o| o.severity != m.severity || o.text != m.text);
        if listed_last && n > MESSAGES_PER_KIND {
            out.push(Message { line: 0, severity: m.severity, text: format!("…and {} more like it (\"{}\"), up to line {last}", n - MESSAGES_PER_KIND, m.text) });
        }
    }
    *messages = out;
}

/// A deterministic stratified split: within each class (in label order), examples are shuffled by
/// `seed` and `val_fraction` of them (rounded; at least one when the class has two or more and the
/// fraction is above 0, none when it is 0) go to validation. Returns (train, validation) indices into `ds.examples`.
pub fn stratified_split(ds: &Dataset, val_fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut train = Vec::new();
    let mut val = Vec::new();
    let mut rng = crate::rng::Rng::new(seed);
    for label in &ds.labels {
        let mut idx: Vec<usize> = (0..ds.examples.len()).filter(|&i| &ds.examples[i].label == label).collect();
        for i in (1..idx.len()).rev() {
            let j = rng.below(i as u32 + 1) as usize;
            idx.swap(i, j);
        }
        // every class in both sets when there is a validation set at all; none held out for 0
        let mut k = (idx.len() as f64 * val_fraction).round() as usize;
        if idx.len() >= 2 && val_fraction > 0.0 {
            k = k.clamp(1, idx.len() - 1);
        } else {
            k = 0;
        }
        val.extend_from_slice(&idx[..k]);
        train.extend_from_slice(&idx[k..]);
    }
    train.sort_unstable();
    val.sort_unstable();
    (train, val)
}
