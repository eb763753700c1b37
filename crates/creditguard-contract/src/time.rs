//! Strict RFC 3339 timestamps (`YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`) to UTC microseconds.
//!
//! Hand-written rather than chrono's parser: it is on the ingest hot path (two per event), it must
//! insist on an explicit offset, and it truncates sub-microsecond digits instead of rejecting them.

/// Parses an RFC 3339 date-time with offset into microseconds since the Unix epoch (UTC).
///
/// ```
/// use creditguard_contract::time::parse_rfc3339_us;
/// assert_eq!(parse_rfc3339_us("1970-01-01T08:00:00+08:00"), Ok(0));
/// assert_eq!(parse_rfc3339_us("1970-01-01T00:00:00.0000019Z"), Ok(1));
/// assert!(parse_rfc3339_us("2026-03-02T09:15:04").is_err());
/// ```
pub fn parse_rfc3339_us(s: &str) -> Result<i64, &'static str> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return Err("too short");
    }
    let year = digits(b, 0, 4)? as i64;
    expect(b, 4, b'-')?;
    let month = digits(b, 5, 2)?;
    expect(b, 7, b'-')?;
    let day = digits(b, 8, 2)?;
    if !matches!(b[10], b'T' | b't') {
        return Err("expected `T` between date and time");
    }
    let hour = digits(b, 11, 2)?;
    expect(b, 13, b':')?;
    let minute = digits(b, 14, 2)?;
    expect(b, 16, b':')?;
    let second = digits(b, 17, 2)?;
    if !(1..=12).contains(&month) {
        return Err("month out of range");
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err("day out of range");
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Err("time out of range");
    }
    // A leap second is folded into the last microsecond of its minute.
    let (second, leap) = if second == 60 {
        (59, true)
    } else {
        (second, false)
    };
    let mut i = 19;
    let mut micros: i64 = 0;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 6 {
                micros = micros * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return Err("empty fraction");
        }
        for _ in (i - start)..6 {
            micros *= 10;
        }
    }
    if leap {
        micros = 999_999;
    }
    let offset_s: i64 = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() => {
            let oh = digits(b, i + 1, 2)?;
            expect(b, i + 3, b':')?;
            let om = digits(b, i + 4, 2)?;
            if oh > 23 || om > 59 {
                return Err("offset out of range");
            }
            let o = i64::from(oh * 3600 + om * 60);
            if sign == b'-' {
                -o
            } else {
                o
            }
        }
        None => return Err("missing offset"),
        _ => return Err("bad offset"),
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_s;
    Ok(secs * 1_000_000 + micros)
}

fn digits(b: &[u8], at: usize, n: usize) -> Result<u32, &'static str> {
    let mut v = 0u32;
    for &c in b.get(at..at + n).ok_or("too short")? {
        if !c.is_ascii_digit() {
            return Err("expected a digit");
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Ok(v)
}

fn expect(b: &[u8], at: usize, c: u8) -> Result<(), &'static str> {
    if b.get(at) == Some(&c) {
        Ok(())
    } else {
        Err("malformed date-time")
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Microseconds in a day: the unit of every timestamp in the lake is the microsecond.
pub const DAY_US: i64 = 86_400_000_000;

/// A client clock this far ahead of the platform's receive time (or more) is corrected.
pub const SKEW_TOLERANCE_US: i64 = 1_000_000;

/// The time of an event, the one definition every stage uses: the `ts` the client sent, moved
/// back when the client's clock ran ahead. `lead` is the smallest `received_at − ts` over the
/// event's session (over the event alone when it has no session): an event cannot happen after
/// the platform received it, so a negative lead beyond [`SKEW_TOLERANCE_US`] is how far the clock
/// ran ahead, and every event of the session moves back by it, keeping the intervals between
/// them. A clock that runs behind cannot be told apart from a late delivery and is left alone.
pub fn event_time_us(ts: i64, lead: Option<i64>) -> i64 {
    match lead {
        Some(l) if l < -SKEW_TOLERANCE_US => ts + l,
        _ => ts,
    }
}

/// The UTC day (days since the epoch) of a microsecond timestamp.
pub fn day_of_us(ts_us: i64) -> i64 {
    ts_us.div_euclid(DAY_US)
}

/// Zones without daylight saving time, by IANA name: offset in minutes east of UTC.
pub const FIXED_ZONES: &[(&str, i64)] = &[
    ("UTC", 0),
    ("Etc/UTC", 0),
    ("Asia/Shanghai", 480),
    ("Asia/Chongqing", 480),
    ("Asia/Urumqi", 360),
    ("Asia/Hong_Kong", 480),
    ("Asia/Macau", 480),
    ("Asia/Taipei", 480),
    ("Asia/Singapore", 480),
    ("Asia/Kuala_Lumpur", 480),
    ("Asia/Manila", 480),
    ("Asia/Tokyo", 540),
    ("Asia/Seoul", 540),
    ("Asia/Bangkok", 420),
    ("Asia/Ho_Chi_Minh", 420),
    ("Asia/Jakarta", 420),
    ("Asia/Kolkata", 330),
    ("Asia/Dubai", 240),
];

/// Minutes east of UTC of a zone of [`FIXED_ZONES`] or a fixed offset (`+08:00`, `-05:30`).
pub fn utc_offset_minutes(zone: &str) -> Result<i64, String> {
    if let Some((_, m)) = FIXED_ZONES.iter().find(|(z, _)| *z == zone) {
        return Ok(*m);
    }
    let sign = match zone.as_bytes().first() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => {
            return Err(format!(
                "time zone `{zone}`: not a zone without daylight saving time that creditguard knows \
                 ({}) nor an offset such as +08:00; zones with daylight saving time are not modelled",
                FIXED_ZONES.iter().map(|(z, _)| *z).collect::<Vec<_>>().join(", ")
            ))
        }
    };
    let (h, m) = zone[1..].split_once(':').unwrap_or((&zone[1..], "0"));
    match (h.parse::<i64>(), m.parse::<i64>()) {
        (Ok(h), Ok(m)) if h <= 14 && m < 60 => Ok(sign * (h * 60 + m)),
        _ => Err(format!(
            "time zone `{zone}`: expected an offset such as +08:00"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_convert_to_utc() {
        let a = parse_rfc3339_us("2026-03-02T09:15:04.250+08:00").unwrap();
        let b = parse_rfc3339_us("2026-03-02T01:15:04.250Z").unwrap();
        let c = parse_rfc3339_us("2026-03-01T20:15:04.25-05:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(b, c);
        assert_eq!(b, 1_772_414_104_250_000);
    }

    #[test]
    fn zones_and_offsets_give_minutes_east_of_utc() {
        assert_eq!(utc_offset_minutes("Asia/Shanghai"), Ok(480));
        assert_eq!(utc_offset_minutes("-05:30"), Ok(-330));
        assert_eq!(utc_offset_minutes("+01"), Ok(60));
        let e = utc_offset_minutes("Europe/Berlin").unwrap_err();
        assert!(e.contains("time zone `Europe/Berlin`"), "{e}");
        assert!(utc_offset_minutes("+25:00").is_err());
    }

    #[test]
    fn rejects_what_rfc3339_rejects() {
        for bad in [
            "2026-03-02T09:15:04",
            "2026-03-02 09:15:04Z",
            "2026-02-30T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-03-02T24:00:00Z",
            "2026-03-02T09:15:04.Z",
            "2026-03-02T09:15:04+0800",
            "2026-03-02T09:15:04+08:00 ",
            "1772414104",
            "",
        ] {
            assert!(parse_rfc3339_us(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn leap_years_and_fractions() {
        assert!(parse_rfc3339_us("2024-02-29T00:00:00Z").is_ok());
        assert!(parse_rfc3339_us("2100-02-29T00:00:00Z").is_err());
        assert_eq!(
            parse_rfc3339_us("2000-03-01T00:00:00Z").unwrap(),
            951_868_800_000_000
        );
        assert_eq!(
            parse_rfc3339_us("1969-12-31T23:59:59.5Z").unwrap(),
            -500_000
        );
        assert_eq!(
            parse_rfc3339_us("2026-01-01T00:00:00.123456789Z").unwrap() % 1_000_000,
            123_456
        );
    }
}

/// (year, month, day) of days since 1970-01-01 (inverse of [`days_from_civil`]).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Formats UTC microseconds as RFC 3339 (`2026-03-02T01:15:04.250000Z`).
///
/// ```
/// use creditguard_contract::time::{format_rfc3339_us, parse_rfc3339_us};
/// let s = format_rfc3339_us(1_772_414_104_250_000);
/// assert_eq!(s, "2026-03-02T01:15:04.250000Z");
/// assert_eq!(parse_rfc3339_us(&s), Ok(1_772_414_104_250_000));
/// ```
pub fn format_rfc3339_us(ts_us: i64) -> String {
    let secs = ts_us.div_euclid(1_000_000);
    let micros = ts_us.rem_euclid(1_000_000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// `YYYY-MM-DD` of days since the epoch (the lake's `dt=` partition value).
pub fn format_day(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Parses `YYYY-MM-DD` into days since the epoch.
pub fn parse_day(s: &str) -> Result<i64, &'static str> {
    let b = s.as_bytes();
    if b.len() != 10 {
        return Err("expected YYYY-MM-DD");
    }
    let y = i64::from(digits(b, 0, 4)?);
    expect(b, 4, b'-')?;
    let m = digits(b, 5, 2)?;
    expect(b, 7, b'-')?;
    let d = digits(b, 8, 2)?;
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return Err("no such date");
    }
    Ok(days_from_civil(y, m, d))
}

#[cfg(test)]
mod format_tests {
    use super::*;

    #[test]
    fn days_round_trip() {
        for day in [-800_000, -1, 0, 1, 20_514, 2_932_896] {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
        assert_eq!(format_day(20_514), "2026-03-02");
        assert_eq!(parse_day("2026-03-02"), Ok(20_514));
        assert!(parse_day("2026-02-29").is_err());
        assert_eq!(format_rfc3339_us(-1), "1969-12-31T23:59:59.999999Z");
    }
}

/// A UTC calendar day: the lake's partition unit and the unit of every period a command takes.
/// Displays and parses as `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(i64);

impl Day {
    /// The day `index` days after 1970-01-01.
    pub const fn from_index(index: i64) -> Day {
        Day(index)
    }

    /// Days since 1970-01-01.
    pub const fn index(self) -> i64 {
        self.0
    }

    /// The day of a microsecond timestamp.
    pub fn of_us(ts_us: i64) -> Day {
        Day(day_of_us(ts_us))
    }

    /// The day's first microsecond.
    pub fn start_us(self) -> i64 {
        self.0 * DAY_US
    }

    /// The day `n` days later (earlier when `n` is negative).
    pub fn plus(self, n: i64) -> Day {
        Day(self.0 + n)
    }
}

impl std::fmt::Display for Day {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&format_day(self.0))
    }
}

impl std::str::FromStr for Day {
    type Err = String;

    fn from_str(s: &str) -> Result<Day, String> {
        parse_day(s).map(Day).map_err(|e| format!("`{s}`: {e}"))
    }
}

/// Days `first..=last`, never empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayRange {
    first: Day,
    last: Day,
}

impl DayRange {
    /// The days from `first` to `last`, inclusive; an error naming both when `first` is after
    /// `last`.
    pub fn new(first: Day, last: Day) -> Result<DayRange, String> {
        if first > last {
            return Err(format!(
                "period {first}..{last}: the first day is after the last"
            ));
        }
        Ok(DayRange { first, last })
    }

    /// [`DayRange::new`] of two days given as days since 1970-01-01.
    pub fn of_indices(first: i64, last: i64) -> Result<DayRange, String> {
        DayRange::new(Day(first), Day(last))
    }

    /// One day.
    pub fn day(day: Day) -> DayRange {
        DayRange {
            first: day,
            last: day,
        }
    }

    pub fn first(self) -> Day {
        self.first
    }

    pub fn last(self) -> Day {
        self.last
    }

    /// The number of days (at least 1).
    pub fn len(self) -> i64 {
        self.last.0 - self.first.0 + 1
    }

    pub fn contains(self, day: Day) -> bool {
        self.first <= day && day <= self.last
    }

    /// The days in order.
    pub fn days(self) -> impl Iterator<Item = Day> {
        (self.first.0..=self.last.0).map(Day)
    }
}

impl std::fmt::Display for DayRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} .. {}", self.first, self.last)
    }
}

#[cfg(test)]
mod day_tests {
    use super::*;

    #[test]
    fn a_day_parses_displays_and_knows_its_microseconds() {
        let d: Day = "2026-03-02".parse().unwrap();
        assert_eq!(d.to_string(), "2026-03-02");
        assert_eq!(Day::of_us(d.start_us()), d);
        assert_eq!(Day::of_us(d.start_us() - 1), d.plus(-1));
        assert_eq!(d.plus(1).to_string(), "2026-03-03");
        let err = "2026-02-30".parse::<Day>().unwrap_err();
        assert!(
            err.contains("2026-02-30") && err.contains("no such date"),
            "{err}"
        );
    }

    #[test]
    fn a_range_is_inclusive_and_never_backwards() {
        let (a, b): (Day, Day) = ("2026-02-27".parse().unwrap(), "2026-03-02".parse().unwrap());
        let r = DayRange::new(a, b).unwrap();
        assert_eq!(r.len(), 4);
        assert_eq!(
            r.days().map(|d| d.to_string()).collect::<Vec<_>>(),
            ["2026-02-27", "2026-02-28", "2026-03-01", "2026-03-02"]
        );
        assert!(r.contains(a) && r.contains(b) && !r.contains(b.plus(1)));
        assert_eq!(DayRange::day(a).len(), 1);
        let err = DayRange::new(b, a).unwrap_err();
        assert!(err.contains("2026-03-02..2026-02-27"), "{err}");
    }
}
