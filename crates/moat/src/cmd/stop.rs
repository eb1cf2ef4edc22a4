//! `moat stop [RUN] [--all]`: stop running runs (SIGTERM, then SIGKILL after a grace period).

use anyhow::Result;
use moat_run::RunError;

use crate::cli::StopArgs;
use crate::settings::Context;
use crate::ui::outln;

pub async fn stop(ctx: &Context, args: StopArgs) -> Result<i32> {
    let mut lazy = super::LazyDocker::new(ctx);
    let mut runs = Vec::new();
    for record in ctx.store.list()? {
        runs.push(super::refresh(ctx, &mut lazy, record).await?);
    }
    let targets = if args.all {
        runs.into_iter().filter(|r| r.state.is_active()).collect()
    } else if args.run.is_some() {
        vec![moat_run::resolve_run(&runs, args.run.as_deref())?]
    } else {
        let active: Vec<_> = runs.into_iter().filter(|r| r.state.is_active()).collect();
        match active.first() {
            Some(newest) => vec![newest.clone()],
            None => {
                crate::ui::errln!("No running runs.");
                return Ok(0);
            }
        }
    };
    if targets.is_empty() {
        crate::ui::errln!("No running runs.");
        return Ok(0);
    }
    let docker = lazy.get().await?.clone();
    for record in targets {
        if record.state.is_final() {
            return Err(RunError::NotRunning {
                id: record.id.to_string(),
                state: record.state_label(),
            }
            .into());
        }
        let stopped = moat_run::stop_run(&docker, &ctx.store, &record).await?;
        outln!(
            "{} ({}) {}",
            stopped.id,
            stopped.name,
            stopped.state_label()
        )?;
    }
    Ok(0)
}
