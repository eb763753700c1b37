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

fn run_cfg(lines: &[String], cfg: &ProxyLearningConfig) -> JobOutput {
    detect(frame(lines).lazy(), cfg, &HashSet::new()).unwrap()
}

/// Turns of `minutes` on `device` from `ip`, 5 minutes apart, starting at `at`: `users` in turn
/// (A, B, A…), each on their own course.
fn hand_offs(users: &[&str], device: &str, ip: &str, at: f64, minutes: f64) -> Vec<String> {
    let mut lines = Vec::new();
    for (i, user) in users.iter().enumerate() {
        let start = at + i as f64 * (minutes + 5.0) * 60.0;
        lines.extend(session_at(
            user,
            device,
            ip,
            &format!("c-{user}"),
            start,
            minutes,
        ));
    }
    lines
}

/// The days of the features' rows on `device`.
fn days_on(out: &JobOutput, device: &str) -> Vec<i64> {
    let f = &out.features;
    let devices = f.column("device_id").unwrap().str().unwrap();
    let days = f.column("day").unwrap().i64().unwrap();
    let mut v: Vec<i64> = (0..f.height())
        .filter(|&i| devices.get(i) == Some(device))
        .filter_map(|i| days.get(i))
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Spouses at home: each has their own phone or laptop on the home address (on some days),
/// and on four evenings they hand the family tablet back and forth (wife, husband, wife,
/// husband), each doing their own courses.
fn household(tablet_ip: &str) -> Vec<String> {
    let home = "198.18.7.7";
    let mut lines = Vec::new();
    for day in 0..4 {
        let base = day as f64 * DAY_S;
        lines.extend(session_at(
            "husband",
            "lap-husband",
            "203.0.113.40",
            "c3",
            base,
            20.0,
        ));
        if day % 2 == 0 {
            lines.extend(session_at(
                "husband",
                "lap-husband",
                home,
                "c3",
                base + 2.0 * 3600.0,
                20.0,
            ));
            lines.extend(session_at(
                "wife",
                "phone-wife",
                home,
                "c4",
                base + 3.0 * 3600.0,
                15.0,
            ));
        }
        lines.extend(hand_offs(
            &["wife", "husband", "wife", "husband"],
            "tablet-home",
            tablet_ip,
            base + 5.0 * 3600.0,
            30.0,
        ));
    }
    lines
}

#[test]
fn spouses_handing_a_home_tablet_back_and_forth_in_an_evening_are_not_flagged() {
    let out = run_with(&household("198.18.7.7"), &[]);
    assert!(out.flags.is_empty(), "{:?}", flagged(&out));
    // The same evenings on a device at an address neither account uses from its own devices
    // (a colleague's laptop at the colleague's home) are evidence.
    let away = run_with(&household("203.0.113.9"), &[]);
    assert_eq!(
        flagged(&away),
        [(
            "proxy_learning.alternating_accounts".to_string(),
            "wife".to_string()
        )]
    );
}

#[test]
fn a_colleague_doing_the_courses_around_their_own_study_is_flagged_though_the_learner_studies_at_home(
) {
    let (colleague_home, learner_home) = ("203.0.113.5", "198.18.9.9");
    let mut lines = Vec::new();
    for day in 0..4 {
        let base = day as f64 * DAY_S;
        lines.extend(session_at(
            "colleague",
            "lap-c",
            colleague_home,
            "c3",
            base,
            20.0,
        ));
        lines.extend(session_at(
            "learner",
            "lap-l",
            learner_home,
            "c4",
            base + 3600.0,
            20.0,
        ));
        lines.extend(session_at(
            "learner",
            "phone-l",
            learner_home,
            "c4",
            base + 2.0 * 3600.0,
            10.0,
        ));
    }
    for day in 1..3 {
        let evening = day as f64 * DAY_S + 5.0 * 3600.0;
        lines.extend(hand_offs(
            &["learner", "colleague", "learner"],
            "lap-c",
            colleague_home,
            evening,
            30.0,
        ));
    }
    let out = run_with(&lines, &[]);
    assert_eq!(
        flagged(&out),
        [(
            "proxy_learning.alternating_accounts".to_string(),
            "learner".to_string()
        )]
    );
    let f = &out.flags[0];
    assert!(f.explanation.contains("usual user"), "{}", f.explanation);
    assert!(
        f.evidence.contains("\"time_zone\":\"Asia/Shanghai\""),
        "{}",
        f.evidence
    );
}

/// Nine turns of 30 minutes over six hours from `at` (20:00 to 02:00 local), two accounts alternating: the
/// changes of hands before and after midnight would each make a day.
fn one_long_evening(at: f64) -> Vec<String> {
    let turns = [
        "ann", "bob", "ann", "bob", "ann", "bob", "ann", "bob", "ann",
    ];
    let mut lines = Vec::new();
    for (i, user) in turns.iter().enumerate() {
        let start = at + i as f64 * 40.0 * 60.0;
        lines.extend(session_at(
            user,
            "pc-1",
            "203.0.113.7",
            &format!("c-{user}"),
            start,
            30.0,
        ));
    }
    lines
}

#[test]
fn an_evening_past_local_midnight_is_one_day() {
    // T0 is 08:00 UTC. In UTC the evening 20:00–02:00 spans the UTC midnight.
    let utc = ProxyLearningConfig {
        time_zone: "UTC".into(),
        ..Default::default()
    };
    let lines = one_long_evening(12.0 * 3600.0);
    let out = run_cfg(&lines, &utc);
    assert_eq!(days_on(&out, "pc-1").len(), 1);
    assert!(out.flags.is_empty(), "{:?}", flagged(&out));
    let midnight = ProxyLearningConfig {
        day_starts_at_hour: 0,
        ..utc
    };
    let split = run_cfg(&lines, &midnight);
    assert_eq!(days_on(&split, "pc-1").len(), 2);
    assert_eq!(
        flagged(&split),
        [(
            "proxy_learning.alternating_accounts".to_string(),
            "bob".to_string()
        )],
        "a day starting at midnight cuts the evening in two"
    );
}

#[test]
fn shanghai_evenings_and_mornings_are_one_day_each() {
    let cfg = ProxyLearningConfig::default();
    // 20:00–02:00 in Shanghai (12:00–18:00 UTC).
    let evening = run_cfg(&one_long_evening(4.0 * 3600.0), &cfg);
    assert_eq!(days_on(&evening, "pc-1").len(), 1);
    // 06:00–12:00 in Shanghai (22:00–04:00 UTC) spans the UTC midnight.
    let morning = run_cfg(&one_long_evening(14.0 * 3600.0), &cfg);
    assert_eq!(days_on(&morning, "pc-1").len(), 1);
    assert!(morning.flags.is_empty(), "{:?}", flagged(&morning));
}

#[test]
fn a_time_zone_creditguard_does_not_know_is_an_error_naming_the_key() {
    let cfg = crate::JobsConfig {
        proxy_learning: ProxyLearningConfig {
            time_zone: "Europe/Berlin".into(),
            ..Default::default()
        },
        ..Default::default()
    };
    let p = cfg.problems();
    assert!(
        p.iter()
            .any(|e| e.contains("key `jobs.proxy_learning.time_zone`")
                && e.contains("Europe/Berlin")),
        "{p:?}"
    );
    let late = ProxyLearningConfig {
        time_zone: "-12:00".into(),
        day_starts_at_hour: 23,
        ..Default::default()
    };
    let err = detect(frame(&[]).lazy(), &late, &HashSet::new())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("more than a day after the UTC midnight"),
        "{err}"
    );
}

#[test]
fn an_office_address_that_many_colleagues_use_from_their_own_laptops_exempts_nothing() {
    let office = "198.51.100.20";
    let mut lines = Vec::new();
    for day in 0..4 {
        let base = day as f64 * DAY_S;
        // Everyone works at the office on their own laptop; four of them only ever there.
        for user in ["learner", "colleague", "amy", "bob", "cai", "dan"] {
            lines.extend(session_at(
                user,
                &format!("lap-{user}"),
                office,
                "c3",
                base,
                20.0,
            ));
        }
    }
    for day in 1..3 {
        lines.extend(hand_offs(
            &["learner", "colleague", "learner"],
            "lap-colleague",
            office,
            day as f64 * DAY_S + 3.0 * 3600.0,
            30.0,
        ));
    }
    let out = run_with(&lines, &[]);
    // The learner's own laptop is on the office address too, but six accounts use it: not a
    // household. The accounts that only use their own laptop are counted though their devices
    // are measured no further.
    assert_eq!(
        flagged(&out),
        [(
            "proxy_learning.alternating_accounts".to_string(),
            "learner".to_string()
        )]
    );
    let devices = out.features.column("device_id").unwrap().str().unwrap();
    assert!(
        devices.iter().all(|d| d == Some("lap-colleague")),
        "{devices:?}"
    );
    let users = out.features.column("user_id").unwrap().str().unwrap();
    let accounts = out
        .features
        .column("address_accounts")
        .unwrap()
        .i64()
        .unwrap();
    let learners: Vec<Option<i64>> = (0..users.len())
        .filter(|&i| users.get(i) == Some("learner"))
        .map(|i| accounts.get(i))
        .collect();
    assert_eq!(learners, [Some(6), Some(6)]);
}
