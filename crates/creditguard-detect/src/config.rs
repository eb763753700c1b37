//! `[jobs]` of a pipeline file: which detectors run and their thresholds. Defaults are DESIGN.md's
//! ("Detectors"); where DESIGN leaves a choice open, the default and the reason are on the field.
//!
//! ```
//! let cfg: creditguard_detect::JobsConfig = toml::from_str(r#"
//! enabled = ["watch_time", "quiz_speed"]
//! [quiz_speed]
//! min_seconds_per_question = 2.5
//! "#).unwrap();
//! assert_eq!(cfg.quiz_speed.min_score_ratio, 0.9);
//! cfg.validate().unwrap();
//! ```

use serde::{Deserialize, Serialize};

use creditguard_contract::DETECTORS;

/// `[jobs]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// Jobs to run, by name: `watch_time`, `multi_login`, `course_switching`, `credit_burst`,
    /// `quiz_speed`, `shared_device`, `automation`, `proxy_learning`. Default: all eight.
    pub enabled: Vec<String>,
    /// Days computed from one scan of the lake. Each batch also reads one day of context on each
    /// side, so larger batches read less twice but hold more rows in memory (about 250 bytes per
    /// event): 7 days of 100 M events a month is ≈ 30 M rows.
    pub batch_days: u32,
    /// After a batch, when the process's resident memory is above this many MiB, the allocator
    /// returns the free pages it keeps to the kernel. Keeping them spares the next batch the page
    /// faults of allocating afresh (returning them after every batch put a third of the CPU in
    /// the kernel at 100 M events), but lets the resident size creep up with fragmentation over
    /// a long range. 0: after every batch. Default 10240 (10 GiB): set it below the memory the
    /// jobs may use, less one batch's growth.
    pub release_memory_above_mib: u32,
    /// Compute a batch's jobs in two groups side by side: `watch_time`, `course_switching` and
    /// `credit_burst` (which read the lesson-stream intervals) in one thread, the others in a
    /// second; and write a batch's days in the background while the next batch loads. Many steps
    /// of a job use one core, so this fills both cores of a small machine; the results are the
    /// same either way, and a batch holds both groups' intermediate frames (and the previous
    /// batch's output) at once. Default true; false runs every step one after another (the
    /// per-job times of the report then do not overlap).
    pub parallel_jobs: bool,
    /// `[jobs.watch_time]`.
    pub watch_time: WatchTimeConfig,
    /// `[jobs.multi_login]`.
    pub multi_login: MultiLoginConfig,
    /// `[jobs.course_switching]`.
    pub course_switching: CourseSwitchingConfig,
    /// `[jobs.credit_burst]`.
    pub credit_burst: CreditBurstConfig,
    /// `[jobs.quiz_speed]`.
    pub quiz_speed: QuizSpeedConfig,
    /// `[jobs.shared_device]`.
    pub shared_device: SharedDeviceConfig,
    /// `[jobs.automation]`.
    pub automation: AutomationConfig,
    /// `[jobs.proxy_learning]`.
    pub proxy_learning: ProxyLearningConfig,
    /// The name the flags give these settings next to their version (the pipeline's name; not
    /// a key of this section).
    #[serde(skip)]
    pub rules_name: Option<String>,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            enabled: DETECTORS.iter().map(|s| s.to_string()).collect(),
            batch_days: 7,
            release_memory_above_mib: 10_240,
            parallel_jobs: true,
            watch_time: Default::default(),
            multi_login: Default::default(),
            course_switching: Default::default(),
            credit_burst: Default::default(),
            quiz_speed: Default::default(),
            shared_device: Default::default(),
            automation: Default::default(),
            proxy_learning: Default::default(),
            rules_name: None,
        }
    }
}

impl JobsConfig {
    /// The version of the detector thresholds, which every flag records: the first 12 hex digits
    /// of the SHA-256 of the detectors' sections as JSON. `enabled`, `batch_days`,
    /// `release_memory_above_mib` and `parallel_jobs` change which jobs run and how, not what a
    /// detector finds, and are left out.
    ///
    /// ```
    /// let a = creditguard_detect::JobsConfig::default();
    /// let mut b = a.clone();
    /// b.batch_days = 1;
    /// assert_eq!(a.rules_version(), b.rules_version());
    /// b.quiz_speed.min_seconds_per_question = 6.0;
    /// assert_ne!(a.rules_version(), b.rules_version());
    /// assert_eq!(a.rules_version().len(), 12);
    /// ```
    pub fn rules_version(&self) -> String {
        let mut settings = serde_json::to_value(self).expect("the settings are plain data");
        if let Some(map) = settings.as_object_mut() {
            for operational in [
                "enabled",
                "batch_days",
                "release_memory_above_mib",
                "parallel_jobs",
            ] {
                map.remove(operational);
            }
        }
        creditguard_contract::stable_id(&[&settings.to_string()])[..12].to_string()
    }
}

/// `[jobs.watch_time]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WatchTimeConfig {
    /// Seconds between two events of a lesson stream beyond which the interval counts as nothing
    /// (the page was closed or the device slept). DESIGN default 60.
    pub max_gap_s: f64,
    /// `background_playback`: minimum hidden share of the play time of a lesson in a day. 0.8.
    /// Judged per lesson, so honest watching of the course's other lessons does not dilute it.
    pub hidden_share: f64,
    /// `background_playback`: minimum play time (seconds) of the lesson that day. 300 (5 min).
    pub min_play_s: f64,
    /// `speed`: fastest honest position advance per wall second (the player's top speed). 2.0.
    pub max_rate: f64,
    /// `speed`: relative tolerance on `max_rate` for rounding of positions and timestamps (a 2.0×
    /// player measured over 15 s intervals reads 1.99–2.01×). 0.05, i.e. faster than 2.1×.
    pub rate_tolerance: f64,
    /// `speed`: wall seconds a course must advance faster than `max_rate × (1 + rate_tolerance)`
    /// in a day before it is flagged (one jittery interval is not a pattern). 30.
    pub min_fast_s: f64,
    /// `speed`: intervals shorter than this (seconds) are not used to measure the rate (a 1 s
    /// interval turns a 1 s position rounding into a 2× error). 5.
    pub min_interval_s: f64,
    /// `low_coverage`: the share of a course that must be covered when the course's catalog row
    /// is missing. 0.8.
    pub default_min_watch_ratio: f64,
    /// `low_coverage`: days before a completion whose watching counts towards its coverage (read
    /// from earlier days' `features/watch_time`). 90.
    pub coverage_lookback_days: u32,
}

impl Default for WatchTimeConfig {
    fn default() -> Self {
        WatchTimeConfig {
            max_gap_s: 60.0,
            hidden_share: 0.8,
            min_play_s: 300.0,
            max_rate: 2.0,
            rate_tolerance: 0.05,
            min_fast_s: 30.0,
            min_interval_s: 5.0,
            default_min_watch_ratio: 0.8,
            coverage_lookback_days: 90,
        }
    }
}

/// `[jobs.multi_login]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MultiLoginConfig {
    /// A session is active from one event to the next while they are at most this many seconds
    /// apart; a longer silence splits it (an idle tab left open is not "active"). 300.
    pub idle_gap_s: f64,
    /// `concurrent_sessions`: minimum overlap (seconds) of two active sessions on different
    /// devices. DESIGN default 60.
    pub min_overlap_s: f64,
    /// `concurrent_sessions`: also require different networks (IPv4 /24, IPv6 /48). Two devices
    /// of one person on one home or office network are not flagged. When either address is
    /// unknown the devices alone decide. Default true.
    pub require_different_network: bool,
    /// `impossible_travel`: fastest plausible travel (km/h) between consecutive located events.
    /// DESIGN default 900 (an airliner).
    pub max_speed_kmh: f64,
    /// `impossible_travel`: jumps shorter than this (km) are ignored, because coarse IP geolocation
    /// moves a user by tens of kilometres between two requests. 300.
    pub min_distance_km: f64,
    /// `impossible_travel`: the time between two located events is taken as at least this many
    /// seconds (two events in the same second are not infinitely fast). 60.
    pub min_interval_s: f64,
}

impl Default for MultiLoginConfig {
    fn default() -> Self {
        MultiLoginConfig {
            idle_gap_s: 300.0,
            min_overlap_s: 60.0,
            require_different_network: true,
            max_speed_kmh: 900.0,
            min_distance_km: 300.0,
            min_interval_s: 60.0,
        }
    }
}

/// `[jobs.course_switching]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CourseSwitchingConfig {
    /// `rapid_switching`: changes of course inside `window_s` that make a burst. DESIGN default 6.
    pub min_changes: u32,
    /// `rapid_switching`: the sliding window (seconds). DESIGN default 600 (10 min).
    pub window_s: f64,
    /// Event types whose `course_id` makes the course sequence: what the learner does, not the
    /// heartbeats of open tabs (those are `parallel_playback`'s evidence).
    pub switch_event_types: Vec<String>,
    /// `parallel_playback`: minimum time (seconds) two courses play at once. Playing intervals
    /// are `watch_time`'s (its `max_gap_s` applies). 60.
    pub min_overlap_s: f64,
    /// `rapid_switching`: also count changes of course out of a visit that did work (a
    /// `work_event_types` event of the visited course before the change). Default false: an
    /// app's mixed review quiz moves a learner to the next question in another course after each
    /// submitted answer (EdNet KT4's review/tutor modes: 6–18 quizzes per burst, 17–92 s each),
    /// which is working, not hopping. The farming pattern plays a little of each course and
    /// hands nothing in, so it is counted either way.
    pub count_working_visits: bool,
    /// `rapid_switching`: event types that make a visit a working one. Default `quiz_submit`
    /// only: playing is not work here, because playing a little of each course is exactly what
    /// time farming by switching looks like. Must not overlap `switch_event_types`.
    pub work_event_types: Vec<String>,
}

impl Default for CourseSwitchingConfig {
    fn default() -> Self {
        CourseSwitchingConfig {
            min_changes: 6,
            window_s: 600.0,
            switch_event_types: vec!["course_enter".into(), "video_play".into()],
            min_overlap_s: 60.0,
            count_working_visits: false,
            work_event_types: vec!["quiz_submit".into()],
        }
    }
}

/// What `credit_burst` counts per day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BurstUnit {
    /// Credits, rounded up, as DESIGN.md states the test. Default.
    Credits,
    /// Completed courses: credits come in lumps (one course = several credits), so the number of
    /// completions is the truer Poisson count; but it is blind to a few high-credit courses.
    Completions,
}

/// `[jobs.credit_burst]`. A user-day is flagged only when its credits are unsupported by watching
/// (see `support_ratio`); the Poisson tail is context: a day of many credits that the engaged
/// watching covers is diligence (catching up before the deadline), never a flag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CreditBurstConfig {
    /// Significance of the Poisson upper tail P(X ≥ x | λ). DESIGN default 1e-3. Context, not a
    /// reason to flag: `p_tail` is in the features of every day, and on a day flagged as
    /// unsupported a tail below `alpha` adds `poisson_tail` to the evidence's `conditions` and
    /// can raise the severity. A tail below `alpha` alone flags nothing.
    pub alpha: f64,
    /// Minimum credits claimed in the day before it is judged at all. DESIGN default 10.
    pub min_credits: f64,
    /// Days of the user's own trailing baseline (and the peers'). DESIGN default 28.
    pub baseline_days: u32,
    /// Smallest rate λ (per day) used, so a new user with no history is not flagged for a normal
    /// day. 0.5.
    pub min_lambda: f64,
    /// What is counted: `credits` (default) or `completions`.
    pub unit: BurstUnit,
    /// Unsupported credits, the rule's one reason to flag: the day is flagged when the engaged
    /// watch time of the user in the last `support_days` days is below `support_ratio` × the
    /// watch time the claimed courses require (catalog `duration_s × min_watch_ratio`). 0.25.
    /// Courses that require no watching (a required watch time of 0, or missing from the catalog:
    /// practice, classroom check-ins) add nothing to the requirement, so a day of only such
    /// claims is never flagged by `credit_burst`: no watching is expected of them, and their
    /// count alone is not evidence.
    pub support_ratio: f64,
    /// Days of engaged watch time counted as support (the claim day and the days before it). 7.
    pub support_days: u32,
}

impl Default for CreditBurstConfig {
    fn default() -> Self {
        CreditBurstConfig {
            alpha: 1e-3,
            min_credits: 10.0,
            baseline_days: 28,
            min_lambda: 0.5,
            unit: BurstUnit::Credits,
            support_ratio: 0.25,
            support_days: 7,
        }
    }
}

/// `[jobs.quiz_speed]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuizSpeedConfig {
    /// Fewer seconds per question than this is too fast to read. DESIGN default 3.
    pub min_seconds_per_question: f64,
    /// …when the score is at least this share of the maximum. DESIGN default 0.9.
    pub min_score_ratio: f64,
    /// Quizzes with fewer questions are not judged. 1.
    pub min_questions: i64,
    /// Leave re-submissions alone: a quiz whose `quiz_id` the learner already submitted earlier
    /// is a retry (often right after reading the explanation), and recognising items is not
    /// reading them too fast (79 % of EdNet KT1's flags without it). Default true. The lookback
    /// covers the data the job reads (its batch of days plus one day of context before it) and
    /// the `resubmission_lookback_days` before that, from earlier days' `features/quiz_speed`.
    pub exempt_resubmissions: bool,
    /// Days before a batch whose quiz submissions (read from `features/quiz_speed`) make a later
    /// submission of the same quiz a retry. Default 90 (EdNet KT1 has retries 26–53 days after
    /// the first attempt). At most 3660.
    pub resubmission_lookback_days: u32,
    /// Per learner and day, at least this many first-attempt quizzes must be too fast (and
    /// right) before any of them is flagged. Default 1: the cheating pattern can be a single
    /// fast quiz of 8–20 questions in a day (the synthetic cheaters hand in exactly one per
    /// episode), so a higher count loses them; the share below is what separates them from
    /// heavy learners. At least 1.
    pub min_fast_per_day: u32,
    /// …and they must be at least this share of the learner's first-attempt quizzes that day.
    /// Default 0.25: a heavy learner recognising a few items among 40–160 a day stays under it
    /// (EdNet KT1: at most 24 %). 0 turns the share test off. Between 0 and 1.
    pub min_fast_share: f64,
}

impl Default for QuizSpeedConfig {
    fn default() -> Self {
        QuizSpeedConfig {
            min_seconds_per_question: 3.0,
            min_score_ratio: 0.9,
            min_questions: 1,
            exempt_resubmissions: true,
            resubmission_lookback_days: 90,
            min_fast_per_day: 1,
            min_fast_share: 0.25,
        }
    }
}

/// `[jobs.shared_device]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SharedDeviceConfig {
    /// Accounts on one device in one day (logins and check-ins) that make it shared. DESIGN
    /// default 3.
    pub min_accounts: u32,
    /// Event types counted. Default `login`, `checkin`.
    pub event_types: Vec<String>,
}

impl Default for SharedDeviceConfig {
    fn default() -> Self {
        SharedDeviceConfig {
            min_accounts: 3,
            event_types: vec!["login".into(), "checkin".into()],
        }
    }
}

/// `[jobs.automation]`: signs of a script driving the player, from what the server sees (stretches
/// of unbroken play, heartbeat cadence, attention checks, input counts). A stretch is a run of a
/// learner's consecutive heartbeats that play with the page visible, in one session, each within
/// `max_gap_s` of the previous, with no pause, seek, rate change, visibility change, login or
/// logout between them; moving on to another lesson or course does not end it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AutomationConfig {
    /// Seconds between two heartbeats beyond which a stretch ends. 60 (as `watch_time`).
    pub max_gap_s: f64,
    /// `unbroken_play`: wall seconds a stretch must last. 10800 (3 h): a long lecture watched
    /// without touching the player is one course, and people who catch up pause between courses.
    pub unbroken_min_play_s: f64,
    /// `unbroken_play`: distinct courses the stretch must span. 3.
    pub unbroken_min_courses: u32,
    /// `timer_cadence`: heartbeat intervals a stretch must hold. 240 (an hour at 15 s).
    pub cadence_min_intervals: u32,
    /// `timer_cadence`: distinct courses the stretch must span (opening another course restarts
    /// a browser's heartbeat timer, which leaves one irregular interval). 2.
    pub cadence_min_courses: u32,
    /// `timer_cadence`: largest standard deviation (seconds) of the heartbeat intervals of the
    /// stretch that still counts as a timer. 0.002 (2 ms).
    pub cadence_max_std_s: f64,
    /// Hours of the day (UTC, 0..24) of a stretch that are unusual for the learner: the share of
    /// the learner's other heartbeats of the batch in those hours is below this. Only raises the
    /// severity of `unbroken_play` and `no_input` flags (by `unusual_hours_severity`); it never
    /// flags on its own. 0.05.
    pub unusual_hours_share: f64,
    /// Added to the severity of a flag whose stretch lies in unusual hours. 0.15.
    pub unusual_hours_severity: f64,
    /// `no_input`: wall seconds of a stretch whose heartbeats report `input_events` and all
    /// report 0. 5400 (1.5 h).
    pub no_input_min_play_s: f64,
    /// `no_input`: distinct courses the stretch must span (opening a course takes a click). 2.
    pub no_input_min_courses: u32,
    /// `no_input`: share of the stretch's heartbeats that must carry `input_events` (platforms
    /// that do not send counts are not judged). 0.9.
    pub no_input_reported_share: f64,
    /// `missed_checks`: attention checks a learner must miss in a session while the video kept
    /// playing (the next heartbeat of the session, within `max_gap_s`, plays). 2.
    pub missed_min_checks: u32,
    /// `missed_checks`: and that share of the session's checks at least. 0.5.
    pub missed_min_share: f64,
    /// `machine_responses`: answered checks with a response time a learner needs in a session for
    /// the median to be judged. 4.
    pub responses_min_checks: u32,
    /// `machine_responses`: answered checks a learner needs in a session for the spread to be
    /// judged. 10: six answers of a person agreed within 5 % on 1 of about 2 000 honest
    /// learners of the quality bench (a person's log-normal spread σ ≈ 0.45 makes that about
    /// 5 in 100 000 days); with ten, about 4 in 100 million.
    pub regular_min_checks: u32,
    /// `machine_responses`: a median response time (seconds) below this is too fast to read the
    /// question. 1.0.
    pub min_human_response_s: f64,
    /// `machine_responses`: a coefficient of variation (std / mean) of the response times below
    /// this is too regular for a person. 0.05: people's response times vary by 30–60 % (at 0.1
    /// the quality bench flagged 2 of 700 honest learners on six answers).
    pub max_response_cv: f64,
}

impl Default for AutomationConfig {
    fn default() -> Self {
        AutomationConfig {
            max_gap_s: 60.0,
            unbroken_min_play_s: 10_800.0,
            unbroken_min_courses: 3,
            cadence_min_intervals: 240,
            cadence_min_courses: 2,
            cadence_max_std_s: 0.002,
            unusual_hours_share: 0.05,
            unusual_hours_severity: 0.15,
            no_input_min_play_s: 5400.0,
            no_input_min_courses: 2,
            no_input_reported_share: 0.9,
            missed_min_checks: 2,
            missed_min_share: 0.5,
            responses_min_checks: 4,
            regular_min_checks: 10,
            min_human_response_s: 1.0,
            max_response_cv: 0.05,
        }
    }
}

/// `[jobs.proxy_learning]`: a learner's courses done on another employee's device (代学). The
/// usual account of a device is the one with the most days on it in the events a batch reads
/// (the batch and a day each side).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyLearningConfig {
    /// Known shared devices (training-room PCs, kiosks): a file of `device_id`s, one per line
    /// (`#` starts a comment). Relative to the directory the command runs in. Default: none.
    pub shared_devices_file: Option<String>,
    /// More known shared devices, listed here. Default: none.
    pub shared_devices: Vec<String>,
    /// Play between two heartbeats counts at most this many seconds. 60.
    pub max_gap_s: f64,
    /// `borrowed_device`: seconds an account must play on the device in the day. 600.
    pub min_play_s: f64,
    /// `borrowed_device`: days the device's usual account must have used it. 3.
    pub owner_min_days: u32,
    /// `borrowed_device`: most days the flagged account may have used the device (the day of
    /// the flag included): 1, i.e. it never uses that device otherwise.
    pub guest_max_days: u32,
    /// `alternating_accounts`: times a day the device changes hands between the two accounts. 2
    /// (A, B, A).
    pub alternating_min_switches: u32,
    /// `alternating_accounts`: days with such switching. 2.
    pub alternating_min_days: u32,
    /// `borrowed_device`: an address used by at most this many accounts, which the learner also
    /// uses from their own devices, is a household's: a device there is the family's, not a
    /// colleague's. 3. `alternating_accounts` exempts the same.
    pub household_max_accounts: u32,
    /// The business time zone whose days the rules count (days on a device, days of changing
    /// hands): a zone without daylight saving time, as a policy's `time_zone`, or an offset
    /// such as `+08:00`. Default `Asia/Shanghai`.
    pub time_zone: String,
    /// The local hour at which such a day starts. 5: an evening that runs past midnight is one
    /// day, and a morning is not cut at the UTC midnight (08:00 in Shanghai). The day's start in
    /// UTC must lie within a day of the UTC midnight (a batch reads one day of context).
    pub day_starts_at_hour: u32,
}

impl Default for ProxyLearningConfig {
    fn default() -> Self {
        ProxyLearningConfig {
            shared_devices_file: None,
            shared_devices: Vec::new(),
            max_gap_s: 60.0,
            min_play_s: 600.0,
            owner_min_days: 3,
            guest_max_days: 1,
            alternating_min_switches: 2,
            alternating_min_days: 2,
            household_max_accounts: 3,
            time_zone: "Asia/Shanghai".into(),
            day_starts_at_hour: 5,
        }
    }
}

impl ProxyLearningConfig {
    /// What to add to a UTC microsecond time so that whole days of it are this config's days
    /// (`time_zone`, starting at `day_starts_at_hour`).
    pub fn day_shift_us(&self) -> std::result::Result<i64, String> {
        let offset = creditguard_contract::time::utc_offset_minutes(&self.time_zone)?;
        if self.day_starts_at_hour > 23 {
            return Err(format!(
                "`day_starts_at_hour` {} is not an hour of the day (0–23)",
                self.day_starts_at_hour
            ));
        }
        let shift_min = offset - i64::from(self.day_starts_at_hour) * 60;
        if shift_min < -24 * 60 {
            return Err(format!(
                "a day starting at {}:00 in `{}` starts more than a day after the UTC midnight",
                self.day_starts_at_hour, self.time_zone
            ));
        }
        Ok(shift_min * 60_000_000)
    }

    /// The known shared devices: the file's and the listed ones.
    pub fn shared_devices(&self) -> crate::Result<std::collections::HashSet<String>> {
        let mut devices = match &self.shared_devices_file {
            Some(path) => read_allowlist(path)?,
            None => Default::default(),
        };
        devices.extend(self.shared_devices.iter().cloned());
        Ok(devices)
    }
}

impl JobsConfig {
    /// Every problem with the settings, each naming its key (`jobs.<…>`).
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        for (i, name) in self.enabled.iter().enumerate() {
            if !DETECTORS.contains(&name.as_str()) {
                p.push(format!(
                    "key `jobs.enabled[{i}]`: unknown job `{name}`, expected one of: {}",
                    DETECTORS.join(", ")
                ));
            }
        }
        let mut pos = |key: &str, v: f64| {
            if !(v.is_finite() && v > 0.0) {
                p.push(format!("key `jobs.{key}`: must be a number > 0, got {v}"));
            }
        };
        let w = &self.watch_time;
        pos("watch_time.max_gap_s", w.max_gap_s);
        pos("watch_time.min_play_s", w.min_play_s);
        pos("watch_time.max_rate", w.max_rate);
        pos("watch_time.min_fast_s", w.min_fast_s);
        pos("watch_time.min_interval_s", w.min_interval_s);
        let m = &self.multi_login;
        pos("multi_login.idle_gap_s", m.idle_gap_s);
        pos("multi_login.min_overlap_s", m.min_overlap_s);
        pos("multi_login.max_speed_kmh", m.max_speed_kmh);
        pos("multi_login.min_interval_s", m.min_interval_s);
        let c = &self.course_switching;
        pos("course_switching.window_s", c.window_s);
        pos("course_switching.min_overlap_s", c.min_overlap_s);
        let b = &self.credit_burst;
        pos("credit_burst.min_lambda", b.min_lambda);
        pos(
            "quiz_speed.min_seconds_per_question",
            self.quiz_speed.min_seconds_per_question,
        );
        let a = &self.automation;
        pos("automation.max_gap_s", a.max_gap_s);
        pos("automation.unbroken_min_play_s", a.unbroken_min_play_s);
        pos("automation.cadence_max_std_s", a.cadence_max_std_s);
        pos("automation.no_input_min_play_s", a.no_input_min_play_s);
        pos("automation.min_human_response_s", a.min_human_response_s);
        pos("automation.max_response_cv", a.max_response_cv);
        let proxy = &self.proxy_learning;
        pos("proxy_learning.max_gap_s", proxy.max_gap_s);
        pos("proxy_learning.min_play_s", proxy.min_play_s);
        if let Err(e) = creditguard_contract::time::utc_offset_minutes(&proxy.time_zone) {
            p.push(format!("key `jobs.proxy_learning.time_zone`: {e}"));
        } else if let Err(e) = proxy.day_shift_us() {
            p.push(format!("key `jobs.proxy_learning.day_starts_at_hour`: {e}"));
        }
        let mut share = |key: &str, v: f64| {
            if !(0.0..=1.0).contains(&v) {
                p.push(format!(
                    "key `jobs.{key}`: must be between 0 and 1, got {v}"
                ));
            }
        };
        share("watch_time.hidden_share", w.hidden_share);
        share("watch_time.rate_tolerance", w.rate_tolerance);
        share(
            "watch_time.default_min_watch_ratio",
            w.default_min_watch_ratio,
        );
        share(
            "quiz_speed.min_score_ratio",
            self.quiz_speed.min_score_ratio,
        );
        share("credit_burst.support_ratio", b.support_ratio);
        share("quiz_speed.min_fast_share", self.quiz_speed.min_fast_share);
        share("automation.unusual_hours_share", a.unusual_hours_share);
        share(
            "automation.unusual_hours_severity",
            a.unusual_hours_severity,
        );
        share(
            "automation.no_input_reported_share",
            a.no_input_reported_share,
        );
        share("automation.missed_min_share", a.missed_min_share);
        if self.quiz_speed.resubmission_lookback_days > 3660 {
            p.push(format!(
                "key `jobs.quiz_speed.resubmission_lookback_days`: must be at most 3660, got {}",
                self.quiz_speed.resubmission_lookback_days
            ));
        }
        if !(b.alpha > 0.0 && b.alpha < 1.0) {
            p.push(format!(
                "key `jobs.credit_burst.alpha`: must be between 0 and 1 (exclusive), got {}",
                b.alpha
            ));
        }
        if !(b.min_credits >= 0.0) {
            p.push(format!(
                "key `jobs.credit_burst.min_credits`: must be ≥ 0, got {}",
                b.min_credits
            ));
        }
        if m.min_distance_km < 0.0 {
            p.push(format!(
                "key `jobs.multi_login.min_distance_km`: must be ≥ 0, got {}",
                m.min_distance_km
            ));
        }
        for (key, v) in [
            ("batch_days", self.batch_days),
            ("course_switching.min_changes", c.min_changes),
            ("credit_burst.baseline_days", b.baseline_days),
            ("credit_burst.support_days", b.support_days),
            (
                "quiz_speed.min_fast_per_day",
                self.quiz_speed.min_fast_per_day,
            ),
            (
                "shared_device.min_accounts",
                self.shared_device.min_accounts,
            ),
            ("automation.unbroken_min_courses", a.unbroken_min_courses),
            ("automation.cadence_min_intervals", a.cadence_min_intervals),
            ("automation.cadence_min_courses", a.cadence_min_courses),
            ("automation.no_input_min_courses", a.no_input_min_courses),
            ("automation.missed_min_checks", a.missed_min_checks),
            ("automation.responses_min_checks", a.responses_min_checks),
            ("automation.regular_min_checks", a.regular_min_checks),
            ("proxy_learning.owner_min_days", proxy.owner_min_days),
            ("proxy_learning.guest_max_days", proxy.guest_max_days),
            (
                "proxy_learning.alternating_min_switches",
                proxy.alternating_min_switches,
            ),
            (
                "proxy_learning.alternating_min_days",
                proxy.alternating_min_days,
            ),
        ] {
            if v == 0 {
                p.push(format!("key `jobs.{key}`: must be at least 1"));
            }
        }
        if c.switch_event_types.is_empty() {
            p.push("key `jobs.course_switching.switch_event_types`: must not be empty".into());
        }
        for t in &c.work_event_types {
            if c.switch_event_types.contains(t) {
                p.push(format!(
                    "key `jobs.course_switching.work_event_types`: `{t}` is also a switch event type"
                ));
            }
        }
        if self.shared_device.event_types.is_empty() {
            p.push("key `jobs.shared_device.event_types`: must not be empty".into());
        }
        for (key, list) in [
            ("course_switching.switch_event_types", &c.switch_event_types),
            ("course_switching.work_event_types", &c.work_event_types),
            ("shared_device.event_types", &self.shared_device.event_types),
        ] {
            for t in list {
                if creditguard_contract::EventType::parse(t).is_none() {
                    p.push(format!(
                        "key `jobs.{key}`: `{t}` is not a telemetry-v1 event type"
                    ));
                }
            }
        }
        p
    }

    /// [`problems`](Self::problems) as a `Result`.
    pub fn validate(&self) -> crate::Result<()> {
        let p = self.problems();
        if p.is_empty() {
            Ok(())
        } else {
            Err(crate::Error::Config(p))
        }
    }

    /// Whether the job `name` is enabled.
    pub fn is_enabled(&self, name: &str) -> bool {
        self.enabled.iter().any(|e| e == name)
    }
}

/// Reads an allowlist file of known shared devices: one `device_id` per line; blank lines and
/// lines starting with `#` are skipped.
pub fn read_allowlist(path: &str) -> crate::Result<std::collections::HashSet<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| crate::Error::Io {
        path: path.to_string(),
        source: e,
    })?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}
