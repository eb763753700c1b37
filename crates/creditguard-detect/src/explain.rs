//! The explanation catalog: the sentence a reviewer reads for every rule, in English and Chinese,
//! in one place. A detector measures; it hands the measured facts of one flag to the rule's
//! function here, which words them with the thresholds they crossed. Keeping both languages side
//! by side keeps them saying the same thing.
//!
//! Times are shown in UTC (`HH:MM UTC`), durations in the largest readable unit ([`dur`]).

use creditguard_contract::time::{format_day, format_rfc3339_us};

use crate::config::{
    AutomationConfig, CourseSwitchingConfig, CreditBurstConfig, MultiLoginConfig, QuizSpeedConfig,
    SharedDeviceConfig, WatchTimeConfig,
};

/// One flag's explanation: `en` becomes the flag's `explanation`, `zh` its evidence's
/// `explanation_zh`.
pub(crate) struct Text {
    pub en: String,
    pub zh: String,
}

/// Human duration for explanations: `45 s`, `12.5 min`, `2.3 h`.
pub(crate) fn dur(s: f64) -> String {
    if s < 120.0 {
        format!("{s:.0} s")
    } else if s < 7200.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

/// 中文时长: `45 秒`, `12.5 分钟`, `2.3 小时`.
pub(crate) fn dur_zh(s: f64) -> String {
    if s < 120.0 {
        format!("{s:.0} 秒")
    } else if s < 7200.0 {
        format!("{:.1} 分钟", s / 60.0)
    } else {
        format!("{:.1} 小时", s / 3600.0)
    }
}

/// `HH:MM UTC` of a microsecond timestamp.
pub(crate) fn hhmm(t: i64) -> String {
    let s = format_rfc3339_us(t);
    format!("{} UTC", &s[11..16])
}

/// `YYYY-MM-DD` (UTC) of a microsecond timestamp.
pub(crate) fn date(t: i64) -> String {
    format_day(t.div_euclid(crate::DAY_US))
}

// --- watch_time -------------------------------------------------------------------------------

/// `watch_time.background_playback`: one course's lessons of a day.
pub(crate) struct BackgroundPlayback<'a> {
    pub course: &'a str,
    pub lessons: usize,
    pub play_s: f64,
    pub engaged_s: f64,
    pub hidden_share: f64,
    pub start: i64,
    pub end: i64,
}

pub(crate) fn background_playback(f: &BackgroundPlayback<'_>, cfg: &WatchTimeConfig) -> Text {
    let (c, ws, we) = (f.course, f.start, f.end);
    Text {
        en: format!(
            "Course {c}: {} lesson(s) played for {} between {} and {} on {}, {:.0}% of it in a hidden page (threshold {:.0}% over at least {} per lesson); engaged time was {}.",
            f.lessons, dur(f.play_s), hhmm(ws), hhmm(we), date(ws), f.hidden_share * 100.0,
            cfg.hidden_share * 100.0, dur(cfg.min_play_s), dur(f.engaged_s)
        ),
        zh: format!(
            "课程 {c}：{} {} 至 {} 期间有 {} 个课时共播放 {}，其中 {:.0}% 的时间页面处于隐藏状态（阈值：单课时至少播放 {} 且隐藏占比 {:.0}%）；有效学习时长 {}。",
            date(ws), hhmm(ws), hhmm(we), f.lessons, dur_zh(f.play_s), f.hidden_share * 100.0,
            dur_zh(cfg.min_play_s), cfg.hidden_share * 100.0, dur_zh(f.engaged_s)
        ),
    }
}

/// `watch_time.speed`: one course's fast playback of a day.
pub(crate) struct Speed<'a> {
    pub course: &'a str,
    pub start: i64,
    /// The rate past which playback counts as fast (`max_rate` plus its tolerance).
    pub fast_rate: f64,
    pub fast_s: f64,
    pub max_rate: f64,
}

pub(crate) fn speed(f: &Speed<'_>) -> Text {
    let c = f.course;
    Text {
        en: format!(
            "Course {c} on {}: the video position advanced faster than {:.2}× real time for {} of wall time (fastest {:.1}×), measured from positions against the clock.",
            date(f.start), f.fast_rate, dur(f.fast_s), f.max_rate
        ),
        zh: format!(
            "课程 {c}（{}）：按播放位置与实际时间计算，有 {} 的时间进度快于 {:.2} 倍速（最快 {:.1} 倍）。",
            date(f.start), dur_zh(f.fast_s), f.fast_rate, f.max_rate
        ),
    }
}

/// `watch_time.low_coverage`: one completion.
pub(crate) struct LowCoverage<'a> {
    pub course: &'a str,
    pub completed_at: i64,
    pub covered_s: f64,
    pub duration_s: f64,
    pub covered_ratio: f64,
    /// The required share (the catalog's `min_watch_ratio` or the default).
    pub required_ratio: f64,
}

pub(crate) fn low_coverage(f: &LowCoverage<'_>) -> Text {
    let (c, tc) = (f.course, f.completed_at);
    Text {
        en: format!(
            "Course {c} was marked complete at {} on {} with {:.0}% of its {} of content actually played at a plausible speed ({}); at least {:.0}% is required.",
            hhmm(tc), date(tc), f.covered_ratio * 100.0, dur(f.duration_s), dur(f.covered_s),
            f.required_ratio * 100.0
        ),
        zh: format!(
            "课程 {c} 于 {} {} 被标记为完成，但 {} 的内容中仅有 {:.0}%（{}）以正常速度实际播放；要求至少 {:.0}%。",
            date(tc), hhmm(tc), dur_zh(f.duration_s), f.covered_ratio * 100.0, dur_zh(f.covered_s),
            f.required_ratio * 100.0
        ),
    }
}

// --- multi_login ------------------------------------------------------------------------------

/// `multi_login.concurrent_sessions`: one pair of sessions on one day.
pub(crate) struct ConcurrentSessions<'a> {
    pub sessions: [&'a str; 2],
    pub devices: [&'a str; 2],
    pub overlap_s: f64,
    pub start: i64,
    pub end: i64,
}

pub(crate) fn concurrent_sessions(f: &ConcurrentSessions<'_>, cfg: &MultiLoginConfig) -> Text {
    let ([sa, sb], [da, db]) = (f.sessions, f.devices);
    Text {
        en: format!(
            "Sessions {sa} on device {da} and {sb} on device {db} were both active for {} at the same time between {} and {} on {} (threshold {}).",
            dur(f.overlap_s), hhmm(f.start), hhmm(f.end), date(f.start), dur(cfg.min_overlap_s)
        ),
        zh: format!(
            "{} {} 至 {} 期间，会话 {sa}（设备 {da}）与会话 {sb}（设备 {db}）同时活跃 {}（阈值 {}）。",
            date(f.start), hhmm(f.start), hhmm(f.end), dur_zh(f.overlap_s), dur_zh(cfg.min_overlap_s)
        ),
    }
}

/// `multi_login.impossible_travel`: a learner's day, by its fastest jump.
pub(crate) struct ImpossibleTravel {
    pub day_start: i64,
    pub hops: i64,
    pub fastest_km: f64,
    pub fastest_s: f64,
    pub fastest_kmh: f64,
}

pub(crate) fn impossible_travel(f: &ImpossibleTravel, cfg: &MultiLoginConfig) -> Text {
    Text {
        en: format!(
            "Activity {:.0} km apart {} apart on {} implies {:.0} km/h (threshold {:.0} km/h); {} such jump(s) that day.",
            f.fastest_km, dur(f.fastest_s), date(f.day_start), f.fastest_kmh, cfg.max_speed_kmh, f.hops
        ),
        zh: format!(
            "{} 相距 {:.0} 公里的两处活动仅间隔 {}，折合时速 {:.0} 公里（阈值 {:.0}）；当天共 {} 次此类跳跃。",
            date(f.day_start), f.fastest_km, dur_zh(f.fastest_s), f.fastest_kmh, cfg.max_speed_kmh, f.hops
        ),
    }
}

// --- course_switching -------------------------------------------------------------------------

/// `course_switching.rapid_switching`: one burst of switches.
pub(crate) struct RapidSwitching {
    pub start: i64,
    pub end: i64,
    pub changes: i64,
    pub courses: usize,
    /// The shortest time `min_changes` changes took inside the burst.
    pub fastest_s: f64,
    /// Changes out of working visits in the burst, not counted.
    pub not_counted: i64,
}

pub(crate) fn rapid_switching(f: &RapidSwitching, cfg: &CourseSwitchingConfig) -> Text {
    let (n, k, ws, we, skipped) = (f.changes, cfg.min_changes, f.start, f.end, f.not_counted);
    let work = cfg.work_event_types.join("/");
    let (not_en, not_zh) = if cfg.count_working_visits {
        (String::new(), String::new())
    } else {
        (
            format!(
                " Counted: changes out of visits with no {work}; {skipped} change(s) after such work in this window were not counted."
            ),
            format!("仅计入未做功（无 {work}）的访问之后的切换；此时段内另有 {skipped} 次做功后的切换未计入。"),
        )
    };
    Text {
        en: format!(
            "Switched course {n} times between {} and {} on {} across {} courses ({k} changes took only {}; threshold {k} changes in {}).{not_en}",
            hhmm(ws), hhmm(we), date(ws), f.courses, dur(f.fastest_s), dur(cfg.window_s)
        ),
        zh: format!(
            "{} {} 至 {} 期间在 {} 门课程之间切换了 {n} 次（{k} 次切换仅用时 {}；阈值为 {} 内 {k} 次）。{not_zh}",
            date(ws), hhmm(ws), hhmm(we), f.courses, dur_zh(f.fastest_s), dur_zh(cfg.window_s)
        ),
    }
}

/// `course_switching.parallel_playback`: one pair of courses on one day.
pub(crate) struct ParallelPlayback<'a> {
    pub courses: [&'a str; 2],
    pub overlap_s: f64,
    pub start: i64,
    pub end: i64,
}

pub(crate) fn parallel_playback(f: &ParallelPlayback<'_>, cfg: &CourseSwitchingConfig) -> Text {
    let [ca, cb] = f.courses;
    Text {
        en: format!(
            "Courses {ca} and {cb} were playing at the same time for {} between {} and {} on {} (threshold {}).",
            dur(f.overlap_s), hhmm(f.start), hhmm(f.end), date(f.start), dur(cfg.min_overlap_s)
        ),
        zh: format!(
            "{} {} 至 {} 期间，课程 {ca} 与 {cb} 同时播放了 {}（阈值 {}）。",
            date(f.start), hhmm(f.start), hhmm(f.end), dur_zh(f.overlap_s), dur_zh(cfg.min_overlap_s)
        ),
    }
}

// --- credit_burst -----------------------------------------------------------------------------

/// `credit_burst.poisson_tail`: one learner's day of claims.
pub(crate) struct CreditBurst {
    pub start: i64,
    pub end: i64,
    pub credits: f64,
    pub completions: i64,
    pub engaged_s: f64,
    pub required_s: f64,
    /// The Poisson tail `(x, λ, P(X ≥ x | λ))`, when it is below `alpha` (context only).
    pub tail: Option<(f64, f64, f64)>,
}

pub(crate) fn credit_burst(f: &CreditBurst, cfg: &CreditBurstConfig) -> Text {
    let (ws, we, c, nc) = (f.start, f.end, f.credits, f.completions);
    let unsupported_en = format!(
        "only {} of engaged watching in the last {} day(s) stands behind courses that require {} (less than {:.0}%)",
        dur(f.engaged_s), cfg.support_days, dur(f.required_s), cfg.support_ratio * 100.0
    );
    let unsupported_zh = format!(
        "近 {} 天有效观看仅 {}，不足课程要求 {} 的 {:.0}%",
        cfg.support_days,
        dur_zh(f.engaged_s),
        dur_zh(f.required_s),
        cfg.support_ratio * 100.0
    );
    let (why_en, why_zh) = match f.tail {
        Some((xv, lv, pv)) => (
            format!(
                "{unsupported_en}; the day's count is also unusual for the learner and peers, P(X ≥ {xv:.0} | λ = {lv:.2}) = {pv:.1e}, below {:.0e}",
                cfg.alpha
            ),
            format!(
                "{unsupported_zh}；当日数量相对本人及同部门也异常，泊松上尾概率 P(X ≥ {xv:.0} | λ = {lv:.2}) = {pv:.1e}，低于 {:.0e}",
                cfg.alpha
            ),
        ),
        None => (unsupported_en, unsupported_zh),
    };
    Text {
        en: format!(
            "{c:.1} credits from {nc} completed course(s) were claimed on {} between {} and {}: {why_en}.",
            date(ws), hhmm(ws), hhmm(we)
        ),
        zh: format!(
            "{} {} 至 {} 期间通过 {nc} 门课程申领了 {c:.1} 学分：{why_zh}。",
            date(ws), hhmm(ws), hhmm(we)
        ),
    }
}

// --- quiz_speed -------------------------------------------------------------------------------

/// `quiz_speed.too_fast`: one quiz submission.
pub(crate) struct TooFast<'a> {
    pub course: &'a str,
    pub quiz: &'a str,
    pub submitted_at: i64,
    pub questions: i64,
    pub elapsed_s: f64,
    pub seconds_per_question: f64,
    pub score_ratio: f64,
    /// The learner's fast first attempts that day, and all first attempts that day.
    pub fast_that_day: i64,
    pub first_attempts_that_day: i64,
}

pub(crate) fn too_fast(f: &TooFast<'_>, cfg: &QuizSpeedConfig) -> Text {
    let (c, qz, n, nf, nd) = (
        f.course,
        f.quiz,
        f.questions,
        f.fast_that_day,
        f.first_attempts_that_day,
    );
    let (exempt_en, exempt_zh) = if cfg.exempt_resubmissions {
        (" (re-submissions not judged)", "（重复提交不计）")
    } else {
        ("", "")
    };
    Text {
        en: format!(
            "Quiz {qz} of course {c} was submitted at {} after {:.0} s for {n} questions ({:.1} s per question, under {:.1} s) with a score of {:.0}%; {nf} of the learner's {nd} first-attempt quizzes that day were this fast{exempt_en}.",
            hhmm(f.submitted_at), f.elapsed_s, f.seconds_per_question, cfg.min_seconds_per_question,
            f.score_ratio * 100.0
        ),
        zh: format!(
            "课程 {c} 的测验 {qz} 于 {} 提交，{n} 道题仅用时 {:.0} 秒（每题 {:.1} 秒，低于 {:.1} 秒），得分率 {:.0}%；当天 {nd} 次首次作答中有 {nf} 次如此之快{exempt_zh}。",
            hhmm(f.submitted_at), f.elapsed_s, f.seconds_per_question, cfg.min_seconds_per_question,
            f.score_ratio * 100.0
        ),
    }
}

// --- shared_device ----------------------------------------------------------------------------

/// `shared_device.many_accounts`: one device on one day, for one of its accounts.
pub(crate) struct ManyAccounts<'a> {
    pub device: &'a str,
    pub accounts: i64,
    pub start: i64,
    pub end: i64,
}

pub(crate) fn many_accounts(f: &ManyAccounts<'_>, cfg: &SharedDeviceConfig) -> Text {
    let (d, n, ws, we) = (f.device, f.accounts, f.start, f.end);
    Text {
        en: format!(
            "Device {d} signed in {n} different accounts on {} between {} and {} (threshold {}), this account among them.",
            date(ws), hhmm(ws), hhmm(we), cfg.min_accounts
        ),
        zh: format!(
            "设备 {d} 于 {} {} 至 {} 期间为 {n} 个不同账号登录或签到（阈值 {} 个），其中包括本账号，疑似代签。",
            date(ws), hhmm(ws), hhmm(we), cfg.min_accounts
        ),
    }
}

// --- automation -------------------------------------------------------------------------------

/// A stretch of unbroken play, for the three `automation` rules about play.
pub(crate) struct Stretch {
    pub start: i64,
    pub end: i64,
    pub play_s: f64,
    pub courses: i64,
    pub intervals: i64,
    pub interval_std_s: f64,
    /// Heartbeats that reported an input count.
    pub input_reported: i64,
    /// Whether the stretch lies in hours the learner is otherwise never active.
    pub unusual_hours: bool,
}

impl Stretch {
    fn windows(&self) -> (String, String) {
        (
            format!("{} to {}", hhmm(self.start), hhmm(self.end)),
            format!("{} 至 {}", hhmm(self.start), hhmm(self.end)),
        )
    }

    fn hours_note(&self) -> (&'static str, &'static str) {
        if self.unusual_hours {
            (
                ", at hours the learner is otherwise never active",
                "，且处于该学员平时从不学习的时段",
            )
        } else {
            ("", "")
        }
    }
}

/// `automation.unbroken_play`.
pub(crate) fn unbroken_play(s: &Stretch, cfg: &AutomationConfig) -> Text {
    let ((window, window_zh), (note, note_zh)) = (s.windows(), s.hours_note());
    Text {
        en: format!(
            "From {window} the video played for {} across {} courses without a single pause, seek, speed change, tab switch or new login (at least {} over {} courses is flagged){note}.",
            dur(s.play_s), s.courses, dur(cfg.unbroken_min_play_s), cfg.unbroken_min_courses
        ),
        zh: format!(
            "{window_zh} 视频连续播放 {}，跨 {} 门课程，期间没有任何暂停、拖动、倍速调整、切换页面或重新登录（达到 {}、{} 门课程即标记）{note_zh}。",
            dur_zh(s.play_s), s.courses, dur_zh(cfg.unbroken_min_play_s), cfg.unbroken_min_courses
        ),
    }
}

/// `automation.timer_cadence`.
pub(crate) fn timer_cadence(s: &Stretch, cfg: &AutomationConfig) -> Text {
    let (window, window_zh) = s.windows();
    Text {
        en: format!(
            "From {window}, {} heartbeat intervals across {} courses varied by only {:.1} ms (standard deviation; at most {:.1} ms is flagged): a timer replaying requests, not a browser page opened course by course.",
            s.intervals, s.courses, s.interval_std_s * 1e3, cfg.cadence_max_std_s * 1e3
        ),
        zh: format!(
            "{window_zh}，跨 {} 门课程的 {} 个心跳间隔的标准差仅 {:.1} 毫秒（不超过 {:.1} 毫秒即标记）：这是定时器在重放请求，而不是逐门课程打开的浏览器页面。",
            s.courses, s.intervals, s.interval_std_s * 1e3, cfg.cadence_max_std_s * 1e3
        ),
    }
}

/// `automation.no_input`.
pub(crate) fn no_input(s: &Stretch, cfg: &AutomationConfig) -> Text {
    let ((window, window_zh), (note, note_zh)) = (s.windows(), s.hours_note());
    Text {
        en: format!(
            "From {window} the page was visible and playing for {} across {} courses, and the platform counted no keyboard, mouse or touch input at all in {} heartbeats (at least {} is flagged){note}.",
            dur(s.play_s), s.courses, s.input_reported, dur(cfg.no_input_min_play_s)
        ),
        zh: format!(
            "{window_zh} 页面处于可见并播放状态 {}，跨 {} 门课程，平台在 {} 次心跳中未记录到任何键盘、鼠标或触摸操作（达到 {} 即标记）{note_zh}。",
            dur_zh(s.play_s), s.courses, s.input_reported, dur_zh(cfg.no_input_min_play_s)
        ),
    }
}

/// A session's attention checks, for `automation.missed_checks` and `machine_responses`.
pub(crate) struct Checks {
    pub start: i64,
    pub end: i64,
    pub shown: i64,
    pub missed_playing: i64,
    pub answered: i64,
    pub correct: i64,
    pub response_median_s: f64,
    pub response_cv: f64,
}

/// `automation.missed_checks`.
pub(crate) fn missed_checks(f: &Checks, cfg: &AutomationConfig) -> Text {
    let (missed, shown) = (f.missed_playing, f.shown);
    Text {
        en: format!(
            "Between {} and {} the learner missed {missed} of {shown} attention checks while the video kept playing (at least {} and {:.0}% is flagged): the platform pauses the video while a check is shown.",
            hhmm(f.start), hhmm(f.end), cfg.missed_min_checks, cfg.missed_min_share * 100.0
        ),
        zh: format!(
            "{} 至 {} 之间，学员错过了 {shown} 次弹窗互动中的 {missed} 次，而视频仍在继续播放（达到 {} 次且占比 {:.0}% 即标记）：平台在弹窗显示时会暂停视频。",
            hhmm(f.start), hhmm(f.end), cfg.missed_min_checks, cfg.missed_min_share * 100.0
        ),
    }
}

/// `automation.machine_responses`.
pub(crate) fn machine_responses(f: &Checks, cfg: &AutomationConfig) -> Text {
    let (answered, right) = (f.answered, f.correct);
    Text {
        en: format!(
            "Between {} and {} the learner answered {answered} attention checks ({right} correctly) with a median response time of {:.2} s (under {:.1} s is too fast to read the question) varying by {:.0}% (under {:.0}% is too regular for a person).",
            hhmm(f.start), hhmm(f.end), f.response_median_s, cfg.min_human_response_s,
            f.response_cv * 100.0, cfg.max_response_cv * 100.0
        ),
        zh: format!(
            "{} 至 {} 之间，学员回答了 {answered} 次弹窗互动（答对 {right} 次），反应时间中位数 {:.2} 秒（低于 {:.1} 秒则来不及读题），波动仅 {:.0}%（低于 {:.0}% 则过于规律，不像真人）。",
            hhmm(f.start), hhmm(f.end), f.response_median_s, cfg.min_human_response_s,
            f.response_cv * 100.0, cfg.max_response_cv * 100.0
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::JobsConfig;

    #[test]
    fn durations_pick_a_readable_unit_in_both_languages() {
        assert_eq!(dur(45.0), "45 s");
        assert_eq!(dur(750.0), "12.5 min");
        assert_eq!(dur(8280.0), "2.3 h");
        assert_eq!(dur_zh(45.0), "45 秒");
        assert_eq!(dur_zh(8280.0), "2.3 小时");
    }

    #[test]
    fn both_languages_carry_the_same_figures() {
        let cfg = JobsConfig::default();
        let t = parallel_playback(
            &ParallelPlayback {
                courses: ["c1", "c2"],
                overlap_s: 750.0,
                start: 0,
                end: 3_600_000_000,
            },
            &cfg.course_switching,
        );
        for figure in ["c1", "c2", "00:00 UTC", "01:00 UTC", "1970-01-01"] {
            assert!(t.en.contains(figure) && t.zh.contains(figure), "{figure}");
        }
        assert!(t.en.contains("12.5 min") && t.zh.contains("12.5 分钟"));
    }
}
