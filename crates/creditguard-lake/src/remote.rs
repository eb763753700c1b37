//! The lake on S3-compatible object storage (`s3://bucket/prefix`).
//!
//! Object stores have no rename, so the local lake's two commit primitives are rebuilt on what
//! they do have: a single PUT is atomic, and a PUT with `If-None-Match: *` (object_store's
//! [`PutMode::Create`]) fails when the key exists.
//!
//! Keys below `<prefix>/<table>/dt=<day>/`:
//!
//! ```text
//! <name>.parquet                         a file written whole by one PUT (ingest; deterministic
//!                                        name, so a replay overwrites it)
//! _v<id>/<name>                          the files of one partition replacement, uploaded first
//! _commits/<generation, 20 digits>.json  the partition's manifest: {"generation", "files"}
//! ```
//!
//! A partition's committed files are those of its highest `_commits/` object when it has one,
//! otherwise its top-level objects. A replacement uploads `_v<id>/…`, then creates the next
//! generation with a conditional PUT (a concurrent writer that took the number makes it retry
//! with the next one), then deletes what the previous generation listed. Readers list the
//! partition's top level, then `_commits/` (in that order, so a first replacement that deletes
//! top-level files is seen as committed), and start over when a file they were about to fetch
//! has been deleted by a newer generation: every read sees one generation, never a mix.
//!
//! Readers of the rest of creditguard take local paths: files are fetched into a local cache
//! directory, keyed so that a cached file never changes (`_v<id>/<name>`, or `_e<etag>/<name>`
//! for top-level files), and the paths in it are returned.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use object_store::path::Path as Key;
use object_store::{
    ClientConfigKey, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig,
};

use crate::{nonce, Error, Result};

/// Files fetched or uploaded at once.
const CONCURRENCY: usize = 8;
/// Attempts at a consistent read before giving up (each one follows a newer generation).
const READ_ATTEMPTS: usize = 20;

/// One committed file of a partition, relative to the partition's key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Entry {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e_tag: Option<String>,
    #[serde(default)]
    pub size: u64,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Manifest {
    generation: u64,
    files: Vec<Entry>,
}

/// A parsed `s3://bucket/prefix` location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    /// Without leading or trailing `/`; may be empty.
    pub prefix: String,
}

/// Parses `s3://bucket[/prefix]`, naming `location` in every error.
pub fn parse_s3_url(location: &str) -> Result<S3Location> {
    let bad = |why: &str| Error::Location(format!("lake location `{location}`: {why}"));
    let rest = location
        .strip_prefix("s3://")
        .or_else(|| location.strip_prefix("s3a://"))
        .ok_or_else(|| bad("expected s3://bucket/prefix"))?;
    if location.contains(['?', '#', '\\']) || rest.contains('@') {
        return Err(bad(
            "query strings, fragments, credentials and `\\` are not allowed",
        ));
    }
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(bad("no bucket (expected s3://bucket/prefix)"));
    }
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && bucket.as_bytes()[0].is_ascii_alphanumeric()
        && bucket.as_bytes()[bucket.len() - 1].is_ascii_alphanumeric();
    if !bucket_ok {
        return Err(bad(&format!(
            "`{bucket}` is not a bucket name (3 to 63 characters: lowercase letters, digits, `-`, `.`)"
        )));
    }
    let prefix = prefix.trim_end_matches('/');
    if prefix
        .split('/')
        .any(|p| p == "." || p == ".." || (p.is_empty() && !prefix.is_empty()))
    {
        return Err(bad("the prefix has an empty, `.` or `..` segment"));
    }
    Ok(S3Location {
        bucket: bucket.to_string(),
        prefix: prefix.to_string(),
    })
}

/// The endpoint the AWS tools would use, from the environment (for messages and `http://`).
fn env_endpoint() -> Option<String> {
    ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
}

pub(crate) struct Remote {
    url: String,
    endpoint: String,
    prefix: String,
    store: Arc<AmazonS3>,
    rt: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("url", &self.url)
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which panics inside another runtime (the web app's).
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Remote {
    /// Connects to `location` with the AWS environment (`AWS_ENDPOINT_URL`, `AWS_REGION`,
    /// `AWS_ACCESS_KEY_ID`, …; path-style requests unless `AWS_VIRTUAL_HOSTED_STYLE_REQUEST`),
    /// and checks that the bucket answers.
    pub fn open(location: &str, options: &[(String, String)]) -> Result<Remote> {
        let loc = parse_s3_url(location)?;
        let mut endpoint = env_endpoint();
        let mut builder = AmazonS3Builder::from_env();
        for (k, v) in options {
            let key: AmazonS3ConfigKey = k.parse().map_err(|_| {
                Error::Location(format!("lake `{location}`: unknown S3 setting `{k}`"))
            })?;
            if matches!(key, AmazonS3ConfigKey::Endpoint) {
                endpoint = Some(v.clone());
            }
            builder = builder.with_config(key, v);
        }
        let mut builder = builder
            .with_bucket_name(&loc.bucket)
            .with_config(
                AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
                "5s",
            )
            .with_retry(RetryConfig {
                max_retries: 3,
                retry_timeout: Duration::from_secs(30),
                ..RetryConfig::default()
            });
        if endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://"))
        {
            builder = builder.with_allow_http(true);
        }
        let endpoint = endpoint.unwrap_or_else(|| "AWS".to_string());
        let store_err = |source: object_store::Error| Error::Store {
            location: location.to_string(),
            endpoint: endpoint.clone(),
            what: "configuring the S3 client".to_string(),
            source: Box::new(source),
        };
        let store = builder.build().map_err(store_err)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("creditguard-lake-s3")
            .enable_all()
            .build()
            .map_err(|source| Error::Io {
                path: PathBuf::from(location),
                source,
            })?;
        let remote = Remote {
            url: location.to_string(),
            endpoint,
            prefix: loc.prefix,
            store: Arc::new(store),
            rt: Some(rt),
        };
        let root = remote.key("");
        let store = remote.store.clone();
        remote
            .run(async move { store.list_with_delimiter(Some(&root)).await })
            .map_err(|e| {
                remote.err(
                    "listing the lake (is the endpoint reachable, the bucket there?)",
                    e,
                )
            })?;
        Ok(remote)
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn err(&self, what: impl Into<String>, source: object_store::Error) -> Error {
        Error::Store {
            location: self.url.clone(),
            endpoint: self.endpoint.clone(),
            what: what.into(),
            source: Box::new(source),
        }
    }

    /// Runs `f` on the lake's runtime and waits for it; callable from any thread, also from
    /// inside another tokio runtime.
    fn run<F>(&self, f: F) -> F::Output
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.rt
            .as_ref()
            .expect("the runtime lives as long as the lake")
            .spawn(async move {
                let _ = tx.send(f.await);
            });
        rx.recv().expect("lake task finished")
    }

    /// The key of `rel` (a `/`-separated path below the lake's root).
    fn key(&self, rel: &str) -> Key {
        let rel = rel.trim_matches('/');
        match (self.prefix.is_empty(), rel.is_empty()) {
            (true, _) => Key::from(rel),
            (false, true) => Key::from(self.prefix.as_str()),
            (false, false) => Key::from(format!("{}/{rel}", self.prefix)),
        }
    }

    /// Every object below `rel`, recursively (one listing, page by page). Servers that keep
    /// directories (SeaweedFS) list none of them here, unlike in a listing by delimiter.
    fn list_recursive(&self, rel: &str) -> Result<Vec<object_store::ObjectMeta>> {
        let key = self.key(rel);
        let prefix = if key.as_ref().is_empty() {
            String::new()
        } else {
            format!("{key}/")
        };
        let store = self.store.clone();
        let listed = self.run(async move {
            let mut out = Vec::new();
            let mut page_token = None;
            loop {
                let page = store
                    .list_paginated(
                        Some(&prefix),
                        PaginatedListOptions {
                            page_token,
                            ..Default::default()
                        },
                    )
                    .await?;
                out.extend(page.result.objects);
                match page.page_token {
                    Some(t) => page_token = Some(t),
                    None => return Ok(out),
                }
            }
        });
        listed.map_err(|e| self.err(format!("listing {rel}"), e))
    }

    /// The days of a table that hold at least one object.
    pub fn days(&self, table: &str) -> Result<Vec<String>> {
        let base = self.key(table);
        let days: BTreeSet<String> = self
            .list_recursive(table)?
            .iter()
            .filter_map(|o| {
                let first = o.location.prefix_match(&base)?.next()?;
                let first = first.as_ref();
                (first.starts_with("dt=") && o.location.parts_count() > base.parts_count() + 1)
                    .then(|| first.to_string())
            })
            .collect();
        Ok(days.into_iter().collect())
    }

    /// Names of the "directories" directly below `rel`.
    pub fn subdirs(&self, rel: &str) -> Result<Vec<String>> {
        let store = self.store.clone();
        let key = self.key(rel);
        let listing = self
            .run(async move { store.list_with_delimiter(Some(&key)).await })
            .map_err(|e| self.err(format!("listing {rel}"), e))?;
        Ok(listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect())
    }

    /// The committed files of the partition at `dir` (`<table>/dt=<day>`), fetched into
    /// `cache/<dir>/…`; `keep` chooses by file name. Sorted by file name, then path.
    pub fn fetch_partition(
        &self,
        dir: &str,
        cache: &Path,
        keep: impl Fn(&str) -> bool,
    ) -> Result<Vec<PathBuf>> {
        let mut last = None;
        for _ in 0..READ_ATTEMPTS {
            let entries = self.committed(dir)?;
            let wanted: Vec<Entry> = entries
                .into_iter()
                .filter(|e| keep(file_name(&e.path)))
                .collect();
            match self.fetch(dir, &wanted, cache) {
                Ok(mut paths) => {
                    paths.sort_by(|a, b| (a.file_name(), a).cmp(&(b.file_name(), b)));
                    return Ok(paths);
                }
                // A newer generation deleted a file of the one read: read again.
                Err(e @ Error::Store { .. }) if e.is_not_found() => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("at least one attempt"))
    }

    /// The file names of the committed entries of partition `dir`.
    pub fn committed_names(&self, dir: &str) -> Result<Vec<String>> {
        Ok(self
            .committed(dir)?
            .iter()
            .map(|e| file_name(&e.path).to_string())
            .collect())
    }

    /// The committed entries of a partition: its newest manifest's, or its top-level objects.
    fn committed(&self, dir: &str) -> Result<Vec<Entry>> {
        for _ in 0..READ_ATTEMPTS {
            let top = self.top_level(dir)?;
            match self.latest(dir)? {
                Latest::Manifest(m) => return Ok(m.files),
                Latest::None => return Ok(top),
                Latest::Vanished => continue,
            }
        }
        Err(Error::Location(format!(
            "{}/{dir}: the partition's manifest changed {READ_ATTEMPTS} times while being read",
            self.url
        )))
    }

    fn top_level(&self, dir: &str) -> Result<Vec<Entry>> {
        let store = self.store.clone();
        let key = self.key(dir);
        let listing = self
            .run(async move { store.list_with_delimiter(Some(&key)).await })
            .map_err(|e| self.err(format!("listing {dir}"), e))?;
        let dir_key = self.key(dir);
        let mut top: Vec<Entry> = listing
            .objects
            .into_iter()
            // A server that keeps directories lists an empty one as an object of its own name.
            .filter(|o| o.location != dir_key)
            .filter_map(|o| {
                let name = o.location.filename()?.to_string();
                (!name.starts_with('.') && !name.starts_with('_')).then_some(Entry {
                    path: name,
                    e_tag: o.e_tag,
                    size: o.size,
                })
            })
            .collect();
        top.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(top)
    }

    /// The partition's newest manifest.
    fn latest(&self, dir: &str) -> Result<Latest> {
        let store = self.store.clone();
        let key = self.key(&format!("{dir}/_commits"));
        let listing = self
            .run(async move { store.list_with_delimiter(Some(&key)).await })
            .map_err(|e| self.err(format!("listing {dir}/_commits"), e))?;
        let Some(newest) = listing
            .objects
            .iter()
            .filter_map(|o| generation_of(o.location.filename()?).map(|g| (g, o.location.clone())))
            .max()
        else {
            return Ok(Latest::None);
        };
        let store = self.store.clone();
        let key = newest.1.clone();
        let got = self.run(async move { store.get(&key).await?.bytes().await });
        let bytes = match got {
            Ok(b) => b,
            Err(object_store::Error::NotFound { .. }) => return Ok(Latest::Vanished),
            Err(e) => return Err(self.err(format!("reading {}", newest.1), e)),
        };
        let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
            Error::Location(format!(
                "{}: {}: not a lake manifest: {e}",
                self.url, newest.1
            ))
        })?;
        Ok(Latest::Manifest(manifest))
    }

    /// Fetches `entries` of partition `dir` into the cache (those not there yet).
    fn fetch(&self, dir: &str, entries: &[Entry], cache: &Path) -> Result<Vec<PathBuf>> {
        let mut jobs = Vec::new();
        let mut paths = Vec::with_capacity(entries.len());
        for e in entries {
            let local = cache_path(cache, dir, e);
            if !local.exists() {
                jobs.push((self.key(&format!("{dir}/{}", e.path)), local.clone()));
            }
            paths.push(local);
        }
        let store = self.store.clone();
        let results = self.run(async move {
            let mut set = tokio::task::JoinSet::new();
            let mut out = Vec::new();
            for (key, local) in jobs {
                if set.len() >= CONCURRENCY {
                    out.push(set.join_next().await.expect("a task is running"));
                }
                let store = store.clone();
                set.spawn(async move {
                    let r = download(&store, &key, &local).await;
                    (key, r)
                });
            }
            while let Some(r) = set.join_next().await {
                out.push(r);
            }
            out
        });
        for r in results {
            let (key, r) = r.expect("download task");
            match r {
                Ok(()) => {}
                Err(Download::Store(e)) => return Err(self.err(format!("fetching {key}"), e)),
                Err(Download::Io(path, source)) => return Err(Error::Io { path, source }),
            }
        }
        Ok(paths)
    }

    /// Uploads local `files` (name, path) to `<dir>/<sub>/<name>` in parallel, one PUT each.
    /// Returns the entries (relative to `dir`) with their etags.
    fn upload(&self, dir: &str, sub: &str, files: Vec<(String, PathBuf)>) -> Result<Vec<Entry>> {
        let store = self.store.clone();
        let jobs: Vec<(String, Key, PathBuf)> = files
            .into_iter()
            .map(|(name, path)| {
                let rel = if sub.is_empty() {
                    name
                } else {
                    format!("{sub}/{name}")
                };
                (rel.clone(), self.key(&format!("{dir}/{rel}")), path)
            })
            .collect();
        let results = self.run(async move {
            let mut set = tokio::task::JoinSet::new();
            let mut out = Vec::new();
            for (rel, key, path) in jobs {
                if set.len() >= CONCURRENCY {
                    out.push(set.join_next().await.expect("a task is running"));
                }
                let store = store.clone();
                set.spawn(async move {
                    let bytes = match fs::read(&path) {
                        Ok(b) => b,
                        Err(e) => return (rel, key, Err(Download::Io(path, e))),
                    };
                    let size = bytes.len() as u64;
                    let r = store
                        .put(&key, PutPayload::from(bytes))
                        .await
                        .map(|p| (p.e_tag, size))
                        .map_err(Download::Store);
                    (rel, key, r)
                });
            }
            while let Some(r) = set.join_next().await {
                out.push(r);
            }
            out
        });
        let mut entries = Vec::new();
        for r in results {
            let (rel, key, r) = r.expect("upload task");
            match r {
                Ok((e_tag, size)) => entries.push(Entry {
                    path: rel,
                    e_tag,
                    size,
                }),
                Err(Download::Store(e)) => return Err(self.err(format!("writing {key}"), e)),
                Err(Download::Io(path, source)) => return Err(Error::Io { path, source }),
            }
        }
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(entries)
    }

    /// Writes one file of partition `dir` with one PUT under its own name, and, when the
    /// partition has a manifest, commits a generation that lists it. Returns its entry.
    pub fn put_file(&self, dir: &str, name: &str, local: &Path) -> Result<Entry> {
        let entry = self
            .upload(dir, "", vec![(name.to_string(), local.to_path_buf())])?
            .pop()
            .expect("one file uploaded");
        loop {
            let m = match self.latest(dir)? {
                Latest::None => return Ok(entry),
                Latest::Vanished => continue,
                Latest::Manifest(m) => m,
            };
            if m.files.contains(&entry) {
                return Ok(entry);
            }
            // The file replaces one of its name, also one a replacement wrote under `_v<id>/`
            // (as on the file system, where both are `dt=<day>/<name>`).
            let (replaced, mut files): (Vec<Entry>, Vec<Entry>) = m
                .files
                .into_iter()
                .partition(|e| file_name(&e.path) == name);
            files.push(entry.clone());
            files.sort_by(|a, b| a.path.cmp(&b.path));
            if self.try_commit(dir, m.generation + 1, files)? {
                let gone = replaced
                    .iter()
                    .filter(|e| e.path != name)
                    .map(|e| self.key(&format!("{dir}/{}", e.path)))
                    .collect();
                let deleted = self.delete(gone);
                self.tidy(dir, deleted, m.generation + 1);
                return Ok(entry);
            }
        }
    }

    /// Replaces the partition at `dir` with the local `files` (name, path): uploads them under a
    /// fresh `_v<id>/`, commits the next generation, deletes the previous one's files. Returns
    /// the version directory's name.
    pub fn replace(&self, dir: &str, files: Vec<(String, PathBuf)>) -> Result<String> {
        let version = format!("_v{}", nonce());
        let entries = self.upload(dir, &version, files)?;
        loop {
            let (generation, previous) = match self.latest(dir)? {
                Latest::Manifest(m) => (m.generation, m.files),
                Latest::None => (0, self.top_level(dir)?),
                Latest::Vanished => continue,
            };
            if self.try_commit(dir, generation + 1, entries.clone())? {
                let gone: Vec<Key> = previous
                    .iter()
                    .filter(|p| !entries.iter().any(|e| e.path == p.path))
                    .map(|p| self.key(&format!("{dir}/{}", p.path)))
                    .collect();
                let deleted = self.delete(gone);
                self.tidy(dir, deleted, generation + 1);
                return Ok(version);
            }
        }
    }

    /// Creates generation `generation` of the partition's manifest; `false` when another
    /// writer created it first.
    fn try_commit(&self, dir: &str, generation: u64, files: Vec<Entry>) -> Result<bool> {
        let key = self.key(&format!("{dir}/_commits/{generation:020}.json"));
        let body =
            serde_json::to_vec(&Manifest { generation, files }).expect("a manifest serializes");
        let store = self.store.clone();
        let k = key.clone();
        let r = self.run(async move {
            store
                .put_opts(
                    &k,
                    PutPayload::from(body),
                    PutOptions::from(PutMode::Create),
                )
                .await
        });
        match r {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(self.err(format!("committing {key}"), e)),
        }
    }

    /// After a commit: deletes the manifests before `generation`. What could not be deleted
    /// (here or in `deleted`) is only logged: the commit stands, and nothing reads leftovers.
    fn tidy(&self, dir: &str, deleted: Result<()>, generation: u64) {
        for r in [deleted, self.delete_manifests_before(dir, generation)] {
            if let Err(e) = r {
                tracing::warn!(partition = dir, error = %e, "Committed; an older version's objects stay behind.");
            }
        }
    }

    fn delete_manifests_before(&self, dir: &str, generation: u64) -> Result<()> {
        let store = self.store.clone();
        let key = self.key(&format!("{dir}/_commits"));
        let listing = self
            .run(async move { store.list_with_delimiter(Some(&key)).await })
            .map_err(|e| self.err(format!("listing {dir}/_commits"), e))?;
        let old = listing
            .objects
            .into_iter()
            .filter(|o| {
                o.location
                    .filename()
                    .and_then(generation_of)
                    .is_some_and(|g| g < generation)
            })
            .map(|o| o.location)
            .collect();
        self.delete(old)
    }

    /// Deletes keys (already-missing ones are fine).
    fn delete(&self, keys: Vec<Key>) -> Result<()> {
        let store = self.store.clone();
        let results = self.run(async move {
            let mut out = Vec::new();
            for key in keys {
                match store.delete(&key).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => out.push((key, e)),
                }
            }
            out
        });
        match results.into_iter().next() {
            None => Ok(()),
            Some((key, e)) => Err(self.err(format!("deleting {key}"), e)),
        }
    }

    /// Every key below `rel`, recursively.
    fn list_all(&self, rel: &str) -> Result<Vec<Key>> {
        Ok(self
            .list_recursive(rel)?
            .into_iter()
            .map(|o| o.location)
            .collect())
    }

    /// Removes a whole partition: its committed files first, then everything else, the
    /// manifests last, so a reader sees it whole or empty. Returns the committed files' bytes,
    /// `None` when the partition had no objects.
    pub fn remove(&self, dir: &str) -> Result<Option<u64>> {
        let all = self.list_all(dir)?;
        if all.is_empty() {
            return Ok(None);
        }
        let committed = self.committed(dir)?;
        let bytes = committed.iter().map(|e| e.size).sum();
        // An empty manifest first: readers see the day empty at once.
        if let Latest::Manifest(m) = self.latest(dir)? {
            self.try_commit(dir, m.generation + 1, Vec::new())?;
        } else {
            self.try_commit(dir, 1, Vec::new())?;
        }
        let commits = self.key(&format!("{dir}/_commits"));
        let (manifests, rest): (Vec<Key>, Vec<Key>) = self
            .list_all(dir)?
            .into_iter()
            .partition(|k| k.prefix_matches(&commits));
        self.delete(rest)?;
        self.delete(manifests)?;
        Ok(Some(bytes))
    }

    /// Deletes what crashed writers left in partition `dir`: `_v…/` uploads and top-level
    /// files that its manifest does not list. Returns how many objects went.
    pub fn clean(&self, dir: &str) -> Result<usize> {
        let Latest::Manifest(m) = self.latest(dir)? else {
            // Without a manifest, every top-level file is committed; only uploads can be stale.
            let versions = self.key(dir);
            let stale: Vec<Key> = self
                .list_all(dir)?
                .into_iter()
                .filter(|k| {
                    k.prefix_match(&versions)
                        .and_then(|mut p| p.next())
                        .is_some_and(|first| first.as_ref().starts_with("_v"))
                })
                .collect();
            let n = stale.len();
            self.delete(stale)?;
            return Ok(n);
        };
        let keep: BTreeSet<Key> = m
            .files
            .iter()
            .map(|e| self.key(&format!("{dir}/{}", e.path)))
            .collect();
        let commits = self.key(&format!("{dir}/_commits"));
        let stale: Vec<Key> = self
            .list_all(dir)?
            .into_iter()
            .filter(|k| !keep.contains(k) && !k.prefix_matches(&commits))
            .collect();
        let n = stale.len();
        self.delete(stale)?;
        Ok(n)
    }
}

enum Latest {
    None,
    Manifest(Manifest),
    /// The newest manifest listed was deleted before it could be read (a newer one replaced it).
    Vanished,
}

enum Download {
    Store(object_store::Error),
    Io(PathBuf, std::io::Error),
}

async fn download(store: &AmazonS3, key: &Key, local: &Path) -> Result<(), Download> {
    let bytes = store
        .get(key)
        .await
        .map_err(Download::Store)?
        .bytes()
        .await
        .map_err(Download::Store)?;
    let dir = local.parent().expect("a cache path has a directory");
    let io = |e| Download::Io(local.to_path_buf(), e);
    fs::create_dir_all(dir).map_err(io)?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        local.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        nonce()
    ));
    fs::write(&tmp, &bytes).map_err(io)?;
    fs::rename(&tmp, local).map_err(io)
}

fn generation_of(name: &str) -> Option<u64> {
    name.strip_suffix(".json")?.parse().ok()
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Where an entry of partition `dir` lives in the cache: its path as is for `_v…/` files (never
/// rewritten), under `_e<etag>/` for top-level files (a replay may rewrite them).
pub(crate) fn cache_path(cache: &Path, dir: &str, e: &Entry) -> PathBuf {
    let base = cache.join(dir);
    if e.path.contains('/') {
        return base.join(&e.path);
    }
    let tag: String = match &e.e_tag {
        Some(t) => t
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect(),
        None => format!("s{}", e.size),
    };
    base.join(format!("_e{tag}")).join(&e.path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a writer killed between upload and commit, or between commit and deletion, leaves
    /// is never read, and `clean` deletes it.
    #[test]
    fn leftovers_of_crashed_writers_are_not_read_and_cleaned() {
        let Some(server) = crate::testing::seaweedfs() else {
            return;
        };
        let remote = Remote::open(&server.url("clean"), &server.options()).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let file = |name: &str| {
            let p = tmp.path().join(name);
            fs::write(&p, name).unwrap();
            (name.to_string(), p)
        };
        let dir = "results/flags/dt=2026-03-02";
        remote
            .put_file(dir, "ingested.parquet", &file("ingested.parquet").1)
            .unwrap();
        // Killed after uploading, before committing.
        remote
            .upload(dir, "_vcrashed", vec![file("x.parquet")])
            .unwrap();
        let committed = remote.replace(dir, vec![file("part-0.parquet")]).unwrap();
        // Killed after committing, before deleting: an older version's file is back.
        remote
            .upload(dir, "_vold", vec![file("part-0.parquet")])
            .unwrap();
        let cache = tmp.path().join("cache");
        let read =
            |r: &Remote| -> Vec<PathBuf> { r.fetch_partition(dir, &cache, |_| true).unwrap() };
        let expected = vec![cache.join(dir).join(&committed).join("part-0.parquet")];
        assert_eq!(read(&remote), expected);
        assert_eq!(remote.clean(dir).unwrap(), 2);
        assert_eq!(remote.clean(dir).unwrap(), 0);
        assert_eq!(read(&remote), expected);
        let left: Vec<String> = remote
            .list_all(dir)
            .unwrap()
            .iter()
            .map(|k| k.to_string())
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(left.iter().any(|k| k.contains("/_commits/")), "{left:?}");
    }

    #[test]
    fn s3_urls_are_checked_and_named_in_errors() {
        assert_eq!(
            parse_s3_url("s3://lake-bucket/some/prefix/").unwrap(),
            S3Location {
                bucket: "lake-bucket".into(),
                prefix: "some/prefix".into()
            }
        );
        assert_eq!(parse_s3_url("s3://lake-bucket").unwrap().prefix, "");
        for (bad, why) in [
            ("s3:///prefix", "no bucket"),
            ("s3://", "no bucket"),
            ("s3://Bad_Bucket/p", "not a bucket name"),
            ("s3://b/p", "not a bucket name"),
            ("s3://bucket/a//b", "empty, `.` or `..`"),
            ("s3://bucket/a/../b", "empty, `.` or `..`"),
            ("s3://key:secret@bucket/p", "not allowed"),
            ("gs://bucket/p", "expected s3://"),
        ] {
            let err = parse_s3_url(bad).unwrap_err().to_string();
            assert!(err.contains(bad) && err.contains(why), "{bad}: {err}");
        }
    }
}
