//! The `results/flags` table, read and written in one place for every stage: the detectors
//! write it, the scorer, the review app and the backtest read it.
//!
//! Files hold exactly `creditguard_contract::flags_schema()`; the reader also takes the string
//! and timestamp encodings other writers use (`LargeUtf8`, `Utf8View`, any timestamp unit), so a
//! table written by another engine reads the same.

use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{Float64Builder, StringBuilder, TimestampMicrosecondBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int64Type, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use creditguard_contract::{flags_schema, Flag};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::{Error, Lake, Result};

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

/// The flags of one Parquet file in the results-v1 columns. A missing column or one of another
/// type is an error naming the file and the column.
pub fn read_flags_file(path: &Path) -> Result<Vec<Flag>> {
    let bad = |msg: String| Error::Location(format!("{}: {msg}", path.display()));
    let file = std::fs::File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| bad(format!("not a readable Parquet file: {e}")))?;
    let mut out = Vec::new();
    for batch in reader {
        let b = batch.map_err(|e| bad(format!("reading: {e}")))?;
        let col = |name: &str| {
            b.column_by_name(name)
                .cloned()
                .ok_or_else(|| bad(format!("no column `{name}`")))
        };
        let strs = |name: &str| -> Result<Vec<Option<String>>> {
            let a = col(name)?;
            let v = |it: &mut dyn Iterator<Item = Option<&str>>| {
                it.map(|s| s.map(str::to_string)).collect()
            };
            Ok(match a.data_type() {
                DataType::Utf8 => v(&mut a.as_string::<i32>().iter()),
                DataType::LargeUtf8 => v(&mut a.as_string::<i64>().iter()),
                DataType::Utf8View => v(&mut a.as_string_view().iter()),
                dt => return Err(bad(format!("column `{name}` is {dt}, not a string"))),
            })
        };
        let times = |name: &str| -> Result<Vec<Option<i64>>> {
            let a = col(name)?;
            let scaled = |v: Vec<Option<i64>>, f: &dyn Fn(i64) -> i64| {
                v.into_iter().map(|x| x.map(f)).collect()
            };
            Ok(match a.data_type() {
                DataType::Timestamp(TimeUnit::Microsecond, _) => a
                    .as_primitive::<TimestampMicrosecondType>()
                    .iter()
                    .collect(),
                DataType::Timestamp(TimeUnit::Millisecond, _) => scaled(
                    a.as_primitive::<TimestampMillisecondType>()
                        .iter()
                        .collect(),
                    &|x| x * 1000,
                ),
                DataType::Timestamp(TimeUnit::Nanosecond, _) => scaled(
                    a.as_primitive::<TimestampNanosecondType>().iter().collect(),
                    &|x| x.div_euclid(1000),
                ),
                DataType::Timestamp(TimeUnit::Second, _) => scaled(
                    a.as_primitive::<TimestampSecondType>().iter().collect(),
                    &|x| x * 1_000_000,
                ),
                DataType::Int64 => a.as_primitive::<Int64Type>().iter().collect(),
                dt => return Err(bad(format!("column `{name}` is {dt}, not a timestamp"))),
            })
        };
        let a = col("severity")?;
        let severity: Vec<Option<f64>> = match a.data_type() {
            DataType::Float64 => a.as_primitive::<Float64Type>().iter().collect(),
            DataType::Float32 => a
                .as_primitive::<Float32Type>()
                .iter()
                .map(|x| x.map(f64::from))
                .collect(),
            dt => return Err(bad(format!("column `severity` is {dt}, not a number"))),
        };
        let [id, run, det, rule, user, org, course, ev, ex] = [
            "flag_id",
            "run_id",
            "detector",
            "rule",
            "user_id",
            "org_unit",
            "course_id",
            "evidence",
            "explanation",
        ]
        .map(strs);
        let (id, run, det, rule, user, org, course, ev, ex) =
            (id?, run?, det?, rule?, user?, org?, course?, ev?, ex?);
        let (ws, we) = (times("window_start")?, times("window_end")?);
        let s = |v: &Vec<Option<String>>, i: usize| v[i].clone().unwrap_or_default();
        for i in 0..b.num_rows() {
            let window_start = ws[i].unwrap_or(0);
            out.push(Flag {
                flag_id: s(&id, i),
                run_id: s(&run, i),
                detector: s(&det, i),
                rule: s(&rule, i),
                user_id: s(&user, i),
                org_unit: org[i].clone(),
                course_id: course[i].clone(),
                window_start,
                window_end: we[i].unwrap_or(window_start),
                severity: severity[i].unwrap_or(0.0),
                evidence: s(&ev, i),
                explanation: s(&ex, i),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{LargeStringArray, RecordBatch};
    use arrow_schema::{Field, Schema};

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
