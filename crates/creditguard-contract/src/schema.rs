//! The Arrow schema of the lake's `events` table and a builder that fills it from [`Event`]s.

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::event::Event;

/// The timestamp type of every table: UTC microseconds.
pub fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// Columns of the `events` table, in order. Flat and nullable except the envelope; strings are
/// plain UTF-8 (Parquet dictionary-encodes the low-cardinality ones on its own).
/// `src` / `src_pos` say where the event was read: file and line, or topic-partition and offset.
pub fn events_schema() -> SchemaRef {
    use DataType::{Boolean, Float64, Int64, Utf8};
    let f = |name: &str, dt: DataType, nullable: bool| Field::new(name, dt, nullable);
    Arc::new(Schema::new(vec![
        f("event_id", Utf8, false),
        f("event_type", Utf8, false),
        f("ts", ts_type(), false),
        f("received_at", ts_type(), true),
        f("user_id", Utf8, false),
        f("org_unit", Utf8, true),
        f("session_id", Utf8, true),
        f("device_id", Utf8, true),
        f("ip", Utf8, true),
        f("geo_lat", Float64, true),
        f("geo_lon", Float64, true),
        f("platform", Utf8, true),
        f("course_id", Utf8, true),
        f("lesson_id", Utf8, true),
        f("position_s", Float64, true),
        f("duration_s", Float64, true),
        f("playing", Boolean, true),
        f("visible", Boolean, true),
        f("muted", Boolean, true),
        f("rate", Float64, true),
        f("seek_from_s", Float64, true),
        f("seek_to_s", Float64, true),
        f("quiz_id", Utf8, true),
        f("score", Float64, true),
        f("max_score", Float64, true),
        f("questions", Int64, true),
        f("elapsed_s", Float64, true),
        f("credits", Float64, true),
        f("category", Utf8, true),
        f("method", Utf8, true),
        f("src", Utf8, false),
        f("src_pos", Int64, false),
        // telemetry-v1 additions (attention checks, input counts): after the original columns so
        // files written before them keep their column positions; readers fill them with nulls.
        f("prompt_id", Utf8, true),
        f("answered", Boolean, true),
        f("response_s", Float64, true),
        f("correct", Boolean, true),
        f("input_events", Int64, true),
    ]))
}

/// Accumulates events into one Arrow [`RecordBatch`] of [`events_schema`].
pub struct EventBatchBuilder {
    event_id: StringBuilder,
    event_type: StringBuilder,
    ts: TimestampMicrosecondBuilder,
    received_at: TimestampMicrosecondBuilder,
    user_id: StringBuilder,
    org_unit: StringBuilder,
    session_id: StringBuilder,
    device_id: StringBuilder,
    ip: StringBuilder,
    geo_lat: Float64Builder,
    geo_lon: Float64Builder,
    platform: StringBuilder,
    course_id: StringBuilder,
    lesson_id: StringBuilder,
    position_s: Float64Builder,
    duration_s: Float64Builder,
    playing: BooleanBuilder,
    visible: BooleanBuilder,
    muted: BooleanBuilder,
    rate: Float64Builder,
    seek_from_s: Float64Builder,
    seek_to_s: Float64Builder,
    quiz_id: StringBuilder,
    score: Float64Builder,
    max_score: Float64Builder,
    questions: Int64Builder,
    elapsed_s: Float64Builder,
    credits: Float64Builder,
    category: StringBuilder,
    method: StringBuilder,
    src: StringBuilder,
    src_pos: Int64Builder,
    prompt_id: StringBuilder,
    answered: BooleanBuilder,
    response_s: Float64Builder,
    correct: BooleanBuilder,
    input_events: Int64Builder,
    len: usize,
}

impl Default for EventBatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBatchBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// An empty builder with room for `rows` events without reallocating (strings are assumed
    /// to average 16 bytes).
    pub fn with_capacity(rows: usize) -> Self {
        let s = || StringBuilder::with_capacity(rows, rows * 16);
        let f = || Float64Builder::with_capacity(rows);
        let b = || BooleanBuilder::with_capacity(rows);
        let t = || TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC");
        EventBatchBuilder {
            event_id: s(),
            event_type: s(),
            ts: t(),
            received_at: t(),
            user_id: s(),
            org_unit: s(),
            session_id: s(),
            device_id: s(),
            ip: s(),
            geo_lat: f(),
            geo_lon: f(),
            platform: s(),
            course_id: s(),
            lesson_id: s(),
            position_s: f(),
            duration_s: f(),
            playing: b(),
            visible: b(),
            muted: b(),
            rate: f(),
            seek_from_s: f(),
            seek_to_s: f(),
            quiz_id: s(),
            score: f(),
            max_score: f(),
            questions: Int64Builder::with_capacity(rows),
            elapsed_s: f(),
            credits: f(),
            category: s(),
            method: s(),
            src: s(),
            src_pos: Int64Builder::with_capacity(rows),
            // Sparse columns (attention checks are rare): no reserved string bytes.
            prompt_id: StringBuilder::with_capacity(rows, 0),
            answered: b(),
            response_s: f(),
            correct: b(),
            input_events: Int64Builder::with_capacity(rows),
            len: 0,
        }
    }

    /// Rows appended since the last [`finish`](Self::finish).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no row has been appended.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends one event read at `src` / `src_pos`.
    pub fn push(&mut self, e: &Event<'_>, src: &str, src_pos: i64) {
        self.event_id.append_value(&e.event_id);
        self.event_type.append_value(e.event_type.as_str());
        self.ts.append_value(e.ts_us);
        self.received_at.append_option(e.received_at_us);
        self.user_id.append_value(&e.user_id);
        self.org_unit.append_option(e.org_unit.as_deref());
        self.session_id.append_option(e.session_id.as_deref());
        self.device_id.append_option(e.device_id.as_deref());
        self.ip.append_option(e.ip.as_deref());
        self.geo_lat.append_option(e.geo_lat);
        self.geo_lon.append_option(e.geo_lon);
        self.platform.append_option(e.platform.map(|p| p.as_str()));
        self.course_id.append_option(e.course_id.as_deref());
        self.lesson_id.append_option(e.lesson_id.as_deref());
        self.position_s.append_option(e.position_s);
        self.duration_s.append_option(e.duration_s);
        self.playing.append_option(e.playing);
        self.visible.append_option(e.visible);
        self.muted.append_option(e.muted);
        self.rate.append_option(e.rate);
        self.seek_from_s.append_option(e.seek_from_s);
        self.seek_to_s.append_option(e.seek_to_s);
        self.quiz_id.append_option(e.quiz_id.as_deref());
        self.score.append_option(e.score);
        self.max_score.append_option(e.max_score);
        self.questions.append_option(e.questions);
        self.elapsed_s.append_option(e.elapsed_s);
        self.credits.append_option(e.credits);
        self.category.append_option(e.category.map(|c| c.as_str()));
        self.method.append_option(e.method.map(|m| m.as_str()));
        self.src.append_value(src);
        self.src_pos.append_value(src_pos);
        self.prompt_id.append_option(e.prompt_id.as_deref());
        self.answered.append_option(e.answered);
        self.response_s.append_option(e.response_s);
        self.correct.append_option(e.correct);
        self.input_events.append_option(e.input_events);
        self.len += 1;
    }

    /// Takes the rows appended so far as one batch and resets the builder.
    pub fn finish(&mut self) -> RecordBatch {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.event_id.finish()),
            Arc::new(self.event_type.finish()),
            Arc::new(self.ts.finish()),
            Arc::new(self.received_at.finish()),
            Arc::new(self.user_id.finish()),
            Arc::new(self.org_unit.finish()),
            Arc::new(self.session_id.finish()),
            Arc::new(self.device_id.finish()),
            Arc::new(self.ip.finish()),
            Arc::new(self.geo_lat.finish()),
            Arc::new(self.geo_lon.finish()),
            Arc::new(self.platform.finish()),
            Arc::new(self.course_id.finish()),
            Arc::new(self.lesson_id.finish()),
            Arc::new(self.position_s.finish()),
            Arc::new(self.duration_s.finish()),
            Arc::new(self.playing.finish()),
            Arc::new(self.visible.finish()),
            Arc::new(self.muted.finish()),
            Arc::new(self.rate.finish()),
            Arc::new(self.seek_from_s.finish()),
            Arc::new(self.seek_to_s.finish()),
            Arc::new(self.quiz_id.finish()),
            Arc::new(self.score.finish()),
            Arc::new(self.max_score.finish()),
            Arc::new(self.questions.finish()),
            Arc::new(self.elapsed_s.finish()),
            Arc::new(self.credits.finish()),
            Arc::new(self.category.finish()),
            Arc::new(self.method.finish()),
            Arc::new(self.src.finish()),
            Arc::new(self.src_pos.finish()),
            Arc::new(self.prompt_id.finish()),
            Arc::new(self.answered.finish()),
            Arc::new(self.response_s.finish()),
            Arc::new(self.correct.finish()),
            Arc::new(self.input_events.finish()),
        ];
        self.len = 0;
        RecordBatch::try_new(events_schema(), columns).expect("builder columns match events_schema")
    }
}
