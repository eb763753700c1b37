//! A credit policy's topic minimums and earning rules (quiz pass mark, hourly accrual of live
//! sessions), end to end on hand-built lakes.

use std::collections::BTreeMap;

use creditguard_contract::time::{day_of_us, format_rfc3339_us, parse_day, parse_rfc3339_us};
use creditguard_contract::{events_schema, parse_event, EventBatchBuilder};
use creditguard_lake::Lake;
use creditguard_score::policy::{Policy, Roster};
use creditguard_score::{score, Catalog, ScoreConfig, ScoreReport};

const CATALOG: &str = "course_id,title,category,credits,duration_s,min_watch_ratio,topic,kind,quiz
lead,Leading teams,elective,4,3600,0.8,management,,yes
coach,Coaching,elective,3,2400,0.8,management,,yes
safety,Safety basics,mandatory,2,1800,0.8,compliance,,no
town,Town hall,elective,1,3600,0,,live,
panel,Expert panel,elective,1,3600,0,management,live,
";

const POLICY: &str = r#"
[policy]
name = "p"
[earning]
quiz_pass_score = 60
live_credits_per_hour = 2.0
live_daily_cap = 3.0
[[rule]]
name = "all"
target_credits = 20
[[rule]]
name = "managers"
role = "manager"
target_credits = 20
topics = { management = "50%" }
"#;

/// Events in memory, written to a lake in a temporary directory.
struct Lakeside {
    _dir: tempfile::TempDir,
    lake: Lake,
    lines: Vec<String>,
}

fn at(s: &str) -> i64 {
    parse_rfc3339_us(s).unwrap()
}

impl Lakeside {
    fn new() -> Lakeside {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        Lakeside {
            _dir: dir,
            lake,
            lines: Vec::new(),
        }
    }

    fn event(&mut self, id: &str, ty: &str, user: &str, t: i64, rest: &str) -> &mut Self {
        self.lines.push(format!(
            r#"{{"event_id":"{id}","type":"{ty}","ts":"{}","user_id":"{user}","org_unit":"hq",{rest}}}"#,
            format_rfc3339_us(t)
        ));
        self
    }

    fn complete(&mut self, id: &str, user: &str, course: &str, t: &str) -> &mut Self {
        let c = catalog().get(course).cloned().unwrap();
        self.event(
            id,
            "course_complete",
            user,
            at(t),
            &format!(
                r#""course_id":"{course}","credits":{},"category":"{}""#,
                c.credits, c.category
            ),
        )
    }

    fn quiz(&mut self, id: &str, user: &str, course: &str, t: &str, score: f64) -> &mut Self {
        self.event(
            id,
            "quiz_submit",
            user,
            at(t),
            &format!(
                r#""session_id":"s-{user}","course_id":"{course}","quiz_id":"q-{course}","score":{score},"max_score":100,"questions":10,"elapsed_s":120"#
            ),
        )
    }

    /// Heartbeats every 20 s on a live item for `minutes`, in view or not.
    fn live(
        &mut self,
        user: &str,
        course: &str,
        from: &str,
        minutes: i64,
        visible: bool,
    ) -> &mut Self {
        let start = at(from);
        for k in 0..=minutes * 3 {
            let id = format!("hb-{user}-{course}-{start}-{k}");
            self.event(
                &id,
                "heartbeat",
                user,
                start + k * 20_000_000,
                &format!(
                    r#""session_id":"s-{user}-{course}","device_id":"d-{user}","course_id":"{course}","lesson_id":"live","position_s":{},"playing":true,"visible":{visible}"#,
                    k * 20
                ),
            );
        }
        self
    }

    fn commit(&self) {
        let mut by_day: BTreeMap<i64, EventBatchBuilder> = BTreeMap::new();
        for (i, line) in self.lines.iter().enumerate() {
            let ev =
                parse_event(line.as_bytes()).unwrap_or_else(|e| panic!("{line}: {}", e.reason));
            let b = by_day.entry(day_of_us(ev.ts_us)).or_default();
            b.push(&ev, "earning.ndjson", i as i64 + 1);
        }
        for (d, mut b) in by_day {
            let batch = b.finish();
            self.lake
                .write_parquet("events", d, "part-0.parquet", events_schema(), &[batch])
                .unwrap();
        }
    }

    fn score(&self, cfg: &ScoreConfig, from: &str, to: &str) -> ScoreReport {
        let (from, to) = (parse_day(from).unwrap(), parse_day(to).unwrap());
        score(&self.lake, &catalog(), cfg, from, to, "run-1").unwrap()
    }
}

fn catalog() -> Catalog {
    Catalog::parse(CATALOG).unwrap()
}

fn config(roster: &str) -> ScoreConfig {
    let mut cfg = ScoreConfig::default();
    cfg.expectations.policy = Some(Policy::parse(POLICY).unwrap());
    cfg.expectations.roster = Some(Roster::parse(roster, None).unwrap());
    cfg
}

/// (course, credits granted, status) of a learner's credit records, in completion order.
fn credits(r: &ScoreReport, user: &str) -> Vec<(String, f64, String)> {
    r.credits
        .iter()
        .filter(|c| c.user_id == user)
        .map(|c| (c.course_id.clone(), c.credits_granted, c.status.clone()))
        .collect()
}

fn issues(r: &ScoreReport, user: &str) -> Vec<(String, String)> {
    r.issues
        .iter()
        .filter(|i| i.user_id == user)
        .map(|i| (i.course_id.clone(), i.issue.clone()))
        .collect()
}

#[test]
fn a_completion_needs_the_quiz_passed_and_the_best_score_counts() {
    let mut fx = Lakeside::new();
    // Retaken until passed: 40 %, then 75 %, then a worse 55 %: the best (75) counts.
    fx.quiz("q1", "retake", "lead", "2026-03-02T09:00:00Z", 40.0)
        .quiz("q2", "retake", "lead", "2026-03-02T09:30:00Z", 75.0)
        .quiz("q3", "retake", "lead", "2026-03-02T09:40:00Z", 55.0)
        .complete("e1", "retake", "lead", "2026-03-02T09:45:00Z");
    // Best 59.5 %: just below the mark.
    fx.quiz("q4", "fail", "lead", "2026-03-02T10:00:00Z", 59.5)
        .complete("e2", "fail", "lead", "2026-03-02T10:05:00Z");
    // No quiz at all on a course with one; a course without a quiz needs none.
    fx.complete("e3", "skip", "coach", "2026-03-02T11:00:00Z")
        .complete("e4", "skip", "safety", "2026-03-02T11:30:00Z");
    // A pass logged a minute after the completion (within the slack) counts; one the day after
    // does not make the earlier completion count, but the completion after it earns.
    fx.complete("e5", "late", "lead", "2026-03-02T12:00:00Z")
        .quiz("q5", "late", "lead", "2026-03-02T12:01:00Z", 90.0)
        .complete("e6", "later", "coach", "2026-03-02T12:00:00Z")
        .quiz("q6", "later", "coach", "2026-03-03T08:00:00Z", 90.0)
        .complete("e7", "later", "coach", "2026-03-03T08:05:00Z");
    fx.commit();
    let r = fx.score(&config("user_id,org_path\n"), "2026-03-02", "2026-03-03");
    let granted = |c: &str, v: f64| (c.to_string(), v, "granted".to_string());
    assert_eq!(credits(&r, "retake"), [granted("lead", 4.0)]);
    assert!(issues(&r, "retake").is_empty());
    assert_eq!(credits(&r, "fail"), [granted("lead", 0.0)]);
    assert_eq!(
        issues(&r, "fail"),
        [("lead".into(), "quiz_not_passed".into())]
    );
    let reason = &r
        .issues
        .iter()
        .find(|i| i.user_id == "fail")
        .unwrap()
        .detail;
    assert!(reason.contains("was 59.5%"), "{reason}");
    assert!(reason.contains("pass mark of 60%"), "{reason}");
    assert_eq!(
        credits(&r, "skip"),
        [granted("coach", 0.0), granted("safety", 2.0)]
    );
    assert!(r
        .issues
        .iter()
        .any(|i| i.user_id == "skip" && i.detail.contains("none was handed in")));
    assert_eq!(credits(&r, "late"), [granted("lead", 4.0)]);
    assert_eq!(
        credits(&r, "later"),
        [granted("coach", 0.0), granted("coach", 3.0)]
    );
    assert_eq!(
        issues(&r, "later"),
        [("coach".into(), "quiz_not_passed".into())],
        "the completion after the pass is no repeat"
    );
    // Without the rule, every completion earns as before.
    let mut cfg = config("user_id,org_path\n");
    cfg.expectations
        .policy
        .as_mut()
        .unwrap()
        .earning
        .quiz_pass_score = None;
    let plain = fx.score(&cfg, "2026-03-02", "2026-03-03");
    assert_eq!(credits(&plain, "fail"), [granted("lead", 4.0)]);
}

#[test]
fn live_sessions_accrue_per_engaged_hour_one_at_a_time_capped_per_day() {
    let mut fx = Lakeside::new();
    // 30 minutes in view: 1 credit at 2 per hour. Shanghai business day 2026-03-02.
    fx.live("one", "town", "2026-03-02T01:00:00Z", 30, true);
    // Two live sessions at once (two tabs): the 60 overlapping minutes count once, for the one
    // joined first; the panel's 30 minutes after the town hall ended are its own.
    fx.live("two", "town", "2026-03-02T01:00:00Z", 60, true)
        .live("two", "panel", "2026-03-02T01:00:00Z", 90, true);
    // Five hours in one day: capped at 3 credits. The next business day accrues anew.
    fx.live("long", "town", "2026-03-02T01:00:00Z", 300, true)
        .live("long", "town", "2026-03-03T01:00:00Z", 60, true);
    // The page hidden the whole time: nothing accrues; the completion of a live item earns
    // nothing either (the hours do).
    fx.live("hidden", "town", "2026-03-02T01:00:00Z", 60, false)
        .complete("e1", "hidden", "town", "2026-03-02T02:00:00Z");
    fx.commit();
    let r = fx.score(&config("user_id,org_path\n"), "2026-03-02", "2026-03-03");
    let rows = |u: &str| {
        credits(&r, u)
            .into_iter()
            .map(|(c, v, _)| (c, v))
            .collect::<Vec<_>>()
    };
    assert_eq!(rows("one"), [("town".to_string(), 1.0)]);
    assert_eq!(
        rows("two"),
        [("town".to_string(), 2.0), ("panel".to_string(), 1.0)],
        "overlapping time counted once"
    );
    assert_eq!(
        rows("long"),
        [("town".to_string(), 3.0), ("town".to_string(), 2.0)]
    );
    assert_eq!(rows("hidden"), [("town".to_string(), 0.0)]);
    assert_eq!(
        issues(&r, "hidden"),
        [("town".into(), "live_accrues_hourly".into())]
    );
    // Progress adds the days of a live item up (a course counts once; a day of live sessions
    // is its own record).
    let p = r.progress.iter().find(|p| p.user_id == "long").unwrap();
    assert_eq!(p.credits_granted, 5.0);
    // Scoring day by day gives the same records.
    let d1 = fx.score(&config("user_id,org_path\n"), "2026-03-02", "2026-03-02");
    let d2 = fx.score(&config("user_id,org_path\n"), "2026-03-03", "2026-03-03");
    let by_day: Vec<_> = d1
        .credits
        .iter()
        .chain(&d2.credits)
        .map(|c| (&c.credit_id, c.credits_granted))
        .collect();
    let at_once: Vec<_> = r
        .credits
        .iter()
        .map(|c| (&c.credit_id, c.credits_granted))
        .collect();
    assert_eq!(by_day.len(), at_once.len());
    for row in &at_once {
        assert!(by_day.contains(row), "{row:?} missing from the daily runs");
    }
}

#[test]
fn topic_minimums_decide_progress_and_raise_behind_pace() {
    let mut fx = Lakeside::new();
    // Both managers earn 10 credits; only `mgr1` earns them in management courses.
    fx.quiz("q1", "mgr1", "lead", "2026-06-01T09:00:00Z", 80.0)
        .complete("e1", "mgr1", "lead", "2026-06-01T09:10:00Z")
        .quiz("q2", "mgr1", "coach", "2026-06-01T10:00:00Z", 80.0)
        .complete("e2", "mgr1", "coach", "2026-06-01T10:10:00Z")
        .live("mgr1", "panel", "2026-06-01T11:00:00Z", 90, true)
        .complete("e3", "mgr2", "safety", "2026-06-01T09:10:00Z")
        .live("mgr2", "town", "2026-06-01T11:00:00Z", 90, true)
        .live("mgr2", "town", "2026-06-02T11:00:00Z", 90, true)
        .live("mgr2", "town", "2026-06-03T11:00:00Z", 60, true);
    fx.commit();
    let cfg = config("user_id,org_path,role\nmgr1,HQ,manager\nmgr2,HQ,manager\nstaff1,HQ,staff\n");
    let r = fx.score(&cfg, "2026-06-01", "2026-06-03");
    let p = |u: &str| r.progress.iter().find(|p| p.user_id == u).unwrap().clone();
    let (m1, m2) = (p("mgr1"), p("mgr2"));
    assert_eq!((m1.credits_granted, m2.credits_granted), (10.0, 10.0));
    // 10 management credits of a 10-credit minimum, and half the year's 20 by early June: ahead.
    assert_eq!(m1.topic_credits.as_deref(), Some("management=10/10"));
    assert_eq!(m1.status, "on_track");
    assert_eq!(m2.topic_credits.as_deref(), Some("management=0/10"));
    assert_eq!(
        m2.status, "behind",
        "on pace in total, not in management: {m2:?}"
    );
    assert_eq!(
        p("staff1").topic_credits,
        None,
        "no topic minimum in its rule"
    );
    let topic_warnings: Vec<&str> = r
        .warnings
        .iter()
        .filter(|w| w.reason == "behind_pace" && w.category.as_deref() == Some("topic:management"))
        .map(|w| w.user_id.as_str())
        .collect();
    assert_eq!(topic_warnings, ["mgr2"]);
    let w = r.warnings.iter().find(|w| w.user_id == "mgr2").unwrap();
    assert!(
        w.message.contains("credits in management courses"),
        "{}",
        w.message
    );
    // The next day's run raises it no more: it was raised once.
    let next = fx.score(&cfg, "2026-06-04", "2026-06-04");
    assert!(!next
        .warnings
        .iter()
        .any(|w| w.category.as_deref() == Some("topic:management")));
}

#[test]
fn a_topic_minimum_must_name_a_topic_of_the_catalog() {
    let policy = Policy::parse(
        "[policy]\nname = \"p\"\n[[rule]]\nname = \"heads\"\ntarget_credits = 10\ntopics = { managment = 2, compliance = \"10%\" }\n",
    )
    .unwrap();
    let problems = policy.unknown_topics(&catalog());
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("key `rule[0] (heads).topics.managment`: no course of the catalog has topic `managment`"),
        "{}",
        problems[0]
    );
    assert!(
        problems[0].contains("compliance, management"),
        "{}",
        problems[0]
    );
    let errs = Policy::parse(
        "[policy]\nname = \"p\"\n[earning]\nquiz_pass_score = 150\nlive_daily_cap = 0\n\
         [[rule]]\nname = \"r\"\ntarget_credits = 10\ntopics = { a = 8, b = 8 }\n",
    )
    .unwrap_err()
    .join("\n");
    for want in [
        "key `earning.quiz_pass_score`: 150 must be a percentage",
        "key `earning.live_daily_cap`: 0 must be > 0",
        "key `earning.live_daily_cap`: caps hourly accrual",
        "key `rule[0] (r).topics`: the topic minimums add up to 16",
    ] {
        assert!(errs.contains(want), "missing `{want}` in:\n{errs}");
    }
}

/// One live item and business day gives one credit row, whichever daily runs see it: a run sees
/// only part of a business day that began on its UTC date (Shanghai's day starts at 16:00 UTC)
/// and leaves it to the run of the business day's own date.
#[test]
fn a_business_day_of_a_live_item_is_one_credit_row_across_daily_runs() {
    let mut fx = Lakeside::new();
    // 23:30 to 00:30 in Shanghai: half an hour on each business day, both within UTC 2 March.
    fx.live("night", "town", "2026-03-02T15:30:00Z", 60, true);
    // 07:30 to 08:30 on 3 March in Shanghai, across UTC midnight: the 2 March run comes before
    // the second half has arrived.
    fx.live("span", "panel", "2026-03-02T23:30:00Z", 29, true);
    fx.commit();
    let cfg = config("user_id,org_path\n");
    fx.score(&cfg, "2026-03-02", "2026-03-02");
    fx.live("span", "panel", "2026-03-03T00:00:00Z", 30, true);
    fx.commit();
    fx.score(&cfg, "2026-03-03", "2026-03-03");
    let first = parse_day("2026-03-01").unwrap();
    let table = creditguard_score::tables::read_credits(&fx.lake, first, first + 3).unwrap();
    let mut ids: Vec<&str> = table.iter().map(|c| c.credit_id.as_str()).collect();
    ids.sort_unstable();
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n, "one row per credit id: {table:?}");
    let rows = |u: &str| -> Vec<(f64, i64)> {
        table
            .iter()
            .filter(|c| c.user_id == u)
            .map(|c| (c.credits_granted, c.completed_at))
            .collect()
    };
    assert_eq!(rows("span"), [(2.0, at("2026-03-03T00:30:00Z"))]);
    // The night's second half is claimed on its business date, kept within that UTC date.
    assert_eq!(
        rows("night"),
        [
            (1.0, at("2026-03-02T16:00:00Z")),
            (1.0, at("2026-03-03T00:00:00Z"))
        ]
    );
    // Scoring both days at once gives the same rows.
    let both = fx.score(&cfg, "2026-03-02", "2026-03-03");
    let mut at_once: Vec<(String, f64, i64)> = both
        .credits
        .iter()
        .map(|c| (c.credit_id.clone(), c.credits_granted, c.completed_at))
        .collect();
    let mut daily: Vec<(String, f64, i64)> = table
        .iter()
        .map(|c| (c.credit_id.clone(), c.credits_granted, c.completed_at))
        .collect();
    at_once.sort_by(|a, b| a.0.cmp(&b.0));
    daily.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(at_once, daily);
}

/// A completion refused for want of a passed quiz does not complete an assigned course: its
/// reminders keep coming until a passed retake completes it.
#[test]
fn a_refused_completion_does_not_satisfy_an_assignment() {
    let mut fx = Lakeside::new();
    fx.quiz("q1", "fail", "lead", "2026-03-02T01:00:00Z", 40.0)
        .complete("e1", "fail", "lead", "2026-03-02T01:10:00Z")
        .quiz("q2", "pass", "lead", "2026-03-02T01:00:00Z", 80.0)
        .complete("e2", "pass", "lead", "2026-03-02T01:10:00Z");
    fx.commit();
    let mut cfg = config("user_id,org_path\nfail,HQ\npass,HQ\n");
    cfg.expectations.assignments =
        creditguard_score::warnings::parse_assignments("course_id,due_on\nlead,2026-03-20\n")
            .unwrap();
    let due = |r: &ScoreReport| -> Vec<(String, i64)> {
        r.warnings
            .iter()
            .filter(|w| w.reason == "due_soon" || w.reason == "overdue")
            .map(|w| (w.user_id.clone(), w.days_left.unwrap()))
            .collect()
    };
    // The refusal in the scored period, then on an earlier day (from the claim issues table).
    let r = fx.score(&cfg, "2026-03-02", "2026-03-02");
    assert_eq!(due(&r), [("fail".to_string(), 18)]);
    let r = fx.score(&cfg, "2026-03-06", "2026-03-06");
    assert_eq!(due(&r), [("fail".to_string(), 14)]);
    // Passed and completed again: done.
    fx.quiz("q3", "fail", "lead", "2026-03-07T01:00:00Z", 90.0)
        .complete("e3", "fail", "lead", "2026-03-07T01:10:00Z");
    fx.commit();
    fx.score(&cfg, "2026-03-07", "2026-03-07");
    let r = fx.score(&cfg, "2026-03-19", "2026-03-19");
    assert_eq!(due(&r), []);
}
