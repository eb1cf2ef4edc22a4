//! `moat grant anthropic`: `ANTHROPIC_API_KEY` without a menu, otherwise the guide's
//! menu: (1) a Claude subscription token from `claude setup-token`, (2) an API key with
//! an optional check, (3) Claude Code's own credentials imported.

use anyhow::Result;
use jiff::Timestamp;
use moat_credentials::{
    CLAUDE_CODE_CREDENTIALS_PATH, CredentialError, CredentialKind, CredentialSource, Secret,
    import_claude_code_credentials,
};
use moat_providers::Provider;

use super::{Granting, ValidateChoice, credential_error, setup_token};
use crate::ui::prompt;
use crate::ui::{UserError, outln};

const MENU: &str = "
Choose authentication method:

  1. Claude subscription (recommended)
     Uses 'claude setup-token' to get a long-lived OAuth token.
     Requires a Claude Pro/Max subscription.

  2. Anthropic API key
     Use an API key from console.anthropic.com
     Billed per token to your API account.

  3. Import existing Claude Code credentials
     Use OAuth tokens from your local Claude Code installation.

";

const VALIDATE_QUESTION: &str =
    "Validate API key with a test request? This makes a small API call. [Y/n]: ";

pub(super) async fn grant(g: &Granting<'_>, provider: &Provider) -> Result<()> {
    if let Some(secret) = g.ctx.env.token("ANTHROPIC_API_KEY") {
        outln!("Using ANTHROPIC_API_KEY from the environment.")?;
        let source = CredentialSource::Env {
            var: "ANTHROPIC_API_KEY".into(),
        };
        return save_entered(g, provider, secret.clone(), source).await;
    }
    if !g.interactive {
        return Err(
            UserError::new("no terminal to show the `moat grant anthropic` menu")
                .hint(
                    "set ANTHROPIC_API_KEY and run `moat grant anthropic` again, as in \
                 `export ANTHROPIC_API_KEY=\"sk-ant-...\" && moat grant anthropic`",
                )
                .into(),
        );
    }
    crate::ui::err!("{MENU}");
    let Some(choice) = prompt::choose(
        "Enter choice [1, 2, or 3]: ",
        3,
        "Please enter 1, 2, or 3.\n",
    )?
    else {
        return Err(UserError::new("no choice was made; nothing was saved")
            .hint("run `moat grant anthropic` again and enter 1, 2 or 3")
            .into());
    };
    outln!()?;
    match choice {
        1 => subscription(g, provider).await,
        2 => {
            outln!("Enter your Anthropic API key.")?;
            outln!("You can find or create one at: https://console.anthropic.com/settings/keys")?;
            outln!()?;
            let secret = g.ask_secret("API Key: ")?;
            save_entered(g, provider, secret, CredentialSource::Pasted).await
        }
        _ => import(g),
    }
}

/// An entered or environment value: an API key (checked if wanted), or, if it is shaped
/// like one, a Claude OAuth token.
async fn save_entered(
    g: &Granting<'_>,
    provider: &Provider,
    secret: Secret,
    source: CredentialSource,
) -> Result<()> {
    let kind = provider.credential_kind_for(secret.expose());
    if matches!(kind, CredentialKind::OAuthToken { .. }) {
        let credential = g.credential(provider, kind, secret, source)?;
        let path = g.save(&credential)?;
        outln!("Anthropic credential saved to {}", g.show_path(&path))?;
        return Ok(());
    }
    if let Some(problem) = malformed_api_key(secret.expose()) {
        crate::ui::errln!(
            "moat: warning: this does not look like an Anthropic API key: {problem}\n\
             hint: Anthropic API keys start with `sk-ant-`; `moat grant anthropic --validate` \
             checks a key with a request"
        );
    }
    let check = match g.validate {
        ValidateChoice::Always => true,
        ValidateChoice::Never => false,
        ValidateChoice::Default if g.interactive => {
            outln!()?;
            prompt::confirm(VALIDATE_QUESTION, true)?
        }
        ValidateChoice::Default => false,
    };
    if check {
        outln!()?;
        g.validate(provider, &kind, &secret).await?;
    }
    let credential = g.credential(provider, kind, secret, source)?;
    let path = g.save(&credential)?;
    outln!("Anthropic API key saved to {}", g.show_path(&path))?;
    Ok(())
}

/// What is wrong with `key` as an Anthropic API key, if anything is plainly wrong (the
/// service alone can tell whether it is valid).
fn malformed_api_key(key: &str) -> Option<&'static str> {
    if key.chars().any(char::is_whitespace) {
        Some("it holds spaces or line breaks")
    } else if !key.starts_with("sk-ant-") {
        Some("it does not start with `sk-ant-`")
    } else if key.len() < 40 {
        Some("it is too short")
    } else {
        None
    }
}

/// Option 1: `claude setup-token` in a terminal of its own.
async fn subscription(g: &Granting<'_>, provider: &Provider) -> Result<()> {
    outln!("Running 'claude setup-token' to obtain authentication token...")?;
    outln!("This may open a browser for authentication.")?;
    outln!()?;
    let token = tokio::task::spawn_blocking(setup_token::run)
        .await
        .map_err(|e| anyhow::anyhow!("`claude setup-token` did not finish: {e}"))??;
    let kind = CredentialKind::OAuthToken {
        // The command does not say; its tokens last about a year.
        expires_at: None,
        subscription_type: None,
        scopes: Vec::new(),
        refresh_token: None,
    };
    let source = CredentialSource::Command {
        command: "claude setup-token".into(),
    };
    let credential = g.credential(provider, kind, token, source)?;
    let path = g.save(&credential)?;
    outln!()?;
    outln!("Anthropic credential saved to {}", g.show_path(&path))?;
    outln!()?;
    outln!("You can now run 'moat claude' to start Claude Code.")?;
    Ok(())
}

/// Option 3: Claude Code's credentials (the macOS keychain item, else
/// `~/.claude/.credentials.json`).
fn import(g: &Granting<'_>) -> Result<()> {
    let (bytes, origin) = read_claude_code_credentials(g)?;
    let credential = import_claude_code_credentials(&bytes, &origin, Timestamp::now())
        .map_err(credential_error)?;
    let (subscription, expires) = match credential.kind() {
        CredentialKind::OAuthToken {
            subscription_type,
            expires_at,
            ..
        } => (subscription_type.clone(), *expires_at),
        _ => (None, None),
    };
    outln!("Found Claude Code credentials.")?;
    outln!(
        "  Subscription: {}",
        subscription.as_deref().unwrap_or("unknown")
    )?;
    outln!(
        "  Expires: {}",
        expires
            .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_else(|| "never".into())
    )?;
    outln!()?;
    let path = g.save(&credential)?;
    outln!("Claude Code credentials imported to {}", g.show_path(&path))?;
    Ok(())
}

fn read_claude_code_credentials(g: &Granting<'_>) -> Result<(zeroize::Zeroizing<Vec<u8>>, String)> {
    if cfg!(target_os = "macos")
        && let Some(bytes) = keychain_item()
    {
        return Ok((
            bytes,
            "the macOS keychain item `Claude Code-credentials`".into(),
        ));
    }
    let origin = format!("~/{CLAUDE_CODE_CREDENTIALS_PATH}");
    let not_found = |reason: String| {
        credential_error(CredentialError::NoClaudeCodeCredentials {
            origin: origin.clone(),
            reason,
        })
    };
    let Some(home) = g.ctx.env.home.as_deref() else {
        return Err(not_found("the home directory is unknown".into()));
    };
    match moat_home::read_bounded(
        &home.join(CLAUDE_CODE_CREDENTIALS_PATH),
        moat_home::FileKind::CLAUDE_CREDENTIALS,
    ) {
        Ok(bytes) => Ok((zeroize::Zeroizing::new(bytes), origin.clone())),
        Err(e) if e.is_not_found() => Err(not_found("the file does not exist".into())),
        // A FIFO, a device, a huge file: said as such, with its own fix.
        Err(e) => Err(e.into()),
    }
}

/// The JSON Claude Code keeps in the macOS keychain, if it is there.
fn keychain_item() -> Option<zeroize::Zeroizing<Vec<u8>>> {
    let output = std::process::Command::new("security")
        .args([
            "find-generic-password",
            "-s",
            "Claude Code-credentials",
            "-w",
        ])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let bytes = zeroize::Zeroizing::new(output.stdout);
    (output.status.success() && !bytes.is_empty()).then_some(bytes)
}

#[cfg(test)]
mod tests {
    use super::malformed_api_key;

    #[test]
    fn plainly_malformed_keys_are_named() {
        let good = "sk-ant-api03-TESTkeyVALUE-0123456789abcdefghijklmnopqrstuvwxyz";
        assert_eq!(malformed_api_key(good), None);
        assert_eq!(
            malformed_api_key("notakey"),
            Some("it does not start with `sk-ant-`")
        );
        assert_eq!(malformed_api_key("sk-ant-x"), Some("it is too short"));
        assert_eq!(
            malformed_api_key(&format!("{good}\n")),
            Some("it holds spaces or line breaks")
        );
    }
}
