//! Reading lake tables with arrow-rs, tolerant of how the writer typed its columns.
//!
//! Other engines write strings as `Utf8View` or `LargeUtf8` and lists as `LargeList`, arrow-rs as
//! `Utf8` and `List`; the accessors here read any of those, and any timestamp unit, so the
//! readers of the lake's tables depend on column names and logical types only, as the contract
//! says.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int32Type, Int64Type, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;

use crate::{Error, Result};

/// Reads the named top-level columns of every file, in file order. A file lacking one of the
/// columns is an error naming the file and the column.
pub fn read_columns(paths: &[PathBuf], columns: &[&str]) -> Result<Vec<RecordBatch>> {
    let mut out = Vec::new();
    for path in paths {
        let file = File::open(path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| parquet_err(path, e))?;
        let descr = builder.parquet_schema();
        let fields = descr.root_schema().get_fields();
        let mut roots = Vec::with_capacity(columns.len());
        for c in columns {
            let i = fields
                .iter()
                .position(|f| f.name() == *c)
                .ok_or_else(|| Error::Schema {
                    path: path.clone(),
                    msg: format!("no column `{c}`"),
                })?;
            roots.push(i);
        }
        let mask = ProjectionMask::roots(descr, roots);
        let reader = builder
            .with_projection(mask)
            .with_batch_size(64 * 1024)
            .build()
            .map_err(|e| parquet_err(path, e))?;
        for batch in reader {
            let batch = batch.map_err(|e| Error::Schema {
                path: path.clone(),
                msg: e.to_string(),
            })?;
            out.push(batch);
        }
    }
    Ok(out)
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
            DataType::Null => Strs::Null,
            dt => return Err(type_err(name, dt, "a string")),
        })
    }

    pub fn get(&self, i: usize) -> Option<&'a str> {
        match self {
            Strs::Utf8(a) => (!a.is_null(i)).then(|| a.value(i)),
            Strs::Large(a) => (!a.is_null(i)).then(|| a.value(i)),
            Strs::View(a) => (!a.is_null(i)).then(|| a.value(i)),
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
