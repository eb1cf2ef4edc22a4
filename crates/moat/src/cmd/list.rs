//! `moat list [--json]`: every run, newest first, with its real state.

use anyhow::Result;

use crate::cli::ListArgs;
use crate::settings::Context;
use crate::ui::outln;
use crate::ui::runs_table;

pub async fn list(ctx: &Context, args: ListArgs) -> Result<i32> {
    let mut lazy = super::LazyDocker::new(ctx);
    let mut runs = Vec::new();
    for record in ctx.store.list()? {
        runs.push(super::refresh(ctx, &mut lazy, record).await?);
    }
    if args.json {
        // The records as stored, and for an active run whether anything still watches it.
        let mut json = Vec::with_capacity(runs.len());
        for run in &runs {
            let mut value = serde_json::to_value(run)?;
            if run.state.is_active()
                && let Some(object) = value.as_object_mut()
            {
                object.insert(
                    "supervisor_alive".into(),
                    moat_run::supervisor_alive(run).into(),
                );
            }
            json.push(value);
        }
        outln!("{}", serde_json::to_string_pretty(&json)?)?;
    } else if runs.is_empty() {
        crate::ui::errln!("No runs yet. Start one with `moat run`.");
    } else {
        outln!("{}", runs_table(&runs))?;
    }
    Ok(0)
}
