//! Host patterns and the network policy: which hosts a run may reach through the proxy.
//!
//! Matching is hand-rolled on purpose: an allow list is security-relevant, so only two
//! forms exist, an exact host and `*.domain`, each with an optional port.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use crate::error::ConfigError;

/// One host pattern of an allow list, a grant or the passthrough list.
///
/// * `api.example.com`: exactly that host (case-insensitive, a trailing dot is ignored);
/// * `*.example.com`: any deeper subdomain (`a.example.com`, `a.b.example.com`), but not
///   `example.com` itself;
/// * either with `:port` to match only that port; without a port, only 80 and 443 match.
///
/// IP addresses are exact hosts (`10.0.0.1`, `[::1]:8080`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct HostPattern {
    host: HostMatch,
    port: Option<u16>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
enum HostMatch {
    Exact(String),
    /// The domain without the `*.`; a host matches if it ends with `.` + this.
    SubdomainOf(String),
}

impl HostPattern {
    /// Parse a pattern; see the type's documentation for the forms.
    pub fn parse(input: &str) -> Result<Self, ConfigError> {
        let fail = |reason: &str| ConfigError::HostPattern {
            pattern: input.to_owned(),
            reason: reason.to_owned(),
        };
        if input.is_empty() {
            return Err(fail("it is empty"));
        }
        if input.chars().any(char::is_whitespace) {
            return Err(fail("it contains whitespace"));
        }
        if input.contains("://") || input.contains('/') || input.contains('@') {
            return Err(fail("give a host name, not a URL"));
        }
        let (host, port) = split_host_port(input).map_err(|reason| fail(&reason))?;
        let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
        if host == "*" {
            return Err(fail(
                "`*` alone is not a pattern; a permissive policy allows every host",
            ));
        }
        let host = if let Some(domain) = host.strip_prefix("*.") {
            if domain.contains('*') {
                return Err(fail(
                    "only one leading `*.` is allowed, as in `*.example.com`",
                ));
            }
            validate_dns_name(domain).map_err(|reason| fail(&reason))?;
            HostMatch::SubdomainOf(domain.to_owned())
        } else if host.contains('*') {
            return Err(fail(
                "`*` is only allowed as the first label, as in `*.example.com`",
            ));
        } else {
            if host.parse::<IpAddr>().is_err() {
                validate_dns_name(&host).map_err(|reason| fail(&reason))?;
            }
            HostMatch::Exact(host)
        };
        Ok(HostPattern { host, port })
    }

    /// Whether this pattern matches `host` on `port`. `host` may be in any case, with a
    /// trailing dot, and an IPv6 address may be in brackets.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        self.matches_normalized(&normalize_host(host), port)
    }

    /// Like [`HostPattern::matches`] for a host already made lowercase without a trailing
    /// dot or brackets (see [`normalize_host`]).
    pub(crate) fn matches_normalized(&self, host: &str, port: u16) -> bool {
        let port_ok = match self.port {
            Some(p) => p == port,
            None => port == 80 || port == 443,
        };
        port_ok
            && match &self.host {
                HostMatch::Exact(exact) => exact == host,
                HostMatch::SubdomainOf(domain) => host
                    .strip_suffix(domain.as_str())
                    .is_some_and(|rest| rest.len() > 1 && rest.ends_with('.')),
            }
    }
}

impl FromStr for HostPattern {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HostPattern::parse(s)
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            HostMatch::Exact(h) if h.contains(':') && self.port.is_some() => write!(f, "[{h}]")?,
            HostMatch::Exact(h) => f.write_str(h)?,
            HostMatch::SubdomainOf(d) => write!(f, "*.{d}")?,
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

/// Split `host[:port]`, `[v6][:port]` or a bare IPv6 address.
fn split_host_port(input: &str) -> Result<(&str, Option<u16>), String> {
    let parse_port = |p: &str| match p.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(format!("port `{p}` is not a number from 1 to 65535")),
    };
    if let Some(rest) = input.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| "`[` without a closing `]`".to_owned())?;
        if host.parse::<Ipv6Addr>().is_err() {
            return Err(format!("`{host}` in brackets is not an IPv6 address"));
        }
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(p) => Ok((host, Some(parse_port(p)?))),
                None => Err(format!("unexpected `{after}` after `]`")),
            },
        };
    }
    match input.matches(':').count() {
        0 => Ok((input, None)),
        1 => {
            let (host, port) = input.split_once(':').unwrap_or((input, ""));
            Ok((host, Some(parse_port(port)?)))
        }
        _ if input.parse::<Ipv6Addr>().is_ok() => Ok((input, None)),
        _ => Err("too many `:`; write IPv6 addresses in brackets, as in `[::1]:8080`".into()),
    }
}

fn validate_dns_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the host name is empty".into());
    }
    if name.len() > 253 {
        return Err("the host name is longer than 253 characters".into());
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("the host name has an empty label (`..` or a leading `.`)".into());
        }
        if label.len() > 63 {
            return Err("a label of the host name is longer than 63 characters".into());
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!("`{c}` is not allowed in a host name"));
        }
    }
    Ok(())
}

/// The canonical form hosts are compared in: lowercase, no trailing dot, IPv6 without
/// brackets.
pub fn normalize_host(host: &str) -> String {
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let host = host.strip_suffix('.').unwrap_or(host);
    host.to_ascii_lowercase()
}

/// Whether a host taken from a request (CONNECT authority or URL) is acceptable at all:
/// a DNS name or an IP address, already normalized.
pub(crate) fn is_valid_request_host(host: &str) -> bool {
    host.parse::<IpAddr>().is_ok() || validate_dns_name(host).is_ok()
}

/// Which hosts a run may reach.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum NetworkPolicy {
    /// Every host (the default).
    #[default]
    Permissive,
    /// Only hosts matching `allow`, plus the hosts of the run's grants.
    Strict { allow: Vec<HostPattern> },
}

impl NetworkPolicy {
    /// Whether `host:port` may be reached; `granted` are the hosts of the run's grants,
    /// which are always allowed. `host` must be normalized (see [`normalize_host`]).
    pub fn allows(&self, host: &str, port: u16, granted: &[HostPattern]) -> bool {
        match self {
            NetworkPolicy::Permissive => true,
            NetworkPolicy::Strict { allow } => allow
                .iter()
                .chain(granted)
                .any(|p| p.matches_normalized(host, port)),
        }
    }
}

/// The body of the response to a request the policy blocked: what happened, to which
/// host, and the line to add to `agent.yaml`.
pub(crate) fn blocked_message(host: &str, port: u16) -> String {
    let shown = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let entry = if port == 80 || port == 443 {
        shown.clone()
    } else {
        format!("{shown}:{port}")
    };
    format!(
        "moat: request blocked by network policy\n\
         \n\
         The host \"{shown}\" (port {port}) is not in this run's allow list \
         (`network.policy: strict`).\n\
         To allow it, add it to `network.allow` in agent.yaml:\n\
         \n\
         network:\n  \
           policy: strict\n  \
           allow:\n    \
             - \"{entry}\"\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> HostPattern {
        HostPattern::parse(s).unwrap()
    }

    #[test]
    fn exact_host_is_case_insensitive_and_ignores_trailing_dot() {
        let pat = p("API.GitHub.com.");
        assert!(pat.matches("api.github.com", 443));
        assert!(pat.matches("Api.Github.Com.", 80));
        assert!(!pat.matches("github.com", 443));
        assert!(!pat.matches("xapi.github.com", 443));
        assert_eq!(pat.to_string(), "api.github.com");
    }

    #[test]
    fn no_port_means_80_and_443_only() {
        let pat = p("example.com");
        assert!(pat.matches("example.com", 80));
        assert!(pat.matches("example.com", 443));
        assert!(!pat.matches("example.com", 8443));
        assert!(!pat.matches("example.com", 22));
    }

    #[test]
    fn explicit_port_matches_only_that_port() {
        let pat = p("example.com:8443");
        assert!(pat.matches("example.com", 8443));
        assert!(!pat.matches("example.com", 443));
        assert_eq!(pat.to_string(), "example.com:8443");
    }

    #[test]
    fn wildcard_matches_deeper_subdomains_but_not_the_domain() {
        let pat = p("*.github.com");
        assert!(pat.matches("api.github.com", 443));
        assert!(pat.matches("a.b.github.com", 443));
        assert!(!pat.matches("github.com", 443));
        assert!(!pat.matches("evilgithub.com", 443));
        assert!(!pat.matches(".github.com", 443));
        assert!(!pat.matches("api.github.com.evil.com", 443));
        assert_eq!(pat.to_string(), "*.github.com");
    }

    #[test]
    fn ip_addresses_are_exact_hosts() {
        assert!(p("10.0.0.1").matches("10.0.0.1", 443));
        let v6 = p("[::1]:8080");
        assert!(v6.matches("[::1]", 8080));
        assert!(v6.matches("::1", 8080));
        assert_eq!(v6.to_string(), "[::1]:8080");
        assert!(p("fe80::1").matches("fe80::1", 80));
    }

    #[test]
    fn malformed_patterns_are_rejected_with_a_reason() {
        let cases = [
            ("", "it is empty"),
            ("exa mple.com", "whitespace"),
            ("https://example.com", "not a URL"),
            ("example.com/path", "not a URL"),
            ("user@example.com", "not a URL"),
            ("*", "permissive policy allows every host"),
            ("*.", "permissive policy"),
            ("*..", "host name is empty"),
            ("*.*.amazonaws.com", "only one leading"),
            ("sts.*.amazonaws.com", "first label"),
            ("foo*.com", "first label"),
            ("example.com:0", "from 1 to 65535"),
            ("example.com:http", "from 1 to 65535"),
            ("example.com:99999", "from 1 to 65535"),
            ("a..b", "empty label"),
            ("exam!ple.com", "`!` is not allowed"),
            ("[example.com]", "not an IPv6"),
            ("[::1", "closing"),
            ("a:b:c", "too many"),
        ];
        for (input, reason) in cases {
            let err = HostPattern::parse(input).unwrap_err();
            let text = err.to_string();
            assert!(
                text.starts_with(&format!("invalid host pattern `{input}`")),
                "{text}"
            );
            assert!(text.contains(reason), "{input}: {text}");
            assert!(err.hint().is_some());
        }
    }

    #[test]
    fn strict_policy_allows_listed_and_granted_hosts_only() {
        let policy = NetworkPolicy::Strict {
            allow: vec![p("*.example.com")],
        };
        let granted = [p("api.github.com")];
        assert!(policy.allows("a.example.com", 443, &granted));
        assert!(policy.allows("api.github.com", 443, &granted));
        assert!(!policy.allows("github.com", 443, &granted));
        assert!(!policy.allows("a.example.com", 8080, &granted));
        assert!(NetworkPolicy::Permissive.allows("anything.test", 1234, &[]));
    }

    #[test]
    fn blocked_message_says_what_and_how() {
        assert_text(
            &blocked_message("api.example.com", 443),
            "moat: request blocked by network policy\n\n\
             The host \"api.example.com\" (port 443) is not in this run's allow list (`network.policy: strict`).\n\
             To allow it, add it to `network.allow` in agent.yaml:\n\n\
             network:\n  policy: strict\n  allow:\n    - \"api.example.com\"\n",
        );
        assert!(blocked_message("db.internal", 5432).contains("- \"db.internal:5432\""));
        assert!(blocked_message("::1", 8080).contains("- \"[::1]:8080\""));
    }

    fn assert_text(actual: &str, expected: &str) {
        assert_eq!(actual, expected, "\n--- actual ---\n{actual}");
    }

    #[test]
    fn normalize_strips_brackets_dot_and_case() {
        assert_eq!(normalize_host("[::1]"), "::1");
        assert_eq!(normalize_host("Example.COM."), "example.com");
        assert!(is_valid_request_host("example.com"));
        assert!(is_valid_request_host("::1"));
        assert!(!is_valid_request_host("exa mple"));
        assert!(!is_valid_request_host(""));
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
