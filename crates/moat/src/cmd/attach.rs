//! `moat attach [RUN]`: reconnect to a running run, with its terminal when it has one.

use std::io::IsTerminal;

use anyhow::{Context as _, Result};
use moat_run::RunError;

use crate::cli::AttachArgs;
use crate::session::{self, CtrlC, LeaveSignals};
use crate::settings::Context;
use crate::term::ESCAPE_HELP;
use crate::ui::UserError;

pub async fn attach(ctx: &Context, args: AttachArgs) -> Result<i32> {
    let runs = ctx.store.list()?;
    let record = moat_run::resolve_run(&runs, args.run.as_deref())?;
    let mut lazy = super::LazyDocker::new(ctx);
    let record = super::refresh(ctx, &mut lazy, record).await?;
    if !record.state.is_active() {
        return Err(RunError::NotRunning {
            id: record.id.to_string(),
            state: record.state_label(),
        }
        .into());
    }
    let container = record
        .container_id
        .clone()
        .ok_or_else(|| RunError::UnknownRun(record.id.to_string()))?;
    let docker = lazy.get().await?.clone();
    // Before the terminal goes raw: a SIGTERM or SIGHUP then leaves the run going and the
    // terminal as it was.
    let mut signals = LeaveSignals::register().context("handling signals")?;
    if let Ok(audit) = moat_run::RunAudit::open(&ctx.store, &record.id) {
        audit.record(
            "attached",
            serde_json::json!({ "interactive": record.interactive }),
        );
    }
    let end = if record.interactive {
        if !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
            return Err(UserError::new(format!(
                "run {} is interactive and attaching to it needs a terminal",
                record.id
            ))
            .hint(format!(
                "use `moat logs -f {}` to follow its output",
                record.id
            ))
            .into());
        }
        let attached = docker.attach(&container, true).await?;
        crate::ui::errln!("moat: attached to run {} ({})", record.id, record.name);
        crate::ui::errln!("{ESCAPE_HELP}\r");
        let mut on_size = session::record_sizes(ctx.store.clone(), record.id.clone());
        session::terminal_session(
            &docker,
            &container,
            attached,
            true,
            &mut signals,
            &mut on_size,
        )
        .await?
    } else {
        // Its stdin belonged to whoever started it: follow the output; Ctrl-C leaves.
        let attached = docker.attach(&container, false).await?;
        crate::ui::errln!(
            "moat: attached to run {} ({}); Ctrl-C detaches",
            record.id,
            record.name
        );
        session::pipe_session(
            &docker,
            &container,
            attached,
            false,
            CtrlC::Detach,
            &mut signals,
        )
        .await?
    };
    super::run::finish(ctx, &docker, &record, end, None, &mut signals).await
}
