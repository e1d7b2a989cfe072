#!/usr/bin/env bash
# Measures qga-core's code size on thumbv7em-none-eabihf (opt-level "z", LTO, panic=abort):
# the no-alloc probe is linked with --gc-sections from its one entry point, so what remains is
# framing + parsing + dispatch + the protocol commands + the writer, for a host with no OS
# commands. Prints `size -A` of the result.
set -euo pipefail
cd "$(dirname "$0")"
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build -q --release --target thumbv7em-none-eabihf
lld=$(find "$(rustc --print sysroot)/lib/rustlib" -name rust-lld -type f | head -n 1)
out="$target_dir/qga-core-size.elf"
"$lld" -flavor gnu --gc-sections -e qga_answer \
  "$target_dir/thumbv7em-none-eabihf/release/libqga_core_nostd_check.a" -o "$out"
size -A "$out" | grep -E '^\.(text|rodata|data|bss) '
