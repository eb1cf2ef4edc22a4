//! Commands about moat itself, which need no `MOAT_HOME` and no Docker: `moat version`,
//! `moat completion SHELL`, `moat man [--dir DIR]`.

use anyhow::{Context as _, Result};
use clap::CommandFactory;

use crate::cli::{Cli, CompletionArgs, ManArgs, VersionArgs};
use crate::ui::outln;

/// `moat version [--json]`: the version, and the commit and its date when the binary was
/// built from a git checkout.
pub fn version(args: &VersionArgs) -> Result<i32> {
    let commit = option_env!("MOAT_GIT_COMMIT");
    let date = option_env!("MOAT_GIT_DATE");
    if args.json {
        let json = serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "commit": commit,
            "commit_date": date,
        });
        outln!("{}", crate::ui::json(&json)?)?;
    } else {
        outln!("moat {}", env!("MOAT_VERSION"))?;
    }
    Ok(0)
}

/// `moat completion bash|zsh|fish|...`: the completion script on stdout.
pub fn completion(args: &CompletionArgs) -> Result<i32> {
    let mut command = without_hidden(Cli::command());
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut command, "moat", &mut out);
    use std::io::Write as _;
    std::io::stdout().lock().write_all(&out)?;
    Ok(0)
}

/// `command` without its hidden subcommands (`__supervise`), which clap_complete would
/// offer otherwise.
fn without_hidden(command: clap::Command) -> clap::Command {
    let mut visible = clap::Command::new("moat")
        .version(env!("MOAT_VERSION"))
        .propagate_version(true);
    if let Some(about) = command.get_about() {
        visible = visible.about(about.clone());
    }
    for arg in command.get_arguments() {
        visible = visible.arg(arg.clone());
    }
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        visible = visible.subcommand(sub.clone());
    }
    visible
}

/// `moat man`: `moat(1)` on stdout; with `--dir`, it and `moat-COMMAND(1)` for every
/// visible command (`moat-grant-list.1`, ...), as files.
pub fn man(args: &ManArgs) -> Result<i32> {
    let command = Cli::command();
    let Some(dir) = &args.dir else {
        let mut out = Vec::new();
        clap_mangen::Man::new(command).render(&mut out)?;
        use std::io::Write as _;
        std::io::stdout().lock().write_all(&out)?;
        return Ok(0);
    };
    fs_err::create_dir_all(dir)?;
    clap_mangen::generate_to(command, dir)
        .with_context(|| format!("writing the man pages into `{}`", dir.display()))?;
    let written = fs_err::read_dir(dir)?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".1"))
        .count();
    outln!("wrote {written} man pages to {}", dir.display())?;
    Ok(0)
}
