//! Which addresses the router may deliver to (SPEC section 9). Loopback, private, link-local
//! (with the cloud metadata address), CGNAT, ULA, multicast, unspecified, documentation,
//! benchmarking, IETF protocol assignment and reserved addresses are refused unless an allowlist
//! names them. The ranges follow the IANA IPv4 and IPv6 Special-Purpose Address Registries
//! (checked 2026-11): every block they list as not globally reachable is refused, and so are
//! whole assignment blocks (192.0.0.0/24, 2001::/23) even where a part of them is reachable.
//! IPv6 forms that embed an IPv4 address (IPv4-mapped, IPv4-compatible, NAT64, 6to4) are judged
//! by the IPv4 address inside. Pure: resolution and connecting live in `outbound`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// Why an address is refused, in words for the person who chose the URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal(pub &'static str);

/// The outbound target policy: the built-in refusals minus what the allowlist permits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    allowed: Vec<IpNet>,
}

impl TargetPolicy {
    /// Parses `ALLOWED_TARGET_NETWORKS`: comma-separated CIDRs (a bare address means just it);
    /// empty allows nothing extra.
    pub fn parse(text: &str) -> Result<Self, String> {
        let allowed = text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("`{s}` is not a network such as 127.0.0.1/32 or 10.0.0.0/8"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { allowed })
    }

    /// An allowlist of exactly these networks (tests, embedding programs).
    pub fn allowing(allowed: Vec<IpNet>) -> Self {
        Self { allowed }
    }

    /// Whether `ip` is in a network the allowlist names (not merely a public address): where
    /// mail may go without TLS.
    pub fn lists(&self, ip: IpAddr) -> bool {
        self.allowed.iter().any(|net| net.contains(&ip)) || embedded_v4(ip).is_some_and(|v4| self.allowed.iter().any(|n| n.contains(&IpAddr::V4(v4))))
    }

    /// `Ok` if the router may connect to `ip`.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refusal> {
        if self.allowed.iter().any(|net| net.contains(&ip)) {
            return Ok(());
        }
        match refusal(ip) {
            // An embedded IPv4 address may be allowed by an IPv4 network.
            Some(_) if embedded_v4(ip).is_some_and(|v4| self.allowed.iter().any(|n| n.contains(&IpAddr::V4(v4)))) => Ok(()),
            Some(reason) => Err(reason),
            None => Ok(()),
        }
    }
}

/// The IPv4 address inside an IPv6 address that carries one.
fn embedded_v4(ip: IpAddr) -> Option<Ipv4Addr> {
    let IpAddr::V6(v6) = ip else { return None };
    let s = v6.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if let Some(mapped) = v6.to_ipv4_mapped() {
        return Some(mapped);
    }
    match s {
        // IPv4-compatible (deprecated) ::a.b.c.d, but not :: or ::1.
        [0, 0, 0, 0, 0, 0, hi, lo] if hi != 0 => Some(v4(hi, lo)),
        // NAT64 well-known prefix 64:ff9b::/96.
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(v4(hi, lo)),
        // 6to4 2002:a.b.c.d::/48.
        [0x2002, hi, lo, ..] => Some(v4(hi, lo)),
        _ => None,
    }
}

fn refusal(ip: IpAddr) -> Option<Refusal> {
    if let Some(v4) = embedded_v4(ip) {
        return v4_refusal(v4);
    }
    match ip {
        IpAddr::V4(v4) => v4_refusal(v4),
        IpAddr::V6(v6) => v6_refusal(v6),
    }
}

fn v4_refusal(ip: Ipv4Addr) -> Option<Refusal> {
    let [a, b, c, _] = ip.octets();
    let reason = match (a, b, c) {
        (0, _, _) => "is an unspecified (\"this network\") address",
        (127, _, _) => "is a loopback address",
        (10, _, _) => "is a private (RFC 1918) address",
        (172, 16..=31, _) => "is a private (RFC 1918) address",
        (192, 168, _) => "is a private (RFC 1918) address",
        (169, 254, 169) if ip.octets()[3] == 254 => "is the cloud metadata address",
        (169, 254, _) => "is a link-local address",
        (100, 64..=127, _) => "is a carrier-grade NAT (CGNAT) address",
        (192, 0, 0) => "is an IETF protocol assignment address",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "is a documentation address",
        (192, 88, 99) => "is a deprecated 6to4 relay anycast address",
        (198, 18..=19, _) => "is a benchmarking address",
        (224..=239, _, _) => "is a multicast address",
        (240..=255, _, _) => "is a reserved or broadcast address",
        _ => return None,
    };
    Some(Refusal(reason))
}

fn v6_refusal(ip: Ipv6Addr) -> Option<Refusal> {
    let s = ip.segments();
    let reason = if ip.is_unspecified() {
        "is the unspecified address"
    } else if ip.is_loopback() {
        "is a loopback address"
    } else if s[0] & 0xffc0 == 0xfe80 {
        "is a link-local address"
    } else if s[0] & 0xffc0 == 0xfec0 {
        "is a (deprecated) site-local address"
    } else if s[0] & 0xfe00 == 0xfc00 {
        "is a unique local (ULA) address"
    } else if s[0] & 0xff00 == 0xff00 {
        "is a multicast address"
    } else if (s[0] == 0x2001 && s[1] == 0x0db8) || (s[0] == 0x3fff && s[1] & 0xf000 == 0) {
        "is a documentation address"
    } else if s[0] == 0x2001 && s[1] < 0x0200 {
        // 2001::/23: Teredo, benchmarking, ORCHID, AMT, the anycast services, AS112, DRIP.
        "is an IETF protocol assignment address"
    } else if s[0] == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0 {
        "is a discard-only address"
    } else if s[0] & 0xe000 != 0x2000 {
        // Everything outside 2000::/3 (global unicast) is reserved.
        "is a reserved address"
    } else {
        return None;
    };
    Some(Refusal(reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn every_blocked_range_is_refused_and_public_addresses_pass() {
        let policy = TargetPolicy::default();
        let blocked = [
            "127.0.0.1", "127.255.255.254", "0.0.0.0", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
            "169.254.169.254", "169.254.1.1", "100.64.0.1", "100.127.255.255", "224.0.0.1", "239.255.255.250",
            "240.0.0.1", "255.255.255.255", "192.0.2.1", "198.51.100.7", "203.0.113.9", "198.18.0.1", "192.0.0.8",
            "::", "::1", "fe80::1", "febf::1", "fc00::1", "fd12:3456::1", "ff02::1", "2001:db8::1",
            "::ffff:127.0.0.1", "::ffff:7f00:1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::127.0.0.1",
            "64:ff9b::7f00:1", "2002:7f00:1::1", "2002:a00:1::", "100::1", "4000::1",
            "2001::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:1::1", "2001:2::1", "2001:10::1", "2001:20::1",
            "2001:1ff:ffff::1", "3fff::1", "3fff:fff::1", "64:ff9b:1::1", "5f00::1", "192.88.99.1", "100:0:0:1::1",
        ];
        for addr in blocked {
            assert!(policy.check(ip(addr)).is_err(), "{addr} must be refused");
        }
        for addr in ["93.184.216.34", "8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "::ffff:8.8.8.8", "2002:808:808::1",
                     "2001:200::1", "2001:4860:4860::8888", "3ffe::1", "4.0.0.1"] {
            assert_eq!(policy.check(ip(addr)), Ok(()), "{addr} must pass");
        }
        assert_eq!(policy.check(ip("169.254.169.254")), Err(Refusal("is the cloud metadata address")));
    }

    #[test]
    fn the_allowlist_opens_exactly_what_it_names() {
        let policy = TargetPolicy::parse("127.0.0.1/32, 10.0.0.0/8,fd00::1").unwrap();
        assert_eq!(policy.check(ip("127.0.0.1")), Ok(()));
        assert_eq!(policy.check(ip("::ffff:127.0.0.1")), Ok(()), "the same address, IPv4-mapped");
        assert!(policy.check(ip("127.0.0.2")).is_err());
        assert_eq!(policy.check(ip("10.200.0.1")), Ok(()));
        assert_eq!(policy.check(ip("fd00::1")), Ok(()));
        assert!(policy.check(ip("fd00::2")).is_err());
        assert!(policy.check(ip("192.168.0.1")).is_err());
        assert_eq!(TargetPolicy::parse("").unwrap(), TargetPolicy::default());
        assert!(TargetPolicy::parse("10.0.0.0/33").is_err());
        assert!(TargetPolicy::parse("localhost").is_err());
    }
}
