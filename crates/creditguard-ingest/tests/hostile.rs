//! Hostile files through the real file ingest: a 100 MB line, 10 million empty lines,
//! decompression bombs, a file that grows while read, a pipe. Each ends in dead letters or an
//! error naming the file, and every valid event around them reaches the lake.
//!
//! Peak memory is measured in a child process (this test binary running the ignored test
//! `child_ingest`), so the figure is that ingest's alone.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use arrow_array::{Array, BinaryArray, RecordBatch, StringArray};
use creditguard_ingest::{ingest, IngestOptions, IngestStats, Input, KEPT_PREFIX_BYTES};
use creditguard_lake::Lake;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn login(id: &str) -> String {
    format!(
        r#"{{"event_id":"{id}","type":"login","ts":"2026-03-02T09:00:00Z","user_id":"u1","session_id":"s1","device_id":"d1"}}"#
    )
}

fn open_lake(path: &Path) -> Lake {
    Lake::open(path.to_str().unwrap()).unwrap()
}

fn batches(lake: &Lake, table: &str) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    for day in lake.days(table).unwrap() {
        for f in lake.partition_files(table, day).unwrap() {
            let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(f).unwrap())
                .unwrap()
                .build()
                .unwrap();
            out.extend(reader.map(Result::unwrap));
        }
    }
    out
}

fn column<'a, A: Array + 'static>(b: &'a RecordBatch, name: &str) -> &'a A {
    b.column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<A>())
        .unwrap_or_else(|| panic!("column {name}"))
}

/// The lake's event ids, sorted, duplicates kept.
fn event_ids(lake: &Lake) -> Vec<String> {
    let mut ids: Vec<String> = batches(lake, "events")
        .iter()
        .flat_map(|b| {
            let a = column::<StringArray>(b, "event_id");
            (0..a.len())
                .map(|i| a.value(i).to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    ids.sort();
    ids
}

/// Dead letters as (kind, reason, raw).
fn dead_letters(lake: &Lake) -> Vec<(String, String, Vec<u8>)> {
    batches(lake, "dead_letters")
        .iter()
        .flat_map(|b| {
            let (kind, reason, raw) = (
                column::<StringArray>(b, "kind"),
                column::<StringArray>(b, "reason"),
                column::<BinaryArray>(b, "raw"),
            );
            (0..b.num_rows())
                .map(|i| {
                    (
                        kind.value(i).to_string(),
                        reason.value(i).to_string(),
                        raw.value(i).to_vec(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn run(lake: &Lake, input: &Path, opts: &IngestOptions) -> creditguard_ingest::Result<IngestStats> {
    ingest(lake, &[Input::Path(input.to_path_buf())], opts, &mut |_| {})
}

/// What the child ingest reported.
struct ChildRun {
    stats: String,
    /// Peak resident set (VmHWM) before and after the ingest, KiB.
    base_kib: u64,
    peak_kib: u64,
}

impl ChildRun {
    fn stat(&self, name: &str) -> u64 {
        self.stats
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} in {}", self.stats))
            .parse()
            .unwrap()
    }
}

/// Ingests `input` into `lake` in a fresh process, with the default options.
fn ingest_in_child(input: &Path, lake: &Path) -> ChildRun {
    ingest_in_child_with(input, lake, IngestOptions::default().chunk_bytes)
}

/// The same with `chunk_bytes`.
fn ingest_in_child_with(input: &Path, lake: &Path, chunk_bytes: u64) -> ChildRun {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_ingest",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("CG_CHILD_INPUT", input)
        .env("CG_CHILD_LAKE", lake)
        .env("CG_CHILD_CHUNK_BYTES", chunk_bytes.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "child ingest failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = |tag: &str| {
        stdout
            .lines()
            .find_map(|l| l.split_once(tag).map(|(_, rest)| rest))
            .unwrap_or_else(|| panic!("{tag} in {stdout}"))
            .trim()
            .to_string()
    };
    ChildRun {
        stats: line("STATS "),
        base_kib: line("BASE_KIB ").parse().unwrap(),
        peak_kib: line("PEAK_KIB ").parse().unwrap(),
    }
}

fn vm_hwm_kib() -> u64 {
    fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

/// The child side of [`ingest_in_child`]; does nothing unless started by it.
#[test]
#[ignore = "started by ingest_in_child in its own process"]
fn child_ingest() {
    let (Some(input), Some(lake)) = (
        std::env::var_os("CG_CHILD_INPUT"),
        std::env::var_os("CG_CHILD_LAKE"),
    ) else {
        return;
    };
    let lake = open_lake(Path::new(&lake));
    let base = vm_hwm_kib();
    let opts = IngestOptions {
        chunk_bytes: std::env::var("CG_CHILD_CHUNK_BYTES")
            .unwrap()
            .parse()
            .unwrap(),
        ..IngestOptions::default()
    };
    let s = run(&lake, Path::new(&input), &opts).unwrap();
    let peak = vm_hwm_kib();
    println!(
        "STATS lines={} blank={} valid={} dead={} files={} elapsed_ms={}",
        s.lines,
        s.blank,
        s.valid,
        s.dead_lettered,
        s.files_written,
        s.elapsed.as_millis()
    );
    println!("BASE_KIB {base}");
    println!("PEAK_KIB {peak}");
}

#[test]
fn a_100_mb_line_is_dead_lettered_without_being_held() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big-line.ndjson");
    // Written in pieces: the test does not hold the line either.
    let head = r#"{"event_id":"huge","type":"login","ts":"2026-03-02T09:00:00Z","user_id":"u1","session_id":"s1","pad":""#;
    let pad_len = 100 << 20;
    let line_len = head.len() + pad_len + 2;
    {
        let mut w = BufWriter::new(File::create(&input).unwrap());
        writeln!(w, "{}", login("before")).unwrap();
        w.write_all(head.as_bytes()).unwrap();
        let block = vec![b'x'; 1 << 20];
        for _ in 0..pad_len >> 20 {
            w.write_all(&block).unwrap();
        }
        w.write_all(b"\"}\r\n").unwrap();
        write!(w, "{}", login("after")).unwrap();
    }
    let lake_dir = dir.path().join("lake");
    let child = ingest_in_child(&input, &lake_dir);
    assert_eq!(
        (child.stat("lines"), child.stat("valid"), child.stat("dead")),
        (3, 2, 1),
        "{}",
        child.stats
    );
    let lake = open_lake(&lake_dir);
    assert_eq!(event_ids(&lake), ["after", "before"]);
    let dead = dead_letters(&lake);
    assert_eq!(dead.len(), 1);
    let (kind, reason, raw) = &dead[0];
    assert_eq!(kind, "too_large");
    assert!(
        reason.contains(&format!("{line_len} bytes")) && reason.contains("ingest.max_line_bytes"),
        "{reason}"
    );
    assert_eq!(raw.len(), KEPT_PREFIX_BYTES);
    assert!(raw.starts_with(head.as_bytes()));
    let grown_kib = child.peak_kib.saturating_sub(child.base_kib);
    eprintln!(
        "100 MB line: peak RSS {} KiB ({} KiB before the ingest), {} ms",
        child.peak_kib,
        child.base_kib,
        child.stat("elapsed_ms")
    );
    // The line is 100 MiB; the ingest may hold one capped line (4 MiB) and its buffers.
    assert!(
        child.peak_kib < 40 << 10,
        "peak RSS {} KiB for a 100 MiB line",
        child.peak_kib
    );
    assert!(
        grown_kib < 24 << 10,
        "the ingest grew the RSS by {grown_kib} KiB"
    );
}

#[test]
fn long_invalid_lines_are_held_one_chunk_of_bytes_at_a_time() {
    // 192 invalid lines of 1 MiB (under the line cap: dead-lettered whole), a valid event after
    // every eighth.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("long-lines.ndjson");
    {
        let mut w = BufWriter::new(File::create(&input).unwrap());
        let mut long = b"not json ".to_vec();
        long.resize(1 << 20, b'y');
        for i in 0..192 {
            w.write_all(&long).unwrap();
            w.write_all(b"\n").unwrap();
            if i % 8 == 7 {
                writeln!(w, "{}", login(&format!("v{i:03}"))).unwrap();
            }
        }
    }
    let mut peaks = Vec::new();
    for chunk_bytes in [16 << 20, IngestOptions::default().chunk_bytes] {
        let lake_dir = dir.path().join(format!("lake-{chunk_bytes}"));
        let child = ingest_in_child_with(&input, &lake_dir, chunk_bytes);
        assert_eq!(
            (child.stat("valid"), child.stat("dead")),
            (24, 192),
            "{}",
            child.stats
        );
        let lake = open_lake(&lake_dir);
        assert_eq!(event_ids(&lake).len(), 24);
        let dead = dead_letters(&lake);
        assert_eq!(dead.len(), 192);
        assert!(dead
            .iter()
            .all(|d| d.0 == "not_json" && d.2.len() == 1 << 20));
        eprintln!(
            "192 MiB of 1 MiB invalid lines, chunk_bytes {chunk_bytes}: peak RSS {} KiB, {} files",
            child.peak_kib,
            child.stat("files")
        );
        peaks.push(child.peak_kib);
    }
    // 16 MiB chunks hold a twelfth of what one chunk of the whole file holds.
    assert!(peaks[0] < 100 << 10, "peak RSS {} KiB", peaks[0]);
    assert!(peaks[0] * 3 < peaks[1], "{peaks:?}");
}

#[test]
fn the_line_cap_counts_the_line_without_its_ending() {
    let dir = tempfile::tempdir().unwrap();
    let lake = open_lake(&dir.path().join("lake"));
    let exact = login("exact");
    let max = exact.len();
    let over = login("over-by-one");
    assert!(over.len() > max);
    let input = dir.path().join("cap.ndjson");
    // The capped line also ends the file without a line ending, and a long line shorter than
    // the kept prefix keeps all its bytes.
    fs::write(
        &input,
        format!(
            "{exact}\r\n{exact}\n{over}\n{}\n{exact}x",
            "y".repeat(3 * max)
        ),
    )
    .unwrap();
    let opts = IngestOptions {
        max_line_bytes: max,
        ..IngestOptions::default()
    };
    let s = run(&lake, &input, &opts).unwrap();
    assert_eq!(
        (s.lines, s.valid, s.duplicates, s.dead_lettered),
        (5, 1, 1, 3)
    );
    assert_eq!(s.dead_letter_kinds.get("too_large"), Some(&3));
    let mut raws: Vec<Vec<u8>> = dead_letters(&lake).into_iter().map(|d| d.2).collect();
    raws.sort();
    let mut want = vec![
        over.clone().into_bytes(),
        "y".repeat(3 * max).into_bytes(),
        format!("{exact}x").into_bytes(),
    ];
    want.sort();
    assert_eq!(raws, want);
    // The same file again: same chunk, same files (the names cover the capped bytes too).
    let again = run(&lake, &input, &opts).unwrap();
    assert_eq!(again.files_written, s.files_written);
    assert_eq!(event_ids(&lake), ["exact"]);
}

#[test]
fn ten_million_empty_lines_are_counted_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("empty-lines.ndjson");
    {
        let mut w = BufWriter::new(File::create(&input).unwrap());
        writeln!(w, "{}", login("first")).unwrap();
        let block = vec![b'\n'; 1_000_000];
        for _ in 0..10 {
            w.write_all(&block).unwrap();
        }
        writeln!(w, "{}", login("last")).unwrap();
    }
    let lake_dir = dir.path().join("lake");
    let child = ingest_in_child(&input, &lake_dir);
    eprintln!(
        "10 M empty lines: {} ms, peak RSS {} KiB ({} KiB before)",
        child.stat("elapsed_ms"),
        child.peak_kib,
        child.base_kib
    );
    assert_eq!(
        (
            child.stat("lines"),
            child.stat("blank"),
            child.stat("valid"),
            child.stat("dead")
        ),
        (10_000_002, 10_000_000, 2, 0),
        "{}",
        child.stats
    );
    // The two events are 10 M lines apart: two chunks of 500 000 lines hold them; the 19
    // chunks of nothing but empty lines write nothing.
    assert_eq!(child.stat("files"), 2, "{}", child.stats);
    assert_eq!(event_ids(&open_lake(&lake_dir)), ["first", "last"]);
    assert!(dead_letters(&open_lake(&lake_dir)).is_empty());
    assert!(child.peak_kib < 40 << 10, "peak RSS {} KiB", child.peak_kib);
    assert!(
        child.stat("elapsed_ms") < 20_000,
        "{} ms for 10 M empty lines",
        child.stat("elapsed_ms")
    );
}

/// Three events, then `bomb_bytes` of `fill`, then one more event.
fn bomb_body(w: &mut dyn Write, fill: u8, bomb_bytes: usize) {
    for id in ["b1", "b2", "b3"] {
        writeln!(w, "{}", login(id)).unwrap();
    }
    let block = vec![fill; 1 << 20];
    for _ in 0..bomb_bytes >> 20 {
        w.write_all(&block).unwrap();
    }
    writeln!(w, "\n{}", login("after-bomb")).unwrap();
}

fn gzip_bomb(path: &Path, fill: u8, bomb_bytes: usize) {
    let mut gz = flate2::write::GzEncoder::new(
        BufWriter::new(File::create(path).unwrap()),
        flate2::Compression::fast(),
    );
    bomb_body(&mut gz, fill, bomb_bytes);
    gz.finish().unwrap().flush().unwrap();
}

fn zstd_bomb(path: &Path, fill: u8, bomb_bytes: usize) {
    let mut z = zstd::stream::write::Encoder::new(File::create(path).unwrap(), 3).unwrap();
    bomb_body(&mut z, fill, bomb_bytes);
    z.finish().unwrap();
}

#[test]
fn decompression_bombs_stop_with_an_error_naming_the_file_and_the_ratio() {
    let dir = tempfile::tempdir().unwrap();
    // 256 MiB of zeros (one line, far over the line cap) in gzip; 256 MiB of line ends in zstd.
    let gz = dir.path().join("bomb.ndjson.gz");
    gzip_bomb(&gz, 0, 256 << 20);
    let zst = dir.path().join("bomb.ndjson.zst");
    zstd_bomb(&zst, b'\n', 256 << 20);
    for (input, name) in [(&gz, "bomb.ndjson.gz"), (&zst, "bomb.ndjson.zst")] {
        let compressed = fs::metadata(input).unwrap().len();
        let lake = open_lake(&dir.path().join(format!("lake-{name}")));
        let started = Instant::now();
        let err = run(&lake, input, &IngestOptions::default())
            .unwrap_err()
            .to_string();
        let took = started.elapsed();
        eprintln!("{name}: {compressed} bytes compressed, stopped after {took:?}: {err}");
        assert!(err.contains(name), "{err}");
        assert!(err.contains("decompression ratio over 100"), "{err}");
        assert!(err.contains("ingest.max_decompression_ratio"), "{err}");
        if name.ends_with(".gz") {
            // The line of zeros was being read past: it is not dead-lettered half read.
            assert!(err.contains("after line 3 "), "{err}");
        }
        // What came before the bomb is committed; nothing after it was read.
        assert_eq!(event_ids(&lake), ["b1", "b2", "b3"], "{name}");
        assert!(dead_letters(&lake).is_empty(), "{name}");
    }

    // The cap is a setting: without it the gzip file is read whole, its 256 MiB line of zeros
    // dead-lettered without being held, and the event after it kept.
    let lake = open_lake(&dir.path().join("lake-uncapped"));
    let opts = IngestOptions {
        max_decompression_ratio: 0,
        ..IngestOptions::default()
    };
    let s = run(&lake, &gz, &opts).unwrap();
    assert_eq!((s.valid, s.dead_lettered), (4, 1));
    assert_eq!(event_ids(&lake), ["after-bomb", "b1", "b2", "b3"]);
    let dead = dead_letters(&lake);
    assert_eq!(dead[0].0, "too_large");
    assert!(
        dead[0].1.contains(&format!("{} bytes", 256 << 20)),
        "{}",
        dead[0].1
    );
}

#[test]
fn the_shipped_sample_is_under_the_ratio_cap() {
    // 102 MB of telemetry in 5.7 MB of zstd (18 times): far past the point where the ratio is
    // checked, and under the default cap.
    let sample =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sample-data/telemetry.ndjson.zst");
    let dir = tempfile::tempdir().unwrap();
    let lake = open_lake(&dir.path().join("lake"));
    let s = run(&lake, &sample, &IngestOptions::default()).unwrap();
    assert!(s.valid > 100_000, "{s:?}");
}

#[test]
fn a_file_that_grows_while_read_is_read_to_its_length_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let lake = open_lake(&dir.path().join("lake"));
    let input = dir.path().join("growing.ndjson");
    let first: Vec<String> = (0..250).map(|i| login(&format!("a{i:03}"))).collect();
    let whole = login("a250");
    let (cut, rest) = whole.split_at(40);
    fs::write(&input, format!("{}\n{cut}", first.join("\n"))).unwrap();
    // Appended after the first chunk is committed: the rest of the line being written, and more.
    let later: Vec<String> = (0..100).map(|i| login(&format!("b{i:03}"))).collect();
    let mut appended = false;
    let opts = IngestOptions {
        chunk_lines: 100,
        ..IngestOptions::default()
    };
    let s = ingest(&lake, &[Input::Path(input.clone())], &opts, &mut |_| {
        if !appended {
            appended = true;
            let mut f = fs::OpenOptions::new().append(true).open(&input).unwrap();
            write!(f, "{rest}\n{}\n", later.join("\n")).unwrap();
        }
    })
    .unwrap();
    // The first run stops at the length the file had when opened, and leaves the line that was
    // being written (incomplete then) for the next run instead of dead-lettering half of it.
    assert_eq!((s.lines, s.valid, s.dead_lettered), (250, 250, 0));
    let ids = event_ids(&lake);
    assert_eq!(ids.len(), 250);

    // The next run reads the whole file: the appended events arrive, none is lost. Chunks that
    // were complete in the first run are rewritten under the same names; the events of the
    // first run's last, shorter chunk are written again in the longer one (the jobs keep one
    // row per event_id).
    let s = run(&lake, &input, &opts).unwrap();
    assert_eq!((s.lines, s.valid, s.dead_lettered), (351, 351, 0));
    let mut ids = event_ids(&lake);
    let before = ids.len();
    ids.dedup();
    let mut want: Vec<String> = (0..251)
        .map(|i| format!("a{i:03}"))
        .chain((0..100).map(|i| format!("b{i:03}")))
        .collect();
    want.sort();
    assert_eq!(ids, want);
    assert_eq!(
        before - ids.len(),
        50,
        "only the first run's last chunk is written twice"
    );
}

#[test]
fn a_pipe_is_read_to_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let fifo: PathBuf = dir.path().join("telemetry.ndjson");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut f = fs::OpenOptions::new().write(true).open(&fifo).unwrap();
            for i in 0..1000 {
                writeln!(f, "{}", login(&format!("p{i}"))).unwrap();
            }
        })
    };
    let lake = open_lake(&dir.path().join("lake"));
    let s = run(&lake, &fifo, &IngestOptions::default()).unwrap();
    writer.join().unwrap();
    assert_eq!((s.lines, s.valid), (1000, 1000));
}
