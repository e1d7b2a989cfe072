#!/bin/sh
# Starting qga from a minimal (busybox) initramfs /init: no udev, no systemd. The virtio
# console driver may be a module; qga finds its port through sysfs, so no /dev/virtio-ports
# symlink is needed. -r keeps retrying until the port appears.
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
modprobe virtio_console 2>/dev/null || insmod /lib/modules/virtio_console.ko 2>/dev/null
mkdir -p /run
# qga needs a writable state directory (handle counter, frozen marker).
/sbin/qga -r -t /run -d -f /run/qga.pid
