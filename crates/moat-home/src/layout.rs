//! The layout of `$MOAT_HOME`: one function per place, so no other crate builds paths by hand.

use std::path::{Path, PathBuf};

use crate::RunId;

/// The root of moat's state, e.g. `~/.moat`.
#[derive(Debug, Clone)]
pub struct MoatHome {
    root: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    #[error("cannot find the home directory to put `~/.moat` in")]
    NoHomeDir,
    #[error("cannot create `{path}`: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl MoatHome {
    /// `$MOAT_HOME` when set and not empty, else `~/.moat`. The caller passes the
    /// variable's value, the home directory and the working directory, so that the
    /// environment is read once, at the top. A relative `$MOAT_HOME` is made absolute
    /// from `cwd`: it would otherwise change meaning with the working directory, and the
    /// supervisor runs from `/`.
    pub fn resolve(
        moat_home_var: Option<&str>,
        home_dir: Option<&Path>,
        cwd: Option<&Path>,
    ) -> Result<Self, HomeError> {
        match moat_home_var.filter(|v| !v.is_empty()) {
            Some(dir) => {
                let dir = PathBuf::from(dir);
                Ok(Self::at(match cwd {
                    Some(cwd) if dir.is_relative() => cwd.join(dir),
                    _ => dir,
                }))
            }
            None => home_dir
                .map(|home| Self::at(home.join(".moat")))
                .ok_or(HomeError::NoHomeDir),
        }
    }

    /// The home at `root` (absolute).
    pub fn at(root: PathBuf) -> Self {
        MoatHome { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn runs_dir(&self) -> PathBuf {
        self.root.join("runs")
    }

    pub fn run_dir(&self, id: &RunId) -> PathBuf {
        self.runs_dir().join(id.as_str())
    }

    pub fn config_file(&self) -> PathBuf {
        self.root.join("config.yaml")
    }

    /// Lock files that serialise work between moat processes (one build per image tag).
    pub fn locks_dir(&self) -> PathBuf {
        self.root.join("locks")
    }

    /// Audit logs kept after their runs were destroyed (`moat destroy --keep-audit`).
    pub fn audit_dir(&self) -> PathBuf {
        self.root.join("audit")
    }

    /// The machine's audit signing key (Ed25519), outside every run directory.
    pub fn audit_key_file(&self) -> PathBuf {
        self.root.join("audit.key")
    }

    /// Workspace snapshot stores, one per workspace.
    pub fn snapshots_dir(&self) -> PathBuf {
        self.root.join("snapshots")
    }

    /// Where the workspace configurations the user trusted are recorded.
    pub fn trust_dir(&self) -> PathBuf {
        self.root.join("trust")
    }

    /// The encrypted credentials, one `<provider>.enc` each.
    pub fn credentials_dir(&self) -> PathBuf {
        self.root.join("credentials")
    }

    /// The credential key when it is not in the OS keyring.
    pub fn key_file(&self) -> PathBuf {
        self.root.join("encryption.key")
    }

    /// The CA the proxies sign with (`ca.crt`, `ca.key`).
    pub fn proxy_ca_dir(&self) -> PathBuf {
        self.root.join("proxy-ca")
    }

    /// The user's own providers, `*.yaml`.
    pub fn providers_dir(&self) -> PathBuf {
        self.root.join("providers")
    }

    /// Create a private directory (0700) and its missing parents.
    pub fn create_private_dir(path: &Path) -> Result<(), HomeError> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(|source| HomeError::Create {
                path: path.to_owned(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moat_home_variable_wins_and_empty_means_unset() {
        let user = Some(Path::new("/home/u"));
        let cwd = Some(Path::new("/work"));
        let home = MoatHome::resolve(Some("/tmp/x"), user, cwd).unwrap();
        assert_eq!(home.root(), Path::new("/tmp/x"));
        let id: RunId = "run_a1b2c3d4e5f6".parse().unwrap();
        assert_eq!(home.run_dir(&id), Path::new("/tmp/x/runs/run_a1b2c3d4e5f6"));
        let default = MoatHome::resolve(Some(""), user, cwd).unwrap();
        assert_eq!(default.root(), Path::new("/home/u/.moat"));
        let relative = MoatHome::resolve(Some("state"), user, cwd).unwrap();
        assert_eq!(relative.root(), Path::new("/work/state"));
        assert!(MoatHome::resolve(None, None, cwd).is_err());
    }
}
