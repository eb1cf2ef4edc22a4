//! What can go wrong granting SSH access or starting a run that uses it, with what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error(
        "SSH_AUTH_SOCK not set: moat signs with the keys of your SSH agent, and none is running"
    )]
    NoAgent,

    #[error("cannot reach your SSH agent at `{}`: {reason}", path.display())]
    AgentUnreachable { path: PathBuf, reason: String },

    #[error("no SSH keys in your agent")]
    NoKeys,

    #[error("key `{}` ({fingerprint}) not found in your SSH agent", path.display())]
    KeyNotInAgent { path: PathBuf, fingerprint: String },

    #[error("cannot read the public key `{}`: {reason}", path.display())]
    BadKeyFile { path: PathBuf, reason: String },

    #[error(
        "the host key of `{host}` is unknown: it is not in `{known_hosts}`, and moat only knows github.com's, gitlab.com's and bitbucket.org's"
    )]
    HostKeyUnknown {
        host: String,
        port: u16,
        known_hosts: String,
    },

    #[error("`--host-key`: {reason}")]
    BadHostKey { reason: String },

    #[error("the key {fingerprint} granted for `{grant}` is not in your SSH agent")]
    GrantedKeyMissing { grant: String, fingerprint: String },
}

impl SshError {
    pub fn hint(&self) -> Option<String> {
        match self {
            SshError::NoAgent => Some(
                "start one and add your key: `eval \"$(ssh-agent -s)\" && ssh-add`".into(),
            ),
            SshError::AgentUnreachable { .. } => Some(
                "check that the agent runs (`ssh-add -l`), or start one: `eval \"$(ssh-agent -s)\" && ssh-add`"
                    .into(),
            ),
            SshError::NoKeys => Some("add one: `ssh-add ~/.ssh/id_ed25519`".into()),
            SshError::KeyNotInAgent { path, .. } => {
                Some(format!("add it with: `ssh-add {}`", private_path(path).display()))
            }
            SshError::BadKeyFile { .. } => Some(
                "give the private key's path (moat reads the `.pub` beside it) or the `.pub` file itself".into(),
            ),
            SshError::HostKeyUnknown { host, port, .. } => {
                let target = if *port == 22 {
                    host.clone()
                } else {
                    format!("-p {port} {host}")
                };
                Some(format!(
                    "connect once with `ssh {target}` and check the fingerprint it shows against the one the host publishes, \
                     so it is added to `~/.ssh/known_hosts`; or pass the key itself with `--host-key \"ssh-ed25519 AAAA...\"`"
                ))
            }
            SshError::BadHostKey { .. } => Some(
                "give a public key as known_hosts holds it: `--host-key \"ssh-ed25519 AAAA...\"`".into(),
            ),
            SshError::GrantedKeyMissing { grant, .. } => Some(format!(
                "add the key to your agent with `ssh-add`, or grant another with `moat grant ssh --host {}`",
                grant.trim_start_matches("ssh:")
            )),
        }
    }
}

/// `id_ed25519` for `id_ed25519.pub`: `ssh-add` takes the private key.
fn private_path(path: &std::path::Path) -> PathBuf {
    match path.to_str().and_then(|p| p.strip_suffix(".pub")) {
        Some(private) => PathBuf::from(private),
        None => path.to_owned(),
    }
}
