#!/usr/bin/env bash
# The whole test suite (the README's test command; CI runs exactly this). Installs what the
# tests need on a fresh machine: rustup targets and components, Debian's qemu-guest-agent (the
# reference for the differential tests).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export CARGO_TERM_COLOR=never

step() { printf '\n== %s\n' "$*"; }

step "toolchain: targets and components"
rustup target add thumbv7em-none-eabihf x86_64-unknown-linux-musl >/dev/null
rustup component add rustfmt clippy >/dev/null 2>&1 || true

if [ ! -x /usr/sbin/qemu-ga ]; then
  step "installing the reference agent (Debian qemu-guest-agent)"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-guest-agent >/dev/null
  else
    echo "cannot install qemu-guest-agent (not root or no apt-get)"
  fi
fi
# In CI the differential tests must not skip.
if [ "${CI:-}" = "true" ]; then export QGA_REQUIRE_REFERENCE=1; fi

step "MSRV: qga-core on Rust 1.88"
rustup toolchain install 1.88.0 --profile minimal >/dev/null 2>&1 || true
cargo +1.88.0 check -p qga-core --features testing

step "format"
cargo fmt --all --check

step "clippy (explicit feature sets; never --all-features: log and defmt exclude each other)"
cargo clippy -p qga-core --all-targets -- -D warnings
cargo clippy -p qga-core --all-targets --features testing,log -- -D warnings
cargo clippy -p qga-core --all-targets --features testing -- -D warnings
cargo clippy --workspace --all-targets -- -D warnings
DEFMT_LOG=trace cargo check -p qga-core --features defmt

step "no-alloc link check on thumbv7em-none-eabihf (staticlib without a global allocator)"
for f in "" log defmt; do
  cargo build --release --manifest-path core/nostd-check/Cargo.toml \
    --target thumbv7em-none-eabihf ${f:+--features $f}
done

step "code size on thumbv7em (figure quoted in the README)"
core/nostd-check/size.sh

step "tests (core units, transcripts, corpus, differential against qemu-ga)"
cargo test -p qga-core --features testing
cargo test --workspace
