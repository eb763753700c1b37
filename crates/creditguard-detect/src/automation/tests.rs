use super::*;
use crate::testkit::*;

/// A heartbeat that plays with the page visible, with an optional input count.
fn beat(user: &str, session: &str, course: &str, at: f64, pos: f64, inputs: Option<i64>) -> String {
    let line = hb(
        user,
        session,
        course,
        &format!("{course}-l1"),
        at,
        pos,
        true,
        true,
    );
    match inputs {
        Some(n) => {
            let body = line.strip_suffix('}').expect("a JSON object");
            format!(r#"{body},"input_events":{n}}}"#)
        }
        None => line,
    }
}

fn check(user: &str, session: &str, at: f64, response_s: Option<f64>) -> String {
    let answer = match response_s {
        Some(r) => format!(r#""answered":true,"response_s":{r},"correct":true"#),
        None => r#""answered":false"#.to_string(),
    };
    format!(
        r#"{{"event_id":"chk-{user}-{at}","type":"attention_check","ts":"{}","user_id":"{user}","org_unit":"ou1","session_id":"{session}","course_id":"c1","lesson_id":"c1-l1","prompt_id":"p{at}",{answer}}}"#,
        ts(at)
    )
}

/// Courses played back to back from `start`, each `per_course_s` long, one heartbeat every
/// `interval(i)` seconds (i counts heartbeats).
fn playback(
    user: &str,
    session: &str,
    start: f64,
    courses: usize,
    per_course_s: f64,
    inputs: Option<i64>,
    interval: impl Fn(usize) -> f64,
) -> Vec<String> {
    let mut lines = Vec::new();
    let mut at = start;
    let mut beat_no = 0;
    for course_no in 0..courses {
        let course = format!("c{}", course_no + 2);
        let course_start = at;
        while at - course_start < per_course_s {
            lines.push(beat(user, session, &course, at, at - course_start, inputs));
            at += interval(beat_no);
            beat_no += 1;
        }
    }
    lines
}

/// Jitter a browser's timer and event loop give: deterministic, a few hundred ms.
fn jitter(i: usize) -> f64 {
    15.0 + ((i * 7919) % 613) as f64 / 1000.0
}

fn run(lines: &[String]) -> JobOutput {
    detect(frame(lines).lazy(), &AutomationConfig::default()).unwrap()
}

fn rules_of(out: &JobOutput, user: &str) -> Vec<String> {
    let mut r: Vec<String> = out
        .flags
        .iter()
        .filter(|f| f.user_id == user)
        .map(|f| f.rule.clone())
        .collect();
    r.sort();
    r
}

#[test]
fn a_timer_playing_four_courses_unbroken_without_input_is_flagged_three_ways() {
    let out = run(&playback("bot", "s1", 0.0, 4, 3600.0, Some(0), |_| 15.0));
    assert_eq!(
        rules_of(&out, "bot"),
        [
            "automation.no_input",
            "automation.timer_cadence",
            "automation.unbroken_play"
        ]
    );
    let f = out
        .flags
        .iter()
        .find(|f| f.rule == "automation.unbroken_play")
        .unwrap();
    assert!(
        f.explanation.contains("across 4 courses"),
        "{}",
        f.explanation
    );
    assert!(f.evidence.contains("视频连续播放"), "{}", f.evidence);
    assert!(f.course_id.is_none());
    let stretch = out
        .features
        .clone()
        .lazy()
        .filter(col("measure").eq(lit("stretch")))
        .collect()
        .unwrap();
    assert_eq!(stretch.height(), 1);
    assert_eq!(
        stretch.column("courses").unwrap().i64().unwrap().get(0),
        Some(4)
    );
}

#[test]
fn a_script_in_a_real_browser_has_jitter_and_is_flagged_for_unbroken_play_only() {
    let out = run(&playback("bot", "s1", 0.0, 4, 3600.0, None, jitter));
    assert_eq!(rules_of(&out, "bot"), ["automation.unbroken_play"]);
}

#[test]
fn one_long_lecture_watched_without_touching_the_player_is_not_flagged() {
    // 3.5 h of one course at an exact cadence, no input reported at all.
    let out = run(&playback("viewer", "s1", 0.0, 1, 12_600.0, Some(0), |_| {
        15.0
    }));
    assert!(out.flags.is_empty(), "{:?}", rules_of(&out, "viewer"));
}

#[test]
fn catching_up_six_courses_with_ordinary_pauses_is_not_flagged() {
    let mut lines = Vec::new();
    let mut at = 0.0;
    for course_no in 0..6 {
        let course = format!("c{}", course_no + 2);
        let part = playback("learner", "s1", at, 1, 1800.0, Some(3), jitter);
        lines.extend(
            part.into_iter()
                .map(|l| l.replace("\"c2", &format!("\"{course}"))),
        );
        at += 1800.0;
        // Pauses for a coffee, then plays on.
        lines.push(video(
            "video_pause",
            "learner",
            "s1",
            &course,
            &format!("{course}-l1"),
            at,
            1800.0,
        ));
        at += 240.0;
    }
    let out = run(&lines);
    assert!(out.flags.is_empty(), "{:?}", rules_of(&out, "learner"));
}

#[test]
fn a_night_learner_is_not_flagged_for_the_hour_alone() {
    // Daytime on the first day, then two courses back to back at 01:00 the next night with a
    // tab switch between them: unusual hours, but nothing else.
    let mut lines = playback("owl", "s1", 0.0, 1, 1800.0, Some(4), jitter);
    let night = 17.0 * 3600.0;
    lines.extend(playback("owl", "s2", night, 1, 3000.0, Some(0), jitter));
    lines.push(vis("owl", "s2", night + 3010.0, false));
    lines.extend(playback(
        "owl",
        "s2",
        night + 3020.0,
        1,
        3000.0,
        Some(0),
        jitter,
    ));
    let out = run(&lines);
    assert!(out.flags.is_empty(), "{:?}", rules_of(&out, "owl"));
}

#[test]
fn unusual_hours_raise_the_severity_of_a_flag_that_stands_on_its_own() {
    let mut lines = playback("bot", "s1", 0.0, 1, 900.0, None, jitter);
    lines.extend(playback(
        "bot",
        "s2",
        12.0 * 3600.0,
        4,
        3600.0,
        None,
        jitter,
    ));
    let out = run(&lines);
    let f = out
        .flags
        .iter()
        .find(|f| f.rule == "automation.unbroken_play")
        .unwrap();
    assert!(
        f.explanation.contains("otherwise never active"),
        "{}",
        f.explanation
    );
    let daytime = run(&playback("bot", "s2", 0.0, 4, 3600.0, None, jitter));
    assert!(f.severity > daytime.flags[0].severity);
}

#[test]
fn missed_checks_while_the_video_plays_on_are_flagged_and_a_paused_one_is_not() {
    let mut lines = playback("bot", "s1", 0.0, 1, 1800.0, None, jitter);
    for at in [300.0, 900.0, 1500.0] {
        lines.push(check("bot", "s1", at, None));
    }
    // The learner left the room: the player paused for the check, nobody answered.
    let mut away = playback("human", "s2", 0.0, 1, 600.0, None, jitter);
    away.push(check("human", "s2", 610.0, None));
    away.push(hb("human", "s2", "c2", "c2-l1", 630.0, 610.0, false, true));
    away.push(check("human", "s2", 700.0, Some(3.2)));
    lines.extend(away);
    let out = run(&lines);
    assert_eq!(rules_of(&out, "bot"), ["automation.missed_checks"]);
    assert!(rules_of(&out, "human").is_empty());
    let f = &out.flags[0];
    assert!(f.explanation.contains("missed 3 of 3"), "{}", f.explanation);
    assert!(f.evidence.contains("chk-bot-300"), "{}", f.evidence);
}

#[test]
fn machine_fast_or_machine_regular_responses_are_flagged_and_human_ones_are_not() {
    let mut lines = Vec::new();
    let human = [2.1, 3.5, 5.0, 2.8, 7.2, 3.1, 4.4, 2.5, 9.0, 3.3];
    for k in 0..10 {
        let at = 100.0 + 600.0 * k as f64;
        if k < 4 {
            lines.push(check("fast", "s1", at, Some(0.35 + k as f64 * 0.01)));
        }
        lines.push(check("steady", "s2", at, Some(3.0 + (k % 3) as f64 * 0.02)));
        lines.push(check("person", "s3", at, Some(human[k])));
    }
    // Nine regular answers are not enough to judge the spread.
    for k in 0..9 {
        lines.push(check("few", "s4", 100.0 + 600.0 * k as f64, Some(3.0)));
    }
    let out = run(&lines);
    assert_eq!(rules_of(&out, "fast"), ["automation.machine_responses"]);
    assert_eq!(rules_of(&out, "steady"), ["automation.machine_responses"]);
    assert!(rules_of(&out, "person").is_empty());
    assert!(rules_of(&out, "few").is_empty());
    let steady = out.flags.iter().find(|f| f.user_id == "steady").unwrap();
    assert!(
        steady.evidence.contains("too_regular"),
        "{}",
        steady.evidence
    );
    assert!(steady.evidence.contains("too_fast") == false);
}

#[test]
fn input_counts_break_nothing_when_the_platform_does_not_send_them() {
    let out = run(&playback("bot", "s1", 0.0, 4, 3600.0, None, jitter));
    assert!(!rules_of(&out, "bot").contains(&"automation.no_input".to_string()));
}
