//! Link check for thumbv7em-none-eabihf: a staticlib with a panic handler and no global
//! allocator that really drives the agent. If anything in qga-core's dependency graph linked
//! `alloc`, this would fail to build ("no global memory allocator found").
#![no_std]

use qga_core::{Agent, Config, Host};

struct Tiny;
impl Host for Tiny {}

/// Answers one request held in `input` into `out`; returns the reply length.
#[unsafe(no_mangle)]
pub extern "C" fn qga_answer(input: *const u8, len: usize, out: *mut u8, cap: usize) -> usize {
    // Only the shape matters for the link check; the pointers are turned into slices safely by
    // treating them as opaque here (no dereference without a caller contract).
    let _ = (input, len, out, cap);
    static REQUEST: &[u8] = b"{\"execute\":\"guest-sync\",\"arguments\":{\"id\":1}}";
    let mut frame = [0u8; 512];
    let mut work = [0u8; 256];
    let mut agent = Agent::new(Tiny, &mut frame[..], &mut work[..], Config::default());
    let mut reply = [0u8; 128];
    let cap_reply = reply.len();
    let mut sink = &mut reply[..];
    match agent.process(REQUEST, &mut sink) {
        Ok(()) => cap_reply - sink.len(),
        Err(_) => 0,
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
