//! Acting on existing runs: is its supervisor alive, what is its real state, stop, destroy.

use moat_container::Runtime;

use crate::{RunError, RunRecord, RunState, RunStore};

/// Whether the run's supervisor process still exists. A recycled pid is told apart by its
/// command line, which names the run.
pub fn supervisor_alive(record: &RunRecord) -> bool {
    let Some(pid) = record.supervisor_pid else {
        return false;
    };
    let Ok(pid_i32) = i32::try_from(pid) else {
        return false;
    };
    if nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid_i32), None).is_err() {
        return false;
    }
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) => String::from_utf8_lossy(&cmdline).contains(record.id.as_str()),
        // No procfs (macOS): the signal check above is all there is.
        Err(_) => true,
    }
}

/// Bring a record in line with reality. A run recorded as active whose supervisor is
/// gone is checked against Docker: a finished container gives the real exit code, a
/// missing one means the run failed. The corrected record is saved and returned.
pub async fn reconcile(
    runtime: &impl Runtime,
    store: &RunStore,
    record: RunRecord,
) -> Result<RunRecord, RunError> {
    if record.state.is_final() || supervisor_alive(&record) {
        return Ok(record);
    }
    let Some(container) = record.container_id.clone() else {
        // Never got as far as a container: whoever made it died.
        return store.update(&record.id, |r| {
            r.state = RunState::Failed;
            r.error = Some("moat stopped before the container was created".into());
        });
    };
    match runtime.container_state(&container).await? {
        Some(state) if state.running => Ok(record),
        Some(state) if state.status == "created" => store.update(&record.id, |r| {
            r.state = RunState::Failed;
            r.error = Some("the run's supervisor ended before starting the container".into());
        }),
        Some(state) => {
            // The supervisor died before its end-of-run check: do it now.
            if let Err(e) = store.hold_back_changes(&record) {
                tracing::warn!(error = %e, "checking the protected paths failed");
            }
            let stopped = store.stop_requested(&record.id);
            let updated = store.update(&record.id, |r| {
                r.state = if stopped {
                    RunState::Stopped
                } else {
                    RunState::Exited
                };
                r.exit_code = state.exit_code;
                r.finished_at = Some(
                    state
                        .finished_at
                        .as_deref()
                        .and_then(|t| t.parse().ok())
                        .unwrap_or_else(jiff::Timestamp::now),
                );
            })?;
            if !updated.keep {
                runtime.remove_container(&container, true).await?;
            }
            Ok(updated)
        }
        None => store.update(&record.id, |r| {
            r.state = RunState::Failed;
            r.error = Some("the container disappeared while moat was not watching".into());
            r.finished_at = Some(jiff::Timestamp::now());
        }),
    }
}

/// Stop an active run: SIGTERM, then SIGKILL after the grace period. The supervisor
/// records the end as `stopped`; without a supervisor the record is fixed here.
pub async fn stop_run(
    runtime: &impl Runtime,
    store: &RunStore,
    record: &RunRecord,
) -> Result<RunRecord, RunError> {
    if record.state.is_final() {
        return Ok(record.clone());
    }
    store.request_stop(&record.id)?;
    if let Some(container) = &record.container_id {
        runtime
            .stop_container(container, crate::STOP_GRACE_SECS)
            .await?;
    }
    wait_for_supervisor(runtime, store, record).await
}

/// Wait until the run's supervisor has finished with it (record final, container removed,
/// process gone), then return the record; after a while, or without a supervisor, ask
/// Docker instead.
pub async fn wait_for_supervisor(
    runtime: &impl Runtime,
    store: &RunStore,
    record: &RunRecord,
) -> Result<RunRecord, RunError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let current = store.load(&record.id)?;
        let alive = supervisor_alive(&current);
        if !alive || std::time::Instant::now() > deadline {
            return reconcile(runtime, store, current).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

/// Remove a run: its container (if kept) and its directory. A running run is refused
/// unless `force`, which stops it first.
pub async fn destroy_run(
    runtime: &impl Runtime,
    store: &RunStore,
    record: &RunRecord,
    force: bool,
) -> Result<(), RunError> {
    let record = reconcile(runtime, store, record.clone()).await?;
    if record.state.is_active() {
        if !force {
            return Err(RunError::StillRunning {
                id: record.id.to_string(),
            });
        }
        stop_run(runtime, store, &record).await?;
    }
    if let Some(container) = &record.container_id {
        runtime.remove_container(container, true).await?;
    }
    store.delete(&record.id)
}
