//! Starting a run's supervisor (this same binary, `moat __supervise`) as a process of its
//! own that outlives the CLI, and reading the events it reports on its stdout.

use std::process::Stdio;

use anyhow::{Context as _, Result};
use moat_home::RunId;
use moat_run::SupervisorEvent;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::settings::Context;

/// A running supervisor, from the launching CLI's side.
#[derive(Debug)]
pub struct Supervisor {
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    // Kept so the pipe stays ours; the process is never killed from here.
    _child: tokio::process::Child,
}

impl Supervisor {
    pub fn spawn(ctx: &Context, id: &RunId) -> Result<Self> {
        let exe = std::env::current_exe().context("finding the moat executable")?;
        let log_path = ctx.store.supervisor_log_path(id);
        let log = fs_err::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening `{}`", log_path.display()))?;
        let mut command = tokio::process::Command::new(exe);
        command
            .arg("__supervise")
            .arg("--home")
            .arg(ctx.store.home().root())
            .arg("--docker-host")
            .arg(&ctx.endpoint.host)
            .arg(id.as_str())
            // Nothing of the user's environment is needed, so none of it (secrets
            // included) is handed to a long-lived process.
            .env_clear()
            .envs(ctx.env.path.clone().map(|p| ("PATH", p)))
            .envs(ctx.env.rust_log.clone().map(|p| ("RUST_LOG", p)))
            // The OS keyring (Secret Service) is reached over the session bus.
            .envs(
                ctx.env
                    .dbus_session_bus_address
                    .clone()
                    .map(|v| ("DBUS_SESSION_BUS_ADDRESS", v)),
            )
            .envs(
                ctx.env
                    .xdg_runtime_dir
                    .clone()
                    .map(|v| ("XDG_RUNTIME_DIR", v)),
            )
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log.into_file());
        let mut child = command.spawn().context("starting the run's supervisor")?;
        let stdout = child.stdout.take().expect("stdout is piped");
        Ok(Supervisor {
            lines: BufReader::new(stdout).lines(),
            _child: child,
        })
    }

    /// The next event, or `None` once the supervisor has closed its end.
    pub async fn next_event(&mut self) -> Option<SupervisorEvent> {
        loop {
            match self.lines.next_line().await {
                Ok(Some(line)) => match serde_json::from_str(&line) {
                    Ok(event) => return Some(event),
                    Err(e) => tracing::warn!(%line, error = %e, "unreadable supervisor event"),
                },
                Ok(None) | Err(_) => return None,
            }
        }
    }
}
