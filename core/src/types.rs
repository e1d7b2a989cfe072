//! Return types of the qemu-ga commands (newest schema, the 43 Linux commands), ready for
//! [`crate::json::ser::to_writer`].
//!
//! Every struct declares its fields in the order QEMU's QDict writes them (Appendix A of the
//! reference: bucket order of `tdb_hash`, not schema order), because the serializer streams fields
//! in declared order. The unit test at the bottom recomputes that order from the schema order with
//! [`crate::qdict::qdict_order`] for every type and fails if a declaration drifts.
//!
//! Optional members are `Option`s and are left out when `None`. Data is borrowed: strings the
//! agent builds itself are `&str`; strings read from the OS (file names, interface names, file
//! contents) are [`Bytes`], written with `\uFFFD` for invalid UTF-8 as QEMU does; captured process
//! output is [`Base64`], encoded while it is written.
//!
//! Commands whose result is a bare `int`, `{}` or nothing need no type here, and neither does
//! `guest-file-read`, whose reply is streamed.

use base64::display::Base64Display;
use base64::engine::general_purpose::STANDARD;
use serde::{Serialize, Serializer};

/// A string taken from the OS as raw bytes, which may not be UTF-8.
///
/// Serialised with `serialize_bytes`, which [`crate::json::ser`] writes as a JSON string decoded
/// as (modified) UTF-8 with `\uFFFD` replacements, cut at a NUL byte, like QEMU writes its C
/// strings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Bytes<'a>(pub &'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

impl<'a> From<&'a [u8]> for Bytes<'a> {
    fn from(bytes: &'a [u8]) -> Self {
        Self(bytes)
    }
}

impl<'a, const N: usize> From<&'a [u8; N]> for Bytes<'a> {
    fn from(bytes: &'a [u8; N]) -> Self {
        Self(bytes)
    }
}

impl<'a> From<&'a str> for Bytes<'a> {
    fn from(s: &'a str) -> Self {
        Self(s.as_bytes())
    }
}

/// Raw bytes written as a standard, padded base64 JSON string (as `g_base64_encode`), encoded
/// while being written so that large captured output needs no second buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Base64<'a>(pub &'a [u8]);

impl Serialize for Base64<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&Base64Display::new(self.0, &STANDARD))
    }
}

// ---------------------------------------------------------------------------------------------
// guest-info

/// One entry of `guest-info`'s command list.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct GuestAgentCommandInfo<'a> {
    /// Whether the command may be called now (not blocked, or allowed while frozen).
    pub enabled: bool,
    /// Command name, such as `guest-ping`.
    pub name: &'a str,
    /// False for the commands that send no reply on success (`guest-shutdown`, `guest-suspend-*`).
    pub success_response: bool,
}

/// Result of `guest-info`.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestAgentInfo<'a> {
    /// Agent version string.
    pub version: &'a str,
    /// Every command the agent knows, in the order QEMU lists them (newest first).
    #[serde(rename = "supported_commands")]
    pub supported_commands: &'a [GuestAgentCommandInfo<'a>],
}

// ---------------------------------------------------------------------------------------------
// guest-file-*

/// Result of `guest-file-write`.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestFileWrite {
    /// Number of bytes written (may be short).
    pub count: i64,
    /// Whether end of file was reached (`feof()` on the stream).
    pub eof: bool,
}

/// Result of `guest-file-seek`.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestFileSeek {
    /// Whether end of file was reached.
    pub eof: bool,
    /// Current file position after the seek.
    pub position: i64,
}

// ---------------------------------------------------------------------------------------------
// guest-fsfreeze-* and guest-fstrim

/// Result of `guest-fsfreeze-status`.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum GuestFsfreezeStatus {
    /// Filesystems are writable (`"thawed"`).
    Thawed,
    /// Filesystems are frozen (`"frozen"`).
    Frozen,
}

/// Outcome of trimming one mounted filesystem.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestFilesystemTrimResult<'a> {
    /// The `minimum` argument passed to `FITRIM`, when trimming succeeded.
    pub minimum: Option<i64>,
    /// Mount point of the filesystem.
    pub path: Bytes<'a>,
    /// Bytes trimmed, when trimming succeeded.
    pub trimmed: Option<i64>,
    /// Why trimming failed (a `strerror` text), when it did.
    pub error: Option<&'a str>,
}

/// Result of `guest-fstrim`.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestFilesystemTrimResponse<'a> {
    /// One result per mounted filesystem.
    pub paths: &'a [GuestFilesystemTrimResult<'a>],
}

// ---------------------------------------------------------------------------------------------
// guest-network-get-interfaces

/// Kind of an IP address.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum GuestIpAddressType {
    /// IP version 4 (`"ipv4"`).
    Ipv4,
    /// IP version 6 (`"ipv6"`).
    Ipv6,
}

/// One address of a network interface.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct GuestIpAddress<'a> {
    /// Address family.
    pub ip_address_type: GuestIpAddressType,
    /// Address in text form (`inet_ntop`).
    pub ip_address: &'a str,
    /// Network prefix length.
    pub prefix: i64,
}

/// Traffic counters of a network interface (from `/proc/net/dev`).
#[derive(Serialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct GuestNetworkInterfaceStat {
    /// Packets transmitted.
    pub tx_packets: u64,
    /// Packet transmit problems.
    pub tx_errs: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets dropped by the receiver.
    pub rx_dropped: u64,
    /// Packets received.
    pub rx_packets: u64,
    /// Bad packets received.
    pub rx_errs: u64,
    /// Bytes transmitted.
    pub tx_bytes: u64,
    /// Transmitted packets dropped.
    pub tx_dropped: u64,
}

/// One entry of `guest-network-get-interfaces`.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct GuestNetworkInterface<'a> {
    /// Interface name.
    pub name: Bytes<'a>,
    /// Addresses assigned to the interface.
    pub ip_addresses: Option<&'a [GuestIpAddress<'a>]>,
    /// Traffic counters (QEMU leaves them out for interfaces without an address).
    pub statistics: Option<GuestNetworkInterfaceStat>,
    /// Hardware (MAC) address, `xx:xx:xx:xx:xx:xx` in lower case.
    pub hardware_address: Option<&'a str>,
}

// ---------------------------------------------------------------------------------------------
// guest-get-vcpus

/// One logical CPU (`guest-get-vcpus`).
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct GuestLogicalProcessor {
    /// Whether the CPU is online.
    pub online: bool,
    /// Whether the CPU can be taken offline; always filled in on output.
    pub can_offline: Option<bool>,
    /// CPU number.
    pub logical_id: i64,
}

// ---------------------------------------------------------------------------------------------
// guest-get-disks and guest-get-fsinfo

/// Bus type of a disk.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum GuestDiskBusType {
    /// IDE disks.
    Ide,
    /// Floppy disks.
    Fdc,
    /// SCSI disks.
    Scsi,
    /// virtio disks.
    Virtio,
    /// Xen disks.
    Xen,
    /// USB disks.
    Usb,
    /// UML disks.
    Uml,
    /// SATA disks.
    Sata,
    /// SD cards.
    Sd,
    /// Unknown bus type.
    Unknown,
    /// Windows IEEE 1394 bus type (`"ieee1394"`).
    Ieee1394,
    /// Windows SSA bus type.
    Ssa,
    /// Windows fibre channel bus type.
    Fibre,
    /// Windows RAID bus type.
    Raid,
    /// Windows iSCSI bus type.
    Iscsi,
    /// Windows serial-attached SCSI bus type.
    Sas,
    /// Windows multimedia card bus type.
    Mmc,
    /// Windows virtual bus type.
    Virtual,
    /// Windows file-backed virtual bus type (`"file-backed-virtual"`).
    FileBackedVirtual,
    /// NVMe disks (since 7.1).
    Nvme,
}

/// PCI address of a disk controller; every field is -1 when unknown.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestPCIAddress {
    /// Bus number.
    pub bus: i64,
    /// Slot number.
    pub slot: i64,
    /// Domain number.
    pub domain: i64,
    /// Function number.
    pub function: i64,
}

/// CCW address of a disk on s390x.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestCCWAddress {
    /// Channel subsystem image id.
    pub cssid: i64,
    /// Subchannel set id.
    pub ssid: i64,
    /// Subchannel number.
    pub subchno: i64,
    /// Device number.
    pub devno: i64,
}

/// Hardware address of a disk.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct GuestDiskAddress<'a> {
    /// CCW address (s390x only).
    pub ccw_address: Option<GuestCCWAddress>,
    /// Disk serial number (from udev).
    pub serial: Option<Bytes<'a>>,
    /// Bus type.
    pub bus_type: GuestDiskBusType,
    /// Bus id.
    pub bus: i64,
    /// Unit id.
    pub unit: i64,
    /// PCI address of the controller (fields -1 when unknown).
    pub pci_controller: GuestPCIAddress,
    /// Device node, such as `/dev/vda`.
    pub dev: Option<Bytes<'a>>,
    /// Target id.
    pub target: i64,
}

/// Discriminator of [`GuestDiskSmart`]. QAPI's discriminator is [`GuestDiskBusType`], but only
/// its `nvme` branch carries data, so this type has just that value and cannot disagree with the
/// members that follow it.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum GuestDiskSmartType {
    /// `"nvme"`.
    Nvme,
}

/// SMART data of a disk: the `nvme` branch of the QAPI union `GuestDiskSmart`, with the
/// members of `GuestNVMeSmart` (the SMART / Health Information log page, 128-bit counters split
/// into `-lo`/`-hi` halves) and the `type` discriminator placed where the QDict puts it.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct GuestDiskSmart {
    /// Available spare capacity, percent.
    pub available_spare: i64,
    /// Host write commands, high 64 bits.
    pub host_write_commands_hi: u64,
    /// Composite temperature, kelvin.
    pub temperature: i64,
    /// Power-on hours, low 64 bits.
    pub power_on_hours_lo: u64,
    /// Host read commands, high 64 bits.
    pub host_read_commands_hi: u64,
    /// Host read commands, low 64 bits.
    pub host_read_commands_lo: u64,
    /// Error log entries, high 64 bits.
    pub number_of_error_log_entries_hi: u64,
    /// Unsafe shutdowns, high 64 bits.
    pub unsafe_shutdowns_hi: u64,
    /// Unsafe shutdowns, low 64 bits.
    pub unsafe_shutdowns_lo: u64,
    /// Host write commands, low 64 bits.
    pub host_write_commands_lo: u64,
    /// Available spare threshold, percent.
    pub available_spare_threshold: i64,
    /// Power-on hours, high 64 bits.
    pub power_on_hours_hi: u64,
    /// Controller busy time (minutes), high 64 bits.
    pub controller_busy_time_hi: u64,
    /// Controller busy time (minutes), low 64 bits.
    pub controller_busy_time_lo: u64,
    /// Data units read, high 64 bits.
    pub data_units_read_hi: u64,
    /// Data units read, low 64 bits.
    pub data_units_read_lo: u64,
    /// Power cycles, high 64 bits.
    pub power_cycles_hi: u64,
    /// Power cycles, low 64 bits.
    pub power_cycles_lo: u64,
    /// Media and data integrity errors, high 64 bits.
    pub media_errors_hi: u64,
    /// Media and data integrity errors, low 64 bits.
    pub media_errors_lo: u64,
    /// Data units written, high 64 bits.
    pub data_units_written_hi: u64,
    /// Data units written, low 64 bits.
    pub data_units_written_lo: u64,
    /// Union discriminator, always `"nvme"`.
    pub r#type: GuestDiskSmartType,
    /// Critical warning flags.
    pub critical_warning: i64,
    /// Percentage of the rated life used.
    pub percentage_used: i64,
    /// Error log entries, low 64 bits.
    pub number_of_error_log_entries_lo: u64,
}

/// One entry of `guest-get-disks`.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestDiskInfo<'a> {
    /// Device node (`/dev/vda`, `/dev/vda1`).
    pub name: Bytes<'a>,
    /// SMART data (NVMe disks only).
    pub smart: Option<GuestDiskSmart>,
    /// Devices this one depends on (for example the PVs of an LV); QEMU always fills it in on
    /// Linux, possibly empty.
    pub dependencies: Option<&'a [Bytes<'a>]>,
    /// Whether this is a partition rather than a whole disk.
    pub partition: bool,
    /// Hardware address (not for virtual devices).
    pub address: Option<GuestDiskAddress<'a>>,
    /// Device-mapper name.
    pub alias: Option<Bytes<'a>>,
}

/// One entry of `guest-get-fsinfo`.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct GuestFilesystemInfo<'a> {
    /// Disk name (the block device's kernel name, such as `vda1` or `dm-0`).
    pub name: Bytes<'a>,
    /// Capacity in bytes for unprivileged users (since 3.0).
    pub total_bytes: Option<u64>,
    /// Capacity in bytes for privileged users (since 9.1).
    pub total_bytes_privileged: Option<u64>,
    /// Mount point.
    pub mountpoint: Bytes<'a>,
    /// Disks the filesystem lies on; may be empty.
    pub disk: &'a [GuestDiskAddress<'a>],
    /// Bytes in use (since 3.0).
    pub used_bytes: Option<u64>,
    /// Filesystem type, such as `ext4`.
    pub r#type: Bytes<'a>,
}

// ---------------------------------------------------------------------------------------------
// guest-get-memory-blocks, guest-set-memory-blocks, guest-get-memory-block-info

/// One memory block (`guest-get-memory-blocks`).
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct GuestMemoryBlock {
    /// Whether the block is online.
    pub online: bool,
    /// Whether the block can be taken offline; always filled in on output.
    pub can_offline: Option<bool>,
    /// Block number (`memoryN` in sysfs).
    pub phys_index: u64,
}

/// Outcome of changing one memory block.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum GuestMemoryBlockResponseType {
    /// The block was brought online or offline (`"success"`).
    Success,
    /// No `memoryN` directory in sysfs (`"not-found"`).
    NotFound,
    /// The kernel cannot change this block (`"operation-not-supported"`).
    OperationNotSupported,
    /// Changing the block failed (`"operation-failed"`).
    OperationFailed,
}

/// One entry of `guest-set-memory-blocks`' result.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct GuestMemoryBlockResponse {
    /// Outcome.
    pub response: GuestMemoryBlockResponseType,
    /// `errno` of a failure, absent on success.
    pub error_code: Option<i64>,
    /// Block number, as in the request.
    pub phys_index: u64,
}

/// Result of `guest-get-memory-block-info`.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestMemoryBlockInfo {
    /// Size of one memory block in bytes.
    pub size: u64,
}

// ---------------------------------------------------------------------------------------------
// guest-exec and guest-exec-status

/// Result of `guest-exec-status`.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct GuestExecStatus<'a> {
    /// Exit code, if the process exited normally.
    pub exitcode: Option<i64>,
    /// Captured stderr (written as base64), once the process has exited.
    pub err_data: Option<Base64<'a>>,
    /// Captured stdout (written as base64), once the process has exited.
    pub out_data: Option<Base64<'a>>,
    /// Whether stderr was cut at the capture size limit.
    pub err_truncated: Option<bool>,
    /// Signal number, if the process was killed by a signal.
    pub signal: Option<i64>,
    /// Whether stdout was cut at the capture size limit.
    pub out_truncated: Option<bool>,
    /// Whether the process has terminated.
    pub exited: bool,
}

/// Result of `guest-exec`.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestExec {
    /// Process id of the child.
    pub pid: i64,
}

// ---------------------------------------------------------------------------------------------
// guest-get-host-name, guest-get-users, guest-get-timezone, guest-get-osinfo

/// Result of `guest-get-host-name`.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct GuestHostName<'a> {
    /// Host name (`gethostname`).
    pub host_name: Bytes<'a>,
}

/// One entry of `guest-get-users`.
#[derive(Serialize, Debug, Clone, Copy, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub struct GuestUser<'a> {
    /// Earliest login time of the user, in fractional seconds since the epoch.
    pub login_time: f64,
    /// Logon domain (Windows only).
    pub domain: Option<Bytes<'a>>,
    /// User name.
    pub user: Bytes<'a>,
}

/// Result of `guest-get-timezone`.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestTimezone<'a> {
    /// Time zone abbreviation (`tzname`), such as `UTC`.
    pub zone: Option<Bytes<'a>>,
    /// Offset from UTC in seconds, positive east of Greenwich.
    pub offset: i64,
}

/// Result of `guest-get-osinfo`: `uname` fields and `os-release` values; absent ones are left
/// out.
#[derive(Serialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct GuestOSInfo<'a> {
    /// os-release `NAME`.
    pub name: Option<Bytes<'a>>,
    /// `uname` release.
    pub kernel_release: Option<Bytes<'a>>,
    /// os-release `VERSION`.
    pub version: Option<Bytes<'a>>,
    /// os-release `VARIANT`.
    pub variant: Option<Bytes<'a>>,
    /// os-release `PRETTY_NAME`.
    pub pretty_name: Option<Bytes<'a>>,
    /// os-release `VERSION_ID`.
    pub version_id: Option<Bytes<'a>>,
    /// os-release `VARIANT_ID`.
    pub variant_id: Option<Bytes<'a>>,
    /// `uname` version.
    pub kernel_version: Option<Bytes<'a>>,
    /// `uname` machine.
    pub machine: Option<Bytes<'a>>,
    /// os-release `ID`.
    pub id: Option<Bytes<'a>>,
}

// ---------------------------------------------------------------------------------------------
// guest-ssh-get-authorized-keys

/// Result of `guest-ssh-get-authorized-keys`.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestAuthorizedKeys<'a> {
    /// Keys in `authorized_keys` format, one per entry.
    pub keys: &'a [Bytes<'a>],
}

// ---------------------------------------------------------------------------------------------
// guest-get-diskstats

/// I/O counters of a disk (`/proc/diskstats`); counters the kernel does not have are left out.
#[derive(Serialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct GuestDiskStats {
    /// Sectors discarded.
    pub discard_sectors: Option<u64>,
    /// Writes completed.
    pub write_ios: Option<u64>,
    /// Discards completed.
    pub discard_ios: Option<u64>,
    /// Time spent discarding (ms).
    pub discard_ticks: Option<u64>,
    /// Weighted time spent doing I/O (ms).
    pub weight_ticks: Option<u64>,
    /// Reads completed.
    pub read_ios: Option<u64>,
    /// Flushes completed.
    pub flush_ios: Option<u64>,
    /// Sectors written.
    pub write_sectors: Option<u64>,
    /// Write requests merged.
    pub write_merges: Option<u64>,
    /// Time spent writing (ms).
    pub write_ticks: Option<u64>,
    /// I/Os currently in flight.
    pub ios_pgr: Option<u64>,
    /// Sectors read.
    pub read_sectors: Option<u64>,
    /// Read requests merged.
    pub read_merges: Option<u64>,
    /// Time spent doing I/O (ms).
    pub total_ticks: Option<u64>,
    /// Discard requests merged.
    pub discard_merges: Option<u64>,
    /// Time spent flushing (ms).
    pub flush_ticks: Option<u64>,
    /// Time spent reading (ms).
    pub read_ticks: Option<u64>,
}

/// One entry of `guest-get-diskstats`.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestDiskStatsInfo<'a> {
    /// Disk name, such as `vda`.
    pub name: Bytes<'a>,
    /// I/O counters.
    pub stats: GuestDiskStats,
    /// Minor device number.
    pub minor: u64,
    /// Major device number.
    pub major: u64,
}

// ---------------------------------------------------------------------------------------------
// guest-get-cpustats

/// Discriminator of [`GuestCpuStats`] (QAPI `GuestCpuStatsType`).
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum GuestCpuStatsType {
    /// `"linux"`.
    Linux,
}

/// One entry of `guest-get-cpustats`: the `linux` branch of the QAPI union `GuestCpuStats`
/// (members of `GuestLinuxCpuStats`), all times in milliseconds, with the `type` discriminator
/// placed where the QDict puts it.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestCpuStats {
    /// CPU index.
    pub cpu: i64,
    /// Time running niced guests (Linux 2.6.33+).
    pub guestnice: Option<u64>,
    /// Time in the idle task.
    pub idle: u64,
    /// Time stolen by the host (Linux 2.6.11+).
    pub steal: Option<u64>,
    /// Time waiting for I/O (Linux 2.5.41+).
    pub iowait: Option<u64>,
    /// Time in system mode.
    pub system: u64,
    /// Time running guests (Linux 2.6.24+).
    pub guest: Option<u64>,
    /// Time in user mode with low priority.
    pub nice: u64,
    /// Time servicing interrupts (Linux 2.6.0+).
    pub irq: Option<u64>,
    /// Union discriminator, always `"linux"`.
    pub r#type: GuestCpuStatsType,
    /// Time in user mode.
    pub user: u64,
    /// Time servicing softirqs (Linux 2.6.0+).
    pub softirq: Option<u64>,
}

// ---------------------------------------------------------------------------------------------
// guest-get-load

/// Result of `guest-get-load` (`getloadavg`).
#[derive(Serialize, Debug, Clone, Copy, PartialEq)]
pub struct GuestLoadAverage {
    /// 15-minute load average.
    pub load15m: f64,
    /// 5-minute load average.
    pub load5m: f64,
    /// 1-minute load average.
    pub load1m: f64,
}

// ---------------------------------------------------------------------------------------------
// guest-network-get-route

/// One entry of `guest-network-get-route` (`/proc/net/route` and `/proc/net/ipv6_route`).
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestNetworkRoute<'a> {
    /// Route flags.
    pub flags: Option<u64>,
    /// Source address (IPv6).
    pub source: Option<&'a str>,
    /// Route metric.
    pub metric: i64,
    /// Reference count.
    pub refcnt: Option<i64>,
    /// TCP window size (IPv4).
    pub window: Option<i64>,
    /// IP version, 4 or 6.
    pub version: i64,
    /// Next hop address (IPv6).
    pub nexthop: Option<&'a str>,
    /// Egress interface name.
    pub iface: Bytes<'a>,
    /// Destination network or host address.
    pub destination: &'a str,
    /// Destination prefix length (IPv6).
    pub desprefixlen: Option<&'a str>,
    /// Initial round-trip time (IPv4).
    pub irtt: Option<i64>,
    /// Gateway address.
    pub gateway: Option<&'a str>,
    /// Source prefix length (IPv6).
    pub srcprefixlen: Option<&'a str>,
    /// Usage count.
    pub r#use: Option<i64>,
    /// Maximum packet size.
    pub mtu: Option<i64>,
    /// Subnet mask (IPv4).
    pub mask: Option<&'a str>,
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    extern crate std;

    use std::string::String;
    use std::vec;
    use std::vec::Vec;

    use super::*;
    use crate::json::ser::to_writer;
    use crate::json::write::JsonWriter;
    use crate::json::write::tests::VecSink;
    use crate::qdict::qdict_order;

    fn json<T: Serialize + ?Sized>(value: &T) -> String {
        let mut sink = VecSink::default();
        to_writer(value, &mut JsonWriter::new(&mut sink)).unwrap();
        String::from_utf8(sink.0).unwrap()
    }

    /// The keys of the outermost object of `json`, in output order.
    fn top_keys(json: &str) -> Vec<&str> {
        let b = json.as_bytes();
        let mut keys = Vec::new();
        let mut depth = 0;
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'"' => {
                    let start = i + 1;
                    i += 1;
                    while b[i] != b'"' {
                        i += if b[i] == b'\\' { 2 } else { 1 };
                    }
                    if depth == 1 && json[i + 1..].starts_with(": ") {
                        keys.push(&json[start..i]);
                    }
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => depth -= 1,
                _ => {}
            }
            i += 1;
        }
        keys
    }

    /// The response wrapper of a success, `{"return": R}` (no `id`).
    #[derive(Serialize)]
    struct Return<T> {
        r#return: T,
    }

    fn response<T: Serialize>(value: T) -> String {
        let mut text = json(&Return { r#return: value });
        text.push('\n');
        text
    }

    // Fully populated instances (every option `Some`), shared by the order test.

    const PCI: GuestPCIAddress = GuestPCIAddress {
        bus: 0,
        slot: 2,
        domain: 0,
        function: 0,
    };
    const CCW: GuestCCWAddress = GuestCCWAddress {
        cssid: 1,
        ssid: 2,
        subchno: 3,
        devno: 4,
    };

    fn disk_address() -> GuestDiskAddress<'static> {
        GuestDiskAddress {
            ccw_address: Some(CCW),
            serial: Some(Bytes(b"SER\xff1")),
            bus_type: GuestDiskBusType::Virtio,
            bus: 0,
            unit: 0,
            pci_controller: PCI,
            dev: Some(Bytes(b"/dev/vda")),
            target: 0,
        }
    }

    const SMART: GuestDiskSmart = GuestDiskSmart {
        available_spare: 100,
        host_write_commands_hi: 1,
        temperature: 310,
        power_on_hours_lo: 2,
        host_read_commands_hi: 3,
        host_read_commands_lo: 4,
        number_of_error_log_entries_hi: 5,
        unsafe_shutdowns_hi: 6,
        unsafe_shutdowns_lo: 7,
        host_write_commands_lo: 8,
        available_spare_threshold: 10,
        power_on_hours_hi: 9,
        controller_busy_time_hi: 10,
        controller_busy_time_lo: 11,
        data_units_read_hi: 12,
        data_units_read_lo: 13,
        power_cycles_hi: 14,
        power_cycles_lo: 15,
        media_errors_hi: 16,
        media_errors_lo: 17,
        data_units_written_hi: 18,
        data_units_written_lo: u64::MAX,
        r#type: GuestDiskSmartType::Nvme,
        critical_warning: 0,
        percentage_used: 1,
        number_of_error_log_entries_lo: 19,
    };

    const STAT: GuestNetworkInterfaceStat = GuestNetworkInterfaceStat {
        tx_packets: 1,
        tx_errs: 2,
        rx_bytes: 3,
        rx_dropped: 4,
        rx_packets: 5,
        rx_errs: 6,
        tx_bytes: 7,
        tx_dropped: 8,
    };

    const DISK_STATS: GuestDiskStats = GuestDiskStats {
        discard_sectors: Some(1),
        write_ios: Some(2),
        discard_ios: Some(3),
        discard_ticks: Some(4),
        weight_ticks: Some(5),
        read_ios: Some(6),
        flush_ios: Some(7),
        write_sectors: Some(8),
        write_merges: Some(9),
        write_ticks: Some(10),
        ios_pgr: Some(11),
        read_sectors: Some(12),
        read_merges: Some(13),
        total_ticks: Some(14),
        discard_merges: Some(15),
        flush_ticks: Some(16),
        read_ticks: Some(17),
    };

    const IP: GuestIpAddress<'static> = GuestIpAddress {
        ip_address_type: GuestIpAddressType::Ipv6,
        ip_address: "fe80::1",
        prefix: 64,
    };

    const CMD: GuestAgentCommandInfo<'static> = GuestAgentCommandInfo {
        enabled: true,
        name: "guest-ping",
        success_response: true,
    };

    const TRIM: GuestFilesystemTrimResult<'static> = GuestFilesystemTrimResult {
        minimum: Some(0),
        path: Bytes(b"/"),
        trimmed: Some(4096),
        error: Some("Operation not supported"),
    };

    /// One type: its name, its schema member order (union base first), the order Appendix A of
    /// the reference gives, and a fully populated instance serialised.
    struct Case {
        name: &'static str,
        schema: &'static [&'static str],
        appendix: &'static str,
        json: String,
    }

    fn cases() -> Vec<Case> {
        let addresses = [disk_address()];
        let deps = [Bytes(b"dm-0"), Bytes(b"sda")];
        let keys = [Bytes(b"ssh-ed25519 AAAA user@host")];
        let ips = [IP];
        vec![
            Case {
                name: "GuestAgentCommandInfo",
                schema: &["name", "enabled", "success-response"],
                appendix: "enabled, name, success-response",
                json: json(&CMD),
            },
            Case {
                name: "GuestAgentInfo",
                schema: &["version", "supported_commands"],
                appendix: "version, supported_commands",
                json: json(&GuestAgentInfo {
                    version: "10.2.0",
                    supported_commands: &[CMD],
                }),
            },
            Case {
                name: "GuestFileWrite",
                schema: &["count", "eof"],
                appendix: "count, eof",
                json: json(&GuestFileWrite {
                    count: 14,
                    eof: false,
                }),
            },
            Case {
                name: "GuestFileSeek",
                schema: &["position", "eof"],
                appendix: "eof, position",
                json: json(&GuestFileSeek {
                    eof: false,
                    position: 6,
                }),
            },
            Case {
                name: "GuestFilesystemTrimResult",
                schema: &["path", "trimmed", "minimum", "error"],
                appendix: "minimum, path, trimmed, error",
                json: json(&TRIM),
            },
            Case {
                name: "GuestFilesystemTrimResponse",
                schema: &["paths"],
                appendix: "paths",
                json: json(&GuestFilesystemTrimResponse { paths: &[TRIM] }),
            },
            Case {
                name: "GuestIpAddress",
                schema: &["ip-address", "ip-address-type", "prefix"],
                appendix: "ip-address-type, ip-address, prefix",
                json: json(&IP),
            },
            Case {
                name: "GuestNetworkInterfaceStat",
                schema: &[
                    "rx-bytes",
                    "rx-packets",
                    "rx-errs",
                    "rx-dropped",
                    "tx-bytes",
                    "tx-packets",
                    "tx-errs",
                    "tx-dropped",
                ],
                appendix: "tx-packets, tx-errs, rx-bytes, rx-dropped, rx-packets, rx-errs, \
                           tx-bytes, tx-dropped",
                json: json(&STAT),
            },
            Case {
                name: "GuestNetworkInterface",
                schema: &["name", "hardware-address", "ip-addresses", "statistics"],
                appendix: "name, ip-addresses, statistics, hardware-address",
                json: json(&GuestNetworkInterface {
                    name: Bytes(b"eth0"),
                    ip_addresses: Some(&ips),
                    statistics: Some(STAT),
                    hardware_address: Some("52:54:00:12:34:56"),
                }),
            },
            Case {
                name: "GuestLogicalProcessor",
                schema: &["logical-id", "online", "can-offline"],
                appendix: "online, can-offline, logical-id",
                json: json(&GuestLogicalProcessor {
                    online: true,
                    can_offline: Some(false),
                    logical_id: 0,
                }),
            },
            Case {
                name: "GuestPCIAddress",
                schema: &["domain", "bus", "slot", "function"],
                appendix: "bus, slot, domain, function",
                json: json(&PCI),
            },
            Case {
                name: "GuestCCWAddress",
                schema: &["cssid", "ssid", "subchno", "devno"],
                appendix: "cssid, ssid, subchno, devno",
                json: json(&CCW),
            },
            Case {
                name: "GuestDiskAddress",
                schema: &[
                    "pci-controller",
                    "bus-type",
                    "bus",
                    "target",
                    "unit",
                    "serial",
                    "dev",
                    "ccw-address",
                ],
                appendix: "ccw-address, serial, bus-type, bus, unit, pci-controller, dev, target",
                json: json(&disk_address()),
            },
            Case {
                name: "GuestDiskSmart[nvme]",
                schema: &[
                    "type",
                    "critical-warning",
                    "temperature",
                    "available-spare",
                    "available-spare-threshold",
                    "percentage-used",
                    "data-units-read-lo",
                    "data-units-read-hi",
                    "data-units-written-lo",
                    "data-units-written-hi",
                    "host-read-commands-lo",
                    "host-read-commands-hi",
                    "host-write-commands-lo",
                    "host-write-commands-hi",
                    "controller-busy-time-lo",
                    "controller-busy-time-hi",
                    "power-cycles-lo",
                    "power-cycles-hi",
                    "power-on-hours-lo",
                    "power-on-hours-hi",
                    "unsafe-shutdowns-lo",
                    "unsafe-shutdowns-hi",
                    "media-errors-lo",
                    "media-errors-hi",
                    "number-of-error-log-entries-lo",
                    "number-of-error-log-entries-hi",
                ],
                appendix: "available-spare, host-write-commands-hi, temperature, \
                           power-on-hours-lo, host-read-commands-hi, host-read-commands-lo, \
                           number-of-error-log-entries-hi, unsafe-shutdowns-hi, \
                           unsafe-shutdowns-lo, host-write-commands-lo, \
                           available-spare-threshold, power-on-hours-hi, \
                           controller-busy-time-hi, controller-busy-time-lo, data-units-read-hi, \
                           data-units-read-lo, power-cycles-hi, power-cycles-lo, \
                           media-errors-hi, media-errors-lo, data-units-written-hi, \
                           data-units-written-lo, type, critical-warning, percentage-used, \
                           number-of-error-log-entries-lo",
                json: json(&SMART),
            },
            Case {
                name: "GuestDiskInfo",
                schema: &[
                    "name",
                    "partition",
                    "dependencies",
                    "address",
                    "alias",
                    "smart",
                ],
                appendix: "name, smart, dependencies, partition, address, alias",
                json: json(&GuestDiskInfo {
                    name: Bytes(b"/dev/nvme0n1"),
                    smart: Some(SMART),
                    dependencies: Some(&deps),
                    partition: false,
                    address: Some(disk_address()),
                    alias: Some(Bytes(b"luks-\xc3\xa9")),
                }),
            },
            Case {
                name: "GuestFilesystemInfo",
                schema: &[
                    "name",
                    "mountpoint",
                    "type",
                    "used-bytes",
                    "total-bytes",
                    "total-bytes-privileged",
                    "disk",
                ],
                appendix: "name, total-bytes, total-bytes-privileged, mountpoint, disk, \
                           used-bytes, type",
                json: json(&GuestFilesystemInfo {
                    name: Bytes(b"vda1"),
                    total_bytes: Some(2),
                    total_bytes_privileged: Some(3),
                    mountpoint: Bytes(b"/mnt/\xff"),
                    disk: &addresses,
                    used_bytes: Some(1),
                    r#type: Bytes(b"ext4"),
                }),
            },
            Case {
                name: "GuestMemoryBlock",
                schema: &["phys-index", "online", "can-offline"],
                appendix: "online, can-offline, phys-index",
                json: json(&GuestMemoryBlock {
                    online: true,
                    can_offline: Some(true),
                    phys_index: 7,
                }),
            },
            Case {
                name: "GuestMemoryBlockResponse",
                schema: &["phys-index", "response", "error-code"],
                appendix: "response, error-code, phys-index",
                json: json(&GuestMemoryBlockResponse {
                    response: GuestMemoryBlockResponseType::OperationFailed,
                    error_code: Some(16),
                    phys_index: 7,
                }),
            },
            Case {
                name: "GuestMemoryBlockInfo",
                schema: &["size"],
                appendix: "size",
                json: json(&GuestMemoryBlockInfo { size: 134_217_728 }),
            },
            Case {
                name: "GuestExecStatus",
                schema: &[
                    "exited",
                    "exitcode",
                    "signal",
                    "out-data",
                    "err-data",
                    "out-truncated",
                    "err-truncated",
                ],
                appendix: "exitcode, err-data, out-data, err-truncated, signal, out-truncated, \
                           exited",
                json: json(&GuestExecStatus {
                    exitcode: Some(0),
                    err_data: Some(Base64(b"err\n")),
                    out_data: Some(Base64(b"out")),
                    err_truncated: Some(false),
                    signal: Some(9),
                    out_truncated: Some(true),
                    exited: true,
                }),
            },
            Case {
                name: "GuestExec",
                schema: &["pid"],
                appendix: "pid",
                json: json(&GuestExec { pid: 5522 }),
            },
            Case {
                name: "GuestHostName",
                schema: &["host-name"],
                appendix: "host-name",
                json: json(&GuestHostName {
                    host_name: Bytes(b"vm"),
                }),
            },
            Case {
                name: "GuestUser",
                schema: &["user", "login-time", "domain"],
                appendix: "login-time, domain, user",
                json: json(&GuestUser {
                    login_time: 1_700_000_000.25,
                    domain: Some(Bytes(b"WORKGROUP")),
                    user: Bytes(b"root"),
                }),
            },
            Case {
                name: "GuestTimezone",
                schema: &["zone", "offset"],
                appendix: "zone, offset",
                json: json(&GuestTimezone {
                    zone: Some(Bytes(b"CET")),
                    offset: 3600,
                }),
            },
            Case {
                name: "GuestOSInfo",
                schema: &[
                    "kernel-release",
                    "kernel-version",
                    "machine",
                    "id",
                    "name",
                    "pretty-name",
                    "version",
                    "version-id",
                    "variant",
                    "variant-id",
                ],
                appendix: "name, kernel-release, version, variant, pretty-name, version-id, \
                           variant-id, kernel-version, machine, id",
                json: json(&GuestOSInfo {
                    name: Some(Bytes(b"Debian GNU/Linux")),
                    kernel_release: Some(Bytes(b"6.1.0-18-amd64")),
                    version: Some(Bytes(b"12 (bookworm)")),
                    variant: Some(Bytes(b"Server")),
                    pretty_name: Some(Bytes(b"Debian GNU/Linux 12 (bookworm)")),
                    version_id: Some(Bytes(b"12")),
                    variant_id: Some(Bytes(b"server")),
                    kernel_version: Some(Bytes(b"#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1")),
                    machine: Some(Bytes(b"x86_64")),
                    id: Some(Bytes(b"debian")),
                }),
            },
            Case {
                name: "GuestAuthorizedKeys",
                schema: &["keys"],
                appendix: "keys",
                json: json(&GuestAuthorizedKeys { keys: &keys }),
            },
            Case {
                name: "GuestDiskStats",
                schema: &[
                    "read-sectors",
                    "read-ios",
                    "read-merges",
                    "write-sectors",
                    "write-ios",
                    "write-merges",
                    "discard-sectors",
                    "discard-ios",
                    "discard-merges",
                    "flush-ios",
                    "read-ticks",
                    "write-ticks",
                    "discard-ticks",
                    "flush-ticks",
                    "ios-pgr",
                    "total-ticks",
                    "weight-ticks",
                ],
                appendix: "discard-sectors, write-ios, discard-ios, discard-ticks, weight-ticks, \
                           read-ios, flush-ios, write-sectors, write-merges, write-ticks, \
                           ios-pgr, read-sectors, read-merges, total-ticks, discard-merges, \
                           flush-ticks, read-ticks",
                json: json(&DISK_STATS),
            },
            Case {
                name: "GuestDiskStatsInfo",
                schema: &["name", "major", "minor", "stats"],
                appendix: "name, stats, minor, major",
                json: json(&GuestDiskStatsInfo {
                    name: Bytes(b"vda"),
                    stats: DISK_STATS,
                    minor: 0,
                    major: 253,
                }),
            },
            Case {
                name: "GuestCpuStats[linux]",
                schema: &[
                    "type",
                    "cpu",
                    "user",
                    "nice",
                    "system",
                    "idle",
                    "iowait",
                    "irq",
                    "softirq",
                    "steal",
                    "guest",
                    "guestnice",
                ],
                appendix: "cpu, guestnice, idle, steal, iowait, system, guest, nice, irq, type, \
                           user, softirq",
                json: json(&GuestCpuStats {
                    cpu: 0,
                    guestnice: Some(1),
                    idle: 2,
                    steal: Some(3),
                    iowait: Some(4),
                    system: 5,
                    guest: Some(6),
                    nice: 7,
                    irq: Some(8),
                    r#type: GuestCpuStatsType::Linux,
                    user: 9,
                    softirq: Some(10),
                }),
            },
            Case {
                name: "GuestLoadAverage",
                schema: &["load1m", "load5m", "load15m"],
                appendix: "load15m, load5m, load1m",
                json: json(&GuestLoadAverage {
                    load15m: 0.05,
                    load5m: 0.1,
                    load1m: 1.5,
                }),
            },
            Case {
                name: "GuestNetworkRoute",
                schema: &[
                    "iface",
                    "destination",
                    "metric",
                    "gateway",
                    "mask",
                    "irtt",
                    "flags",
                    "refcnt",
                    "use",
                    "window",
                    "mtu",
                    "desprefixlen",
                    "source",
                    "srcprefixlen",
                    "nexthop",
                    "version",
                ],
                appendix: "flags, source, metric, refcnt, window, version, nexthop, iface, \
                           destination, desprefixlen, irtt, gateway, srcprefixlen, use, mtu, mask",
                json: json(&GuestNetworkRoute {
                    flags: Some(3),
                    source: Some("::"),
                    metric: 100,
                    refcnt: Some(0),
                    window: Some(0),
                    version: 4,
                    nexthop: Some("::"),
                    iface: Bytes(b"eth0"),
                    destination: "0.0.0.0",
                    desprefixlen: Some("0"),
                    irtt: Some(0),
                    gateway: Some("10.0.2.2"),
                    srcprefixlen: Some("0"),
                    r#use: Some(0),
                    mtu: Some(0),
                    mask: Some("0.0.0.0"),
                }),
            },
        ]
    }

    /// The declared field order of every type is QEMU's QDict order of its schema members, and
    /// that order is the one Appendix A of the reference lists.
    #[test]
    fn declared_order_is_qdict_order() {
        let cases = cases();
        assert_eq!(cases.len(), 31);
        for case in &cases {
            let mut order = vec![0usize; case.schema.len()];
            assert_eq!(qdict_order(case.schema, &mut order), case.schema.len());
            let expected: Vec<&str> = order.iter().map(|&i| case.schema[i]).collect();
            let appendix: Vec<&str> = case.appendix.split(", ").collect();
            assert_eq!(
                expected, appendix,
                "{}: qdict_order vs Appendix A",
                case.name
            );
            assert_eq!(
                top_keys(&case.json),
                expected,
                "{}: declared order",
                case.name
            );
            let _: serde_json::Value = serde_json::from_str(&case.json)
                .unwrap_or_else(|e| panic!("{}: invalid JSON {e}: {}", case.name, case.json));
        }
    }

    /// The order test really catches a swapped declaration.
    #[test]
    fn order_check_detects_a_swap() {
        #[derive(Serialize)]
        struct Swapped {
            position: i64,
            eof: bool,
        }
        let text = json(&Swapped {
            position: 1,
            eof: true,
        });
        let schema = ["position", "eof"];
        let mut order = [0usize; 2];
        qdict_order(&schema, &mut order);
        let expected: Vec<&str> = order.iter().map(|&i| schema[i]).collect();
        assert_ne!(top_keys(&text), expected);
    }

    #[test]
    fn enum_wire_names() {
        let bus = [
            (GuestDiskBusType::Ide, "ide"),
            (GuestDiskBusType::Fdc, "fdc"),
            (GuestDiskBusType::Scsi, "scsi"),
            (GuestDiskBusType::Virtio, "virtio"),
            (GuestDiskBusType::Xen, "xen"),
            (GuestDiskBusType::Usb, "usb"),
            (GuestDiskBusType::Uml, "uml"),
            (GuestDiskBusType::Sata, "sata"),
            (GuestDiskBusType::Sd, "sd"),
            (GuestDiskBusType::Unknown, "unknown"),
            (GuestDiskBusType::Ieee1394, "ieee1394"),
            (GuestDiskBusType::Ssa, "ssa"),
            (GuestDiskBusType::Fibre, "fibre"),
            (GuestDiskBusType::Raid, "raid"),
            (GuestDiskBusType::Iscsi, "iscsi"),
            (GuestDiskBusType::Sas, "sas"),
            (GuestDiskBusType::Mmc, "mmc"),
            (GuestDiskBusType::Virtual, "virtual"),
            (GuestDiskBusType::FileBackedVirtual, "file-backed-virtual"),
            (GuestDiskBusType::Nvme, "nvme"),
        ];
        for (value, name) in bus {
            assert_eq!(json(&value), std::format!("\"{name}\""));
        }
        let responses = [
            (GuestMemoryBlockResponseType::Success, "success"),
            (GuestMemoryBlockResponseType::NotFound, "not-found"),
            (
                GuestMemoryBlockResponseType::OperationNotSupported,
                "operation-not-supported",
            ),
            (
                GuestMemoryBlockResponseType::OperationFailed,
                "operation-failed",
            ),
        ];
        for (value, name) in responses {
            assert_eq!(json(&value), std::format!("\"{name}\""));
        }
        assert_eq!(json(&GuestFsfreezeStatus::Thawed), "\"thawed\"");
        assert_eq!(json(&GuestFsfreezeStatus::Frozen), "\"frozen\"");
        assert_eq!(json(&GuestIpAddressType::Ipv4), "\"ipv4\"");
        assert_eq!(json(&GuestIpAddressType::Ipv6), "\"ipv6\"");
        assert_eq!(json(&GuestCpuStatsType::Linux), "\"linux\"");
        assert_eq!(json(&GuestDiskSmartType::Nvme), "\"nvme\"");
    }

    #[test]
    fn bytes_and_base64() {
        assert_eq!(json(&Bytes(b"a\xffb\xc0\x80")), "\"a\\uFFFDb\\u0000\"");
        assert_eq!(json(&Bytes::from("é")), "\"\\u00E9\"");
        assert_eq!(json(&Bytes::from(&b"x"[..])), "\"x\"");
        assert_eq!(json(&Bytes::from(b"nul\0cut")), "\"nul\"");
        assert_eq!(json(&Base64(b"")), "\"\"");
        assert_eq!(
            json(&Base64(b"Hello World!\n\0")),
            "\"SGVsbG8gV29ybGQhCgA=\""
        );
        assert_eq!(json(&Base64(b"\xfb\xff")), "\"+/8=\"");
        // Long input goes through the encoder in several chunks.
        let long: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        let text = json(&Base64(&long));
        assert_eq!(text.len(), 2 + 10_000_usize.div_ceil(3) * 4);
        let back: String = serde_json::from_str(&text).unwrap();
        assert!(
            back.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
        );
    }

    // Complete responses from the live 7.2 transcripts (reference §5.3).

    #[test]
    fn live_get_fsinfo() {
        let disk = [GuestDiskAddress {
            ccw_address: None,
            serial: None,
            bus_type: GuestDiskBusType::Virtio,
            bus: 0,
            unit: 0,
            pci_controller: PCI,
            dev: Some(Bytes(b"/dev/vda")),
            target: 0,
        }];
        let fs = [GuestFilesystemInfo {
            name: Bytes(b"vda"),
            total_bytes: Some(97_572_749_312),
            total_bytes_privileged: None,
            mountpoint: Bytes(b"/"),
            disk: &disk,
            used_bytes: Some(13_111_664_640),
            r#type: Bytes(b"ext4"),
        }];
        assert_eq!(
            response(&fs[..]),
            "{\"return\": [{\"name\": \"vda\", \"total-bytes\": 97572749312, \"mountpoint\": \
             \"/\", \"disk\": [{\"bus-type\": \"virtio\", \"bus\": 0, \"unit\": 0, \
             \"pci-controller\": {\"bus\": 0, \"slot\": 2, \"domain\": 0, \"function\": 0}, \
             \"dev\": \"/dev/vda\", \"target\": 0}], \"used-bytes\": 13111664640, \"type\": \
             \"ext4\"}]}\n"
        );
        let disks = [GuestDiskInfo {
            name: Bytes(b"/dev/vda"),
            smart: None,
            dependencies: Some(&[]),
            partition: false,
            address: Some(disk[0]),
            alias: None,
        }];
        assert_eq!(
            response(&disks[..]),
            "{\"return\": [{\"name\": \"/dev/vda\", \"dependencies\": [], \"partition\": false, \
             \"address\": {\"bus-type\": \"virtio\", \"bus\": 0, \"unit\": 0, \
             \"pci-controller\": {\"bus\": 0, \"slot\": 2, \"domain\": 0, \"function\": 0}, \
             \"dev\": \"/dev/vda\", \"target\": 0}}]}\n"
        );
    }

    #[test]
    fn live_small_results() {
        let vcpus = [
            GuestLogicalProcessor {
                online: true,
                can_offline: Some(true),
                logical_id: 1,
            },
            GuestLogicalProcessor {
                online: true,
                can_offline: Some(false),
                logical_id: 0,
            },
        ];
        assert_eq!(
            response(&vcpus[..]),
            "{\"return\": [{\"online\": true, \"can-offline\": true, \"logical-id\": 1}, \
             {\"online\": true, \"can-offline\": false, \"logical-id\": 0}]}\n"
        );
        assert_eq!(
            response(GuestTimezone {
                zone: Some(Bytes(b"UTC")),
                offset: 0
            }),
            "{\"return\": {\"zone\": \"UTC\", \"offset\": 0}}\n"
        );
        assert_eq!(
            response(GuestHostName {
                host_name: Bytes(b"vm")
            }),
            "{\"return\": {\"host-name\": \"vm\"}}\n"
        );
        assert_eq!(
            response(GuestFsfreezeStatus::Thawed),
            "{\"return\": \"thawed\"}\n"
        );
        assert_eq!(response(()), "{\"return\": {}}\n");
        assert_eq!(response(12345i64), "{\"return\": 12345}\n");
        assert_eq!(
            response(GuestFileWrite {
                count: 14,
                eof: false
            }),
            "{\"return\": {\"count\": 14, \"eof\": false}}\n"
        );
        assert_eq!(
            response(GuestFileSeek {
                eof: false,
                position: 6
            }),
            "{\"return\": {\"eof\": false, \"position\": 6}}\n"
        );
        assert_eq!(
            response(GuestExec { pid: 5522 }),
            "{\"return\": {\"pid\": 5522}}\n"
        );
    }

    #[test]
    fn live_exec_status() {
        let none = GuestExecStatus {
            exitcode: None,
            err_data: None,
            out_data: None,
            err_truncated: None,
            signal: None,
            out_truncated: None,
            exited: false,
        };
        let echo = GuestExecStatus {
            exitcode: Some(0),
            out_data: Some(Base64(b"\" test_str \"")),
            out_truncated: Some(false),
            exited: true,
            ..none
        };
        assert_eq!(
            response(echo),
            "{\"return\": {\"exitcode\": 0, \"out-data\": \"IiB0ZXN0X3N0ciAi\", \
             \"out-truncated\": false, \"exited\": true}}\n"
        );
        let script = GuestExecStatus {
            exitcode: Some(3),
            err_data: Some(Base64(b"err\n")),
            out_data: Some(Base64(b"in-data\nE=bar\n")),
            err_truncated: Some(false),
            out_truncated: Some(false),
            exited: true,
            ..none
        };
        assert_eq!(
            response(script),
            "{\"return\": {\"exitcode\": 3, \"err-data\": \"ZXJyCg==\", \"out-data\": \
             \"aW4tZGF0YQpFPWJhcgo=\", \"err-truncated\": false, \"out-truncated\": false, \
             \"exited\": true}}\n"
        );
        let true_ = GuestExecStatus {
            exitcode: Some(0),
            exited: true,
            ..none
        };
        assert_eq!(
            response(true_),
            "{\"return\": {\"exitcode\": 0, \"exited\": true}}\n"
        );
        let killed = GuestExecStatus {
            signal: Some(9),
            exited: true,
            ..none
        };
        assert_eq!(
            response(killed),
            "{\"return\": {\"signal\": 9, \"exited\": true}}\n"
        );
        assert_eq!(response(none), "{\"return\": {\"exited\": false}}\n");
    }

    /// Appendix B: the complete 7.2 `guest-info` response, 3220 bytes.
    #[test]
    fn live_guest_info() {
        const COMMANDS: [&str; 42] = [
            "guest-get-cpustats",
            "guest-get-diskstats",
            "guest-ssh-remove-authorized-keys",
            "guest-ssh-add-authorized-keys",
            "guest-ssh-get-authorized-keys",
            "guest-get-devices",
            "guest-get-osinfo",
            "guest-get-timezone",
            "guest-get-users",
            "guest-get-host-name",
            "guest-exec",
            "guest-exec-status",
            "guest-get-memory-block-info",
            "guest-set-memory-blocks",
            "guest-get-memory-blocks",
            "guest-set-user-password",
            "guest-get-fsinfo",
            "guest-get-disks",
            "guest-set-vcpus",
            "guest-get-vcpus",
            "guest-network-get-interfaces",
            "guest-suspend-hybrid",
            "guest-suspend-ram",
            "guest-suspend-disk",
            "guest-fstrim",
            "guest-fsfreeze-thaw",
            "guest-fsfreeze-freeze-list",
            "guest-fsfreeze-freeze",
            "guest-fsfreeze-status",
            "guest-file-flush",
            "guest-file-seek",
            "guest-file-write",
            "guest-file-read",
            "guest-file-close",
            "guest-file-open",
            "guest-shutdown",
            "guest-info",
            "guest-set-time",
            "guest-get-time",
            "guest-ping",
            "guest-sync",
            "guest-sync-delimited",
        ];
        let list: Vec<GuestAgentCommandInfo<'_>> = COMMANDS
            .iter()
            .map(|&name| GuestAgentCommandInfo {
                enabled: name != "guest-get-devices",
                name,
                success_response: !matches!(
                    name,
                    "guest-shutdown"
                        | "guest-suspend-disk"
                        | "guest-suspend-ram"
                        | "guest-suspend-hybrid"
                ),
            })
            .collect();
        let info = GuestAgentInfo {
            version: "7.2.22",
            supported_commands: &list,
        };
        let text = response(info);
        assert_eq!(text.len(), 3220);
        assert_eq!(text, APPENDIX_B);
    }

    const APPENDIX_B: &str = concat!(
        r#"{"return": {"version": "7.2.22", "supported_commands": [{"enabled": true, "name": "guest-get-cpustats", "success-response": true}, {"enabled": true, "name": "guest-get-diskstats", "success-response": true}, {"enabled": true, "name": "guest-ssh-remove-authorized-keys", "success-response": true}, {"enabled": true, "name": "guest-ssh-add-authorized-keys", "success-response": true}, {"enabled": true, "name": "guest-ssh-get-authorized-keys", "success-response": true}, {"enabled": false, "name": "guest-get-devices", "success-response": true}, {"enabled": true, "name": "guest-get-osinfo", "success-response": true}, {"enabled": true, "name": "guest-get-timezone", "success-response": true}, {"enabled": true, "name": "guest-get-users", "success-response": true}, {"enabled": true, "name": "guest-get-host-name", "success-response": true}, {"enabled": true, "name": "guest-exec", "success-response": true}, {"enabled": true, "name": "guest-exec-status", "success-response": true}, {"enabled": true, "name": "guest-get-memory-block-info", "success-response": true}, {"enabled": true, "name": "guest-set-memory-blocks", "success-response": true}, {"enabled": true, "name": "guest-get-memory-blocks", "success-response": true}, {"enabled": true, "name": "guest-set-user-password", "success-response": true}, {"enabled": true, "name": "guest-get-fsinfo", "success-response": true}, {"enabled": true, "name": "guest-get-disks", "success-response": true}, {"enabled": true, "name": "guest-set-vcpus", "success-response": true}, {"enabled": true, "name": "guest-get-vcpus", "success-response": true}, {"enabled": true, "name": "guest-network-get-interfaces", "success-response": true}, {"enabled": true, "name": "guest-suspend-hybrid", "success-response": false}, {"enabled": true, "name": "guest-suspend-ram", "success-response": false}, {"enabled": true, "name": "guest-suspend-disk", "success-response": false}, {"enabled": true, "name": "guest-fstrim", "success-response": true}, {"enabled": true, "name": "guest-fsfreeze-thaw", "success-response": true}, {"enabled": true, "name": "guest-fsfreeze-freeze-list", "success-response": true}, {"enabled": true, "name": "guest-fsfreeze-freeze", "success-response": true}, {"enabled": true, "name": "guest-fsfreeze-status", "success-response": true}, {"enabled": true, "name": "guest-file-flush", "success-response": true}, {"enabled": true, "name": "guest-file-seek", "success-response": true}, {"enabled": true, "name": "guest-file-write", "success-response": true}, {"enabled": true, "name": "guest-file-read", "success-response": true}, {"enabled": true, "name": "guest-file-close", "success-response": true}, {"enabled": true, "name": "guest-file-open", "success-response": true}, {"enabled": true, "name": "guest-shutdown", "success-response": false}, {"enabled": true, "name": "guest-info", "success-response": true}, {"enabled": true, "name": "guest-set-time", "success-response": true}, {"enabled": true, "name": "guest-get-time", "success-response": true}, {"enabled": true, "name": "guest-ping", "success-response": true}, {"enabled": true, "name": "guest-sync", "success-response": true}, {"enabled": true, "name": "guest-sync-delimited", "success-response": true}]}}"#,
        "\n"
    );
}
