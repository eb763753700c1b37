//! Detection-job benchmark (an example of `creditguard-detect`, so it builds with that crate: `cargo build --release --workspace --all-targets && target/release/examples/jobs_bench EVENTS DAYS`).
//!
//! Detection-job throughput: the detection jobs (all eight by default) over a lake of generated
//! events.
//!
//! `target/release/examples/jobs_bench [EVENTS] [DAYS]` (default 1 000 000 events over 30 days;
//! `CG_BENCH_BATCH_DAYS` sets `[jobs] batch_days`, default 7; `CG_BENCH_RELEASE_ABOVE_MIB` sets
//! `[jobs] release_memory_above_mib`; `CG_BENCH_PARALLEL_JOBS=0` sets `[jobs] parallel_jobs =
//! false`; `CG_BENCH_JOBS=watch_time,multi_login,…` sets `[jobs]
//! enabled`, the jobs to run; `CG_BENCH_LAKE=s3://…` runs the jobs on that lake, see
//! `on_object_store`). The lake is generated once into
//! `target/bench-lake-<EVENTS>-<DAYS>/` (kept, so `benches/jobs_duckdb.py` can run the same
//! computations in DuckDB on the same Parquet) and the jobs' output goes there too.
//!
//! Prints, per job, the wall time and events/s (events of the range divided by the job's own
//! compute time; reading, de-duplicating and writing are shown separately), and the process's
//! peak RSS (VmHWM). Population: ~28 events per active learner-day (login, navigation, play,
//! heartbeats every 20 s, pause, quizzes, completions, check-ins), 1 % of events delivered twice,
//! and a few learners of each cheating pattern so every rule has work to do.

use creditguard_contract::time::DayRange;
use std::path::{Path, PathBuf};
use std::time::Instant;

use creditguard_contract::{
    events_schema, Category, CheckinMethod, Event, EventBatchBuilder, EventType, Platform,
};
use creditguard_detect::{run_jobs, Catalog, Course, JobsConfig};
use creditguard_lake::Lake;

// As the `creditguard` binary does.
creditguard_alloc::use_jemalloc!();

use creditguard_contract::time::DAY_US;
const START_DAY: i64 = 20_483; // 2026-01-30
const COURSES: usize = 40;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

fn catalog() -> Catalog {
    Catalog::from_courses((0..COURSES).map(|c| Course {
        course_id: format!("course-{c:03}"),
        title: format!("Course {c}"),
        category: ["mandatory", "elective", "practice"][c % 3].to_string(),
        credits: (1 + c % 4) as f64,
        duration_s: 1200.0 + (c % 5) as f64 * 600.0,
        min_watch_ratio: 0.8,
    }))
}

const CITIES: [(f64, f64); 6] = [
    (39.9, 116.4),
    (31.2, 121.5),
    (23.1, 113.3),
    (30.6, 104.1),
    (22.5, 114.1),
    (34.3, 108.9),
];

/// Cheating patterns, by user index modulo 100 (so ~1 % of learners each).
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Honest,
    Background,
    Speed,
    Concurrent,
    Travel,
    Switching,
    Parallel,
    Burst,
    Quiz,
}

fn kind(u: u64) -> Kind {
    match u % 100 {
        1 => Kind::Background,
        2 => Kind::Speed,
        3 => Kind::Concurrent,
        4 => Kind::Travel,
        5 => Kind::Switching,
        6 => Kind::Parallel,
        7 => Kind::Burst,
        8 => Kind::Quiz,
        _ => Kind::Honest,
    }
}

struct Day<'a> {
    b: &'a mut EventBatchBuilder,
    rng: Rng,
    seq: u64,
    rows: u64,
}

impl Day<'_> {
    #[allow(clippy::too_many_arguments)]
    fn push(&mut self, mut e: Event<'static>) {
        self.seq += 1;
        e.event_id = format!("ev-{:x}-{}", e.ts_us, self.seq).into();
        self.b.push(&e, "bench", self.seq as i64);
        self.rows += 1;
        if self.rng.chance(0.01) {
            self.b.push(&e, "bench-redelivery", self.seq as i64);
            self.rows += 1;
        }
    }
}

fn base(
    t: EventType,
    ts: i64,
    u: u64,
    session: &str,
    device: &str,
    ip: &str,
    geo: (f64, f64),
) -> Event<'static> {
    Event {
        event_id: "".into(),
        event_type: t,
        ts_us: ts,
        received_at_us: Some(ts + 150_000),
        user_id: format!("emp-{u:06}").into(),
        org_unit: Some(format!("branch-{:03}", u % 97).into()),
        session_id: Some(session.to_string().into()),
        device_id: Some(device.to_string().into()),
        ip: Some(ip.to_string().into()),
        geo_lat: Some(geo.0),
        geo_lon: Some(geo.1),
        platform: Some(Platform::Web),
        course_id: None,
        lesson_id: None,
        position_s: None,
        duration_s: None,
        playing: None,
        visible: None,
        muted: None,
        rate: None,
        seek_from_s: None,
        seek_to_s: None,
        quiz_id: None,
        score: None,
        max_score: None,
        questions: None,
        elapsed_s: None,
        credits: None,
        category: None,
        method: None,
        prompt_id: None,
        answered: None,
        response_s: None,
        correct: None,
        input_events: None,
    }
}

/// One learning session: login, enter, play with heartbeats, pause, maybe quiz and completion.
#[allow(clippy::too_many_arguments)]
fn session(
    day: &mut Day<'_>,
    u: u64,
    k: Kind,
    t0: i64,
    sid: &str,
    dev: &str,
    ip: &str,
    geo: (f64, f64),
    course: usize,
    beats: u32,
) -> i64 {
    let c = format!("course-{course:03}");
    let l = format!("lesson-{}", day.rng.below(4));
    let rate = match k {
        Kind::Speed => 4.0,
        _ if day.rng.chance(0.2) => 1.5,
        _ => 1.0,
    };
    let hidden = k == Kind::Background;
    let mut t = t0;
    day.push(base(EventType::Login, t, u, sid, dev, ip, geo));
    t += 3_000_000;
    let mut e = base(EventType::CourseEnter, t, u, sid, dev, ip, geo);
    e.course_id = Some(c.clone().into());
    day.push(e);
    t += 2_000_000;
    let media = |t: EventType, ts: i64, pos: f64| {
        let mut e = base(t, ts, u, sid, dev, ip, geo);
        e.course_id = Some(c.clone().into());
        e.lesson_id = Some(l.clone().into());
        e.position_s = Some(pos);
        e.duration_s = Some(900.0);
        e
    };
    day.push(media(EventType::VideoPlay, t, 0.0));
    let t_play = t;
    for i in 1..=beats {
        t = t_play + i as i64 * 20_000_000;
        let mut e = media(EventType::Heartbeat, t, i as f64 * 20.0 * rate);
        e.duration_s = None;
        e.playing = Some(true);
        e.visible = Some(!hidden && !day.rng.chance(0.03));
        e.rate = Some(if k == Kind::Speed { 1.0 } else { rate });
        day.push(e);
    }
    t += 5_000_000;
    day.push(media(
        EventType::VideoPause,
        t,
        beats as f64 * 20.0 * rate + 5.0,
    ));
    if day.rng.chance(0.15) || k == Kind::Quiz {
        t += 30_000_000;
        let mut e = base(EventType::QuizSubmit, t, u, sid, dev, ip, geo);
        e.course_id = Some(c.clone().into());
        e.quiz_id = Some(format!("quiz-{course}").into());
        e.questions = Some(10);
        e.elapsed_s = Some(if k == Kind::Quiz {
            12.0
        } else {
            60.0 + day.rng.below(240) as f64
        });
        e.max_score = Some(100.0);
        e.score = Some(60.0 + day.rng.below(41) as f64);
        day.push(e);
    }
    if day.rng.chance(0.12) {
        t += 10_000_000;
        let mut e = base(EventType::CourseComplete, t, u, sid, dev, ip, geo);
        e.session_id = None;
        e.course_id = Some(c.clone().into());
        e.credits = Some((1 + course % 4) as f64);
        e.category = Some(Category::Elective);
        day.push(e);
    }
    t += 3_000_000;
    day.push(base(EventType::Logout, t, u, sid, dev, ip, geo));
    t
}

fn generate(lake: &Lake, events: u64, days: u32) -> u64 {
    let per_active_day = 28.0;
    let users = ((events as f64 / (days as f64 * 0.6 * per_active_day)).ceil() as u64).max(10);
    let mut total = 0;
    for d in 0..days as i64 {
        let day_no = START_DAY + d;
        let mut b = EventBatchBuilder::new();
        let mut day = Day {
            b: &mut b,
            rng: Rng(0x5eed ^ (day_no as u64) << 20),
            seq: 0,
            rows: 0,
        };
        for u in 0..users {
            if !day.rng.chance(0.6) {
                continue;
            }
            let k = kind(u);
            let city = CITIES[(u % CITIES.len() as u64) as usize];
            let ip = format!("10.{}.{}.{}", u % 250, (u / 250) % 250, 1 + u % 7);
            let dev = format!("dev-{u}-a");
            let t0 = day_no * DAY_US
                + (1 + day.rng.below(20)) as i64 * 3_600_000_000
                + day.rng.below(3_000_000_000) as i64;
            let course = day.rng.below(COURSES as u64) as usize;
            let sid = format!("s-{u}-{d}-a");
            let end = session(&mut day, u, k, t0, &sid, &dev, &ip, city, course, 22);
            match k {
                Kind::Concurrent => {
                    // A colleague's PC elsewhere, during the session.
                    let ip2 = format!("192.0.2.{}", 1 + u % 250);
                    session(
                        &mut day,
                        u,
                        Kind::Honest,
                        t0 + 60_000_000,
                        &format!("s-{u}-{d}-b"),
                        &format!("dev-{u}-x"),
                        &ip2,
                        city,
                        course,
                        18,
                    );
                }
                Kind::Travel => {
                    let far = CITIES[((u + 3) % CITIES.len() as u64) as usize];
                    session(
                        &mut day,
                        u,
                        Kind::Honest,
                        end + 600_000_000,
                        &format!("s-{u}-{d}-b"),
                        &format!("dev-{u}-b"),
                        &ip,
                        far,
                        course,
                        5,
                    );
                }
                Kind::Parallel => {
                    session(
                        &mut day,
                        u,
                        Kind::Honest,
                        t0 + 20_000_000,
                        &format!("s-{u}-{d}-a"),
                        &dev,
                        &ip,
                        city,
                        (course + 1) % COURSES,
                        20,
                    );
                }
                Kind::Switching => {
                    for i in 0..12 {
                        let mut e = base(
                            EventType::CourseEnter,
                            end + 60_000_000 + i * 30_000_000,
                            u,
                            &sid,
                            &dev,
                            &ip,
                            city,
                        );
                        e.course_id = Some(
                            format!("course-{:03}", (course + i as usize % 3) % COURSES).into(),
                        );
                        day.push(e);
                    }
                }
                Kind::Burst if d % 7 == 6 => {
                    for i in 0..8 {
                        let mut e = base(
                            EventType::CourseComplete,
                            end + 60_000_000 + i * 60_000_000,
                            u,
                            &sid,
                            &dev,
                            &ip,
                            city,
                        );
                        e.session_id = None;
                        e.course_id =
                            Some(format!("course-{:03}", (course + i as usize) % COURSES).into());
                        e.credits = Some(3.0);
                        e.category = Some(Category::Elective);
                        day.push(e);
                    }
                }
                _ => {}
            }
            // Classroom check-ins: a quarter of learners; every 50th classroom phone signs in a team.
            if day.rng.chance(0.05) {
                let team_phone = u % 50 == 0;
                let members = if team_phone { 4 } else { 1 };
                for m in 0..members {
                    let mut e = base(
                        EventType::Checkin,
                        t0 - 3_600_000_000 + m * 20_000_000,
                        u + m as u64,
                        &sid,
                        &dev,
                        &ip,
                        city,
                    );
                    e.session_id = None;
                    e.course_id = Some(format!("course-{:03}", course).into());
                    e.method = Some(CheckinMethod::Qr);
                    day.push(e);
                }
            }
        }
        total += day.rows;
        let batch = b.finish();
        lake.write_parquet(
            "events",
            day_no,
            "part-0.parquet",
            events_schema(),
            &[batch],
        )
        .expect("write events");
    }
    total
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// User and system CPU seconds of this process so far (`/proc/self/stat`, 100 ticks a second).
fn cpu_s() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let f: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let tick = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
            / 100.0
    };
    (tick(11), tick(12))
}

fn main() {
    println!(
        "allocator: jemalloc, {}{}",
        creditguard_alloc::JEMALLOC_CONF,
        std::env::var("_RJEM_MALLOC_CONF")
            .map(|c| format!(", then _RJEM_MALLOC_CONF={c}"))
            .unwrap_or_default()
    );
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let events: u64 = args
        .first()
        .and_then(|s| s.replace('_', "").parse().ok())
        .unwrap_or(1_000_000);
    let days: u32 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(30);
    let root: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target")
        .join(format!("bench-lake-{events}-{days}"));
    let lake = Lake::open(root.to_str().expect("utf-8 path")).expect("lake");
    if lake.days("events").expect("days").len() != days as usize {
        let t = Instant::now();
        let n = generate(&lake, events, days);
        std::fs::write(root.join("catalog.csv"), catalog_csv()).expect("catalog");
        println!(
            "generated {n} event rows over {days} days in {:.1} s → {}",
            t.elapsed().as_secs_f64(),
            root.display()
        );
    }
    let lake = match std::env::var("CG_BENCH_LAKE")
        .ok()
        .filter(|s| !s.is_empty())
    {
        Some(url) => on_object_store(&lake, &url, days),
        None => lake,
    };
    let mut cfg = JobsConfig::default();
    if let Some(b) = std::env::var("CG_BENCH_BATCH_DAYS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        cfg.batch_days = b;
    }
    if let Some(m) = std::env::var("CG_BENCH_RELEASE_ABOVE_MIB")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        cfg.release_memory_above_mib = m;
    }
    if let Ok(v) = std::env::var("CG_BENCH_PARALLEL_JOBS") {
        cfg.parallel_jobs = v != "0" && v != "false";
    }
    if let Ok(jobs) = std::env::var("CG_BENCH_JOBS") {
        cfg.enabled = jobs.split(',').map(|j| j.trim().to_string()).collect();
        if let Err(e) = cfg.validate() {
            panic!("CG_BENCH_JOBS={jobs}: {e}");
        }
    }
    println!(
        "jobs: {} ({})",
        cfg.enabled.join(", "),
        if cfg.parallel_jobs {
            "two groups side by side, so the per-job times overlap"
        } else {
            "one after another"
        }
    );
    let (from, to) = (START_DAY, START_DAY + days as i64 - 1);
    let rss_before = peak_rss_mib();
    let cpu_before = cpu_s();
    let t = Instant::now();
    let period = DayRange::of_indices(from, to).expect("days");
    let report = run_jobs(&lake, &catalog(), &cfg, period, "bench").expect("jobs");
    let wall = t.elapsed().as_secs_f64();
    let cpu_after = cpu_s();
    let ev = report.events as f64;
    println!("jobs bench: {} events read (deduplicated, context days included), {days} days, batch_days {}", report.events, cfg.batch_days);
    println!("{:<18} {:>9} {:>14}", "stage", "wall s", "events/s");
    let line = |name: &str, s: f64| println!("{name:<18} {s:>9.2} {:>14.0}", ev / s.max(1e-9));
    line("load+dedup", report.load.as_secs_f64());
    line("intervals", report.intervals.as_secs_f64());
    for j in &report.jobs {
        line(&j.job, j.elapsed.as_secs_f64());
    }
    line("write", report.write.as_secs_f64());
    line("total", wall);
    println!(
        "allocator's free pages returned after {} batches (release_memory_above_mib {})",
        report.memory_releases, cfg.release_memory_above_mib
    );
    println!("flags: {}", report.total_flags());
    for j in &report.jobs {
        for (rule, n) in &j.flags {
            println!("  {rule:<36} {n:>7}");
        }
    }
    println!(
        "peak RSS (VmHWM): {:.0} MiB (before jobs: {:.0} MiB)",
        peak_rss_mib(),
        rss_before
    );
    println!(
        "jobs CPU: user {:.1} s, system {:.1} s; GLIBC_TUNABLES={} (the C libraries' malloc)",
        cpu_after.0 - cpu_before.0,
        cpu_after.1 - cpu_before.1,
        std::env::var("GLIBC_TUNABLES").unwrap_or_else(|_| "(unset)".into())
    );
}

/// `CG_BENCH_LAKE=s3://bucket/prefix` (with the AWS environment): the same events on object
/// storage, uploaded from the local bench lake once, opened with an empty cache so that the jobs
/// fetch every file they read from the store.
fn on_object_store(local: &Lake, url: &str, days: u32) -> Lake {
    let cache =
        std::env::temp_dir().join(format!("creditguard-bench-cache-{}", std::process::id()));
    let remote = Lake::open_with_cache(url, &cache).expect("lake on object storage");
    if remote.days("events").expect("days").len() != days as usize {
        let t = Instant::now();
        for day in local.days("events").expect("days") {
            for f in local.partition_files("events", day).expect("files") {
                let name = f.file_name().and_then(|n| n.to_str()).expect("a file name");
                remote
                    .write_file_atomic(&remote.partition_dir("events", day), name, |out| {
                        std::io::copy(&mut std::fs::File::open(&f)?, out).map(|_| ())
                    })
                    .expect("upload");
            }
        }
        println!(
            "uploaded the events to {url} in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    drop(remote);
    std::fs::remove_dir_all(&cache).expect("emptying the cache");
    println!("lake: {url}, cache {} (empty at start)", cache.display());
    Lake::open_with_cache(url, &cache).expect("lake on object storage")
}

fn catalog_csv() -> String {
    let mut s = String::from("course_id,title,category,credits,duration_s,min_watch_ratio\n");
    for c in catalog().courses() {
        s.push_str(&format!(
            "{},{},{},{},{},{}\n",
            c.course_id, c.title, c.category, c.credits, c.duration_s, c.min_watch_ratio
        ));
    }
    s
}
