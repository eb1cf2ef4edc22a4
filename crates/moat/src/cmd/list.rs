//! `moat list [--running] [--name PATTERN] [--json | -q | --format TEMPLATE]`: the runs,
//! newest first, with their real state — and, unfiltered, the run directories whose
//! record cannot be read, so nothing moat made is out of sight.

use anyhow::Result;
use moat_run::RunRecord;

use crate::cli::ListArgs;
use crate::settings::Context;
use crate::ui::{Template, outln, runs_table};

/// The fields `--format` knows, in the order its help lists them.
const FIELDS: &[&str] = &[
    "ID",
    "Name",
    "State",
    "ExitCode",
    "Status",
    "Workspace",
    "Image",
    "Command",
    "Created",
    "Started",
    "Finished",
    "Age",
    "Snapshots",
];

pub async fn list(ctx: &Context, args: ListArgs) -> Result<i32> {
    // A template mistake is said before anything else is done.
    let template = args
        .format
        .as_deref()
        .map(|text| Template::parse(text, FIELDS))
        .transpose()?;
    let mut lazy = super::LazyDocker::new(ctx);
    let mut runs = Vec::new();
    for record in ctx.store.list()? {
        let record = super::refresh(ctx, &mut lazy, record).await?;
        if args.running && !record.state.is_active() {
            continue;
        }
        if let Some(pattern) = &args.name
            && !glob_match(pattern, &record.name)
        {
            continue;
        }
        runs.push(record);
    }
    let filtered = args.running || args.name.is_some();
    // Damaged run directories have no state or name to filter on: shown when unfiltered.
    let damaged = if filtered {
        Vec::new()
    } else {
        ctx.store.damaged()?
    };
    if args.quiet {
        for run in &runs {
            outln!("{}", run.id)?;
        }
    } else if let Some(template) = template {
        let now = jiff::Timestamp::now();
        for run in &runs {
            outln!("{}", template.render(|field| field_value(run, field, now)))?;
        }
    } else if args.json {
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
        outln!("{}", crate::ui::json(&json)?)?;
    } else if runs.is_empty() && damaged.is_empty() {
        if filtered {
            crate::ui::errln!("No runs match.");
        } else {
            crate::ui::errln!("No runs yet. Start one with `moat run`.");
        }
    } else {
        if !runs.is_empty() {
            outln!("{}", runs_table(&runs))?;
        }
        for d in &damaged {
            outln!(
                "{}  damaged: {} (`moat destroy --force {}` removes it)",
                d.id,
                moat_text::escaped(&d.reason),
                d.id
            )?;
        }
    }
    Ok(0)
}

/// One `--format` field of a run, as text (empty for what is not there yet), shown
/// [`moat_text::escaped`]: the command and the workspace's path are the user's or the
/// repository's words.
fn field_value(run: &RunRecord, field: &str, now: jiff::Timestamp) -> String {
    let time = |t: Option<jiff::Timestamp>| t.map(|t| t.to_string()).unwrap_or_default();
    let value = match field {
        "ID" => run.id.to_string(),
        "Name" => run.name.clone(),
        "State" => run.state.as_str().to_owned(),
        "ExitCode" => run.exit_code.map(|c| c.to_string()).unwrap_or_default(),
        "Status" => crate::ui::state_cell(run),
        "Workspace" => run.workspace.display().to_string(),
        "Image" => run.image.clone(),
        "Command" => run.command.join(" "),
        "Created" => run.created_at.to_string(),
        "Started" => time(run.started_at),
        "Finished" => time(run.finished_at),
        "Age" => crate::ui::age(run.created_at, now),
        "Snapshots" => run.snapshots.to_string(),
        other => unreachable!("`{other}` is not in FIELDS"),
    };
    moat_text::escaped(&value).into_owned()
}

/// Whether `name` matches `pattern`, where `*` stands for any characters.
fn glob_match(pattern: &str, name: &str) -> bool {
    let pieces: Vec<&str> = pattern.split('*').collect();
    if pieces.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (pieces[0], pieces[pieces.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for piece in &pieces[1..pieces.len() - 1] {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn name_patterns() {
        assert!(glob_match("feat", "feat"));
        assert!(!glob_match("feat", "feature"));
        assert!(glob_match("feat*", "feature"));
        assert!(glob_match("*ure", "feature"));
        assert!(glob_match("f*t*e", "feature"));
        assert!(glob_match("*", "x"));
        assert!(!glob_match("a*a", "a"));
        assert!(!glob_match("f*x*e", "feature"));
    }
}
