//! The lake: where creditguard keeps its tables, and how it writes them so readers never see a
//! partial file.
//!
//! Layout (hive-partitioned by UTC event day):
//!
//! ```text
//! <root>/events/dt=2026-03-02/part-….parquet          ingest output
//! <root>/dead_letters/dt=2026-03-02/….parquet          rejected input, original bytes
//! <root>/features/<job>/dt=…/part-0.parquet            one table per detection job
//! <root>/results/{flags,credits,cases}/dt=…/…          results-v1 tables
//! <root>/_staging/…                                    partitions being built (never read)
//! ```
//!
//! Two write primitives keep readers safe:
//! - [`Lake::write_file_atomic`]: write `.<name>.tmp-<nonce>` in the target directory, fsync,
//!   rename over `<name>`, fsync the directory. A reader globbing `*.parquet` never matches the
//!   temporary name, and a deterministic `<name>` makes a replay overwrite instead of duplicate.
//! - [`Lake::replace_partition`]: build a whole new `dt=` directory under `_staging/`, fsync it,
//!   then swap it in with one `renameat2(RENAME_EXCHANGE)`, so a day's output changes from the old
//!   set of files to the new one in a single step.
//!
//! A lake on S3-compatible object storage (`s3://bucket/prefix`) keeps both promises without
//! rename, through a manifest per day committed with a conditional PUT ([`remote`]).
//!
//! Deletion keeps the same promise ([`scrub`]): [`Lake::remove_partition`] renames a day out of
//! its table in one step (retention), [`Lake::scrub_partition`] rewrites a day without one
//! learner through `replace_partition` (erasure).
//!
//! ```
//! use creditguard_lake::Lake;
//! let dir = tempfile::tempdir().unwrap();
//! let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
//! let day = creditguard_contract::time::parse_day("2026-03-02").unwrap();
//! lake.replace_partition("results/flags", day, |staging| {
//!     std::fs::write(staging.join("part-0.parquet"), b"...")?;
//!     Ok(())
//! }).unwrap();
//! assert_eq!(lake.partition_files("results/flags", day).unwrap().len(), 1);
//! ```

pub mod catalog;
pub mod flags;
pub mod read;
pub mod remote;
pub mod scrub;
pub mod tables;
pub mod testing;

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use creditguard_contract::time::{format_day, parse_day};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

/// Errors of the lake.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: writing Parquet: {source}")]
    Parquet {
        path: PathBuf,
        source: parquet::errors::ParquetError,
    },
    /// A lake location that cannot be used (the message names it).
    #[error("{0}")]
    Location(String),
    /// A table file without a column a reader needs, or with a column of another type.
    #[error("{path}: {msg}")]
    Schema { path: PathBuf, msg: String },
    #[error("lake `{location}` (endpoint {endpoint}): {what}: {source}")]
    Store {
        location: String,
        endpoint: String,
        what: String,
        source: Box<object_store::Error>,
    },
    /// Records that do not fit a table's Arrow schema (a bug, not bad input).
    #[error("building a batch: {0}")]
    Batch(String),
    #[error("filling partition {table}/dt={day}: {source}")]
    Fill {
        table: String,
        day: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    /// Whether an object the lake looked for was not there.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Store { source, .. } if matches!(**source, object_store::Error::NotFound { .. }))
    }
}

/// `Result` of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Rows per Parquet row group: large enough for scans to be sequential, small enough that a
/// reader filtering by statistics can skip.
pub const ROW_GROUP_ROWS: usize = 1 << 20;

/// The writer properties of every lake table: zstd(1), dictionary encoding, page statistics.
pub fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(1).expect("zstd level 1 is valid"),
        ))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_created_by(concat!("creditguard ", env!("CARGO_PKG_VERSION")).to_string())
        .build()
}

static NONCE: AtomicU64 = AtomicU64::new(0);

fn nonce() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{}-{t}-{}",
        std::process::id(),
        NONCE.fetch_add(1, Ordering::Relaxed)
    )
}

/// A lake: a local directory, or S3-compatible object storage ([`remote`]) read and written
/// through a local cache directory.
#[derive(Debug, Clone)]
pub struct Lake {
    /// The lake's directory; for a lake on object storage, its local cache.
    root: Arc<PathBuf>,
    remote: Option<Arc<remote::Remote>>,
}

/// The environment variable naming the local cache directory of a lake on object storage.
pub const CACHE_ENV: &str = "CREDITGUARD_LAKE_CACHE";

/// Whether `location` names a lake on object storage (`s3://…`).
pub fn is_object_store(location: &str) -> bool {
    location.starts_with("s3://") || location.starts_with("s3a://")
}

/// The local directory of the lake at `location`: the directory itself, or for a lake on object
/// storage its cache directory (which also holds what must stay local, such as the default
/// SQLite review database).
pub fn local_dir(location: &str) -> Result<PathBuf> {
    if is_object_store(location) {
        return match std::env::var_os(CACHE_ENV).filter(|v| !v.is_empty()) {
            Some(dir) => Ok(PathBuf::from(dir)),
            None => default_cache(location),
        };
    }
    Ok(PathBuf::from(
        location.strip_prefix("file://").unwrap_or(location),
    ))
}

impl Lake {
    /// Opens (creating if needed) the lake at `location`: a path, a `file://` URL, or
    /// `s3://bucket/prefix` (endpoint, region and credentials from the AWS environment; the
    /// cache directory from [`CACHE_ENV`], by default `$XDG_CACHE_HOME` or `~/.cache`
    /// `/creditguard/lake/<bucket>/<prefix>`).
    pub fn open(location: &str) -> Result<Lake> {
        if is_object_store(location) {
            return Lake::open_with_cache(location, &local_dir(location)?);
        }
        let path = if let Some(p) = location.strip_prefix("file://") {
            PathBuf::from(p)
        } else if let Some((scheme, _)) = location.split_once("://") {
            return Err(Error::Location(format!(
                "lake location `{location}`: unsupported scheme `{scheme}://` (expected a \
                 directory, a file:// URL or s3://bucket/prefix)"
            )));
        } else {
            PathBuf::from(location)
        };
        fs::create_dir_all(&path).map_err(io_err(&path))?;
        Ok(Lake {
            root: Arc::new(path),
            remote: None,
        })
    }

    /// Opens the lake on object storage at `location` (`s3://bucket/prefix`) with `cache` as
    /// its local cache directory.
    pub fn open_with_cache(location: &str, cache: &Path) -> Result<Lake> {
        Lake::open_with(location, cache, &[])
    }

    /// [`open_with_cache`](Self::open_with_cache) with S3 settings that take precedence over
    /// the environment: object_store's keys, such as `aws_endpoint_url` or `aws_region`.
    pub fn open_with(location: &str, cache: &Path, options: &[(String, String)]) -> Result<Lake> {
        let remote = remote::Remote::open(location, options)?;
        fs::create_dir_all(cache).map_err(io_err(cache))?;
        Ok(Lake {
            root: Arc::new(cache.to_path_buf()),
            remote: Some(Arc::new(remote)),
        })
    }

    /// The `s3://…` location of a lake on object storage, `None` for a local lake.
    pub fn object_store_url(&self) -> Option<&str> {
        self.remote.as_deref().map(remote::Remote::url)
    }

    /// The root directory; for a lake on object storage, its local cache (read through
    /// [`files`](Self::files) and [`partition_files`](Self::partition_files), not by listing).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `dir` relative to the root, `/`-separated (the object key below the lake's prefix).
    fn rel(&self, dir: &Path) -> Result<String> {
        let rel = dir.strip_prefix(self.root.as_path()).map_err(|_| {
            Error::Location(format!(
                "{}: not below the lake's directory {}",
                dir.display(),
                self.root.display()
            ))
        })?;
        Ok(rel
            .components()
            .filter_map(|c| c.as_os_str().to_str())
            .collect::<Vec<_>>()
            .join("/"))
    }

    fn partition_rel(table: &str, day: i64) -> String {
        format!("{}/dt={}", table.trim_matches('/'), format_day(day))
    }

    /// The directory of a table (`events`, `features/watch_time`, `results/flags`, …).
    pub fn table_dir(&self, table: &str) -> PathBuf {
        self.root.join(table)
    }

    /// The directory of one day of a table: `<table>/dt=YYYY-MM-DD`.
    pub fn partition_dir(&self, table: &str, day: i64) -> PathBuf {
        self.table_dir(table)
            .join(format!("dt={}", format_day(day)))
    }

    /// The days a table has partitions for, ascending.
    pub fn days(&self, table: &str) -> Result<Vec<i64>> {
        if let Some(remote) = &self.remote {
            let mut days: Vec<i64> = remote
                .days(table)?
                .iter()
                .filter_map(|n| n.strip_prefix("dt=").and_then(|d| parse_day(d).ok()))
                .collect();
            days.sort_unstable();
            return Ok(days);
        }
        let dir = self.table_dir(table);
        let mut days = Vec::new();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(days),
            Err(e) => {
                return Err(Error::Io {
                    path: dir,
                    source: e,
                })
            }
        };
        for entry in entries {
            let entry = entry.map_err(io_err(&dir))?;
            let name = entry.file_name();
            if let Some(day) = name
                .to_str()
                .and_then(|n| n.strip_prefix("dt="))
                .and_then(|d| parse_day(d).ok())
            {
                days.push(day);
            }
        }
        days.sort_unstable();
        Ok(days)
    }

    /// The committed Parquet files of one day of a table, sorted by name. Temporary files
    /// (`.name.tmp-…`) and anything not ending in `.parquet` are not listed. On object storage
    /// the files of one committed generation, fetched into the cache.
    pub fn partition_files(&self, table: &str, day: i64) -> Result<Vec<PathBuf>> {
        self.committed_files(table, day, |name| name.ends_with(".parquet"))
    }

    /// The names of [`partition_files`](Self::partition_files), sorted; on object storage
    /// nothing is fetched.
    pub fn partition_file_names(&self, table: &str, day: i64) -> Result<Vec<String>> {
        let mut names: Vec<String> = match &self.remote {
            Some(remote) => remote
                .committed_names(&Self::partition_rel(table, day))?
                .into_iter()
                .filter(|n| !n.starts_with('.') && n.ends_with(".parquet"))
                .collect(),
            None => self
                .partition_files(table, day)?
                .iter()
                .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
                .collect(),
        };
        names.sort();
        Ok(names)
    }

    /// Every committed file of one day of a table (Parquet, NDJSON streams, …), sorted by name.
    pub fn partition_all_files(&self, table: &str, day: i64) -> Result<Vec<PathBuf>> {
        self.committed_files(table, day, |_| true)
    }

    fn committed_files(
        &self,
        table: &str,
        day: i64,
        keep: impl Fn(&str) -> bool,
    ) -> Result<Vec<PathBuf>> {
        if let Some(remote) = &self.remote {
            let rel = Self::partition_rel(table, day);
            return remote.fetch_partition(&rel, &self.root, |n| !n.starts_with('.') && keep(n));
        }
        let dir = self.partition_dir(table, day);
        // A replacement exchanges the day's directory, then empties the old one: a listing that
        // began in the old directory may miss files, so it counts only if the directory was
        // the same one before and after it.
        for _ in 0..1000 {
            let Some(before) = dir_identity(&dir)? else {
                return Ok(Vec::new());
            };
            let mut files = Vec::new();
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(Error::Io {
                        path: dir,
                        source: e,
                    })
                }
            };
            for entry in entries {
                let Ok(entry) = entry else { continue };
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if !name.starts_with('.') && keep(name) && entry.path().is_file() {
                    files.push(entry.path());
                }
            }
            if dir_identity(&dir)? == Some(before) {
                files.sort();
                return Ok(files);
            }
        }
        Err(Error::Io {
            path: dir,
            source: io::Error::other("replaced 1000 times while being listed"),
        })
    }

    /// The committed Parquet files of a table for the days `from..=to`.
    pub fn files(&self, table: &str, from: i64, to: i64) -> Result<Vec<PathBuf>> {
        let mut files = Vec::new();
        for day in self
            .days(table)?
            .into_iter()
            .filter(|d| (from..=to).contains(d))
        {
            files.extend(self.partition_files(table, day)?);
        }
        Ok(files)
    }

    /// Writes `dir/name` atomically: to a temporary name in `dir`, fsync, rename, fsync `dir`.
    /// On error the temporary file is removed and `dir/name` is untouched.
    pub fn write_file_atomic(
        &self,
        dir: &Path,
        name: &str,
        write: impl FnOnce(&mut File) -> io::Result<()>,
    ) -> Result<PathBuf> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let tmp = dir.join(format!(".{name}.tmp-{}", nonce()));
        let target = dir.join(name);
        let result = (|| {
            let mut file = File::create(&tmp)?;
            write(&mut file)?;
            file.flush()?;
            file.sync_all()?;
            Ok(())
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(Error::Io {
                path: target,
                source: e,
            });
        }
        fs::rename(&tmp, &target).map_err(io_err(&target))?;
        if let Some(remote) = &self.remote {
            // One PUT under the same name; the local copy moves to its cache place.
            let rel = self.rel(dir)?;
            let entry = remote.put_file(&rel, name, &target)?;
            let cached = remote::cache_path(&self.root, &rel, &entry);
            let parent = cached.parent().expect("a cache path has a directory");
            fs::create_dir_all(parent).map_err(io_err(parent))?;
            fs::rename(&target, &cached).map_err(io_err(&cached))?;
            return Ok(cached);
        }
        sync_dir(dir)?;
        Ok(target)
    }

    /// Writes `batches` as one zstd Parquet file `<table>/dt=<day>/<name>`, atomically.
    pub fn write_parquet(
        &self,
        table: &str,
        day: i64,
        name: &str,
        schema: SchemaRef,
        batches: &[RecordBatch],
    ) -> Result<PathBuf> {
        self.write_parquet_with(table, day, name, schema, batches, writer_properties())
    }

    /// [`write_parquet`](Self::write_parquet) with other writer properties (a table whose
    /// columns want other encodings).
    pub fn write_parquet_with(
        &self,
        table: &str,
        day: i64,
        name: &str,
        schema: SchemaRef,
        batches: &[RecordBatch],
        props: WriterProperties,
    ) -> Result<PathBuf> {
        let dir = self.partition_dir(table, day);
        let target = dir.join(name);
        let mut parquet_err = None;
        let written = self.write_file_atomic(&dir, name, |file| {
            let result = write_parquet_to_with(file, schema, batches, props);
            result.map_err(|e| {
                parquet_err = Some(e);
                io::Error::other("parquet")
            })
        });
        match (written, parquet_err) {
            (_, Some(source)) => Err(Error::Parquet {
                path: target,
                source,
            }),
            (r, None) => r,
        }
    }

    /// Replaces the whole `dt=<day>` partition of `table` in one step. `fill` writes the new
    /// files into the staging directory it is given (plain writes: this function fsyncs them);
    /// then the staging directory is exchanged with the live one, and the old files are removed.
    /// On object storage the files are uploaded under a new version and a manifest generation
    /// commits them ([`remote`]). If `fill` fails, the live partition is untouched.
    pub fn replace_partition<F>(&self, table: &str, day: i64, fill: F) -> Result<PathBuf>
    where
        F: FnOnce(&Path) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>>,
    {
        let staging_root = self.root.join("_staging");
        let staging = staging_root.join(format!(
            "{}-dt={}-{}",
            table.replace('/', "__"),
            format_day(day),
            nonce()
        ));
        fs::create_dir_all(&staging).map_err(io_err(&staging))?;
        if let Err(source) = fill(&staging) {
            let _ = fs::remove_dir_all(&staging);
            return Err(Error::Fill {
                table: table.to_string(),
                day: format_day(day),
                source,
            });
        }
        if let Some(remote) = &self.remote {
            return self.replace_remote(remote, table, day, &staging);
        }
        for entry in fs::read_dir(&staging).map_err(io_err(&staging))? {
            let path = entry.map_err(io_err(&staging))?.path();
            File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(io_err(&path))?;
        }
        sync_dir(&staging)?;
        let target = self.partition_dir(table, day);
        let table_dir = self.table_dir(table);
        fs::create_dir_all(&table_dir).map_err(io_err(&table_dir))?;
        if target.exists() {
            swap_dirs(&staging, &target)?;
            // `staging` now holds the previous partition.
            fs::remove_dir_all(&staging).map_err(io_err(&staging))?;
        } else {
            fs::rename(&staging, &target).map_err(io_err(&target))?;
        }
        sync_dir(&table_dir)?;
        Ok(target)
    }

    fn replace_remote(
        &self,
        remote: &remote::Remote,
        table: &str,
        day: i64,
        staging: &Path,
    ) -> Result<PathBuf> {
        let mut files = Vec::new();
        for entry in fs::read_dir(staging).map_err(io_err(staging))? {
            let entry = entry.map_err(io_err(staging))?;
            if let Some(name) = entry.file_name().to_str() {
                files.push((name.to_string(), entry.path()));
            }
        }
        let rel = Self::partition_rel(table, day);
        let result = remote.replace(&rel, files);
        let version = match result {
            Ok(v) => v,
            Err(e) => {
                let _ = fs::remove_dir_all(staging);
                return Err(e);
            }
        };
        // The staged files become the cache of the new version; older cached versions go.
        let cached = self.root.join(&rel);
        if let Ok(entries) = fs::read_dir(&cached) {
            for e in entries.flatten() {
                if e.file_name()
                    .to_str()
                    .is_some_and(|n| n.starts_with("_v") || n.starts_with("_e"))
                {
                    let _ = fs::remove_dir_all(e.path());
                }
            }
        }
        fs::create_dir_all(&cached).map_err(io_err(&cached))?;
        let target = cached.join(version);
        fs::rename(staging, &target).map_err(io_err(&target))?;
        Ok(target)
    }

    /// Removes what crashed writers left behind: `_staging/` and `.…tmp-…` files in `table`
    /// (on object storage also uploads no manifest lists). Returns how many entries were
    /// removed. Only call it when no writer is running.
    pub fn clean(&self, table: &str) -> Result<usize> {
        let mut removed = 0;
        if let Some(remote) = &self.remote {
            for day in self.days(table)? {
                removed += remote.clean(&Self::partition_rel(table, day))?;
            }
        }
        let staging_root = self.root.join("_staging");
        if let Ok(entries) = fs::read_dir(&staging_root) {
            let prefix = format!("{}-dt=", table.replace('/', "__"));
            for entry in entries.flatten() {
                if entry
                    .file_name()
                    .to_str()
                    .is_some_and(|n| n.starts_with(&prefix))
                {
                    fs::remove_dir_all(entry.path()).map_err(io_err(&entry.path()))?;
                    removed += 1;
                }
            }
        }
        for day in self.days(table)? {
            let dir = self.partition_dir(table, day);
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                if name
                    .to_str()
                    .is_some_and(|n| n.starts_with('.') && n.contains(".tmp-"))
                {
                    fs::remove_file(entry.path()).map_err(io_err(&entry.path()))?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

/// The default cache directory of a lake on object storage.
fn default_cache(location: &str) -> Result<PathBuf> {
    let loc = remote::parse_s3_url(location)?;
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .ok_or_else(|| {
            Error::Location(format!(
                "lake `{location}`: no cache directory (set {CACHE_ENV}, XDG_CACHE_HOME or HOME)"
            ))
        })?;
    let mut dir = base.join("creditguard").join("lake").join(&loc.bucket);
    if !loc.prefix.is_empty() {
        dir = dir.join(&loc.prefix);
    }
    Ok(dir)
}

/// Writes batches as Parquet with the lake's [`writer_properties`].
pub fn write_parquet_to<W: Write + Send>(
    out: W,
    schema: SchemaRef,
    batches: &[RecordBatch],
) -> Result<(), parquet::errors::ParquetError> {
    write_parquet_to_with(out, schema, batches, writer_properties())
}

/// Writes batches as Parquet with the given writer properties.
pub fn write_parquet_to_with<W: Write + Send>(
    out: W,
    schema: SchemaRef,
    batches: &[RecordBatch],
    props: WriterProperties,
) -> Result<(), parquet::errors::ParquetError> {
    let mut writer = ArrowWriter::try_new(out, schema, Some(props))?;
    for batch in batches {
        writer.write(batch)?;
    }
    writer.close()?;
    Ok(())
}

/// What tells one directory from another that later takes its name: device, inode and
/// change time (a rename changes it). `None` when there is none.
fn dir_identity(dir: &Path) -> Result<Option<(u64, u64, i64, i64)>> {
    use std::os::unix::fs::MetadataExt;
    match fs::metadata(dir) {
        Ok(m) => Ok(Some((m.dev(), m.ino(), m.ctime(), m.ctime_nsec()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Io {
            path: dir.to_path_buf(),
            source: e,
        }),
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Exchanges two directories atomically (Linux `renameat2(RENAME_EXCHANGE)`); where the file
/// system cannot, falls back to two renames, leaving a moment in which `b` is absent.
fn swap_dirs(a: &Path, b: &Path) -> Result<()> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{renameat_with, RenameFlags, CWD};
        match renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE) {
            Ok(()) => return Ok(()),
            Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {}
            Err(e) => {
                return Err(Error::Io {
                    path: b.to_path_buf(),
                    source: e.into(),
                })
            }
        }
    }
    let old = a.with_extension(format!("old-{}", nonce()));
    fs::rename(b, &old).map_err(io_err(b))?;
    fs::rename(a, b).map_err(io_err(b))?;
    fs::rename(&old, a).map_err(io_err(a))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, RecordBatchReader};
    use arrow_schema::{DataType, Field, Schema};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn lake() -> (tempfile::TempDir, Lake) {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        (dir, lake)
    }

    fn batch(values: &[i64]) -> (SchemaRef, RecordBatch) {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        let b = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from(values.to_vec()))],
        )
        .unwrap();
        (schema, b)
    }

    fn read_x(path: &Path) -> Vec<i64> {
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap())
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(reader.schema().field(0).name(), "x");
        reader
            .flat_map(|b| {
                let b = b.unwrap();
                b.column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .values()
                    .to_vec()
            })
            .collect()
    }

    #[test]
    fn parquet_round_trip_and_deterministic_overwrite() {
        let (_d, lake) = lake();
        let (schema, b) = batch(&[1, 2, 3]);
        let p1 = lake
            .write_parquet("events", 20_514, "part-a.parquet", schema.clone(), &[b])
            .unwrap();
        let (_, b2) = batch(&[4, 5]);
        let p2 = lake
            .write_parquet("events", 20_514, "part-a.parquet", schema, &[b2])
            .unwrap();
        assert_eq!(p1, p2);
        assert_eq!(
            lake.partition_files("events", 20_514).unwrap(),
            vec![p1.clone()]
        );
        assert_eq!(read_x(&p1), vec![4, 5]);
        assert!(p1.ends_with("events/dt=2026-03-02/part-a.parquet"));
        assert_eq!(lake.days("events").unwrap(), vec![20_514]);
    }

    #[test]
    fn a_file_that_was_not_renamed_is_never_listed() {
        let (_d, lake) = lake();
        let dir = lake.partition_dir("events", 20_514);
        // A writer that fails midway (here: after writing some bytes) leaves nothing behind.
        let err = lake
            .write_file_atomic(&dir, "part-x.parquet", |f| {
                f.write_all(b"PAR1 half a file")?;
                Err(io::Error::other("disk full"))
            })
            .unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
        assert!(lake.partition_files("events", 20_514).unwrap().is_empty());
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            0,
            "temporary file removed"
        );
        // A crashed writer's temporary file (killed before rename) is not listed, and clean() removes it.
        fs::write(dir.join(".part-y.parquet.tmp-123-456-0"), b"PAR1 partial").unwrap();
        assert!(lake.partition_files("events", 20_514).unwrap().is_empty());
        assert_eq!(lake.clean("events").unwrap(), 1);
    }

    #[test]
    fn replace_partition_swaps_whole_days() {
        let (_d, lake) = lake();
        let day = 20_514;
        for names in [&["a.parquet", "b.parquet"][..], &["c.parquet"][..]] {
            lake.replace_partition("results/flags", day, |staging| {
                for n in names {
                    fs::write(staging.join(n), n.as_bytes())?;
                }
                Ok(())
            })
            .unwrap();
        }
        let files = lake.partition_files("results/flags", day).unwrap();
        assert_eq!(files.len(), 1);
        assert!(files[0].ends_with("results/flags/dt=2026-03-02/c.parquet"));
        // A failed fill leaves the live day as it was and no staging behind.
        let err = lake
            .replace_partition("results/flags", day, |staging| {
                fs::write(staging.join("d.parquet"), b"d")?;
                Err("detector blew up".into())
            })
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("results/flags/dt=2026-03-02: detector blew up"),
            "{err}"
        );
        assert_eq!(lake.partition_files("results/flags", day).unwrap(), files);
        assert_eq!(
            fs::read_dir(lake.root().join("_staging")).unwrap().count(),
            0
        );
    }
}
