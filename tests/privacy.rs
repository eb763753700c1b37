//! `[privacy]`: pseudonyms at ingest give the same flags as raw ids, no raw identifier reaches
//! the lake, a missing key is a configuration error; `keygen`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow_array::{Array, Float64Array, RecordBatch, StringArray};
use creditguard::config::{Overrides, Pipeline};
use creditguard::run::{run as run_pipeline, RunOptions};
use creditguard_contract::privacy::{is_network_pseudonym, Pseudonymiser};
use creditguard_contract::ResultRecord;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::util::*;

/// Every row of a lake table.
pub fn table(dir: &Path) -> Vec<RecordBatch> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(f).unwrap())
                .unwrap()
                .build()
                .unwrap()
                .map(Result::unwrap)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The non-null values of a string column over batches.
pub fn strings(batches: &[RecordBatch], column: &str) -> Vec<String> {
    batches
        .iter()
        .filter_map(|b| b.column_by_name(column))
        .flat_map(|c| {
            let a = c.as_any().downcast_ref::<StringArray>().unwrap().clone();
            (0..a.len())
                .filter(|&i| a.is_valid(i))
                .map(|i| a.value(i).to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Generates the default population (`creditguard-synth`'s `Config::default()`, another seed
/// than the shipped sample) into `dir`: (telemetry, catalog).
fn population(dir: &Path) -> (PathBuf, PathBuf) {
    let cfg = creditguard_synth::Config {
        seed: 23,
        ..creditguard_synth::Config::default()
    };
    let generator = creditguard_synth::Generator::new(cfg).unwrap();
    let telemetry = dir.join("telemetry.ndjson");
    let mut out = creditguard_synth::Output::create(&telemetry, 1).unwrap();
    generator.write(&mut out).unwrap();
    out.finish().unwrap();
    let catalog = dir.join("catalog.csv");
    generator
        .catalog()
        .write_csv(std::io::BufWriter::new(
            std::fs::File::create(&catalog).unwrap(),
        ))
        .unwrap();
    (telemetry, catalog)
}

/// Runs ingest → jobs → score in-process; the flags as (user, rule, window start).
fn flags(dir: &Path, name: &str, privacy: &str) -> Vec<(String, String, i64)> {
    let (telemetry, catalog) = (dir.join("telemetry.ndjson"), dir.join("catalog.csv"));
    let file = dir.join(format!("{name}.toml"));
    let text = format!(
        "[pipeline]\nname = \"{name}\"\nstages = [\"ingest\", \"jobs\", \"score\"]\n\
         [source]\nkind = \"ndjson\"\npath = {:?}\n[lake]\nroot = {:?}\n[catalog]\npath = {:?}\n\
         [review]\ndatabase = {:?}\n[privacy]\n{privacy}\n",
        telemetry.display().to_string(),
        dir.join(name).display().to_string(),
        catalog.display().to_string(),
        format!("sqlite://{}/{name}.sqlite?mode=rwc", dir.display()),
    );
    std::fs::write(&file, &text).unwrap();
    let pipeline = Pipeline::parse(&file, &text, &Overrides::default()).unwrap();
    let summary = run_pipeline(&pipeline, &RunOptions::default()).unwrap();
    let mut out: Vec<_> = summary
        .score
        .unwrap()
        .records()
        .into_iter()
        .filter_map(|r| match r {
            ResultRecord::Flag(f) => Some((f.user_id, f.rule, f.window_start)),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

fn per_rule(flags: &[(String, String, i64)]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for (_, rule, _) in flags {
        *m.entry(rule.clone()).or_default() += 1;
    }
    m
}

/// The acceptance test of pseudonymisation: on the generator's population every detector gives
/// the same flags (per rule, and learner by learner through the key) from pseudonymised events
/// as from raw ones, and the pseudonymised lake holds no raw user id, device id, address or
/// precise place.
#[test]
fn pseudonymised_and_raw_events_give_the_same_flags() {
    let s = Scratch::new();
    let dir = s.dir.path();
    population(dir);
    let key = s.write("k.key", creditguard_contract::privacy::format_key(&[0x5a; 32]));
    let p = Pseudonymiser::new(&[0x5a; 32]);

    let raw = flags(dir, "raw", "pseudonymise = \"off\"");
    let pseudo = flags(
        dir,
        "pseudo",
        &format!("pseudonymise = \"on\"\nkey_file = {:?}", key.display().to_string()),
    );
    let counts = per_rule(&raw);
    eprintln!("flags per rule: {counts:?}");
    assert_eq!(per_rule(&pseudo), counts);
    // The rules that compare identifiers fired, so the comparison means something.
    for rule in [
        "multi_login.concurrent_sessions",
        "multi_login.impossible_travel",
        "shared_device.many_accounts",
    ] {
        assert!(counts.get(rule).copied().unwrap_or(0) > 0, "{rule}: {counts:?}");
    }
    // Learner by learner: the raw flags, their user ids mapped with the key, are the others.
    let mut mapped: Vec<_> = raw
        .iter()
        .map(|(u, r, t)| (p.user(u), r.clone(), *t))
        .collect();
    mapped.sort();
    assert_eq!(mapped, pseudo);

    // Nothing raw in the pseudonymised lake's events.
    let raw_events = table(&dir.join("raw/events"));
    let events = table(&dir.join("pseudo/events"));
    let raw_users: std::collections::BTreeSet<String> =
        strings(&raw_events, "user_id").into_iter().collect();
    let users = strings(&events, "user_id");
    assert!(!users.is_empty());
    assert!(users.iter().all(|u| u.starts_with(&format!("{}:", p.key_id()))));
    assert!(users.iter().all(|u| !raw_users.contains(u)));
    let devices = strings(&events, "device_id");
    assert!(!devices.is_empty());
    assert!(devices.iter().all(|d| d.starts_with(p.key_id())), "{:?}", &devices[..3]);
    let ips = strings(&events, "ip");
    assert!(!ips.is_empty());
    assert!(ips.iter().all(|ip| is_network_pseudonym(ip)), "{:?}", &ips[..3]);
    for b in &events {
        let lat = b
            .column_by_name("geo_lat")
            .unwrap()
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        for v in lat.iter().flatten() {
            assert_eq!(v, (v * 10.0).round() / 10.0, "geo_lat {v} not rounded");
        }
    }
    // The flags' evidence speaks of pseudonyms too.
    let evidence = strings(&table(&dir.join("pseudo/results/flags")), "evidence").join("\n");
    for u in raw_users.iter().take(50) {
        assert!(!evidence.contains(&format!("\"{u}\"")), "{u} in evidence");
    }
}

#[test]
fn a_missing_key_is_a_configuration_error_naming_the_setting() {
    let s = Scratch::new();
    let input = s.write("t.ndjson", "");
    let p = s.write(
        "p.toml",
        format!(
            "[pipeline]\nname = \"t\"\nstages = [\"ingest\"]\n[source]\nkind = \"ndjson\"\npath = {:?}\n[lake]\nroot = {:?}\n",
            input.display().to_string(),
            s.lake().display().to_string()
        ),
    );
    for cmd in ["run", "validate"] {
        let out = run(creditguard()
            .env_remove("CREDITGUARD_PSEUDONYM_KEY")
            .arg(cmd)
            .arg(&p));
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.contains("privacy.key_file"), "{stderr}");
        assert!(stderr.contains("CREDITGUARD_PSEUDONYM_KEY"), "{stderr}");
    }
    assert!(!s.lake().join("events").exists(), "nothing written without a key");

    // A key in the environment is enough; a malformed one is named, never shown.
    let ok = run(creditguard()
        .env("CREDITGUARD_PSEUDONYM_KEY", "ab".repeat(32))
        .arg("run")
        .arg(&p));
    assert!(ok.status.success());
    assert!(String::from_utf8(ok.stdout).unwrap().contains("pseudonymised (key k"));
    let bad = run(creditguard()
        .env("CREDITGUARD_PSEUDONYM_KEY", "hunter2")
        .arg("run")
        .arg(&p));
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8(bad.stderr).unwrap();
    assert!(stderr.contains("privacy.key_env") && !stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn keygen_writes_a_private_key_once() {
    let s = Scratch::new();
    let key = s.path("keys/pseudonym.key");
    let out = run(creditguard().arg("keygen").arg("--out").arg(&key));
    assert!(out.status.success());
    let text = std::fs::read_to_string(&key).unwrap();
    let bytes = creditguard_contract::privacy::parse_key(&text).unwrap();
    assert_eq!(bytes.len(), 32);
    let id = Pseudonymiser::new(&bytes).key_id().to_string();
    assert!(String::from_utf8(out.stdout).unwrap().contains(&id));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let again = run(creditguard().arg("keygen").arg("--out").arg(&key));
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&key).unwrap(), text, "never overwritten");
}
