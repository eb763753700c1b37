//! Hand-written fixtures of each source format (a few lines, written here, not copied from the
//! datasets) → the exact events, catalog and counts expected.

use std::path::Path;

use creditguard_import::{catalog_csv, import, Format, Import, Options};
use serde_json::{json, Value};

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn parsed(out: &Import) -> Vec<Value> {
    out.lines
        .iter()
        .map(|l| {
            creditguard_contract::parse_event(l.as_bytes())
                .unwrap_or_else(|e| panic!("contract rejects {l}: {e}"));
            serde_json::from_str(l).unwrap()
        })
        .collect()
}

/// Every record is accounted for: an event, folded into one, or skipped with a reason.
fn assert_accounted(out: &Import) {
    let s = &out.stats;
    let folded: u64 = s.folded.values().sum();
    assert_eq!(
        s.records,
        s.total_events() - s.total_added() + s.total_skipped() + folded,
        "records not accounted for: {s}"
    );
}

fn reasons(out: &Import) -> Vec<(String, u64)> {
    out.stats
        .skipped
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

const QUESTIONS: &str = "question_id,bundle_id,explanation_id,correct_answer,part,tags,deployed_at
q1,b1,e1,a,2,1,0
q2,b2,e2,b,3,1;4,0
q3,b2,e2,c,3,1,0
";
const LECTURES: &str = "lecture_id,part,tags,video_length,deployed_at
l7,4,5,120000,0
l8,4,5,-1,-1
l9,-1,5,60000,-1
";

#[test]
fn ednet_kt4_actions_map_to_exact_events() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "contents/questions.csv", QUESTIONS);
    write(dir.path(), "contents/lectures.csv", LECTURES);
    write(
        dir.path(),
        "KT4/u42.csv",
        "timestamp,action_type,item_id,cursor_time,source,user_answer,platform
1565096100000,pay,p1,,,,
1565096151000,enter,b1,,diagnosis,,mobile
1565096161000,respond,q1,,diagnosis,a,mobile
1565096163500,submit,b1,,diagnosis,,mobile
1565096170000,enter,b2,,tutor,,mobile
1565096171000,play_audio,b2,0,tutor,,mobile
1565096181000,pause_audio,b2,10000,tutor,,mobile
1565096185000,erase_choice,q2,,tutor,a,mobile
1565096190000,respond,q2,,tutor,b,mobile
1565096195000,respond,q3,,tutor,a,mobile
1565096200000,submit,b2,,tutor,,mobile
1565096300000,enter,l7,,archive,,mobile
1565096301000,play_video,l7,500,archive,,mobile
1565096331000,pause_video,l7,30500,archive,,mobile
1565096332000,quit,l7,,archive,,mobile
1565100000000,enter,b1,,review,,web
1565100005000,submit,b1,,review,,web
1565100006000,play_video,l7,,archive,,web
1565100010000,enter,l9,,archive,,web
",
    );
    let out = import(
        Format::EdnetKt4,
        &Options {
            input: dir.path().to_path_buf(),
            contents: None,
        },
    )
    .unwrap();
    let m = |line: u32, ty: &str, ts: &str, extra: Value| {
        let mut e = json!({
            "event_id": format!("ednet-kt4:u42:{line}"), "type": ty, "ts": ts,
            "user_id": "ednet-kt4:u42", "org_unit": "ednet-kt4",
            "session_id": "ednet-kt4:u42:mobile:s1", "device_id": "ednet-kt4:u42:mobile",
            "platform": "other",
        });
        e.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        e
    };
    let expected = vec![
        m(
            3,
            "course_enter",
            "2019-08-06T12:55:51.000000Z",
            json!({"course_id": "ednet-part-2"}),
        ),
        m(
            5,
            "quiz_submit",
            "2019-08-06T12:56:03.500000Z",
            json!({
            "course_id": "ednet-part-2", "quiz_id": "b1", "questions": 1, "score": 1,
            "max_score": 1, "elapsed_s": 12.5}),
        ),
        m(
            6,
            "course_enter",
            "2019-08-06T12:56:10.000000Z",
            json!({"course_id": "ednet-part-3"}),
        ),
        m(
            7,
            "video_play",
            "2019-08-06T12:56:11.000000Z",
            json!({
            "course_id": "ednet-part-3", "lesson_id": "b2", "position_s": 0.0}),
        ),
        m(
            8,
            "video_pause",
            "2019-08-06T12:56:21.000000Z",
            json!({
            "course_id": "ednet-part-3", "lesson_id": "b2", "position_s": 10.0}),
        ),
        m(
            12,
            "quiz_submit",
            "2019-08-06T12:56:40.000000Z",
            json!({
            "course_id": "ednet-part-3", "quiz_id": "b2", "questions": 2, "score": 1,
            "max_score": 2, "elapsed_s": 30.0}),
        ),
        m(
            13,
            "course_enter",
            "2019-08-06T12:58:20.000000Z",
            json!({"course_id": "ednet-part-4"}),
        ),
        m(
            14,
            "video_play",
            "2019-08-06T12:58:21.000000Z",
            json!({
            "course_id": "ednet-part-4", "lesson_id": "l7", "position_s": 0.5,
            "duration_s": 120.0}),
        ),
        m(
            15,
            "video_pause",
            "2019-08-06T12:58:51.000000Z",
            json!({
            "course_id": "ednet-part-4", "lesson_id": "l7", "position_s": 30.5,
            "duration_s": 120.0}),
        ),
        m(
            16,
            "course_leave",
            "2019-08-06T12:58:52.000000Z",
            json!({"course_id": "ednet-part-4"}),
        ),
        m(
            17,
            "course_enter",
            "2019-08-06T14:00:00.000000Z",
            json!({
            "course_id": "ednet-part-2", "session_id": "ednet-kt4:u42:web:s1",
            "device_id": "ednet-kt4:u42:web", "platform": "web"}),
        ),
        // A submit with no answer (a listening item left unanswered) scores 0.
        m(
            18,
            "quiz_submit",
            "2019-08-06T14:00:05.000000Z",
            json!({
            "course_id": "ednet-part-2", "quiz_id": "b1", "questions": 1, "score": 0,
            "max_score": 1, "elapsed_s": 5.0, "session_id": "ednet-kt4:u42:web:s1",
            "device_id": "ednet-kt4:u42:web", "platform": "web"}),
        ),
        // A lecture of no TOEIC part.
        m(
            20,
            "course_enter",
            "2019-08-06T14:00:10.000000Z",
            json!({
            "course_id": "ednet-general", "session_id": "ednet-kt4:u42:web:s1",
            "device_id": "ednet-kt4:u42:web", "platform": "web"}),
        ),
    ];
    assert_eq!(parsed(&out), expected);
    assert_eq!(out.stats.records, 19);
    assert_eq!(
        reasons(&out),
        vec![
            (
                "ednet-kt4: erase_choice (an answer erased before submitting; no telemetry-v1 equivalent)".into(),
                1
            ),
            ("ednet-kt4: pay (a purchase; no telemetry-v1 equivalent)".into(), 1),
            ("ednet-kt4: play_video without cursor_time".into(), 1),
        ]
    );
    assert_eq!(
        out.stats
            .folded
            .get("ednet-kt4: respond → its bundle's quiz_submit"),
        Some(&3)
    );
    assert_accounted(&out);
    assert_eq!(out.stats.users.len(), 1);
    assert_eq!(
        catalog_csv(&out.catalog),
        "course_id,title,category,credits,duration_s,min_watch_ratio
ednet-general,TOEIC general lectures (EdNet Santa),elective,1,60,0.8
ednet-part-4,TOEIC Part 4 Talks (EdNet Santa),elective,1,120,0.8
"
    );
    // No lecture video of parts 2 and 3 in the contents: no length, so no catalog row.
    assert_eq!(out.uncatalogued, ["ednet-part-2", "ednet-part-3"]);
}

#[test]
fn ednet_kt4_respond_of_an_abandoned_bundle_is_counted_not_dropped() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "contents/questions.csv", QUESTIONS);
    write(dir.path(), "contents/lectures.csv", LECTURES);
    write(
        dir.path(),
        "u5.csv",
        "timestamp,action_type,item_id,cursor_time,source,user_answer,platform
1565096151000,enter,b2,,sprint,,mobile
1565096161000,respond,q2,,sprint,a,mobile
1565096171000,quit,b2,,sprint,,mobile
1565096181000,respond,q1,,sprint,a,mobile
",
    );
    let out = import(
        Format::EdnetKt4,
        &Options {
            input: dir.path().join("u5.csv"),
            contents: Some(dir.path().join("contents")),
        },
    )
    .unwrap();
    assert_eq!(out.stats.events.get("course_enter"), Some(&1));
    assert_eq!(out.stats.events.get("course_leave"), Some(&1));
    assert_eq!(
        reasons(&out),
        vec![
            (
                "ednet-kt4: respond in a bundle that was never submitted".into(),
                1
            ),
            (
                "ednet-kt4: respond outside the bundle last entered".into(),
                1
            ),
        ]
    );
    assert_accounted(&out);
}

#[test]
fn ednet_kt4_without_contents_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "KT4/u1.csv",
        "timestamp,action_type,item_id,cursor_time,source,user_answer,platform\n",
    );
    let err = import(
        Format::EdnetKt4,
        &Options {
            input: dir.path().to_path_buf(),
            contents: None,
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("--contents"), "{err}");
}

#[test]
fn ednet_kt1_bundles_become_one_quiz_each() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "KT1_merged/u7.csv",
        "user_id,timestamp,deployed_at,elapsed_time,solving_id,bundle_id,explanation_id,tags,part,question_id,user_answer,correct_answer,correct,score,action_type,item_id,platform,cursor_time
u7,1565096221000,0,20000.0,2.0,b5,e5,1,5,q9,a,a,1,0.5,,,,
u7,1565096190000,0,24000.0,1.0,b3,e3,1,3,q4,b,b,1,0.5,,,,
u7,1565096190040,0,24000.0,1.0,b3,e3,1,3,q5,c,d,0,0.5,,,,
u7,1565096190020,0,24000.0,1.0,b3,e3,1,3,q6,a,a,1,0.5,,,,
u7,1565096221000,0,20000.0,2.0,b5,e5,1,5,q9,a,a,1,0.5,,,,
u7,1565096300000,0,0.0,3.0,b8,e8,1,5,q12,a,a,1,0.5,,,,
u7,1565096250000,0,4000.0,2.0,b5,e5,1,5,q9,a,a,1,0.5,,,,
u7,1565200000000,0,15000.0,4.0,b2,e2,1,2,q2,c,a,0,0.5,,,,
",
    );
    let out = import(
        Format::EdnetKt1,
        &Options {
            input: dir.path().to_path_buf(),
            contents: None,
        },
    )
    .unwrap();
    let q = |line: u32, ts: &str, s: u32, course: &str, quiz: &str, n: u32, score: u32, el: f64| {
        json!({
            "event_id": format!("ednet-kt1:u7.csv:{line}"), "type": "quiz_submit", "ts": ts,
            "user_id": "ednet-kt1:u7", "org_unit": "ednet-kt1",
            "session_id": format!("ednet-kt1:u7:app:s{s}"), "device_id": "ednet-kt1:u7:app",
            "course_id": course, "quiz_id": quiz, "questions": n, "score": score,
            "max_score": n, "elapsed_s": el,
        })
    };
    assert_eq!(
        parsed(&out),
        vec![
            q(
                3,
                "2019-08-06T12:56:30.000000Z",
                1,
                "ednet-part-3",
                "b3",
                3,
                2,
                72.0
            ),
            q(
                2,
                "2019-08-06T12:57:01.000000Z",
                1,
                "ednet-part-5",
                "b5",
                1,
                1,
                20.0
            ),
            q(
                8,
                "2019-08-06T12:57:30.000000Z",
                1,
                "ednet-part-5",
                "b5",
                1,
                1,
                4.0
            ),
            q(
                9,
                "2019-08-07T17:46:40.000000Z",
                2,
                "ednet-part-2",
                "b2",
                1,
                0,
                15.0
            ),
        ]
    );
    assert_eq!(
        reasons(&out),
        vec![
            (
                "ednet-kt1: elapsed_time 0 (not recorded; a person cannot answer in 0 s)".into(),
                1
            ),
            ("ednet-kt1: exact duplicate row".into(), 1),
        ]
    );
    assert_eq!(out.stats.folded.values().sum::<u64>(), 2);
    assert_accounted(&out);
    // Without EdNet-Contents no lecture length is known: every course is left out of the catalog.
    assert!(out.catalog.is_empty());
    assert_eq!(
        out.uncatalogued,
        ["ednet-part-2", "ednet-part-3", "ednet-part-5"]
    );
}

#[test]
fn ednet_kt1_raw_rows_need_contents() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "contents/questions.csv", QUESTIONS);
    write(dir.path(), "contents/lectures.csv", LECTURES);
    write(
        dir.path(),
        "raw/r1.csv",
        "timestamp,solving_id,question_id,user_answer,elapsed_time
1565096400000,1,q1,a,9000
1565096500000,2,q99,a,9000
",
    );
    let input = dir.path().join("raw");
    let with = import(
        Format::EdnetKt1,
        &Options {
            input: input.clone(),
            contents: Some(dir.path().join("contents")),
        },
    )
    .unwrap();
    assert_eq!(
        parsed(&with),
        vec![json!({
            "event_id": "ednet-kt1:r1.csv:2", "type": "quiz_submit",
            "ts": "2019-08-06T13:00:00.000000Z", "user_id": "ednet-kt1:r1",
            "org_unit": "ednet-kt1", "session_id": "ednet-kt1:r1:app:s1",
            "device_id": "ednet-kt1:r1:app", "course_id": "ednet-part-2", "quiz_id": "b1",
            "questions": 1, "score": 1, "max_score": 1, "elapsed_s": 9.0,
        })]
    );
    assert_eq!(
        reasons(&with),
        vec![("ednet-kt1: question not in EdNet-Contents".into(), 1)]
    );
    let without = import(
        Format::EdnetKt1,
        &Options {
            input,
            contents: None,
        },
    )
    .unwrap();
    assert!(without.lines.is_empty());
    assert_eq!(without.stats.total_skipped(), 2);
    assert_accounted(&without);
}

#[test]
fn openedx_tracking_log_maps_video_problem_navigation_and_completion() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = r#""context": {"course_id": "edX/T1/2014", "org_id": "edX", "path": "/event"}"#;
    let server_ctx = r#""context": {"course_id": "edX/T1/2014", "org_id": "edX", "session": "s-abc", "user_id": 5, "agent": "UA1", "ip": "10.0.0.1", "path": "/x"}"#;
    let browser = |t: &str, ty: &str, ev: &str| {
        format!(
            r#"{{"username": "ann", "event_type": "{ty}", "ip": "10.0.0.1", "agent": "UA1", "session": "s-abc", "event": {ev}, "event_source": "browser", {ctx}, "time": "2014-05-02T{t}+00:00", "page": "http://x/courses/edX/T1/2014/courseware/a/b/"}}"#
        )
    };
    let play = browser(
        "16:00:00.000000",
        "play_video",
        r#""{\"id\":\"v1\",\"currentTime\":0,\"code\":\"x\"}""#,
    );
    let lines = [
        play.clone(),
        browser(
            "16:00:30.000000",
            "pause_video",
            r#""{\"id\":\"v1\",\"currentTime\":29.5,\"code\":\"x\"}""#,
        ),
        browser(
            "16:00:40.000000",
            "seek_video",
            r#""{\"id\":\"v1\",\"old_time\":29.5,\"new_time\":100,\"type\":\"onSlideSeek\"}""#,
        ),
        format!(
            r#"{{"username": "ann", "event_type": "/courses/edX/T1/2014/courseware/ch1/seq1/", "event_source": "server", "event": "{{}}", {server_ctx}, "time": "2014-05-02T16:01:00.000000+00:00"}}"#
        ),
        browser("16:01:40.000000", "problem_check", r#""input_p1_2_1=3""#),
        format!(
            r#"{{"username": "ann", "event_type": "problem_check", "event_source": "server", "context": {{"course_id": "edX/T1/2014", "org_id": "edX", "agent": "UA1", "ip": "10.0.0.1"}}, "time": "2014-05-02T16:01:40.200000+00:00", "event": {{"problem_id": "p1", "grade": 2, "max_grade": 2, "submission": {{"p1_2_1": {{}}, "p1_3_1": {{}}}}, "success": "correct"}}}}"#
        ),
        "{not json".to_string(),
        r#"{"username": "", "event_type": "/dashboard", "event_source": "server", "time": "2014-05-02T16:02:00+00:00", "context": {}}"#.to_string(),
        format!(
            r#"{{"username": "ann", "event_type": "/logout", "event_source": "server", "event": "{{}}", {server_ctx}, "time": "2014-05-02T16:05:00.000000+00:00"}}"#
        ),
        format!(
            r#"{{"username": "ann", "event_type": "edx.forum.thread.created", "event_source": "server", "event": {{}}, {server_ctx}, "time": "2014-05-02T16:06:00.000000+00:00"}}"#
        ),
        play,
        // Hint feedback the server sends with the check: not where the time on the problem starts
        // (the courseware page view at 16:01:00 is).
        format!(
            r#"{{"username": "ann", "event_type": "edx.problem.hint.feedback_displayed", "event_source": "server", "event": {{}}, {server_ctx}, "time": "2014-05-02T16:01:40.100000+00:00"}}"#
        ),
    ];
    write(dir.path(), "logs/tracking.log", &(lines.join("\n") + "\n"));
    write(
        dir.path(),
        "logs/fixtures/passed.json",
        r#"{
    "context": {
        "agent": "UA2", "course_id": "course-v1:edX+DemoX+Demo_Course", "ip": "172.18.0.1",
        "org_id": "edX", "session": "s-xyz", "user_id": 3, "username": "edx"
    },
    "data": {"course_id": "course-v1:edX+DemoX+Demo_Course", "user_id": 3},
    "name": "edx.course.grade.passed.first_time",
    "timestamp": "2020-07-15T06:36:01.917775+00:00"
}"#,
    );
    let out = import(
        Format::OpenEdx,
        &Options {
            input: dir.path().join("logs"),
            contents: None,
        },
    )
    .unwrap();
    let dev = |agent: &str| format!("ua-{}", &creditguard_contract::stable_id(&[agent])[..12]);
    let ann = |line: u32, ty: &str, ts: &str, extra: Value| {
        let mut e = json!({
            "event_id": format!("openedx:tracking.log:{line}"), "type": ty,
            "ts": format!("2014-05-02T{ts}Z"), "user_id": "openedx:ann",
            "session_id": "openedx:s-abc", "platform": "web", "org_unit": "edX",
            "device_id": dev("UA1"), "ip": "10.0.0.1",
        });
        e.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        e
    };
    let expected = vec![
        ann(
            1,
            "video_play",
            "16:00:00.000000",
            json!({
            "course_id": "edX/T1/2014", "lesson_id": "v1", "position_s": 0.0}),
        ),
        ann(
            2,
            "video_pause",
            "16:00:30.000000",
            json!({
            "course_id": "edX/T1/2014", "lesson_id": "v1", "position_s": 29.5}),
        ),
        ann(
            3,
            "video_seek",
            "16:00:40.000000",
            json!({
            "course_id": "edX/T1/2014", "lesson_id": "v1", "seek_from_s": 29.5,
            "seek_to_s": 100.0}),
        ),
        ann(
            4,
            "course_enter",
            "16:01:00.000000",
            json!({"course_id": "edX/T1/2014"}),
        ),
        ann(
            6,
            "quiz_submit",
            "16:01:40.200000",
            json!({
            "course_id": "edX/T1/2014", "quiz_id": "p1", "questions": 2, "score": 2.0,
            "max_score": 2.0, "elapsed_s": 40.2}),
        ),
        ann(9, "logout", "16:05:00.000000", json!({})),
        json!({
            "event_id": "openedx:fixtures/passed.json:1", "type": "course_complete",
            "ts": "2020-07-15T06:36:01.917775Z", "user_id": "openedx:edx",
            "session_id": "openedx:s-xyz", "platform": "web", "org_unit": "edX",
            "device_id": dev("UA2"), "ip": "172.18.0.1",
            "course_id": "course-v1:edX+DemoX+Demo_Course", "credits": 1.0,
            "category": "elective",
        }),
    ];
    assert_eq!(parsed(&out), expected);
    assert_eq!(out.stats.records, 13);
    assert_eq!(
        reasons(&out),
        vec![
            (
                "openedx: duplicate (an identical event was already read)".into(),
                1
            ),
            (
                "openedx: edx.forum.thread.created (no telemetry-v1 equivalent)".into(),
                1
            ),
            (
                "openedx: edx.problem.hint.feedback_displayed (no telemetry-v1 equivalent)".into(),
                1
            ),
            ("openedx: no username (anonymous event)".into(), 1),
            ("openedx: not valid JSON".into(), 1),
            (
                "openedx: problem_check from the browser (answers only; its server twin has the grade)".into(),
                1
            ),
        ]
    );
    assert_accounted(&out);
    assert_eq!(
        catalog_csv(&out.catalog),
        "course_id,title,category,credits,duration_s,min_watch_ratio
edX/T1/2014,Open edX edX/T1/2014,elective,1,100,0.8
"
    );
    assert_eq!(out.uncatalogued, ["course-v1:edX+DemoX+Demo_Course"]);
}

#[test]
fn written_ndjson_round_trips_plain_and_zstd() {
    let dir = tempfile::tempdir().unwrap();
    let lines = vec![
        r#"{"event_id":"a","type":"login","ts":"2026-03-02T09:15:04Z","user_id":"u","session_id":"s"}"#.to_string(),
        r#"{"event_id":"b","type":"logout","ts":"2026-03-02T09:16:04Z","user_id":"u","session_id":"s"}"#.to_string(),
    ];
    let plain = dir.path().join("o.ndjson");
    let zst = dir.path().join("o.ndjson.zst");
    creditguard_import::write_ndjson(&plain, &lines).unwrap();
    creditguard_import::write_ndjson(&zst, &lines).unwrap();
    let expected = lines.join("\n") + "\n";
    assert_eq!(std::fs::read_to_string(&plain).unwrap(), expected);
    let decoded = zstd::decode_all(std::fs::File::open(&zst).unwrap()).unwrap();
    assert_eq!(String::from_utf8(decoded).unwrap(), expected);
}
