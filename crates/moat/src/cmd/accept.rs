//! `moat accept [RUN] [PATH...]`: put back into the workspace what a run wrote to
//! protected paths, which moat moved into the run's directory when the run ended.

use anyhow::Result;

use crate::cli::AcceptArgs;
use crate::settings::Context;
use crate::ui::{UserError, outln};

pub async fn accept(ctx: &Context, args: AcceptArgs) -> Result<i32> {
    let runs = ctx.store.list()?;
    let record = moat_run::resolve_run(&runs, args.run.as_deref())?.clone();
    let mut docker = super::LazyDocker::new(ctx);
    let record = super::refresh(ctx, &mut docker, record).await?;
    if record.state.is_active() {
        return Err(UserError::new(format!(
            "run {} ({}) is still running",
            record.id, record.name
        ))
        .hint("what it writes to protected paths is moved aside when it ends; accept it then")
        .into());
    }
    if record.held_back.is_empty() {
        outln!(
            "Run {} ({}) held nothing back: it wrote to no protected path.",
            record.id,
            record.name
        )?;
        return Ok(0);
    }
    for wanted in &args.paths {
        if !record.held_back.iter().any(|h| &h.path == wanted) {
            let held: Vec<&str> = record.held_back.iter().map(|h| h.path.as_str()).collect();
            return Err(
                UserError::new(format!("run {} held back no `{wanted}`", record.id))
                    .hint(format!("it held back: {}", held.join(", ")))
                    .into(),
            );
        }
    }
    let mut accepted = Vec::new();
    let mut failed = None;
    for held in &record.held_back {
        if !args.paths.is_empty() && !args.paths.contains(&held.path) {
            continue;
        }
        match moat_run::restore_held(&record.workspace, held) {
            Ok(()) => {
                outln!(
                    "Put `{}` back into `{}`.",
                    moat_text::escaped(&held.path),
                    record.workspace.display()
                )?;
                accepted.push(held.path.clone());
            }
            Err(e) => {
                failed = Some(
                    UserError::new(format!("cannot put `{}` back: {e}", held.path)).hint(
                        format!(
                            "it is kept at `{}`; remove or move what is in the workspace now, then run `moat accept {} {}` again",
                            held.kept_at.display(),
                            record.id,
                            held.path
                        ),
                    ),
                );
                break;
            }
        }
    }
    ctx.store.update(&record.id, |r| {
        r.held_back.retain(|h| !accepted.contains(&h.path));
    })?;
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(0),
    }
}
