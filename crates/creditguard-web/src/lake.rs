//! What the pages read from the lake (flags with their evidence and explanations, credit
//! records, progress, sessions for the timeline, the course catalog) and what a decision writes
//! back to it ([`write_decision_tables`], shared with `creditguard review decide`).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use creditguard_contract::time::day_of_us;
use creditguard_contract::{Credit, Flag};
use creditguard_lake::Lake;
use creditguard_review::{apply_decisions, Review};
use creditguard_score::events::SessionSpan;
use creditguard_score::{tables, Catalog, Progress};

use crate::error::{Result, WebError};

/// The decision records as NDJSON files (`case_decision`, `credit_released`,
/// `credit_cancelled`), one partition per decision day.
pub const REVIEW_STREAM: &str = "results/review_stream";

/// Runs a review-store future to completion from blocking code: a runtime (the command line's)
/// or a handle to one (the web app's, from a blocking thread).
pub trait BlockOn {
    fn block_on_review<F: Future>(&self, f: F) -> F::Output;
}

impl BlockOn for tokio::runtime::Runtime {
    fn block_on_review<F: Future>(&self, f: F) -> F::Output {
        self.block_on(f)
    }
}

impl BlockOn for tokio::runtime::Handle {
    fn block_on_review<F: Future>(&self, f: F) -> F::Output {
        self.block_on(f)
    }
}

/// After a decision: rewrites the credit records of the case's claims (their completion days in
/// `results/credits`) with the decisions applied, and the decision day's `results/decisions` and
/// `results/review_stream` partitions. Returns the credit records changed. Progress follows at
/// the next score run. Blocking (file IO): call it from a blocking thread.
pub fn write_decision_tables(
    rt: &impl BlockOn,
    review: &Review,
    lake: &Lake,
    case_id: &str,
    decided_at: i64,
) -> Result<usize> {
    let detail = rt.block_on_review(review.show(case_id))?;
    let days: BTreeSet<i64> = detail
        .claims
        .iter()
        .map(|c| day_of_us(c.completed_at))
        .collect();
    let mut changed = 0;
    for day in days {
        let mut credits = tables::read_credits(lake, day, day)?;
        if credits.is_empty() {
            continue;
        }
        let ids: Vec<String> = credits.iter().map(|c| c.credit_id.clone()).collect();
        let decisions = rt.block_on_review(review.decisions_for(&ids))?;
        let n = apply_decisions(&mut credits, &decisions);
        if n > 0 {
            tables::replace_day(lake, tables::CREDITS, day, tables::credits_batch(&credits)?)?;
            changed += n;
        }
    }
    let day = day_of_us(decided_at);
    let decisions = rt.block_on_review(review.decisions_of_day(day))?;
    tables::replace_day(
        lake,
        tables::DECISIONS,
        day,
        tables::decisions_batch(&decisions)?,
    )?;
    let records = rt.block_on_review(review.outbox_of_day(day))?;
    lake.replace_partition(REVIEW_STREAM, day, |staging| {
        let mut out =
            std::io::BufWriter::new(std::fs::File::create(staging.join("part-0.ndjson"))?);
        for r in &records {
            out.write_all(r.as_bytes())?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        Ok(())
    })?;
    Ok(changed)
}

/// A partition's identity: its files with their sizes and modification times. A rewritten
/// partition (a re-run, a decision) has another, so cached reads of it are dropped.
fn stamp(lake: &Lake, table: &str, day: i64) -> Result<Vec<(PathBuf, u64, Option<SystemTime>)>> {
    Ok(lake
        .partition_files(table, day)?
        .into_iter()
        .map(|p| {
            let m = std::fs::metadata(&p).ok();
            let (len, at) = m.map(|m| (m.len(), m.modified().ok())).unwrap_or((0, None));
            (p, len, at)
        })
        .collect())
}

type Stamp = Vec<(PathBuf, u64, Option<SystemTime>)>;

/// How many flag partitions (days) stay cached.
const FLAG_DAYS_CACHED: usize = 128;

/// The lake as the pages read it, with caches of what many requests share (flag partitions,
/// the latest progress snapshot).
pub struct LakeView {
    pub lake: Lake,
    pub catalog: Catalog,
    flags: Mutex<HashMap<i64, (Stamp, Arc<HashMap<String, Flag>>)>>,
    progress: Mutex<Option<(i64, Stamp, Arc<HashMap<String, Progress>>)>>,
}

impl LakeView {
    pub fn new(lake: Lake, catalog: Catalog) -> LakeView {
        LakeView {
            lake,
            catalog,
            flags: Mutex::new(HashMap::new()),
            progress: Mutex::new(None),
        }
    }

    /// The flags of one partition day, by id.
    pub fn flags_of_day(&self, day: i64) -> Result<Arc<HashMap<String, Flag>>> {
        let st = stamp(&self.lake, tables::FLAGS, day)?;
        if let Some((s, m)) = self.flags.lock().ok().and_then(|c| c.get(&day).cloned()) {
            if s == st {
                return Ok(m);
            }
        }
        let map: HashMap<String, Flag> = tables::read_flags(&self.lake, day, day)?
            .into_iter()
            .map(|(_, f)| (f.flag_id.clone(), f))
            .collect();
        let map = Arc::new(map);
        if let Ok(mut c) = self.flags.lock() {
            if c.len() >= FLAG_DAYS_CACHED {
                c.clear();
            }
            c.insert(day, (st, map.clone()));
        }
        Ok(map)
    }

    /// The lake's records of these flags (id, partition day); flags the lake no longer has are
    /// left out.
    pub fn flags(&self, wanted: &[(String, i64)]) -> Result<HashMap<String, Flag>> {
        let mut out = HashMap::new();
        let days: BTreeSet<i64> = wanted.iter().map(|(_, d)| *d).collect();
        for day in days {
            let m = self.flags_of_day(day)?;
            for (id, d) in wanted {
                if *d == day {
                    if let Some(f) = m.get(id) {
                        out.insert(id.clone(), f.clone());
                    }
                }
            }
        }
        Ok(out)
    }

    /// The credit records of these claims (by completion time), by credit id.
    pub fn credits(&self, claims: &[(String, i64)]) -> Result<HashMap<String, Credit>> {
        let days: BTreeSet<i64> = claims.iter().map(|(_, t)| day_of_us(*t)).collect();
        let ids: HashSet<&str> = claims.iter().map(|(id, _)| id.as_str()).collect();
        let mut out = HashMap::new();
        for day in days {
            for c in tables::read_credits(&self.lake, day, day)? {
                if ids.contains(c.credit_id.as_str()) {
                    out.insert(c.credit_id.clone(), c);
                }
            }
        }
        Ok(out)
    }

    /// The latest progress snapshot, by learner.
    pub fn progress(&self) -> Result<Arc<HashMap<String, Progress>>> {
        let Some(day) = self.lake.days(tables::PROGRESS)?.into_iter().max() else {
            return Ok(Arc::new(HashMap::new()));
        };
        let st = stamp(&self.lake, tables::PROGRESS, day)?;
        if let Some((d, s, m)) = self.progress.lock().ok().and_then(|c| c.clone()) {
            if d == day && s == st {
                return Ok(m);
            }
        }
        let map: HashMap<String, Progress> = tables::read_progress(&self.lake, day)?
            .into_iter()
            .map(|p| (p.user_id.clone(), p))
            .collect();
        let map = Arc::new(map);
        if let Ok(mut c) = self.progress.lock() {
            *c = Some((day, st, map.clone()));
        }
        Ok(map)
    }

    /// A learner's sessions over the days `from..=to` (for the timeline).
    pub fn sessions(&self, user: &str, from: i64, to: i64) -> Result<Vec<SessionSpan>> {
        let users: HashSet<String> = [user.to_string()].into();
        let mut m = creditguard_score::events::read_sessions(
            &self.lake,
            from,
            to,
            &users,
            30 * 60 * 1_000_000,
        )?;
        Ok(m.remove(user).unwrap_or_default())
    }

    /// A course's title, if the catalog knows it.
    pub fn course_title(&self, course_id: &str) -> Option<&str> {
        self.catalog.get(course_id).map(|c| c.title.as_str())
    }
}

/// Runs blocking lake reads off the async workers.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| WebError::Internal(format!("a lake read failed: {e}")))?
}
