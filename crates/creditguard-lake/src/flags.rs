//! The `results/flags` table, read and written in one place for every stage: the detectors
//! write it, the scorer, the review app and the backtest read it.
//!
//! Files hold exactly `creditguard_contract::flags_schema()`; the reader also takes the string
//! and timestamp encodings other writers use (`LargeUtf8`, `Utf8View`, any timestamp unit), so a
//! table written by another engine reads the same, and files written before the optional
//! columns (`rules_version`, `rules_name`) existed read with them absent.

use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{Float64Builder, StringBuilder, TimestampMicrosecondBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use creditguard_contract::{flags_schema, Flag};

use crate::read::{columns_of, for_each_batch, Nums, Strs, Times};
use crate::{Lake, Result};

/// The table's name in the lake.
pub const FLAGS: &str = "results/flags";

/// Flags as one Arrow batch with exactly `creditguard_contract::flags_schema()`.
pub fn flags_batch(flags: &[Flag]) -> RecordBatch {
    let mut flag_id = StringBuilder::new();
    let mut run_id = StringBuilder::new();
    let mut detector = StringBuilder::new();
    let mut rule = StringBuilder::new();
    let mut user_id = StringBuilder::new();
    let mut org_unit = StringBuilder::new();
    let mut course_id = StringBuilder::new();
    let mut ws = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    let mut we = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    let mut severity = Float64Builder::new();
    let mut evidence = StringBuilder::new();
    let mut explanation = StringBuilder::new();
    let mut rules_version = StringBuilder::new();
    let mut rules_name = StringBuilder::new();
    for f in flags {
        flag_id.append_value(&f.flag_id);
        run_id.append_value(&f.run_id);
        detector.append_value(&f.detector);
        rule.append_value(&f.rule);
        user_id.append_value(&f.user_id);
        org_unit.append_option(f.org_unit.as_deref());
        course_id.append_option(f.course_id.as_deref());
        ws.append_value(f.window_start);
        we.append_value(f.window_end);
        severity.append_value(f.severity);
        evidence.append_value(&f.evidence);
        explanation.append_value(&f.explanation);
        rules_version.append_option(f.rules_version.as_deref());
        rules_name.append_option(f.rules_name.as_deref());
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(flag_id.finish()),
        Arc::new(run_id.finish()),
        Arc::new(detector.finish()),
        Arc::new(rule.finish()),
        Arc::new(user_id.finish()),
        Arc::new(org_unit.finish()),
        Arc::new(course_id.finish()),
        Arc::new(ws.finish()),
        Arc::new(we.finish()),
        Arc::new(severity.finish()),
        Arc::new(evidence.finish()),
        Arc::new(explanation.finish()),
        Arc::new(rules_version.finish()),
        Arc::new(rules_name.finish()),
    ];
    RecordBatch::try_new(flags_schema(), columns).expect("flag columns match flags_schema")
}

/// Replaces day `day` of `results/flags` with `flags` (one file, in one step).
pub fn write_flags(lake: &Lake, day: i64, flags: &[Flag]) -> Result<()> {
    let batch = flags_batch(flags);
    lake.replace_partition(FLAGS, day, |dir| {
        let file = std::fs::File::create(dir.join("part-0.parquet"))?;
        crate::write_parquet_to(file, batch.schema(), &[batch])?;
        Ok(())
    })?;
    Ok(())
}

/// The flags of the days `from..=to`, each with the day of the partition it is in.
pub fn read_flags(lake: &Lake, from: i64, to: i64) -> Result<Vec<(i64, Flag)>> {
    let mut out = Vec::new();
    for day in lake
        .days(FLAGS)?
        .into_iter()
        .filter(|d| (from..=to).contains(d))
    {
        for path in lake.partition_files(FLAGS, day)? {
            out.extend(read_flags_file(&path)?.into_iter().map(|f| (day, f)));
        }
    }
    Ok(out)
}

/// Columns a flags file may lack (written before they existed): read as absent.
const OPTIONAL: [&str; 2] = ["rules_version", "rules_name"];

/// The flags of one Parquet file in the results-v1 columns. A missing column (other than the
/// optional ones) or one of another type is an error naming the file and the column.
pub fn read_flags_file(path: &Path) -> Result<Vec<Flag>> {
    let mut columns = vec![
        "flag_id",
        "run_id",
        "detector",
        "rule",
        "user_id",
        "org_unit",
        "course_id",
        "window_start",
        "window_end",
        "severity",
        "evidence",
        "explanation",
    ];
    let present = columns_of(path)?;
    columns.extend(
        OPTIONAL
            .iter()
            .filter(|c| present.iter().any(|p| p.as_str() == **c)),
    );
    let mut out = Vec::new();
    for_each_batch(&[path.to_path_buf()], &columns, |b| {
        let s = |n| Strs::of(&b, n);
        let (id, run, det, rule, user, org, course, ev, expl) = (
            s("flag_id")?,
            s("run_id")?,
            s("detector")?,
            s("rule")?,
            s("user_id")?,
            s("org_unit")?,
            s("course_id")?,
            s("evidence")?,
            s("explanation")?,
        );
        let (version, name) = (
            Strs::optional(b, "rules_version")?,
            Strs::optional(b, "rules_name")?,
        );
        let (ws, we, sev) = (
            Times::of(&b, "window_start")?,
            Times::of(&b, "window_end")?,
            Nums::of(&b, "severity")?,
        );
        for i in 0..b.num_rows() {
            let window_start = ws.get(i).unwrap_or(0);
            out.push(Flag {
                flag_id: id.string(i),
                run_id: run.string(i),
                detector: det.string(i),
                rule: rule.string(i),
                user_id: user.string(i),
                org_unit: org.opt(i),
                course_id: course.opt(i),
                window_start,
                window_end: we.get(i).unwrap_or(window_start),
                severity: sev.get(i).unwrap_or(0.0),
                evidence: ev.string(i),
                explanation: expl.string(i),
                rules_version: version.as_ref().and_then(|v| v.opt(i)),
                rules_name: name.as_ref().and_then(|v| v.opt(i)),
            });
        }
        Ok(())
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::LargeStringArray;
    use arrow_schema::{DataType, Field, Schema};

    fn flag(id: &str, course: Option<&str>) -> Flag {
        Flag {
            flag_id: id.into(),
            run_id: "r".into(),
            detector: "watch_time".into(),
            rule: "watch_time.speed".into(),
            user_id: "u1".into(),
            org_unit: None,
            course_id: course.map(str::to_string),
            window_start: 1_000,
            window_end: 2_000,
            severity: 0.75,
            evidence: "{}".into(),
            explanation: "fast".into(),
            rules_version: Some("0123456789ab".into()),
            rules_name: Some("default".into()),
        }
    }

    #[test]
    fn flags_round_trip_and_other_encodings_read_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let flags = vec![flag("f1", Some("c1")), flag("f2", None)];
        write_flags(&lake, 3, &flags).unwrap();
        write_flags(&lake, 5, &flags[..1]).unwrap();
        let read = read_flags(&lake, 0, 4).unwrap();
        assert_eq!(
            read,
            flags.iter().map(|f| (3, f.clone())).collect::<Vec<_>>()
        );
        assert_eq!(read_flags(&lake, 0, 9).unwrap().len(), 3);

        // The same rows with its strings as LargeUtf8 (as another engine may write them).
        let b = flags_batch(&flags);
        let schema = b.schema();
        let fields: Vec<Field> = schema
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Utf8 => Field::new(f.name(), DataType::LargeUtf8, f.is_nullable()),
                _ => f.as_ref().clone(),
            })
            .collect();
        let columns: Vec<ArrayRef> = b
            .columns()
            .iter()
            .map(|c| match c.data_type() {
                DataType::Utf8 => {
                    Arc::new(LargeStringArray::from_iter(c.as_string::<i32>().iter())) as ArrayRef
                }
                _ => c.clone(),
            })
            .collect();
        let large = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
        let path = dir.path().join("large.parquet");
        crate::write_parquet_to(
            std::fs::File::create(&path).unwrap(),
            large.schema(),
            &[large],
        )
        .unwrap();
        assert_eq!(read_flags_file(&path).unwrap(), flags);

        // A file written before the optional version columns reads with them absent.
        let old = b.project(&(0..12).collect::<Vec<_>>()).unwrap();
        let path = dir.path().join("old.parquet");
        crate::write_parquet_to(std::fs::File::create(&path).unwrap(), old.schema(), &[old])
            .unwrap();
        let unversioned: Vec<Flag> = flags
            .iter()
            .map(|f| Flag {
                rules_version: None,
                rules_name: None,
                ..f.clone()
            })
            .collect();
        assert_eq!(read_flags_file(&path).unwrap(), unversioned);

        // A file without a column names the file and the column.
        let partial = b.project(&[0, 1]).unwrap();
        let path = dir.path().join("partial.parquet");
        crate::write_parquet_to(
            std::fs::File::create(&path).unwrap(),
            partial.schema(),
            &[partial],
        )
        .unwrap();
        let err = read_flags_file(&path).unwrap_err().to_string();
        assert!(
            err.contains("partial.parquet") && err.contains("no column `"),
            "{err}"
        );
    }
}
