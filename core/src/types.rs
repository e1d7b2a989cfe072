//! Return types of the qemu-ga commands (newest schema, the 43 Linux commands), ready for
//! [`crate::json::ser::to_writer`] on the agent side and for [`crate::client::de::from_value`] on
//! the host side.
//!
//! Every struct declares its fields in the order QEMU's QDict writes them (Appendix A of the
//! reference: bucket order of `tdb_hash`, not schema order), because the serializer streams fields
//! in declared order. The unit test at the bottom recomputes that order from the schema order with
//! [`crate::qdict::qdict_order`] for every type and fails if a declaration drifts.
//!
//! Optional members are `Option`s and are left out when `None`. Data is borrowed: strings the
//! agent builds itself are `&str`; strings read from the OS (file names, interface names, file
//! contents) are [`Bytes`], written with `\uFFFD` for invalid UTF-8 as QEMU does; captured process
//! output is [`Base64`], encoded while it is written. Lists are [`List`]s: a slice when the agent
//! writes one, the stored text of the JSON array when the client reads one (decoded element by
//! element with [`RawList::decode_each`], so that no allocation is needed).
//!
//! # Reading replies on the host
//!
//! Every type also implements `Deserialize` for [`crate::client::de`]: members are matched by
//! name whatever their order, unknown members are ignored (newer agents add some), missing
//! required members and wrong JSON types are errors. Decoding checks types and ranges only; the
//! `check` methods add the sanity checks a host should apply to data from a guest it does not
//! trust (modelled on libvirt's `qemu_agent.c`, which refuses what "shouldn't happen"). They
//! cover a value's own members; elements of a [`List`] are checked one by one as they are
//! decoded.
//!
//! Commands whose result is a bare `int`, `{}` or nothing need no type here (except
//! [`GuestTime`], which has a check). The agent streams `guest-file-read` replies itself;
//! [`GuestFileRead`] is their type on the host side.

use core::fmt;
use core::marker::PhantomData;

use base64::display::Base64Display;
use base64::engine::general_purpose::STANDARD;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::client::de::{BASE64_NEWTYPE, DeError, LIST_NEWTYPE, from_value, scan_array};
use crate::json::parse::Msg;

/// A string taken from the OS as raw bytes, which may not be UTF-8.
///
/// Serialised with `serialize_bytes`, which [`crate::json::ser`] writes as a JSON string decoded
/// as (modified) UTF-8 with `\uFFFD` replacements, cut at a NUL byte, like QEMU writes its C
/// strings.
///
/// Deserialised from a JSON string as borrowed bytes: with [`crate::client::de`], decoded to
/// modified UTF-8 (`\u0000` becomes `C0 80`), so that what the agent wrote comes back byte for
/// byte, except invalid UTF-8, which the agent already replaced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Bytes<'a>(pub &'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Bytes<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BytesVisitor;

        impl<'de> Visitor<'de> for BytesVisitor {
            type Value = Bytes<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Bytes<'de>, E> {
                Ok(Bytes(v))
            }

            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Bytes<'de>, E> {
                Ok(Bytes(v.as_bytes()))
            }
        }

        deserializer.deserialize_bytes(BytesVisitor)
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
///
/// Deserialised only by [`crate::client::de`], which decodes the base64 into its arena (strictly:
/// standard alphabet, canonical padding, else [`DeError::BadBase64`]); other deserializers fail,
/// as decoding would need an allocation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Base64<'a>(pub &'a [u8]);

impl Serialize for Base64<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&Base64Display::new(self.0, &STANDARD))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Base64<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Base64Visitor;

        impl<'de> Visitor<'de> for Base64Visitor {
            type Value = Base64<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a base64 string")
            }

            // `crate::client::de` hands over the decoded bytes.
            fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Base64<'de>, E> {
                Ok(Base64(v))
            }

            fn visit_newtype_struct<D: Deserializer<'de>>(
                self,
                _deserializer: D,
            ) -> Result<Base64<'de>, D::Error> {
                Err(de::Error::custom(
                    "Base64 can only be decoded by qga_core::client::de",
                ))
            }
        }

        deserializer.deserialize_newtype_struct(BASE64_NEWTYPE, Base64Visitor)
    }
}

// ---------------------------------------------------------------------------------------------
// Lists

/// A list member of a return type.
///
/// The agent writes [`List::Items`], a slice, as a JSON array. A client that reads a reply gets
/// [`List::Json`]: decoding a list into a slice would need an allocation, so the deserializer
/// hands over the array's stored text instead, and [`RawList::decode_each`] decodes the elements
/// one at a time.
///
/// Serialising [`List::Json`] fails (serde's custom error, `SerError::Unsupported` from
/// [`crate::json::ser`]): the text is not re-written. Deserialising works only with
/// [`crate::client::de`]. The two variants never compare equal.
#[derive(Debug, PartialEq, Eq)]
pub enum List<'a, T> {
    /// Elements in memory (what the agent writes).
    Items(&'a [T]),
    /// An array of a stored reply, not decoded yet (what the client reads).
    Json(RawList<'a>),
}

impl<T> Clone for List<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for List<'_, T> {}

impl<T> Default for List<'_, T> {
    /// No elements.
    fn default() -> Self {
        List::Items(&[])
    }
}

impl<'a, T> From<&'a [T]> for List<'a, T> {
    fn from(items: &'a [T]) -> Self {
        List::Items(items)
    }
}

impl<'a, T, const N: usize> From<&'a [T; N]> for List<'a, T> {
    fn from(items: &'a [T; N]) -> Self {
        List::Items(items)
    }
}

impl<T> List<'_, T> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            List::Items(items) => items.len(),
            List::Json(raw) => raw.len(),
        }
    }

    /// True if the list has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T: Serialize> Serialize for List<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            List::Items(items) => items.serialize(serializer),
            List::Json(_) => Err(serde::ser::Error::custom(
                "a List read from a reply cannot be serialised",
            )),
        }
    }
}

impl<'de: 'a, 'a, T> Deserialize<'de> for List<'a, T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListVisitor<'a, T>(PhantomData<fn() -> List<'a, T>>);

        impl<'de: 'a, 'a, T: 'a> Visitor<'de> for ListVisitor<'a, T> {
            type Value = List<'a, T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array")
            }

            // `crate::client::de` hands over the array's stored token text.
            fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<List<'a, T>, E> {
                RawList::new(v)
                    .map(List::Json)
                    .ok_or_else(|| E::custom("not the token text of an array"))
            }

            fn visit_newtype_struct<D: Deserializer<'de>>(
                self,
                _deserializer: D,
            ) -> Result<List<'a, T>, D::Error> {
                Err(de::Error::custom(
                    "List can only be decoded by qga_core::client::de",
                ))
            }
        }

        deserializer.deserialize_newtype_struct(LIST_NEWTYPE, ListVisitor(PhantomData))
    }
}

/// A JSON array of a stored reply (its tokens back to back, as the client keeps them), not
/// decoded yet.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RawList<'a> {
    text: &'a [u8],
    len: usize,
}

impl fmt::Debug for RawList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RawList");
        d.field("len", &self.len);
        match core::str::from_utf8(self.text) {
            Ok(text) => d.field("text", &text),
            Err(_) => d.field("text", &self.text),
        };
        d.finish()
    }
}

impl<'a> RawList<'a> {
    /// Wraps `text`, which must be the complete stored token text of one array; `None` if it is
    /// not (checked token by token, which also counts the elements).
    pub(crate) fn new(text: &'a [u8]) -> Option<Self> {
        scan_array(text).map(|len| RawList { text, len })
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The array's stored token text (tokens back to back, as in the client's buffer).
    pub fn text(&self) -> &'a [u8] {
        self.text
    }

    /// Decodes the elements in order as `T`, each with a fresh use of the whole `arena` (an
    /// element's borrowed data lives only until `f` returns), and calls `f(index, element)`.
    /// Stops at the first error, from decoding or from `f`. Returns the number of elements.
    ///
    /// ```
    /// # use qga_core::types::{GuestLogicalProcessor, List};
    /// # fn online(cpus: List<'_, GuestLogicalProcessor>) -> Result<usize, qga_core::client::de::DeError> {
    /// let mut online = 0;
    /// if let List::Json(raw) = cpus {
    ///     let mut arena = [0u8; 256];
    ///     raw.decode_each::<GuestLogicalProcessor, _>(&mut arena, |_, cpu| {
    ///         cpu.check()?;
    ///         online += usize::from(cpu.online);
    ///         Ok(())
    ///     })?;
    /// }
    /// # Ok(online)
    /// # }
    /// ```
    pub fn decode_each<T, F>(&self, arena: &mut [u8], mut f: F) -> Result<usize, DeError>
    where
        T: ListItem,
        F: for<'r> FnMut(usize, T::Of<'r>) -> Result<(), DeError>,
    {
        let msg = Msg { text: self.text };
        let array = msg.value_at(0).ok_or(DeError::Invalid)?;
        let mut count = 0;
        for v in msg.elements(array) {
            let item: T::Of<'_> = from_value(msg, v, &mut *arena)?;
            f(count, item)?;
            count += 1;
        }
        Ok(count)
    }
}

/// A type that can be a list element, named independently of the lifetime of its borrowed data,
/// so that [`RawList::decode_each`] can decode each element with a fresh borrow of its arena.
///
/// Implemented for the return types of this module, [`Bytes`], `&str` and the primitive types.
/// For a type `X<'a>` of your own: `impl ListItem for X<'_> { type Of<'r> = X<'r>; }`.
pub trait ListItem {
    /// This type with its borrowed data living for `'r`.
    type Of<'r>: Deserialize<'r>;
}

macro_rules! list_items {
    (borrowed: $($b:ident),*; owned: $($o:ty),* $(,)?) => {
        $(impl ListItem for $b<'_> {
            type Of<'r> = $b<'r>;
        })*
        $(impl ListItem for $o {
            type Of<'r> = $o;
        })*
    };
}

list_items! {
    borrowed: Bytes, GuestAgentCommandInfo, GuestFilesystemTrimResult, GuestIpAddress,
        GuestNetworkInterface, GuestDiskAddress, GuestDiskInfo, GuestFilesystemInfo,
        GuestUser, GuestDiskStatsInfo, GuestNetworkRoute;
    owned: bool, i64, u64, f64, GuestLogicalProcessor, GuestMemoryBlock,
        GuestMemoryBlockResponse, GuestCpuStats, GuestPCIAddress, GuestCCWAddress,
}

impl ListItem for &str {
    type Of<'r> = &'r str;
}

// ---------------------------------------------------------------------------------------------
// guest-info

/// One entry of `guest-info`'s command list.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
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
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestAgentInfo<'a> {
    /// Agent version string.
    pub version: &'a str,
    /// Every command the agent knows, in the order QEMU lists them (newest first).
    #[serde(rename = "supported_commands", borrow)]
    pub supported_commands: List<'a, GuestAgentCommandInfo<'a>>,
}

// ---------------------------------------------------------------------------------------------
// guest-file-*

/// Result of `guest-file-read` (for the host side: the agent streams this reply itself).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct GuestFileRead<'a> {
    /// Number of bytes read.
    pub count: i64,
    /// The bytes read, base64-encoded on the wire.
    #[serde(borrow)]
    pub buf_b64: Base64<'a>,
    /// Whether end of file was reached.
    pub eof: bool,
}

impl GuestFileRead<'_> {
    /// qemu-ga encodes exactly the `count` bytes it read: `count` must be non-negative
    /// ([`DeError::OutOfRange`]) and equal to the decoded length of `buf-b64`
    /// ([`DeError::Invalid`]).
    pub fn check(&self) -> Result<(), DeError> {
        let count = usize::try_from(self.count).map_err(|_| DeError::OutOfRange)?;
        if count != self.buf_b64.0.len() {
            return Err(DeError::Invalid);
        }
        Ok(())
    }

    /// [`check`](Self::check), and no more bytes than `requested` (the `count` argument sent;
    /// qemu-ga's default is 4096): the agent reads at most that many.
    pub fn check_request(&self, requested: i64) -> Result<(), DeError> {
        self.check()?;
        if self.count > requested {
            return Err(DeError::OutOfRange);
        }
        Ok(())
    }
}

/// Result of `guest-file-write`.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestFileWrite {
    /// Number of bytes written (may be short).
    pub count: i64,
    /// Whether end of file was reached (`feof()` on the stream).
    pub eof: bool,
}

impl GuestFileWrite {
    /// `count` is what `fwrite` returned, never negative ([`DeError::OutOfRange`]).
    pub fn check(&self) -> Result<(), DeError> {
        non_negative(self.count)
    }
}

/// Result of `guest-file-seek`.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestFileSeek {
    /// Whether end of file was reached.
    pub eof: bool,
    /// Current file position after the seek.
    pub position: i64,
}

impl GuestFileSeek {
    /// `position` is what `ftell` returned after a successful seek, never negative
    /// ([`DeError::OutOfRange`]).
    pub fn check(&self) -> Result<(), DeError> {
        non_negative(self.position)
    }
}

// ---------------------------------------------------------------------------------------------
// guest-fsfreeze-* and guest-fstrim

/// Result of `guest-fsfreeze-status`.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum GuestFsfreezeStatus {
    /// Filesystems are writable (`"thawed"`).
    Thawed,
    /// Filesystems are frozen (`"frozen"`).
    Frozen,
}

/// Outcome of trimming one mounted filesystem.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestFilesystemTrimResult<'a> {
    /// The `minimum` argument passed to `FITRIM`, when trimming succeeded.
    pub minimum: Option<i64>,
    /// Mount point of the filesystem.
    #[serde(borrow)]
    pub path: Bytes<'a>,
    /// Bytes trimmed, when trimming succeeded.
    pub trimmed: Option<i64>,
    /// Why trimming failed (a `strerror` text), when it did.
    #[serde(borrow)]
    pub error: Option<&'a str>,
}

impl GuestFilesystemTrimResult<'_> {
    /// qemu-ga reports either an `error`, or `trimmed` and `minimum` (taken from the `FITRIM`
    /// range, unsigned): both at once is [`DeError::Invalid`], a negative count
    /// [`DeError::OutOfRange`].
    pub fn check(&self) -> Result<(), DeError> {
        if self.error.is_some() && (self.trimmed.is_some() || self.minimum.is_some()) {
            return Err(DeError::Invalid);
        }
        self.trimmed.map_or(Ok(()), non_negative)?;
        self.minimum.map_or(Ok(()), non_negative)
    }
}

/// Result of `guest-fstrim`.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestFilesystemTrimResponse<'a> {
    /// One result per mounted filesystem.
    #[serde(borrow)]
    pub paths: List<'a, GuestFilesystemTrimResult<'a>>,
}

// ---------------------------------------------------------------------------------------------
// guest-network-get-interfaces

/// Kind of an IP address.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum GuestIpAddressType {
    /// IP version 4 (`"ipv4"`).
    Ipv4,
    /// IP version 6 (`"ipv6"`).
    Ipv6,
}

/// One address of a network interface.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct GuestIpAddress<'a> {
    /// Address family.
    pub ip_address_type: GuestIpAddressType,
    /// Address in text form (`inet_ntop`).
    pub ip_address: &'a str,
    /// Network prefix length.
    pub prefix: i64,
}

impl GuestIpAddress<'_> {
    /// The prefix length fits the address family: at most 32 for IPv4, 128 for IPv6
    /// ([`DeError::OutOfRange`]; libvirt reads it as an unsigned int).
    pub fn check(&self) -> Result<(), DeError> {
        let max = match self.ip_address_type {
            GuestIpAddressType::Ipv4 => 32,
            GuestIpAddressType::Ipv6 => 128,
        };
        in_range(self.prefix, 0, max)
    }
}

/// Traffic counters of a network interface (from `/proc/net/dev`).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
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
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct GuestNetworkInterface<'a> {
    /// Interface name.
    #[serde(borrow)]
    pub name: Bytes<'a>,
    /// Addresses assigned to the interface.
    #[serde(borrow)]
    pub ip_addresses: Option<List<'a, GuestIpAddress<'a>>>,
    /// Traffic counters (QEMU leaves them out for interfaces without an address).
    pub statistics: Option<GuestNetworkInterfaceStat>,
    /// Hardware (MAC) address, `xx:xx:xx:xx:xx:xx` in lower case.
    #[serde(borrow)]
    pub hardware_address: Option<&'a str>,
}

// ---------------------------------------------------------------------------------------------
// guest-get-vcpus

/// One logical CPU (`guest-get-vcpus`).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct GuestLogicalProcessor {
    /// Whether the CPU is online.
    pub online: bool,
    /// Whether the CPU can be taken offline; always filled in on output.
    pub can_offline: Option<bool>,
    /// CPU number.
    pub logical_id: i64,
}

impl GuestLogicalProcessor {
    /// The checks of libvirt's `qemuAgentGetVCPUs` and `qemuAgentUpdateCPUInfo`: `logical-id`
    /// fits an unsigned int ([`DeError::OutOfRange`]); `can-offline`, which the schema says the
    /// agent always fills in, is present ([`DeError::MissingField`]); and a vCPU that is offline
    /// must be offlinable, since the guest took it offline ([`DeError::Invalid`]; "this
    /// shouldn't happen, but we can't trust the guest agent").
    pub fn check(&self) -> Result<(), DeError> {
        in_range(self.logical_id, 0, u32::MAX.into())?;
        check_offline(self.online, self.can_offline)
    }
}

// ---------------------------------------------------------------------------------------------
// guest-get-disks and guest-get-fsinfo

/// Bus type of a disk.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
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

impl GuestPCIAddress {
    /// Each field is -1 (unknown, as qemu-ga writes it) or within what PCI allows: domain 32
    /// bits (Linux sysfs), bus 8 bits, slot (device) 5 bits, function 3 bits
    /// ([`DeError::OutOfRange`]).
    pub fn check(&self) -> Result<(), DeError> {
        let field = |v: i64, max: i64| if v == -1 { Ok(()) } else { in_range(v, 0, max) };
        field(self.domain, u32::MAX.into())?;
        field(self.bus, 0xFF)?;
        field(self.slot, 0x1F)?;
        field(self.function, 0x7)
    }
}

/// CCW address of a disk on s390x.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
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

impl GuestCCWAddress {
    /// Fields within the s390 channel-subsystem widths: cssid 8 bits, ssid 2 bits, subchannel
    /// and device numbers 16 bits ([`DeError::OutOfRange`]).
    pub fn check(&self) -> Result<(), DeError> {
        in_range(self.cssid, 0, 0xFF)?;
        in_range(self.ssid, 0, 0x3)?;
        in_range(self.subchno, 0, 0xFFFF)?;
        in_range(self.devno, 0, 0xFFFF)
    }
}

/// Hardware address of a disk.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct GuestDiskAddress<'a> {
    /// CCW address (s390x only).
    pub ccw_address: Option<GuestCCWAddress>,
    /// Disk serial number (from udev).
    #[serde(borrow)]
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
    #[serde(borrow)]
    pub dev: Option<Bytes<'a>>,
    /// Target id.
    pub target: i64,
}

impl GuestDiskAddress<'_> {
    /// The checks of [`GuestPCIAddress::check`] and [`GuestCCWAddress::check`].
    pub fn check(&self) -> Result<(), DeError> {
        self.pci_controller.check()?;
        self.ccw_address
            .as_ref()
            .map_or(Ok(()), GuestCCWAddress::check)
    }
}

/// Discriminator of [`GuestDiskSmart`]. QAPI's discriminator is [`GuestDiskBusType`], but only
/// its `nvme` branch carries data, so this type has just that value and cannot disagree with the
/// members that follow it.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum GuestDiskSmartType {
    /// `"nvme"`.
    Nvme,
}

/// SMART data of a disk: the `nvme` branch of the QAPI union `GuestDiskSmart`, with the
/// members of `GuestNVMeSmart` (the SMART / Health Information log page, 128-bit counters split
/// into `-lo`/`-hi` halves) and the `type` discriminator placed where the QDict puts it.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
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

impl GuestDiskSmart {
    /// Fields copied from one-byte fields of the NVMe SMART / Health log page (critical
    /// warning, available spare and its threshold, percentage used) fit a byte, and the
    /// composite temperature fits its two bytes ([`DeError::OutOfRange`]).
    pub fn check(&self) -> Result<(), DeError> {
        in_range(self.critical_warning, 0, 0xFF)?;
        in_range(self.available_spare, 0, 0xFF)?;
        in_range(self.available_spare_threshold, 0, 0xFF)?;
        in_range(self.percentage_used, 0, 0xFF)?;
        in_range(self.temperature, 0, 0xFFFF)
    }
}

/// One entry of `guest-get-disks`.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestDiskInfo<'a> {
    /// Device node (`/dev/vda`, `/dev/vda1`).
    #[serde(borrow)]
    pub name: Bytes<'a>,
    /// SMART data (NVMe disks only).
    pub smart: Option<GuestDiskSmart>,
    /// Devices this one depends on (for example the PVs of an LV); QEMU always fills it in on
    /// Linux, possibly empty.
    #[serde(borrow)]
    pub dependencies: Option<List<'a, Bytes<'a>>>,
    /// Whether this is a partition rather than a whole disk.
    pub partition: bool,
    /// Hardware address (not for virtual devices).
    #[serde(borrow)]
    pub address: Option<GuestDiskAddress<'a>>,
    /// Device-mapper name.
    #[serde(borrow)]
    pub alias: Option<Bytes<'a>>,
}

impl GuestDiskInfo<'_> {
    /// The checks of [`GuestDiskSmart::check`] and [`GuestDiskAddress::check`] on the members
    /// present.
    pub fn check(&self) -> Result<(), DeError> {
        self.smart.as_ref().map_or(Ok(()), GuestDiskSmart::check)?;
        self.address
            .as_ref()
            .map_or(Ok(()), GuestDiskAddress::check)
    }
}

/// One entry of `guest-get-fsinfo`.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct GuestFilesystemInfo<'a> {
    /// Disk name (the block device's kernel name, such as `vda1` or `dm-0`).
    #[serde(borrow)]
    pub name: Bytes<'a>,
    /// Capacity in bytes for unprivileged users (since 3.0).
    pub total_bytes: Option<u64>,
    /// Capacity in bytes for privileged users (since 9.1).
    pub total_bytes_privileged: Option<u64>,
    /// Mount point.
    #[serde(borrow)]
    pub mountpoint: Bytes<'a>,
    /// Disks the filesystem lies on; may be empty.
    #[serde(borrow)]
    pub disk: List<'a, GuestDiskAddress<'a>>,
    /// Bytes in use (since 3.0).
    pub used_bytes: Option<u64>,
    /// Filesystem type, such as `ext4`.
    #[serde(borrow)]
    pub r#type: Bytes<'a>,
}

impl GuestFilesystemInfo<'_> {
    /// qemu-ga computes `total-bytes` as the bytes used plus those available to unprivileged
    /// users, so `used-bytes` cannot exceed it ([`DeError::Invalid`]). The `disk` elements are
    /// checked with [`GuestDiskAddress::check`] as they are decoded.
    pub fn check(&self) -> Result<(), DeError> {
        match (self.used_bytes, self.total_bytes) {
            (Some(used), Some(total)) if used > total => Err(DeError::Invalid),
            _ => Ok(()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// guest-get-memory-blocks, guest-set-memory-blocks, guest-get-memory-block-info

/// One memory block (`guest-get-memory-blocks`).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct GuestMemoryBlock {
    /// Whether the block is online.
    pub online: bool,
    /// Whether the block can be taken offline; always filled in on output.
    pub can_offline: Option<bool>,
    /// Block number (`memoryN` in sysfs).
    pub phys_index: u64,
}

impl GuestMemoryBlock {
    /// `can-offline`, which the schema says the agent always fills in, is present
    /// ([`DeError::MissingField`]), and a block that is offline must be offlinable
    /// ([`DeError::Invalid`]), as for vCPUs.
    pub fn check(&self) -> Result<(), DeError> {
        check_offline(self.online, self.can_offline)
    }
}

/// The `can-offline` check shared by vCPUs and memory blocks: present, and true for anything
/// that is offline.
fn check_offline(online: bool, can_offline: Option<bool>) -> Result<(), DeError> {
    let can_offline = can_offline.ok_or(DeError::MissingField("can-offline"))?;
    if !online && !can_offline {
        return Err(DeError::Invalid);
    }
    Ok(())
}

/// Outcome of changing one memory block.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
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
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestMemoryBlockInfo {
    /// Size of one memory block in bytes.
    pub size: u64,
}

impl GuestMemoryBlockInfo {
    /// Linux memory blocks have a non-zero, power-of-two size (sysfs `block_size_bytes`)
    /// ([`DeError::Invalid`]).
    pub fn check(&self) -> Result<(), DeError> {
        if self.size.is_power_of_two() {
            Ok(())
        } else {
            Err(DeError::Invalid)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// guest-exec and guest-exec-status

/// Result of `guest-exec-status`.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct GuestExecStatus<'a> {
    /// Exit code, if the process exited normally.
    pub exitcode: Option<i64>,
    /// Captured stderr (written as base64), once the process has exited.
    #[serde(borrow)]
    pub err_data: Option<Base64<'a>>,
    /// Captured stdout (written as base64), once the process has exited.
    #[serde(borrow)]
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

impl GuestExecStatus<'_> {
    /// The status of a process that has not exited yet: nothing but `exited: false`.
    pub const RUNNING: GuestExecStatus<'static> = GuestExecStatus {
        exitcode: None,
        err_data: None,
        out_data: None,
        err_truncated: None,
        signal: None,
        out_truncated: None,
        exited: false,
    };

    /// What qemu-ga can produce: `exitcode`, `signal` and captured output only once the process
    /// has exited, and never both an exit code and a signal ([`DeError::Invalid`]); both come
    /// from a `gint` status (a Windows agent reports an NTSTATUS as the "signal"), and a signal
    /// is never 0 ([`DeError::OutOfRange`]).
    pub fn check(&self) -> Result<(), DeError> {
        let finished_only = self.exitcode.is_some()
            || self.signal.is_some()
            || self.out_data.is_some()
            || self.err_data.is_some()
            || self.out_truncated.is_some()
            || self.err_truncated.is_some();
        if (!self.exited && finished_only) || (self.exitcode.is_some() && self.signal.is_some()) {
            return Err(DeError::Invalid);
        }
        if let Some(code) = self.exitcode {
            in_range(code, i32::MIN.into(), i32::MAX.into())?;
        }
        if let Some(signal) = self.signal {
            in_range(signal, i32::MIN.into(), i32::MAX.into())?;
            if signal == 0 {
                return Err(DeError::OutOfRange);
            }
        }
        Ok(())
    }
}

/// Result of `guest-exec`.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestExec {
    /// Process id of the child.
    pub pid: i64,
}

impl GuestExec {
    /// A child's process id is positive ([`DeError::OutOfRange`]).
    pub fn check(&self) -> Result<(), DeError> {
        in_range(self.pid, 1, i64::MAX)
    }
}

// ---------------------------------------------------------------------------------------------
// guest-get-host-name, guest-get-users, guest-get-timezone, guest-get-osinfo

/// Result of `guest-get-host-name`.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct GuestHostName<'a> {
    /// Host name (`gethostname`).
    #[serde(borrow)]
    pub host_name: Bytes<'a>,
}

/// One entry of `guest-get-users`.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub struct GuestUser<'a> {
    /// Earliest login time of the user, in fractional seconds since the epoch.
    pub login_time: f64,
    /// Logon domain (Windows only).
    #[serde(borrow)]
    pub domain: Option<Bytes<'a>>,
    /// User name.
    #[serde(borrow)]
    pub user: Bytes<'a>,
}

impl GuestUser<'_> {
    /// A login time is a finite, non-negative number of seconds since the epoch
    /// ([`DeError::OutOfRange`]; libvirt converts it to unsigned milliseconds).
    pub fn check(&self) -> Result<(), DeError> {
        non_negative_float(self.login_time)
    }
}

/// Result of `guest-get-timezone`.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestTimezone<'a> {
    /// Time zone abbreviation (`tzname`), such as `UTC`.
    #[serde(borrow)]
    pub zone: Option<Bytes<'a>>,
    /// Offset from UTC in seconds, positive east of Greenwich.
    pub offset: i64,
}

impl GuestTimezone<'_> {
    /// A UTC offset is less than a day either way ([`DeError::OutOfRange`]; real ones stay
    /// within -12 h and +14 h).
    pub fn check(&self) -> Result<(), DeError> {
        in_range(self.offset, -86_399, 86_399)
    }
}

/// Result of `guest-get-osinfo`: `uname` fields and `os-release` values; absent ones are left
/// out.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct GuestOSInfo<'a> {
    /// os-release `NAME`.
    #[serde(borrow)]
    pub name: Option<Bytes<'a>>,
    /// `uname` release.
    #[serde(borrow)]
    pub kernel_release: Option<Bytes<'a>>,
    /// os-release `VERSION`.
    #[serde(borrow)]
    pub version: Option<Bytes<'a>>,
    /// os-release `VARIANT`.
    #[serde(borrow)]
    pub variant: Option<Bytes<'a>>,
    /// os-release `PRETTY_NAME`.
    #[serde(borrow)]
    pub pretty_name: Option<Bytes<'a>>,
    /// os-release `VERSION_ID`.
    #[serde(borrow)]
    pub version_id: Option<Bytes<'a>>,
    /// os-release `VARIANT_ID`.
    #[serde(borrow)]
    pub variant_id: Option<Bytes<'a>>,
    /// `uname` version.
    #[serde(borrow)]
    pub kernel_version: Option<Bytes<'a>>,
    /// `uname` machine.
    #[serde(borrow)]
    pub machine: Option<Bytes<'a>>,
    /// os-release `ID`.
    #[serde(borrow)]
    pub id: Option<Bytes<'a>>,
}

// ---------------------------------------------------------------------------------------------
// guest-ssh-get-authorized-keys

/// Result of `guest-ssh-get-authorized-keys`.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestAuthorizedKeys<'a> {
    /// Keys in `authorized_keys` format, one per entry.
    #[serde(borrow)]
    pub keys: List<'a, Bytes<'a>>,
}

// ---------------------------------------------------------------------------------------------
// guest-get-diskstats

/// I/O counters of a disk (`/proc/diskstats`); counters the kernel does not have are left out.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
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
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestDiskStatsInfo<'a> {
    /// Disk name, such as `vda`.
    #[serde(borrow)]
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
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum GuestCpuStatsType {
    /// `"linux"`.
    Linux,
}

/// One entry of `guest-get-cpustats`: the `linux` branch of the QAPI union `GuestCpuStats`
/// (members of `GuestLinuxCpuStats`), all times in milliseconds, with the `type` discriminator
/// placed where the QDict puts it.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
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

impl GuestCpuStats {
    /// The CPU index comes from a `cpuN` line and is non-negative ([`DeError::OutOfRange`]).
    pub fn check(&self) -> Result<(), DeError> {
        non_negative(self.cpu)
    }
}

// ---------------------------------------------------------------------------------------------
// guest-get-load

/// Result of `guest-get-load` (`getloadavg`).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
pub struct GuestLoadAverage {
    /// 15-minute load average.
    pub load15m: f64,
    /// 5-minute load average.
    pub load5m: f64,
    /// 1-minute load average.
    pub load1m: f64,
}

impl GuestLoadAverage {
    /// Load averages are finite and non-negative ([`DeError::OutOfRange`]).
    pub fn check(&self) -> Result<(), DeError> {
        non_negative_float(self.load1m)?;
        non_negative_float(self.load5m)?;
        non_negative_float(self.load15m)
    }
}

// ---------------------------------------------------------------------------------------------
// guest-network-get-route

/// One entry of `guest-network-get-route` (`/proc/net/route` and `/proc/net/ipv6_route`).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestNetworkRoute<'a> {
    /// Route flags.
    pub flags: Option<u64>,
    /// Source address (IPv6).
    #[serde(borrow)]
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
    #[serde(borrow)]
    pub nexthop: Option<&'a str>,
    /// Egress interface name.
    #[serde(borrow)]
    pub iface: Bytes<'a>,
    /// Destination network or host address.
    pub destination: &'a str,
    /// Destination prefix length (IPv6).
    #[serde(borrow)]
    pub desprefixlen: Option<&'a str>,
    /// Initial round-trip time (IPv4).
    pub irtt: Option<i64>,
    /// Gateway address.
    #[serde(borrow)]
    pub gateway: Option<&'a str>,
    /// Source prefix length (IPv6).
    #[serde(borrow)]
    pub srcprefixlen: Option<&'a str>,
    /// Usage count.
    pub r#use: Option<i64>,
    /// Maximum packet size.
    pub mtu: Option<i64>,
    /// Subnet mask (IPv4).
    #[serde(borrow)]
    pub mask: Option<&'a str>,
}

impl GuestNetworkRoute<'_> {
    /// The IP version is 4 or 6 ([`DeError::OutOfRange`]).
    pub fn check(&self) -> Result<(), DeError> {
        match self.version {
            4 | 6 => Ok(()),
            _ => Err(DeError::OutOfRange),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// guest-get-time

/// Result of `guest-get-time`: nanoseconds since the epoch (a bare integer on the wire).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[serde(transparent)]
pub struct GuestTime(pub i64);

impl GuestTime {
    /// The time comes from `gettimeofday` and cannot be before the epoch
    /// ([`DeError::OutOfRange`]; libvirt reads it as an unsigned long long).
    pub fn check(&self) -> Result<(), DeError> {
        non_negative(self.0)
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers of the checks

fn in_range(v: i64, min: i64, max: i64) -> Result<(), DeError> {
    if (min..=max).contains(&v) {
        Ok(())
    } else {
        Err(DeError::OutOfRange)
    }
}

fn non_negative(v: i64) -> Result<(), DeError> {
    in_range(v, 0, i64::MAX)
}

fn non_negative_float(v: f64) -> Result<(), DeError> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(DeError::OutOfRange)
    }
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
    use crate::client::de::tests::{
        decode, decode_member, decode_return, decode_with, leak_msg, round_trip, store,
    };
    use crate::client::de::{Arena, DeError, from_value, from_value_in};
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
                    supported_commands: List::Items(&[CMD]),
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
                json: json(&GuestFilesystemTrimResponse {
                    paths: List::Items(&[TRIM]),
                }),
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
                    ip_addresses: Some(List::Items(&ips)),
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
                    dependencies: Some(List::Items(&deps)),
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
                    disk: List::Items(&addresses),
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
                json: json(&GuestAuthorizedKeys {
                    keys: List::Items(&keys),
                }),
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
            disk: List::Items(&disk),
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
            dependencies: Some(List::Items(&[])),
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
        let none = GuestExecStatus::RUNNING;
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
            supported_commands: List::Items(&list),
        };
        let text = response(info);
        assert_eq!(text.len(), 3220);
        assert_eq!(text, APPENDIX_B);
    }

    const APPENDIX_B: &str = concat!(
        r#"{"return": {"version": "7.2.22", "supported_commands": [{"enabled": true, "name": "guest-get-cpustats", "success-response": true}, {"enabled": true, "name": "guest-get-diskstats", "success-response": true}, {"enabled": true, "name": "guest-ssh-remove-authorized-keys", "success-response": true}, {"enabled": true, "name": "guest-ssh-add-authorized-keys", "success-response": true}, {"enabled": true, "name": "guest-ssh-get-authorized-keys", "success-response": true}, {"enabled": false, "name": "guest-get-devices", "success-response": true}, {"enabled": true, "name": "guest-get-osinfo", "success-response": true}, {"enabled": true, "name": "guest-get-timezone", "success-response": true}, {"enabled": true, "name": "guest-get-users", "success-response": true}, {"enabled": true, "name": "guest-get-host-name", "success-response": true}, {"enabled": true, "name": "guest-exec", "success-response": true}, {"enabled": true, "name": "guest-exec-status", "success-response": true}, {"enabled": true, "name": "guest-get-memory-block-info", "success-response": true}, {"enabled": true, "name": "guest-set-memory-blocks", "success-response": true}, {"enabled": true, "name": "guest-get-memory-blocks", "success-response": true}, {"enabled": true, "name": "guest-set-user-password", "success-response": true}, {"enabled": true, "name": "guest-get-fsinfo", "success-response": true}, {"enabled": true, "name": "guest-get-disks", "success-response": true}, {"enabled": true, "name": "guest-set-vcpus", "success-response": true}, {"enabled": true, "name": "guest-get-vcpus", "success-response": true}, {"enabled": true, "name": "guest-network-get-interfaces", "success-response": true}, {"enabled": true, "name": "guest-suspend-hybrid", "success-response": false}, {"enabled": true, "name": "guest-suspend-ram", "success-response": false}, {"enabled": true, "name": "guest-suspend-disk", "success-response": false}, {"enabled": true, "name": "guest-fstrim", "success-response": true}, {"enabled": true, "name": "guest-fsfreeze-thaw", "success-response": true}, {"enabled": true, "name": "guest-fsfreeze-freeze-list", "success-response": true}, {"enabled": true, "name": "guest-fsfreeze-freeze", "success-response": true}, {"enabled": true, "name": "guest-fsfreeze-status", "success-response": true}, {"enabled": true, "name": "guest-file-flush", "success-response": true}, {"enabled": true, "name": "guest-file-seek", "success-response": true}, {"enabled": true, "name": "guest-file-write", "success-response": true}, {"enabled": true, "name": "guest-file-read", "success-response": true}, {"enabled": true, "name": "guest-file-close", "success-response": true}, {"enabled": true, "name": "guest-file-open", "success-response": true}, {"enabled": true, "name": "guest-shutdown", "success-response": false}, {"enabled": true, "name": "guest-info", "success-response": true}, {"enabled": true, "name": "guest-set-time", "success-response": true}, {"enabled": true, "name": "guest-get-time", "success-response": true}, {"enabled": true, "name": "guest-ping", "success-response": true}, {"enabled": true, "name": "guest-sync", "success-response": true}, {"enabled": true, "name": "guest-sync-delimited", "success-response": true}]}}"#,
        "\n"
    );

    // -----------------------------------------------------------------------------------------
    // The host side: what the agent writes, read back with `crate::client::de`.

    /// Decodes a [`List::Json`] element by element and compares it with `expected`.
    macro_rules! assert_list {
        ($list:expr, $item:ty, $expected:expr) => {{
            let expected = $expected;
            let List::Json(raw) = $list else {
                panic!("not a list read from JSON: {:?}", $list)
            };
            assert_eq!(raw.len(), expected.len());
            assert_eq!(raw.is_empty(), expected.is_empty());
            let mut arena = [0u8; 512];
            let n = raw
                .decode_each::<$item, _>(&mut arena, |i, item| {
                    assert_eq!(item, expected[i], "element {i}");
                    Ok(())
                })
                .unwrap();
            assert_eq!(n, expected.len());
        }};
    }

    fn same<T>(value: T)
    where
        T: Serialize + Deserialize<'static> + PartialEq + core::fmt::Debug,
    {
        assert_eq!(round_trip(&value), value);
    }

    /// A disk address whose strings survive the writer (valid UTF-8, no NUL; `C0 80` is
    /// written as `\u0000` and read back as `C0 80`).
    fn plain_disk_address() -> GuestDiskAddress<'static> {
        GuestDiskAddress {
            serial: Some(Bytes("SER-\u{e9}1".as_bytes())),
            dev: Some(Bytes(b"/dev/vd\xc0\x80a")),
            ..disk_address()
        }
    }

    const CMD2: GuestAgentCommandInfo<'static> = GuestAgentCommandInfo {
        enabled: false,
        name: "guest-get-devices",
        success_response: false,
    };

    /// Every type, fully populated, goes through the agent's writer, streamer and parser and
    /// comes back equal.
    #[test]
    fn round_trip_types_without_lists() {
        same(CMD);
        same(GuestFileRead {
            count: 3,
            buf_b64: Base64(b"Wor"),
            eof: false,
        });
        same(GuestFileWrite {
            count: 14,
            eof: true,
        });
        same(GuestFileSeek {
            eof: false,
            position: 6,
        });
        same(TRIM);
        same(GuestFilesystemTrimResult {
            minimum: None,
            path: Bytes("/m\u{e9}dia".as_bytes()),
            trimmed: None,
            error: Some("trim not supported: \"quoted\"\n"),
        });
        same(IP);
        same(STAT);
        same(GuestLogicalProcessor {
            online: false,
            can_offline: Some(true),
            logical_id: 63,
        });
        same(PCI);
        same(GuestPCIAddress {
            bus: -1,
            slot: -1,
            domain: -1,
            function: -1,
        });
        same(CCW);
        same(plain_disk_address());
        same(SMART);
        same(GuestMemoryBlock {
            online: true,
            can_offline: Some(false),
            phys_index: u64::MAX,
        });
        same(GuestMemoryBlockResponse {
            response: GuestMemoryBlockResponseType::OperationFailed,
            error_code: Some(16),
            phys_index: 7,
        });
        same(GuestMemoryBlockInfo { size: 134_217_728 });
        same(GuestExecStatus {
            exitcode: Some(0),
            err_data: Some(Base64(b"err\n")),
            out_data: Some(Base64(&[0, 1, 2, 0xFF, 0xFE])),
            err_truncated: Some(false),
            signal: Some(9),
            out_truncated: Some(true),
            exited: true,
        });
        same(GuestExec { pid: 5522 });
        same(GuestHostName {
            host_name: Bytes(b"vm"),
        });
        same(GuestUser {
            login_time: 1_700_000_000.25,
            domain: Some(Bytes(b"WORKGROUP")),
            user: Bytes("j\u{fc}rgen".as_bytes()),
        });
        same(GuestUser {
            login_time: 0.1,
            domain: None,
            user: Bytes(b"root"),
        });
        same(GuestTimezone {
            zone: Some(Bytes(b"CET")),
            offset: -3600,
        });
        same(GuestOSInfo {
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
        });
        same(GuestOSInfo::default());
        same(DISK_STATS);
        same(GuestDiskStats::default());
        same(GuestDiskStatsInfo {
            name: Bytes(b"vda"),
            stats: DISK_STATS,
            minor: 0,
            major: 253,
        });
        same(GuestCpuStats {
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
            user: u64::MAX,
            softirq: Some(10),
        });
        same(GuestLoadAverage {
            load15m: 0.05,
            load5m: 0.1,
            load1m: 0.0,
        });
        same(GuestNetworkRoute {
            flags: Some(3),
            source: Some("::"),
            metric: 100,
            refcnt: Some(0),
            window: Some(0),
            version: 6,
            nexthop: Some("fe80::1"),
            iface: Bytes(b"eth0"),
            destination: "::",
            desprefixlen: Some("0"),
            irtt: Some(0),
            gateway: Some("10.0.2.2"),
            srcprefixlen: Some("0"),
            r#use: Some(0),
            mtu: Some(1500),
            mask: Some("0.0.0.0"),
        });
        same(GuestTime(1_795_690_610_553_972_000));
        same(Bytes("caf\u{e9} \u{1f600} \"\\/\t".as_bytes()));
        same(Base64(b""));
        same(Base64(b"\xfb\xff\x00"));
    }

    #[test]
    fn round_trip_enums() {
        use GuestDiskBusType as B;
        for bus in [
            B::Ide,
            B::Fdc,
            B::Scsi,
            B::Virtio,
            B::Xen,
            B::Usb,
            B::Uml,
            B::Sata,
            B::Sd,
            B::Unknown,
            B::Ieee1394,
            B::Ssa,
            B::Fibre,
            B::Raid,
            B::Iscsi,
            B::Sas,
            B::Mmc,
            B::Virtual,
            B::FileBackedVirtual,
            B::Nvme,
        ] {
            same(bus);
        }
        use GuestMemoryBlockResponseType as R;
        for r in [
            R::Success,
            R::NotFound,
            R::OperationNotSupported,
            R::OperationFailed,
        ] {
            same(r);
        }
        same(GuestFsfreezeStatus::Thawed);
        same(GuestFsfreezeStatus::Frozen);
        same(GuestIpAddressType::Ipv4);
        same(GuestIpAddressType::Ipv6);
        same(GuestCpuStatsType::Linux);
        same(GuestDiskSmartType::Nvme);
        assert_eq!(
            decode::<GuestDiskBusType>("\"floppy\""),
            Err(DeError::UnknownVariant)
        );
        assert_eq!(
            decode::<GuestDiskSmartType>("\"scsi\""),
            Err(DeError::UnknownVariant)
        );
    }

    /// The six types with list members: the list comes back as JSON and decodes element by
    /// element to what was written; the other members compare equal.
    #[test]
    fn round_trip_types_with_lists() {
        let info = GuestAgentInfo {
            version: "10.2.0",
            supported_commands: List::Items(&[CMD, CMD2]),
        };
        let back = round_trip(&info);
        assert_list!(back.supported_commands, GuestAgentCommandInfo, [CMD, CMD2]);
        assert_eq!(
            GuestAgentInfo {
                supported_commands: info.supported_commands,
                ..back
            },
            info
        );

        let trims = [TRIM, TRIM];
        let response = GuestFilesystemTrimResponse {
            paths: List::from(&trims),
        };
        assert_list!(
            round_trip(&response).paths,
            GuestFilesystemTrimResult,
            trims
        );

        let ips = [
            IP,
            GuestIpAddress {
                ip_address_type: GuestIpAddressType::Ipv4,
                ip_address: "10.0.2.15",
                prefix: 24,
            },
        ];
        let iface = GuestNetworkInterface {
            name: Bytes(b"eth0"),
            ip_addresses: Some(List::from(&ips)),
            statistics: Some(STAT),
            hardware_address: Some("52:54:00:12:34:56"),
        };
        let back = round_trip(&iface);
        assert_list!(back.ip_addresses.unwrap(), GuestIpAddress, ips);
        assert_eq!(
            GuestNetworkInterface {
                ip_addresses: iface.ip_addresses,
                ..back
            },
            iface
        );

        let deps = [Bytes(b"dm-0"), Bytes("sd\u{e9}".as_bytes()), Bytes(b"")];
        let disk = GuestDiskInfo {
            name: Bytes(b"/dev/nvme0n1"),
            smart: Some(SMART),
            dependencies: Some(List::from(&deps)),
            partition: false,
            address: Some(plain_disk_address()),
            alias: Some(Bytes(b"luks-\xc3\xa9")),
        };
        let back = round_trip(&disk);
        assert_list!(back.dependencies.unwrap(), Bytes, deps);
        assert_eq!(
            GuestDiskInfo {
                dependencies: disk.dependencies,
                ..back
            },
            disk
        );

        let addresses = [
            plain_disk_address(),
            GuestDiskAddress {
                ccw_address: None,
                serial: None,
                dev: None,
                ..disk_address()
            },
        ];
        let fs = GuestFilesystemInfo {
            name: Bytes(b"vda1"),
            total_bytes: Some(2),
            total_bytes_privileged: Some(3),
            mountpoint: Bytes("/mnt/\u{e9}".as_bytes()),
            disk: List::from(&addresses),
            used_bytes: Some(1),
            r#type: Bytes(b"ext4"),
        };
        let back = round_trip(&fs);
        assert_list!(back.disk, GuestDiskAddress, addresses);
        assert_eq!(
            GuestFilesystemInfo {
                disk: fs.disk,
                ..back
            },
            fs
        );

        let keys = [
            Bytes(b"ssh-ed25519 AAAA user@host"),
            Bytes(b"ssh-rsa BBBB other@host"),
        ];
        let back = round_trip(&GuestAuthorizedKeys {
            keys: List::from(&keys),
        });
        assert_list!(back.keys, Bytes, keys);

        // Empty lists, and a command returning a list (`guest-get-vcpus`).
        let none = GuestAuthorizedKeys {
            keys: List::default(),
        };
        assert!(round_trip(&none).keys.is_empty());
        let vcpus = [
            GuestLogicalProcessor {
                online: true,
                can_offline: Some(true),
                logical_id: 1,
            },
            GuestLogicalProcessor {
                online: true,
                can_offline: None,
                logical_id: 0,
            },
        ];
        let back: List<'_, GuestLogicalProcessor> = round_trip(&List::from(&vcpus));
        assert_eq!(back.len(), 2);
        assert_list!(back, GuestLogicalProcessor, vcpus);
    }

    #[test]
    fn lists_read_from_json() {
        let list: List<'_, GuestLogicalProcessor> = decode(
            "[{\"logical-id\": 0, \"online\": true}, {\"online\": false, \"logical-id\": \"1\"}]",
        )
        .unwrap();
        let List::Json(raw) = list else {
            panic!("{list:?}")
        };
        assert_eq!(raw.len(), 2);
        assert_eq!(
            raw.text(),
            b"[{\"logical-id\":0,\"online\":true},{\"online\":false,\"logical-id\":\"1\"}]"
        );
        assert!(std::format!("{raw:?}").contains("len: 2"));
        // Decoding stops at the first element that does not decode...
        let mut seen = 0;
        let mut arena = [0u8; 16];
        assert_eq!(
            raw.decode_each::<GuestLogicalProcessor, _>(&mut arena, |_, _| {
                seen += 1;
                Ok(())
            }),
            Err(DeError::WrongType {
                expected: "integer"
            })
        );
        assert_eq!(seen, 1);
        // ... or at the first error of the callback.
        assert_eq!(
            raw.decode_each::<GuestLogicalProcessor, _>(&mut arena, |_, _| Err(DeError::Invalid)),
            Err(DeError::Invalid)
        );
        // Every element gets the whole arena again.
        let keys: List<'_, Bytes> = decode("[\"a\\u00e9\", \"b\\u00e9\", \"c\\u00e9\"]").unwrap();
        let List::Json(raw) = keys else { panic!() };
        let mut arena = [0u8; 3];
        let mut firsts = [0u8; 3];
        assert_eq!(
            raw.decode_each::<Bytes, _>(&mut arena, |i, key| {
                assert_eq!(key.0.len(), 3);
                firsts[i] = key.0[0];
                Ok(())
            }),
            Ok(3)
        );
        assert_eq!(&firsts, b"abc");
        assert_eq!(
            raw.decode_each::<Bytes, _>(&mut arena[..2], |_, _| Ok(())),
            Err(DeError::ArenaFull)
        );
        // Strings and primitives as elements.
        let names: List<'_, &str> = decode("[\"x\", \"y\\n\"]").unwrap();
        if let List::Json(raw) = names {
            assert_eq!(
                raw.decode_each::<&str, _>(&mut arena, |i, s| {
                    assert_eq!(s, ["x", "y\n"][i]);
                    Ok(())
                }),
                Ok(2)
            );
        }
        // A list must be an array.
        assert_eq!(
            decode::<List<'_, i64>>("{}"),
            Err(DeError::WrongType { expected: "array" })
        );
        assert_eq!(
            decode::<GuestAuthorizedKeys>("{\"keys\": null}"),
            Err(DeError::WrongType { expected: "array" })
        );
        assert_eq!(
            decode::<GuestNetworkInterface>("{\"name\": \"lo\", \"ip-addresses\": null}")
                .map(|i| i.ip_addresses.is_none()),
            Ok(true)
        );
    }

    #[test]
    fn lists_read_from_json_are_not_serialised() {
        use crate::json::ser::{SerError, serialized_len};
        let keys: GuestAuthorizedKeys<'_> = decode("{\"keys\": [\"k\"]}").unwrap();
        assert_eq!(serialized_len(&keys), Err(SerError::Unsupported));
        let iface: GuestNetworkInterface<'_> =
            decode("{\"name\": \"lo\", \"ip-addresses\": []}").unwrap();
        assert_eq!(serialized_len(&iface), Err(SerError::Unsupported));
        assert_eq!(
            serialized_len(&GuestAuthorizedKeys {
                keys: List::default()
            }),
            Ok(12)
        );
    }

    #[test]
    fn other_deserializers() {
        // `Bytes` works with any deserializer that lends strings; `Base64` and `List` need this
        // crate's and fail cleanly elsewhere.
        assert_eq!(
            serde_json::from_str::<Bytes<'_>>("\"abc\"").unwrap(),
            Bytes(b"abc")
        );
        assert!(serde_json::from_str::<Base64<'_>>("\"YWJj\"").is_err());
        assert!(serde_json::from_str::<List<'_, i64>>("[1]").is_err());
        assert!(serde_json::from_str::<GuestAuthorizedKeys<'_>>("{\"keys\": []}").is_err());
    }

    #[test]
    fn guest_file_read_is_in_qdict_order() {
        let schema = ["count", "buf-b64", "eof"];
        let mut order = [0usize; 3];
        qdict_order(&schema, &mut order);
        let expected: Vec<&str> = order.iter().map(|&i| schema[i]).collect();
        assert_eq!(expected, ["count", "buf-b64", "eof"]);
        let read = GuestFileRead {
            count: 3,
            buf_b64: Base64(b"Wor"),
            eof: false,
        };
        assert_eq!(top_keys(&json(&read)), expected);
        assert_eq!(
            response(read),
            "{\"return\": {\"count\": 3, \"buf-b64\": \"V29y\", \"eof\": false}}\n"
        );
        assert_eq!(json(&GuestTime(-1)), "-1");
    }

    /// Replies of every shape are read strictly: wrong types, numbers out of range, missing
    /// members, bad base64 and a full arena are errors, never panics; unknown members are
    /// ignored.
    #[test]
    fn strict_reading() {
        assert_eq!(
            decode::<GuestFileWrite>("{\"count\": 14}"),
            Err(DeError::MissingField("eof"))
        );
        assert_eq!(
            decode::<GuestFileWrite>("{\"count\": \"14\", \"eof\": false}"),
            Err(DeError::WrongType {
                expected: "integer"
            })
        );
        assert_eq!(
            decode::<GuestFileWrite>("{\"count\": 14.0, \"eof\": false}"),
            Err(DeError::WrongType {
                expected: "integer"
            })
        );
        assert_eq!(
            decode::<GuestFileWrite>("{\"count\": 14, \"eof\": 0}"),
            Err(DeError::WrongType {
                expected: "boolean"
            })
        );
        assert_eq!(
            decode::<GuestFileWrite>("{\"count\": 9223372036854775808, \"eof\": false}"),
            Err(DeError::OutOfRange)
        );
        assert_eq!(
            decode::<GuestMemoryBlock>("{\"online\": true, \"phys-index\": -1}"),
            Err(DeError::OutOfRange)
        );
        assert_eq!(
            decode::<GuestHostName>("{\"host-name\": null}"),
            Err(DeError::WrongType { expected: "string" })
        );
        assert_eq!(
            decode::<GuestTimezone>("{\"zone\": null, \"offset\": 0}"),
            Ok(GuestTimezone {
                zone: None,
                offset: 0
            })
        );
        assert_eq!(
            decode::<GuestFileSeek>(
                "{\"future\": [1, {\"x\": \"\\u00e9\"}], \"position\": 6, \"eof\": true, \"z\": null}"
            ),
            Ok(GuestFileSeek {
                eof: true,
                position: 6
            })
        );
        assert_eq!(
            decode::<GuestExecStatus>("{\"exited\": true, \"out-data\": \"not base64!\"}"),
            Err(DeError::BadBase64)
        );
        assert_eq!(
            decode::<GuestExecStatus>("{\"exited\": true, \"out-data\": 12}"),
            Err(DeError::WrongType { expected: "string" })
        );
        let big = std::format!(
            "{{\"exited\": true, \"out-data\": \"{}\"}}",
            "QUJD".repeat(100)
        );
        assert_eq!(
            decode_with::<GuestExecStatus>(&big, 299),
            Err(DeError::ArenaFull)
        );
        assert_eq!(
            decode_with::<GuestExecStatus>(&big, 300).map(|s| s.out_data.map(|d| d.0.len())),
            Ok(Some(300))
        );
        assert_eq!(
            decode_with::<GuestHostName>("{\"host-name\": \"v\\u006d\"}", 1),
            Err(DeError::ArenaFull)
        );
        assert_eq!(
            decode_with::<GuestHostName>("{\"host-name\": \"v\\u006d\"}", 2),
            Ok(GuestHostName {
                host_name: Bytes(b"vm")
            })
        );
        assert_eq!(
            decode::<GuestIpAddress>(
                "{\"ip-address-type\": \"ipv5\", \"ip-address\": \"x\", \"prefix\": 1}"
            ),
            Err(DeError::UnknownVariant)
        );
        assert_eq!(
            decode::<GuestUser>("{\"login-time\": \"now\", \"user\": \"u\"}"),
            Err(DeError::WrongType { expected: "number" })
        );
        assert_eq!(
            decode::<GuestLoadAverage>("{\"load1m\": 1, \"load5m\": 0, \"load15m\": 2.5e-1}"),
            Ok(GuestLoadAverage {
                load15m: 0.25,
                load5m: 0.0,
                load1m: 1.0
            })
        );
    }

    #[test]
    fn checks() {
        let read = |count: i64, data: &'static [u8]| GuestFileRead {
            count,
            buf_b64: Base64(data),
            eof: false,
        };
        assert_eq!(read(3, b"Wor").check(), Ok(()));
        assert_eq!(read(0, b"").check(), Ok(()));
        assert_eq!(read(-1, b"").check(), Err(DeError::OutOfRange));
        assert_eq!(read(4, b"Wor").check(), Err(DeError::Invalid));
        assert_eq!(read(2, b"Wor").check(), Err(DeError::Invalid));
        assert_eq!(read(3, b"Wor").check_request(3), Ok(()));
        assert_eq!(read(3, b"Wor").check_request(2), Err(DeError::OutOfRange));

        assert_eq!(
            GuestFileWrite {
                count: 0,
                eof: true
            }
            .check(),
            Ok(())
        );
        assert_eq!(
            GuestFileWrite {
                count: -1,
                eof: false
            }
            .check(),
            Err(DeError::OutOfRange)
        );
        assert_eq!(
            GuestFileSeek {
                eof: false,
                position: -5
            }
            .check(),
            Err(DeError::OutOfRange)
        );

        let trim_ok = GuestFilesystemTrimResult {
            error: None,
            ..TRIM
        };
        assert_eq!(trim_ok.check(), Ok(()));
        let trim_err = GuestFilesystemTrimResult {
            minimum: None,
            trimmed: None,
            ..TRIM
        };
        assert_eq!(trim_err.check(), Ok(()));
        assert_eq!(TRIM.check(), Err(DeError::Invalid));
        assert_eq!(
            GuestFilesystemTrimResult {
                trimmed: Some(-1),
                ..trim_ok
            }
            .check(),
            Err(DeError::OutOfRange)
        );

        assert_eq!(IP.check(), Ok(()));
        assert_eq!(GuestIpAddress { prefix: 128, ..IP }.check(), Ok(()));
        assert_eq!(
            GuestIpAddress { prefix: 129, ..IP }.check(),
            Err(DeError::OutOfRange)
        );
        assert_eq!(
            GuestIpAddress { prefix: -1, ..IP }.check(),
            Err(DeError::OutOfRange)
        );
        let v4 = GuestIpAddress {
            ip_address_type: GuestIpAddressType::Ipv4,
            ip_address: "10.0.2.15",
            prefix: 32,
        };
        assert_eq!(v4.check(), Ok(()));
        assert_eq!(
            GuestIpAddress { prefix: 33, ..v4 }.check(),
            Err(DeError::OutOfRange)
        );

        let cpu = |online, can_offline, logical_id| GuestLogicalProcessor {
            online,
            can_offline,
            logical_id,
        };
        assert_eq!(cpu(true, Some(false), 0).check(), Ok(()));
        assert_eq!(cpu(false, Some(true), 1).check(), Ok(()));
        assert_eq!(
            cpu(true, None, 1).check(),
            Err(DeError::MissingField("can-offline"))
        );
        assert_eq!(cpu(false, Some(false), 1).check(), Err(DeError::Invalid));
        assert_eq!(cpu(true, Some(true), -1).check(), Err(DeError::OutOfRange));
        assert_eq!(
            cpu(true, Some(true), 1 << 32).check(),
            Err(DeError::OutOfRange)
        );
        let block = |online, can_offline| GuestMemoryBlock {
            online,
            can_offline,
            phys_index: 7,
        };
        assert_eq!(block(true, Some(false)).check(), Ok(()));
        assert_eq!(block(false, Some(true)).check(), Ok(()));
        assert_eq!(block(false, Some(false)).check(), Err(DeError::Invalid));
        assert_eq!(
            block(true, None).check(),
            Err(DeError::MissingField("can-offline"))
        );

        assert_eq!(PCI.check(), Ok(()));
        let unknown = GuestPCIAddress {
            bus: -1,
            slot: -1,
            domain: -1,
            function: -1,
        };
        assert_eq!(unknown.check(), Ok(()));
        assert_eq!(
            GuestPCIAddress { slot: 32, ..PCI }.check(),
            Err(DeError::OutOfRange)
        );
        assert_eq!(
            GuestPCIAddress { function: 8, ..PCI }.check(),
            Err(DeError::OutOfRange)
        );
        assert_eq!(
            GuestPCIAddress { bus: 256, ..PCI }.check(),
            Err(DeError::OutOfRange)
        );
        assert_eq!(
            GuestPCIAddress { domain: -2, ..PCI }.check(),
            Err(DeError::OutOfRange)
        );
        assert_eq!(CCW.check(), Ok(()));
        assert_eq!(
            GuestCCWAddress { ssid: 4, ..CCW }.check(),
            Err(DeError::OutOfRange)
        );
        assert_eq!(
            GuestCCWAddress {
                devno: 0x10000,
                ..CCW
            }
            .check(),
            Err(DeError::OutOfRange)
        );
        assert_eq!(disk_address().check(), Ok(()));
        let bad_ccw = GuestDiskAddress {
            ccw_address: Some(GuestCCWAddress { cssid: 256, ..CCW }),
            ..disk_address()
        };
        assert_eq!(bad_ccw.check(), Err(DeError::OutOfRange));

        assert_eq!(SMART.check(), Ok(()));
        assert_eq!(
            GuestDiskSmart {
                percentage_used: 256,
                ..SMART
            }
            .check(),
            Err(DeError::OutOfRange)
        );
        assert_eq!(
            GuestDiskSmart {
                temperature: -1,
                ..SMART
            }
            .check(),
            Err(DeError::OutOfRange)
        );
        let disk = GuestDiskInfo {
            name: Bytes(b"/dev/vda"),
            smart: Some(SMART),
            dependencies: None,
            partition: false,
            address: Some(bad_ccw),
            alias: None,
        };
        assert_eq!(disk.check(), Err(DeError::OutOfRange));
        assert_eq!(
            GuestDiskInfo {
                address: None,
                ..disk
            }
            .check(),
            Ok(())
        );

        let fs = GuestFilesystemInfo {
            name: Bytes(b"vda1"),
            total_bytes: Some(10),
            total_bytes_privileged: None,
            mountpoint: Bytes(b"/"),
            disk: List::default(),
            used_bytes: Some(10),
            r#type: Bytes(b"ext4"),
        };
        assert_eq!(fs.check(), Ok(()));
        assert_eq!(
            GuestFilesystemInfo {
                used_bytes: Some(11),
                ..fs
            }
            .check(),
            Err(DeError::Invalid)
        );
        assert_eq!(
            GuestFilesystemInfo {
                total_bytes: None,
                used_bytes: Some(11),
                ..fs
            }
            .check(),
            Ok(())
        );

        assert_eq!(GuestMemoryBlockInfo { size: 128 << 20 }.check(), Ok(()));
        assert_eq!(
            GuestMemoryBlockInfo { size: 0 }.check(),
            Err(DeError::Invalid)
        );
        assert_eq!(
            GuestMemoryBlockInfo { size: 3 << 20 }.check(),
            Err(DeError::Invalid)
        );

        let running = GuestExecStatus::RUNNING;
        assert_eq!(running.check(), Ok(()));
        let done = GuestExecStatus {
            exitcode: Some(3),
            out_data: Some(Base64(b"x")),
            out_truncated: Some(false),
            exited: true,
            ..running
        };
        assert_eq!(done.check(), Ok(()));
        let killed = GuestExecStatus {
            signal: Some(9),
            exited: true,
            ..running
        };
        assert_eq!(killed.check(), Ok(()));
        // A Windows agent reports an NTSTATUS (a negative gint) as the signal.
        assert_eq!(
            GuestExecStatus {
                signal: Some(i64::from(0xC000_0005_u32 as i32)),
                ..killed
            }
            .check(),
            Ok(())
        );
        assert_eq!(
            GuestExecStatus {
                exited: false,
                ..done
            }
            .check(),
            Err(DeError::Invalid)
        );
        assert_eq!(
            GuestExecStatus {
                out_data: Some(Base64(b"early")),
                ..running
            }
            .check(),
            Err(DeError::Invalid)
        );
        assert_eq!(
            GuestExecStatus {
                signal: Some(9),
                ..done
            }
            .check(),
            Err(DeError::Invalid)
        );
        assert_eq!(
            GuestExecStatus {
                signal: Some(0),
                ..killed
            }
            .check(),
            Err(DeError::OutOfRange)
        );
        assert_eq!(
            GuestExecStatus {
                exitcode: Some(1 << 40),
                ..done
            }
            .check(),
            Err(DeError::OutOfRange)
        );

        assert_eq!(GuestExec { pid: 1 }.check(), Ok(()));
        assert_eq!(GuestExec { pid: 0 }.check(), Err(DeError::OutOfRange));
        assert_eq!(GuestExec { pid: -1 }.check(), Err(DeError::OutOfRange));

        let user = GuestUser {
            login_time: 1_700_000_000.25,
            domain: None,
            user: Bytes(b"root"),
        };
        assert_eq!(user.check(), Ok(()));
        for t in [-1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(
                GuestUser {
                    login_time: t,
                    ..user
                }
                .check(),
                Err(DeError::OutOfRange)
            );
        }

        let tz = |offset| GuestTimezone { zone: None, offset };
        assert_eq!(tz(14 * 3600).check(), Ok(()));
        assert_eq!(tz(-12 * 3600).check(), Ok(()));
        assert_eq!(tz(86_400).check(), Err(DeError::OutOfRange));
        assert_eq!(tz(-86_400).check(), Err(DeError::OutOfRange));

        let load = GuestLoadAverage {
            load15m: 0.0,
            load5m: 0.5,
            load1m: 3.0,
        };
        assert_eq!(load.check(), Ok(()));
        assert_eq!(
            GuestLoadAverage {
                load5m: -0.5,
                ..load
            }
            .check(),
            Err(DeError::OutOfRange)
        );

        let route: GuestNetworkRoute<'_> =
            decode("{\"iface\": \"eth0\", \"destination\": \"::\", \"metric\": 0, \"version\": 6}")
                .unwrap();
        assert_eq!(route.check(), Ok(()));
        assert_eq!(
            GuestNetworkRoute {
                version: 5,
                ..route
            }
            .check(),
            Err(DeError::OutOfRange)
        );

        let stats: GuestCpuStats = decode(
            "{\"cpu\": -1, \"idle\": 0, \"system\": 0, \"nice\": 0, \"type\": \"linux\", \"user\": 0}",
        )
        .unwrap();
        assert_eq!(stats.check(), Err(DeError::OutOfRange));
        assert_eq!(GuestCpuStats { cpu: 0, ..stats }.check(), Ok(()));

        assert_eq!(GuestTime(0).check(), Ok(()));
        assert_eq!(GuestTime(1_795_690_610_553_972_000).check(), Ok(()));
        assert_eq!(GuestTime(-1).check(), Err(DeError::OutOfRange));
    }

    /// The live 7.2 replies of reference §5.3 (and Appendix B), read as the client reads them.
    #[test]
    fn live_replies() {
        decode_return::<()>(b"{\"return\": {}}\n").unwrap();
        decode_return::<()>(b"{\"return\": {}, \"id\": \"abc\"}\n").unwrap();
        assert_eq!(
            decode_member::<&str>(b"{\"return\": {}, \"id\": \"abc\"}\n", "id"),
            Ok("abc")
        );

        // Echoed ids.
        fn id<T: Deserialize<'static>>(reply: &str) -> Result<T, DeError> {
            decode_member(reply.as_bytes(), "id")
        }
        assert_eq!(id::<f64>("{\"return\": {}, \"id\": 1.5}\n"), Ok(1.5));
        assert_eq!(
            id::<f64>("{\"return\": {}, \"id\": 0.10000000000000001}\n"),
            Ok(0.1)
        );
        assert_eq!(id::<i64>("{\"return\": {}, \"id\": 1000}\n"), Ok(1000));
        assert_eq!(id::<i64>("{\"return\": {}, \"id\": 0}\n"), Ok(0));
        assert_eq!(
            id::<u64>("{\"return\": {}, \"id\": 18446744073709551615}\n"),
            Ok(u64::MAX)
        );
        assert_eq!(
            id::<f64>("{\"return\": {}, \"id\": -9.2233720368547758e+18}\n"),
            Ok(-9_223_372_036_854_775_808.0)
        );
        assert_eq!(
            id::<Option<i64>>("{\"return\": {}, \"id\": null}\n"),
            Ok(None)
        );
        assert_eq!(id::<i64>("{\"return\": {}, \"id\": 7}\n"), Ok(7));
        assert_eq!(
            id::<&str>("{\"return\": {}, \"id\": \"\\u00E9\\uD83D\\uDE00\"}\n"),
            Ok("\u{e9}\u{1f600}")
        );
        assert_eq!(
            id::<&str>(
                r#"{"return": {}, "id": "q\"b\\s/\b\f\n\r\t\u0001\u001F\u007F\u0080 <>&'"}"#
            ),
            Ok("q\"b\\s/\u{8}\u{c}\n\r\t\u{1}\u{1f}\u{7f}\u{80} <>&'")
        );
        assert_eq!(
            id::<&str>("{\"return\": {}, \"id\": \"\\u0000\"}\n"),
            Ok("\0")
        );
        assert_eq!(
            id::<Bytes<'_>>("{\"return\": {}, \"id\": \"\\u0000\"}\n"),
            Ok(Bytes(b"\xc0\x80"))
        );

        // Bare integers and strings.
        assert_eq!(decode_return::<i64>(b"{\"return\": 12345}\n"), Ok(12345));
        assert_eq!(decode_return::<i64>(b"{\"return\": -1}\n"), Ok(-1));
        assert_eq!(decode_return::<i64>(b"{\"return\": 42}\n"), Ok(42));
        assert_eq!(decode_return::<i64>(b"{\"return\": 0}\n"), Ok(0));
        assert_eq!(decode_return::<i64>(b"{\"return\": 1000}\n"), Ok(1000));
        assert_eq!(
            decode_return::<GuestFsfreezeStatus>(b"{\"return\": \"thawed\"}\n"),
            Ok(GuestFsfreezeStatus::Thawed)
        );
        let time: GuestTime = decode_return(b"{\"return\": 1795690610553972000}\n").unwrap();
        assert_eq!(time, GuestTime(1_795_690_610_553_972_000));
        assert_eq!(time.check(), Ok(()));

        // Objects.
        assert_eq!(
            decode_return(b"{\"return\": {\"host-name\": \"vm\"}}\n"),
            Ok(GuestHostName {
                host_name: Bytes(b"vm")
            })
        );
        let tz: GuestTimezone<'_> =
            decode_return(b"{\"return\": {\"zone\": \"UTC\", \"offset\": 0}}\n").unwrap();
        assert_eq!(
            tz,
            GuestTimezone {
                zone: Some(Bytes(b"UTC")),
                offset: 0
            }
        );
        assert_eq!(tz.check(), Ok(()));
        let write: GuestFileWrite =
            decode_return(b"{\"return\": {\"count\": 14, \"eof\": false}}\n").unwrap();
        assert_eq!(
            write,
            GuestFileWrite {
                count: 14,
                eof: false
            }
        );
        assert_eq!(write.check(), Ok(()));
        let seek: GuestFileSeek =
            decode_return(b"{\"return\": {\"eof\": false, \"position\": 6}}\n").unwrap();
        assert_eq!(
            seek,
            GuestFileSeek {
                eof: false,
                position: 6
            }
        );
        assert_eq!(seek.check(), Ok(()));
        let read: GuestFileRead<'_> =
            decode_return(b"{\"return\": {\"count\": 3, \"buf-b64\": \"V29y\", \"eof\": false}}\n")
                .unwrap();
        assert_eq!(
            read,
            GuestFileRead {
                count: 3,
                buf_b64: Base64(b"Wor"),
                eof: false
            }
        );
        assert_eq!(read.check_request(3), Ok(()));
        let exec: GuestExec = decode_return(b"{\"return\": {\"pid\": 5522}}\n").unwrap();
        assert_eq!(exec, GuestExec { pid: 5522 });
        assert_eq!(exec.check(), Ok(()));

        // guest-exec-status, five cases.
        let status = |reply: &'static [u8]| -> GuestExecStatus<'static> {
            let s: GuestExecStatus<'_> = decode_return(reply).unwrap();
            assert_eq!(s.check(), Ok(()));
            s
        };
        let none = GuestExecStatus::RUNNING;
        assert_eq!(
            status(
                b"{\"return\": {\"exitcode\": 0, \"out-data\": \"IiB0ZXN0X3N0ciAi\", \
                  \"out-truncated\": false, \"exited\": true}}\n"
            ),
            GuestExecStatus {
                exitcode: Some(0),
                out_data: Some(Base64(b"\" test_str \"")),
                out_truncated: Some(false),
                exited: true,
                ..none
            }
        );
        assert_eq!(
            status(
                b"{\"return\": {\"exitcode\": 3, \"err-data\": \"ZXJyCg==\", \"out-data\": \
                  \"aW4tZGF0YQpFPWJhcgo=\", \"err-truncated\": false, \"out-truncated\": false, \
                  \"exited\": true}}\n"
            ),
            GuestExecStatus {
                exitcode: Some(3),
                err_data: Some(Base64(b"err\n")),
                out_data: Some(Base64(b"in-data\nE=bar\n")),
                err_truncated: Some(false),
                out_truncated: Some(false),
                exited: true,
                ..none
            }
        );
        assert_eq!(
            status(b"{\"return\": {\"exitcode\": 0, \"exited\": true}}\n"),
            GuestExecStatus {
                exitcode: Some(0),
                exited: true,
                ..none
            }
        );
        assert_eq!(
            status(b"{\"return\": {\"signal\": 9, \"exited\": true}}\n"),
            GuestExecStatus {
                signal: Some(9),
                exited: true,
                ..none
            }
        );
        assert_eq!(status(b"{\"return\": {\"exited\": false}}\n"), none);

        // Lists: guest-get-vcpus.
        let vcpus: List<'_, GuestLogicalProcessor> = decode_return(
            b"{\"return\": [{\"online\": true, \"can-offline\": true, \"logical-id\": 1}, \
              {\"online\": true, \"can-offline\": false, \"logical-id\": 0}]}\n",
        )
        .unwrap();
        let List::Json(raw) = vcpus else { panic!() };
        let mut arena = [0u8; 64];
        raw.decode_each::<GuestLogicalProcessor, _>(&mut arena, |_, cpu| cpu.check())
            .unwrap();
        assert_list!(
            vcpus,
            GuestLogicalProcessor,
            [
                GuestLogicalProcessor {
                    online: true,
                    can_offline: Some(true),
                    logical_id: 1,
                },
                GuestLogicalProcessor {
                    online: true,
                    can_offline: Some(false),
                    logical_id: 0,
                }
            ]
        );

        // guest-get-fsinfo and guest-get-disks: lists inside list elements.
        let address = GuestDiskAddress {
            ccw_address: None,
            serial: None,
            bus_type: GuestDiskBusType::Virtio,
            bus: 0,
            unit: 0,
            pci_controller: PCI,
            dev: Some(Bytes(b"/dev/vda")),
            target: 0,
        };
        let fsinfo: List<'_, GuestFilesystemInfo<'_>> = decode_return(
            b"{\"return\": [{\"name\": \"vda\", \"total-bytes\": 97572749312, \"mountpoint\": \
              \"/\", \"disk\": [{\"bus-type\": \"virtio\", \"bus\": 0, \"unit\": 0, \
              \"pci-controller\": {\"bus\": 0, \"slot\": 2, \"domain\": 0, \"function\": 0}, \
              \"dev\": \"/dev/vda\", \"target\": 0}], \"used-bytes\": 13111664640, \"type\": \
              \"ext4\"}]}\n",
        )
        .unwrap();
        let List::Json(raw) = fsinfo else { panic!() };
        let mut inner = [0u8; 64];
        let n = raw
            .decode_each::<GuestFilesystemInfo, _>(&mut arena, |_, fs| {
                fs.check()?;
                assert_eq!(
                    GuestFilesystemInfo {
                        disk: List::default(),
                        ..fs
                    },
                    GuestFilesystemInfo {
                        name: Bytes(b"vda"),
                        total_bytes: Some(97_572_749_312),
                        total_bytes_privileged: None,
                        mountpoint: Bytes(b"/"),
                        disk: List::default(),
                        used_bytes: Some(13_111_664_640),
                        r#type: Bytes(b"ext4"),
                    }
                );
                let List::Json(disks) = fs.disk else {
                    return Err(DeError::Invalid);
                };
                disks.decode_each::<GuestDiskAddress, _>(&mut inner, |_, disk| {
                    disk.check()?;
                    assert_eq!(disk, address);
                    Ok(())
                })?;
                Ok(())
            })
            .unwrap();
        assert_eq!(n, 1);

        let disks: List<'_, GuestDiskInfo<'_>> = decode_return(
            b"{\"return\": [{\"name\": \"/dev/vda\", \"dependencies\": [], \"partition\": false, \
              \"address\": {\"bus-type\": \"virtio\", \"bus\": 0, \"unit\": 0, \
              \"pci-controller\": {\"bus\": 0, \"slot\": 2, \"domain\": 0, \"function\": 0}, \
              \"dev\": \"/dev/vda\", \"target\": 0}}]}\n",
        )
        .unwrap();
        let List::Json(raw) = disks else { panic!() };
        raw.decode_each::<GuestDiskInfo, _>(&mut arena, |_, disk| {
            disk.check()?;
            assert!(disk.dependencies.is_some_and(|d| d.is_empty()));
            assert_eq!(
                GuestDiskInfo {
                    dependencies: None,
                    ..disk
                },
                GuestDiskInfo {
                    name: Bytes(b"/dev/vda"),
                    smart: None,
                    dependencies: None,
                    partition: false,
                    address: Some(address),
                    alias: None,
                }
            );
            Ok(())
        })
        .unwrap();
    }

    /// Appendix B: the complete 7.2 `guest-info` reply.
    #[test]
    fn live_guest_info_decodes() {
        let info: GuestAgentInfo<'_> = decode_return(APPENDIX_B.as_bytes()).unwrap();
        assert_eq!(info.version, "7.2.22");
        assert_eq!(info.supported_commands.len(), 42);
        let List::Json(raw) = info.supported_commands else {
            panic!()
        };
        let (mut disabled, mut no_response) = (0, 0);
        let mut arena = [0u8; 0];
        let n = raw
            .decode_each::<GuestAgentCommandInfo, _>(&mut arena, |i, cmd| {
                if i == 0 {
                    assert_eq!(cmd.name, "guest-get-cpustats");
                }
                if !cmd.enabled {
                    assert_eq!(cmd.name, "guest-get-devices");
                    disabled += 1;
                }
                if !cmd.success_response {
                    assert!(cmd.name == "guest-shutdown" || cmd.name.starts_with("guest-suspend-"));
                    no_response += 1;
                }
                Ok(())
            })
            .unwrap();
        assert_eq!((n, disabled, no_response), (42, 1, 4));
    }

    /// A reply decoded straight from the client's buffer: text and arena are two halves of one
    /// slice.
    #[test]
    fn decoding_from_one_buffer() {
        let stored = store(b"{\"return\": {\"host-name\": \"v\\u006d\"}}");
        let mut buf = [0u8; 64];
        buf[..stored.len()].copy_from_slice(&stored);
        let (text, arena) = buf.split_at_mut(stored.len());
        let msg = Msg { text: &*text };
        let root = msg.value_at(0).unwrap();
        let v = msg.get(root, "return").unwrap();
        let name: GuestHostName<'_> = from_value(msg, v, arena).unwrap();
        assert_eq!(name.host_name, Bytes(b"vm"));
    }

    /// Decodes `json` as every return type, with arenas of every size up to what it needs:
    /// errors are fine, panics are not, and with too little room the error is `ArenaFull`.
    fn decode_as_everything(json: &str) {
        let msg = leak_msg(json.as_bytes());
        let v = msg.value_at(0).unwrap();
        macro_rules! each {
            ($($ty:ty),* $(,)?) => {$({
                let mut arena = Arena::new(vec![0u8; 4096].leak());
                let full = from_value_in::<$ty>(msg, v, &mut arena);
                let used = 4096 - arena.remaining();
                for room in 0..used {
                    let got = from_value::<$ty>(msg, v, vec![0u8; room].leak());
                    match (&full, &got) {
                        (_, Err(DeError::ArenaFull)) => {}
                        (Err(a), Err(b)) if a == b => {}
                        _ => panic!("{}: {json}: {room} bytes: {got:?} vs {full:?}", stringify!($ty)),
                    }
                }
                let again = from_value::<$ty>(msg, v, vec![0u8; used].leak());
                match (&full, &again) {
                    (Ok(_), Ok(_)) => assert_eq!(std::format!("{again:?}"), std::format!("{full:?}")),
                    // A base64 payload's room is checked before its content.
                    (Err(_), Err(DeError::ArenaFull)) => {}
                    (Err(a), Err(b)) if a == b => {}
                    _ => panic!("{}: {json}: {again:?} vs {full:?}", stringify!($ty)),
                }
            })*};
        }
        each!(
            (),
            i64,
            u64,
            f64,
            bool,
            &str,
            Bytes<'_>,
            Base64<'_>,
            Option<i64>,
            GuestTime,
            List<'_, Bytes<'_>>,
            GuestAgentCommandInfo<'_>,
            GuestAgentInfo<'_>,
            GuestFileRead<'_>,
            GuestFileWrite,
            GuestFileSeek,
            GuestFsfreezeStatus,
            GuestFilesystemTrimResult<'_>,
            GuestFilesystemTrimResponse<'_>,
            GuestIpAddressType,
            GuestIpAddress<'_>,
            GuestNetworkInterfaceStat,
            GuestNetworkInterface<'_>,
            GuestLogicalProcessor,
            GuestDiskBusType,
            GuestPCIAddress,
            GuestCCWAddress,
            GuestDiskAddress<'_>,
            GuestDiskSmartType,
            GuestDiskSmart,
            GuestDiskInfo<'_>,
            GuestFilesystemInfo<'_>,
            GuestMemoryBlock,
            GuestMemoryBlockResponseType,
            GuestMemoryBlockResponse,
            GuestMemoryBlockInfo,
            GuestExecStatus<'_>,
            GuestExec,
            GuestHostName<'_>,
            GuestUser<'_>,
            GuestTimezone<'_>,
            GuestOSInfo<'_>,
            GuestAuthorizedKeys<'_>,
            GuestDiskStats,
            GuestDiskStatsInfo<'_>,
            GuestCpuStatsType,
            GuestCpuStats,
            GuestLoadAverage,
            GuestNetworkRoute<'_>,
        );
    }

    /// Every serialised case, and odd values, read as every type: no panics.
    #[test]
    fn any_reply_as_any_type() {
        for case in cases() {
            decode_as_everything(&case.json);
        }
        decode_as_everything(&("[".repeat(200) + &"]".repeat(200)));
        for odd in [
            "null",
            "[]",
            "{}",
            "{\"a\": {\"a\": {\"a\": {\"a\": {\"a\": {}}}}}}",
            "\"\\u00e9\\ud83d\\ude00\\u0000\"",
            "\"QUJD\"",
            "\"QUJ\\u0044\"",
            "-9223372036854775809",
            "18446744073709551616",
            "1e308",
            "-0",
            "true",
            "\"linux\"",
            "[\"a\\n\", \"b\", 1, null, {}]",
            "{\"count\": 3, \"buf-b64\": \"V29\\u0079\", \"eof\": false}",
            "{\"exited\": true, \"out-data\": \"\\u0041\\u0041\\u0041\\u0041\"}",
        ] {
            decode_as_everything(odd);
        }
    }
}
