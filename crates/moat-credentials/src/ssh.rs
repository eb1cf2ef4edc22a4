//! SSH grants: which key of the user's agent a host may be logged in to with, and the
//! host keys pinned for it, in `$MOAT_HOME/credentials/ssh.json` (0600, written
//! atomically). No private material: the keys stay in the user's agent, so this file is
//! not encrypted; it is private because it says which hosts the user reaches with which
//! key.

use std::path::PathBuf;

use jiff::Timestamp;
use moat_home::MoatHome;
use serde::{Deserialize, Serialize};

use crate::CredentialError;

const FILE_NAME: &str = "ssh.json";

/// One host a key is granted for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshGrant {
    /// Lowercase host name.
    pub host: String,
    pub port: u16,
    /// The user's public key, `TYPE BASE64` (no comment).
    pub key: String,
    /// Its SHA-256 fingerprint, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    /// The key's comment in the agent (`me@laptop`).
    pub comment: String,
    /// The host's keys, `TYPE BASE64` each, pinned when the grant was made.
    pub host_keys: Vec<String>,
    /// Where the host keys came from (`~/.ssh/known_hosts`, `built-in`, `--host-key`).
    pub host_keys_from: String,
    pub granted_at: Timestamp,
}

impl SshGrant {
    /// `ssh:HOST`, or `ssh:HOST:PORT` off port 22.
    pub fn name(&self) -> String {
        if self.port == 22 {
            format!("ssh:{}", self.host)
        } else {
            format!("ssh:{}:{}", self.host, self.port)
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    grants: Vec<SshGrant>,
}

/// The SSH grants of one MOAT_HOME.
#[derive(Debug, Clone)]
pub struct SshGrantStore {
    path: PathBuf,
}

impl SshGrantStore {
    pub fn in_home(home: &MoatHome) -> Self {
        Self::in_dir(&home.credentials_dir())
    }

    /// The grants kept beside the credentials in `dir` (a [`crate::CredentialStore`]'s).
    pub fn in_dir(dir: &std::path::Path) -> Self {
        SshGrantStore {
            path: dir.join(FILE_NAME),
        }
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Every grant, sorted by host and port; none when the file does not exist.
    pub fn list(&self) -> Result<Vec<SshGrant>, CredentialError> {
        let text = match fs_err::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(CredentialError::file(&self.path, e)),
        };
        let file: File =
            serde_json::from_str(&text).map_err(|e| CredentialError::SshGrantsDamaged {
                path: self.path.clone(),
                reason: format!("line {}, column {}", e.line(), e.column()),
            })?;
        let mut grants = file.grants;
        grants.sort_by(|a, b| (&a.host, a.port).cmp(&(&b.host, b.port)));
        Ok(grants)
    }

    /// The grant for `host:port`.
    pub fn get(&self, host: &str, port: u16) -> Result<Option<SshGrant>, CredentialError> {
        Ok(self
            .list()?
            .into_iter()
            .find(|g| g.host == host && g.port == port))
    }

    /// Save `grant`, replacing the one for the same host and port.
    pub fn put(&self, grant: SshGrant) -> Result<PathBuf, CredentialError> {
        let mut grants = self.list()?;
        grants.retain(|g| !(g.host == grant.host && g.port == grant.port));
        grants.push(grant);
        self.write(grants)?;
        Ok(self.path.clone())
    }

    /// Remove the grant for `host:port`; `false` if there was none.
    pub fn remove(&self, host: &str, port: u16) -> Result<bool, CredentialError> {
        let mut grants = self.list()?;
        let before = grants.len();
        grants.retain(|g| !(g.host == host && g.port == port));
        if grants.len() == before {
            return Ok(false);
        }
        self.write(grants)?;
        Ok(true)
    }

    fn write(&self, mut grants: Vec<SshGrant>) -> Result<(), CredentialError> {
        grants.sort_by(|a, b| (&a.host, a.port).cmp(&(&b.host, b.port)));
        let dir = self.path.parent().expect("the file is in a directory");
        MoatHome::create_private_dir(dir)
            .map_err(|e| CredentialError::file(dir, std::io::Error::other(e.to_string())))?;
        let bytes = serde_json::to_vec_pretty(&File { grants }).expect("grants serialise");
        moat_home::write_private_atomic(&self.path, &bytes)
            .map_err(|e| CredentialError::file(&self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn grant(host: &str, port: u16, fingerprint: &str) -> SshGrant {
        SshGrant {
            host: host.into(),
            port,
            key: "ssh-ed25519 AAAA".into(),
            fingerprint: fingerprint.into(),
            comment: "me@laptop".into(),
            host_keys: vec!["ssh-ed25519 BBBB".into()],
            host_keys_from: "built-in".into(),
            granted_at: "2026-01-01T00:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn grants_are_kept_per_host_and_port_privately() {
        let dir = tempfile::tempdir().unwrap();
        let store = SshGrantStore::in_home(&MoatHome::at(dir.path().to_owned()));
        assert!(store.list().unwrap().is_empty());
        store.put(grant("github.com", 22, "SHA256:a")).unwrap();
        store.put(grant("gitlab.com", 22, "SHA256:b")).unwrap();
        store.put(grant("github.com", 2222, "SHA256:c")).unwrap();
        store.put(grant("github.com", 22, "SHA256:d")).unwrap();
        let names: Vec<String> = store
            .list()
            .unwrap()
            .iter()
            .map(|g| format!("{} {}", g.name(), g.fingerprint))
            .collect();
        assert_eq!(
            names,
            [
                "ssh:github.com SHA256:d",
                "ssh:github.com:2222 SHA256:c",
                "ssh:gitlab.com SHA256:b"
            ]
        );
        let mode = fs_err::metadata(store.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(store.remove("gitlab.com", 22).unwrap());
        assert!(!store.remove("gitlab.com", 22).unwrap());
        assert!(store.get("gitlab.com", 22).unwrap().is_none());
        assert_eq!(store.list().unwrap().len(), 2);
    }

    #[test]
    fn a_damaged_file_is_an_error_that_says_where() {
        let dir = tempfile::tempdir().unwrap();
        let store = SshGrantStore::in_home(&MoatHome::at(dir.path().to_owned()));
        fs_err::create_dir_all(store.path().parent().unwrap()).unwrap();
        fs_err::write(store.path(), "{\"grants\": [}").unwrap();
        let err = store.list().unwrap_err();
        assert!(err.to_string().contains("ssh.json"), "{err}");
        assert!(err.hint().unwrap().contains("moat grant ssh"));
    }
}
