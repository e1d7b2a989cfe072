//! The command table: every command of the newest qemu-ga schema that exists on Linux (43), in
//! registration (schema) order, with its arguments, its `success-response` flag and whether it
//! may run while filesystems are frozen. Dispatch goes through this one table.

pub mod args;
pub mod schema;

use schema::Member;

/// Identifies a command; the discriminant is its index in [`COMMANDS`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[allow(missing_docs)] // each variant is named after its wire name
#[repr(u8)]
pub enum CommandId {
    SyncDelimited,
    Sync,
    Ping,
    GetTime,
    SetTime,
    Info,
    Shutdown,
    FileOpen,
    FileClose,
    FileRead,
    FileWrite,
    FileSeek,
    FileFlush,
    FsfreezeStatus,
    FsfreezeFreeze,
    FsfreezeFreezeList,
    FsfreezeThaw,
    Fstrim,
    SuspendDisk,
    SuspendRam,
    SuspendHybrid,
    NetworkGetInterfaces,
    GetVcpus,
    SetVcpus,
    GetDisks,
    GetFsinfo,
    SetUserPassword,
    GetMemoryBlocks,
    SetMemoryBlocks,
    GetMemoryBlockInfo,
    ExecStatus,
    Exec,
    GetHostName,
    GetUsers,
    GetTimezone,
    GetOsinfo,
    SshGetAuthorizedKeys,
    SshAddAuthorizedKeys,
    SshRemoveAuthorizedKeys,
    GetDiskstats,
    GetCpustats,
    GetLoad,
    NetworkGetRoute,
}

/// One row of the command table.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    /// The command.
    pub id: CommandId,
    /// Wire name.
    pub name: &'static str,
    /// Arguments, in schema order.
    pub args: &'static [Member],
    /// False for commands that send no reply on success.
    pub success_response: bool,
    /// In qemu-ga's freeze allow-list.
    pub freeze_safe: bool,
}

const fn spec(id: CommandId, name: &'static str, args: &'static [Member]) -> Spec {
    Spec {
        id,
        name,
        args,
        success_response: true,
        freeze_safe: false,
    }
}

const fn safe(s: Spec) -> Spec {
    Spec {
        freeze_safe: true,
        ..s
    }
}

const fn no_reply(s: Spec) -> Spec {
    Spec {
        success_response: false,
        ..s
    }
}

use CommandId as C;
use schema as a;

/// Number of commands.
pub const COUNT: usize = 43;

/// The table, in registration order (`guest-info` lists it reversed, as qemu-ga does).
pub static COMMANDS: [Spec; COUNT] = [
    safe(spec(C::SyncDelimited, "guest-sync-delimited", &a::SYNC)),
    safe(spec(C::Sync, "guest-sync", &a::SYNC)),
    safe(spec(C::Ping, "guest-ping", &a::NONE)),
    spec(C::GetTime, "guest-get-time", &a::NONE),
    spec(C::SetTime, "guest-set-time", &a::SET_TIME),
    safe(spec(C::Info, "guest-info", &a::NONE)),
    no_reply(spec(C::Shutdown, "guest-shutdown", &a::SHUTDOWN)),
    spec(C::FileOpen, "guest-file-open", &a::FILE_OPEN),
    spec(C::FileClose, "guest-file-close", &a::HANDLE),
    spec(C::FileRead, "guest-file-read", &a::FILE_READ),
    spec(C::FileWrite, "guest-file-write", &a::FILE_WRITE),
    spec(C::FileSeek, "guest-file-seek", &a::FILE_SEEK),
    spec(C::FileFlush, "guest-file-flush", &a::HANDLE),
    safe(spec(C::FsfreezeStatus, "guest-fsfreeze-status", &a::NONE)),
    spec(C::FsfreezeFreeze, "guest-fsfreeze-freeze", &a::NONE),
    spec(
        C::FsfreezeFreezeList,
        "guest-fsfreeze-freeze-list",
        &a::FREEZE_LIST,
    ),
    safe(spec(C::FsfreezeThaw, "guest-fsfreeze-thaw", &a::NONE)),
    spec(C::Fstrim, "guest-fstrim", &a::FSTRIM),
    no_reply(spec(C::SuspendDisk, "guest-suspend-disk", &a::NONE)),
    no_reply(spec(C::SuspendRam, "guest-suspend-ram", &a::NONE)),
    no_reply(spec(C::SuspendHybrid, "guest-suspend-hybrid", &a::NONE)),
    spec(
        C::NetworkGetInterfaces,
        "guest-network-get-interfaces",
        &a::NONE,
    ),
    spec(C::GetVcpus, "guest-get-vcpus", &a::NONE),
    spec(C::SetVcpus, "guest-set-vcpus", &a::SET_VCPUS),
    spec(C::GetDisks, "guest-get-disks", &a::NONE),
    spec(C::GetFsinfo, "guest-get-fsinfo", &a::NONE),
    spec(
        C::SetUserPassword,
        "guest-set-user-password",
        &a::SET_PASSWORD,
    ),
    spec(C::GetMemoryBlocks, "guest-get-memory-blocks", &a::NONE),
    spec(
        C::SetMemoryBlocks,
        "guest-set-memory-blocks",
        &a::SET_MEMORY_BLOCKS,
    ),
    spec(
        C::GetMemoryBlockInfo,
        "guest-get-memory-block-info",
        &a::NONE,
    ),
    spec(C::ExecStatus, "guest-exec-status", &a::EXEC_STATUS),
    spec(C::Exec, "guest-exec", &a::EXEC),
    spec(C::GetHostName, "guest-get-host-name", &a::NONE),
    spec(C::GetUsers, "guest-get-users", &a::NONE),
    spec(C::GetTimezone, "guest-get-timezone", &a::NONE),
    spec(C::GetOsinfo, "guest-get-osinfo", &a::NONE),
    spec(
        C::SshGetAuthorizedKeys,
        "guest-ssh-get-authorized-keys",
        &a::SSH_GET,
    ),
    spec(
        C::SshAddAuthorizedKeys,
        "guest-ssh-add-authorized-keys",
        &a::SSH_ADD,
    ),
    spec(
        C::SshRemoveAuthorizedKeys,
        "guest-ssh-remove-authorized-keys",
        &a::SSH_REMOVE,
    ),
    spec(C::GetDiskstats, "guest-get-diskstats", &a::NONE),
    spec(C::GetCpustats, "guest-get-cpustats", &a::NONE),
    spec(C::GetLoad, "guest-get-load", &a::NONE),
    spec(C::NetworkGetRoute, "guest-network-get-route", &a::NONE),
];

impl CommandId {
    /// The command's row in [`COMMANDS`].
    pub fn spec(self) -> &'static Spec {
        // The discriminants are the table's indices (checked by a test); the fallback is never
        // taken.
        COMMANDS.get(self as usize).unwrap_or(&COMMANDS[0])
    }

    /// Bit of this command in a [`CommandSet`].
    pub const fn bit(self) -> u64 {
        1u64 << (self as u8)
    }
}

/// Looks a command up by its exact wire name.
pub fn find(name: &str) -> Option<&'static Spec> {
    COMMANDS.iter().find(|s| s.name == name)
}

/// Every command name, in registration order (what `-b help` prints).
pub fn names() -> impl Iterator<Item = &'static str> {
    COMMANDS.iter().map(|s| s.name)
}

/// A set of commands (one bit each).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct CommandSet(pub u64);

impl CommandSet {
    /// The empty set.
    pub const EMPTY: CommandSet = CommandSet(0);
    /// Every command.
    pub const ALL: CommandSet = CommandSet((1u64 << COUNT) - 1);

    /// True if `id` is in the set.
    pub const fn contains(self, id: CommandId) -> bool {
        self.0 & id.bit() != 0
    }

    /// Adds `id`.
    pub fn insert(&mut self, id: CommandId) {
        self.0 |= id.bit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_indices_match_ids() {
        for (i, s) in COMMANDS.iter().enumerate() {
            assert_eq!(s.id as usize, i, "{}", s.name);
        }
        assert_eq!(COMMANDS.iter().filter(|s| s.freeze_safe).count(), 6);
        let no_reply: [&str; 4] = [
            "guest-shutdown",
            "guest-suspend-disk",
            "guest-suspend-ram",
            "guest-suspend-hybrid",
        ];
        for s in &COMMANDS {
            assert_eq!(
                !s.success_response,
                no_reply.contains(&s.name),
                "{}",
                s.name
            );
        }
    }
}
