//! The trust records: one JSON file per trusted workspace under `$MOAT_HOME/trust/`, named
//! by a hash of the workspace path, holding the approved file's name, hash and text.
// `TrustError::Io` names the path and what was done to it, so it wraps plain `std::fs`
// errors; fs-err would say each path twice.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use moat_home::{FileKind, MoatHome};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What the user approved for one workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustRecord {
    /// The workspace directory (absolute, symlinks resolved).
    pub workspace: PathBuf,
    /// The configuration file's name in it (`moat.yaml` or `agent.yaml`).
    pub file: String,
    /// `sha256:` + hex of the approved bytes.
    pub sha256: String,
    /// The approved text, to show what changed when it changes.
    pub content: String,
    pub trusted_at: Timestamp,
}

/// How a workspace file stands against the records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustState {
    /// This exact content was approved for this workspace.
    Trusted(TrustRecord),
    /// Nothing was ever approved for this workspace.
    New,
    /// Other content (or another file name) was approved; this one was not.
    Changed(TrustRecord),
}

impl TrustState {
    pub fn is_trusted(&self) -> bool {
        matches!(self, TrustState::Trusted(_))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("cannot {action} `{}`: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl TrustError {
    pub fn hint(&self) -> Option<String> {
        match self {
            TrustError::Io { path, .. } => Some(format!(
                "check that `{}` is a directory you can write (it is part of MOAT_HOME)",
                path.parent().unwrap_or(path).display()
            )),
        }
    }
}

/// `sha256:<hex>` of `content`: how a record names what was approved.
pub fn content_hash(content: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(content)))
}

/// The trust records of one `MOAT_HOME`.
#[derive(Debug, Clone)]
pub struct TrustStore {
    dir: PathBuf,
}

impl TrustStore {
    pub fn new(home: &MoatHome) -> Self {
        TrustStore {
            dir: home.trust_dir(),
        }
    }

    /// The record file of `workspace`: a hash of the path, so any path is a safe name.
    fn record_path(&self, workspace: &Path) -> PathBuf {
        let digest = Sha256::digest(workspace.as_os_str().as_encoded_bytes());
        self.dir
            .join(format!("{}.json", &hex::encode(digest)[..32]))
    }

    /// The record of `workspace`, if any. A record that cannot be read as one counts as
    /// none: trust fails closed, and the next approval replaces it.
    pub fn get(&self, workspace: &Path) -> Result<Option<TrustRecord>, TrustError> {
        let path = self.record_path(workspace);
        // Bounded: a FIFO or a huge file in its place must not hang or swell moat; a
        // record that is not a regular file of sane size is damaged, and trusts nothing.
        let bytes = match moat_home::read_bounded(&path, FileKind::TRUST_RECORD) {
            Ok(bytes) => bytes,
            Err(moat_home::ReadError::Io { source, .. }) => {
                return Err(TrustError::Io {
                    action: "read",
                    path,
                    source,
                });
            }
            Err(_) => return Ok(None),
        };
        Ok(serde_json::from_slice::<TrustRecord>(&bytes)
            .ok()
            .filter(|r| r.workspace == workspace))
    }

    /// Whether `content`, the text of `file_name` in `workspace`, was approved.
    pub fn state(
        &self,
        workspace: &Path,
        file_name: &str,
        content: &str,
    ) -> Result<TrustState, TrustError> {
        Ok(match self.get(workspace)? {
            None => TrustState::New,
            Some(record)
                if record.file == file_name
                    && record.sha256 == content_hash(content.as_bytes()) =>
            {
                TrustState::Trusted(record)
            }
            Some(record) => TrustState::Changed(record),
        })
    }

    /// Record `content` of `file_name` in `workspace` as approved, replacing any earlier
    /// approval for the workspace. Written atomically, 0600.
    pub fn approve(
        &self,
        workspace: &Path,
        file_name: &str,
        content: &str,
        now: Timestamp,
    ) -> Result<TrustRecord, TrustError> {
        let record = TrustRecord {
            workspace: workspace.to_owned(),
            file: file_name.to_owned(),
            sha256: content_hash(content.as_bytes()),
            content: content.to_owned(),
            trusted_at: now,
        };
        MoatHome::create_private_dir(&self.dir).map_err(|e| match e {
            moat_home::HomeError::Create { path, source } => TrustError::Io {
                action: "create",
                path,
                source,
            },
            moat_home::HomeError::NoHomeDir => unreachable!("creating a directory"),
        })?;
        let path = self.record_path(workspace);
        let bytes = serde_json::to_vec_pretty(&record).expect("a trust record serialises");
        moat_home::write_private_atomic(&path, &bytes).map_err(|source| TrustError::Io {
            action: "write",
            path,
            source,
        })?;
        Ok(record)
    }

    /// Forget the approval of `workspace`; the record it had, if any.
    pub fn revoke(&self, workspace: &Path) -> Result<Option<TrustRecord>, TrustError> {
        let record = self.get(workspace)?;
        let path = self.record_path(workspace);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(record),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(TrustError::Io {
                action: "remove",
                path,
                source,
            }),
        }
    }

    /// Every record, by workspace path. Files that are not records are skipped.
    pub fn list(&self) -> Result<Vec<TrustRecord>, TrustError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(TrustError::Io {
                    action: "read",
                    path: self.dir.clone(),
                    source,
                });
            }
        };
        let mut records: Vec<TrustRecord> = entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| moat_home::read_bounded(&e.path(), FileKind::TRUST_RECORD).ok())
            .filter_map(|bytes| serde_json::from_slice(&bytes).ok())
            .collect();
        records.sort_by(|a, b| a.workspace.cmp(&b.workspace));
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, TrustStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = TrustStore::new(&MoatHome::at(dir.path().to_owned()));
        (dir, store)
    }

    #[test]
    fn only_the_approved_content_of_the_approved_file_is_trusted() {
        let (_dir, store) = store();
        let ws = Path::new("/w/project");
        assert_eq!(
            store.state(ws, "moat.yaml", "a: 1\n").unwrap(),
            TrustState::New
        );
        store
            .approve(ws, "moat.yaml", "a: 1\n", Timestamp::UNIX_EPOCH)
            .unwrap();
        assert!(store.state(ws, "moat.yaml", "a: 1\n").unwrap().is_trusted());
        let TrustState::Changed(previous) = store.state(ws, "moat.yaml", "a: 2\n").unwrap() else {
            panic!("changed content must not be trusted");
        };
        assert_eq!(previous.content, "a: 1\n");
        assert!(matches!(
            store.state(ws, "agent.yaml", "a: 1\n").unwrap(),
            TrustState::Changed(_)
        ));
        assert_eq!(
            store
                .state(Path::new("/w/other"), "moat.yaml", "a: 1\n")
                .unwrap(),
            TrustState::New
        );
    }

    #[test]
    fn records_are_private_listed_and_revocable() {
        use std::os::unix::fs::PermissionsExt;
        let (dir, store) = store();
        let ws = Path::new("/w/p");
        store
            .approve(ws, "moat.yaml", "x\n", Timestamp::UNIX_EPOCH)
            .unwrap();
        let trust_dir = dir.path().join("trust");
        let file = std::fs::read_dir(&trust_dir)
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(file.metadata().unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(store.list().unwrap().len(), 1);
        assert_eq!(store.revoke(ws).unwrap().unwrap().workspace, ws);
        assert!(store.revoke(ws).unwrap().is_none());
        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    fn a_damaged_record_trusts_nothing() {
        let (_dir, store) = store();
        let ws = Path::new("/w/p");
        store
            .approve(ws, "moat.yaml", "x\n", Timestamp::UNIX_EPOCH)
            .unwrap();
        std::fs::write(store.record_path(ws), b"{not json").unwrap();
        assert_eq!(
            store.state(ws, "moat.yaml", "x\n").unwrap(),
            TrustState::New
        );
    }

    #[test]
    fn a_record_moved_to_another_workspace_name_trusts_nothing() {
        let (_dir, store) = store();
        store
            .approve(Path::new("/w/a"), "moat.yaml", "x\n", Timestamp::UNIX_EPOCH)
            .unwrap();
        std::fs::rename(
            store.record_path(Path::new("/w/a")),
            store.record_path(Path::new("/w/b")),
        )
        .unwrap();
        assert_eq!(
            store.state(Path::new("/w/b"), "moat.yaml", "x\n").unwrap(),
            TrustState::New
        );
    }

    #[test]
    fn the_hash_names_its_algorithm() {
        assert_eq!(
            content_hash(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
