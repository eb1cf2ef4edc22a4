//! [`IpRange`]: a block of addresses in CIDR form (`10.0.0.0/8`, `fd00::/8`).
//!
//! The containment test is a mask over the address bits, written out here rather than
//! taken from a crate: it decides which private networks a run may reach, and it is a
//! few lines.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A network address and a prefix length, with every bit after the prefix zero.
///
/// An IPv4 range contains IPv4 addresses, also when they are written IPv4-mapped
/// (`::ffff:10.0.0.1`); an IPv6 range contains IPv6 addresses, and an IPv4 address as its
/// IPv4-mapped form (so `::ffff:0:0/96` holds every IPv4 address).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpRange {
    network: IpAddr,
    prefix: u8,
}

impl IpRange {
    /// `network/prefix`. `None` when the prefix is longer than the address or a bit after
    /// the prefix is set (`10.0.0.1/8`): such a range would not mean what it says.
    pub const fn new(network: IpAddr, prefix: u8) -> Option<Self> {
        if prefix > width(network) {
            return None;
        }
        if bits(network) & !mask(width(network), prefix) != 0 {
            return None;
        }
        Some(IpRange { network, prefix })
    }

    /// The range of `prefix` bits that holds `ip`: `ip` with the bits after the prefix
    /// cleared. `None` when the prefix is longer than the address.
    pub fn containing(ip: IpAddr, prefix: u8) -> Option<Self> {
        if prefix > width(ip) {
            return None;
        }
        let kept = bits(ip) & mask(width(ip), prefix);
        let network = match ip {
            // Truncation is exact: a 32-bit mask was applied.
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from_bits(kept as u32)),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from_bits(kept)),
        };
        Some(IpRange { network, prefix })
    }

    /// The first address of the range.
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// How many leading bits every address of the range shares with [`IpRange::network`].
    pub fn prefix_len(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` is in this range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.network, ip.to_canonical()) {
            (IpAddr::V4(_), IpAddr::V4(v4)) => IpAddr::V4(v4),
            (IpAddr::V6(_), IpAddr::V6(v6)) => IpAddr::V6(v6),
            (IpAddr::V6(_), IpAddr::V4(v4)) => IpAddr::V6(v4.to_ipv6_mapped()),
            (IpAddr::V4(_), IpAddr::V6(_)) => return false,
        };
        bits(ip) & mask(width(ip), self.prefix) == bits(self.network)
    }
}

/// Address width in bits.
const fn width(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// The address as an integer, IPv4 in the low 32 bits.
const fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => v4.to_bits() as u128,
        IpAddr::V6(v6) => v6.to_bits(),
    }
}

/// The `prefix` leading bits of a `width`-bit address set (`prefix <= width`).
const fn mask(width: u8, prefix: u8) -> u128 {
    if prefix == 0 {
        return 0;
    }
    // Shifting by the full 128 bits would overflow: prefix 0 is handled above, and
    // `width - prefix` < 128 otherwise.
    (u128::MAX << (width - prefix)) & (u128::MAX >> (128 - width))
}

impl fmt::Display for IpRange {
    /// `10.0.0.0/8`, `fd00::/8` (without brackets: a host pattern adds them).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl fmt::Debug for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IpRange({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn range(network: &str, prefix: u8) -> IpRange {
        IpRange::new(ip(network), prefix).unwrap()
    }

    #[test]
    fn a_range_holds_the_addresses_that_share_its_prefix() {
        let r = range("172.16.0.0", 12);
        assert!(r.contains(ip("172.16.0.0")));
        assert!(r.contains(ip("172.31.255.255")));
        assert!(!r.contains(ip("172.15.255.255")));
        assert!(!r.contains(ip("172.32.0.0")));
        let one = range("10.1.2.3", 32);
        assert!(one.contains(ip("10.1.2.3")));
        assert!(!one.contains(ip("10.1.2.4")));
        let v6 = range("fd00::", 8);
        assert!(v6.contains(ip("fd12:3456::1")));
        assert!(!v6.contains(ip("fe00::1")));
        assert!(!v6.contains(ip("fc00::1")));
        assert!(range("::", 0).contains(ip("2001:db8::1")));
        assert!(range("0.0.0.0", 0).contains(ip("203.0.113.9")));
        let host = range("2001:db8::1", 128);
        assert!(host.contains(ip("2001:db8::1")) && !host.contains(ip("2001:db8::2")));
    }

    #[test]
    fn families_meet_only_through_ipv4_mapped_addresses() {
        let v4 = range("10.0.0.0", 8);
        assert!(
            v4.contains(ip("::ffff:10.9.8.7")),
            "mapped is the IPv4 address"
        );
        assert!(
            !v4.contains(ip("::a09:807")),
            "IPv4-compatible is not mapped"
        );
        assert!(!v4.contains(ip("fd00::1")));
        let mapped = range("::ffff:0.0.0.0", 96);
        assert!(mapped.contains(ip("192.168.1.1")));
        assert!(!range("fd00::", 8).contains(ip("10.0.0.1")));
    }

    #[test]
    fn host_bits_and_long_prefixes_are_refused() {
        assert_eq!(IpRange::new(ip("10.0.0.1"), 8), None);
        assert_eq!(IpRange::new(ip("10.0.0.0"), 33), None);
        assert_eq!(IpRange::new(ip("fd00::1"), 8), None);
        assert_eq!(IpRange::new(ip("fd00::"), 129), None);
        assert_eq!(
            IpRange::containing(ip("172.18.5.9"), 16),
            Some(range("172.18.0.0", 16))
        );
        assert_eq!(
            IpRange::containing(ip("fd12:3456::1"), 8),
            Some(range("fd00::", 8))
        );
        assert_eq!(IpRange::containing(ip("10.0.0.1"), 40), None);
    }

    #[test]
    fn display_is_cidr() {
        assert_eq!(range("10.0.0.0", 8).to_string(), "10.0.0.0/8");
        assert_eq!(range("fd00::", 8).to_string(), "fd00::/8");
        assert_eq!(format!("{:?}", range("fd00::", 8)), "IpRange(fd00::/8)");
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        /// The reference: compare the leading bits as text.
        fn reference(network: IpAddr, prefix: u8, ip: IpAddr) -> bool {
            let text = |ip: IpAddr| match ip {
                IpAddr::V4(v4) => format!("{:032b}", u32::from(v4)),
                IpAddr::V6(v6) => format!("{:0128b}", u128::from(v6)),
            };
            let n = usize::from(prefix);
            text(network)[..n] == text(ip)[..n]
        }

        proptest! {
            #[test]
            fn v4_contains_like_the_reference(a in any::<u32>(), b in any::<u32>(), prefix in 0u8..=32) {
                let r = IpRange::containing(IpAddr::V4(a.into()), prefix).unwrap();
                prop_assert!(r.contains(IpAddr::V4(a.into())));
                prop_assert_eq!(r.contains(IpAddr::V4(b.into())), reference(r.network(), prefix, IpAddr::V4(b.into())));
                prop_assert_eq!(IpRange::new(r.network(), prefix), Some(r));
            }

            #[test]
            fn v6_contains_like_the_reference(a in any::<u128>(), b in any::<u128>(), prefix in 0u8..=128) {
                let r = IpRange::containing(IpAddr::V6(a.into()), prefix).unwrap();
                prop_assert!(r.contains(IpAddr::V6(a.into())));
                let other = IpAddr::V6(b.into());
                // A mapped address is compared as IPv4, so leave those out here.
                prop_assume!(other.to_canonical().is_ipv6());
                prop_assert_eq!(r.contains(other), reference(r.network(), prefix, other));
            }
        }
    }
}
