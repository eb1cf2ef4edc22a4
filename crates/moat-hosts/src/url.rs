//! The scheme, host and port of an `http://` or `https://` URL: all that moat needs of a
//! URL to allow, route or reach its server (no URL crate: only the documented forms).

/// An HTTP(S) URL's server: the host without brackets (`::1`), the port resolved (the
/// scheme's default when none is written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    pub https: bool,
    pub host: String,
    pub port: u16,
}

impl HttpUrl {
    /// `None` for another scheme, an empty host or a port that is not a number.
    /// `user:password@` before the host is skipped.
    pub fn parse(url: &str) -> Option<HttpUrl> {
        let (https, rest) = match url.strip_prefix("https://") {
            Some(rest) => (true, rest),
            None => (false, url.strip_prefix("http://")?),
        };
        let authority = rest.split(['/', '?', '#']).next()?;
        let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => {
                let (host, after) = v6.split_once(']')?;
                (host, after.strip_prefix(':'))
            }
            None => match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            },
        };
        if host.is_empty() {
            return None;
        }
        let port = match port {
            Some(port) => port.parse().ok()?,
            None => Self::default_port(https),
        };
        Some(HttpUrl {
            https,
            host: host.to_owned(),
            port,
        })
    }

    fn default_port(https: bool) -> u16 {
        if https { 443 } else { 80 }
    }

    /// The host as a host pattern writes it (`[::1]` for an IPv6 address), with the port
    /// unless it is the scheme's default.
    pub fn host_and_port(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == Self::default_port(self.https) {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_their_host_port_and_scheme() {
        let t = |https, host: &str, port| {
            Some(HttpUrl {
                https,
                host: host.into(),
                port,
            })
        };
        assert_eq!(
            HttpUrl::parse("https://nodejs.org/dist"),
            t(true, "nodejs.org", 443)
        );
        assert_eq!(
            HttpUrl::parse("http://deb.debian.org/debian"),
            t(false, "deb.debian.org", 80)
        );
        assert_eq!(
            HttpUrl::parse("http://user:pw@127.0.0.1:8080/debian"),
            t(false, "127.0.0.1", 8080)
        );
        assert_eq!(HttpUrl::parse("https://[::1]:8443/x"), t(true, "::1", 8443));
        assert_eq!(HttpUrl::parse("ftp://x"), None);
        assert_eq!(HttpUrl::parse("https://"), None);
        assert_eq!(HttpUrl::parse("https://h:port/"), None);
        assert_eq!(
            HttpUrl::parse("https://[::1]:8443/x")
                .unwrap()
                .host_and_port(),
            "[::1]:8443"
        );
        assert_eq!(
            HttpUrl::parse("https://h:443/x").unwrap().host_and_port(),
            "h"
        );
        assert_eq!(
            HttpUrl::parse("http://h:8080").unwrap().host_and_port(),
            "h:8080"
        );
    }
}
