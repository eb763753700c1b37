//! Turning simulated events into NDJSON lines, with the delivery faults, and putting the lines
//! in arrival order.

use std::io::{self, Write};

use creditguard_contract::{CheckinMethod, EventType, Platform};
use rand::rngs::StdRng;
use rand::Rng;

use crate::catalog::Catalog;
use crate::format::{push_fixed, push_i64, push_u64, TsFormatter};
use crate::labels::Summary;
use crate::plan::UserSpec;
use crate::sim::{HOUR, MS, SEC};

/// Where an event comes from: a session on a device, or (for `course_complete`) the platform.
#[derive(Clone, Copy)]
pub(crate) struct Ctx {
    /// Session number of the learner; 0 = no `session_id` (check-ins, completions).
    pub sess: u32,
    /// Device fingerprint; 0 = none.
    pub device: u64,
    /// IPv4 address; 0 = none.
    pub ip: u32,
    /// Coarse location in 1e-4 degrees.
    pub geo: Option<(i32, i32)>,
    pub platform: Platform,
    /// UTC offset of the client's clock, minutes.
    pub tz_min: i32,
    /// Client clock error added to `ts` (0 unless a clock-skew fault).
    pub skew_us: i64,
    /// Network latency between `ts` and `received_at`.
    pub latency_us: i64,
}

impl Ctx {
    /// A server-side event of the platform (no session, device or address).
    pub(crate) fn server(tz_min: i32) -> Ctx {
        Ctx {
            sess: 0,
            device: 0,
            ip: 0,
            geo: None,
            platform: Platform::Other,
            tz_min,
            skew_us: 0,
            latency_us: 30 * MS,
        }
    }
}

#[derive(Clone, Copy)]
pub(crate) struct Quiz {
    pub score: i64,
    pub questions: i64,
    pub elapsed_ms: i64,
}

/// One simulated event. Numbers are fixed-point: positions and durations in ms, rate per mille.
#[derive(Clone, Copy)]
pub(crate) struct Rec {
    kind: EventType,
    pub t: i64,
    course: Option<usize>,
    lesson: Option<usize>,
    pos: Option<i64>,
    dur: Option<i64>,
    playing: Option<bool>,
    visible: Option<bool>,
    muted: bool,
    rate_pm: u32,
    seek: Option<(i64, i64)>,
    quiz: Option<Quiz>,
    method: Option<CheckinMethod>,
    check: Option<Check>,
    inputs: Option<u32>,
}

/// An attention check (a pop-up question during a video) as the platform reports it.
#[derive(Clone, Copy)]
pub(crate) struct Check {
    pub prompt: u32,
    /// Milliseconds from showing to answering; `None`: missed (timed out).
    pub response_ms: Option<i64>,
    pub correct: bool,
}

impl Rec {
    pub(crate) fn new(kind: EventType, t: i64) -> Rec {
        Rec {
            kind,
            t,
            course: None,
            lesson: None,
            pos: None,
            dur: None,
            playing: None,
            visible: None,
            muted: false,
            rate_pm: 0,
            seek: None,
            quiz: None,
            method: None,
            check: None,
            inputs: None,
        }
    }
    pub(crate) fn check(mut self, c: Check) -> Rec {
        self.check = Some(c);
        self
    }
    /// `input_events` of a heartbeat.
    pub(crate) fn inputs(mut self, n: u32) -> Rec {
        self.inputs = Some(n);
        self
    }
    pub(crate) fn course(mut self, c: usize) -> Rec {
        self.course = Some(c);
        self
    }
    pub(crate) fn lesson(mut self, c: usize, l: usize) -> Rec {
        self.course = Some(c);
        self.lesson = Some(l);
        self
    }
    pub(crate) fn pos(mut self, ms: i64) -> Rec {
        self.pos = Some(ms);
        self
    }
    pub(crate) fn dur(mut self, ms: i64) -> Rec {
        self.dur = Some(ms);
        self
    }
    pub(crate) fn playing(mut self, v: bool) -> Rec {
        self.playing = Some(v);
        self
    }
    pub(crate) fn visible(mut self, v: bool) -> Rec {
        self.visible = Some(v);
        self
    }
    /// Only `true` is written: a missing `muted` means "not known / not muted".
    pub(crate) fn muted(mut self, v: bool) -> Rec {
        self.muted = v;
        self
    }
    /// 0 and 1000 (1.0×, the contract default) are not written except on `video_rate`.
    pub(crate) fn rate(mut self, pm: u32) -> Rec {
        self.rate_pm = pm;
        self
    }
    pub(crate) fn seek(mut self, from: i64, to: i64) -> Rec {
        self.seek = Some((from, to));
        self
    }
    pub(crate) fn quiz(mut self, q: Quiz) -> Rec {
        self.quiz = Some(q);
        self
    }
    pub(crate) fn method(mut self, m: CheckinMethod) -> Rec {
        self.method = Some(m);
        self
    }
}

/// The ways a line is made invalid, each with the `RejectKind` a validator should give it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Corrupt {
    None,
    /// Cut off mid-line (`not_json`).
    Truncated,
    /// No `ts` (`missing_field`).
    MissingTs,
    /// `ts` without its offset (`bad_timestamp`).
    NoOffset,
    /// `type` no version of the contract knows (`unknown_type`).
    UnknownType,
    /// `schema_version` as a string (`wrong_type`).
    StringVersion,
}

impl Corrupt {
    const ALL: [Corrupt; 5] = [
        Corrupt::Truncated,
        Corrupt::MissingTs,
        Corrupt::NoOffset,
        Corrupt::UnknownType,
        Corrupt::StringVersion,
    ];

    fn reject_kind(self) -> &'static str {
        match self {
            Corrupt::None => "",
            Corrupt::Truncated => "not_json",
            Corrupt::MissingTs => "missing_field",
            Corrupt::NoOffset => "bad_timestamp",
            Corrupt::UnknownType => "unknown_type",
            Corrupt::StringVersion => "wrong_type",
        }
    }
}

#[derive(Clone, Copy)]
struct Slot {
    /// Arrival time (µs): lines are written in this order.
    key: i64,
    user: u32,
    line: u32,
    start: usize,
    len: u32,
}

/// Lines waiting to be written, in an arena, with their arrival times.
#[derive(Default)]
pub(crate) struct Chunk {
    arena: Vec<u8>,
    slots: Vec<Slot>,
    /// Buffers of the previous flush, reused so that memory is not faulted in again every day.
    spare_arena: Vec<u8>,
    spare_slots: Vec<Slot>,
}

impl Chunk {
    /// Writes, in arrival order, every line that arrived before `before`; keeps the rest.
    /// Returns the number of lines written.
    pub(crate) fn flush<W: Write>(&mut self, w: &mut W, before: i64) -> io::Result<u64> {
        self.slots.sort_unstable_by_key(|s| (s.key, s.user, s.line));
        let split = self.slots.partition_point(|s| s.key < before);
        for s in &self.slots[..split] {
            w.write_all(&self.arena[s.start..s.start + s.len as usize])?;
        }
        self.spare_arena.clear();
        self.spare_slots.clear();
        for s in &self.slots[split..] {
            let start = self.spare_arena.len();
            self.spare_arena
                .extend_from_slice(&self.arena[s.start..s.start + s.len as usize]);
            self.spare_slots.push(Slot { start, ..*s });
        }
        std::mem::swap(&mut self.arena, &mut self.spare_arena);
        std::mem::swap(&mut self.slots, &mut self.spare_slots);
        Ok(split as u64)
    }

    fn push_slot(&mut self, key: i64, user: u32, line: u32, start: usize) {
        let len = (self.arena.len() - start) as u32;
        self.slots.push(Slot {
            key,
            user,
            line,
            start,
            len,
        });
    }
}

/// Formats one learner's events and injects the delivery faults, from its own random stream so
/// that the fault rate never changes the learner's behaviour.
pub(crate) struct Emitter {
    idx: u32,
    user_id: String,
    org_unit: String,
    seq: u64,
    line: u32,
    frng: StdRng,
    fault_rate: f64,
    ts_fmt: TsFormatter,
    rx_fmt: TsFormatter,
    /// The fields every event of one session shares (user, org unit, session, device, address,
    /// location, platform), formatted once per session rather than once per event.
    prefix: Vec<u8>,
    prefix_of: Option<(u32, u64, u32, Option<(i32, i32)>, Platform)>,
    pub stats: Summary,
}

fn push_str_field(buf: &mut Vec<u8>, key: &[u8], v: &[u8]) {
    buf.extend_from_slice(key);
    buf.extend_from_slice(v);
    buf.push(b'"');
}

fn push_bool(buf: &mut Vec<u8>, key: &[u8], v: bool) {
    buf.extend_from_slice(key);
    buf.extend_from_slice(if v { b"true" } else { b"false" });
}

fn push_ip(buf: &mut Vec<u8>, ip: u32) {
    let [a, b, c, d] = ip.to_be_bytes();
    for (i, o) in [a, b, c, d].into_iter().enumerate() {
        if i > 0 {
            buf.push(b'.');
        }
        push_u64(buf, u64::from(o));
    }
}

fn push_hex12(buf: &mut Vec<u8>, v: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for i in (0..12).rev() {
        buf.push(HEX[((v >> (i * 4)) & 0xF) as usize]);
    }
}

impl Emitter {
    pub(crate) fn new(u: &UserSpec, org_unit: &str, frng: StdRng, fault_rate: f64) -> Emitter {
        Emitter {
            idx: u.idx,
            user_id: u.user_id.clone(),
            org_unit: org_unit.to_string(),
            seq: 0,
            line: 0,
            frng,
            fault_rate,
            ts_fmt: TsFormatter::default(),
            rx_fmt: TsFormatter::default(),
            prefix: Vec::new(),
            prefix_of: None,
            stats: Summary::default(),
        }
    }

    /// Client clock error for a new session: usually none, sometimes ±1–10 minutes.
    pub(crate) fn draw_skew(&mut self) -> i64 {
        if self.fault_rate > 0.0 && self.frng.random_bool((self.fault_rate * 5.0).min(1.0)) {
            self.stats.skewed_sessions += 1;
            let s = self.frng.random_range(60..=600i64) * SEC;
            if self.frng.random_bool(0.5) {
                s
            } else {
                -s
            }
        } else {
            0
        }
    }

    pub(crate) fn emit(&mut self, out: &mut Chunk, ctx: &Ctx, r: &Rec, catalog: &Catalog) {
        self.seq += 1;
        self.stats.events += 1;
        if r.kind == EventType::CourseComplete {
            self.stats.course_completions += 1;
        }
        let mut recv = r.t + ctx.latency_us;
        let (mut dup, mut extra, mut invalid) = (false, false, None);
        if self.fault_rate > 0.0 && self.frng.random_bool(self.fault_rate) {
            match self.frng.random_range(0..100u32) {
                0..35 => dup = true,
                35..55 => {
                    // Held back by a flaky connection: arrives after later events.
                    recv += self.frng.random_range(20..=180i64) * SEC;
                    self.stats.out_of_order += 1;
                }
                55..65 => {
                    // Buffered offline on the device and uploaded hours later.
                    recv += self.frng.random_range(1..=8i64) * HOUR
                        + self.frng.random_range(0..3_600_000i64) * MS;
                    self.stats.late += 1;
                }
                65..80 => extra = true,
                _ => invalid = Some(Corrupt::ALL[self.frng.random_range(0..Corrupt::ALL.len())]),
            }
        }
        let start = out.arena.len();
        self.write_line(&mut out.arena, ctx, r, recv, Corrupt::None, extra, catalog);
        self.line += 1;
        out.push_slot(recv, self.idx, self.line, start);
        self.stats.lines += 1;
        if extra {
            self.stats.extra_fields += 1;
        }
        if dup {
            // A producer retry: the very same bytes again, a little later.
            let end = out.arena.len();
            let start2 = end;
            out.arena.extend_from_within(start..end);
            self.line += 1;
            let key = recv + self.frng.random_range(1..=300i64) * SEC;
            out.push_slot(key, self.idx, self.line, start2);
            self.stats.duplicates += 1;
            self.stats.lines += 1;
        }
        if let Some(kind) = invalid {
            let start = out.arena.len();
            self.write_line(&mut out.arena, ctx, r, recv, kind, false, catalog);
            self.line += 1;
            let key = recv + self.frng.random_range(0..=60_000i64) * MS;
            out.push_slot(key, self.idx, self.line, start);
            self.stats.invalid_lines += 1;
            self.stats.lines += 1;
            *self
                .stats
                .invalid_by_kind
                .entry(kind.reject_kind().to_string())
                .or_default() += 1;
        }
    }

    fn write_prefix(&mut self, ctx: &Ctx) {
        let b = &mut self.prefix;
        push_str_field(b, b"\",\"user_id\":\"", self.user_id.as_bytes());
        push_str_field(b, b",\"org_unit\":\"", self.org_unit.as_bytes());
        if ctx.sess != 0 {
            b.extend_from_slice(b",\"session_id\":\"");
            b.extend_from_slice(self.user_id.as_bytes());
            b.extend_from_slice(b"-s");
            push_u64(b, u64::from(ctx.sess));
            b.push(b'"');
        }
        if ctx.device != 0 {
            b.extend_from_slice(b",\"device_id\":\"d-");
            push_hex12(b, ctx.device);
            b.push(b'"');
        }
        if ctx.ip != 0 {
            b.extend_from_slice(b",\"ip\":\"");
            push_ip(b, ctx.ip);
            b.push(b'"');
        }
        if let Some((lat, lon)) = ctx.geo {
            b.extend_from_slice(b",\"geo_lat\":");
            push_fixed(b, i64::from(lat), 4);
            b.extend_from_slice(b",\"geo_lon\":");
            push_fixed(b, i64::from(lon), 4);
        }
        if ctx.device != 0 {
            push_str_field(b, b",\"platform\":\"", ctx.platform.as_str().as_bytes());
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn write_line(
        &mut self,
        b: &mut Vec<u8>,
        ctx: &Ctx,
        r: &Rec,
        recv: i64,
        corrupt: Corrupt,
        extra: bool,
        catalog: &Catalog,
    ) {
        let line_start = b.len();
        b.extend_from_slice(b"{\"event_id\":\"");
        b.extend_from_slice(self.user_id.as_bytes());
        b.push(b'-');
        push_u64(b, self.seq);
        b.extend_from_slice(b"\",\"type\":\"");
        if corrupt == Corrupt::UnknownType {
            b.extend_from_slice(b"video_buffering");
        } else {
            b.extend_from_slice(r.kind.as_str().as_bytes());
        }
        b.push(b'"');
        if corrupt != Corrupt::MissingTs {
            b.extend_from_slice(b",\"ts\":\"");
            let at = b.len();
            self.ts_fmt.push(b, r.t + ctx.skew_us, ctx.tz_min, false);
            if corrupt == Corrupt::NoOffset {
                b.truncate(at + 23);
            }
            b.push(b'"');
        }
        b.extend_from_slice(b",\"received_at\":\"");
        self.rx_fmt.push(b, recv, 0, true);
        if corrupt == Corrupt::StringVersion {
            b.extend_from_slice(b"\",\"schema_version\":\"1");
        }
        let key = (ctx.sess, ctx.device, ctx.ip, ctx.geo, ctx.platform);
        if self.prefix_of != Some(key) {
            self.prefix.clear();
            self.write_prefix(ctx);
            self.prefix_of = Some(key);
        }
        b.extend_from_slice(&self.prefix);
        if let Some(c) = r.course {
            let course = &catalog.courses[c];
            push_str_field(b, b",\"course_id\":\"", course.id.as_bytes());
            if let Some(l) = r.lesson {
                push_str_field(b, b",\"lesson_id\":\"", course.lesson_ids[l].as_bytes());
            }
            if r.kind == EventType::CourseComplete {
                b.extend_from_slice(b",\"credits\":");
                push_fixed(b, i64::from(course.credits_x2()) * 5, 1);
                push_str_field(b, b",\"category\":\"", course.category.as_str().as_bytes());
            }
            if let Some(q) = r.quiz {
                b.extend_from_slice(b",\"quiz_id\":\"");
                b.extend_from_slice(course.id.as_bytes());
                b.extend_from_slice(b"-Q\",\"score\":");
                push_i64(b, q.score);
                b.extend_from_slice(b",\"max_score\":100,\"questions\":");
                push_i64(b, q.questions);
                b.extend_from_slice(b",\"elapsed_s\":");
                push_fixed(b, q.elapsed_ms, 3);
            }
        }
        if let Some(p) = r.pos {
            b.extend_from_slice(b",\"position_s\":");
            push_fixed(b, p, 3);
        }
        if let Some(d) = r.dur {
            b.extend_from_slice(b",\"duration_s\":");
            push_fixed(b, d, 3);
        }
        if let Some((from, to)) = r.seek {
            b.extend_from_slice(b",\"seek_from_s\":");
            push_fixed(b, from, 3);
            b.extend_from_slice(b",\"seek_to_s\":");
            push_fixed(b, to, 3);
        }
        if let Some(p) = r.playing {
            push_bool(b, b",\"playing\":", p);
        }
        if let Some(v) = r.visible {
            push_bool(b, b",\"visible\":", v);
        }
        if r.muted {
            b.extend_from_slice(b",\"muted\":true");
        }
        if r.kind == EventType::VideoRate || (r.rate_pm != 0 && r.rate_pm != 1000) {
            b.extend_from_slice(b",\"rate\":");
            push_fixed(
                b,
                i64::from(if r.rate_pm == 0 { 1000 } else { r.rate_pm }),
                3,
            );
        }
        if let Some(m) = r.method {
            push_str_field(b, b",\"method\":\"", m.as_str().as_bytes());
        }
        if let Some(c) = r.check {
            b.extend_from_slice(b",\"prompt_id\":\"P");
            push_u64(b, u64::from(c.prompt));
            b.push(b'"');
            push_bool(b, b",\"answered\":", c.response_ms.is_some());
            if let Some(ms) = c.response_ms {
                b.extend_from_slice(b",\"response_s\":");
                push_fixed(b, ms, 3);
                push_bool(b, b",\"correct\":", c.correct);
            }
        }
        if let Some(n) = r.inputs {
            b.extend_from_slice(b",\"input_events\":");
            push_u64(b, u64::from(n));
        }
        if extra {
            // A newer client build: fields this contract version does not know.
            b.extend_from_slice(b",\"x_client_build\":\"8.3.1-");
            push_u64(b, self.seq % 97);
            b.extend_from_slice(b"\",\"x_ab\":{\"bucket\":[1,2],\"on\":true}");
        }
        b.push(b'}');
        if corrupt == Corrupt::Truncated {
            let len = b.len() - line_start;
            let keep = self.frng.random_range(10..len - 1);
            b.truncate(line_start + keep);
        }
        b.push(b'\n');
    }
}
