//! `guest-get-fsinfo` (qemu-ga's `build_guest_fsinfo`), for the common controllers.
//!
//! Mounted block-device filesystems (the same list fsfreeze uses), last mounted first. The
//! device is followed through sysfs: device-mapper and md devices through their `slaves`, real
//! devices to their controller. Addresses are worked out for virtio-blk and virtio-scsi (PCI
//! and non-PCI), NVMe and USB controllers; other controllers (IDE, AHCI, SYM53C8xx, CCW) are
//! reported with bus type `unknown` when the device node or serial is known, as qemu-ga does
//! for controllers it does not recognise. The serial comes from udev's database when present.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use qga_core::HostError;
use qga_core::host::Out;
use qga_core::types::{
    Bytes, GuestDiskAddress, GuestDiskBusType, GuestDiskInfo, GuestFilesystemInfo, GuestPCIAddress,
};

struct Disk {
    bus_type: GuestDiskBusType,
    pci: GuestPCIAddress,
    bus: i64,
    target: i64,
    unit: i64,
    dev: Option<Vec<u8>>,
    serial: Option<Vec<u8>>,
}

/// `sscanf("%x:%x:%x.%x")` at the start of `s`: a PCI address, and its length.
fn pci_address(s: &str) -> Option<([i64; 4], usize)> {
    let end = s.find('/').unwrap_or(s.len());
    let text = s.get(..end)?;
    let (dom, rest) = text.split_once(':')?;
    let (bus, rest) = rest.split_once(':')?;
    let (slot, func) = rest.split_once('.')?;
    let hex = |t: &str| i64::from_str_radix(t, 16).ok();
    Some(([hex(dom)?, hex(bus)?, hex(slot)?, hex(func)?], end))
}

/// `target*:*:*/*:<bus>:<target>:<unit>` of a SCSI device path.
fn scsi_target(syspath: &str) -> Option<[i64; 3]> {
    let p = syspath.find("/target")?;
    let after = syspath.get(p + 7..)?;
    let (_, rest) = after.split_once('/')?;
    let mut it = rest
        .split(['/', ':'])
        .skip(1)
        .map(|f| f.parse::<i64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

fn driver_of(dir: &str) -> Option<String> {
    let link = std::fs::read_link(format!("{dir}/driver")).ok()?;
    Some(link.file_name()?.to_string_lossy().into_owned())
}

/// Fills in the controller part of `disk`; false if the device is not understood.
fn real_device_address(syspath: &str, disk: &mut Disk) -> bool {
    let target = scsi_target(syspath);
    if let Some(p) = syspath.find("/devices/pci") {
        // "/devices/pci0000:00/0000:00:02.0/...": skip the root bridge, then walk the PCI path
        // until a known storage driver.
        let Some(rest) = syspath.get(p + 12..) else {
            return false;
        };
        let Some(slash) = rest.find('/') else {
            return false;
        };
        let mut pos = p + 12 + slash;
        let Some((mut addr, len)) = syspath.get(pos + 1..).and_then(pci_address) else {
            return false;
        };
        pos += 1 + len;
        let driver = loop {
            let dir = syspath.get(..pos).unwrap_or("");
            if let Some(d) = driver_of(dir).filter(|d| {
                matches!(
                    d.as_str(),
                    "ata_piix"
                        | "sym53c8xx"
                        | "virtio-pci"
                        | "ahci"
                        | "nvme"
                        | "xhci_hcd"
                        | "ehci-pci"
                )
            }) {
                break d;
            }
            match syspath.get(pos + 1..).and_then(pci_address) {
                Some((a, len)) if syspath.get(pos..pos + 1) == Some("/") => {
                    addr = a;
                    pos += 1 + len;
                }
                _ => return false,
            }
        };
        disk.pci = GuestPCIAddress {
            bus: addr[1],
            slot: addr[2],
            domain: addr[0],
            function: addr[3],
        };
        match driver.as_str() {
            "virtio-pci" => match target {
                Some([bus, tgt, unit]) => {
                    disk.bus_type = GuestDiskBusType::Scsi;
                    (disk.bus, disk.target, disk.unit) = (bus, tgt, unit);
                }
                None => disk.bus_type = GuestDiskBusType::Virtio,
            },
            "nvme" => disk.bus_type = GuestDiskBusType::Nvme,
            "xhci_hcd" | "ehci-pci" => disk.bus_type = GuestDiskBusType::Usb,
            _ => return false,
        }
        true
    } else if syspath.contains("/virtio") && syspath.contains("/block") {
        match target {
            Some([bus, tgt, unit]) => {
                disk.bus_type = GuestDiskBusType::Scsi;
                (disk.bus, disk.target, disk.unit) = (bus, tgt, unit);
            }
            None => disk.bus_type = GuestDiskBusType::Virtio,
        }
        true
    } else {
        false
    }
}

/// The device node (from `uevent`'s DEVNAME) and udev's `ID_SERIAL` of a block device.
fn node_and_serial(syspath: &Path) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let uevent = std::fs::read(syspath.join("uevent")).unwrap_or_default();
    let field = |text: &[u8], key: &[u8]| -> Option<Vec<u8>> {
        text.split(|&b| b == b'\n')
            .find_map(|l| l.strip_prefix(key))
            .map(<[u8]>::to_vec)
    };
    let dev = field(&uevent, b"DEVNAME=").map(|n| [b"/dev/".as_slice(), &n].concat());
    let serial = std::fs::read_to_string(syspath.join("dev"))
        .ok()
        .and_then(|d| std::fs::read(format!("/run/udev/data/b{}", d.trim())).ok())
        .and_then(|db| field(&db, b"E:ID_SERIAL="))
        .filter(|s| !s.is_empty());
    (dev, serial)
}

fn collect_disks(syspath: &Path, disks: &mut Vec<Disk>, depth: u32) {
    let text = syspath.to_string_lossy();
    if text.contains("/devices/virtual/block/") {
        if depth > 16 {
            return;
        }
        let Ok(slaves) = std::fs::read_dir(syspath.join("slaves")) else {
            return;
        };
        for slave in slaves.flatten() {
            if let Ok(real) = std::fs::canonicalize(slave.path()) {
                collect_disks(&real, disks, depth + 1);
            }
        }
        return;
    }
    let (dev, serial) = node_and_serial(syspath);
    let mut disk = Disk {
        bus_type: GuestDiskBusType::Unknown,
        pci: GuestPCIAddress {
            bus: -1,
            slot: -1,
            domain: -1,
            function: -1,
        },
        bus: 0,
        target: 0,
        unit: 0,
        dev,
        serial,
    };
    let known = real_device_address(&text, &mut disk);
    if known || disk.dev.is_some() || disk.serial.is_some() {
        disks.insert(0, disk);
    }
}

/// `guest-get-fsinfo`.
pub fn fsinfo(mounts: &[super::fsfreeze::MountEntry], out: &mut Out<'_>) -> Result<(), HostError> {
    for m in mounts.iter().rev() {
        let devpath = format!("/sys/dev/block/{}:{}", m.major, m.minor);
        let syspath = std::fs::canonicalize(&devpath).map_err(|e| {
            super::os_message(
                &format!("realpath(\"{devpath}\")"),
                crate::errno::errno_of(&e),
            )
        })?;
        let name = syspath
            .file_name()
            .map(|n| n.as_bytes().to_vec())
            .unwrap_or_default();
        let mut disks = Vec::new();
        collect_disks(&syspath, &mut disks, 0);
        let addresses: Vec<GuestDiskAddress<'_>> = disks
            .iter()
            .map(|d| GuestDiskAddress {
                ccw_address: None,
                serial: d.serial.as_deref().map(Bytes),
                bus_type: d.bus_type,
                bus: d.bus,
                unit: d.unit,
                pci_controller: d.pci,
                dev: d.dev.as_deref().map(Bytes),
                target: d.target,
            })
            .collect();
        let sizes = rustix::fs::statvfs(std::ffi::OsStr::from_bytes(&m.dir))
            .ok()
            .map(|s| {
                let used = s.f_blocks.saturating_sub(s.f_bfree);
                (
                    used.saturating_add(s.f_bavail).saturating_mul(s.f_frsize),
                    used.saturating_mul(s.f_frsize),
                )
            });
        out.item(&GuestFilesystemInfo {
            name: Bytes(&name),
            total_bytes: sizes.map(|s| s.0),
            // qemu-ga 7.2 has no total-bytes-privileged.
            total_bytes_privileged: None,
            mountpoint: Bytes(&m.dir),
            disk: addresses.as_slice().into(),
            used_bytes: sizes.map(|s| s.1),
            r#type: Bytes(&m.fstype),
        });
    }
    Ok(())
}

/// The device node of a sysfs block directory (`/dev/` + DEVNAME).
fn devnode(dir: &Path) -> Option<Vec<u8>> {
    node_and_serial(dir).0
}

/// The udev `DM_NAME` of a block device (device-mapper volumes).
fn dm_alias(dir: &Path) -> Option<Vec<u8>> {
    let dev = std::fs::read_to_string(dir.join("dev")).ok()?;
    let db = std::fs::read(format!("/run/udev/data/b{}", dev.trim())).ok()?;
    db.split(|&b| b == b'\n')
        .find_map(|l| l.strip_prefix(b"E:DM_NAME=".as_slice()))
        .map(<[u8]>::to_vec)
}

struct DiskEntry {
    name: Vec<u8>,
    partition: bool,
    deps: Vec<Vec<u8>>,
    address: Option<Disk>,
    alias: Option<Vec<u8>>,
}

/// `guest-get-disks`: every non-empty disk of `/sys/block` with its partitions, last found
/// first (qemu-ga prepends).
pub fn disks(out: &mut Out<'_>) -> Result<(), HostError> {
    let entries = std::fs::read_dir("/sys/block").map_err(|e| {
        super::os_message(
            "Can't open directory \"/sys/block\"",
            crate::errno::errno_of(&e),
        )
    })?;
    let mut list: Vec<DiskEntry> = Vec::new();
    for entry in entries.flatten() {
        if !entry.file_type().is_ok_and(|t| t.is_symlink()) {
            continue;
        }
        let disk_name = entry.file_name();
        let dir = Path::new("/sys/block").join(&disk_name);
        match std::fs::read(dir.join("size")) {
            Ok(size) if size != b"0\n" => {}
            _ => continue,
        }
        let Some(dev) = devnode(&dir) else { continue };
        let real = std::fs::canonicalize(&dir).ok();
        let is_virtual = real
            .as_ref()
            .is_none_or(|r| r.to_string_lossy().contains("/devices/virtual/"));
        let address = if is_virtual {
            None
        } else {
            real.as_ref().and_then(|r| {
                let mut disks = Vec::new();
                collect_disks(r, &mut disks, 0);
                disks.into_iter().next()
            })
        };
        let mut deps: Vec<Vec<u8>> = std::fs::read_dir(dir.join("slaves"))
            .map(|d| {
                d.flatten()
                    .map(|s| [b"/dev/".as_slice(), s.file_name().as_bytes()].concat())
                    .collect()
            })
            .unwrap_or_default();
        deps.reverse();
        list.insert(
            0,
            DiskEntry {
                name: dev.clone(),
                partition: false,
                deps,
                address,
                alias: dm_alias(&dir),
            },
        );
        // Partitions: subdirectories named <disk><digit> or <disk>p<digit>.
        let base = disk_name.as_bytes();
        if let Ok(parts) = std::fs::read_dir(&dir) {
            for part in parts.flatten() {
                let pname = part.file_name();
                let rest = pname.as_bytes().strip_prefix(base).unwrap_or(&[]);
                let numbered = match rest {
                    [d, ..] if d.is_ascii_digit() => true,
                    [b'p', d, ..] if d.is_ascii_digit() => true,
                    _ => false,
                };
                if !numbered || !part.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                let Some(pdev) = devnode(&part.path()) else {
                    continue;
                };
                list.insert(
                    0,
                    DiskEntry {
                        name: pdev,
                        partition: true,
                        deps: vec![dev.clone()],
                        address: None,
                        alias: None,
                    },
                );
            }
        }
    }
    for d in &list {
        let deps: Vec<Bytes<'_>> = d.deps.iter().map(|x| Bytes(x)).collect();
        let address = d.address.as_ref().map(|a| GuestDiskAddress {
            ccw_address: None,
            serial: a.serial.as_deref().map(Bytes),
            bus_type: a.bus_type,
            bus: a.bus,
            unit: a.unit,
            pci_controller: a.pci,
            dev: a.dev.as_deref().map(Bytes),
            target: a.target,
        });
        out.item(&GuestDiskInfo {
            name: Bytes(&d.name),
            smart: None,
            dependencies: Some(deps.as_slice().into()),
            partition: d.partition,
            address,
            alias: d.alias.as_deref().map(Bytes),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_and_scsi_parsing() {
        assert_eq!(
            pci_address("0000:00:02.0/virtio0"),
            Some(([0, 0, 2, 0], 12))
        );
        assert_eq!(pci_address("0000:0a:1f.7"), Some(([0, 10, 31, 7], 12)));
        assert_eq!(pci_address("virtio0/block"), None);
        assert_eq!(
            scsi_target(
                "/sys/devices/pci0000:00/0000:00:03.0/virtio1/host0/target0:0:1/0:0:1:2/block/sda"
            ),
            Some([0, 1, 2])
        );
        assert_eq!(
            scsi_target("/sys/devices/pci0000:00/0000:00:02.0/virtio0/block/vda"),
            None
        );
    }
}
