//! Hostile input for the telemetry decoder and validator: property tests seeded with valid
//! events of every type, mutated at the byte level (flips, insertions, deletions, splices,
//! truncation, hostile tokens) and at the JSON level (any value for any field, duplicate keys,
//! deep nesting, huge strings and numbers).
//!
//! For every input: no panic; the fast decoder and the serde_json reference give the same
//! verdict (the same event or the same rejection); a rejection is one short line that names the
//! field at fault when there is one; an accepted event carries every field its type requires.
//!
//! The number of cases per property is bounded for CI (`PROPTEST_CASES`, default below). Run it
//! longer by hand:
//!
//! ```text
//! PROPTEST_CASES=1000000 cargo test --release -p creditguard-contract --locked --test hostile_input
//! ```
//!
//! A failure prints the shrunk input and saves its seed in `hostile_input.proptest-regressions`
//! beside this file (commit it): the next runs replay it first.

use creditguard_contract::{parse_event, parse_event_reference, Event, EventType, RejectKind};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// Cases per property when `PROPTEST_CASES` is not set (about 2 s for the file in release).
const DEFAULT_CASES: u32 = 20_000;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    ProptestConfig {
        cases,
        // Shrinking a byte soup can take long; the first failure is already small.
        max_shrink_iters: 2000,
        ..ProptestConfig::default()
    }
}

/// A valid value of each field the seeds carry.
fn good(field: &str) -> Value {
    match field {
        "position_s" | "duration_s" | "seek_from_s" | "seek_to_s" | "elapsed_s" => json!(12.5),
        "playing" | "visible" | "muted" | "answered" | "correct" => json!(true),
        "response_s" => json!(2.5),
        "input_events" => json!(3),
        "rate" => json!(1.5),
        "score" => json!(9),
        "max_score" => json!(10),
        "questions" => json!(5),
        "credits" => json!(2.5),
        "category" => json!("mandatory"),
        "method" => json!("qr"),
        _ => json!("x-1"),
    }
}

/// A valid event of every type, with the optional envelope fields too.
fn seeds() -> Vec<Map<String, Value>> {
    EventType::ALL
        .iter()
        .map(|&t| {
            let mut m = Map::new();
            m.insert("event_id".into(), json!("e-1"));
            m.insert("schema_version".into(), json!(1));
            m.insert("type".into(), json!(t.as_str()));
            m.insert("ts".into(), json!("2026-03-02T09:15:04.250+08:00"));
            m.insert("received_at".into(), json!("2026-03-02T01:15:05Z"));
            m.insert("user_id".into(), json!("u-1"));
            m.insert("org_unit".into(), json!("HQ/East"));
            m.insert("session_id".into(), json!("s-1"));
            m.insert("device_id".into(), json!("d-1"));
            m.insert("ip".into(), json!("10.1.2.3"));
            m.insert("geo_lat".into(), json!(31.23));
            m.insert("geo_lon".into(), json!(121.47));
            m.insert("platform".into(), json!("web"));
            for &f in t.required_fields() {
                m.insert(f.into(), good(f));
            }
            m
        })
        .collect()
}

fn seed_lines() -> Vec<Vec<u8>> {
    seeds()
        .into_iter()
        .map(|m| serde_json::to_vec(&Value::Object(m)).unwrap())
        .collect()
}

/// Byte strings a hostile or broken client sends.
const TOKENS: &[&[u8]] = &[
    b"\0",
    b"\xff",
    b"\xc3\x28",
    b"\xef\xbb\xbf",
    b"\r\n",
    b"\\u0000",
    b"\\ud800",
    b"\\\"",
    b"\"",
    b",",
    b":",
    b"{",
    b"}",
    b"[",
    b"]",
    b"null",
    b"true",
    b"NaN",
    b"Infinity",
    b"-0",
    b"1e400",
    b"-1e400",
    b"1e-400",
    b"123456789012345678901234567890",
    b"0.1e1",
    b"9007199254740993",
    b"\"0001-01-01T00:00:00Z\"",
    b"\"9999-12-31T23:59:60Z\"",
    b"\"2026-03-02T09:15:60+08:00\"",
    b"\"2026-02-30T00:00:00Z\"",
    b"\"type\":\"login\"",
    b"\"event_id\":\"e-2\"",
    b"\"ts\":1",
    b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
];

#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Token(usize, usize),
    Delete(usize, usize),
    Splice(usize, usize, usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, v)| Edit::Insert(i, v)),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(i, t)| Edit::Token(i, t)),
        (any::<usize>(), 1usize..16).prop_map(|(i, n)| Edit::Delete(i, n)),
        (any::<usize>(), any::<usize>(), 1usize..24).prop_map(|(a, b, n)| Edit::Splice(a, b, n)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(mut v: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let at = |i: usize, v: &Vec<u8>| if v.is_empty() { 0 } else { i % (v.len() + 1) };
        match e {
            Edit::Flip(i, b) if !v.is_empty() => {
                let i = i % v.len();
                v[i] ^= b | 1;
            }
            Edit::Flip(..) => {}
            Edit::Insert(i, bytes) => {
                let i = at(*i, &v);
                v.splice(i..i, bytes.iter().copied());
            }
            Edit::Token(i, t) => {
                let i = at(*i, &v);
                v.splice(i..i, TOKENS[*t].iter().copied());
            }
            Edit::Delete(i, n) => {
                let i = at(*i, &v);
                let end = (i + n).min(v.len());
                v.drain(i..end);
            }
            Edit::Splice(a, b, n) if !v.is_empty() => {
                // Copy a run of the line elsewhere (repeated keys, swapped values).
                let a = a % v.len();
                let end = (a + n).min(v.len());
                let run: Vec<u8> = v[a..end].to_vec();
                let b = at(*b, &v);
                v.splice(b..b, run);
            }
            Edit::Splice(..) => {}
            Edit::Truncate(i) => {
                let i = at(*i, &v);
                v.truncate(i);
            }
        }
    }
    v
}

/// Any JSON value, nested a few levels, with hostile scalars among the ordinary ones.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::String),
        prop_oneof![
            Just("2026-03-02T09:15:04Z"),
            Just("0001-01-01T00:00:00Z"),
            Just("9999-12-31T23:59:59.999999Z"),
            Just("2026-12-31T23:59:60Z"),
            Just("2026-03-02T09:15:04"),
            Just("2026-03-02 09:15:04Z"),
            Just("login"),
            Just("video_play"),
            Just(""),
        ]
        .prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const FIELDS: &[&str] = &[
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
    "unknown_extra",
];

#[derive(Debug, Clone)]
enum FieldEdit {
    Set(usize, Value),
    Remove(usize),
}

fn field_edit() -> impl Strategy<Value = FieldEdit> {
    prop_oneof![
        3 => (0..FIELDS.len(), json_value()).prop_map(|(f, v)| FieldEdit::Set(f, v)),
        1 => (0..FIELDS.len()).prop_map(FieldEdit::Remove),
    ]
}

/// The checks every input must pass.
fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
    let fast = parse_event(bytes);
    let reference = parse_event_reference(bytes);
    prop_assert_eq!(
        &fast,
        &reference,
        "fast decoder and serde_json disagree on {:?}",
        String::from_utf8_lossy(bytes)
    );
    match fast {
        Ok(e) => accepted(&e)?,
        Err(r) => {
            prop_assert!(!r.reason.is_empty(), "empty reason");
            prop_assert!(
                !r.reason.contains('\n') && !r.reason.contains('\r'),
                "reason spans lines: {:?}",
                r.reason
            );
            prop_assert!(r.reason.len() <= 300, "reason of {} bytes", r.reason.len());
            let names_a_field = matches!(
                r.kind,
                RejectKind::MissingField
                    | RejectKind::WrongType
                    | RejectKind::OutOfRange
                    | RejectKind::DuplicateField
                    | RejectKind::BadTimestamp
            );
            if names_a_field {
                let f = r.field.as_deref();
                prop_assert!(f.is_some(), "{:?} without a field: {}", r.kind, r.reason);
                let f = f.unwrap_or_default();
                prop_assert!(
                    r.reason.contains(&format!("`{f}`")),
                    "reason does not name `{}`: {}",
                    f,
                    r.reason
                );
            }
        }
    }
    Ok(())
}

/// What the validator promises of every event it accepts.
fn accepted(e: &Event<'_>) -> Result<(), TestCaseError> {
    prop_assert!(!e.event_id.is_empty() && !e.user_id.is_empty());
    if e.event_type.requires_session() {
        prop_assert!(
            e.session_id.is_some(),
            "{} without session_id",
            e.event_type
        );
    }
    for &f in e.event_type.required_fields() {
        let present = match f {
            "course_id" => e.course_id.is_some(),
            "lesson_id" => e.lesson_id.is_some(),
            "position_s" => e.position_s.is_some_and(f64::is_finite),
            "playing" => e.playing.is_some(),
            "visible" => e.visible.is_some(),
            "seek_from_s" => e.seek_from_s.is_some_and(f64::is_finite),
            "seek_to_s" => e.seek_to_s.is_some_and(f64::is_finite),
            "rate" => e.rate.is_some_and(f64::is_finite),
            "quiz_id" => e.quiz_id.is_some(),
            "score" => e.score.is_some_and(f64::is_finite),
            "max_score" => e.max_score.is_some_and(f64::is_finite),
            "questions" => e.questions.is_some(),
            "elapsed_s" => e.elapsed_s.is_some_and(f64::is_finite),
            "credits" => e.credits.is_some_and(f64::is_finite),
            "category" => e.category.is_some(),
            "method" => e.method.is_some(),
            "device_id" => e.device_id.is_some(),
            "prompt_id" => e.prompt_id.is_some(),
            "answered" => e.answered.is_some(),
            other => return Err(TestCaseError::fail(format!("unchecked field {other}"))),
        };
        prop_assert!(present, "{} accepted without a valid `{}`", e.event_type, f);
    }
    for v in [e.geo_lat, e.geo_lon, e.duration_s].into_iter().flatten() {
        prop_assert!(v.is_finite(), "a non-finite number was accepted");
    }
    Ok(())
}

#[test]
fn every_seed_is_valid() {
    for line in seed_lines() {
        assert!(
            parse_event(&line).is_ok(),
            "{}",
            String::from_utf8_lossy(&line)
        );
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn mutated_bytes_never_panic_and_both_decoders_agree(
        seed in 0..EventType::ALL.len(),
        edits in proptest::collection::vec(edit(), 1..6),
    ) {
        let line = apply(seed_lines()[seed].clone(), &edits);
        check(&line)?;
    }

    #[test]
    fn any_value_in_any_field_is_judged_the_same_by_both_decoders(
        seed in 0..EventType::ALL.len(),
        edits in proptest::collection::vec(field_edit(), 1..4),
        duplicate in proptest::option::of(0..FIELDS.len()),
    ) {
        let mut m = seeds()[seed].clone();
        for e in &edits {
            match e {
                FieldEdit::Set(f, v) => { m.insert(FIELDS[*f].to_string(), v.clone()); }
                FieldEdit::Remove(f) => { m.remove(FIELDS[*f]); }
            }
        }
        let mut line = serde_json::to_vec(&Value::Object(m)).unwrap();
        if let Some(f) = duplicate {
            // serde_json never writes a key twice: add one by hand.
            let extra = format!(",\"{}\":\"x\"}}", FIELDS[f]);
            line.pop();
            line.extend_from_slice(extra.as_bytes());
        }
        check(&line)?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        check(&bytes)?;
    }
}

/// Named hostile inputs, each with the verdict it must get: a rejection of the expected kind,
/// or (for what RFC 3339 allows) acceptance at the right instant.
#[test]
fn named_hostile_inputs_get_a_clear_verdict() {
    let base = String::from_utf8(seed_lines()[0].clone()).unwrap();
    let ts = "2026-03-02T09:15:04.250+08:00";
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_field = base.replacen(
        '{',
        &format!("{{\"x\":{}{},", "[".repeat(10_000), "]".repeat(10_000)),
        1,
    );
    let huge_id = base.replace("\"e-1\"", &format!("\"{}\"", "e".repeat(1 << 20)));
    let huge_type = base.replace("\"login\"", &format!("\"{}\"", "\\r\\n".repeat(1 << 18)));
    let mut bad_utf8 = base.clone().into_bytes();
    let at = base.find("u-1").unwrap();
    bad_utf8[at] = 0xff;
    let us = |t: &str| creditguard_contract::time::parse_rfc3339_us(t).unwrap();
    let cases: Vec<(&str, Vec<u8>, Result<i64, RejectKind>)> = vec![
        (
            "nesting 10 000 deep",
            deep.into_bytes(),
            Err(RejectKind::NotJson),
        ),
        // Unknown fields are ignored, however deep (serde skips them without recursing).
        (
            "nesting 10 000 deep in an unknown field",
            deep_field.into_bytes(),
            Ok(us(ts)),
        ),
        (
            "a NUL byte in a string",
            base.replace("u-1", "u\0-1").into_bytes(),
            Err(RejectKind::NotJson),
        ),
        (
            "an escaped NUL in a string",
            base.replace("u-1", "u\\u0000-1").into_bytes(),
            Ok(us(ts)),
        ),
        (
            "invalid UTF-8 in a string",
            bad_utf8,
            Err(RejectKind::NotUtf8),
        ),
        (
            "a BOM",
            [b"\xef\xbb\xbf".as_slice(), base.as_bytes()].concat(),
            Err(RejectKind::NotJson),
        ),
        (
            "a CRLF line end",
            format!("{base}\r\n").into_bytes(),
            Ok(us(ts)),
        ),
        (
            "an event_id of 1 MB",
            huge_id.into_bytes(),
            Err(RejectKind::OutOfRange),
        ),
        (
            "a type of 1 MB of CR LF",
            huge_type.into_bytes(),
            Err(RejectKind::UnknownType),
        ),
        (
            "year 0001",
            base.replace(ts, "0001-01-01T00:00:00Z").into_bytes(),
            Ok(-62_135_596_800_000_000),
        ),
        (
            "year 9999",
            base.replace(ts, "9999-12-31T23:59:59.999999Z").into_bytes(),
            Ok(253_402_300_799_999_999),
        ),
        (
            "year 10000",
            base.replace(ts, "10000-01-01T00:00:00Z").into_bytes(),
            Err(RejectKind::BadTimestamp),
        ),
        // The leap second is held at the minute's last microsecond: the event keeps its day.
        (
            "a leap second",
            base.replace(ts, "2016-12-31T23:59:60Z").into_bytes(),
            Ok(us("2016-12-31T23:59:59.999999Z")),
        ),
        (
            "NaN",
            base.replace("31.23", "NaN").into_bytes(),
            Err(RejectKind::NotJson),
        ),
        (
            "1e400",
            base.replace("31.23", "1e400").into_bytes(),
            Err(RejectKind::NotJson),
        ),
    ];
    let mut report = Vec::new();
    for (name, bytes, _) in &cases {
        let fast = parse_event(bytes);
        assert_eq!(
            fast,
            parse_event_reference(bytes),
            "{name}: decoders disagree"
        );
        report.push(format!(
            "{name}: {}",
            match &fast {
                Ok(e) => format!("accepted, ts {}", e.ts_us),
                Err(r) => r.to_string(),
            }
        ));
    }
    // All verdicts first (`--nocapture`), then the assertions.
    eprintln!("{}", report.join("\n"));
    for (name, bytes, want) in &cases {
        match (parse_event(bytes), want) {
            (Ok(e), Ok(ts_us)) => assert_eq!(e.ts_us, *ts_us, "{name}"),
            (Err(r), Err(kind)) => {
                assert_eq!(r.kind, *kind, "{name}: {r}");
                assert!(
                    r.reason.len() <= 300 && !r.reason.contains(['\n', '\r']),
                    "{name}: {}",
                    r.reason
                );
            }
            (got, _) => panic!(
                "{name}: {:?} where {want:?} was expected",
                got.map(|e| e.ts_us)
            ),
        }
    }
}
