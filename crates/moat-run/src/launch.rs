//! Preparing a run: the image (from cache or built), the record, the container.
//!
//! Every step that creates something registers it in a [`Rollback`], so a failure or a
//! Ctrl-C at any point removes what was made: no container, run directory or tag is left
//! half made.

use std::path::PathBuf;
use std::time::Instant;

use futures_util::StreamExt;
use moat_container::{BindMount, BuildEvent, BuildOptions, ContainerSpec, Runtime};
use moat_home::RunId;
use moat_image::{CONTAINER_HOME, ImageSpec, WORKSPACE_DIR};

use crate::{EgressSettings, RunError, RunRecord, RunState, RunStore, names};

/// A run's workspace: an existing directory, absolute and symlink-free, that is neither
/// `/` nor MOAT_HOME nor holds or lies in it. Only [`Workspace::resolve`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace(PathBuf);

impl Workspace {
    /// Check `path` once; everything downstream takes the result.
    pub fn resolve(path: &std::path::Path, home: &moat_home::MoatHome) -> Result<Self, RunError> {
        let canonical = check_workspace(path)?;
        crate::host_paths::refuse_protected(home, &canonical, "workspace")?;
        Ok(Workspace(canonical))
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

/// The image a run needs: what it is made of, and its build plan, made once from it.
#[derive(Debug, Clone)]
pub struct RunImage {
    spec: ImageSpec,
    plan: moat_image::BuildPlan,
}

impl RunImage {
    pub fn new(spec: ImageSpec) -> Self {
        let plan = moat_image::plan(&spec);
        RunImage { spec, plan }
    }

    pub fn spec(&self) -> &ImageSpec {
        &self.spec
    }

    pub fn plan(&self) -> &moat_image::BuildPlan {
        &self.plan
    }
}

/// What the user asked to run, with every setting already resolved.
#[derive(Debug)]
pub struct RunRequest {
    pub workspace: Workspace,
    /// Empty: the image's default shell.
    pub command: Vec<String>,
    pub name: Option<String>,
    /// Give `name` to this run even when a finished run holds it: that run is destroyed
    /// first (`--replace`). A running holder is never replaced.
    pub replace: bool,
    pub env: Vec<(String, String)>,
    /// Allocate a terminal and keep stdin open across attaches.
    pub interactive: bool,
    pub detach: bool,
    pub keep: bool,
    pub rebuild: bool,
    /// `TERM` for interactive runs (the host's).
    pub term: Option<String>,
    /// The image the run needs (base, dependencies, CAs, hooks, owner ids) and its plan.
    pub image: RunImage,
    /// Network for image builds (`MOAT_BUILD_NETWORK`), e.g. `host`.
    pub build_network: Option<String>,
    /// Extra bind mounts (configuration, agent), besides the workspace.
    pub mounts: crate::CheckedMounts,
    /// Memory limit in MiB.
    pub memory_mb: u64,
    /// CPU limit, in cores.
    pub cpus: Option<f64>,
    /// How many processes and threads the container may have at once.
    pub pids_limit: u64,
    /// Workspace paths to protect besides [`crate::DEFAULT_PROTECTED`] (relative).
    pub protect: Vec<String>,
    /// The workspace's moat file (`moat.yaml`), read-only in the container.
    pub config_file: Option<String>,
    /// `sha256:` of the workspace file's trusted bytes, for the audit log.
    pub config_hash: Option<String>,
    /// What the run snapshots and when (`None`: no snapshots).
    pub snapshots: Option<crate::SnapshotPlan>,
    /// What the run's proxy enforces.
    pub egress: EgressSettings,
    /// The run's proxy token, made once by the caller (placeholders in `env` derive from
    /// it); the container and the supervisor get this one.
    pub proxy_token: moat_proxy::Secret,
    /// Files put into the container user's home before the command starts (an agent's
    /// settings). The run keeps them in its directory; the container gets copies it can
    /// change without touching the host.
    pub home_files: Vec<HomeFile>,
    /// The agent conversation this run holds, recorded with the run.
    pub agent: Option<crate::AgentSession>,
    /// Give an attached, non-interactive command no stdin (it sees end of input at once)
    /// instead of the caller's.
    pub no_stdin: bool,
    /// The run's `ssh:` grants and the user's agent: an SSH agent of the run's own, the
    /// client configuration and the pinned host keys (`None`: no SSH at all, no socket).
    pub ssh: Option<crate::SshSettings>,
    /// Host directories the run gets read-only copies of at
    /// [`crate::CONTAINER_SEED_DIR`] (an agent's installed plugins).
    pub seed: crate::SeedDir,
}

/// A file for the container user's home: a relative path and its contents. Never a
/// secret: it is readable in the run's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HomeFile {
    /// Relative to the home directory, e.g. `.claude.json`; no `..`, not absolute.
    pub path: String,
    pub contents: Vec<u8>,
}

/// Where the run's home files are mounted (read-only); `moat-init` copies them into
/// the home directory.
pub const CONTAINER_HOME_INIT_DIR: &str = "/run/moat/home";

/// Progress of [`prepare_run`], for the caller to show.
#[derive(Debug, Clone)]
pub enum PrepareEvent {
    /// Another moat is building the same image; this run waits, then uses it.
    WaitingForBuild {
        tag: String,
    },
    /// The pre-run snapshot of the workspace was taken.
    SnapshotTaken {
        id: String,
        files: u64,
        seconds: f64,
    },
    /// The pre-run snapshot could not be taken; the run goes on without it.
    SnapshotFailed {
        error: String,
        hint: Option<String>,
    },
    ImageCached {
        tag: String,
    },
    BuildStarted {
        tag: String,
    },
    Build(BuildEvent),
    BuildFinished {
        tag: String,
        seconds: f64,
    },
}

/// What a half-prepared run has made so far, to be undone if it cannot go on.
#[derive(Debug, Default)]
pub struct Rollback {
    /// The container's id, or its name while the daemon has not answered with the id.
    container: Option<String>,
    run: Option<(RunStore, RunId)>,
}

impl Rollback {
    /// Remove what was made. Best effort: each step runs even if an earlier one failed.
    pub async fn undo(&mut self, runtime: &impl Runtime) {
        if let Some(id) = self.container.take()
            && let Err(e) = runtime.remove_container(&id, true).await
        {
            tracing::warn!(container = %id, error = %e, "rollback: removing the container failed");
        }
        if let Some((store, id)) = self.run.take()
            && let Err(e) = store.delete(&id)
        {
            tracing::warn!(%id, error = %e, "rollback: removing the run directory failed");
        }
    }

    /// The run is handed over to its supervisor: nothing is undone any more.
    pub fn disarm(&mut self) {
        self.container = None;
        self.run = None;
    }
}

/// Make everything a run needs short of starting it: the image, the run's record and
/// directory, and the (created, not started) container.
pub async fn prepare_run(
    runtime: &impl Runtime,
    store: &RunStore,
    request: &RunRequest,
    rollback: &mut Rollback,
    on_event: &mut (dyn FnMut(PrepareEvent) + Send),
) -> Result<RunRecord, RunError> {
    let workspace = request.workspace.path().to_owned();
    // A requested name stays locked until the run's record exists: a second run asking
    // for it meanwhile waits, then finds it taken.
    let _name_lock = match &request.name {
        Some(name) => Some(store.lock_name(name).await?),
        None => None,
    };
    let name = choose_name(runtime, store, request.name.as_deref(), request.replace).await?;
    let plan = request.image.plan();

    {
        let _build_lock = store
            .lock_build(&plan.tag, || {
                on_event(PrepareEvent::WaitingForBuild {
                    tag: plan.tag.clone(),
                })
            })
            .await?;
        ensure_image(
            runtime,
            plan,
            request.rebuild,
            request.build_network.as_deref(),
            Some(store.home().root()),
            on_event,
        )
        .await?;
    }

    let id = RunId::generate();
    let mut env = vec![
        ("HOME".to_owned(), CONTAINER_HOME.to_owned()),
        ("MOAT_RUN_ID".to_owned(), id.to_string()),
        ("MOAT_RUN_NAME".to_owned(), name.clone()),
    ];
    if request.interactive {
        let term = request
            .term
            .clone()
            .unwrap_or_else(|| "xterm-256color".into());
        env.push(("TERM".to_owned(), term));
    }
    env.extend(request.env.iter().cloned());

    let record = RunRecord {
        id: id.clone(),
        name,
        workspace: workspace.clone(),
        command: request.command.clone(),
        image: plan.tag.clone(),
        state: RunState::Created,
        exit_code: None,
        error: None,
        created_at: jiff::Timestamp::now(),
        started_at: None,
        finished_at: None,
        container_id: None,
        interactive: request.interactive,
        detached: request.detach,
        keep: request.keep,
        env_keys: request.env.iter().map(|(k, _)| k.clone()).collect(),
        supervisor_pid: None,
        agent: request.agent.clone(),
        held_back: Vec::new(),
        logs_complete: None,
        logs_error: None,
        snapshots: 0,
        snapshot_error: None,
    };
    store.create(&record)?;
    match crate::RunAudit::open(store, &id) {
        Ok(audit) => audit.record(
            "run_started",
            serde_json::json!({
                "name": record.name,
                "command": record.command,
                "workspace": record.workspace,
                "image": record.image,
                "config_file": request.config_file,
                "config_sha256": request.config_hash,
                "grants": request.egress.grants,
                "policy": request.egress.policy,
                "env": record.env_keys,
                "detached": record.detached,
            }),
        ),
        Err(e) => tracing::warn!(error = %e, "the run has no audit log"),
    }
    rollback.run = Some((store.clone(), id.clone()));
    // The pre-run snapshot is taken on a thread of its own while the container is made:
    // nothing touches the workspace until the container starts, and only the supervisor
    // starts it, after this function has returned, so the snapshot holds the workspace as
    // it was before the run, and its git processes (tens of ms) no longer delay the start.
    let pre_run = match &request.snapshots {
        Some(snapshot_plan) => {
            store.save_snapshot_plan(&id, snapshot_plan)?;
            snapshot_plan.pre_run.then(|| {
                let (store, id, workspace, snapshot_plan) = (
                    store.clone(),
                    id.clone(),
                    workspace.clone(),
                    snapshot_plan.clone(),
                );
                tokio::task::spawn_blocking(move || {
                    let started = Instant::now();
                    crate::take_snapshot(
                        &store,
                        &id,
                        &workspace,
                        &snapshot_plan,
                        moat_snapshot::Trigger::PreRun,
                        None,
                    )
                    .map(|meta| (meta, started.elapsed().as_secs_f64()))
                })
            })
        }
        None => None,
    };
    let created = make_container(
        runtime,
        store,
        request,
        plan,
        &id,
        &workspace,
        env,
        &mut *rollback,
    )
    .await;
    if let Some(pre_run) = pre_run {
        match pre_run.await {
            Ok(Ok((meta, seconds))) => on_event(PrepareEvent::SnapshotTaken {
                id: meta.id,
                files: meta.files,
                seconds,
            }),
            Ok(Err(e)) => on_event(PrepareEvent::SnapshotFailed {
                hint: e.hint(),
                error: e.to_string(),
            }),
            Err(e) => on_event(PrepareEvent::SnapshotFailed {
                hint: None,
                error: format!("the snapshot's thread failed: {e}"),
            }),
        }
    }
    let container_id = created?;
    let record = store.update(&id, |r| r.container_id = Some(container_id))?;
    Ok(record)
}

/// The run's files, mounts and container, from its prepared request: everything of the
/// launch that can happen while the pre-run snapshot is taken.
#[allow(clippy::too_many_arguments)]
async fn make_container(
    runtime: &impl Runtime,
    store: &RunStore,
    request: &RunRequest,
    plan: &moat_image::BuildPlan,
    id: &RunId,
    workspace: &std::path::Path,
    mut env: Vec<(String, String)>,
    rollback: &mut Rollback,
) -> Result<String, RunError> {
    let id = id.clone();
    let workspace = workspace.to_path_buf();
    store.save_dockerfile(&id, &plan.dockerfile)?;
    store.save_egress(&id, &request.egress, &request.proxy_token)?;
    let (network_mode, proxy_mount, proxy_env) =
        crate::egress::container_egress(store, &id, &request.proxy_token);
    crate::host_paths::still_as_checked(&request.mounts)?;
    let protected: Vec<String> = crate::DEFAULT_PROTECTED
        .iter()
        .map(|p| (*p).to_owned())
        .chain(crate::protect::git_file_controls(&workspace))
        .chain(request.protect.iter().cloned())
        .collect();
    let protection = crate::protect::plan(
        &workspace,
        &protected,
        request
            .config_file
            .as_slice()
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice(),
    )
    .map_err(|e| RunError::io(&workspace, e))?;
    store.save_protection(&id, &protection)?;
    env.extend(proxy_env);
    let ssh_mounts = match &request.ssh {
        Some(settings) => {
            store.save_ssh(&id, settings)?;
            let (mounts, ssh_env) = crate::ssh::container_ssh(store, &id);
            env.extend(ssh_env);
            mounts
        }
        None => Vec::new(),
    };
    let home_mount = if request.home_files.is_empty() {
        None
    } else {
        let dir = store.run_dir(&id).join("home");
        write_home_files(&dir, &request.home_files)?;
        env.push((
            "MOAT_HOME_INIT".to_owned(),
            CONTAINER_HOME_INIT_DIR.to_owned(),
        ));
        Some(BindMount {
            source: dir.display().to_string(),
            target: CONTAINER_HOME_INIT_DIR.to_owned(),
            read_only: true,
        })
    };

    let seed_mount = if request.seed.is_empty() {
        None
    } else {
        let dir = store.run_dir(&id).join("seed");
        crate::seed::write_seed(&dir, &request.seed)?;
        Some(BindMount {
            source: dir.display().to_string(),
            target: crate::CONTAINER_SEED_DIR.to_owned(),
            read_only: true,
        })
    };

    // stdin: interactive runs keep it open across attaches; attached runs pass the
    // caller's stdin and close it at its end (like `docker run -i`); detached
    // non-interactive runs get none.
    let open_stdin = request.interactive || (!request.detach && !request.no_stdin);
    let container = ContainerSpec {
        name: id.to_string(),
        image: plan.tag.clone(),
        cmd: (!request.command.is_empty()).then(|| request.command.clone()),
        env,
        working_dir: WORKSPACE_DIR.to_owned(),
        user: None,
        mounts: std::iter::once(BindMount {
            source: workspace.display().to_string(),
            target: WORKSPACE_DIR.to_owned(),
            read_only: false,
        })
        .chain(protection.mounts(&workspace))
        .chain(request.mounts.as_slice().iter().cloned())
        .chain(std::iter::once(proxy_mount))
        .chain(ssh_mounts)
        .chain(home_mount)
        .chain(seed_mount)
        .collect(),
        network_mode: Some(network_mode),
        memory_mb: Some(request.memory_mb),
        cpus: request.cpus,
        pids_limit: Some(request.pids_limit),
        // Nothing in a run needs privileges: moat-init and the command run as moatuser,
        // so a setuid binary planted in the image must not elevate, and no capability
        // is kept for it to use.
        no_new_privileges: true,
        drop_all_capabilities: true,
        tty: request.interactive,
        open_stdin,
        stdin_once: open_stdin && !request.interactive,
        run_id: id.to_string(),
    };
    // Registered by name before the call: a Ctrl-C while the daemon creates the container
    // drops this future before its id comes back, and the container must still go. (The
    // name is the new run's id, so it names no one else's container.)
    rollback.container = Some(container.name.clone());
    let container_id = runtime.create_container(&container).await?;
    rollback.container = Some(container_id.clone());
    Ok(container_id)
}

/// Whether `path` stays below the directory it is joined to: relative, and only plain
/// names (no `..`, no `.`, no root).
pub(crate) fn plain_relative(path: &str) -> bool {
    !path.is_empty()
        && std::path::Path::new(path)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}

/// Write `files` under `dir`, readable by the container user (whose UID may differ from
/// the host user's), refusing paths that would leave `dir`.
pub(crate) fn write_home_files(dir: &std::path::Path, files: &[HomeFile]) -> Result<(), RunError> {
    use std::os::unix::fs::PermissionsExt;
    for file in files {
        let relative = std::path::Path::new(&file.path);
        if !plain_relative(&file.path) {
            return Err(RunError::File {
                path: file.path.clone().into(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "a home file needs a plain relative path",
                ),
            });
        }
        let path = dir.join(relative);
        let parent = path.parent().expect("a joined path has a parent");
        fs_err::create_dir_all(parent).map_err(RunError::Io)?;
        fs_err::write(&path, &file.contents).map_err(RunError::Io)?;
        fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
            .map_err(RunError::Io)?;
    }
    // Directories the container user can enter (the run's directory itself is private).
    for entry in walk_dirs(dir) {
        fs_err::set_permissions(&entry, std::fs::Permissions::from_mode(0o755))
            .map_err(RunError::Io)?;
    }
    Ok(())
}

fn walk_dirs(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_owned()];
    let mut i = 0;
    while i < out.len() {
        if let Ok(entries) = fs_err::read_dir(&out[i]) {
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    out.push(entry.path());
                }
            }
        }
        i += 1;
    }
    out
}

/// Find the image in the cache, or build it (always when `rebuild`).
pub async fn ensure_image(
    runtime: &impl Runtime,
    plan: &moat_image::BuildPlan,
    rebuild: bool,
    build_network: Option<&str>,
    home: Option<&std::path::Path>,
    on_event: &mut (dyn FnMut(PrepareEvent) + Send),
) -> Result<(), RunError> {
    if rebuild {
        runtime.remove_image(&plan.tag).await?;
    } else if runtime.image_exists(&plan.tag).await? {
        on_event(PrepareEvent::ImageCached {
            tag: plan.tag.clone(),
        });
        return Ok(());
    }
    on_event(PrepareEvent::BuildStarted {
        tag: plan.tag.clone(),
    });
    let started = Instant::now();
    let options = BuildOptions {
        no_cache: rebuild,
        network_mode: build_network.map(str::to_owned),
        labels: home
            .map(|home| {
                (
                    moat_container::HOME_LABEL.to_owned(),
                    home.display().to_string(),
                )
            })
            .into_iter()
            .collect(),
    };
    let mut events = std::pin::pin!(runtime.build_image(&plan.tag, plan.context.clone(), &options));
    while let Some(event) = events.next().await {
        on_event(PrepareEvent::Build(event?));
    }
    // The classic builder reports some failures only by not tagging.
    if !runtime.image_exists(&plan.tag).await? {
        return Err(RunError::Runtime(moat_container::RuntimeError::Build {
            step: "the last step".into(),
            message: "the build ended without producing the image".into(),
            output: Vec::new(),
        }));
    }
    on_event(PrepareEvent::BuildFinished {
        tag: plan.tag.clone(),
        seconds: started.elapsed().as_secs_f64(),
    });
    Ok(())
}

/// The workspace as an absolute, symlink-free directory path.
fn check_workspace(path: &std::path::Path) -> Result<PathBuf, RunError> {
    let workspace_error = |reason: &str| RunError::Workspace {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let canonical = match fs_err::canonicalize(path) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(workspace_error("does not exist"));
        }
        Err(e) => return Err(workspace_error(&format!("cannot be read: {e}"))),
    };
    if !canonical.is_dir() {
        return Err(workspace_error("is not a directory"));
    }
    Ok(canonical)
}

/// The given name (checked) or a random one; never a name a running run already has.
/// The run's name: the one asked for, which no existing run may hold (a finished holder
/// is destroyed first with `replace`), or a random one no existing run holds.
async fn choose_name(
    runtime: &impl Runtime,
    store: &RunStore,
    requested: Option<&str>,
    replace: bool,
) -> Result<String, RunError> {
    let runs = store.list()?;
    let Some(name) = requested else {
        loop {
            let name = names::random_name();
            if !runs.iter().any(|r| r.name == name) {
                return Ok(name);
            }
        }
    };
    names::validate_name(name).map_err(RunError::InvalidName)?;
    let holders: Vec<&RunRecord> = runs.iter().filter(|r| r.name == name).collect();
    if let Some(active) = holders.iter().find(|r| r.state.is_active()) {
        return Err(RunError::NameInUse {
            name: name.to_owned(),
            id: active.id.to_string(),
        });
    }
    match holders.first() {
        None => {}
        Some(holder) if !replace => {
            return Err(RunError::NameTaken {
                name: name.to_owned(),
                id: holder.id.to_string(),
                state: holder.state_label(),
            });
        }
        Some(_) => {
            for holder in &holders {
                crate::destroy_run(runtime, store, holder, false).await?;
                if holder.snapshots > 0 {
                    crate::open_store(store, &holder.workspace, moat_snapshot::Rules::default())?
                        .forget_run(holder.id.as_str())?;
                }
                tracing::info!(id = %holder.id, %name, "replaced the finished run of that name");
            }
        }
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use moat_container::fake::{Call, CallKind, FakeRuntime, FakeStatus, daemon_error};

    use super::*;
    use crate::test_support::TestRun;

    fn step() -> BuildEvent {
        BuildEvent::Step {
            index: 1,
            total: 1,
            instruction: "FROM debian:bookworm-slim".into(),
        }
    }

    /// Prepare `request` the way `moat run` does: on failure, undo what was made.
    async fn prepare(
        fake: &FakeRuntime,
        run: &TestRun,
        request: &RunRequest,
    ) -> (Result<RunRecord, RunError>, Vec<PrepareEvent>) {
        let mut events = Vec::new();
        let mut rollback = Rollback::default();
        let result = prepare_run(fake, &run.store, request, &mut rollback, &mut |e| {
            events.push(e)
        })
        .await;
        if result.is_err() {
            rollback.undo(fake).await;
        }
        (result, events)
    }

    /// Nothing of the run is left: no container, no run directory.
    fn assert_nothing_left(fake: &FakeRuntime, run: &TestRun) {
        assert_eq!(fake.containers(), vec![], "a container was left behind");
        assert_eq!(
            run.run_dirs(),
            Vec::<PathBuf>::new(),
            "a run directory was left"
        );
    }

    fn created_spec(fake: &FakeRuntime) -> ContainerSpec {
        fake.calls()
            .into_iter()
            .find_map(|c| match c {
                Call::CreateContainer { spec } => Some(spec),
                _ => None,
            })
            .expect("a container was created")
    }

    #[tokio::test]
    async fn prepare_builds_a_missing_image_and_creates_a_hardened_container() {
        let run = TestRun::new();
        let ws = run.workspace.path();
        fs_err::create_dir_all(ws.join(".git/hooks")).unwrap();
        fs_err::write(ws.join(".git/config"), "[core]\n").unwrap();
        fs_err::write(ws.join("moat.yaml"), "{}\n").unwrap();
        let mut request = run.request();
        request.command = vec!["echo".into(), "hi".into()];
        request.env = vec![("FOO".into(), "bar".into())];
        request.memory_mb = 2048;
        request.pids_limit = 512;
        request.config_file = Some("moat.yaml".into());
        let plan = request.image.plan().clone();
        let fake = FakeRuntime::new();
        fake.set_build_output(vec![step()]);

        let (record, events) = prepare(&fake, &run, &request).await;
        let record = record.unwrap();

        assert_eq!(
            fake.kinds(),
            [
                CallKind::ImageExists,
                CallKind::BuildImage,
                CallKind::ImageExists,
                CallKind::CreateContainer
            ]
        );
        assert_eq!(
            fake.calls()[1],
            Call::BuildImage {
                tag: plan.tag.clone(),
                // The image says which MOAT_HOME built it (`moat prune` goes by that).
                options: BuildOptions {
                    labels: vec![(
                        moat_container::HOME_LABEL.to_owned(),
                        run.store.home().root().display().to_string(),
                    )],
                    ..BuildOptions::default()
                },
                context: plan.context.clone(),
            }
        );
        assert!(matches!(
            events.as_slice(),
            [
                PrepareEvent::BuildStarted { .. },
                PrepareEvent::Build(BuildEvent::Step { .. }),
                PrepareEvent::BuildFinished { .. }
            ]
        ));

        let spec = created_spec(&fake);
        let id = record.id.to_string();
        assert_eq!(spec.name, id);
        assert_eq!(spec.run_id, id);
        assert_eq!(spec.image, plan.tag);
        assert_eq!(spec.cmd, Some(vec!["echo".to_owned(), "hi".to_owned()]));
        assert_eq!(spec.working_dir, WORKSPACE_DIR);
        // The hardening every run gets.
        assert!(spec.no_new_privileges);
        assert!(spec.drop_all_capabilities);
        assert_eq!(spec.pids_limit, Some(512));
        assert_eq!(spec.memory_mb, Some(2048));
        assert_eq!(spec.network_mode.as_deref(), Some("none"));
        let mount = |target: &str| {
            spec.mounts
                .iter()
                .find(|m| m.target == target)
                .unwrap_or_else(|| panic!("no mount at {target}: {:#?}", spec.mounts))
                .clone()
        };
        let ws = ws.display().to_string();
        assert_eq!(
            mount(WORKSPACE_DIR),
            BindMount {
                source: ws.clone(),
                target: WORKSPACE_DIR.into(),
                read_only: false
            }
        );
        assert_eq!(
            mount(crate::CONTAINER_PROXY_DIR),
            BindMount {
                source: run.store.proxy_dir(&record.id).display().to_string(),
                target: crate::CONTAINER_PROXY_DIR.into(),
                read_only: true
            }
        );
        for path in [".git/hooks", ".git/config", "moat.yaml"] {
            let m = mount(&format!("{WORKSPACE_DIR}/{path}"));
            assert_eq!(m.source, format!("{ws}/{path}"));
            assert!(m.read_only, "{path} is mounted read-only");
        }
        assert!(
            !mount(&format!("{WORKSPACE_DIR}/.git")).read_only,
            "the directory above a protected path is anchored by a mount of its own"
        );
        assert!(spec.env.contains(&("FOO".into(), "bar".into())));
        assert!(spec.env.contains(&("MOAT_RUN_ID".into(), id.clone())));

        // The record on disk names the container; the egress settings are there for the
        // supervisor.
        let container = &fake.containers()[0];
        assert_eq!(container.status, FakeStatus::Created);
        assert_eq!(record.container_id.as_deref(), Some(container.id.as_str()));
        assert_eq!(run.store.load(&record.id).unwrap(), record);
        assert_eq!(record.state, RunState::Created);
        assert_eq!(record.env_keys, ["FOO"]);
        let (egress, token) = run.store.load_egress(&record.id).unwrap();
        assert_eq!(egress, request.egress);
        assert_eq!(token.expose(), request.proxy_token.expose());
        assert!(run.store.dockerfile_path(&record.id).exists());
    }

    #[tokio::test]
    async fn a_cached_image_is_not_built() {
        let run = TestRun::new();
        let plan = run.request().image.plan().clone();
        let fake = FakeRuntime::new();
        fake.add_image(&plan.tag);
        let mut events = Vec::new();
        ensure_image(&fake, &plan, false, None, None, &mut |e| events.push(e))
            .await
            .unwrap();
        assert_eq!(fake.kinds(), [CallKind::ImageExists]);
        assert!(matches!(
            events.as_slice(),
            [PrepareEvent::ImageCached { .. }]
        ));
    }

    #[tokio::test]
    async fn rebuild_removes_the_tag_and_builds_without_the_cache() {
        let run = TestRun::new();
        let plan = run.request().image.plan().clone();
        let fake = FakeRuntime::new();
        fake.add_image(&plan.tag);
        ensure_image(&fake, &plan, true, Some("host"), None, &mut |_| {})
            .await
            .unwrap();
        assert_eq!(
            fake.kinds(),
            [
                CallKind::RemoveImage,
                CallKind::BuildImage,
                CallKind::ImageExists
            ]
        );
        let Call::BuildImage { options, .. } = &fake.calls()[1] else {
            unreachable!()
        };
        assert_eq!(
            options,
            &BuildOptions {
                no_cache: true,
                network_mode: Some("host".into()),
                labels: vec![],
            }
        );
        assert_eq!(fake.images(), [plan.tag]);
    }

    #[tokio::test]
    async fn a_build_that_leaves_no_image_fails() {
        let run = TestRun::new();
        let plan = run.request().image.plan().clone();
        let fake = FakeRuntime::new();
        fake.build_leaves_no_image();
        let e = ensure_image(&fake, &plan, false, None, None, &mut |_| {})
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                RunError::Runtime(moat_container::RuntimeError::Build { .. })
            ),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_failed_build_leaves_nothing() {
        let run = TestRun::new();
        let fake = FakeRuntime::new();
        fake.fail_on(
            CallKind::BuildImage,
            moat_container::RuntimeError::Build {
                step: "step 1/1 (FROM x)".into(),
                message: "manifest unknown".into(),
                output: vec![],
            },
        );
        let (result, _) = prepare(&fake, &run, &run.request()).await;
        assert!(matches!(
            result,
            Err(RunError::Runtime(
                moat_container::RuntimeError::Build { .. }
            ))
        ));
        assert_nothing_left(&fake, &run);
        assert_eq!(fake.images(), Vec::<String>::new());
    }

    #[tokio::test]
    async fn a_failed_create_leaves_nothing() {
        let run = TestRun::new();
        let fake = FakeRuntime::new();
        let request = run.request();
        fake.add_image(&request.image.plan().tag);
        fake.fail_on(
            CallKind::CreateContainer,
            daemon_error("creating container"),
        );
        let mut rollback = Rollback::default();
        let result = prepare_run(&fake, &run.store, &request, &mut rollback, &mut |_| {}).await;
        assert!(matches!(result, Err(RunError::Runtime(_))));
        assert_eq!(run.run_dirs().len(), 1, "the run directory was made");
        rollback.undo(&fake).await;
        assert_nothing_left(&fake, &run);
    }

    #[tokio::test]
    async fn a_failure_after_the_run_directory_leaves_nothing() {
        let run = TestRun::new();
        let fake = FakeRuntime::new();
        let mut request = run.request();
        fake.add_image(&request.image.plan().tag);
        request.home_files = vec![HomeFile {
            path: "../outside".into(),
            contents: b"x".to_vec(),
        }];
        let (result, _) = prepare(&fake, &run, &request).await;
        assert!(matches!(result, Err(RunError::File { .. })));
        assert!(!fake.kinds().contains(&CallKind::CreateContainer));
        assert_nothing_left(&fake, &run);
    }

    #[tokio::test]
    async fn ctrl_c_during_the_build_leaves_nothing() {
        let run = TestRun::new();
        let fake = FakeRuntime::new();
        fake.hang_on(CallKind::BuildImage);
        let request = run.request();
        let mut rollback = Rollback::default();
        let mut on_event = |_| {};
        // As `moat run` does: the preparation is dropped when Ctrl-C wins the race.
        tokio::select! {
            _ = prepare_run(&fake, &run.store, &request, &mut rollback, &mut on_event) => {
                panic!("the preparation finished past a hung build")
            }
            () = fake.hung() => {}
        }
        rollback.undo(&fake).await;
        assert_nothing_left(&fake, &run);
    }

    #[tokio::test]
    async fn ctrl_c_while_the_daemon_creates_the_container_leaves_nothing() {
        let run = TestRun::new();
        let fake = FakeRuntime::new();
        let request = run.request();
        fake.add_image(&request.image.plan().tag);
        fake.hang_on(CallKind::CreateContainer);
        let mut rollback = Rollback::default();
        let mut on_event = |_| {};
        tokio::select! {
            _ = prepare_run(&fake, &run.store, &request, &mut rollback, &mut on_event) => {
                panic!("the preparation finished past a hung create")
            }
            () = fake.hung() => {}
        }
        assert_eq!(fake.containers().len(), 1, "the daemon made the container");
        rollback.undo(&fake).await;
        assert_nothing_left(&fake, &run);
    }

    #[tokio::test]
    async fn two_runs_asking_for_one_name_at_once_start_one() {
        let run = TestRun::new();
        let fake = FakeRuntime::new();
        let mut first = run.request();
        first.name = Some("same".into());
        let mut second = run.request();
        second.name = Some("same".into());
        fake.add_image(&first.image.plan().tag);
        // The first holds the name while the daemon creates its container.
        fake.hang_on(CallKind::CreateContainer);
        let mut rollback = Rollback::default();
        let mut second_rollback = Rollback::default();
        let mut quiet = |_| {};
        let mut quiet_too = |_| {};
        let second_result = {
            let first_run = prepare_run(&fake, &run.store, &first, &mut rollback, &mut quiet);
            let second_run = prepare_run(
                &fake,
                &run.store,
                &second,
                &mut second_rollback,
                &mut quiet_too,
            );
            tokio::pin!(second_run);
            tokio::select! {
                biased;
                _ = first_run => panic!("the first preparation finished past a hung create"),
                _ = &mut second_run => panic!("the second run did not wait for the name"),
                () = fake.hung() => {}
            }
            // The first is given up (its lock goes with it); the second finds the name
            // taken.
            second_run.await
        };
        let e = second_result.unwrap_err();
        assert!(matches!(e, RunError::NameInUse { .. }), "{e}");
        rollback.undo(&fake).await;
        second_rollback.undo(&fake).await;
        assert_nothing_left(&fake, &run);
    }

    #[tokio::test]
    async fn a_name_a_finished_run_holds_is_refused_unless_replaced() {
        let run = TestRun::new();
        let fake = FakeRuntime::new();
        let mut request = run.request();
        request.name = Some("dup".into());
        let first = run.prepare(&fake, &request).await;
        // While the first is active, even `replace` does not take its name.
        request.replace = true;
        let mut rollback = Rollback::default();
        let e = prepare_run(&fake, &run.store, &request, &mut rollback, &mut |_| {})
            .await
            .unwrap_err();
        assert!(matches!(e, RunError::NameInUse { .. }), "{e}");
        run.store
            .update(&first.id, |r| {
                r.state = RunState::Exited;
                r.exit_code = Some(0);
            })
            .unwrap();
        request.replace = false;
        let e = prepare_run(&fake, &run.store, &request, &mut rollback, &mut |_| {})
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("the name `dup` belongs to run {}, exited (0)", first.id)
        );
        assert!(e.hint().unwrap().contains("--replace"), "{:?}", e.hint());
        request.replace = true;
        let second = prepare_run(&fake, &run.store, &request, &mut rollback, &mut |_| {})
            .await
            .unwrap();
        rollback.disarm();
        let runs = run.store.list().unwrap();
        assert_eq!(
            runs.iter().map(|r| &r.id).collect::<Vec<_>>(),
            [&second.id],
            "the older run is destroyed"
        );
        assert_eq!(second.name, "dup");
    }

    #[tokio::test]
    async fn a_run_waits_while_another_builds_its_image() {
        let run = TestRun::new();
        let fake = FakeRuntime::new();
        let request = run.request();
        fake.hang_on(CallKind::BuildImage);
        let mut rollback = Rollback::default();
        let mut second_rollback = Rollback::default();
        let mut quiet = |_| {};
        let mut events = Vec::new();
        let builds_while_waiting = {
            let mut record_events = |e: PrepareEvent| events.push(e);
            let first_run = prepare_run(&fake, &run.store, &request, &mut rollback, &mut quiet);
            let second_run = prepare_run(
                &fake,
                &run.store,
                &request,
                &mut second_rollback,
                &mut record_events,
            );
            tokio::pin!(second_run);
            tokio::select! {
                biased;
                _ = first_run => panic!("the first preparation finished past a hung build"),
                _ = &mut second_run => panic!("the second run did not wait for the build"),
                () = fake.hung() => {}
            }
            fake.kinds()
                .into_iter()
                .filter(|k| *k == CallKind::BuildImage)
                .count()
        };
        // While the first builds, the second waits instead of building the same image.
        assert_eq!(builds_while_waiting, 1, "{:?}", fake.kinds());
        assert!(
            matches!(events.first(), Some(PrepareEvent::WaitingForBuild { .. })),
            "{events:?}"
        );
        rollback.undo(&fake).await;
        second_rollback.undo(&fake).await;
    }

    #[test]
    fn workspace_must_be_an_existing_directory() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        fs_err::write(&file, b"").unwrap();
        assert!(check_workspace(dir.path()).is_ok());
        let e = check_workspace(&file).unwrap_err().to_string();
        assert!(e.ends_with("is not a directory"), "{e}");
        let e = check_workspace(&dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("does not exist"), "{e}");
    }
}
