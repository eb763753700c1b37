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

pub use creditguard_lake::catalog::{Course, CATEGORIES, COLUMNS};

use crate::{Error, Result};

/// The course catalog, as rows and as a polars frame.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    courses: Vec<Course>,
    index: HashMap<String, usize>,
}

impl Catalog {
    /// Loads a catalog from CSV (`.csv`, header required) or Parquet (`.parquet`, `.pq`), with
    /// the rules of [`creditguard_lake::catalog`] (the scorer reads it the same way).
    pub fn load(path: &Path) -> Result<Catalog> {
        creditguard_lake::catalog::load(path)
            .map(Catalog::from_courses)
            .map_err(|e| Error::Catalog {
                path: e.path,
                message: e.problems.join("; "),
            })
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
