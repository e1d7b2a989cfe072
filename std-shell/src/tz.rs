//! Local time without libc: the time zone from `TZ` or `/etc/localtime`.
//!
//! Needed for the few places where qemu-ga shows local time: GLib's default log format
//! (`HH:MM:SS.mmm`), syslog's timestamp, and `guest-get-timezone`. Supports TZif files (versions
//! 1 to 4, using the 64-bit data when present and the POSIX rule in the footer for times after
//! the last transition) and POSIX `TZ` strings (`EST5EDT,M3.2.0,M11.1.0`, `<+03>-3`, `J60`,
//! `n`, times with offsets). Anything unreadable is UTC, as in glibc.

use std::sync::OnceLock;

/// The local time type in effect at some instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalInfo {
    /// Seconds east of UTC.
    pub offset: i32,
    /// The abbreviation (`CEST`, `UTC`, `+03`).
    pub abbrev: String,
    /// True during daylight saving time.
    pub is_dst: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct TimeType {
    offset: i32,
    is_dst: bool,
    abbrev: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Rule {
    std: TimeType,
    dst: Option<(TimeType, Transition, Transition)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Day {
    /// `Jn`: 1..=365, February 29 never counted.
    Julian1(u16),
    /// `n`: 0..=365.
    Julian0(u16),
    /// `Mm.w.d`.
    MonthWeek(u8, u8, u8),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Transition {
    day: Day,
    /// Local time of day in seconds (may be negative or beyond 24 h).
    time: i32,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
struct Zone {
    transitions: Vec<(i64, usize)>,
    types: Vec<TimeType>,
    footer: Option<Rule>,
}

fn utc() -> TimeType {
    TimeType {
        offset: 0,
        is_dst: false,
        abbrev: "UTC".into(),
    }
}

impl Zone {
    fn lookup(&self, t: i64) -> TimeType {
        let last = self.transitions.last();
        if let (Some(rule), Some(&(last_t, _))) = (&self.footer, last)
            && t >= last_t
        {
            return rule.lookup(t);
        }
        if self.transitions.is_empty()
            && let Some(rule) = &self.footer
        {
            return rule.lookup(t);
        }
        let idx = match self.transitions.partition_point(|&(at, _)| at <= t) {
            0 => 0,
            n => self.transitions.get(n - 1).map_or(0, |&(_, ty)| ty),
        };
        self.types.get(idx).cloned().unwrap_or_else(utc)
    }
}

const fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub const fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number: (year, month 1-12, day 1-31).
pub const fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn month_len(y: i64, m: u8) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl Day {
    /// The day number (days since the epoch) of this rule day in year `y`.
    fn in_year(self, y: i64) -> i64 {
        let jan1 = days_from_civil(y, 1, 1);
        match self {
            Day::Julian1(n) => {
                let n = i64::from(n);
                jan1 + n - 1 + i64::from(is_leap(y) && n >= 60)
            }
            Day::Julian0(n) => jan1 + i64::from(n),
            Day::MonthWeek(m, w, d) => {
                let first = days_from_civil(y, u32::from(m), 1);
                let weekday = (first + 4).rem_euclid(7); // 1970-01-01 was a Thursday
                let mut day = (i64::from(d) - weekday).rem_euclid(7) + 7 * (i64::from(w) - 1);
                while day >= month_len(y, m) {
                    day -= 7;
                }
                first + day
            }
        }
    }
}

impl Rule {
    fn lookup(&self, t: i64) -> TimeType {
        let Some((dst, start, end)) = &self.dst else {
            return self.std.clone();
        };
        let year = civil_from_days((t + i64::from(self.std.offset)).div_euclid(86_400)).0;
        let start_t =
            start.day.in_year(year) * 86_400 + i64::from(start.time) - i64::from(self.std.offset);
        let end_t = end.day.in_year(year) * 86_400 + i64::from(end.time) - i64::from(dst.offset);
        let in_dst = if start_t < end_t {
            start_t <= t && t < end_t
        } else {
            !(end_t <= t && t < start_t)
        };
        if in_dst {
            dst.clone()
        } else {
            self.std.clone()
        }
    }
}

/// A small cursor for the POSIX TZ grammar.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.0.first().copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.0 = self.0.get(1..).unwrap_or(&[]);
            true
        } else {
            false
        }
    }

    fn number(&mut self) -> Option<i32> {
        let len = self.0.iter().take_while(|b| b.is_ascii_digit()).count();
        let (digits, rest) = self.0.split_at(len);
        self.0 = rest;
        std::str::from_utf8(digits).ok()?.parse().ok()
    }

    fn name(&mut self) -> Option<String> {
        let name = if self.eat(b'<') {
            let len = self.0.iter().position(|&b| b == b'>')?;
            let (name, rest) = self.0.split_at(len);
            self.0 = rest.get(1..).unwrap_or(&[]);
            name
        } else {
            let len = self
                .0
                .iter()
                .take_while(|b| b.is_ascii_alphabetic())
                .count();
            let (name, rest) = self.0.split_at(len);
            self.0 = rest;
            name
        };
        (name.len() >= 3).then(|| String::from_utf8_lossy(name).into_owned())
    }

    /// `[+-]hh[:mm[:ss]]` in seconds.
    fn hms(&mut self) -> Option<i32> {
        let sign = if self.eat(b'-') {
            -1
        } else {
            self.eat(b'+');
            1
        };
        let mut secs = self.number()?.checked_mul(3600)?;
        if self.eat(b':') {
            secs += self.number()? * 60;
            if self.eat(b':') {
                secs += self.number()?;
            }
        }
        Some(sign * secs)
    }

    fn transition(&mut self) -> Option<Transition> {
        let day = if self.eat(b'M') {
            let m = u8::try_from(self.number()?).ok()?;
            self.eat(b'.').then_some(())?;
            let w = u8::try_from(self.number()?).ok()?;
            self.eat(b'.').then_some(())?;
            let d = u8::try_from(self.number()?).ok()?;
            ((1..=12).contains(&m) && (1..=5).contains(&w) && d <= 6).then_some(())?;
            Day::MonthWeek(m, w, d)
        } else if self.eat(b'J') {
            let n = u16::try_from(self.number()?).ok()?;
            (1..=365).contains(&n).then_some(())?;
            Day::Julian1(n)
        } else {
            let n = u16::try_from(self.number()?).ok()?;
            (n <= 365).then_some(())?;
            Day::Julian0(n)
        };
        let time = if self.eat(b'/') { self.hms()? } else { 7200 };
        Some(Transition { day, time })
    }
}

/// Parses a POSIX TZ string such as `CET-1CEST,M3.5.0,M10.5.0/3`.
fn parse_posix(s: &[u8]) -> Option<Rule> {
    let mut c = Cursor(s);
    let std_name = c.name()?;
    let std_offset = -c.hms()?;
    let std = TimeType {
        offset: std_offset,
        is_dst: false,
        abbrev: std_name,
    };
    if c.peek().is_none() {
        return Some(Rule { std, dst: None });
    }
    let dst_name = c.name()?;
    let dst_offset = match c.peek() {
        Some(b',') | None => std_offset + 3600,
        _ => -c.hms()?,
    };
    // Without rules, glibc falls back to the US rules.
    let (start, end) = if c.eat(b',') {
        let start = c.transition()?;
        c.eat(b',').then_some(())?;
        (start, c.transition()?)
    } else {
        (
            Transition {
                day: Day::MonthWeek(3, 2, 0),
                time: 7200,
            },
            Transition {
                day: Day::MonthWeek(11, 1, 0),
                time: 7200,
            },
        )
    };
    c.peek().is_none().then_some(())?;
    let dst = TimeType {
        offset: dst_offset,
        is_dst: true,
        abbrev: dst_name,
    };
    Some(Rule {
        std,
        dst: Some((dst, start, end)),
    })
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Parses a TZif file.
fn parse_tzif(data: &[u8]) -> Option<Zone> {
    let header = |at: usize| -> Option<(u8, [usize; 6])> {
        (data.get(at..at + 4)? == b"TZif").then_some(())?;
        let version = *data.get(at + 4)?;
        let mut counts = [0usize; 6];
        for (i, c) in counts.iter_mut().enumerate() {
            *c = usize::try_from(be32(data, at + 20 + 4 * i)?).ok()?;
        }
        Some((version, counts))
    };
    let block_len = |c: &[usize; 6], tsize: usize| {
        let [isut, isstd, leap, time, typ, chars] = *c;
        time * tsize + time + typ * 6 + chars + leap * (tsize + 4) + isstd + isut
    };
    let (version, counts) = header(0)?;
    let (start, counts, tsize) = if version >= b'2' {
        let second = 44 + block_len(&counts, 4);
        let (_, c2) = header(second)?;
        (second + 44, c2, 8)
    } else {
        (44, counts, 4)
    };
    let [_, _, _, timecnt, typecnt, charcnt] = counts;
    let times_at = start;
    let idx_at = times_at + timecnt * tsize;
    let types_at = idx_at + timecnt;
    let chars_at = types_at + typecnt * 6;
    let chars = data.get(chars_at..chars_at + charcnt)?;
    let mut zone = Zone::default();
    for i in 0..typecnt {
        let at = types_at + i * 6;
        let offset = i32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?);
        let is_dst = *data.get(at + 4)? != 0;
        let abbr_at = usize::from(*data.get(at + 5)?);
        let abbr = chars.get(abbr_at..).unwrap_or(&[]);
        let end = abbr.iter().position(|&b| b == 0).unwrap_or(abbr.len());
        zone.types.push(TimeType {
            offset,
            is_dst,
            abbrev: String::from_utf8_lossy(abbr.get(..end).unwrap_or(&[])).into_owned(),
        });
    }
    for i in 0..timecnt {
        let at = times_at + i * tsize;
        let t = if tsize == 8 {
            i64::from_be_bytes(data.get(at..at + 8)?.try_into().ok()?)
        } else {
            i64::from(i32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?))
        };
        let ty = usize::from(*data.get(idx_at + i)?);
        (ty < typecnt).then_some(())?;
        zone.transitions.push((t, ty));
    }
    if tsize == 8 {
        let footer_at = start + block_len(&counts, 8);
        let footer = data.get(footer_at..).unwrap_or(&[]);
        if let Some(text) = footer.strip_prefix(b"\n") {
            let end = text.iter().position(|&b| b == b'\n').unwrap_or(text.len());
            zone.footer = parse_posix(text.get(..end).unwrap_or(&[]));
        }
    }
    if zone.types.is_empty() {
        zone.types.push(utc());
    }
    Some(zone)
}

/// Loads the zone glibc would use: `TZ` (a file name or a POSIX string), else `/etc/localtime`.
fn load(tz: Option<&[u8]>) -> Zone {
    let from_file = |path: &std::path::Path| std::fs::read(path).ok().and_then(|d| parse_tzif(&d));
    let zone = match tz {
        None => from_file(std::path::Path::new("/etc/localtime")),
        Some(spec) => {
            let spec = spec.strip_prefix(b":").unwrap_or(spec);
            let name = std::ffi::OsStr::new(std::str::from_utf8(spec).unwrap_or(""));
            if spec.is_empty() {
                None
            } else if spec.starts_with(b"/") {
                from_file(std::path::Path::new(name))
            } else {
                let dir = std::env::var_os("TZDIR").unwrap_or_else(|| "/usr/share/zoneinfo".into());
                // Like glibc, never leave the zone directory.
                let file = (!spec.windows(2).any(|w| w == b".."))
                    .then(|| from_file(&std::path::Path::new(&dir).join(name)))
                    .flatten();
                file.or_else(|| {
                    parse_posix(spec).map(|rule| Zone {
                        footer: Some(rule),
                        ..Zone::default()
                    })
                })
            }
        }
    };
    zone.unwrap_or_else(|| Zone {
        types: vec![utc()],
        ..Zone::default()
    })
}

fn zone() -> &'static Zone {
    static ZONE: OnceLock<Zone> = OnceLock::new();
    ZONE.get_or_init(|| {
        use std::os::unix::ffi::OsStrExt;
        let tz = std::env::var_os("TZ");
        load(tz.as_deref().map(std::ffi::OsStr::as_bytes))
    })
}

/// The local time type at `t` (seconds since the epoch).
pub fn local_offset(t: i64) -> LocalInfo {
    let ty = zone().lookup(t);
    LocalInfo {
        offset: ty.offset,
        abbrev: ty.abbrev,
        is_dst: ty.is_dst,
    }
}

/// `Mmm dd hh:mm:ss` in local time (syslog's RFC 3164 timestamp; the day is space-padded).
pub fn syslog_timestamp(t: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let local = t.saturating_add(i64::from(local_offset(t).offset));
    let (_, m, d) = civil_from_days(local.div_euclid(86_400));
    let secs = local.rem_euclid(86_400);
    let month = usize::try_from(m.saturating_sub(1))
        .ok()
        .and_then(|i| MONTHS.get(i))
        .copied()
        .unwrap_or("Jan");
    format!(
        "{month} {d:>2} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i64, mo: u32, d: u32, h: i64) -> i64 {
        days_from_civil(y, mo, d) * 86_400 + h * 3600
    }

    #[test]
    fn civil_round_trip() {
        for z in [-800_000, -1, 0, 1, 10_957, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn posix_rules() {
        let z = load(Some(b"CET-1CEST,M3.5.0,M10.5.0/3"));
        assert_eq!(z.lookup(at(2026, 1, 15, 12)).abbrev, "CET");
        assert_eq!(z.lookup(at(2026, 7, 1, 12)).offset, 7200);
        // 2026-03-29 01:00 UTC is the switch.
        assert_eq!(z.lookup(at(2026, 3, 29, 1) - 1).offset, 3600);
        assert_eq!(z.lookup(at(2026, 3, 29, 1)).offset, 7200);
        // 2026-10-25 01:00 UTC is the switch back.
        assert_eq!(z.lookup(at(2026, 10, 25, 1) - 1).offset, 7200);
        assert_eq!(z.lookup(at(2026, 10, 25, 1)).offset, 3600);
        let z = load(Some(b"<+03>-3"));
        assert_eq!(z.lookup(0).offset, 3 * 3600);
        assert_eq!(z.lookup(0).abbrev, "+03");
        let z = load(Some(b"EST5EDT"));
        assert_eq!(z.lookup(at(2026, 7, 1, 12)).abbrev, "EDT");
        assert_eq!(z.lookup(at(2026, 12, 1, 12)).offset, -5 * 3600);
        // Southern hemisphere.
        let z = load(Some(b"AEST-10AEDT,M10.1.0,M4.1.0/3"));
        assert_eq!(z.lookup(at(2026, 1, 1, 0)).abbrev, "AEDT");
        assert_eq!(z.lookup(at(2026, 6, 1, 0)).abbrev, "AEST");
        assert_eq!(load(Some(b"")).lookup(0), utc());
        assert_eq!(load(Some(b"garbage 1 2 3")).lookup(0), utc());
    }

    #[test]
    fn tzif_file() {
        let path = std::path::Path::new("/usr/share/zoneinfo/Europe/Berlin");
        if !path.exists() {
            return;
        }
        let z = load(Some(b"Europe/Berlin"));
        assert_eq!(z.lookup(at(1995, 7, 1, 12)).abbrev, "CEST");
        assert_eq!(z.lookup(at(2026, 1, 1, 12)).offset, 3600);
        assert_eq!(z.lookup(at(2090, 7, 1, 12)).offset, 7200);
        assert!(parse_tzif(b"TZif2").is_none());
        assert!(parse_tzif(&[0u8; 100]).is_none());
    }

    #[test]
    fn syslog_format() {
        let s = syslog_timestamp(at(2026, 11, 6, 9) + 5 * 60 + 7);
        assert_eq!(s.len(), 15);
        assert!(s.contains(":05:07"));
    }
}
