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
        // The records as stored, and for an active run whether anything still watches it;
        // then the damaged run directories.
        let mut json = Vec::with_capacity(runs.len() + damaged.len());
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
        json.extend(
            damaged
                .iter()
                .map(|d| serde_json::json!({ "id": d.id, "state": "damaged", "error": d.reason })),
        );
        outln!("{}", serde_json::to_string_pretty(&json)?)?;
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
