//! The `qga` crate's library: what the daemon and the host-side CLI share, and the blocking
//! host-side client API.
//!
//! * [`client`]: a blocking connection to a guest agent (qemu-ga or qga) over a unix socket,
//!   vsock or a serial device, built on the sans-IO `qga_core::client::Client`: the documented
//!   0xFF + `guest-sync-delimited` handshake, fresh ids, deadlines, bounded replies, typed
//!   results.
//! * [`vsock`]: the `sockaddr_vm` rustix lacks.
//!
//! The daemon itself (`qga`) and the CLI (`qga-client`) are this package's binaries.
#![deny(unsafe_code)]

pub mod client;
pub mod vsock;
