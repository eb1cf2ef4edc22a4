//! Error output: `error: what happened` then, when there is one, `hint: what to do`.

use std::fmt;

/// An error in what the user asked, with the way to fix it.
#[derive(Debug)]
pub struct UserError {
    message: String,
    hint: Option<String>,
}

impl UserError {
    pub fn new(message: impl Into<String>) -> Self {
        UserError {
            message: message.into(),
            hint: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for UserError {}

/// Print an error chain and the first hint any error in it offers.
pub fn print_error(err: &anyhow::Error) {
    // An error may quote what a run or a repository chose (a name, a line of a build's
    // output, a file's content): it is shown as text.
    use moat_text::escaped_text;
    crate::ui::errln!("error: {}", escaped_text(&message(err)));
    if let Some(details) = details(err) {
        crate::ui::errln!("{}", escaped_text(&details));
    }
    if let Some(hint) = hint(err) {
        crate::ui::errln!("hint: {}", escaped_text(&hint));
    }
}

/// The error and its causes on one line, each said once.
pub fn message(err: &anyhow::Error) -> String {
    let mut message = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        // thiserror's `transparent` and `{0}` repeat the source; say it once.
        if !message.contains(&cause) {
            message.push_str(": ");
            message.push_str(&cause);
        }
    }
    message
}

/// The first hint any error in the chain offers.
pub fn hint(err: &anyhow::Error) -> Option<String> {
    err.chain()
        .find_map(|cause| match cause.downcast_ref::<UserError>() {
            Some(e) => e.hint.clone(),
            None => library_hint(cause),
        })
}

/// What `cause` says to do, if it is one of the libraries' errors that can say it. Every
/// library type with a `hint()` is listed here once; a test (below) fails when one is
/// missing, so no hint is lost on its way to the user.
fn library_hint(cause: &(dyn std::error::Error + 'static)) -> Option<String> {
    // A failed build whose output shows a known cause (a download location that does not
    // answer, HTTPS re-signed) says which setting fixes it, not just "fix the step".
    if let Some(cause) = build_output(cause).and_then(moat_image::diagnose_build) {
        return Some(cause.advice());
    }
    macro_rules! ask {
        ($($error:ty),* $(,)?) => {
            $(
                if let Some(e) = cause.downcast_ref::<$error>() {
                    return e.hint().map(Into::into);
                }
            )*
        };
    }
    ask!(
        moat_run::RunError,
        moat_container::RuntimeError,
        moat_config::ConfigErrors,
        moat_config::ConfigError,
        moat_image::DepError,
        moat_image::CaError,
        moat_providers::ProviderError,
        moat_credentials::CredentialError,
        moat_credentials::KeyError,
        moat_proxy::ProxyError,
        moat_proxy::CaError,
        moat_proxy::ConfigError,
        moat_hosts::HostsError,
        moat_trust::TrustError,
        moat_home::ReadError,
        moat_audit::AuditError,
        moat_ssh::SshError,
        moat_snapshot::SnapshotError,
    );
    None
}

/// Extra lines some errors carry: the output of a failed build step, the candidates of
/// an ambiguous run.
fn details(err: &anyhow::Error) -> Option<String> {
    use moat_run::RunError;
    err.chain().find_map(|cause| {
        if let Some(output) = build_output(cause) {
            if output.is_empty() {
                return None;
            }
            let mut text = String::from("output of the failing step:\n");
            for line in output {
                text.push_str("  | ");
                text.push_str(line);
                text.push('\n');
            }
            return Some(text.trim_end().to_owned());
        }
        match cause.downcast_ref::<RunError>() {
            Some(RunError::AmbiguousRun { candidates, .. }) => {
                Some(format!("candidates:\n{}", super::runs_table(candidates)))
            }
            Some(RunError::NoSuchRun { candidates, .. }) if !candidates.is_empty() => {
                Some(format!("runs:\n{}", super::runs_table(candidates)))
            }
            _ => None,
        }
    })
}

/// The last lines a failed image build step printed, if `cause` is that failure.
fn build_output<'a>(cause: &'a (dyn std::error::Error + 'static)) -> Option<&'a [String]> {
    use moat_container::RuntimeError;
    let runtime = cause.downcast_ref::<RuntimeError>().or_else(|| {
        match cause.downcast_ref::<moat_run::RunError>() {
            Some(moat_run::RunError::Runtime(e)) => Some(e),
            _ => None,
        }
    });
    match runtime {
        Some(RuntimeError::Build { output, .. }) => Some(output),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    /// Every library error type that has a `hint()`, found in the sources, must be in
    /// `library_hint`'s list.
    #[test]
    fn every_library_error_with_a_hint_is_asked() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let listed = include_str!("error.rs");
        let mut missing = Vec::new();
        let mut found = 0;
        for krate in fs_err::read_dir(&root).unwrap().flatten() {
            let name = krate.file_name().to_string_lossy().into_owned();
            if name == "moat" || name == "moat-test-support" {
                continue;
            }
            let mut stack = vec![krate.path().join("src")];
            while let Some(dir) = stack.pop() {
                let Ok(entries) = fs_err::read_dir(&dir) else {
                    continue;
                };
                for entry in entries.flatten() {
                    let path = entry.path();
                    if path.is_dir() {
                        stack.push(path);
                        continue;
                    }
                    let text = fs_err::read_to_string(&path).unwrap_or_default();
                    let mut current = None;
                    for line in text.lines() {
                        if let Some(rest) = line.strip_prefix("impl ") {
                            current = rest.split([' ', '{', '<']).next().map(str::to_owned);
                        }
                        if line.trim_start().starts_with("pub fn hint(&self)")
                            && let Some(ty) = &current
                        {
                            found += 1;
                            let path = format!("        {}::{ty},", name.replace('-', "_"));
                            if !listed.contains(&path) {
                                missing.push(path.trim().to_owned());
                            }
                        }
                    }
                }
            }
        }
        assert!(found >= 14, "the scan found only {found} hints");
        assert!(missing.is_empty(), "add to `library_hint`: {missing:?}");
    }
}
