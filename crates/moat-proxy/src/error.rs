//! What can go wrong when configuring or starting the proxy, with the hint a user needs.
//!
//! Messages never contain a secret: header values given to rules are not quoted back.

use std::net::SocketAddr;
use std::path::PathBuf;

/// A value given to the proxy's configuration (host pattern, `connect_to` entry,
/// header rule, extra CA certificates) that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A host pattern or `connect_to` rule.
    #[error(transparent)]
    Hosts(#[from] moat_hosts::HostsError),

    #[error("invalid header name `{name}` in the rules of grant `{grant}`")]
    HeaderName { grant: String, name: String },

    // The value may be a credential: only its header is named.
    #[error(
        "the value for header `{name}` in the rules of grant `{grant}` is not a valid header value"
    )]
    HeaderValue { grant: String, name: String },

    #[error("grant `{grant}` has a placeholder that is empty or equal to its real value")]
    Placeholder { grant: String },

    #[error("the extra CA certificates are not valid PEM: {reason}")]
    ExtraRoots { reason: String },
}

impl ConfigError {
    /// A suggestion for the user, when there is an obvious one.
    pub fn hint(&self) -> Option<String> {
        match self {
            ConfigError::Hosts(e) => e.hint(),
            ConfigError::HeaderValue { .. } => {
                Some("header values must not contain line breaks or control characters".into())
            }
            ConfigError::ExtraRoots { .. } => Some(
                "give one or more `-----BEGIN CERTIFICATE-----` blocks (for example via \
                 `MOAT_EXTRA_CA_CERTS`)"
                    .into(),
            ),
            ConfigError::HeaderName { .. } | ConfigError::Placeholder { .. } => None,
        }
    }
}

/// The proxy's certificate authority could not be created or loaded.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("`{path}`: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("the CA private key `{path}` is readable by other users (mode {mode:o})")]
    KeyPermissions { path: PathBuf, mode: u32 },

    #[error("the CA in `{dir}` is damaged: {reason}")]
    Damaged { dir: PathBuf, reason: String },

    #[error("cannot issue a certificate for `{host}`: {reason}")]
    Leaf { host: String, reason: String },

    #[error("cannot generate the CA: {0}")]
    Generate(String),
}

impl CaError {
    /// A suggestion for the user, when there is an obvious one.
    pub fn hint(&self) -> Option<String> {
        match self {
            CaError::KeyPermissions { path, .. } => {
                Some(format!("run `chmod 600 {}`", path.display()))
            }
            CaError::Damaged { dir, .. } => Some(format!(
                "remove `{}` to make a new CA (containers of running runs keep trusting the old one)",
                dir.display()
            )),
            _ => None,
        }
    }
}

impl From<moat_hosts::HostsError> for ProxyError {
    fn from(error: moat_hosts::HostsError) -> Self {
        ProxyError::Config(error.into())
    }
}

/// The proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("cannot listen on `{addr}`: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },

    #[error("cannot listen on the unix socket `{path}`: {source}")]
    BindUnix {
        path: std::path::PathBuf,
        source: std::io::Error,
    },

    #[error(transparent)]
    Config(#[from] ConfigError),

    #[error(transparent)]
    Ca(#[from] CaError),

    #[error("no trusted root certificates for upstream connections{detail}")]
    NoUpstreamRoots { detail: String },

    #[error("cannot set up TLS: {0}")]
    Tls(#[from] rustls::Error),
}

impl ProxyError {
    /// A suggestion for the user, when there is an obvious one.
    pub fn hint(&self) -> Option<String> {
        match self {
            ProxyError::Bind { source, .. }
                if source.kind() == std::io::ErrorKind::AddrNotAvailable =>
            {
                Some(
                    "the address must belong to this host (for example the Docker network gateway)"
                        .into(),
                )
            }
            ProxyError::Bind { source, .. } if source.kind() == std::io::ErrorKind::AddrInUse => {
                Some("another process uses that port; use port 0 to pick a free one".into())
            }
            ProxyError::Config(e) => e.hint(),
            ProxyError::Ca(e) => e.hint(),
            ProxyError::NoUpstreamRoots { .. } => Some(
                "install the system CA bundle (`ca-certificates`) or give CA certificates in \
                 `MOAT_EXTRA_CA_CERTS`"
                    .into(),
            ),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_value_error_does_not_quote_the_value() {
        let e = ConfigError::HeaderValue {
            grant: "github".into(),
            name: "authorization".into(),
        };
        assert_eq!(
            e.to_string(),
            "the value for header `authorization` in the rules of grant `github` is not a valid header value"
        );
        assert!(e.hint().unwrap().contains("line breaks"));
    }

    #[test]
    fn key_permission_hint_names_the_fix() {
        let e = CaError::KeyPermissions {
            path: "/x/ca.key".into(),
            mode: 0o644,
        };
        assert_eq!(
            e.to_string(),
            "the CA private key `/x/ca.key` is readable by other users (mode 644)"
        );
        assert_eq!(e.hint().unwrap(), "run `chmod 600 /x/ca.key`");
    }

    #[test]
    fn bind_in_use_suggests_port_zero() {
        let e = ProxyError::Bind {
            addr: "127.0.0.1:1".parse().unwrap(),
            source: std::io::Error::from(std::io::ErrorKind::AddrInUse),
        };
        assert!(e.to_string().starts_with("cannot listen on `127.0.0.1:1`"));
        assert!(e.hint().unwrap().contains("port 0"));
    }
}
