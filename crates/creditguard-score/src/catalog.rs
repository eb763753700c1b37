//! The course catalog: `course_id,title,category,credits,duration_s,min_watch_ratio` (CSV with a
//! header row, RFC 4180 quoting).

use std::collections::BTreeMap;
use std::path::Path;

use crate::{Error, Result};

/// One course of the catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct Course {
    pub course_id: String,
    pub title: String,
    /// `mandatory`, `elective` or `practice`.
    pub category: String,
    pub credits: f64,
    pub duration_s: f64,
    pub min_watch_ratio: f64,
}

/// The catalog, by course id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    pub courses: BTreeMap<String, Course>,
}

const COLUMNS: [&str; 6] = [
    "course_id",
    "title",
    "category",
    "credits",
    "duration_s",
    "min_watch_ratio",
];

impl Catalog {
    /// Reads a catalog CSV file.
    pub fn load(path: &Path) -> Result<Catalog> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Catalog::parse(&text).map_err(|msg| Error::Catalog {
            path: path.to_path_buf(),
            msg,
        })
    }

    /// Parses catalog CSV text. Columns are found by header name, so their order may differ;
    /// every problem is reported with its line number.
    ///
    /// ```
    /// let c = creditguard_score::Catalog::parse(
    ///     "course_id,title,category,credits,duration_s,min_watch_ratio\n\
    ///      c1,\"Safety, part 1\",mandatory,2.5,1800,0.8\n").unwrap();
    /// assert_eq!(c.courses["c1"].title, "Safety, part 1");
    /// assert_eq!(c.courses["c1"].credits, 2.5);
    /// ```
    pub fn parse(text: &str) -> std::result::Result<Catalog, String> {
        let rows = parse_csv(text)?;
        let mut rows = rows.into_iter();
        let Some((_, header)) = rows.next() else {
            return Err("empty file, expected a header row".into());
        };
        let mut idx = [0usize; 6];
        for (i, name) in COLUMNS.iter().enumerate() {
            idx[i] = header
                .iter()
                .position(|h| h.trim() == *name)
                .ok_or_else(|| {
                    format!("header lacks column `{name}` (has: {})", header.join(","))
                })?;
        }
        let mut courses = BTreeMap::new();
        let mut errs = Vec::new();
        for (line, row) in rows {
            if row.len() == 1 && row[0].trim().is_empty() {
                continue;
            }
            let get = |i: usize| row.get(idx[i]).map(|s| s.trim()).unwrap_or("");
            let num = |i: usize, errs: &mut Vec<String>| match get(i).parse::<f64>() {
                Ok(v) if v.is_finite() && v >= 0.0 => v,
                _ => {
                    errs.push(format!(
                        "line {line}: `{}` must be a number ≥ 0, got `{}`",
                        COLUMNS[i],
                        get(i)
                    ));
                    0.0
                }
            };
            let course = Course {
                course_id: get(0).to_string(),
                title: get(1).to_string(),
                category: get(2).to_string(),
                credits: num(3, &mut errs),
                duration_s: num(4, &mut errs),
                min_watch_ratio: num(5, &mut errs),
            };
            if course.course_id.is_empty() {
                errs.push(format!("line {line}: empty course_id"));
            }
            if !matches!(
                course.category.as_str(),
                "mandatory" | "elective" | "practice"
            ) {
                errs.push(format!(
                    "line {line}: category must be mandatory, elective or practice, got `{}`",
                    course.category
                ));
            }
            if courses.insert(course.course_id.clone(), course).is_some() {
                errs.push(format!("line {line}: course_id `{}` appears twice", get(0)));
            }
        }
        if errs.is_empty() {
            Ok(Catalog { courses })
        } else {
            Err(errs.join("; "))
        }
    }

    /// The course, if the catalog has it.
    pub fn get(&self, course_id: &str) -> Option<&Course> {
        self.courses.get(course_id)
    }
}

/// RFC 4180: fields separated by commas, optionally double-quoted, `""` inside quotes is a quote,
/// quoted fields may span lines. Returns (line number of the record's start, fields).
pub(crate) fn parse_csv(text: &str) -> std::result::Result<Vec<(usize, Vec<String>)>, String> {
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

    #[test]
    fn reports_every_bad_row_with_its_line() {
        let err = Catalog::parse(
            "course_id,title,category,credits,duration_s,min_watch_ratio\nc1,a,mandatory,x,10,0.5\nc2,b,optional,1,10,0.5\n",
        )
        .unwrap_err();
        assert!(err.contains("line 2: `credits` must be a number"), "{err}");
        assert!(err.contains("line 3: category must be"), "{err}");
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
            .contains("lacks column `category`"));
    }
}
