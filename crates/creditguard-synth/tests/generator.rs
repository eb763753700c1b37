//! The generator's promises, checked on its output with small re-implementations of the
//! detectors' measurements (DESIGN.md "Detectors"): every labelled learner crosses its rule's
//! threshold, honest learners stay inside every threshold, the output is contract-valid except
//! the counted invalid lines, and a seed fixes the bytes.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use creditguard_contract::{parse_event, Event, EventType};
use creditguard_synth::{Catalog, Config, Generator, Labels, Pattern, StrengthMix};

const SEC: f64 = 1e6;

fn generate(cfg: Config) -> (Vec<u8>, Labels, Catalog) {
    let gen = Generator::new(cfg).unwrap();
    let mut out = Vec::new();
    let labels = gen.write(&mut out).unwrap();
    (out, labels, gen.catalog().clone())
}

fn lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty())
}

/// Valid events, each `event_id` once, per user, in `ts` order.
fn events_by_user(bytes: &[u8]) -> BTreeMap<String, Vec<Event<'static>>> {
    let mut seen = std::collections::HashSet::new();
    let mut by_user: BTreeMap<String, Vec<Event<'static>>> = BTreeMap::new();
    for line in lines(bytes) {
        if let Ok(ev) = parse_event(line) {
            if seen.insert(ev.event_id.to_string()) {
                by_user
                    .entry(ev.user_id.to_string())
                    .or_default()
                    .push(ev.into_owned());
            }
        }
    }
    for evs in by_user.values_mut() {
        evs.sort_by_key(|e| e.ts_us);
    }
    by_user
}

fn population() -> Config {
    Config {
        users: 520,
        days: 10,
        seed: 11,
        fault_rate: 0.01,
        ..Config::default()
    }
    .with_share_each(0.03)
    .with_client_fakes(0.03)
}

#[test]
fn same_seed_gives_the_same_bytes_and_another_seed_does_not() {
    let cfg = Config {
        users: 60,
        days: 6,
        ..Config::default()
    };
    let (a, la, _) = generate(cfg.clone());
    let (b, lb, _) = generate(cfg.clone());
    assert!(a == b, "two runs with one seed differ");
    assert_eq!(la, lb);
    let (c, _, _) = generate(Config { seed: 8, ..cfg });
    assert!(a != c);
}

#[test]
fn a_learner_does_not_depend_on_who_comes_after() {
    // Per-learner random streams: the first 30 learners behave the same in a population of 30
    // and of 60 (only the proxy check-in groups, formed across learners, may differ).
    let base = Config {
        days: 6,
        fault_rate: 0.0,
        ..Config::default()
    }
    .with_share_each(0.0);
    let (a, _, _) = generate(Config {
        users: 30,
        ..base.clone()
    });
    let (b, _, _) = generate(Config { users: 60, ..base });
    let a = events_by_user(&a);
    let b = events_by_user(&b);
    for (user, evs) in &a {
        assert_eq!(
            evs, &b[user],
            "{user} changed when more learners were added"
        );
    }
}

#[test]
fn output_is_contract_valid_except_the_counted_invalid_lines() {
    let (bytes, labels, _) = generate(population());
    let s = &labels.summary;
    let mut rejected: BTreeMap<String, u64> = BTreeMap::new();
    let mut ids: HashMap<String, u32> = HashMap::new();
    let mut n = 0u64;
    let mut completions = 0u64;
    for line in lines(&bytes) {
        n += 1;
        match parse_event(line) {
            Ok(ev) => {
                let count = ids.entry(ev.event_id.to_string()).or_default();
                *count += 1;
                if *count == 1 && ev.event_type == EventType::CourseComplete {
                    completions += 1;
                }
            }
            Err(r) => *rejected.entry(r.kind.as_str().to_string()).or_default() += 1,
        }
    }
    assert_eq!(n, s.lines);
    assert!(
        s.invalid_lines > 20,
        "too few invalid lines to mean anything: {}",
        s.invalid_lines
    );
    assert_eq!(rejected.values().sum::<u64>(), s.invalid_lines);
    assert_eq!(
        rejected, s.invalid_by_kind,
        "each invalid line is rejected for the reason it was made invalid"
    );
    assert_eq!(ids.len() as u64, s.events);
    assert_eq!(
        ids.values().map(|&c| u64::from(c - 1)).sum::<u64>(),
        s.duplicates
    );
    assert_eq!(completions, s.course_completions);
    assert!(
        s.late > 0 && s.out_of_order > 0 && s.skewed_sessions > 0 && s.extra_fields > 0,
        "{s:?}"
    );
}

#[test]
fn timestamps_carry_local_offsets_and_received_at_is_near_ts() {
    let (bytes, _, _) = generate(Config {
        users: 80,
        days: 5,
        fault_rate: 0.0,
        ..Config::default()
    });
    let text = std::str::from_utf8(&bytes).unwrap();
    assert!(text.contains("+08:00\""));
    assert!(text.contains("+05:30\"") || text.contains("+01:00\"") || text.contains("-05:00\""));
    for line in lines(&bytes) {
        let ev = parse_event(line).unwrap();
        let lag = ev.received_at_us.unwrap() - ev.ts_us;
        assert!(
            (0..=1_000_000).contains(&lag),
            "received {lag} µs after ts without faults"
        );
    }
}

// ---------------------------------------------------------------- measurements

#[derive(Debug, Default, Clone)]
struct Measures {
    /// Longest overlap (s) of two sessions on different devices (negative: none).
    overlap_s: f64,
    /// Fastest position advance per wall second while playing.
    max_rate: f64,
    /// Highest hidden share over a (lesson, UTC day) with ≥ 5 minutes of play.
    max_hidden_share: f64,
    /// Lowest (covered share − required share) over the learner's completion claims.
    min_coverage_margin: f64,
    /// Most course changes inside 10 minutes.
    max_changes_10min: usize,
    /// Seconds during which two different courses played at once.
    parallel_s: f64,
    /// A quiz under 3 s per question with a score ≥ 90 %.
    fast_quiz: bool,
    /// Most credits claimed in one UTC day.
    max_credits_day: f64,
    /// A UTC day with ≥ 10 credits whose claims the play of that day and the 6 before does not
    /// support (under 0.25 × the catalog's `duration_s × min_watch_ratio` of the claims).
    unsupported_burst: bool,
    /// Fastest travel between consecutive located events more than 50 km apart (km/h).
    max_kmh: f64,
    /// Longest stretch of unbroken visible play over ≥ 3 courses (s), as `automation` cuts them.
    unbroken_s: f64,
    /// A stretch of ≥ 240 heartbeat intervals over ≥ 2 courses varying by ≤ 2 ms.
    timer: bool,
    /// A stretch of ≥ 1.5 h over ≥ 2 courses whose heartbeats (≥ 90 %) report 0 inputs.
    no_input: bool,
    /// A session with ≥ 2 attention checks missed while the next heartbeat plays, ≥ half of them.
    missed_checks: bool,
    /// A session with ≥ 4 answered checks whose median is < 1 s, or ≥ 10 whose spread (CV) is
    /// < 0.05.
    machine_responses: bool,
}

/// `missed_checks` and `machine_responses` of [`Measures`].
fn attention(evs: &[Event<'static>]) -> (bool, bool) {
    let mut sorted: Vec<&Event<'static>> = evs.iter().collect();
    sorted.sort_by_key(|e| (e.ts_us, e.event_id.to_string()));
    sorted.dedup_by(|a, b| a.event_id == b.event_id);
    // Per session: (checks, missed while playing, response times).
    let mut days: BTreeMap<Option<String>, (u32, u32, Vec<f64>)> = BTreeMap::new();
    for (i, e) in sorted.iter().enumerate() {
        if e.event_type != EventType::AttentionCheck {
            continue;
        }
        let day = days
            .entry(e.session_id.as_deref().map(str::to_string))
            .or_default();
        day.0 += 1;
        if e.answered == Some(true) {
            day.2.extend(e.response_s);
            continue;
        }
        let next_beat = sorted[i + 1..]
            .iter()
            .find(|n| n.event_type == EventType::Heartbeat && n.session_id == e.session_id);
        if next_beat.is_some_and(|n| n.playing == Some(true) && n.ts_us - e.ts_us <= 60_000_000) {
            day.1 += 1;
        }
    }
    let missed = days
        .values()
        .any(|(n, missed, _)| *missed >= 2 && f64::from(*missed) >= 0.5 * f64::from(*n));
    let machine = days.values().any(|(_, _, times)| {
        if times.len() < 4 {
            return false;
        }
        let mut sorted_times = times.clone();
        sorted_times.sort_by(f64::total_cmp);
        let k = sorted_times.len();
        let median = if k % 2 == 1 {
            sorted_times[k / 2]
        } else {
            (sorted_times[k / 2 - 1] + sorted_times[k / 2]) / 2.0
        };
        let mean = times.iter().sum::<f64>() / k as f64;
        let var = times.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (k as f64 - 1.0);
        median < 1.0 || (k >= 10 && var.sqrt() / mean < 0.05)
    });
    (missed, machine)
}

/// `unbroken_s` and `timer` of [`Measures`]: stretches end at a pause, seek, rate change,
/// visibility change, login, logout, a heartbeat that does not play visibly, another session, or
/// a gap over 60 s.
fn stretches(evs: &[Event<'static>]) -> (f64, bool, bool) {
    let mut sorted: Vec<&Event<'static>> = evs.iter().collect();
    sorted.sort_by_key(|e| (e.ts_us, e.event_id.to_string()));
    // Producers deliver twice: one copy of each event.
    sorted.dedup_by(|a, b| a.event_id == b.event_id);
    let (mut best, mut timer, mut no_input) = (0.0f64, false, false);
    let mut run: Vec<&Event<'static>> = Vec::new();
    let mut judge = |run: &[&Event<'static>]| {
        if run.len() < 2 {
            return;
        }
        let courses: BTreeSet<&str> = run.iter().filter_map(|e| e.course_id.as_deref()).collect();
        let span = (run[run.len() - 1].ts_us - run[0].ts_us) as f64 / SEC;
        if courses.len() >= 3 {
            best = best.max(span);
        }
        let gaps: Vec<f64> = run
            .windows(2)
            .map(|w| (w[1].ts_us - w[0].ts_us) as f64 / SEC)
            .collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>()
            / (gaps.len() as f64 - 1.0).max(1.0);
        if gaps.len() >= 240 && courses.len() >= 2 && var.sqrt() <= 0.002 {
            timer = true;
        }
        let reported: Vec<i64> = run.iter().filter_map(|e| e.input_events).collect();
        if span >= 5_400.0
            && courses.len() >= 2
            && !reported.is_empty()
            && reported.len() as f64 >= 0.9 * run.len() as f64
            && reported.iter().all(|&n| n == 0)
        {
            no_input = true;
        }
    };
    for e in sorted {
        let breaks = matches!(
            e.event_type,
            EventType::VideoPause
                | EventType::VideoSeek
                | EventType::VideoRate
                | EventType::Visibility
                | EventType::Login
                | EventType::Logout
        );
        let plays = e.event_type == EventType::Heartbeat
            && e.playing == Some(true)
            && e.visible == Some(true);
        if !breaks && !plays {
            continue;
        }
        let continues = plays
            && run.last().is_some_and(|p| {
                p.session_id == e.session_id && e.ts_us - p.ts_us <= 60 * 1_000_000
            });
        if !continues {
            judge(&run);
            run.clear();
        }
        if plays {
            run.push(e);
        }
    }
    judge(&run);
    (best, timer, no_input)
}

fn km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (p1, p2) = (a.0.to_radians(), b.0.to_radians());
    let dp = (b.0 - a.0).to_radians();
    let dl = (b.1 - a.1).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().asin()
}

fn measure(evs: &[Event<'static>], catalog: &Catalog) -> Measures {
    let mut m = Measures {
        overlap_s: f64::NEG_INFINITY,
        min_coverage_margin: f64::INFINITY,
        ..Measures::default()
    };
    // Sessions: device and ts span.
    let mut sessions: BTreeMap<&str, (Option<&str>, i64, i64)> = BTreeMap::new();
    for e in evs {
        if let Some(s) = &e.session_id {
            let entry = sessions
                .entry(s)
                .or_insert((e.device_id.as_deref(), e.ts_us, e.ts_us));
            entry.1 = entry.1.min(e.ts_us);
            entry.2 = entry.2.max(e.ts_us);
        }
    }
    let list: Vec<_> = sessions.values().collect();
    for i in 0..list.len() {
        for j in i + 1..list.len() {
            if list[i].0 != list[j].0 {
                let o = list[i].2.min(list[j].2) - list[i].1.max(list[j].1);
                m.overlap_s = m.overlap_s.max(o as f64 / SEC);
            }
        }
    }
    // Per session: the player state machine, intervals of play.
    let mut by_session: BTreeMap<&str, Vec<&Event<'static>>> = BTreeMap::new();
    for e in evs {
        if let Some(s) = &e.session_id {
            by_session.entry(s).or_default().push(e);
        }
    }
    let mut play: HashMap<(String, i64), (f64, f64)> = HashMap::new(); // (lesson, day) → (play, hidden)
    let mut covered: HashMap<String, Vec<(f64, f64)>> = HashMap::new(); // lesson → ranges
    let mut intervals: Vec<(i64, i64, String)> = Vec::new(); // playing (start, end, course)
    for evs in by_session.values() {
        let mut playing: HashMap<&str, (i64, f64)> = HashMap::new(); // lesson → (ts, pos) while playing
        let mut visible = true;
        for e in evs {
            if e.event_type == EventType::Visibility {
                visible = e.visible.unwrap();
            }
            let (Some(lesson), Some(course)) = (e.lesson_id.as_deref(), e.course_id.as_deref())
            else {
                continue;
            };
            let pos = match e.event_type {
                EventType::VideoSeek => {
                    if let Some(p) = playing.get_mut(lesson) {
                        *p = (e.ts_us, e.seek_to_s.unwrap());
                    }
                    continue;
                }
                _ => e.position_s,
            };
            let Some(pos) = pos else { continue };
            if e.event_type == EventType::Heartbeat {
                visible = e.visible.unwrap();
            }
            if let Some(&(t0, p0)) = playing.get(lesson) {
                let dt = (e.ts_us - t0) as f64 / SEC;
                if dt > 0.0 && dt <= 60.0 {
                    m.max_rate = m.max_rate.max((pos - p0) / dt);
                    let day = t0.div_euclid(86_400_000_000);
                    let entry = play.entry((lesson.to_string(), day)).or_default();
                    entry.0 += dt;
                    // The hidden state applies from the event that started the interval: the
                    // heartbeat's own flag, or a visibility change in between (approximated by
                    // the state at the end of the interval).
                    if !visible {
                        entry.1 += dt;
                    }
                    // Only content played at a plausible speed (≤ 2× with the detectors' 5 %
                    // tolerance) is covered: a position moved faster was not watched.
                    if pos >= p0 && (pos - p0) / dt <= 2.0 * 1.05 {
                        covered
                            .entry(lesson.to_string())
                            .or_default()
                            .push((p0, pos));
                    }
                    intervals.push((t0, e.ts_us, course.to_string()));
                }
            }
            let now_playing = match e.event_type {
                EventType::Heartbeat => e.playing.unwrap(),
                EventType::VideoPlay => true,
                _ => false,
            };
            if now_playing {
                playing.insert(lesson, (e.ts_us, pos));
            } else {
                playing.remove(lesson);
            }
        }
    }
    for &(p, h) in play.values() {
        if p >= 300.0 {
            m.max_hidden_share = m.max_hidden_share.max(h / p);
        }
    }
    // Coverage of each claimed course: union of played ranges per lesson over its whole history.
    for e in evs
        .iter()
        .filter(|e| e.event_type == EventType::CourseComplete)
    {
        let course = catalog.get(e.course_id.as_deref().unwrap()).unwrap();
        if course.is_classroom() {
            continue;
        }
        let mut total = 0.0;
        for id in &course.lesson_ids {
            let mut r = covered.get(id).cloned().unwrap_or_default();
            r.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let (mut lo, mut hi) = (f64::NAN, f64::NAN);
            for (a, b) in r {
                if hi.is_nan() || a > hi {
                    if !hi.is_nan() {
                        total += hi - lo;
                    }
                    (lo, hi) = (a, b);
                } else {
                    hi = hi.max(b);
                }
            }
            if !hi.is_nan() {
                total += hi - lo;
            }
        }
        let share = total / f64::from(course.duration_s);
        m.min_coverage_margin = m.min_coverage_margin.min(share - course.min_watch_ratio);
    }
    // Course changes within 10 minutes, over every session event that names a course.
    let seq: Vec<(i64, &str)> = evs
        .iter()
        .filter(|e| e.session_id.is_some())
        .filter_map(|e| Some((e.ts_us, e.course_id.as_deref()?)))
        .collect();
    let changes: Vec<i64> = seq
        .windows(2)
        .filter(|w| w[0].1 != w[1].1)
        .map(|w| w[1].0)
        .collect();
    let mut j = 0;
    for i in 0..changes.len() {
        while changes[i] - changes[j] > 600_000_000 {
            j += 1;
        }
        m.max_changes_10min = m.max_changes_10min.max(i - j + 1);
    }
    // Two courses playing at once.
    intervals.sort();
    for i in 0..intervals.len() {
        for k in i + 1..intervals.len() {
            if intervals[k].0 >= intervals[i].1 {
                break;
            }
            if intervals[k].2 != intervals[i].2 {
                m.parallel_s += (intervals[i].1.min(intervals[k].1) - intervals[k].0) as f64 / SEC;
            }
        }
    }
    let mut credits: HashMap<i64, f64> = HashMap::new();
    let mut required: HashMap<i64, f64> = HashMap::new();
    for e in evs {
        match e.event_type {
            EventType::QuizSubmit => {
                let spq = e.elapsed_s.unwrap() / e.questions.unwrap() as f64;
                if spq < 3.0 && e.score.unwrap() / e.max_score.unwrap() >= 0.9 {
                    m.fast_quiz = true;
                }
            }
            EventType::CourseComplete => {
                let day = e.ts_us.div_euclid(86_400_000_000);
                *credits.entry(day).or_default() += e.credits.unwrap();
                let course = catalog.get(e.course_id.as_deref().unwrap()).unwrap();
                *required.entry(day).or_default() +=
                    f64::from(course.duration_s) * course.min_watch_ratio;
            }
            _ => {}
        }
    }
    m.max_credits_day = credits.values().copied().fold(0.0, f64::max);
    let mut played: HashMap<i64, f64> = HashMap::new();
    for ((_, day), (p, _)) in &play {
        *played.entry(*day).or_default() += p;
    }
    m.unsupported_burst = credits.iter().any(|(day, &c)| {
        let support: f64 = (day - 6..=*day).filter_map(|d| played.get(&d)).sum();
        c >= 10.0 && support < 0.25 * required[day]
    });
    let located: Vec<(i64, (f64, f64))> = evs
        .iter()
        .filter_map(|e| Some((e.ts_us, (e.geo_lat?, e.geo_lon?))))
        .collect();
    for w in located.windows(2) {
        let d = km(w[0].1, w[1].1);
        if d > 50.0 {
            let h = (w[1].0 - w[0].0) as f64 / 3.6e9;
            m.max_kmh = m.max_kmh.max(if h > 0.0 { d / h } else { f64::INFINITY });
        }
    }
    (m.unbroken_s, m.timer, m.no_input) = stretches(evs);
    (m.missed_checks, m.machine_responses) = attention(evs);
    m
}

/// Accounts per (device, UTC day) from logins and check-ins.
fn accounts_per_device_day(
    by_user: &BTreeMap<String, Vec<Event<'static>>>,
) -> HashMap<(String, i64), BTreeSet<String>> {
    let mut map: HashMap<(String, i64), BTreeSet<String>> = HashMap::new();
    for evs in by_user.values() {
        for e in evs {
            if matches!(e.event_type, EventType::Login | EventType::Checkin) {
                if let Some(d) = &e.device_id {
                    map.entry((d.to_string(), e.ts_us.div_euclid(86_400_000_000)))
                        .or_default()
                        .insert(e.user_id.to_string());
                }
            }
        }
    }
    map
}

/// The learners `proxy_learning.borrowed_device` would flag (with its defaults, over the whole
/// period): ≥ 600 s of play in a business day on a device that another account used on ≥ 3 days and the
/// learner on that day only, not on the learner's own household address, not a known shared
/// device.
fn borrowed_users(
    by_user: &BTreeMap<String, Vec<Event<'static>>>,
    shared: &BTreeSet<String>,
) -> BTreeSet<String> {
    let uses = |e: &Event<'_>| {
        matches!(
            e.event_type,
            EventType::Login
                | EventType::Heartbeat
                | EventType::VideoPlay
                | EventType::CourseEnter
                | EventType::QuizSubmit
        )
    };
    // device → user → days; user → (device, address) pairs; address → users.
    let mut days: BTreeMap<&str, BTreeMap<&str, BTreeSet<i64>>> = BTreeMap::new();
    let mut addresses: BTreeMap<&str, BTreeSet<(&str, &str)>> = BTreeMap::new();
    let mut address_users: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (user, evs) in by_user {
        for e in evs.iter().filter(|e| uses(e)) {
            let Some(device) = e.device_id.as_deref() else {
                continue;
            };
            if shared.contains(device) {
                continue;
            }
            days.entry(device)
                .or_default()
                .entry(user)
                .or_default()
                .insert(business_day(e.ts_us));
            if let Some(ip) = e.ip.as_deref() {
                addresses.entry(user).or_default().insert((device, ip));
                address_users.entry(ip).or_default().insert(user);
            }
        }
    }
    let mut out = BTreeSet::new();
    for (user, evs) in by_user {
        // Play seconds per (device, day, address), heartbeat intervals capped at 60 s.
        let mut play: BTreeMap<(&str, i64, &str), f64> = BTreeMap::new();
        for pair in evs.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            if a.event_type == EventType::Heartbeat
                && a.playing == Some(true)
                && a.session_id == b.session_id
                && a.device_id == b.device_id
            {
                if let (Some(device), Some(ip)) = (a.device_id.as_deref(), a.ip.as_deref()) {
                    let gap = ((b.ts_us - a.ts_us) as f64 / SEC).min(60.0);
                    *play.entry((device, business_day(a.ts_us), ip)).or_default() += gap;
                }
            }
        }
        for ((device, _, ip), seconds) in play {
            let Some(on_device) = days.get(device) else {
                continue;
            };
            let (owner, owner_days) = on_device
                .iter()
                .map(|(u, d)| (*u, d.len()))
                .max_by_key(|(u, n)| (*n, std::cmp::Reverse(*u)))
                .unwrap();
            let own_days = on_device.get(user.as_str()).map_or(0, BTreeSet::len);
            let home = at_home(&addresses, &address_users, user, device, ip);
            if seconds >= 600.0 && owner != user && owner_days >= 3 && own_days <= 1 && !home {
                out.insert(user.clone());
            }
        }
    }
    out
}

/// The business day `proxy_learning` counts in by default: Asia/Shanghai from 05:00, i.e. from
/// 21:00 UTC.
fn business_day(ts_us: i64) -> i64 {
    const DAY: i64 = 86_400_000_000;
    (ts_us + 3 * 3_600_000_000).div_euclid(DAY)
}

/// Whether `ip` is an address of `user`'s household as `proxy_learning` sees it: the user also
/// uses it from a device other than `device`, and at most 3 accounts use it.
fn at_home(
    addresses: &BTreeMap<&str, BTreeSet<(&str, &str)>>,
    address_users: &BTreeMap<&str, BTreeSet<&str>>,
    user: &str,
    device: &str,
    ip: &str,
) -> bool {
    addresses
        .get(user)
        .is_some_and(|pairs| pairs.iter().any(|(d, a)| *a == ip && *d != device))
        && address_users.get(ip).is_some_and(|u| u.len() <= 3)
}

/// The learners `proxy_learning.alternating_accounts` would flag (with its defaults, over the
/// whole period): on ≥ 2 business days a device (not a known shared one, not on the learner's
/// household address) changes hands between the learner and one other account ≥ 2 times
/// between sessions, and the learner is not the account with the most days on it. Without
/// `exempt_home`, days on the household's address count too.
fn alternating_users(
    by_user: &BTreeMap<String, Vec<Event<'static>>>,
    shared: &BTreeSet<String>,
    exempt_home: bool,
) -> BTreeSet<String> {
    // (device, day) → session → (first use, user); device → user → days; the addresses.
    let mut sessions: BTreeMap<(&str, i64), BTreeMap<&str, (i64, &str)>> = BTreeMap::new();
    let mut days: BTreeMap<&str, BTreeMap<&str, BTreeSet<i64>>> = BTreeMap::new();
    let mut ips: BTreeMap<(&str, i64, &str), BTreeSet<&str>> = BTreeMap::new();
    let mut addresses: BTreeMap<&str, BTreeSet<(&str, &str)>> = BTreeMap::new();
    let mut address_users: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (user, evs) in by_user {
        for e in evs {
            let used = matches!(
                e.event_type,
                EventType::Login
                    | EventType::Heartbeat
                    | EventType::VideoPlay
                    | EventType::CourseEnter
                    | EventType::QuizSubmit
            );
            let (Some(device), Some(session)) = (e.device_id.as_deref(), e.session_id.as_deref())
            else {
                continue;
            };
            if !used || shared.contains(device) {
                continue;
            }
            let day = business_day(e.ts_us);
            let first = sessions
                .entry((device, day))
                .or_default()
                .entry(session)
                .or_insert((e.ts_us, user));
            first.0 = first.0.min(e.ts_us);
            days.entry(device)
                .or_default()
                .entry(user)
                .or_default()
                .insert(day);
            if let Some(ip) = e.ip.as_deref() {
                ips.entry((device, day, user)).or_default().insert(ip);
                addresses.entry(user).or_default().insert((device, ip));
                address_users.entry(ip).or_default().insert(user);
            }
        }
    }
    let home = |device: &str, day: i64, user: &str| {
        ips.get(&(device, day, user)).is_some_and(|a| {
            a.iter()
                .any(|ip| at_home(&addresses, &address_users, user, device, ip))
        })
    };
    let mut alternating: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for ((device, day), day_sessions) in &sessions {
        let mut order: Vec<(i64, &str)> = day_sessions.values().copied().collect();
        order.sort();
        let accounts: BTreeSet<&str> = order.iter().map(|(_, u)| *u).collect();
        let switches = order.windows(2).filter(|w| w[0].1 != w[1].1).count();
        if accounts.len() == 2 && switches >= 2 {
            for u in accounts
                .into_iter()
                .filter(|u| !(exempt_home && home(device, *day, u)))
            {
                *alternating.entry((device, u)).or_default() += 1;
            }
        }
    }
    let mut out = BTreeSet::new();
    for ((device, user), n) in alternating {
        let owner = days[device]
            .iter()
            .map(|(u, d)| (d.len(), std::cmp::Reverse(*u)))
            .max()
            .map(|(_, u)| u.0)
            .unwrap();
        if n >= 2 && owner != user {
            out.insert(user.to_string());
        }
    }
    out
}

/// Which rules a learner's measurements cross, by the DESIGN defaults.
fn crossed(m: &Measures, shared: bool, borrowed: bool, alternating: bool) -> BTreeSet<Pattern> {
    let mut s = BTreeSet::new();
    let mut add = |p, yes| {
        if yes {
            s.insert(p);
        }
    };
    add(Pattern::BackgroundPlayback, m.max_hidden_share >= 0.8);
    add(Pattern::Speed, m.max_rate > 2.0 + 1e-9);
    add(Pattern::LowCoverage, m.min_coverage_margin < 0.0);
    add(Pattern::ConcurrentSessions, m.overlap_s >= 60.0);
    add(Pattern::ImpossibleTravel, m.max_kmh > 900.0);
    add(Pattern::RapidSwitching, m.max_changes_10min >= 6);
    add(Pattern::ParallelPlayback, m.parallel_s > 0.0);
    add(Pattern::CreditBurst, m.unsupported_burst);
    add(Pattern::QuizTooFast, m.fast_quiz);
    add(Pattern::SharedDevice, shared);
    add(Pattern::ScriptedPlayback, m.unbroken_s >= 10_800.0);
    add(Pattern::TimerCadence, m.timer);
    add(Pattern::NoInput, m.no_input);
    add(Pattern::MissedChecks, m.missed_checks);
    add(Pattern::MachineResponses, m.machine_responses);
    add(Pattern::ProxyLearning, borrowed);
    add(Pattern::ProxyAlternating, alternating);
    s
}

#[test]
fn every_pattern_is_present_labelled_and_crosses_its_threshold_and_honest_learners_cross_none() {
    let cfg = population();
    let (bytes, labels, catalog) = generate(cfg);
    let by_user = events_by_user(&bytes);
    let devices = accounts_per_device_day(&by_user);
    let known_shared: BTreeSet<String> = Generator::new(population())
        .unwrap()
        .shared_devices()
        .into_iter()
        .collect();
    let borrowed = borrowed_users(&by_user, &known_shared);
    let alternating = alternating_users(&by_user, &known_shared, true);
    // The honest look-alike of `proxy_alternating`: households handing the family tablet back
    // and forth in an evening, which only their address tells from a proxy.
    let households: BTreeSet<String> = alternating_users(&by_user, &known_shared, false)
        .difference(&alternating)
        .cloned()
        .collect();
    assert!(
        households.len() >= 3,
        "{} household members change hands like a proxy",
        households.len()
    );
    let mut shared_users = BTreeSet::new();
    for users in devices.values().filter(|u| u.len() >= 3) {
        shared_users.extend(users.iter().cloned());
    }
    // The honest look-alike: two colleagues on one training-room PC on the same day.
    assert!(
        devices.values().any(|u| u.len() == 2),
        "no device shared by two accounts"
    );
    let mut seen: BTreeMap<(Pattern, String), usize> = BTreeMap::new();
    let mut cross_triggers = Vec::new();
    let mut honest = 0;
    // Honest catch-up days: ≥ 10 credits in a day, watched (the credit_burst look-alike).
    let mut caught_up = 0;
    for learner in &labels.learners {
        let evs = by_user
            .get(&learner.user_id)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let m = measure(evs, &catalog);
        let got = crossed(
            &m,
            shared_users.contains(&learner.user_id),
            borrowed.contains(&learner.user_id),
            alternating.contains(&learner.user_id),
        );
        if learner.honest {
            honest += 1;
            caught_up += usize::from(m.max_credits_day >= 10.0);
            assert!(
                got.is_empty(),
                "honest {} crosses {got:?}: {m:?}",
                learner.user_id
            );
            assert!(learner.labels.is_empty());
            continue;
        }
        let rules: BTreeSet<Pattern> = learner
            .labels
            .iter()
            .map(|l| Pattern::parse(&l.rule).unwrap())
            .collect();
        for l in &learner.labels {
            let p = Pattern::parse(&l.rule).unwrap();
            *seen
                .entry((p, l.strength.as_str().to_string()))
                .or_default() += 1;
            assert!(
                got.contains(&p),
                "{} labelled {} ({:?}, {}) does not cross it: {m:?}",
                learner.user_id,
                l.rule,
                l.strength,
                l.detail
            );
            assert!(
                !l.claims.is_empty(),
                "{}: a cheat taints at least one claim",
                learner.user_id
            );
            for c in &l.claims {
                assert!(
                    evs.iter().any(|e| e.event_type == EventType::CourseComplete
                        && e.course_id.as_deref() == Some(c.as_str())),
                    "{} has no completion for tainted course {c}",
                    learner.user_id
                );
            }
        }
        for extra in got.difference(&rules) {
            cross_triggers.push(format!(
                "{} {:?} also crosses {:?}",
                learner.user_id, rules, extra
            ));
        }
    }
    assert!(honest > 250);
    assert!(caught_up >= 5, "{caught_up} honest catch-up days");
    for p in Pattern::ALL {
        for s in ["blatant", "subtle"] {
            assert!(
                seen.contains_key(&(p, s.to_string())),
                "no {s} {p:?} in the population: {seen:?}"
            );
        }
    }
    // Only parallel playback may also look like switching (two players interleave their course
    // ids), and an evening of scripted playback or of a browser extension handling the
    // attention checks can claim ≥ 10 credits in a day (which the watching behind it supports,
    // so `credit_burst` rightly leaves it alone); every other pattern is
    // planted so that it crosses its own rule alone.
    let unexpected: Vec<&String> = cross_triggers
        .iter()
        .filter(|c| !c.contains("{ParallelPlayback} also crosses RapidSwitching"))
        .filter(|c| {
            let watched_evening = [
                "ScriptedPlayback",
                "NoInput",
                "MissedChecks",
                "MachineResponses",
            ];
            !(watched_evening.iter().any(|p| c.contains(p))
                && c.ends_with("also crosses CreditBurst"))
        })
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:#?}");
}

#[test]
fn strengths_follow_the_setting() {
    let base = Config {
        users: 200,
        days: 6,
        fault_rate: 0.0,
        ..Config::default()
    }
    .with_share_each(0.04);
    for (mix, want) in [
        (StrengthMix::Blatant, "blatant"),
        (StrengthMix::Subtle, "subtle"),
    ] {
        let (_, labels, _) = generate(Config {
            strength: mix,
            ..base.clone()
        });
        let all: Vec<&str> = labels
            .learners
            .iter()
            .flat_map(|l| &l.labels)
            .map(|l| l.strength.as_str())
            .collect();
        assert!(!all.is_empty());
        assert!(all.iter().all(|&s| s == want), "{mix:?}: {all:?}");
    }
}

#[test]
fn labels_round_trip_through_a_file() {
    let (_, labels, catalog) = generate(Config {
        users: 40,
        days: 5,
        ..Config::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("labels.json");
    labels.write(&path).unwrap();
    assert_eq!(Labels::read(&path).unwrap(), labels);
    let mut csv = Vec::new();
    catalog.write_csv(&mut csv).unwrap();
    let text = String::from_utf8(csv).unwrap();
    assert!(text
        .starts_with("course_id,title,category,credits,duration_s,min_watch_ratio,topic,quiz\n"));
    assert_eq!(text.lines().count(), catalog.courses.len() + 1);
    assert!(text.lines().skip(1).all(|l| l.split(',').count() == 8));
}

/// The committed sample is what its labels' settings generate today, and is valid except its
/// counted invalid lines. Regenerate it with the command in `sample-data/README.md` when the
/// generator changes on purpose.
#[test]
fn committed_sample_is_current() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sample-data");
    let (telemetry, labels_path) = (dir.join("telemetry.ndjson.zst"), dir.join("labels.json"));
    if !telemetry.exists() || !labels_path.exists() {
        eprintln!("skipped: no sample in {}", dir.display());
        return;
    }
    let committed = creditguard_synth::read_ndjson(&telemetry).unwrap();
    let labels = Labels::read(&labels_path).unwrap();
    let (fresh, fresh_labels, catalog) = generate(labels.config.clone());
    assert!(
        committed == fresh,
        "sample-data/ is stale: regenerate it (sample-data/README.md)"
    );
    assert_eq!(fresh_labels, labels);
    let invalid = lines(&committed)
        .filter(|l| parse_event(l).is_err())
        .count() as u64;
    assert_eq!(invalid, labels.summary.invalid_lines);
    let mut csv = Vec::new();
    catalog.write_csv(&mut csv).unwrap();
    assert_eq!(std::fs::read(dir.join("catalog.csv")).unwrap(), csv);
}

#[test]
fn the_roster_agrees_with_the_telemetry() {
    let cfg = population();
    let gen = Generator::new(cfg.clone()).unwrap();
    let mut out = Vec::new();
    let labels = gen.write(&mut out).unwrap();
    let roster = gen.roster();
    assert_eq!(roster, gen.roster(), "the roster is deterministic");
    let by_user = events_by_user(&out);
    let (start, end) = (cfg.start_day, cfg.start_day + i64::from(cfg.days) - 1);
    let employees: HashMap<&str, &creditguard_synth::Employee> = roster
        .employees
        .iter()
        .map(|e| (e.user_id.as_str(), e))
        .collect();
    assert_eq!(
        employees.len(),
        roster.employees.len(),
        "user ids are unique"
    );
    for l in &labels.learners {
        let e = employees[l.user_id.as_str()];
        // The roster's path ends in the org unit telemetry names, so nobody is reported.
        assert!(
            e.org_path.ends_with(&format!("/{}", l.org_unit)),
            "{} in {} but telemetry says {}",
            l.user_id,
            e.org_path,
            l.org_unit
        );
        assert!(!e.inactive);
        assert!(
            e.hired_on < start && e.left_on.is_none_or(|d| d > end),
            "{e:?}"
        );
    }
    let inactive: Vec<&str> = roster
        .employees
        .iter()
        .filter(|e| e.inactive)
        .map(|e| e.user_id.as_str())
        .collect();
    assert!(!inactive.is_empty());
    assert!(
        inactive.iter().all(|u| !by_user.contains_key(*u)),
        "{inactive:?}"
    );
    let roles: BTreeSet<&str> = roster.employees.iter().map(|e| e.role).collect();
    assert_eq!(roles, BTreeSet::from(["manager", "sales", "staff"]));
    // Travel is the honest business trips: the learner's events of those days are away from home.
    let travel: Vec<_> = roster
        .absences
        .iter()
        .filter(|a| a.kind == "travel")
        .collect();
    assert!(!travel.is_empty());
    for a in &roster.absences {
        assert!(employees.contains_key(a.user_id.as_str()) && a.from <= a.to);
        if a.kind == "leave" {
            assert!(a.to < start, "leave never overlaps the telemetry: {a:?}");
        } else {
            assert!(a.from >= start && a.to <= end, "{a:?}");
        }
    }
    let (mut r, mut l) = (Vec::new(), Vec::new());
    roster.write_csv(&mut r, &mut l).unwrap();
    let r = String::from_utf8(r).unwrap();
    assert!(r.starts_with("user_id,org_path,role,level,hired_on,left_on\n"));
    assert_eq!(r.lines().count(), roster.employees.len() + 1);
    assert!(String::from_utf8(l)
        .unwrap()
        .starts_with("user_id,kind,from,to\n"));
}
