//! Converts public learning-platform logs to telemetry-v1 NDJSON, so the detectors can be run on
//! real (honest, unlabelled) learners.
//!
//! Formats (see each module for the exact mapping and its assumptions):
//! - [`ednet`]: EdNet KT4 (per-user action logs of the Santa TOEIC app: enter / respond / submit,
//!   play and pause of video and audio with the cursor position, quit) and EdNet KT1 (one row per
//!   answered question with its elapsed time);
//! - [`openedx`]: Open edX `tracking.log` JSON lines (video events, server `problem_check`, page
//!   views of courseware, login / logout, first-time course pass);
//! - [`uciepm`]: UCI Educational Process Mining (activity records of a lab simulator with the
//!   window in focus and mouse and keyboard counts) as heartbeats carrying `input_events`.
//!
//! Every produced line is checked with [`creditguard_contract::parse_event`] before it is kept.
//! Every source record that produces no event is counted under a reason ([`Stats::skipped`]);
//! records folded into another event (the answers of a quiz) are counted in [`Stats::folded`];
//! events beyond a record's own (the further heartbeats of a long activity record) in
//! [`Stats::added`].
//! IDs are deterministic: a per-dataset prefix plus the source file and line.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

pub mod ednet;
pub mod openedx;
pub mod uciepm;

/// The source formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// EdNet KT4 action logs (`KT4/u*.csv` plus `contents/questions.csv`, `lectures.csv`).
    EdnetKt4,
    /// EdNet KT1 answer logs (`KT1_merged/*.csv` with part and correctness; or raw `u*.csv` with
    /// `contents/questions.csv`).
    EdnetKt1,
    /// Open edX tracking logs (one JSON event per line, `*.log` / `*.json`).
    OpenEdx,
    /// UCI EPM activity records (`Processes/Session_<n>/<student>.csv`, no header).
    UciEpm,
}

impl Format {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Format::EdnetKt4 => "ednet-kt4",
            Format::EdnetKt1 => "ednet-kt1",
            Format::OpenEdx => "openedx",
            Format::UciEpm => "uci-epm",
        }
    }
}

/// Where to read from.
#[derive(Debug, Clone)]
pub struct Options {
    /// A file or a directory (searched as each format documents).
    pub input: PathBuf,
    /// EdNet-Contents directory (`questions.csv`, `lectures.csv`); by default `contents/` inside
    /// (or beside) the input.
    pub contents: Option<PathBuf>,
}

/// One row of the synthesized course catalog (`course_id,title,category,credits,duration_s,
/// min_watch_ratio`).
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogRow {
    pub course_id: String,
    pub title: String,
    pub category: &'static str,
    pub credits: f64,
    pub duration_s: f64,
    pub min_watch_ratio: f64,
}

/// What an import read, wrote and left out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Source records read (CSV rows without the header, log lines).
    pub records: u64,
    /// Events written, per telemetry type.
    pub events: BTreeMap<String, u64>,
    /// Source records that produced no event, per reason.
    pub skipped: BTreeMap<String, u64>,
    /// Source records folded into another event (e.g. answers into their quiz), per reason.
    pub folded: BTreeMap<String, u64>,
    /// Events written beyond the one of their source record, per reason: `records` =
    /// events − added + skipped + folded.
    pub added: BTreeMap<String, u64>,
    /// Distinct learners (telemetry `user_id`) in the output.
    pub users: BTreeSet<String>,
}

impl Stats {
    pub(crate) fn skip(&mut self, reason: impl Into<String>) {
        *self.skipped.entry(reason.into()).or_default() += 1;
    }

    pub(crate) fn fold(&mut self, reason: impl Into<String>) {
        *self.folded.entry(reason.into()).or_default() += 1;
    }

    pub(crate) fn add(&mut self, reason: impl Into<String>) {
        *self.added.entry(reason.into()).or_default() += 1;
    }

    /// Events written.
    pub fn total_events(&self) -> u64 {
        self.events.values().sum()
    }

    /// Events written beyond the one of their source record.
    pub fn total_added(&self) -> u64 {
        self.added.values().sum()
    }

    /// Records that produced no event.
    pub fn total_skipped(&self) -> u64 {
        self.skipped.values().sum()
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "records read: {}; events written: {}; learners: {}",
            self.records,
            self.total_events(),
            self.users.len()
        )?;
        for (t, n) in &self.events {
            writeln!(f, "  event {t}: {n}")?;
        }
        for (r, n) in &self.folded {
            writeln!(f, "  folded ({r}): {n}")?;
        }
        for (r, n) in &self.added {
            writeln!(f, "  added ({r}): {n}")?;
        }
        writeln!(f, "records not mapped: {}", self.total_skipped())?;
        for (r, n) in &self.skipped {
            writeln!(f, "  skipped ({r}): {n}")?;
        }
        Ok(())
    }
}

/// The result of an import: validated NDJSON lines (no trailing newline), the catalog, counts.
#[derive(Debug, Clone, Default)]
pub struct Import {
    pub lines: Vec<String>,
    pub catalog: Vec<CatalogRow>,
    /// Courses in the events left out of the catalog because the data shows no length for them
    /// (the catalog requires `duration_s` > 0): no video length in EdNet-Contents, no video
    /// position in Open edX. Their events are kept; a completion of one has no catalog row.
    pub uncatalogued: Vec<String>,
    pub stats: Stats,
}

impl Import {
    /// Serializes an event, validates it against the contract and keeps it; an event the
    /// contract rejects is counted as skipped with the validator's reason (a mapping bug).
    pub(crate) fn push(&mut self, event: Map<String, Value>) {
        let line = Value::Object(event).to_string();
        match creditguard_contract::parse_event(line.as_bytes()) {
            Ok(ev) => {
                *self
                    .stats
                    .events
                    .entry(ev.event_type.as_str().to_string())
                    .or_default() += 1;
                if !self.stats.users.contains(ev.user_id.as_ref()) {
                    self.stats.users.insert(ev.user_id.to_string());
                }
                self.lines.push(line);
            }
            Err(rej) => self
                .stats
                .skip(format!("contract rejected the mapped event: {rej}")),
        }
    }
}

/// An import failed as a whole (unreadable input, missing reference data).
#[derive(Debug)]
pub enum Error {
    Io(PathBuf, io::Error),
    Input(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(p, e) => write!(f, "{}: {e}", p.display()),
            Error::Input(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// Imports `opts.input` in `format`.
pub fn import(format: Format, opts: &Options) -> Result<Import> {
    let mut out = match format {
        Format::EdnetKt4 => ednet::import_kt4(opts),
        Format::EdnetKt1 => ednet::import_kt1(opts),
        Format::OpenEdx => openedx::import(opts),
        Format::UciEpm => uciepm::import(opts),
    }?;
    let (known, unknown): (Vec<CatalogRow>, Vec<CatalogRow>) =
        out.catalog.drain(..).partition(|r| r.duration_s > 0.0);
    out.catalog = known;
    out.uncatalogued = unknown.into_iter().map(|r| r.course_id).collect();
    Ok(out)
}

/// Writes the lines as NDJSON; zstd-compressed when the name ends in `.zst`.
pub fn write_ndjson(path: &Path, lines: &[String]) -> Result<()> {
    let io_err = |e| Error::Io(path.to_path_buf(), e);
    let file = File::create(path).map_err(io_err)?;
    let compressed = path.extension().is_some_and(|e| e == "zst");
    let mut out: Box<dyn Write> = if compressed {
        Box::new(zstd::Encoder::new(file, 3).map_err(io_err)?.auto_finish())
    } else {
        Box::new(BufWriter::new(file))
    };
    for l in lines {
        out.write_all(l.as_bytes()).map_err(io_err)?;
        out.write_all(b"\n").map_err(io_err)?;
    }
    out.flush().map_err(io_err)
}

/// The catalog as CSV text (header included). Titles never hold commas or quotes (the
/// importers build them), so no quoting is needed.
pub fn catalog_csv(rows: &[CatalogRow]) -> String {
    let mut s = String::from("course_id,title,category,credits,duration_s,min_watch_ratio\n");
    for r in rows {
        s.push_str(&format!(
            "{},{},{},{},{},{}\n",
            r.course_id, r.title, r.category, r.credits, r.duration_s, r.min_watch_ratio
        ));
    }
    s
}

/// Writes the catalog CSV.
pub fn write_catalog(path: &Path, rows: &[CatalogRow]) -> Result<()> {
    std::fs::write(path, catalog_csv(rows)).map_err(|e| Error::Io(path.to_path_buf(), e))
}

/// UTC milliseconds since the epoch as RFC 3339.
pub(crate) fn rfc3339_ms(ms: i64) -> String {
    creditguard_contract::time::format_rfc3339_us(ms * 1000)
}

/// Splits one CSV line (RFC 4180 quoting; no embedded newlines in these sources).
pub(crate) fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if cur.is_empty() => quoted = true,
            (',', false) => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// A CSV file with a header: rows as `(1-based line number, fields)`, header as names.
pub(crate) struct Csv {
    pub header: Vec<String>,
    pub rows: Vec<(u64, Vec<String>)>,
}

impl Csv {
    pub fn read(path: &Path) -> Result<Csv> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Io(path.to_path_buf(), e))?;
        let mut lines = text.lines().enumerate();
        let header = match lines.next() {
            Some((_, h)) => split_csv(h.trim_start_matches('\u{feff}').trim_end_matches('\r')),
            None => Vec::new(),
        };
        let rows = lines
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| (i as u64 + 1, split_csv(l.trim_end_matches('\r'))))
            .collect();
        Ok(Csv { header, rows })
    }

    /// The index of a column, if the header has it.
    pub fn col(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h.trim() == name)
    }
}

/// The field at `i` of a row, trimmed ("" when the row is short).
pub(crate) fn field(row: &[String], i: usize) -> &str {
    row.get(i).map(|s| s.trim()).unwrap_or("")
}

/// The files of `dir` whose name ends in one of `exts`, sorted by name.
pub(crate) fn files_in(dir: &Path, exts: &[&str]) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::Io(dir.to_path_buf(), e))?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            exts.iter().any(|x| name.ends_with(x))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// The file name of a path, for ids and messages.
pub(crate) fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Builds an event object from `(field, value)` pairs, leaving out nulls.
pub(crate) fn event(pairs: Vec<(&str, Value)>) -> Map<String, Value> {
    pairs
        .into_iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}
