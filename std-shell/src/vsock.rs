//! vsock addresses for rustix, which knows `AF_VSOCK` but has no address type for it (1.1):
//! Linux's `struct sockaddr_vm`, shared by the daemon (`bind`) and the client (`connect`).

use rustix::net::addr::{SocketAddrArg, SocketAddrLen, SocketAddrOpaque};

/// Linux's `struct sockaddr_vm` (16 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SockaddrVm {
    family: u16,
    reserved1: u16,
    port: u32,
    cid: u32,
    flags: u8,
    zero: [u8; 3],
}

/// A vsock address (`<cid>:<port>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VsockAddr {
    /// Context id (`VMADDR_CID_ANY` to listen on every local cid).
    pub cid: u32,
    /// Port.
    pub port: u32,
}

// SAFETY: `with_sockaddr` hands `f` a pointer to a fully initialised `sockaddr_vm` on the stack
// and its exact size; the pointer is valid for the whole call, as the trait requires.
#[allow(unsafe_code)]
unsafe impl SocketAddrArg for VsockAddr {
    unsafe fn with_sockaddr<R>(
        &self,
        f: impl FnOnce(*const SocketAddrOpaque, SocketAddrLen) -> R,
    ) -> R {
        let addr = SockaddrVm {
            family: rustix::net::AddressFamily::VSOCK.as_raw(),
            reserved1: 0,
            port: self.port,
            cid: self.cid,
            flags: 0,
            zero: [0; 3],
        };
        let len = SocketAddrLen::try_from(std::mem::size_of::<SockaddrVm>()).unwrap_or(16);
        f(std::ptr::from_ref(&addr).cast::<SocketAddrOpaque>(), len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddr_vm_is_16_bytes() {
        assert_eq!(std::mem::size_of::<SockaddrVm>(), 16);
    }
}
