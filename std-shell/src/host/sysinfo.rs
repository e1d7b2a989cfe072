//! The argument-less queries that read system information.

use std::os::unix::ffi::OsStrExt;

use qga_core::HostError;
use qga_core::host::{Out, Query};
use qga_core::types::{
    Bytes, GuestCpuStats, GuestCpuStatsType, GuestDiskStats, GuestDiskStatsInfo, GuestHostName,
    GuestLoadAverage, GuestLogicalProcessor, GuestMemoryBlock, GuestMemoryBlockInfo, GuestOSInfo,
    GuestTimezone, GuestUser,
};

use super::{message, os_message};
use crate::keyfile::KeyFile;

/// Answers `query`, or `Unsupported` for the queries this host does not implement yet.
pub fn query(query: Query, out: &mut Out<'_>) -> Result<(), HostError> {
    match query {
        Query::HostName => {
            let uts = rustix::system::uname();
            out.value(&GuestHostName {
                host_name: Bytes(uts.nodename().to_bytes()),
            });
            Ok(())
        }
        Query::Timezone => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
            let local = crate::tz::local_offset(now);
            out.value(&GuestTimezone {
                zone: Some(Bytes(local.abbrev.as_bytes())),
                offset: i64::from(local.offset),
            });
            Ok(())
        }
        Query::Load => load(out),
        Query::Osinfo => osinfo(out),
        Query::Vcpus => vcpus(out),
        Query::MemoryBlockInfo => memory_block_info(out),
        Query::Users => users(out),
        Query::NetworkInterfaces => super::net::interfaces(out),
        Query::MemoryBlocks => memory_blocks(out),
        Query::Cpustats => cpustats(out),
        Query::Diskstats => diskstats(out),
        Query::NetworkRoute => super::route::routes(out),
        Query::Disks => super::fsinfo::disks(out),
        Query::Fsinfo => super::fsinfo::fsinfo(&super::fsfreeze::mounts()?, out),
        _ => Err(HostError::Unsupported),
    }
}

/// `getloadavg()`: the first three fields of `/proc/loadavg`.
fn load(out: &mut Out<'_>) -> Result<(), HostError> {
    let text = std::fs::read_to_string("/proc/loadavg")
        .map_err(|e| os_message("cannot get load average", crate::errno::errno_of(&e)))?;
    let mut fields = text.split_ascii_whitespace().map(str::parse::<f64>);
    match (fields.next(), fields.next(), fields.next()) {
        (Some(Ok(load1m)), Some(Ok(load5m)), Some(Ok(load15m))) => {
            out.value(&GuestLoadAverage {
                load15m,
                load5m,
                load1m,
            });
            Ok(())
        }
        _ => Err(HostError::Message("cannot get load average")),
    }
}

/// qemu-ga's `ga_osrelease_replace_special`: unquote a double-quoted value (keeping unknown
/// escapes), or cut an unquoted (or single-quoted) one at the first space or semicolon.
fn osrelease_value(raw: &[u8]) -> Vec<u8> {
    let Some(body) = raw.strip_prefix(b"\"") else {
        let end = raw.iter().position(|&b| b == b' ').unwrap_or(raw.len());
        let v = raw.get(..end).unwrap_or(raw);
        let end = v.iter().position(|&b| b == b';').unwrap_or(v.len());
        return v.get(..end).unwrap_or(v).to_vec();
    };
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while let Some(&c) = body.get(i) {
        if c == b'\\' {
            if let Some(&e @ (b'$' | b'\'' | b'"' | b'\\' | b'`')) = body.get(i + 1) {
                out.push(e);
                i += 2;
                continue;
            }
        } else if c == b'"' {
            break;
        }
        out.push(c);
        i += 1;
    }
    out
}

/// Parses an os-release file as qemu-ga does: UTF-8 only, read as a key file behind an
/// `[os-release]` header.
fn parse_osrelease(path: &std::ffi::OsStr) -> Option<KeyFile> {
    let content = std::fs::read(path).ok()?;
    std::str::from_utf8(&content).ok()?;
    let mut data = b"[os-release]\n".to_vec();
    data.extend_from_slice(&content);
    KeyFile::parse(&data).ok()
}

fn osinfo(out: &mut Out<'_>) -> Result<(), HostError> {
    let uts = rustix::system::uname();
    let release = std::env::var_os("QGA_OS_RELEASE");
    let kf = match &release {
        Some(path) => parse_osrelease(path),
        None => parse_osrelease(std::ffi::OsStr::new("/etc/os-release")),
    }
    .or_else(|| parse_osrelease(std::ffi::OsStr::new("/usr/lib/os-release")));
    let get =
        |key: &str| -> Option<Vec<u8>> { kf.as_ref()?.raw("os-release", key).map(osrelease_value) };
    let (id, name, pretty, version, version_id, variant, variant_id) = (
        get("ID"),
        get("NAME"),
        get("PRETTY_NAME"),
        get("VERSION"),
        get("VERSION_ID"),
        get("VARIANT"),
        get("VARIANT_ID"),
    );
    fn b(v: &Option<Vec<u8>>) -> Option<Bytes<'_>> {
        v.as_deref().map(Bytes)
    }
    out.value(&GuestOSInfo {
        name: b(&name),
        kernel_release: Some(Bytes(uts.release().to_bytes())),
        version: b(&version),
        variant: b(&variant),
        pretty_name: b(&pretty),
        version_id: b(&version_id),
        variant_id: b(&variant_id),
        kernel_version: Some(Bytes(uts.version().to_bytes())),
        machine: Some(Bytes(uts.machine().to_bytes())),
        id: b(&id),
    });
    Ok(())
}

/// `guest-get-vcpus`: `/sys/devices/system/cpu/cpuN` in directory order.
fn vcpus(out: &mut Out<'_>) -> Result<(), HostError> {
    const DIR: &str = "/sys/devices/system/cpu";
    let entries = std::fs::read_dir(DIR).map_err(|e| {
        os_message(
            &format!("failed to list entries: {DIR}"),
            crate::errno::errno_of(&e),
        )
    })?;
    let mut any = false;
    for entry in entries.flatten() {
        let name = entry.file_name();
        // sscanf("cpu%ld"): "cpu" then an optionally signed number (trailing text ignored).
        let Some(digits) = name.as_bytes().strip_prefix(b"cpu") else {
            continue;
        };
        let len = digits.iter().take_while(|b| b.is_ascii_digit()).count();
        let Some(id) = std::str::from_utf8(digits.get(..len).unwrap_or(&[]))
            .ok()
            .and_then(|d| d.parse::<i64>().ok())
        else {
            continue;
        };
        let online_path = format!("{DIR}/cpu{id}/online");
        let (online, can_offline) = match std::fs::read(&online_path) {
            Ok(v) => match v.first() {
                Some(&c) => (c != b'0', true),
                None => {
                    return Err(message(
                        format!("pread(\"{DIR}/cpu{id}//online\"): unexpected EOF"),
                        HostError::Os(5),
                    ));
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (true, false),
            Err(e) => {
                return Err(os_message(
                    &format!("open(\"{DIR}/cpu{id}//online\")"),
                    crate::errno::errno_of(&e),
                ));
            }
        };
        any = true;
        out.item(&GuestLogicalProcessor {
            online,
            can_offline: Some(can_offline),
            logical_id: id,
        });
    }
    if any {
        Ok(())
    } else {
        Err(HostError::Message("guest reported zero VCPUs"))
    }
}

/// `guest-get-memory-block-info`: the hexadecimal `block_size_bytes`.
fn memory_block_info(out: &mut Out<'_>) -> Result<(), HostError> {
    const DIR: &str = "/sys/devices/system/memory/";
    let text = std::fs::read(format!("{DIR}block_size_bytes")).map_err(|e| {
        let errno = crate::errno::errno_of(&e);
        if std::fs::metadata(DIR).is_err() {
            os_message(&format!("open(\"{DIR}\")"), errno)
        } else {
            os_message(&format!("open(\"{DIR}/block_size_bytes\")"), errno)
        }
    })?;
    let hex: String = text
        .iter()
        .take(19)
        .take_while(|b| b.is_ascii_hexdigit())
        .map(|&b| char::from(b))
        .collect();
    let size = u64::from_str_radix(&hex, 16).unwrap_or(0);
    out.value(&GuestMemoryBlockInfo { size });
    Ok(())
}

/// `guest-get-users`: `USER_PROCESS` entries of utmp, one per user with the earliest login.
fn users(out: &mut Out<'_>) -> Result<(), HostError> {
    const RECORD: usize = 384;
    const USER_PROCESS: i16 = 7;
    let data = std::fs::read("/var/run/utmp").unwrap_or_default();
    let mut seen: Vec<(Vec<u8>, f64)> = Vec::new();
    for rec in data.chunks_exact(RECORD) {
        let field = |at: usize, len: usize| rec.get(at..at + len).unwrap_or(&[]);
        let i32_at = |at: usize| field(at, 4).try_into().map_or(0, i32::from_ne_bytes);
        let ty = field(0, 2).try_into().map_or(0, i16::from_ne_bytes);
        if ty != USER_PROCESS {
            continue;
        }
        let user = field(44, 32);
        let user = user
            .get(..user.iter().position(|&b| b == 0).unwrap_or(user.len()))
            .unwrap_or(&[])
            .to_vec();
        let login = f64::from(i32_at(340)) + f64::from(i32_at(344)) / 1_000_000.0;
        match seen.iter_mut().find(|(u, _)| *u == user) {
            Some((_, t)) => {
                if login < *t {
                    *t = login;
                }
            }
            None => seen.push((user, login)),
        }
    }
    for (user, login_time) in &seen {
        out.item(&GuestUser {
            login_time: *login_time,
            domain: None,
            user: Bytes(user),
        });
    }
    Ok(())
}

/// `guest-get-memory-blocks`: `/sys/devices/system/memory/memoryN` in directory order.
fn memory_blocks(out: &mut Out<'_>) -> Result<(), HostError> {
    const DIR: &str = "/sys/devices/system/memory/";
    let entries = match std::fs::read_dir(DIR) {
        Ok(e) => e,
        // No memory blocks in sysfs: an empty list, not an error.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(os_message(
                "Can't open directory\"/sys/devices/system/memory/\"",
                crate::errno::errno_of(&e),
            ));
        }
    };
    let mut any = false;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(digits) = name.as_bytes().strip_prefix(b"memory") else {
            continue;
        };
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        // strtoul: leading digits, 0 when none.
        let len = digits.iter().take_while(|b| b.is_ascii_digit()).count();
        let phys_index = std::str::from_utf8(digits.get(..len).unwrap_or(&[]))
            .ok()
            .and_then(|d| d.parse::<u64>().ok())
            .unwrap_or(0);
        let dir = entry.path();
        let (online, can_offline) = match std::fs::read(dir.join("state")) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (true, false),
            Err(e) => {
                return Err(os_message(
                    &format!("open(\"{DIR}memory{phys_index}//state\")"),
                    crate::errno::errno_of(&e),
                ));
            }
            Ok(state) => {
                let online = state.starts_with(b"online");
                let can_offline = match std::fs::read(dir.join("removable")) {
                    Ok(r) => r.first().is_some_and(|&c| c != b'0'),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
                    Err(e) => {
                        return Err(os_message(
                            &format!("open(\"{DIR}memory{phys_index}//removable\")"),
                            crate::errno::errno_of(&e),
                        ));
                    }
                };
                (online, can_offline)
            }
        };
        any = true;
        out.item(&GuestMemoryBlock {
            online,
            can_offline: Some(can_offline),
            phys_index,
        });
    }
    if any {
        Ok(())
    } else {
        Err(HostError::Message("guest reported zero memory blocks!"))
    }
}

/// `guest-get-cpustats`: the `cpuN` lines of `/proc/stat`, in centiseconds turned into
/// milliseconds as qemu-ga reports them (`USER_HZ` is 100 on Linux).
fn cpustats(out: &mut Out<'_>) -> Result<(), HostError> {
    const MS_PER_TICK: u64 = 10;
    let text = std::fs::read_to_string("/proc/stat")
        .map_err(|e| os_message("open(\"/proc/stat\")", crate::errno::errno_of(&e)))?;
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let Some(name) = fields.next() else { continue };
        let Some(num) = name.strip_prefix("cpu").filter(|n| !n.is_empty()) else {
            continue;
        };
        let v: Vec<u64> = fields
            .map_while(|f| f.parse::<u64>().ok())
            .take(10)
            .collect();
        if v.len() < 4 {
            break;
        }
        let at = |i: usize| v.get(i).map(|x| x.wrapping_mul(MS_PER_TICK));
        // atoi(): leading digits.
        let digits: String = num.chars().take_while(char::is_ascii_digit).collect();
        out.item(&GuestCpuStats {
            cpu: digits.parse().unwrap_or(0),
            guestnice: at(9),
            idle: at(3).unwrap_or(0),
            steal: at(7),
            iowait: at(4),
            system: at(2).unwrap_or(0),
            guest: at(8),
            nice: at(1).unwrap_or(0),
            irq: at(5),
            r#type: GuestCpuStatsType::Linux,
            user: at(0).unwrap_or(0),
            softirq: at(6),
        });
    }
    Ok(())
}

/// `guest-get-diskstats`: `/proc/diskstats`, with the fields each kernel version has.
fn diskstats(out: &mut Out<'_>) -> Result<(), HostError> {
    let text = std::fs::read_to_string("/proc/diskstats")
        .map_err(|e| os_message("open(\"/proc/diskstats\")", crate::errno::errno_of(&e)))?;
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let (Some(major), Some(minor), Some(name)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse::<u64>(), minor.parse::<u64>()) else {
            continue;
        };
        let v: Vec<u64> = fields
            .map_while(|f| f.parse::<u64>().ok())
            .take(17)
            .collect();
        let n = v.len() + 3;
        if n < 7 {
            continue;
        }
        let at = |i: usize| v.get(i).copied();
        let mut s = GuestDiskStats::default();
        if n == 7 {
            // Partitions of old kernels: reads, read sectors, writes, write sectors.
            s.read_ios = at(0);
            s.read_sectors = at(1);
            s.write_ios = at(2);
            s.write_sectors = at(3);
        }
        if n >= 14 {
            s.read_ios = at(0);
            s.read_merges = at(1);
            s.read_sectors = at(2);
            s.read_ticks = at(3);
            s.write_ios = at(4);
            s.write_merges = at(5);
            s.write_sectors = at(6);
            s.write_ticks = at(7);
            s.ios_pgr = at(8);
            s.total_ticks = at(9);
            s.weight_ticks = at(10);
        }
        if n >= 18 {
            s.discard_ios = at(11);
            s.discard_merges = at(12);
            s.discard_sectors = at(13);
            s.discard_ticks = at(14);
        }
        if n >= 20 {
            s.flush_ios = at(15);
            s.flush_ticks = at(16);
        }
        out.item(&GuestDiskStatsInfo {
            name: Bytes(name.as_bytes()),
            stats: s,
            minor,
            major,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn osrelease_quoting_like_qemu() {
        assert_eq!(
            osrelease_value(b"\"Debian GNU/Linux\""),
            b"Debian GNU/Linux"
        );
        assert_eq!(osrelease_value(b"debian"), b"debian");
        assert_eq!(osrelease_value(b"'single quoted' x"), b"'single");
        assert_eq!(osrelease_value(b"a;b c"), b"a");
        assert_eq!(
            osrelease_value(br#""Unit test \"\'\$\`\\ and \\\\ etc.""#),
            br#"Unit test "'$`\ and \\ etc."#
        );
        assert_eq!(
            osrelease_value(br#""keep \n unknown""#),
            br#"keep \n unknown"#
        );
    }
}
