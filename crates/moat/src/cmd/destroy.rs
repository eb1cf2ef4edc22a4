//! `moat destroy [RUN] [--force] [--keep-snapshots]`: remove a run's container, its
//! directory and (unless kept) its workspace snapshots.

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
    if record.snapshots > 0 {
        if args.keep_snapshots {
            outln!(
                "its {} snapshot(s) are kept in {}",
                record.snapshots,
                moat_run::store_dir(&ctx.store, &record.workspace).display()
            )?;
        } else {
            let store = moat_run::open_store(
                &ctx.store,
                &record.workspace,
                moat_snapshot::Rules::default(),
            )?;
            store.forget_run(record.id.as_str())?;
        }
    }
    Ok(0)
}
