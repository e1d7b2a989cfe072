//! The invariants of qga-core's fuzz targets, in one place for two users:
//!
//! * the cargo-fuzz targets in `fuzz/fuzz_targets/` (nightly, libFuzzer), each a one-line
//!   wrapper around a `check` function here;
//! * the stable replay `tests/tests/fuzz_replay.rs`, which includes this file with `#[path]` and
//!   runs every file of `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` through the
//!   same function.
//!
//! Every `check` takes the raw fuzzer input and panics when an invariant does not hold. The
//! code only uses crates `qga-tests` also has (qga-core with `testing`, serde, serde_json,
//! arbitrary at the same pinned version, embedded-io with `alloc`) and refers to its own modules
//! with `super::`, never `crate::`, so that it compiles as a module of another crate too.
//!
//! | target | module | what |
//! |---|---|---|
//! | `framer` | [`framer`] | streamer events do not depend on how the input is split |
//! | `scanner` | [`scanner`] | the request parser agrees with (strict) `serde_json` |
//! | `agent` | [`agent`] | structure-aware: replies are JSON, chunking changes nothing, one reply per request |
//! | `writer` | [`writer`] | the JSON writer and serializer against QEMU's `quoted_str`, glibc and `serde_json` |
//! | `unescape` | [`unescape`] | string-token decoding against `serde_json` and QEMU's `mod_utf8_codepoint` |
//! | `client` | [`client`] | the host-side client against an adversarial guest and against the real agent |

// An invariant violation is reported by panicking: that is what a fuzz target and a test do.
#![allow(clippy::panic)]
#![warn(missing_docs)]

pub mod agent;
pub mod client;
pub mod common;
pub mod framer;
pub mod oracle;
pub mod requests;
pub mod scanner;
pub mod unescape;
pub mod writer;

/// A target's check: takes the raw fuzzer input, panics on a violated invariant.
pub type Check = fn(&[u8]);

/// Every target with its check, for replaying corpora by name.
pub const TARGETS: &[(&str, Check)] = &[
    ("framer", framer::check),
    ("scanner", scanner::check),
    ("agent", agent::check),
    ("writer", writer::check),
    ("unescape", unescape::check),
    ("client", client::check),
];
