//! `moat audit [RUN]`, `moat audit verify [RUN|FILE] [--key FP]`, `moat audit export RUN
//! -o FILE [--attestation]`: a run's audit log as a timeline, checked, and taken elsewhere.

use std::path::Path;

use anyhow::{Context as _, Result};
use moat_audit::{AuditKey, Bundle, DirFiles, Entry, Report};
use moat_run::RunRecord;

use crate::cli::{AuditArgs, AuditCommand};
use crate::settings::Context;
use crate::ui::{UserError, outln, table};

pub async fn audit(ctx: &Context, args: AuditArgs) -> Result<i32> {
    match args.command {
        None => timeline(ctx, args.run.as_deref(), args.json, &args.kinds),
        Some(AuditCommand::Verify { target, key }) => verify(ctx, target.as_deref(), key),
        Some(AuditCommand::Export {
            run,
            output,
            attestation,
        }) => export(ctx, run.as_deref(), &output, attestation),
    }
}

fn run_of(ctx: &Context, arg: Option<&str>) -> Result<RunRecord> {
    let runs = ctx.store.list()?;
    Ok(moat_run::resolve_run(&runs, arg)?)
}

fn entries_of(ctx: &Context, record: &RunRecord) -> Result<Vec<Entry>> {
    let path = ctx.store.audit_path(&record.id);
    match moat_audit::read_entries(&path) {
        Ok(entries) => Ok(entries),
        Err(moat_audit::AuditError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Err(
            UserError::new(format!("run {} has no audit log", record.id))
                .hint("runs made before moat kept audit logs have none")
                .into(),
        ),
        Err(e) => Err(e.into()),
    }
}

fn timeline(ctx: &Context, run: Option<&str>, json: bool, kinds: &[String]) -> Result<i32> {
    let record = run_of(ctx, run)?;
    let entries: Vec<Entry> = entries_of(ctx, &record)?
        .into_iter()
        .filter(|e| kinds.is_empty() || kinds.contains(&e.kind))
        .collect();
    if json {
        outln!("{}", crate::ui::json(&entries)?)?;
        return Ok(0);
    }
    let header = ["#", "TIME", "WHAT", "DETAILS"].map(String::from);
    let rows: Vec<[String; 4]> = entries
        .iter()
        .map(|e| {
            let local = e.ts.to_zoned(jiff::tz::TimeZone::system());
            [
                e.seq.to_string(),
                local.strftime("%H:%M:%S%.3f").to_string(),
                e.kind.replace('_', " "),
                details(&e.data),
            ]
        })
        .collect();
    outln!("{}", table(&header, &rows).trim_end())?;
    Ok(0)
}

/// An entry's data on one line: `key=value`, nested values as JSON, signatures left out.
fn details(data: &serde_json::Value) -> String {
    let Some(map) = data.as_object() else {
        return data.to_string();
    };
    map.iter()
        .filter(|(k, _)| !matches!(k.as_str(), "signature" | "public_key"))
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// This machine's audit key fingerprint, or the one given.
fn pinned(ctx: &Context, key: Option<String>) -> Result<String> {
    if let Some(key) = key {
        return Ok(key);
    }
    let path = ctx.home().audit_key_file();
    if !path.exists() {
        return Err(UserError::new("there is no audit key on this machine to check against")
            .hint("pass the fingerprint the log must be signed with: `--key SHA256:…` (printed by `moat audit export`)")
            .into());
    }
    Ok(AuditKey::load_or_create(&path)?.fingerprint())
}

fn verify(ctx: &Context, target: Option<&str>, key: Option<String>) -> Result<i32> {
    let pinned = pinned(ctx, key)?;
    // A path that exists is a file written by `moat audit export`; anything else a run.
    if let Some(file) = target.map(Path::new).filter(|p| p.is_file()) {
        let bytes = fs_err::read(file)?;
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| moat_audit::AuditError::NotABundle(e.to_string()))?;
        if value.get("payloadType").is_some() {
            let statement = moat_audit::verify_attestation(&value, &pinned)?;
            outln!(
                "verified: the attestation of {} is signed by {pinned}",
                moat_text::escaped(statement["predicate"]["run"].as_str().unwrap_or("?"))
            )?;
            return Ok(0);
        }
        let bundle = Bundle::parse(&bytes)?;
        return report(&bundle.run, &bundle.verify(&pinned)?, &pinned);
    }
    let record = run_of(ctx, target)?;
    let entries = entries_of(ctx, &record)?;
    let dir = ctx.store.run_dir(&record.id);
    let report_of = moat_audit::verify(record.id.as_str(), &entries, &pinned, &DirFiles(&dir))?;
    report(record.id.as_str(), &report_of, &pinned)
}

/// What `verify` found. A bundle's run and file names are a file's words until verified
/// (and a run's files are named by the run), so they are shown as text.
fn report(run: &str, report: &Report, pinned: &str) -> Result<i32> {
    let run = moat_text::escaped(run);
    if report.ok() {
        outln!(
            "verified: the audit log of {run} is intact — {} entries, {} signed checkpoints by {pinned}, closed",
            report.entries,
            report.checkpoints
        )?;
        return Ok(0);
    }
    outln!(
        "NOT verified: the audit log of {run} ({} entries) has {} problem(s):",
        report.entries,
        report.problems.len()
    )?;
    for problem in &report.problems {
        outln!("  - {}", moat_text::escaped(&problem.to_string()))?;
    }
    Ok(1)
}

fn export(ctx: &Context, run: Option<&str>, output: &Path, attestation: bool) -> Result<i32> {
    let record = run_of(ctx, run)?;
    let entries = entries_of(ctx, &record)?;
    let key = AuditKey::load_or_create(&ctx.home().audit_key_file())?;
    let bytes = if attestation {
        let commit = git_head(&record.workspace);
        let envelope = moat_audit::attestation(
            record.id.as_str(),
            &entries,
            &record.workspace,
            commit.as_deref(),
            &key,
        );
        serde_json::to_vec_pretty(&envelope)?
    } else {
        let bundle = Bundle::make(
            record.id.as_str(),
            entries,
            &ctx.store.run_dir(&record.id),
            &key,
        )?;
        serde_json::to_vec_pretty(&bundle)?
    };
    moat_home::write_atomic(output, &bytes)
        .with_context(|| format!("writing `{}`", output.display()))?;
    outln!(
        "Exported the audit log of {} to {}.\nVerify it anywhere with:\n  moat audit verify {} --key {}",
        record.id,
        output.display(),
        output.display(),
        key.fingerprint()
    )?;
    Ok(0)
}

/// The workspace's git commit, if it is a repository. Its own `.git` only, named
/// outright (no discovery: a run could leave a bare repository at the workspace's top),
/// and neither the user's nor the system's git configuration.
fn git_head(workspace: &Path) -> Option<String> {
    let out = std::process::Command::new("git")
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_DIR", workspace.join(".git"))
        .args(["-c", "core.fsmonitor=false", "rev-parse", "HEAD"])
        .current_dir(workspace)
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}
