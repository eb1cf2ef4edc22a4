//! Network settings: the egress policy, allow-list host patterns, and `connect_to` rules
//! (curl's `--connect-to`), each parsed once here and matched the same way everywhere.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Serialize, Serializer};

use crate::values::Invalid;

/// What a run may reach. The credential proxy enforces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkPolicy {
    /// Every host is allowed (the default).
    #[default]
    Permissive,
    /// Only hosts matching `network.allow` and the granted providers' hosts.
    Strict,
}

impl NetworkPolicy {
    pub const WORDS: &[&str] = &["permissive", "strict"];

    pub(crate) fn parse(word: &str) -> Option<Self> {
        match word {
            "permissive" => Some(NetworkPolicy::Permissive),
            "strict" => Some(NetworkPolicy::Strict),
            _ => None,
        }
    }
}

impl fmt::Display for NetworkPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NetworkPolicy::Permissive => "permissive",
            NetworkPolicy::Strict => "strict",
        })
    }
}

/// One `network.allow` entry: an exact host or `*.` + a domain, with an optional port.
///
/// * `example.com` matches that host only (case-insensitive).
/// * `*.example.com` matches any subdomain at any depth, but not `example.com` itself.
/// * `host:8443` matches that port only; without a port, only 80 and 443 match.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPattern {
    /// Lowercase host or domain, without the `*.` and without brackets for IPv6.
    host: String,
    subdomains: bool,
    port: Option<u16>,
}

impl HostPattern {
    /// Parse a pattern as written in `network.allow` or `--allow-host`.
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        let bad = |why: &str| Invalid::new(format!("invalid host pattern `{text}`: {why}"));
        if text.is_empty() {
            return Err(bad("it is empty"));
        }
        if text.contains("://") {
            let host = text
                .split_once("://")
                .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(rest))
                .unwrap_or(text);
            return Err(bad("it is a URL, not a host")
                .with_hint(format!("write only the host, for example `{host}`")));
        }
        if text.contains('/') {
            return Err(bad("a host pattern has no path")
                .with_hint("write only the host; requests to every path of it are allowed"));
        }
        if text.chars().any(char::is_whitespace) {
            return Err(bad("it contains a space"));
        }
        let (host, port) = split_host_port(text).map_err(|why| bad(&why))?;
        let port = match port {
            Some(port) => Some(parse_port(port).map_err(|why| bad(&why))?),
            None => None,
        };
        if host == "*" {
            return Err(bad("`*` alone would allow every host")
                .with_hint("use `policy: permissive` to allow every host"));
        }
        let (subdomains, domain) = match host.strip_prefix("*.") {
            Some(domain) => (true, domain),
            None => (false, host),
        };
        if domain.contains('*') {
            return Err(bad("only a leading `*.` is allowed as a wildcard").with_hint(
                "`*.example.com` already matches subdomains at every depth, such as `a.b.example.com`",
            ));
        }
        let domain = domain.to_ascii_lowercase();
        if let Some(inner) = domain.strip_prefix('[') {
            let inner = inner.strip_suffix(']').unwrap_or(inner);
            if subdomains || inner.parse::<Ipv6Addr>().is_err() {
                return Err(bad("not a valid IPv6 address"));
            }
            return Ok(HostPattern {
                host: inner.to_owned(),
                subdomains: false,
                port,
            });
        }
        check_host_name(&domain).map_err(|why| bad(&why))?;
        if subdomains && domain.parse::<Ipv4Addr>().is_ok() {
            return Err(bad("an IP address has no subdomains"));
        }
        Ok(HostPattern {
            host: domain,
            subdomains,
            port,
        })
    }

    /// Whether a request to `host:port` is allowed by this pattern.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        let port_ok = match self.port {
            Some(wanted) => port == wanted,
            None => port == 80 || port == 443,
        };
        if !port_ok {
            return false;
        }
        let host = host.trim_end_matches('.');
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if self.subdomains {
            host.len() > self.host.len() + 1
                && host
                    .get(host.len() - self.host.len() - 1..)
                    .is_some_and(|tail| {
                        tail.starts_with('.') && tail[1..].eq_ignore_ascii_case(&self.host)
                    })
        } else {
            host.eq_ignore_ascii_case(&self.host)
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

impl Serialize for HostPattern {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// One `connect_to` rule with curl's `--connect-to` meaning: connections for
/// `from_host:from_port` go to `to_host:to_port` instead, while TLS and the `Host` header
/// still name the original host. An empty part means "any" on the left and "unchanged" on
/// the right (`HOST1:PORT1:HOST2:PORT2`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConnectTo {
    pub from_host: Option<String>,
    pub from_port: Option<u16>,
    pub to_host: Option<String>,
    pub to_port: Option<u16>,
}

impl ConnectTo {
    /// Parse one rule, `HOST1:PORT1:HOST2:PORT2` (IPv6 addresses in brackets).
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        let bad = |why: &str| {
            Invalid::new(format!("invalid connect-to rule `{text}`: {why}")).with_hint(
                "write `HOST1:PORT1:HOST2:PORT2`, for example `api.example.com:443:127.0.0.1:8443`",
            )
        };
        let parts = split_outside_brackets(text, ':');
        let [from_host, from_port, to_host, to_port] = parts.as_slice() else {
            return Err(bad(&format!(
                "expected 4 parts separated by `:`, found {}",
                parts.len()
            )));
        };
        let host = |part: &str| -> Result<Option<String>, Invalid> {
            if part.is_empty() {
                return Ok(None);
            }
            if let Some(inner) = part.strip_prefix('[') {
                let inner = inner.strip_suffix(']').unwrap_or(inner);
                return match inner.parse::<Ipv6Addr>() {
                    Ok(_) => Ok(Some(inner.to_ascii_lowercase())),
                    Err(_) => Err(bad(&format!("`{part}` is not a valid IPv6 address"))),
                };
            }
            let lower = part.to_ascii_lowercase();
            check_host_name(&lower).map_err(|why| bad(&why))?;
            Ok(Some(lower))
        };
        let port = |part: &str| -> Result<Option<u16>, Invalid> {
            if part.is_empty() {
                Ok(None)
            } else {
                parse_port(part).map(Some).map_err(|why| bad(&why))
            }
        };
        Ok(ConnectTo {
            from_host: host(from_host)?,
            from_port: port(from_port)?,
            to_host: host(to_host)?,
            to_port: port(to_port)?,
        })
    }

    /// Parse a comma-separated list of rules, as `MOAT_CONNECT_TO` holds them.
    pub fn parse_list(text: &str) -> Result<Vec<Self>, Invalid> {
        text.split(',')
            .map(|rule| Self::parse(rule.trim()))
            .collect()
    }

    /// Where a connection for `host:port` goes under this rule, if the rule applies.
    pub fn redirect(&self, host: &str, port: u16) -> Option<(String, u16)> {
        let host_ok = self
            .from_host
            .as_deref()
            .is_none_or(|from| from.eq_ignore_ascii_case(host));
        let port_ok = self.from_port.is_none_or(|from| from == port);
        (host_ok && port_ok).then(|| {
            (
                self.to_host.clone().unwrap_or_else(|| host.to_owned()),
                self.to_port.unwrap_or(port),
            )
        })
    }

    /// The address to connect to for `host:port`: the first rule that applies, as curl
    /// does, or the address itself.
    pub fn resolve(rules: &[ConnectTo], host: &str, port: u16) -> (String, u16) {
        rules
            .iter()
            .find_map(|rule| rule.redirect(host, port))
            .unwrap_or_else(|| (host.to_owned(), port))
    }
}

impl fmt::Display for ConnectTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = |h: &Option<String>| match h {
            Some(h) if h.contains(':') => format!("[{h}]"),
            Some(h) => h.clone(),
            None => String::new(),
        };
        let port = |p: Option<u16>| p.map(|p| p.to_string()).unwrap_or_default();
        write!(
            f,
            "{}:{}:{}:{}",
            host(&self.from_host),
            port(self.from_port),
            host(&self.to_host),
            port(self.to_port)
        )
    }
}

impl Serialize for ConnectTo {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
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

pub(crate) fn parse_port(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(port) if port > 0 && text.bytes().all(|b| b.is_ascii_digit()) => Ok(port),
        _ => Err(format!("`{text}` is not a port (1 to 65535)")),
    }
}

/// A DNS name or an IPv4 address: dot-separated labels of letters, digits, `-` and `_`.
pub(crate) fn check_host_name(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    if host.len() > 253 {
        return Err("the host is longer than 253 characters".into());
    }
    for label in host.split('.') {
        if label.is_empty() {
            return Err(format!("`{host}` has an empty part between dots"));
        }
        if label.len() > 63 {
            return Err(format!("a part of `{host}` is longer than 63 characters"));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!("`{host}` contains `{}`", c.escape_debug()));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("a part of `{host}` starts or ends with `-`"));
        }
    }
    Ok(())
}

fn split_outside_brackets(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            c if c == separator && depth == 0 => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> HostPattern {
        HostPattern::parse(text).unwrap()
    }

    fn pattern_error(text: &str) -> String {
        let invalid = HostPattern::parse(text).unwrap_err();
        match invalid.hint {
            Some(hint) => format!("{} (hint: {hint})", invalid.message),
            None => invalid.message,
        }
    }

    #[test]
    fn exact_host_matches_itself_on_web_ports_only() {
        let p = pattern("API.GitHub.com");
        assert_eq!(p.to_string(), "api.github.com");
        assert!(p.matches("api.github.com", 443));
        assert!(p.matches("API.GITHUB.COM", 80));
        assert!(p.matches("api.github.com.", 443));
        assert!(!p.matches("api.github.com", 8443));
        assert!(!p.matches("github.com", 443));
        assert!(!p.matches("x.api.github.com", 443));
    }

    #[test]
    fn wildcard_matches_subdomains_at_any_depth_but_not_the_domain() {
        let p = pattern("*.example.com");
        assert!(p.matches("a.example.com", 443));
        assert!(p.matches("a.b.example.com", 443));
        assert!(!p.matches("example.com", 443));
        assert!(!p.matches("badexample.com", 443));
        assert!(!p.matches("example.com.evil", 443));
    }

    #[test]
    fn explicit_port_matches_only_that_port() {
        let p = pattern("*.corp.internal:8443");
        assert_eq!(p.to_string(), "*.corp.internal:8443");
        assert!(p.matches("git.corp.internal", 8443));
        assert!(!p.matches("git.corp.internal", 443));
        let v6 = pattern("[::1]:8080");
        assert_eq!(v6.to_string(), "[::1]:8080");
        assert!(v6.matches("[::1]", 8080));
        assert!(v6.matches("::1", 8080));
        assert!(pattern("10.0.0.1").matches("10.0.0.1", 80));
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
    fn connect_to_parses_curl_syntax() {
        let rule = ConnectTo::parse("api.anthropic.com:443:127.0.0.1:8443").unwrap();
        assert_eq!(
            rule,
            ConnectTo {
                from_host: Some("api.anthropic.com".into()),
                from_port: Some(443),
                to_host: Some("127.0.0.1".into()),
                to_port: Some(8443),
            }
        );
        assert_eq!(rule.to_string(), "api.anthropic.com:443:127.0.0.1:8443");
        let any = ConnectTo::parse("::[::1]:").unwrap();
        assert_eq!(any.to_string(), "::[::1]:");
        assert_eq!(any.redirect("x.com", 443), Some(("::1".into(), 443)));
    }

    #[test]
    fn connect_to_first_matching_rule_wins() {
        let rules = ConnectTo::parse_list(
            "api.github.com:443:127.0.0.1:9000, :443:127.0.0.1:9001,example.com::10.0.0.1:",
        )
        .unwrap();
        assert_eq!(
            ConnectTo::resolve(&rules, "API.github.com", 443),
            ("127.0.0.1".into(), 9000)
        );
        assert_eq!(
            ConnectTo::resolve(&rules, "other.com", 443),
            ("127.0.0.1".into(), 9001)
        );
        assert_eq!(
            ConnectTo::resolve(&rules, "example.com", 80),
            ("10.0.0.1".into(), 80)
        );
        assert_eq!(
            ConnectTo::resolve(&rules, "other.com", 80),
            ("other.com".into(), 80)
        );
    }

    #[test]
    fn bad_connect_to_rules_say_why() {
        let message = |text: &str| ConnectTo::parse_list(text).unwrap_err().message;
        insta::assert_snapshot!(message("a.com:443:b.com"), @"invalid connect-to rule `a.com:443:b.com`: expected 4 parts separated by `:`, found 3");
        insta::assert_snapshot!(message("a.com:443:b.com:99999"), @"invalid connect-to rule `a.com:443:b.com:99999`: `99999` is not a port (1 to 65535)");
        insta::assert_snapshot!(message("a.com:443:b.com:1,"), @"invalid connect-to rule ``: expected 4 parts separated by `:`, found 1");
        insta::assert_snapshot!(message("[zz]:443::1"), @"invalid connect-to rule `[zz]:443::1`: `[zz]` is not a valid IPv6 address");
    }
}
