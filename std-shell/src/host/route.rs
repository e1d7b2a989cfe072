//! `guest-network-get-route`: `/proc/net/route` and `/proc/net/ipv6_route`, as qemu-ga reads
//! them.

use std::net::Ipv6Addr;

use qga_core::HostError;
use qga_core::host::Out;
use qga_core::types::{Bytes, GuestNetworkRoute};

/// An address of `/proc/net/route`: the 32-bit value as the kernel prints it (host order of a
/// network-order address), written low byte first.
fn ipv4(hex: &str) -> Option<String> {
    let v = u32::from_str_radix(hex, 16).ok()?;
    Some(format!(
        "{}.{}.{}.{}",
        v & 0xff,
        (v >> 8) & 0xff,
        (v >> 16) & 0xff,
        v >> 24
    ))
}

/// An address of `/proc/net/ipv6_route`: 32 hex digits.
fn ipv6(hex: &str) -> Option<String> {
    let mut octets = [0u8; 16];
    for (i, o) in octets.iter_mut().enumerate() {
        *o = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(Ipv6Addr::from(octets).to_string())
}

/// `sscanf("%x")` into a C `int`: the bits, reinterpreted as signed.
fn hex_int(t: &str) -> Option<i64> {
    u32::from_str_radix(t, 16).ok().map(|v| i64::from(v as i32))
}

/// `guest-network-get-route`.
pub fn routes(out: &mut Out<'_>) -> Result<(), HostError> {
    let mut first_err = None;
    match std::fs::read_to_string("/proc/net/route") {
        Ok(text) => {
            for line in text.lines().skip(1) {
                let f: Vec<&str> = line.split_ascii_whitespace().collect();
                let [
                    iface,
                    dest,
                    gw,
                    flags,
                    refcnt,
                    used,
                    metric,
                    mask,
                    mtu,
                    window,
                    irtt,
                    ..,
                ] = f.as_slice()
                else {
                    continue;
                };
                let dec = |t: &str| t.parse::<i64>().ok();
                let (Some(d), Some(g), Some(m), Some(fl)) = (
                    ipv4(dest),
                    ipv4(gw),
                    ipv4(mask),
                    u32::from_str_radix(flags, 16).ok(),
                ) else {
                    continue;
                };
                let (Some(refcnt), Some(used), Some(metric), Some(mtu), Some(window), Some(irtt)) = (
                    dec(refcnt),
                    dec(used),
                    dec(metric),
                    dec(mtu),
                    dec(window),
                    dec(irtt),
                ) else {
                    continue;
                };
                out.item(&GuestNetworkRoute {
                    flags: Some(u64::from(fl)),
                    source: None,
                    metric,
                    refcnt: Some(refcnt),
                    window: Some(window),
                    version: 4,
                    nexthop: None,
                    iface: Bytes(iface.as_bytes()),
                    destination: &d,
                    desprefixlen: None,
                    irtt: Some(irtt),
                    gateway: Some(&g),
                    srcprefixlen: None,
                    r#use: Some(used),
                    mtu: Some(mtu),
                    mask: Some(&m),
                });
            }
        }
        Err(e) => {
            first_err = Some(super::os_message(
                "open(\"/proc/net/route\")",
                crate::errno::errno_of(&e),
            ));
        }
    }
    match std::fs::read_to_string("/proc/net/ipv6_route") {
        Ok(text) => {
            for line in text.lines() {
                let f: Vec<&str> = line.split_ascii_whitespace().collect();
                let [
                    dest,
                    dlen,
                    src,
                    slen,
                    next,
                    metric,
                    refcnt,
                    used,
                    flags,
                    iface,
                    ..,
                ] = f.as_slice()
                else {
                    continue;
                };
                let (Some(d), Some(s), Some(n)) = (ipv6(dest), ipv6(src), ipv6(next)) else {
                    continue;
                };
                let (Some(dl), Some(sl), Some(metric), Some(refcnt), Some(used), Some(fl)) = (
                    hex_int(dlen),
                    hex_int(slen),
                    hex_int(metric),
                    hex_int(refcnt),
                    hex_int(used),
                    hex_int(flags),
                ) else {
                    continue;
                };
                let (dl, sl) = (dl.to_string(), sl.to_string());
                out.item(&GuestNetworkRoute {
                    flags: Some(fl as u64),
                    source: Some(&s),
                    metric,
                    refcnt: Some(refcnt),
                    window: None,
                    version: 6,
                    nexthop: Some(&n),
                    iface: Bytes(iface.as_bytes()),
                    destination: &d,
                    desprefixlen: Some(&dl),
                    irtt: None,
                    gateway: None,
                    srcprefixlen: Some(&sl),
                    r#use: Some(used),
                    mtu: None,
                    mask: None,
                });
            }
        }
        Err(e) => {
            first_err.get_or_insert(super::os_message(
                "open(\"/proc/net/ipv6_route\")",
                crate::errno::errno_of(&e),
            ));
        }
    }
    first_err.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_formats() {
        assert_eq!(ipv4("0100A8C0").as_deref(), Some("192.168.0.1"));
        assert_eq!(ipv4("00000000").as_deref(), Some("0.0.0.0"));
        assert_eq!(
            ipv6("fe800000000000000000000000000001").as_deref(),
            Some("fe80::1")
        );
        assert_eq!(hex_int("ffffffff"), Some(-1));
        assert_eq!(hex_int("00000100"), Some(256));
    }
}
