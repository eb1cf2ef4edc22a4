//! [`ConnectTo`]: send the connections for one host and port to another address, with
//! curl's `--connect-to HOST1:PORT1:HOST2:PORT2` meaning.
//!
//! Only the TCP destination changes: the TLS server name, the certificate check and the
//! `Host` header stay those of the original host. Enterprise networks use this for
//! internal mirrors, and tests use it to point `api.github.com:443` at a local server.

use std::fmt;
use std::net::Ipv6Addr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::HostsError;
use crate::name::{check_host_name, normalize_host, parse_port};

/// One rerouting rule. An empty `HOST1` or `PORT1` matches any host or port; an empty
/// `HOST2` or `PORT2` keeps the original one.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ConnectTo {
    from_host: Option<String>,
    from_port: Option<u16>,
    to_host: Option<String>,
    to_port: Option<u16>,
}

impl ConnectTo {
    /// Parse one `HOST1:PORT1:HOST2:PORT2` rule. IPv6 addresses go in brackets
    /// (`example.com:443:[::1]:8443`); hosts are kept lowercase without a trailing dot.
    pub fn parse(text: &str) -> Result<Self, HostsError> {
        let bad = |reason: String| HostsError::ConnectTo {
            rule: text.to_owned(),
            reason,
        };
        let parts = split_outside_brackets(text, ':').map_err(|why| bad(why.into()))?;
        let [from_host, from_port, to_host, to_port] = parts.as_slice() else {
            return Err(bad(format!(
                "expected 4 parts separated by `:`, found {}",
                parts.len()
            )));
        };
        let host = |part: &str| -> Result<Option<String>, HostsError> {
            if part.is_empty() {
                return Ok(None);
            }
            if let Some(inner) = part.strip_prefix('[') {
                let inner = inner.strip_suffix(']').unwrap_or(inner);
                return match inner.parse::<Ipv6Addr>() {
                    Ok(_) => Ok(Some(inner.to_ascii_lowercase())),
                    Err(_) => Err(bad(format!("`{part}` is not a valid IPv6 address"))),
                };
            }
            let normalized = normalize_host(part);
            check_host_name(&normalized).map_err(bad)?;
            Ok(Some(normalized))
        };
        let port = |part: &str| -> Result<Option<u16>, HostsError> {
            if part.is_empty() {
                Ok(None)
            } else {
                parse_port(part).map(Some).map_err(bad)
            }
        };
        Ok(ConnectTo {
            from_host: host(from_host)?,
            from_port: port(from_port)?,
            to_host: host(to_host)?,
            to_port: port(to_port)?,
        })
    }

    /// Parse a comma-separated list of rules, as `MOAT_CONNECT_TO` holds them. Spaces
    /// around rules and empty items are skipped, so an empty string is an empty list.
    pub fn parse_list(text: &str) -> Result<Vec<Self>, HostsError> {
        text.split(',')
            .map(str::trim)
            .filter(|rule| !rule.is_empty())
            .map(Self::parse)
            .collect()
    }

    /// Where connections for `host:port` go if this rule applies to them. `host` may be in
    /// any case, with a trailing dot or brackets.
    pub fn route(&self, host: &str, port: u16) -> Option<(String, u16)> {
        let host = normalize_host(host);
        let host_ok = self.from_host.as_deref().is_none_or(|from| from == host);
        let port_ok = self.from_port.is_none_or(|from| from == port);
        (host_ok && port_ok).then(|| {
            (
                self.to_host.clone().unwrap_or(host),
                self.to_port.unwrap_or(port),
            )
        })
    }
}

/// The destination of `host:port` under a list of rules: the first rule that applies
/// wins, as in curl. `None` means "connect to the host itself".
pub fn reroute(rules: &[ConnectTo], host: &str, port: u16) -> Option<(String, u16)> {
    rules.iter().find_map(|rule| rule.route(host, port))
}

fn split_outside_brackets(text: &str, separator: char) -> Result<Vec<&str>, &'static str> {
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
    if depth > 0 {
        return Err("`[` without a closing `]`");
    }
    parts.push(&text[start..]);
    Ok(parts)
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

impl fmt::Debug for ConnectTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnectTo({self})")
    }
}

impl Serialize for ConnectTo {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Read back with the same parser as user input: a damaged or unknown value is an error,
/// never a looser pattern.
impl<'de> Deserialize<'de> for ConnectTo {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ConnectTo::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reroutes_one_host_and_port_to_another_address() {
        let rule = ConnectTo::parse("api.github.com:443:127.0.0.1:8443").unwrap();
        assert_eq!(
            rule.route("api.github.com", 443),
            Some(("127.0.0.1".into(), 8443))
        );
        assert_eq!(rule.route("api.github.com", 80), None);
        assert_eq!(rule.route("github.com", 443), None);
        assert_eq!(rule.to_string(), "api.github.com:443:127.0.0.1:8443");
        assert_eq!(
            format!("{rule:?}"),
            "ConnectTo(api.github.com:443:127.0.0.1:8443)"
        );
    }

    #[test]
    fn empty_parts_mean_any_or_keep() {
        let any_host = ConnectTo::parse(":443:127.0.0.1:").unwrap();
        assert_eq!(
            any_host.route("x.test", 443),
            Some(("127.0.0.1".into(), 443))
        );
        assert_eq!(any_host.route("x.test", 80), None);
        let port_only = ConnectTo::parse("x.test:::9000").unwrap();
        assert_eq!(
            port_only.route("X.Test", 443),
            Some(("x.test".into(), 9000))
        );
        let any = ConnectTo::parse("::[::1]:").unwrap();
        assert_eq!(any.to_string(), "::[::1]:");
        assert_eq!(any.route("x.com", 443), Some(("::1".into(), 443)));
    }

    #[test]
    fn hosts_are_normalized_and_ipv6_goes_in_brackets() {
        let rule = ConnectTo::parse("API.Example.com.:443:[::1]:8443").unwrap();
        assert_eq!(
            rule.route("api.example.com", 443),
            Some(("::1".into(), 8443))
        );
        assert_eq!(rule.to_string(), "api.example.com:443:[::1]:8443");
        assert_eq!(ConnectTo::parse(&rule.to_string()).unwrap(), rule);
    }

    #[test]
    fn list_is_comma_separated_and_first_match_wins() {
        let rules = ConnectTo::parse_list(
            "api.github.com:443:127.0.0.1:9000, :443:127.0.0.1:9001,example.com::10.0.0.1:,",
        )
        .unwrap();
        assert_eq!(rules.len(), 3);
        assert_eq!(
            reroute(&rules, "API.github.com", 443),
            Some(("127.0.0.1".into(), 9000))
        );
        assert_eq!(
            reroute(&rules, "other.com", 443),
            Some(("127.0.0.1".into(), 9001))
        );
        assert_eq!(
            reroute(&rules, "example.com", 80),
            Some(("10.0.0.1".into(), 80))
        );
        assert_eq!(reroute(&rules, "other.com", 80), None);
        assert!(ConnectTo::parse_list("").unwrap().is_empty());
        assert!(ConnectTo::parse_list(" , ").unwrap().is_empty());
    }

    #[test]
    fn bad_rules_say_why() {
        let message = |text: &str| ConnectTo::parse_list(text).unwrap_err().to_string();
        insta::assert_snapshot!(message("a.com:443:b.com"), @"invalid connect-to rule `a.com:443:b.com`: expected 4 parts separated by `:`, found 3");
        insta::assert_snapshot!(message("a.com:443:b.com:99999"), @"invalid connect-to rule `a.com:443:b.com:99999`: `99999` is not a port (1 to 65535)");
        insta::assert_snapshot!(message("a.com:443:b.com:1,oops"), @"invalid connect-to rule `oops`: expected 4 parts separated by `:`, found 1");
        insta::assert_snapshot!(message("[zz]:443::1"), @"invalid connect-to rule `[zz]:443::1`: `[zz]` is not a valid IPv6 address");
    }

    #[test]
    fn malformed_rules_are_rejected_with_a_reason() {
        let cases = [
            ("a.test:443:127.0.0.1", "expected 4 parts"),
            ("a.test:443:127.0.0.1:1:2", "found 5"),
            ("a.test:https:127.0.0.1:1", "`https` is not a port"),
            ("a.test:443:127.0.0.1:0", "`0` is not a port"),
            ("a.test:443:[::1:1", "closing"),
            ("a test:443:b:1", "contains ` `"),
            ("a.test:443:bad!host:1", "`bad!host` contains `!`"),
        ];
        for (rule, reason) in cases {
            let err = ConnectTo::parse(rule).unwrap_err();
            let text = err.to_string();
            assert!(
                text.starts_with(&format!("invalid connect-to rule `{rule}`")),
                "{text}"
            );
            assert!(text.contains(reason), "{rule}: {text}");
            assert!(err.hint().unwrap().contains("HOST1:PORT1:HOST2:PORT2"));
        }
    }
}
