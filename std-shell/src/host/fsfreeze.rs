//! `guest-fsfreeze-freeze`, `-freeze-list` and `-thaw` (qemu-ga's `commands-linux.c`).

use std::ffi::OsStr;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};

use qga_core::HostError;
use qga_core::host::StrList;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use super::{message, os_message};
use crate::logging::info;
use crate::sysfd::{fifreeze, fithaw};

const MOUNTINFO: &str = "/proc/self/mountinfo";

/// Undoes the octal escapes (`\040` for a space) of mountinfo fields.
fn decode_mntname(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while let Some(&b) = field.get(i) {
        if b == b'\\'
            && let Some(oct) = field.get(i + 1..i + 4)
            && oct.iter().all(|d| (b'0'..=b'7').contains(d))
        {
            let v = oct
                .iter()
                .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
            out.push(u8::try_from(v & 0xff).unwrap_or(b'?'));
            i += 4;
            continue;
        }
        out.push(b);
        i += 1;
    }
    out
}

/// A mounted filesystem on a block device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountEntry {
    /// Mount point.
    pub dir: Vec<u8>,
    /// Filesystem type.
    pub fstype: Vec<u8>,
    /// Device numbers.
    pub major: u32,
    /// Device numbers.
    pub minor: u32,
}

/// qemu-ga's `build_fs_mount_list`: filesystems on block devices (major number other than 0,
/// or btrfs on a device that exists, whose numbers are then used), in mountinfo order.
fn parse_mountinfo(text: &[u8]) -> Vec<MountEntry> {
    let mut mounts = Vec::new();
    for line in text.split(|&b| b == b'\n') {
        let mut fields = line.split(|&b| b == b' ').filter(|f| !f.is_empty());
        let (Some(_id), Some(_parent), Some(dev), Some(_root), Some(dir)) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            continue;
        };
        let mut rest = fields.skip_while(|f| *f != b"-").skip(1);
        let (Some(fstype), source) = (rest.next(), rest.next()) else {
            continue;
        };
        let mut numbers = dev.split(|&b| b == b':').map(|m| {
            std::str::from_utf8(m)
                .ok()
                .and_then(|m| m.parse::<u32>().ok())
        });
        let (Some(Some(mut major)), Some(Some(mut minor))) = (numbers.next(), numbers.next())
        else {
            continue;
        };
        if major == 0 {
            // btrfs reports major 0; use its device's numbers when the device can be found.
            let rdev = source.and_then(|s| {
                rustix::fs::stat(OsStr::from_bytes(&decode_mntname(s)))
                    .ok()
                    .filter(|st| rustix::fs::FileType::from_raw_mode(st.st_mode).is_block_device())
                    .map(|st| st.st_rdev)
            });
            match rdev {
                Some(rdev) if fstype == b"btrfs" => {
                    major = rustix::fs::major(rdev);
                    minor = rustix::fs::minor(rdev);
                }
                _ => continue,
            }
        }
        mounts.push(MountEntry {
            dir: decode_mntname(dir),
            fstype: fstype.to_vec(),
            major,
            minor,
        });
    }
    mounts
}

fn mount_list() -> Result<Vec<MountEntry>, HostError> {
    let text = std::fs::read(MOUNTINFO).map_err(|e| {
        os_message(
            &format!("failed to open {MOUNTINFO}"),
            crate::errno::errno_of(&e),
        )
    })?;
    Ok(parse_mountinfo(&text))
}

fn open_dir(dir: &[u8]) -> Result<std::os::fd::OwnedFd, Errno> {
    rustix::fs::open(
        OsStr::from_bytes(dir),
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Runs the fsfreeze hook with `freeze` or `thaw` (qemu-ga 7.2's `execute_fsfreeze_hook`).
pub fn run_hook(hook: Option<&OsStr>, arg: &str) -> Result<(), HostError> {
    let Some(hook) = hook else { return Ok(()) };
    if let Err(e) = rustix::fs::access(hook, rustix::fs::Access::EXEC_OK) {
        return Err(os_message(
            &format!("can't access fsfreeze hook '{}'", hook.to_string_lossy()),
            e.raw_os_error(),
        ));
    }
    info!("executing fsfreeze hook with arg '{arg}'");
    let status = std::process::Command::new(hook)
        .arg(arg)
        .env_remove(crate::daemon::CHILD_ENV)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .status()
        .map_err(|e| os_message("failed to create child process", crate::errno::errno_of(&e)))?;
    match status.code() {
        Some(0) => Ok(()),
        Some(code) => Err(message(
            format!("fsfreeze hook has failed with status {code}"),
            HostError::Message("fsfreeze hook has failed"),
        )),
        None if status.signal().is_some() => Err(HostError::Message(
            "fsfreeze hook has terminated abnormally",
        )),
        None => Err(HostError::Message(
            "fsfreeze hook has terminated abnormally",
        )),
    }
}

/// Freezes the mounted filesystems, last mounted first; only those in `wanted` if given.
/// Returns how many were frozen. On error, what was frozen is left for the caller to thaw.
pub fn freeze(mounts: &[MountEntry], wanted: Option<&[Vec<u8>]>) -> Result<i64, HostError> {
    let mut frozen = 0;
    for dir in mounts.iter().rev().map(|m| &m.dir) {
        if let Some(list) = wanted
            && !list.iter().any(|m| m == dir)
        {
            continue;
        }
        let shown = String::from_utf8_lossy(dir);
        let fd = open_dir(dir)
            .map_err(|e| os_message(&format!("failed to open {shown}"), e.raw_os_error()))?;
        match fifreeze(fd.as_fd()) {
            Ok(()) => frozen += 1,
            // Not freezable, or already frozen through another mount of the same filesystem.
            Err(Errno::OPNOTSUPP | Errno::BUSY) => {}
            Err(e) => {
                return Err(os_message(
                    &format!("failed to freeze {shown}"),
                    e.raw_os_error(),
                ));
            }
        }
    }
    Ok(frozen)
}

/// Thaws every mounted filesystem (each as many times as it was frozen). Returns how many
/// filesystems were thawed.
pub fn thaw() -> Result<i64, HostError> {
    let mut thawed = 0;
    for m in mount_list()? {
        let Ok(fd) = open_dir(&m.dir) else { continue };
        let mut counted = false;
        while fithaw(fd.as_fd()).is_ok() {
            if !counted {
                thawed += 1;
                counted = true;
            }
        }
    }
    Ok(thawed)
}

/// `guest-fstrim`: trims every mounted filesystem, last mounted first.
pub fn fstrim(minimum: Option<i64>, out: &mut qga_core::host::Out<'_>) -> Result<(), HostError> {
    use qga_core::types::{Bytes, GuestFilesystemTrimResponse, GuestFilesystemTrimResult};
    info!("guest-fstrim called");
    let mounts = mount_list()?;
    let minlen = minimum.unwrap_or(0);
    // Per mount point: (minimum, trimmed) or the error text.
    type Outcome = Result<(i64, i64), String>;
    let mut results: Vec<(Vec<u8>, Outcome)> = Vec::new();
    for m in &mounts {
        let outcome = match open_dir(&m.dir) {
            Err(e) => Err(format!(
                "failed to open: {}",
                crate::errno::strerror(e.raw_os_error())
            )),
            Ok(fd) => {
                let mut range = crate::sysfd::FstrimRange {
                    start: 0,
                    len: u64::MAX,
                    minlen: minlen as u64,
                };
                match crate::sysfd::fitrim(fd.as_fd(), &mut range) {
                    Ok(()) => Ok((range.minlen as i64, range.len as i64)),
                    Err(Errno::NOTTY | Errno::OPNOTSUPP) => Err("trim not supported".to_owned()),
                    Err(e) => Err(format!(
                        "failed to trim: {}",
                        crate::errno::strerror(e.raw_os_error())
                    )),
                }
            }
        };
        results.insert(0, (m.dir.clone(), outcome));
    }
    let paths: Vec<GuestFilesystemTrimResult<'_>> = results
        .iter()
        .map(|(dir, r)| GuestFilesystemTrimResult {
            minimum: r.as_ref().ok().map(|&(min, _)| min),
            path: Bytes(dir),
            trimmed: r.as_ref().ok().map(|&(_, t)| t),
            error: r.as_ref().err().map(String::as_str),
        })
        .collect();
    out.value(&GuestFilesystemTrimResponse {
        paths: paths.as_slice().into(),
    });
    Ok(())
}

/// The mount list, for [`freeze`] and `guest-get-fsinfo`.
pub fn mounts() -> Result<Vec<MountEntry>, HostError> {
    mount_list()
}

/// The `mountpoints` argument as byte strings (`None` when absent).
pub fn wanted(list: &mut StrList<'_>) -> Option<Vec<Vec<u8>>> {
    if list.is_absent() {
        return None;
    }
    let mut buf = vec![0u8; 4096];
    let mut out = Vec::new();
    while let Some(item) = list.next_into(&mut buf) {
        out.push(item.map(<[u8]>::to_vec).unwrap_or_default());
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines() {
        let text = b"22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
23 22 0:21 / /proc rw - proc proc rw\n\
24 22 8:2 / /mnt/with\\040space rw - xfs /dev/sda2 rw\n\
25 22 0:40 / /home rw - btrfs /nonexistent/device rw\n\
garbage line\n";
        let dirs: Vec<_> = parse_mountinfo(text).into_iter().map(|m| m.dir).collect();
        assert_eq!(dirs, vec![b"/".to_vec(), b"/mnt/with space".to_vec()]);
        assert_eq!(parse_mountinfo(text)[0].fstype, b"ext4");
        assert_eq!(decode_mntname(b"a\\134b\\0"), b"a\\b\\0");
    }

    #[test]
    fn hook_errors() {
        assert!(run_hook(None, "freeze").is_ok());
        match run_hook(Some(OsStr::new("/nonexistent/hook")), "thaw") {
            Err(HostError::Described) => assert_eq!(
                super::super::last_error(),
                "can't access fsfreeze hook '/nonexistent/hook': No such file or directory"
            ),
            other => panic!("{other:?}"),
        }
        assert!(run_hook(Some(OsStr::new("/bin/true")), "thaw").is_ok());
        match run_hook(Some(OsStr::new("/bin/false")), "thaw") {
            Err(HostError::Described) => assert_eq!(
                super::super::last_error(),
                "fsfreeze hook has failed with status 1"
            ),
            Err(HostError::Message(m)) => assert_eq!(m, "fsfreeze hook has failed with status 1"),
            other => panic!("{other:?}"),
        }
    }
}
