//! Hand-written NDJSON formatting.
//!
//! `serde_json` would spend most of the generator's budget on floats and timestamps; every number
//! here is a fixed-point integer (milliseconds, 1e-4 degrees, per-mille rates), so writing digits
//! directly keeps generation above a million events per second on one core.

use creditguard_contract::time::civil_from_days;

/// Appends the decimal digits of `v`.
pub(crate) fn push_u64(buf: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

pub(crate) fn push_i64(buf: &mut Vec<u8>, v: i64) {
    if v < 0 {
        buf.push(b'-');
    }
    push_u64(buf, v.unsigned_abs());
}

/// Appends `v / 10^decimals` as a decimal number, trailing zeros of the fraction trimmed
/// (`12500, 3` → `12.5`, `12000, 3` → `12`).
pub(crate) fn push_fixed(buf: &mut Vec<u8>, v: i64, decimals: u32) {
    let scale = 10i64.pow(decimals);
    if v < 0 {
        buf.push(b'-');
    }
    let a = v.unsigned_abs();
    push_u64(buf, a / scale as u64);
    let mut frac = a % scale as u64;
    if frac == 0 {
        return;
    }
    let mut width = decimals;
    while frac % 10 == 0 {
        frac /= 10;
        width -= 1;
    }
    buf.push(b'.');
    let mut tmp = [b'0'; 20];
    let mut i = width as usize;
    while i > 0 {
        i -= 1;
        tmp[i] = b'0' + (frac % 10) as u8;
        frac /= 10;
    }
    buf.extend_from_slice(&tmp[..width as usize]);
}

fn push2(buf: &mut Vec<u8>, v: u32) {
    buf.push(b'0' + (v / 10) as u8);
    buf.push(b'0' + (v % 10) as u8);
}

/// Formats timestamps as RFC 3339 with millisecond precision, caching the date part: consecutive
/// events almost always fall on the same day, and the civil-date conversion is the costly bit.
#[derive(Default)]
pub(crate) struct TsFormatter {
    day: i64,
    date: [u8; 10],
    valid: bool,
}

impl TsFormatter {
    /// Appends `ts_us` as local time at `offset_min` minutes east of UTC, with that offset
    /// (`Z` when `utc_z` and the offset is zero).
    pub(crate) fn push(&mut self, buf: &mut Vec<u8>, ts_us: i64, offset_min: i32, utc_z: bool) {
        let local_ms = ts_us.div_euclid(1000) + i64::from(offset_min) * 60_000;
        let day = local_ms.div_euclid(86_400_000);
        let ms_of_day = local_ms.rem_euclid(86_400_000) as u32;
        if !self.valid || day != self.day {
            let (y, m, d) = civil_from_days(day);
            let s = format!("{y:04}-{m:02}-{d:02}");
            self.date.copy_from_slice(&s.as_bytes()[..10]);
            self.day = day;
            self.valid = true;
        }
        buf.extend_from_slice(&self.date);
        buf.push(b'T');
        let secs = ms_of_day / 1000;
        push2(buf, secs / 3600);
        buf.push(b':');
        push2(buf, (secs / 60) % 60);
        buf.push(b':');
        push2(buf, secs % 60);
        buf.push(b'.');
        let ms = ms_of_day % 1000;
        buf.push(b'0' + (ms / 100) as u8);
        push2(buf, ms % 100);
        if offset_min == 0 && utc_z {
            buf.push(b'Z');
        } else {
            buf.push(if offset_min < 0 { b'-' } else { b'+' });
            let o = offset_min.unsigned_abs();
            push2(buf, o / 60);
            buf.push(b':');
            push2(buf, o % 60);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use creditguard_contract::time::parse_rfc3339_us;

    #[test]
    fn fixed_point_numbers() {
        let cases = [
            (12_500, 3, "12.5"),
            (12_000, 3, "12"),
            (5, 3, "0.005"),
            (-1_234_567, 4, "-123.4567"),
            (0, 3, "0"),
        ];
        for (v, d, want) in cases {
            let mut b = Vec::new();
            push_fixed(&mut b, v, d);
            assert_eq!(std::str::from_utf8(&b).unwrap(), want);
        }
    }

    #[test]
    fn timestamps_round_trip_through_the_contract_parser() {
        let mut f = TsFormatter::default();
        for (ts, off) in [
            (1_772_414_104_250_000i64, 480),
            (1_772_414_104_250_000, -300),
            (0, 0),
            (1_772_414_104_001_999, 330),
        ] {
            let mut b = Vec::new();
            f.push(&mut b, ts, off, true);
            let s = std::str::from_utf8(&b).unwrap();
            assert_eq!(parse_rfc3339_us(s), Ok(ts / 1000 * 1000), "{s}");
        }
        let mut b = Vec::new();
        f.push(&mut b, 1_772_414_104_250_000, 480, true);
        assert_eq!(b, b"2026-03-02T09:15:04.250+08:00");
    }
}
