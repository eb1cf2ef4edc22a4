//! What can go wrong with runs, with the hint a user needs to fix it.

use std::path::PathBuf;

use moat_container::RuntimeError;
use moat_home::HomeError;

use crate::RunRecord;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Home(#[from] HomeError),

    #[error(transparent)]
    Io(#[from] std::io::Error),

    #[error("`{path}`: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("the record of run `{0}` is missing")]
    UnknownRun(String),

    #[error("the run record `{path}` is damaged: {reason}")]
    Corrupt { path: PathBuf, reason: String },

    #[error("there are no runs yet")]
    NoRuns,

    #[error("no run matches `{arg}`")]
    NoSuchRun {
        arg: String,
        candidates: Vec<RunRecord>,
    },

    #[error("`{arg}` matches {} runs", candidates.len())]
    AmbiguousRun {
        arg: String,
        candidates: Vec<RunRecord>,
    },

    #[error("workspace `{path}` {reason}")]
    Workspace { path: PathBuf, reason: String },

    #[error("{0}")]
    InvalidName(String),

    #[error("a running run is already named `{name}` ({id})")]
    NameInUse { name: String, id: String },

    #[error("the name `{name}` belongs to run {id}, {state}")]
    NameTaken {
        name: String,
        id: String,
        state: String,
    },

    #[error("run `{id}` is still running")]
    StillRunning { id: String },

    #[error("run `{id}` is not running (it is {state})")]
    NotRunning { id: String, state: String },

    #[error(transparent)]
    Runtime(#[from] RuntimeError),

    #[error(transparent)]
    Logs(#[from] crate::LogError),

    #[error("cancelled")]
    Cancelled,

    #[error("the run's proxy cannot start: {0}")]
    Egress(String),

    #[error("the run's audit log cannot be opened: {0}")]
    Audit(String),
    #[error(transparent)]
    Snapshot(#[from] moat_snapshot::SnapshotError),

    #[error("moat does not mount `{}` into a container: {reason}", path.display())]
    ForbiddenMount { path: PathBuf, reason: String },
}

impl RunError {
    /// An I/O error about `path`. One from `fs_err` names the path already: kept as it
    /// is, so the path is said once.
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        if source.to_string().contains(&path.display().to_string()) {
            return RunError::Io(source);
        }
        RunError::File {
            path: path.to_owned(),
            source,
        }
    }

    /// A suggestion for the user, when there is an obvious one.
    pub fn hint(&self) -> Option<String> {
        let io = match self {
            RunError::Io(e) | RunError::File { source: e, .. } => Some(e),
            _ => None,
        };
        if io.is_some_and(|e| e.kind() == std::io::ErrorKind::StorageFull) {
            return Some(
                "the disk holding MOAT_HOME is full: free some space (old runs go with \
                 `moat destroy RUN`), then run again"
                    .into(),
            );
        }
        match self {
            RunError::Runtime(e) => e.hint(),
            RunError::Logs(e) if e.is_disk_full() => Some(
                "free space on the disk that holds MOAT_HOME; the log is whole lines up to \
                 where it stopped"
                    .into(),
            ),
            RunError::Snapshot(e) => e.hint(),
            RunError::NoRuns => Some("start one with `moat run`".into()),
            RunError::NoSuchRun { .. } => {
                Some("use a run id, a unique id prefix or a name from `moat list`".into())
            }
            RunError::AmbiguousRun { .. } => Some("name the run by its full id".into()),
            RunError::Workspace { .. } => Some(
                "give the path of an existing project directory, or leave it out to use the \
                 current directory"
                    .into(),
            ),
            RunError::InvalidName(_) => Some("for example `--name feature-auth`".into()),
            RunError::NameInUse { name, .. } => Some(format!(
                "choose another `--name`, or stop the other run (`moat stop {name}`) and \
                 pass `--replace`"
            )),
            RunError::NameTaken { id, .. } => Some(format!(
                "`--replace` destroys {id} and gives its name to the new run; or choose \
                 another `--name` (`moat destroy {id}` removes it by hand)"
            )),
            RunError::StillRunning { id } => Some(format!(
                "stop it first with `moat stop {id}`, or pass `--force`"
            )),
            RunError::NotRunning { id, .. } => {
                Some(format!("see its output with `moat logs {id}`"))
            }
            RunError::ForbiddenMount { .. } => Some(
                "run moat on the project directory itself (e.g. `cd ~/src/project`), and mount \
                 only what the run needs; MOAT_HOME holds the credential key and the run records"
                    .into(),
            ),
            RunError::Corrupt { path, .. } => Some(format!(
                "remove `{}` if the run is no longer needed",
                path.parent().unwrap_or(path).display()
            )),
            _ => None,
        }
    }
}
