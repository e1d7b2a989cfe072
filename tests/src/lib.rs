//! Test support for qga: a byte-stream corpus, and harnesses that run it through Debian's qemu-ga
//! 7.2 (the reference), through `qga_core::Agent` in process, and later through the `qga`
//! binary, to check that all of them answer byte for byte the same.
//!
//! Every comparison sends a stream followed by a *fence* ([`fence`]): a newline, a 0xFF byte and
//! a `guest-sync-delimited` with a known id. The newline ends a pending top-level scalar, the
//! 0xFF ends any partial request (and produces its own `stray '\uFFFD'` error, compared like
//! everything else), and the `\xff{"return": N}\n` reply marks the end of the answers. So one
//! agent process can serve the whole corpus, and the outputs of both sides include the fence's
//! replies.
//!
//! Safety: the reference agent really runs on this machine. Corpus streams never contain a
//! request that would pass argument validation for a command with side effects; see
//! [`corpus::check_stream_safety`], which every socket exchange enforces, and
//! [`process::Privileges`].

// Test support: failing loudly (panic, unwrap) is the point here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod bench;
pub mod blackbox;
pub mod build;
pub mod cases;
pub mod core_side;
pub mod corpus;
pub mod difffuzz;
pub mod escape;
pub mod hostile;
pub mod process;
pub mod qdict;
pub mod reply;
pub mod rng;
pub mod socket;
pub mod tempdir;
pub mod vm;

pub use core_side::{CoreAgent, CoreBuffers, core_exchange, new_core_agent};
pub use process::{AgentProcess, Privileges, ReferenceAgent, SocketAgent, require_reference};
pub use socket::SocketClient;

/// How a stream is handed to an agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// In one write (socket) or one `process` call (core), together with the fence.
    Whole,
    /// In pieces of this many bytes: separate writes with a short pause between them (socket),
    /// or separate `process` calls (core). The fence follows in one piece.
    Chunks(usize),
}

/// One side of a comparison: something that answers byte streams like a guest agent.
pub trait AgentUnderTest {
    /// A short name for messages ("qemu-ga", "qga-core", "qga").
    fn label(&self) -> &str;

    /// Sends `stream` followed by [`fence`]`(fence_id)` and returns every byte answered, up to
    /// and including [`fence_reply`]`(fence_id)`.
    fn exchange_fenced(
        &mut self,
        stream: &[u8],
        fence_id: u64,
        delivery: Delivery,
    ) -> Result<Vec<u8>, String>;
}

/// The bytes appended after every stream:
/// True for the errors a socket read or write with a timeout reports when it should simply be
/// tried again (nothing was ready yet, or a signal interrupted it).
pub fn is_retry(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock
            | std::io::ErrorKind::TimedOut
            | std::io::ErrorKind::Interrupted
    )
}

/// `\n\xff{"execute":"guest-sync-delimited","arguments":{"id":N}}`.
pub fn fence(id: u64) -> Vec<u8> {
    let mut v = b"\n\xff".to_vec();
    v.extend_from_slice(
        format!("{{\"execute\":\"guest-sync-delimited\",\"arguments\":{{\"id\":{id}}}}}")
            .as_bytes(),
    );
    v
}

/// The reply that ends the answers to a fenced stream: `\xff{"return": N}\n`.
pub fn fence_reply(id: u64) -> Vec<u8> {
    let mut v = b"\xff".to_vec();
    v.extend_from_slice(format!("{{\"return\": {id}}}\n").as_bytes());
    v
}
