//! # qga-core
//!
//! The protocol engine of `qga`, a QEMU guest agent: an allocation-free, sans-IO state machine
//! that is byte-for-byte indistinguishable from qemu-ga on the wire.
//!
//! Bytes from the host go in through [`Agent::feed`]; replies come out through
//! [`Agent::write_reply`] into any [`embedded_io::Write`]. The caller owns every buffer: the
//! frame buffer that holds the request being assembled ([`FrameBuffer`]) and a work buffer for
//! streamed payloads. The operating system is reached only through the [`Host`] trait.
//!
//! In scope: QEMU's JSON dialect (single-quoted strings, modified UTF-8, lexical error recovery,
//! the 0xFF resynchronisation), the request limits and their error texts, QMP dispatch with its
//! exact messages, QAPI argument validation, the reply format with QEMU's key order, the command
//! table of the 43 Linux commands, block/allow lists and frozen state. Out of scope: anything
//! that touches the OS (the `qga` crate implements [`Host`] for Linux).
//!
//! | feature   | what it adds |
//! |-----------|--------------|
//! | `log`     | internal log statements through the `log` crate |
//! | `defmt`   | internal log statements through `defmt` (exclusive with `log`) |
//! | `testing` | `testing::FakeHost`, an in-memory host |
//!
//! ```
//! use qga_core::{Agent, Config, Host};
//!
//! // A host that only answers the protocol commands (every other command: "not supported").
//! struct Tiny;
//! impl Host for Tiny {}
//!
//! let mut frame = [0u8; 1024];
//! let mut work = [0u8; 512];
//! let mut agent = Agent::new(Tiny, &mut frame[..], &mut work[..], Config::default());
//!
//! let mut out = [0u8; 256];
//! let mut sink = &mut out[..];
//! agent
//!     .process(b"\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":42}}", &mut sink)
//!     .unwrap();
//! let left = sink.len();
//! let written = &out[..out.len() - left];
//! assert_eq!(
//!     written,
//!     &b"{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\uFFFD'\"}}\n\
//!        \xff{\"return\": 42}\n"[..]
//! );
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

#[cfg(test)]
extern crate std;

#[macro_use]
mod fmt;

pub mod agent;
pub mod buffer;
pub mod client;
pub mod command;
mod file;
pub mod ghash;
pub mod host;
mod info;
pub mod json;
pub mod proto;
pub mod qdict;
pub mod stream;
#[cfg(feature = "testing")]
pub mod testing;
pub mod types;

pub use agent::{Agent, Config, RunError};
pub use buffer::FrameBuffer;
pub use command::{CommandId, CommandSet};
pub use file::Base64Codec;
pub use host::{Host, HostError, Out};
pub use proto::{ErrorClass, Limits};
