//! `[privacy]`: pseudonyms at ingest give the same flags as raw ids, no raw identifier reaches
//! the lake, a missing key is a configuration error; `keygen`.

use std::collections::{BTreeMap, BTreeSet};
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
    files_under(dir)
        .iter()
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .flat_map(|f| table_file(f))
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
    let key = s.write(
        "k.key",
        creditguard_contract::privacy::format_key(&[0x5a; 32]),
    );
    let p = Pseudonymiser::new(&[0x5a; 32]);

    let raw = flags(dir, "raw", "pseudonymise = \"off\"");
    let pseudo = flags(
        dir,
        "pseudo",
        &format!(
            "pseudonymise = \"on\"\nkey_file = {:?}",
            key.display().to_string()
        ),
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
        assert!(
            counts.get(rule).copied().unwrap_or(0) > 0,
            "{rule}: {counts:?}"
        );
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
    assert!(users
        .iter()
        .all(|u| u.starts_with(&format!("{}:", p.key_id()))));
    assert!(users.iter().all(|u| !raw_users.contains(u)));
    let devices = strings(&events, "device_id");
    assert!(!devices.is_empty());
    assert!(
        devices.iter().all(|d| d.starts_with(p.key_id())),
        "{:?}",
        &devices[..3]
    );
    let ips = strings(&events, "ip");
    assert!(!ips.is_empty());
    assert!(
        ips.iter().all(|ip| is_network_pseudonym(ip)),
        "{:?}",
        &ips[..3]
    );
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
    assert!(
        !s.lake().join("events").exists(),
        "nothing written without a key"
    );

    // A key in the environment is enough; a malformed one is named, never shown.
    let ok = run(creditguard()
        .env("CREDITGUARD_PSEUDONYM_KEY", "ab".repeat(32))
        .arg("run")
        .arg(&p));
    assert!(ok.status.success());
    assert!(String::from_utf8(ok.stdout)
        .unwrap()
        .contains("pseudonymised (key k"));
    let bad = run(creditguard()
        .env("CREDITGUARD_PSEUDONYM_KEY", "hunter2")
        .arg("run")
        .arg(&p));
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8(bad.stderr).unwrap();
    assert!(
        stderr.contains("privacy.key_env") && !stderr.contains("hunter2"),
        "{stderr}"
    );
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
    assert_eq!(
        std::fs::read_to_string(&key).unwrap(),
        text,
        "never overwritten"
    );
}

/// Files of the lake (Parquet and NDJSON) whose values mention `needle`: strings, lists, JSON
/// evidence, and the raw bytes of dead letters.
fn mentions(lake: &Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    for p in files_under(lake) {
        if p.extension().is_some_and(|x| x == "parquet") {
            for b in table_file(&p) {
                for (f, c) in b.schema().fields().iter().zip(b.columns()) {
                    if contains(c.as_ref(), needle) {
                        hits.push(format!("{}:{}", p.display(), f.name()));
                    }
                }
            }
        } else if p.extension().is_some_and(|x| x == "ndjson")
            && std::fs::read_to_string(&p).unwrap().contains(needle)
        {
            hits.push(p.display().to_string());
        }
    }
    hits
}

/// Whether any value of an array (strings, binary, lists of them, struct fields) holds `needle`.
fn contains(a: &dyn Array, needle: &str) -> bool {
    let n = needle.as_bytes();
    any_value(a, &|v| v.windows(n.len()).any(|w| w == n))
}

/// Whether `hit` holds for any value of an array (strings and binary as bytes, lists of them,
/// struct fields).
fn any_value(a: &dyn Array, hit: &dyn Fn(&[u8]) -> bool) -> bool {
    use arrow_array::cast::AsArray;
    use arrow_schema::DataType;
    match a.data_type() {
        DataType::Utf8 => a
            .as_string::<i32>()
            .iter()
            .flatten()
            .any(|v| hit(v.as_bytes())),
        DataType::LargeUtf8 => a
            .as_string::<i64>()
            .iter()
            .flatten()
            .any(|v| hit(v.as_bytes())),
        DataType::Utf8View => a
            .as_string_view()
            .iter()
            .flatten()
            .any(|v| hit(v.as_bytes())),
        DataType::Binary => a.as_binary::<i32>().iter().flatten().any(hit),
        DataType::LargeBinary => a.as_binary::<i64>().iter().flatten().any(hit),
        DataType::BinaryView => a.as_binary_view().iter().flatten().any(hit),
        DataType::List(_) => any_value(a.as_list::<i32>().values().as_ref(), hit),
        DataType::LargeList(_) => any_value(a.as_list::<i64>().values().as_ref(), hit),
        DataType::Struct(_) => a
            .as_struct()
            .columns()
            .iter()
            .any(|c| any_value(c.as_ref(), hit)),
        DataType::Dictionary(_, _) => any_value(a.as_any_dictionary().values().as_ref(), hit),
        _ => false,
    }
}

fn table_file(p: &Path) -> Vec<RecordBatch> {
    ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(p).unwrap())
        .unwrap()
        .build()
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The shipped pipeline with its key in the scratch directory.
pub fn default_pipeline(s: &Scratch) -> (PathBuf, Pseudonymiser) {
    let key = s.write(
        "pseudonym.key",
        creditguard_contract::privacy::format_key(&[0x42; 32]),
    );
    let text = std::fs::read_to_string(repo().join("pipelines/default.toml"))
        .unwrap()
        .replace(
            "key_file = \"creditguard.key\"",
            &format!("key_file = {:?}", key.display().to_string()),
        );
    assert!(text.contains("pseudonym.key"));
    (s.write("p.toml", text), Pseudonymiser::new(&[0x42; 32]))
}

/// `creditguard erase` on the sample: afterwards no file of the lake mentions the learner (by
/// pseudonym, or by real id in the dead letters' raw bytes), every table still reads, the
/// review database has no case of theirs, the erasure is in the audit trail, and other
/// learners' rows that named them (shared-device evidence) stay, with the id replaced.
#[test]
fn erase_leaves_nothing_of_the_learner_in_the_lake() {
    let s = Scratch::new();
    let (p, key) = default_pipeline(&s);
    let cg = |args: &[&str]| {
        let mut c = creditguard();
        c.current_dir(repo())
            .args(args)
            .arg("--pipeline")
            .arg(&p)
            .arg("--lake")
            .arg(s.lake());
        c
    };
    let out = run(creditguard()
        .current_dir(repo())
        .arg("run")
        .arg(&p)
        .arg("--lake")
        .arg(s.lake()));
    assert!(out.status.success());
    // u00018 carries the shared-device pattern in the sample's labels: other learners' flags
    // name them in their evidence.
    let user = "u00018";
    let pseudonym = key.user(user);
    let before = mentions(&s.lake(), &pseudonym);
    assert!(
        before.iter().any(|h| h.contains("results/flags")),
        "{before:?}"
    );
    assert!(
        before.iter().any(|h| h.contains("features/shared_device")),
        "{before:?}"
    );
    let flags_before = table(&s.lake().join("results/flags"))
        .iter()
        .map(RecordBatch::num_rows)
        .sum::<usize>();
    let out = run(&mut cg(&["erase", user, "--as", "dpo"]));
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&format!("erased learner {pseudonym}")),
        "{text}"
    );
    assert!(text.contains("events"), "{text}");

    assert_eq!(mentions(&s.lake(), &pseudonym), Vec::<String>::new());
    assert_eq!(
        mentions(&s.lake(), &format!("\"{user}\"")),
        Vec::<String>::new()
    );
    assert!(strings(&table(&s.lake().join("results/flags")), "evidence")
        .iter()
        .any(|e| e.contains("\"erased\"")));
    let flags_after = table(&s.lake().join("results/flags"))
        .iter()
        .map(RecordBatch::num_rows)
        .sum::<usize>();
    assert!(
        flags_after < flags_before && flags_after > 0,
        "{flags_before} → {flags_after}"
    );
    assert!(
        !std::fs::read_dir(s.lake().join("_staging"))
            .unwrap()
            .any(|_| true),
        "staging left behind"
    );

    let list = run(&mut cg(&[
        "review", "list", "--status", "all", "--format", "json", "--limit", "10000",
    ]));
    assert!(list.status.success());
    let list = String::from_utf8(list.stdout).unwrap();
    assert!(
        list.contains("case_id") && !list.contains(&pseudonym),
        "{list}"
    );
    let audit = run(&mut cg(&[
        "audit",
        "export",
        "--from",
        "2000-01-01",
        "--to",
        "2999-12-31",
    ]));
    let audit = String::from_utf8(audit.stdout).unwrap();
    assert!(
        audit.contains("lake_erasure") && audit.contains("learner_erased"),
        "{audit}"
    );
    assert!(audit.contains(&creditguard_review::sha256_hex(&pseudonym)));
    assert!(run(&mut cg(&["audit", "verify"])).status.success());

    // Again: nothing left to remove.
    let again = run(&mut cg(&["erase", user]));
    assert!(String::from_utf8(again.stdout)
        .unwrap()
        .contains("no table mentions them"));
}

/// `creditguard retain`: whole day partitions past their age go (events 400 days, dead letters
/// 30), features and results stay, `--dry-run` only lists, the removal is audited.
#[test]
fn retain_removes_only_partitions_past_their_age() {
    let s = Scratch::new();
    let input = s.write(
        "in/t.ndjson",
        concat!(
            r#"{"event_id":"e1","type":"login","ts":"2026-03-02T09:00:00Z","user_id":"u1","session_id":"s1"}"#,
            "\n",
            r#"{"event_id":"e2","type":"login","ts":"2026-05-02T09:00:00Z","user_id":"u1","session_id":"s2"}"#,
            "\n",
            "not json\n",
        ),
    );
    let p = s.write(
        "p.toml",
        format!(
            "[pipeline]\nname = \"t\"\nstages = [\"ingest\", \"jobs\", \"score\"]\n[source]\nkind = \"ndjson\"\npath = {:?}\n[lake]\nroot = {:?}\n[privacy]\npseudonymise = \"off\"\n[retention]\nevents_days = 400\n",
            input.display().to_string(),
            s.lake().display().to_string()
        ),
    );
    assert!(run(creditguard().arg("run").arg(&p)).status.success());
    let lake = creditguard_lake::Lake::open(s.lake().to_str().unwrap()).unwrap();
    let day = |d: &str| creditguard_contract::time::parse_day(d).unwrap();
    assert_eq!(
        lake.days("events").unwrap(),
        vec![day("2026-03-02"), day("2026-05-02")]
    );
    let dead_day = lake.days("dead_letters").unwrap()[0];
    let features = lake.days("features/watch_time").unwrap();
    assert!(!features.is_empty());
    // 2027-04-06 is 400 days after 2026-03-02: still kept; a day later it goes.
    let retain = |today: &str, dry: bool| {
        let mut c = creditguard();
        c.args(["retain", "--pipeline"])
            .arg(&p)
            .args(["--today", today]);
        if dry {
            c.arg("--dry-run");
        }
        run(&mut c)
    };
    let out = retain("2027-04-06", false);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("events/"), "{text}");
    // dead letters are 30 days old after 30 days; their ingest day is today.
    assert!(text.contains("dead_letters/dt="), "{text}");
    assert!(lake.days("dead_letters").unwrap().is_empty(), "{dead_day}");

    let dry = retain("2027-04-07", true);
    let text = String::from_utf8(dry.stdout).unwrap();
    assert!(
        text.contains("would remove events/dt=2026-03-02 ")
            && text.contains("401 days old; retention.events_days = 400"),
        "{text}"
    );
    assert_eq!(
        lake.days("events").unwrap().len(),
        2,
        "a dry run removes nothing"
    );

    let out = retain("2027-04-07", false);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("removed events/dt=2026-03-02 "), "{text}");
    assert!(text.contains("audit record"), "{text}");
    assert_eq!(lake.days("events").unwrap(), vec![day("2026-05-02")]);
    assert_eq!(
        lake.days("features/watch_time").unwrap(),
        features,
        "features are kept"
    );
    assert!(
        !lake.days("results/flags").unwrap().is_empty(),
        "results are kept"
    );
    let audit = run(creditguard()
        .args([
            "audit",
            "export",
            "--from",
            "2000-01-01",
            "--to",
            "2999-12-31",
            "--pipeline",
        ])
        .arg(&p));
    let audit = String::from_utf8(audit.stdout).unwrap();
    assert!(
        audit.contains("\"retention\"") && audit.contains("2026-03-02"),
        "{audit}"
    );
}

/// Columns (`file:column`) and NDJSON files of the lake, dead letters aside (they keep what was
/// received), holding a real id of `ids`: a value equal to one, or naming one as a JSON string
/// (evidence, stream records), or the field `employee_id`.
fn real_ids_in(lake: &Path, ids: &BTreeSet<String>) -> Vec<String> {
    let quoted: Vec<String> = ids.iter().map(|i| format!("\"{i}\"")).collect();
    let names_one = |v: &[u8]| {
        let v = String::from_utf8_lossy(v);
        ids.contains(v.as_ref())
            || v.contains("employee_id")
            || (v.starts_with(['{', '[']) && quoted.iter().any(|q| v.contains(q.as_str())))
    };
    let mut hits = Vec::new();
    for p in files_under(lake) {
        if p.components().any(|c| c.as_os_str() == "dead_letters") {
            continue;
        }
        if p.extension().is_some_and(|x| x == "parquet") {
            for b in table_file(&p) {
                for (f, c) in b.schema().fields().iter().zip(b.columns()) {
                    if any_value(c.as_ref(), &names_one) {
                        hits.push(format!("{}:{}", p.display(), f.name()));
                    }
                }
            }
        } else if p.extension().is_some_and(|x| x == "ndjson") {
            let text = std::fs::read_to_string(&p).unwrap();
            if text.contains("employee_id") || quoted.iter().any(|q| text.contains(q.as_str())) {
                hits.push(p.display().to_string());
            }
        }
    }
    hits
}

/// `[results] identify = true`: every stream record of a roster learner carries their real id
/// as `employee_id` (the one whose pseudonym is its `user_id`); a learner missing from the
/// roster gets none and is reported; without the setting no record has the field; the lake's
/// tables hold no real id either way. Without a roster the pipeline is refused naming the key.
#[test]
fn identify_puts_real_ids_on_the_stream_and_never_in_the_lake() {
    let s = Scratch::new();
    let (p, key) = default_pipeline(&s);
    // The roster without u00018: their records are reported and carry no employee_id.
    let full = std::fs::read_to_string(repo().join("sample-data/roster.csv")).unwrap();
    let roster_text: String = full
        .lines()
        .filter(|l| !l.starts_with("u00018,"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(roster_text.len() < full.len());
    let roster = s.write("roster.csv", &roster_text);
    let base = std::fs::read_to_string(&p).unwrap().replace(
        "path = \"sample-data/roster.csv\"",
        &format!("path = {:?}", roster.display().to_string()),
    );
    assert!(base.contains("roster.csv\"") && !base.contains("sample-data/roster.csv"));
    let off = s.write("off.toml", &base);
    let on = s.write("on.toml", format!("{base}\n[results]\nidentify = true\n"));
    let ids: BTreeSet<String> = full
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next())
        .map(str::to_string)
        .collect();
    let real_of: BTreeMap<String, String> = roster_text
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next())
        .map(|id| (key.user(id), id.to_string()))
        .collect();

    let out = run(creditguard()
        .current_dir(repo())
        .arg("run")
        .arg(&off)
        .arg("--lake")
        .arg(s.lake()));
    assert!(out.status.success());
    let score = |pipeline: &Path| {
        let out = run(creditguard()
            .current_dir(repo())
            .args(["score", "--emit", "ndjson", "--pipeline"])
            .arg(pipeline)
            .arg("--lake")
            .arg(s.lake()));
        assert!(out.status.success());
        let stdout = String::from_utf8(out.stdout).unwrap();
        let records: Vec<creditguard_contract::StreamRecord> = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (records, String::from_utf8(out.stderr).unwrap())
    };

    let (plain, _) = score(&off);
    assert!(plain.len() > 100, "{}", plain.len());
    assert!(plain.iter().all(|r| r.employee_id.is_none()));

    let (named, stderr) = score(&on);
    assert_eq!(named.len(), plain.len());
    let mut identified = 0;
    for r in &named {
        let user = r.record.user_id();
        assert_eq!(r.employee_id.as_ref(), real_of.get(user), "{user}");
        identified += usize::from(r.employee_id.is_some());
    }
    assert!(identified > 100, "{identified}");
    let u18 = key.user("u00018");
    assert!(named
        .iter()
        .any(|r| r.record.user_id() == u18 && r.employee_id.is_none()));
    assert!(stderr.contains("missing from the roster"), "{stderr}");

    assert_eq!(real_ids_in(&s.lake(), &ids), Vec::<String>::new());

    // Without a roster, or without the key, there is nothing to identify with: refused.
    let no_roster = base.replace(
        &format!(
            "[roster]\npath = {:?}\nleave = \"sample-data/leave.csv\"\n",
            roster.display().to_string()
        ),
        "",
    );
    assert!(!no_roster.contains("[roster]"));
    let no_key = base
        .replace("create_key = true", "create_key = false")
        .replace("pseudonym.key", "no-such.key");
    for (name, text, named) in [
        ("none.toml", no_roster, "results.identify"),
        ("nokey.toml", no_key, "privacy.key_file"),
    ] {
        let file = s.write(name, format!("{text}\n[results]\nidentify = true\n"));
        let out = run(creditguard().current_dir(repo()).arg("validate").arg(&file));
        assert_eq!(out.status.code(), Some(2), "{name}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.contains(named), "{name}: {stderr}");
    }
}
