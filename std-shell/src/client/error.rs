//! Errors of the host-side client, and the exit codes `qga-client` maps them to.

use std::fmt;
use std::io;

use qga_core::client::de::DeError;
use qga_core::client::{ClientError, ProtocolError};

/// Exit codes of `qga-client`, one per kind of failure (values from `sysexits.h`, so that they
/// rarely collide with the status of a program run through `qga-client exec`).
pub mod exit {
    /// Success (for `exec`: the program exited with status 0).
    pub const OK: u8 = 0;
    /// Bad command line.
    pub const USAGE: u8 = 64;
    /// Cannot connect: no such socket or device, connection refused, no vsock support, ...
    pub const CONNECT: u8 = 69;
    /// The agent answered with an error reply (or the guest reported a failed operation).
    pub const AGENT_ERROR: u8 = 70;
    /// A local file could not be read or written.
    pub const LOCAL_IO: u8 = 73;
    /// The connection was lost: closed by the other end, or a transport I/O error.
    pub const CONNECTION_LOST: u8 = 74;
    /// No (valid) answer before the deadline.
    pub const TIMEOUT: u8 = 75;
    /// The guest sent something that is not the agent protocol.
    pub const PROTOCOL: u8 = 76;
}

/// Ways the guest's answer is not the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Violation {
    /// Bytes that are not JSON.
    NotJson,
    /// JSON that is not a reply object.
    NotAReply,
    /// An `error` member that is not `{"class": string, "desc": string}`.
    BadError,
    /// A reply beyond the limits: larger than the configured maximum, more than 2 Mi tokens,
    /// nested deeper than 1024 levels, or with a parser index that does not fit the buffer.
    TooLarge,
    /// The reply's value does not decode into the expected type, or fails its sanity check.
    Decode(DeError),
    /// The reply contradicts the request or an earlier reply (say, more bytes than asked for).
    Inconsistent(&'static str),
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::NotJson => f.write_str("the guest sent bytes that are not JSON"),
            Violation::NotAReply => f.write_str("the guest sent JSON that is not a reply object"),
            Violation::BadError => f.write_str("the guest sent a malformed error reply"),
            Violation::TooLarge => f.write_str("the guest's reply is larger than allowed"),
            Violation::Decode(e) => write!(f, "the guest's reply is not what was expected: {e}"),
            Violation::Inconsistent(what) => write!(f, "the guest's reply is inconsistent: {what}"),
        }
    }
}

/// Why a call failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The transport could not be opened or connected.
    Connect {
        /// What was being opened (`/run/qga.sock`, `vsock 3:1234`, ...).
        target: String,
        /// Why.
        source: io::Error,
    },
    /// No (valid) answer before the deadline.
    Timeout,
    /// The agent closed the connection while an answer was due (or before a call).
    Closed,
    /// The transport failed.
    Io(io::Error),
    /// The agent answered with an error reply.
    Agent {
        /// The error class (`GenericError`, `CommandNotFound`, ...), decoded.
        class: String,
        /// The description, decoded.
        desc: String,
    },
    /// The guest reported success but the operation did not happen as asked (say, a write of
    /// zero bytes).
    Failed(&'static str),
    /// The guest sent something that is not the protocol.
    Protocol(Violation),
    /// The arguments are not one JSON object, or cannot be written as QEMU JSON.
    Arguments,
    /// The command completed without a return value (`guest-shutdown`, `guest-suspend-*`):
    /// use [`Connection::execute`](super::Connection::execute) for those.
    NoReply,
    /// A local file (the source or destination of a copy, standard output) failed.
    Local {
        /// What was being read or written.
        what: String,
        /// Why.
        source: io::Error,
    },
}

impl Error {
    /// The `qga-client` exit code for this error (see [`exit`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Connect { .. } => exit::CONNECT,
            Error::Timeout => exit::TIMEOUT,
            Error::Closed | Error::Io(_) => exit::CONNECTION_LOST,
            Error::Agent { .. } | Error::Failed(_) => exit::AGENT_ERROR,
            Error::Protocol(_) | Error::NoReply => exit::PROTOCOL,
            Error::Arguments => exit::USAGE,
            Error::Local { .. } => exit::LOCAL_IO,
        }
    }

    /// True if the connection can still carry requests after this error (possibly after a new
    /// sync, which the next call does by itself).
    pub fn connection_usable(&self) -> bool {
        !matches!(self, Error::Connect { .. } | Error::Closed | Error::Io(_))
    }
}

impl From<ClientError> for Error {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Timeout => Error::Timeout,
            ClientError::Eof => Error::Closed,
            ClientError::ReplyTooLarge => Error::Protocol(Violation::TooLarge),
            ClientError::Protocol(ProtocolError::NotJson) => Error::Protocol(Violation::NotJson),
            ClientError::Protocol(ProtocolError::BadError) => Error::Protocol(Violation::BadError),
            ClientError::Protocol(_) => Error::Protocol(Violation::NotAReply),
            ClientError::Io => Error::Io(io::Error::other("the transport failed")),
            // The wrapper never calls the core out of order; if it did, it is a bug here, not
            // in the guest: report it as a broken connection rather than blaming the guest.
            _ => Error::Io(io::Error::other(e.as_str())),
        }
    }
}

impl From<DeError> for Error {
    fn from(e: DeError) -> Self {
        Error::Protocol(Violation::Decode(e))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Connect { target, source } => write!(f, "cannot connect to {target}: {source}"),
            Error::Timeout => f.write_str("timed out waiting for the guest agent"),
            Error::Closed => f.write_str("the guest agent closed the connection"),
            Error::Io(e) => write!(f, "connection to the guest agent failed: {e}"),
            Error::Agent { class, desc } => write!(
                f,
                "the guest agent returned an error: {}: {}",
                Printable(class),
                Printable(desc)
            ),
            Error::Failed(what) => write!(f, "the operation failed in the guest: {what}"),
            Error::Protocol(v) => write!(f, "protocol error: {v}"),
            Error::Arguments => f.write_str("the arguments must be one JSON object"),
            Error::NoReply => f.write_str("the command returned no value"),
            Error::Local { what, source } => write!(f, "{what}: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Connect { source, .. } | Error::Local { source, .. } => Some(source),
            Error::Io(e) => Some(e),
            Error::Protocol(Violation::Decode(e)) => Some(e),
            _ => None,
        }
    }
}

/// Text from the guest, made safe for a terminal: control characters (C0, DEL, C1, which
/// could move the cursor or start escape sequences) are written as `\u{..}` escapes.
#[derive(Debug, Clone, Copy)]
pub struct Printable<'a>(pub &'a str);

impl fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
                write!(f, "\\u{{{:x}}}", u32::from(c))?;
            } else {
                fmt::Write::write_char(f, c)?;
            }
        }
        Ok(())
    }
}

/// Bytes from the guest (file names, interface names: modified UTF-8 as the agent stores them),
/// shown as text: invalid sequences become U+FFFD, control characters are escaped.
#[derive(Debug, Clone, Copy)]
pub struct PrintableBytes<'a>(pub &'a [u8]);

impl fmt::Display for PrintableBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        loop {
            // `C0 80` is how the agent stores U+0000: show it as the NUL it stands for.
            let nul = rest.windows(2).position(|w| w == [0xC0, 0x80]);
            let segment = nul.map_or(rest, |i| rest.get(..i).unwrap_or_default());
            for chunk in segment.utf8_chunks() {
                Printable(chunk.valid()).fmt(f)?;
                if !chunk.invalid().is_empty() {
                    f.write_str("\u{FFFD}")?;
                }
            }
            match nul {
                Some(i) => {
                    f.write_str("\\u{0}")?;
                    rest = rest.get(i + 2..).unwrap_or_default();
                }
                None => return Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_controls() {
        assert_eq!(
            Printable("a\u{1b}[2Jb\u{9b}c\né").to_string(),
            "a\\u{1b}[2Jb\\u{9b}c\\u{a}é"
        );
        assert_eq!(
            PrintableBytes(b"x\xc0\x80y\xffz").to_string(),
            "x\\u{0}y\u{FFFD}z"
        );
    }

    #[test]
    fn exit_codes_are_distinct() {
        let codes = [
            Error::Connect {
                target: String::new(),
                source: io::Error::other("x"),
            }
            .exit_code(),
            Error::Timeout.exit_code(),
            Error::Closed.exit_code(),
            Error::Agent {
                class: String::new(),
                desc: String::new(),
            }
            .exit_code(),
            Error::Protocol(Violation::NotJson).exit_code(),
            Error::Local {
                what: String::new(),
                source: io::Error::other("x"),
            }
            .exit_code(),
        ];
        for (i, a) in codes.iter().enumerate() {
            for b in codes.iter().skip(i + 1) {
                assert_ne!(a, b);
            }
        }
    }
}
