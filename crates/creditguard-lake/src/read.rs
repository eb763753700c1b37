//! Reading lake tables with arrow-rs, tolerant of how the writer typed its columns.
//!
//! Other engines write strings as `Utf8View` or `LargeUtf8` and lists as `LargeList`, arrow-rs as
//! `Utf8` and `List`; the accessors here read any of those, and any timestamp unit, so the
//! readers of the lake's tables depend on column names and logical types only, as the contract
//! says.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int32Type, Int64Type, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection,
};
use parquet::arrow::ProjectionMask;

use crate::{Error, Result};

/// Reads the named top-level columns of every file, in file order. A file lacking one of the
/// columns is an error naming the file and the column.
pub fn read_columns(paths: &[PathBuf], columns: &[&str]) -> Result<Vec<RecordBatch>> {
    read_columns_keeping_dictionaries(paths, columns, &[])
}

/// [`read_columns`], with the string columns named in `dictionary` (of the file's `Utf8`
/// columns) read as the file stores them, dictionary-encoded (`Dictionary(Int32, Utf8)`, which
/// [`Strs`] reads): a value repeated over many rows (a learner, a session, an event type) is
/// decoded and kept once per column chunk instead of once per row.
pub fn read_columns_keeping_dictionaries(
    paths: &[PathBuf],
    columns: &[&str],
    dictionary: &[&str],
) -> Result<Vec<RecordBatch>> {
    let mut out = Vec::new();
    for path in paths {
        out.extend(read_file(path, columns, dictionary, None)?);
    }
    Ok(out)
}

/// The named columns of the rows `rows` (ascending row numbers of the file) of one file, in
/// order: a column wanted for a few rows only is decoded for those.
pub fn read_rows(path: &Path, columns: &[&str], rows: &[usize]) -> Result<Vec<RecordBatch>> {
    read_file(path, columns, &[], Some(rows))
}

fn read_file(
    path: &Path,
    columns: &[&str],
    dictionary: &[&str],
    rows: Option<&[usize]>,
) -> Result<Vec<RecordBatch>> {
    let file = File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut meta = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())
        .map_err(|e| parquet_err(path, e))?;
    if let Some(schema) = with_dictionaries(meta.schema(), dictionary) {
        let options = ArrowReaderOptions::new().with_schema(schema);
        meta = ArrowReaderMetadata::try_new(meta.metadata().clone(), options)
            .map_err(|e| parquet_err(path, e))?;
    }
    let total = meta.metadata().file_metadata().num_rows() as usize;
    let mut builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta);
    let descr = builder.parquet_schema();
    let fields = descr.root_schema().get_fields();
    let mut roots = Vec::with_capacity(columns.len());
    for c in columns {
        let i = fields
            .iter()
            .position(|f| f.name() == *c)
            .ok_or_else(|| Error::Schema {
                path: path.to_path_buf(),
                msg: format!("no column `{c}`"),
            })?;
        roots.push(i);
    }
    let mask = ProjectionMask::roots(descr, roots);
    if let Some(rows) = rows {
        let ranges = rows.iter().map(|&r| r..r + 1);
        builder = builder.with_row_selection(RowSelection::from_consecutive_ranges(ranges, total));
    }
    let reader = builder
        .with_projection(mask)
        .with_batch_size(64 * 1024)
        .build()
        .map_err(|e| parquet_err(path, e))?;
    reader
        .map(|batch| {
            batch.map_err(|e| Error::Schema {
                path: path.to_path_buf(),
                msg: e.to_string(),
            })
        })
        .collect()
}

/// The file's schema with its `Utf8` columns named in `names` as `Dictionary(Int32, Utf8)`;
/// `None` when none is.
fn with_dictionaries(schema: &SchemaRef, names: &[&str]) -> Option<SchemaRef> {
    let wanted = |f: &Field| names.contains(&f.name().as_str()) && *f.data_type() == DataType::Utf8;
    if !schema.fields().iter().any(|f| wanted(f)) {
        return None;
    }
    let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let f = f.as_ref().clone();
            if wanted(&f) {
                f.with_data_type(dict.clone())
            } else {
                f
            }
        })
        .collect();
    Some(Arc::new(Schema::new_with_metadata(
        fields,
        schema.metadata().clone(),
    )))
}

/// Calls `each` with every batch of the named columns of the files, in file order (see
/// [`read_columns`]). A column error inside `each` names the file the batch came from.
pub fn for_each_batch(
    paths: &[PathBuf],
    columns: &[&str],
    mut each: impl FnMut(&RecordBatch) -> Result<()>,
) -> Result<()> {
    for path in paths {
        for batch in read_columns(std::slice::from_ref(path), columns)? {
            each(&batch).map_err(|e| e.in_file(path))?;
        }
    }
    Ok(())
}

impl Error {
    /// A column error of the accessors below (which see a batch, not its file), placed in the
    /// file the batch came from; other errors as they are.
    pub fn in_file(self, file: &Path) -> Error {
        match self {
            Error::Schema { path, msg } if path.as_os_str().is_empty() => Error::Schema {
                path: file.to_path_buf(),
                msg,
            },
            e => e,
        }
    }
}

/// The top-level column names of a Parquet file.
pub fn columns_of(path: &Path) -> Result<Vec<String>> {
    let file = File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| parquet_err(path, e))?;
    let fields = builder.parquet_schema().root_schema().get_fields();
    Ok(fields.iter().map(|f| f.name().to_string()).collect())
}

fn parquet_err(path: &Path, e: parquet::errors::ParquetError) -> Error {
    Error::Schema {
        path: path.to_path_buf(),
        msg: e.to_string(),
    }
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
    batch.column_by_name(name).ok_or_else(|| Error::Schema {
        path: PathBuf::new(),
        msg: format!("no column `{name}`"),
    })
}

fn type_err(name: &str, dt: &DataType, want: &str) -> Error {
    Error::Schema {
        path: PathBuf::new(),
        msg: format!("column `{name}` is {dt}, expected {want}"),
    }
}

/// A string column of any Arrow string layout.
pub enum Strs<'a> {
    Utf8(&'a arrow_array::StringArray),
    Large(&'a arrow_array::LargeStringArray),
    View(&'a arrow_array::StringViewArray),
    /// Dictionary-encoded ([`read_columns_keeping_dictionaries`]).
    Dict {
        keys: &'a arrow_array::Int32Array,
        values: &'a arrow_array::StringArray,
    },
    Null,
}

impl<'a> Strs<'a> {
    /// A column that files written before it was added lack: `None` when absent.
    pub fn optional(batch: &'a RecordBatch, name: &str) -> Result<Option<Strs<'a>>> {
        batch
            .column_by_name(name)
            .map(|_| Strs::of(batch, name))
            .transpose()
    }

    pub fn of(batch: &'a RecordBatch, name: &str) -> Result<Strs<'a>> {
        Strs::from_array(column(batch, name)?.as_ref(), name)
    }

    fn from_array(a: &'a dyn Array, name: &str) -> Result<Strs<'a>> {
        Ok(match a.data_type() {
            DataType::Utf8 => Strs::Utf8(a.as_string::<i32>()),
            DataType::LargeUtf8 => Strs::Large(a.as_string::<i64>()),
            DataType::Utf8View => Strs::View(a.as_string_view()),
            DataType::Dictionary(k, v) if **k == DataType::Int32 && **v == DataType::Utf8 => {
                let d = a.as_dictionary::<Int32Type>();
                Strs::Dict {
                    keys: d.keys(),
                    values: d.values().as_string::<i32>(),
                }
            }
            DataType::Null => Strs::Null,
            dt => return Err(type_err(name, dt, "a string")),
        })
    }

    pub fn get(&self, i: usize) -> Option<&'a str> {
        match self {
            Strs::Utf8(a) => (!a.is_null(i)).then(|| a.value(i)),
            Strs::Large(a) => (!a.is_null(i)).then(|| a.value(i)),
            Strs::View(a) => (!a.is_null(i)).then(|| a.value(i)),
            Strs::Dict { keys, values } => {
                let k = keys.is_valid(i).then(|| keys.value(i) as usize)?;
                values.is_valid(k).then(|| values.value(k))
            }
            Strs::Null => None,
        }
    }

    pub fn string(&self, i: usize) -> String {
        self.get(i).unwrap_or_default().to_string()
    }

    pub fn opt(&self, i: usize) -> Option<String> {
        self.get(i).map(str::to_string)
    }
}

/// A timestamp column as UTC microseconds, whatever its unit.
pub struct Times {
    values: Vec<Option<i64>>,
}

impl Times {
    pub fn of(batch: &RecordBatch, name: &str) -> Result<Times> {
        let a = column(batch, name)?;
        let collect = |v: Box<dyn Iterator<Item = Option<i64>> + '_>| v.collect::<Vec<_>>();
        let values = match a.data_type() {
            DataType::Timestamp(TimeUnit::Microsecond, _) => collect(Box::new(
                a.as_primitive::<TimestampMicrosecondType>().iter(),
            )),
            DataType::Timestamp(TimeUnit::Millisecond, _) => collect(Box::new(
                a.as_primitive::<TimestampMillisecondType>()
                    .iter()
                    .map(|v| v.map(|v| v * 1000)),
            )),
            DataType::Timestamp(TimeUnit::Nanosecond, _) => collect(Box::new(
                a.as_primitive::<TimestampNanosecondType>()
                    .iter()
                    .map(|v| v.map(|v| v.div_euclid(1000))),
            )),
            DataType::Timestamp(TimeUnit::Second, _) => collect(Box::new(
                a.as_primitive::<TimestampSecondType>()
                    .iter()
                    .map(|v| v.map(|v| v * 1_000_000)),
            )),
            dt => return Err(type_err(name, dt, "a timestamp")),
        };
        Ok(Times { values })
    }

    pub fn get(&self, i: usize) -> Option<i64> {
        self.values[i]
    }
}

/// A numeric column as `f64`.
pub struct Nums {
    values: Vec<Option<f64>>,
}

impl Nums {
    /// A column that files written before it was added lack: `None` when absent.
    pub fn optional(batch: &RecordBatch, name: &str) -> Result<Option<Nums>> {
        batch
            .column_by_name(name)
            .map(|_| Nums::of(batch, name))
            .transpose()
    }

    pub fn of(batch: &RecordBatch, name: &str) -> Result<Nums> {
        let a = column(batch, name)?;
        let values = match a.data_type() {
            DataType::Float64 => a.as_primitive::<Float64Type>().iter().collect(),
            DataType::Float32 => a
                .as_primitive::<Float32Type>()
                .iter()
                .map(|v| v.map(f64::from))
                .collect(),
            DataType::Int64 => a
                .as_primitive::<Int64Type>()
                .iter()
                .map(|v| v.map(|v| v as f64))
                .collect(),
            DataType::Int32 => a
                .as_primitive::<Int32Type>()
                .iter()
                .map(|v| v.map(f64::from))
                .collect(),
            DataType::Null => vec![None; a.len()],
            dt => return Err(type_err(name, dt, "a number")),
        };
        Ok(Nums { values })
    }

    pub fn get(&self, i: usize) -> Option<f64> {
        self.values[i]
    }
}

/// A list-of-strings column.
pub struct StrLists {
    values: Vec<Vec<String>>,
}

impl StrLists {
    pub fn of(batch: &RecordBatch, name: &str) -> Result<StrLists> {
        let a = column(batch, name)?;
        let mut values = Vec::with_capacity(a.len());
        let mut push = |item: Option<ArrayRef>| -> Result<()> {
            let mut v = Vec::new();
            if let Some(item) = item {
                let s = Strs::from_array(item.as_ref(), name)?;
                v.extend((0..item.len()).filter_map(|j| s.get(j).map(str::to_string)));
            }
            values.push(v);
            Ok(())
        };
        match a.data_type() {
            DataType::List(_) => a.as_list::<i32>().iter().try_for_each(&mut push)?,
            DataType::LargeList(_) => a.as_list::<i64>().iter().try_for_each(&mut push)?,
            dt => return Err(type_err(name, dt, "a list of strings")),
        }
        Ok(StrLists { values })
    }

    pub fn take(&mut self, i: usize) -> Vec<String> {
        std::mem::take(&mut self.values[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::StringArray;

    /// Dictionary-encoded reading gives the same strings and nulls as plain reading, for the
    /// columns named; the others stay as they are.
    #[test]
    fn columns_kept_dictionary_encoded_read_as_plain_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let user = StringArray::from(vec![Some("u1"), None, Some("u2"), Some("u1")]);
        let id = StringArray::from(vec!["a", "b", "c", "d"]);
        let batch = RecordBatch::try_from_iter([
            ("user_id", Arc::new(user) as ArrayRef),
            ("event_id", Arc::new(id) as ArrayRef),
        ])
        .unwrap();
        let file = File::create(&path).unwrap();
        crate::write_parquet_to(file, batch.schema(), std::slice::from_ref(&batch)).unwrap();
        let paths = [path];
        let cols = ["user_id", "event_id"];
        let plain = read_columns(&paths, &cols).unwrap();
        let dict = read_columns_keeping_dictionaries(&paths, &cols, &["user_id"]).unwrap();
        assert!(matches!(
            dict[0].column(0).data_type(),
            DataType::Dictionary(_, _)
        ));
        assert_eq!(dict[0].column(1).data_type(), &DataType::Utf8);
        for name in cols {
            let (a, b) = (
                Strs::of(&plain[0], name).unwrap(),
                Strs::of(&dict[0], name).unwrap(),
            );
            let values = |s: &Strs<'_>| (0..4).map(|i| s.opt(i)).collect::<Vec<_>>();
            assert_eq!(values(&a), values(&b), "{name}");
        }
        assert_eq!(Strs::of(&dict[0], "user_id").unwrap().get(1), None);
        // A column of a few rows only.
        let some = read_rows(&paths[0], &["event_id"], &[1, 3]).unwrap();
        let ids = Strs::of(&some[0], "event_id").unwrap();
        assert_eq!(
            (some[0].num_rows(), ids.get(0), ids.get(1)),
            (2, Some("b"), Some("d"))
        );
    }
}
