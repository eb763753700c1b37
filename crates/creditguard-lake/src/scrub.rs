//! Removing data from the lake: whole day partitions past their retention, and one learner's rows
//! from every table (an erasure request), each partition rewritten in one atomic step.
//!
//! A learner's erasure ([`Scrub`]): a row whose `user_id` is one of the learner's ids is
//! removed; a dead letter whose original bytes contain one of the ids (as a JSON string) is
//! removed; where another row mentions the learner (a device's list of accounts, a flag's JSON
//! evidence naming the accounts of a shared device) the id is replaced by `erased`, so other
//! learners' rows stay. NDJSON files (the results stream) are treated line by line the same way.

use std::borrow::Cow;
use std::fs::{self, File};
use std::path::Path;
use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, LargeBinaryArray, LargeListArray, LargeStringArray,
    ListArray, RecordBatch, StringArray, StringViewArray,
};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::{io_err, nonce, sync_dir, Error, Lake, Result};

/// What replaces a learner's id where other rows mention it.
pub const ERASED: &str = "erased";

/// One learner to remove.
#[derive(Debug, Clone)]
pub struct Scrub {
    /// The ids the learner has in the lake (the pseudonym, or the raw id when not pseudonymised).
    /// Rows whose `user_id` is one of them are removed; other mentions are replaced.
    pub ids: Vec<String>,
    /// Ids whose appearance as a JSON string in raw bytes (dead letters) removes the row: the
    /// lake ids and the real id, since dead letters keep input as received.
    pub raw_ids: Vec<String>,
}

/// What a scrub did to one partition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scrubbed {
    /// Rows (or NDJSON lines) removed.
    pub rows: u64,
    /// Values in which an id was replaced by [`ERASED`].
    pub values: u64,
    /// Files rewritten.
    pub files: u64,
}

impl Scrubbed {
    fn add(&mut self, o: Scrubbed) {
        self.rows += o.rows;
        self.values += o.values;
        self.files += o.files;
    }
}

impl Scrub {
    /// The value with every mention of the learner replaced, or `None` if it has none. A value
    /// that is an id becomes [`ERASED`]; inside text, ids are replaced where they appear as JSON
    /// strings (`"id"`), and also bare when at least 16 characters long (pseudonyms), where a
    /// bare match cannot be part of another id.
    fn replace<'s>(&self, s: &'s str) -> Option<Cow<'s, str>> {
        if self.ids.iter().any(|id| id == s) {
            return Some(Cow::Borrowed(ERASED));
        }
        let mut out: Cow<'s, str> = Cow::Borrowed(s);
        for id in &self.ids {
            if id.len() >= 16 {
                if out.contains(id.as_str()) {
                    out = Cow::Owned(out.replace(id.as_str(), ERASED));
                }
            } else {
                let quoted = format!("\"{id}\"");
                if out.contains(&quoted) {
                    out = Cow::Owned(out.replace(&quoted, &format!("\"{ERASED}\"")));
                }
            }
        }
        matches!(out, Cow::Owned(_)).then_some(out)
    }

    fn raw_mentions(&self, bytes: &[u8]) -> bool {
        self.raw_ids.iter().any(|id| {
            let quoted = format!("\"{id}\"");
            bytes.windows(quoted.len()).any(|w| w == quoted.as_bytes())
        })
    }

    /// One batch without the learner: (new batch, rows removed, values replaced).
    pub fn batch(&self, b: &RecordBatch) -> Result<(RecordBatch, u64, u64), String> {
        let n = b.num_rows();
        let mut keep = vec![true; n];
        if let Some(users) = b.column_by_name("user_id") {
            for (i, k) in keep.iter_mut().enumerate() {
                if let Some(u) = str_value(users, i) {
                    if self.ids.iter().any(|id| id == u) {
                        *k = false;
                    }
                }
            }
        }
        for col in b.columns() {
            for (i, k) in keep.iter_mut().enumerate() {
                if *k && !col.is_null(i) {
                    if let Some(bytes) = binary_value(col, i) {
                        if self.raw_mentions(bytes) {
                            *k = false;
                        }
                    }
                }
            }
        }
        let removed = keep.iter().filter(|k| !**k).count() as u64;
        let b = if removed > 0 {
            arrow_select::filter::filter_record_batch(b, &BooleanArray::from(keep))
                .map_err(|e| e.to_string())?
        } else {
            b.clone()
        };
        let mut replaced = 0;
        let mut columns = Vec::with_capacity(b.num_columns());
        for col in b.columns() {
            let (c, r) = self.column(col)?;
            replaced += r;
            columns.push(c);
        }
        let out = if replaced > 0 {
            RecordBatch::try_new(b.schema(), columns).map_err(|e| e.to_string())?
        } else {
            b
        };
        Ok((out, removed, replaced))
    }

    /// A column with mentions replaced (strings, and lists of strings), and how many.
    fn column(&self, col: &ArrayRef) -> Result<(ArrayRef, u64), String> {
        let mut n = 0u64;
        let mut map = |v: Option<&str>| -> Option<String> {
            let v = v?;
            match self.replace(v) {
                Some(r) => {
                    n += 1;
                    Some(r.into_owned())
                }
                None => Some(v.to_string()),
            }
        };
        let out: ArrayRef = match col.data_type() {
            DataType::Utf8 => {
                let a = col.as_any().downcast_ref::<StringArray>().expect("Utf8");
                Arc::new(a.iter().map(&mut map).collect::<StringArray>())
            }
            DataType::LargeUtf8 => {
                let a = col
                    .as_any()
                    .downcast_ref::<LargeStringArray>()
                    .expect("LargeUtf8");
                Arc::new(a.iter().map(&mut map).collect::<LargeStringArray>())
            }
            DataType::Utf8View => {
                let a = col
                    .as_any()
                    .downcast_ref::<StringViewArray>()
                    .expect("Utf8View");
                Arc::new(a.iter().map(&mut map).collect::<StringViewArray>())
            }
            DataType::List(field) => {
                let a = col.as_any().downcast_ref::<ListArray>().expect("List");
                let (values, r) = self.column(a.values())?;
                if r == 0 {
                    return Ok((col.clone(), 0));
                }
                n += r;
                Arc::new(
                    ListArray::try_new(
                        field.clone(),
                        a.offsets().clone(),
                        values,
                        a.nulls().cloned(),
                    )
                    .map_err(|e| e.to_string())?,
                )
            }
            DataType::LargeList(field) => {
                let a = col
                    .as_any()
                    .downcast_ref::<LargeListArray>()
                    .expect("LargeList");
                let (values, r) = self.column(a.values())?;
                if r == 0 {
                    return Ok((col.clone(), 0));
                }
                n += r;
                Arc::new(
                    LargeListArray::try_new(
                        field.clone(),
                        a.offsets().clone(),
                        values,
                        a.nulls().cloned(),
                    )
                    .map_err(|e| e.to_string())?,
                )
            }
            _ => return Ok((col.clone(), 0)),
        };
        if n == 0 {
            return Ok((col.clone(), 0));
        }
        Ok((out, n))
    }

    /// NDJSON text (results records) without the learner: lines whose `user_id` is theirs are
    /// removed, other mentions replaced. (text, lines removed, lines changed)
    pub fn ndjson(&self, text: &str) -> (String, u64, u64) {
        let (mut removed, mut changed) = (0, 0);
        let mut out = String::with_capacity(text.len());
        for line in text.split_inclusive('\n') {
            let own = self
                .ids
                .iter()
                .any(|id| line.contains(&format!("\"user_id\":\"{id}\"")));
            if own {
                removed += 1;
                continue;
            }
            match self.replace(line) {
                Some(r) => {
                    changed += 1;
                    out.push_str(&r);
                }
                None => out.push_str(line),
            }
        }
        (out, removed, changed)
    }
}

fn str_value(a: &ArrayRef, i: usize) -> Option<&str> {
    if a.is_null(i) {
        return None;
    }
    let any = a.as_any();
    if let Some(s) = any.downcast_ref::<StringArray>() {
        Some(s.value(i))
    } else if let Some(s) = any.downcast_ref::<LargeStringArray>() {
        Some(s.value(i))
    } else {
        any.downcast_ref::<StringViewArray>().map(|s| s.value(i))
    }
}

fn binary_value(a: &ArrayRef, i: usize) -> Option<&[u8]> {
    let any = a.as_any();
    if let Some(b) = any.downcast_ref::<BinaryArray>() {
        Some(b.value(i))
    } else {
        any.downcast_ref::<LargeBinaryArray>().map(|b| b.value(i))
    }
}

fn read_parquet(path: &Path) -> Result<(arrow_schema::SchemaRef, Vec<RecordBatch>)> {
    let file = File::open(path).map_err(io_err(path))?;
    let parquet_err = |source| Error::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(parquet_err)?;
    let schema = builder.schema().clone();
    let reader = builder.build().map_err(parquet_err)?;
    let mut batches = Vec::new();
    for b in reader {
        batches.push(b.map_err(|e| parquet_err(e.into()))?);
    }
    Ok((schema, batches))
}

impl Lake {
    /// Every table of the lake: each directory (below the root, not `_staging` nor hidden) that
    /// holds `dt=` partitions, as its path relative to the root (`events`, `features/watch_time`).
    pub fn tables(&self) -> Result<Vec<String>> {
        if let Some(remote) = &self.remote {
            let mut tables = Vec::new();
            let mut stack = vec![String::new()];
            while let Some(rel) = stack.pop() {
                let subdirs = remote.subdirs(&rel)?;
                if !rel.is_empty() && subdirs.iter().any(|n| n.starts_with("dt=")) {
                    tables.push(rel);
                    continue;
                }
                for name in subdirs {
                    if !name.starts_with('.') && !name.starts_with('_') {
                        stack.push(if rel.is_empty() {
                            name
                        } else {
                            format!("{rel}/{name}")
                        });
                    }
                }
            }
            tables.sort();
            return Ok(tables);
        }
        let mut tables = Vec::new();
        let mut stack = vec![(self.root().to_path_buf(), String::new())];
        while let Some((dir, rel)) = stack.pop() {
            let mut partitioned = false;
            let mut subdirs = Vec::new();
            for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
                let entry = entry.map_err(io_err(&dir))?;
                let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                    continue;
                };
                if !entry.file_type().map_err(io_err(&dir))?.is_dir()
                    || name.starts_with('.')
                    || name.starts_with('_')
                {
                    continue;
                }
                if name.starts_with("dt=") {
                    partitioned = true;
                } else {
                    let r = if rel.is_empty() {
                        name.clone()
                    } else {
                        format!("{rel}/{name}")
                    };
                    subdirs.push((entry.path(), r));
                }
            }
            if partitioned && !rel.is_empty() {
                tables.push(rel);
            } else {
                stack.extend(subdirs);
            }
        }
        tables.sort();
        Ok(tables)
    }

    /// Removes the `dt=<day>` partition of `table` in one step: it is renamed out of the table
    /// (readers see the day gone at once), then deleted. Returns its files' total size in bytes,
    /// or `None` when there was no such partition.
    pub fn remove_partition(&self, table: &str, day: i64) -> Result<Option<u64>> {
        let dir = self.partition_dir(table, day);
        if let Some(remote) = &self.remote {
            let removed = remote.remove(&Self::partition_rel(table, day))?;
            let _ = fs::remove_dir_all(&dir);
            return Ok(removed);
        }
        let Ok(entries) = fs::read_dir(&dir) else {
            return Ok(None);
        };
        let bytes: u64 = entries
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum();
        let staging_root = self.root().join("_staging");
        fs::create_dir_all(&staging_root).map_err(io_err(&staging_root))?;
        let gone = staging_root.join(format!(
            "{}-dt={}-removed-{}",
            table.replace('/', "__"),
            crate::format_day(day),
            nonce()
        ));
        fs::rename(&dir, &gone).map_err(io_err(&dir))?;
        sync_dir(&self.table_dir(table))?;
        fs::remove_dir_all(&gone).map_err(io_err(&gone))?;
        Ok(Some(bytes))
    }

    /// Removes the learner of `scrub` from one partition. Nothing is written when the partition
    /// does not mention them; otherwise the whole partition is rebuilt (unchanged files copied)
    /// and exchanged in one step ([`Lake::replace_partition`]).
    pub fn scrub_partition(&self, table: &str, day: i64, scrub: &Scrub) -> Result<Scrubbed> {
        let mut names = Vec::new();
        let mut paths = std::collections::HashMap::new();
        for path in self.partition_all_files(table, day)? {
            if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
                names.push(name.to_string());
                paths.insert(name.to_string(), path.clone());
            }
        }
        names.sort();
        enum New {
            Same,
            Parquet(arrow_schema::SchemaRef, Vec<RecordBatch>),
            Text(String),
        }
        let mut plan = Vec::new();
        let mut total = Scrubbed::default();
        for name in &names {
            let path = paths[name].clone();
            let new = if name.ends_with(".parquet") {
                let (schema, batches) = read_parquet(&path)?;
                let mut out = Vec::with_capacity(batches.len());
                let mut s = Scrubbed::default();
                for b in &batches {
                    let (nb, rows, values) = scrub.batch(b).map_err(|e| Error::Fill {
                        table: table.to_string(),
                        day: crate::format_day(day),
                        source: format!("{name}: {e}").into(),
                    })?;
                    s.add(Scrubbed {
                        rows,
                        values,
                        files: 0,
                    });
                    out.push(nb);
                }
                if s.rows + s.values > 0 {
                    total.add(Scrubbed { files: 1, ..s });
                    New::Parquet(schema, out)
                } else {
                    New::Same
                }
            } else if name.ends_with(".ndjson") || name.ends_with(".jsonl") {
                let text = fs::read_to_string(&path).map_err(io_err(&path))?;
                let (new, rows, values) = scrub.ndjson(&text);
                if rows + values > 0 {
                    total.add(Scrubbed {
                        rows,
                        values,
                        files: 1,
                    });
                    New::Text(new)
                } else {
                    New::Same
                }
            } else {
                New::Same
            };
            plan.push((name, new));
        }
        if total.files == 0 {
            return Ok(total);
        }
        self.replace_partition(table, day, |staging| {
            for (name, new) in plan {
                let target = staging.join(name);
                match new {
                    New::Same => {
                        fs::copy(&paths[name], &target)?;
                    }
                    New::Text(t) => fs::write(&target, t)?,
                    New::Parquet(schema, batches) => {
                        crate::write_parquet_to(File::create(&target)?, schema, &batches)?;
                    }
                }
            }
            Ok(())
        })?;
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::builder::{ListBuilder, StringBuilder};
    use arrow_schema::{Field, Schema};

    fn scrub(id: &str) -> Scrub {
        Scrub {
            ids: vec![id.to_string()],
            raw_ids: vec![id.to_string(), "alice".to_string()],
        }
    }

    fn batch() -> RecordBatch {
        let mut users = ListBuilder::new(StringBuilder::new());
        for list in [vec!["u1", "u12"], vec!["u2", "u3"], vec!["u12"]] {
            for u in list {
                users.values().append_value(u);
            }
            users.append(true);
        }
        let schema = Arc::new(Schema::new(vec![
            Field::new("user_id", DataType::Utf8, true),
            Field::new("evidence", DataType::Utf8, true),
            Field::new("users", users.finish().data_type().clone(), true),
            Field::new("raw", DataType::Binary, true),
        ]));
        let mut users = ListBuilder::new(StringBuilder::new());
        for list in [vec!["u1", "u12"], vec!["u2", "u3"], vec!["u12"]] {
            for u in list {
                users.values().append_value(u);
            }
            users.append(true);
        }
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec![Some("u12"), Some("u2"), Some("u1")])),
                Arc::new(StringArray::from(vec![
                    Some(r#"{"users":["u1","u12"]}"#),
                    Some(r#"{"users":["u2"]}"#),
                    None,
                ])),
                Arc::new(users.finish()),
                Arc::new(BinaryArray::from(vec![
                    Some(&b"x"[..]),
                    Some(&br#"{"user_id":"alice"}"#[..]),
                    None,
                ])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn a_learners_rows_go_and_their_mentions_are_replaced() {
        let (b, removed, replaced) = scrub("u1").batch(&batch()).unwrap();
        // Row 3 is u1's own; row 2's raw bytes name the real id `alice`.
        assert_eq!(removed, 2);
        assert_eq!(b.num_rows(), 1);
        let users = b.column_by_name("user_id").unwrap();
        assert_eq!(
            str_value(users, 0),
            Some("u12"),
            "a longer id is not touched"
        );
        let ev = b.column_by_name("evidence").unwrap();
        assert_eq!(str_value(ev, 0), Some(r#"{"users":["erased","u12"]}"#));
        let list = b
            .column_by_name("users")
            .unwrap()
            .as_any()
            .downcast_ref::<ListArray>()
            .unwrap()
            .value(0);
        let list = list.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(
            list.iter().collect::<Vec<_>>(),
            vec![Some("erased"), Some("u12")]
        );
        assert_eq!(replaced, 2);
        // Nothing to do: the same batch back.
        let (_, removed, replaced) = scrub("nobody").batch(&batch()).unwrap();
        assert_eq!(
            (removed, replaced),
            (1, 0),
            "only the raw bytes naming alice"
        );
    }

    #[test]
    fn ndjson_lines_of_the_learner_go() {
        let text = "{\"kind\":\"flag\",\"user_id\":\"u1\"}\n{\"kind\":\"flag\",\"user_id\":\"u2\",\"evidence\":{\"users\":[\"u1\",\"u2\"]}}\n{\"user_id\":\"u12\"}\n";
        let (out, removed, changed) = scrub("u1").ndjson(text);
        assert_eq!((removed, changed), (1, 1));
        assert_eq!(
            out,
            "{\"kind\":\"flag\",\"user_id\":\"u2\",\"evidence\":{\"users\":[\"erased\",\"u2\"]}}\n{\"user_id\":\"u12\"}\n"
        );
    }

    #[test]
    fn partitions_are_scrubbed_and_removed_in_one_step() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let b = batch();
        lake.write_parquet(
            "features/shared_device",
            3,
            "part-0.parquet",
            b.schema(),
            &[b.clone()],
        )
        .unwrap();
        lake.write_parquet(
            "features/shared_device",
            3,
            "part-1.parquet",
            b.schema(),
            &[b.clone()],
        )
        .unwrap();
        lake.write_parquet("events", 3, "a.parquet", b.schema(), &[b])
            .unwrap();
        assert_eq!(
            lake.tables().unwrap(),
            vec!["events", "features/shared_device"]
        );
        let s = lake
            .scrub_partition("features/shared_device", 3, &scrub("u1"))
            .unwrap();
        assert_eq!(
            s,
            Scrubbed {
                rows: 4,
                values: 4,
                files: 2
            }
        );
        let files = lake.partition_files("features/shared_device", 3).unwrap();
        assert_eq!(files.len(), 2);
        let (_, batches) = read_parquet(&files[0]).unwrap();
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 1);
        // A second pass finds nothing and writes nothing.
        assert_eq!(
            lake.scrub_partition("features/shared_device", 3, &scrub("u1"))
                .unwrap(),
            Scrubbed {
                rows: 0,
                values: 0,
                files: 0
            }
        );
        assert!(lake.remove_partition("events", 3).unwrap().unwrap() > 0);
        assert_eq!(lake.days("events").unwrap(), Vec::<i64>::new());
        assert_eq!(lake.remove_partition("events", 3).unwrap(), None);
        assert!(fs::read_dir(dir.path().join("_staging"))
            .unwrap()
            .next()
            .is_none());
    }
}
