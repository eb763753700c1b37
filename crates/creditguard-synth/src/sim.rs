//! One learner's behaviour, day by day, as telemetry: honest study and the planted episodes.
//!
//! All times are UTC microseconds, always whole milliseconds. While a video plays, every event
//! time is its segment start plus a multiple of 4 ms, so `position = start + elapsed × rate` is
//! exact for the honest rates (1, 1.25, 1.5, 1.75, 2): an honest learner's position never
//! advances faster than 2.0× wall clock, not even by a rounding millisecond.

use creditguard_contract::time::format_rfc3339_us;
use creditguard_contract::{Category, CheckinMethod, EventType, Platform};
use rand::rngs::StdRng;
use rand::Rng;

use crate::catalog::Course;
use crate::config::{Pattern, Strength};
use crate::emit::{Check, Chunk, Ctx, Emitter, Quiz, Rec};
use crate::labels::{Label, LearnerLabel};
use crate::plan::{distance_km, mix, mobile_ip, rng_for, Chrono, Plan, Stream, UserSpec, CITIES};

pub(crate) const MS: i64 = 1_000;
pub(crate) const SEC: i64 = 1_000_000;
pub(crate) const MIN: i64 = 60 * SEC;
pub(crate) const HOUR: i64 = 60 * MIN;
pub(crate) const DAY: i64 = 24 * HOUR;

/// An honest learner never claims more than this many credits (in halves) in any 24 hours, so
/// no honest day reaches credit_burst's 10-credit floor.
const HONEST_CAP_X2: u32 = 12;
/// Honest sessions on different devices are at least this far apart (client clock skew is at
/// most 10 minutes per session, so even skewed they never overlap).
const DEVICE_SWITCH_GAP: i64 = 30 * MIN;
/// When the business day of the detectors' default starts (`[jobs.proxy_learning]`: 05:00 in
/// Asia/Shanghai), after the UTC midnight.
const BUSINESS_DAY_START_UTC: i64 = 21 * HOUR;

#[derive(Clone, Copy, Default)]
struct Progress {
    started: bool,
    completed: bool,
    quiz_passed: bool,
    /// Bit l set: lesson l was played to its end.
    watched: u64,
    /// Resume position in the next unwatched lesson.
    pos_ms: i64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dev {
    OfficePc,
    HomePc,
    Phone,
    /// A household's family tablet, at home.
    Tablet,
}

/// How one lesson is played.
#[derive(Clone, Copy)]
struct Style {
    /// Honest noise: pauses, short tab switches, speed changes, re-watching.
    honest: bool,
    /// Real position advance per wall second, per mille.
    adv_pm: u32,
    /// The `rate` the player reports (0: field omitted, which means 1.0).
    report_pm: u32,
    /// Background cheat: hide the page and mute this long after the lesson starts.
    hide_after: Option<i64>,
    /// Low-coverage cheat: at this position pause, seek to 3 s before the end, and play out.
    stop_at_ms: Option<i64>,
}

impl Style {
    fn plain() -> Style {
        Style {
            honest: false,
            adv_pm: 1000,
            report_pm: 0,
            hide_after: None,
            stop_at_ms: None,
        }
    }
}

/// What sends the heartbeats of `play`.
#[derive(Clone, Copy)]
enum Beat {
    /// A script's own timer: exactly every `period`, counted from `anchor`, lesson after lesson.
    Timer { anchor: i64, period: i64 },
    /// The platform's page timer in a real browser: `period` with a few hundred ms of jitter.
    Page { period: i64 },
}

/// Who deals with the attention checks the platform shows (with `Config::client_signals`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Checks {
    /// A person: answers after a few seconds (the platform pauses the video meanwhile), now
    /// and then misses one while away (the video stays paused until they come back).
    Person,
    /// A script that suppresses the pop-up: missed, and the video plays on.
    Ignore,
    /// A script that answers in 0.25–0.6 s.
    AnswerFast,
    /// A script that answers after 2 s ± 30 ms.
    AnswerRegular,
    /// A script that answers at a person's pace, and never misses.
    AnswerPaced,
}

/// A lesson playing on one device, for the episodes where two play at once.
struct Track {
    ctx: Ctx,
    c: usize,
    l: usize,
    seg_t: i64,
    seg_p: i64,
    next: i64,
    last: i64,
    muted: bool,
    cycle: bool,
    active: bool,
}

pub(crate) struct UserSim<'p> {
    plan: &'p Plan,
    u: &'p UserSpec,
    org_name: String,
    rng: StdRng,
    em: Emitter,
    sess_no: u32,
    busy_until: i64,
    last_device: u64,
    progress: Vec<Progress>,
    /// (time, credits in halves) of every claim, for the honest 24-hour cap.
    claims: Vec<(i64, u32)>,
    page_visible: bool,
    muted: bool,
    labels: Vec<Label>,
    extra_devices: u64,
    /// (submitted at, elapsed ms, questions) of the last quiz.
    last_quiz: (i64, i64, i64),
    /// The heartbeat source of `play` other than the default (15–30 s per beat).
    beat: Option<Beat>,
    /// Who answers attention checks.
    checks: Checks,
    /// A script drives the page: no keyboard, mouse or touch input at all.
    no_input: bool,
    /// The next heartbeat follows a click (a lesson started or resumed by a person).
    clicked: bool,
    /// Attention checks shown so far.
    prompts: u32,
    /// (missed while playing, answered) checks since the counters were reset.
    check_counts: (u32, u32),
    /// This honest learner had their catch-up day (`lookalikes`).
    caught_up: bool,
}

impl<'p> UserSim<'p> {
    pub(crate) fn new(plan: &'p Plan, u: &'p UserSpec) -> UserSim<'p> {
        let seed = plan.cfg.seed;
        let org_name = plan.org_name(u.org);
        UserSim {
            plan,
            u,
            em: Emitter::new(
                u,
                &org_name,
                rng_for(seed, Stream::Faults, u64::from(u.idx)),
                plan.cfg.fault_rate,
            ),
            org_name,
            rng: rng_for(seed, Stream::Behaviour, u64::from(u.idx)),
            sess_no: 0,
            busy_until: i64::MIN / 4,
            last_device: 0,
            progress: vec![Progress::default(); plan.catalog.courses.len()],
            claims: Vec::new(),
            page_visible: true,
            muted: false,
            labels: Vec::new(),
            extra_devices: 0,
            last_quiz: (0, 0, 1),
            beat: None,
            checks: Checks::Person,
            no_input: false,
            clicked: false,
            prompts: 0,
            check_counts: (0, 0),
            caught_up: false,
        }
    }

    pub(crate) fn finish(self) -> (LearnerLabel, crate::labels::Summary) {
        let label = LearnerLabel {
            user_id: self.u.user_id.clone(),
            org_unit: self.org_name,
            // A planned episode that found nothing to do (no course left) planted nothing.
            honest: self.labels.is_empty(),
            labels: self.labels,
        };
        (label, self.em.stats)
    }

    fn course(&self, c: usize) -> &'p Course {
        &self.plan.catalog.courses[c]
    }

    fn local_midnight(&self, d: u32, tz_min: i32) -> i64 {
        (self.plan.cfg.start_day + i64::from(d)) * DAY - i64::from(tz_min) * MIN
    }

    fn tz(&self) -> i32 {
        CITIES[self.u.city].tz_min
    }

    fn city_on(&self, d: u32) -> usize {
        match self.u.trip {
            Some((a, b, c)) if (a..=b).contains(&d) => c,
            _ => self.u.city,
        }
    }

    fn r(&mut self, lo: i64, hi: i64) -> i64 {
        self.rng.random_range(lo..=hi)
    }

    /// A heartbeat interval: 15–30 s in 4 ms steps.
    fn hb(&mut self) -> i64 {
        self.rng.random_range(3750..=7500i64) * 4 * MS
    }

    /// `input_events` of a heartbeat: a few after a click, then mostly none while watching.
    fn input_count(&mut self) -> u32 {
        if self.no_input {
            return 0;
        }
        if std::mem::take(&mut self.clicked) {
            return self.r(1, 6) as u32;
        }
        if self.rng.random_bool(0.03) {
            self.r(1, 8) as u32
        } else {
            0
        }
    }

    /// A person's response time to a pop-up question: log-normal, median 3.5 s (σ 0.45),
    /// within 1.2–30 s.
    fn human_response_ms(&mut self) -> i64 {
        let (u1, u2): (f64, f64) = (self.rng.random(), self.rng.random());
        let normal = (-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        ((3.5f64.ln() + 0.45 * normal).exp() * 1000.0).clamp(1_200.0, 30_000.0) as i64
    }

    /// Shows an attention check at `t` during lesson `l` of `c` (position `pos`). Returns when the
    /// video plays again when the platform paused it for the check.
    #[allow(clippy::too_many_arguments)]
    fn attention_check(
        &mut self,
        out: &mut Chunk,
        ctx: &Ctx,
        c: usize,
        l: usize,
        t: i64,
        pos: i64,
        rate: u32,
    ) -> Option<i64> {
        self.prompts += 1;
        let prompt = self.prompts;
        let answer = |response_ms: Option<i64>, correct: bool| Check {
            prompt,
            response_ms,
            correct,
        };
        let response_ms = match self.checks {
            Checks::Ignore => {
                self.emit(
                    out,
                    ctx,
                    Rec::new(EventType::AttentionCheck, t)
                        .lesson(c, l)
                        .check(answer(None, false)),
                );
                self.check_counts.0 += 1;
                return None;
            }
            Checks::AnswerFast => self.r(250, 600),
            Checks::AnswerRegular => 2_000 + self.r(-30, 30),
            Checks::AnswerPaced => self.human_response_ms(),
            Checks::Person if self.rng.random_bool(0.03) => {
                // Away from the screen: the check times out, the video stays paused.
                self.emit(
                    out,
                    ctx,
                    Rec::new(EventType::AttentionCheck, t)
                        .lesson(c, l)
                        .check(answer(None, false)),
                );
                let resume = t + self.r(90, 600) * SEC;
                let mut at = t + self.hb();
                while at < resume {
                    self.emit(
                        out,
                        ctx,
                        Rec::new(EventType::Heartbeat, at)
                            .lesson(c, l)
                            .pos(pos)
                            .playing(false)
                            .visible(true)
                            .rate(rate)
                            .inputs(0),
                    );
                    at += self.hb();
                }
                self.emit(
                    out,
                    ctx,
                    Rec::new(EventType::VideoPlay, resume)
                        .lesson(c, l)
                        .pos(pos)
                        .rate(rate),
                );
                self.clicked = true;
                return Some(resume);
            }
            Checks::Person => self.human_response_ms(),
        };
        let correct = self.rng.random_bool(0.9);
        self.emit(
            out,
            ctx,
            Rec::new(EventType::AttentionCheck, t)
                .lesson(c, l)
                .check(answer(Some(response_ms), correct)),
        );
        self.check_counts.1 += 1;
        if self.checks == Checks::Person {
            self.clicked = true;
        }
        Some(t + response_ms * MS)
    }

    /// When the heartbeat after `t` of a playing lesson is sent.
    fn next_beat(&mut self, t: i64) -> i64 {
        match self.beat {
            Some(Beat::Timer { anchor, period }) => anchor + ((t - anchor) / period + 1) * period,
            Some(Beat::Page { period }) => t + period + self.r(-300, 300) * MS,
            None => t + self.hb(),
        }
    }

    fn device_id(&self, kind: u64) -> u64 {
        mix(
            self.plan.cfg.seed,
            Stream::Device,
            u64::from(self.u.idx) << 8 | kind,
        )
    }

    // ---------------------------------------------------------------- days

    pub(crate) fn simulate_day(&mut self, out: &mut Chunk, d: u32) {
        if let Some((p, s)) = self.u.pattern {
            if self.u.episode_days.contains(&d) {
                self.episode(out, d, p, s);
                return;
            }
            // Who claims a pile of courses unwatched has not been studying that week either.
            let week_before = self.u.episode_days.iter().any(|&e| d < e && e - d <= 6);
            // (A helper still studies on the laptop every evening: a colleague counts on it.)
            let idle = p == Pattern::CreditBurst && self.plan.cfg.unwatched_bursts && !self.u.helps;
            if idle && week_before {
                return;
            }
        }
        self.honest_day(out, d);
    }

    fn honest_day(&mut self, out: &mut Chunk, d: u32) {
        if self.household_evening(out, d) {
            return;
        }
        let tz = self.tz();
        let mid = self.local_midnight(d, tz);
        let weekday = (self.plan.cfg.start_day + i64::from(d) + 3).rem_euclid(7); // 0 = Monday
        let weekend = weekday >= 5;
        let frac = f64::from(d) / f64::from(self.plan.cfg.days - 1);
        // Study gets more likely and longer as the deadline (the period's last day) nears.
        let ramp = 1.0 + 1.2 * frac * frac;
        if let Some((cd, course)) = self.u.classroom {
            if cd == d {
                self.honest_classroom(out, d, course);
            }
        }
        if self.u.helps {
            // A colleague who also does someone else's courses: studies on the laptop at home
            // every evening, 19:00–20:00.
            let start = mid + self.r(19 * 60, 20 * 60) * MIN;
            let start = self.fit(start, Dev::HomePc, d);
            let budget = self.r(12, 25) * MIN;
            self.honest_session(out, start, Dev::HomePc, d, budget);
        }
        let p = (self.u.diligence * if weekend { 0.35 } else { 1.0 } * ramp).min(0.95);
        if !self.rng.random_bool(p) {
            return;
        }
        if self.plan.cfg.lookalikes && !self.caught_up && frac >= 0.6 && self.rng.random_bool(0.03)
        {
            self.caught_up = true;
            let target_x2 = self.r(21, 30) as u32;
            self.binge(out, d, target_x2);
            return;
        }
        if self.plan.cfg.lookalikes && self.rng.random_bool(0.06) {
            self.long_lecture(out, d);
            return;
        }
        // (from, to) minutes after local midnight, and the device used then.
        let slots: &[(i64, i64, Dev)] = match (self.u.chrono, weekend) {
            (_, true) => &[
                (600, 720, Dev::HomePc),
                (900, 1020, Dev::Phone),
                (1200, 1320, Dev::HomePc),
            ],
            (Chrono::Office, false) => &[
                (720, 795, Dev::OfficePc),
                (900, 1020, Dev::OfficePc),
                (1170, 1290, Dev::Phone),
            ],
            (Chrono::Commuter, false) => &[
                (435, 495, Dev::Phone),
                (730, 780, Dev::OfficePc),
                (1080, 1140, Dev::Phone),
            ],
            (Chrono::NightOwl, false) => &[(1260, 1320, Dev::HomePc), (1380, 1470, Dev::Phone)],
        };
        let mut k =
            1 + usize::from(self.rng.random_bool(0.35)) + usize::from(self.rng.random_bool(0.12));
        k = k.min(slots.len());
        let mut chosen: Vec<usize> = (0..slots.len()).collect();
        while chosen.len() > k {
            let i = self.rng.random_range(0..chosen.len());
            chosen.remove(i);
        }
        for i in chosen {
            let (from, to, mut dev) = slots[i];
            if dev == Dev::Phone && !self.u.has_phone {
                dev = Dev::HomePc;
            }
            let start = mid + self.r(from, to) * MIN + self.r(0, 59_999) * MS;
            let budget = ((self.r(8, 45) * MIN) as f64 * (1.0 + 0.6 * frac * frac)) as i64;
            let start = self.fit(start, dev, d);
            if start > mid + 26 * HOUR {
                break;
            }
            self.honest_session(out, start, dev, d, budget);
        }
    }

    /// Moves a session start past the previous session (with the device-switch gap).
    fn fit(&mut self, start: i64, dev: Dev, d: u32) -> i64 {
        let device = self.pick_device(dev, d);
        let gap = if device == self.last_device {
            self.r(5, 15) * MIN
        } else {
            DEVICE_SWITCH_GAP + self.r(0, 30) * MIN
        };
        start.max(self.busy_until + gap)
    }

    /// The device of a session kind on day `d`.
    fn pick_device(&self, dev: Dev, d: u32) -> u64 {
        match dev {
            // Pairs use the training-room PC every other day, both of them on the same days.
            Dev::OfficePc => match self.u.shared_pc {
                Some(pair) if d % 2 == 0 => mix(
                    self.plan.cfg.seed,
                    Stream::Device,
                    0xFFFF_0000 | u64::from(pair),
                ),
                _ => self.device_id(1),
            },
            Dev::HomePc => self.device_id(1),
            Dev::Phone => self.device_id(2),
            Dev::Tablet => mix(
                self.plan.cfg.seed,
                Stream::Device,
                0xFFFE_0000 | u64::from(self.u.household.unwrap_or(0)),
            ),
        }
    }

    fn open_ctx(&mut self, dev: Dev, d: u32, skew_allowed: bool) -> Ctx {
        self.sess_no += 1;
        let city = self.city_on(d);
        let away = city != self.u.city;
        let device = self.pick_device(dev, d);
        let (ip, platform) = match dev {
            Dev::OfficePc if !away => (Plan::office_ip(self.u.org), self.u.pc_platform),
            Dev::OfficePc | Dev::HomePc => (home_ip(self.home_idx(), away), self.u.pc_platform),
            Dev::Phone => (mobile_ip(&mut self.rng), self.u.phone_platform),
            Dev::Tablet => (home_ip(self.home_idx(), false), self.u.phone_platform),
        };
        let c = &CITIES[city];
        let latency = self.r(60, 600) * MS;
        let skew = if skew_allowed { self.em.draw_skew() } else { 0 };
        Ctx {
            sess: self.sess_no,
            device,
            ip,
            geo: Some((c.lat_e4, c.lon_e4)),
            platform,
            tz_min: c.tz_min,
            skew_us: skew,
            latency_us: latency,
        }
    }

    fn emit(&mut self, out: &mut Chunk, ctx: &Ctx, r: Rec) {
        self.em.emit(out, ctx, &r, &self.plan.catalog);
    }

    // ---------------------------------------------------------------- honest study

    fn honest_session(&mut self, out: &mut Chunk, start: i64, dev: Dev, d: u32, budget: i64) {
        let ctx = self.open_ctx(dev, d, true);
        self.emit(out, &ctx, Rec::new(EventType::Login, start));
        let end = start + budget;
        let mut t = start + self.r(2_000, 10_000) * MS;
        let mut courses = 0;
        let mut last: Option<usize> = None;
        // At most two courses per session, the second only after 5 minutes: honest navigation
        // stays far below rapid_switching's 6 changes in 10 minutes.
        while courses < 2 && t < end && (courses == 0 || t - start >= 5 * MIN) {
            let Some(c) = self.pick_course(last) else {
                break;
            };
            courses += 1;
            last = Some(c);
            self.progress[c].started = true;
            self.emit(out, &ctx, Rec::new(EventType::CourseEnter, t).course(c));
            t += self.r(1_000, 4_000) * MS;
            let n = self.course(c).lessons_ms.len();
            loop {
                if self.all_watched(c) {
                    let credits = self.course(c).credits_x2();
                    if !self.progress[c].quiz_passed
                        && self.credits_24h(t) + credits <= HONEST_CAP_X2
                    {
                        let (t2, passed) = self.quiz(out, &ctx, c, t, None);
                        t = t2;
                        if passed {
                            t = self.complete(out, c, t);
                        }
                    }
                    break;
                }
                if t >= end {
                    break;
                }
                let l = (0..n)
                    .find(|&l| self.progress[c].watched & (1 << l) == 0)
                    .unwrap_or(0);
                let style = Style {
                    honest: true,
                    adv_pm: self.u.pref_rate_pm,
                    report_pm: self.u.pref_rate_pm,
                    hide_after: None,
                    stop_at_ms: None,
                };
                let (t2, ended) = self.play(out, &ctx, c, l, t, end, style);
                t = t2;
                if !ended {
                    break;
                }
                t += self.r(2_000, 8_000) * MS;
            }
            t += self.r(1_000, 3_000) * MS;
            self.emit(out, &ctx, Rec::new(EventType::CourseLeave, t).course(c));
            t += self.r(2_000, 20_000) * MS;
        }
        if self.rng.random_bool(0.8) {
            self.emit(out, &ctx, Rec::new(EventType::Logout, t));
        }
        self.busy_until = t;
        self.last_device = ctx.device;
    }

    /// The learner whose home address this learner's home has: of a household, its member
    /// listed first in the plan.
    fn home_idx(&self) -> u32 {
        match self.u.household {
            Some(h) => {
                let [a, b] = self.plan.households[h as usize].members;
                a.min(b)
            }
            None => self.u.idx,
        }
    }

    /// On a household's evening (see [`crate::plan::Household`]), this member's turns on the
    /// family tablet and a session on their own laptop at home (the first to take a turn after
    /// the turns, the other before them). Both members draw the evening's schedule from the
    /// same stream. Returns whether `d` was such an evening.
    fn household_evening(&mut self, out: &mut Chunk, d: u32) -> bool {
        let Some(h) = self.u.household else {
            return false;
        };
        let plan = self.plan;
        let house = &plan.households[h as usize];
        if !house.days.contains(&d) {
            return false;
        }
        let me = usize::from(house.members[0] != self.u.idx);
        let mut rng = rng_for(
            self.plan.cfg.seed,
            Stream::Household,
            u64::from(h) << 16 | u64::from(d),
        );
        let turns = match house.strength {
            Strength::Blatant => rng.random_range(4..=5),
            Strength::Subtle => 3,
        };
        let mid = self.local_midnight(d, self.tz());
        let mut start = mid + rng.random_range(18 * 60 + 30..=19 * 60 + 30) * MIN;
        let mut mine = Vec::new();
        for turn in 0..turns {
            let budget = rng.random_range(18..=24) * MIN;
            if turn % 2 == me {
                mine.push((start, budget));
            }
            start += 30 * MIN + rng.random_range(3..=8) * MIN;
        }
        let own_budget = self.r(10, 15) * MIN;
        if me == 1 {
            let before = mine[0].0 - DEVICE_SWITCH_GAP - own_budget - 10 * MIN;
            self.honest_session(out, before, Dev::HomePc, d, own_budget);
        }
        for (at, budget) in mine {
            let at = at.max(self.busy_until + DEVICE_SWITCH_GAP);
            self.honest_session(out, at, Dev::Tablet, d, budget);
        }
        if me == 0 {
            let after = self.fit(self.busy_until, Dev::HomePc, d);
            self.honest_session(out, after, Dev::HomePc, d, own_budget);
        }
        true
    }

    /// An honest evening with one long course watched from start to end at 1× without touching
    /// the player (lessons play on by themselves); the learner still answers the attention
    /// checks. Night owls start later.
    fn long_lecture(&mut self, out: &mut Chunk, d: u32) {
        let Some(c) = self.fresh_course(|c| c.duration_s >= 40 * 60, None) else {
            return;
        };
        let mid = self.local_midnight(d, self.tz());
        let evening = if self.u.chrono == Chrono::NightOwl {
            21 * 60
        } else {
            19 * 60
        };
        let start = mid + self.r(evening, evening + 60) * MIN;
        let start = self.fit(start, Dev::HomePc, d);
        let ctx = self.open_session(out, Dev::HomePc, d, start);
        let mut t = start + self.r(2_000, 8_000) * MS;
        self.emit(out, &ctx, Rec::new(EventType::CourseEnter, t).course(c));
        t += self.r(1_000, 4_000) * MS;
        for l in 0..self.course(c).lessons_ms.len() {
            if self.progress[c].watched & (1 << l) == 0 {
                let (t2, _) = self.play(out, &ctx, c, l, t, i64::MAX, Style::plain());
                t = t2 + self.r(300, 1_500) * MS;
            }
        }
        if self.credits_24h(t) + self.course(c).credits_x2() <= HONEST_CAP_X2 {
            let (t2, passed) = self.quiz(out, &ctx, c, t, None);
            t = t2;
            if passed {
                t = self.complete(out, c, t);
            }
        }
        self.leave_and_log_out(out, &ctx, c, t);
    }

    fn honest_classroom(&mut self, out: &mut Chunk, d: u32, c: usize) {
        let tz = self.tz();
        let start = self.local_midnight(d, tz) + self.r(18, 28) * 30 * MIN + self.r(-300, 60) * SEC;
        if start < self.busy_until + DEVICE_SWITCH_GAP {
            return;
        }
        let course = self.course(c);
        let ctx = if self.u.has_phone {
            let mut ctx = self.open_ctx(Dev::Phone, d, false);
            ctx.sess = 0;
            ctx
        } else {
            let mut ctx = self.open_ctx(Dev::HomePc, d, false);
            ctx.sess = 0;
            ctx
        };
        let method = if self.u.has_phone {
            if self.rng.random_bool(0.7) {
                CheckinMethod::Qr
            } else {
                CheckinMethod::Face
            }
        } else {
            CheckinMethod::Manual
        };
        self.emit(
            out,
            &ctx,
            Rec::new(EventType::Checkin, start).course(c).method(method),
        );
        let end = start + i64::from(course.duration_s) * SEC + self.r(5, 30) * MIN;
        if self.credits_24h(end) + course.credits_x2() <= HONEST_CAP_X2 {
            self.complete(out, c, end);
        }
        self.busy_until = self.busy_until.max(end);
        self.last_device = ctx.device;
    }

    fn all_watched(&self, c: usize) -> bool {
        let n = self.course(c).lessons_ms.len();
        self.progress[c].watched == (1u64 << n) - 1
    }

    fn credits_24h(&self, t: i64) -> u32 {
        self.claims
            .iter()
            .filter(|(at, _)| *at > t - DAY)
            .map(|(_, c)| c)
            .sum()
    }

    /// The course to study next: one in progress first, else a new one (mandatory ones more
    /// often), never `exclude`.
    fn pick_course(&mut self, exclude: Option<usize>) -> Option<usize> {
        let catalog = &self.plan.catalog;
        if let Some(c) = catalog.online().find(|&c| {
            let p = self.progress[c];
            p.started && !p.completed && Some(c) != exclude
        }) {
            return Some(c);
        }
        self.fresh_course(|_| true, exclude)
    }

    /// A random online course not started yet, matching `want` when one does.
    fn fresh_course(
        &mut self,
        want: impl Fn(&Course) -> bool,
        exclude: Option<usize>,
    ) -> Option<usize> {
        let catalog = &self.plan.catalog;
        let fresh: Vec<usize> = catalog
            .online()
            .filter(|&c| !self.progress[c].started && Some(c) != exclude)
            .collect();
        if fresh.is_empty() {
            return None;
        }
        let good: Vec<usize> = fresh
            .iter()
            .copied()
            .filter(|&c| want(&catalog.courses[c]))
            .collect();
        let pool = if good.is_empty() { &fresh } else { &good };
        let mandatory: Vec<usize> = pool
            .iter()
            .copied()
            .filter(|&c| catalog.courses[c].category == Category::Mandatory)
            .collect();
        let c = if !mandatory.is_empty() && self.rng.random_bool(0.4) {
            mandatory[self.rng.random_range(0..mandatory.len())]
        } else {
            pool[self.rng.random_range(0..pool.len())]
        };
        self.progress[c].started = true;
        Some(c)
    }

    /// Plays lesson `l` of course `c` from the saved position until it ends (`true`) or the
    /// deadline passes (`false`, paused, position saved).
    #[allow(clippy::too_many_arguments)]
    fn play(
        &mut self,
        out: &mut Chunk,
        ctx: &Ctx,
        c: usize,
        l: usize,
        mut t: i64,
        deadline: i64,
        style: Style,
    ) -> (i64, bool) {
        let dur = self.course(c).lessons_ms[l];
        let mut pos = self.progress[c].pos_ms;
        if pos >= dur - 1000 {
            pos = 0;
        }
        let mut adv = i64::from(style.adv_pm);
        let mut rep = style.report_pm;
        if style.honest && rep != 1000 {
            self.emit(
                out,
                ctx,
                Rec::new(EventType::VideoRate, t).lesson(c, l).rate(rep),
            );
        }
        self.emit(
            out,
            ctx,
            Rec::new(EventType::VideoPlay, t)
                .lesson(c, l)
                .pos(pos)
                .dur(dur)
                .rate(rep),
        );
        self.clicked = true;
        let lesson_start = t;
        let (mut seg_t, mut seg_p) = (t, pos);
        let mut hidden_until: Option<i64> = None;
        let mut last_hidden_end = t - 10 * MIN;
        let mut stop_at = style.stop_at_ms;
        let pos_at =
            |seg_t: i64, seg_p: i64, adv: i64, at: i64| seg_p + (at - seg_t) / MS * adv / 1000;
        loop {
            let next = self.next_beat(t);
            let end_t = seg_t + (((dur - seg_p) * 1000 + adv - 1) / adv) * MS;
            if let Some(h) = style.hide_after {
                let at = lesson_start + h;
                if self.page_visible && at < next.min(end_t) {
                    self.emit(
                        out,
                        ctx,
                        Rec::new(EventType::Visibility, at)
                            .lesson(c, l)
                            .visible(false),
                    );
                    self.page_visible = false;
                    self.muted = true;
                }
            }
            if let Some(stop) = stop_at {
                let t_stop = seg_t + (((stop - seg_p) * 1000 + adv - 1) / adv) * MS;
                if t_stop <= next && t_stop < end_t {
                    // Drag the progress bar to the end: pause, seek, play out the last 3 s.
                    let p_stop = pos_at(seg_t, seg_p, adv, t_stop);
                    self.emit(
                        out,
                        ctx,
                        Rec::new(EventType::VideoPause, t_stop)
                            .lesson(c, l)
                            .pos(p_stop)
                            .dur(dur),
                    );
                    let t_seek = t_stop + self.r(800, 2_500) * MS;
                    let to = dur - 3_000;
                    self.emit(
                        out,
                        ctx,
                        Rec::new(EventType::VideoSeek, t_seek)
                            .lesson(c, l)
                            .seek(p_stop, to),
                    );
                    t = t_seek + self.r(500, 2_000) * MS;
                    self.emit(
                        out,
                        ctx,
                        Rec::new(EventType::VideoPlay, t)
                            .lesson(c, l)
                            .pos(to)
                            .dur(dur),
                    );
                    (seg_t, seg_p) = (t, to);
                    stop_at = None;
                    continue;
                }
            }
            if end_t <= next {
                if let Some(h) = hidden_until.take() {
                    self.emit(
                        out,
                        ctx,
                        Rec::new(EventType::Visibility, h.min(end_t))
                            .lesson(c, l)
                            .visible(true),
                    );
                }
                self.emit(
                    out,
                    ctx,
                    Rec::new(EventType::VideoEnded, end_t)
                        .lesson(c, l)
                        .pos(dur)
                        .dur(dur),
                );
                self.progress[c].pos_ms = 0;
                self.progress[c].watched |= 1 << l;
                return (end_t, true);
            }
            if next > deadline {
                let mut pause_t = t;
                if let Some(h) = hidden_until.take() {
                    self.emit(
                        out,
                        ctx,
                        Rec::new(EventType::Visibility, h)
                            .lesson(c, l)
                            .visible(true),
                    );
                    pause_t = pause_t.max(h);
                }
                let p = pos_at(seg_t, seg_p, adv, pause_t);
                self.emit(
                    out,
                    ctx,
                    Rec::new(EventType::VideoPause, pause_t)
                        .lesson(c, l)
                        .pos(p)
                        .dur(dur),
                );
                self.progress[c].pos_ms = p;
                return (pause_t, false);
            }
            if let Some(h) = hidden_until {
                if h <= next {
                    self.emit(
                        out,
                        ctx,
                        Rec::new(EventType::Visibility, h)
                            .lesson(c, l)
                            .visible(true),
                    );
                    hidden_until = None;
                    last_hidden_end = h;
                }
            }
            t = next;
            pos = pos_at(seg_t, seg_p, adv, t);
            let visible = self.page_visible && hidden_until.is_none();
            let mut beat = Rec::new(EventType::Heartbeat, t)
                .lesson(c, l)
                .pos(pos)
                .playing(true)
                .visible(visible)
                .muted(self.muted)
                .rate(rep);
            if self.plan.cfg.client_signals {
                beat = beat.inputs(self.input_count());
            }
            self.emit(out, ctx, beat);
            if self.plan.cfg.client_signals && visible && self.rng.random_bool(1.0 / 32.0) {
                if let Some(resume) = self.attention_check(out, ctx, c, l, t, pos, rep) {
                    (seg_t, seg_p, t) = (resume, pos, resume);
                }
            }
            if !style.honest || hidden_until.is_some() {
                continue;
            }
            let x: f64 = self.rng.random();
            if x < 0.02 && pos < dur - 20_000 {
                // A pause: the page stays open and keeps sending heartbeats.
                self.emit(
                    out,
                    ctx,
                    Rec::new(EventType::VideoPause, t)
                        .lesson(c, l)
                        .pos(pos)
                        .dur(dur),
                );
                let resume = t + self.r(20, 240) * SEC;
                let mut tp = t + self.hb();
                while tp < resume {
                    self.emit(
                        out,
                        ctx,
                        Rec::new(EventType::Heartbeat, tp)
                            .lesson(c, l)
                            .pos(pos)
                            .playing(false)
                            .visible(true)
                            .rate(rep),
                    );
                    tp += self.hb();
                }
                self.emit(
                    out,
                    ctx,
                    Rec::new(EventType::VideoPlay, resume)
                        .lesson(c, l)
                        .pos(pos)
                        .dur(dur)
                        .rate(rep),
                );
                (seg_t, seg_p, t) = (resume, pos, resume);
            } else if x < 0.05 && t - last_hidden_end >= 3 * MIN {
                // A short look at another tab: 5–45 s, at most one per 3 minutes, so the hidden
                // share of any lesson stays below 0.25.
                let h0 = t + self.r(1_000, 5_000) * MS;
                self.emit(
                    out,
                    ctx,
                    Rec::new(EventType::Visibility, h0)
                        .lesson(c, l)
                        .visible(false),
                );
                hidden_until = Some(h0 + self.r(5, 45) * SEC);
            } else if x < 0.062 {
                let rates = [1000u32, 1250, 1500, 1750, 2000];
                let new = rates[self.rng.random_range(0..rates.len())];
                if new != rep {
                    self.emit(
                        out,
                        ctx,
                        Rec::new(EventType::VideoRate, t).lesson(c, l).rate(new),
                    );
                    rep = new;
                    adv = i64::from(new);
                    (seg_t, seg_p) = (t, pos);
                }
            } else if x < 0.075 && pos > 40_000 {
                // Re-watch: seek backwards only (an honest learner never skips ahead).
                let back = self.r(10, (pos / 1000 - 5).min(60)) * 1000;
                self.emit(
                    out,
                    ctx,
                    Rec::new(EventType::VideoSeek, t)
                        .lesson(c, l)
                        .seek(pos, pos - back),
                );
                (seg_t, seg_p) = (t, pos - back);
            }
        }
    }

    /// Hands in the course quiz; `fast` = Some((seconds per question ×1000 range, min score)).
    fn quiz(
        &mut self,
        out: &mut Chunk,
        ctx: &Ctx,
        c: usize,
        t: i64,
        fast: Option<((i64, i64), i64)>,
    ) -> (i64, bool) {
        let questions = self.r(8, 20);
        let (spq_ms, score) = match fast {
            None => {
                // Honest: at least 4 s per question, whatever the score.
                let spq = (self.u.quiz_pace_s * self.rng.random_range(0.6..1.6)).max(4.0);
                let correct = (0..questions)
                    .filter(|_| self.rng.random_bool(self.u.ability))
                    .count() as i64;
                (
                    (spq * 1000.0) as i64,
                    (correct * 100 + questions / 2) / questions,
                )
            }
            Some(((lo, hi), min_score)) => (self.r(lo, hi), self.r(min_score, 100)),
        };
        let elapsed = spq_ms * questions;
        let at = t + self.r(3, 20) * SEC + elapsed * MS;
        self.emit(
            out,
            ctx,
            Rec::new(EventType::QuizSubmit, at).course(c).quiz(Quiz {
                score,
                questions,
                elapsed_ms: elapsed,
            }),
        );
        self.last_quiz = (at, elapsed, questions);
        let passed = score >= 60;
        if passed {
            self.progress[c].quiz_passed = true;
        }
        (at, passed)
    }

    fn complete(&mut self, out: &mut Chunk, c: usize, t: i64) -> i64 {
        let at = t + self.r(1_000, 8_000) * MS;
        let ctx = Ctx::server(self.tz());
        self.emit(out, &ctx, Rec::new(EventType::CourseComplete, at).course(c));
        self.progress[c].completed = true;
        self.progress[c].quiz_passed = true;
        self.claims.push((at, self.course(c).credits_x2()));
        at
    }

    // ---------------------------------------------------------------- episodes

    fn label(
        &mut self,
        p: Pattern,
        s: Strength,
        course: Option<usize>,
        from: i64,
        to: i64,
        claims: &[usize],
        detail: String,
    ) {
        let catalog = &self.plan.catalog;
        self.labels.push(Label {
            rule: p.rule().to_string(),
            course_id: course.map(|c| catalog.courses[c].id.clone()),
            window_start: format_rfc3339_us(from / MS * MS),
            window_end: format_rfc3339_us(to / MS * MS),
            strength: s,
            claims: claims
                .iter()
                .map(|&c| catalog.courses[c].id.clone())
                .collect(),
            detail,
        });
    }

    /// Start of an episode session: in the evening, well after anything earlier.
    fn episode_start(&mut self, d: u32) -> i64 {
        let mid = self.local_midnight(d, self.tz());
        let start = mid + self.r(18 * 60, 21 * 60) * MIN + self.r(0, 59_999) * MS;
        start.max(self.busy_until + DEVICE_SWITCH_GAP + self.r(0, 10) * MIN)
    }

    /// Opens a session on the home PC in the evening of day `d` and enters course `c`; returns
    /// the session, its login time and when its first lesson can start.
    fn evening_session_in(&mut self, out: &mut Chunk, d: u32, c: usize) -> (Ctx, i64, i64) {
        let t0 = self.episode_start(d);
        let ctx = self.open_session(out, Dev::HomePc, d, t0);
        let t = t0 + self.r(2_000, 8_000) * MS;
        self.emit(out, &ctx, Rec::new(EventType::CourseEnter, t).course(c));
        (ctx, t0, t + self.r(1_000, 3_000) * MS)
    }

    /// Leaves course `c` a few seconds after `t` and logs out.
    fn leave_and_log_out(&mut self, out: &mut Chunk, ctx: &Ctx, c: usize, t: i64) {
        let t = t + self.r(2_000, 5_000) * MS;
        self.emit(out, ctx, Rec::new(EventType::CourseLeave, t).course(c));
        self.close_session(out, ctx, t);
    }

    fn own_dev(&self) -> Dev {
        if self.u.has_phone && self.u.chrono == Chrono::Commuter {
            Dev::Phone
        } else {
            Dev::HomePc
        }
    }

    fn open_session(&mut self, out: &mut Chunk, dev: Dev, d: u32, t: i64) -> Ctx {
        let ctx = self.open_ctx(dev, d, false);
        self.emit(out, &ctx, Rec::new(EventType::Login, t));
        ctx
    }

    fn close_session(&mut self, out: &mut Chunk, ctx: &Ctx, t: i64) -> i64 {
        let t = t + self.r(2_000, 10_000) * MS;
        self.emit(out, ctx, Rec::new(EventType::Logout, t));
        self.busy_until = t;
        self.last_device = ctx.device;
        t
    }

    /// Plays the unwatched lessons of `c` plainly, then quiz and completion; returns the time.
    fn finish_course(
        &mut self,
        out: &mut Chunk,
        ctx: &Ctx,
        c: usize,
        mut t: i64,
        fast_quiz: Option<((i64, i64), i64)>,
    ) -> i64 {
        let n = self.course(c).lessons_ms.len();
        for l in 0..n {
            if self.progress[c].watched & (1 << l) == 0 {
                let (t2, _) = self.play(out, ctx, c, l, t, i64::MAX, Style::plain());
                t = t2 + self.r(2_000, 6_000) * MS;
            }
        }
        let (t2, _) = self.quiz(out, ctx, c, t, fast_quiz.or(Some(((6_000, 20_000), 70))));
        self.complete(out, c, t2)
    }

    fn short(c: &Course) -> bool {
        c.duration_s <= 45 * 60
    }

    fn episode(&mut self, out: &mut Chunk, d: u32, p: Pattern, s: Strength) {
        match p {
            Pattern::BackgroundPlayback => self.ep_background(out, d, s),
            Pattern::Speed => self.ep_speed(out, d, s),
            Pattern::LowCoverage => self.ep_low_coverage(out, d, s),
            Pattern::ConcurrentSessions => self.ep_concurrent(out, d, s),
            Pattern::ImpossibleTravel => self.ep_travel(out, d, s),
            Pattern::RapidSwitching => self.ep_switching(out, d, s),
            Pattern::ParallelPlayback => self.ep_parallel(out, d, s),
            Pattern::CreditBurst => self.ep_burst(out, d, s),
            Pattern::QuizTooFast => self.ep_quiz(out, d, s),
            Pattern::SharedDevice => self.ep_shared_device(out, d, s),
            Pattern::ScriptedPlayback => self.ep_scripted(out, d, s, false),
            Pattern::TimerCadence => self.ep_scripted(out, d, s, true),
            Pattern::MissedChecks => self.ep_checks(out, d, s, Pattern::MissedChecks),
            Pattern::MachineResponses => self.ep_checks(out, d, s, Pattern::MachineResponses),
            Pattern::NoInput => self.ep_no_input(out, d, s),
            Pattern::ProxyLearning => self.ep_proxy(out, d, s),
            Pattern::ProxyAlternating => self.ep_proxy_alternating(out, d, s),
        }
    }

    /// A browser extension deals with the platform's attention checks during an evening of
    /// courses, while the learner is elsewhere: `MissedChecks` suppresses them (the video plays
    /// on), `MachineResponses` answers them (blatant: in 0.25–0.6 s; subtle: after 2 s ± 30 ms).
    /// Courses are played, plainly, until enough checks were dealt with (6 missed or answered
    /// fast; subtle: 3 missed or 10 answered regularly), one course at least.
    fn ep_checks(&mut self, out: &mut Chunk, d: u32, s: Strength, p: Pattern) {
        if !self.plan.cfg.client_signals {
            return;
        }
        let Some(first) = self.fresh_course(|_| true, None) else {
            return;
        };
        self.checks = match (p, s) {
            (Pattern::MissedChecks, _) => Checks::Ignore,
            (_, Strength::Blatant) => Checks::AnswerFast,
            (_, Strength::Subtle) => Checks::AnswerRegular,
        };
        self.check_counts = (0, 0);
        // A margin over the rules' 2 missed, 4 fast or 10 regular answers a day: a check shown
        // just before a lesson or course ends is not followed by play within a minute.
        let needed = match (p, s) {
            (Pattern::MissedChecks, Strength::Subtle) => 3,
            (Pattern::MachineResponses, Strength::Subtle) => 10,
            _ => 6,
        };
        let dealt = |sim: &Self| match p {
            Pattern::MissedChecks => sim.check_counts.0,
            _ => sim.check_counts.1,
        };
        let (ctx, _, mut t) = self.evening_session_in(out, d, first);
        let from = t;
        let (mut course, mut courses) = (first, vec![first]);
        loop {
            t = self.finish_course(out, &ctx, course, t, None);
            if dealt(self) >= needed {
                break;
            }
            let Some(next) = self.fresh_course(|_| true, None) else {
                break;
            };
            self.emit(
                out,
                &ctx,
                Rec::new(EventType::CourseLeave, t + SEC).course(course),
            );
            self.emit(
                out,
                &ctx,
                Rec::new(EventType::CourseEnter, t + 2 * SEC).course(next),
            );
            t += 3 * SEC;
            (course, courses) = (next, [courses, vec![next]].concat());
        }
        self.checks = Checks::Person;
        self.leave_and_log_out(out, &ctx, course, t);
        let count = dealt(self);
        let enough = match (p, s) {
            (Pattern::MissedChecks, _) => 3,
            (_, Strength::Blatant) => 4,
            (_, Strength::Subtle) => 10,
        };
        if count >= enough {
            let detail = match p {
                Pattern::MissedChecks => {
                    format!("{count} attention checks suppressed while playing")
                }
                _ => format!("{count} attention checks answered by a script"),
            };
            self.label(p, s, None, from, t, &courses, detail);
        }
    }

    /// A colleague does the learner's courses on the colleague's own laptop at the colleague's
    /// home, late in the evening after the colleague's own study (blatant: two courses; subtle:
    /// one course of 15 minutes or more). The learner never uses that laptop otherwise.
    fn ep_proxy(&mut self, out: &mut Chunk, d: u32, s: Strength) {
        let Some(helper) = self.u.proxy_helper else {
            return;
        };
        let helper = &self.plan.users[helper as usize];
        let Some(first) = self.fresh_course(|c| c.duration_s >= 15 * 60 && Self::short(c), None)
        else {
            return;
        };
        let city = &CITIES[helper.city];
        let mid = self.local_midnight(d, city.tz_min);
        let mut t =
            (mid + self.r(22 * 60 + 30, 23 * 60) * MIN).max(self.busy_until + DEVICE_SWITCH_GAP);
        let ctx = self.helper_ctx(helper);
        self.emit(out, &ctx, Rec::new(EventType::Login, t));
        let from = t;
        let count = if s == Strength::Blatant { 2 } else { 1 };
        let mut courses = Vec::new();
        let mut course = first;
        loop {
            t += self.r(2_000, 6_000) * MS;
            self.emit(
                out,
                &ctx,
                Rec::new(EventType::CourseEnter, t).course(course),
            );
            t = self.finish_course(out, &ctx, course, t + 2 * SEC, None);
            courses.push(course);
            if courses.len() >= count {
                break;
            }
            let Some(next) = self.fresh_course(|c| Self::short(c), None) else {
                break;
            };
            self.emit(
                out,
                &ctx,
                Rec::new(EventType::CourseLeave, t + SEC).course(course),
            );
            course = next;
        }
        self.leave_and_log_out(out, &ctx, course, t);
        let detail = format!(
            "{} course(s) done on colleague {}'s laptop at the colleague's home",
            courses.len(),
            helper.user_id
        );
        self.label(Pattern::ProxyLearning, s, None, from, t, &courses, detail);
    }

    /// A new session on the helper's laptop at the helper's home.
    fn helper_ctx(&mut self, helper: &UserSpec) -> Ctx {
        let city = &CITIES[helper.city];
        self.sess_no += 1;
        Ctx {
            sess: self.sess_no,
            device: mix(
                self.plan.cfg.seed,
                Stream::Device,
                u64::from(helper.idx) << 8 | 1,
            ),
            ip: home_ip(helper.idx, false),
            geo: Some((city.lat_e4, city.lon_e4)),
            platform: helper.pc_platform,
            tz_min: city.tz_min,
            skew_us: 0,
            latency_us: self.r(60, 600) * MS,
        }
    }

    /// A colleague does the learner's courses on the colleague's laptop in two sessions of one
    /// evening, before and after their own study there (19:00–20:00): the laptop goes from the
    /// learner's account to the colleague's and back. Blatant: two courses a session; subtle:
    /// one. Not planted where the evening spans the start of a business day (the day
    /// `alternating_accounts` counts in).
    fn ep_proxy_alternating(&mut self, out: &mut Chunk, d: u32, s: Strength) {
        let Some(helper) = self.u.proxy_helper else {
            return;
        };
        let helper = &self.plan.users[helper as usize];
        let mid = self.local_midnight(d, CITIES[helper.city].tz_min);
        // The rule counts changes of hands per business day: where the evening spans the start
        // of one it cannot see them, and nothing is planted.
        let business_day = |t: i64| (t - BUSINESS_DAY_START_UTC).div_euclid(DAY);
        if business_day(mid + 16 * HOUR) != business_day(mid + 23 * HOUR + 30 * MIN) {
            return;
        }
        let per_session = if s == Strength::Blatant { 2 } else { 1 };
        let (mut courses, mut from, mut to) = (Vec::new(), None, 0);
        for (lo, hi) in [(16 * 60, 16 * 60 + 30), (21 * 60, 21 * 60 + 30)] {
            let mut t = (mid + self.r(lo, hi) * MIN).max(self.busy_until + DEVICE_SWITCH_GAP);
            let ctx = self.helper_ctx(helper);
            self.emit(out, &ctx, Rec::new(EventType::Login, t));
            from.get_or_insert(t);
            for _ in 0..per_session {
                let Some(c) = self.fresh_course(|c| Self::short(c), None) else {
                    break;
                };
                t += self.r(2_000, 6_000) * MS;
                self.emit(out, &ctx, Rec::new(EventType::CourseEnter, t).course(c));
                t = self.finish_course(out, &ctx, c, t + 2 * SEC, None);
                self.emit(
                    out,
                    &ctx,
                    Rec::new(EventType::CourseLeave, t + SEC).course(c),
                );
                t += 2 * SEC;
                courses.push(c);
            }
            to = self.close_session(out, &ctx, t);
        }
        if courses.is_empty() {
            return;
        }
        let detail = format!(
            "{} course(s) done on colleague {}'s laptop before and after the colleague's own study",
            courses.len(),
            helper.user_id
        );
        self.label(
            Pattern::ProxyAlternating,
            s,
            None,
            from.unwrap_or(to),
            to,
            &courses,
            detail,
        );
    }

    /// A player extension plays two courses or more for 1⅔–2¾ h, answering the attention checks
    /// through the page at a person's pace, and never touches keyboard, mouse or screen.
    fn ep_no_input(&mut self, out: &mut Chunk, d: u32, s: Strength) {
        if !self.plan.cfg.client_signals {
            return;
        }
        let Some(first) = self.fresh_course(|_| true, None) else {
            return;
        };
        let target = match s {
            Strength::Blatant => self.r(140, 165) * MIN,
            Strength::Subtle => self.r(100, 110) * MIN,
        };
        let (ctx, _, mut t) = self.evening_session_in(out, d, first);
        let from = t;
        (self.no_input, self.beat, self.checks) = (
            true,
            Some(Beat::Page { period: 15 * SEC }),
            Checks::AnswerPaced,
        );
        let (mut course, mut courses) = (first, vec![first]);
        let mut ended = t;
        loop {
            for l in 0..self.course(course).lessons_ms.len() {
                if self.progress[course].watched & (1 << l) == 0 {
                    let (t2, _) = self.play(out, &ctx, course, l, t, i64::MAX, Style::plain());
                    ended = t2;
                    t = t2 + self.r(300, 1_500) * MS;
                }
            }
            t = self.complete(out, course, t);
            if ended - from >= target && courses.len() >= 2 {
                break;
            }
            // Stay under 2⅚ h, clear of `unbroken_play`'s 3 h.
            let room = 170 * MIN - (ended - from);
            let fits = |c: &Course| i64::from(c.duration_s) * SEC <= room;
            let Some(next) = self.fresh_course(fits, None) else {
                break;
            };
            if !fits(self.course(next)) {
                self.progress[next].started = false;
                break;
            }
            self.emit(
                out,
                &ctx,
                Rec::new(EventType::CourseLeave, t + SEC).course(course),
            );
            self.emit(
                out,
                &ctx,
                Rec::new(EventType::CourseEnter, t + 2 * SEC).course(next),
            );
            t += 3 * SEC;
            (course, courses) = (next, [courses, vec![next]].concat());
        }
        (self.no_input, self.beat, self.checks) = (false, None, Checks::Person);
        self.leave_and_log_out(out, &ctx, course, t);
        if ended - from >= 91 * MIN && courses.len() >= 2 {
            let detail = format!(
                "{} courses over {:.0} min without any input",
                courses.len(),
                (ended - from) as f64 / MIN as f64
            );
            self.label(Pattern::NoInput, s, None, from, t, &courses, detail);
        }
    }

    /// The heartbeats a script's timer (see [`Beat::Timer`]) sends in `from..to`, while no
    /// lesson plays: for lesson `l` of `course`, about to start.
    fn timer_beats_between(
        &mut self,
        out: &mut Chunk,
        ctx: &Ctx,
        course: usize,
        l: usize,
        from: i64,
        to: i64,
    ) {
        let Some(Beat::Timer { anchor, period }) = self.beat else {
            return;
        };
        let mut at = anchor + (from - anchor + period - 1).div_euclid(period) * period;
        while at <= to {
            let pos = self.progress[course].pos_ms;
            self.emit(
                out,
                ctx,
                Rec::new(EventType::Heartbeat, at)
                    .lesson(course, l)
                    .pos(pos)
                    .playing(true)
                    .visible(true),
            );
            at += period;
        }
    }

    /// A helper script plays course after course at 1× from the evening into the night: no
    /// pause, seek, rate change or tab switch, the next course entered seconds after the last
    /// one completes. Blatant: 4.5–6 h; subtle: just over 3 h and three courses or more. With
    /// `timer`, the script's own timer sends a heartbeat exactly every 15 s (`timer_cadence`);
    /// without, the page in a real browser does, with jitter.
    fn ep_scripted(&mut self, out: &mut Chunk, d: u32, s: Strength, timer: bool) {
        let Some(first) = self.fresh_course(|c| !Self::short(c), None) else {
            return;
        };
        let target = match s {
            Strength::Blatant => self.r(270, 360) * MIN,
            Strength::Subtle => self.r(195, 215) * MIN,
        };
        let (ctx, _, mut t) = self.evening_session_in(out, d, first);
        let from = t;
        (self.checks, self.no_input, self.check_counts) = (Checks::Ignore, true, (0, 0));
        self.beat = Some(if timer {
            Beat::Timer {
                anchor: t,
                period: 15 * SEC,
            }
        } else {
            Beat::Page { period: 15 * SEC }
        });
        let (mut course, mut courses) = (first, vec![first]);
        // When the last lesson ended: a script's timer keeps firing between lessons.
        let mut ended = t;
        loop {
            for l in 0..self.course(course).lessons_ms.len() {
                if self.progress[course].watched & (1 << l) == 0 {
                    self.timer_beats_between(out, &ctx, course, l, ended, t);
                    let (t2, _) = self.play(out, &ctx, course, l, t, i64::MAX, Style::plain());
                    ended = t2;
                    t = t2 + self.r(300, 1_500) * MS;
                }
            }
            t = self.complete(out, course, t);
            if t - from >= target && courses.len() >= 3 {
                break;
            }
            let Some(next) = self.fresh_course(|_| true, None) else {
                break;
            };
            self.emit(
                out,
                &ctx,
                Rec::new(EventType::CourseLeave, t + SEC).course(course),
            );
            self.emit(
                out,
                &ctx,
                Rec::new(EventType::CourseEnter, t + 2 * SEC).course(next),
            );
            t += 3 * SEC;
            (course, courses) = (next, [courses, vec![next]].concat());
        }
        self.beat = None;
        (self.checks, self.no_input) = (Checks::Person, false);
        self.leave_and_log_out(out, &ctx, course, t);
        if self.plan.cfg.client_signals {
            // The platform asked its questions and counted input all night: nobody was there.
            self.label(
                Pattern::NoInput,
                s,
                None,
                from,
                t,
                &courses,
                "no keyboard, mouse or touch input all night".to_string(),
            );
            if self.check_counts.0 >= 2 {
                let detail = format!(
                    "{} attention checks missed while playing",
                    self.check_counts.0
                );
                self.label(Pattern::MissedChecks, s, None, from, t, &courses, detail);
            }
        }
        let detail = format!(
            "{} courses played back to back for {:.0} min without a pause, seek or tab switch",
            courses.len(),
            (t - from) as f64 / MIN as f64
        );
        if timer {
            self.label(
                Pattern::TimerCadence,
                s,
                None,
                from,
                t,
                &courses,
                "heartbeats exactly every 15 s from the script's timer".to_string(),
            );
        }
        self.label(
            Pattern::ScriptedPlayback,
            s,
            None,
            from,
            t,
            &courses,
            detail,
        );
    }

    fn ep_background(&mut self, out: &mut Chunk, d: u32, s: Strength) {
        let Some(c) = self.fresh_course(|c| Self::short(c) && c.credits <= 4.0, None) else {
            return;
        };
        let (ctx, _, mut t) = self.evening_session_in(out, d, c);
        let lessons = self.course(c).lessons_ms.clone();
        // Subtle: only the longest lesson (≥ 7 min) plays in the background, hidden share 0.84–0.9.
        let target = (0..lessons.len()).max_by_key(|&l| lessons[l]).unwrap_or(0);
        let share = self.rng.random_range(0.84..0.90);
        let (mut from, mut to, mut hidden_ms, mut play_ms) = (i64::MAX, 0, 0i64, 0i64);
        for (l, &dur) in lessons.iter().enumerate() {
            let cheat = s == Strength::Blatant || l == target;
            let mut style = Style::plain();
            if cheat {
                let visible_ms = match s {
                    Strength::Blatant => self.r(10_000, 30_000),
                    Strength::Subtle => ((1.0 - share) * dur as f64) as i64,
                };
                style.hide_after = Some(visible_ms * MS);
                play_ms += dur;
                if self.page_visible {
                    hidden_ms += dur - visible_ms;
                    from = from.min(t + visible_ms * MS);
                } else {
                    hidden_ms += dur;
                }
            }
            let (t2, _) = self.play(out, &ctx, c, l, t, i64::MAX, style);
            t = t2;
            if !self.page_visible && (s == Strength::Subtle || l + 1 == lessons.len()) {
                to = t;
                t += self.r(5_000, 20_000) * MS;
                self.emit(out, &ctx, Rec::new(EventType::Visibility, t).visible(true));
                self.page_visible = true;
                self.muted = false;
            }
            t += self.r(2_000, 6_000) * MS;
        }
        let t = self.finish_course(out, &ctx, c, t, None);
        self.leave_and_log_out(out, &ctx, c, t);
        let detail = format!(
            "hidden and muted {:.0} s of {:.0} s played (share {:.2})",
            hidden_ms as f64 / 1e3,
            play_ms as f64 / 1e3,
            hidden_ms as f64 / play_ms as f64
        );
        self.label(
            Pattern::BackgroundPlayback,
            s,
            Some(c),
            from,
            to,
            &[c],
            detail,
        );
    }

    fn ep_speed(&mut self, out: &mut Chunk, d: u32, s: Strength) {
        let Some(c) = self.fresh_course(|c| Self::short(c) && c.credits <= 4.0, None) else {
            return;
        };
        let (ctx, _, mut t) = self.evening_session_in(out, d, c);
        let lessons = self.course(c).lessons_ms.clone();
        let target = (0..lessons.len()).max_by_key(|&l| lessons[l]).unwrap_or(0);
        let (mut from, mut to, mut factor) = (i64::MAX, 0, 0.0f64);
        for l in 0..lessons.len() {
            let mut style = Style::plain();
            if s == Strength::Blatant || l == target {
                // The helper script moves the position; the player keeps reporting 1.0×.
                let adv = match s {
                    Strength::Blatant => self.r(3_000, 6_000),
                    Strength::Subtle => self.r(2_250, 2_600),
                } as u32;
                style.adv_pm = adv;
                factor = factor.max(f64::from(adv) / 1000.0);
                from = from.min(t);
                let (t2, _) = self.play(out, &ctx, c, l, t, i64::MAX, style);
                to = t2;
                t = t2;
            } else {
                let (t2, _) = self.play(out, &ctx, c, l, t, i64::MAX, style);
                t = t2;
            }
            t += self.r(2_000, 6_000) * MS;
        }
        let t = self.finish_course(out, &ctx, c, t, None);
        self.leave_and_log_out(out, &ctx, c, t);
        self.label(
            Pattern::Speed,
            s,
            Some(c),
            from,
            to,
            &[c],
            format!("position advances {factor:.2}× wall clock while the player reports 1.0×"),
        );
        // Content that advanced faster than 2× was not watched: when what played at a plausible
        // speed falls short of the course's minimum, the completion claim is low coverage too.
        let total: i64 = lessons.iter().sum();
        let plausible: i64 = (0..lessons.len())
            .filter(|&l| !(s == Strength::Blatant || l == target))
            .map(|l| lessons[l])
            .sum();
        let share = plausible as f64 / total.max(1) as f64;
        let need = self.course(c).min_watch_ratio;
        if share < need {
            self.label(
                Pattern::LowCoverage,
                s,
                Some(c),
                from,
                to,
                &[c],
                format!(
                    "{:.0} % of the content played at a plausible speed (≤ 2×); the course requires {:.0} %",
                    share * 100.0,
                    need * 100.0
                ),
            );
        }
    }

    fn ep_low_coverage(&mut self, out: &mut Chunk, d: u32, s: Strength) {
        let Some(c) = self.fresh_course(|c| Self::short(c) && c.credits <= 4.0, None) else {
            return;
        };
        let course = self.course(c);
        let lessons = course.lessons_ms.clone();
        let total: i64 = lessons.iter().sum();
        let tail = 3_000 * lessons.len() as i64;
        let target = match s {
            Strength::Blatant => self.rng.random_range(0.03..0.15),
            Strength::Subtle => course.min_watch_ratio - self.rng.random_range(0.06..0.12),
        };
        // Each lesson: the first `frac` of it, then the last 3 s; together `target` of the course.
        let frac = ((target * total as f64 - tail as f64) / total as f64).max(0.01);
        let (ctx, t0, mut t) = self.evening_session_in(out, d, c);
        let mut covered = 0;
        for (l, &dur) in lessons.iter().enumerate() {
            let stop = ((frac * dur as f64) as i64).max(5_000);
            covered += stop + 3_000;
            let style = Style {
                stop_at_ms: Some(stop),
                ..Style::plain()
            };
            let (t2, _) = self.play(out, &ctx, c, l, t, i64::MAX, style);
            t = t2 + self.r(2_000, 6_000) * MS;
        }
        let t = self.finish_course(out, &ctx, c, t, None);
        let end = t;
        self.leave_and_log_out(out, &ctx, c, t);
        let ratio = self.course(c).min_watch_ratio;
        self.label(
            Pattern::LowCoverage,
            s,
            Some(c),
            t0,
            end,
            &[c],
            format!(
                "covered {:.2} of the content, {ratio} required",
                covered as f64 / total as f64
            ),
        );
    }

    fn new_track(
        &mut self,
        ctx: Ctx,
        c: usize,
        l: usize,
        t: i64,
        muted: bool,
        cycle: bool,
    ) -> Track {
        Track {
            ctx,
            c,
            l,
            seg_t: t,
            seg_p: 0,
            next: t + self.hb(),
            last: t,
            muted,
            cycle,
            active: true,
        }
    }

    fn start_track(&mut self, out: &mut Chunk, tr: &Track) {
        let dur = self.course(tr.c).lessons_ms[tr.l];
        self.emit(
            out,
            &tr.ctx,
            Rec::new(EventType::VideoPlay, tr.seg_t)
                .lesson(tr.c, tr.l)
                .pos(tr.seg_p)
                .dur(dur),
        );
    }

    /// Plays several tracks at once (1×, visible) until `until` or until all have run out of
    /// lessons; active tracks are paused at their last heartbeat.
    fn run_tracks(&mut self, out: &mut Chunk, tracks: &mut [Track], until: i64, pause: bool) {
        loop {
            let Some(i) = (0..tracks.len())
                .filter(|&i| tracks[i].active)
                .min_by_key(|&i| tracks[i].next)
            else {
                break;
            };
            if tracks[i].next > until {
                break;
            }
            let (c, l) = (tracks[i].c, tracks[i].l);
            let dur = self.course(c).lessons_ms[l];
            let end_t = tracks[i].seg_t + (dur - tracks[i].seg_p) * MS;
            if end_t <= tracks[i].next {
                let ctx = tracks[i].ctx;
                self.emit(
                    out,
                    &ctx,
                    Rec::new(EventType::VideoEnded, end_t)
                        .lesson(c, l)
                        .pos(dur)
                        .dur(dur),
                );
                self.progress[c].watched |= 1 << l;
                let n = self.course(c).lessons_ms.len();
                let tr = &mut tracks[i];
                tr.last = end_t;
                if tr.l + 1 < n || tr.cycle {
                    tr.l = (tr.l + 1) % n;
                    tr.seg_t = end_t + self.rng.random_range(2_000..=6_000) * MS;
                    tr.seg_p = 0;
                    tr.next = tr.seg_t + self.rng.random_range(3750..=7500i64) * 4 * MS;
                    tr.last = tr.seg_t;
                    let tr = &tracks[i];
                    self.start_track(out, tr);
                } else {
                    tr.active = false;
                }
                continue;
            }
            let tr = &tracks[i];
            let at = tr.next;
            let pos = tr.seg_p + (at - tr.seg_t) / MS;
            let ctx = tr.ctx;
            let muted = tr.muted;
            self.emit(
                out,
                &ctx,
                Rec::new(EventType::Heartbeat, at)
                    .lesson(c, l)
                    .pos(pos)
                    .playing(true)
                    .visible(true)
                    .muted(muted),
            );
            let hb = self.hb();
            let tr = &mut tracks[i];
            tr.last = at;
            tr.next = at + hb;
        }
        for i in 0..tracks.len() {
            if pause && tracks[i].active {
                let tr = &tracks[i];
                let (c, l, at) = (tr.c, tr.l, tr.last);
                let pos = tr.seg_p + (at - tr.seg_t) / MS;
                let dur = self.course(c).lessons_ms[l];
                let ctx = tr.ctx;
                self.emit(
                    out,
                    &ctx,
                    Rec::new(EventType::VideoPause, at)
                        .lesson(c, l)
                        .pos(pos)
                        .dur(dur),
                );
                self.progress[c].pos_ms = pos;
                tracks[i].active = false;
            }
        }
    }

    fn ep_concurrent(&mut self, out: &mut Chunk, d: u32, s: Strength) {
        let Some(c) = self.fresh_course(|c| Self::short(c) && c.lessons_ms.len() >= 2, None) else {
            return;
        };
        let n = self.course(c).lessons_ms.len();
        let t0 = self.episode_start(d);
        let dev = self.own_dev();
        let a = self.open_session(out, dev, d, t0);
        let mut t = t0 + self.r(2_000, 8_000) * MS;
        self.emit(out, &a, Rec::new(EventType::CourseEnter, t).course(c));
        t += self.r(1_000, 3_000) * MS;
        let mut ta = self.new_track(a, c, 0, t, false, true);
        self.start_track(out, &ta);
        // The shared account: a colleague's PC on another network, no location known.
        self.extra_devices += 1;
        self.sess_no += 1;
        let b = Ctx {
            sess: self.sess_no,
            device: self.device_id(16 + self.extra_devices),
            ip: u32::from_be_bytes([192, 0, 2, 0]) | (self.u.idx % 250 + 1),
            geo: None,
            platform: Platform::Web,
            tz_min: a.tz_min,
            skew_us: 0,
            latency_us: 150 * MS,
        };
        let tb0 = t + self.r(2, 6) * MIN;
        let overlap = match s {
            Strength::Blatant => self.r(30, 90) * MIN,
            Strength::Subtle => self.r(150, 240) * SEC,
        };
        // Play A alone until B logs in.
        self.run_tracks(out, std::slice::from_mut(&mut ta), tb0, false);
        self.emit(out, &b, Rec::new(EventType::Login, tb0));
        self.emit(
            out,
            &b,
            Rec::new(EventType::CourseEnter, tb0 + 2 * SEC).course(c),
        );
        let tbp = tb0 + 4 * SEC;
        let tb = self.new_track(b, c, n / 2, tbp, false, true);
        self.start_track(out, &tb);
        let mut tracks = [ta, tb];
        let tb_end = tb0 + overlap;
        self.run_tracks(out, &mut tracks, tb_end - 10 * SEC, true);
        // Both devices played parts of lessons: restart the current one from its beginning.
        self.progress[c].pos_ms = 0;
        let b_last = tracks[1].last.max(tb_end - 10 * SEC);
        self.emit(
            out,
            &b,
            Rec::new(EventType::CourseLeave, b_last + 2 * SEC).course(c),
        );
        let tb1 = b_last + 4 * SEC;
        self.emit(out, &b, Rec::new(EventType::Logout, tb1));
        let t = tracks[0].last.max(tb1) + self.r(3_000, 10_000) * MS;
        let t = self.finish_course(out, &a, c, t, None);
        let t = t + self.r(2_000, 5_000) * MS;
        self.emit(out, &a, Rec::new(EventType::CourseLeave, t).course(c));
        self.close_session(out, &a, t);
        self.label(
            Pattern::ConcurrentSessions,
            s,
            Some(c),
            tb0,
            tb1,
            &[c],
            format!(
                "second device on another network for {:.0} s during the session",
                (tb1 - tb0) as f64 / 1e6
            ),
        );
    }

    fn ep_travel(&mut self, out: &mut Chunk, d: u32, s: Strength) {
        let Some(c) = self.fresh_course(|c| Self::short(c), None) else {
            return;
        };
        let home = &CITIES[self.u.city];
        let (far, dist, gap) = match s {
            Strength::Blatant => {
                let far = (0..CITIES.len())
                    .max_by_key(|&k| distance_km(home, &CITIES[k]) as i64)
                    .unwrap_or(0);
                (far, distance_km(home, &CITIES[far]), self.r(10, 40) * MIN)
            }
            Strength::Subtle => {
                // The nearest site at least 500 km away, reached at 1.15–1.4× the 900 km/h limit.
                let near = (0..CITIES.len())
                    .filter(|&k| distance_km(home, &CITIES[k]) >= 500.0)
                    .min_by_key(|&k| distance_km(home, &CITIES[k]) as i64)
                    .unwrap_or(0);
                let dist = distance_km(home, &CITIES[near]);
                let v = self.rng.random_range(1.15..1.4) * 900.0;
                (near, dist, (dist / v * 3600.0 * 1e6) as i64 / MS * MS)
            }
        };
        let t0 = self.episode_start(d);
        let dev = self.own_dev();
        let a = self.open_session(out, dev, d, t0);
        let mut t = t0 + self.r(2_000, 8_000) * MS;
        self.emit(out, &a, Rec::new(EventType::CourseEnter, t).course(c));
        t += self.r(1_000, 3_000) * MS;
        let stop = t + self.r(6, 15) * MIN;
        let (t2, _) = self.play(out, &a, c, 0, t, stop, Style::plain());
        let t = t2 + self.r(2_000, 5_000) * MS;
        self.emit(out, &a, Rec::new(EventType::CourseLeave, t).course(c));
        let t1 = self.close_session(out, &a, t);
        let t2 = t1 + gap;
        let city = &CITIES[far];
        self.extra_devices += 1;
        self.sess_no += 1;
        let b = Ctx {
            sess: self.sess_no,
            device: self.device_id(16 + self.extra_devices),
            ip: u32::from_be_bytes([198, 51, 100, 0]) | (self.u.idx % 250 + 1),
            geo: Some((city.lat_e4, city.lon_e4)),
            platform: Platform::Web,
            tz_min: city.tz_min,
            skew_us: 0,
            latency_us: 250 * MS,
        };
        self.emit(out, &b, Rec::new(EventType::Login, t2));
        let t = t2 + self.r(2_000, 8_000) * MS;
        self.emit(out, &b, Rec::new(EventType::CourseEnter, t).course(c));
        let t = self.finish_course(out, &b, c, t + 2 * SEC, None);
        let t = t + self.r(2_000, 5_000) * MS;
        self.emit(out, &b, Rec::new(EventType::CourseLeave, t).course(c));
        let end = self.close_session(out, &b, t);
        // Nothing from home until a plane could have brought the learner back.
        self.busy_until = end + (dist / 500.0 * 3600.0 * 1e6) as i64;
        let kmh = dist / ((t2 - t1) as f64 / 3.6e9);
        self.label(
            Pattern::ImpossibleTravel,
            s,
            None,
            t1,
            t2,
            &[c],
            format!(
                "{} → {}: {dist:.0} km in {:.0} min = {kmh:.0} km/h",
                home.name,
                city.name,
                (t2 - t1) as f64 / 6e7
            ),
        );
    }

    fn ep_switching(&mut self, out: &mut Chunk, d: u32, s: Strength) {
        let k = if s == Strength::Blatant {
            self.r(4, 5)
        } else {
            3
        } as usize;
        let mut set = Vec::new();
        for _ in 0..k {
            if let Some(c) = self.fresh_course(|c| Self::short(c), None) {
                set.push(c);
            }
        }
        if set.len() < 2 {
            return;
        }
        let (changes, visit) = match s {
            Strength::Blatant => (self.r(14, 24), self.r(20, 35) * SEC),
            Strength::Subtle => (7, self.r(62, 70) * SEC),
        };
        let t0 = self.episode_start(d);
        let ctx = self.open_session(out, Dev::HomePc, d, t0);
        let mut t = t0 + self.r(2_000, 8_000) * MS;
        let from = t;
        let mut to = t;
        for v in 0..=changes as usize {
            let c = set[v % set.len()];
            let dur = self.course(c).lessons_ms[0];
            let mut pos = self.progress[c].pos_ms;
            if pos + visit / MS + 5_000 > dur {
                pos = 0;
            }
            self.emit(out, &ctx, Rec::new(EventType::CourseEnter, t).course(c));
            let tp = t + SEC;
            self.emit(
                out,
                &ctx,
                Rec::new(EventType::VideoPlay, tp)
                    .lesson(c, 0)
                    .pos(pos)
                    .dur(dur),
            );
            let stop = t + visit - 2 * SEC;
            let mut th = tp + self.r(3750, 4500) * 4 * MS;
            while th < stop {
                self.emit(
                    out,
                    &ctx,
                    Rec::new(EventType::Heartbeat, th)
                        .lesson(c, 0)
                        .pos(pos + (th - tp) / MS)
                        .playing(true)
                        .visible(true),
                );
                th += self.hb();
            }
            let p = pos + (stop - tp) / MS;
            self.emit(
                out,
                &ctx,
                Rec::new(EventType::VideoPause, stop)
                    .lesson(c, 0)
                    .pos(p)
                    .dur(dur),
            );
            self.progress[c].pos_ms = p;
            to = t + visit - SEC;
            self.emit(out, &ctx, Rec::new(EventType::CourseLeave, to).course(c));
            t += visit;
        }
        let c = set[0];
        self.emit(
            out,
            &ctx,
            Rec::new(EventType::CourseEnter, t + 3 * SEC).course(c),
        );
        let t = self.finish_course(out, &ctx, c, t + 5 * SEC, None);
        self.leave_and_log_out(out, &ctx, c, t);
        self.label(
            Pattern::RapidSwitching,
            s,
            None,
            from,
            to,
            &[c],
            format!(
                "{changes} course changes in {:.0} s",
                (to - from) as f64 / 1e6
            ),
        );
    }

    fn ep_parallel(&mut self, out: &mut Chunk, d: u32, s: Strength) {
        let Some(x) = self.fresh_course(|c| Self::short(c) && c.duration_s >= 15 * 60, None) else {
            return;
        };
        let Some(y) = self.fresh_course(|c| Self::short(c) && c.duration_s >= 15 * 60, Some(x))
        else {
            return;
        };
        let t0 = self.episode_start(d);
        let ctx = self.open_session(out, Dev::HomePc, d, t0);
        let mut t = t0 + self.r(2_000, 8_000) * MS;
        self.emit(out, &ctx, Rec::new(EventType::CourseEnter, t).course(x));
        t += 2 * SEC;
        let tx = self.new_track(ctx, x, 0, t, false, false);
        self.start_track(out, &tx);
        let ty0 = t + self.r(20, 60) * SEC;
        self.emit(out, &ctx, Rec::new(EventType::CourseEnter, ty0).course(y));
        // The second window plays muted beside the first; both stay visible.
        let ty = self.new_track(ctx, y, 0, ty0 + 2 * SEC, true, false);
        self.start_track(out, &ty);
        let mut tracks = [tx, ty];
        let until = match s {
            Strength::Blatant => i64::MAX,
            Strength::Subtle => ty0 + self.r(300, 420) * SEC,
        };
        self.run_tracks(out, &mut tracks, until, true);
        let overlap_end = tracks[0].last.min(tracks[1].last);
        let mut t = tracks[0].last.max(tracks[1].last) + self.r(2_000, 6_000) * MS;
        self.emit(out, &ctx, Rec::new(EventType::CourseLeave, t).course(y));
        t += 2 * SEC;
        let mut claims = vec![x];
        if s == Strength::Blatant {
            t = self.finish_course(out, &ctx, y, t, None);
            claims.push(y);
        }
        let t = self.finish_course(out, &ctx, x, t + 2 * SEC, None);
        let t = t + self.r(2_000, 5_000) * MS;
        self.emit(out, &ctx, Rec::new(EventType::CourseLeave, t).course(x));
        self.close_session(out, &ctx, t);
        self.label(
            Pattern::ParallelPlayback,
            s,
            Some(x),
            ty0 + 2 * SEC,
            overlap_end,
            &claims,
            format!(
                "two courses playing together for {:.0} s",
                (overlap_end - ty0) as f64 / 1e6
            ),
        );
    }

    fn ep_burst(&mut self, out: &mut Chunk, d: u32, s: Strength) {
        let target_x2 = match s {
            Strength::Blatant => self.r(36, 44),
            Strength::Subtle => self.r(21, 24),
        } as u32;
        let (claimed, done, first, last) = if self.plan.cfg.unwatched_bursts {
            // A helper watches every evening: that watching would support the claims (the rule
            // then rightly leaves the day to `low_coverage`), so no unwatched burst is planted.
            if self.u.helps {
                return;
            }
            self.unwatched_claims(out, d, target_x2)
        } else {
            self.binge(out, d, target_x2)
        };
        if !done.is_empty() {
            let how = if self.plan.cfg.unwatched_bursts {
                ", without watching them"
            } else {
                ""
            };
            self.label(
                Pattern::CreditBurst,
                s,
                None,
                first,
                last,
                &done,
                format!(
                    "{} credits claimed from {} courses in one day{how}",
                    f64::from(claimed) / 2.0,
                    done.len()
                ),
            );
            if self.plan.cfg.unwatched_bursts {
                // Completions without the watching behind them are low coverage too.
                for &c in &done {
                    let ratio = self.course(c).min_watch_ratio;
                    self.label(
                        Pattern::LowCoverage,
                        s,
                        Some(c),
                        first,
                        last,
                        &[c],
                        format!("completed after a glance at the first lesson, {ratio} required"),
                    );
                }
            }
        }
    }

    /// The hours of day `d` in which a day's claims stay inside one local and one UTC day.
    fn one_day_window(&self, d: u32) -> (i64, i64) {
        let mid = self.local_midnight(d, self.tz());
        let utc_day = (mid + 12 * HOUR).div_euclid(DAY) * DAY;
        let lo = (mid + 8 * HOUR).max(utc_day);
        let hi = (mid + 23 * HOUR).min(utc_day + DAY) - 10 * MIN;
        (lo, hi)
    }

    /// Fresh short courses watched in full at 1.5–2× in sessions of 80–110 minutes until
    /// `target_x2` half-credits are claimed or the day ends: an honest catch-up (and the old
    /// credit-burst pattern). Returns (half-credits claimed, courses, first and last claim).
    fn binge(&mut self, out: &mut Chunk, d: u32, target_x2: u32) -> (u32, Vec<usize>, i64, i64) {
        let (lo, hi) = self.one_day_window(d);
        let mut t = (lo + self.r(0, 30) * MIN).max(self.busy_until + DEVICE_SWITCH_GAP);
        let (mut claimed, mut done, mut first, mut last) = (0u32, Vec::new(), 0i64, 0i64);
        'sessions: while claimed < target_x2 && t < hi {
            let ctx = self.open_session(out, Dev::HomePc, d, t);
            let session_end = t + self.r(80, 110) * MIN;
            t += self.r(2_000, 8_000) * MS;
            while claimed < target_x2 && t < session_end {
                let Some(c) = self.fresh_course(|c| c.credits >= 1.0 && Self::short(c), None)
                else {
                    break 'sessions;
                };
                // A binge at an honest 1.5–2×: fully watched, quizzes at a reading pace.
                let rate = [1500u32, 1750, 2000][self.rng.random_range(0..3)];
                let need =
                    self.course(c).lessons_ms.iter().sum::<i64>() * 1000 / i64::from(rate) * MS;
                if t + need + 10 * MIN > hi {
                    self.progress[c].started = false;
                    break 'sessions;
                }
                self.emit(out, &ctx, Rec::new(EventType::CourseEnter, t).course(c));
                t += 2 * SEC;
                let n = self.course(c).lessons_ms.len();
                for l in 0..n {
                    let style = Style {
                        adv_pm: rate,
                        report_pm: rate,
                        ..Style::plain()
                    };
                    let (t2, _) = self.play(out, &ctx, c, l, t, i64::MAX, style);
                    t = t2 + self.r(2_000, 5_000) * MS;
                }
                let (t2, _) = self.quiz(out, &ctx, c, t, Some(((6_000, 15_000), 70)));
                t = self.complete(out, c, t2);
                if first == 0 {
                    first = t;
                }
                last = t;
                claimed += self.course(c).credits_x2();
                done.push(c);
                t += self.r(2_000, 5_000) * MS;
                self.emit(out, &ctx, Rec::new(EventType::CourseLeave, t).course(c));
                t += self.r(3_000, 10_000) * MS;
            }
            t = self.close_session(out, &ctx, t) + self.r(5, 15) * MIN;
        }
        (claimed, done, first, last)
    }

    /// Claims fresh short courses in one session without watching them: each course entered,
    /// its first lesson played for 30–90 s, the quiz handed in at a reading pace (answers
    /// looked up), the completion claimed.
    fn unwatched_claims(
        &mut self,
        out: &mut Chunk,
        d: u32,
        target_x2: u32,
    ) -> (u32, Vec<usize>, i64, i64) {
        let (lo, hi) = self.one_day_window(d);
        let mut t = (lo + self.r(0, 120) * MIN).max(self.busy_until + DEVICE_SWITCH_GAP);
        let ctx = self.open_session(out, Dev::HomePc, d, t);
        t += self.r(2_000, 8_000) * MS;
        let (mut claimed, mut done, mut first, mut last) = (0u32, Vec::new(), 0i64, 0i64);
        while claimed < target_x2 && t < hi {
            let Some(c) = self.fresh_course(|c| c.credits >= 1.0 && Self::short(c), None) else {
                break;
            };
            self.emit(out, &ctx, Rec::new(EventType::CourseEnter, t).course(c));
            t += 2 * SEC;
            let glance = t + self.r(30, 90) * SEC;
            let (t2, _) = self.play(out, &ctx, c, 0, t, glance, Style::plain());
            let at = t2 + self.r(2_000, 5_000) * MS;
            let (t2, _) = self.quiz(out, &ctx, c, at, Some(((6_000, 15_000), 70)));
            t = self.complete(out, c, t2);
            if first == 0 {
                first = t;
            }
            last = t;
            claimed += self.course(c).credits_x2();
            done.push(c);
            t += self.r(2_000, 5_000) * MS;
            self.emit(out, &ctx, Rec::new(EventType::CourseLeave, t).course(c));
            t += self.r(3_000, 10_000) * MS;
        }
        self.close_session(out, &ctx, t);
        (claimed, done, first, last)
    }

    fn ep_quiz(&mut self, out: &mut Chunk, d: u32, s: Strength) {
        let Some(c) = self.fresh_course(|c| Self::short(c), None) else {
            return;
        };
        let t0 = self.episode_start(d);
        let dev = self.own_dev();
        let ctx = self.open_session(out, dev, d, t0);
        let t = t0 + self.r(2_000, 8_000) * MS;
        self.emit(out, &ctx, Rec::new(EventType::CourseEnter, t).course(c));
        let fast = match s {
            Strength::Blatant => ((400, 1_500), 100),
            Strength::Subtle => ((2_200, 2_850), 90),
        };
        let t = self.finish_course(out, &ctx, c, t + 2 * SEC, Some(fast));
        // The quiz_submit came just before the completion; its window is what the rule sees.
        let (quiz_at, elapsed, questions) = self.last_quiz;
        self.leave_and_log_out(out, &ctx, c, t);
        self.label(
            Pattern::QuizTooFast,
            s,
            Some(c),
            quiz_at - elapsed * MS,
            quiz_at,
            &[c],
            format!(
                "quiz answered in {:.1} s per question",
                elapsed as f64 / 1e3 / questions as f64
            ),
        );
    }

    fn ep_shared_device(&mut self, out: &mut Chunk, d: u32, s: Strength) {
        let Some((g, pos)) = self.u.group else { return };
        let group = &self.plan.groups[g as usize];
        let owner = &self.plan.users[group.members[0] as usize];
        let city = &CITIES[owner.city];
        let mid = self.local_midnight(d, city.tz_min);
        let start = mid + group.start_min * MIN;
        let at = start + i64::from(pos) * group.gap_s * SEC;
        let last = start + (group.members.len() as i64 - 1) * group.gap_s * SEC;
        let ctx = Ctx {
            sess: 0,
            device: mix(
                self.plan.cfg.seed,
                Stream::Device,
                u64::from(owner.idx) << 8 | 2,
            ),
            ip: group.ip,
            geo: Some((city.lat_e4, city.lon_e4)),
            platform: owner.phone_platform,
            tz_min: city.tz_min,
            skew_us: 0,
            latency_us: 200 * MS,
        };
        self.emit(
            out,
            &ctx,
            Rec::new(EventType::Checkin, at)
                .course(group.course)
                .method(CheckinMethod::Qr),
        );
        let course = self.course(group.course);
        let end = start + i64::from(course.duration_s) * SEC + self.r(5, 30) * MIN;
        self.complete(out, group.course, end);
        self.busy_until = self.busy_until.max(end);
        self.label(
            Pattern::SharedDevice,
            s,
            Some(group.course),
            start,
            last,
            &[group.course],
            format!(
                "one phone checked in {} accounts within {} s",
                group.members.len(),
                (last - start) / SEC
            ),
        );
    }
}

/// Home broadband address of a learner (198.18.0.0/15); a hotel network when away.
fn home_ip(idx: u32, away: bool) -> u32 {
    let base = u32::from_be_bytes([198, 18, 0, 0]);
    if away {
        base | 0x0001_0000 | (idx.wrapping_mul(2_654_435_761) & 0xFFFF)
    } else {
        base | (idx & 0xFFFF)
    }
}
