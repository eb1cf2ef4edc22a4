//! `moat destroy [RUN] [--force]`: remove a run's container and its directory.

use anyhow::Result;

use crate::cli::DestroyArgs;
use crate::settings::Context;
use crate::ui::outln;

pub async fn destroy(ctx: &Context, args: DestroyArgs) -> Result<i32> {
    let runs = ctx.store.list()?;
    let record = moat_run::resolve_run(&runs, args.run.as_deref())?;
    let docker = ctx.docker().await?;
    moat_run::destroy_run(&docker, &ctx.store, &record, args.force).await?;
    outln!("destroyed {} ({})", record.id, record.name)?;
    Ok(0)
}
