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
    // The pointers stay opaque (no unsafe dereference); black_box keeps the optimiser from
    // specialising the agent for the one request below, so the size measured is the real one.
    let _ = (input, len, out, cap);
    static REQ: &[u8] = b"{\"execute\":\"guest-sync\",\"arguments\":{\"id\":1}}";
    let request = core::hint::black_box(REQ);
    let mut frame = [0u8; 512];
    let mut work = [0u8; 256];
    let mut agent = Agent::new(Tiny, &mut frame[..], &mut work[..], Config::default());
    let mut reply = [0u8; 128];
    let cap_reply = reply.len();
    let mut sink = &mut reply[..];
    match agent.process(request, &mut sink) {
        Ok(()) => cap_reply - sink.len(),
        Err(_) => 0,
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
