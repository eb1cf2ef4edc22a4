//! `moat grant PROVIDER`, `moat grant list [--json]`, `moat grant providers [--json]` and
//! `moat revoke PROVIDER`: getting a credential from the environment, a tool or the
//! user, checking it with the service, and keeping it in the encrypted store.

mod anthropic;
mod mcp;
mod setup_token;
mod ssh;

use std::path::Path;

use anyhow::Result;
use jiff::Timestamp;
use moat_credentials::{
    ChainKeySource, Credential, CredentialError, CredentialKind, CredentialSource, CredentialStore,
    EncryptionKey, ExpiryStatus, ListedCredential, ProviderName, Secret,
};
use moat_providers::{Provider, ProviderError, ProviderKind, ProviderRegistry};

use crate::cli::{GrantArgs, GrantCommand, RevokeArgs};
use crate::settings::{Context, GrantSettings};
use crate::ui::prompt::{self, SecretAnswer};
use crate::ui::{UserError, out, outln};

/// Whether to check a credential with the service before saving it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValidateChoice {
    /// `--validate`.
    Always,
    /// `--no-validate`.
    Never,
    /// Each provider's default: ask for Anthropic API keys at a terminal, check the
    /// others (their checks are free).
    Default,
}

/// Everything one `moat grant` works with.
struct Granting<'a> {
    ctx: &'a Context,
    settings: GrantSettings,
    store: CredentialStore,
    validate: ValidateChoice,
    interactive: bool,
}

pub async fn grant(ctx: &Context, args: GrantArgs) -> Result<i32> {
    match args.command {
        Some(GrantCommand::List { json }) => return list(ctx, json),
        Some(GrantCommand::Providers { json }) => return providers(ctx, json),
        None => {}
    }
    if args.provider.as_deref() == Some("ssh") {
        return ssh::grant(ctx, &args).await;
    }
    if args.provider.as_deref() == Some("mcp") {
        return mcp::grant(ctx, &args);
    }
    if args.name.is_some() {
        return Err(
            UserError::new("only `moat grant mcp NAME` takes a second name")
                .hint("for example `moat grant github`, or `moat grant mcp notion`")
                .into(),
        );
    }
    if args.host.is_some() || args.key.is_some() || !args.host_key.is_empty() {
        return Err(
            UserError::new("`--host`, `--key` and `--host-key` are for `moat grant ssh`")
                .hint("for example `moat grant ssh --host github.com`")
                .into(),
        );
    }
    let registry = registry(ctx)?;
    let Some(name) = args.provider else {
        let names: Vec<String> = registry
            .list()
            .iter()
            .map(|p| format!("`{}`", p.name()))
            .collect();
        return Err(
            UserError::new("which provider? give one, as in `moat grant github`")
                .hint(format!("the providers are {}", names.join(", ")))
                .into(),
        );
    };
    let provider = registry.require(&name).map_err(provider_error)?.clone();
    let settings = crate::settings::grant_settings(ctx)?;
    let store = open_store(ctx, &settings)?;
    let granting = Granting {
        ctx,
        settings,
        store,
        validate: if args.validate {
            ValidateChoice::Always
        } else if args.no_validate {
            ValidateChoice::Never
        } else {
            ValidateChoice::Default
        },
        interactive: prompt::stdin_is_terminal(),
    };
    match provider.kind() {
        ProviderKind::Anthropic => anthropic::grant(&granting, &provider).await?,
        _ => granting.grant_token(&provider).await?,
    }
    Ok(0)
}

impl Granting<'_> {
    /// GitHub, OpenAI and YAML providers: a token from the environment, `gh auth token`
    /// (GitHub, at a terminal), or a hidden prompt; checked, then saved.
    async fn grant_token(&self, provider: &Provider) -> Result<()> {
        let (secret, source) = self.obtain_token(provider)?;
        let kind = provider.credential_kind_for(secret.expose());
        if self.validate != ValidateChoice::Never {
            self.validate(provider, &kind, &secret).await?;
        }
        let credential = self.credential(provider, kind, secret, source)?;
        let path = self.save(&credential)?;
        let what = match provider.kind() {
            ProviderKind::GitHub => "GitHub token".to_owned(),
            ProviderKind::OpenAi => "OpenAI API key".to_owned(),
            _ => format!("{} token", provider.name()),
        };
        outln!("{what} saved to {}", self.show_path(&path))?;
        Ok(())
    }

    fn obtain_token(&self, provider: &Provider) -> Result<(Secret, CredentialSource)> {
        if let Some(found) = self.token_from_env(provider)? {
            return Ok(found);
        }
        if !self.interactive {
            return Err(self.no_terminal(provider));
        }
        if matches!(provider.kind(), ProviderKind::GitHub)
            && let Some(token) = gh_auth_token()
        {
            if prompt::confirm("Use token from gh CLI? [Y/n]: ", true)? {
                return Ok((
                    token,
                    CredentialSource::Command {
                        command: "gh auth token".into(),
                    },
                ));
            }
            outln!()?;
        }
        let intro = match provider.kind() {
            ProviderKind::GitHub => "Enter a GitHub personal access token.\n\
                 You can create one at: https://github.com/settings/tokens\n"
                .to_owned(),
            ProviderKind::OpenAi => "Enter your OpenAI API key.\n\
                 You can find or create one at: https://platform.openai.com/api-keys\n"
                .to_owned(),
            ProviderKind::Header(spec) => match &spec.prompt {
                Some(label) => format!("Enter the {label}.\n"),
                None => format!("Enter the token for `{}`.\n", provider.name()),
            },
            ProviderKind::Anthropic => String::new(),
        };
        out!("{intro}\n")?;
        let secret = self.ask_secret(&format!("{}: ", provider.prompt()))?;
        outln!()?;
        Ok((secret, CredentialSource::Pasted))
    }

    /// The first of the provider's variables that is set.
    fn token_from_env(&self, provider: &Provider) -> Result<Option<(Secret, CredentialSource)>> {
        for var in provider.token_env() {
            if let Some(secret) = self.ctx.env.token(var) {
                outln!("Using {var} from the environment.")?;
                return Ok(Some((
                    secret.clone(),
                    CredentialSource::Env {
                        var: var.to_owned(),
                    },
                )));
            }
        }
        Ok(None)
    }

    /// The error for "a question would be needed, but nobody can answer".
    fn no_terminal(&self, provider: &Provider) -> anyhow::Error {
        let vars = provider.token_env();
        let what = match provider.kind() {
            ProviderKind::GitHub => "the GitHub token".to_owned(),
            ProviderKind::OpenAi => "the OpenAI API key".to_owned(),
            ProviderKind::Anthropic => "the Anthropic credential".to_owned(),
            ProviderKind::Header(_) => format!("the `{}` token", provider.name()),
        };
        UserError::new(format!("no terminal to ask for {what}"))
            .hint(format!(
                "set {} and run `moat grant {}` again",
                join_or(&vars),
                provider.name()
            ))
            .into()
    }

    fn ask_secret(&self, label: &str) -> Result<Secret> {
        match prompt::ask_secret(label)? {
            SecretAnswer::Entered(secret) if !secret.is_empty() => Ok(secret),
            SecretAnswer::Entered(_) | SecretAnswer::Eof => {
                Err(UserError::new("nothing was entered; nothing was saved")
                    .hint("run the command again and paste the value at the prompt")
                    .into())
            }
            SecretAnswer::Cancelled => Err(moat_run::RunError::Cancelled.into()),
        }
    }

    /// Check the credential with the service; prints what it learnt.
    async fn validate(
        &self,
        provider: &Provider,
        kind: &CredentialKind,
        secret: &Secret,
    ) -> Result<()> {
        if !moat_providers::can_validate(provider, kind) {
            return Ok(());
        }
        let what = match provider.kind() {
            ProviderKind::Anthropic | ProviderKind::OpenAi => "API key",
            _ => "token",
        };
        outln!("Validating {what}...")?;
        let validated = moat_providers::validate(provider, kind, secret, &self.settings.http)
            .await
            .map_err(provider_error)?;
        match validated.identity {
            Some(login) => outln!("Authenticated as: {login}")?,
            None => outln!("{} is valid.", capitalise(what))?,
        }
        Ok(())
    }

    fn credential(
        &self,
        provider: &Provider,
        kind: CredentialKind,
        secret: Secret,
        source: CredentialSource,
    ) -> Result<Credential> {
        Credential::new(
            provider.name().clone(),
            kind,
            secret,
            source,
            Timestamp::now(),
        )
        .map_err(credential_error)
    }

    fn save(&self, credential: &Credential) -> Result<std::path::PathBuf> {
        self.store.save(credential).map_err(credential_error)
    }

    fn show_path(&self, path: &Path) -> String {
        tilde(path, self.ctx.env.home.as_deref())
    }
}

/// `gh auth token`, if `gh` is installed and logged in.
fn gh_auth_token() -> Option<Secret> {
    let output = std::process::Command::new("gh")
        .args(["auth", "token"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let token = String::from_utf8(output.stdout).ok()?;
    let token = token.trim();
    (!token.is_empty()).then(|| Secret::new(token))
}

/// `moat grant list [--json]`.
fn list(ctx: &Context, json: bool) -> Result<i32> {
    let dir = ctx.home().credentials_dir();
    let ssh_grants = ssh::list(ctx)?;
    if !dir.exists() {
        // Nothing granted yet: no reason to create the encryption key.
        if json {
            outln!("[]")?;
        } else {
            crate::ui::errln!(
                "No credentials granted yet. Grant one with `moat grant <provider>`."
            );
        }
        return Ok(0);
    }
    // SSH grants hold no secret: listing only them needs no encryption key.
    let has_encrypted = fs_err::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name().to_string_lossy().ends_with(".enc"))
        })
        .unwrap_or(true);
    let listed = if has_encrypted {
        let settings = crate::settings::grant_settings(ctx)?;
        let store = open_store(ctx, &settings)?;
        store.list().map_err(credential_error)?
    } else {
        Vec::new()
    };
    let now = Timestamp::now();
    if json {
        let ssh_items = ssh_grants.iter().map(|g| {
            serde_json::json!({
                "provider": g.name(),
                "kind": "ssh-key",
                "key_fingerprint": g.fingerprint,
                "key_comment": g.comment,
                "host_keys": ssh::host_key_fingerprints(g),
                "host_keys_from": g.host_keys_from,
                "granted_at": g.granted_at,
                "status": "ok",
            })
        });
        let items: Vec<serde_json::Value> = listed
            .iter()
            .map(|item| match item {
                ListedCredential::Readable(s) => serde_json::json!({
                    "provider": s.provider,
                    "kind": s.kind,
                    "subscription_type": s.subscription_type,
                    "source": s.source.to_string(),
                    "expires_at": s.expires_at,
                    "granted_at": s.granted_at,
                    "status": match s.expiry_status(now) {
                        ExpiryStatus::Fresh => "ok",
                        ExpiryStatus::ExpiresSoon(_) => "expires-soon",
                        ExpiryStatus::Expired => "expired",
                    },
                }),
                ListedCredential::Unreadable { path, error } => serde_json::json!({
                    "provider": provider_of(path),
                    "status": "unreadable",
                    "error": error.to_string(),
                }),
            })
            .chain(ssh_items)
            .collect();
        outln!("{}", crate::ui::json(&items)?)?;
        return Ok(0);
    }
    if listed.is_empty() && ssh_grants.is_empty() {
        crate::ui::errln!("No credentials granted yet. Grant one with `moat grant <provider>`.");
        return Ok(0);
    }
    let header = ["PROVIDER", "KIND", "SOURCE", "EXPIRES", "GRANTED"].map(String::from);
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for item in &listed {
        match item {
            ListedCredential::Readable(s) => {
                let expires = match (s.expires_at, s.expiry_status(now)) {
                    (None, _) => "-".to_owned(),
                    (Some(at), ExpiryStatus::Expired) => format!("{} (expired)", short_time(at)),
                    (Some(at), ExpiryStatus::ExpiresSoon(_)) => {
                        format!("{} (soon)", short_time(at))
                    }
                    (Some(at), ExpiryStatus::Fresh) => short_time(at),
                };
                let kind = match &s.subscription_type {
                    Some(plan) => format!("{} ({plan})", s.kind),
                    None => s.kind.to_string(),
                };
                rows.push([
                    s.provider.to_string(),
                    kind,
                    s.source.to_string(),
                    expires,
                    short_time(s.granted_at),
                ]);
            }
            ListedCredential::Unreadable { path, error } => {
                rows.push([
                    provider_of(path),
                    "unreadable".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                ]);
                problems.push(error);
            }
        }
    }
    for g in &ssh_grants {
        rows.push([
            g.name(),
            "SSH key".into(),
            format!("agent: {} ({})", g.comment, g.fingerprint),
            "-".into(),
            short_time(g.granted_at),
        ]);
    }
    out!("{}", crate::ui::table(&header, &rows))?;
    for error in problems {
        crate::ui::warning(&error.to_string());
        if let Some(hint) = error.hint() {
            crate::ui::errln!("hint: {hint}");
        }
    }
    Ok(0)
}

/// `moat grant providers [--json]`.
fn providers(ctx: &Context, json: bool) -> Result<i32> {
    let registry = registry(ctx)?;
    let summaries: Vec<_> = registry.list().iter().map(Provider::summary).collect();
    if json {
        outln!("{}", crate::ui::json(&summaries)?)?;
        return Ok(0);
    }
    let header = ["PROVIDER", "TYPE", "HOSTS", "DESCRIPTION"].map(String::from);
    let rows: Vec<[String; 4]> = summaries
        .iter()
        .map(|s| {
            let name = if s.aliases.is_empty() {
                s.name.clone()
            } else {
                format!("{} ({})", s.name, s.aliases.join(", "))
            };
            [
                name,
                s.origin.to_owned(),
                s.hosts.join(", "),
                s.description.clone(),
            ]
        })
        .collect();
    out!("{}", crate::ui::table(&header, &rows))?;
    Ok(0)
}

/// `moat revoke PROVIDER`.
pub fn revoke(ctx: &Context, args: RevokeArgs) -> Result<i32> {
    if args.provider.starts_with("ssh:") {
        return ssh::revoke(ctx, &args.provider);
    }
    let registry = registry(ctx)?;
    // A credential of a provider whose YAML file is gone can still be revoked by name.
    let name = match registry.get(&args.provider) {
        Some(provider) => provider.name().clone(),
        None => ProviderName::parse(&args.provider).map_err(|_| {
            provider_error(ProviderError::UnknownProvider {
                name: args.provider.clone(),
            })
        })?,
    };
    // Removing a file needs no key: a placeholder key keeps the keyring untouched.
    let store = CredentialStore::new(
        ctx.home().credentials_dir(),
        EncryptionKey::from_bytes([0; 32]),
    );
    match store.remove(&name) {
        Ok(path) => {
            outln!(
                "Revoked `{name}` (removed {})",
                tilde(&path, ctx.env.home.as_deref())
            )?;
            Ok(0)
        }
        Err(CredentialError::NotFound { .. }) => {
            Err(UserError::new(format!("`{name}` is not granted"))
                .hint("`moat grant list` shows the granted credentials")
                .into())
        }
        Err(e) => Err(credential_error(e)),
    }
}

fn registry(ctx: &Context) -> Result<ProviderRegistry> {
    ProviderRegistry::load(&ctx.home().providers_dir()).map_err(provider_error)
}

fn open_store(ctx: &Context, settings: &GrantSettings) -> Result<CredentialStore> {
    let keys = ChainKeySource::for_home(ctx.home(), settings.keyring);
    let (key, origin) = keys.obtain().map_err(|e| credential_error(e.into()))?;
    if let moat_credentials::KeyOrigin::FileBecauseKeyringUnavailable { reason } = origin {
        tracing::debug!(%reason, "the OS keyring is unavailable; the key is in a file");
    }
    Ok(CredentialStore::in_home(ctx.home(), key))
}

/// A library error as the CLI shows it: message and hint.
pub(crate) fn provider_error(e: ProviderError) -> anyhow::Error {
    let mut error = UserError::new(e.to_string());
    if let Some(hint) = e.hint() {
        error = error.hint(hint);
    }
    error.into()
}

pub(crate) fn credential_error(e: CredentialError) -> anyhow::Error {
    let mut error = UserError::new(e.to_string());
    if let Some(hint) = e.hint() {
        error = error.hint(hint);
    }
    error.into()
}

/// `path` with the home directory shown as `~`.
fn tilde(path: &Path, home: Option<&Path>) -> String {
    match home.and_then(|home| path.strip_prefix(home).ok()) {
        Some(rest) if !rest.as_os_str().is_empty() => format!("~/{}", rest.display()),
        _ => path.display().to_string(),
    }
}

/// The provider name of a credential file (`github.enc` → `github`).
fn provider_of(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A time to the minute, in UTC: `2026-02-15 10:30`.
fn short_time(at: Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M").to_string()
}

/// `A`, `A or B`, `A, B or C`.
fn join_or(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_under_home_use_a_tilde() {
        let home = Path::new("/home/u");
        assert_eq!(
            tilde(
                Path::new("/home/u/.moat/credentials/github.enc"),
                Some(home)
            ),
            "~/.moat/credentials/github.enc"
        );
        assert_eq!(
            tilde(Path::new("/srv/moat/x.enc"), Some(home)),
            "/srv/moat/x.enc"
        );
        assert_eq!(tilde(Path::new("/home/u"), Some(home)), "/home/u");
        assert_eq!(tilde(Path::new("/home/u2/x"), Some(home)), "/home/u2/x");
        assert_eq!(tilde(Path::new("/x"), None), "/x");
    }

    #[test]
    fn lists_of_variables_read_naturally() {
        assert_eq!(join_or(&["A"]), "A");
        assert_eq!(
            join_or(&["GITHUB_TOKEN", "GH_TOKEN"]),
            "GITHUB_TOKEN or GH_TOKEN"
        );
        assert_eq!(join_or(&["A", "B", "C"]), "A, B or C");
    }

    #[test]
    fn text_helpers() {
        assert_eq!(capitalise("token"), "Token");
    }
}
