//! Protocol constants: error classes and the parser's limits.

/// The QMP error classes qemu-ga uses on Linux.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ErrorClass {
    /// Almost every error.
    GenericError,
    /// Unknown or disabled command.
    CommandNotFound,
}

impl ErrorClass {
    /// The class name written on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorClass::GenericError => "GenericError",
            ErrorClass::CommandNotFound => "CommandNotFound",
        }
    }
}

/// Limits of the JSON streamer (spec §1.3). The defaults are qemu-ga's; each may be set lower.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Limits {
    /// Total bytes of the tokens of one request, and of a single token (64 MiB in qemu-ga).
    pub max_token_bytes: usize,
    /// Tokens in one request (2 Mi in qemu-ga).
    pub max_tokens: u32,
    /// Open braces plus brackets (1024 in qemu-ga).
    pub max_depth: u32,
}

impl Limits {
    /// qemu-ga's limits.
    pub const QEMU: Limits = Limits {
        max_token_bytes: 64 << 20,
        max_tokens: 2 << 20,
        max_depth: 1024,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::QEMU
    }
}

/// Largest `count` accepted by `guest-file-read` (48 MiB, so that the base64 reply fits the
/// host's 64 MB JSON limit).
pub const FILE_READ_MAX: i64 = 48 << 20;

/// Default `count` of `guest-file-read`.
pub const FILE_READ_DEFAULT: i64 = 4096;
