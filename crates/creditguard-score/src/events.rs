//! What the scorer needs from the lake's `events` table: the credit claims (`course_complete`),
//! each learner's stretches of activity per course, and (for the report) sessions and devices.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use arrow_array::RecordBatch;
use creditguard_contract::time::{day_of_us, event_time_us, DAY_US};
use creditguard_lake::Lake;

use crate::Result;
use creditguard_lake::read::{read_columns, Nums, Strs, Times};

const EVENTS: &str = "events";

/// The columns [`event_times`] needs, to be read beside a reader's own.
const TIME_COLUMNS: [&str; 4] = ["ts", "received_at", "user_id", "session_id"];

/// Every row's event time, batch by batch: `ts` with the skew bound the detectors apply
/// ([`event_time_us`], the lead taken over the session within `batches`), so the scorer links
/// flags to activity on the clock the detectors measured it on. `None` where `ts` is null.
fn event_times(batches: &[RecordBatch]) -> Result<Vec<Vec<Option<i64>>>> {
    let mut columns = Vec::with_capacity(batches.len());
    let mut session_lead: HashMap<(&str, &str), i64> = HashMap::new();
    for b in batches {
        let (ts, received) = (Times::of(b, "ts")?, Times::of(b, "received_at")?);
        let (user, session) = (Strs::of(b, "user_id")?, Strs::of(b, "session_id")?);
        for i in 0..b.num_rows() {
            if let (Some(t), Some(r), Some(u), Some(s)) =
                (ts.get(i), received.get(i), user.get(i), session.get(i))
            {
                let lead = session_lead.entry((u, s)).or_insert(i64::MAX);
                *lead = (*lead).min(r - t);
            }
        }
        columns.push((ts, received, user, session));
    }
    Ok(columns
        .iter()
        .zip(batches)
        .map(|((ts, received, user, session), b)| {
            (0..b.num_rows())
                .map(|i| {
                    let t = ts.get(i)?;
                    let lead = match (user.get(i), session.get(i)) {
                        (Some(u), Some(s)) => session_lead.get(&(u, s)).copied(),
                        _ => received.get(i).map(|r| r - t),
                    };
                    Some(event_time_us(t, lead))
                })
                .collect()
        })
        .collect())
}

/// The named columns of the events of days `from..=to` plus [`TIME_COLUMNS`], with each row's
/// event time.
fn read_timed(
    lake: &Lake,
    from: i64,
    to: i64,
    columns: &[&str],
) -> Result<(Vec<RecordBatch>, Vec<Vec<Option<i64>>>)> {
    let files = lake.files(EVENTS, from, to)?;
    let mut all: Vec<&str> = TIME_COLUMNS.to_vec();
    all.extend(columns.iter().filter(|c| !TIME_COLUMNS.contains(c)));
    let batches = read_columns(&files, &all)?;
    let times = event_times(&batches)?;
    Ok((batches, times))
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

/// The claims whose `ts` falls in the days `from..=to`, de-duplicated by `event_id` (producers
/// deliver twice), sorted by (completed_at, event_id).
pub fn read_claims(lake: &Lake, from: i64, to: i64) -> Result<Vec<Claim>> {
    let cols = [
        "event_id",
        "event_type",
        "org_unit",
        "course_id",
        "credits",
        "category",
    ];
    let (batches, times) = read_timed(lake, from, to, &cols)?;
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (b, ts) in batches.iter().zip(&times) {
        let ty = Strs::of(b, "event_type")?;
        let (id, user, org, course, cat) = (
            Strs::of(b, "event_id")?,
            Strs::of(b, "user_id")?,
            Strs::of(b, "org_unit")?,
            Strs::of(b, "course_id")?,
            Strs::of(b, "category")?,
        );
        let credits = Nums::of(b, "credits")?;
        for i in 0..b.num_rows() {
            if ty.get(i) != Some("course_complete") {
                continue;
            }
            let (Some(t), Some(course_id)) = (ts[i], course.get(i)) else {
                continue;
            };
            // Late events land in their own day; a file of another day never holds them, but a
            // range read must still keep to the range.
            if !(from..=to).contains(&day_of_us(t)) || !seen.insert(id.string(i)) {
                continue;
            }
            out.push(Claim {
                event_id: id.string(i),
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

/// Quiz submissions on courses with a quiz (over the days `quiz_days`) and heartbeats on live
/// sessions (over `live_days`), by event time; `None`: not wanted.
pub fn read_earning_events(
    lake: &Lake,
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
    let cols = [
        "event_type",
        "course_id",
        "org_unit",
        "score",
        "max_score",
        "visible",
    ];
    let (batches, times) = read_timed(lake, from, to, &cols)?;
    for (b, ts) in batches.iter().zip(&times) {
        let (ty, user, course, org) = (
            Strs::of(b, "event_type")?,
            Strs::of(b, "user_id")?,
            Strs::of(b, "course_id")?,
            Strs::of(b, "org_unit")?,
        );
        let (score, max) = (Nums::of(b, "score")?, Nums::of(b, "max_score")?);
        let visible = b
            .column_by_name("visible")
            .and_then(|a| a.as_any().downcast_ref::<arrow_array::BooleanArray>());
        for i in 0..b.num_rows() {
            let (Some(t), Some(u), Some(c)) = (ts[i], user.get(i), course.get(i)) else {
                continue;
            };
            match ty.get(i) {
                Some("quiz_submit") if catalog.has_quiz(c) && in_days(quiz_days, t) => {
                    let Some(score) = score.get(i) else { continue };
                    // Without a maximum the score is read as a percentage.
                    let pct = match max.get(i) {
                        Some(m) if m > 0.0 => score / m * 100.0,
                        _ => score,
                    };
                    out.quizzes
                        .entry((u.to_string(), c.to_string()))
                        .or_default()
                        .push((t, pct));
                }
                Some("heartbeat") if catalog.is_live(c) && in_days(live_days, t) => {
                    let hidden = visible.is_some_and(|v| v.is_valid(i) && !v.value(i));
                    out.live.entry(u.to_string()).or_default().push(LiveBeat {
                        at: t,
                        course_id: c.to_string(),
                        engaged: !hidden,
                        org_unit: org.opt(i),
                    });
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

/// Per (user, course): stretches `[start, end]` (UTC µs) of activity on that course, sorted.
pub type Activity = HashMap<(String, String), Vec<(i64, i64)>>;

/// Builds the [`Activity`] of `users` over the days `from..=to`: every event naming a course
/// counts; events closer than `gap_us` join one stretch.
pub fn read_activity(
    lake: &Lake,
    from: i64,
    to: i64,
    users: &HashSet<String>,
    gap_us: i64,
) -> Result<Activity> {
    let mut times: HashMap<(String, String), Vec<i64>> = HashMap::new();
    if users.is_empty() {
        return Ok(Activity::new());
    }
    let (batches, event_times) = read_timed(lake, from, to, &["course_id"])?;
    for (b, ts) in batches.iter().zip(&event_times) {
        let (user, course) = (Strs::of(b, "user_id")?, Strs::of(b, "course_id")?);
        for i in 0..b.num_rows() {
            let (Some(u), Some(c), Some(t)) = (user.get(i), course.get(i), ts[i]) else {
                continue;
            };
            if users.contains(u) {
                times
                    .entry((u.to_string(), c.to_string()))
                    .or_default()
                    .push(t);
            }
        }
    }
    Ok(times
        .into_iter()
        .map(|(k, v)| (k, stretches(v, gap_us)))
        .collect())
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
