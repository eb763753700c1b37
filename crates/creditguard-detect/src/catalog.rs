//! The course catalog: `course_id, title, category, credits, duration_s, min_watch_ratio`, from
//! CSV (with a header) or Parquet. Shared by the detectors and the scorer.
//!
//! Every value is checked on load; the error names the file, the line (CSV) or row (Parquet), the
//! column and the bad value, so a broken catalog is fixed in one go rather than discovered by a
//! detector that quietly used a default.
//!
//! ```
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("catalog.csv");
//! std::fs::write(&path, "course_id,title,category,credits,duration_s,min_watch_ratio\n\
//!     c1,\"Safety, basics\",mandatory,4,3600,0.8\n").unwrap();
//! let catalog = creditguard_detect::Catalog::load(&path).unwrap();
//! assert_eq!(catalog.course("c1").unwrap().credits, 4.0);
//! std::fs::write(&path, "course_id,title,category,credits,duration_s,min_watch_ratio\nc1,T,mandatory,four,3600,0.8\n").unwrap();
//! let err = creditguard_detect::Catalog::load(&path).unwrap_err().to_string();
//! assert!(err.contains("line 2, column `credits`: `four` is not a number"), "{err}");
//! ```

use std::collections::HashMap;
use std::path::Path;

use polars::prelude::*;

use crate::{Error, Result};

/// The columns of a catalog, in order.
pub const COLUMNS: [&str; 6] = [
    "course_id",
    "title",
    "category",
    "credits",
    "duration_s",
    "min_watch_ratio",
];

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
    /// Length of the course's content in seconds (all lessons).
    pub duration_s: f64,
    /// Share of the content (0..=1) that must really be watched before the credits are granted.
    pub min_watch_ratio: f64,
}

/// The course catalog, as rows and as a polars frame.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    courses: Vec<Course>,
    index: HashMap<String, usize>,
}

impl Catalog {
    /// Loads a catalog from CSV (`.csv`, header required) or Parquet (`.parquet`, `.pq`).
    pub fn load(path: &Path) -> Result<Catalog> {
        let name = path.display().to_string();
        let fail = |message: String| Error::Catalog {
            path: name.clone(),
            message,
        };
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        let (df, first_row) = match ext.as_str() {
            "parquet" | "pq" => {
                let file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
                let df = ParquetReader::new(file)
                    .finish()
                    .map_err(|e| fail(e.to_string()))?;
                (df, RowLabel::Row)
            }
            _ => {
                // Everything as text first: the checks below then report the exact bad value.
                let df = CsvReadOptions::default()
                    .with_has_header(true)
                    .with_infer_schema_length(Some(0))
                    .try_into_reader_with_file_path(Some(path.to_path_buf()))
                    .and_then(|r| r.finish())
                    .map_err(|e| fail(e.to_string()))?;
                (df, RowLabel::CsvLine)
            }
        };
        Catalog::from_frame(&df, first_row).map_err(|problems| fail(problems.join("; ")))
    }

    /// Builds a catalog from courses (tests, other sources). Later duplicates replace earlier ones.
    pub fn from_courses(courses: impl IntoIterator<Item = Course>) -> Catalog {
        let mut catalog = Catalog::default();
        for c in courses {
            catalog.insert(c);
        }
        catalog
    }

    fn insert(&mut self, c: Course) {
        match self.index.get(&c.course_id) {
            Some(&i) => self.courses[i] = c,
            None => {
                self.index.insert(c.course_id.clone(), self.courses.len());
                self.courses.push(c);
            }
        }
    }

    fn from_frame(df: &DataFrame, label: RowLabel) -> std::result::Result<Catalog, Vec<String>> {
        let mut problems = Vec::new();
        let missing: Vec<&str> = COLUMNS
            .iter()
            .copied()
            .filter(|c| df.column(c).is_err())
            .collect();
        if !missing.is_empty() {
            let found: Vec<String> = df
                .get_column_names()
                .iter()
                .map(|s| s.to_string())
                .collect();
            return Err(vec![format!(
                "missing column{} {} (found: {}; expected: {})",
                if missing.len() == 1 { "" } else { "s" },
                missing
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                found.join(","),
                COLUMNS.join(",")
            )]);
        }
        // Read every column as text so CSV and Parquet (numbers or strings) share one check.
        let text = |name: &str| -> std::result::Result<StringChunked, String> {
            let c = df.column(name).map_err(|e| e.to_string())?;
            let s = c
                .as_materialized_series()
                .cast(&DataType::String)
                .map_err(|e| format!("column `{name}`: {e}"))?;
            Ok(s.str().map_err(|e| e.to_string())?.clone())
        };
        let cols: Vec<StringChunked> = match COLUMNS.iter().map(|c| text(c)).collect() {
            Ok(c) => c,
            Err(e) => return Err(vec![e]),
        };
        let mut catalog = Catalog::default();
        let mut seen = HashMap::new();
        for i in 0..df.height() {
            let at = label.at(i);
            let get = |k: usize| cols[k].get(i).map(str::trim).unwrap_or("");
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
            if problems.len() == before {
                catalog.insert(Course {
                    course_id: course_id.to_string(),
                    title: get(1).to_string(),
                    category: category.to_string(),
                    credits,
                    duration_s,
                    min_watch_ratio,
                });
            }
            if problems.len() >= 20 {
                problems.push("stopping after 20 problems".to_string());
                break;
            }
        }
        if problems.is_empty() {
            Ok(catalog)
        } else {
            Err(problems)
        }
    }

    /// The course with this id.
    pub fn course(&self, course_id: &str) -> Option<&Course> {
        self.index.get(course_id).map(|&i| &self.courses[i])
    }

    /// Every course, in file order.
    pub fn courses(&self) -> &[Course] {
        &self.courses
    }

    /// Number of courses.
    pub fn len(&self) -> usize {
        self.courses.len()
    }

    /// Whether the catalog has no course.
    pub fn is_empty(&self) -> bool {
        self.courses.is_empty()
    }

    /// The catalog as a frame: `course_id` (str), `title` (str), `category` (str), `credits`,
    /// `duration_s`, `min_watch_ratio` (f64).
    pub fn frame(&self) -> DataFrame {
        let c = &self.courses;
        DataFrame::new_infer_height(vec![
            Column::new(
                "course_id".into(),
                c.iter().map(|x| x.course_id.as_str()).collect::<Vec<_>>(),
            ),
            Column::new(
                "title".into(),
                c.iter().map(|x| x.title.as_str()).collect::<Vec<_>>(),
            ),
            Column::new(
                "category".into(),
                c.iter().map(|x| x.category.as_str()).collect::<Vec<_>>(),
            ),
            Column::new(
                "credits".into(),
                c.iter().map(|x| x.credits).collect::<Vec<_>>(),
            ),
            Column::new(
                "duration_s".into(),
                c.iter().map(|x| x.duration_s).collect::<Vec<_>>(),
            ),
            Column::new(
                "min_watch_ratio".into(),
                c.iter().map(|x| x.min_watch_ratio).collect::<Vec<_>>(),
            ),
        ])
        .expect("catalog columns have one length")
    }

    /// [`frame`](Self::frame) as a `LazyFrame`.
    pub fn lazy(&self) -> LazyFrame {
        self.frame().lazy()
    }
}

#[derive(Clone, Copy)]
enum RowLabel {
    CsvLine,
    Row,
}

impl RowLabel {
    fn at(self, i: usize) -> String {
        match self {
            // Line 1 is the header.
            RowLabel::CsvLine => format!("line {}", i + 2),
            RowLabel::Row => format!("row {}", i + 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Catalog> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.csv");
        std::fs::write(&path, text).unwrap();
        Catalog::load(&path)
    }

    const HEADER: &str = "course_id,title,category,credits,duration_s,min_watch_ratio\n";

    #[test]
    fn loads_csv_with_quoted_titles() {
        let c = load(&format!(
            "{HEADER}c1,\"A, B\",mandatory,4,3600,0.8\nc2,X,practice,0.5,600,1\n"
        ))
        .unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c.course("c1").unwrap().title, "A, B");
        assert_eq!(c.course("c2").unwrap().min_watch_ratio, 1.0);
        let f = c.frame();
        assert_eq!(f.height(), 2);
        assert_eq!(f.column("credits").unwrap().dtype(), &DataType::Float64);
    }

    #[test]
    fn every_bad_value_is_named_with_file_line_and_column() {
        let err = load(&format!(
            "{HEADER}c1,T,mandatory,x,3600,0.8\nc1,T,optional,1,-5,1.5\n"
        ))
        .unwrap_err()
        .to_string();
        for needle in [
            "catalog.csv",
            "line 2, column `credits`: `x` is not a number",
            "line 3, column `course_id`: `c1` already defined at line 2",
            "line 3, column `category`: `optional`",
            "line 3, column `duration_s`: `-5` must be > 0",
            "line 3, column `min_watch_ratio`: `1.5` must be between 0 and 1",
        ] {
            assert!(err.contains(needle), "{needle} missing in {err}");
        }
    }

    #[test]
    fn a_missing_column_is_named() {
        let err = load("course_id,title,category,credits,duration_s\nc1,T,mandatory,1,60\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing column `min_watch_ratio`"), "{err}");
    }

    #[test]
    fn loads_parquet_with_numeric_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.parquet");
        let mut df = Catalog::from_courses([Course {
            course_id: "c9".into(),
            title: "T".into(),
            category: "elective".into(),
            credits: 2.0,
            duration_s: 1200.0,
            min_watch_ratio: 0.7,
        }])
        .frame();
        ParquetWriter::new(std::fs::File::create(&path).unwrap())
            .finish(&mut df)
            .unwrap();
        let c = Catalog::load(&path).unwrap();
        assert_eq!(c.course("c9").unwrap().duration_s, 1200.0);
    }
}
