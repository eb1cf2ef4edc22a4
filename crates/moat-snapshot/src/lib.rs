//! Workspace snapshots: what the workspace was before a run and at points during it, kept
//! so that anything the agent did — its edit tool and its shell commands alike — can be
//! undone.
//!
//! Storage is a git object store per workspace (`$MOAT_HOME/snapshots/<hash>/`), driven
//! with an index of its own: content-addressed and deduplicated across every snapshot of
//! the workspace, with git's stat cache, so a snapshot of an unchanged tree costs one
//! directory walk, and large files are streamed. A snapshot is a commit whose message
//! holds its metadata, under `refs/moat/<run>/<snapshot>`. Empty directories, which git
//! does not track, are listed in the metadata.
//!
//! What is captured: the whole workspace but `.git`, the workspace's `.gitignore` rules
//! respected unless asked otherwise, plus the extra exclusion patterns — the same rules
//! for every snapshot.
//!
//! A restore first takes a safety snapshot of the current state, then changes only the
//! paths that differ, and never touches paths the rules leave out (ignored files stay). A
//! journal makes it safe against a crash: the next [`SnapshotStore::open`] (while no run is
//! live on the workspace) or restore finishes it.
//!
//! The crate takes values and returns values: it never prints, and reports progress
//! through a callback.

mod git;
mod store;

pub use store::{
    Change, ChangeKind, Progress, RestoreReport, Rules, SnapshotMeta, SnapshotStore, Trigger,
};

/// What can go wrong with snapshots.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Io(#[from] std::io::Error),

    #[error("snapshots need git, which cannot be run: {0}")]
    GitMissing(std::io::Error),

    #[error("git {command} failed: {message}")]
    Git { command: String, message: String },

    #[error("the snapshot store is damaged: {0}")]
    Damaged(String),

    #[error("no snapshot `{0}`")]
    NoSuchSnapshot(String),

    #[error("`{}` is not empty: a restore with --to needs a new or empty directory", .0.display())]
    NotEmpty(std::path::PathBuf),
}

impl SnapshotError {
    pub(crate) fn git_missing(e: std::io::Error) -> Self {
        SnapshotError::GitMissing(e)
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            SnapshotError::GitMissing(_) => Some(
                "install git (`sudo apt-get install git`), or turn snapshots off with \
                 `snapshots: {disabled: true}` or `--no-snapshots`"
                    .into(),
            ),
            SnapshotError::NoSuchSnapshot(_) => {
                Some("`moat snapshot list RUN` shows the run's snapshots".into())
            }
            SnapshotError::NotEmpty(_) => {
                Some("pass a directory that does not exist yet, or an empty one".into())
            }
            SnapshotError::Damaged(_) => Some(
                "the store is `$MOAT_HOME/snapshots/`; `git fsck` there shows what is wrong".into(),
            ),
            _ => None,
        }
    }
}
