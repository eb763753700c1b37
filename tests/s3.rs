//! The README's first command with the lake on S3 (a SeaweedFS server the tests start): the
//! same results as on the local file system, readable by another process from the bucket alone.

use creditguard_lake::{testing, Lake};
use parquet::file::reader::{FileReader, SerializedFileReader};

use crate::util::{creditguard, repo, run, Scratch};

const TABLES: [&str; 6] = [
    "events",
    "results/flags",
    "results/credits",
    "results/cases",
    "results/progress",
    "features/watch_time",
];

/// Rows of each table, per day.
fn rows(lake: &Lake) -> Vec<(String, i64, i64)> {
    let mut out = Vec::new();
    for table in TABLES {
        for day in lake.days(table).unwrap() {
            let n: i64 = lake
                .partition_files(table, day)
                .unwrap()
                .iter()
                .map(|f| {
                    SerializedFileReader::new(std::fs::File::open(f).unwrap())
                        .unwrap()
                        .metadata()
                        .file_metadata()
                        .num_rows()
                })
                .sum();
            out.push((table.to_string(), day, n));
        }
    }
    out
}

/// The summary's result lines (not its timings or paths).
fn results(stdout: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter(|l| {
            ["total flags", "claims:", "cases:", "progress:", "roster:"]
                .iter()
                .any(|n| l.contains(n))
        })
        // `total flags 89, 1.98 s`: without the time.
        .map(|l| match l.split_once(" flags ") {
            Some((head, rest)) => format!("{head} flags {}", rest.split(',').next().unwrap_or("")),
            None => l.to_string(),
        })
        .collect()
}

#[test]
fn the_default_pipeline_on_s3_gives_the_results_it_gives_on_the_file_system() {
    let Some(server) = testing::seaweedfs() else {
        return;
    };
    let s = Scratch::new();
    let fs = run(creditguard()
        .current_dir(repo())
        .args(["run", "pipelines/default.toml", "--lake"])
        .arg(s.lake()));
    assert!(fs.status.success());

    let url = server.url("readme");
    let mut cmd = creditguard();
    cmd.current_dir(repo())
        .args(["run", "pipelines/default.toml"])
        .env("CREDITGUARD_LAKE", &url)
        .env("CREDITGUARD_LAKE_CACHE", s.path("cache"));
    for (k, v) in server.env() {
        cmd.env(k, v);
    }
    let s3 = run(&mut cmd);
    assert!(s3.status.success());
    assert_eq!(results(&s3.stdout), results(&fs.stdout));
    assert!(!results(&fs.stdout).is_empty());

    // Another reader, with an empty cache: everything came from the bucket.
    let local = Lake::open(s.lake().to_str().unwrap()).unwrap();
    let remote = Lake::open_with(&url, &s.path("cache-2"), &server.options()).unwrap();
    let expected = rows(&local);
    assert!(expected
        .iter()
        .any(|(t, _, n)| t == "results/flags" && *n > 0));
    assert_eq!(rows(&remote), expected);
    assert_eq!(remote.tables().unwrap(), local.tables().unwrap());

    // Write times are not tracked on object storage: --changed-since says so instead of
    // re-running every day.
    let mut cmd = creditguard();
    cmd.current_dir(repo())
        .args(["job", "all", "--pipeline", "pipelines/default.toml"])
        .args(["--changed-since", "2026-03-01"])
        .env("CREDITGUARD_LAKE", &url)
        .env("CREDITGUARD_LAKE_CACHE", s.path("cache"));
    for (k, v) in server.env() {
        cmd.env(k, v);
    }
    let out = run(&mut cmd);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--changed-since") && err.contains(&url),
        "{err}"
    );
}

#[test]
fn bad_s3_lakes_are_refused_naming_the_input() {
    let s = Scratch::new();
    for (lake, needle) in [
        ("s3:///lake", "no bucket"),
        ("s3://Not_A_Bucket/lake", "not a bucket name"),
        ("gs://bucket/lake", "unsupported scheme `gs://`"),
    ] {
        let out = run(creditguard().current_dir(repo()).args([
            "run",
            "pipelines/default.toml",
            "--lake",
            lake,
        ]));
        assert_eq!(out.status.code(), Some(2), "{lake}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(lake) && err.contains(needle), "{lake}: {err}");
    }
    // An endpoint nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let out = run(creditguard()
        .current_dir(repo())
        .args([
            "run",
            "pipelines/default.toml",
            "--lake",
            "s3://lake/prefix",
        ])
        .env("CREDITGUARD_LAKE_CACHE", s.path("cache"))
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_ACCESS_KEY_ID", "k")
        .env("AWS_SECRET_ACCESS_KEY", "s"));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("s3://lake/prefix") && err.contains(&endpoint),
        "{err}"
    );
}

/// Sharded jobs on an S3 lake, each process with its own cache (as on separate machines): the
/// merge reads the shards' staging from the bucket, publishes exactly the flags of one process,
/// and leaves no staging behind in the bucket.
#[test]
fn shards_on_s3_give_the_single_process_flags_and_leave_no_staging() {
    let Some(server) = testing::seaweedfs() else {
        return;
    };
    let s = Scratch::new();
    let url = server.url("shards");
    let step = |cache: &str, args: &[&str]| {
        let mut cmd = creditguard();
        cmd.current_dir(repo())
            .args(args)
            .env("CREDITGUARD_LAKE", &url)
            .env("CREDITGUARD_LAKE_CACHE", s.path(cache))
            .env_remove("JOB_COMPLETION_INDEX");
        for (k, v) in server.env() {
            cmd.env(k, v);
        }
        let out = run(&mut cmd);
        assert!(out.status.success(), "{args:?}");
    };
    // Every flag of the bucket (without the run id), read with an empty cache.
    let flags = |cache: &str| {
        let lake = Lake::open_with(&url, &s.path(cache), &server.options()).unwrap();
        let mut out: Vec<String> = lake
            .days("results/flags")
            .unwrap()
            .into_iter()
            .flat_map(|d| creditguard_detect::read_flags(&lake, d).unwrap())
            .map(|f| {
                format!(
                    "{} {} {} {} {} {:.9} {}",
                    f.flag_id,
                    f.rule,
                    f.user_id,
                    f.window_start,
                    f.window_end,
                    f.severity,
                    f.evidence
                )
            })
            .collect();
        out.sort();
        out
    };
    step("cache-run", &["run", "pipelines/default.toml"]);
    let single = flags("read-1");
    assert!(single.len() > 50, "{}", single.len());
    let period = ["--from", "2026-03-01", "--to", "2026-03-15"];
    let pipeline = ["--pipeline", "pipelines/default.toml"];
    for k in 0..2 {
        let shard = format!("{k}/2");
        let args = [&["job", "all", "--shard", &shard][..], &pipeline, &period].concat();
        step(&format!("cache-shard-{k}"), &args);
    }
    let args = [&["job", "merge", "--shards", "2"][..], &pipeline, &period].concat();
    step("cache-merge", &args);
    assert_eq!(flags("read-2"), single);
    let lake = Lake::open_with(&url, &s.path("read-3"), &server.options()).unwrap();
    let staging: Vec<String> = lake
        .tables()
        .unwrap()
        .into_iter()
        .filter(|t| t.starts_with("_shards"))
        .collect();
    assert!(
        staging.is_empty(),
        "staging left in the bucket: {staging:?}"
    );
}
