//! `moat deps list [--json]` and `moat deps info NAME [--json]`: the dependency registry.

use anyhow::Result;
use moat_image::{self as deps, DependencyInfo};

use crate::cli::DepsCommand;
use crate::ui::{out, outln};

pub fn deps(command: DepsCommand) -> Result<i32> {
    match command {
        DepsCommand::List { json: true } => {
            let listing = serde_json::json!({
                "dependencies": deps::list(),
                "prefixes": deps::prefixes(),
            });
            outln!("{}", serde_json::to_string_pretty(&listing)?)?;
        }
        DepsCommand::List { json: false } => print_list(&deps::list())?,
        DepsCommand::Info { name, json } => {
            let info = deps::describe(&name)?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&info)?)?;
            } else {
                print_info(&info)?;
            }
        }
    }
    Ok(0)
}

fn print_list(entries: &[DependencyInfo]) -> std::io::Result<()> {
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
    for prefix in deps::prefixes() {
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
    outln!("\nexample:\n{}", info.example_yaml.trim_end())
}
