//! The network policy: which hosts a run may reach through the proxy, and what a blocked
//! request is told. Host patterns themselves live in `moat-hosts`.

use moat_hosts::{HostPattern, NetworkPolicy};

/// A run's policy and its allow list, as the proxy checks requests against them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Policy {
    pub policy: NetworkPolicy,
    pub allow: Vec<HostPattern>,
}

impl Policy {
    /// Whether `host:port` may be asked for; `granted` are the hosts of the run's grants,
    /// which are always allowed. `host` must be normalized (see
    /// [`moat_hosts::normalize_host`]). Which addresses it may then be connected at is
    /// the destination check's business.
    pub fn allows(&self, host: &str, port: u16, granted: &[HostPattern]) -> bool {
        match self.policy {
            NetworkPolicy::Permissive => true,
            NetworkPolicy::Strict => self
                .allow
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
    fn strict_policy_allows_listed_and_granted_hosts_only() {
        let policy = Policy {
            policy: NetworkPolicy::Strict,
            allow: vec![p("*.example.com")],
        };
        let granted = [p("api.github.com")];
        assert!(policy.allows("a.example.com", 443, &granted));
        assert!(policy.allows("api.github.com", 443, &granted));
        assert!(!policy.allows("github.com", 443, &granted));
        assert!(!policy.allows("a.example.com", 8080, &granted));
        assert!(Policy::default().allows("anything.test", 1234, &[]));
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
}
