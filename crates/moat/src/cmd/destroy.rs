//! `moat destroy RUN... [--all-stopped] [--force] [--keep-audit] [--keep-snapshots]`:
//! remove runs' containers and directories — their audit logs too, unless `--keep-audit`
//! keeps them as bundles, and their workspace snapshots, unless `--keep-snapshots`; with
//! `--force`, also a run whose record is damaged. Without a run it refuses: destroying is
//! never done to "the newest" by default.

use anyhow::{Context as _, Result};
use moat_run::{RunError, RunRecord};

use crate::cli::DestroyArgs;
use crate::settings::Context;
use crate::ui::{UserError, outln};

pub async fn destroy(ctx: &Context, args: DestroyArgs) -> Result<i32> {
    let runs = ctx.store.list()?;
    if args.all_stopped {
        let mut lazy = super::LazyDocker::new(ctx);
        let mut finished = Vec::new();
        for record in runs {
            let record = super::refresh(ctx, &mut lazy, record).await?;
            if record.state.is_final() {
                finished.push(record);
            }
        }
        if finished.is_empty() {
            crate::ui::errln!("No finished runs to destroy.");
            return Ok(0);
        }
        let docker = ctx.docker().await?;
        let mut audit_gone = 0;
        for record in &finished {
            audit_gone += usize::from(destroy_record(ctx, &docker, record, &args).await?);
        }
        audit_note(audit_gone);
        return Ok(0);
    }
    match args.runs.as_slice() {
        [] => Err(nothing_named(&runs).into()),
        [one] => {
            audit_note(usize::from(destroy_arg(ctx, &runs, one, &args).await?));
            Ok(0)
        }
        many => {
            // Each is tried; what could not be destroyed is said, and the exit code is 1.
            let mut failed = 0;
            let mut audit_gone = 0;
            for arg in many {
                match destroy_arg(ctx, &runs, arg, &args).await {
                    Ok(gone) => audit_gone += usize::from(gone),
                    Err(e) => {
                        crate::ui::print_error(&e);
                        failed += 1;
                    }
                }
            }
            audit_note(audit_gone);
            Ok(if failed == 0 { 0 } else { 1 })
        }
    }
}

/// Once, after the runs are gone: their audit logs went too.
fn audit_note(gone: usize) {
    match gone {
        0 => {}
        1 => crate::ui::errln!("moat: its audit log went with it (`--keep-audit` keeps it)"),
        n => crate::ui::errln!(
            "moat: their {n} audit logs went with them (`--keep-audit` keeps them)"
        ),
    }
}

/// `moat destroy` alone: which run is meant is not guessed.
fn nothing_named(runs: &[RunRecord]) -> UserError {
    let error = UserError::new("`moat destroy` needs the run(s) to destroy");
    match runs.first() {
        None => error.hint("there are no runs: nothing to destroy"),
        Some(newest) => error.hint(format!(
            "name them: `moat destroy {}` destroys the newest ({}); `moat destroy \
             --all-stopped` every finished run; `moat list` shows them",
            newest.id, newest.name
        )),
    }
}

/// Destroy the run `arg` names (a damaged one with `--force`); whether its audit log
/// went with it.
async fn destroy_arg(
    ctx: &Context,
    runs: &[RunRecord],
    arg: &str,
    args: &DestroyArgs,
) -> Result<bool> {
    let record = match moat_run::resolve_run(runs, Some(arg)) {
        Ok(record) => record,
        // A run directory whose record cannot be read is still a run to remove.
        Err(e @ (RunError::NoSuchRun { .. } | RunError::NoRuns)) => {
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
            return Ok(false);
        }
        Err(e) => return Err(e.into()),
    };
    let docker = ctx.docker().await?;
    destroy_record(ctx, &docker, &record, args).await
}

/// Destroy one run, keeping its audit log or snapshots as `args` say; whether an audit
/// log went with it.
async fn destroy_record(
    ctx: &Context,
    docker: &moat_container::Docker,
    record: &RunRecord,
    args: &DestroyArgs,
) -> Result<bool> {
    let had_audit = ctx.store.audit_path(&record.id).exists();
    let kept = if args.keep_audit && had_audit {
        Some(keep_audit(ctx, record)?)
    } else {
        None
    };
    moat_run::destroy_run(docker, &ctx.store, record, args.force).await?;
    outln!("destroyed {} ({})", record.id, record.name)?;
    let audit_gone = kept.is_none() && had_audit;
    if let Some((path, fingerprint)) = kept {
        outln!(
            "its audit log is kept in {}; check it with `moat audit verify {} --key {fingerprint}`",
            path.display(),
            path.display()
        )?;
    }
    if record.snapshots > 0 {
        if args.keep_snapshots {
            outln!(
                "its {} snapshot(s) are kept in {}",
                record.snapshots,
                moat_run::store_dir(&ctx.store, &record.workspace).display()
            )?;
        } else {
            forget_snapshots(ctx, record)?;
        }
    }
    Ok(audit_gone)
}

/// Remove a destroyed run's workspace snapshots.
pub(super) fn forget_snapshots(ctx: &Context, record: &RunRecord) -> Result<()> {
    if record.snapshots > 0 {
        let store = moat_run::open_store(
            &ctx.store,
            &record.workspace,
            moat_snapshot::Rules::default(),
        )?;
        store.forget_run(record.id.as_str())?;
    }
    Ok(())
}

/// Write the run's audit log and the files it covers as a bundle under
/// `$MOAT_HOME/audit/`; its path and the key's fingerprint.
fn keep_audit(ctx: &Context, record: &moat_run::RunRecord) -> Result<(std::path::PathBuf, String)> {
    let entries = moat_audit::read_entries(&ctx.store.audit_path(&record.id))?;
    let key = moat_audit::AuditKey::load_or_create(&ctx.home().audit_key_file())?;
    let bundle = moat_audit::Bundle::make(
        record.id.as_str(),
        entries,
        &ctx.store.run_dir(&record.id),
        &key,
    )?;
    let dir = ctx.home().audit_dir();
    moat_home::MoatHome::create_private_dir(&dir)?;
    let path = dir.join(format!("{}.json", record.id));
    moat_home::write_private_atomic(&path, &serde_json::to_vec_pretty(&bundle)?)
        .with_context(|| format!("writing `{}`", path.display()))?;
    Ok((path, key.fingerprint()))
}
