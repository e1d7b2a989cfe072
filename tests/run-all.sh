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

# Debian packages: the reference agent (differential tests) and what the real-VM test boots.
need=()
[ -x /usr/sbin/qemu-ga ] || need+=(qemu-guest-agent)
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
[ -x /bin/busybox ] && busybox --list 2>/dev/null | grep -qx insmod || need+=(busybox-static)
command -v cpio >/dev/null || need+=(cpio)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
ls /boot/vmlinuz-* >/dev/null 2>&1 || need+=(linux-image-amd64)
if [ ${#need[@]} -gt 0 ]; then
  step "installing ${need[*]}"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "cannot install ${need[*]} (not root or no apt-get): the tests that need them will skip"
  fi
fi
# In CI the differential and VM tests must not skip.
if [ "${CI:-}" = "true" ]; then export QGA_REQUIRE_REFERENCE=1 QGA_REQUIRE_VM=1; fi

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

step "static qga and qga-client for x86_64-unknown-linux-musl (what the VM test boots; size in the README)"
cargo build --profile min --target x86_64-unknown-linux-musl -p qga --bin qga --bin qga-client
ls -l "$CARGO_TARGET_DIR"/x86_64-unknown-linux-musl/min/qga{,-client}

step "tests (core units, transcripts, corpus, differential against qemu-ga)"
cargo test -p qga-core --features testing
cargo test --workspace

step "fuzz smoke: every cargo-fuzz target for 30 s (nightly and cargo-fuzz installed when missing)"
fuzz/smoke.sh 30
