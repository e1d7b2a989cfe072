//! The only `unsafe` code of the daemon, in small pieces that the safe `rustix` API cannot
//! express:
//!
//! * [`adopt`]: taking ownership of a descriptor inherited by number (systemd socket activation
//!   hands the listening socket over as fd 3; the daemonizing parent hands its channel to the
//!   child the same way).
//! * [`fifreeze`], [`fithaw`], [`fitrim`]: the filesystem ioctls, which rustix has no wrappers
//!   for (its generic `ioctl` is `unsafe` because the argument layout is the caller's promise).

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

#[cfg(test)]
mod tests {
    use super::*;

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
