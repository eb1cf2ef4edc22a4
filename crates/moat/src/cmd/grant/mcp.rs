//! `moat grant mcp NAME`: the credential of a remote MCP server, stored as `mcp-NAME`
//! (asked with a hidden prompt at a terminal, read from standard input otherwise). The
//! workspace file's `mcp[].auth.grant` names it; the run's proxy puts it into
//! `auth.header` on requests to that server's host.

use std::io::Read;

use anyhow::{Context as _, Result};
use jiff::Timestamp;
use moat_credentials::{Credential, CredentialKind, CredentialSource, ProviderName, Secret};
use zeroize::Zeroizing;

use crate::cli::GrantArgs;
use crate::settings::Context;
use crate::ui::prompt::{self, SecretAnswer};
use crate::ui::{UserError, outln};

/// The most `moat grant mcp` reads from standard input: far beyond any token.
const MAX_STDIN_BYTES: u64 = 64 * 1024;

pub fn grant(ctx: &Context, args: &GrantArgs) -> Result<i32> {
    let Some(server) = &args.name else {
        return Err(
            UserError::new("which MCP server? `moat grant mcp` needs its name")
                .hint(
                    "for example `moat grant mcp notion`, for the server whose `auth.grant` is \
                 `mcp-notion`",
                )
                .into(),
        );
    };
    if args.validate {
        return Err(
            UserError::new("moat cannot check an MCP server's credential")
                .hint("leave out `--validate`; the server tells when the run first uses it")
                .into(),
        );
    }
    let grant = moat_providers::mcp_grant_name(server);
    let name = ProviderName::parse(&grant).map_err(|_| {
        UserError::new(format!("`{server}` cannot name an MCP credential"))
            .hint("use lowercase letters, digits and `-` (the grant is `mcp-NAME`, which `auth.grant` names)")
    })?;
    let (secret, source) = if prompt::stdin_is_terminal() {
        outln!("Enter the credential for MCP server `{server}`.")?;
        outln!("It is sent as the whole value of the header that `auth.header` names.\n")?;
        match prompt::ask_secret("Credential: ")? {
            SecretAnswer::Entered(secret) => (secret, CredentialSource::Pasted),
            SecretAnswer::Eof => (Secret::new(String::new()), CredentialSource::Pasted),
            SecretAnswer::Cancelled => return Err(moat_run::RunError::Cancelled.into()),
        }
    } else {
        (read_stdin()?, CredentialSource::Stdin)
    };
    if secret.is_empty() {
        return Err(UserError::new("no credential was given; nothing was saved")
            .hint(format!(
                "paste it at the prompt, or pipe it in: `printf %s \"$TOKEN\" | moat grant mcp {server}`"
            ))
            .into());
    }
    if secret.expose().chars().any(char::is_control) {
        return Err(UserError::new(
            "the credential holds a control character (a line break inside it?); nothing was saved",
        )
        .hint("give the value on one line")
        .into());
    }
    let settings = crate::settings::grant_settings(ctx)?;
    let store = super::open_store(ctx, &settings)?;
    let credential = Credential::new(
        name,
        CredentialKind::Token,
        secret,
        source,
        Timestamp::now(),
    )
    .map_err(super::credential_error)?;
    let path = store.save(&credential).map_err(super::credential_error)?;
    outln!(
        "MCP credential `{grant}` saved to {}",
        super::tilde(&path, ctx.env.home.as_deref())
    )?;
    Ok(0)
}

/// Standard input to its end, without the line ending a pipe usually adds.
fn read_stdin() -> Result<Secret> {
    let mut bytes = Zeroizing::new(Vec::new());
    std::io::stdin()
        .lock()
        .take(MAX_STDIN_BYTES + 1)
        .read_to_end(&mut bytes)
        .context("reading the credential from standard input")?;
    if bytes.len() as u64 > MAX_STDIN_BYTES {
        return Err(UserError::new(
            "standard input is too long for a credential; nothing was saved",
        )
        .hint("pipe in the token alone")
        .into());
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        UserError::new("the credential on standard input is not UTF-8 text; nothing was saved")
    })?;
    Ok(Secret::new(text.trim_end_matches(['\r', '\n']).to_owned()))
}
