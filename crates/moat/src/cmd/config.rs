//! `moat config [PATH]` (and `moat run --dry-run`): the resolved settings and the image
//! plan, without building or running anything.

use anyhow::Result;

use crate::cli::ConfigArgs;
use crate::settings::{self, Context, RunPlan};
use crate::ui::{out, outln};

pub fn config(ctx: &Context, args: ConfigArgs) -> Result<i32> {
    let plan = settings::plan_run(
        ctx,
        args.path,
        &crate::cli::ExecArgs {
            settings: args.settings,
            ..Default::default()
        },
        args.command,
        settings::Purpose::Show,
    )?;
    print_plan(&plan)?;
    Ok(0)
}

/// Settings as YAML, then the image: its tag, its dependencies and its Dockerfile.
pub fn print_plan(plan: &RunPlan) -> std::io::Result<()> {
    if let Some(trust) = &plan.trust {
        let state = match &trust.state {
            moat_trust::TrustState::Trusted(record) => {
                format!("trusted ({})", crate::trust::short_hash(&record.sha256))
            }
            moat_trust::TrustState::Changed(_) => {
                "changed since it was trusted: a run asks first (`moat trust` approves it)".into()
            }
            moat_trust::TrustState::New => {
                "not trusted: a run asks first (`moat trust` approves it)".into()
            }
        };
        outln!("# workspace file: {} ({state})", trust.path.display())?;
    }
    // A warning may quote a stranger's settings (a plugin's name in the workspace's
    // `.claude/settings.json`): shown as text, escaped onto its one `#` line.
    for warning in &plan.warnings {
        outln!("# warning: {}", moat_text::escaped(warning))?;
    }
    outln!("# settings")?;
    out!("{}", plan.config.render())?;
    outln!()?;
    outln!("# image")?;
    outln!("tag: {}", plan.request.image.plan().tag)?;
    let deps: Vec<String> = plan
        .request
        .image
        .spec()
        .dependencies
        .iter()
        .map(|d| {
            let name = match &d.effective_version {
                Some(version) if d.dependency.version().is_none() => {
                    format!("{}@{version}", d.dependency)
                }
                _ => d.dependency.to_string(),
            };
            match &d.implied_by {
                Some(by) => format!("{name} (for {by})"),
                None => name,
            }
        })
        .collect();
    if deps.is_empty() {
        outln!("dependencies: []")?;
    } else {
        outln!("dependencies: [{}]", deps.join(", "))?;
    }
    outln!()?;
    outln!("# Dockerfile")?;
    out!("{}", plan.request.image.plan().dockerfile)
}
