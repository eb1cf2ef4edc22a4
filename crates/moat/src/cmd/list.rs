//! `moat list [--json]`: every run, newest first, with its real state — and the run
//! directories whose record cannot be read, so nothing moat made is out of sight.

use anyhow::Result;

use crate::cli::ListArgs;
use crate::settings::Context;
use crate::ui::{outln, runs_table};

pub async fn list(ctx: &Context, args: ListArgs) -> Result<i32> {
    let mut lazy = super::LazyDocker::new(ctx);
    let mut runs = Vec::new();
    for record in ctx.store.list()? {
        runs.push(super::refresh(ctx, &mut lazy, record).await?);
    }
    let damaged = ctx.store.damaged()?;
    if args.json {
        let mut values: Vec<serde_json::Value> = runs
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<_, _>>()?;
        values.extend(
            damaged
                .iter()
                .map(|d| serde_json::json!({ "id": d.id, "state": "damaged", "error": d.reason })),
        );
        outln!("{}", serde_json::to_string_pretty(&values)?)?;
    } else if runs.is_empty() && damaged.is_empty() {
        crate::ui::errln!("No runs yet. Start one with `moat run`.");
    } else {
        if !runs.is_empty() {
            outln!("{}", runs_table(&runs))?;
        }
        for d in &damaged {
            outln!(
                "{}  damaged: {} (`moat destroy --force {}` removes it)",
                d.id,
                d.reason,
                d.id
            )?;
        }
    }
    Ok(0)
}
