//! Workspace trust at the command line: before a run acts on a workspace's moat file, the
//! user has approved exactly that content — asked at a terminal, refused without one,
//! approved up front with `--trust` or `moat trust`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::Result;
use moat_config::WorkspaceFile;
use moat_trust::{Summary, TrustState, TrustStore};

use crate::settings::Context;
use crate::ui::{UserError, age, prompt};

/// A workspace file and where it stands.
#[derive(Debug, Clone)]
pub struct FileTrust {
    pub path: PathBuf,
    pub state: TrustState,
}

/// Let the run go on only with a trusted workspace file. `approve` (`--trust`) trusts it
/// as it is; `enforce` is off for commands that only show settings, which report the
/// state instead.
pub fn gate(
    ctx: &Context,
    workspace: &Path,
    file: Option<&WorkspaceFile>,
    approve: bool,
    enforce: bool,
) -> Result<Option<FileTrust>> {
    let Some(file) = file else {
        return Ok(None);
    };
    let store = TrustStore::new(ctx.home());
    let state = store.state(workspace, file.name(), &file.text)?;
    let trusted = |state| {
        Ok(Some(FileTrust {
            path: file.path.clone(),
            state,
        }))
    };
    if state.is_trusted() {
        return trusted(state);
    }
    if approve {
        let record = store.approve(workspace, file.name(), &file.text, jiff::Timestamp::now())?;
        crate::ui::errln!(
            "moat: trusted `{}` as it is now ({})",
            file.path.display(),
            short_hash(&record.sha256)
        );
        return trusted(TrustState::Trusted(record));
    }
    if !enforce {
        return trusted(state);
    }
    if prompt::stdin_is_terminal() && std::io::stderr().is_terminal() {
        crate::ui::err!("{}", explain(file, &state, workspace));
        if prompt::confirm("Trust this file and go on? [y/N] ", false)? {
            let record =
                store.approve(workspace, file.name(), &file.text, jiff::Timestamp::now())?;
            return trusted(TrustState::Trusted(record));
        }
        return Err(UserError::new(format!(
            "`{}` was not trusted; nothing ran",
            file.path.display()
        ))
        .hint(format!(
            "read the file, then `moat trust {}` when it asks only for what you want",
            workspace.display()
        ))
        .into());
    }
    let why = match &state {
        TrustState::Changed(_) => "it changed since you trusted it",
        _ => "a workspace's moat file takes effect only once you trust it",
    };
    Err(UserError::new(format!(
        "`{}` is not trusted: {why}",
        file.path.display()
    ))
    .hint(format!(
        "see what it asks for and trust it with `moat trust {}`, or pass `--trust` to trust it as it is now",
        workspace.display()
    ))
    .into())
}

/// What the user reads before deciding: a new file's requests, or a changed file's diff
/// and its requests now.
pub fn explain(file: &WorkspaceFile, state: &TrustState, workspace: &Path) -> String {
    let summary = Summary::of(&file.config, workspace).render();
    match state {
        TrustState::Changed(previous) => {
            // The file may be a stranger's: its lines are shown as text, so a carriage
            // return or an escape sequence in them cannot redraw the diff.
            let diff = if previous.file == file.name() {
                moat_text::escaped_text(&moat_trust::diff(
                    &previous.content,
                    &file.text,
                    file.name(),
                ))
                .into_owned()
            } else {
                format!(
                    "(you trusted `{}` here; this is `{}`)\n",
                    previous.file,
                    file.name()
                )
            };
            format!(
                "moat: `{}` changed since you trusted it {} ago:\n\n{diff}\nIt now asks for:\n{summary}\n",
                file.path.display(),
                age(previous.trusted_at, jiff::Timestamp::now()),
            )
        }
        _ => format!(
            "moat: `{}` is not trusted yet. A workspace's moat file takes effect only once you \
             trust it, because it may come from someone else's repository. It asks for:\n{summary}\n",
            file.path.display()
        ),
    }
}

/// `sha256:` and the first 12 hex digits: enough to tell versions apart by eye.
pub fn short_hash(hash: &str) -> String {
    hash.chars().take("sha256:".len() + 12).collect()
}
