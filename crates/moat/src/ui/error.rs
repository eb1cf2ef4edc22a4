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
    crate::ui::errln!("error: {}", message(err));
    if let Some(details) = details(err) {
        crate::ui::errln!("{details}");
    }
    if let Some(hint) = hint(err) {
        crate::ui::errln!("hint: {hint}");
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
    err.chain().find_map(|cause| {
        if let Some(e) = cause.downcast_ref::<UserError>() {
            e.hint.clone()
        } else if let Some(e) = cause.downcast_ref::<moat_run::RunError>() {
            e.hint()
        } else if let Some(e) = cause.downcast_ref::<moat_container::RuntimeError>() {
            e.hint()
        } else if let Some(e) = cause.downcast_ref::<moat_config::ConfigErrors>() {
            e.hint().map(str::to_owned)
        } else if let Some(e) = cause.downcast_ref::<moat_image::DepError>() {
            e.hint()
        } else if let Some(e) = cause.downcast_ref::<moat_image::CaError>() {
            e.hint()
        } else if let Some(e) = cause.downcast_ref::<moat_providers::ProviderError>() {
            e.hint()
        } else if let Some(e) = cause.downcast_ref::<moat_credentials::CredentialError>() {
            e.hint()
        } else if let Some(e) = cause.downcast_ref::<moat_credentials::KeyError>() {
            e.hint()
        } else if let Some(e) = cause.downcast_ref::<moat_proxy::CaError>() {
            e.hint()
        } else if let Some(e) = cause.downcast_ref::<moat_proxy::ConfigError>() {
            e.hint()
        } else if let Some(e) = cause.downcast_ref::<moat_trust::TrustError>() {
            e.hint()
        } else {
            None
        }
    })
}

/// Extra lines some errors carry: the output of a failed build step, the candidates of
/// an ambiguous run.
fn details(err: &anyhow::Error) -> Option<String> {
    use moat_container::RuntimeError;
    use moat_run::RunError;
    err.chain().find_map(|cause| {
        let runtime = cause.downcast_ref::<RuntimeError>().or_else(|| {
            match cause.downcast_ref::<RunError>() {
                Some(RunError::Runtime(e)) => Some(e),
                _ => None,
            }
        });
        if let Some(RuntimeError::Build { output, .. }) = runtime {
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
