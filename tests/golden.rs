//! The golden test: the default pipeline on the shipped sample against committed expected output
//! (`tests/golden/default.txt`): row counts per rule and status of every result table, and a
//! digest of each table's rows, so a change that moves any result fails loudly.
//!
//! After a change that is meant to move results, regenerate the file and review its diff:
//! `CREDITGUARD_BLESS=1 cargo test --release --test integration golden`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use arrow_array::types::{
    Date32Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type,
    TimestampMicrosecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{cast::AsArray, Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};

use crate::privacy::table;
use crate::util::*;

/// A fixed pseudonymisation key, so the pseudonyms (and the ids derived from them) are stable.
const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// The result tables, and the column whose values are counted in each.
const TABLES: &[(&str, &str)] = &[
    ("results/flags", "rule"),
    ("results/credits", "status"),
    ("results/cases", "status"),
    ("results/claim_issues", "issue"),
    ("results/progress", "status"),
    ("results/warnings", "reason"),
    ("results/rule_feedback", "rule"),
];

#[test]
fn golden_the_default_pipeline_gives_the_committed_results() {
    let s = Scratch::new();
    let key = s.write("golden.key", KEY);
    let shipped = std::fs::read_to_string(repo().join("pipelines/default.toml")).unwrap();
    let pipeline = s.write(
        "default.toml",
        shipped
            .replace(
                "key_file = \"creditguard.key\"",
                &format!("key_file = {:?}", key.display().to_string()),
            )
            .replace("create_key = true", "create_key = false"),
    );
    let out = run(creditguard()
        .current_dir(repo())
        .arg("run")
        .arg(&pipeline)
        .arg("--lake")
        .arg(s.lake()));
    assert!(out.status.success(), "the default pipeline failed");

    let actual = summary(&s.lake());
    let file = repo().join("tests/golden/default.txt");
    if std::env::var_os("CREDITGUARD_BLESS").is_some() {
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&file).unwrap_or_default();
    if expected != actual {
        let mut diff = String::new();
        let (e, a): (Vec<_>, Vec<_>) = (expected.lines().collect(), actual.lines().collect());
        for line in e.iter().filter(|l| !a.contains(l)) {
            let _ = writeln!(diff, "- {line}");
        }
        for line in a.iter().filter(|l| !e.contains(l)) {
            let _ = writeln!(diff, "+ {line}");
        }
        panic!(
            "the default pipeline's results differ from {} (- expected, + actual):\n{diff}\n\
             If the change is intended, regenerate with \
             `CREDITGUARD_BLESS=1 cargo test --release --test integration golden` and review the diff.",
            file.display()
        );
    }
}

/// Counts per value of each table's key column, then one digest of all its rows.
fn summary(lake: &std::path::Path) -> String {
    let mut text = String::from(
        "# creditguard run pipelines/default.toml on sample-data/, fixed pseudonymisation key.\n\
         # Regenerate: CREDITGUARD_BLESS=1 cargo test --release --test integration golden\n",
    );
    for (name, key) in TABLES {
        let batches = table(&lake.join(name));
        let mut rows = Vec::new();
        let mut counts = BTreeMap::<String, usize>::new();
        for b in &batches {
            let key_col = b
                .column_by_name(key)
                .unwrap_or_else(|| panic!("{name} has no {key}"));
            for i in 0..b.num_rows() {
                *counts.entry(cell(key_col.as_ref(), i)).or_default() += 1;
                rows.push(row(b, i));
            }
        }
        rows.sort();
        let _ = writeln!(text, "{name} rows {}", rows.len());
        for (value, n) in &counts {
            let _ = writeln!(text, "{name} {key}={value} {n}");
        }
        let _ = writeln!(
            text,
            "{name} digest {:016x}",
            fnv1a(rows.join("\n").as_bytes())
        );
    }
    text
}

/// A row as text, every column but `run_id` (which names the run, not the result).
fn row(b: &RecordBatch, i: usize) -> String {
    let schema = b.schema();
    let mut out = String::new();
    for (field, col) in schema.fields().iter().zip(b.columns()) {
        if field.name() != "run_id" {
            let _ = write!(out, "{}={}|", field.name(), cell(col.as_ref(), i));
        }
    }
    out
}

/// One value as text. Floats are rounded to 6 decimals: a parallel sum may differ in its last
/// bits between runs, which is not a change of result.
fn cell(a: &dyn Array, i: usize) -> String {
    if a.is_null(i) {
        return "∅".into();
    }
    match a.data_type() {
        DataType::Utf8 => a.as_string::<i32>().value(i).to_string(),
        DataType::LargeUtf8 => a.as_string::<i64>().value(i).to_string(),
        DataType::Utf8View => a.as_string_view().value(i).to_string(),
        DataType::Boolean => a.as_boolean().value(i).to_string(),
        DataType::Int8 => a.as_primitive::<Int8Type>().value(i).to_string(),
        DataType::Int16 => a.as_primitive::<Int16Type>().value(i).to_string(),
        DataType::Int32 => a.as_primitive::<Int32Type>().value(i).to_string(),
        DataType::Int64 => a.as_primitive::<Int64Type>().value(i).to_string(),
        DataType::UInt8 => a.as_primitive::<UInt8Type>().value(i).to_string(),
        DataType::UInt16 => a.as_primitive::<UInt16Type>().value(i).to_string(),
        DataType::UInt32 => a.as_primitive::<UInt32Type>().value(i).to_string(),
        DataType::UInt64 => a.as_primitive::<UInt64Type>().value(i).to_string(),
        DataType::Float32 => format!("{:.6}", a.as_primitive::<Float32Type>().value(i)),
        DataType::Float64 => format!("{:.6}", a.as_primitive::<Float64Type>().value(i)),
        DataType::Date32 => a.as_primitive::<Date32Type>().value(i).to_string(),
        DataType::Timestamp(TimeUnit::Microsecond, _) => a
            .as_primitive::<TimestampMicrosecondType>()
            .value(i)
            .to_string(),
        DataType::List(_) => list(a.as_list::<i32>().value(i).as_ref()),
        DataType::LargeList(_) => list(a.as_list::<i64>().value(i).as_ref()),
        DataType::Dictionary(_, _) => {
            let d = a.as_any_dictionary();
            cell(d.values().as_ref(), d.normalized_keys()[i])
        }
        other => panic!("the golden test cannot print a {other} column yet"),
    }
}

fn list(values: &dyn Array) -> String {
    let items: Vec<String> = (0..values.len()).map(|j| cell(values, j)).collect();
    format!("[{}]", items.join(","))
}

/// FNV-1a, 64 bits: a stable digest with no dependency.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
