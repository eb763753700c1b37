//! The lake's guarantees, checked on each backend: a local directory and S3 (a real SeaweedFS
//! server the tests start; see `creditguard_lake::testing`).

use std::collections::BTreeSet;
use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use creditguard_lake::{testing, Lake};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

const DAY: i64 = 20_514; // 2026-03-02

/// Where a test's lake lives; `reopen` gives another handle on the same lake, as another
/// process would open it (on S3 with its own cache).
struct Backend {
    name: &'static str,
    location: String,
    options: Vec<(String, String)>,
    _dirs: Vec<tempfile::TempDir>,
}

impl Backend {
    fn open(&mut self) -> Lake {
        if self.name == "fs" {
            return Lake::open(&self.location).unwrap();
        }
        let cache = tempfile::tempdir().unwrap();
        let lake = Lake::open_with(&self.location, cache.path(), &self.options).unwrap();
        self._dirs.push(cache);
        lake
    }
}

/// Runs `body` on a fresh local lake, then on a fresh lake on SeaweedFS (skipped, with a
/// message, when SeaweedFS is not installed and not required).
fn on_each_backend(tag: &str, body: impl Fn(&mut Backend)) {
    let dir = tempfile::tempdir().unwrap();
    let mut fs = Backend {
        name: "fs",
        location: dir.path().join("lake").to_str().unwrap().to_string(),
        options: Vec::new(),
        _dirs: vec![dir],
    };
    body(&mut fs);
    if let Some(server) = testing::seaweedfs() {
        let mut s3 = Backend {
            name: "s3",
            location: server.url(tag),
            options: server.options(),
            _dirs: Vec::new(),
        };
        body(&mut s3);
    }
}

fn batch(values: &[i64]) -> (SchemaRef, RecordBatch) {
    let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
    let b = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(Int64Array::from(values.to_vec()))],
    )
    .unwrap();
    (schema, b)
}

fn write_x(path: &Path, values: &[i64]) {
    let (schema, b) = batch(values);
    creditguard_lake::write_parquet_to(File::create(path).unwrap(), schema, &[b]).unwrap();
}

fn read_x(path: &Path) -> std::io::Result<Vec<i64>> {
    let file = File::open(path)?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    Ok(reader
        .flat_map(|b| {
            let b = b.unwrap();
            b.column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .values()
                .to_vec()
        })
        .collect())
}

fn names(paths: &[std::path::PathBuf]) -> Vec<String> {
    paths
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_replayed_file_overwrites_itself() {
    on_each_backend("replay", |b| {
        let lake = b.open();
        let (schema, x) = batch(&[1, 2, 3]);
        lake.write_parquet("events", DAY, "part-a.parquet", schema.clone(), &[x])
            .unwrap();
        let (_, y) = batch(&[4, 5]);
        let p = lake
            .write_parquet("events", DAY, "part-a.parquet", schema, &[y])
            .unwrap();
        assert!(p.starts_with(lake.root()), "{}: {}", b.name, p.display());
        for reader in [&lake, &b.open()] {
            let files = reader.partition_files("events", DAY).unwrap();
            assert_eq!(names(&files), ["part-a.parquet"], "{}", b.name);
            assert_eq!(read_x(&files[0]).unwrap(), [4, 5], "{}", b.name);
            assert_eq!(reader.days("events").unwrap(), [DAY], "{}", b.name);
            assert_eq!(
                reader.files("events", DAY, DAY).unwrap(),
                files,
                "{}",
                b.name
            );
        }
        assert!(lake.days("nothing").unwrap().is_empty());
        assert!(lake.partition_files("events", DAY + 1).unwrap().is_empty());
    });
}

#[test]
fn a_replacement_swaps_the_whole_day_and_a_failed_one_changes_nothing() {
    on_each_backend("replace", |b| {
        let lake = b.open();
        for (names_, v) in [
            (&["a.parquet", "b.parquet"][..], 1),
            (&["c.parquet"][..], 2),
        ] {
            lake.replace_partition("results/flags", DAY, |staging| {
                for n in names_ {
                    write_x(&staging.join(n), &[v]);
                }
                Ok(())
            })
            .unwrap();
        }
        let other = b.open();
        let files = other.partition_files("results/flags", DAY).unwrap();
        assert_eq!(names(&files), ["c.parquet"], "{}", b.name);
        assert_eq!(read_x(&files[0]).unwrap(), [2]);
        let err = lake
            .replace_partition("results/flags", DAY, |staging| {
                write_x(&staging.join("d.parquet"), &[3]);
                Err("detector blew up".into())
            })
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("results/flags/dt=2026-03-02: detector blew up"),
            "{err}"
        );
        let after = b.open().partition_files("results/flags", DAY).unwrap();
        assert_eq!(names(&after), ["c.parquet"], "{}", b.name);
        assert_eq!(lake.tables().unwrap(), ["results/flags"], "{}", b.name);
    });
}

#[test]
fn files_written_after_a_replacement_join_it() {
    on_each_backend("ingest-after-replace", |b| {
        let lake = b.open();
        let (schema, x) = batch(&[1]);
        lake.write_parquet("events", DAY, "a.parquet", schema.clone(), &[x])
            .unwrap();
        // An erasure rewrites the day (`a` without the learner, as `a` again).
        lake.replace_partition("events", DAY, |staging| {
            write_x(&staging.join("a.parquet"), &[10]);
            Ok(())
        })
        .unwrap();
        let (_, y) = batch(&[2]);
        lake.write_parquet("events", DAY, "b.parquet", schema.clone(), &[y])
            .unwrap();
        let other = b.open();
        assert_eq!(
            other.partition_file_names("events", DAY).unwrap(),
            ["a.parquet", "b.parquet"]
        );
        if b.name == "s3" {
            assert_eq!(
                std::fs::read_dir(other.root()).unwrap().count(),
                0,
                "names are listed without fetching files"
            );
        }
        let files = other.partition_files("events", DAY).unwrap();
        assert_eq!(names(&files), ["a.parquet", "b.parquet"], "{}", b.name);
        let values: Vec<Vec<i64>> = files.iter().map(|f| read_x(f).unwrap()).collect();
        assert_eq!(values, [vec![10], vec![2]], "{}", b.name);
        // A replay of `b` after that still leaves one `b`.
        let (_, z) = batch(&[3]);
        lake.write_parquet("events", DAY, "b.parquet", schema, &[z])
            .unwrap();
        let files = b.open().partition_files("events", DAY).unwrap();
        assert_eq!(names(&files), ["a.parquet", "b.parquet"], "{}", b.name);
        assert_eq!(read_x(&files[1]).unwrap(), [3], "{}", b.name);
        // And a replay of `a` replaces the rewritten `a`: still one of each name.
        let (_, w) = batch(&[4]);
        lake.write_parquet("events", DAY, "a.parquet", batch(&[4]).0, &[w])
            .unwrap();
        let files = b.open().partition_files("events", DAY).unwrap();
        assert_eq!(names(&files), ["a.parquet", "b.parquet"], "{}", b.name);
        assert_eq!(read_x(&files[0]).unwrap(), [4], "{}", b.name);
    });
}

#[test]
fn a_removed_day_is_gone_for_every_reader() {
    on_each_backend("remove", |b| {
        let lake = b.open();
        let (schema, x) = batch(&[1, 2]);
        for day in [DAY, DAY + 1] {
            lake.write_parquet(
                "dead_letters",
                day,
                "x.parquet",
                schema.clone(),
                std::slice::from_ref(&x),
            )
            .unwrap();
        }
        lake.replace_partition("features/watch_time", DAY, |s| {
            write_x(&s.join("part-0.parquet"), &[7]);
            Ok(())
        })
        .unwrap();
        assert_eq!(
            lake.tables().unwrap(),
            ["dead_letters", "features/watch_time"],
            "{}",
            b.name
        );
        let bytes = lake.remove_partition("dead_letters", DAY).unwrap();
        assert!(bytes.is_some_and(|n| n > 0), "{}: {bytes:?}", b.name);
        assert_eq!(lake.remove_partition("dead_letters", DAY).unwrap(), None);
        assert_eq!(
            lake.remove_partition("features/watch_time", DAY)
                .unwrap()
                .map(|n| n > 0),
            Some(true)
        );
        let other = b.open();
        assert_eq!(other.days("dead_letters").unwrap(), [DAY + 1], "{}", b.name);
        assert!(
            other.days("features/watch_time").unwrap().is_empty(),
            "{}",
            b.name
        );
        assert!(other
            .partition_files("dead_letters", DAY)
            .unwrap()
            .is_empty());
    });
}

/// One thread replaces a day over and over, each generation `g` with its own `g % 3 + 1` files
/// holding `g`; another lists and reads the day meanwhile (on S3 through another handle with
/// its own cache, as another process). Every read must be exactly one generation's set.
#[test]
fn a_reader_during_replacements_sees_one_generation_whole() {
    on_each_backend("swap", |b| {
        let writer = b.open();
        let reader = b.open();
        let table = "results/flags";
        let fill = |g: i64| {
            move |staging: &Path| -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
                for i in 0..(g % 3 + 1) {
                    write_x(&staging.join(format!("g{g}-{i}.parquet")), &[g, i]);
                }
                Ok(())
            }
        };
        writer.replace_partition(table, DAY, fill(0)).unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let last = Arc::new(AtomicU64::new(0));
        let generations = if b.name == "fs" { 300 } else { 60 };
        let swapper = {
            let done = done.clone();
            let last = last.clone();
            std::thread::spawn(move || {
                for g in 1..=generations {
                    writer.replace_partition(table, DAY, fill(g)).unwrap();
                    last.store(g as u64, Ordering::SeqCst);
                }
                done.store(true, Ordering::SeqCst);
            })
        };
        let started = Instant::now();
        let mut seen = BTreeSet::new();
        let (mut reads, mut retried) = (0, 0);
        while !done.load(Ordering::SeqCst) || reads < 3 {
            assert!(
                started.elapsed() < Duration::from_secs(300),
                "{}: too slow",
                b.name
            );
            let files = reader.partition_files(table, DAY).unwrap();
            let mut contents = Vec::new();
            for f in &files {
                match read_x(f) {
                    Ok(v) => contents.push(v),
                    // The local lake deletes a replaced day's files: a reader that listed the
                    // old generation finds one gone and reads again.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound && b.name == "fs" => break,
                    Err(e) => panic!("{}: {}: {e}", b.name, f.display()),
                }
            }
            if contents.len() < files.len() {
                retried += 1;
                continue;
            }
            assert!(!files.is_empty(), "{}: a read saw no files", b.name);
            let g = contents[0][0];
            let expected: Vec<String> = (0..(g % 3 + 1))
                .map(|i| format!("g{g}-{i}.parquet"))
                .collect();
            assert_eq!(names(&files), expected, "{}: a mix of generations", b.name);
            for (i, c) in contents.iter().enumerate() {
                assert_eq!(c, &[g, i as i64], "{}: a mix of generations", b.name);
            }
            seen.insert(g);
            reads += 1;
        }
        swapper.join().unwrap();
        assert!(
            seen.len() > 1,
            "{}: the reader saw only {seen:?} in {reads} reads",
            b.name
        );
        assert_eq!(last.load(Ordering::SeqCst), generations as u64);
        eprintln!(
            "{}: {reads} consistent reads of {} generations ({retried} reads retried)",
            b.name,
            seen.len()
        );
        let files = reader.partition_files(table, DAY).unwrap();
        assert_eq!(files.len() as i64, generations % 3 + 1, "{}", b.name);
    });
}

#[test]
fn bad_locations_are_named_in_the_error() {
    let cache = tempfile::tempdir().unwrap();
    for (location, needle) in [
        ("s3://", "no bucket"),
        ("s3:///prefix", "no bucket"),
        ("s3://No_Such/x", "not a bucket name"),
        ("gs://bucket/x", "unsupported scheme `gs://`"),
    ] {
        let err = Lake::open(location).unwrap_err().to_string();
        assert!(
            err.contains(location) && err.contains(needle),
            "{location}: {err}"
        );
    }
    // Nothing listens on the endpoint: a quick, clear error naming the lake and the endpoint.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let err = Lake::open_with(
        "s3://bucket/lake",
        cache.path(),
        &[
            ("aws_endpoint_url".into(), endpoint.clone()),
            ("aws_access_key_id".into(), "k".into()),
            ("aws_secret_access_key".into(), "s".into()),
        ],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("s3://bucket/lake") && err.contains(&endpoint),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "{:?}",
        started.elapsed()
    );
    let err = Lake::open_with(
        "s3://bucket/lake",
        cache.path(),
        &[("aws_no_such".into(), "x".into())],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("unknown S3 setting `aws_no_such`"), "{err}");
    // A bucket the server does not have.
    if let Some(server) = testing::seaweedfs() {
        let err = Lake::open_with("s3://no-such-bucket/lake", cache.path(), &server.options())
            .unwrap_err()
            .to_string();
        assert!(err.contains("s3://no-such-bucket/lake"), "{err}");
    }
}

/// Erasure rewrites a day through a replacement: Parquet rows and NDJSON lines of the learner
/// go, other files of the day are kept as they are, for every reader.
#[test]
fn an_erased_learner_is_gone_from_the_day_for_every_reader() {
    use arrow_array::StringArray;
    use creditguard_lake::scrub::{Scrub, Scrubbed};
    on_each_backend("erase", |b| {
        let lake = b.open();
        let users = |ids: &[&str]| {
            let schema = Arc::new(Schema::new(vec![Field::new(
                "user_id",
                DataType::Utf8,
                false,
            )]));
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(StringArray::from(ids.to_vec()))],
            )
            .unwrap();
            (schema, batch)
        };
        let (schema, mixed) = users(&["u1", "u2", "u1"]);
        lake.write_parquet("events", DAY, "a.parquet", schema.clone(), &[mixed])
            .unwrap();
        let (_, other) = users(&["u3"]);
        lake.write_parquet("events", DAY, "b.parquet", schema, &[other])
            .unwrap();
        lake.replace_partition("results/stream", DAY, |s| {
            std::fs::write(
                s.join("part-0.ndjson"),
                "{\"user_id\":\"u1\"}\n{\"user_id\":\"u2\"}\n",
            )?;
            Ok(())
        })
        .unwrap();
        let scrub = Scrub {
            ids: vec!["u1".into()],
            raw_ids: vec!["u1".into()],
        };
        assert_eq!(
            lake.scrub_partition("events", DAY, &scrub).unwrap(),
            Scrubbed {
                rows: 2,
                values: 0,
                files: 1
            },
            "{}",
            b.name
        );
        assert_eq!(
            lake.scrub_partition("results/stream", DAY, &scrub)
                .unwrap()
                .rows,
            1,
            "{}",
            b.name
        );
        let other = b.open();
        let files = other.partition_files("events", DAY).unwrap();
        assert_eq!(names(&files), ["a.parquet", "b.parquet"], "{}", b.name);
        let mut left = Vec::new();
        for f in &files {
            let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(f).unwrap())
                .unwrap()
                .build()
                .unwrap();
            for batch in reader {
                let batch = batch.unwrap();
                let col = batch
                    .column(0)
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .unwrap();
                left.extend(col.iter().map(|v| v.unwrap().to_string()));
            }
        }
        assert_eq!(left, ["u2", "u3"], "{}", b.name);
        let stream = other.partition_all_files("results/stream", DAY).unwrap();
        assert_eq!(names(&stream), ["part-0.ndjson"], "{}", b.name);
        assert_eq!(
            std::fs::read_to_string(&stream[0]).unwrap(),
            "{\"user_id\":\"u2\"}\n",
            "{}",
            b.name
        );
        // Nothing left to erase: nothing is written.
        assert_eq!(
            lake.scrub_partition("events", DAY, &scrub).unwrap(),
            Scrubbed::default()
        );
    });
}
