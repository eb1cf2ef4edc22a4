//! Which addresses the proxy connects to, checked on the address a connection really
//! goes to (after DNS): never the proxy's own host, and special-purpose ranges (private
//! networks, CGNAT, unique-local, documentation, multicast, ...) only when the run allows
//! the host or the address explicitly. Under either policy: a permissive run may reach
//! the internet, not the networks around the machine it runs on.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use moat_hosts::{HostPattern, IpRange};

/// Why the proxy does not connect to an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The proxy's own host (loopback, unspecified, link-local, its listening address,
    /// an address of one of its interfaces): refused even when allowed, because the
    /// host's services must stay out of a run's reach.
    HostLocal { ip: IpAddr },
    /// A special-purpose range the run did not allow. When `ip` is the IPv4 address
    /// carried inside a NAT64 or 6to4 address, `via` is that address.
    Private {
        ip: IpAddr,
        range_name: &'static str,
        via: Option<IpAddr>,
    },
}

/// What an address's ranges say, before any allow list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    Public,
    /// Loopback, unspecified, link-local (where cloud metadata services answer).
    HostLocal,
    /// A special-purpose range. `embedded` is the IPv4 address a translation prefix
    /// carries (the NAT64 well-known prefix, 6to4): it is where the packets end up, so it
    /// is checked in turn once the outer address is allowed.
    Special {
        name: &'static str,
        embedded: Option<Ipv4Addr>,
    },
}

/// How an IPv6 range carries an IPv4 address.
#[derive(Clone, Copy)]
enum Embeds {
    Nothing,
    /// RFC 6052: the last 32 bits (the well-known prefix has only this layout).
    Last32,
    /// RFC 3056: bits 16 to 47, right after `2002:`.
    SixToFour,
}

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> IpRange {
    match IpRange::new(IpAddr::V4(Ipv4Addr::new(a, b, c, d)), prefix) {
        Some(range) => range,
        None => panic!("a range of the table has host bits set"),
    }
}

const fn v6(first: u16, second: u16, third: u16, prefix: u8) -> IpRange {
    let ip = Ipv6Addr::new(first, second, third, 0, 0, 0, 0, 0);
    match IpRange::new(IpAddr::V6(ip), prefix) {
        Some(range) => range,
        None => panic!("a range of the table has host bits set"),
    }
}

/// IPv4 ranges a run reaches only when allowed, with the name a refusal gives them.
/// Checked in order, so the broadcast address is named before the reserved block
/// holding it. (0.0.0.0, 127/8 and 169.254/16 are host-local, checked before.)
const SPECIAL_V4: &[(IpRange, &str)] = &[
    (v4(0, 0, 0, 0, 8), "\"this network\", 0.0.0.0/8"),
    (v4(10, 0, 0, 0, 8), "RFC 1918"),
    (v4(100, 64, 0, 0, 10), "carrier-grade NAT, 100.64.0.0/10"),
    (v4(172, 16, 0, 0, 12), "RFC 1918"),
    (
        v4(192, 0, 0, 0, 24),
        "IETF protocol assignments, 192.0.0.0/24",
    ),
    (v4(192, 0, 2, 0, 24), "documentation, 192.0.2.0/24"),
    (v4(192, 168, 0, 0, 16), "RFC 1918"),
    (v4(198, 18, 0, 0, 15), "benchmarking, 198.18.0.0/15"),
    (v4(198, 51, 100, 0, 24), "documentation, 198.51.100.0/24"),
    (v4(203, 0, 113, 0, 24), "documentation, 203.0.113.0/24"),
    (v4(224, 0, 0, 0, 4), "multicast, 224.0.0.0/4"),
    (v4(255, 255, 255, 255, 32), "broadcast"),
    (v4(240, 0, 0, 0, 4), "reserved, 240.0.0.0/4"),
];

/// IPv6 ranges a run reaches only when allowed. (`::`, `::1` and fe80::/10 are
/// host-local; IPv4-mapped and IPv4-compatible addresses are checked as IPv4.)
const SPECIAL_V6: &[(IpRange, &str, Embeds)] = &[
    (
        v6(0x64, 0xff9b, 0, 96),
        "NAT64, 64:ff9b::/96",
        Embeds::Last32,
    ),
    (
        v6(0x64, 0xff9b, 1, 48),
        "NAT64 local use, 64:ff9b:1::/48",
        Embeds::Nothing,
    ),
    (
        v6(0x100, 0, 0, 64),
        "discard-only, 100::/64",
        Embeds::Nothing,
    ),
    (
        v6(0x2001, 0xdb8, 0, 32),
        "documentation, 2001:db8::/32",
        Embeds::Nothing,
    ),
    (v6(0x2001, 0, 0, 32), "Teredo, 2001::/32", Embeds::Nothing),
    (v6(0x2002, 0, 0, 16), "6to4, 2002::/16", Embeds::SixToFour),
    (
        v6(0xfc00, 0, 0, 7),
        "unique local, fc00::/7",
        Embeds::Nothing,
    ),
    (
        v6(0xfec0, 0, 0, 10),
        "site-local, fec0::/10",
        Embeds::Nothing,
    ),
    (v6(0xff00, 0, 0, 8), "multicast, ff00::/8", Embeds::Nothing),
];

/// An IPv6 address that is routed as the IPv4 address in its last 32 bits becomes that
/// IPv4 address: IPv4-mapped (`::ffff:a.b.c.d`) and the deprecated IPv4-compatible
/// (`::a.b.c.d`, except `::` and `::1`). Anything else is returned as it is.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else {
        return ip;
    };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    let compatible =
        v6.segments()[..6] == [0; 6] && v6 != Ipv6Addr::UNSPECIFIED && v6 != Ipv6Addr::LOCALHOST;
    if compatible {
        // The upper 96 bits are zero, so the truncation keeps the whole value.
        return IpAddr::V4(Ipv4Addr::from_bits(v6.to_bits() as u32));
    }
    ip
}

/// What the ranges alone say about `ip`.
pub(crate) fn classify(ip: IpAddr) -> Class {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            if v4.is_unspecified() || v4.is_loopback() || v4.is_link_local() {
                return Class::HostLocal;
            }
            let ip = IpAddr::V4(v4);
            SPECIAL_V4
                .iter()
                .find(|(range, _)| range.contains(ip))
                .map_or(Class::Public, |&(_, name)| Class::Special {
                    name,
                    embedded: None,
                })
        }
        IpAddr::V6(v6) => {
            if v6.is_unspecified() || v6.is_loopback() || v6.is_unicast_link_local() {
                return Class::HostLocal;
            }
            let ip = IpAddr::V6(v6);
            let Some(&(_, name, embeds)) =
                SPECIAL_V6.iter().find(|(range, _, _)| range.contains(ip))
            else {
                return Class::Public;
            };
            let bits = v6.to_bits();
            // Truncations below take exactly the 32 bits each layout defines.
            let embedded = match embeds {
                Embeds::Nothing => None,
                Embeds::Last32 => Some(Ipv4Addr::from_bits(bits as u32)),
                Embeds::SixToFour => Some(Ipv4Addr::from_bits((bits >> 80) as u32)),
            };
            Class::Special { name, embedded }
        }
    }
}

/// One address of this host's interfaces and the prefix length of the network it is on.
pub(crate) type InterfaceAddress = (IpAddr, u8);

/// This host's interface addresses, read on first use and then kept for one connection
/// attempt: read per connection, so an interface that appears while the proxy runs (a
/// Docker network made after the run started) counts as the host's too.
pub(crate) struct HostAddresses {
    read: fn() -> Vec<InterfaceAddress>,
    addresses: Option<Vec<InterfaceAddress>>,
}

/// Networks with a shorter prefix than this are not taken as "around the host": a prefix
/// that short on an interface is a misconfiguration, and refusing it would refuse a
/// large part of the internet.
const SHORTEST_NEIGHBOUR_PREFIX: [u8; 2] = [8, 32];

impl HostAddresses {
    /// The addresses of this host's interfaces, read with `getifaddrs` when first asked.
    pub fn of_this_host() -> Self {
        Self::from_fn(interface_addresses)
    }

    pub fn from_fn(read: fn() -> Vec<InterfaceAddress>) -> Self {
        HostAddresses {
            read,
            addresses: None,
        }
    }

    fn addresses(&mut self) -> &[InterfaceAddress] {
        self.addresses.get_or_insert_with(self.read)
    }

    /// Whether `ip` is one of the host's own addresses.
    pub fn contains(&mut self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.addresses()
            .iter()
            .any(|(own, _)| canonical(*own) == ip)
    }

    /// The network around the host that holds `ip`, if any: a neighbour on a network one
    /// of its interfaces is on (the LAN, a cloud subnet, an IPv6 /64 of public addresses
    /// behind the router's firewall), which a public address does not make part of the
    /// internet.
    pub fn neighbour_network(&mut self, ip: IpAddr) -> Option<IpRange> {
        let ip = canonical(ip);
        self.addresses().iter().find_map(|&(own, prefix)| {
            let own = canonical(own);
            let shortest = SHORTEST_NEIGHBOUR_PREFIX[usize::from(own.is_ipv6())];
            let range = IpRange::containing(own, prefix).filter(|_| prefix >= shortest)?;
            (own.is_ipv4() == ip.is_ipv4() && range.contains(ip)).then_some(range)
        })
    }
}

/// The addresses of this host's network interfaces (bridges included), with the prefix
/// length of each one's network.
pub(crate) fn interface_addresses() -> Vec<InterfaceAddress> {
    let Ok(interfaces) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    interfaces
        .filter_map(|interface| {
            let address = interface.address?;
            let netmask = interface.netmask;
            if let Some(v4) = address.as_sockaddr_in() {
                let prefix = netmask
                    .as_ref()
                    .and_then(|m| m.as_sockaddr_in())
                    .map_or(32, |m| m.ip().to_bits().count_ones() as u8);
                Some((IpAddr::V4(v4.ip()), prefix))
            } else {
                let v6 = address.as_sockaddr_in6()?;
                let prefix = netmask
                    .as_ref()
                    .and_then(|m| m.as_sockaddr_in6())
                    .map_or(128, |m| m.ip().to_bits().count_ones() as u8);
                Some((IpAddr::V6(v6.ip()), prefix))
            }
        })
        .collect()
}

/// The proxy's rules for destination addresses.
#[derive(Debug, Default)]
pub(crate) struct Destinations {
    /// Hosts, addresses and ranges whose special-purpose addresses may be reached
    /// (`network.allow` and the grants' hosts).
    pub allow: Vec<HostPattern>,
    /// The proxy's listening address: connecting there would loop back into the proxy
    /// or reach services on the gateway address.
    pub own_ip: Option<IpAddr>,
    /// Let host-local addresses through (tests of the proxy itself).
    pub allow_host_local: bool,
}

impl Destinations {
    /// Whether the proxy may connect to `ip` for a request to `host:port` (`host`
    /// normalized). The range checks come first; the host's interface addresses are
    /// read only for an address the ranges let through.
    pub fn check(
        &self,
        ip: IpAddr,
        host: &str,
        port: u16,
        host_addresses: &mut HostAddresses,
    ) -> Result<(), Refusal> {
        let connected = canonical(ip);
        // Where the packets go: the connected address, then an IPv4 address embedded in
        // it (NAT64, 6to4) once the outer one is allowed.
        let mut layers = vec![connected];
        let mut current = connected;
        loop {
            if self.is_own(current) {
                return Err(Refusal::HostLocal { ip: current });
            }
            match classify(current) {
                Class::Public => break,
                Class::HostLocal if self.allow_host_local => break,
                Class::HostLocal => return Err(Refusal::HostLocal { ip: current }),
                Class::Special { name, embedded } => {
                    if !self.allows(current, host, port) {
                        return Err(Refusal::Private {
                            ip: current,
                            range_name: name,
                            via: (current != connected).then_some(connected),
                        });
                    }
                    match embedded {
                        Some(inner) => {
                            current = IpAddr::V4(inner);
                            layers.push(current);
                        }
                        None => break,
                    }
                }
            }
        }
        if !self.allow_host_local
            && let Some(&ip) = layers.iter().find(|&&ip| host_addresses.contains(ip))
        {
            return Err(Refusal::HostLocal { ip });
        }
        // A public address on a network the host is on is a neighbour, not the internet:
        // refused like a private range, unless allowed.
        if !self.allow_host_local {
            for &ip in &layers {
                if host_addresses.neighbour_network(ip).is_some() && !self.allows(ip, host, port) {
                    return Err(Refusal::Private {
                        ip,
                        range_name: "a network this host is on",
                        via: (ip != connected).then_some(connected),
                    });
                }
            }
        }
        Ok(())
    }

    /// The refusal to report: an address refused for its range that is also one of
    /// the host's own is reported as the host's, since allowing it would not help.
    pub fn explain(&self, refusal: Refusal, host_addresses: &mut HostAddresses) -> Refusal {
        match refusal {
            Refusal::Private { ip, .. }
                if !self.allow_host_local && host_addresses.contains(ip) =>
            {
                Refusal::HostLocal { ip }
            }
            other => other,
        }
    }

    fn is_own(&self, ip: IpAddr) -> bool {
        !self.allow_host_local
            && self
                .own_ip
                .is_some_and(|own| !own.is_unspecified() && canonical(own) == ip)
    }

    /// Whether the allow list names the host (a DNS-name pattern) or holds the address
    /// (an address or range pattern). An address pattern never counts as a name here,
    /// so allowing `[64:ff9b::/96]` does not let the IPv4 address inside through.
    fn allows(&self, ip: IpAddr, host: &str, port: u16) -> bool {
        self.allow.iter().any(|pattern| {
            let names_host = pattern.host().is_some_and(|h| h.parse::<IpAddr>().is_err())
                && pattern.matches_normalized(host, port);
            names_host || pattern.matches_address(ip, port)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn name_of(text: &str) -> Option<&'static str> {
        match classify(ip(text)) {
            Class::Special { name, .. } => Some(name),
            _ => None,
        }
    }

    #[test]
    fn every_special_purpose_range_is_recognised_with_its_name() {
        let cases = [
            ("0.1.2.3", "\"this network\", 0.0.0.0/8"),
            ("10.0.0.0", "RFC 1918"),
            ("10.255.255.255", "RFC 1918"),
            ("172.16.0.0", "RFC 1918"),
            ("172.31.255.255", "RFC 1918"),
            ("192.168.0.1", "RFC 1918"),
            ("192.168.255.255", "RFC 1918"),
            ("100.64.0.0", "carrier-grade NAT, 100.64.0.0/10"),
            ("100.127.255.255", "carrier-grade NAT, 100.64.0.0/10"),
            ("192.0.0.8", "IETF protocol assignments, 192.0.0.0/24"),
            ("192.0.2.1", "documentation, 192.0.2.0/24"),
            ("198.18.0.1", "benchmarking, 198.18.0.0/15"),
            ("198.19.255.255", "benchmarking, 198.18.0.0/15"),
            ("198.51.100.7", "documentation, 198.51.100.0/24"),
            ("203.0.113.9", "documentation, 203.0.113.0/24"),
            ("224.0.0.1", "multicast, 224.0.0.0/4"),
            ("239.255.255.250", "multicast, 224.0.0.0/4"),
            ("240.0.0.1", "reserved, 240.0.0.0/4"),
            ("255.255.255.254", "reserved, 240.0.0.0/4"),
            ("255.255.255.255", "broadcast"),
            ("64:ff9b:1::1", "NAT64 local use, 64:ff9b:1::/48"),
            ("100::1", "discard-only, 100::/64"),
            ("2001:db8::1", "documentation, 2001:db8::/32"),
            ("2001:0:4136:e378::1", "Teredo, 2001::/32"),
            ("fc00::1", "unique local, fc00::/7"),
            ("fd12:3456::1", "unique local, fc00::/7"),
            ("fec0::1", "site-local, fec0::/10"),
            ("feff::1", "site-local, fec0::/10"),
            ("ff02::1", "multicast, ff00::/8"),
            ("ff0e::101", "multicast, ff00::/8"),
            // Mapped and compatible forms are their IPv4 address.
            ("::ffff:10.1.2.3", "RFC 1918"),
            ("::ffff:100.64.1.1", "carrier-grade NAT, 100.64.0.0/10"),
            ("::192.168.1.1", "RFC 1918"),
            ("::ffff:224.0.0.1", "multicast, 224.0.0.0/4"),
        ];
        for (address, name) in cases {
            assert_eq!(name_of(address), Some(name), "{address}");
        }
    }

    #[test]
    fn translation_prefixes_carry_their_ipv4_address() {
        assert_eq!(
            classify(ip("64:ff9b::a00:1")),
            Class::Special {
                name: "NAT64, 64:ff9b::/96",
                embedded: Some(Ipv4Addr::new(10, 0, 0, 1)),
            }
        );
        assert_eq!(
            classify(ip("64:ff9b::8.8.8.8")),
            Class::Special {
                name: "NAT64, 64:ff9b::/96",
                embedded: Some(Ipv4Addr::new(8, 8, 8, 8)),
            }
        );
        assert_eq!(
            classify(ip("2002:c0a8:0101::1")),
            Class::Special {
                name: "6to4, 2002::/16",
                embedded: Some(Ipv4Addr::new(192, 168, 1, 1)),
            }
        );
    }

    #[test]
    fn host_local_addresses_are_their_own_class() {
        for address in [
            "127.0.0.1",
            "127.8.9.1",
            "0.0.0.0",
            "169.254.169.254",
            "169.254.0.1",
            "::1",
            "::",
            "fe80::1",
            "febf::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
        ] {
            assert_eq!(classify(ip(address)), Class::HostLocal, "{address}");
        }
    }

    #[test]
    fn the_edges_of_the_ranges_are_public() {
        for address in [
            "9.255.255.255",
            "11.0.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.167.255.255",
            "192.169.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "192.0.1.255",
            "192.0.3.0",
            "198.17.255.255",
            "198.20.0.0",
            "198.51.99.255",
            "198.51.101.0",
            "203.0.112.255",
            "203.0.114.0",
            "223.255.255.255",
            "1.0.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "8.8.8.8",
            "140.82.112.5",
            "::ffff:8.8.8.8",
            "2606:4700::1111",
            "2001:1::1",
            "2001:db7:ffff::1",
            "2001:db9::1",
            "fbff::1",
            "fe00::1",
            "fe7f:ffff::1",
            "64:ff9a::1",
            "64:ff9b:2::1",
            "101::1",
            "2003::1",
        ] {
            assert_eq!(classify(ip(address)), Class::Public, "{address}");
        }
    }

    #[test]
    fn canonical_turns_ipv4_in_ipv6_into_ipv4() {
        assert_eq!(canonical(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
        assert_eq!(canonical(ip("::10.0.0.1")), ip("10.0.0.1"));
        assert_eq!(canonical(ip("::1")), ip("::1"));
        assert_eq!(canonical(ip("::")), ip("::"));
        assert_eq!(canonical(ip("64:ff9b::a00:1")), ip("64:ff9b::a00:1"));
        assert_eq!(canonical(ip("10.0.0.1")), ip("10.0.0.1"));
    }

    fn allow(patterns: &[&str]) -> Destinations {
        Destinations {
            allow: patterns
                .iter()
                .map(|p| HostPattern::parse(p).unwrap())
                .collect(),
            ..Destinations::default()
        }
    }

    fn none_of_ours() -> HostAddresses {
        HostAddresses::from_fn(Vec::new)
    }

    fn check(d: &Destinations, address: &str, host: &str, port: u16) -> Result<(), Refusal> {
        d.check(ip(address), host, port, &mut none_of_ours())
    }

    #[test]
    fn private_addresses_are_refused_unless_allowed_by_name_or_address() {
        let nothing = allow(&[]);
        assert_eq!(
            check(&nothing, "10.1.2.3", "api.corp.test", 443),
            Err(Refusal::Private {
                ip: ip("10.1.2.3"),
                range_name: "RFC 1918",
                via: None,
            })
        );
        assert_eq!(check(&nothing, "140.82.112.5", "github.com", 443), Ok(()));

        let by_name = allow(&["api.corp.test", "*.git.corp.test:8443"]);
        assert_eq!(check(&by_name, "10.1.2.3", "api.corp.test", 443), Ok(()));
        assert!(check(&by_name, "10.1.2.3", "api.corp.test", 8000).is_err());
        assert!(check(&by_name, "10.1.2.3", "other.corp.test", 443).is_err());
        assert_eq!(check(&by_name, "fd00::7", "a.git.corp.test", 8443), Ok(()));
        assert!(check(&by_name, "fd00::7", "git.corp.test", 8443).is_err());

        let by_address = allow(&["10.1.2.3", "172.18.0.0/16:8000", "[fd00::/8]"]);
        assert_eq!(check(&by_address, "10.1.2.3", "api.corp.test", 80), Ok(()));
        assert_eq!(check(&by_address, "::ffff:10.1.2.3", "x.test", 443), Ok(()));
        assert!(check(&by_address, "10.1.2.4", "api.corp.test", 443).is_err());
        assert_eq!(check(&by_address, "172.18.9.9", "172.18.9.9", 8000), Ok(()));
        assert!(check(&by_address, "172.18.9.9", "172.18.9.9", 443).is_err());
        assert_eq!(check(&by_address, "fd12::1", "registry.test", 443), Ok(()));
        assert!(check(&by_address, "fc00::1", "registry.test", 443).is_err());
    }

    #[test]
    fn host_local_addresses_stay_refused_even_if_allowed() {
        let everything = allow(&[
            "localhost",
            "127.0.0.1",
            "127.0.0.0/8",
            "169.254.169.254",
            "[::1]",
            "[fe80::/10]",
            "metadata.test",
        ]);
        for (address, host) in [
            ("127.0.0.1", "localhost"),
            ("127.0.0.1", "127.0.0.1"),
            ("169.254.169.254", "metadata.test"),
            ("::1", "::1"),
            ("fe80::1", "metadata.test"),
            ("0.0.0.0", "metadata.test"),
        ] {
            assert_eq!(
                check(&everything, address, host, 80),
                Err(Refusal::HostLocal {
                    ip: canonical(ip(address))
                }),
                "{address}"
            );
        }
    }

    #[test]
    fn the_proxys_own_and_its_hosts_addresses_are_host_local() {
        let gateway = ip("172.18.0.1");
        let d = Destinations {
            allow: vec![HostPattern::parse("172.18.0.0/16").unwrap()],
            own_ip: Some(gateway),
            allow_host_local: false,
        };
        assert_eq!(
            check(&d, "172.18.0.1", "gw.test", 443),
            Err(Refusal::HostLocal { ip: gateway })
        );
        let unspecified = Destinations {
            own_ip: Some(ip("0.0.0.0")),
            ..allow(&["172.18.0.0/16"])
        };
        assert_eq!(check(&unspecified, "172.18.0.1", "gw.test", 443), Ok(()));

        // Interface addresses: public or allowed-private ones alike.
        let mut ours =
            HostAddresses::from_fn(|| vec![(ip("172.18.0.1"), 32), (ip("203.0.113.50"), 32)]);
        let d = allow(&["172.18.0.0/16", "203.0.113.0/24"]);
        for address in ["172.18.0.1", "::ffff:172.18.0.1", "203.0.113.50"] {
            assert_eq!(
                d.check(ip(address), "x.test", 443, &mut ours),
                Err(Refusal::HostLocal {
                    ip: canonical(ip(address))
                }),
                "{address}"
            );
        }
        assert_eq!(d.check(ip("172.18.0.2"), "x.test", 443, &mut ours), Ok(()));
        let mut public_host = HostAddresses::from_fn(|| vec![(ip("140.82.112.5"), 32)]);
        assert!(matches!(
            allow(&[]).check(ip("140.82.112.5"), "x.test", 443, &mut public_host),
            Err(Refusal::HostLocal { .. })
        ));
    }

    /// A public address on a network one of the host's interfaces is on (the home router
    /// in the /64 the host has from it, another instance in a cloud subnet) is refused as
    /// a private one is, and reachable once allowed; the rest of the internet is not.
    #[test]
    fn neighbours_on_the_hosts_networks_are_refused_unless_allowed() {
        let mut lan = HostAddresses::from_fn(|| {
            vec![
                (ip("2a02:8070:aa:bb::1234"), 64),
                (ip("81.2.69.20"), 24),
                (ip("81.2.70.7"), 32),
                (ip("9.9.9.9"), 0),
            ]
        });
        let d = allow(&[]);
        for (address, shown) in [
            ("2a02:8070:aa:bb::1", "2a02:8070:aa:bb::1"),
            ("81.2.69.1", "81.2.69.1"),
            ("::ffff:81.2.69.1", "81.2.69.1"),
        ] {
            assert_eq!(
                d.check(ip(address), "router.test", 443, &mut lan),
                Err(Refusal::Private {
                    ip: ip(shown),
                    range_name: "a network this host is on",
                    via: None,
                }),
                "{address}"
            );
        }
        for address in [
            "2a02:8070:aa:cc::1",
            "81.2.71.1",
            "81.2.70.8",
            "140.82.112.5",
        ] {
            assert_eq!(
                d.check(ip(address), "x.test", 443, &mut lan),
                Ok(()),
                "{address}"
            );
        }
        let allowed = allow(&["router.test", "81.2.69.0/24"]);
        assert_eq!(
            allowed.check(ip("2a02:8070:aa:bb::1"), "router.test", 443, &mut lan),
            Ok(())
        );
        assert_eq!(
            allowed.check(ip("81.2.69.1"), "x.test", 443, &mut lan),
            Ok(())
        );
        assert!(
            allowed
                .check(ip("81.2.69.20"), "x.test", 443, &mut lan)
                .is_err(),
            "the host's own address stays refused"
        );
    }

    #[test]
    fn interface_addresses_are_read_only_when_the_ranges_let_an_address_through() {
        fn unread() -> Vec<InterfaceAddress> {
            panic!("getifaddrs should not be needed for an address the ranges refuse")
        }
        let mut lazy = HostAddresses::from_fn(unread);
        let d = allow(&[]);
        assert!(d.check(ip("10.0.0.1"), "x.test", 443, &mut lazy).is_err());
        assert!(d.check(ip("127.0.0.1"), "x.test", 443, &mut lazy).is_err());
    }

    #[test]
    fn a_refusal_for_a_hosts_own_address_says_so() {
        let mut ours = HostAddresses::from_fn(|| vec![(ip("172.17.0.1"), 32)]);
        let d = allow(&[]);
        let refusal = d
            .check(ip("172.17.0.1"), "gw.test", 443, &mut ours)
            .unwrap_err();
        assert!(matches!(refusal, Refusal::Private { .. }));
        assert_eq!(
            d.explain(refusal, &mut ours),
            Refusal::HostLocal {
                ip: ip("172.17.0.1")
            }
        );
        let other = d
            .check(ip("10.0.0.1"), "x.test", 443, &mut ours)
            .unwrap_err();
        assert_eq!(d.explain(other, &mut ours), other);
    }

    #[test]
    fn the_address_inside_nat64_and_6to4_is_checked_once_the_outer_is_allowed() {
        // Not allowed: refused for the prefix.
        assert_eq!(
            check(&allow(&[]), "64:ff9b::808:808", "x.test", 443),
            Err(Refusal::Private {
                ip: ip("64:ff9b::808:808"),
                range_name: "NAT64, 64:ff9b::/96",
                via: None,
            })
        );
        // The prefix allowed: a public IPv4 inside goes through, a private one needs
        // its own entry, a host-local one never does.
        let nat64 = allow(&["[64:ff9b::/96]"]);
        assert_eq!(check(&nat64, "64:ff9b::808:808", "x.test", 443), Ok(()));
        assert_eq!(
            check(&nat64, "64:ff9b::a00:1", "64:ff9b::a00:1", 443),
            Err(Refusal::Private {
                ip: ip("10.0.0.1"),
                range_name: "RFC 1918",
                via: Some(ip("64:ff9b::a00:1")),
            })
        );
        let both = allow(&["[64:ff9b::/96]", "10.0.0.0/8"]);
        assert_eq!(check(&both, "64:ff9b::a00:1", "x.test", 443), Ok(()));
        assert_eq!(
            check(&both, "64:ff9b::7f00:1", "x.test", 443),
            Err(Refusal::HostLocal {
                ip: ip("127.0.0.1")
            })
        );
        let six_to_four = allow(&["[2002::/16]"]);
        assert!(matches!(
            check(&six_to_four, "2002:a9fe:a9fe::1", "x.test", 443),
            Err(Refusal::HostLocal { .. })
        ));
        assert_eq!(
            check(&six_to_four, "2002:0808:0808::1", "x.test", 443),
            Ok(())
        );
        // A host allowed by name may reach whatever it resolves to, but its host.
        let named = allow(&["nat64.corp.test"]);
        assert_eq!(
            check(&named, "64:ff9b::a00:1", "nat64.corp.test", 443),
            Ok(())
        );
        assert!(matches!(
            check(&named, "64:ff9b::7f00:1", "nat64.corp.test", 443),
            Err(Refusal::HostLocal { .. })
        ));
    }

    #[test]
    fn this_hosts_interface_addresses_are_read() {
        let addresses = interface_addresses();
        assert!(
            addresses.iter().any(|(ip, _)| ip.is_loopback()),
            "{addresses:?}"
        );
        assert!(
            addresses.contains(&(ip("127.0.0.1"), 8)),
            "netmasks are read: {addresses:?}"
        );
        let mut lazy = HostAddresses::of_this_host();
        assert!(lazy.contains(ip("127.0.0.1")));
        assert!(lazy.contains(ip("::ffff:127.0.0.1")));
    }
}
