//! A run's snapshots: the plan the CLI resolved (`snapshots.json` in the run's directory,
//! read back typed by the supervisor), the workspace's store, and taking one — counted in
//! the run's record and reported, never swallowed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use moat_home::RunId;
use moat_snapshot::{Rules, SnapshotMeta, SnapshotStore, Trigger};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{RunError, RunStore};

const PLAN_FILE: &str = "snapshots.json";

/// What a run snapshots and when. Read back by the supervisor with every field required:
/// a damaged plan is an error, not a looser one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotPlan {
    /// Leave out what `.gitignore` files leave out.
    pub respect_gitignore: bool,
    /// More gitignore-style patterns to leave out.
    pub exclude: Vec<String>,
    pub pre_run: bool,
    pub git_commits: bool,
    /// After this long without changes, following changes (`None`: never).
    pub idle_after_seconds: Option<u64>,
    pub agent_turns: bool,
    /// Snapshots kept per run.
    pub max_count: u64,
    /// Whether retention may delete the pre-run snapshot.
    pub delete_initial: bool,
    /// The run's protected paths beyond [`crate::DEFAULT_PROTECTED`] (the workspace's moat
    /// files and its `protect:` entries), which a restore in place leaves alone as it does
    /// those.
    #[serde(default)]
    pub protected: Vec<String>,
}

impl SnapshotPlan {
    pub fn rules(&self) -> Rules {
        Rules {
            respect_gitignore: self.respect_gitignore,
            exclude: self.exclude.clone(),
            kept_out_of_restores: crate::DEFAULT_PROTECTED
                .iter()
                .map(|p| (*p).to_owned())
                .chain(self.protected.iter().cloned())
                .collect(),
        }
    }

    pub fn idle_after(&self) -> Option<Duration> {
        self.idle_after_seconds.map(Duration::from_secs)
    }
}

/// The snapshot store of `workspace` under `MOAT_HOME`.
pub fn store_dir(store: &RunStore, workspace: &Path) -> PathBuf {
    let digest = hex::encode(Sha256::digest(workspace.as_os_str().as_encoded_bytes()));
    store.home().snapshots_dir().join(&digest[..16])
}

/// Open the store of `workspace` with `rules`. A restore a crash interrupted is finished
/// only while no run is live on the workspace (its agent could put a link where the
/// restore writes); otherwise the next restore finishes it, with its run paused.
pub fn open_store(
    store: &RunStore,
    workspace: &Path,
    rules: Rules,
) -> Result<SnapshotStore, RunError> {
    let dir = store_dir(store, workspace);
    let live = store
        .list()?
        .iter()
        .any(|r| r.workspace == workspace && r.state.is_active());
    if live {
        SnapshotStore::open_leaving_restores(&dir, workspace, rules)
    } else {
        SnapshotStore::open(&dir, workspace, rules)
    }
    .map_err(RunError::from)
}

impl RunStore {
    pub(crate) fn save_snapshot_plan(
        &self,
        id: &RunId,
        plan: &SnapshotPlan,
    ) -> Result<(), RunError> {
        let path = self.run_dir(id).join(PLAN_FILE);
        let bytes = serde_json::to_vec_pretty(plan).expect("a plan serialises");
        moat_home::write_private_atomic(&path, &bytes).map_err(|e| RunError::io(&path, e))
    }

    /// The run's snapshot plan; `None` when the run takes none.
    pub fn load_snapshot_plan(&self, id: &RunId) -> Result<Option<SnapshotPlan>, RunError> {
        let path = self.run_dir(id).join(PLAN_FILE);
        match fs_err::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| RunError::Corrupt {
                    path,
                    reason: e.to_string(),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(RunError::io(&path, e)),
        }
    }
}

/// Take a snapshot of run `id`'s workspace, apply its retention, and count it in the
/// run's record.
pub fn take_snapshot(
    store: &RunStore,
    id: &RunId,
    workspace: &Path,
    plan: &SnapshotPlan,
    trigger: Trigger,
    label: Option<String>,
) -> Result<SnapshotMeta, RunError> {
    let meta = take_snapshot_if(store, id, workspace, plan, trigger, label, false)?;
    Ok(meta.expect("taken unconditionally"))
}

/// [`take_snapshot`], or nothing when `only_if_changed` and the workspace holds what the
/// run's last snapshot holds.
pub(crate) fn take_snapshot_if(
    store: &RunStore,
    id: &RunId,
    workspace: &Path,
    plan: &SnapshotPlan,
    trigger: Trigger,
    label: Option<String>,
    only_if_changed: bool,
) -> Result<Option<SnapshotMeta>, RunError> {
    // A live run (the supervisor's turns, a manual snapshot): its agent could change the
    // workspace, so an interrupted restore is left, and no listing of every run is needed
    // to know it (this is on the way of an agent turn's request).
    let active = store.load(id).is_ok_and(|r| r.state.is_active());
    let snapshots = if active {
        SnapshotStore::open_leaving_restores(&store_dir(store, workspace), workspace, plan.rules())?
    } else {
        open_store(store, workspace, plan.rules())?
    };
    let meta = if only_if_changed {
        snapshots.take_if_changed(id.as_str(), trigger, label)?
    } else {
        Some(snapshots.take(id.as_str(), trigger, label)?)
    };
    let Some(meta) = meta else {
        return Ok(None);
    };
    // The audit log names the snapshot's tree: the workspace's content at that moment,
    // hash for hash, is then part of what the run's signed log commits to. Only while
    // the run lives: its log is closed (and signed as closed) when it ends.
    if active && let Ok(audit) = crate::RunAudit::open(store, id) {
        audit.record(
            "snapshot_taken",
            serde_json::json!({
                "snapshot": meta.id,
                "trigger": trigger.as_str(),
                "label": meta.label,
                "tree": meta.tree,
                "files": meta.files,
                "changed": meta.changed,
            }),
        );
    }
    let max = usize::try_from(plan.max_count).unwrap_or(usize::MAX);
    snapshots.prune(id.as_str(), max, plan.delete_initial, false)?;
    let count = snapshots.list(id.as_str())?.len() as u64;
    store.update(id, |r| r.snapshots = count)?;
    Ok(Some(meta))
}
