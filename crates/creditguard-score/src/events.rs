//! What the scorer needs from the lake's `events` table: the credit claims (`course_complete`),
//! what the earning rules read (quiz submissions, live-session heartbeats), each learner's
//! stretches of activity per course, and (for the report) sessions and devices. A scoring run
//! reads the events once, as an [`EventScan`], and takes each of these from it.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use arrow_array::RecordBatch;
use creditguard_contract::time::{day_of_us, event_time_us, DAY_US, SKEW_TOLERANCE_US as SKEW_US};
use creditguard_lake::Lake;

use crate::Result;
use creditguard_lake::read::{read_columns_keeping_dictionaries, read_rows, Nums, Strs, Times};

const EVENTS: &str = "events";

/// The columns every scan reads: what an event's time ([`event_time_us`]) is made of.
const TIME_COLUMNS: [&str; 4] = ["ts", "received_at", "user_id", "session_id"];

/// Columns of few distinct values, kept dictionary-encoded as the files store them.
const DICTIONARY_COLUMNS: [&str; 9] = [
    "user_id",
    "session_id",
    "course_id",
    "event_type",
    "org_unit",
    "category",
    "device_id",
    "platform",
    "ip",
];

/// No session of a clock that ran ahead.
const NO_SKEW: u32 = u32::MAX;

/// One batch of one day's events, with each row's time before a session's skew correction.
struct Part {
    day: i64,
    batch: RecordBatch,
    /// The `event_id` of each `course_complete` row, in row order (when the scan wants them).
    completion_ids: Vec<Option<String>>,
    /// `ts`, or for an event without a session `ts` corrected by its own lead; `None` where `ts`
    /// is null.
    base: Vec<Option<i64>>,
    /// Per row, the index of its session in [`EventScan::skewed`], or [`NO_SKEW`] (empty when
    /// no session of the scan ran ahead).
    skew: Vec<u32>,
}

/// The events of a set of days read once, each day's file projected once onto the columns its
/// readers need, for every reader to take its rows from. Event times are those the detectors
/// measure ([`event_time_us`]): `ts`, moved back by the smallest `received_at − ts` over the
/// event's session when that shows the client's clock ran ahead. A reader of the days `a..=b`
/// takes that smallest lead over those days only, as if it had read them alone.
pub struct EventScan {
    parts: Vec<Part>,
    /// Per session with an event whose clock ran ahead: (day, smallest lead that day).
    skewed: Vec<Vec<(i64, i64)>>,
}

/// The batches of one file of a day with the columns `cols`; with `ids`, the `event_id` of its
/// completions, read for their rows only.
fn read_parts(file: &std::path::Path, day: i64, cols: &[&str], ids: bool) -> Result<Vec<Part>> {
    let path = [file.to_path_buf()];
    let batches = read_columns_keeping_dictionaries(&path, cols, &DICTIONARY_COLUMNS)?;
    let mut completions: Vec<Vec<usize>> = Vec::with_capacity(batches.len());
    let mut rows = Vec::new();
    let mut offset = 0;
    for b in &batches {
        let mut here = Vec::new();
        if ids {
            let ty = Strs::of(b, "event_type").map_err(|e| e.in_file(file))?;
            here.extend((0..b.num_rows()).filter(|&i| ty.get(i) == Some(COMPLETE)));
            rows.extend(here.iter().map(|i| offset + i));
        }
        offset += b.num_rows();
        completions.push(here);
    }
    let mut ids_read: Vec<Option<String>> = Vec::with_capacity(rows.len());
    if !rows.is_empty() {
        for b in read_rows(file, &["event_id"], &rows)? {
            let id = Strs::of(&b, "event_id").map_err(|e| e.in_file(file))?;
            ids_read.extend((0..b.num_rows()).map(|i| id.opt(i)));
        }
    }
    let mut ids_read = ids_read.into_iter();
    Ok(batches
        .into_iter()
        .zip(completions)
        .map(|(batch, here)| Part {
            day,
            batch,
            completion_ids: ids_read.by_ref().take(here.len()).collect(),
            base: Vec::new(),
            skew: Vec::new(),
        })
        .collect())
}

/// The event type of a credit claim.
const COMPLETE: &str = "course_complete";

/// What one reader of an [`EventScan`] wants: the columns of the days `from..=to`.
#[derive(Debug, Clone, Copy)]
pub struct Want<'a> {
    pub from: i64,
    pub to: i64,
    pub columns: &'a [&'a str],
}

impl EventScan {
    /// Reads every day any of `wants` covers, once, with the union of the columns its wants name
    /// (plus [`TIME_COLUMNS`]).
    pub fn read(lake: &Lake, wants: &[Want<'_>]) -> Result<EventScan> {
        let mut parts = Vec::new();
        let covered = |d: &i64| wants.iter().any(|w| (w.from..=w.to).contains(d));
        for day in lake.days(EVENTS)?.into_iter().filter(covered) {
            let mut cols: Vec<&str> = TIME_COLUMNS.to_vec();
            for w in wants.iter().filter(|w| (w.from..=w.to).contains(&day)) {
                for c in w.columns {
                    if !cols.contains(c) {
                        cols.push(c);
                    }
                }
            }
            // `event_id` is read for the completions only: it is unique to every row.
            let ids = cols.contains(&"event_id");
            cols.retain(|c| *c != "event_id");
            for file in lake.partition_files(EVENTS, day)? {
                parts.extend(read_parts(&file, day, &cols, ids)?);
            }
        }
        let mut scan = EventScan {
            parts,
            skewed: Vec::new(),
        };
        scan.time_rows()?;
        Ok(scan)
    }

    /// Sets every row's base time and finds the sessions whose clock ran ahead (rare: only
    /// their rows are looked up by session).
    fn time_rows(&mut self) -> Result<()> {
        let mut sessions: HashMap<String, HashMap<String, u32>> = HashMap::new();
        let mut skewed: Vec<BTreeMap<i64, i64>> = Vec::new();
        for part in &mut self.parts {
            let b = &part.batch;
            let (ts, received) = (Times::of(b, "ts")?, Times::of(b, "received_at")?);
            let (user, session) = (Strs::of(b, "user_id")?, Strs::of(b, "session_id")?);
            part.base = (0..b.num_rows())
                .map(|i| {
                    let t = ts.get(i)?;
                    // A clock within the tolerance moves nothing, in a session or alone.
                    let Some(l) = received.get(i).map(|r| r - t).filter(|l| *l < -SKEW_US) else {
                        return Some(t);
                    };
                    let (Some(u), Some(s)) = (user.get(i), session.get(i)) else {
                        return Some(event_time_us(t, Some(l)));
                    };
                    let by_session = sessions.entry(u.to_string()).or_default();
                    let next = skewed.len() as u32;
                    let k = *by_session.entry(s.to_string()).or_insert(next);
                    if k == next {
                        skewed.push(BTreeMap::new());
                    }
                    let day = skewed[k as usize].entry(part.day).or_insert(l);
                    *day = (*day).min(l);
                    Some(t)
                })
                .collect();
        }
        if !sessions.is_empty() {
            for part in &mut self.parts {
                let b = &part.batch;
                let (user, session) = (Strs::of(b, "user_id")?, Strs::of(b, "session_id")?);
                part.skew = (0..b.num_rows())
                    .map(|i| {
                        let (u, s) = (user.get(i), session.get(i));
                        let k = u.and_then(|u| sessions.get(u)?.get(s?));
                        k.copied().unwrap_or(NO_SKEW)
                    })
                    .collect();
            }
        }
        self.skewed = skewed
            .into_iter()
            .map(|m| m.into_iter().collect())
            .collect();
        Ok(())
    }

    /// The batches of the days `from..=to`, each with its rows' event times as a reader of those
    /// days sees them.
    fn days(&self, from: i64, to: i64) -> impl Iterator<Item = (&Part, Cow<'_, [Option<i64>]>)> {
        self.parts
            .iter()
            .filter(move |p| (from..=to).contains(&p.day))
            .map(move |p| (p, self.times(p, from, to)))
    }

    fn times<'s>(&self, part: &'s Part, from: i64, to: i64) -> Cow<'s, [Option<i64>]> {
        if part.skew.is_empty() {
            return Cow::Borrowed(&part.base);
        }
        let lead = |k: u32| {
            self.skewed[k as usize]
                .iter()
                .filter(|(d, _)| (from..=to).contains(d))
                .map(|(_, l)| *l)
                .min()
        };
        part.base
            .iter()
            .zip(&part.skew)
            .map(|(t, &k)| {
                let t = (*t)?;
                Some(if k == NO_SKEW {
                    t
                } else {
                    event_time_us(t, lead(k))
                })
            })
            .collect::<Vec<_>>()
            .into()
    }
}

/// The named columns of the events of days `from..=to`, with each row's event time.
fn read_timed(
    lake: &Lake,
    from: i64,
    to: i64,
    columns: &[&str],
) -> Result<(Vec<RecordBatch>, Vec<Vec<Option<i64>>>)> {
    let scan = EventScan::read(lake, &[Want { from, to, columns }])?;
    Ok(scan
        .days(from, to)
        .map(|(p, t)| (p.batch.clone(), t.into_owned()))
        .unzip())
}

/// One `course_complete` event: the platform claims credits for a learner.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub event_id: String,
    pub user_id: String,
    pub org_unit: Option<String>,
    pub course_id: String,
    /// The event's time (UTC µs, `ts` with the detectors' skew bound: [`event_time_us`]).
    pub completed_at: i64,
    pub credits: Option<f64>,
    pub category: Option<String>,
    /// A day's credits of a live session accrued per engaged hour ([`crate::earning`]), not a
    /// `course_complete` event: worth what it claims, and not a repeat of the same course's
    /// other days.
    pub accrued: bool,
}

/// The columns [`EventScan::claims`] reads.
pub const CLAIM_COLUMNS: [&str; 6] = [
    "event_id",
    "event_type",
    "org_unit",
    "course_id",
    "credits",
    "category",
];

/// The claims whose `ts` falls in the days `from..=to`, de-duplicated by `event_id` (producers
/// deliver twice), sorted by (completed_at, event_id).
pub fn read_claims(lake: &Lake, from: i64, to: i64) -> Result<Vec<Claim>> {
    let columns = &CLAIM_COLUMNS;
    EventScan::read(lake, &[Want { from, to, columns }])?.claims(from, to)
}

impl EventScan {
    /// [`read_claims`] of a scan that read [`CLAIM_COLUMNS`] of the days `from..=to`.
    pub fn claims(&self, from: i64, to: i64) -> Result<Vec<Claim>> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for (p, ts) in self.days(from, to) {
            let b = &p.batch;
            let ty = Strs::of(b, "event_type")?;
            let mut ids = p.completion_ids.iter();
            let (user, org, course, cat) = (
                Strs::of(b, "user_id")?,
                Strs::of(b, "org_unit")?,
                Strs::of(b, "course_id")?,
                Strs::of(b, "category")?,
            );
            let credits = Nums::of(b, "credits")?;
            for i in 0..b.num_rows() {
                if ty.get(i) != Some(COMPLETE) {
                    continue;
                }
                let Some(id) = ids.next() else {
                    return Err(crate::Error::Internal(
                        "claims taken from a scan that did not read `event_id`".into(),
                    ));
                };
                let id = id.clone().unwrap_or_default();
                let (Some(t), Some(course_id)) = (ts[i], course.get(i)) else {
                    continue;
                };
                // Late events land in their own day; a file of another day never holds them,
                // but a range read must still keep to the range.
                if !(from..=to).contains(&day_of_us(t)) || !seen.insert(id.clone()) {
                    continue;
                }
                out.push(Claim {
                    event_id: id,
                    user_id: user.string(i),
                    org_unit: org.opt(i),
                    course_id: course_id.to_string(),
                    completed_at: t,
                    credits: credits.get(i),
                    category: cat.opt(i),
                    accrued: false,
                });
            }
        }
        out.sort_by(|a, b| (a.completed_at, &a.event_id).cmp(&(b.completed_at, &b.event_id)));
        Ok(out)
    }
}

/// What a policy's earning rules read from the events ([`crate::earning`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EarningEvents {
    /// Per (user, course with a quiz): (submitted at, score in percent of `max_score`) of every
    /// quiz submission, sorted.
    pub quizzes: HashMap<(String, String), Vec<(i64, f64)>>,
    /// Per user: heartbeats on live sessions, sorted by time.
    pub live: HashMap<String, Vec<LiveBeat>>,
}

/// A heartbeat on a live session.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveBeat {
    pub at: i64,
    pub course_id: String,
    /// The page was in view (`visible` not false).
    pub engaged: bool,
    pub org_unit: Option<String>,
}

/// The columns [`EventScan::earning_events`] reads of the days of quizzes.
pub const QUIZ_COLUMNS: [&str; 4] = ["event_type", "course_id", "score", "max_score"];
/// The columns [`EventScan::earning_events`] reads of the days of live sessions.
pub const LIVE_COLUMNS: [&str; 4] = ["event_type", "course_id", "org_unit", "visible"];

/// What a scan for the earning rules wants: [`QUIZ_COLUMNS`] of `quiz_days`, [`LIVE_COLUMNS`] of
/// `live_days`.
pub fn earning_wants(
    quiz_days: Option<(i64, i64)>,
    live_days: Option<(i64, i64)>,
) -> Vec<Want<'static>> {
    let want = |(from, to): (i64, i64), columns| Want { from, to, columns };
    let quiz = quiz_days.map(|d| want(d, &QUIZ_COLUMNS));
    quiz.into_iter()
        .chain(live_days.map(|d| want(d, &LIVE_COLUMNS)))
        .collect()
}

/// Quiz submissions on courses with a quiz (over the days `quiz_days`) and heartbeats on live
/// sessions (over `live_days`), by event time; `None`: not wanted.
pub fn read_earning_events(
    lake: &Lake,
    catalog: &crate::Catalog,
    quiz_days: Option<(i64, i64)>,
    live_days: Option<(i64, i64)>,
) -> Result<EarningEvents> {
    EventScan::read(lake, &earning_wants(quiz_days, live_days))?
        .earning_events(catalog, quiz_days, live_days)
}

impl EventScan {
    /// [`read_earning_events`] of a scan that read [`earning_wants`].
    pub fn earning_events(
        &self,
        catalog: &crate::Catalog,
        quiz_days: Option<(i64, i64)>,
        live_days: Option<(i64, i64)>,
    ) -> Result<EarningEvents> {
        let mut out = EarningEvents::default();
        let Some((from, to)) = quiz_days
            .into_iter()
            .chain(live_days)
            .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)))
        else {
            return Ok(out);
        };
        use arrow_array::Array as _;
        let in_days = |days: Option<(i64, i64)>, t: i64| {
            days.is_some_and(|(a, b)| (a..=b).contains(&day_of_us(t)))
        };
        for (p, ts) in self.days(from, to) {
            let b = &p.batch;
            let (ty, user, course) = (
                Strs::of(b, "event_type")?,
                Strs::of(b, "user_id")?,
                Strs::of(b, "course_id")?,
            );
            // A day outside the quiz days was read without the quiz's columns, one outside the
            // live days without the heartbeat's.
            let (score, max) = (Nums::optional(b, "score")?, Nums::optional(b, "max_score")?);
            let org = Strs::optional(b, "org_unit")?;
            let visible = b
                .column_by_name("visible")
                .and_then(|a| a.as_any().downcast_ref::<arrow_array::BooleanArray>());
            for i in 0..b.num_rows() {
                // The cheap tests first: the type, then the day.
                let (quiz, days) = match ty.get(i) {
                    Some("quiz_submit") => (true, quiz_days),
                    Some("heartbeat") => (false, live_days),
                    _ => continue,
                };
                let Some(t) = ts[i].filter(|t| in_days(days, *t)) else {
                    continue;
                };
                let (Some(u), Some(c)) = (user.get(i), course.get(i)) else {
                    continue;
                };
                match quiz {
                    true if catalog.has_quiz(c) => {
                        let Some(score) = score.as_ref().and_then(|s| s.get(i)) else {
                            continue;
                        };
                        // Without a maximum the score is read as a percentage.
                        let pct = match max.as_ref().and_then(|m| m.get(i)) {
                            Some(m) if m > 0.0 => score / m * 100.0,
                            _ => score,
                        };
                        out.quizzes
                            .entry((u.to_string(), c.to_string()))
                            .or_default()
                            .push((t, pct));
                    }
                    false if catalog.is_live(c) => {
                        let hidden = visible.is_some_and(|v| v.is_valid(i) && !v.value(i));
                        let beat = LiveBeat {
                            at: t,
                            course_id: c.to_string(),
                            engaged: !hidden,
                            org_unit: org.as_ref().and_then(|o| o.opt(i)),
                        };
                        match out.live.get_mut(u) {
                            Some(beats) => beats.push(beat),
                            None => {
                                out.live.insert(u.to_string(), vec![beat]);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        for q in out.quizzes.values_mut() {
            q.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
        }
        for beats in out.live.values_mut() {
            beats.sort_by(|a, b| (a.at, &a.course_id).cmp(&(b.at, &b.course_id)));
        }
        Ok(out)
    }
}

/// Per (user, course): stretches `[start, end]` (UTC µs) of activity on that course, sorted.
pub type Activity = HashMap<(String, String), Vec<(i64, i64)>>;

/// The columns [`EventScan::activity`] reads.
pub const ACTIVITY_COLUMNS: [&str; 1] = ["course_id"];

/// Builds the [`Activity`] of `users` over the days `from..=to`: every event naming a course
/// counts; events closer than `gap_us` join one stretch.
pub fn read_activity(
    lake: &Lake,
    from: i64,
    to: i64,
    users: &HashSet<String>,
    gap_us: i64,
) -> Result<Activity> {
    if users.is_empty() {
        return Ok(Activity::new());
    }
    let columns = &ACTIVITY_COLUMNS;
    EventScan::read(lake, &[Want { from, to, columns }])?.activity(from, to, users, gap_us)
}

impl EventScan {
    /// [`read_activity`] of a scan that read [`ACTIVITY_COLUMNS`] of the days `from..=to`.
    pub fn activity(
        &self,
        from: i64,
        to: i64,
        users: &HashSet<String>,
        gap_us: i64,
    ) -> Result<Activity> {
        if users.is_empty() {
            return Ok(Activity::new());
        }
        let users: HashSet<&str> = users.iter().map(String::as_str).collect();
        let mut all: HashMap<(String, String), Vec<i64>> = HashMap::new();
        for (p, ts) in self.days(from, to) {
            let b = &p.batch;
            let (user, course) = (Strs::of(b, "user_id")?, Strs::of(b, "course_id")?);
            // Per (user, course) of this batch: the instants, collected before any is owned.
            let mut times: HashMap<(&str, &str), Vec<i64>> = HashMap::new();
            // A learner's events tend to follow each other: the last answer is kept.
            let mut last: (&str, bool) = ("", users.contains(""));
            for i in 0..b.num_rows() {
                let (Some(u), Some(c), Some(t)) = (user.get(i), course.get(i), ts[i]) else {
                    continue;
                };
                if u != last.0 {
                    last = (u, users.contains(u));
                }
                if last.1 {
                    times.entry((u, c)).or_default().push(t);
                }
            }
            for ((u, c), ts) in times {
                all.entry((u.to_string(), c.to_string()))
                    .or_default()
                    .extend(ts);
            }
        }
        Ok(all
            .into_iter()
            .map(|(k, v)| (k, stretches(v, gap_us)))
            .collect())
    }
}

/// Sorted instants → maximal stretches whose consecutive instants are at most `gap_us` apart.
pub fn stretches(mut ts: Vec<i64>, gap_us: i64) -> Vec<(i64, i64)> {
    ts.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::new();
    for t in ts {
        match out.last_mut() {
            Some((_, end)) if t - *end <= gap_us => *end = t,
            _ => out.push((t, t)),
        }
    }
    out
}

/// One stretch of one session of a learner, for the report's timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionSpan {
    pub session_id: String,
    pub device_id: Option<String>,
    pub platform: Option<String>,
    pub ip: Option<String>,
    pub start: i64,
    pub end: i64,
    /// Courses seen in this stretch, sorted.
    pub courses: Vec<String>,
}

/// What another learner shares with a learner over some days: device ids and IP addresses
/// both used.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SharedUse {
    pub devices: BTreeSet<String>,
    pub ips: BTreeSet<String>,
}

/// Other learners who used one of `user`'s devices or IP addresses over the days `from..=to`.
/// An address used by more than `max_ip_users` learners (an office or a carrier's NAT) says
/// nothing about any two of them and is left out; devices are always kept.
pub fn read_shared_use(
    lake: &Lake,
    from: i64,
    to: i64,
    user: &str,
    max_ip_users: usize,
) -> Result<BTreeMap<String, SharedUse>> {
    let mut by_device: HashMap<String, HashSet<String>> = HashMap::new();
    let mut by_ip: HashMap<String, HashSet<String>> = HashMap::new();
    let (batches, times) = read_timed(lake, from, to, &["device_id", "ip"])?;
    for (b, ts) in batches.iter().zip(&times) {
        let (users, devices, ips) = (
            Strs::of(b, "user_id")?,
            Strs::of(b, "device_id")?,
            Strs::of(b, "ip")?,
        );
        for i in 0..b.num_rows() {
            let (Some(u), Some(t)) = (users.get(i), ts[i]) else {
                continue;
            };
            if !(from * DAY_US..(to + 1) * DAY_US).contains(&t) {
                continue;
            }
            if let Some(d) = devices.get(i) {
                by_device
                    .entry(d.to_string())
                    .or_default()
                    .insert(u.to_string());
            }
            if let Some(a) = ips.get(i) {
                by_ip
                    .entry(a.to_string())
                    .or_default()
                    .insert(u.to_string());
            }
        }
    }
    let mut out: BTreeMap<String, SharedUse> = BTreeMap::new();
    for (device, users) in by_device.into_iter().filter(|(_, us)| us.contains(user)) {
        for other in users.into_iter().filter(|o| o != user) {
            out.entry(other).or_default().devices.insert(device.clone());
        }
    }
    for (ip, users) in by_ip
        .into_iter()
        .filter(|(_, us)| us.contains(user) && us.len() <= max_ip_users + 1)
    {
        for other in users.into_iter().filter(|o| o != user) {
            out.entry(other).or_default().ips.insert(ip.clone());
        }
    }
    Ok(out)
}

/// Sessions (split at pauses longer than `gap_us`) of `users` over the days `from..=to`, plus
/// events without a session (check-ins, completions) as zero-length spans named by their type.
pub fn read_sessions(
    lake: &Lake,
    from: i64,
    to: i64,
    users: &HashSet<String>,
    gap_us: i64,
) -> Result<BTreeMap<String, Vec<SessionSpan>>> {
    let mut rows: BTreeMap<
        (String, String),
        Vec<(
            i64,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
        )>,
    > = BTreeMap::new();
    if !users.is_empty() {
        let cols = ["event_type", "device_id", "platform", "ip", "course_id"];
        let (batches, times) = read_timed(lake, from, to, &cols)?;
        for (b, ts) in batches.iter().zip(&times) {
            let s = |n| Strs::of(b, n);
            let (ty, user, session, device, platform, ip, course) = (
                s("event_type")?,
                s("user_id")?,
                s("session_id")?,
                s("device_id")?,
                s("platform")?,
                s("ip")?,
                s("course_id")?,
            );
            for i in 0..b.num_rows() {
                let (Some(u), Some(t)) = (user.get(i), ts[i]) else {
                    continue;
                };
                // Completions are drawn as claims, not as activity of a device.
                if !users.contains(u)
                    || !(from * DAY_US..(to + 1) * DAY_US).contains(&t)
                    || ty.get(i) == Some("course_complete")
                {
                    continue;
                }
                let sid = session
                    .get(i)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("({})", ty.string(i)));
                rows.entry((u.to_string(), sid)).or_default().push((
                    t,
                    device.opt(i),
                    platform.opt(i),
                    ip.opt(i),
                    course.opt(i),
                ));
            }
        }
    }
    let mut out: BTreeMap<String, Vec<SessionSpan>> = BTreeMap::new();
    for ((user, sid), mut evs) in rows {
        evs.sort_by_key(|e| e.0);
        let mut cur: Option<(SessionSpan, BTreeSet<String>)> = None;
        let spans = out.entry(user).or_default();
        for (t, device, platform, ip, course) in evs {
            let split = cur.as_ref().is_some_and(|(s, _)| {
                t - s.end > gap_us || s.device_id != device && device.is_some()
            });
            if split {
                let (mut s, courses) = cur.take().expect("checked");
                s.courses = courses.into_iter().collect();
                spans.push(s);
            }
            let (s, courses) = cur.get_or_insert_with(|| {
                (
                    SessionSpan {
                        session_id: sid.clone(),
                        device_id: device.clone(),
                        platform: platform.clone(),
                        ip: ip.clone(),
                        start: t,
                        end: t,
                        courses: Vec::new(),
                    },
                    BTreeSet::new(),
                )
            });
            s.end = t;
            if s.device_id.is_none() {
                s.device_id = device;
            }
            if s.platform.is_none() {
                s.platform = platform;
            }
            if s.ip.is_none() {
                s.ip = ip;
            }
            courses.extend(course);
        }
        if let Some((mut s, courses)) = cur {
            s.courses = courses.into_iter().collect();
            spans.push(s);
        }
    }
    for spans in out.values_mut() {
        spans.sort_by(|a, b| (a.start, &a.session_id).cmp(&(b.start, &b.session_id)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stretches_split_at_long_pauses() {
        assert_eq!(
            stretches(vec![50, 0, 10, 200, 205], 40),
            vec![(0, 50), (200, 205)]
        );
        assert!(stretches(vec![], 1).is_empty());
    }
}
