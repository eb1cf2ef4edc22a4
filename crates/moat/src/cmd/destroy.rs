//! `moat destroy [RUN] [--force]`: remove a run's container and its directory; with
//! `--force`, also a run whose record is damaged.

use anyhow::Result;
use moat_run::RunError;

use crate::cli::DestroyArgs;
use crate::settings::Context;
use crate::ui::{UserError, outln};

pub async fn destroy(ctx: &Context, args: DestroyArgs) -> Result<i32> {
    let runs = ctx.store.list()?;
    let record = match moat_run::resolve_run(&runs, args.run.as_deref()) {
        Ok(record) => record,
        // A run directory whose record cannot be read is still a run to remove.
        Err(e @ (RunError::NoSuchRun { .. } | RunError::NoRuns)) => {
            let Some(arg) = args.run.as_deref() else {
                return Err(e.into());
            };
            let damaged: Vec<_> = ctx
                .store
                .damaged()?
                .into_iter()
                .filter(|d| d.id.as_str().starts_with(arg))
                .collect();
            let [damaged] = damaged.as_slice() else {
                return Err(e.into());
            };
            if !args.force {
                return Err(UserError::new(format!(
                    "the record of run {} is damaged: {}",
                    damaged.id, damaged.reason
                ))
                .hint(format!(
                    "`moat destroy --force {}` removes the run, its container and its files",
                    damaged.id
                ))
                .into());
            }
            let docker = ctx.docker().await?;
            moat_run::destroy_damaged(&docker, &ctx.store, &damaged.id).await?;
            outln!("destroyed {} (its record was damaged)", damaged.id)?;
            return Ok(0);
        }
        Err(e) => return Err(e.into()),
    };
    let docker = ctx.docker().await?;
    moat_run::destroy_run(&docker, &ctx.store, &record, args.force).await?;
    outln!("destroyed {} ({})", record.id, record.name)?;
    Ok(0)
}
