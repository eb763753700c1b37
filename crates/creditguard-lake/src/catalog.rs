//! The course catalog, read one way for every stage: `course_id, title, category, credits,
//! duration_s, min_watch_ratio` and the optional [`OPTIONAL`] columns `topic, kind, quiz`
//! ([`CourseTerms`]) from CSV (a header row, RFC 4180 quoting, columns in any order) or Parquet
//! (numbers or strings). Every value is checked; an error names the file, the line
//! (CSV) or row (Parquet), the column and the bad value, up to 20 problems at once.
//!
//! ```
//! let rows = creditguard_lake::catalog::parse_csv(
//!     "course_id,title,category,credits,duration_s,min_watch_ratio\n\
//!      c1,\"Safety, part 1\",mandatory,2.5,1800,0.8\n").unwrap();
//! assert_eq!(rows[0].title, "Safety, part 1");
//! let err = creditguard_lake::catalog::parse_csv(
//!     "course_id,title,category,credits,duration_s,min_watch_ratio\nc1,T,mandatory,four,60,0.8\n")
//!     .unwrap_err().join("; ");
//! assert!(err.contains("line 2, column `credits`: `four` is not a number"), "{err}");
//! ```

use std::collections::HashMap;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// The columns of a catalog, in order.
pub const COLUMNS: [&str; 6] = [
    "course_id",
    "title",
    "category",
    "credits",
    "duration_s",
    "min_watch_ratio",
];

/// Optional columns: what a course is about and how its credits are earned ([`CourseTerms`]).
pub const OPTIONAL: [&str; 3] = ["topic", "kind", "quiz"];

/// Values of the `kind` column: `course` (the default: credits on completion) or `live` (a live
/// session: credits per engaged hour when the credit policy says so).
pub const KINDS: [&str; 2] = ["course", "live"];

/// Course categories of the contract.
pub const CATEGORIES: [&str; 3] = ["mandatory", "elective", "practice"];

/// One course.
#[derive(Debug, Clone, PartialEq)]
pub struct Course {
    pub course_id: String,
    pub title: String,
    /// `mandatory`, `elective` or `practice`.
    pub category: String,
    /// Credits the course is worth.
    pub credits: f64,
    /// Length of the course's content in seconds (all lessons; a workshop's length).
    pub duration_s: f64,
    /// Share of the content (0..=1) that must really be watched before the credits are granted.
    pub min_watch_ratio: f64,
}

/// What the optional catalog columns say of a course.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CourseTerms {
    /// `topic`: what the course is about (e.g. `management`), for a policy's minimum per topic;
    /// `None` when empty.
    pub topic: Option<String>,
    /// `kind` `live`: a live session, whose credits a policy may accrue per engaged hour.
    pub live: bool,
    /// `quiz` `yes`: the course ends in a quiz, which a policy may require to be passed.
    pub quiz: bool,
}

/// A catalog that could not be read: the file and every problem found.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("catalog {path}: {}", .problems.join("; "))]
pub struct CatalogError {
    pub path: String,
    pub problems: Vec<String>,
}

/// Reads a catalog: Parquet for `.parquet`/`.pq`, CSV otherwise. Courses in file order.
pub fn load(path: &Path) -> Result<Vec<Course>, CatalogError> {
    Ok(load_with_terms(path)?.into_iter().map(|(c, _)| c).collect())
}

/// Parses catalog CSV text.
pub fn parse_csv(text: &str) -> Result<Vec<Course>, Vec<String>> {
    Ok(parse_csv_with_terms(text)?
        .into_iter()
        .map(|(c, _)| c)
        .collect())
}

/// [`load`], with each course's optional columns.
pub fn load_with_terms(path: &Path) -> Result<Vec<(Course, CourseTerms)>, CatalogError> {
    let fail = |problems: Vec<String>| CatalogError {
        path: path.display().to_string(),
        problems,
    };
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if matches!(ext.as_str(), "parquet" | "pq") {
        let file = std::fs::File::open(path).map_err(|e| fail(vec![e.to_string()]))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|b| b.build())
            .map_err(|e| fail(vec![e.to_string()]))?;
        let batches: Vec<RecordBatch> = reader
            .collect::<Result<_, _>>()
            .map_err(|e| fail(vec![e.to_string()]))?;
        parse_batches(&batches).map_err(fail)
    } else {
        let text = std::fs::read_to_string(path).map_err(|e| fail(vec![e.to_string()]))?;
        parse_csv_with_terms(&text).map_err(fail)
    }
}

/// [`parse_csv`], with each course's optional columns.
pub fn parse_csv_with_terms(text: &str) -> Result<Vec<(Course, CourseTerms)>, Vec<String>> {
    let rows = csv_records(text).map_err(|e| vec![e])?;
    let mut rows = rows.into_iter();
    let Some((_, header)) = rows.next() else {
        return Err(vec!["empty file, expected a header row".into()]);
    };
    let header: Vec<String> = header.iter().map(|h| h.trim().to_string()).collect();
    let idx = column_indexes(&header)?;
    let records: Vec<(String, Vec<String>)> = rows
        .filter(|(_, r)| !(r.len() == 1 && r[0].trim().is_empty()))
        .map(|(line, r)| {
            let fields = idx
                .iter()
                .map(|i| i.and_then(|i| r.get(i)).cloned().unwrap_or_default())
                .collect();
            (format!("line {line}"), fields)
        })
        .collect();
    check(records)
}

/// Reads catalog rows from Arrow batches (a Parquet catalog), values as text so numbers and
/// strings pass the same checks.
fn parse_batches(batches: &[RecordBatch]) -> Result<Vec<(Course, CourseTerms)>, Vec<String>> {
    let Some(first) = batches.first() else {
        return Ok(Vec::new());
    };
    let header: Vec<String> = first
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let idx = column_indexes(&header)?;
    let mut records = Vec::new();
    let mut row = 0;
    for b in batches {
        let cols: Vec<Vec<String>> = idx
            .iter()
            .map(|i| match i {
                Some(i) => as_text(b.column(*i).as_ref()),
                None => Ok(vec![String::new(); b.num_rows()]),
            })
            .collect::<Result<_, _>>()
            .map_err(|e| vec![e])?;
        for i in 0..b.num_rows() {
            row += 1;
            records.push((
                format!("row {row}"),
                cols.iter().map(|c| c[i].clone()).collect(),
            ));
        }
    }
    check(records)
}

fn as_text(a: &dyn Array) -> Result<Vec<String>, String> {
    let cell = |valid: bool, v: String| if valid { v } else { String::new() };
    Ok(match a.data_type() {
        DataType::Utf8 => {
            let s = a.as_string::<i32>();
            (0..a.len())
                .map(|i| cell(s.is_valid(i), s.value(i).to_string()))
                .collect()
        }
        DataType::LargeUtf8 => {
            let s = a.as_string::<i64>();
            (0..a.len())
                .map(|i| cell(s.is_valid(i), s.value(i).to_string()))
                .collect()
        }
        DataType::Utf8View => {
            let s = a.as_string_view();
            (0..a.len())
                .map(|i| cell(s.is_valid(i), s.value(i).to_string()))
                .collect()
        }
        DataType::Float64 => {
            let s = a.as_primitive::<arrow_array::types::Float64Type>();
            (0..a.len())
                .map(|i| cell(s.is_valid(i), s.value(i).to_string()))
                .collect()
        }
        DataType::Float32 => {
            let s = a.as_primitive::<arrow_array::types::Float32Type>();
            (0..a.len())
                .map(|i| cell(s.is_valid(i), s.value(i).to_string()))
                .collect()
        }
        DataType::Int64 => {
            let s = a.as_primitive::<arrow_array::types::Int64Type>();
            (0..a.len())
                .map(|i| cell(s.is_valid(i), s.value(i).to_string()))
                .collect()
        }
        DataType::Int32 => {
            let s = a.as_primitive::<arrow_array::types::Int32Type>();
            (0..a.len())
                .map(|i| cell(s.is_valid(i), s.value(i).to_string()))
                .collect()
        }
        other => {
            return Err(format!(
                "a column of type {other} (expected text or numbers)"
            ))
        }
    })
}

/// Where each of [`COLUMNS`] and then [`OPTIONAL`] is in the header (`None`: an optional column
/// the file lacks).
fn column_indexes(header: &[String]) -> Result<Vec<Option<usize>>, Vec<String>> {
    let missing: Vec<&str> = COLUMNS
        .iter()
        .copied()
        .filter(|c| !header.iter().any(|h| h == c))
        .collect();
    if !missing.is_empty() {
        return Err(vec![format!(
            "missing column{} {} (found: {}; expected: {})",
            if missing.len() == 1 { "" } else { "s" },
            missing
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", "),
            header.join(","),
            COLUMNS.join(",")
        )]);
    }
    Ok(COLUMNS
        .iter()
        .chain(OPTIONAL.iter())
        .map(|c| header.iter().position(|h| h == c))
        .collect())
}

/// The rules every catalog row meets, whichever format it came in.
fn check(records: Vec<(String, Vec<String>)>) -> Result<Vec<(Course, CourseTerms)>, Vec<String>> {
    let mut problems = Vec::new();
    let mut courses = Vec::new();
    let mut seen: HashMap<String, String> = HashMap::new();
    for (at, fields) in records {
        let get = |k: usize| fields[k].trim();
        let before = problems.len();
        let course_id = get(0);
        if course_id.is_empty() {
            problems.push(format!("{at}, column `course_id`: empty"));
        } else if let Some(prev) = seen.insert(course_id.to_string(), at.clone()) {
            problems.push(format!(
                "{at}, column `course_id`: `{course_id}` already defined at {prev}"
            ));
        }
        let category = get(2);
        if !CATEGORIES.contains(&category) {
            problems.push(format!(
                "{at}, column `category`: `{category}` is not one of {}",
                CATEGORIES.join(", ")
            ));
        }
        let mut num = |k: usize, ok: fn(f64) -> bool, rule: &str| -> f64 {
            let raw = get(k);
            match raw.parse::<f64>() {
                Ok(v) if v.is_finite() && ok(v) => v,
                Ok(_) => {
                    problems.push(format!("{at}, column `{}`: `{raw}` {rule}", COLUMNS[k]));
                    f64::NAN
                }
                Err(_) => {
                    problems.push(format!(
                        "{at}, column `{}`: `{raw}` is not a number",
                        COLUMNS[k]
                    ));
                    f64::NAN
                }
            }
        };
        let credits = num(3, |v| v >= 0.0, "must be ≥ 0");
        let duration_s = num(4, |v| v > 0.0, "must be > 0");
        let min_watch_ratio = num(5, |v| (0.0..=1.0).contains(&v), "must be between 0 and 1");
        let terms = check_terms(&at, &fields[COLUMNS.len()..], &mut problems);
        if problems.len() == before {
            let course = Course {
                course_id: course_id.to_string(),
                title: get(1).to_string(),
                category: category.to_string(),
                credits,
                duration_s,
                min_watch_ratio,
            };
            courses.push((course, terms));
        }
        if problems.len() >= 20 {
            problems.push("stopping after 20 problems".to_string());
            break;
        }
    }
    if problems.is_empty() {
        Ok(courses)
    } else {
        Err(problems)
    }
}

/// The optional columns of one row (`topic`, `kind`, `quiz`, empty where the file lacks them).
fn check_terms(at: &str, fields: &[String], problems: &mut Vec<String>) -> CourseTerms {
    let (topic, kind, quiz) = (fields[0].trim(), fields[1].trim(), fields[2].trim());
    if !kind.is_empty() && !KINDS.contains(&kind) {
        problems.push(format!(
            "{at}, column `kind`: `{kind}` is not one of {} (empty: course)",
            KINDS.join(", ")
        ));
    }
    if !matches!(quiz, "" | "yes" | "no") {
        problems.push(format!(
            "{at}, column `quiz`: `{quiz}` is not yes or no (empty: no)"
        ));
    }
    CourseTerms {
        topic: (!topic.is_empty()).then(|| topic.to_string()),
        live: kind == "live",
        quiz: quiz == "yes",
    }
}

/// RFC 4180: fields separated by commas, optionally double-quoted, `""` inside quotes is a quote,
/// quoted fields may span lines. Returns (line number of the record's start, fields).
pub fn csv_records(text: &str) -> Result<Vec<(usize, Vec<String>)>, String> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut line = 1;
    let mut start_line = 1;
    let mut chars = text.trim_start_matches('\u{feff}').chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                '\n' => {
                    line += 1;
                    field.push(c);
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => in_quotes = true,
            ',' => row.push(std::mem::take(&mut field)),
            '\r' => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                rows.push((start_line, std::mem::take(&mut row)));
                line += 1;
                start_line = line;
            }
            _ => field.push(c),
        }
    }
    if in_quotes {
        return Err(format!("line {start_line}: unterminated quoted field"));
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push((start_line, row));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "course_id,title,category,credits,duration_s,min_watch_ratio\n";

    #[test]
    fn every_bad_value_is_named_with_its_line_and_column() {
        let err = parse_csv(&format!(
            "{HEADER}c1,T,mandatory,x,3600,0.8\nc1,T,optional,1,-5,1.5\nc3,T,practice,1,0,0\n"
        ))
        .unwrap_err()
        .join("\n");
        for needle in [
            "line 2, column `credits`: `x` is not a number",
            "line 3, column `course_id`: `c1` already defined at line 2",
            "line 3, column `category`: `optional`",
            "line 3, column `duration_s`: `-5` must be > 0",
            "line 3, column `min_watch_ratio`: `1.5` must be between 0 and 1",
            "line 4, column `duration_s`: `0` must be > 0",
        ] {
            assert!(err.contains(needle), "{needle} missing in {err}");
        }
    }

    #[test]
    fn quoted_fields_any_column_order_and_a_missing_column() {
        let c = parse_csv(
            "title,course_id,credits,category,duration_s,min_watch_ratio\r\n\"He said \"\"hi\"\"\nthen left\",c9,3,elective,60,0.9\r\n",
        )
        .unwrap();
        assert_eq!(c[0].title, "He said \"hi\"\nthen left");
        assert_eq!(c[0].credits, 3.0);
        let err = parse_csv("course_id,title,category,credits,duration_s\nc1,T,mandatory,1,60\n")
            .unwrap_err()
            .join("");
        assert!(err.contains("missing column `min_watch_ratio`"), "{err}");
    }

    #[test]
    fn optional_columns_topic_kind_and_quiz() {
        let rows = parse_csv_with_terms(
            "course_id,title,category,credits,duration_s,min_watch_ratio,topic,kind,quiz\n\
             c1,Leading teams,elective,2,1800,0.8,management,,yes\n\
             c2,Town hall,elective,0,3600,0,, live ,\n",
        )
        .unwrap();
        assert_eq!(rows[0].1.topic.as_deref(), Some("management"));
        assert!(rows[0].1.quiz && !rows[0].1.live);
        assert_eq!(
            rows[1].1,
            CourseTerms {
                topic: None,
                live: true,
                quiz: false
            }
        );
        // A catalog without the optional columns reads as before.
        let plain = parse_csv_with_terms(&format!("{HEADER}c1,T,mandatory,1,60,0.5\n")).unwrap();
        assert_eq!(plain[0].1, CourseTerms::default());
        let err = parse_csv(
            "course_id,title,category,credits,duration_s,min_watch_ratio,kind,quiz\n\
             c1,T,mandatory,1,60,0.5,webinar,maybe\n",
        )
        .unwrap_err()
        .join("\n");
        assert!(
            err.contains("line 2, column `kind`: `webinar` is not one of course, live"),
            "{err}"
        );
        assert!(
            err.contains("line 2, column `quiz`: `maybe` is not yes or no"),
            "{err}"
        );
    }

    #[test]
    fn parquet_with_numbers_and_strings_passes_the_same_checks() {
        use std::sync::Arc;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.parquet");
        let text =
            |v: &[&str]| -> Arc<dyn Array> { Arc::new(arrow_array::StringArray::from(v.to_vec())) };
        let num =
            |v: &[f64]| -> Arc<dyn Array> { Arc::new(arrow_array::Float64Array::from(v.to_vec())) };
        let batch = RecordBatch::try_from_iter([
            ("course_id", text(&["c9", "c10"])),
            ("title", text(&["T", "U"])),
            ("category", text(&["elective", "practice"])),
            ("credits", num(&[2.0, 1.0])),
            ("duration_s", num(&[1200.0, -1.0])),
            ("min_watch_ratio", text(&["0.7", "0"])),
        ])
        .unwrap();
        let file = std::fs::File::create(&path).unwrap();
        crate::write_parquet_to(file, batch.schema(), &[batch]).unwrap();
        let err = load(&path).unwrap_err();
        assert_eq!(
            err.problems,
            ["row 2, column `duration_s`: `-1` must be > 0"]
        );
        assert!(err
            .to_string()
            .starts_with(&format!("catalog {}", path.display())));
    }
}
