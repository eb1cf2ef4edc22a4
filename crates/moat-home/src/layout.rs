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
    /// `$MOAT_HOME` when set and not empty, else `~/.moat`. The caller passes the variable's
    /// value so that settings are read once, at the top.
    pub fn resolve(moat_home_var: Option<&str>) -> Result<Self, HomeError> {
        match moat_home_var.filter(|v| !v.is_empty()) {
            Some(dir) => Ok(Self::at(PathBuf::from(dir))),
            None => std::env::home_dir()
                .map(|home| Self::at(home.join(".moat")))
                .ok_or(HomeError::NoHomeDir),
        }
    }

    pub fn at(root: PathBuf) -> Self {
        // A relative MOAT_HOME would change meaning with the working directory, and the
        // supervisor runs from `/`: pin it now.
        let root = if root.is_relative() {
            std::env::current_dir()
                .map(|cwd| cwd.join(&root))
                .unwrap_or(root)
        } else {
            root
        };
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

    /// Where the workspace configurations the user trusted are recorded.
    pub fn trust_dir(&self) -> PathBuf {
        self.root.join("trust")
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
        let home = MoatHome::resolve(Some("/tmp/x")).unwrap();
        assert_eq!(home.root(), Path::new("/tmp/x"));
        let id: RunId = "run_a1b2c3d4e5f6".parse().unwrap();
        assert_eq!(home.run_dir(&id), Path::new("/tmp/x/runs/run_a1b2c3d4e5f6"));
        if std::env::home_dir().is_some() {
            let default = MoatHome::resolve(Some("")).unwrap();
            assert!(default.root().ends_with(".moat"));
        }
    }
}
