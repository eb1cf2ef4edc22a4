//! `moat deps list [--json]` and `moat deps info NAME [--json]`: the dependency registry,
//! with the download mirrors of `$MOAT_HOME/config.yaml` each install would use.

use anyhow::Result;
use moat_image::{self as deps, DependencyInfo, MirrorUse};

use crate::cli::DepsCommand;
use crate::settings::Context;
use crate::ui::{out, outln};

pub fn deps(ctx: &Context, command: DepsCommand) -> Result<i32> {
    let mirrors = crate::settings::host_mirrors(ctx)?;
    match command {
        DepsCommand::List { json: true } => {
            let listing = serde_json::json!({
                "dependencies": deps::list(&mirrors),
                "prefixes": deps::prefixes(&mirrors),
            });
            outln!("{}", crate::ui::json(&listing)?)?;
        }
        DepsCommand::List { json: false } => print_list(&deps::list(&mirrors), &mirrors)?,
        DepsCommand::Info { name, json } => {
            let info = deps::describe(&name, &mirrors)?;
            if json {
                outln!("{}", crate::ui::json(&info)?)?;
            } else {
                print_info(&info)?;
            }
        }
    }
    Ok(0)
}

fn print_list(entries: &[DependencyInfo], mirrors: &deps::Mirrors) -> std::io::Result<()> {
    let rows: Vec<[String; 4]> = entries
        .iter()
        .map(|e| {
            [
                e.name.clone(),
                e.method.to_string(),
                e.default_version.clone().unwrap_or_else(|| "-".into()),
                e.description.clone(),
            ]
        })
        .collect();
    let header = ["NAME", "METHOD", "DEFAULT", "DESCRIPTION"].map(String::from);
    out!("{}", crate::ui::table(&header, &rows))?;
    outln!()?;
    outln!("Also: packages from other registries with a prefix:")?;
    for prefix in deps::prefixes(mirrors) {
        outln!("  {:<6} {}", prefix.prefix, prefix.description)?;
    }
    Ok(())
}

fn print_info(info: &DependencyInfo) -> std::io::Result<()> {
    outln!("{}: {}", info.name, info.description)?;
    if !info.aliases.is_empty() {
        outln!("aliases:  {}", info.aliases.join(", "))?;
    }
    outln!("method:   {}", info.method)?;
    outln!("installs: {}", info.installs)?;
    outln!(
        "default:  {}",
        info.default_version
            .as_deref()
            .unwrap_or("the newest available")
    )?;
    if !info.versions.is_empty() {
        outln!("versions: {}", info.versions.join(", "))?;
    }
    outln!("accepts:  {}", info.version_rule)?;
    if !info.requires.is_empty() {
        outln!("requires: {}", info.requires.join(", "))?;
    }
    for (i, mirror) in info.mirrors.iter().enumerate() {
        let label = if i == 0 { "mirrors:" } else { "" };
        outln!("{label:<10}{}", mirror_line(mirror))?;
    }
    outln!("\nexample:\n{}", info.example_yaml.trim_end())
}

/// `mirrors.npm = https://registry.npmjs.org (default): the package and its dependencies`.
fn mirror_line(mirror: &MirrorUse) -> String {
    let default = if mirror.default { " (default)" } else { "" };
    format!(
        "{} = {}{default}: {}",
        mirror.setting, mirror.url, mirror.fetches
    )
}
