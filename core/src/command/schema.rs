//! The argument schema of every command (newest qemu-ga schema, spec §2.1–2.2), as static data
//! the QAPI input visitor in [`super::args`] walks.

/// The type of an argument, as QAPI's input visitor checks it.
#[derive(Clone, Copy, Debug)]
pub enum Ty {
    /// `int` (int64): integers only, not floats, not values above `i64::MAX`.
    Int,
    /// `uint64`: integers, negative ones accepted for compatibility.
    U64,
    /// `bool`.
    Bool,
    /// `str`.
    Str,
    /// A list of one element type.
    List(&'static Ty),
    /// A struct with these members.
    Struct(&'static [Member]),
    /// An alternate: an integer or boolean branch and an enum branch.
    Alt(&'static Alt),
}

/// One member of a struct or of a command's arguments.
#[derive(Clone, Copy, Debug)]
pub struct Member {
    /// Wire name.
    pub name: &'static str,
    /// Type.
    pub ty: Ty,
    /// May be absent.
    pub optional: bool,
}

/// A QAPI alternate of a scalar and an enum (`GuestFileWhence`, `GuestExecCaptureOutput`).
#[derive(Clone, Copy, Debug)]
pub struct Alt {
    /// Type name used in "expected: `<name>`".
    pub name: &'static str,
    /// The scalar branch: `Ty::Int` or `Ty::Bool`.
    pub scalar: Ty,
    /// The enum branch's values.
    pub values: &'static [&'static str],
}

const fn req(name: &'static str, ty: Ty) -> Member {
    Member {
        name,
        ty,
        optional: false,
    }
}

const fn opt(name: &'static str, ty: Ty) -> Member {
    Member {
        name,
        ty,
        optional: true,
    }
}

const STR_LIST: Ty = Ty::List(&Ty::Str);

/// `GuestFileWhence`: an integer or `QGASeek`.
pub static WHENCE: Alt = Alt {
    name: "GuestFileWhence",
    scalar: Ty::Int,
    values: &["set", "cur", "end"],
};

/// `GuestExecCaptureOutput`: a boolean or `GuestExecCaptureOutputMode` (8.0).
pub static CAPTURE: Alt = Alt {
    name: "GuestExecCaptureOutput",
    scalar: Ty::Bool,
    values: &["none", "stdout", "stderr", "separated", "merged"],
};

static LOGICAL_PROCESSOR: [Member; 3] = [
    req("logical-id", Ty::Int),
    req("online", Ty::Bool),
    opt("can-offline", Ty::Bool),
];

static MEMORY_BLOCK: [Member; 3] = [
    req("phys-index", Ty::U64),
    req("online", Ty::Bool),
    opt("can-offline", Ty::Bool),
];

/// No arguments.
pub static NONE: [Member; 0] = [];
/// `id:int` (guest-sync, guest-sync-delimited).
pub static SYNC: [Member; 1] = [req("id", Ty::Int)];
/// guest-set-time.
pub static SET_TIME: [Member; 1] = [opt("time", Ty::Int)];
/// guest-shutdown.
pub static SHUTDOWN: [Member; 1] = [opt("mode", Ty::Str)];
/// guest-file-open.
pub static FILE_OPEN: [Member; 2] = [req("path", Ty::Str), opt("mode", Ty::Str)];
/// guest-file-close and guest-file-flush.
pub static HANDLE: [Member; 1] = [req("handle", Ty::Int)];
/// guest-file-read.
pub static FILE_READ: [Member; 2] = [req("handle", Ty::Int), opt("count", Ty::Int)];
/// guest-file-write.
pub static FILE_WRITE: [Member; 3] = [
    req("handle", Ty::Int),
    req("buf-b64", Ty::Str),
    opt("count", Ty::Int),
];
/// guest-file-seek.
pub static FILE_SEEK: [Member; 3] = [
    req("handle", Ty::Int),
    req("offset", Ty::Int),
    req("whence", Ty::Alt(&WHENCE)),
];
/// guest-fsfreeze-freeze-list.
pub static FREEZE_LIST: [Member; 1] = [opt("mountpoints", STR_LIST)];
/// guest-fstrim.
pub static FSTRIM: [Member; 1] = [opt("minimum", Ty::Int)];
/// guest-set-vcpus.
pub static SET_VCPUS: [Member; 1] = [req("vcpus", Ty::List(&Ty::Struct(&LOGICAL_PROCESSOR)))];
/// guest-set-user-password.
pub static SET_PASSWORD: [Member; 3] = [
    req("username", Ty::Str),
    req("password", Ty::Str),
    req("crypted", Ty::Bool),
];
/// guest-set-memory-blocks.
pub static SET_MEMORY_BLOCKS: [Member; 1] = [req("mem-blks", Ty::List(&Ty::Struct(&MEMORY_BLOCK)))];
/// guest-exec-status.
pub static EXEC_STATUS: [Member; 1] = [req("pid", Ty::Int)];
/// guest-exec.
pub static EXEC: [Member; 5] = [
    req("path", Ty::Str),
    opt("arg", STR_LIST),
    opt("env", STR_LIST),
    opt("input-data", Ty::Str),
    opt("capture-output", Ty::Alt(&CAPTURE)),
];
/// guest-ssh-get-authorized-keys.
pub static SSH_GET: [Member; 1] = [req("username", Ty::Str)];
/// guest-ssh-add-authorized-keys.
pub static SSH_ADD: [Member; 3] = [
    req("username", Ty::Str),
    req("keys", STR_LIST),
    opt("reset", Ty::Bool),
];
/// guest-ssh-remove-authorized-keys.
pub static SSH_REMOVE: [Member; 2] = [req("username", Ty::Str), req("keys", STR_LIST)];
