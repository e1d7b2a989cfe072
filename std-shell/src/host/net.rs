//! `guest-network-get-interfaces`, as qemu-ga builds it from `getifaddrs()`.
//!
//! `getifaddrs()` is a libc function; its data comes from two rtnetlink dumps (links, then
//! addresses), which are read here directly with plain socket calls. The order of the reply
//! follows getifaddrs: every link in index order, each with its addresses in dump order (IPv4
//! before IPv6); an IPv4 address with a label (`eth0:1`) is listed under that label, as glibc
//! does. Statistics come from `/proc/net/dev` and, as in qemu-ga, only for interfaces that
//! have an address.

use std::net::{Ipv4Addr, Ipv6Addr};

use qga_core::HostError;
use qga_core::host::Out;
use qga_core::types::{
    Bytes, GuestIpAddress, GuestIpAddressType, GuestNetworkInterface, GuestNetworkInterfaceStat,
};
use rustix::net::netlink::SocketAddrNetlink;
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

use super::os_message;

const NLMSG_HDR: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_LABEL: u16 = 3;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Route attributes (`struct rtattr` chain): (type, payload).
fn attributes(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let len = usize::from(u16_at(b, 0)?);
        let ty = u16_at(b, 2)?;
        if len < 4 {
            return None;
        }
        let payload = b.get(4..len)?;
        b = b.get((len + 3) & !3..).unwrap_or(&[]);
        Some((ty & 0x3fff, payload))
    })
}

/// Runs one rtnetlink dump and returns the payloads of the messages of type `want`.
fn dump(request: u16, want: u16) -> std::io::Result<Vec<Vec<u8>>> {
    let sock = rustix::net::socket_with(
        AddressFamily::NETLINK,
        SocketType::RAW,
        SocketFlags::CLOEXEC,
        // NETLINK_ROUTE is protocol 0, the default.
        None,
    )?;
    // nlmsghdr + a 16-byte body (ifinfomsg; an ifaddrmsg request may be longer than needed).
    let mut req = Vec::with_capacity(32);
    req.extend_from_slice(&32u32.to_ne_bytes());
    req.extend_from_slice(&request.to_ne_bytes());
    req.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    req.extend_from_slice(&1u32.to_ne_bytes());
    req.extend_from_slice(&0u32.to_ne_bytes());
    req.extend_from_slice(&[0u8; 16]);
    rustix::net::sendto(
        &sock,
        &req,
        SendFlags::empty(),
        &SocketAddrNetlink::new(0, 0),
    )?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let (n, _) = rustix::net::recv(&sock, &mut buf[..], RecvFlags::empty())?;
        let mut msgs = buf.get(..n).unwrap_or(&[]);
        if msgs.is_empty() {
            return Ok(out);
        }
        while msgs.len() >= NLMSG_HDR {
            let len = u32_at(msgs, 0)
                .and_then(|l| usize::try_from(l).ok())
                .unwrap_or(0);
            let ty = u16_at(msgs, 4).unwrap_or(0);
            if len < NLMSG_HDR || len > msgs.len() {
                return Ok(out);
            }
            match ty {
                NLMSG_DONE => return Ok(out),
                NLMSG_ERROR => {
                    let code = u32_at(msgs, NLMSG_HDR).map_or(0, |c| c as i32);
                    return Err(std::io::Error::from_raw_os_error(-code));
                }
                t if t == want => out.push(msgs.get(NLMSG_HDR..len).unwrap_or(&[]).to_vec()),
                _ => {}
            }
            msgs = msgs.get((len + 3) & !3..).unwrap_or(&[]);
        }
    }
}

struct Link {
    index: u32,
    name: Vec<u8>,
    mac: [u8; 6],
}

struct Iface {
    name: Vec<u8>,
    mac: String,
    addresses: Vec<(GuestIpAddressType, String, i64)>,
    stats: Option<GuestNetworkInterfaceStat>,
}

/// The counters of `name` in `/proc/net/dev`.
fn stats(devinfo: &str, name: &[u8]) -> Option<GuestNetworkInterfaceStat> {
    for line in devinfo.lines() {
        let line = line.trim_start();
        let Some((dev, rest)) = line.split_once(':') else {
            continue;
        };
        if dev.as_bytes() != name {
            continue;
        }
        let v: Vec<u64> = rest
            .split_ascii_whitespace()
            .map_while(|f| f.parse::<u64>().ok())
            .collect();
        if v.len() < 16 {
            continue;
        }
        let at = |i: usize| v.get(i).copied().unwrap_or(0);
        return Some(GuestNetworkInterfaceStat {
            tx_packets: at(9),
            tx_errs: at(10),
            rx_bytes: at(0),
            rx_dropped: at(3),
            rx_packets: at(1),
            rx_errs: at(2),
            tx_bytes: at(8),
            tx_dropped: at(11),
        });
    }
    None
}

fn netlink_error(e: &std::io::Error) -> HostError {
    os_message("getifaddrs failed", crate::errno::errno_of(e))
}

/// `guest-network-get-interfaces`.
pub fn interfaces(out: &mut Out<'_>) -> Result<(), HostError> {
    let mut links = Vec::new();
    for msg in dump(RTM_GETLINK, RTM_NEWLINK).map_err(|e| netlink_error(&e))? {
        let index = u32_at(&msg, 4).unwrap_or(0);
        let mut name = Vec::new();
        let mut mac = [0u8; 6];
        for (ty, payload) in attributes(msg.get(16..).unwrap_or(&[])) {
            match ty {
                IFLA_IFNAME => {
                    let end = payload
                        .iter()
                        .position(|&b| b == 0)
                        .unwrap_or(payload.len());
                    name = payload.get(..end).unwrap_or(&[]).to_vec();
                }
                IFLA_ADDRESS => {
                    for (dst, src) in mac.iter_mut().zip(payload) {
                        *dst = *src;
                    }
                }
                _ => {}
            }
        }
        links.push(Link { index, name, mac });
    }
    let mut ifaces: Vec<Iface> = Vec::new();
    let mac_text = |m: &[u8; 6]| {
        format!(
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    };
    let find_or_add = |ifaces: &mut Vec<Iface>, name: &[u8], mac: &[u8; 6]| -> usize {
        if let Some(i) = ifaces.iter().position(|f| f.name == name) {
            return i;
        }
        ifaces.push(Iface {
            name: name.to_vec(),
            mac: mac_text(mac),
            addresses: Vec::new(),
            stats: None,
        });
        ifaces.len() - 1
    };
    for link in &links {
        find_or_add(&mut ifaces, &link.name, &link.mac);
    }
    let devinfo = std::fs::read_to_string("/proc/net/dev").unwrap_or_default();
    for msg in dump(RTM_GETADDR, RTM_NEWADDR).map_err(|e| netlink_error(&e))? {
        let (Some(&family), Some(&prefix)) = (msg.first(), msg.get(1)) else {
            continue;
        };
        let index = u32_at(&msg, 4).unwrap_or(0);
        let (mut address, mut local, mut label) = (None, None, None);
        for (ty, payload) in attributes(msg.get(8..).unwrap_or(&[])) {
            match ty {
                IFA_ADDRESS => address = Some(payload),
                IFA_LOCAL => local = Some(payload),
                IFA_LABEL => {
                    let end = payload
                        .iter()
                        .position(|&b| b == 0)
                        .unwrap_or(payload.len());
                    label = payload.get(..end);
                }
                _ => {}
            }
        }
        let Some(link) = links.iter().find(|l| l.index == index) else {
            continue;
        };
        let entry = match family {
            AF_INET => {
                let Some(raw) = local.or(address) else {
                    continue;
                };
                let Ok(octets) = <[u8; 4]>::try_from(raw) else {
                    continue;
                };
                (
                    GuestIpAddressType::Ipv4,
                    Ipv4Addr::from(octets).to_string(),
                    label,
                )
            }
            AF_INET6 => {
                let Some(raw) = address.or(local) else {
                    continue;
                };
                let Ok(octets) = <[u8; 16]>::try_from(raw) else {
                    continue;
                };
                (
                    GuestIpAddressType::Ipv6,
                    Ipv6Addr::from(octets).to_string(),
                    None,
                )
            }
            _ => continue,
        };
        let (ty, text, label) = entry;
        let name = label.unwrap_or(&link.name);
        let i = find_or_add(&mut ifaces, name, &link.mac);
        if let Some(iface) = ifaces.get_mut(i) {
            iface.addresses.push((ty, text, i64::from(prefix)));
            if iface.stats.is_none() {
                iface.stats = stats(&devinfo, name);
            }
        }
    }
    for iface in &ifaces {
        let addrs: Vec<GuestIpAddress<'_>> = iface
            .addresses
            .iter()
            .map(|(ty, text, prefix)| GuestIpAddress {
                ip_address_type: *ty,
                ip_address: text,
                prefix: *prefix,
            })
            .collect();
        out.item(&GuestNetworkInterface {
            name: Bytes(&iface.name),
            ip_addresses: (!addrs.is_empty()).then(|| addrs.as_slice().into()),
            statistics: iface.stats,
            hardware_address: Some(&iface.mac),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_dev() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
lo:    3193      29    0    0    0     0          0         0     3193      29    0    0    0     0       0          0\n  \
eth0: 261976651 15182 1 2 0 0 0 0 859073 10338 3 4 0 0 0 0\n";
        let s = stats(text, b"eth0").unwrap();
        assert_eq!(
            (s.rx_bytes, s.rx_packets, s.rx_errs, s.rx_dropped),
            (261_976_651, 15182, 1, 2)
        );
        assert_eq!(
            (s.tx_bytes, s.tx_packets, s.tx_errs, s.tx_dropped),
            (859_073, 10338, 3, 4)
        );
        assert!(stats(text, b"eth").is_none());
    }

    #[test]
    fn rtattr_chain() {
        let mut b = Vec::new();
        b.extend_from_slice(&8u16.to_ne_bytes());
        b.extend_from_slice(&3u16.to_ne_bytes());
        b.extend_from_slice(b"lo\0\0");
        b.extend_from_slice(&5u16.to_ne_bytes());
        b.extend_from_slice(&1u16.to_ne_bytes());
        b.extend_from_slice(&[7, 0, 0, 0]);
        let got: Vec<_> = attributes(&b).collect();
        assert_eq!(got, vec![(3, &b"lo\0\0"[..]), (1, &[7u8][..])]);
    }
}
