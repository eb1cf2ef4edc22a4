//! Container lifecycle: create, attach, start, wait, logs, resize, signal, stop, remove.
//!
//! The calls a run makes are functions of this module behind `Runtime for Docker`; the
//! attached session's (attach, resize, signal) are methods of [`Docker`].

use std::collections::HashMap;
use std::pin::Pin;

use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig, Mount, MountType};
use bollard::query_parameters as q;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::io::AsyncWrite;

use crate::{Docker, MANAGED_LABEL, RUN_LABEL, RuntimeError};

/// Everything needed to create one container.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerSpec {
    /// Container name; moat uses the run id.
    pub name: String,
    pub image: String,
    /// Command; `None` keeps the image's `CMD`.
    pub cmd: Option<Vec<String>>,
    pub env: Vec<(String, String)>,
    pub working_dir: String,
    /// `uid:gid` or a user name; `None` keeps the image's `USER`.
    pub user: Option<String>,
    pub mounts: Vec<BindMount>,
    /// Allocate a terminal (interactive runs).
    pub tty: bool,
    /// Keep stdin open so a client can attach to it.
    pub open_stdin: bool,
    /// Close the container's stdin when the first attached client closes its stdin.
    pub stdin_once: bool,
    /// The run this container belongs to, recorded as a label.
    pub run_id: String,
    /// Memory limit in MiB.
    pub memory_mb: Option<u64>,
    /// CPU limit in cores (fractions allowed).
    pub cpus: Option<f64>,
    /// Docker network mode: `none` gives the container no network at all.
    pub network_mode: Option<String>,
    /// How many processes and threads may exist in the container at once.
    pub pids_limit: Option<u64>,
    /// `no-new-privileges`: setuid and file capabilities do not elevate.
    pub no_new_privileges: bool,
    /// Drop every Linux capability (`--cap-drop ALL`).
    pub drop_all_capabilities: bool,
}

/// A host directory or file bind-mounted into the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    pub source: String,
    pub target: String,
    pub read_only: bool,
}

/// The part of a container's state moat cares about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerState {
    /// Docker's status word: `created`, `running`, `exited`, `dead`, ...
    pub status: String,
    pub running: bool,
    pub exit_code: Option<i64>,
    pub finished_at: Option<String>,
}

/// Which stream a piece of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// A piece of live output from an attached container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputChunk {
    pub stream: LogStream,
    pub bytes: Bytes,
}

/// One entry of the container's log as Docker recorded it, with Docker's own timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogChunk {
    pub timestamp: Option<jiff::Timestamp>,
    pub stream: LogStream,
    pub bytes: Bytes,
}

type OutputStream = Pin<Box<dyn Stream<Item = Result<OutputChunk, RuntimeError>> + Send>>;

/// The two ends of an attach: the container's output, and its stdin when asked for.
pub struct Attached {
    pub output: OutputStream,
    pub input: Pin<Box<dyn AsyncWrite + Send>>,
}

impl std::fmt::Debug for Attached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Attached")
    }
}

impl Docker {
    /// Attach to a container's output (and stdin when `stdin`), before or after it starts.
    /// Attaching before the start is how no output is lost.
    pub async fn attach(&self, id: &str, stdin: bool) -> Result<Attached, RuntimeError> {
        let options = q::AttachContainerOptionsBuilder::default()
            .stdin(stdin)
            .stdout(true)
            .stderr(true)
            .stream(true)
            .logs(false)
            .build();
        let attached = self
            .api
            .attach_container(id, Some(options))
            .await
            .map_err(RuntimeError::api(format!("attaching to container `{id}`")))?;
        let context = format!("reading output of container `{id}`");
        let output = attached.output.filter_map(move |item| {
            let context = context.clone();
            async move {
                match item {
                    Ok(bollard::container::LogOutput::StdOut { message })
                    | Ok(bollard::container::LogOutput::Console { message }) => {
                        Some(Ok(OutputChunk {
                            stream: LogStream::Stdout,
                            bytes: message,
                        }))
                    }
                    Ok(bollard::container::LogOutput::StdErr { message }) => {
                        Some(Ok(OutputChunk {
                            stream: LogStream::Stderr,
                            bytes: message,
                        }))
                    }
                    Ok(bollard::container::LogOutput::StdIn { .. }) => None,
                    Err(e) => Some(Err(RuntimeError::api(context)(e))),
                }
            }
        });
        Ok(Attached {
            output: Box::pin(output),
            input: attached.input,
        })
    }

    pub async fn resize_tty(&self, id: &str, cols: u16, rows: u16) -> Result<(), RuntimeError> {
        let options = q::ResizeContainerTTYOptionsBuilder::default()
            .w(i32::from(cols))
            .h(i32::from(rows))
            .build();
        self.api
            .resize_container_tty(id, options)
            .await
            .map_err(RuntimeError::api(format!(
                "resizing the terminal of `{id}`"
            )))
    }

    /// Send a signal (`SIGINT`, `SIGTERM`, ...) to the container's command.
    pub async fn signal_container(&self, id: &str, signal: &str) -> Result<(), RuntimeError> {
        let options = q::KillContainerOptionsBuilder::default()
            .signal(signal)
            .build();
        self.api
            .kill_container(id, Some(options))
            .await
            .map_err(RuntimeError::api(format!("signalling container `{id}`")))
    }

    /// Freeze every process of the container (while its workspace is restored).
    pub async fn pause_container(&self, id: &str) -> Result<(), RuntimeError> {
        self.api
            .pause_container(id)
            .await
            .map_err(RuntimeError::api(format!("pausing container `{id}`")))
    }

    /// Let a paused container's processes run again.
    pub async fn unpause_container(&self, id: &str) -> Result<(), RuntimeError> {
        self.api
            .unpause_container(id)
            .await
            .map_err(RuntimeError::api(format!("unpausing container `{id}`")))
    }
}

/// Create (not start) a container. Returns its id.
pub(crate) async fn create_container(
    docker: &Docker,
    spec: &ContainerSpec,
) -> Result<String, RuntimeError> {
    let labels = HashMap::from([
        (MANAGED_LABEL.to_owned(), "true".to_owned()),
        (RUN_LABEL.to_owned(), spec.run_id.clone()),
    ]);
    let mounts = spec
        .mounts
        .iter()
        .map(|m| Mount {
            source: Some(m.source.clone()),
            target: Some(m.target.clone()),
            typ: Some(MountType::BIND),
            read_only: Some(m.read_only),
            ..Default::default()
        })
        .collect();
    let body = ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd: spec.cmd.clone(),
        env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        working_dir: Some(spec.working_dir.clone()),
        user: spec.user.clone(),
        tty: Some(spec.tty),
        open_stdin: Some(spec.open_stdin),
        stdin_once: Some(spec.stdin_once),
        attach_stdin: Some(spec.open_stdin),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        labels: Some(labels),
        host_config: Some(HostConfig {
            mounts: Some(mounts),
            // docker-init (tini) as PID 1: signals reach the command, zombies are reaped.
            init: Some(true),
            memory: spec
                .memory_mb
                .map(|mb| i64::try_from(mb.saturating_mul(1024 * 1024)).unwrap_or(i64::MAX)),
            nano_cpus: spec.cpus.map(|cpus| (cpus * 1e9).round() as i64),
            network_mode: spec.network_mode.clone(),
            pids_limit: spec
                .pids_limit
                .map(|n| i64::try_from(n).unwrap_or(i64::MAX)),
            security_opt: spec
                .no_new_privileges
                .then(|| vec!["no-new-privileges:true".to_owned()]),
            cap_drop: spec.drop_all_capabilities.then(|| vec!["ALL".to_owned()]),
            log_config: Some(run_log_config()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let options = q::CreateContainerOptionsBuilder::default()
        .name(&spec.name)
        .build();
    let created = docker
        .api
        .create_container(Some(options), body)
        .await
        .map_err(RuntimeError::api(format!(
            "creating container `{}`",
            spec.name
        )))?;
    Ok(created.id)
}

/// Docker's log of a run is json-file, whatever the daemon's default: journald or syslog
/// cannot be read back at all. Not `local`, which keeps bytes exactly but drops the empty
/// last piece of a line longer than 16 KiB when its newline comes in a later write (two
/// lines become one); json-file keeps every line and newline, and only a character that
/// its 16 KiB split cuts comes back as U+FFFD.
fn run_log_config() -> HostConfigLogConfig {
    HostConfigLogConfig {
        typ: Some("json-file".to_owned()),
        config: None,
    }
}

pub(crate) async fn start_container(docker: &Docker, id: &str) -> Result<(), RuntimeError> {
    docker
        .api
        .start_container(id, None::<q::StartContainerOptions>)
        .await
        .map_err(RuntimeError::api(format!("starting container `{id}`")))
}

/// Wait until the container is not running and return its exit code.
pub(crate) async fn wait_container(docker: &Docker, id: &str) -> Result<i64, RuntimeError> {
    let options = q::WaitContainerOptionsBuilder::default()
        .condition("not-running")
        .build();
    let mut stream = docker.api.wait_container(id, Some(options));
    match stream.next().await {
        Some(Ok(response)) => Ok(response.status_code),
        // bollard reports a non-zero exit as an error; it is an ordinary outcome here.
        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
        Some(Err(e)) => Err(RuntimeError::api(format!("waiting for container `{id}`"))(
            e,
        )),
        None => Err(RuntimeError::NotFound(format!("container `{id}`"))),
    }
}

/// The container's whole log from its start, following it until the container stops.
/// Each entry carries the time Docker received it.
pub(crate) fn follow_logs(
    docker: &Docker,
    id: &str,
) -> impl Stream<Item = Result<LogChunk, RuntimeError>> + Send + 'static {
    logs(docker, id, true, None)
}

/// The container's log as it is now: all of it, or its last `tail` entries.
pub(crate) fn read_logs(
    docker: &Docker,
    id: &str,
    tail: Option<u64>,
) -> impl Stream<Item = Result<LogChunk, RuntimeError>> + Send + 'static {
    logs(docker, id, false, tail)
}

/// Each item is one entry of Docker's log. The log driver keeps a line longer than
/// 16 KiB as several entries, all but the last without their newline, and a terminal's
/// output as the chunks it was read in. Joining them into lines is the reader's job.
fn logs(
    docker: &Docker,
    id: &str,
    follow: bool,
    tail: Option<u64>,
) -> impl Stream<Item = Result<LogChunk, RuntimeError>> + Send + 'static {
    let mut options = q::LogsOptionsBuilder::default()
        .follow(follow)
        .stdout(true)
        .stderr(true)
        .timestamps(true);
    if let Some(tail) = tail {
        options = options.tail(&tail.to_string());
    }
    let context = format!("reading logs of container `{id}`");
    docker.api.logs(id, Some(options.build())).map(move |item| {
        let (stream, message) = match item {
            Ok(bollard::container::LogOutput::StdErr { message }) => (LogStream::Stderr, message),
            Ok(
                bollard::container::LogOutput::StdOut { message }
                | bollard::container::LogOutput::Console { message }
                | bollard::container::LogOutput::StdIn { message },
            ) => (LogStream::Stdout, message),
            Err(e) => return Err(RuntimeError::api(context.clone())(e)),
        };
        let (timestamp, bytes) = split_timestamp(message);
        Ok(LogChunk {
            timestamp,
            stream,
            bytes,
        })
    })
}

/// Ask the container to stop (SIGTERM), killing it after `grace_secs`.
pub(crate) async fn stop_container(
    docker: &Docker,
    id: &str,
    grace_secs: i32,
) -> Result<(), RuntimeError> {
    let options = q::StopContainerOptionsBuilder::default()
        .t(grace_secs)
        .build();
    match docker.api.stop_container(id, Some(options)).await {
        // 304: already stopped.
        Ok(())
        | Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 304, ..
        }) => Ok(()),
        Err(e) => Err(RuntimeError::api(format!("stopping container `{id}`"))(e)),
    }
}

/// Remove a container, killing it first when `force`. A missing container is fine.
pub(crate) async fn remove_container(
    docker: &Docker,
    id: &str,
    force: bool,
) -> Result<(), RuntimeError> {
    let options = q::RemoveContainerOptionsBuilder::default()
        .force(force)
        .build();
    match docker.api.remove_container(id, Some(options)).await {
        // 404: already gone; 409: someone else is removing it right now.
        Ok(())
        | Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404 | 409,
            ..
        }) => Ok(()),
        Err(e) => Err(RuntimeError::api(format!("removing container `{id}`"))(e)),
    }
}

/// The container's state, or `None` when it no longer exists.
pub(crate) async fn container_state(
    docker: &Docker,
    id: &str,
) -> Result<Option<ContainerState>, RuntimeError> {
    match docker
        .api
        .inspect_container(id, None::<q::InspectContainerOptions>)
        .await
    {
        Ok(inspect) => {
            let state = inspect.state.unwrap_or_default();
            Ok(Some(ContainerState {
                status: state.status.map(|s| s.to_string()).unwrap_or_default(),
                running: state.running.unwrap_or(false),
                exit_code: state.exit_code,
                finished_at: state.finished_at,
            }))
        }
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(None),
        Err(e) => Err(RuntimeError::api(format!("inspecting container `{id}`"))(e)),
    }
}

/// Docker prefixes each log entry with an RFC 3339 timestamp and a space.
fn split_timestamp(message: Bytes) -> (Option<jiff::Timestamp>, Bytes) {
    let Some(space) = message.iter().position(|&b| b == b' ') else {
        return (None, message);
    };
    let parsed = std::str::from_utf8(&message[..space])
        .ok()
        .and_then(|s| s.parse::<jiff::Timestamp>().ok());
    match parsed {
        Some(ts) => (Some(ts), message.slice(space + 1..)),
        None => (None, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_docker_timestamps() {
        let (ts, rest) = split_timestamp(Bytes::from_static(
            b"2026-11-23T08:19:30.429205604Z hello world\n",
        ));
        assert_eq!(ts.unwrap().to_string(), "2026-11-23T08:19:30.429205604Z");
        assert_eq!(&rest[..], b"hello world\n");
        let (ts, rest) = split_timestamp(Bytes::from_static(b"no-timestamp here"));
        assert!(ts.is_none());
        assert_eq!(&rest[..], b"no-timestamp here");
    }
}
