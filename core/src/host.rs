//! The `Host` trait: the only door from the protocol engine to the operating system.
//!
//! Every method has a default body answering [`HostError::Unsupported`], so a small firmware
//! implements only what it has. Inputs arrive validated and decoded; outputs go into caller
//! buffers or are streamed through an [`Out`] as they are produced (no allocation anywhere).

use crate::json::lexer::Tok;
use crate::json::parse::{Msg, Val};
use crate::json::ser::{SerError, to_writer};
use crate::json::string::decode_into;
use crate::json::write::JsonWriter;

/// Why a host operation failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum HostError {
    /// Not available on this system: "this feature or command is not currently supported".
    Unsupported,
    /// An OS error number; the message uses [`Host::strerror`].
    Os(i32),
    /// A complete message, sent as the error's `desc`.
    Message(&'static str),
    /// A message with dynamic parts (a path, a handle) that the host keeps: the agent asks for
    /// it with [`Host::describe_error`] right away, while writing the reply.
    Described,
}

impl core::fmt::Display for HostError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            HostError::Unsupported => f.write_str(UNSUPPORTED),
            HostError::Os(e) => write!(f, "OS error {e}"),
            HostError::Message(m) => f.write_str(m),
            HostError::Described => f.write_str("(described by the host)"),
        }
    }
}

impl core::error::Error for HostError {}

/// qemu's `QERR_UNSUPPORTED` text.
pub const UNSUPPORTED: &str = "this feature or command is not currently supported";

/// `guest-shutdown` modes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ShutdownMode {
    /// `powerdown` (the default).
    Powerdown,
    /// `halt`.
    Halt,
    /// `reboot`.
    Reboot,
}

/// `guest-suspend-*` kinds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SuspendMode {
    /// `guest-suspend-disk`.
    Disk,
    /// `guest-suspend-ram`.
    Ram,
    /// `guest-suspend-hybrid`.
    Hybrid,
}

/// `guest-file-seek` origins.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Whence {
    /// From the start (`set` or 0).
    Set,
    /// From the current position (`cur` or 1).
    Cur,
    /// From the end (`end` or 2).
    End,
}

/// The plan for one `guest-file-read` reply: how many bytes the host will deliver through
/// [`Host::file_read_data`], and the `eof` flag of the reply. Both are known before the data is
/// streamed because qemu-ga writes `count` before `buf-b64`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ReadPlan {
    /// Bytes that will be delivered.
    pub count: usize,
    /// The reply's `eof` member.
    pub eof: bool,
}

/// A validated list of strings from the request (`keys`, `mountpoints`, `arg`, `env`).
#[derive(Clone, Debug)]
pub struct StrList<'a> {
    msg: Msg<'a>,
    items: Option<crate::json::parse::Elements<'a>>,
}

impl<'a> StrList<'a> {
    pub(crate) fn new(msg: Msg<'a>, list: Option<Val>) -> Self {
        StrList {
            msg,
            items: list.map(|l| msg.elements(l)),
        }
    }

    /// True when the argument was absent.
    pub fn is_absent(&self) -> bool {
        self.items.is_none()
    }

    /// Decodes the next string into `buf` (as modified UTF-8). `Some(None)` means the string
    /// did not fit.
    pub fn next_into<'b>(&mut self, buf: &'b mut [u8]) -> Option<Option<&'b [u8]>> {
        let v = self.items.as_mut()?.next()?;
        if v.tok != Tok::Str {
            return Some(None);
        }
        Some(decode_into(self.msg.bytes(v), buf).and_then(|n| buf.get(..n)))
    }
}

/// A string argument not decoded yet (it may be large: base64 payloads).
#[derive(Clone, Copy, Debug)]
pub struct StrArg<'a>(pub(crate) &'a [u8]);

impl StrArg<'_> {
    /// Decodes into `buf`; `None` if it does not fit.
    pub fn decode_into<'b>(&self, buf: &'b mut [u8]) -> Option<&'b [u8]> {
        decode_into(self.0, buf).and_then(|n| buf.get(..n))
    }

    /// An upper bound of the decoded length.
    pub fn max_len(&self) -> usize {
        self.0.len()
    }
}

/// Byte sink behind an [`Out`]: the agent's reply stream with its error type erased.
pub trait ByteSink {
    /// Writes all of `bytes`; `Err(())` once the stream has failed (the agent keeps the real
    /// error on its side).
    #[allow(clippy::result_unit_err)]
    fn put(&mut self, bytes: &[u8]) -> Result<(), ()>;

    /// Pushes what was put so far to the peer (before a command that may take long, so that
    /// earlier replies are not held back by it).
    #[allow(clippy::result_unit_err)]
    fn flush(&mut self) -> Result<(), ()> {
        Ok(())
    }
}

struct SinkIo<'s>(&'s mut dyn ByteSink);

impl embedded_io::ErrorType for SinkIo<'_> {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io::Write for SinkIo<'_> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.0
            .put(buf)
            .map(|()| buf.len())
            .map_err(|()| embedded_io::ErrorKind::Other)
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// Where a host writes a command's return value. The reply envelope is opened on the first
/// value, so a host that fails *before* emitting anything gets a clean error reply; a host must
/// not fail after it has started emitting.
pub struct Out<'s> {
    sink: &'s mut dyn ByteSink,
    list: bool,
    started: bool,
    items: usize,
    failed: bool,
}

impl<'s> Out<'s> {
    pub(crate) fn new(sink: &'s mut dyn ByteSink, list: bool) -> Self {
        Out {
            sink,
            list,
            started: false,
            items: 0,
            failed: false,
        }
    }

    fn start(&mut self) -> bool {
        if !self.started {
            self.started = true;
            let head: &[u8] = if self.list {
                b"{\"return\": ["
            } else {
                b"{\"return\": "
            };
            self.failed |= self.sink.put(head).is_err();
        }
        !self.failed
    }

    fn ser<T: serde::Serialize + ?Sized>(&mut self, v: &T) {
        let mut io = SinkIo(&mut *self.sink);
        let mut w = JsonWriter::new(&mut io);
        if let Err(SerError::Io(_) | SerError::Unsupported) = to_writer(v, &mut w) {
            self.failed = true;
        }
    }

    /// Emits the return value of a command that returns one value.
    pub fn value<T: serde::Serialize + ?Sized>(&mut self, v: &T) {
        if self.list || self.started || !self.start() {
            return;
        }
        self.ser(v);
    }

    /// Emits one element of a command that returns a list.
    pub fn item<T: serde::Serialize + ?Sized>(&mut self, v: &T) {
        if !self.list || !self.start() {
            return;
        }
        if self.items > 0 {
            self.failed |= self.sink.put(b", ").is_err();
        }
        self.items += 1;
        self.ser(v);
    }

    /// Emits JSON text as is: the whole return value (for a list command too), possibly in
    /// several pieces. It must already be in qemu-ga's format (`": "`, `", "`, QDict key order);
    /// the core uses it for streamed replies, `FakeHost` for scripted ones.
    pub fn raw(&mut self, bytes: &[u8]) {
        if !self.started {
            // The text is the complete value: no list brackets around it.
            self.list = false;
        }
        if self.start() {
            self.failed |= self.sink.put(bytes).is_err();
        }
    }

    /// True once anything was emitted.
    pub fn started(&self) -> bool {
        self.started
    }

    /// Closes the return value (an empty list if nothing was emitted). Returns false if the
    /// stream failed.
    pub(crate) fn finish(&mut self) -> bool {
        if !self.start() {
            return false;
        }
        if self.list {
            self.failed |= self.sink.put(b"]").is_err();
        }
        !self.failed
    }
}

/// The operating system as the agent sees it. Every method defaults to
/// [`HostError::Unsupported`]; [`Host::supported`] tells `guest-info` which commands are
/// available at all.
#[allow(unused_variables)]
pub trait Host {
    /// False for commands this host can never serve: they are listed as disabled in
    /// `guest-info` and answered "Command X has been disabled", as qemu-ga does for commands its
    /// build lacks. The default enables everything; a host then answers unsupported operations
    /// at run time.
    fn supported(&self, command: crate::command::CommandId) -> bool {
        true
    }

    /// The text for an OS error number (strerror).
    fn strerror(&self, errno: i32) -> &'static str {
        "Unknown error"
    }

    /// The text of the last [`HostError::Described`] this host returned, handed to `write` in
    /// one or more pieces (bytes as qemu-ga would print them, e.g. a path that is not UTF-8).
    fn describe_error(&self, write: &mut dyn FnMut(&[u8])) {
        write(b"unknown error");
    }

    /// Called with each executed command's name (qemu-ga logs "`<name>` called" at info level).
    fn audit(&mut self, command: &'static str) {}

    /// `guest-get-time`: nanoseconds since the epoch.
    fn get_time(&mut self) -> Result<i64, HostError> {
        Err(HostError::Unsupported)
    }
    /// `guest-set-time`: set the clock to `time` ns, or from the RTC when `None`.
    fn set_time(&mut self, time: Option<i64>) -> Result<(), HostError> {
        Err(HostError::Unsupported)
    }
    /// `guest-shutdown`. Returning `Ok` means the request was carried out (no reply is sent).
    fn shutdown(&mut self, mode: ShutdownMode) -> Result<(), HostError> {
        Err(HostError::Unsupported)
    }
    /// `guest-suspend-*`. Returning `Ok` means the suspend was started (no reply is sent).
    fn suspend(&mut self, mode: SuspendMode) -> Result<(), HostError> {
        Err(HostError::Unsupported)
    }
    /// `guest-file-open`: `path` and `mode` as sent (modified UTF-8); returns the new handle.
    fn file_open(&mut self, path: &[u8], mode: &[u8]) -> Result<i64, HostError> {
        Err(HostError::Unsupported)
    }
    /// Looks a handle up (its error comes before any argument error of `guest-file-read` and
    /// `guest-file-seek`, as in qemu-ga). The default accepts every handle; the operations
    /// then answer for themselves.
    fn file_handle(&mut self, handle: i64) -> Result<(), HostError> {
        let _ = handle;
        Ok(())
    }
    /// `guest-file-close`.
    fn file_close(&mut self, handle: i64) -> Result<(), HostError> {
        Err(HostError::Unsupported)
    }
    /// `guest-file-read`, first step: decide how many bytes (at most `count`) will be sent.
    fn file_read_begin(&mut self, handle: i64, count: usize) -> Result<ReadPlan, HostError> {
        Err(HostError::Unsupported)
    }
    /// `guest-file-read`, data: fill `buf` with the next bytes of the planned read. Called until
    /// the planned count is delivered; returning fewer bytes than asked is fine, 0 means the
    /// data ran out (the agent pads the reply with zero bytes to keep it well-formed).
    fn file_read_data(&mut self, handle: i64, buf: &mut [u8]) -> Result<usize, HostError> {
        Err(HostError::Unsupported)
    }
    /// `guest-file-write`, first step: check the handle (its error comes before any payload
    /// error, as in qemu-ga).
    fn file_write_begin(&mut self, handle: i64) -> Result<(), HostError> {
        Err(HostError::Unsupported)
    }
    /// `guest-file-write`, data: write the next decoded piece.
    fn file_write_data(&mut self, handle: i64, data: &[u8]) -> Result<(), HostError> {
        Err(HostError::Unsupported)
    }
    /// `guest-file-write`, end: emit the `GuestFileWrite` (`count` written, `eof`).
    fn file_write_end(&mut self, handle: i64, out: &mut Out<'_>) -> Result<(), HostError> {
        Err(HostError::Unsupported)
    }
    /// `guest-file-seek`: emit a `GuestFileSeek`.
    fn file_seek(
        &mut self,
        handle: i64,
        offset: i64,
        whence: Whence,
        out: &mut Out<'_>,
    ) -> Result<(), HostError> {
        Err(HostError::Unsupported)
    }
    /// `guest-file-flush`.
    fn file_flush(&mut self, handle: i64) -> Result<(), HostError> {
        Err(HostError::Unsupported)
    }
    /// `guest-fsfreeze-freeze` (`mountpoints` absent) and `-freeze-list`: the number frozen.
    fn fsfreeze_freeze(&mut self, mountpoints: &mut StrList<'_>) -> Result<i64, HostError> {
        Err(HostError::Unsupported)
    }
    /// `guest-fsfreeze-thaw`: the number thawed.
    fn fsfreeze_thaw(&mut self) -> Result<i64, HostError> {
        Err(HostError::Unsupported)
    }
    /// `guest-fstrim`: emit a `GuestFilesystemTrimResponse`.
    fn fstrim(&mut self, minimum: Option<i64>, out: &mut Out<'_>) -> Result<(), HostError> {
        Err(HostError::Unsupported)
    }
    /// `guest-set-vcpus`: apply `(logical-id, online)` pairs in order, return how many were
    /// processed.
    fn set_vcpus(
        &mut self,
        vcpus: &mut dyn Iterator<Item = (i64, bool)>,
    ) -> Result<i64, HostError> {
        Err(HostError::Unsupported)
    }
    /// `guest-set-memory-blocks`: apply `(phys-index, online)` pairs; emit one
    /// `GuestMemoryBlockResponse` item each.
    fn set_memory_blocks(
        &mut self,
        blocks: &mut dyn Iterator<Item = (u64, bool)>,
        out: &mut Out<'_>,
    ) -> Result<(), HostError> {
        Err(HostError::Unsupported)
    }
    /// `guest-set-user-password` (`password` is still base64, as sent).
    fn set_user_password(
        &mut self,
        username: &[u8],
        password_b64: StrArg<'_>,
        crypted: bool,
    ) -> Result<(), HostError> {
        Err(HostError::Unsupported)
    }
    /// `guest-exec`: emit a `GuestExec`.
    fn exec(&mut self, request: &mut ExecRequest<'_>, out: &mut Out<'_>) -> Result<(), HostError> {
        Err(HostError::Unsupported)
    }
    /// `guest-exec-status`: emit a `GuestExecStatus`.
    fn exec_status(&mut self, pid: i64, out: &mut Out<'_>) -> Result<(), HostError> {
        Err(HostError::Unsupported)
    }
    /// `guest-ssh-get-authorized-keys`: emit a `GuestAuthorizedKeys`.
    fn ssh_get_authorized_keys(&mut self, user: &[u8], out: &mut Out<'_>) -> Result<(), HostError> {
        Err(HostError::Unsupported)
    }
    /// `guest-ssh-add-authorized-keys`.
    fn ssh_add_authorized_keys(
        &mut self,
        user: &[u8],
        keys: &mut StrList<'_>,
        reset: bool,
    ) -> Result<(), HostError> {
        Err(HostError::Unsupported)
    }
    /// `guest-ssh-remove-authorized-keys`.
    fn ssh_remove_authorized_keys(
        &mut self,
        user: &[u8],
        keys: &mut StrList<'_>,
    ) -> Result<(), HostError> {
        Err(HostError::Unsupported)
    }
    /// The argument-less queries (`guest-get-vcpus`, `guest-get-fsinfo`, `guest-get-osinfo`, …):
    /// emit the return value (or the list's items) through `out`.
    fn query(&mut self, command: Query, out: &mut Out<'_>) -> Result<(), HostError> {
        Err(HostError::Unsupported)
    }
}

/// The argument-less query commands answered by [`Host::query`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Query {
    /// `guest-network-get-interfaces` (list of `GuestNetworkInterface`).
    NetworkInterfaces,
    /// `guest-get-vcpus` (list of `GuestLogicalProcessor`).
    Vcpus,
    /// `guest-get-disks` (list of `GuestDiskInfo`).
    Disks,
    /// `guest-get-fsinfo` (list of `GuestFilesystemInfo`).
    Fsinfo,
    /// `guest-get-memory-blocks` (list of `GuestMemoryBlock`).
    MemoryBlocks,
    /// `guest-get-memory-block-info` (`GuestMemoryBlockInfo`).
    MemoryBlockInfo,
    /// `guest-get-host-name` (`GuestHostName`).
    HostName,
    /// `guest-get-users` (list of `GuestUser`).
    Users,
    /// `guest-get-timezone` (`GuestTimezone`).
    Timezone,
    /// `guest-get-osinfo` (`GuestOSInfo`).
    Osinfo,
    /// `guest-get-diskstats` (list of `GuestDiskStatsInfo`).
    Diskstats,
    /// `guest-get-cpustats` (list of `GuestCpuStats`).
    Cpustats,
    /// `guest-get-load` (`GuestLoadAverage`).
    Load,
    /// `guest-network-get-route` (list of `GuestNetworkRoute`).
    NetworkRoute,
}

impl Query {
    /// True if the command returns a list.
    pub const fn is_list(self) -> bool {
        !matches!(
            self,
            Query::MemoryBlockInfo
                | Query::HostName
                | Query::Timezone
                | Query::Osinfo
                | Query::Load
        )
    }
}

/// `guest-exec`'s arguments.
#[derive(Clone, Debug)]
pub struct ExecRequest<'a> {
    /// The program path as sent (modified UTF-8, decoded).
    pub path: &'a [u8],
    /// `arg`.
    pub args: StrList<'a>,
    /// `env`.
    pub env: StrList<'a>,
    /// `input-data` (still base64), if any.
    pub input_data: Option<StrArg<'a>>,
    /// `capture-output`, resolved to a mode.
    pub capture: Capture,
}

/// `guest-exec` capture modes (`capture-output`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Capture {
    /// Nothing captured (`false`, `none`, absent).
    None,
    /// stdout only.
    Stdout,
    /// stderr only.
    Stderr,
    /// Both, separately (`true`, `separated`).
    Separated,
    /// Both into `out-data`.
    Merged,
}
