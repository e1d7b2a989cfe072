//! `guest-get-time` and `guest-set-time`, without `hwclock`.
//!
//! qemu-ga runs `/sbin/hwclock -w` after setting the clock and `/sbin/hwclock -s` to set the
//! clock from the RTC, and answers "unsupported" where `hwclock` is missing (minimal images,
//! several cloud images). qga does what those two commands do itself:
//!
//! * with `time`: qemu-ga's checks and messages, `clock_settime(CLOCK_REALTIME)` (what its
//!   `settimeofday` does, with the same microsecond truncation), then the RTC is set with the
//!   `RTC_SET_TIME` ioctl at the next second boundary (`hwclock -w`). A guest without any RTC
//!   device gets its system clock set and no error: there is no hardware clock to keep in step.
//! * without `time`: the RTC is read with `RTC_RD_TIME`, on the tick of its next second (as
//!   `hwclock -s` waits for it), and the system clock is set from it. Without an RTC this is an
//!   error, as there is nothing to set the clock from.
//!
//! The RTC is `/dev/rtc0`, else `/dev/rtc`, else `/dev/misc/rtc` (`hwclock`'s list). It keeps
//! UTC unless the third line of `/etc/adjtime` says `LOCAL` (util-linux `hwclock`'s rule).

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::time::{ClockId, Timespec};

use crate::errno::strerror;
use crate::sysfd::RtcTime;

/// The RTC device nodes tried, in order.
const RTC_DEVICES: [&str; 3] = ["/dev/rtc0", "/dev/rtc", "/dev/misc/rtc"];
/// `/etc/adjtime`.
const ADJTIME: &str = "/etc/adjtime";
/// Longest wait for the RTC's next second (it ticks every second; this only bounds a broken
/// one).
const RTC_TICK_WAIT: Duration = Duration::from_millis(1500);

fn with_errno(text: &str, e: Errno) -> String {
    format!("{text}: {}", strerror(e.raw_os_error()))
}

/// `guest-get-time`: `g_get_real_time() * 1000`, microsecond resolution in nanoseconds (the value
/// always ends in `000`).
///
/// # Errors
///
/// Only for a clock beyond the range of the reply (year 292277).
pub fn get_time() -> Result<i64, String> {
    let now = rustix::time::clock_gettime(ClockId::Realtime);
    now.tv_sec
        .checked_mul(1_000_000)
        .and_then(|us| us.checked_add(now.tv_nsec / 1000))
        .and_then(|us| us.checked_mul(1000))
        .ok_or_else(|| with_errno("Failed to get time", Errno::OVERFLOW))
}

/// `guest-set-time`.
///
/// # Errors
///
/// qemu-ga's messages for the argument (`Invalid time: …`, `Failed to set time to guest: …`),
/// and clear ones for the RTC.
pub fn set_time(time: Option<i64>) -> Result<(), String> {
    let utc = rtc_is_utc(&std::fs::read(ADJTIME).unwrap_or_default());
    match time {
        Some(ns) => {
            let ts = checked_time(ns, |secs| crate::tz::local_offset(secs).offset)?;
            rustix::time::clock_settime(ClockId::Realtime, ts)
                .map_err(|e| with_errno("Failed to set time to guest", e))?;
            match open_rtc() {
                Ok((path, fd)) => write_rtc(path, &fd, utc),
                // No RTC at all: the system clock is set, there is nothing else to keep in step.
                Err(None) => Ok(()),
                Err(Some((path, e))) => Err(with_errno(
                    &format!("failed to set the hardware clock: cannot open {path}"),
                    e,
                )),
            }
        }
        None => {
            let (path, fd) = open_rtc().map_err(|e| match e {
                None => format!(
                    "cannot set the time from the hardware clock: no RTC device ({})",
                    RTC_DEVICES.join(", ")
                ),
                Some((path, e)) => with_errno(
                    &format!("failed to read the hardware clock: cannot open {path}"),
                    e,
                ),
            })?;
            let rtc = read_rtc_on_tick(&fd)
                .map_err(|e| with_errno(&format!("failed to read the hardware clock {path}"), e))?;
            let secs = rtc_to_unix(&rtc, utc).ok_or_else(|| {
                format!("the hardware clock {path} holds an invalid time: {rtc:?}")
            })?;
            rustix::time::clock_settime(
                ClockId::Realtime,
                Timespec {
                    tv_sec: secs,
                    tv_nsec: 0,
                },
            )
            .map_err(|e| with_errno("Failed to set time to guest", e))
        }
    }
}

/// qemu-ga's checks of `time` (nanoseconds): it must give a time_t (always, with a 64-bit
/// time_t), and its local calendar year must be in 1970..2070 (`g_date_set_time_t`), else
/// `Invalid time: <strerror(errno)>` with whatever errno held (0 here). The value is truncated
/// to microseconds (`settimeofday`).
fn checked_time(ns: i64, local_offset: impl Fn(i64) -> i32) -> Result<Timespec, String> {
    let secs = ns / 1_000_000_000;
    let usecs = (ns % 1_000_000_000) / 1000;
    let local = secs.saturating_add(i64::from(local_offset(secs)));
    let (year, _, _) = crate::tz::civil_from_days(local.div_euclid(86_400));
    if !(1970..2070).contains(&year) {
        return Err(format!("Invalid time: {}", strerror(0)));
    }
    Ok(Timespec {
        tv_sec: secs,
        tv_nsec: usecs * 1000,
    })
}

/// The first RTC device that opens. `Err(None)`: none exists; `Err(Some(..))`: one exists but
/// cannot be opened.
fn open_rtc() -> Result<(&'static str, OwnedFd), Option<(&'static str, Errno)>> {
    let mut first_err = None;
    for path in RTC_DEVICES {
        match rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) {
            Ok(fd) => return Ok((path, fd)),
            Err(Errno::NOENT | Errno::NODEV | Errno::NXIO) => {}
            Err(e) => {
                first_err.get_or_insert((path, e));
            }
        }
    }
    Err(first_err)
}

/// `hwclock -w`: waits for the next second of the (just set) system clock and writes it.
fn write_rtc(path: &str, fd: &OwnedFd, utc: bool) -> Result<(), String> {
    let now = rustix::time::clock_gettime(ClockId::Realtime);
    let to_next = 1_000_000_000 - now.tv_nsec;
    std::thread::sleep(Duration::from_nanos(u64::try_from(to_next).unwrap_or(0)));
    let secs = rustix::time::clock_gettime(ClockId::Realtime).tv_sec;
    let shown = if utc {
        secs
    } else {
        secs.saturating_add(i64::from(crate::tz::local_offset(secs).offset))
    };
    let tm = unix_to_rtc(shown)
        .ok_or_else(|| format!("the time cannot be stored in the hardware clock {path}"))?;
    crate::sysfd::rtc_set_time(fd.as_fd(), tm)
        .map_err(|e| with_errno(&format!("failed to set the hardware clock {path}"), e))
}

/// Reads the RTC right after its seconds change (`hwclock -s` does the same), so the system
/// clock lands within a few milliseconds instead of up to a second behind.
fn read_rtc_on_tick(fd: &OwnedFd) -> Result<RtcTime, Errno> {
    let first = crate::sysfd::rtc_read_time(fd.as_fd())?;
    let start = Instant::now();
    while start.elapsed() < RTC_TICK_WAIT {
        std::thread::sleep(Duration::from_millis(5));
        let now = crate::sysfd::rtc_read_time(fd.as_fd())?;
        if now.tm_sec != first.tm_sec {
            return Ok(now);
        }
    }
    Ok(first)
}

/// util-linux `hwclock`: the RTC keeps UTC unless `/etc/adjtime`'s third line is `LOCAL`.
fn rtc_is_utc(adjtime: &[u8]) -> bool {
    adjtime
        .split(|&b| b == b'\n')
        .nth(2)
        .is_none_or(|line| line.trim_ascii() != b"LOCAL")
}

/// Seconds since the epoch → broken-down RTC time (UTC rules applied to `secs` as given).
fn unix_to_rtc(secs: i64) -> Option<RtcTime> {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = crate::tz::civil_from_days(days);
    Some(RtcTime {
        tm_sec: i32::try_from(rem % 60).ok()?,
        tm_min: i32::try_from(rem / 60 % 60).ok()?,
        tm_hour: i32::try_from(rem / 3600).ok()?,
        tm_mday: i32::try_from(d).ok()?,
        tm_mon: i32::try_from(m).ok()? - 1,
        tm_year: i32::try_from(y - 1900).ok()?,
        tm_wday: i32::try_from((days + 4).rem_euclid(7)).ok()?,
        tm_yday: i32::try_from(days - crate::tz::days_from_civil(y, 1, 1)).ok()?,
        tm_isdst: 0,
    })
}

/// Broken-down RTC time → seconds since the epoch; a local-time RTC is converted with the
/// offset in force at that local time.
fn rtc_to_unix(tm: &RtcTime, utc: bool) -> Option<i64> {
    let month = u32::try_from(tm.tm_mon.checked_add(1)?).ok()?;
    let day = u32::try_from(tm.tm_mday).ok()?;
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || !(0..24).contains(&tm.tm_hour)
        || !(0..60).contains(&tm.tm_min)
        || !(0..61).contains(&tm.tm_sec)
    {
        return None;
    }
    let days = crate::tz::days_from_civil(i64::from(tm.tm_year) + 1900, month, day);
    let wall = days * 86_400
        + i64::from(tm.tm_hour) * 3600
        + i64::from(tm.tm_min) * 60
        + i64::from(tm.tm_sec);
    if utc {
        return Some(wall);
    }
    // The offset at (wall - offset), found in two steps (exact except inside a DST change).
    let guess = wall - i64::from(crate::tz::local_offset(wall).offset);
    Some(wall - i64::from(crate::tz::local_offset(guess).offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_time_has_microsecond_resolution() {
        let t = get_time().unwrap();
        assert_eq!(t % 1000, 0);
        assert!(t > 1_600_000_000_000_000_000);
    }

    #[test]
    fn qemu_ga_argument_checks() {
        let utc = |_| 0;
        let ts = checked_time(1_700_000_000_123_456_789, utc).unwrap();
        assert_eq!((ts.tv_sec, ts.tv_nsec), (1_700_000_000, 123_456_000));
        assert_eq!(checked_time(1, utc).unwrap().tv_sec, 0);
        // Year 2070 and later, or before 1970 in local time.
        assert_eq!(
            checked_time(3_155_760_000_000_000_000, utc),
            Err("Invalid time: Success".into())
        );
        assert_eq!(
            checked_time(-1_000_000_000, utc),
            Err("Invalid time: Success".into())
        );
        // 1970-01-01 00:30 UTC is still 1969 one hour west of Greenwich.
        assert!(checked_time(1_800_000_000_000, |_| -3600).is_err());
        assert!(checked_time(i64::MAX, utc).is_err());
        assert!(checked_time(i64::MIN, utc).is_err());
        // A negative sub-second part is passed on (settimeofday then answers EINVAL, as for
        // qemu-ga) only when the year check passes; it cannot for negative times.
        assert_eq!(checked_time(999, utc).unwrap().tv_nsec, 0);
    }

    #[test]
    fn rtc_conversions_round_trip() {
        for secs in [0, 951_782_400, 1_700_000_000, 4_102_444_799, 2_145_916_800] {
            let tm = unix_to_rtc(secs).unwrap();
            assert_eq!(rtc_to_unix(&tm, true), Some(secs), "{tm:?}");
        }
        let tm = unix_to_rtc(1_700_000_000).unwrap();
        // 2023-11-14 22:13:20 UTC, a Tuesday, day 317 of the year.
        assert_eq!(
            tm,
            RtcTime {
                tm_sec: 20,
                tm_min: 13,
                tm_hour: 22,
                tm_mday: 14,
                tm_mon: 10,
                tm_year: 123,
                tm_wday: 2,
                tm_yday: 317,
                tm_isdst: 0
            }
        );
        let bad = RtcTime { tm_mon: 12, ..tm };
        assert_eq!(rtc_to_unix(&bad, true), None);
        let bad = RtcTime { tm_mday: 0, ..tm };
        assert_eq!(rtc_to_unix(&bad, true), None);
    }

    #[test]
    fn adjtime_local_or_utc() {
        assert!(rtc_is_utc(b""));
        assert!(rtc_is_utc(b"0.0 0 0.0\n0\nUTC\n"));
        assert!(!rtc_is_utc(b"0.0 0 0.0\n0\nLOCAL\n"));
        assert!(rtc_is_utc(b"0.0 0 0.0\n0\n"));
    }
}
