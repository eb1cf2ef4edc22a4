//! `moat trust [PATH]`, `moat trust --list`, `moat untrust [PATH]`: approving a workspace's
//! moat file as it is now (after showing what it asks for), listing approvals, revoking.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use moat_trust::{Summary, TrustState, TrustStore};
use serde::Serialize;

use crate::cli::{TrustArgs, UntrustArgs};
use crate::settings::Context;
use crate::trust::{explain, short_hash};
use crate::ui::{UserError, age, outln, table};

pub fn trust(ctx: &Context, args: TrustArgs) -> Result<i32> {
    if args.list {
        return list(ctx, args.json);
    }
    let workspace = workspace(ctx, args.path)?;
    let loaded = moat_config::load(
        &workspace,
        &ctx.home().config_file(),
        &moat_config::CliOverrides::default(),
    )?;
    let Some(file) = loaded.workspace_file else {
        return Err(UserError::new(format!(
            "`{}` has no moat.yaml or agent.yaml: there is nothing to trust",
            workspace.display()
        ))
        .hint("a workspace without a moat file runs on moat's defaults and needs no trust")
        .into());
    };
    let store = TrustStore::new(ctx.home());
    let state = store.state(&workspace, file.name(), &file.text)?;
    if let TrustState::Trusted(record) = &state {
        outln!(
            "`{}` is already trusted ({}, {} ago). It asks for:\n{}",
            file.path.display(),
            short_hash(&record.sha256),
            age(record.trusted_at, jiff::Timestamp::now()),
            Summary::of(&file.config, &workspace).render().trim_end()
        )?;
        return Ok(0);
    }
    // Running this command is the answer to the question a run would ask.
    outln!("{}", explain(&file, &state, &workspace).trim_end())?;
    let record = store.approve(&workspace, file.name(), &file.text, jiff::Timestamp::now())?;
    outln!(
        "\nTrusted `{}` ({}). Runs in `{}` use it until it changes.",
        file.path.display(),
        short_hash(&record.sha256),
        workspace.display()
    )?;
    Ok(0)
}

pub fn untrust(ctx: &Context, args: UntrustArgs) -> Result<i32> {
    let workspace = workspace(ctx, args.path)?;
    match TrustStore::new(ctx.home()).revoke(&workspace)? {
        Some(record) => outln!(
            "No longer trusting `{}` in `{}`: the next run asks again.",
            record.file,
            workspace.display()
        )?,
        None => outln!("`{}` was not trusted.", workspace.display())?,
    }
    Ok(0)
}

/// The workspace as records name it: absolute, symlinks resolved.
fn workspace(ctx: &Context, path: Option<PathBuf>) -> Result<PathBuf> {
    let path = match path {
        Some(path) => path,
        None => ctx
            .env
            .cwd
            .clone()
            .context("reading the current directory")?,
    };
    Ok(moat_run::Workspace::resolve(&path, ctx.home())?
        .path()
        .to_owned())
}

/// One line of `moat trust --list`.
#[derive(Debug, Serialize)]
struct TrustRow {
    workspace: PathBuf,
    file: String,
    sha256: String,
    /// `trusted` (the file is as approved), `changed`, or `missing`.
    status: &'static str,
    trusted_at: jiff::Timestamp,
}

fn list(ctx: &Context, json: bool) -> Result<i32> {
    let rows: Vec<TrustRow> = TrustStore::new(ctx.home())
        .list()?
        .into_iter()
        .map(|record| {
            let path = record.workspace.join(&record.file);
            // Read as a run reads it: a FIFO or a huge file put there must not hang the
            // listing, and is not the content that was trusted.
            let status = match moat_home::read_bounded(&path, moat_home::FileKind::WORKSPACE_FILE) {
                Ok(bytes) if moat_trust::content_hash(&bytes) == record.sha256 => "trusted",
                Err(e) if e.is_not_found() => "missing",
                Ok(_) | Err(_) => "changed",
            };
            TrustRow {
                workspace: record.workspace,
                file: record.file,
                sha256: record.sha256,
                status,
                trusted_at: record.trusted_at,
            }
        })
        .collect();
    if json {
        outln!("{}", crate::ui::json(&rows)?)?;
        return Ok(0);
    }
    if rows.is_empty() {
        crate::ui::errln!("No trusted workspaces. `moat trust PATH` trusts one.");
        return Ok(0);
    }
    let now = jiff::Timestamp::now();
    let header = ["WORKSPACE", "FILE", "STATUS", "TRUSTED", "SHA256"].map(String::from);
    let lines: Vec<[String; 5]> = rows
        .iter()
        .map(|row| {
            [
                row.workspace.display().to_string(),
                row.file.clone(),
                row.status.to_owned(),
                format!("{} ago", age(row.trusted_at, now)),
                short_hash(&row.sha256),
            ]
        })
        .collect();
    outln!("{}", table(&header, &lines).trim_end())?;
    Ok(0)
}
