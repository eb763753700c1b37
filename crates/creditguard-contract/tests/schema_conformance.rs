//! Differential test: for every event type, valid and invalid variants are judged by
//! `parse_event` and by a JSON Schema 2020-12 validator running `telemetry-v1.schema.json`
//! (formats asserted). They must agree, and every rejection must name the field that was broken.

use creditguard_contract::{parse_event, parse_event_reference, EventType, RejectKind};
use serde_json::{json, Map, Value};

const SCHEMA: &str = include_str!("../contract/telemetry-v1.schema.json");

fn validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap()
}

/// A valid event of `t` with every field it requires and nothing else.
fn minimal(t: EventType) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("event_id".into(), json!("e-1"));
    m.insert("type".into(), json!(t.as_str()));
    m.insert("ts".into(), json!("2026-03-02T09:15:04.250+08:00"));
    m.insert("user_id".into(), json!("u-1"));
    if t.requires_session() {
        m.insert("session_id".into(), json!("s-1"));
    }
    for &f in t.required_fields() {
        m.insert(f.into(), good_value(f));
    }
    m
}

/// A valid value for each known field.
fn good_value(field: &str) -> Value {
    match field {
        "event_id" => json!("e-1"),
        "schema_version" => json!(1),
        "type" => json!("login"),
        "ts" | "received_at" => json!("2026-03-02T01:15:05Z"),
        "user_id" | "org_unit" | "session_id" | "device_id" | "course_id" | "lesson_id"
        | "quiz_id" | "prompt_id" => json!("x-1"),
        "ip" => json!("10.1.2.3"),
        "geo_lat" => json!(31.23),
        "geo_lon" => json!(121.47),
        "platform" => json!("mini_program"),
        "position_s" | "duration_s" | "seek_from_s" | "seek_to_s" | "elapsed_s" => json!(12.5),
        "playing" | "visible" | "muted" | "answered" | "correct" => json!(true),
        "answered_at" => json!("2026-03-02T01:15:09Z"),
        "response_s" => json!(4.75),
        "input_events" => json!(3),
        "rate" => json!(1.5),
        "score" => json!(9),
        "max_score" => json!(10),
        "questions" => json!(5),
        "credits" => json!(2.5),
        "category" => json!("mandatory"),
        "method" => json!("qr"),
        other => panic!("no good value for {other}"),
    }
}

const ALL_FIELDS: [&str; 37] = [
    "event_id",
    "schema_version",
    "type",
    "ts",
    "received_at",
    "user_id",
    "org_unit",
    "session_id",
    "device_id",
    "ip",
    "geo_lat",
    "geo_lon",
    "platform",
    "course_id",
    "lesson_id",
    "position_s",
    "duration_s",
    "playing",
    "visible",
    "muted",
    "rate",
    "seek_from_s",
    "seek_to_s",
    "quiz_id",
    "score",
    "max_score",
    "questions",
    "elapsed_s",
    "credits",
    "category",
    "method",
    "prompt_id",
    "answered",
    "answered_at",
    "response_s",
    "correct",
    "input_events",
];

/// Values that break a field: (value, the kind of rejection expected).
fn bad_values(field: &str) -> Vec<(Value, RejectKind)> {
    use RejectKind::*;
    let mut v = match good_value(field) {
        Value::String(_) => vec![
            (json!(5), WrongType),
            (json!(null), WrongType),
            (json!(["a"]), WrongType),
        ],
        Value::Bool(_) => vec![
            (json!("true"), WrongType),
            (json!(1), WrongType),
            (json!(null), WrongType),
        ],
        Value::Number(_) => vec![
            (json!("1"), WrongType),
            (json!(true), WrongType),
            (json!({}), WrongType),
        ],
        _ => unreachable!(),
    };
    match field {
        "event_id" => v.extend([
            (json!(""), OutOfRange),
            (json!("x".repeat(129)), OutOfRange),
        ]),
        "user_id" => v.extend([
            (json!(""), OutOfRange),
            (json!("u".repeat(257)), OutOfRange),
        ]),
        "session_id" | "course_id" | "lesson_id" | "quiz_id" | "prompt_id" => {
            v.push((json!(""), OutOfRange))
        }
        "schema_version" => v.extend([(json!(2), OutOfRange), (json!(1.5), WrongType)]),
        "type" => v.extend([
            (json!("video_skip"), UnknownType),
            (json!("LOGIN"), UnknownType),
        ]),
        "ts" | "received_at" | "answered_at" => v.extend([
            (json!("2026-03-02T09:15:04"), BadTimestamp),
            (json!("2026-03-02"), BadTimestamp),
            (json!("2026-02-30T09:15:04Z"), BadTimestamp),
            (json!("yesterday"), BadTimestamp),
            (json!("2026-03-02T25:15:04Z"), BadTimestamp),
        ]),
        "geo_lat" => v.extend([(json!(90.5), OutOfRange), (json!(-91), OutOfRange)]),
        "geo_lon" => v.extend([(json!(180.01), OutOfRange), (json!(-181), OutOfRange)]),
        "platform" => v.push((json!("windows"), OutOfRange)),
        "position_s" | "duration_s" | "seek_from_s" | "seek_to_s" | "elapsed_s" | "score"
        | "credits" | "response_s" => v.push((json!(-0.5), OutOfRange)),
        "rate" => v.extend([
            (json!(0), OutOfRange),
            (json!(-1), OutOfRange),
            (json!(16.5), OutOfRange),
        ]),
        "max_score" => v.extend([(json!(0), OutOfRange), (json!(-3), OutOfRange)]),
        "questions" => v.extend([(json!(0), OutOfRange), (json!(2.5), WrongType)]),
        "input_events" => v.extend([(json!(-1), OutOfRange), (json!(2.5), WrongType)]),
        "category" => v.push((json!("optional"), OutOfRange)),
        "method" => v.push((json!("fingerprint"), OutOfRange)),
        _ => {}
    }
    v
}

fn judge(
    v: &jsonschema::Validator,
    event: &Value,
) -> (bool, Result<(), creditguard_contract::Rejection>) {
    let bytes = serde_json::to_vec(event).unwrap();
    (v.is_valid(event), parse_event(&bytes).map(|_| ()))
}

#[test]
fn every_type_valid_minimal_and_full_agree_with_the_schema() {
    let v = validator();
    for t in EventType::ALL {
        let min = Value::Object(minimal(t));
        let (schema_ok, ours) = judge(&v, &min);
        assert!(schema_ok, "schema rejects our minimal {t}: {min}");
        assert!(ours.is_ok(), "we reject minimal {t}: {ours:?}");

        let mut full = minimal(t);
        for f in ALL_FIELDS {
            if f != "type" {
                full.insert(f.into(), good_value(f));
            }
        }
        full.insert("unknown_future_field".into(), json!({"nested": [1, 2, 3]}));
        let full = Value::Object(full);
        let (schema_ok, ours) = judge(&v, &full);
        assert!(
            schema_ok && ours.is_ok(),
            "{t} with every field: schema {schema_ok}, ours {ours:?}"
        );
    }
}

#[test]
fn every_required_field_missing_is_rejected_by_both_and_named() {
    let v = validator();
    let mut cases = 0;
    for t in EventType::ALL {
        for f in minimal(t).keys().cloned().collect::<Vec<_>>() {
            let mut m = minimal(t);
            m.remove(&f);
            let event = Value::Object(m);
            let (schema_ok, ours) = judge(&v, &event);
            assert!(!schema_ok, "schema accepts {t} without {f}");
            let rej = ours.expect_err(&format!("we accept {t} without {f}"));
            assert_eq!(rej.kind, RejectKind::MissingField, "{t} without {f}: {rej}");
            assert_eq!(
                rej.field.as_deref(),
                Some(f.as_str()),
                "{t} without {f}: {rej}"
            );
            assert!(rej.reason.contains(&format!("`{f}`")), "{rej}");
            cases += 1;
        }
    }
    assert!(cases > 50, "only {cases} cases");
}

#[test]
fn every_bad_value_of_every_field_in_every_type_agrees_with_the_schema() {
    let v = validator();
    let mut cases = 0;
    for t in EventType::ALL {
        for f in ALL_FIELDS {
            for (bad, kind) in bad_values(f) {
                let mut m = minimal(t);
                m.insert(f.into(), bad.clone());
                let event = Value::Object(m);
                let (schema_ok, ours) = judge(&v, &event);
                assert!(!schema_ok, "schema accepts {t} with {f} = {bad}");
                let rej = ours.expect_err(&format!("we accept {t} with {f} = {bad}"));
                assert_eq!(rej.field.as_deref(), Some(f), "{t} with {f} = {bad}: {rej}");
                assert_eq!(rej.kind, kind, "{t} with {f} = {bad}: {rej}");
                cases += 1;
            }
        }
    }
    assert!(cases > 1000, "only {cases} cases");
}

#[test]
fn boundary_values_that_the_schema_allows_are_accepted() {
    let v = validator();
    let ok: [(&str, Value); 12] = [
        ("geo_lat", json!(90)),
        ("geo_lat", json!(-90)),
        ("geo_lon", json!(-180)),
        ("rate", json!(16)),
        ("rate", json!(0.0625)),
        ("position_s", json!(0)),
        ("credits", json!(0)),
        ("questions", json!(1)),
        ("questions", json!(3.0)),
        ("event_id", json!("é".repeat(128))),
        ("ts", json!("2026-03-02T01:15:04.123456789-05:30")),
        ("received_at", json!("2024-02-29t23:59:59z")),
    ];
    for (f, val) in ok {
        let mut m = minimal(EventType::QuizSubmit);
        m.insert(f.into(), val.clone());
        let event = Value::Object(m);
        let (schema_ok, ours) = judge(&v, &event);
        assert!(schema_ok, "schema rejects {f} = {val}");
        assert!(ours.is_ok(), "we reject {f} = {val}: {ours:?}");
    }
}

#[test]
fn syntax_problems_are_not_json() {
    for (line, needle) in [
        (&br#"{"event_id":"e1","type":"login""#[..], "truncated"),
        (b"{\"event_id\":\"e1\",}", "invalid JSON"),
        (b"[1,2]", "not a JSON object"),
        (b"42", "not a JSON object"),
        (b"{\"a\":1} {\"b\":2}", "invalid JSON"),
    ] {
        let rej = parse_event(line).unwrap_err();
        assert_eq!(
            rej.kind,
            RejectKind::NotJson,
            "{}: {rej}",
            String::from_utf8_lossy(line)
        );
        assert!(
            rej.reason.contains(needle),
            "{}: {rej}",
            String::from_utf8_lossy(line)
        );
    }
    let rej = parse_event(b"{\"event_id\":\"\xff\xfe\"}").unwrap_err();
    assert_eq!(rej.kind, RejectKind::NotUtf8);
    assert_eq!(rej.reason, "not valid UTF-8 at byte 13");
    let rej = parse_event(br#"{"event_id":"e1","event_id":"e2"}"#).unwrap_err();
    assert_eq!(
        (rej.kind, rej.field.as_deref()),
        (RejectKind::DuplicateField, Some("event_id"))
    );
}

#[test]
fn timestamps_with_offsets_become_utc_microseconds() {
    let mut m = minimal(EventType::Login);
    m.insert("ts".into(), json!("2026-03-02T09:15:04.250+08:00"));
    m.insert("received_at".into(), json!("2026-03-01T20:15:05-05:00"));
    let bytes = serde_json::to_vec(&Value::Object(m)).unwrap();
    let ev = parse_event(&bytes).unwrap();
    assert_eq!(ev.ts_us, 1_772_414_104_250_000);
    assert_eq!(ev.received_at_us, Some(1_772_414_105_000_000));
}

#[test]
fn strings_borrow_from_the_input_unless_escaped() {
    let line = br#"{"event_id":"e1","type":"login","ts":"2026-03-02T09:15:04Z","user_id":"u\u00e9","session_id":"s1"}"#;
    let ev = parse_event(line).unwrap();
    assert!(matches!(ev.event_id, std::borrow::Cow::Borrowed(_)));
    assert_eq!(ev.user_id, "ué");
}

/// The fields and types telemetry-v1 gained after its first publication (attention checks and
/// input counts): optional, so every event of the first edition still validates.
const ADDED_FIELDS: [&str; 6] = [
    "prompt_id",
    "answered",
    "answered_at",
    "response_s",
    "correct",
    "input_events",
];

/// The crate keeps its own copy of the schema so its tests never depend on a checkout layout;
/// when the project's shared contract is beside the repository, the copy must be that schema or
/// a compatible extension of it: every property the shared schema defines, defined the same, and
/// every rule it states, stated too (new properties, types and rules may be added).
#[test]
fn the_vendored_schema_matches_or_extends_the_shared_contract() {
    let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/contract/telemetry-v1.schema.json");
    match std::fs::read_to_string(&shared) {
        Ok(text) => {
            let theirs: Value = serde_json::from_str(&text).unwrap();
            let ours: Value = serde_json::from_str(SCHEMA).unwrap();
            for (name, def) in theirs["properties"].as_object().unwrap() {
                let mine = &ours["properties"][name];
                if name == "type" {
                    let types = mine["enum"].as_array().unwrap();
                    for t in def["enum"].as_array().unwrap() {
                        assert!(
                            types.contains(t),
                            "type {t} of {} dropped",
                            shared.display()
                        );
                    }
                } else {
                    assert_eq!(
                        mine,
                        def,
                        "property `{name}` differs from {}",
                        shared.display()
                    );
                }
            }
            let rules = ours["allOf"].as_array().unwrap();
            for rule in theirs["allOf"].as_array().unwrap() {
                assert!(
                    rules.contains(rule),
                    "rule {rule} of {} dropped",
                    shared.display()
                );
            }
            for name in ours["properties"].as_object().unwrap().keys() {
                assert!(
                    theirs["properties"].get(name).is_some()
                        || ADDED_FIELDS.contains(&name.as_str()),
                    "property `{name}` is neither in {} nor a documented addition",
                    shared.display()
                );
            }
        }
        Err(_) => eprintln!(
            "skipped: {} not found (the shared contract is not beside this checkout)",
            shared.display()
        ),
    }
}

#[test]
fn an_attention_check_parses_and_derives_its_response_time() {
    let line = br#"{"event_id":"a1","type":"attention_check","ts":"2026-03-02T09:15:04Z","user_id":"u1","session_id":"s1","course_id":"c1","lesson_id":"l1","prompt_id":"p7","answered":true,"answered_at":"2026-03-02T09:15:08.500Z","correct":true}"#;
    let ev = parse_event(line).unwrap();
    assert_eq!(ev.event_type, EventType::AttentionCheck);
    assert_eq!(ev.prompt_id.as_deref(), Some("p7"));
    assert_eq!(ev.response_s, Some(4.5));
    assert_eq!((ev.answered, ev.correct), (Some(true), Some(true)));
    // A response time the platform measured wins over the timestamps.
    let sent = br#"{"event_id":"a2","type":"attention_check","ts":"2026-03-02T09:15:04Z","user_id":"u1","session_id":"s1","course_id":"c1","lesson_id":"l1","prompt_id":"p7","answered":true,"answered_at":"2026-03-02T09:15:08.500Z","response_s":4.25}"#;
    assert_eq!(parse_event(sent).unwrap().response_s, Some(4.25));
    let missed = br#"{"event_id":"a3","type":"attention_check","ts":"2026-03-02T09:15:04Z","user_id":"u1","session_id":"s1","course_id":"c1","lesson_id":"l1","prompt_id":"p8","answered":false}"#;
    let ev = parse_event(missed).unwrap();
    assert_eq!((ev.answered, ev.response_s), (Some(false), None));
}

#[test]
fn heartbeats_with_and_without_input_counts_parse() {
    let old = br#"{"event_id":"h1","type":"heartbeat","ts":"2026-03-02T09:15:04Z","user_id":"u1","session_id":"s1","course_id":"c1","lesson_id":"l1","position_s":10,"playing":true,"visible":true}"#;
    assert_eq!(parse_event(old).unwrap().input_events, None);
    let new = br#"{"event_id":"h2","type":"heartbeat","ts":"2026-03-02T09:15:04Z","user_id":"u1","session_id":"s1","course_id":"c1","lesson_id":"l1","position_s":10,"playing":true,"visible":true,"input_events":0}"#;
    assert_eq!(parse_event(new).unwrap().input_events, Some(0));
    assert_eq!(
        parse_event_reference(new).unwrap(),
        parse_event(new).unwrap(),
        "fast and reference decoders agree"
    );
}
