//! Serving requests performs zero heap allocations: a counting global allocator watches the
//! agent answer a mix of requests (valid, invalid, with ids, file I/O) into a fixed buffer.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
// A counting global allocator cannot be written without `unsafe`; it only forwards to System.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use qga_core::testing::FakeHost;
use qga_core::{Agent, Config};

struct Counting;

thread_local! {
    // Per thread: the test harness's own threads allocate while the test runs.
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

fn allocs() -> usize {
    ALLOCS.with(Cell::get)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // try_with: the thread-local may be gone while a thread is being torn down.
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn serving_requests_does_not_allocate() {
    let mut frame = [0u8; 8192];
    let mut work = [0u8; 2048];
    let mut out = [0u8; 16384];
    let input: &[u8] = b"\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":1}}\
        {\"execute\":\"guest-ping\",\"id\":{\"b\":[1,2.5,\"x\"],\"a\":null}}\
        {\"execute\":\"guest-info\"}{'execute':'guest-get-time'}\
        {\"execute\":\"guest-file-open\",\"arguments\":{\"path\":\"/f\",\"mode\":\"w+\"}}\
        {\"execute\":\"guest-file-write\",\"arguments\":{\"handle\":1000,\"buf-b64\":\"SGVsbG8=\"}}\
        {\"execute\":\"guest-file-seek\",\"arguments\":{\"handle\":1000,\"offset\":0,\"whence\":0}}\
        {\"execute\":\"guest-file-read\",\"arguments\":{\"handle\":1000}}\
        {\"execute\":\"guest-set-vcpus\",\"arguments\":{\"vcpus\":[{\"logical-id\":0,\"x\":1}]}}\
        @@{\"execute\":\"guest-nope\",\"id\":\"\\u00e9\"}[1,}{\"a\":1,\"a\":2}";
    let mut agent = Agent::new(
        FakeHost::new(),
        &mut frame[..],
        &mut work[..],
        Config::default(),
    );
    let before = allocs();
    let mut sink = &mut out[..];
    for _ in 0..50 {
        sink = &mut out[..];
        agent.process(input, &mut sink).unwrap();
    }
    let after = allocs();
    let left = sink.len();
    assert!(out.len() - left > 1000, "replies were written");
    assert_eq!(after - before, 0, "heap allocations while serving");
    // The counter itself works on this thread.
    let probe = std::hint::black_box(Box::new(1u64));
    assert!(allocs() > after, "the counting allocator saw nothing");
    drop(probe);
}
