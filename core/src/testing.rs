//! `FakeHost`: an in-memory host for tests, fuzzing and examples (feature `testing`).
//!
//! It has a fixed clock, a small in-memory file system with qemu-ga's handle numbering, and
//! scripted answers for the queries. It never touches the real system.

use crate::command::CommandId;
use crate::host::{
    ExecRequest, Host, HostError, Out, Query, ReadPlan, ShutdownMode, StrList, SuspendMode, Whence,
};
use crate::types::{
    Bytes, GuestFileSeek, GuestFileWrite, GuestHostName, GuestLoadAverage, GuestTimezone,
};
use heapless::Vec;

/// Largest in-memory file.
pub const FILE_CAP: usize = 4096;
/// Number of files the fake file system holds.
pub const FILES: usize = 8;

#[derive(Clone, Debug)]
struct File {
    path: Vec<u8, 64>,
    data: Vec<u8, FILE_CAP>,
}

#[derive(Clone, Copy, Debug)]
struct Handle {
    id: i64,
    file: usize,
    pos: usize,
    read_left: usize,
}

/// A scripted answer for one command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scripted {
    /// The command returns this JSON text (already in qemu-ga's format).
    Return(&'static str),
    /// The command fails with this error.
    Fail(HostError),
}

/// What the fake host recorded of the actions asked of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Actions {
    /// Last shutdown request.
    pub shutdown: Option<ShutdownMode>,
    /// Last suspend request.
    pub suspend: Option<SuspendMode>,
    /// Filesystems currently frozen.
    pub frozen: i64,
}

/// An in-memory [`Host`].
#[derive(Clone, Debug)]
pub struct FakeHost {
    /// Value of `guest-get-time`.
    pub time_ns: i64,
    /// Commands reported as not supported at all (listed as disabled).
    pub unsupported: crate::command::CommandSet,
    /// What was asked.
    pub actions: Actions,
    /// The text given for [`HostError::Described`] errors.
    pub error_text: &'static str,
    /// How many filesystems a freeze freezes.
    pub freezable: i64,
    files: Vec<File, FILES>,
    handles: Vec<Handle, FILES>,
    next_handle: i64,
    written: usize,
    script: Vec<(CommandId, Scripted), 16>,
}

impl Default for FakeHost {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeHost {
    /// A host at time 1795690610553972000 ns with an empty file system.
    pub fn new() -> Self {
        FakeHost {
            time_ns: 1_795_690_610_553_972_000,
            unsupported: crate::command::CommandSet::EMPTY,
            actions: Actions::default(),
            error_text: "",
            freezable: 1,
            files: Vec::new(),
            handles: Vec::new(),
            next_handle: 1000,
            written: 0,
            script: Vec::new(),
        }
    }

    /// The content of an in-memory file.
    pub fn file(&self, path: &[u8]) -> Option<&[u8]> {
        self.files
            .iter()
            .find(|f| f.path == path)
            .map(|f| f.data.as_slice())
    }

    /// Creates or replaces an in-memory file. Returns false if there is no room.
    pub fn put_file(&mut self, path: &[u8], data: &[u8]) -> bool {
        let Ok(p) = Vec::from_slice(path) else {
            return false;
        };
        let Ok(d) = Vec::from_slice(data) else {
            return false;
        };
        if let Some(f) = self.files.iter_mut().find(|f| f.path == path) {
            f.data = d;
            return true;
        }
        self.files.push(File { path: p, data: d }).is_ok()
    }

    /// Scripts the answer of `command` (replacing an earlier script for it). Returns false when
    /// the script table (16 entries) is full.
    pub fn script(&mut self, command: CommandId, answer: Scripted) -> bool {
        if let Some(e) = self.script.iter_mut().find(|(c, _)| *c == command) {
            e.1 = answer;
            return true;
        }
        self.script.push((command, answer)).is_ok()
    }

    /// Plays the script for `command`, if any: `Some(result)` when scripted.
    fn play(&self, command: CommandId, out: Option<&mut Out<'_>>) -> Option<Result<(), HostError>> {
        let (_, answer) = self.script.iter().find(|(c, _)| *c == command)?;
        Some(match (*answer, out) {
            (Scripted::Fail(e), _) => Err(e),
            (Scripted::Return(json), Some(out)) => {
                out.raw(json.as_bytes());
                Ok(())
            }
            (Scripted::Return(_), None) => Ok(()),
        })
    }

    fn handle(&mut self, id: i64) -> Result<&mut Handle, HostError> {
        self.handles
            .iter_mut()
            .find(|h| h.id == id)
            .ok_or(HostError::Message("handle has not been found"))
    }
}

impl Host for FakeHost {
    fn supported(&self, command: CommandId) -> bool {
        !self.unsupported.contains(command)
    }

    fn describe_error(&self, write: &mut dyn FnMut(&[u8])) {
        write(self.error_text.as_bytes());
    }

    fn strerror(&self, errno: i32) -> &'static str {
        match errno {
            2 => "No such file or directory",
            _ => "Unknown error",
        }
    }

    fn get_time(&mut self) -> Result<i64, HostError> {
        if let Some(Err(e)) = self.play(CommandId::GetTime, None) {
            return Err(e);
        }
        Ok(self.time_ns)
    }

    fn set_time(&mut self, time: Option<i64>) -> Result<(), HostError> {
        self.play(CommandId::SetTime, None).unwrap_or(Ok(()))?;
        if let Some(t) = time {
            self.time_ns = t;
        }
        Ok(())
    }

    fn shutdown(&mut self, mode: ShutdownMode) -> Result<(), HostError> {
        self.play(CommandId::Shutdown, None).unwrap_or(Ok(()))?;
        self.actions.shutdown = Some(mode);
        Ok(())
    }

    fn suspend(&mut self, mode: SuspendMode) -> Result<(), HostError> {
        let id = match mode {
            SuspendMode::Disk => CommandId::SuspendDisk,
            SuspendMode::Ram => CommandId::SuspendRam,
            SuspendMode::Hybrid => CommandId::SuspendHybrid,
        };
        self.play(id, None).unwrap_or(Ok(()))?;
        self.actions.suspend = Some(mode);
        Ok(())
    }

    fn file_open(&mut self, path: &[u8], mode: &[u8]) -> Result<i64, HostError> {
        let create = matches!(mode.first(), Some(b'w' | b'a'));
        let file = match self.files.iter().position(|f| f.path == path) {
            Some(i) => {
                if mode.first() == Some(&b'w') {
                    if let Some(f) = self.files.get_mut(i) {
                        f.data.clear();
                    }
                }
                i
            }
            None if create => {
                let p = Vec::from_slice(path).map_err(|_| HostError::Os(36))?;
                self.files
                    .push(File {
                        path: p,
                        data: Vec::new(),
                    })
                    .map_err(|_| HostError::Os(28))?;
                self.files.len() - 1
            }
            None => return Err(HostError::Os(2)),
        };
        let id = self.next_handle;
        let pos = if mode.first() == Some(&b'a') {
            self.files.get(file).map_or(0, |f| f.data.len())
        } else {
            0
        };
        self.handles
            .push(Handle {
                id,
                file,
                pos,
                read_left: 0,
            })
            .map_err(|_| HostError::Os(24))?;
        self.next_handle += 1;
        Ok(id)
    }

    fn file_close(&mut self, handle: i64) -> Result<(), HostError> {
        let i = self
            .handles
            .iter()
            .position(|h| h.id == handle)
            .ok_or(HostError::Message("handle has not been found"))?;
        self.handles.swap_remove(i);
        Ok(())
    }

    fn file_read_begin(&mut self, handle: i64, count: usize) -> Result<ReadPlan, HostError> {
        let h = *self.handle(handle)?;
        let len = self.files.get(h.file).map_or(0, |f| f.data.len());
        let avail = len.saturating_sub(h.pos);
        let n = count.min(avail);
        self.handle(handle)?.read_left = n;
        Ok(ReadPlan {
            count: n,
            eof: n < count,
        })
    }

    fn file_read_data(&mut self, handle: i64, buf: &mut [u8]) -> Result<usize, HostError> {
        let h = *self.handle(handle)?;
        let data = self
            .files
            .get(h.file)
            .map_or(&[][..], |f| f.data.as_slice());
        let n = buf.len().min(h.read_left);
        let src = data.get(h.pos..h.pos + n).ok_or(HostError::Os(5))?;
        buf.get_mut(..n)
            .ok_or(HostError::Os(5))?
            .copy_from_slice(src);
        let hm = self.handle(handle)?;
        hm.pos += n;
        hm.read_left -= n;
        Ok(n)
    }

    fn file_write_begin(&mut self, handle: i64) -> Result<(), HostError> {
        self.written = 0;
        self.handle(handle).map(|_| ())
    }

    fn file_write_data(&mut self, handle: i64, data: &[u8]) -> Result<(), HostError> {
        let h = *self.handle(handle)?;
        let f = self.files.get_mut(h.file).ok_or(HostError::Os(5))?;
        // Overwrite what exists at the position, append the rest (no room: ENOSPC).
        let len = f.data.len();
        let (over, tail) = data.split_at(len.saturating_sub(h.pos).min(data.len()));
        if let Some(dst) = f.data.get_mut(h.pos..h.pos + over.len()) {
            dst.copy_from_slice(over);
        }
        f.data
            .extend_from_slice(tail)
            .map_err(|_| HostError::Os(28))?;
        self.handle(handle)?.pos += data.len();
        self.written += data.len();
        Ok(())
    }

    fn file_write_end(&mut self, handle: i64, out: &mut Out<'_>) -> Result<(), HostError> {
        let _ = self.handle(handle)?;
        out.value(&GuestFileWrite {
            count: 0,
            eof: false,
        });
        Ok(())
    }

    fn file_seek(
        &mut self,
        handle: i64,
        offset: i64,
        whence: Whence,
        out: &mut Out<'_>,
    ) -> Result<(), HostError> {
        let h = *self.handle(handle)?;
        let len = self.files.get(h.file).map_or(0, |f| f.data.len()) as i64;
        let base = match whence {
            Whence::Set => 0,
            Whence::Cur => h.pos as i64,
            Whence::End => len,
        };
        let pos = base
            .checked_add(offset)
            .filter(|p| *p >= 0)
            .ok_or(HostError::Os(22))?;
        self.handle(handle)?.pos = pos as usize;
        out.value(&GuestFileSeek {
            eof: false,
            position: pos,
        });
        Ok(())
    }

    fn file_flush(&mut self, handle: i64) -> Result<(), HostError> {
        self.handle(handle).map(|_| ())
    }

    fn fsfreeze_freeze(&mut self, _mountpoints: &mut StrList<'_>) -> Result<i64, HostError> {
        self.play(CommandId::FsfreezeFreeze, None)
            .unwrap_or(Ok(()))?;
        self.actions.frozen = self.freezable;
        Ok(self.freezable)
    }

    fn fsfreeze_thaw(&mut self) -> Result<i64, HostError> {
        self.play(CommandId::FsfreezeThaw, None).unwrap_or(Ok(()))?;
        let n = self.actions.frozen;
        self.actions.frozen = 0;
        Ok(n)
    }

    fn query(&mut self, command: Query, out: &mut Out<'_>) -> Result<(), HostError> {
        let id = match command {
            Query::NetworkInterfaces => CommandId::NetworkGetInterfaces,
            Query::Vcpus => CommandId::GetVcpus,
            Query::Disks => CommandId::GetDisks,
            Query::Fsinfo => CommandId::GetFsinfo,
            Query::MemoryBlocks => CommandId::GetMemoryBlocks,
            Query::MemoryBlockInfo => CommandId::GetMemoryBlockInfo,
            Query::HostName => CommandId::GetHostName,
            Query::Users => CommandId::GetUsers,
            Query::Timezone => CommandId::GetTimezone,
            Query::Osinfo => CommandId::GetOsinfo,
            Query::Diskstats => CommandId::GetDiskstats,
            Query::Cpustats => CommandId::GetCpustats,
            Query::Load => CommandId::GetLoad,
            Query::NetworkRoute => CommandId::NetworkGetRoute,
        };
        if let Some(r) = self.play(id, Some(out)) {
            return r;
        }
        match command {
            Query::HostName => out.value(&GuestHostName {
                host_name: Bytes(b"fakehost"),
            }),
            Query::Timezone => out.value(&GuestTimezone {
                zone: Some(Bytes(b"UTC")),
                offset: 0,
            }),
            Query::Load => out.value(&GuestLoadAverage {
                load1m: 0.5,
                load5m: 0.25,
                load15m: 0.125,
            }),
            _ => return Err(HostError::Unsupported),
        }
        Ok(())
    }

    fn exec(&mut self, _request: &mut ExecRequest<'_>, out: &mut Out<'_>) -> Result<(), HostError> {
        self.play(CommandId::Exec, Some(out))
            .unwrap_or(Err(HostError::Unsupported))
    }

    fn exec_status(&mut self, _pid: i64, out: &mut Out<'_>) -> Result<(), HostError> {
        self.play(CommandId::ExecStatus, Some(out))
            .unwrap_or(Err(HostError::Unsupported))
    }

    fn fstrim(&mut self, _minimum: Option<i64>, out: &mut Out<'_>) -> Result<(), HostError> {
        self.play(CommandId::Fstrim, Some(out))
            .unwrap_or(Err(HostError::Unsupported))
    }

    fn ssh_get_authorized_keys(
        &mut self,
        _user: &[u8],
        out: &mut Out<'_>,
    ) -> Result<(), HostError> {
        self.play(CommandId::SshGetAuthorizedKeys, Some(out))
            .unwrap_or(Err(HostError::Unsupported))
    }

    fn set_vcpus(
        &mut self,
        vcpus: &mut dyn Iterator<Item = (i64, bool)>,
    ) -> Result<i64, HostError> {
        self.play(CommandId::SetVcpus, None).unwrap_or(Ok(()))?;
        Ok(vcpus.count() as i64)
    }
}
