#!/usr/bin/env bash
# Builds the test initramfs: busybox (static), the static qga binary and the static qga-client
# next to it, /init, busybox init's table with the agents' start scripts and an fsfreeze hook,
# and the modules for the virtio console, a virtio-blk disk, ext4 and vsock with its loopback
# transport (an agent on vsock-listen reached from inside the guest), with their dependencies,
# for the given kernel.
# Usage: build-initramfs.sh QGA_BINARY KERNEL_VERSION OUTPUT.cpio.gz
set -euo pipefail
qga=$1 kver=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,dev,proc,sys,run,tmp,mnt,lib/modules,etc/qga}
cp /bin/busybox "$root/bin/busybox"
cp "$qga" "$root/bin/qga"
cp "$(dirname "$qga")/qga-client" "$root/bin/qga-client"
cp "$here/init" "$root/init"
cp "$here/inittab" "$root/etc/inittab"
cp "$here/run-virtio" "$here/run-isa" "$here/fsfreeze-hook" "$root/etc/qga/"
chmod 755 "$root/init" "$root/bin/qga" "$root/bin/qga-client" "$root"/etc/qga/*
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
# crc32c_generic: ext4's metadata checksums (the kernel cannot load it on demand: no modprobe).
for want in virtio_console virtio_blk crc32c_generic ext4 vsock_loopback; do
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
