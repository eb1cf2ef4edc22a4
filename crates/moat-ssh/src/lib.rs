//! moat's SSH agent for runs, and what it needs to know SSH: the agent protocol (both
//! sides), public keys, their fingerprints and signature checks, `known_hosts`, the data
//! a login signs, and the key exchange a tunnel carries.
//!
//! A run with `ssh:HOST` grants gets an agent of its own, served by its supervisor on a
//! unix socket mounted into the container. It lists only the granted keys and asks the
//! user's agent for a signature only when the request is a login to a granted host, as
//! proven by OpenSSH's `session-bind@openssh.com` (the server's signature over the session
//! ID with a host key pinned at `moat grant ssh`) and by the run's proxy having carried
//! that very key exchange on a tunnel to that host ([`Witness`]). The private keys stay in
//! the user's agent.
//!
//! A library: it takes values and emits events ([`SshEvent`]); it never prints, reads
//! the environment or talks to Docker.

mod agent;
mod client;
mod error;
mod event;
mod key;
mod known_hosts;
mod protocol;
mod server;
mod userauth;
mod wire;
mod witness;

pub use agent::{AgentPolicy, Connection, Decision, SshGrantRule, filter_identities};
pub use client::{AgentClientError, call, list_identities, list_identities_blocking};
pub use error::SshError;
pub use event::{SshAction, SshEvent, SshEventSink};
pub use key::{PublicKey, VerifyError, fingerprint_of};
pub use known_hosts::{
    BUILTIN_HOST_KEYS, builtin_host_keys, host_keys, known_hosts_lines, known_hosts_name,
};
pub use protocol::{
    Identity, MAX_MESSAGE_LEN, Request, Response, SSH_AGENT_RSA_SHA2_256, SSH_AGENT_RSA_SHA2_512,
    frame,
};
pub use server::{AgentConfig, AgentHandle, start};
pub use userauth::{NotUserAuth, UserAuth, parse_userauth};
pub use wire::{Reader, WireError, Writer};
pub use witness::{KexWatcher, Seen, Sighting, Witness};

/// How a grant is written: `ssh:HOST`, or `ssh:HOST:PORT` for another port than 22.
pub fn grant_name(host: &str, port: u16) -> String {
    if port == 22 {
        format!("ssh:{host}")
    } else {
        format!("ssh:{host}:{port}")
    }
}

/// `ssh:HOST[:PORT]` → the host (lowercase) and port; `None` for a grant of another kind.
pub fn parse_grant(grant: &str) -> Option<(String, u16)> {
    let rest = grant.trim().strip_prefix("ssh:")?;
    match rest.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => {
            let port: u16 = port.parse().ok().filter(|p| *p > 0)?;
            Some((host.to_ascii_lowercase(), port))
        }
        Some(_) => None,
        None if rest.is_empty() => None,
        None => Some((rest.to_ascii_lowercase(), 22)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_names() {
        assert_eq!(
            parse_grant("ssh:GitHub.com"),
            Some(("github.com".into(), 22))
        );
        assert_eq!(
            parse_grant("ssh:git.corp.test:2222"),
            Some(("git.corp.test".into(), 2222))
        );
        assert_eq!(parse_grant("ssh:"), None);
        assert_eq!(parse_grant("ssh:h:0"), None);
        assert_eq!(parse_grant("github"), None);
        assert_eq!(grant_name("github.com", 22), "ssh:github.com");
        assert_eq!(grant_name("h", 2222), "ssh:h:2222");
    }
}
