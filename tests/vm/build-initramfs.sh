#!/usr/bin/env bash
# Builds the test initramfs: busybox (static), the static qga binary, /init, and the virtio
# modules with their dependencies, for the running Debian kernel package.
# Usage: build-initramfs.sh QGA_BINARY KERNEL_VERSION OUTPUT.cpio.gz
set -euo pipefail
qga=$1 kver=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,dev,proc,sys,run,tmp,lib/modules}
cp /bin/busybox "$root/bin/busybox"
cp "$qga" "$root/bin/qga"
cp "$here/init" "$root/init"
chmod 755 "$root/init" "$root/bin/qga"
moddir=/lib/modules/$kver
# Resolve dependencies depth-first from modules.dep so each module follows what it needs.
declare -A seen=()
order=()
add() {
  local m=$1 deps
  [ -n "${seen[$m]:-}" ] && return
  seen[$m]=1
  deps=$(awk -F': ' -v m="$m" '$1 == m { print $2 }' "$moddir/modules.dep")
  for d in $deps; do add "$d"; done
  order+=("$m")
}
for want in virtio_console; do
  path=$(grep -m1 "/$want\.ko:" "$moddir/modules.dep" | cut -d: -f1 || true)
  [ -n "$path" ] || { echo "module $want not found for $kver" >&2; exit 1; }
  add "$path"
done
# virtio_pci is the transport virtio_console's device sits on; it is not a symbol dependency.
for extra in kernel/drivers/virtio/virtio_pci.ko; do add "$extra"; done
: > "$root/modules.list"
for m in "${order[@]}"; do
  mkdir -p "$root/lib/modules/$(dirname "$m")"
  cp "$moddir/$m" "$root/lib/modules/$m"
  echo "$m" >> "$root/modules.list"
done
(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 > "$out"
