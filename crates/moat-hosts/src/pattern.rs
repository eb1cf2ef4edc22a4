//! [`HostPattern`]: one entry of an allow list, a passthrough list or a grant's hosts.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::HostsError;
use crate::name::{check_host_name, normalize_host, parse_port};
use crate::range::IpRange;

/// An exact host, `*.` + a domain, or an address range, with an optional port.
///
/// * `api.example.com` matches that host only (case-insensitive, a trailing dot ignored).
/// * `*.example.com` matches any subdomain at any depth (`a.example.com`,
///   `a.b.example.com`), but not `example.com` itself.
/// * `10.0.0.0/8`, `[fd00::/8]` match the addresses of that range (CIDR; the bits after
///   the prefix must be zero).
/// * `host:8443` matches that port only; without a port, only 80 and 443 match.
///
/// IP addresses are exact hosts (`10.0.0.1`, `[::1]:8080`); IPv6 goes in brackets.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct HostPattern {
    target: Target,
    port: Option<u16>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
enum Target {
    /// Lowercase host or domain, without the `*.`, a trailing dot, or brackets for IPv6.
    Name {
        host: String,
        subdomains: bool,
    },
    Range(IpRange),
}

impl HostPattern {
    /// Parse a pattern as written in `network.allow`, `--allow-host` or a provider's
    /// `hosts`.
    pub fn parse(text: &str) -> Result<Self, HostsError> {
        parse(text).map_err(|bad| HostsError::Pattern {
            pattern: text.to_owned(),
            reason: bad.reason,
            hint: bad.hint,
        })
    }

    /// Whether a request to `host:port` is allowed by this pattern. `host` may be in any
    /// case, with a trailing dot, and an IPv6 address may be in brackets. A range matches
    /// a host that is an address inside it.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        self.matches_normalized(&normalize_host(host), port)
    }

    /// Like [`HostPattern::matches`] for a host already in the form of
    /// [`normalize_host`].
    pub fn matches_normalized(&self, host: &str, port: u16) -> bool {
        self.port_matches(port)
            && match &self.target {
                Target::Name {
                    host: pattern,
                    subdomains: true,
                } => host
                    .strip_suffix(pattern.as_str())
                    .is_some_and(|rest| rest.len() > 1 && rest.ends_with('.')),
                Target::Name {
                    host: pattern,
                    subdomains: false,
                } => host == pattern,
                Target::Range(range) => host.parse::<IpAddr>().is_ok_and(|ip| range.contains(ip)),
            }
    }

    /// Whether a connection to the address `ip`, port `port`, is allowed by this
    /// pattern: an address pattern equal to it or a range holding it. Name patterns never
    /// match an address this way (what a name resolves to is not the name).
    pub fn matches_address(&self, ip: IpAddr, port: u16) -> bool {
        self.port_matches(port)
            && match &self.target {
                Target::Name {
                    host,
                    subdomains: false,
                } => host
                    .parse::<IpAddr>()
                    .is_ok_and(|own| own.to_canonical() == ip.to_canonical()),
                Target::Name { .. } => false,
                Target::Range(range) => range.contains(ip),
            }
    }

    fn port_matches(&self, port: u16) -> bool {
        match self.port {
            Some(wanted) => port == wanted,
            None => port == 80 || port == 443,
        }
    }

    /// The host or domain (lowercase, IPv6 without brackets); `None` for a range.
    pub fn host(&self) -> Option<&str> {
        match &self.target {
            Target::Name { host, .. } => Some(host),
            Target::Range(_) => None,
        }
    }

    /// The address range, for a range pattern.
    pub fn range(&self) -> Option<IpRange> {
        match &self.target {
            Target::Range(range) => Some(*range),
            Target::Name { .. } => None,
        }
    }

    /// Whether this is a `*.domain` pattern.
    pub fn matches_subdomains(&self) -> bool {
        matches!(
            self.target,
            Target::Name {
                subdomains: true,
                ..
            }
        )
    }

    pub fn port(&self) -> Option<u16> {
        self.port
    }
}

struct Bad {
    reason: String,
    hint: Option<String>,
}

impl Bad {
    fn new(reason: impl Into<String>) -> Self {
        Bad {
            reason: reason.into(),
            hint: None,
        }
    }

    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

fn parse(text: &str) -> Result<HostPattern, Bad> {
    if text.is_empty() {
        return Err(Bad::new("it is empty"));
    }
    if text.contains("://") {
        let host = text
            .split_once("://")
            .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(rest))
            .unwrap_or(text);
        return Err(Bad::new("it is a URL, not a host")
            .hint(format!("write only the host, for example `{host}`")));
    }
    if text.contains('/') {
        if let Some(range) = parse_range(text) {
            return range;
        }
        return Err(Bad::new("a host pattern has no path")
            .hint("write only the host; requests to every path of it are allowed"));
    }
    if text.chars().any(char::is_whitespace) {
        return Err(Bad::new("it contains a space"));
    }
    let (host, port) = split_host_port(text).map_err(Bad::new)?;
    let port = match port {
        Some(port) => Some(parse_port(port).map_err(Bad::new)?),
        None => None,
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host == "*" {
        return Err(Bad::new("`*` alone would allow every host")
            .hint("use `policy: permissive` to allow every host"));
    }
    let (subdomains, domain) = match host.strip_prefix("*.") {
        Some(domain) => (true, domain),
        None => (false, host),
    };
    if domain.contains('*') {
        return Err(
            Bad::new("only a leading `*.` is allowed as a wildcard").hint(
                "`*.example.com` already matches subdomains at every depth, such as `a.b.example.com`",
            ),
        );
    }
    let domain = domain.to_ascii_lowercase();
    if let Some(inner) = domain.strip_prefix('[') {
        let inner = inner.strip_suffix(']').unwrap_or(inner);
        if subdomains || inner.parse::<Ipv6Addr>().is_err() {
            return Err(Bad::new("not a valid IPv6 address"));
        }
        return Ok(HostPattern {
            target: Target::Name {
                host: inner.to_owned(),
                subdomains: false,
            },
            port,
        });
    }
    check_host_name(&domain).map_err(Bad::new)?;
    if subdomains && domain.parse::<Ipv4Addr>().is_ok() {
        return Err(Bad::new("an IP address has no subdomains"));
    }
    Ok(HostPattern {
        target: Target::Name {
            host: domain,
            subdomains,
        },
        port,
    })
}

/// `10.0.0.0/8`, `172.18.0.0/16:8000`, `[fd00::/8]:443`. `None` when `text` is not an
/// address followed by `/`, so that a path after a host keeps its own message.
fn parse_range(text: &str) -> Option<Result<HostPattern, Bad>> {
    let (wildcard, body) = match text.strip_prefix("*.") {
        Some(body) => (true, body),
        None => (false, text),
    };
    let (address, prefix, port) = if let Some(inner) = body.strip_prefix('[') {
        let (address, after) = inner.split_once('/')?;
        let Ok(address) = address.parse::<Ipv6Addr>() else {
            return Some(Err(Bad::new("not a valid IPv6 address")));
        };
        let Some((prefix, rest)) = after.split_once(']') else {
            return Some(Err(Bad::new("`[` without a closing `]`")));
        };
        let port = match rest {
            "" => None,
            _ => match rest.strip_prefix(':') {
                Some(port) => Some(port),
                None => {
                    return Some(Err(Bad::new(format!(
                        "unexpected `{rest}` after the range"
                    ))));
                }
            },
        };
        (IpAddr::V6(address), prefix, port)
    } else {
        let (address, after) = body.split_once('/')?;
        match address.parse::<IpAddr>() {
            Ok(IpAddr::V4(address)) => {
                let (prefix, port) = match after.split_once(':') {
                    Some((prefix, port)) => (prefix, Some(port)),
                    None => (after, None),
                };
                (IpAddr::V4(address), prefix, port)
            }
            Ok(IpAddr::V6(_)) => {
                return Some(Err(Bad::new(
                    "an IPv6 range must be written in brackets, like `[fd00::/8]:443`",
                )));
            }
            Err(_) => return None,
        }
    };
    if wildcard {
        return Some(Err(Bad::new("an address range has no subdomains")));
    }
    Some(range_pattern(address, prefix, port))
}

fn range_pattern(address: IpAddr, prefix: &str, port: Option<&str>) -> Result<HostPattern, Bad> {
    let max: u8 = if address.is_ipv4() { 32 } else { 128 };
    let family = if address.is_ipv4() { "IPv4" } else { "IPv6" };
    let prefix_len = prefix
        .parse::<u8>()
        .ok()
        .filter(|&p| p <= max && prefix.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            Bad::new(format!(
                "`/{prefix}` is not a prefix length for {family} (1 to {max})"
            ))
        })?;
    let port = match port {
        Some(port) => Some(parse_port(port).map_err(Bad::new)?),
        None => None,
    };
    if prefix_len == 0 {
        return Err(Bad::new("`/0` would allow every address")
            .hint("name the ranges the run needs, such as `10.0.0.0/8`"));
    }
    let Some(range) = IpRange::new(address, prefix_len) else {
        let written = |target| HostPattern { target, port }.to_string();
        // `containing` only fails for a prefix longer than the address, checked above.
        let start = IpRange::containing(address, prefix_len).map(Target::Range);
        let one = Target::Name {
            host: address.to_string(),
            subdomains: false,
        };
        return Err(Bad::new(format!(
            "`{address}` is not the first address of a /{prefix_len} range"
        ))
        .hint(match start {
            Some(start) => format!(
                "write `{}` for the /{prefix_len} range that holds it, or `{}` for that address alone",
                written(start),
                written(one)
            ),
            None => format!("write `{}` for that address alone", written(one)),
        }));
    };
    Ok(HostPattern {
        target: Target::Range(range),
        port,
    })
}

/// `host:port` → (`host`, `Some(port)`), keeping `[v6]` whole.
fn split_host_port(text: &str) -> Result<(&str, Option<&str>), String> {
    if text.starts_with('[') {
        let Some(end) = text.find(']') else {
            return Err("`[` without a closing `]`".into());
        };
        let (host, rest) = text.split_at(end + 1);
        return match rest {
            "" => Ok((host, None)),
            _ => match rest.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err(format!("unexpected `{rest}` after the address")),
            },
        };
    }
    match text.split_once(':') {
        None => Ok((text, None)),
        Some((host, port)) if !port.contains(':') => Ok((host, Some(port))),
        Some(_) => Err("an IPv6 address must be written in brackets, like `[::1]:8080`".into()),
    }
}

impl FromStr for HostPattern {
    type Err = HostsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HostPattern::parse(s)
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Target::Name { host, subdomains } => {
                if *subdomains {
                    f.write_str("*.")?;
                }
                if host.contains(':') {
                    write!(f, "[{host}]")?;
                } else {
                    f.write_str(host)?;
                }
            }
            Target::Range(range) if range.network().is_ipv6() => write!(f, "[{range}]")?,
            Target::Range(range) => write!(f, "{range}")?,
        }
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostPattern({self})")
    }
}

impl Serialize for HostPattern {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Read back with the same parser as user input: a damaged or unknown value is an error,
/// never a looser pattern.
impl<'de> Deserialize<'de> for HostPattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        HostPattern::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> HostPattern {
        HostPattern::parse(text).unwrap()
    }

    fn pattern_error(text: &str) -> String {
        let error = HostPattern::parse(text).unwrap_err();
        match error.hint() {
            Some(hint) => format!("{error} (hint: {hint})"),
            None => error.to_string(),
        }
    }

    #[test]
    fn exact_host_matches_itself_on_web_ports_only() {
        let pat = p("API.GitHub.com");
        assert_eq!(pat.to_string(), "api.github.com");
        assert!(pat.matches("api.github.com", 443));
        assert!(pat.matches("API.GITHUB.COM", 80));
        assert!(pat.matches("api.github.com.", 443));
        assert!(!pat.matches("api.github.com", 8443));
        assert!(!pat.matches("api.github.com", 22));
        assert!(!pat.matches("github.com", 443));
        assert!(!pat.matches("x.api.github.com", 443));
        assert!(!pat.matches("xapi.github.com", 443));
    }

    #[test]
    fn a_trailing_dot_in_the_pattern_is_ignored() {
        let pat = p("API.GitHub.com.");
        assert!(pat.matches("Api.Github.Com.", 80));
        assert_eq!(pat.to_string(), "api.github.com");
    }

    #[test]
    fn wildcard_matches_subdomains_at_any_depth_but_not_the_domain() {
        let pat = p("*.example.com");
        assert!(pat.matches("a.example.com", 443));
        assert!(pat.matches("a.b.example.com", 443));
        assert!(!pat.matches("example.com", 443));
        assert!(!pat.matches(".example.com", 443));
        assert!(!pat.matches("badexample.com", 443));
        assert!(!pat.matches("example.com.evil", 443));
        assert!(!pat.matches("a.example.com.evil.com", 443));
        assert_eq!(pat.to_string(), "*.example.com");
    }

    #[test]
    fn explicit_port_matches_only_that_port() {
        let pat = p("*.corp.internal:8443");
        assert_eq!(pat.to_string(), "*.corp.internal:8443");
        assert!(pat.matches("git.corp.internal", 8443));
        assert!(!pat.matches("git.corp.internal", 443));
        assert_eq!(pat.port(), Some(8443));
        assert!(pat.matches_subdomains());
        assert_eq!(pat.host(), Some("corp.internal"));
        assert_eq!(pat.range(), None);
    }

    #[test]
    fn ip_addresses_are_exact_hosts() {
        assert!(p("10.0.0.1").matches("10.0.0.1", 80));
        let v6 = p("[::1]:8080");
        assert_eq!(v6.to_string(), "[::1]:8080");
        assert!(v6.matches("[::1]", 8080));
        assert!(v6.matches("::1", 8080));
        let bare = p("[fe80::1]");
        assert_eq!(bare.to_string(), "[fe80::1]");
        assert!(bare.matches("fe80::1", 80));
        assert_eq!(p(&bare.to_string()), bare, "Display parses back");
    }

    #[test]
    fn ranges_match_the_addresses_inside_on_the_pattern_ports() {
        let pat = p("10.0.0.0/8");
        assert_eq!(pat.to_string(), "10.0.0.0/8");
        assert_eq!(pat.range().unwrap().prefix_len(), 8);
        assert_eq!(pat.host(), None);
        assert!(!pat.matches_subdomains());
        assert!(pat.matches("10.1.2.3", 443));
        assert!(pat.matches("10.255.255.255", 80));
        assert!(
            !pat.matches("10.1.2.3", 8000),
            "without a port only 80 and 443"
        );
        assert!(!pat.matches("11.0.0.0", 443));
        assert!(
            !pat.matches("10.example.test", 443),
            "a name is not an address"
        );
        assert!(pat.matches("[::ffff:10.0.0.1]", 443), "IPv4-mapped");

        let port = p("172.18.0.0/16:8000");
        assert_eq!(port.to_string(), "172.18.0.0/16:8000");
        assert_eq!(port.port(), Some(8000));
        assert!(port.matches("172.18.3.4", 8000));
        assert!(!port.matches("172.18.3.4", 443));
        assert!(!port.matches("172.19.0.1", 8000));

        let v6 = p("[FD00::/8]:443");
        assert_eq!(v6.to_string(), "[fd00::/8]:443");
        assert!(v6.matches("[fd12::1]", 443));
        assert!(v6.matches("fd12::1", 443));
        assert!(!v6.matches("fe80::1", 443));
        assert!(!v6.matches("fd12::1", 80));
        assert_eq!(p("[fd00::/8]").to_string(), "[fd00::/8]");
        assert_eq!(p("10.1.2.3/32").to_string(), "10.1.2.3/32");
    }

    #[test]
    fn every_form_displays_as_it_parses_back() {
        for text in [
            "api.example.com",
            "*.example.com:8443",
            "10.0.0.1",
            "[fe80::1]:8080",
            "10.0.0.0/8",
            "172.18.0.0/16:8000",
            "[fd00::/8]",
            "[fd00::/8]:443",
            "[::ffff:0.0.0.0/96]",
        ] {
            let pat = p(text);
            assert_eq!(p(&pat.to_string()), pat, "{text}");
        }
        assert_eq!(p("[::ffff:0.0.0.0/96]").to_string(), "[::ffff:0.0.0.0/96]");
    }

    #[test]
    fn addresses_match_address_patterns_and_ranges_never_names() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(p("10.1.2.3").matches_address(ip("10.1.2.3"), 443));
        assert!(p("10.1.2.3").matches_address(ip("::ffff:10.1.2.3"), 80));
        assert!(!p("10.1.2.3").matches_address(ip("10.1.2.3"), 8000));
        assert!(p("10.1.2.3:8000").matches_address(ip("10.1.2.3"), 8000));
        assert!(p("[fd00::1]").matches_address(ip("fd00::1"), 443));
        assert!(p("10.0.0.0/8").matches_address(ip("10.9.9.9"), 443));
        assert!(!p("10.0.0.0/8").matches_address(ip("192.168.0.1"), 443));
        assert!(p("[fd00::/8]:443").matches_address(ip("fd00::5"), 443));
        assert!(!p("api.corp.test").matches_address(ip("10.1.2.3"), 443));
        assert!(!p("*.corp.test").matches_address(ip("10.1.2.3"), 443));
    }

    #[test]
    fn bad_ranges_say_why() {
        insta::assert_snapshot!(pattern_error("10.0.0.1/8"), @"invalid host pattern `10.0.0.1/8`: `10.0.0.1` is not the first address of a /8 range (hint: write `10.0.0.0/8` for the /8 range that holds it, or `10.0.0.1` for that address alone)");
        insta::assert_snapshot!(pattern_error("172.18.0.5/16:8000"), @"invalid host pattern `172.18.0.5/16:8000`: `172.18.0.5` is not the first address of a /16 range (hint: write `172.18.0.0/16:8000` for the /16 range that holds it, or `172.18.0.5:8000` for that address alone)");
        insta::assert_snapshot!(pattern_error("[fd00::1/8]:443"), @"invalid host pattern `[fd00::1/8]:443`: `fd00::1` is not the first address of a /8 range (hint: write `[fd00::/8]:443` for the /8 range that holds it, or `[fd00::1]:443` for that address alone)");
        insta::assert_snapshot!(pattern_error("10.0.0.0/33"), @"invalid host pattern `10.0.0.0/33`: `/33` is not a prefix length for IPv4 (1 to 32)");
        insta::assert_snapshot!(pattern_error("[fd00::/129]"), @"invalid host pattern `[fd00::/129]`: `/129` is not a prefix length for IPv6 (1 to 128)");
        insta::assert_snapshot!(pattern_error("fd00::/8"), @"invalid host pattern `fd00::/8`: an IPv6 range must be written in brackets, like `[fd00::/8]:443`");
        insta::assert_snapshot!(pattern_error("0.0.0.0/0"), @"invalid host pattern `0.0.0.0/0`: `/0` would allow every address (hint: name the ranges the run needs, such as `10.0.0.0/8`)");
        insta::assert_snapshot!(pattern_error("*.10.0.0.0/8"), @"invalid host pattern `*.10.0.0.0/8`: an address range has no subdomains");
        insta::assert_snapshot!(pattern_error("10.0.0.0/8:0"), @"invalid host pattern `10.0.0.0/8:0`: `0` is not a port (1 to 65535)");
    }

    #[test]
    fn malformed_ranges_are_rejected_with_a_reason() {
        let cases = [
            ("10.0.0.0/", "`/` is not a prefix length"),
            ("10.0.0.0/x", "`/x` is not a prefix length"),
            ("10.0.0.0/+8", "`/+8` is not a prefix length"),
            ("10.0.0.0/8/16", "`/8/16` is not a prefix length"),
            ("10.0.0.0/8:http", "1 to 65535"),
            ("[fd00::/8", "closing"),
            ("[fd00::/8]x", "unexpected `x` after the range"),
            ("[10.0.0.0/8]", "not a valid IPv6"),
            ("[::/0]", "would allow every address"),
            ("10.0.0/8", "no path"),
            ("github.com/api", "no path"),
            ("10.0.0.0 /8", "no path"),
        ];
        for (input, reason) in cases {
            let text = HostPattern::parse(input).unwrap_err().to_string();
            assert!(
                text.starts_with(&format!("invalid host pattern `{input}`")),
                "{text}"
            );
            assert!(text.contains(reason), "{input}: {text}");
        }
    }

    #[test]
    fn debug_shows_the_pattern() {
        assert_eq!(format!("{:?}", p("*.a.test")), "HostPattern(*.a.test)");
    }

    #[test]
    fn bad_patterns_say_why() {
        insta::assert_snapshot!(pattern_error("https://github.com/org"), @"invalid host pattern `https://github.com/org`: it is a URL, not a host (hint: write only the host, for example `github.com`)");
        insta::assert_snapshot!(pattern_error("*.*.amazonaws.com"), @"invalid host pattern `*.*.amazonaws.com`: only a leading `*.` is allowed as a wildcard (hint: `*.example.com` already matches subdomains at every depth, such as `a.b.example.com`)");
        insta::assert_snapshot!(pattern_error("api.*.com"), @"invalid host pattern `api.*.com`: only a leading `*.` is allowed as a wildcard (hint: `*.example.com` already matches subdomains at every depth, such as `a.b.example.com`)");
        insta::assert_snapshot!(pattern_error("*"), @"invalid host pattern `*`: `*` alone would allow every host (hint: use `policy: permissive` to allow every host)");
        insta::assert_snapshot!(pattern_error("github.com:0"), @"invalid host pattern `github.com:0`: `0` is not a port (1 to 65535)");
        insta::assert_snapshot!(pattern_error("github.com:https"), @"invalid host pattern `github.com:https`: `https` is not a port (1 to 65535)");
        insta::assert_snapshot!(pattern_error("github..com"), @"invalid host pattern `github..com`: `github..com` has an empty part between dots");
        insta::assert_snapshot!(pattern_error("git hub.com"), @"invalid host pattern `git hub.com`: it contains a space");
        insta::assert_snapshot!(pattern_error("github.com/api"), @"invalid host pattern `github.com/api`: a host pattern has no path (hint: write only the host; requests to every path of it are allowed)");
        insta::assert_snapshot!(pattern_error("::1"), @"invalid host pattern `::1`: an IPv6 address must be written in brackets, like `[::1]:8080`");
        insta::assert_snapshot!(pattern_error("*.10.0.0.1"), @"invalid host pattern `*.10.0.0.1`: an IP address has no subdomains");
        insta::assert_snapshot!(pattern_error("-bad.com"), @"invalid host pattern `-bad.com`: a part of `-bad.com` starts or ends with `-`");
        insta::assert_snapshot!(pattern_error(""), @"invalid host pattern ``: it is empty");
    }

    #[test]
    fn malformed_patterns_are_rejected_with_a_reason() {
        let cases = [
            ("", "it is empty"),
            ("exa mple.com", "a space"),
            ("https://example.com", "a URL"),
            ("example.com/path", "no path"),
            ("user@example.com", "contains `@`"),
            ("*", "would allow every host"),
            ("*.", "would allow every host"),
            ("*..", "the host is empty"),
            ("*.*.amazonaws.com", "only a leading"),
            ("sts.*.amazonaws.com", "only a leading"),
            ("foo*.com", "only a leading"),
            ("example.com:0", "1 to 65535"),
            ("example.com:http", "1 to 65535"),
            ("example.com:99999", "1 to 65535"),
            ("a..b", "empty part"),
            ("exam!ple.com", "contains `!`"),
            ("[example.com]", "not a valid IPv6"),
            ("[::1", "closing"),
            ("a:b:c", "in brackets"),
            ("fe80::1", "in brackets"),
        ];
        for (input, reason) in cases {
            let text = HostPattern::parse(input).unwrap_err().to_string();
            assert!(
                text.starts_with(&format!("invalid host pattern `{input}`")),
                "{text}"
            );
            assert!(text.contains(reason), "{input}: {text}");
        }
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        /// The reference: the rules in words, written as directly as possible.
        fn reference(pattern: &str, host: &str, port: u16) -> bool {
            let (pat_host, pat_port) = match pattern.rsplit_once(':') {
                Some((h, p)) => (h, Some(p.parse::<u16>().unwrap())),
                None => (pattern, None),
            };
            let port_ok = pat_port.map_or(port == 80 || port == 443, |p| p == port);
            let host_ok = match pat_host.strip_prefix("*.") {
                Some(domain) => {
                    host.len() > domain.len() + 1 && host.ends_with(&format!(".{domain}"))
                }
                None => host == pat_host,
            };
            port_ok && host_ok
        }

        fn label() -> impl Strategy<Value = String> {
            prop_oneof![Just("a".to_owned()), Just("b".to_owned()), "[a-c]{1,3}"]
        }

        fn host() -> impl Strategy<Value = String> {
            prop::collection::vec(label(), 1..4).prop_map(|l| l.join("."))
        }

        proptest! {
            #[test]
            fn matches_like_the_reference(
                wildcard in any::<bool>(),
                pat_host in host(),
                pat_port in prop::option::of(prop_oneof![Just(80u16), Just(443), Just(8080)]),
                req_host in host(),
                req_port in prop_oneof![Just(80u16), Just(443), Just(8080)],
            ) {
                let mut pattern = if wildcard { format!("*.{pat_host}") } else { pat_host };
                if let Some(port) = pat_port {
                    pattern = format!("{pattern}:{port}");
                }
                let parsed = HostPattern::parse(&pattern).unwrap();
                prop_assert_eq!(
                    parsed.matches(&req_host, req_port),
                    reference(&pattern, &req_host, req_port)
                );
                prop_assert_eq!(parsed.to_string(), pattern);
            }
        }
    }
}
