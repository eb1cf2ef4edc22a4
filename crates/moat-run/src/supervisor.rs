//! The supervisor: the process that owns a run from its start to its end.
//!
//! It starts the run's proxy and then the container, copies the container's log into
//! `logs.jsonl` line by line while the command runs, waits for the exit, records how the
//! run ended and removes the container (unless kept). It outlives the CLI, so a detached
//! run keeps all of this with nobody attached.

use futures_util::StreamExt;
use moat_container::Runtime;
use moat_home::RunId;
use serde::{Deserialize, Serialize};

use crate::{LogWriter, RunError, RunState, RunStore};

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

    // The proxy first: the container's first request must find it.
    let started = match crate::egress::start_proxy(store, id, rules).await {
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
            let message = e.to_string();
            store.update(id, |r| {
                r.state = RunState::Failed;
                r.error = Some(message.clone());
                r.finished_at = Some(jiff::Timestamp::now());
            })?;
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

    // Docker keeps the whole log from the start, so following it now loses nothing.
    let logs_path = store.logs_path(id);
    let follow = {
        let stream = runtime.follow_logs(&container);
        tokio::spawn(async move {
            let mut writer = LogWriter::open(&logs_path)?;
            let mut stream = std::pin::pin!(stream);
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(chunk) => writer.write_chunk(&chunk)?,
                    Err(e) => {
                        tracing::warn!(error = %e, "log stream ended early");
                        break;
                    }
                }
            }
            Ok::<_, std::io::Error>(())
        })
    };

    let wait = runtime.wait_container(&container);
    tokio::pin!(wait);
    let waited = tokio::select! {
        result = &mut wait => result,
        () = stop => {
            store.request_stop(id)?;
            runtime.stop_container(&container, crate::STOP_GRACE_SECS).await?;
            wait.await
        }
    };

    // The log stream ends when the container stops; give it a moment to drain.
    match tokio::time::timeout(std::time::Duration::from_secs(10), follow).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "writing logs failed"),
        Ok(Err(e)) => tracing::warn!(error = %e, "log task failed"),
        Err(_) => tracing::warn!("log stream did not end after the container stopped"),
    }

    // Requests still in flight get a moment; then every event is in network.jsonl.
    proxy.stop().await;

    let (state, exit_code, error) = match waited {
        Ok(code) if store.stop_requested(id) => (RunState::Stopped, Some(code), None),
        Ok(code) => (RunState::Exited, Some(code), None),
        Err(e) => (RunState::Failed, None, Some(e.to_string())),
    };
    // What the run left at protected paths it could not be kept from leaves the
    // workspace before anyone on the host can trip over it.
    if let Err(e) = store.hold_back_changes(&record) {
        tracing::warn!(error = %e, "checking the protected paths failed");
    }
    // The conversation the agent wrote to last while the run lived is the run's (a
    // `--continue` learns its ID only now; `/clear` inside starts another one).
    let written = record
        .agent
        .as_ref()
        .and_then(|a| crate::latest_session(&a.sessions_dir, Some(started_at)));
    store.update(id, |r| {
        r.state = state;
        r.exit_code = exit_code;
        r.error = error;
        r.finished_at = Some(jiff::Timestamp::now());
        if let (Some(agent), Some(written)) = (r.agent.as_mut(), written.clone()) {
            agent.session_id = Some(written);
        }
    })?;
    if !record.keep {
        runtime.remove_container(&container, true).await?;
    }
    emit(&SupervisorEvent::Finished { state, exit_code });
    Ok(())
}
