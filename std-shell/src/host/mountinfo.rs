//! The mount list of qemu-ga's `build_fs_mount_list` (`commands-linux.c`): the filesystems that
//! `guest-fsfreeze-*`, `guest-fstrim` and `guest-get-fsinfo` work on.
//!
//! * `/proc/self/mountinfo` is read first. A mount is kept if its device's major number is not
//!   0, which leaves out every virtual filesystem (proc, sysfs, tmpfs, devtmpfs, cgroup, overlay,
//!   fuse, …) and every network filesystem (NFS, CIFS, 9p, Ceph: all on anonymous devices with
//!   major 0). btrfs is the exception: it reports an anonymous device too, so its source device is
//!   stat'ed and its real numbers are used when it is a block device.
//! * Only when mountinfo cannot be opened, `/proc/self/mounts` is read instead: entries whose
//!   source does not start with `/` (virtual and network filesystems) are dropped, and so are
//!   `smbfs` and `cifs`, and bind mounts (a source that is a directory).
//! * In mountinfo, a bind mount shows the same device as the mount it comes from and is kept,
//!   as in qemu-ga: freezing goes through the list backwards, so the bind mount (mounted later)
//!   freezes the filesystem and the original mount then gets EBUSY, which is not counted; a
//!   filesystem is thus counted once however many times it is mounted. `guest-fstrim` lists
//!   each mount point. (The reference notes say qemu-ga keeps only the first mount of each
//!   device; its code does not, and neither does qga.)
//! * Mount points and sources have their `\NNN` octal escapes (`\040` for a space) and `\\`
//!   decoded the way qemu-ga's `decode_mntname` does.
//!
//! The order is the file's (the order of mounting), parents before children.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use nom::bytes::complete::{tag, take_till1, take_until, take_while1};
use nom::character::complete::u32 as decimal;
use nom::{IResult, Parser};

/// `/proc/self/mountinfo`.
pub const MOUNTINFO: &str = "/proc/self/mountinfo";
/// The fallback, `/proc/self/mounts`.
pub const MTAB: &str = "/proc/self/mounts";

/// A mounted local filesystem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountEntry {
    /// Mount point (decoded).
    pub dir: Vec<u8>,
    /// Filesystem type.
    pub fstype: Vec<u8>,
    /// Device major number.
    pub major: u32,
    /// Device minor number.
    pub minor: u32,
}

/// What a source path is (qemu-ga's `dev_major_minor`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A block device with these numbers.
    Block(u32, u32),
    /// A directory: the entry is a bind mount.
    Directory,
    /// Anything else, or a path that cannot be stat'ed.
    Other,
}

/// stat(2) of a source path.
pub fn stat_source(path: &[u8]) -> Source {
    match rustix::fs::stat(OsStr::from_bytes(path)) {
        Ok(st) => {
            let ft = rustix::fs::FileType::from_raw_mode(st.st_mode);
            if ft.is_dir() {
                Source::Directory
            } else if ft.is_block_device() {
                Source::Block(rustix::fs::major(st.st_rdev), rustix::fs::minor(st.st_rdev))
            } else {
                Source::Other
            }
        }
        Err(_) => Source::Other,
    }
}

/// qemu-ga's `decode_mntname`: `\\` is a backslash, `\` followed by three octal digits (the
/// first 0 to 3) is that byte, anything else stays as it is.
pub fn decode_mntname(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while let Some(&b) = field.get(i) {
        if b == b'\\' {
            match field.get(i + 1..i + 4) {
                Some(&[d0, d1, d2])
                    if (b'0'..=b'3').contains(&d0)
                        && (b'0'..=b'7').contains(&d1)
                        && (b'0'..=b'7').contains(&d2) =>
                {
                    out.push((d0 - b'0') * 64 + (d1 - b'0') * 8 + (d2 - b'0'));
                    i += 4;
                    continue;
                }
                _ => {}
            }
            if field.get(i + 1) == Some(&b'\\') {
                out.push(b'\\');
                i += 2;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

/// The fields of a mountinfo line that qemu-ga uses, still escaped.
#[derive(Debug, PartialEq, Eq)]
struct MountinfoLine<'a> {
    major: u32,
    minor: u32,
    dir: &'a [u8],
    fstype: &'a [u8],
    source: &'a [u8],
}

fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c')
}

/// One or more blanks (scanf's whitespace directive, which the kernel's single spaces satisfy).
fn blanks(input: &[u8]) -> IResult<&[u8], &[u8]> {
    take_while1(is_blank).parse(input)
}

/// A field: one or more non-blank bytes (scanf's `%s`).
fn field(input: &[u8]) -> IResult<&[u8], &[u8]> {
    take_till1(is_blank).parse(input)
}

/// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`:
/// mount id, parent id, `major:minor`, root, mount point, options, optional fields, `-`, type,
/// source, super options. As qemu-ga's two `sscanf` calls, the line must go on after the mount
/// point and after the source, and the separator is the first ` - ` after the mount point.
fn mountinfo_line(line: &[u8]) -> IResult<&[u8], MountinfoLine<'_>> {
    let (rest, (_, _, _, _, major, _, minor, _, _root, _, dir)) = (
        decimal,
        blanks,
        decimal,
        blanks,
        decimal,
        tag(&b":"[..]),
        decimal,
        blanks,
        field,
        blanks,
        field,
    )
        .parse(line)?;
    // `%c`: something follows the mount point; then the first " - " from there on.
    let (rest, _) = (
        nom::combinator::peek(nom::bytes::complete::take(1usize)),
        take_until(&b" - "[..]),
        tag(&b" - "[..]),
    )
        .parse(rest)?;
    let (rest, (_, fstype, _, source, _)) = (
        nom::combinator::opt(blanks),
        field,
        blanks,
        field,
        nom::bytes::complete::take(1usize),
    )
        .parse(rest)?;
    Ok((
        rest,
        MountinfoLine {
            major,
            minor,
            dir,
            fstype,
            source,
        },
    ))
}

/// Parses mountinfo text; `source_of` stat's a (decoded) source path, for btrfs.
pub fn parse_mountinfo(text: &[u8], source_of: &dyn Fn(&[u8]) -> Source) -> Vec<MountEntry> {
    let mut mounts = Vec::new();
    for line in text.split(|&b| b == b'\n') {
        // getline keeps the newline, and qemu-ga's `%c` needs a byte after the source.
        let mut owned = line.to_vec();
        owned.push(b'\n');
        let Ok((_, m)) = mountinfo_line(&owned) else {
            continue;
        };
        let (mut major, mut minor) = (m.major, m.minor);
        if major == 0 {
            // btrfs reports an anonymous device: use its source's numbers.
            if m.fstype != b"btrfs" {
                continue;
            }
            match source_of(&decode_mntname(m.source)) {
                Source::Block(ma, mi) => (major, minor) = (ma, mi),
                Source::Directory | Source::Other => continue,
            }
        }
        mounts.push(MountEntry {
            dir: decode_mntname(m.dir),
            fstype: m.fstype.to_vec(),
            major,
            minor,
        });
    }
    mounts
}

/// The fields of a `/proc/self/mounts` line qemu-ga uses, still escaped.
struct MtabLine<'a> {
    fsname: &'a [u8],
    dir: &'a [u8],
    fstype: &'a [u8],
}

/// One `/proc/self/mounts` line (getmntent): source, mount point, type; blank-separated.
fn mounts_line(line: &[u8]) -> IResult<&[u8], MtabLine<'_>> {
    let (rest, (_, fsname, _, dir, _, fstype)) = (
        nom::combinator::opt(blanks),
        field,
        blanks,
        field,
        blanks,
        field,
    )
        .parse(line)?;
    Ok((
        rest,
        MtabLine {
            fsname,
            dir,
            fstype,
        },
    ))
}

/// Parses `/proc/self/mounts` text the way qemu-ga's `build_fs_mount_list_from_mtab` filters it.
pub fn parse_mounts(text: &[u8], source_of: &dyn Fn(&[u8]) -> Source) -> Vec<MountEntry> {
    let mut mounts = Vec::new();
    for line in text.split(|&b| b == b'\n') {
        if line.first() == Some(&b'#') {
            continue;
        }
        let Ok((
            _,
            MtabLine {
                fsname,
                dir,
                fstype,
            },
        )) = mounts_line(line)
        else {
            continue;
        };
        let fsname = decode_mntname(fsname);
        if fsname.first() != Some(&b'/') || fstype == b"smbfs" || fstype == b"cifs" {
            continue;
        }
        let (major, minor) = match source_of(&fsname) {
            Source::Directory => continue, // a bind mount
            Source::Block(ma, mi) => (ma, mi),
            Source::Other => (0, 0),
        };
        mounts.push(MountEntry {
            dir: decode_mntname(dir),
            fstype: fstype.to_vec(),
            major,
            minor,
        });
    }
    mounts
}

/// The mount list, or qemu-ga's error when neither file can be read.
pub fn mount_list() -> Result<Vec<MountEntry>, String> {
    if let Ok(text) = std::fs::read(MOUNTINFO) {
        return Ok(parse_mountinfo(&text, &stat_source));
    }
    match std::fs::read(MTAB) {
        Ok(text) => Ok(parse_mounts(&text, &stat_source)),
        Err(_) => Err(format!("failed to open mtab file: '{MTAB}'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stat stand-in: `/dev/vd*` and `/dev/sd*` are block devices (253:n), `/srv/*` are
    /// directories, everything else does not exist.
    fn fake_stat(path: &[u8]) -> Source {
        if let Some(rest) = path.strip_prefix(b"/dev/vd") {
            Source::Block(253, u32::from(rest.first().copied().unwrap_or(b'a') - b'a'))
        } else if path.starts_with(b"/dev/sd") {
            Source::Block(8, 1)
        } else if path.starts_with(b"/srv/") {
            Source::Directory
        } else {
            Source::Other
        }
    }

    fn dirs(mounts: &[MountEntry]) -> Vec<String> {
        mounts
            .iter()
            .map(|m| String::from_utf8_lossy(&m.dir).into_owned())
            .collect()
    }

    #[test]
    fn decode_like_qemu_ga() {
        assert_eq!(decode_mntname(b"/mnt/with\\040space"), b"/mnt/with space");
        assert_eq!(decode_mntname(b"a\\011b\\012c\\134d"), b"a\tb\nc\\d");
        assert_eq!(decode_mntname(b"back\\\\slash"), b"back\\slash");
        // Only \0xx to \3xx are escapes; a short or non-octal tail stays as it is.
        assert_eq!(decode_mntname(b"\\400\\08\\1"), b"\\400\\08\\1");
        assert_eq!(decode_mntname(b"end\\"), b"end\\");
        assert_eq!(decode_mntname(b"\\377"), [0xff]);
    }

    #[test]
    fn desktop_with_virtual_filesystems() {
        let m = parse_mountinfo(include_bytes!("fixtures/mountinfo-desktop.txt"), &fake_stat);
        assert_eq!(dirs(&m), ["/", "/boot", "/home", "/var/lib/data"]);
        assert_eq!(m[0].fstype, b"ext4");
        assert_eq!((m[0].major, m[0].minor), (253, 1));
        assert_eq!(m[1].fstype, b"vfat");
        // btrfs on an anonymous device takes its source's numbers.
        assert_eq!(m[2].fstype, b"btrfs");
        assert_eq!((m[2].major, m[2].minor), (253, 2));
        assert_eq!(m[3].fstype, b"xfs");
    }

    #[test]
    fn bind_mounts_are_kept_in_mountinfo() {
        let m = parse_mountinfo(include_bytes!("fixtures/mountinfo-bind.txt"), &fake_stat);
        // The bind mounts of /data show the same device and stay in the list, in file order.
        assert_eq!(
            dirs(&m),
            ["/", "/data", "/srv/www", "/data/sub/nested", "/export"]
        );
        assert_eq!((m[1].major, m[1].minor), (253, 16));
        assert_eq!((m[2].major, m[2].minor), (253, 16));
        assert_eq!((m[4].major, m[4].minor), (253, 16));
    }

    #[test]
    fn overlay_containers_and_network_filesystems_are_left_out() {
        let m = parse_mountinfo(include_bytes!("fixtures/mountinfo-overlay.txt"), &fake_stat);
        assert_eq!(dirs(&m), ["/var/lib/containers", "/mnt/disk"]);
    }

    #[test]
    fn escaped_names_and_odd_lines() {
        let m = parse_mountinfo(include_bytes!("fixtures/mountinfo-escapes.txt"), &fake_stat);
        assert_eq!(
            dirs(&m),
            [
                "/",
                "/mnt/with space",
                "/mnt/tab\there",
                "/mnt/back\\slash",
                "/mnt/a - b",
                "/mnt/no-super-options",
            ]
        );
        // btrfs whose source cannot be stat'ed, or is a directory, is left out.
        assert!(!dirs(&m).iter().any(|d| d.contains("btrfs")));
    }

    #[test]
    fn nested_mounts_keep_file_order() {
        let text = b"20 1 253:1 / / rw - ext4 /dev/vda rw\n\
21 20 253:2 / /a rw - ext4 /dev/vdb rw\n\
22 21 253:3 / /a/b rw - ext4 /dev/vdc rw\n\
23 22 253:4 / /a/b/c rw - ext4 /dev/vdd rw\n\
24 20 253:5 / /z rw - ext4 /dev/vde rw\n";
        let m = parse_mountinfo(text, &fake_stat);
        assert_eq!(dirs(&m), ["/", "/a", "/a/b", "/a/b/c", "/z"]);
    }

    #[test]
    fn mtab_fallback() {
        let m = parse_mounts(include_bytes!("fixtures/mounts.txt"), &fake_stat);
        // Virtual (no leading '/'), cifs, smbfs and bind mounts (source is a directory) are
        // dropped; a source that cannot be stat'ed is kept with device 0:0.
        assert_eq!(dirs(&m), ["/", "/boot", "/mnt/usb stick", "/mnt/gone"]);
        assert_eq!((m[0].major, m[0].minor), (253, 0));
        assert_eq!((m[3].major, m[3].minor), (0, 0));
    }

    #[test]
    fn hostile_input_does_not_panic() {
        for text in [
            &b""[..],
            b"\n\n\n",
            b"1",
            b"1 2 3:4",
            b"1 2 3:4 / /x",
            b"1 2 3:4 / /x rw -",
            b"1 2 3:4 / /x rw - ext4",
            b"1 2 99999999999:1 / /x rw - ext4 /dev/x rw",
            b"\\\\\\ \\0 \\ - - - -",
            b"1 2 3:4 / \\ rw - ext4 \\ rw",
        ] {
            let _ = parse_mountinfo(text, &fake_stat);
            let _ = parse_mounts(text, &fake_stat);
        }
        let long = "1 2 8:1 / /x rw ".to_owned() + &"opt:1 ".repeat(10_000) + "- ext4 /dev/sda rw";
        assert_eq!(dirs(&parse_mountinfo(long.as_bytes(), &fake_stat)), ["/x"]);
    }

    #[test]
    fn this_machine_parses() {
        // Not an assertion about the machine: the real files must parse without error.
        assert!(mount_list().is_ok());
    }
}
