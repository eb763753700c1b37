//! Sharded jobs: `job all --shard K/N` per shard, then `job merge --shards N`, give exactly the
//! flags and features of one `job all` process.

use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use creditguard_contract::{Flag, DETECTORS};
use creditguard_lake::Lake;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::util::*;

/// The generator's population with every pattern planted (the ten classic ones and those that
/// fake the client, such as a colleague learning on their own laptop) and honest lookalikes,
/// ingested with pseudonymisation on into `lake`; returns the pipeline file.
fn ingested(s: &Scratch) -> PathBuf {
    let mut cfg = creditguard_synth::Config {
        seed: 31,
        users: 240,
        client_fake_shares: [0.02; 7],
        client_signals: true,
        lookalikes: true,
        ..creditguard_synth::Config::default()
    };
    // Enough bursts that some are unsupported by watching (the rule that crosses users most).
    cfg.set_share(creditguard_synth::Pattern::CreditBurst, 0.08);
    let generator = creditguard_synth::Generator::new(cfg).unwrap();
    let telemetry = s.path("telemetry.ndjson");
    let mut out = creditguard_synth::Output::create(&telemetry, 1).unwrap();
    generator.write(&mut out).unwrap();
    out.finish().unwrap();
    let catalog = s.path("catalog.csv");
    generator
        .catalog()
        .write_csv(std::io::BufWriter::new(
            std::fs::File::create(&catalog).unwrap(),
        ))
        .unwrap();
    plant_unsupported_claims(&telemetry, &catalog);
    let p = s.write(
        "p.toml",
        format!(
            "[pipeline]\nname = \"sharded\"\nstages = [\"ingest\"]\n[source]\nkind = \"ndjson\"\npath = {:?}\n\
             [lake]\nroot = {:?}\n[catalog]\npath = {:?}\n[privacy]\nkey_file = {:?}\ncreate_key = true\n",
            telemetry.display().to_string(),
            s.lake().display().to_string(),
            catalog.display().to_string(),
            s.path("k.key").display().to_string(),
        ),
    );
    assert!(run(creditguard().arg("run").arg(&p)).status.success());
    p
}

/// The generator's credit bursts are binges it also watches (never flagged): three learners who
/// claim six video courses on one day with nothing watched, in the org units of the population
/// (whose peers set their baselines), make `credit_burst` flag.
fn plant_unsupported_claims(telemetry: &Path, catalog: &Path) {
    let text = std::fs::read_to_string(telemetry).unwrap();
    let mut units: Vec<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["org_unit"].as_str().map(str::to_string))
        .collect();
    units.sort();
    units.dedup();
    // Six video courses (with a length), read with the catalog loader every stage uses.
    let courses: Vec<(String, String)> = creditguard::lake::catalog::load(catalog)
        .unwrap()
        .into_iter()
        .filter(|c| c.duration_s > 0.0)
        .map(|c| (c.course_id, c.credits.to_string()))
        .take(6)
        .collect();
    assert_eq!(courses.len(), 6);
    let mut out = text;
    for (i, unit) in units.iter().take(3).enumerate() {
        for (k, (course, credits)) in courses.iter().enumerate() {
            out.push_str(&format!(
                "{{\"event_id\":\"planted-{i}-{k}\",\"type\":\"course_complete\",\"ts\":\"2026-03-10T0{k}:1{i}:00Z\",\"user_id\":\"claimer-{i}\",\"org_unit\":\"{unit}\",\"course_id\":\"{course}\",\"credits\":{credits},\"category\":\"elective\"}}\n"
            ));
        }
    }
    std::fs::write(telemetry, out).unwrap();
}

/// A new lake holding a copy of `from`'s events.
fn copy_events(from: &Path, to: &Path) {
    fn copy(a: &Path, b: &Path) {
        std::fs::create_dir_all(b).unwrap();
        for e in std::fs::read_dir(a).unwrap().flatten() {
            let (src, dst) = (e.path(), b.join(e.file_name()));
            if src.is_dir() {
                copy(&src, &dst);
            } else {
                std::fs::copy(&src, &dst).unwrap();
            }
        }
    }
    copy(&from.join("events"), &to.join("events"));
}

fn job(p: &Path, lake: &Path, args: &[&str]) -> std::process::Output {
    run(creditguard()
        .arg("job")
        .args(args)
        .arg("--pipeline")
        .arg(p)
        .arg("--lake")
        .arg(lake)
        .env_remove("JOB_COMPLETION_INDEX"))
}

/// Every flag of the lake, sorted.
fn flags(lake: &Path) -> Vec<Flag> {
    let l = Lake::open(lake.to_str().unwrap()).unwrap();
    let mut out: Vec<Flag> = l
        .days("results/flags")
        .unwrap()
        .into_iter()
        .flat_map(|d| creditguard_detect::read_flags(&l, d).unwrap())
        .collect();
    out.sort_by(|a, b| a.flag_id.cmp(&b.flag_id).then(a.rule.cmp(&b.rule)));
    out
}

/// Every row of a job's features, one string per row (exact values: floats print as the
/// shortest text that reads back to the same number), sorted; and the number of day partitions.
fn feature_rows(lake: &Path, job: &str) -> (Vec<String>, usize) {
    let dir = lake.join("features").join(job);
    let mut rows = Vec::new();
    let mut days = 0;
    for day in std::fs::read_dir(&dir).unwrap().flatten() {
        days += 1;
        for f in std::fs::read_dir(day.path()).unwrap().flatten() {
            let batches: Vec<RecordBatch> =
                ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(f.path()).unwrap())
                    .unwrap()
                    .build()
                    .unwrap()
                    .map(Result::unwrap)
                    .collect();
            for b in batches {
                for i in 0..b.num_rows() {
                    let cells: Vec<String> = b
                        .columns()
                        .iter()
                        .zip(b.schema().fields())
                        .map(|(c, field)| format!("{}={:?}", field.name(), c.slice(i, 1)))
                        .collect();
                    rows.push(cells.join("|"));
                }
            }
        }
    }
    rows.sort();
    (rows, days)
}

#[test]
fn the_union_of_shards_gives_exactly_the_single_process_flags() {
    let s = Scratch::new();
    let p = ingested(&s);
    let single = s.path("single");
    copy_events(&s.lake(), &single);
    assert!(job(&p, &single, &["all"]).status.success());
    let want = flags(&single);
    // Not vacuous: every detector that compares users flagged someone, and so did the others.
    for detector in DETECTORS {
        let n = want.iter().filter(|f| f.detector == detector).count();
        assert!(n > 0, "no {detector} flags in the population");
    }
    let want_features: Vec<_> = DETECTORS.iter().map(|j| feature_rows(&single, j)).collect();

    for n in [1u32, 2, 3, 7] {
        let lake = s.path(&format!("sharded-{n}"));
        copy_events(&s.lake(), &lake);
        for k in 0..n {
            let out = job(&p, &lake, &["all", "--shard", &format!("{k}/{n}")]);
            assert!(out.status.success(), "shard {k}/{n}");
            // Nothing is published before the merge.
            assert!(!lake.join("results").exists(), "shard {k}/{n}");
            assert!(!lake.join("features").exists(), "shard {k}/{n}");
        }
        let out = job(&p, &lake, &["merge", "--shards", &n.to_string()]);
        assert!(out.status.success(), "merge of {n}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(&format!("total flags {}", want.len())),
            "{stdout}"
        );
        let got = flags(&lake);
        assert_eq!(got.len(), want.len(), "{n} shards");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g, w, "{n} shards");
        }
        for (job, want) in DETECTORS.iter().zip(&want_features) {
            let got = feature_rows(&lake, job);
            assert_eq!(got.1, want.1, "{job}: day partitions, {n} shards");
            assert_eq!(got.0.len(), want.0.len(), "{job}: rows, {n} shards");
            if got.0 != want.0 {
                let only = |a: &[String], b: &[String]| -> Vec<String> {
                    a.iter()
                        .filter(|r| !b.contains(r))
                        .take(2)
                        .cloned()
                        .collect()
                };
                panic!(
                    "{job}: rows differ with {n} shards\nonly sharded: {:#?}\nonly single: {:#?}",
                    only(&got.0, &want.0),
                    only(&want.0, &got.0)
                );
            }
        }
        // The staging is gone once merged.
        let staged = std::fs::read_dir(lake.join("_shards"))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(staged, 0, "{n} shards");
    }
}

#[test]
fn a_merge_waits_for_every_shard_and_bad_shards_are_usage_errors() {
    let s = Scratch::new();
    let p = ingested(&s);
    let lake = s.lake();
    // Kubernetes Indexed Jobs: the index from the environment.
    let out = run(creditguard()
        .args(["job", "all", "--shards", "2", "--pipeline"])
        .arg(&p)
        .env("JOB_COMPLETION_INDEX", "0"));
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("shard 0/2"));
    let out = job(&p, &lake, &["merge", "--shards", "2"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("shard 1/2 has not staged the days"),
        "{stderr}"
    );
    assert!(!lake.join("results").exists());
    assert!(job(&p, &lake, &["all", "--shard", "1/2"]).status.success());
    assert!(job(&p, &lake, &["merge", "--shards", "2"]).status.success());
    assert!(!flags(&lake).is_empty());

    for (args, says) in [
        (
            &["all", "--shard", "3/2"][..],
            "`3/2`: shard 3 of 2 does not exist",
        ),
        (&["all", "--shard", "x"], "`x`: expected K/N"),
        (&["all", "--shards", "2"], "JOB_COMPLETION_INDEX"),
        (
            &["all", "--shard", "0/2", "--shards", "2"],
            "cannot be used with",
        ),
        (
            &["quiz_speed", "--shard", "0/2"],
            "use `job all --shard 0/2`",
        ),
        (&["merge"], "`job merge` needs --shards N"),
    ] {
        let out = job(&p, &lake, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

#[test]
fn success_markers_and_a_rerun_of_the_days_late_events_touched() {
    let s = Scratch::new();
    let login = |id: &str, day: u32, user: &str| {
        format!(
            r#"{{"event_id":"{id}","type":"login","ts":"2026-03-{day:02}T09:00:00Z","user_id":"{user}","session_id":"s-{id}","device_id":"d-{user}"}}"#
        )
    };
    let first: Vec<String> = (2..=8).map(|d| login(&format!("e{d}"), d, "u1")).collect();
    let pipeline = |name: &str, input: &Path| {
        s.write(
            &format!("{name}.toml"),
            format!(
                "[pipeline]\nname = \"late\"\nstages = [\"ingest\"]\n[source]\nkind = \"ndjson\"\npath = {:?}\n\
                 [lake]\nroot = {:?}\n[privacy]\npseudonymise = \"off\"\n",
                input.display().to_string(),
                s.lake().display().to_string()
            ),
        )
    };
    let p = pipeline("p", &s.write("in/first.ndjson", first.join("\n") + "\n"));
    assert!(run(creditguard().arg("run").arg(&p)).status.success());
    assert!(job(&p, &s.lake(), &["all"]).status.success());
    for d in 2..=8 {
        let marker = s
            .lake()
            .join(format!("_markers/jobs/dt=2026-03-{d:02}/_SUCCESS.json"));
        let text = std::fs::read_to_string(&marker).unwrap();
        assert!(text.contains("\"run_id\":\"late-"), "{text}");
    }

    // Nothing arrived since: nothing to re-run.
    let since = creditguard_contract::time::format_rfc3339_us(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros() as i64,
    );
    let out = job(&p, &s.lake(), &["all", "--changed-since", &since]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to re-run"));
    // A late event for the 5th: the 4th to the 6th are re-run (their jobs read the 5th), only those.
    let late = pipeline(
        "late",
        &s.write("in/late.ndjson", login("late", 5, "u2") + "\n"),
    );
    assert!(run(creditguard().arg("run").arg(&late)).status.success());
    let out = job(&p, &s.lake(), &["all", "--changed-since", &since]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let ranges: Vec<&str> = stdout.lines().filter(|l| l.starts_with("jobs  ")).collect();
    assert_eq!(ranges.len(), 1, "{stdout}");
    assert!(ranges[0].contains("2026-03-04 .. 2026-03-06"), "{stdout}");

    let out = job(&p, &s.lake(), &["all", "--changed-since", "yesterday"]);
    assert_eq!(out.status.code(), Some(2));
    let out = job(
        &p,
        &s.lake(),
        &["all", "--changed-since", &since, "--day", "2026-03-05"],
    );
    assert_eq!(out.status.code(), Some(2));
}
