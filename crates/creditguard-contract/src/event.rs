//! Typed telemetry-v1 events and their validation.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

use crate::time::parse_rfc3339_us;

/// Every event type of telemetry-v1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    Login,
    Logout,
    Heartbeat,
    VideoPlay,
    VideoPause,
    VideoEnded,
    VideoSeek,
    VideoRate,
    Visibility,
    CourseEnter,
    CourseLeave,
    QuizSubmit,
    CourseComplete,
    Checkin,
    AttentionCheck,
}

impl EventType {
    /// All types, in the order of the contract.
    pub const ALL: [EventType; 15] = [
        EventType::Login,
        EventType::Logout,
        EventType::Heartbeat,
        EventType::VideoPlay,
        EventType::VideoPause,
        EventType::VideoEnded,
        EventType::VideoSeek,
        EventType::VideoRate,
        EventType::Visibility,
        EventType::CourseEnter,
        EventType::CourseLeave,
        EventType::QuizSubmit,
        EventType::CourseComplete,
        EventType::Checkin,
        EventType::AttentionCheck,
    ];

    /// The wire name (`"video_play"`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Login => "login",
            EventType::Logout => "logout",
            EventType::Heartbeat => "heartbeat",
            EventType::VideoPlay => "video_play",
            EventType::VideoPause => "video_pause",
            EventType::VideoEnded => "video_ended",
            EventType::VideoSeek => "video_seek",
            EventType::VideoRate => "video_rate",
            EventType::Visibility => "visibility",
            EventType::CourseEnter => "course_enter",
            EventType::CourseLeave => "course_leave",
            EventType::QuizSubmit => "quiz_submit",
            EventType::CourseComplete => "course_complete",
            EventType::Checkin => "checkin",
            EventType::AttentionCheck => "attention_check",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<EventType> {
        Some(match s {
            "login" => EventType::Login,
            "logout" => EventType::Logout,
            "heartbeat" => EventType::Heartbeat,
            "video_play" => EventType::VideoPlay,
            "video_pause" => EventType::VideoPause,
            "video_ended" => EventType::VideoEnded,
            "video_seek" => EventType::VideoSeek,
            "video_rate" => EventType::VideoRate,
            "visibility" => EventType::Visibility,
            "course_enter" => EventType::CourseEnter,
            "course_leave" => EventType::CourseLeave,
            "quiz_submit" => EventType::QuizSubmit,
            "course_complete" => EventType::CourseComplete,
            "checkin" => EventType::Checkin,
            "attention_check" => EventType::AttentionCheck,
            _ => return None,
        })
    }

    /// The fields this type requires beyond the envelope (`event_id`, `type`, `ts`, `user_id`
    /// and, except for `course_complete` and `checkin`, `session_id`).
    pub fn required_fields(self) -> &'static [&'static str] {
        match self {
            EventType::Login | EventType::Logout => &[],
            EventType::Heartbeat => &["course_id", "lesson_id", "position_s", "playing", "visible"],
            EventType::VideoPlay | EventType::VideoPause | EventType::VideoEnded => {
                &["course_id", "lesson_id", "position_s"]
            }
            EventType::VideoSeek => &["course_id", "lesson_id", "seek_from_s", "seek_to_s"],
            EventType::VideoRate => &["course_id", "lesson_id", "rate"],
            EventType::Visibility => &["visible"],
            EventType::CourseEnter | EventType::CourseLeave => &["course_id"],
            EventType::QuizSubmit => &[
                "course_id",
                "quiz_id",
                "score",
                "max_score",
                "questions",
                "elapsed_s",
            ],
            EventType::CourseComplete => &["course_id", "credits", "category"],
            EventType::Checkin => &["course_id", "method", "device_id"],
            EventType::AttentionCheck => &["course_id", "lesson_id", "prompt_id", "answered"],
        }
    }

    /// Whether `session_id` is required for this type.
    pub fn requires_session(self) -> bool {
        !matches!(self, EventType::CourseComplete | EventType::Checkin)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every allowed value.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }

            /// Parses a wire name.
            pub fn parse(s: &str) -> Option<$name> {
                match s { $($wire => Some($name::$variant),)+ _ => None }
            }

            fn allowed() -> String {
                [$($wire),+].join(", ")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum!(
    /// Client kind.
    Platform { Web => "web", Ios => "ios", Android => "android", Desktop => "desktop",
               MiniProgram => "mini_program", Other => "other" }
);
string_enum!(
    /// Credit category of a course.
    Category { Mandatory => "mandatory", Elective => "elective", Practice => "practice" }
);
string_enum!(
    /// How a classroom check-in was made.
    CheckinMethod { Qr => "qr", Face => "face", Manual => "manual", Other => "other" }
);

/// One valid telemetry event. Strings borrow from the input where they can
/// (`Event<'static>` via [`Event::into_owned`] when it must outlive it).
/// Timestamps are UTC microseconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct Event<'a> {
    pub event_id: Cow<'a, str>,
    pub event_type: EventType,
    pub ts_us: i64,
    pub received_at_us: Option<i64>,
    pub user_id: Cow<'a, str>,
    pub org_unit: Option<Cow<'a, str>>,
    pub session_id: Option<Cow<'a, str>>,
    pub device_id: Option<Cow<'a, str>>,
    pub ip: Option<Cow<'a, str>>,
    pub geo_lat: Option<f64>,
    pub geo_lon: Option<f64>,
    pub platform: Option<Platform>,
    pub course_id: Option<Cow<'a, str>>,
    pub lesson_id: Option<Cow<'a, str>>,
    pub position_s: Option<f64>,
    pub duration_s: Option<f64>,
    pub playing: Option<bool>,
    pub visible: Option<bool>,
    pub muted: Option<bool>,
    pub rate: Option<f64>,
    pub seek_from_s: Option<f64>,
    pub seek_to_s: Option<f64>,
    pub quiz_id: Option<Cow<'a, str>>,
    pub score: Option<f64>,
    pub max_score: Option<f64>,
    pub questions: Option<i64>,
    pub elapsed_s: Option<f64>,
    pub credits: Option<f64>,
    pub category: Option<Category>,
    pub method: Option<CheckinMethod>,
    /// `attention_check`: which pop-up question was shown (at `ts`).
    pub prompt_id: Option<Cow<'a, str>>,
    /// `attention_check`: whether the learner answered before the prompt timed out.
    pub answered: Option<bool>,
    /// `attention_check`: seconds from showing to answering; sent, or `answered_at − ts`.
    pub response_s: Option<f64>,
    /// `attention_check`: whether the answer was right.
    pub correct: Option<bool>,
    /// `heartbeat` (optional): keyboard, mouse and touch events since the previous heartbeat.
    pub input_events: Option<i64>,
}

fn own(c: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(c.into_owned())
}

impl Event<'_> {
    /// Detaches the event from the input buffer.
    pub fn into_owned(self) -> Event<'static> {
        Event {
            event_id: own(self.event_id),
            event_type: self.event_type,
            ts_us: self.ts_us,
            received_at_us: self.received_at_us,
            user_id: own(self.user_id),
            org_unit: self.org_unit.map(own),
            session_id: self.session_id.map(own),
            device_id: self.device_id.map(own),
            ip: self.ip.map(own),
            geo_lat: self.geo_lat,
            geo_lon: self.geo_lon,
            platform: self.platform,
            course_id: self.course_id.map(own),
            lesson_id: self.lesson_id.map(own),
            position_s: self.position_s,
            duration_s: self.duration_s,
            playing: self.playing,
            visible: self.visible,
            muted: self.muted,
            rate: self.rate,
            seek_from_s: self.seek_from_s,
            seek_to_s: self.seek_to_s,
            quiz_id: self.quiz_id.map(own),
            score: self.score,
            max_score: self.max_score,
            questions: self.questions,
            elapsed_s: self.elapsed_s,
            credits: self.credits,
            category: self.category,
            method: self.method,
            prompt_id: self.prompt_id.map(own),
            answered: self.answered,
            response_s: self.response_s,
            correct: self.correct,
            input_events: self.input_events,
        }
    }
}

/// Why an event was rejected: the class of problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectKind {
    /// The bytes are not UTF-8.
    NotUtf8,
    /// The bytes are not one JSON object.
    NotJson,
    /// A required field is absent.
    MissingField,
    /// A known field has the wrong JSON type.
    WrongType,
    /// A value is outside its allowed range, length or set.
    OutOfRange,
    /// `type` names no telemetry-v1 type.
    UnknownType,
    /// A timestamp is not RFC 3339 with an offset.
    BadTimestamp,
    /// A field appears twice in the object.
    DuplicateField,
    /// The record is larger than the ingest accepts (not parsed; its first bytes are kept).
    TooLarge,
}

impl RejectKind {
    /// Stable snake_case name, used in dead-letter records and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectKind::NotUtf8 => "not_utf8",
            RejectKind::NotJson => "not_json",
            RejectKind::MissingField => "missing_field",
            RejectKind::WrongType => "wrong_type",
            RejectKind::OutOfRange => "out_of_range",
            RejectKind::UnknownType => "unknown_type",
            RejectKind::BadTimestamp => "bad_timestamp",
            RejectKind::DuplicateField => "duplicate_field",
            RejectKind::TooLarge => "too_large",
        }
    }
}

/// A rejected event: what kind of problem, which field, and a one-line reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub kind: RejectKind,
    /// The field at fault, when one is.
    pub field: Option<String>,
    /// One line a person can read, naming the field.
    pub reason: String,
}

impl Rejection {
    fn field(kind: RejectKind, field: &str, reason: impl Into<String>) -> Rejection {
        Rejection {
            kind,
            field: Some(field.to_string()),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.reason)
    }
}

impl std::error::Error for Rejection {}

/// Parses and validates one event from JSON bytes (one NDJSON line or one Kafka message).
///
/// ```
/// let line = br#"{"event_id":"e1","type":"login","ts":"2026-03-02T09:15:04.250+08:00",
///                 "user_id":"u1","session_id":"s1"}"#;
/// let ev = creditguard_contract::parse_event(line).unwrap();
/// assert_eq!(ev.ts_us, 1_772_414_104_250_000);
/// let bad = creditguard_contract::parse_event(br#"{"event_id":"e1","type":"login"}"#).unwrap_err();
/// assert_eq!(bad.reason, "missing required field `ts`");
/// ```
pub fn parse_event(bytes: &[u8]) -> Result<Event<'_>, Rejection> {
    let text = utf8(bytes)?;
    let wire = match crate::fast::decode(text) {
        Some(w) => w,
        None => decode_with_serde(text)?,
    };
    wire.validate()
}

fn utf8(bytes: &[u8]) -> Result<&str, Rejection> {
    std::str::from_utf8(bytes).map_err(|e| Rejection {
        kind: RejectKind::NotUtf8,
        field: None,
        reason: format!("not valid UTF-8 at byte {}", e.valid_up_to()),
    })
}

/// [`parse_event`] through serde_json alone, without the fast decoder: the reference the fast
/// path is tested against (it must give the same event or the same rejection for every input).
pub fn parse_event_reference(bytes: &[u8]) -> Result<Event<'_>, Rejection> {
    let text = utf8(bytes)?;
    decode_with_serde(text)?.validate()
}

/// Decodes with serde_json: the path every input the fast decoder declines takes, and the one
/// that words every syntax and type error.
pub(crate) fn decode_with_serde(text: &str) -> Result<Wire<'_>, Rejection> {
    let mut de = serde_json::Deserializer::from_str(text);
    Wire::deserialize(&mut de)
        .and_then(|w| de.end().map(|()| w))
        .map_err(|e| {
            if text.starts_with('\u{feff}') {
                // Editors and some exporters put one at the start of a file.
                Rejection {
                    kind: RejectKind::NotJson,
                    field: None,
                    reason: "starts with a byte-order mark (U+FEFF), not a JSON object".to_string(),
                }
            } else {
                json_rejection(e)
            }
        })
}

/// Field-level problems are smuggled through serde's error as `\u{1}kind\u{1}field\u{1}reason`
/// so the rejection can name the field; everything else is a syntax problem.
const MARK: char = '\u{1}';

fn json_rejection(e: serde_json::Error) -> Rejection {
    let msg = e.to_string();
    if let Some(rest) = msg.strip_prefix(MARK) {
        let mut parts = rest.splitn(3, MARK);
        let kind = match parts.next() {
            Some("wrong_type") => RejectKind::WrongType,
            Some("out_of_range") => RejectKind::OutOfRange,
            Some("duplicate_field") => RejectKind::DuplicateField,
            _ => RejectKind::NotJson,
        };
        let field = parts.next().unwrap_or_default().to_string();
        let reason = parts.next().unwrap_or_default();
        // serde_json appends " at line L column C"; keep only the column, lines are ours.
        let reason = match reason.rfind(" at line ") {
            Some(i) => &reason[..i],
            None => reason,
        };
        return Rejection {
            kind,
            field: Some(field),
            reason: reason.to_string(),
        };
    }
    let reason = match e.classify() {
        serde_json::error::Category::Eof => format!("truncated JSON (column {})", e.column()),
        _ => {
            let m = msg.rfind(" at line ").map_or(msg.as_str(), |i| &msg[..i]);
            if m.starts_with("invalid type") {
                "not a JSON object".to_string()
            } else {
                format!("invalid JSON at column {}: {m}", e.column())
            }
        }
    };
    Rejection {
        kind: RejectKind::NotJson,
        field: None,
        reason,
    }
}

fn field_err<E: de::Error>(kind: RejectKind, field: &str, reason: impl fmt::Display) -> E {
    E::custom(format_args!(
        "{MARK}{}{MARK}{field}{MARK}{reason}",
        kind.as_str()
    ))
}

/// What the wire carried, before the per-type rules.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Wire<'a> {
    pub(crate) event_id: Option<Cow<'a, str>>,
    pub(crate) schema_version: Option<i64>,
    pub(crate) event_type: Option<Cow<'a, str>>,
    pub(crate) ts: Option<Cow<'a, str>>,
    pub(crate) received_at: Option<Cow<'a, str>>,
    pub(crate) user_id: Option<Cow<'a, str>>,
    pub(crate) org_unit: Option<Cow<'a, str>>,
    pub(crate) session_id: Option<Cow<'a, str>>,
    pub(crate) device_id: Option<Cow<'a, str>>,
    pub(crate) ip: Option<Cow<'a, str>>,
    pub(crate) geo_lat: Option<f64>,
    pub(crate) geo_lon: Option<f64>,
    pub(crate) platform: Option<Cow<'a, str>>,
    pub(crate) course_id: Option<Cow<'a, str>>,
    pub(crate) lesson_id: Option<Cow<'a, str>>,
    pub(crate) position_s: Option<f64>,
    pub(crate) duration_s: Option<f64>,
    pub(crate) playing: Option<bool>,
    pub(crate) visible: Option<bool>,
    pub(crate) muted: Option<bool>,
    pub(crate) rate: Option<f64>,
    pub(crate) seek_from_s: Option<f64>,
    pub(crate) seek_to_s: Option<f64>,
    pub(crate) quiz_id: Option<Cow<'a, str>>,
    pub(crate) score: Option<f64>,
    pub(crate) max_score: Option<f64>,
    pub(crate) questions: Option<i64>,
    pub(crate) elapsed_s: Option<f64>,
    pub(crate) credits: Option<f64>,
    pub(crate) category: Option<Cow<'a, str>>,
    pub(crate) method: Option<Cow<'a, str>>,
    pub(crate) prompt_id: Option<Cow<'a, str>>,
    pub(crate) answered: Option<bool>,
    pub(crate) answered_at: Option<Cow<'a, str>>,
    pub(crate) response_s: Option<f64>,
    pub(crate) correct: Option<bool>,
    pub(crate) input_events: Option<i64>,
}

/// A JSON value of one expected kind, with the wrong kind reported by name.
struct Typed<T>(T);

fn json_kind(v: &de::Unexpected<'_>) -> &'static str {
    match v {
        de::Unexpected::Bool(_) => "a boolean",
        de::Unexpected::Unsigned(_) | de::Unexpected::Signed(_) | de::Unexpected::Float(_) => {
            "a number"
        }
        de::Unexpected::Str(_) => "a string",
        de::Unexpected::Unit => "null",
        de::Unexpected::Seq => "an array",
        de::Unexpected::Map => "an object",
        _ => "another type",
    }
}

/// Marks an error raised by the typed visitors (a wrong JSON type), as opposed to a syntax error.
const TYPE_MARK: char = '\u{2}';

macro_rules! wrong {
    ($E:ty, $want:literal, $got:expr) => {
        Err(<$E as de::Error>::custom(format_args!(
            "{TYPE_MARK}expected {}, got {}",
            $want,
            json_kind(&$got)
        )))
    };
}

struct StrV;
impl<'de> Visitor<'de> for StrV {
    type Value = Typed<Cow<'de, str>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Typed(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Typed(Cow::Owned(v.to_string())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Typed(Cow::Owned(v)))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        wrong!(E, "a string", de::Unexpected::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        wrong!(E, "a string", de::Unexpected::Signed(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        wrong!(E, "a string", de::Unexpected::Unsigned(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        wrong!(E, "a string", de::Unexpected::Float(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        wrong!(E, "a string", de::Unexpected::Unit)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        wrong!(A::Error, "a string", de::Unexpected::Seq)
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        wrong!(A::Error, "a string", de::Unexpected::Map)
    }
}
impl<'de> Deserialize<'de> for Typed<Cow<'de, str>> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // `deserialize_any`: serde_json's `deserialize_str` reports a wrong type itself, without
        // reaching the visitor that names it.
        d.deserialize_any(StrV)
    }
}

struct NumV;
impl<'de> Visitor<'de> for NumV {
    type Value = Typed<f64>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Typed(v as f64))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Typed(v as f64))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Typed(v))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        wrong!(E, "a number", de::Unexpected::Bool(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        wrong!(E, "a number", de::Unexpected::Str(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        wrong!(E, "a number", de::Unexpected::Unit)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        wrong!(A::Error, "a number", de::Unexpected::Seq)
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        wrong!(A::Error, "a number", de::Unexpected::Map)
    }
}
impl<'de> Deserialize<'de> for Typed<f64> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumV)
    }
}

struct BoolV;
impl<'de> Visitor<'de> for BoolV {
    type Value = Typed<bool>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a boolean")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Typed(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        wrong!(E, "a boolean", de::Unexpected::Signed(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        wrong!(E, "a boolean", de::Unexpected::Unsigned(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        wrong!(E, "a boolean", de::Unexpected::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        wrong!(E, "a boolean", de::Unexpected::Str(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        wrong!(E, "a boolean", de::Unexpected::Unit)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        wrong!(A::Error, "a boolean", de::Unexpected::Seq)
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        wrong!(A::Error, "a boolean", de::Unexpected::Map)
    }
}
impl<'de> Deserialize<'de> for Typed<bool> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(BoolV)
    }
}

/// Reads the next value as `T`, naming `field` in any error; a second occurrence of a field is
/// itself an error (JSON objects with duplicate keys are ambiguous).
fn take<'de, A, T>(map: &mut A, slot: &mut Option<T>, field: &str) -> Result<(), A::Error>
where
    A: MapAccess<'de>,
    Typed<T>: Deserialize<'de>,
{
    if slot.is_some() {
        return Err(field_err(
            RejectKind::DuplicateField,
            field,
            format_args!("field `{field}` appears twice"),
        ));
    }
    match map.next_value::<Typed<T>>() {
        Ok(Typed(v)) => {
            *slot = Some(v);
            Ok(())
        }
        Err(e) => {
            let msg = e.to_string();
            match msg.strip_prefix(TYPE_MARK) {
                Some(m) => {
                    let m = m.rfind(" at line ").map_or(m, |i| &m[..i]);
                    Err(field_err(
                        RejectKind::WrongType,
                        field,
                        format_args!("field `{field}`: {m}"),
                    ))
                }
                // A syntax error inside the value: not the field's fault.
                None => Err(e),
            }
        }
    }
}

struct WireV;
impl<'de> Visitor<'de> for WireV {
    type Value = Wire<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Wire<'de>, A::Error> {
        let mut w = Wire::default();
        while let Some(Typed(key)) = map.next_key::<Typed<Cow<'de, str>>>()? {
            match key.as_ref() {
                "event_id" => take(&mut map, &mut w.event_id, "event_id")?,
                "schema_version" => {
                    let mut v: Option<f64> = None;
                    take(&mut map, &mut v, "schema_version")?;
                    let v = v.unwrap_or_default();
                    if v.fract() != 0.0 {
                        return Err(field_err(
                            RejectKind::WrongType,
                            "schema_version",
                            format_args!(
                                "field `schema_version`: expected an integer, got {}",
                                num(v)
                            ),
                        ));
                    }
                    if w.schema_version.replace(v as i64).is_some() {
                        return Err(field_err(
                            RejectKind::DuplicateField,
                            "schema_version",
                            "field `schema_version` appears twice",
                        ));
                    }
                }
                "type" => take(&mut map, &mut w.event_type, "type")?,
                "ts" => take(&mut map, &mut w.ts, "ts")?,
                "received_at" => take(&mut map, &mut w.received_at, "received_at")?,
                "user_id" => take(&mut map, &mut w.user_id, "user_id")?,
                "org_unit" => take(&mut map, &mut w.org_unit, "org_unit")?,
                "session_id" => take(&mut map, &mut w.session_id, "session_id")?,
                "device_id" => take(&mut map, &mut w.device_id, "device_id")?,
                "ip" => take(&mut map, &mut w.ip, "ip")?,
                "geo_lat" => take(&mut map, &mut w.geo_lat, "geo_lat")?,
                "geo_lon" => take(&mut map, &mut w.geo_lon, "geo_lon")?,
                "platform" => take(&mut map, &mut w.platform, "platform")?,
                "course_id" => take(&mut map, &mut w.course_id, "course_id")?,
                "lesson_id" => take(&mut map, &mut w.lesson_id, "lesson_id")?,
                "position_s" => take(&mut map, &mut w.position_s, "position_s")?,
                "duration_s" => take(&mut map, &mut w.duration_s, "duration_s")?,
                "playing" => take(&mut map, &mut w.playing, "playing")?,
                "visible" => take(&mut map, &mut w.visible, "visible")?,
                "muted" => take(&mut map, &mut w.muted, "muted")?,
                "rate" => take(&mut map, &mut w.rate, "rate")?,
                "seek_from_s" => take(&mut map, &mut w.seek_from_s, "seek_from_s")?,
                "seek_to_s" => take(&mut map, &mut w.seek_to_s, "seek_to_s")?,
                "quiz_id" => take(&mut map, &mut w.quiz_id, "quiz_id")?,
                "score" => take(&mut map, &mut w.score, "score")?,
                "max_score" => take(&mut map, &mut w.max_score, "max_score")?,
                "questions" => {
                    let mut v: Option<f64> = None;
                    take(&mut map, &mut v, "questions")?;
                    let v = v.unwrap_or_default();
                    // JSON Schema's "integer" admits 3.0 but not 3.5.
                    if v.fract() != 0.0 || v.abs() > 9.0e15 {
                        return Err(field_err(
                            RejectKind::WrongType,
                            "questions",
                            format_args!("field `questions`: expected an integer, got {}", num(v)),
                        ));
                    }
                    if w.questions.replace(v as i64).is_some() {
                        return Err(field_err(
                            RejectKind::DuplicateField,
                            "questions",
                            "field `questions` appears twice",
                        ));
                    }
                }
                "elapsed_s" => take(&mut map, &mut w.elapsed_s, "elapsed_s")?,
                "credits" => take(&mut map, &mut w.credits, "credits")?,
                "category" => take(&mut map, &mut w.category, "category")?,
                "method" => take(&mut map, &mut w.method, "method")?,
                "prompt_id" => take(&mut map, &mut w.prompt_id, "prompt_id")?,
                "answered" => take(&mut map, &mut w.answered, "answered")?,
                "answered_at" => take(&mut map, &mut w.answered_at, "answered_at")?,
                "response_s" => take(&mut map, &mut w.response_s, "response_s")?,
                "correct" => take(&mut map, &mut w.correct, "correct")?,
                "input_events" => {
                    let mut v: Option<f64> = None;
                    take(&mut map, &mut v, "input_events")?;
                    let v = v.unwrap_or_default();
                    if v.fract() != 0.0 || v.abs() > 9.0e15 {
                        return Err(field_err(
                            RejectKind::WrongType,
                            "input_events",
                            format_args!("field `input_events`: expected an integer, got {v}"),
                        ));
                    }
                    if w.input_events.replace(v as i64).is_some() {
                        return Err(field_err(
                            RejectKind::DuplicateField,
                            "input_events",
                            "field `input_events` appears twice",
                        ));
                    }
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(w)
    }
}

impl<'de> Deserialize<'de> for Wire<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(WireV)
    }
}

fn missing(field: &str) -> Rejection {
    Rejection::field(
        RejectKind::MissingField,
        field,
        format!("missing required field `{field}`"),
    )
}

fn range(field: &str, reason: impl fmt::Display) -> Rejection {
    Rejection::field(
        RejectKind::OutOfRange,
        field,
        format!("field `{field}`: {reason}"),
    )
}

fn min0(field: &str, v: Option<f64>) -> Result<Option<f64>, Rejection> {
    match v {
        Some(x) if !(x >= 0.0) => Err(range(field, format_args!("must be ≥ 0, got {}", num(x)))),
        _ => Ok(v),
    }
}

fn non_empty<'a>(
    field: &str,
    v: Option<Cow<'a, str>>,
    max_chars: Option<usize>,
) -> Result<Option<Cow<'a, str>>, Rejection> {
    if let Some(s) = &v {
        if s.is_empty() {
            return Err(range(field, "must not be empty"));
        }
        if let Some(max) = max_chars {
            // Byte length bounds char count from above: count chars only when it could matter.
            if s.len() > max && s.chars().count() > max {
                return Err(range(field, format_args!("longer than {max} characters")));
            }
        }
    }
    Ok(v)
}

fn one_of<T: Copy>(
    field: &str,
    v: Option<Cow<'_, str>>,
    parse: fn(&str) -> Option<T>,
    allowed: fn() -> String,
) -> Result<Option<T>, Rejection> {
    match v {
        None => Ok(None),
        Some(s) => parse(&s).map(Some).ok_or_else(|| {
            range(
                field,
                format_args!("`{}` is not one of {}", shown(&s), allowed()),
            )
        }),
    }
}

/// A number in a rejection reason: as written when short, else in scientific notation (`1e300`
/// in plain decimals would be 301 characters).
fn num(x: f64) -> String {
    let plain = x.to_string();
    if plain.len() <= 24 {
        plain
    } else {
        format!("{x:e}")
    }
}

/// A value quoted in a rejection reason: at most 40 characters, control characters escaped, so
/// that a reason stays one short line whatever the input holds.
fn shown(v: &str) -> String {
    const MAX: usize = 40;
    let mut out = String::new();
    for (i, c) in v.chars().enumerate() {
        if i == MAX {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn timestamp(field: &str, v: &str) -> Result<i64, Rejection> {
    parse_rfc3339_us(v).map_err(|why| {
        Rejection::field(
            RejectKind::BadTimestamp,
            field,
            format!(
                "field `{field}`: `{}` is not an RFC 3339 timestamp with offset ({why})",
                shown(v)
            ),
        )
    })
}

impl<'a> Wire<'a> {
    fn validate(self) -> Result<Event<'a>, Rejection> {
        let event_id = self.event_id.ok_or_else(|| missing("event_id"))?;
        let type_name = self.event_type.ok_or_else(|| missing("type"))?;
        let ts = self.ts.ok_or_else(|| missing("ts"))?;
        let user_id = self.user_id.ok_or_else(|| missing("user_id"))?;
        let event_id = non_empty("event_id", Some(event_id), Some(128))?.unwrap_or_default();
        let user_id = non_empty("user_id", Some(user_id), Some(256))?.unwrap_or_default();
        let event_type = EventType::parse(&type_name).ok_or_else(|| {
            Rejection::field(
                RejectKind::UnknownType,
                "type",
                format!("field `type`: unknown event type `{}`", shown(&type_name)),
            )
        })?;
        if let Some(v) = self.schema_version {
            if v != 1 {
                return Err(range("schema_version", format_args!("must be 1, got {v}")));
            }
        }
        let ts_us = timestamp("ts", &ts)?;
        let received_at_us = match &self.received_at {
            Some(r) => Some(timestamp("received_at", r)?),
            None => None,
        };
        if let Some(lat) = self.geo_lat {
            if !(-90.0..=90.0).contains(&lat) {
                return Err(range(
                    "geo_lat",
                    format_args!("must be within -90..90, got {}", num(lat)),
                ));
            }
        }
        if let Some(lon) = self.geo_lon {
            if !(-180.0..=180.0).contains(&lon) {
                return Err(range(
                    "geo_lon",
                    format_args!("must be within -180..180, got {}", num(lon)),
                ));
            }
        }
        if let Some(rate) = self.rate {
            if !(rate > 0.0 && rate <= 16.0) {
                return Err(range(
                    "rate",
                    format_args!("must be > 0 and ≤ 16, got {}", num(rate)),
                ));
            }
        }
        if let Some(m) = self.max_score {
            if !(m > 0.0) {
                return Err(range(
                    "max_score",
                    format_args!("must be > 0, got {}", num(m)),
                ));
            }
        }
        if let Some(q) = self.questions {
            if q < 1 {
                return Err(range("questions", format_args!("must be ≥ 1, got {q}")));
            }
        }
        if let Some(n) = self.input_events {
            if n < 0 {
                return Err(range("input_events", format_args!("must be ≥ 0, got {n}")));
            }
        }
        let answered_at_us = match &self.answered_at {
            Some(a) => Some(timestamp("answered_at", a)?),
            None => None,
        };
        // The response time as sent, else from the two timestamps (the prompt is shown at `ts`).
        let response_s = match (min0("response_s", self.response_s)?, answered_at_us) {
            (Some(sent), _) => Some(sent),
            (None, Some(at)) if at >= ts_us => Some((at - ts_us) as f64 / 1e6),
            _ => None,
        };
        let platform = one_of(
            "platform",
            self.platform,
            Platform::parse,
            Platform::allowed,
        )?;
        let category = one_of(
            "category",
            self.category,
            Category::parse,
            Category::allowed,
        )?;
        let method = one_of(
            "method",
            self.method,
            CheckinMethod::parse,
            CheckinMethod::allowed,
        )?;
        let ev = Event {
            event_id,
            event_type,
            ts_us,
            received_at_us,
            user_id,
            org_unit: self.org_unit,
            session_id: non_empty("session_id", self.session_id, None)?,
            device_id: self.device_id,
            ip: self.ip,
            geo_lat: self.geo_lat,
            geo_lon: self.geo_lon,
            platform,
            course_id: non_empty("course_id", self.course_id, None)?,
            lesson_id: non_empty("lesson_id", self.lesson_id, None)?,
            position_s: min0("position_s", self.position_s)?,
            duration_s: min0("duration_s", self.duration_s)?,
            playing: self.playing,
            visible: self.visible,
            muted: self.muted,
            rate: self.rate,
            seek_from_s: min0("seek_from_s", self.seek_from_s)?,
            seek_to_s: min0("seek_to_s", self.seek_to_s)?,
            quiz_id: non_empty("quiz_id", self.quiz_id, None)?,
            score: min0("score", self.score)?,
            max_score: self.max_score,
            questions: self.questions,
            elapsed_s: min0("elapsed_s", self.elapsed_s)?,
            credits: min0("credits", self.credits)?,
            category,
            method,
            prompt_id: non_empty("prompt_id", self.prompt_id, None)?,
            answered: self.answered,
            response_s,
            correct: self.correct,
            input_events: self.input_events,
        };
        if event_type.requires_session() && ev.session_id.is_none() {
            return Err(missing("session_id"));
        }
        if let Some(field) = ev.first_missing() {
            return Err(Rejection::field(
                RejectKind::MissingField,
                field,
                format!("missing field `{field}`, required for `{event_type}` events"),
            ));
        }
        Ok(ev)
    }
}

impl Event<'_> {
    /// The first field of [`EventType::required_fields`] this event lacks.
    fn first_missing(&self) -> Option<&'static str> {
        let e = self;
        // Presence per field, in the order of `required_fields` (a test checks they agree).
        let present: &[bool] = match e.event_type {
            EventType::Login | EventType::Logout => &[],
            EventType::Heartbeat => &[
                e.course_id.is_some(),
                e.lesson_id.is_some(),
                e.position_s.is_some(),
                e.playing.is_some(),
                e.visible.is_some(),
            ],
            EventType::VideoPlay | EventType::VideoPause | EventType::VideoEnded => &[
                e.course_id.is_some(),
                e.lesson_id.is_some(),
                e.position_s.is_some(),
            ],
            EventType::VideoSeek => &[
                e.course_id.is_some(),
                e.lesson_id.is_some(),
                e.seek_from_s.is_some(),
                e.seek_to_s.is_some(),
            ],
            EventType::VideoRate => &[
                e.course_id.is_some(),
                e.lesson_id.is_some(),
                e.rate.is_some(),
            ],
            EventType::Visibility => &[e.visible.is_some()],
            EventType::CourseEnter | EventType::CourseLeave => &[e.course_id.is_some()],
            EventType::QuizSubmit => &[
                e.course_id.is_some(),
                e.quiz_id.is_some(),
                e.score.is_some(),
                e.max_score.is_some(),
                e.questions.is_some(),
                e.elapsed_s.is_some(),
            ],
            EventType::CourseComplete => &[
                e.course_id.is_some(),
                e.credits.is_some(),
                e.category.is_some(),
            ],
            EventType::Checkin => &[
                e.course_id.is_some(),
                e.method.is_some(),
                e.device_id.is_some(),
            ],
            EventType::AttentionCheck => &[
                e.course_id.is_some(),
                e.lesson_id.is_some(),
                e.prompt_id.is_some(),
                e.answered.is_some(),
            ],
        };
        let names = e.event_type.required_fields();
        debug_assert_eq!(names.len(), present.len());
        names
            .iter()
            .zip(present)
            .find(|(_, &here)| !here)
            .map(|(&name, _)| name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_parses_from_its_wire_name() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        assert_eq!(EventType::parse("Login"), None);
        assert_eq!(EventType::parse(""), None);
    }
}
