//! [`HostPattern`]: one entry of an allow list, a passthrough list or a grant's hosts.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Serialize, Serializer};

use crate::HostsError;
use crate::name::{check_host_name, normalize_host, parse_port};

/// An exact host or `*.` + a domain, with an optional port.
///
/// * `api.example.com` matches that host only (case-insensitive, a trailing dot ignored).
/// * `*.example.com` matches any subdomain at any depth (`a.example.com`,
///   `a.b.example.com`), but not `example.com` itself.
/// * `host:8443` matches that port only; without a port, only 80 and 443 match.
///
/// IP addresses are exact hosts (`10.0.0.1`, `[::1]:8080`); IPv6 goes in brackets.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct HostPattern {
    /// Lowercase host or domain, without the `*.`, a trailing dot, or brackets for IPv6.
    host: String,
    subdomains: bool,
    port: Option<u16>,
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
    /// case, with a trailing dot, and an IPv6 address may be in brackets.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        self.matches_normalized(&normalize_host(host), port)
    }

    /// Like [`HostPattern::matches`] for a host already in the form of
    /// [`normalize_host`].
    pub fn matches_normalized(&self, host: &str, port: u16) -> bool {
        let port_ok = match self.port {
            Some(wanted) => port == wanted,
            None => port == 80 || port == 443,
        };
        port_ok
            && if self.subdomains {
                host.strip_suffix(self.host.as_str())
                    .is_some_and(|rest| rest.len() > 1 && rest.ends_with('.'))
            } else {
                host == self.host
            }
    }

    /// The host or domain (lowercase, IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Whether this is a `*.domain` pattern.
    pub fn matches_subdomains(&self) -> bool {
        self.subdomains
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
            host: inner.to_owned(),
            subdomains: false,
            port,
        });
    }
    check_host_name(&domain).map_err(Bad::new)?;
    if subdomains && domain.parse::<Ipv4Addr>().is_ok() {
        return Err(Bad::new("an IP address has no subdomains"));
    }
    Ok(HostPattern {
        host: domain,
        subdomains,
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
        if self.subdomains {
            f.write_str("*.")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
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
        assert_eq!(pat.host(), "corp.internal");
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
