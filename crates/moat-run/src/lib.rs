//! Runs: preparing one (image, container, record), supervising it while it lives (start,
//! live log capture, exit, clean-up), and the record it leaves in `$MOAT_HOME/runs/<id>/`.
//!
//! Takes values, returns values and reports progress through callbacks; never prints.

mod agent;
mod audit;
mod egress;
mod error;
mod host_paths;
mod launch;
mod lifecycle;
mod logs;
mod names;
mod protect;
mod record;
mod resolve;
mod seed;
mod snapshot_triggers;
mod snapshots;
mod ssh;
mod store;
mod supervisor;

pub use agent::{AgentSession, InvalidSessionId, SessionId, latest_session};
pub use audit::RunAudit;
pub use egress::{
    CONTAINER_PROXY_DIR, CONTAINER_PROXY_PORT, EgressSettings, McpRoute, McpRouteAuth,
    proxy_config, read_network_log,
};
pub use error::RunError;
pub use host_paths::{CheckedMounts, check_mounts};
pub use launch::{
    HomeFile, PrepareEvent, Rollback, RunImage, RunRequest, Workspace, ensure_image, prepare_run,
};
pub use lifecycle::{
    destroy_damaged, destroy_run, reconcile, stop_run, supervisor_alive, wait_for_supervisor,
};
pub use logs::{
    CopyEnd, CopyLock, Follow, LogError, LogLine, LogReader, LogRecord, LogWriter, MAX_PIECE,
    Position, Stream, TerminalSize, copy_logs, read_lines, read_terminal_sizes,
    record_terminal_size,
};
pub use names::{random_name, validate_name};
pub use protect::{DEFAULT_PROTECTED, HeldBack, Protection, restore_held};
pub use record::{RunRecord, RunState};
pub use resolve::resolve_run;
pub use seed::{CONTAINER_SEED_DIR, MAX_SEED_BYTES, SeedDir, SeedTree};
pub use snapshots::{SnapshotPlan, open_store, store_dir, take_snapshot};
pub use ssh::{CONTAINER_SSH_DIR, SshRunGrant, SshSettings, read_ssh_log};
pub use store::{Damaged, FileLock, RunStore};
pub use supervisor::{SupervisorEvent, supervise};

/// How long `moat stop` lets a command shut down after SIGTERM before killing it.
pub const STOP_GRACE_SECS: i32 = 10;

#[cfg(test)]
pub(crate) mod test_support {
    use moat_container::Runtime;
    use moat_container::fake::FakeRuntime;
    use moat_home::MoatHome;

    use crate::{RunImage, RunRecord, RunRequest, RunState, RunStore, Workspace};

    /// A MOAT_HOME and a workspace of their own, each in a temporary directory (apart, as
    /// a run requires).
    pub(crate) struct TestRun {
        pub(crate) store: RunStore,
        pub(crate) workspace: Workspace,
        _home: tempfile::TempDir,
        _workspace: tempfile::TempDir,
    }

    impl TestRun {
        pub(crate) fn new() -> Self {
            let home = tempfile::tempdir().unwrap();
            let workspace_dir = tempfile::tempdir().unwrap();
            let store = RunStore::new(MoatHome::at(home.path().to_owned()));
            let workspace = Workspace::resolve(workspace_dir.path(), store.home()).unwrap();
            TestRun {
                store,
                workspace,
                _home: home,
                _workspace: workspace_dir,
            }
        }

        /// A plain attached run of `true` in the workspace, as the CLI would resolve it.
        pub(crate) fn request(&self) -> RunRequest {
            RunRequest {
                workspace: self.workspace.clone(),
                command: vec!["true".into()],
                name: None,
                replace: false,
                env: vec![],
                interactive: false,
                detach: false,
                keep: false,
                rebuild: false,
                term: None,
                image: RunImage::new(moat_image::ImageSpec::new(
                    "debian:bookworm-slim",
                    1000,
                    1000,
                )),
                build_network: None,
                mounts: crate::CheckedMounts::default(),
                memory_mb: 4096,
                cpus: None,
                pids_limit: 1024,
                protect: vec![],
                config_file: None,
                config_hash: None,
                snapshots: None,
                egress: crate::EgressSettings::default(),
                proxy_token: moat_proxy::Secret::new("test-proxy-token"),
                home_files: vec![],
                agent: None,
                no_stdin: false,
                ssh: None,
                seed: crate::SeedDir::default(),
            }
        }

        /// Prepare `request` on `fake` with its image cached, as `moat run` does before it
        /// hands the run to its supervisor; the fake's calls so far are forgotten.
        pub(crate) async fn prepare(&self, fake: &FakeRuntime, request: &RunRequest) -> RunRecord {
            let tag = &request.image.plan().tag;
            if !fake.image_exists(tag).await.unwrap() {
                fake.add_image(tag);
            }
            let mut rollback = crate::Rollback::default();
            let record = crate::prepare_run(fake, &self.store, request, &mut rollback, &mut |_| {})
                .await
                .unwrap();
            rollback.disarm();
            fake.clear_calls();
            record
        }

        /// The run directories under MOAT_HOME.
        pub(crate) fn run_dirs(&self) -> Vec<std::path::PathBuf> {
            match fs_err::read_dir(self.store.home().runs_dir()) {
                Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => vec![],
                Err(e) => panic!("{e}"),
            }
        }
    }

    pub(crate) fn record(id: &str, name: &str, created: i64) -> RunRecord {
        RunRecord {
            id: id.parse().unwrap(),
            name: name.into(),
            workspace: "/w".into(),
            command: vec!["true".into()],
            image: "moat/run:x".into(),
            state: RunState::Created,
            exit_code: None,
            error: None,
            created_at: jiff::Timestamp::from_second(created).unwrap(),
            started_at: None,
            finished_at: None,
            container_id: None,
            interactive: false,
            detached: false,
            keep: false,
            env_keys: vec![],
            supervisor_pid: None,
            agent: None,
            held_back: vec![],
            logs_complete: None,
            logs_error: None,
            snapshots: 0,
            snapshot_error: None,
        }
    }
}
