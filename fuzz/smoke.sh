#!/bin/sh
# Runs every fuzz target for a short time (CI smoke test): fuzz/smoke.sh [SECONDS] [TARGET...]
#
#   SECONDS   time per target (default 30)
#   TARGET    targets to run (default: all, from `cargo fuzz list`)
#
# Installs the nightly toolchain and cargo-fuzz when they are missing, seeds the corpora
# (fuzz/seed.sh) when fuzz/corpus/ does not exist, runs the targets one after the other, and
# exits non-zero if any of them fails (a crash input is left in fuzz/artifacts/<target>/, the
# log in fuzz/artifacts/<target>.smoke.log). Environment:
#
#   FUZZ_SANITIZER   sanitizer for `cargo fuzz` (default: none; the code under test is safe Rust,
#                    and without ASan the targets run several times faster; try `address`)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

seconds=${1:-30}
[ $# -gt 0 ] && shift
sanitizer=${FUZZ_SANITIZER:-none}

if ! rustup toolchain list | grep -q '^nightly'; then
    rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

targets=${*:-$(cargo +nightly fuzz list)}
[ -d corpus ] || ./seed.sh
mkdir -p artifacts

failed=""
for t in $targets; do
    echo "== $t: ${seconds}s"
    mkdir -p "corpus/$t"
    log="artifacts/$t.smoke.log"
    if cargo +nightly fuzz run --sanitizer "$sanitizer" "$t" "corpus/$t" -- \
        -dict=json.dict -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
        grep -E '^stat::(number_of_executed_units|average_exec_per_sec)' "$log" || true
    else
        grep -E -A4 'panicked at|SUMMARY|Test unit written' "$log" || tail -20 "$log"
        failed="$failed $t"
    fi
done

if [ -n "$failed" ]; then
    echo "failing targets:$failed (inputs in fuzz/artifacts/<target>/, logs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "all targets ran ${seconds}s without a failure"
