//! The course catalog by course id, as the scorer looks courses up; read (CSV or Parquet) and
//! checked by [`creditguard_lake::catalog`], the same loader the detection jobs use.

use std::collections::BTreeMap;
use std::path::Path;

use crate::{Error, Result};

pub use creditguard_lake::catalog::{Course, CourseTerms};

/// The catalog, by course id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    pub courses: BTreeMap<String, Course>,
    /// The optional columns (topic, live, quiz) of the courses that set any.
    pub terms: BTreeMap<String, CourseTerms>,
}

impl Catalog {
    /// Reads a catalog, CSV or Parquet, with the rules of [`creditguard_lake::catalog`] (the
    /// detection jobs read it the same way).
    pub fn load(path: &Path) -> Result<Catalog> {
        creditguard_lake::catalog::load_with_terms(path)
            .map(Catalog::from_entries)
            .map_err(|e| Error::Catalog {
                path: path.to_path_buf(),
                msg: e.problems.join("; "),
            })
    }

    /// Parses catalog CSV text; every problem is reported with its line and column.
    ///
    /// ```
    /// let c = creditguard_score::Catalog::parse(
    ///     "course_id,title,category,credits,duration_s,min_watch_ratio\n\
    ///      c1,\"Safety, part 1\",mandatory,2.5,1800,0.8\n").unwrap();
    /// assert_eq!(c.courses["c1"].title, "Safety, part 1");
    /// assert_eq!(c.courses["c1"].credits, 2.5);
    /// ```
    pub fn parse(text: &str) -> std::result::Result<Catalog, String> {
        creditguard_lake::catalog::parse_csv_with_terms(text)
            .map(Catalog::from_entries)
            .map_err(|problems| problems.join("; "))
    }

    pub fn from_courses(courses: impl IntoIterator<Item = Course>) -> Catalog {
        Catalog::from_entries(courses.into_iter().map(|c| (c, CourseTerms::default())))
    }

    /// Courses with their optional columns.
    pub fn from_entries(entries: impl IntoIterator<Item = (Course, CourseTerms)>) -> Catalog {
        let mut out = Catalog::default();
        for (c, t) in entries {
            if t != CourseTerms::default() {
                out.terms.insert(c.course_id.clone(), t);
            }
            out.courses.insert(c.course_id.clone(), c);
        }
        out
    }

    /// The course, if the catalog has it.
    pub fn get(&self, course_id: &str) -> Option<&Course> {
        self.courses.get(course_id)
    }

    /// The course's topic (`None`: none, or not in the catalog).
    pub fn topic(&self, course_id: &str) -> Option<&str> {
        self.terms.get(course_id).and_then(|t| t.topic.as_deref())
    }

    /// Whether the course is a live session (catalog `kind` `live`).
    pub fn is_live(&self, course_id: &str) -> bool {
        self.terms.get(course_id).is_some_and(|t| t.live)
    }

    /// Whether the course ends in a quiz (catalog `quiz` `yes`).
    pub fn has_quiz(&self, course_id: &str) -> bool {
        self.terms.get(course_id).is_some_and(|t| t.quiz)
    }

    /// Every topic the catalog names.
    pub fn topics(&self) -> std::collections::BTreeSet<&str> {
        self.terms
            .values()
            .filter_map(|t| t.topic.as_deref())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_every_bad_row_with_its_line() {
        let err = Catalog::parse(
            "course_id,title,category,credits,duration_s,min_watch_ratio\nc1,a,mandatory,x,10,0.5\nc2,b,optional,1,10,0.5\n",
        )
        .unwrap_err();
        assert!(
            err.contains("line 2, column `credits`: `x` is not a number"),
            "{err}"
        );
        assert!(
            err.contains("line 3, column `category`: `optional`"),
            "{err}"
        );
    }

    #[test]
    fn quoted_fields_and_column_order() {
        let c = Catalog::parse(
            "title,course_id,credits,category,duration_s,min_watch_ratio\r\n\"He said \"\"hi\"\"\nthen left\",c9,3,elective,60,0.9\r\n",
        )
        .unwrap();
        assert_eq!(c.courses["c9"].title, "He said \"hi\"\nthen left");
        assert_eq!(c.courses["c9"].credits, 3.0);
        assert!(Catalog::parse("course_id,title\n")
            .unwrap_err()
            .contains("missing columns `category`"));
    }
}
