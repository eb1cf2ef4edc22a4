//! The record of one run (`metadata.json`): what ran, where, and how it ended.

use std::path::PathBuf;

use jiff::Timestamp;
use moat_home::RunId;
use serde::{Deserialize, Serialize};

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// The container exists but has not started yet.
    Created,
    Running,
    /// The command ended on its own; `exit_code` says how.
    Exited,
    /// Someone stopped it (`moat stop`, `Ctrl-/ k`).
    Stopped,
    /// It could not start, or it vanished while nobody watched; `error` says why.
    Failed,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Created => "created",
            RunState::Running => "running",
            RunState::Exited => "exited",
            RunState::Stopped => "stopped",
            RunState::Failed => "failed",
        }
    }

    /// Whether the run is over: nothing about it changes any more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RunState::Exited | RunState::Stopped | RunState::Failed
        )
    }

    /// Whether a container may still be executing for this run.
    pub fn is_active(self) -> bool {
        !self.is_final()
    }
}

/// Everything moat remembers about a run. Environment values are not kept: they may be
/// secrets; only their names are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: RunId,
    pub name: String,
    pub workspace: PathBuf,
    /// The command as given; empty means the image's default shell.
    pub command: Vec<String>,
    pub image: String,
    pub state: RunState,
    pub exit_code: Option<i64>,
    pub error: Option<String>,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub container_id: Option<String>,
    pub interactive: bool,
    pub detached: bool,
    pub keep: bool,
    /// Names of the variables passed with `-e`.
    pub env_keys: Vec<String>,
    /// The process that watches the run (log capture, and later the proxy).
    pub supervisor_pid: Option<u32>,
    /// The agent conversation the run holds (`moat claude`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<crate::AgentSession>,
    /// What the run put at protected workspace paths, moved into the run's directory when
    /// it ended (`moat accept` puts it back).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held_back: Vec<crate::HeldBack>,
    /// Whether `logs.jsonl` holds everything the command wrote: `true` once copied to the
    /// end, `false` when that became impossible (`logs_error` says why), unset while the
    /// run is active (and in records of older moats).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs_complete: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs_error: Option<String>,
    /// How many workspace snapshots the run holds.
    #[serde(default)]
    pub snapshots: u64,
    /// Why the last snapshot that failed during the run failed (when, which trigger).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_error: Option<String>,
}

impl RunRecord {
    /// The state as users read it: `exited (1)` carries its code.
    pub fn state_label(&self) -> String {
        match (self.state, self.exit_code) {
            (RunState::Exited | RunState::Stopped, Some(code)) => {
                format!("{} ({code})", self.state.as_str())
            }
            (state, _) => state.as_str().to_owned(),
        }
    }

    /// Whether the run is over and its log is known to miss output.
    pub fn logs_incomplete(&self) -> bool {
        self.logs_complete == Some(false)
    }
}
