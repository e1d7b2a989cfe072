#!/usr/bin/env bash
# Shows qga doing its job here: starts the daemon on a temporary unix socket (as QEMU's
# virtio-serial chardev would be on a host), then talks to it with qga-client, printing each
# request and the agent's answer.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build -q --release -p qga --bin qga --bin qga-client
bin="$CARGO_TARGET_DIR/release"
dir=$(mktemp -d)
trap 'kill "$agent" 2>/dev/null; rm -rf "$dir"' EXIT
"$bin/qga" -m unix-listen -p "$dir/qga.sock" -t "$dir" -v -l "$dir/qga.log" &
agent=$!
for _ in $(seq 50); do [ -S "$dir/qga.sock" ] && break; sleep 0.1; done
echo "qga $("$bin/qga" -V | head -n 1) running as pid $agent on $dir/qga.sock"
run() {
  printf '\n-> %s\n' "$*"
  "$bin/qga-client" --socket "$dir/qga.sock" "$@" | sed 's/^/<- /'
}
run ping
run guest-sync '{"id": 1234}'
run guest-get-osinfo
run time
run ifaddr
printf 'hello from the host\n' > "$dir/greeting"
run put "$dir/greeting" "$dir/in-guest.txt"
run cat "$dir/in-guest.txt"
run exec -- /bin/echo "exec works"
run guest-get-fsinfo
echo
echo "-> guest-bogus (the agent's error, as qemu-ga words it):"
"$bin/qga-client" --socket "$dir/qga.sock" guest-bogus 2>&1 | sed 's/^/<- /' || echo "   (exit code $?)"
echo
echo "agent log ($dir/qga.log):"
sed 's/^/   /' "$dir/qga.log"
