//! Host names and ports: the canonical form hosts are compared in, and the checks both
//! patterns and rules apply to their parts.

use std::net::IpAddr;

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

/// Whether a host taken from a request (a CONNECT authority or a URL), already
/// normalized, is acceptable at all: an IP address or a DNS name. Lenient about labels
/// that start or end with `-`, which exist in the wild.
pub fn is_valid_host(host: &str) -> bool {
    host.parse::<IpAddr>().is_ok() || check_labels(host, false).is_ok()
}

/// A DNS name or an IPv4 address as a user writes one: dot-separated labels of letters,
/// digits, `-` and `_`, no label starting or ending with `-`. The error is the reason,
/// to follow a subject (``invalid host pattern `x`: ``).
pub fn check_host_name(host: &str) -> Result<(), String> {
    check_labels(host, true)
}

fn check_labels(host: &str, strict_hyphens: bool) -> Result<(), String> {
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
        if strict_hyphens && (label.starts_with('-') || label.ends_with('-')) {
            return Err(format!("a part of `{host}` starts or ends with `-`"));
        }
    }
    Ok(())
}

/// A TCP port, 1 to 65535, in plain digits. The error is the reason.
pub fn parse_port(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(port) if port > 0 && text.bytes().all(|b| b.is_ascii_digit()) => Ok(port),
        _ => Err(format!("`{text}` is not a port (1 to 65535)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_strips_brackets_dot_and_case() {
        assert_eq!(normalize_host("[::1]"), "::1");
        assert_eq!(normalize_host("Example.COM."), "example.com");
    }

    #[test]
    fn request_hosts_are_names_or_addresses() {
        assert!(is_valid_host("example.com"));
        assert!(is_valid_host("::1"));
        assert!(is_valid_host("10.0.0.1"));
        assert!(is_valid_host("-odd-.example.com"));
        assert!(!is_valid_host("exa mple"));
        assert!(!is_valid_host(""));
        assert!(!is_valid_host("a..b"));
    }

    #[test]
    fn ports_are_plain_digits_from_one() {
        assert_eq!(parse_port("8443"), Ok(8443));
        for bad in ["0", "+1", "65536", "http", ""] {
            assert!(parse_port(bad).is_err(), "{bad}");
        }
    }
}
