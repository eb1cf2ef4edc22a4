//! Host patterns and `connect_to` rules, parsed and matched one way for every crate: the
//! configuration checks what the user wrote with them, and the proxy enforces with them.
//!
//! * [`HostPattern`]: an exact host, `*.domain` or an address range ([`IpRange`],
//!   `10.0.0.0/8`), with an optional port (`network.allow`, `network.passthrough`, the
//!   hosts of a grant).
//! * [`ConnectTo`]: curl's `--connect-to HOST1:PORT1:HOST2:PORT2` (`MOAT_CONNECT_TO`).
//! * [`HttpUrl`]: the scheme, host and port of an `http(s)://` URL.
//!
//! Matching is hand-rolled on purpose: an allow list is security-relevant, so only the
//! documented forms exist.

mod connect_to;
mod name;
mod pattern;
mod policy;
mod range;
mod url;

pub use connect_to::{ConnectTo, reroute};
pub use name::{check_host_name, is_valid_host, normalize_host, parse_port};
pub use pattern::HostPattern;
pub use policy::NetworkPolicy;
pub use range::IpRange;
pub use url::HttpUrl;

/// A host pattern or `connect_to` rule that cannot be used: what was written, why, and
/// (where there is an obvious one) what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostsError {
    #[error("invalid host pattern `{pattern}`: {reason}")]
    Pattern {
        pattern: String,
        reason: String,
        hint: Option<String>,
    },

    #[error("invalid connect-to rule `{rule}`: {reason}")]
    ConnectTo { rule: String, reason: String },
}

impl HostsError {
    /// A suggestion for the user, when there is an obvious one.
    pub fn hint(&self) -> Option<String> {
        match self {
            HostsError::Pattern { hint, .. } => hint.clone(),
            HostsError::ConnectTo { .. } => Some(
                "write `HOST1:PORT1:HOST2:PORT2`, for example `api.example.com:443:127.0.0.1:8443`"
                    .into(),
            ),
        }
    }
}
