//! The contracts of creditguard, in code: what comes in (telemetry-v1) and what goes out
//! (results-v1). No IO.
//!
//! - [`parse_event`] turns one JSON object (an NDJSON line, a Kafka message) into a validated
//!   [`Event`] borrowing from the input, or a [`Rejection`] whose reason names the field.
//! - [`events_schema`] and [`EventBatchBuilder`] are the lake's `events` table in Arrow.
//! - [`Flag`], [`Credit`], [`Case`] and their schemas are the result tables and stream records.
//! - [`privacy`] turns identifiers into keyed pseudonyms before they reach the lake.
//!
//! telemetry-v1 is extended compatibly (every addition optional, so first-edition events still
//! validate, and lake files without the new columns read them as nulls):
//! - the event type `attention_check`, one per pop-up question shown during a video (`ts` is when
//!   it was shown): `course_id`, `lesson_id`, `prompt_id` and `answered` required; `answered_at`,
//!   `response_s` (else `answered_at − ts`) and `correct` optional;
//! - `input_events` on heartbeats: keyboard, mouse and touch events since the previous one.
//!
//! The `events` table gains the nullable columns `prompt_id`, `answered`, `response_s`,
//! `correct` and `input_events`, after the original ones (`answered_at` is kept as `response_s`).
//!
//! ```
//! let check = br#"{"event_id":"a1","type":"attention_check","ts":"2026-03-02T09:15:04Z",
//!   "user_id":"u1","session_id":"s1","course_id":"c1","lesson_id":"l1","prompt_id":"p7",
//!   "answered":true,"answered_at":"2026-03-02T09:15:06.5Z","correct":true}"#;
//! assert_eq!(creditguard_contract::parse_event(check).unwrap().response_s, Some(2.5));
//! ```
//!
//! ```
//! use creditguard_contract::{parse_event, EventBatchBuilder, RejectKind};
//! let mut batch = EventBatchBuilder::new();
//! let line = br#"{"event_id":"e1","type":"heartbeat","ts":"2026-03-02T09:15:04Z","user_id":"u1",
//!   "session_id":"s1","course_id":"c1","lesson_id":"l1","position_s":12.5,"playing":true,
//!   "visible":false,"some_future_field":[1,2]}"#;
//! let ev = parse_event(line).unwrap();
//! batch.push(&ev, "sample.ndjson", 1);
//! assert_eq!(batch.finish().num_rows(), 1);
//! let bad = parse_event(br#"{"event_id":"e2","type":"heartbeat","ts":"2026-03-02T09:15:04Z",
//!   "user_id":"u1","session_id":"s1","course_id":"c1","lesson_id":"l1","position_s":"12",
//!   "playing":true,"visible":true}"#).unwrap_err();
//! assert_eq!(bad.kind, RejectKind::WrongType);
//! assert_eq!(bad.reason, "field `position_s`: expected a number, got a string");
//! ```

mod event;
mod fast;
pub mod privacy;
mod results;
mod schema;
pub mod time;

pub use event::{
    parse_event, parse_event_reference, Category, CheckinMethod, Event, EventType, Platform,
    RejectKind, Rejection,
};
pub use results::warnings_schema;
pub use results::StreamRecord;
pub use results::{
    case_awaits_review, cases_schema, credits_schema, decisions_schema, flags_schema,
    rule_feedback_schema, stable_id, Case, Credit, CreditDecision, Decision, Flag, Progress,
    ResultRecord, RuleFeedback, Warning, CASE_STATUSES, CREDIT_STATUSES, DETECTORS, RULES,
    WARNING_REASONS,
};
pub use schema::{events_schema, ts_type, EventBatchBuilder};
