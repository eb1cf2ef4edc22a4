//! `moat prune [--older-than DURATION] [--dry-run] [--yes]`: remove the finished runs
//! (those that ended longer ago than DURATION), then the `moat/run` images this
//! `MOAT_HOME` built that no remaining run and no container uses, showing the space each
//! holds. Images of other homes, and every image not tagged `moat/run:*`, are left alone.

use std::collections::HashSet;
use std::path::Path;

use anyhow::Result;
use moat_container::{Docker, ImageInfo};
use moat_run::RunRecord;

use crate::cli::PruneArgs;
use crate::settings::Context;
use crate::ui::{UserError, age, bytes, outln};

/// The repository of every image moat builds.
const RUN_IMAGES: &str = "moat/run";

pub async fn prune(ctx: &Context, args: PruneArgs) -> Result<i32> {
    let docker = ctx.docker().await?;
    let now = jiff::Timestamp::now();
    let mut lazy = super::LazyDocker::new(ctx);
    let mut runs = Vec::new();
    let mut kept = Vec::new();
    for record in ctx.store.list()? {
        let record = super::refresh(ctx, &mut lazy, record).await?;
        if goes(&record, args.older_than, now) {
            let size = dir_size(&ctx.store.run_dir(&record.id));
            runs.push((record, size));
        } else {
            kept.push(record);
        }
    }
    let plan = ImagePlan::make(&docker, ctx.home().root(), &runs, &kept).await?;
    let run_bytes: u64 = runs.iter().map(|(_, size)| size).sum();
    let image_bytes: u64 = plan.images.iter().map(|i| i.size).sum();

    if runs.is_empty() && plan.images.is_empty() {
        let which = match args.older_than {
            Some(d) => format!("no run ended more than {} ago", crate::ui::age_of(d)),
            None => "no finished runs".to_owned(),
        };
        outln!("Nothing to prune: {which}, and no image of this MOAT_HOME is unused.")?;
        plan.say_foreign();
        return Ok(0);
    }
    let verb = if args.dry_run {
        "Would remove"
    } else {
        "To remove"
    };
    show(verb, &runs, &plan.images, now)?;
    if args.dry_run {
        outln!(
            "Would free up to {}. `moat prune{}` removes them.",
            bytes(run_bytes + image_bytes),
            args.older_than
                .map(|d| format!(" --older-than {}", crate::ui::age_of(d)))
                .unwrap_or_default()
        )?;
        plan.say_foreign();
        return Ok(0);
    }
    if !args.yes {
        if !crate::ui::prompt::stdin_is_terminal() {
            return Err(
                UserError::new("`moat prune` asks before it removes anything")
                    .hint("pass `--yes` to remove the above, or `--dry-run` to only see it")
                    .into(),
            );
        }
        if !crate::ui::prompt::confirm("Remove them? [y/N] ", false)? {
            crate::ui::errln!("Nothing was removed.");
            return Ok(1);
        }
    }

    let mut failed = 0;
    for (record, _) in &runs {
        let gone = moat_run::destroy_run(&docker, &ctx.store, record, false)
            .await
            .map_err(anyhow::Error::from)
            .and_then(|()| super::destroy::forget_snapshots(ctx, record));
        if let Err(e) = gone {
            crate::ui::print_error(&e.context(format!("destroying {}", record.id)));
            failed += 1;
        }
    }
    let mut freed_images = 0;
    for image in &plan.images {
        let mut removed = true;
        for tag in &image.tags {
            match docker.remove_unused_image(tag).await {
                Ok(true) => {}
                Ok(false) => {
                    crate::ui::errln!(
                        "moat: {tag} is kept: a container started using it meanwhile"
                    );
                    removed = false;
                }
                Err(e) => {
                    crate::ui::print_error(&e.into());
                    removed = false;
                    failed += 1;
                }
            }
        }
        if removed {
            freed_images += image.size;
        }
    }
    outln!(
        "Removed {} run(s) and {} image(s): freed up to {}.",
        runs.len(),
        plan.images.len(),
        bytes(run_bytes + freed_images)
    )?;
    plan.say_foreign();
    Ok(if failed == 0 { 0 } else { 1 })
}

/// Whether a run goes: it is over, and ended longer ago than `older_than`.
fn goes(
    record: &RunRecord,
    older_than: Option<jiff::SignedDuration>,
    now: jiff::Timestamp,
) -> bool {
    if !record.state.is_final() {
        return false;
    }
    let Some(older_than) = older_than else {
        return true;
    };
    let ended = record.finished_at.unwrap_or(record.created_at);
    now.duration_since(ended) >= older_than
}

/// The images that go, and how many `moat/run` images another home built.
struct ImagePlan {
    images: Vec<ImageInfo>,
    foreign: usize,
}

impl ImagePlan {
    /// This home's `moat/run` images that neither a remaining run names nor any
    /// container (but those of runs that go) was made from.
    async fn make(
        docker: &Docker,
        home: &Path,
        going: &[(RunRecord, u64)],
        kept: &[RunRecord],
    ) -> Result<ImagePlan> {
        let label = format!("{}={}", moat_container::HOME_LABEL, home.display());
        let ours = docker.list_images(RUN_IMAGES, Some(&label)).await?;
        let all = docker.list_images(RUN_IMAGES, None).await?;
        let named: HashSet<&str> = kept.iter().map(|r| r.image.as_str()).collect();
        let going_containers: HashSet<&str> = going
            .iter()
            .filter_map(|(r, _)| r.container_id.as_deref())
            .collect();
        let used: HashSet<String> = docker
            .containers_by_image()
            .await?
            .into_iter()
            .filter(|(container, _)| !going_containers.contains(container.as_str()))
            .map(|(_, image)| image)
            .collect();
        let mut images: Vec<ImageInfo> = ours
            .iter()
            .filter(|i| !i.tags.iter().any(|t| named.contains(t.as_str())))
            .filter(|i| !used.contains(&i.id))
            .cloned()
            .collect();
        images.sort_by_key(|i| std::cmp::Reverse(i.created));
        Ok(ImagePlan {
            images,
            foreign: all.len().saturating_sub(ours.len()),
        })
    }

    /// A note on the images left alone because another `MOAT_HOME` (or an older moat)
    /// built them.
    fn say_foreign(&self) {
        if self.foreign > 0 {
            crate::ui::errln!(
                "moat: {} other moat/run image(s) were built by another MOAT_HOME or an older \
                 moat and are left alone (`docker image ls moat/run` shows them)",
                self.foreign
            );
        }
    }
}

/// The runs and images that go, as two tables.
fn show(
    verb: &str,
    runs: &[(RunRecord, u64)],
    images: &[ImageInfo],
    now: jiff::Timestamp,
) -> Result<()> {
    if !runs.is_empty() {
        let total: u64 = runs.iter().map(|(_, s)| s).sum();
        outln!("{verb} {} run(s), {}:", runs.len(), bytes(total))?;
        let header = ["NAME", "RUN ID", "STATE", "ENDED", "SIZE"].map(String::from);
        let rows: Vec<[String; 5]> = runs
            .iter()
            .map(|(r, size)| {
                [
                    r.name.clone(),
                    r.id.to_string(),
                    r.state_label(),
                    format!("{} ago", age(r.finished_at.unwrap_or(r.created_at), now)),
                    bytes(*size),
                ]
            })
            .collect();
        outln!("{}", indent(&crate::ui::table(&header, &rows)))?;
    }
    if !images.is_empty() {
        let total: u64 = images.iter().map(|i| i.size).sum();
        outln!("{verb} {} image(s), {}:", images.len(), bytes(total))?;
        let header = ["IMAGE", "BUILT", "SIZE"].map(String::from);
        let rows: Vec<[String; 3]> = images
            .iter()
            .map(|i| {
                [
                    i.tags.join(", "),
                    format!("{} ago", age(i.created, now)),
                    bytes(i.size),
                ]
            })
            .collect();
        outln!("{}", indent(&crate::ui::table(&header, &rows)))?;
    }
    Ok(())
}

fn indent(table: &str) -> String {
    table
        .lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The bytes of the files under `dir` (0 for what cannot be read).
fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs_err::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                total += meta.len();
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_finished_runs_older_than_the_age_go() {
        let now: jiff::Timestamp = "2026-12-01T12:00:00Z".parse().unwrap();
        let mut run: RunRecord = serde_json::from_value(serde_json::json!({
            "id": "run_aaaaaaaaaaaa", "name": "a", "workspace": "/w", "command": [],
            "image": "moat/run:x", "state": "exited", "exit_code": 0, "error": null,
            "created_at": "2026-11-20T12:00:00Z", "started_at": null,
            "finished_at": "2026-11-29T12:00:00Z", "container_id": null,
            "interactive": false, "detached": false, "keep": false, "env_keys": [],
            "supervisor_pid": null
        }))
        .unwrap();
        let days = |n: i64| Some(jiff::SignedDuration::from_hours(24 * n));
        assert!(goes(&run, None, now));
        assert!(goes(&run, days(2), now), "ended 2 days ago");
        assert!(!goes(&run, days(3), now), "the end counts, not the start");
        run.state = moat_run::RunState::Running;
        assert!(!goes(&run, None, now), "an active run never goes");
    }
}
