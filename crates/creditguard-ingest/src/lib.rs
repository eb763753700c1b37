//! Telemetry into the lake: NDJSON files (plain, `.gz`, `.zst`), directories of them, or stdin →
//! validated events → zstd Parquet under `events/dt=<event day>/`; invalid lines →
//! `dead_letters/dt=<ingest day>/` with their original bytes, source and line, and the reason.
//!
//! The building blocks are shared with the Kafka source: [`EventBuffer`] groups valid events by
//! event day and writes one deterministic file name per day; [`DeadLetter`] and
//! [`write_dead_letters`] keep rejected input; [`Deduper`] drops second deliveries of an
//! `event_id`.
//!
//! Hostile files are bounded: a line over [`IngestOptions::max_line_bytes`] is read past
//! without being held and dead-lettered as `too_large` with its first [`KEPT_PREFIX_BYTES`]; a
//! compressed file that decompresses to more than [`IngestOptions::max_decompression_ratio`]
//! times its size stops with an error naming it, after the lines before are committed; a regular
//! file is read to the length it had when opened.
//!
//! ```
//! use creditguard_ingest::{ingest, IngestOptions, Input};
//! let dir = tempfile::tempdir().unwrap();
//! let input = dir.path().join("t.ndjson");
//! std::fs::write(&input, concat!(
//!     r#"{"event_id":"e1","type":"login","ts":"2026-03-02T09:00:00+08:00","user_id":"u1","session_id":"s1"}"#, "\n",
//!     r#"{"event_id":"e1","type":"login","ts":"2026-03-02T09:00:00+08:00","user_id":"u1","session_id":"s1"}"#, "\n",
//!     "not json\n",
//! )).unwrap();
//! let lake = creditguard_lake::Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();
//! let stats = ingest(&lake, &[Input::Path(input)], &IngestOptions::default(), &mut |_| {}).unwrap();
//! assert_eq!((stats.valid, stats.duplicates, stats.dead_lettered), (1, 1, 1));
//! ```

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::builder::{
    BinaryBuilder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use creditguard_contract::time::{day_of_us, format_day};
use creditguard_contract::{
    events_schema, parse_event, ts_type, Event, EventBatchBuilder, Rejection,
};
use creditguard_lake::Lake;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use xxhash_rust::xxh3::{xxh3_128, Xxh3};

/// Errors that stop an ingest: the input cannot be read or the lake cannot be written.
/// Bad data never is one: it becomes a [`DeadLetter`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The IO error is part of the message, not a `source`: printed with its chain the reason
    /// would appear twice.
    #[error("input {path}: {error}")]
    Input { path: String, error: io::Error },
    #[error(transparent)]
    Lake(#[from] creditguard_lake::Error),
}

/// `Result` of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Valid events waiting to be written, grouped by UTC event day.
#[derive(Default)]
pub struct EventBuffer {
    days: BTreeMap<i64, EventBatchBuilder>,
    len: usize,
    /// Rows reserved for a day when its first event arrives: the largest day of the previous
    /// contents (see [`take`](Self::take)), so steady traffic fills its columns without
    /// growing them.
    reserve: usize,
}

/// One Parquet file committed to the lake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    pub path: PathBuf,
    pub day: i64,
    pub rows: usize,
}

/// At most this many rows are reserved up front for one day of an [`EventBuffer`].
const MAX_RESERVE: usize = 1 << 20;

impl EventBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one valid event read at `src` / `src_pos`.
    pub fn push(&mut self, event: &Event<'_>, src: &str, src_pos: i64) {
        let reserve = self.reserve;
        self.days
            .entry(day_of_us(event.ts_us))
            .or_insert_with(|| EventBatchBuilder::with_capacity(reserve))
            .push(event, src, src_pos);
        self.len += 1;
    }

    /// Events buffered.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Event days buffered.
    pub fn days(&self) -> usize {
        self.days.len()
    }

    /// Moves the buffered events out, leaving an empty buffer that reserves as many rows for
    /// each new day as the largest day taken had.
    pub fn take(&mut self) -> EventBuffer {
        let largest = self.days.values().map(EventBatchBuilder::len).max();
        let reserve = largest.map_or(self.reserve, |n| n.min(MAX_RESERVE));
        std::mem::replace(
            self,
            EventBuffer {
                reserve,
                ..EventBuffer::default()
            },
        )
    }

    /// The buffered events as one batch per day, in day order.
    pub fn finish(self) -> Vec<(i64, RecordBatch)> {
        self.days
            .into_iter()
            .map(|(day, mut builder)| (day, builder.finish()))
            .collect()
    }

    /// Writes each day's events to `events/dt=<day>/<file_name>` (atomically, so a replay that
    /// uses the same deterministic name replaces instead of duplicating) and empties the buffer.
    pub fn write(&mut self, lake: &Lake, file_name: &str) -> Result<Vec<WrittenFile>> {
        let schema = events_schema();
        let props = event_writer_properties();
        let batches = self.take().finish();
        let mut written = Vec::with_capacity(batches.len());
        for (day, batch) in batches {
            let rows = batch.num_rows();
            let path = lake.write_parquet_with(
                "events",
                day,
                file_name,
                schema.clone(),
                &[batch],
                props.clone(),
            )?;
            tracing::debug!(day = %format_day(day), rows, path = %path.display(), "Committed events file.");
            written.push(WrittenFile { path, day, rows });
        }
        Ok(written)
    }
}

/// Columns of `events` whose values (almost) never repeat inside a file: a dictionary page
/// only costs hashing every value before the writer falls back to plain encoding.
pub const NO_DICTIONARY: &[&str] = &["event_id", "ts", "received_at", "position_s", "src_pos"];

/// Columns of `events` that readers select on (time ranges, one learner, one type, one course):
/// only these carry min/max statistics. Computing them for all 32 columns cost about 0.1 µs an
/// event (`benches/ingest.rs --stages`), for statistics nobody filters by.
pub const WITH_STATISTICS: &[&str] = &[
    "ts",
    "received_at",
    "user_id",
    "event_type",
    "course_id",
    "session_id",
];

/// The writer properties of `events` files, from the file path and from Kafka alike: the lake's
/// ([`creditguard_lake::writer_properties`]: zstd(1), row groups) without dictionaries for
/// [`NO_DICTIONARY`] and with column-chunk statistics for [`WITH_STATISTICS`] only.
pub fn event_writer_properties() -> WriterProperties {
    let mut b = creditguard_lake::writer_properties()
        .into_builder()
        .set_statistics_enabled(EnabledStatistics::None);
    for c in NO_DICTIONARY {
        b = b.set_column_dictionary_enabled(ColumnPath::from(*c), false);
    }
    for c in WITH_STATISTICS {
        b = b.set_column_statistics_enabled(ColumnPath::from(*c), EnabledStatistics::Chunk);
    }
    b.build()
}

/// Lines read and validated together (see [`Deduper::first_of_each`]).
const BATCH_LINES: usize = 64;

/// Drops second deliveries of an `event_id` (producers deliver twice). Keeps a 128-bit hash per
/// id: 16 bytes an event, and a collision (which would drop a real event) is out of reach.
///
/// The set is an open-addressing table of the hashes themselves (linear probing, at most 3/4
/// full, 0 marks a free slot): a lookup is one random memory access plus a short sequential
/// probe, which is what matters once the set outgrows the CPU caches.
pub struct Deduper {
    slots: Vec<u128>,
    len: usize,
    /// Whether the one id that hashes to 0 (the free-slot mark) was seen.
    zero: bool,
}

impl Default for Deduper {
    fn default() -> Self {
        Deduper {
            slots: vec![0; 1 << 16],
            len: 0,
            zero: false,
        }
    }
}

impl Deduper {
    /// Whether `event_id` is seen for the first time (and remembers it).
    pub fn first(&mut self, event_id: &str) -> bool {
        self.first_hashed(Self::hash(event_id))
    }

    /// The hash the set keeps of an id.
    pub fn hash(event_id: &str) -> u128 {
        xxh3_128(event_id.as_bytes())
    }

    /// For each hash (of [`hash`](Self::hash)), in order, whether it is seen for the first time
    /// (and remembers it). Once the set is far larger than the CPU caches each lookup waits on
    /// memory, so the slots of the whole batch are read first, all at once: independent reads
    /// overlap (the CPU keeps about ten in flight), and the lookups that follow hit the cache.
    pub fn first_of_each(&mut self, hashes: &[u128]) -> Vec<bool> {
        self.warm(hashes);
        hashes.iter().map(|&h| self.first_hashed(h)).collect()
    }

    fn warm(&self, hashes: &[u128]) {
        let mask = self.slots.len() - 1;
        let touched = hashes
            .iter()
            .fold(0u128, |acc, &h| acc ^ self.slots[(h >> 64) as usize & mask]);
        std::hint::black_box(touched);
    }

    fn first_hashed(&mut self, h: u128) -> bool {
        if h == 0 {
            return !std::mem::replace(&mut self.zero, true);
        }
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        let inserted = Self::insert(&mut self.slots, h);
        self.len += usize::from(inserted);
        inserted
    }

    /// Ids remembered.
    pub fn len(&self) -> usize {
        self.len + usize::from(self.zero)
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn insert(slots: &mut [u128], h: u128) -> bool {
        let mask = slots.len() - 1;
        let mut i = (h >> 64) as usize & mask;
        loop {
            match slots[i] {
                0 => {
                    slots[i] = h;
                    return true;
                }
                s if s == h => return false,
                _ => i = (i + 1) & mask,
            }
        }
    }

    fn grow(&mut self) {
        let bigger = vec![0; self.slots.len() * 2];
        let old = std::mem::replace(&mut self.slots, bigger);
        for h in old.into_iter().filter(|&h| h != 0) {
            Self::insert(&mut self.slots, h);
        }
    }
}

/// One rejected input record, kept with its original bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The bytes exactly as read (without the line terminator).
    pub raw: Vec<u8>,
    /// Where it came from: a file path, `stdin`, or `topic/partition`.
    pub source: String,
    /// Line number (1-based) or offset.
    pub position: i64,
    /// [`RejectKind`](creditguard_contract::RejectKind) name, e.g. `missing_field`.
    pub kind: String,
    /// One line a person can read.
    pub reason: String,
}

impl DeadLetter {
    /// A dead letter for a rejection.
    pub fn new(raw: &[u8], source: &str, position: i64, rejection: &Rejection) -> Self {
        DeadLetter {
            raw: raw.to_vec(),
            source: source.to_string(),
            position,
            kind: rejection.kind.as_str().to_string(),
            reason: rejection.reason.clone(),
        }
    }
}

/// Arrow schema of the `dead_letters` table.
pub fn dead_letters_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("raw", DataType::Binary, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("position", DataType::Int64, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("rejected_at", ts_type(), false),
    ]))
}

/// Writes dead letters to `dead_letters/dt=<day>/<file_name>` atomically.
pub fn write_dead_letters(
    lake: &Lake,
    day: i64,
    file_name: &str,
    letters: &[DeadLetter],
) -> Result<PathBuf> {
    let now = now_us();
    let mut raw = BinaryBuilder::new();
    let mut source = StringBuilder::new();
    let mut position = Int64Builder::new();
    let mut kind = StringBuilder::new();
    let mut reason = StringBuilder::new();
    let mut at = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    for l in letters {
        raw.append_value(&l.raw);
        source.append_value(&l.source);
        position.append_value(l.position);
        kind.append_value(&l.kind);
        reason.append_value(&l.reason);
        at.append_value(now);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(raw.finish()),
        Arc::new(source.finish()),
        Arc::new(position.finish()),
        Arc::new(kind.finish()),
        Arc::new(reason.finish()),
        Arc::new(at.finish()),
    ];
    let batch = RecordBatch::try_new(dead_letters_schema(), columns)
        .expect("columns match dead_letters_schema");
    Ok(lake.write_parquet(
        "dead_letters",
        day,
        file_name,
        dead_letters_schema(),
        &[batch],
    )?)
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Where telemetry is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A file (`.gz` / `.zst` decompressed by extension) or a directory of them.
    Path(PathBuf),
    /// Standard input (plain NDJSON).
    Stdin,
}

/// Settings of a file ingest (the pipeline file's `[ingest]` section).
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Input lines per output chunk: each chunk becomes one file per event day. Bounds memory
    /// (roughly 250 bytes an event while buffered).
    pub chunk_lines: usize,
    /// A chunk also ends once its lines (as held: an oversized line counts its kept prefix)
    /// reach this many bytes. Bounds the memory of a chunk of long lines, invalid ones
    /// included (each dead letter holds its line until the chunk is written).
    pub chunk_bytes: u64,
    /// Pseudonymise identifiers before they are written (`[privacy]`); `None` keeps them raw.
    pub privacy: Option<creditguard_contract::privacy::Pseudonymiser>,
    /// Lines longer than this (without the line ending) are not parsed: they are read past
    /// without being held, and dead-lettered as `too_large` with their first
    /// [`KEPT_PREFIX_BYTES`] and their length.
    pub max_line_bytes: usize,
    /// A compressed file that decompresses to more than this many times its compressed size
    /// (checked past [`RATIO_CHECK_AFTER`] of output) stops with an error naming the file:
    /// a decompression bomb. 0: no cap.
    pub max_decompression_ratio: u64,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            chunk_lines: 500_000,
            chunk_bytes: DEFAULT_CHUNK_BYTES,
            privacy: None,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            max_decompression_ratio: DEFAULT_MAX_DECOMPRESSION_RATIO,
        }
    }
}

/// The default cap on one input record, a line or a Kafka message: 4 MiB, four thousand
/// times a typical event.
pub const DEFAULT_MAX_LINE_BYTES: usize = 4 << 20;

/// The default of [`IngestOptions::chunk_bytes`]: 256 MiB, above the 500 000 lines of a
/// default chunk of ordinary telemetry (about 190 MB).
pub const DEFAULT_CHUNK_BYTES: u64 = 256 << 20;

/// The dead letter of a record over the size cap keeps this many of its first bytes.
pub const KEPT_PREFIX_BYTES: usize = 64 << 10;

/// The default decompression ratio cap. NDJSON telemetry compresses 5–30 times with gzip or
/// zstd; a file of nothing but line ends or one repeated line, far more.
pub const DEFAULT_MAX_DECOMPRESSION_RATIO: u64 = 100;

/// The decompression ratio is checked only past this much output: the first blocks of a file
/// can compress far better than the whole.
pub const RATIO_CHECK_AFTER: u64 = 16 << 20;

/// The rejection of a record of `len` bytes over the cap `max` (named by `setting`).
/// The rejection of a record of `len` bytes over the cap `max` (named by `setting`), of which
/// the dead letter keeps the first `kept`.
pub fn too_large(len: u64, kept: usize, max: usize, setting: &str) -> Rejection {
    Rejection {
        kind: creditguard_contract::RejectKind::TooLarge,
        field: None,
        reason: format!(
            "{len} bytes, over the limit of {max} ({setting}): not parsed; the dead letter keeps the first {kept} bytes"
        ),
    }
}

/// What an ingest did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestStats {
    /// Input files read (stdin counts as one).
    pub sources: usize,
    /// Bytes of input read, before decompression.
    pub bytes: u64,
    /// Lines read, blank ones included.
    pub lines: u64,
    /// Blank lines (not events; skipped).
    pub blank: u64,
    /// Valid events written.
    pub valid: u64,
    /// Valid events dropped as second deliveries of an `event_id`.
    pub duplicates: u64,
    /// Invalid lines sent to `dead_letters/`.
    pub dead_lettered: u64,
    /// Dead letters by rejection kind.
    pub dead_letter_kinds: BTreeMap<String, u64>,
    /// Parquet files committed (events and dead letters).
    pub files_written: usize,
    /// Wall time.
    pub elapsed: Duration,
}

/// The files an input names, in a stable order: the file itself, or a directory's NDJSON files
/// (`.ndjson`, `.jsonl`, `.json`, optionally `.gz` / `.zst`), sorted, hidden ones skipped.
pub fn expand_input(path: &Path) -> Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(path).map_err(|error| Error::Input {
        path: path.display().to_string(),
        error,
    })?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    let entries = std::fs::read_dir(path).map_err(|error| Error::Input {
        path: path.display().to_string(),
        error,
    })?;
    for entry in entries {
        let entry = entry.map_err(|error| Error::Input {
            path: path.display().to_string(),
            error,
        })?;
        let p = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let base = name.trim_end_matches(".gz").trim_end_matches(".zst");
        let is_ndjson = [".ndjson", ".jsonl", ".json"]
            .iter()
            .any(|ext| base.ends_with(ext));
        if !name.starts_with('.') && is_ndjson && p.is_file() {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

/// Counts the bytes pulled from the underlying reader (compressed, for files), for progress and
/// the summary. The count is shared so it can be read while the reader is borrowed.
struct Counting<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// A file as read under its decompressor.
type RawFile = BufReader<Counting<io::Take<File>>>;

/// Stops a decompressor whose output outgrows `ratio` times the compressed bytes it consumed.
struct RatioCap<R> {
    inner: R,
    /// Compressed bytes read ahead into the buffer under `inner`, not yet consumed.
    read_ahead: fn(&R) -> usize,
    out: u64,
    compressed: Rc<Cell<u64>>,
    ratio: u64,
}

impl<R: Read> Read for RatioCap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out += n as u64;
        let compressed = self.compressed.get() - (self.read_ahead)(&self.inner) as u64;
        if self.ratio > 0
            && self.out > RATIO_CHECK_AFTER
            && self.out > self.ratio.saturating_mul(compressed)
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "decompression ratio over {} ({} bytes out of {compressed} compressed, a decompression bomb?): stopped reading the file (ingest.max_decompression_ratio; raise it if the file is genuine)",
                    self.ratio, self.out
                ),
            ));
        }
        Ok(n)
    }
}

/// An opened input file.
struct Opened {
    reader: Box<dyn BufRead>,
    /// Bytes read from the file (compressed ones, for compressed files).
    count: Rc<Cell<u64>>,
    /// The length of a plain regular file when it was opened: it is read that far and no
    /// further, whatever is appended meanwhile.
    snapshot: Option<u64>,
}

fn open(path: &Path, max_ratio: u64) -> io::Result<Opened> {
    let file = File::open(path)?;
    let meta = file.metadata()?;
    let name = path.to_string_lossy();
    let counter = Rc::new(Cell::new(0u64));
    // A regular file is read to its length at open; a pipe or device to its end.
    let limit = if meta.is_file() { meta.len() } else { u64::MAX };
    let raw = BufReader::with_capacity(
        1 << 20,
        Counting {
            inner: file.take(limit),
            count: counter.clone(),
        },
    );
    let (reader, snapshot): (Box<dyn BufRead>, _) = if name.ends_with(".gz") {
        let gz = RatioCap {
            inner: flate2::bufread::MultiGzDecoder::new(raw),
            read_ahead: |d: &flate2::bufread::MultiGzDecoder<RawFile>| d.get_ref().buffer().len(),
            out: 0,
            compressed: counter.clone(),
            ratio: max_ratio,
        };
        (Box::new(BufReader::with_capacity(1 << 20, gz)), None)
    } else if name.ends_with(".zst") {
        let zst = RatioCap {
            inner: zstd::stream::read::Decoder::with_buffer(raw)?,
            read_ahead: |d: &zstd::stream::read::Decoder<'static, RawFile>| {
                d.get_ref().buffer().len()
            },
            out: 0,
            compressed: counter.clone(),
            ratio: max_ratio,
        };
        (Box::new(BufReader::with_capacity(1 << 20, zst)), None)
    } else {
        (Box::new(raw), meta.is_file().then_some(limit))
    };
    Ok(Opened {
        reader,
        count: counter,
        snapshot,
    })
}

/// Reads every input, validates each line, and commits events and dead letters to the lake.
/// `progress` is called after each chunk with the input bytes read so far.
pub fn ingest(
    lake: &Lake,
    inputs: &[Input],
    opts: &IngestOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<IngestStats> {
    let start = Instant::now();
    let mut run = Run {
        lake,
        opts,
        protector: opts
            .privacy
            .clone()
            .map(creditguard_contract::privacy::Protector::new),
        stats: IngestStats::default(),
        dedup: Deduper::default(),
        base_bytes: 0,
    };
    for input in inputs {
        match input {
            Input::Stdin => {
                let stdin = io::stdin();
                let count = Rc::new(Cell::new(0u64));
                let mut buffered = BufReader::with_capacity(
                    1 << 20,
                    Counting {
                        inner: stdin.lock(),
                        count: count.clone(),
                    },
                );
                run.source("stdin", &mut buffered, &|| count.get(), &|| false, progress)?;
                run.stats.bytes += count.get();
            }
            Input::Path(path) => {
                for file in expand_input(path)? {
                    let shown = file.display().to_string();
                    let mut opened =
                        open(&file, opts.max_decompression_ratio).map_err(|error| {
                            Error::Input {
                                path: shown.clone(),
                                error,
                            }
                        })?;
                    let count = opened.count.clone();
                    let snapshot = opened.snapshot;
                    let grew = || {
                        snapshot.is_some_and(|len| {
                            std::fs::metadata(&file).is_ok_and(|m| m.len() > len)
                        })
                    };
                    let read =
                        run.source(&shown, &mut opened.reader, &|| count.get(), &grew, progress);
                    run.stats.bytes += count.get();
                    run.base_bytes = run.stats.bytes;
                    read?;
                }
            }
        }
    }
    run.stats.elapsed = start.elapsed();
    Ok(run.stats)
}

struct Run<'a> {
    lake: &'a Lake,
    opts: &'a IngestOptions,
    protector: Option<creditguard_contract::privacy::Protector>,
    stats: IngestStats,
    dedup: Deduper,
    base_bytes: u64,
}

/// Bytes of lines read into a batch at most (besides the last line's): bounds the batch's
/// memory when lines are long.
const BATCH_BYTES: usize = 1 << 20;

/// One line of a batch: `arena[start..end]` without its line ending; for a line over the cap,
/// its first bytes and its length.
struct Span {
    start: usize,
    end: usize,
    /// The line's length when over `max_line_bytes`, else 0.
    oversized: u64,
}

/// What [`read_line`] read.
enum Line {
    Eof,
    /// A line with its `\n`.
    Complete,
    /// The last line of the input, without a `\n`.
    Unterminated,
    /// The first `max + 2` bytes of a longer line; the rest is unread.
    Oversized,
}

/// Appends one line (with its `\n`) to `arena`, but never more than `max + 2` bytes (a line of
/// `max` bytes with `\r\n`).
fn read_line(reader: &mut dyn BufRead, arena: &mut Vec<u8>, max: usize) -> io::Result<Line> {
    let limit = max as u64 + 2;
    let n = Read::take(&mut *reader, limit).read_until(b'\n', arena)?;
    Ok(if n == 0 {
        Line::Eof
    } else if arena.last() == Some(&b'\n') {
        Line::Complete
    } else if n as u64 == limit {
        Line::Oversized
    } else {
        Line::Unterminated
    })
}

/// Reads past the rest of a line without keeping it, hashing it into `hash`: the bytes read
/// before the `\n`, whether a `\n` ended the line, and whether a `\r` came before it (`last`:
/// the byte read before the call).
fn skip_line(
    reader: &mut dyn BufRead,
    hash: &mut Xxh3,
    mut last: u8,
) -> io::Result<(u64, bool, bool)> {
    let mut len = 0u64;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok((len, false, false));
        }
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                hash.update(&buf[..=i]);
                let cr = if i > 0 { buf[i - 1] } else { last } == b'\r';
                len += i as u64;
                reader.consume(i + 1);
                return Ok((len, true, cr));
            }
            None => {
                let n = buf.len();
                last = buf[n - 1];
                hash.update(buf);
                len += n as u64;
                reader.consume(n);
            }
        }
    }
}

/// Everything about one chunk of one source that its output file names derive from.
struct Chunk {
    first_line: i64,
    last_line: i64,
    hash: Xxh3,
    /// Bytes of its lines held in memory.
    held: u64,
}

impl Run<'_> {
    /// Reads one source to its end. A read error (a corrupt or capped compressed file) stops
    /// the source after the lines before it are committed, and is returned naming the source.
    /// An unterminated last line of a file that grew since it was opened (`grew`) is a line
    /// being written: it is left for the next run.
    fn source(
        &mut self,
        source: &str,
        reader: &mut dyn BufRead,
        bytes_read: &dyn Fn() -> u64,
        grew: &dyn Fn() -> bool,
        progress: &mut dyn FnMut(u64),
    ) -> Result<()> {
        self.stats.sources += 1;
        // Names depend on the file's base name and the chunk's bytes, not on the path it was
        // reached by: re-ingesting the same data overwrites the same files.
        let base = Path::new(source)
            .file_name()
            .map_or(source.to_string(), |n| n.to_string_lossy().into_owned());
        let ingest_day = day_of_us(now_us());
        let mut buffer = EventBuffer::new();
        let mut dead: Vec<DeadLetter> = Vec::new();
        // Lines are read and decoded a batch at a time, so that the de-duplication set's
        // memory accesses for a whole batch are issued together (see `Deduper::first_of_each`).
        let mut arena: Vec<u8> = Vec::with_capacity(BATCH_LINES * 512);
        let mut spans: Vec<Span> = Vec::with_capacity(BATCH_LINES);
        let chunk_lines = self.opts.chunk_lines.max(1);
        let max_line = self.opts.max_line_bytes.max(1);
        let mut line_no: i64 = 0;
        let mut chunk = Chunk {
            first_line: 1,
            last_line: 0,
            hash: Xxh3::new(),
            held: 0,
        };
        let mut failed = None;
        loop {
            arena.clear();
            spans.clear();
            // Bytes of `arena` not yet in the chunk's hash.
            let mut hashed = 0;
            let room = chunk_lines - (line_no - chunk.first_line + 1) as usize;
            let mut eof = false;
            while spans.len() < room.min(BATCH_LINES) && arena.len() < BATCH_BYTES {
                let start = arena.len();
                // Read far enough to keep the prefix of an oversized line.
                let line = match read_line(reader, &mut arena, max_line.max(KEPT_PREFIX_BYTES)) {
                    Ok(line) => line,
                    Err(e) => {
                        arena.truncate(start);
                        failed = Some(e);
                        eof = true;
                        break;
                    }
                };
                match line {
                    Line::Eof => {
                        eof = true;
                        break;
                    }
                    Line::Unterminated if grew() => {
                        tracing::info!(source, line = line_no + 1,
                            "The file grew while read: its last line is incomplete and left for the next run.");
                        arena.truncate(start);
                        eof = true;
                        break;
                    }
                    Line::Complete | Line::Unterminated => {
                        line_no += 1;
                        let mut body = &arena[start..];
                        if let Some(b) = body.strip_suffix(b"\n") {
                            body = b.strip_suffix(b"\r").unwrap_or(b);
                        }
                        let len = body.len();
                        if len > max_line {
                            chunk.hash.update(&arena[hashed..]);
                            arena.truncate(start + len.min(KEPT_PREFIX_BYTES));
                            hashed = arena.len();
                            spans.push(Span {
                                start,
                                end: arena.len(),
                                oversized: len as u64,
                            });
                        } else {
                            spans.push(Span {
                                start,
                                end: start + len,
                                oversized: 0,
                            });
                        }
                    }
                    Line::Oversized => {
                        line_no += 1;
                        // Hash what was read so far, then the rest of the line as it is
                        // skipped: the chunk's hash covers every byte in order.
                        chunk.hash.update(&arena[hashed..]);
                        let last = arena.last().copied().unwrap_or(0);
                        let (rest, ended, cr) = match skip_line(reader, &mut chunk.hash, last) {
                            Ok(skipped) => skipped,
                            Err(e) => {
                                // Not dead-lettered half read.
                                line_no -= 1;
                                arena.truncate(start);
                                hashed = start;
                                failed = Some(e);
                                eof = true;
                                break;
                            }
                        };
                        let len = (arena.len() - start) as u64 + rest - u64::from(cr);
                        arena.truncate(start + KEPT_PREFIX_BYTES);
                        hashed = arena.len();
                        spans.push(Span {
                            start,
                            end: arena.len(),
                            oversized: len,
                        });
                        if !ended {
                            eof = true;
                            break;
                        }
                    }
                }
            }
            // The arena is the batch's lines as read, so this hashes the same bytes in the same
            // order as hashing each line would.
            chunk.hash.update(&arena[hashed..]);
            chunk.held += arena.len() as u64;
            self.batch(source, &arena, &spans, line_no, &mut buffer, &mut dead);
            chunk.last_line = line_no;
            if (line_no - chunk.first_line + 1) as usize >= chunk_lines
                || chunk.held >= self.opts.chunk_bytes
            {
                self.flush(&base, &chunk, &mut buffer, &mut dead, ingest_day)?;
                progress(self.base_bytes + bytes_read());
                chunk = Chunk {
                    first_line: line_no + 1,
                    last_line: line_no,
                    hash: Xxh3::new(),
                    held: 0,
                };
            }
            if eof {
                break;
            }
        }
        if chunk.last_line >= chunk.first_line {
            self.flush(&base, &chunk, &mut buffer, &mut dead, ingest_day)?;
        }
        progress(self.base_bytes + bytes_read());
        match failed {
            None => Ok(()),
            Some(e) => Err(Error::Input {
                path: source.to_string(),
                error: io::Error::new(
                    e.kind(),
                    format!("after line {line_no} (the lines before it are committed): {e}"),
                ),
            }),
        }
    }

    /// Validates one batch of lines (`spans` of `arena`, the last one being line `last_line`):
    /// valid first deliveries into `buffer`, invalid lines into `dead`.
    fn batch(
        &mut self,
        source: &str,
        arena: &[u8],
        spans: &[Span],
        last_line: i64,
        buffer: &mut EventBuffer,
        dead: &mut Vec<DeadLetter>,
    ) {
        let first_line = last_line - spans.len() as i64 + 1;
        let parsed: Vec<Option<Result<Event<'_>, Rejection>>> = spans
            .iter()
            .map(|span| {
                let body = &arena[span.start..span.end];
                if span.oversized > 0 {
                    let max = self.opts.max_line_bytes;
                    let kept = span.end - span.start;
                    Some(Err(too_large(
                        span.oversized,
                        kept,
                        max,
                        "ingest.max_line_bytes",
                    )))
                } else {
                    (!body.iter().all(u8::is_ascii_whitespace)).then(|| parse_event(body))
                }
            })
            .collect();
        let hashes: Vec<u128> = parsed
            .iter()
            .filter_map(|p| match p {
                Some(Ok(ev)) => Some(Deduper::hash(&ev.event_id)),
                _ => None,
            })
            .collect();
        let mut first = self.dedup.first_of_each(&hashes).into_iter();
        for (k, p) in parsed.into_iter().enumerate() {
            self.stats.lines += 1;
            let line = first_line + k as i64;
            match p {
                None => self.stats.blank += 1,
                Some(Ok(mut ev)) => {
                    if first.next().expect("one answer per valid event") {
                        if let Some(p) = &mut self.protector {
                            p.apply(&mut ev);
                        }
                        buffer.push(&ev, source, line);
                        self.stats.valid += 1;
                    } else {
                        self.stats.duplicates += 1;
                    }
                }
                Some(Err(rej)) => {
                    tracing::debug!(source, line, reason = %rej, "Dead-lettered line.");
                    *self
                        .stats
                        .dead_letter_kinds
                        .entry(rej.kind.as_str().to_string())
                        .or_default() += 1;
                    self.stats.dead_lettered += 1;
                    let span = &spans[k];
                    dead.push(DeadLetter::new(
                        &arena[span.start..span.end],
                        source,
                        line,
                        &rej,
                    ));
                }
            }
        }
    }

    fn flush(
        &mut self,
        base: &str,
        chunk: &Chunk,
        buffer: &mut EventBuffer,
        dead: &mut Vec<DeadLetter>,
        ingest_day: i64,
    ) -> Result<()> {
        let mut tag = Xxh3::new();
        tag.update(base.as_bytes());
        tag.update(&chunk.hash.digest128().to_le_bytes());
        let stem = format!(
            "{}-{:016x}-{:09}-{:09}",
            sanitize(base),
            tag.digest(),
            chunk.first_line,
            chunk.last_line
        );
        if !buffer.is_empty() {
            let files = buffer.write(self.lake, &format!("part-{stem}.parquet"))?;
            self.stats.files_written += files.len();
        }
        if !dead.is_empty() {
            write_dead_letters(self.lake, ingest_day, &format!("dlq-{stem}.parquet"), dead)?;
            self.stats.files_written += 1;
            dead.clear();
        }
        Ok(())
    }
}

/// Keeps file names portable: letters, digits, `-`, `_` and `.`; at most 48 characters.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(48)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dedupe_set_remembers_every_id_across_growth() {
        let mut d = Deduper::default();
        assert!(d.is_empty());
        let ids: Vec<String> = (0..300_000).map(|i| format!("ev-{i:09}")).collect();
        // Each id twice in a row, then all of them again after the table has grown five times.
        for id in &ids {
            assert!(d.first(id), "{id} is new");
            assert!(!d.first(id), "{id} was just seen");
        }
        assert_eq!(d.len(), ids.len());
        assert!(ids.iter().all(|id| !d.first(id)));
        assert!(d.first("ev-x"));
        assert_eq!(d.len(), ids.len() + 1);
    }
}
