//! File ingest, end to end: NDJSON in, Parquet events and dead letters out.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use arrow_array::{Array, BinaryArray, Int64Array, RecordBatch, StringArray};
use creditguard_ingest::{ingest, IngestOptions, IngestStats, Input};
use creditguard_lake::Lake;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn login(id: &str, ts: &str) -> String {
    format!(
        r#"{{"event_id":"{id}","type":"login","ts":"{ts}","user_id":"u1","session_id":"s1","device_id":"d1"}}"#
    )
}

fn heartbeat(id: &str, ts: &str) -> String {
    format!(
        r#"{{"event_id":"{id}","type":"heartbeat","ts":"{ts}","user_id":"u1","session_id":"s1","course_id":"c1","lesson_id":"l1","position_s":30,"playing":true,"visible":true}}"#
    )
}

struct Fixture {
    dir: tempfile::TempDir,
    lake: Lake,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();
        Fixture { dir, lake }
    }

    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.dir.path().join(name);
        fs::write(&p, bytes).unwrap();
        p
    }

    fn ingest(&self, inputs: &[&Path], chunk_lines: usize) -> IngestStats {
        let inputs: Vec<Input> = inputs
            .iter()
            .map(|p| Input::Path(p.to_path_buf()))
            .collect();
        ingest(
            &self.lake,
            &inputs,
            &IngestOptions {
                chunk_lines,
                ..IngestOptions::default()
            },
            &mut |_| {},
        )
        .unwrap()
    }

    fn batches(&self, table: &str) -> Vec<RecordBatch> {
        let mut out = Vec::new();
        for day in self.lake.days(table).unwrap() {
            for f in self.lake.partition_files(table, day).unwrap() {
                let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(f).unwrap())
                    .unwrap()
                    .build()
                    .unwrap();
                out.extend(reader.map(Result::unwrap));
            }
        }
        out
    }

    fn strings(&self, table: &str, column: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .batches(table)
            .iter()
            .flat_map(|b| {
                let a = b
                    .column_by_name(column)
                    .unwrap()
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .unwrap()
                    .clone();
                (0..a.len()).map(move |i| a.value(i).to_string())
            })
            .collect();
        v.sort();
        v
    }

    fn event_ids(&self) -> Vec<String> {
        self.strings("events", "event_id")
    }
}

#[test]
fn valid_events_land_in_their_utc_day_with_source_positions() {
    let fx = Fixture::new();
    let text = [
        login("e1", "2026-03-02T07:59:00+08:00"), // 2026-03-01 23:59 UTC
        heartbeat("e2", "2026-03-02T08:00:00+08:00"), // 2026-03-02 00:00 UTC
        heartbeat("e3", "2026-03-02T10:00:00Z"),
    ]
    .join("\n");
    let input = fx.file("t.ndjson", text.as_bytes());
    let stats = fx.ingest(&[&input], 1000);
    assert_eq!(
        (
            stats.lines,
            stats.valid,
            stats.dead_lettered,
            stats.duplicates
        ),
        (3, 3, 0, 0)
    );
    let days: Vec<String> = fx
        .lake
        .days("events")
        .unwrap()
        .into_iter()
        .map(creditguard_contract::time::format_day)
        .collect();
    assert_eq!(days, ["2026-03-01", "2026-03-02"]);
    assert_eq!(stats.files_written, 2);
    let batches = fx.batches("events");
    let positions: Vec<i64> = batches
        .iter()
        .flat_map(|b| {
            b.column_by_name("src_pos")
                .unwrap()
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .values()
                .to_vec()
        })
        .collect();
    assert_eq!(positions, [1, 2, 3]);
    assert_eq!(batches[0].schema(), creditguard_contract::events_schema());
}

#[test]
fn duplicates_are_dropped_across_files_of_a_run() {
    let fx = Fixture::new();
    let a = fx.file(
        "a.ndjson",
        format!(
            "{}\n{}\n",
            login("e1", "2026-03-02T09:00:00Z"),
            login("e1", "2026-03-02T09:00:00Z")
        )
        .as_bytes(),
    );
    let b = fx.file(
        "b.ndjson",
        format!(
            "{}\n{}\n",
            login("e1", "2026-03-02T09:00:00Z"),
            login("e2", "2026-03-02T09:01:00Z")
        )
        .as_bytes(),
    );
    let stats = fx.ingest(&[&a, &b], 1000);
    assert_eq!((stats.valid, stats.duplicates), (2, 2));
    assert_eq!(fx.event_ids(), ["e1", "e2"]);
}

#[test]
fn re_ingesting_the_same_file_does_not_duplicate_rows() {
    let fx = Fixture::new();
    let lines: Vec<String> = (0..250)
        .map(|i| {
            heartbeat(
                &format!("e{i}"),
                &format!("2026-03-02T09:{:02}:{:02}Z", i / 60, i % 60),
            )
        })
        .collect();
    let input = fx.file("t.ndjson", lines.join("\n").as_bytes());
    let first = fx.ingest(&[&input], 100);
    assert_eq!(first.files_written, 3, "250 lines in chunks of 100");
    // The same data reached by another path (a copy in another directory) is the same data.
    fs::create_dir(fx.dir.path().join("again")).unwrap();
    let copy = fx.dir.path().join("again/t.ndjson");
    fs::copy(&input, &copy).unwrap();
    fx.ingest(&[&input], 100);
    fx.ingest(&[&copy], 100);
    assert_eq!(fx.event_ids().len(), 250);
    let files = fx.lake.files("events", i64::MIN, i64::MAX).unwrap();
    assert_eq!(files.len(), 3, "{files:?}");
}

#[test]
fn invalid_lines_are_dead_lettered_with_original_bytes_and_reasons() {
    let fx = Fixture::new();
    let mut bytes = Vec::new();
    bytes.extend_from_slice(login("e1", "2026-03-02T09:00:00Z").as_bytes());
    bytes.extend_from_slice(b"\r\n");
    bytes.extend_from_slice(b"{\"event_id\":\"e2\",\"type\":\"login\",\"ts\":\"2026-03-02T09:00:00Z\",\"user_id\":\"\xff\xfeu\",\"session_id\":\"s\"}\n");
    bytes.extend_from_slice(br#"{"event_id":"e3","type":"teleport","ts":"2026-03-02T09:00:00Z","user_id":"u","session_id":"s"}"#);
    bytes.extend_from_slice(b"\n\n   \n");
    bytes.extend_from_slice(br#"{"event_id":"e4","type":"login","ts":"2026-03-02 09:00:00","user_id":"u","session_id":"s"}"#);
    bytes.extend_from_slice(b"\n");
    // A truncated last line (the producer died mid-write): no newline, cut JSON.
    bytes.extend_from_slice(br#"{"event_id":"e5","type":"login","ts":"2026-03-02T09:00"#);
    let input = fx.file("bad.ndjson", &bytes);
    let stats = fx.ingest(&[&input], 1000);
    assert_eq!(
        (stats.lines, stats.valid, stats.blank, stats.dead_lettered),
        (7, 1, 2, 4)
    );
    let kinds: Vec<(&str, u64)> = stats
        .dead_letter_kinds
        .iter()
        .map(|(k, n)| (k.as_str(), *n))
        .collect();
    assert_eq!(
        kinds,
        [
            ("bad_timestamp", 1),
            ("not_json", 1),
            ("not_utf8", 1),
            ("unknown_type", 1)
        ]
    );

    let batches = fx.batches("dead_letters");
    let mut raws = Vec::new();
    let mut reasons = Vec::new();
    for b in &batches {
        let raw = b
            .column_by_name("raw")
            .unwrap()
            .as_any()
            .downcast_ref::<BinaryArray>()
            .unwrap();
        let pos = b
            .column_by_name("position")
            .unwrap()
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        let src = b
            .column_by_name("source")
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        let reason = b
            .column_by_name("reason")
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        for i in 0..b.num_rows() {
            raws.push((pos.value(i), raw.value(i).to_vec()));
            reasons.push(reason.value(i).to_string());
            assert!(src.value(i).ends_with("bad.ndjson"));
        }
    }
    raws.sort();
    let lines: Vec<&[u8]> = bytes.split(|&c| c == b'\n').collect();
    assert_eq!(
        raws.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
        [2, 3, 6, 7]
    );
    for (pos, raw) in &raws {
        assert_eq!(
            raw.as_slice(),
            lines[(*pos - 1) as usize],
            "line {pos} kept byte for byte"
        );
    }
    assert!(
        reasons
            .iter()
            .any(|r| r == "field `type`: unknown event type `teleport`"),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.starts_with("truncated JSON")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("field `ts`: `2026-03-02 09:00:00` is not an RFC 3339")),
        "{reasons:?}"
    );
}

#[test]
fn with_privacy_on_no_raw_identifier_reaches_the_lake() {
    use creditguard_contract::privacy::Pseudonymiser;
    let fx = Fixture::new();
    let located = r#"{"event_id":"g1","type":"login","ts":"2026-03-02T09:00:00Z","user_id":"u1","session_id":"s2","device_id":"d1","ip":"198.51.100.23","geo_lat":31.2304,"geo_lon":121.4737}"#;
    let input = fx.file(
        "p.ndjson",
        format!(
            "{}\n{located}\n{{\"user_id\":\"u1\"}}\n",
            login("a1", "2026-03-02T08:00:00Z")
        )
        .as_bytes(),
    );
    let p = Pseudonymiser::new(&[5u8; 32]);
    let stats = ingest(
        &fx.lake,
        &[Input::Path(input)],
        &IngestOptions {
            privacy: Some(p.clone()),
            ..IngestOptions::default()
        },
        &mut |_| {},
    )
    .unwrap();
    assert_eq!((stats.valid, stats.dead_lettered), (2, 1));
    assert_eq!(fx.strings("events", "user_id"), vec![p.user("u1"); 2]);
    assert_eq!(fx.strings("events", "device_id"), vec![p.device("d1"); 2]);
    let b = fx.batches("events");
    let ips: Vec<Option<&str>> = b
        .iter()
        .flat_map(|b| col::<StringArray>(b, "ip").iter())
        .collect();
    assert!(
        ips.contains(&p.network("198.51.100.1").as_deref()),
        "{ips:?}"
    );
    assert!(
        !ips.iter().flatten().any(|ip| ip.contains("198.51")),
        "{ips:?}"
    );
    let lats: Vec<Option<f64>> = b
        .iter()
        .flat_map(|b| col::<arrow_array::Float64Array>(b, "geo_lat").iter())
        .collect();
    assert!(lats.contains(&Some(31.2)), "{lats:?}");
    // Dead letters keep the original bytes: the reason they have the shortest retention.
    assert_eq!(fx.strings("dead_letters", "source").len(), 1);
}

#[test]
fn an_empty_file_is_not_an_error() {
    let fx = Fixture::new();
    let input = fx.file("empty.ndjson", b"");
    let stats = fx.ingest(&[&input], 1000);
    assert_eq!((stats.sources, stats.lines, stats.files_written), (1, 0, 0));
    assert!(fx.lake.days("events").unwrap().is_empty());
}

#[test]
fn gzip_and_zstd_inputs_and_directories() {
    let fx = Fixture::new();
    fs::create_dir(fx.dir.path().join("in")).unwrap();
    let plain = format!("{}\n", login("p1", "2026-03-02T09:00:00Z"));
    fs::write(fx.dir.path().join("in/a.ndjson"), &plain).unwrap();

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(
        format!(
            "{}\n{}\n",
            login("g1", "2026-03-02T09:00:00Z"),
            heartbeat("g2", "2026-03-02T09:00:15Z")
        )
        .as_bytes(),
    )
    .unwrap();
    fs::write(fx.dir.path().join("in/b.ndjson.gz"), gz.finish().unwrap()).unwrap();

    let zst = zstd::encode_all(
        format!("{}\n", heartbeat("z1", "2026-03-02T09:00:30Z")).as_bytes(),
        3,
    )
    .unwrap();
    fs::write(fx.dir.path().join("in/c.jsonl.zst"), zst).unwrap();
    fs::write(fx.dir.path().join("in/notes.txt"), "not telemetry").unwrap();
    fs::write(fx.dir.path().join("in/.hidden.ndjson"), "not telemetry").unwrap();

    let stats = fx.ingest(&[&fx.dir.path().join("in")], 1000);
    assert_eq!((stats.sources, stats.valid, stats.dead_lettered), (3, 4, 0));
    assert_eq!(fx.event_ids(), ["g1", "g2", "p1", "z1"]);
}

#[test]
fn a_corrupt_compressed_file_is_an_input_error_naming_the_file() {
    let fx = Fixture::new();
    let input = fx.file("broken.ndjson.gz", b"\x1f\x8b\x08\x00garbage");
    let err = ingest(
        &fx.lake,
        &[Input::Path(input)],
        &IngestOptions::default(),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("broken.ndjson.gz"), "{err}");
}

/// Column `name` of `b` as its concrete array type.
fn col<'a, A: Array + 'static>(b: &'a RecordBatch, name: &str) -> &'a A {
    b.column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<A>())
        .unwrap_or_else(|| panic!("column {name}"))
}

/// Every (event_id, src_pos) pair and every dead letter's (position, raw) of the lake, sorted.
fn positions(fx: &Fixture) -> (Vec<(String, i64)>, Vec<(i64, Vec<u8>)>) {
    let mut events = Vec::new();
    for b in fx.batches("events") {
        let (ids, pos) = (
            col::<StringArray>(&b, "event_id"),
            col::<Int64Array>(&b, "src_pos"),
        );
        events.extend((0..b.num_rows()).map(|i| (ids.value(i).to_string(), pos.value(i))));
    }
    let mut dead = Vec::new();
    for b in fx.batches("dead_letters") {
        let (raw, pos) = (
            col::<BinaryArray>(&b, "raw"),
            col::<Int64Array>(&b, "position"),
        );
        dead.extend((0..b.num_rows()).map(|i| (pos.value(i), raw.value(i).to_vec())));
    }
    events.sort();
    dead.sort();
    (events, dead)
}

#[test]
fn chunk_sizes_change_the_files_but_not_a_row() {
    // 1 000 lines (line n: event `e{n}`; every 97th a duplicate of the line before, every 89th
    // invalid, every 131st blank) read with chunks smaller than, equal to, and larger than
    // the reader's internal batches, and not dividing the file.
    let mut lines = Vec::new();
    for n in 1..=1000 {
        let ts = format!("2026-03-{:02}T10:00:00Z", 1 + n % 3);
        lines.push(if n % 131 == 0 {
            "   ".to_string()
        } else if n % 89 == 0 {
            format!(r#"{{"event_id":"bad{n}","type":"login"}}"#)
        } else if n % 97 == 0 {
            login(&format!("e{}", n - 1), &ts)
        } else {
            login(&format!("e{n}"), &ts)
        });
    }
    let input_text = lines.join("\n");
    let mut seen = None;
    for chunk in [1, 7, 64, 65, 150, 1000, 5000] {
        let fx = Fixture::new();
        let input = fx.file("t.ndjson", input_text.as_bytes());
        let stats = fx.ingest(&[&input], chunk);
        assert_eq!(stats.lines, 1000, "chunk {chunk}");
        assert_eq!(
            stats.valid + stats.duplicates + stats.dead_lettered + stats.blank,
            1000,
            "chunk {chunk}: {stats:?}"
        );
        let got = positions(&fx);
        // Each valid event at its own line; each dead letter at its line, bytes intact.
        for (id, pos) in &got.0 {
            assert_eq!(id, &format!("e{pos}"), "chunk {chunk}");
        }
        for (pos, raw) in &got.1 {
            assert_eq!(raw, lines[*pos as usize - 1].as_bytes(), "chunk {chunk}");
        }
        let files = fx.lake.days("events").unwrap().len();
        assert!(files >= 1);
        match &seen {
            None => {
                seen = Some((
                    got,
                    stats.valid,
                    stats.duplicates,
                    stats.dead_lettered,
                    stats.blank,
                ))
            }
            Some(first) => assert!(
                (&first.0, first.1, first.2, first.3, first.4)
                    == (
                        &got,
                        stats.valid,
                        stats.duplicates,
                        stats.dead_lettered,
                        stats.blank
                    ),
                "chunk {chunk} differs"
            ),
        }
    }
    let (rows, valid, duplicates, dead, blank) = seen.unwrap();
    assert_eq!((duplicates, dead, blank), (10, 11, 7));
    assert_eq!(rows.0.len() as u64, valid);
}

#[test]
fn the_fast_decoder_agrees_with_serde_json_on_every_line_of_the_sample() {
    // The shipped sample: 266 k generated lines of every type, with the generator's invalid ones.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sample-data/telemetry.ndjson.zst");
    let text = zstd::decode_all(File::open(&path).unwrap()).unwrap();
    let (mut lines, mut rejected) = (0, 0);
    for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let fast = creditguard_contract::parse_event(line);
        let reference = creditguard_contract::parse_event_reference(line);
        assert_eq!(fast, reference, "{}", String::from_utf8_lossy(line));
        lines += 1;
        rejected += usize::from(fast.is_err());
    }
    assert!(lines > 200_000, "{lines}");
    assert!(rejected > 50, "{rejected}");
}
