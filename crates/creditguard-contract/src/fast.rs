//! The fast path of [`parse_event`](crate::parse_event): a hand-written decoder for the shape
//! telemetry almost always has (one flat object, strings without escapes, plain numbers).
//!
//! It either returns exactly the [`Wire`] that serde_json would have produced, or gives up
//! (`None`) and leaves the input to the serde_json path, which owns every error message. It
//! gives up on anything unusual: an escape in a string, a duplicate or mistyped field, `null`
//! for a known field, a nested value under an unknown key, a number whose value it could round
//! differently from serde_json, and every syntax error. So it never decides that an event is
//! invalid, and it never accepts one that serde_json would reject; the unit tests check both
//! against serde_json on the contract's cases and on many mutated lines.

use std::borrow::Cow;

use crate::event::Wire;

/// Decodes `text` into the raw fields of one event, or `None` to let serde_json decide.
pub(crate) fn decode(text: &str) -> Option<Wire<'_>> {
    let mut s = Scan {
        text,
        b: text.as_bytes(),
        i: 0,
    };
    let mut w = Wire::default();
    s.ws();
    s.expect(b'{')?;
    s.ws();
    if s.peek() == Some(b'}') {
        s.i += 1;
    } else {
        loop {
            s.expect(b'"')?;
            let key = s.string()?;
            s.ws();
            s.expect(b':')?;
            s.ws();
            match key {
                "event_id" => s.text_into(&mut w.event_id)?,
                "schema_version" => {
                    let v = s.number()?;
                    if v.fract() != 0.0 || w.schema_version.is_some() {
                        return None;
                    }
                    w.schema_version = Some(v as i64);
                }
                "type" => s.text_into(&mut w.event_type)?,
                "ts" => s.text_into(&mut w.ts)?,
                "received_at" => s.text_into(&mut w.received_at)?,
                "user_id" => s.text_into(&mut w.user_id)?,
                "org_unit" => s.text_into(&mut w.org_unit)?,
                "session_id" => s.text_into(&mut w.session_id)?,
                "device_id" => s.text_into(&mut w.device_id)?,
                "ip" => s.text_into(&mut w.ip)?,
                "geo_lat" => s.number_into(&mut w.geo_lat)?,
                "geo_lon" => s.number_into(&mut w.geo_lon)?,
                "platform" => s.text_into(&mut w.platform)?,
                "course_id" => s.text_into(&mut w.course_id)?,
                "lesson_id" => s.text_into(&mut w.lesson_id)?,
                "position_s" => s.number_into(&mut w.position_s)?,
                "duration_s" => s.number_into(&mut w.duration_s)?,
                "playing" => s.bool_into(&mut w.playing)?,
                "visible" => s.bool_into(&mut w.visible)?,
                "muted" => s.bool_into(&mut w.muted)?,
                "rate" => s.number_into(&mut w.rate)?,
                "seek_from_s" => s.number_into(&mut w.seek_from_s)?,
                "seek_to_s" => s.number_into(&mut w.seek_to_s)?,
                "quiz_id" => s.text_into(&mut w.quiz_id)?,
                "score" => s.number_into(&mut w.score)?,
                "max_score" => s.number_into(&mut w.max_score)?,
                "questions" => {
                    let v = s.number()?;
                    if v.fract() != 0.0 || v.abs() > 9.0e15 || w.questions.is_some() {
                        return None;
                    }
                    w.questions = Some(v as i64);
                }
                "elapsed_s" => s.number_into(&mut w.elapsed_s)?,
                "credits" => s.number_into(&mut w.credits)?,
                "category" => s.text_into(&mut w.category)?,
                "method" => s.text_into(&mut w.method)?,
                "prompt_id" => s.text_into(&mut w.prompt_id)?,
                "answered" => s.bool_into(&mut w.answered)?,
                "answered_at" => s.text_into(&mut w.answered_at)?,
                "response_s" => s.number_into(&mut w.response_s)?,
                "correct" => s.bool_into(&mut w.correct)?,
                "input_events" => {
                    let v = s.number()?;
                    if v.fract() != 0.0 || v.abs() > 9.0e15 || w.input_events.is_some() {
                        return None;
                    }
                    w.input_events = Some(v as i64);
                }
                _ => s.skip_scalar()?,
            }
            s.ws();
            match s.peek()? {
                b',' => {
                    s.i += 1;
                    s.ws();
                }
                b'}' => {
                    s.i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    s.ws();
    (s.i == s.b.len()).then_some(w)
}

/// Exact powers of ten as `f64` (10²² is the largest that is exact).
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Bytes that end the fast scan of a string: the closing quote, an escape, a control character.
static STRING_STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 0x20 {
        t[c] = true;
        c += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// A mask whose lowest set bit lies in the first byte of `w` (little-endian) that is `"`, `\\`
/// or below 0x20 (higher bits may be false alarms; the caller only uses the lowest).
#[inline]
fn stop_bytes(w: u64) -> u64 {
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    zero(w ^ (ONES * u64::from(b'"')))
        | zero(w ^ (ONES * u64::from(b'\\')))
        | (w.wrapping_sub(ONES * 0x20) & !w & HIGHS)
}

struct Scan<'a> {
    text: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// Skips JSON whitespace.
    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    #[inline]
    fn expect(&mut self, c: u8) -> Option<()> {
        if self.peek() == Some(c) {
            self.i += 1;
            Some(())
        } else {
            None
        }
    }

    /// The rest of a string whose opening quote is consumed; `None` on an escape, a control
    /// character or the end of input.
    #[inline]
    fn string(&mut self) -> Option<&'a str> {
        let start = self.i;
        let mut i = start;
        // Eight bytes at a time up to the first byte that may stop the scan.
        while let Some(chunk) = self.b.get(i..i + 8) {
            let stops = stop_bytes(u64::from_le_bytes(chunk.try_into().ok()?));
            if stops != 0 {
                i += (stops.trailing_zeros() / 8) as usize;
                break;
            }
            i += 8;
        }
        loop {
            let c = *self.b.get(i)?;
            if STRING_STOP[c as usize] {
                if c != b'"' {
                    return None;
                }
                self.i = i + 1;
                // Both ends are ASCII quotes, so both are char boundaries of valid UTF-8.
                return self.text.get(start..i);
            }
            i += 1;
        }
    }

    /// A JSON number as serde_json turns it into `f64`, when that is certain: integers of up
    /// to 18 digits (converted like serde_json's `u64`/`i64`), and decimals of up to 15
    /// significant digits with a power of ten within ±22 (then one exact multiplication or
    /// division is the correctly rounded value, which is what serde_json computes too).
    fn number(&mut self) -> Option<f64> {
        let b = self.b;
        let mut i = self.i;
        let negative = b.get(i) == Some(&b'-');
        if negative {
            i += 1;
        }
        let mut significand: u64 = 0;
        let mut digits = 0u32;
        match b.get(i)? {
            b'0' => i += 1,
            b'1'..=b'9' => {
                while let Some(&c @ b'0'..=b'9') = b.get(i) {
                    if digits == 18 {
                        return None;
                    }
                    significand = significand * 10 + u64::from(c - b'0');
                    digits += 1;
                    i += 1;
                }
            }
            _ => return None,
        }
        let mut exponent: i32 = 0;
        let mut decimal = false;
        if b.get(i) == Some(&b'.') {
            decimal = true;
            i += 1;
            let start = i;
            while let Some(&c @ b'0'..=b'9') = b.get(i) {
                if digits == 18 {
                    return None;
                }
                significand = significand * 10 + u64::from(c - b'0');
                if significand != 0 {
                    digits += 1;
                }
                exponent -= 1;
                i += 1;
            }
            if i == start {
                return None;
            }
        }
        if let Some(b'e' | b'E') = b.get(i) {
            decimal = true;
            i += 1;
            let negative_exp = match b.get(i) {
                Some(b'-') => {
                    i += 1;
                    true
                }
                Some(b'+') => {
                    i += 1;
                    false
                }
                _ => false,
            };
            let start = i;
            let mut e: i32 = 0;
            while let Some(&c @ b'0'..=b'9') = b.get(i) {
                if i - start == 4 {
                    return None;
                }
                e = e * 10 + i32::from(c - b'0');
                i += 1;
            }
            if i == start {
                return None;
            }
            exponent += if negative_exp { -e } else { e };
        }
        self.i = i;
        let magnitude = if !decimal {
            significand as f64
        } else {
            if digits > 15 || exponent.unsigned_abs() as usize >= POW10.len() {
                return None;
            }
            let pow = POW10[exponent.unsigned_abs() as usize];
            if exponent >= 0 {
                significand as f64 * pow
            } else {
                significand as f64 / pow
            }
        };
        Some(if negative { -magnitude } else { magnitude })
    }

    /// A string value into an empty slot.
    #[inline]
    fn text_into(&mut self, slot: &mut Option<Cow<'a, str>>) -> Option<()> {
        if slot.is_some() {
            return None;
        }
        self.expect(b'"')?;
        *slot = Some(Cow::Borrowed(self.string()?));
        Some(())
    }

    /// A number value into an empty slot.
    #[inline]
    fn number_into(&mut self, slot: &mut Option<f64>) -> Option<()> {
        if slot.is_some() {
            return None;
        }
        *slot = Some(self.number()?);
        Some(())
    }

    /// `true` or `false` into an empty slot.
    #[inline]
    fn bool_into(&mut self, slot: &mut Option<bool>) -> Option<()> {
        if slot.is_some() {
            return None;
        }
        let rest = &self.b[self.i..];
        let v = if rest.starts_with(b"true") {
            self.i += 4;
            true
        } else if rest.starts_with(b"false") {
            self.i += 5;
            false
        } else {
            return None;
        };
        *slot = Some(v);
        Some(())
    }

    /// The value of an unknown key, when it is a string, number, boolean or null.
    fn skip_scalar(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => {
                self.i += 1;
                self.string().map(drop)
            }
            b'-' | b'0'..=b'9' => self.number().map(drop),
            _ => {
                let rest = &self.b[self.i..];
                let n = [&b"true"[..], b"false", b"null"]
                    .into_iter()
                    .find(|lit| rest.starts_with(lit))?
                    .len();
                self.i += n;
                Some(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::decode_with_serde;

    const LINES: &[&str] = &[
        r#"{"event_id":"a1","type":"attention_check","ts":"2026-03-02T09:15:04Z","user_id":"u1","session_id":"s1","course_id":"c","lesson_id":"l","prompt_id":"p1","answered":true,"answered_at":"2026-03-02T09:15:09Z","response_s":4.75,"correct":false}"#,
        r#"{"event_id":"h1","type":"heartbeat","ts":"2026-03-02T09:15:04Z","user_id":"u1","session_id":"s1","course_id":"c","lesson_id":"l","position_s":1,"playing":true,"visible":true,"input_events":12}"#,
        r#"{"event_id":"e1","type":"login","ts":"2026-03-02T09:15:04.250+08:00","user_id":"u1","session_id":"s1"}"#,
        r#"{"event_id":"ev-000000000001","ts":"2026-03-02T09:15:04.250+08:00","received_at":"2026-03-02T01:15:05Z","user_id":"emp-000123","org_unit":"branch-003","session_id":"s-1","device_id":"dev-1","ip":"10.0.0.1","platform":"web","type":"heartbeat","course_id":"course-001","lesson_id":"lesson-0001","position_s":12.5,"playing":true,"visible":false,"muted":false,"rate":1.0}"#,
        r#" { "event_id" : "e2" , "type" : "quiz_submit" , "ts" : "2026-03-02T09:15:04Z" , "user_id" : "u1" , "session_id" : "s1" , "course_id" : "c" , "quiz_id" : "q" , "score" : 8 , "max_score" : 1e1 , "questions" : 10.0 , "elapsed_s" : 2.4E2 , "schema_version" : 1 } "#,
        r#"{"event_id":"e3","type":"course_complete","ts":"2026-03-02T09:15:04Z","user_id":"用户一","course_id":"c","credits":2.5,"category":"elective","extra":null,"more":[1,2],"obj":{"a":1},"n":-0.0,"t":true}"#,
        r#"{"event_id":"e4","type":"checkin","ts":"2026-03-02T09:15:04Z","user_id":"u","course_id":"c","method":"qr","device_id":"d","geo_lat":-33.8688,"geo_lon":151.2093}"#,
        r#"{"event_id":"e5","type":"video_seek","ts":"2026-03-02T09:15:04Z","user_id":"u","session_id":"s","course_id":"c","lesson_id":"l","seek_from_s":0,"seek_to_s":123456789012345678901}"#,
        r#"{"event_id":"e6","type":"video_rate","ts":"2026-03-02T09:15:04Z","user_id":"u","session_id":"s","course_id":"c","lesson_id":"l","rate":1.2345678901234567}"#,
        r#"{"event_id":"e\"7","type":"login","ts":"2026-03-02T09:15:04Z","user_id":"u","session_id":"s"}"#,
        r#"{"event_id":"e8","type":"login","ts":"2026-03-02T09:15:04Z","user_id":"u","session_id":"s","position_s":-0,"duration_s":1e-7,"score":0.1e23}"#,
        r#"{}"#,
        r#"[]"#,
        "{\"event_id\":\"e9\",\"type\":\"login\",\"ts\":\"2026-03-02T09:15:04Z\",\"user_id\":\"u\",\"session_id\":\"s\"}\r\n",
    ];

    /// The fast path, where it answers, gives serde_json's answer.
    fn check(text: &str) -> bool {
        let Some(fast) = decode(text) else {
            return false;
        };
        match decode_with_serde(text) {
            Ok(slow) => assert!(
                fast == slow,
                "fast and serde_json decodes differ for {text:?}:\n{fast:?}\n{slow:?}"
            ),
            Err(rej) => panic!("fast path accepted {text:?}, serde_json rejects it: {rej}"),
        }
        true
    }

    #[test]
    fn agrees_with_serde_json_on_hand_written_lines() {
        let answered: Vec<bool> = LINES.iter().map(|l| check(l)).collect();
        // The ordinary lines take the fast path; escapes, nesting, 17-digit numbers and
        // non-objects do not.
        assert_eq!(
            answered,
            [
                true, true, true, true, true, false, true, false, false, false, true, true, false,
                true
            ]
        );
    }

    #[test]
    fn hands_every_mutation_of_a_line_it_cannot_vouch_for_to_serde_json() {
        // Deterministic mutations of real-looking lines: byte deletions, insertions of JSON
        // punctuation and digits, truncations. Whatever the fast path accepts, serde_json must
        // accept with the same fields; what it declines is not counted.
        let alphabet = b"{}[]:,\"\\ -+.eE01239tfnul\x01\xc3";
        let mut x: u64 = 0x243f_6a88_85a3_08d3;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let (mut answered, mut tried) = (0, 0);
        for line in LINES {
            for _ in 0..4000 {
                let mut b = line.as_bytes().to_vec();
                for _ in 0..1 + next() % 3 {
                    let at = (next() % (b.len() as u64 + 1)) as usize;
                    match next() % 4 {
                        0 if at < b.len() => {
                            b.remove(at);
                        }
                        1 | 2 => b.insert(at, alphabet[(next() % alphabet.len() as u64) as usize]),
                        _ => b.truncate(at),
                    }
                }
                if let Ok(text) = std::str::from_utf8(&b) {
                    tried += 1;
                    answered += usize::from(check(text));
                }
            }
        }
        // Most mutations break the syntax; a fair share (in a value, or harmless) survive.
        assert!(tried > 30_000, "{tried}");
        assert!(
            answered > 2_000,
            "only {answered} of {tried} took the fast path"
        );
    }

    #[test]
    fn the_word_scan_finds_the_first_stop_byte() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for round in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Bias towards the interesting bytes: quotes, backslashes, controls, UTF-8.
            let mut w = x;
            if round % 2 == 0 {
                let pool = [
                    b'"', b'\\', 0x00, 0x1f, 0x20, 0x21, 0x5b, 0x5d, 0x7f, 0x80, 0xa0, 0xff,
                ];
                let at = (x >> 3) % 8;
                w = (w & !(0xff << (at * 8)))
                    | (u64::from(pool[(x >> 11) as usize % pool.len()]) << (at * 8));
            }
            let naive = w
                .to_le_bytes()
                .iter()
                .position(|&c| STRING_STOP[c as usize]);
            let found = match stop_bytes(w) {
                0 => None,
                m => Some((m.trailing_zeros() / 8) as usize),
            };
            assert_eq!(found, naive, "{w:#018x}");
        }
    }

    #[test]
    fn numbers_convert_exactly_as_serde_json_converts_them() {
        for n in [
            "0",
            "-0",
            "7",
            "-7",
            "0.5",
            "12.5",
            "1800",
            "3.14159",
            "1e3",
            "1E-3",
            "2.5e+2",
            "123456789012345678",
            "0.000001",
            "99999.99999",
            "1e22",
            "-1e-22",
            "0.1",
            "0.2",
            "0.30000000000000004",
            "4.35",
            "1.005",
            "100000000000000.1",
        ] {
            let line = format!(r#"{{"position_s":{n}}}"#);
            if decode(&line).is_some() {
                check(&line);
            }
            let fast = decode(&line).and_then(|w| w.position_s);
            if let Some(v) = fast {
                assert_eq!(v.to_bits(), n.parse::<f64>().unwrap().to_bits(), "{n}");
            }
        }
    }
}
