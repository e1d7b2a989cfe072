//! The only `unsafe` code of the daemon, in small pieces that the safe `rustix` API cannot
//! express:
//!
//! * [`adopt`]: taking ownership of a descriptor inherited by number (systemd socket activation
//!   hands the listening socket over as fd 3; the daemonizing parent hands its channel to the
//!   child the same way).
//! * [`fifreeze`], [`fithaw`], [`fitrim`]: the filesystem ioctls, which rustix has no wrappers
//!   for (its generic `ioctl` is `unsafe` because the argument layout is the caller's promise).
//! * [`rtc_read_time`], [`rtc_set_time`]: the RTC ioctls (what `hwclock -s` and `hwclock -w`
//!   use), for the same reason.
//! * [`systemd_signal`]: the real-time signal numbers systemd (PID 1) understands, which rustix
//!   only builds through an `unsafe` constructor (some real-time numbers are reserved by the libc
//!   of the *calling* process).

use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};

use rustix::io::{FdFlags, fcntl_getfd, fcntl_setfd};

/// Takes ownership of the inherited descriptor `raw` and marks it close-on-exec (qemu's
/// `check_socket_activation` does the same, so children such as `guest-exec` programs do not
/// inherit it).
///
/// The caller must only pass a number that was handed to this process on purpose (fd 3 with
/// `LISTEN_PID` equal to our pid, or the number our own parent put in the environment) and must
/// do so once.
///
/// # Errors
///
/// EBADF (or another error of `fcntl`) when nothing is open under that number.
#[allow(unsafe_code)]
pub fn adopt(raw: RawFd) -> std::io::Result<OwnedFd> {
    if raw < 0 {
        return Err(std::io::Error::from_raw_os_error(9));
    }
    // SAFETY: the borrow lives only for these two calls; `fcntl` on a number that is not open
    // fails with EBADF and touches nothing.
    let borrowed = unsafe { BorrowedFd::borrow_raw(raw) };
    let flags = fcntl_getfd(borrowed)?;
    fcntl_setfd(borrowed, flags | FdFlags::CLOEXEC)?;
    // SAFETY: the descriptor is open (checked above) and, by the caller's contract, was handed to
    // this process on purpose and is owned by nothing else in it, so making it an `OwnedFd` (and
    // closing it on drop) cannot close a descriptor another owner uses.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// `_IOWR('X', 119, int)`: `FIFREEZE`.
const FIFREEZE: rustix::ioctl::Opcode = rustix::ioctl::opcode::read_write::<i32>(b'X', 119);
/// `_IOWR('X', 120, int)`: `FITHAW`.
const FITHAW: rustix::ioctl::Opcode = rustix::ioctl::opcode::read_write::<i32>(b'X', 120);

/// `ioctl(fd, FIFREEZE)` on a directory of the filesystem to freeze.
///
/// # Errors
///
/// The kernel's errno (EBUSY: already frozen; EOPNOTSUPP: the filesystem cannot freeze).
#[allow(unsafe_code)]
pub fn fifreeze(fd: BorrowedFd<'_>) -> rustix::io::Result<()> {
    // SAFETY: FIFREEZE takes no argument the kernel reads or writes (the `int` in its encoding
    // is never dereferenced), so passing none is sound; `fd` is a valid borrowed descriptor.
    unsafe { rustix::ioctl::ioctl(fd, rustix::ioctl::NoArg::<FIFREEZE>::new()) }
}

/// `ioctl(fd, FITHAW)`: the counterpart of [`fifreeze`].
///
/// # Errors
///
/// The kernel's errno (EINVAL: not frozen).
#[allow(unsafe_code)]
pub fn fithaw(fd: BorrowedFd<'_>) -> rustix::io::Result<()> {
    // SAFETY: as for FIFREEZE, FITHAW reads and writes no argument memory.
    unsafe { rustix::ioctl::ioctl(fd, rustix::ioctl::NoArg::<FITHAW>::new()) }
}

/// Linux's `struct fstrim_range`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FstrimRange {
    /// First byte to consider.
    pub start: u64,
    /// Bytes to consider; on return, bytes trimmed.
    pub len: u64,
    /// Smallest free extent to trim.
    pub minlen: u64,
}

/// `_IOWR('X', 121, struct fstrim_range)`: `FITRIM`.
const FITRIM: rustix::ioctl::Opcode = rustix::ioctl::opcode::read_write::<FstrimRange>(b'X', 121);

/// `ioctl(fd, FITRIM, range)`: discards unused blocks; `range.len` becomes the bytes trimmed.
///
/// # Errors
///
/// The kernel's errno (ENOTTY or EOPNOTSUPP: not supported by the filesystem).
#[allow(unsafe_code)]
pub fn fitrim(fd: BorrowedFd<'_>, range: &mut FstrimRange) -> rustix::io::Result<()> {
    // SAFETY: FITRIM reads and writes exactly one `struct fstrim_range`, which `FstrimRange`
    // mirrors (`#[repr(C)]`, three u64); the opcode encodes that size, and `range` is a valid,
    // exclusive reference for the duration of the call.
    unsafe {
        rustix::ioctl::ioctl(
            fd,
            rustix::ioctl::Updater::<FITRIM, FstrimRange>::new(range),
        )
    }
}

/// Linux's `struct rtc_time` (the first nine fields of `struct tm`): UTC or local broken-down
/// time, `tm_year` counted from 1900, `tm_mon` from 0.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RtcTime {
    /// Seconds, 0-59.
    pub tm_sec: i32,
    /// Minutes, 0-59.
    pub tm_min: i32,
    /// Hours, 0-23.
    pub tm_hour: i32,
    /// Day of the month, 1-31.
    pub tm_mday: i32,
    /// Month, 0-11.
    pub tm_mon: i32,
    /// Years since 1900.
    pub tm_year: i32,
    /// Day of the week (unused by the kernel).
    pub tm_wday: i32,
    /// Day of the year (unused by the kernel).
    pub tm_yday: i32,
    /// Unused.
    pub tm_isdst: i32,
}

/// `_IOR('p', 0x09, struct rtc_time)`: `RTC_RD_TIME`.
const RTC_RD_TIME: rustix::ioctl::Opcode = rustix::ioctl::opcode::read::<RtcTime>(b'p', 0x09);
/// `_IOW('p', 0x0a, struct rtc_time)`: `RTC_SET_TIME`.
const RTC_SET_TIME: rustix::ioctl::Opcode = rustix::ioctl::opcode::write::<RtcTime>(b'p', 0x0a);

/// `ioctl(fd, RTC_RD_TIME)` on an RTC device (`/dev/rtc0`).
///
/// # Errors
///
/// The kernel's errno (EINVAL: the RTC holds no valid time; ENOTTY: not an RTC).
#[allow(unsafe_code)]
pub fn rtc_read_time(fd: BorrowedFd<'_>) -> rustix::io::Result<RtcTime> {
    // SAFETY: RTC_RD_TIME writes exactly one `struct rtc_time`, which `RtcTime` mirrors
    // (`#[repr(C)]`, nine `int`s); the opcode encodes that size and the getter provides the
    // memory.
    unsafe { rustix::ioctl::ioctl(fd, rustix::ioctl::Getter::<RTC_RD_TIME, RtcTime>::new()) }
}

/// `ioctl(fd, RTC_SET_TIME, time)`.
///
/// # Errors
///
/// The kernel's errno (EINVAL: a time the RTC cannot hold; EACCES/EPERM: no CAP_SYS_TIME).
#[allow(unsafe_code)]
pub fn rtc_set_time(fd: BorrowedFd<'_>, time: RtcTime) -> rustix::io::Result<()> {
    // SAFETY: RTC_SET_TIME reads exactly one `struct rtc_time` from the pointer, which the
    // setter passes to a `RtcTime` it owns for the duration of the call.
    unsafe {
        rustix::ioctl::ioctl(
            fd,
            rustix::ioctl::Setter::<RTC_SET_TIME, RtcTime>::new(time),
        )
    }
}

/// glibc's `SIGRTMIN` (34), the base systemd's signal numbers are counted from (systemd is built
/// against glibc; musl's `SIGRTMIN` is 35, which does not matter here: the number is what PID 1
/// listens to, not what this process would use).
const GLIBC_SIGRTMIN: i32 = 34;

/// `SIGRTMIN+offset` as systemd (PID 1) reads it: +3 halt, +4 power-off, +5 reboot
/// (systemd(1), "Signals"). `None` for other offsets.
#[allow(unsafe_code)]
pub fn systemd_signal(offset: i32) -> Option<rustix::process::Signal> {
    if !(3..=5).contains(&offset) {
        return None;
    }
    let raw = GLIBC_SIGRTMIN + offset;
    // SAFETY: 37 to 39 are not among the numbers glibc (32, 33) or musl (32 to 34) reserve for
    // themselves, and the signal is only ever *sent* (to PID 1), never blocked, caught or
    // consumed by this process, which is what the constructor's contract is about.
    Some(unsafe { rustix::process::Signal::from_raw_unchecked(raw) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtc_ioctl_numbers() {
        // <linux/rtc.h> on x86_64 and the other generic-encoding architectures.
        assert_eq!(RTC_RD_TIME, 0x8024_7009);
        assert_eq!(RTC_SET_TIME, 0x4024_700a);
        assert_eq!(std::mem::size_of::<RtcTime>(), 36);
    }

    #[test]
    fn systemd_signal_numbers() {
        assert_eq!(systemd_signal(3).map(|s| s.as_raw()), Some(37));
        assert_eq!(systemd_signal(4).map(|s| s.as_raw()), Some(38));
        assert_eq!(systemd_signal(5).map(|s| s.as_raw()), Some(39));
        assert!(systemd_signal(0).is_none());
        assert!(systemd_signal(6).is_none());
    }

    #[test]
    fn fs_ioctl_numbers() {
        // The values of <linux/fs.h> on every architecture with the generic ioctl encoding.
        assert_eq!(FIFREEZE, 0xC004_5877);
        assert_eq!(FITHAW, 0xC004_5878);
        assert_eq!(FITRIM, 0xC018_5879);
    }

    #[test]
    fn adopt_rejects_closed_numbers() {
        assert!(adopt(-1).is_err());
        assert!(adopt(1 << 20).is_err());
    }
}
