//! `moat snapshot RUN [--label]`, `moat snapshot list|diff|restore|prune`: a run's
//! workspace snapshots, taken before and during it (see `moat-snapshot`).

use std::path::Path;

use anyhow::Result;
use moat_run::{RunRecord, SnapshotPlan};
use moat_snapshot::{ChangeKind, SnapshotMeta, SnapshotStore, Trigger};

use crate::cli::{SnapshotArgs, SnapshotCommand};
use crate::settings::Context;
use crate::ui::{UserError, age, outln, prompt, table};

pub async fn snapshot(ctx: &Context, args: SnapshotArgs) -> Result<i32> {
    match args.command {
        None => take(ctx, args.run.as_deref(), args.label),
        Some(SnapshotCommand::List { run, json }) => list(ctx, run.as_deref(), json),
        Some(SnapshotCommand::Diff {
            run,
            snapshot,
            other,
            workspace: _,
            stat,
        }) => diff(ctx, &run, &snapshot, other.as_deref(), stat),
        Some(SnapshotCommand::Restore {
            run,
            snapshot,
            to,
            yes,
        }) => restore(ctx, &run, snapshot.as_deref(), to.as_deref(), yes).await,
        Some(SnapshotCommand::Prune { run, keep, dry_run }) => prune(ctx, &run, keep, dry_run),
    }
}

fn run_of(ctx: &Context, arg: Option<&str>) -> Result<RunRecord> {
    let runs = ctx.store.list()?;
    Ok(moat_run::resolve_run(&runs, arg)?)
}

/// The run's plan (the rules its snapshots were taken with), or the defaults for a run
/// that took none.
fn plan_of(ctx: &Context, record: &RunRecord) -> Result<SnapshotPlan> {
    Ok(ctx
        .store
        .load_snapshot_plan(&record.id)?
        .unwrap_or(SnapshotPlan {
            respect_gitignore: true,
            exclude: Vec::new(),
            pre_run: false,
            git_commits: false,
            idle_after_seconds: None,
            agent_turns: false,
            max_count: 10,
            delete_initial: false,
            protected: moat_config::WORKSPACE_FILE_NAMES
                .iter()
                .map(|name| (*name).to_owned())
                .collect(),
        }))
}

fn store_of(ctx: &Context, record: &RunRecord) -> Result<SnapshotStore> {
    let plan = plan_of(ctx, record)?;
    Ok(moat_run::open_store(
        &ctx.store,
        &record.workspace,
        plan.rules(),
    )?)
}

fn take(ctx: &Context, run: Option<&str>, label: Option<String>) -> Result<i32> {
    let record = run_of(ctx, run)?;
    let plan = plan_of(ctx, &record)?;
    let started = std::time::Instant::now();
    crate::ui::err!(
        "moat: taking a snapshot of {} … ",
        record.workspace.display()
    );
    let meta = moat_run::take_snapshot(
        &ctx.store,
        &record.id,
        &record.workspace,
        &plan,
        Trigger::Manual,
        label,
    )?;
    crate::ui::errln!("{:.1}s", started.elapsed().as_secs_f64());
    outln!(
        "{} ({} files, {} changed since the one before)",
        meta.id,
        meta.files,
        meta.changed
    )?;
    Ok(0)
}

fn list(ctx: &Context, run: Option<&str>, json: bool) -> Result<i32> {
    let record = run_of(ctx, run)?;
    let metas = store_of(ctx, &record)?.list(record.id.as_str())?;
    // A snapshot the run's supervisor could not take is a gap in this list: say so.
    if let Some(error) = &record.snapshot_error {
        crate::ui::warning(error);
    }
    if json {
        outln!("{}", crate::ui::json(&metas)?)?;
        return Ok(0);
    }
    if metas.is_empty() {
        crate::ui::errln!(
            "Run {} has no snapshots. `moat snapshot {}` takes one.",
            record.id,
            record.id
        );
        return Ok(0);
    }
    let now = jiff::Timestamp::now();
    let header = ["SNAPSHOT", "TAKEN", "TRIGGER", "LABEL", "CHANGED", "ADDED"].map(String::from);
    let rows: Vec<[String; 6]> = metas
        .iter()
        .map(|m| {
            [
                m.id.clone(),
                format!("{} ago", age(m.created_at, now)),
                m.trigger.as_str().to_owned(),
                m.label.clone().unwrap_or_default(),
                m.changed.to_string(),
                human_bytes(m.bytes_added),
            ]
        })
        .collect();
    outln!("{}", table(&header, &rows).trim_end())?;
    Ok(0)
}

fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)),
    }
}

fn diff(ctx: &Context, run: &str, snapshot: &str, other: Option<&str>, stat: bool) -> Result<i32> {
    let record = run_of(ctx, Some(run))?;
    let store = store_of(ctx, &record)?;
    let from = store.find(record.id.as_str(), snapshot)?;
    let to = match other {
        Some(id) => Some(store.find(record.id.as_str(), id)?),
        None => None,
    };
    let changes = store.diff(&from, to.as_ref())?;
    let count = |kind| changes.iter().filter(|c| c.kind == kind).count();
    if stat {
        outln!(
            "{} added, {} removed, {} changed, {} mode changed",
            count(ChangeKind::Added),
            count(ChangeKind::Removed),
            count(ChangeKind::Changed),
            count(ChangeKind::ModeChanged)
        )?;
        return Ok(0);
    }
    for change in &changes {
        let mark = match change.kind {
            ChangeKind::Added => "A",
            ChangeKind::Removed => "D",
            ChangeKind::Changed => "M",
            ChangeKind::ModeChanged => "T",
        };
        // The path is a file the run made: its name is the run's choice.
        outln!("{mark}  {}", moat_text::escaped(&change.path))?;
    }
    Ok(0)
}

async fn restore(
    ctx: &Context,
    run: &str,
    snapshot: Option<&str>,
    to: Option<&Path>,
    yes: bool,
) -> Result<i32> {
    let record = run_of(ctx, Some(run))?;
    let store = store_of(ctx, &record)?;
    let target: SnapshotMeta = match snapshot {
        Some(id) => store.find(record.id.as_str(), id)?,
        None => store
            .list(record.id.as_str())?
            .into_iter()
            .next()
            .ok_or_else(|| {
                UserError::new(format!("run {} has no snapshots", record.id))
                    .hint("`moat snapshot RUN` takes one")
            })?,
    };
    if to.is_none() {
        // Only this run's container is paused while the workspace changes: another run on
        // the same workspace could put a link where the restore writes.
        // A run on a directory inside this workspace, or on one holding it, counts too.
        let overlaps = |other: &std::path::Path| {
            other.starts_with(&record.workspace) || record.workspace.starts_with(other)
        };
        if let Some(other) = ctx
            .store
            .list()?
            .into_iter()
            .find(|r| r.id != record.id && overlaps(&r.workspace) && r.state.is_active())
        {
            return Err(UserError::new(format!(
                "another run, {} ({}), is using {}",
                other.id,
                moat_text::escaped(&other.name),
                record.workspace.display()
            ))
            .hint(format!(
                "stop it first (`moat stop {}`), or write the snapshot elsewhere with `--to DIR`",
                other.id
            ))
            .into());
        }
        let changes = store.diff(&target, None)?;
        if changes.is_empty() {
            outln!(
                "The workspace is as {} has it: nothing to restore.",
                target.id
            )?;
            return Ok(0);
        }
        let question = format!(
            "Restore {} to {} ({}, {} ago)? {} path(s) change; a safety snapshot is taken first. [y/N] ",
            record.workspace.display(),
            target.id,
            target.trigger.as_str(),
            age(target.created_at, jiff::Timestamp::now()),
            changes.len()
        );
        if !yes {
            if !prompt::stdin_is_terminal() {
                return Err(UserError::new("restoring changes the workspace; moat asks first")
                    .hint("pass `--yes` to restore without a question, or `--to DIR` to write the snapshot elsewhere")
                    .into());
            }
            if !prompt::confirm(&question, false)? {
                crate::ui::errln!("Nothing restored.");
                return Ok(1);
            }
        }
    }
    // A running run's processes are frozen while their workspace changes under them.
    let paused = match (&record.container_id, record.state.is_active(), to) {
        (Some(container), true, None) => {
            let docker = ctx.docker().await?;
            docker.pause_container(container).await?;
            Some((docker, container.clone()))
        }
        _ => None,
    };
    let mut bar = crate::ui::Progress::new("restoring");
    let result = store.restore(record.id.as_str(), &target, to, &mut |p| {
        bar.set(p.done, p.total)
    });
    bar.finish();
    if let Some((docker, container)) = &paused {
        docker.unpause_container(container).await?;
    }
    let report = result?;
    // Into the run's audit log while it lives (its log is closed when it ends).
    if to.is_none()
        && record.state.is_active()
        && let Ok(audit) = moat_run::RunAudit::open(&ctx.store, &record.id)
    {
        audit.record(
            "snapshot_restored",
            serde_json::json!({
                "snapshot": target.id,
                "tree": target.tree,
                "changed": report.changed,
                "safety_snapshot": report.safety.as_ref().map(|s| &s.id),
            }),
        );
    }
    match (to, &report.safety) {
        (Some(dir), _) => outln!("Wrote {} into {}.", target.id, dir.display())?,
        (None, Some(safety)) => outln!(
            "Restored {} to {} ({} path(s)). To undo: moat snapshot restore {} {}",
            record.workspace.display(),
            target.id,
            report.changed,
            record.id,
            safety.id
        )?,
        (None, None) => {}
    }
    if !report.kept_out.is_empty() {
        // What a run put at a protected path, and its end moved aside: not brought back.
        crate::ui::warning(&format!(
            "left alone, because moat protects these paths: {}\nhint: `moat snapshot restore {} {} --to DIR` writes the whole snapshot elsewhere, to look at them",
            report
                .kept_out
                .iter()
                .map(|path| moat_text::escaped(path))
                .collect::<Vec<_>>()
                .join(", "),
            record.id,
            target.id
        ));
    }
    Ok(0)
}

fn prune(ctx: &Context, run: &str, keep: usize, dry_run: bool) -> Result<i32> {
    let record = run_of(ctx, Some(run))?;
    let plan = plan_of(ctx, &record)?;
    let store = store_of(ctx, &record)?;
    let removed = store.prune(record.id.as_str(), keep, plan.delete_initial, dry_run)?;
    let verb = if dry_run { "would remove" } else { "removed" };
    for meta in &removed {
        outln!("{verb} {} ({})", meta.id, meta.trigger.as_str())?;
    }
    if !dry_run {
        let count = store.list(record.id.as_str())?.len() as u64;
        ctx.store.update(&record.id, |r| r.snapshots = count)?;
    }
    if removed.is_empty() {
        outln!("nothing to prune: {} keeps its snapshots", record.id)?;
    }
    Ok(0)
}
