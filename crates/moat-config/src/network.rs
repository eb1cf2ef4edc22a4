//! Network settings: the egress policy here; allow-list host patterns and `connect_to`
//! rules (curl's `--connect-to`) come from `moat-hosts`, which the proxy matches with too.

use std::fmt;

use serde::Serialize;

pub use moat_hosts::{ConnectTo, HostPattern, check_host_name, parse_port};

use crate::values::Invalid;

impl From<moat_hosts::HostsError> for Invalid {
    fn from(error: moat_hosts::HostsError) -> Self {
        let hint = error.hint();
        Invalid {
            message: error.to_string(),
            hint,
        }
    }
}

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
