use super::*;
use crate::testkit::*;

const DAY_S: f64 = 86_400.0;

/// A session of `user` on `device`: a login, then `minutes` of heartbeats every 20 s on `course`,
/// from the learner's own address.
fn session(user: &str, device: &str, course: &str, at: f64, minutes: f64) -> Vec<String> {
    session_at(
        user,
        device,
        &format!("198.18.0.{}", user.len()),
        course,
        at,
        minutes,
    )
}

/// [`session`] from `ip`.
fn session_at(
    user: &str,
    device: &str,
    ip: &str,
    course: &str,
    at: f64,
    minutes: f64,
) -> Vec<String> {
    let session = format!("s-{user}-{device}-{at}");
    let mut lines = vec![act("login", user, &session, device, ip, at, None)];
    let mut offset = 0.0;
    while offset <= minutes * 60.0 {
        let line = hb(
            user,
            &session,
            course,
            &format!("{course}-l1"),
            at + 5.0 + offset,
            offset,
            true,
            true,
        );
        lines.push(line.replace(
            &format!(r#""device_id":"d-{session}""#),
            &format!(r#""device_id":"{device}""#),
        ));
        offset += 20.0;
    }
    lines
}

fn run_with(lines: &[String], shared: &[&str]) -> JobOutput {
    let shared = shared.iter().map(|d| d.to_string()).collect();
    detect(
        frame(lines).lazy(),
        &ProxyLearningConfig::default(),
        &shared,
    )
    .unwrap()
}

fn flagged(out: &JobOutput) -> Vec<(String, String)> {
    out.flags
        .iter()
        .map(|f| (f.rule.clone(), f.user_id.clone()))
        .collect()
}

#[test]
fn courses_played_on_a_colleagues_usual_laptop_are_flagged_for_the_learner_only() {
    let mut lines = Vec::new();
    for day in 0..3 {
        lines.extend(session("boss", "lap-b", "c3", day as f64 * DAY_S, 20.0));
        lines.extend(session(
            "victim",
            "lap-v",
            "c4",
            day as f64 * DAY_S + 600.0,
            20.0,
        ));
    }
    // The colleague does the victim's course in the evening, on the colleague's laptop at home.
    lines.extend(session_at(
        "victim",
        "lap-b",
        "198.18.0.4",
        "c2",
        DAY_S + 10.0 * 3600.0,
        30.0,
    ));
    let out = run_with(&lines, &[]);
    assert_eq!(
        flagged(&out),
        [(
            "proxy_learning.borrowed_device".to_string(),
            "victim".to_string()
        )]
    );
    let f = &out.flags[0];
    assert!(
        f.explanation.contains("usual device of account boss"),
        "{}",
        f.explanation
    );
    assert!(f.evidence.contains("常用设备"), "{}", f.evidence);
}

#[test]
fn a_training_room_pc_on_the_allowlist_is_not_evidence() {
    let mut lines = Vec::new();
    for day in 0..3 {
        lines.extend(session(
            "trainer",
            "pc-room-1",
            "c3",
            day as f64 * DAY_S,
            20.0,
        ));
    }
    lines.extend(session("trainee", "pc-room-1", "c2", DAY_S + 3600.0, 30.0));
    lines.extend(session("trainer", "pc-room-1", "c3", DAY_S + 7200.0, 20.0));
    lines.extend(session(
        "trainee",
        "pc-room-1",
        "c2",
        DAY_S + 10_800.0,
        30.0,
    ));
    assert!(run_with(&lines, &["pc-room-1"]).flags.is_empty());
    assert!(
        !run_with(&lines, &[]).flags.is_empty(),
        "without the allowlist it would be"
    );
}

#[test]
fn spouses_sharing_a_home_tablet_on_different_days_are_not_flagged() {
    let mut lines = Vec::new();
    for day in 0..6 {
        let user = if day % 2 == 0 { "wife" } else { "husband" };
        lines.extend(session(
            user,
            "tablet-home",
            "c2",
            day as f64 * DAY_S + 12.0 * 3600.0,
            40.0,
        ));
    }
    let out = run_with(&lines, &[]);
    assert!(out.flags.is_empty(), "{:?}", flagged(&out));
}

#[test]
fn a_spouse_using_the_family_tablet_once_at_home_is_not_flagged() {
    let home = "198.18.7.7";
    let mut usual = Vec::new();
    for day in 0..4 {
        usual.extend(session_at(
            "husband",
            "tablet-home",
            home,
            "c3",
            day as f64 * DAY_S,
            30.0,
        ));
        usual.extend(session_at(
            "wife",
            "phone-wife",
            home,
            "c4",
            day as f64 * DAY_S + 7200.0,
            20.0,
        ));
    }
    let evening = 2.0 * DAY_S + 10.0 * 3600.0;
    let mut lines = usual.clone();
    lines.extend(session_at("wife", "tablet-home", home, "c2", evening, 40.0));
    let out = run_with(&lines, &[]);
    assert!(out.flags.is_empty(), "{:?}", flagged(&out));
    // The same evening on a device that is usual for someone else, away from her household's
    // address, is evidence.
    let mut elsewhere = usual;
    elsewhere.extend(session_at(
        "wife",
        "tablet-home",
        "203.0.113.9",
        "c2",
        evening,
        40.0,
    ));
    assert_eq!(
        flagged(&run_with(&elsewhere, &[])),
        [(
            "proxy_learning.borrowed_device".to_string(),
            "wife".to_string()
        )]
    );
}

#[test]
fn two_accounts_alternating_on_one_device_within_days_are_flagged_for_the_guest() {
    let mut lines = Vec::new();
    for day in 0..3 {
        lines.extend(session("owner", "lap-c", "c3", day as f64 * DAY_S, 15.0));
    }
    for day in 0..2 {
        let base = day as f64 * DAY_S;
        lines.extend(session("guest", "lap-c", "c2", base + 3600.0, 30.0));
        lines.extend(session("owner", "lap-c", "c3", base + 7200.0, 15.0));
    }
    let out = run_with(&lines, &[]);
    assert_eq!(
        flagged(&out),
        [(
            "proxy_learning.alternating_accounts".to_string(),
            "guest".to_string()
        )]
    );
    assert!(
        out.flags[0].explanation.contains("On 2 days"),
        "{}",
        out.flags[0].explanation
    );
}
