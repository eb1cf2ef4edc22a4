//! `moat destroy [RUN] [--force] [--keep-audit] [--keep-snapshots]`: remove a run's
//! container and its directory — its audit log too, unless `--keep-audit` keeps it as a
//! bundle, and its workspace snapshots, unless `--keep-snapshots`; with `--force`, also a
//! run whose record is damaged.

use anyhow::{Context as _, Result};
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
    let had_audit = ctx.store.audit_path(&record.id).exists();
    let kept = if args.keep_audit && had_audit {
        Some(keep_audit(ctx, &record)?)
    } else {
        None
    };
    moat_run::destroy_run(&docker, &ctx.store, &record, args.force).await?;
    outln!("destroyed {} ({})", record.id, record.name)?;
    match kept {
        Some((path, fingerprint)) => outln!(
            "its audit log is kept in {}; check it with `moat audit verify {} --key {fingerprint}`",
            path.display(),
            path.display()
        )?,
        None if had_audit => {
            crate::ui::errln!("moat: its audit log went with it (`--keep-audit` keeps it)")
        }
        None => {}
    }
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
