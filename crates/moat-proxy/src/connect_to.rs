//! `connect_to`: send the connections for one host and port to another address, with
//! curl's `--connect-to HOST1:PORT1:HOST2:PORT2` meaning.
//!
//! Only the TCP destination changes: the TLS server name, the certificate check and the
//! `Host` header stay those of the original host. Enterprise networks use this for
//! internal mirrors, and tests use it to point `api.github.com:443` at a local server.

use std::fmt;

use crate::error::ConfigError;
use crate::policy::normalize_host;

/// One rerouting entry. An empty `HOST1` or `PORT1` matches any host or port; an empty
/// `HOST2` or `PORT2` keeps the original one.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectTo {
    from_host: Option<String>,
    from_port: Option<u16>,
    to_host: Option<String>,
    to_port: Option<u16>,
}

impl ConnectTo {
    /// Parse one `HOST1:PORT1:HOST2:PORT2` entry. IPv6 addresses go in brackets
    /// (`example.com:443:[::1]:8443`).
    pub fn parse(entry: &str) -> Result<Self, ConfigError> {
        let fail = |reason: String| ConfigError::ConnectTo {
            entry: entry.to_owned(),
            reason,
        };
        let fields = split_fields(entry).map_err(fail)?;
        let [host1, port1, host2, port2] = fields.as_slice() else {
            return Err(fail(format!(
                "expected 4 fields `HOST1:PORT1:HOST2:PORT2`, found {}",
                fields.len()
            )));
        };
        let host = |h: &str| -> Result<Option<String>, ConfigError> {
            if h.is_empty() {
                return Ok(None);
            }
            let normalized = normalize_host(h);
            if !crate::policy::is_valid_request_host(&normalized) {
                return Err(fail(format!("`{h}` is not a host name or IP address")));
            }
            Ok(Some(normalized))
        };
        let port = |p: &str| -> Result<Option<u16>, ConfigError> {
            if p.is_empty() {
                return Ok(None);
            }
            match p.parse::<u16>() {
                Ok(port) if port > 0 => Ok(Some(port)),
                _ => Err(fail(format!("port `{p}` is not a number from 1 to 65535"))),
            }
        };
        Ok(ConnectTo {
            from_host: host(host1)?,
            from_port: port(port1)?,
            to_host: host(host2)?,
            to_port: port(port2)?,
        })
    }

    /// Parse a comma-separated list of entries (the `MOAT_CONNECT_TO` form). Empty items
    /// are skipped, so an empty string is an empty list.
    pub fn parse_list(list: &str) -> Result<Vec<Self>, ConfigError> {
        list.split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(ConnectTo::parse)
            .collect()
    }

    /// Where connections for `host:port` go if this entry applies to them. `host` must
    /// be normalized (lowercase, no brackets, no trailing dot).
    pub fn route(&self, host: &str, port: u16) -> Option<(String, u16)> {
        let host_ok = self.from_host.as_deref().is_none_or(|h| h == host);
        let port_ok = self.from_port.is_none_or(|p| p == port);
        (host_ok && port_ok).then(|| {
            (
                self.to_host.clone().unwrap_or_else(|| host.to_owned()),
                self.to_port.unwrap_or(port),
            )
        })
    }
}

/// The destination of `host:port` under a list of entries: the first entry that applies
/// wins, as in curl. `None` means "connect to the host itself".
pub(crate) fn reroute(entries: &[ConnectTo], host: &str, port: u16) -> Option<(String, u16)> {
    entries.iter().find_map(|e| e.route(host, port))
}

fn split_fields(entry: &str) -> Result<Vec<&str>, String> {
    let mut fields = Vec::new();
    let mut start = 0;
    let mut in_brackets = false;
    for (i, c) in entry.char_indices() {
        match c {
            '[' if !in_brackets => in_brackets = true,
            ']' if in_brackets => in_brackets = false,
            ':' if !in_brackets => {
                fields.push(&entry[start..i]);
                start = i + 1;
            }
            c if c.is_whitespace() => return Err("it contains whitespace".into()),
            _ => {}
        }
    }
    if in_brackets {
        return Err("`[` without a closing `]`".into());
    }
    fields.push(&entry[start..]);
    Ok(fields)
}

impl fmt::Display for ConnectTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = |h: &Option<String>| match h {
            Some(h) if h.contains(':') => format!("[{h}]"),
            Some(h) => h.clone(),
            None => String::new(),
        };
        let port = |p: &Option<u16>| p.map(|p| p.to_string()).unwrap_or_default();
        write!(
            f,
            "{}:{}:{}:{}",
            host(&self.from_host),
            port(&self.from_port),
            host(&self.to_host),
            port(&self.to_port)
        )
    }
}

impl fmt::Debug for ConnectTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnectTo({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reroutes_one_host_and_port_to_another_address() {
        let entry = ConnectTo::parse("api.github.com:443:127.0.0.1:8443").unwrap();
        assert_eq!(
            entry.route("api.github.com", 443),
            Some(("127.0.0.1".into(), 8443))
        );
        assert_eq!(entry.route("api.github.com", 80), None);
        assert_eq!(entry.route("github.com", 443), None);
        assert_eq!(entry.to_string(), "api.github.com:443:127.0.0.1:8443");
    }

    #[test]
    fn empty_fields_mean_any_or_keep() {
        let any_host = ConnectTo::parse(":443:127.0.0.1:").unwrap();
        assert_eq!(
            any_host.route("x.test", 443),
            Some(("127.0.0.1".into(), 443))
        );
        assert_eq!(any_host.route("x.test", 80), None);
        let port_only = ConnectTo::parse("x.test:::9000").unwrap();
        assert_eq!(
            port_only.route("x.test", 443),
            Some(("x.test".into(), 9000))
        );
    }

    #[test]
    fn hosts_are_normalized_and_ipv6_goes_in_brackets() {
        let entry = ConnectTo::parse("API.Example.com.:443:[::1]:8443").unwrap();
        assert_eq!(
            entry.route("api.example.com", 443),
            Some(("::1".into(), 8443))
        );
        assert_eq!(entry.to_string(), "api.example.com:443:[::1]:8443");
    }

    #[test]
    fn list_is_comma_separated_and_first_match_wins() {
        let list =
            ConnectTo::parse_list("a.test:443:127.0.0.1:1001, :443:127.0.0.1:1002,").unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(
            reroute(&list, "a.test", 443),
            Some(("127.0.0.1".into(), 1001))
        );
        assert_eq!(
            reroute(&list, "b.test", 443),
            Some(("127.0.0.1".into(), 1002))
        );
        assert_eq!(reroute(&list, "b.test", 80), None);
        assert!(ConnectTo::parse_list("").unwrap().is_empty());
    }

    #[test]
    fn malformed_entries_are_rejected_with_a_reason() {
        let cases = [
            ("a.test:443:127.0.0.1", "expected 4 fields"),
            ("a.test:443:127.0.0.1:1:2", "found 5"),
            ("a.test:https:127.0.0.1:1", "port `https`"),
            ("a.test:443:127.0.0.1:0", "port `0`"),
            ("a.test:443:[::1:1", "closing"),
            ("a test:443:b:1", "whitespace"),
            ("a.test:443:bad!host:1", "`bad!host` is not a host name"),
        ];
        for (entry, reason) in cases {
            let err = ConnectTo::parse(entry).unwrap_err();
            let text = err.to_string();
            assert!(
                text.starts_with(&format!("invalid connect-to entry `{entry}`")),
                "{text}"
            );
            assert!(text.contains(reason), "{entry}: {text}");
            assert!(err.hint().unwrap().contains("HOST1:PORT1:HOST2:PORT2"));
        }
        let err = ConnectTo::parse_list("a.test:443:127.0.0.1:1,oops").unwrap_err();
        assert!(err.to_string().contains("`oops`"));
    }
}
