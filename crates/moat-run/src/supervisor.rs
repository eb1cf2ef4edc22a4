//! The supervisor: the process that owns a run from its start to its end.
//!
//! It starts the run's proxy and then the container, copies the container's log into
//! `logs.jsonl` while the command runs (in batches, see `logs::copy`), waits for the exit
//! *and* for the log to be copied to its end, however long that takes, records how the
//! run ended and removes the container (unless kept, or its log could not be copied).
//! While the run lives it also takes the workspace snapshots its plan asks for (commits,
//! idle periods, agent turns: see `snapshot_triggers`).
//! It outlives the CLI, so a detached run keeps all of this with nobody attached.

use moat_container::Runtime;
use moat_home::RunId;
use serde::{Deserialize, Serialize};

use crate::{CopyEnd, CopyLock, Follow, RunError, RunState, RunStore};

/// What the supervisor tells whoever launched it, one JSON line each on its stdout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum SupervisorEvent {
    /// The container is running.
    Started,
    /// The run is over and cleaned up.
    Finished {
        state: crate::RunState,
        exit_code: Option<i64>,
        /// Why the end could not be written to the run's record (the record and the
        /// container stay as they were, for the next moat command to put right).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unrecorded: Option<String>,
    },
    /// The run could not start.
    Failed { error: String },
}

/// Drive run `id` to its end. `emit` receives the events above as they happen; `stop`
/// resolves when the supervisor itself is asked to stop (SIGTERM), which stops the run.
pub async fn supervise<S>(
    runtime: &impl Runtime,
    store: &RunStore,
    id: &RunId,
    rules: Vec<moat_proxy::GrantRule>,
    mut emit: impl FnMut(&SupervisorEvent),
    stop: S,
) -> Result<(), RunError>
where
    S: std::future::Future<Output = ()>,
{
    let record = store.update(id, |r| r.supervisor_pid = Some(std::process::id()))?;
    let container = record
        .container_id
        .clone()
        .ok_or_else(|| RunError::UnknownRun(id.to_string()))?;
    // The log is this process's to copy for as long as it lives; nobody else holds the
    // lock of a run that has not started.
    let lock = CopyLock::try_take(store, id)?.ok_or(crate::LogError::Busy)?;

    // The audit log is best effort: a run whose log cannot be opened still runs, and
    // `moat audit verify` shows the gap.
    let audit = match crate::RunAudit::open(store, id) {
        Ok(audit) => Some(audit),
        Err(e) => {
            tracing::warn!(error = %e, "the run has no audit log");
            None
        }
    };
    // Snapshots during the run: watching starts before the container, so that its first
    // change is seen as one.
    let triggers = crate::snapshot_triggers::SnapshotTriggers::start(store, id, &record.workspace);
    let turns = triggers.as_ref().and_then(|t| t.turns());
    // The proxy first: the container's first request must find it.
    let started = match crate::egress::start_proxy(store, id, rules, audit.clone(), turns).await {
        Ok(proxy) => runtime
            .start_container(&container)
            .await
            .map(|()| proxy)
            .map_err(RunError::from),
        Err(e) => Err(e),
    };
    let proxy = match started {
        Ok(proxy) => proxy,
        Err(e) => {
            if let Some(triggers) = triggers {
                finish_snapshots(triggers).await;
            }
            let message = e.to_string();
            store.update(id, |r| {
                r.state = RunState::Failed;
                r.error = Some(message.clone());
                r.finished_at = Some(jiff::Timestamp::now());
            })?;
            if let Some(audit) = &audit {
                audit.record("run_failed", serde_json::json!({ "error": message }));
                audit.checkpoint(true);
            }
            if !record.keep {
                runtime.remove_container(&container, true).await?;
            }
            emit(&SupervisorEvent::Failed { error: message });
            return Ok(());
        }
    };
    let started_at = jiff::Timestamp::now();
    store.update(id, |r| {
        r.state = RunState::Running;
        r.started_at = Some(started_at);
    })?;
    emit(&SupervisorEvent::Started);
    let checkpoints = audit.as_ref().map(|audit| {
        audit.record(
            "container_started",
            serde_json::json!({ "container": container }),
        );
        audit.spawn_checkpoints()
    });

    // Docker keeps the whole log from the start, so following it now loses nothing. The
    // copy runs beside the wait, in this task: however the supervisor ends, it ends too.
    let copying = crate::copy_logs(runtime, store, id, &container, Follow::UntilStopped, &lock);
    let waiting = async {
        let wait = wait_through_restarts(runtime, &container);
        tokio::pin!(wait);
        tokio::select! {
            result = &mut wait => Ok(result),
            () = stop => {
                store.request_stop(id)?;
                runtime.stop_container(&container, crate::STOP_GRACE_SECS).await?;
                Ok::<_, RunError>(wait.await)
            }
        }
    };
    // Both to the end: the container is not removed before its log is copied.
    let (copied, waited) = tokio::join!(copying, waiting);
    let waited = waited?;
    // A copy that broke while the run lived (Docker gone longer than the copy's own
    // retries) is finished from Docker's log now that the container has ended.
    let copied = match copied {
        Err(e) if waited.is_ok() => {
            tracing::warn!(error = %e, "copying the log broke off; copying the rest now");
            crate::copy_logs(runtime, store, id, &container, Follow::No, &lock).await
        }
        copied => copied,
    };
    let (logs_complete, logs_error) = match copied {
        Ok(CopyEnd::Complete) => (true, None),
        Ok(CopyEnd::UpToDate) => (false, Some("the log was not followed to its end".into())),
        Err(e) => {
            tracing::warn!(error = %e, "copying the log failed");
            (false, Some(e.to_string()))
        }
    };

    // Requests still in flight get a moment; then every event is in network.jsonl.
    proxy.stop().await;
    // The last turn's and the last commit's snapshots are taken before the run is
    // recorded as over: whoever waits for the end finds them.
    if let Some(triggers) = triggers {
        finish_snapshots(triggers).await;
    }

    let (state, exit_code, error) = match waited {
        Ok(code) if store.stop_requested(id) => (RunState::Stopped, Some(code), None),
        Ok(code) => (RunState::Exited, Some(code), None),
        Err(e) => (RunState::Failed, None, Some(e.to_string())),
    };
    if let Some(checkpoints) = checkpoints {
        checkpoints.abort();
    }
    if let Some(audit) = &audit {
        audit.record(
            "run_ended",
            serde_json::json!({ "state": state.as_str(), "exit_code": exit_code, "error": error }),
        );
        audit.checkpoint(true);
    }
    // What the run left at protected paths it could not be kept from leaves the
    // workspace before anyone on the host can trip over it.
    if let Err(e) = store.hold_back_changes(&record, None) {
        tracing::warn!(error = %e, "checking the protected paths failed");
    }
    // The conversation the agent wrote to last while the run lived is the run's (a
    // `--continue` learns its ID only now; `/clear` inside starts another one).
    let written = record
        .agent
        .as_ref()
        .and_then(|a| crate::latest_session(&a.sessions_dir, Some(started_at)));
    let recorded = store.update(id, |r| {
        r.state = state;
        r.exit_code = exit_code;
        r.error = error;
        r.finished_at = Some(jiff::Timestamp::now());
        r.logs_complete = Some(logs_complete);
        r.logs_error.clone_from(&logs_error);
        if let (Some(agent), Some(written)) = (r.agent.as_mut(), written.clone()) {
            agent.session_id = Some(written);
        }
    });
    if let Err(e) = recorded {
        // A full disk, say. The container keeps what the record could not: it stays, so
        // the next moat command records the end from it once there is room again. Whoever
        // is attached still learns the command's exit code.
        emit(&SupervisorEvent::Finished {
            state,
            exit_code,
            unrecorded: Some(e.to_string()),
        });
        return Err(e);
    }
    store.forget_protection(id);
    // A log not copied to its end still is in Docker's copy: the container stays (`moat
    // destroy` removes it), unless it is gone already.
    if !record.keep && logs_complete {
        runtime.remove_container(&container, true).await?;
    }
    emit(&SupervisorEvent::Finished {
        state,
        exit_code,
        unrecorded: None,
    });
    Ok(())
}

/// Stop the snapshot watchers and wait for the snapshots still asked for, off the
/// runtime's threads (taking one runs git).
async fn finish_snapshots(triggers: crate::snapshot_triggers::SnapshotTriggers) {
    if let Err(e) = tokio::task::spawn_blocking(move || triggers.finish()).await {
        tracing::warn!(error = %e, "the snapshot worker ended badly");
    }
}

/// How long a run waits for a Docker daemon that stopped or restarted to answer again
/// before it is recorded as failed.
const DAEMON_GRACE: std::time::Duration = std::time::Duration::from_secs(300);

/// The container's exit code, waiting out a daemon that stopped or restarted meanwhile:
/// the container may outlive it (or be stopped by its restart, which the next wait then
/// reports), and a run recorded as failed while its command still runs would be untrue.
async fn wait_through_restarts(
    runtime: &impl Runtime,
    container: &str,
) -> Result<i64, moat_container::RuntimeError> {
    let mut lost_since: Option<std::time::Instant> = None;
    loop {
        match runtime.wait_container(container).await {
            Err(e) if e.is_lost() => {
                let since = match lost_since {
                    Some(since) => since,
                    None => {
                        tracing::warn!(error = %e, "Docker is gone; the run waits for it to come back");
                        *lost_since.insert(std::time::Instant::now())
                    }
                };
                if since.elapsed() >= DAEMON_GRACE {
                    return Err(e);
                }
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            done => return done,
        }
    }
}

#[cfg(test)]
mod tests {
    use moat_container::fake::{CallKind, FakeRuntime, FakeStatus, daemon_error};
    use moat_container::{LogChunk, LogStream};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::test_support::TestRun;
    use crate::{RunRecord, Stream};

    /// Supervise `record`'s run on `fake` until it ends (or `stop` resolves); return the
    /// events it emitted and the record it left.
    async fn supervise_run(
        fake: &FakeRuntime,
        run: &TestRun,
        record: &RunRecord,
        stop: impl std::future::Future<Output = ()>,
    ) -> (Vec<SupervisorEvent>, RunRecord) {
        let mut events = Vec::new();
        supervise(
            fake,
            &run.store,
            &record.id,
            vec![],
            |e| events.push(e.clone()),
            stop,
        )
        .await
        .unwrap();
        (events, run.store.load(&record.id).unwrap())
    }

    fn owned_chunk(stream: LogStream, bytes: Vec<u8>) -> LogChunk {
        LogChunk {
            timestamp: Some("2026-11-23T08:00:00Z".parse().unwrap()),
            stream,
            bytes: bytes.into(),
        }
    }

    fn chunk(stream: LogStream, text: &'static str) -> LogChunk {
        LogChunk {
            timestamp: Some("2026-11-23T08:00:00Z".parse().unwrap()),
            stream,
            bytes: text.as_bytes().into(),
        }
    }

    #[tokio::test]
    async fn a_run_is_started_logged_recorded_and_cleaned_up() {
        let run = TestRun::new();
        let fake = FakeRuntime::new();
        let record = run.prepare(&fake, &run.request()).await;
        let container = record.container_id.clone().unwrap();
        fake.set_exit_code(&container, 7);
        fake.serve_logs(vec![
            chunk(LogStream::Stdout, "hello\n"),
            chunk(LogStream::Stderr, "oops\n"),
        ]);

        let (events, after) = supervise_run(&fake, &run, &record, std::future::pending()).await;

        assert_eq!(
            events,
            [
                SupervisorEvent::Started,
                SupervisorEvent::Finished {
                    state: RunState::Exited,
                    exit_code: Some(7),
                    unrecorded: None,
                }
            ]
        );
        let kinds = fake.kinds();
        assert_eq!(
            kinds[..2],
            [CallKind::StartContainer, CallKind::FollowLogs],
            "{kinds:?}"
        );
        assert!(kinds.contains(&CallKind::WaitContainer), "{kinds:?}");
        // The container goes last, after its log was checked to be copied to its end.
        assert_eq!(kinds.last(), Some(&CallKind::RemoveContainer), "{kinds:?}");
        assert!(kinds.contains(&CallKind::ReadLogs), "{kinds:?}");
        assert!(fake.containers().is_empty(), "the container is removed");
        assert_eq!(after.state, RunState::Exited);
        assert_eq!(after.exit_code, Some(7));
        assert_eq!(after.error, None);
        assert_eq!(after.supervisor_pid, Some(std::process::id()));
        assert!(after.started_at.is_some() && after.finished_at.is_some());
        let lines = crate::read_lines(&run.store.logs_path(&record.id)).unwrap();
        let lines: Vec<_> = lines.iter().map(|l| (l.stream, l.line.as_str())).collect();
        assert_eq!(lines, [(Stream::Stdout, "hello"), (Stream::Stderr, "oops")]);
        assert_eq!(after.logs_complete, Some(true));
        // The run's proxy was started: the proxy CA exists from its first use.
        assert!(
            run.store
                .home()
                .proxy_ca_dir()
                .join(moat_proxy::CA_CERT_FILE)
                .exists()
        );
    }

    #[tokio::test]
    async fn a_kept_run_keeps_its_container() {
        let run = TestRun::new();
        let fake = FakeRuntime::new();
        let mut request = run.request();
        request.keep = true;
        let record = run.prepare(&fake, &request).await;
        let (events, after) = supervise_run(&fake, &run, &record, std::future::pending()).await;
        assert_eq!(events.len(), 2);
        assert_eq!(after.exit_code, Some(0));
        assert!(!fake.kinds().contains(&CallKind::RemoveContainer));
        let kept = fake.container(&record.container_id.unwrap()).unwrap();
        assert_eq!(kept.status, FakeStatus::Exited(0));
    }

    #[tokio::test]
    async fn a_start_failure_is_recorded_as_failed_and_the_container_removed() {
        let run = TestRun::new();
        let fake = FakeRuntime::new();
        let record = run.prepare(&fake, &run.request()).await;
        fake.fail_on(
            CallKind::StartContainer,
            daemon_error("starting container `x`"),
        );

        let (events, after) = supervise_run(&fake, &run, &record, std::future::pending()).await;

        let [SupervisorEvent::Failed { error }] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert!(error.contains("starting container"), "{error}");
        assert_eq!(after.state, RunState::Failed);
        assert_eq!(after.error.as_deref(), Some(error.as_str()));
        assert!(after.finished_at.is_some());
        assert_eq!(
            fake.kinds(),
            [CallKind::StartContainer, CallKind::RemoveContainer]
        );
        assert!(fake.containers().is_empty());
    }

    /// A request through the run's proxy socket, as the container's socat forwards it;
    /// returns the start of the answer.
    async fn request_through(socket: &std::path::Path) -> String {
        let mut stream = tokio::net::UnixStream::connect(socket).await.unwrap();
        stream
            .write_all(
                b"GET http://127.0.0.1/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                  Proxy-Authorization: Basic bW9hdDp0ZXN0LXByb3h5LXRva2Vu\r\n\
                  Connection: close\r\n\r\n",
            )
            .await
            .unwrap();
        let mut answer = vec![0; 256];
        let n = stream.read(&mut answer).await.unwrap();
        String::from_utf8_lossy(&answer[..n]).into_owned()
    }

    #[tokio::test]
    async fn a_stop_request_ends_the_run_as_stopped_and_the_proxy_serves_until_then() {
        let run = TestRun::new();
        let fake = FakeRuntime::new();
        let record = run.prepare(&fake, &run.request()).await;
        let container = record.container_id.clone().unwrap();
        fake.keep_running(&container);
        let socket = run.store.proxy_dir(&record.id).join("proxy.sock");
        let stop = {
            let fake = fake.clone();
            async move {
                let running = fake.container(&container).map(|c| c.status);
                assert_eq!(running, Some(FakeStatus::Running));
                // While the container runs, its proxy answers (and refuses the host).
                let answer = request_through(&socket).await;
                assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
            }
        };

        let (events, after) = supervise_run(&fake, &run, &record, stop).await;

        assert_eq!(
            events.last(),
            Some(&SupervisorEvent::Finished {
                state: RunState::Stopped,
                exit_code: Some(143),
                unrecorded: None,
            })
        );
        assert_eq!(after.state, RunState::Stopped);
        assert!(run.store.stop_requested(&record.id));
        assert!(
            fake.calls()
                .contains(&moat_container::fake::Call::StopContainer {
                    id: record.container_id.clone().unwrap(),
                    grace_secs: crate::STOP_GRACE_SECS
                })
        );
        assert!(fake.containers().is_empty());
        // The proxy's event is on disk by the time the run is recorded as over.
        let network = crate::read_network_log(&run.store.network_log_path(&record.id)).unwrap();
        assert_eq!(network.len(), 1, "{network:?}");
        assert!(network[0].blocked);
    }

    #[tokio::test]
    async fn a_failed_wait_is_recorded_as_failed() {
        let run = TestRun::new();
        let fake = FakeRuntime::new();
        let record = run.prepare(&fake, &run.request()).await;
        fake.fail_on(
            CallKind::WaitContainer,
            daemon_error("waiting for container"),
        );
        let (events, after) = supervise_run(&fake, &run, &record, std::future::pending()).await;
        assert_eq!(
            events.last(),
            Some(&SupervisorEvent::Finished {
                state: RunState::Failed,
                exit_code: None,
                unrecorded: None,
            })
        );
        assert!(after.error.unwrap().contains("waiting for container"));
        assert!(fake.containers().is_empty());
    }

    #[tokio::test]
    async fn a_daemon_that_went_away_is_waited_out() {
        let run = TestRun::new();
        let fake = FakeRuntime::new();
        let record = run.prepare(&fake, &run.request()).await;
        fake.set_exit_code(&record.container_id.clone().unwrap(), 3);
        fake.fail_on(
            CallKind::WaitContainer,
            moat_container::RuntimeError::Lost {
                context: "waiting for container".into(),
                reason: "the connection was reset".into(),
            },
        );
        let (events, after) = supervise_run(&fake, &run, &record, std::future::pending()).await;
        assert_eq!(
            events.last(),
            Some(&SupervisorEvent::Finished {
                state: RunState::Exited,
                exit_code: Some(3),
                unrecorded: None,
            })
        );
        assert_eq!(after.error, None);
        let waits = fake
            .kinds()
            .iter()
            .filter(|k| **k == CallKind::WaitContainer)
            .count();
        assert_eq!(waits, 2, "waited again once Docker answered");
    }

    #[tokio::test]
    async fn a_broken_log_stream_does_not_end_the_run() {
        let run = TestRun::new();
        let fake = FakeRuntime::new();
        let record = run.prepare(&fake, &run.request()).await;
        fake.serve_logs(vec![chunk(LogStream::Stdout, "before\n")]);
        fake.fail_on(CallKind::FollowLogs, daemon_error("reading logs"));
        let (_, after) = supervise_run(&fake, &run, &record, std::future::pending()).await;
        assert_eq!(after.state, RunState::Exited);
        let lines = crate::read_lines(&run.store.logs_path(&record.id)).unwrap();
        assert_eq!(lines.len(), 1, "what came before the break is kept, once");
        // The log was read again from where the break left it, to its end.
        let follows = fake
            .kinds()
            .iter()
            .filter(|k| **k == CallKind::FollowLogs)
            .count();
        assert_eq!(follows, 2);
        assert_eq!(after.logs_complete, Some(true));
        assert!(fake.containers().is_empty());
    }

    /// The supervisor dies in the middle of the output (mid-line, mid-character); the
    /// next command that reconciles the run copies the rest from Docker, from where
    /// `logs.jsonl` ends, before it removes the container.
    #[tokio::test]
    async fn after_a_supervisor_crash_reconcile_copies_the_rest_without_repeating_or_skipping() {
        let run = TestRun::new();
        let fake = FakeRuntime::new();
        let record = run.prepare(&fake, &run.request()).await;
        let container = record.container_id.clone().unwrap();
        fake.keep_running(&container);
        fake.set_exit_code(&container, 5);
        let euro = "\u{20ac}".as_bytes();
        let mut before: Vec<LogChunk> = (0..300)
            .map(|i| {
                let stream = if i % 3 == 0 {
                    LogStream::Stderr
                } else {
                    LogStream::Stdout
                };
                owned_chunk(stream, format!("line {i}\n").into_bytes())
            })
            .collect();
        let mut cut = b"unfinished ".to_vec();
        cut.extend_from_slice(&euro[..1]);
        before.push(owned_chunk(LogStream::Stdout, cut));
        let mut rest = euro[1..].to_vec();
        rest.extend_from_slice(b" done\n");
        let after_crash = vec![
            owned_chunk(LogStream::Stdout, rest),
            owned_chunk(LogStream::Stderr, b"last words\n".to_vec()),
        ];
        fake.serve_logs(before.clone());
        // Docker's stream serves what there is, then the supervisor is killed.
        fake.hang_on(CallKind::FollowLogs);
        let logs = run.store.logs_path(&record.id);
        let copied = async {
            while crate::read_lines(&logs).unwrap().len() < 301 {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        };
        tokio::select! {
            _ = supervise_run(&fake, &run, &record, std::future::pending()) => panic!("the run ended"),
            () = copied => {}
        }
        let orphan = run.store.load(&record.id).unwrap();
        assert_eq!(orphan.state, RunState::Running);
        assert!(!crate::supervisor_alive(&orphan));

        // While nobody watched, the command printed the rest and ended.
        let mut all = before.clone();
        all.extend(after_crash);
        fake.serve_logs(all);
        fake.stop_container(&container, 0).await.unwrap();
        fake.clear_calls();
        let after = crate::reconcile(&fake, &run.store, orphan).await.unwrap();

        assert_eq!(after.state_label(), "exited (5)");
        assert_eq!(after.logs_complete, Some(true));
        let kinds = fake.kinds();
        assert_eq!(kinds.last(), Some(&CallKind::RemoveContainer), "{kinds:?}");
        let lines: Vec<String> = crate::read_lines(&logs)
            .unwrap()
            .into_iter()
            .map(|l| format!("{}:{}", l.stream.as_str(), l.line))
            .collect();
        let mut expected: Vec<String> = (0..300)
            .map(|i| format!("{}:line {i}", if i % 3 == 0 { "stderr" } else { "stdout" }))
            .collect();
        expected.push("stdout:unfinished \u{20ac} done".into());
        expected.push("stderr:last words".into());
        assert_eq!(lines, expected);
    }

    /// A container removed behind moat's back takes the part of its log not copied yet
    /// with it: the record says so.
    #[tokio::test]
    async fn a_vanished_container_leaves_a_record_that_says_its_log_is_incomplete() {
        let run = TestRun::new();
        let fake = FakeRuntime::new();
        let record = run.prepare(&fake, &run.request()).await;
        let mut orphan = run
            .store
            .update(&record.id, |r| r.state = RunState::Running)
            .unwrap();
        orphan.supervisor_pid = None;
        fake.remove_container(&record.container_id.clone().unwrap(), true)
            .await
            .unwrap();
        let after = crate::reconcile(&fake, &run.store, orphan).await.unwrap();
        assert_eq!(after.state, RunState::Failed);
        assert_eq!(after.logs_complete, Some(false));
        assert!(
            after
                .logs_error
                .unwrap()
                .contains("before its whole log was copied")
        );
    }

    /// A damaged `egress.json` (or one from another moat, with a field this one does not
    /// know) must not run the container with a policy nobody chose.
    #[tokio::test]
    async fn a_damaged_or_unknown_egress_file_fails_the_run_closed() {
        let damaged: [fn(&str) -> String; 2] = [
            |_| "{ not json".to_owned(),
            |saved| {
                let mut value: serde_json::Value = serde_json::from_str(saved).unwrap();
                value["allow_everything"] = serde_json::Value::Bool(true);
                value.to_string()
            },
        ];
        for damage in damaged {
            let run = TestRun::new();
            let fake = FakeRuntime::new();
            let record = run.prepare(&fake, &run.request()).await;
            let path = run.store.run_dir(&record.id).join("egress.json");
            let saved = fs_err::read_to_string(&path).unwrap();
            fs_err::write(&path, damage(&saved)).unwrap();

            let (events, after) = supervise_run(&fake, &run, &record, std::future::pending()).await;

            assert!(
                matches!(events.as_slice(), [SupervisorEvent::Failed { .. }]),
                "{events:?}"
            );
            assert_eq!(after.state, RunState::Failed);
            let error = after.error.unwrap();
            assert!(error.contains("egress.json"), "{error}");
            assert_eq!(
                fake.kinds(),
                [CallKind::RemoveContainer],
                "the container never starts"
            );
            assert!(fake.containers().is_empty());
        }
    }

    fn plan(git_commits: bool, idle_after_seconds: Option<u64>) -> crate::SnapshotPlan {
        crate::SnapshotPlan {
            respect_gitignore: true,
            exclude: vec![],
            pre_run: true,
            git_commits,
            idle_after_seconds,
            agent_turns: true,
            max_count: 10,
            delete_initial: false,
            protected: vec![],
        }
    }

    /// Supervise a run with `plan` whose container runs until `during` (given the
    /// workspace and its snapshot store's directory) is over and `until` holds; the run's
    /// record after.
    async fn supervise_with_snapshots(
        plan: crate::SnapshotPlan,
        during: impl FnOnce(&std::path::Path, &std::path::Path),
        until: impl Fn(&RunRecord) -> bool,
    ) -> (TestRun, RunRecord) {
        let run = TestRun::new();
        let fake = FakeRuntime::new();
        let mut request = run.request();
        request.snapshots = Some(plan);
        let record = run.prepare(&fake, &request).await;
        fake.keep_running(&record.container_id.clone().unwrap());
        let workspace = record.workspace.clone();
        let store_dir = crate::store_dir(&run.store, &workspace);
        let stop = async {
            // The watchers took their baselines before the container started.
            during(&workspace, &store_dir);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            while !until(&run.store.load(&record.id).unwrap()) {
                assert!(std::time::Instant::now() < deadline, "it did not happen");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            // Long enough for a second, wrong, snapshot to show.
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        };
        let (_, after) = supervise_run(&fake, &run, &record, stop).await;
        (run, after)
    }

    fn snapshots_of(run: &TestRun, record: &RunRecord) -> Vec<moat_snapshot::SnapshotMeta> {
        let plan = run.store.load_snapshot_plan(&record.id).unwrap().unwrap();
        crate::open_store(&run.store, &record.workspace, plan.rules())
            .unwrap()
            .list(record.id.as_str())
            .unwrap()
    }

    fn triggers(metas: &[moat_snapshot::SnapshotMeta]) -> Vec<moat_snapshot::Trigger> {
        metas.iter().map(|m| m.trigger).collect()
    }

    fn reflog_commit(ws: &std::path::Path, id: &str, message: &str) {
        fs_err::create_dir_all(ws.join(".git/logs")).unwrap();
        let line = format!(
            "{} {id} T <t@example.com> 1764590000 +0000\t{message}\n",
            "0".repeat(40)
        );
        fs_err::write(ws.join(".git/logs/HEAD"), line).unwrap();
    }

    #[tokio::test]
    async fn a_commit_during_the_run_is_one_snapshot_labelled_with_it() {
        use moat_snapshot::Trigger;
        let (run, after) = supervise_with_snapshots(
            plan(true, None),
            |ws, _| {
                fs_err::write(ws.join("a.txt"), "committed\n").unwrap();
                reflog_commit(ws, &"ab".repeat(20), "commit (initial): the change");
            },
            |r| r.snapshots == 2,
        )
        .await;
        let metas = snapshots_of(&run, &after);
        assert_eq!(triggers(&metas), [Trigger::PreRun, Trigger::GitCommit]);
        assert_eq!(metas[1].label.as_deref(), Some("abababa the change"));
        assert_eq!(metas[1].changed, 1, "a.txt; .git is not in snapshots");
        assert_eq!(after.snapshots, 2);
        assert_eq!(after.snapshot_error, None);
    }

    #[tokio::test]
    async fn an_idle_period_after_a_change_is_one_snapshot() {
        use moat_snapshot::Trigger;
        let (run, after) = supervise_with_snapshots(
            plan(false, Some(1)),
            |ws, _| fs_err::write(ws.join("a.txt"), "changed\n").unwrap(),
            |r| r.snapshots == 2,
        )
        .await;
        let metas = snapshots_of(&run, &after);
        assert_eq!(triggers(&metas), [Trigger::PreRun, Trigger::Idle]);
        assert_eq!(after.snapshots, 2);
    }

    #[tokio::test]
    async fn a_snapshot_that_fails_during_the_run_is_kept_in_the_record() {
        let (_run, after) = supervise_with_snapshots(
            plan(true, None),
            |ws, store| {
                // A store git cannot write objects to.
                fs_err::remove_dir_all(store.join("objects")).unwrap();
                fs_err::write(store.join("objects"), "not a directory").unwrap();
                reflog_commit(ws, &"cd".repeat(20), "commit: x");
            },
            |r| r.snapshot_error.is_some(),
        )
        .await;
        let error = after.snapshot_error.unwrap();
        assert!(error.contains("git-commit snapshot"), "{error}");
        assert_eq!(after.state, RunState::Stopped, "the run goes on to its end");
    }
}
