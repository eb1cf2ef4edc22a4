//! [`NetworkPolicy`]: what a run may reach, one word for the configuration, the run's
//! saved settings and the proxy alike.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a run may reach through its proxy. Private and special-purpose addresses need an
/// allow entry under either policy; the host's own addresses are never reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkPolicy {
    /// Every public host (the default).
    #[default]
    Permissive,
    /// Only hosts matching `network.allow`, plus the granted providers' hosts.
    Strict,
}

impl NetworkPolicy {
    /// The words, as written in configuration files.
    pub const WORDS: &[&str] = &["permissive", "strict"];

    /// The policy a word names; anything else is `None` (nothing falls back to a default).
    pub fn parse(word: &str) -> Option<Self> {
        match word {
            "permissive" => Some(NetworkPolicy::Permissive),
            "strict" => Some(NetworkPolicy::Strict),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NetworkPolicy::Permissive => "permissive",
            NetworkPolicy::Strict => "strict",
        }
    }
}

impl fmt::Display for NetworkPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for NetworkPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NetworkPolicy::parse(s).ok_or_else(|| {
            format!(
                "unknown network policy `{s}`: expected {}",
                Self::WORDS.join(" or ")
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_and_nothing_else_is_a_policy() {
        for word in NetworkPolicy::WORDS {
            let policy: NetworkPolicy = word.parse().unwrap();
            assert_eq!(policy.to_string(), *word);
            let json = serde_json::to_string(&policy).unwrap();
            assert_eq!(
                serde_json::from_str::<NetworkPolicy>(&json).unwrap(),
                policy
            );
        }
        for bad in ["Strict", "open", ""] {
            assert!(bad.parse::<NetworkPolicy>().is_err(), "{bad}");
            assert!(serde_json::from_str::<NetworkPolicy>(&format!("\"{bad}\"")).is_err());
        }
    }
}
