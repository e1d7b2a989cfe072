//! SIGTERM and SIGINT through a self-pipe.
//!
//! Installing a signal handler is inherently `unsafe`; `signal-hook` does it (and nothing else)
//! so that this crate needs no `unsafe` for it. The handler only sets a flag and writes one byte
//! to a socket pair; the main loop polls the other end together with the channel, so a signal
//! is never lost between a check and a `poll()`. SIGPIPE needs nothing: the Rust runtime sets it
//! to SIG_IGN before `main`, as qemu-ga does by hand.

use std::cell::Cell;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use signal_hook::consts::{SIGINT, SIGTERM};

/// The signals that stop the agent.
pub struct Signals {
    wake: UnixStream,
    term: Arc<AtomicBool>,
    int: Arc<AtomicBool>,
    /// A stop signal received and not handled yet.
    pending: Cell<Option<i32>>,
}

impl Signals {
    /// Installs the handlers.
    ///
    /// # Errors
    ///
    /// When the socket pair cannot be created or a handler cannot be installed.
    pub fn install() -> std::io::Result<Signals> {
        let (wake, notify) = UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        let term = Arc::new(AtomicBool::new(false));
        let int = Arc::new(AtomicBool::new(false));
        // The flag is set before the wake-up byte is written (actions run in order).
        signal_hook::flag::register(SIGTERM, Arc::clone(&term))?;
        signal_hook::flag::register(SIGINT, Arc::clone(&int))?;
        signal_hook::low_level::pipe::register(SIGTERM, notify.try_clone()?)?;
        signal_hook::low_level::pipe::register(SIGINT, notify)?;
        Ok(Signals {
            wake,
            term,
            int,
            pending: Cell::new(None),
        })
    }

    /// The descriptor to poll for readability: readable after a signal arrived.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.wake.as_fd()
    }

    /// Empties the wake-up socket and records any stop signal that arrived (SIGTERM before
    /// SIGINT). Returns true if one is pending.
    pub fn receive(&self) -> bool {
        let mut sink = [0u8; 64];
        while matches!((&self.wake).read(&mut sink), Ok(n) if n > 0) {}
        let term = self.term.swap(false, Ordering::SeqCst);
        let int = self.int.swap(false, Ordering::SeqCst);
        if self.pending.get().is_none() {
            if term {
                self.pending.set(Some(SIGTERM));
            } else if int {
                self.pending.set(Some(SIGINT));
            }
        }
        self.pending.get().is_some()
    }

    /// Drops a pending stop signal (ignored while frozen).
    pub fn clear(&self) {
        self.pending.set(None);
    }

    /// Receives and returns the pending stop signal, if any.
    pub fn take(&self) -> Option<i32> {
        self.receive();
        self.pending.take()
    }
}
