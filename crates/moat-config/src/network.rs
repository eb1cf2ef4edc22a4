//! Network settings: the policy, allow-list host patterns and `connect_to` rules (curl's
//! `--connect-to`) all come from `moat-hosts`, which the proxy enforces with too.

pub use moat_hosts::{ConnectTo, HostPattern, NetworkPolicy, check_host_name, parse_port};

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
