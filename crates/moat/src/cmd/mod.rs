//! One module per command. Each takes the resolved [`Context`] and its arguments, acts
//! through the libraries, prints, and returns the process exit code.

pub mod accept;
pub mod attach;
pub mod audit;
pub mod claude;
pub mod config;
pub mod deps;
pub mod destroy;
pub mod doctor;
pub mod grant;
pub mod list;
pub mod logs;
pub mod marketplaces;
pub mod meta;
pub mod prune;
pub mod run;
pub mod snapshot;
pub mod stop;
pub mod supervise;
pub mod trace;
pub mod trust;

use anyhow::Result;
use moat_container::Docker;
use moat_run::{RunRecord, RunState};

use crate::settings::Context;

/// Docker, connected on first need: read-only commands on finished runs never need it.
pub struct LazyDocker<'a> {
    ctx: &'a Context,
    docker: Option<Docker>,
}

impl<'a> LazyDocker<'a> {
    pub fn new(ctx: &'a Context) -> Self {
        LazyDocker { ctx, docker: None }
    }

    pub async fn get(&mut self) -> Result<&Docker> {
        if self.docker.is_none() {
            self.docker = Some(self.ctx.docker().await?);
        }
        Ok(self.docker.as_ref().expect("just set"))
    }
}

/// The record as it really is: an active run whose supervisor is gone is checked against
/// Docker.
pub async fn refresh(
    ctx: &Context,
    docker: &mut LazyDocker<'_>,
    record: RunRecord,
) -> Result<RunRecord> {
    if record.state.is_final() || moat_run::supervisor_alive(&record) {
        return Ok(record);
    }
    // A run that cannot be put right now (a full disk, Docker away) is shown as recorded;
    // one run's trouble never stops a command about the others.
    match moat_run::reconcile(docker.get().await?, &ctx.store, record.clone()).await {
        Ok(record) => Ok(record),
        Err(e) => {
            tracing::warn!(id = %record.id, error = %e, "cannot bring the run's record up to date");
            Ok(record)
        }
    }
}

/// Wait until the run is over and cleaned up, then return its final record.
pub async fn wait_until_final(
    ctx: &Context,
    docker: &Docker,
    record: &RunRecord,
) -> Result<RunRecord> {
    Ok(moat_run::wait_for_supervisor(docker, &ctx.store, record).await?)
}

/// The exit code moat returns for a finished run: the command's own, or 125 when it has
/// none (the run failed before its command could run).
pub fn exit_code_of(record: &RunRecord) -> i32 {
    match (record.state, record.exit_code) {
        (RunState::Exited | RunState::Stopped, Some(code)) => {
            i32::try_from(code.clamp(0, 255)).unwrap_or(125)
        }
        _ => crate::EXIT_MOAT_FAILED,
    }
}
