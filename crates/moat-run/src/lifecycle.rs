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
    match fs_err::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) => String::from_utf8_lossy(&cmdline).contains(record.id.as_str()),
        // No procfs (macOS): the signal check above is all there is.
        Err(_) => true,
    }
}

/// Bring a record in line with reality. A run recorded as active whose supervisor is
/// gone is checked against Docker: a finished container gives the real exit code, once
/// the rest of its log is copied into `logs.jsonl` (from where the supervisor stopped);
/// a missing one means the run failed, and its log says whether it is whole. The
/// corrected record is saved and returned.
///
/// A run whose log another process is copying right now (`moat logs -f` of a run without
/// supervisor), or whose copy failed, is returned as it is: the next command tries again,
/// and the container stays until its log is copied.
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
            // The rest of the log first: removing the container removes Docker's copy.
            let Some(lock) = crate::CopyLock::try_take(store, &record.id)? else {
                return Ok(record);
            };
            let copied = crate::copy_logs(
                runtime,
                store,
                &record.id,
                &container,
                crate::Follow::No,
                &lock,
            )
            .await;
            let (logs_complete, logs_error) = match copied {
                Ok(_) => (true, None),
                Err(RunError::Logs(e @ crate::LogError::Vanished { .. })) => {
                    (false, Some(e.to_string()))
                }
                Err(e) => {
                    tracing::warn!(id = %record.id, error = %e, "copying the rest of the log failed; trying again later");
                    return Ok(record);
                }
            };
            // The supervisor died before its end-of-run check: do it now.
            // Only what changed while the container ran counts (reconciliation may come
            // days later, after the user's own changes).
            let until = state
                .finished_at
                .as_deref()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .filter(|t| *t >= record.created_at);
            if let Err(e) = store.hold_back_changes(&record, until) {
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
                r.logs_complete = Some(logs_complete);
                r.logs_error.clone_from(&logs_error);
            })?;
            store.forget_protection(&record.id);
            if !updated.keep {
                runtime.remove_container(&container, true).await?;
            }
            Ok(updated)
        }
        None => {
            let copied = crate::logs::is_copied(store, &record.id);
            store.update(&record.id, |r| {
                r.state = RunState::Failed;
                r.error = Some("the container disappeared while moat was not watching".into());
                r.finished_at = Some(jiff::Timestamp::now());
                r.logs_complete = Some(copied);
                if !copied {
                    r.logs_error =
                        Some("the container disappeared before its whole log was copied".into());
                }
            })
        }
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
    if let Ok(audit) = crate::RunAudit::open(store, &record.id) {
        audit.record("stop_requested", serde_json::json!({}));
    }
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

/// Remove a run whose record cannot be read: its container (named by the run's id, as
/// every run's container is; stopped first), then its directory.
pub async fn destroy_damaged(
    runtime: &impl Runtime,
    store: &RunStore,
    id: &moat_home::RunId,
) -> Result<(), RunError> {
    runtime.remove_container(id.as_str(), true).await?;
    store.delete(id)
}

#[cfg(test)]
mod tests {
    use moat_container::fake::{Call, CallKind, FakeRuntime, FakeStatus};
    use moat_home::MoatHome;

    use super::*;
    use crate::test_support::record;

    /// A store holding one active run whose supervisor is gone (no pid), with the
    /// container `container` (an id in `fake`, or one that does not exist).
    fn orphan(container: Option<&str>, keep: bool) -> (tempfile::TempDir, RunStore, RunRecord) {
        let dir = tempfile::tempdir().unwrap();
        let store = RunStore::new(MoatHome::at(dir.path().to_owned()));
        let mut r = record("run_aaaaaaaaaaaa", "a", 100);
        r.state = RunState::Running;
        r.container_id = container.map(str::to_owned);
        r.keep = keep;
        store.create(&r).unwrap();
        (dir, store, r)
    }

    #[tokio::test]
    async fn reconcile_records_the_exit_of_a_container_nobody_watched() {
        let fake = FakeRuntime::new();
        let id = fake.add_container("run_aaaaaaaaaaaa", FakeStatus::Exited(3));
        let (_dir, store, r) = orphan(Some(&id), false);
        let after = reconcile(&fake, &store, r).await.unwrap();
        assert_eq!(after.state, RunState::Exited);
        assert_eq!(after.exit_code, Some(3));
        assert_eq!(
            after.finished_at,
            Some("2026-01-02T03:04:05.000000006Z".parse().unwrap()),
            "Docker's time of the end, not the time moat noticed"
        );
        assert_eq!(store.load(&after.id).unwrap(), after);
        assert_eq!(after.logs_complete, Some(true));
        // The rest of the log is copied (and checked to end where Docker's does) before
        // the container, and Docker's copy with it, is removed.
        assert_eq!(
            fake.kinds(),
            [
                CallKind::ContainerState,
                CallKind::ReadLogs,
                CallKind::ContainerState,
                CallKind::ReadLogs,
                CallKind::RemoveContainer
            ]
        );
        assert!(fake.containers().is_empty());
    }

    #[tokio::test]
    async fn reconcile_says_stopped_when_a_stop_was_requested_and_keeps_a_kept_container() {
        let fake = FakeRuntime::new();
        let id = fake.add_container("run_aaaaaaaaaaaa", FakeStatus::Exited(143));
        let (_dir, store, r) = orphan(Some(&id), true);
        store.request_stop(&r.id).unwrap();
        let after = reconcile(&fake, &store, r).await.unwrap();
        assert_eq!(after.state_label(), "stopped (143)");
        assert_eq!(fake.containers().len(), 1, "a kept container stays");
    }

    #[tokio::test]
    async fn reconcile_fails_a_run_whose_container_is_gone() {
        let fake = FakeRuntime::new();
        let (_dir, store, r) = orphan(Some("vanished"), false);
        let after = reconcile(&fake, &store, r).await.unwrap();
        assert_eq!(after.state, RunState::Failed);
        assert!(after.error.unwrap().contains("disappeared"));
        assert!(after.finished_at.is_some());
    }

    #[tokio::test]
    async fn reconcile_fails_a_run_whose_container_never_started_or_never_existed() {
        let fake = FakeRuntime::new();
        let id = fake.add_container("run_aaaaaaaaaaaa", FakeStatus::Created);
        let (_dir, store, r) = orphan(Some(&id), false);
        let after = reconcile(&fake, &store, r).await.unwrap();
        assert_eq!(after.state, RunState::Failed);
        assert!(after.error.unwrap().contains("before starting"));

        let fake = FakeRuntime::new();
        let (_dir, store, r) = orphan(None, false);
        let after = reconcile(&fake, &store, r).await.unwrap();
        assert_eq!(after.state, RunState::Failed);
        assert_eq!(fake.calls(), [], "nothing to ask Docker about");
    }

    #[tokio::test]
    async fn reconcile_leaves_a_running_container_and_a_finished_run_alone() {
        let fake = FakeRuntime::new();
        let id = fake.add_container("run_aaaaaaaaaaaa", FakeStatus::Running);
        let (_dir, store, r) = orphan(Some(&id), false);
        let after = reconcile(&fake, &store, r.clone()).await.unwrap();
        assert_eq!(after, r);
        assert_eq!(store.load(&r.id).unwrap(), r);
        assert_eq!(fake.containers().len(), 1);

        let fake = FakeRuntime::new();
        let (_dir, store, mut r) = orphan(Some("whatever"), false);
        r = store
            .update(&r.id, |r| {
                r.state = RunState::Exited;
                r.exit_code = Some(0);
            })
            .unwrap();
        assert_eq!(reconcile(&fake, &store, r.clone()).await.unwrap(), r);
        assert_eq!(fake.calls(), []);
    }

    #[tokio::test]
    async fn stop_run_stops_the_container_and_records_the_stop() {
        let fake = FakeRuntime::new();
        let id = fake.add_container("run_aaaaaaaaaaaa", FakeStatus::Running);
        let (_dir, store, r) = orphan(Some(&id), false);
        let after = stop_run(&fake, &store, &r).await.unwrap();
        assert_eq!(after.state_label(), "stopped (143)");
        assert!(store.stop_requested(&r.id));
        assert_eq!(
            fake.calls()[0],
            Call::StopContainer {
                id: id.clone(),
                grace_secs: crate::STOP_GRACE_SECS
            }
        );
        assert!(fake.containers().is_empty(), "removed once recorded");
    }

    #[tokio::test]
    async fn stop_run_leaves_a_finished_run_alone() {
        let fake = FakeRuntime::new();
        let (_dir, store, r) = orphan(Some("c"), false);
        let r = store.update(&r.id, |r| r.state = RunState::Failed).unwrap();
        assert_eq!(stop_run(&fake, &store, &r).await.unwrap(), r);
        assert!(!store.stop_requested(&r.id));
        assert_eq!(fake.calls(), []);
    }

    #[tokio::test]
    async fn destroy_run_removes_a_kept_container_and_the_run_directory() {
        let fake = FakeRuntime::new();
        let id = fake.add_container("run_aaaaaaaaaaaa", FakeStatus::Exited(0));
        let (_dir, store, r) = orphan(Some(&id), true);
        let r = store
            .update(&r.id, |r| {
                r.state = RunState::Exited;
                r.exit_code = Some(0);
            })
            .unwrap();
        destroy_run(&fake, &store, &r, false).await.unwrap();
        assert!(fake.containers().is_empty());
        assert!(matches!(store.load(&r.id), Err(RunError::UnknownRun(_))));
        assert!(!store.run_dir(&r.id).exists());
    }

    #[tokio::test]
    async fn destroy_run_refuses_a_running_run_unless_forced() {
        let fake = FakeRuntime::new();
        let id = fake.add_container("run_aaaaaaaaaaaa", FakeStatus::Running);
        let (_dir, store, r) = orphan(Some(&id), false);
        let e = destroy_run(&fake, &store, &r, false).await.unwrap_err();
        assert!(matches!(e, RunError::StillRunning { .. }), "{e}");
        assert_eq!(fake.containers().len(), 1);
        assert!(store.load(&r.id).is_ok());

        destroy_run(&fake, &store, &r, true).await.unwrap();
        assert!(fake.kinds().contains(&CallKind::StopContainer));
        assert!(fake.containers().is_empty());
        assert!(!store.run_dir(&r.id).exists());
    }
}
