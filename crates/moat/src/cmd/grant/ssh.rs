//! `moat grant ssh --host HOST [--key PATH] [--host-key KEY]`: pick a key of the user's
//! SSH agent, pin the host's keys (from `~/.ssh/known_hosts`, `--host-key` or the
//! built-in table) and store the grant; `moat revoke ssh:HOST` and the SSH lines of
//! `moat grant list`. Nothing private is read or stored: the key stays in the agent.

use std::path::{Path, PathBuf};

use anyhow::Result;
use moat_credentials::{SshGrant, SshGrantStore};
use moat_ssh::{PublicKey, SshError};

use crate::cli::GrantArgs;
use crate::settings::Context;
use crate::ui::{UserError, outln};

pub async fn grant(ctx: &Context, args: &GrantArgs) -> Result<i32> {
    let Some(target) = &args.host else {
        return Err(
            UserError::new("which host? `moat grant ssh` needs `--host`")
                .hint("for example `moat grant ssh --host github.com`")
                .into(),
        );
    };
    let grant_text = format!("ssh:{target}");
    moat_config::check_grant(&grant_text).map_err(|e| {
        let mut error = UserError::new(format!("--host: {e}"));
        if let Some(hint) = e.hint {
            error = error.hint(hint);
        }
        error
    })?;
    let (host, port) = moat_ssh::parse_grant(&grant_text).ok_or_else(|| {
        UserError::new(format!("--host: `{target}` is not HOST or HOST:PORT"))
            .hint("for example `moat grant ssh --host github.com`")
    })?;
    let socket = ctx.env.ssh_auth_sock.clone().ok_or(SshError::NoAgent)?;
    let identities =
        moat_ssh::list_identities(&socket)
            .await
            .map_err(|e| SshError::AgentUnreachable {
                path: socket.clone(),
                reason: e.to_string(),
            })?;
    let keys: Vec<(PublicKey, String)> = identities
        .iter()
        .filter_map(|id| Some((PublicKey::from_blob(&id.key).ok()?, id.comment.clone())))
        .collect();
    let (key, comment) = match &args.key {
        None => keys.first().cloned().ok_or(SshError::NoKeys)?,
        Some(path) => {
            let wanted = read_public_key(path)?;
            if keys.is_empty() {
                return Err(SshError::NoKeys.into());
            }
            keys.iter()
                .find(|(k, _)| *k == wanted)
                .cloned()
                .ok_or_else(|| SshError::KeyNotInAgent {
                    path: path.clone(),
                    fingerprint: wanted.fingerprint(),
                })?
        }
    };
    let (host_keys, from) = pinned_host_keys(ctx, &host, port, &args.host_key)?;
    outln!("Using key: {comment} ({})", key.fingerprint())?;
    let grant = SshGrant {
        host: host.clone(),
        port,
        key: key.to_openssh(),
        fingerprint: key.fingerprint(),
        comment,
        host_keys: host_keys.iter().map(PublicKey::to_openssh).collect(),
        host_keys_from: from.clone(),
        granted_at: jiff::Timestamp::now(),
    };
    SshGrantStore::in_home(ctx.home())
        .put(grant)
        .map_err(super::credential_error)?;
    let shown = if port == 22 {
        host.clone()
    } else {
        format!("{host}:{port}")
    };
    outln!(
        "Pinned {} host key{} of {shown} from {from}: {}",
        host_keys.len(),
        if host_keys.len() == 1 { "" } else { "s" },
        host_keys
            .iter()
            .map(PublicKey::fingerprint)
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    outln!("Granted SSH access to {shown}")?;
    outln!(
        "Use it in a run: moat run --grant {}",
        moat_ssh::grant_name(&host, port)
    )?;
    Ok(0)
}

/// The public key of `path`: `PATH.pub` beside a private key, or `PATH` itself if it is
/// a `.pub` file. The private key is never opened.
fn read_public_key(path: &Path) -> Result<PublicKey, SshError> {
    let candidates: Vec<PathBuf> = if path.extension().is_some_and(|e| e == "pub") {
        vec![path.to_owned()]
    } else {
        let mut with_pub = path.as_os_str().to_owned();
        with_pub.push(".pub");
        vec![PathBuf::from(with_pub)]
    };
    let bad = |reason: String| SshError::BadKeyFile {
        path: path.to_owned(),
        reason,
    };
    let file = &candidates[0];
    let text = fs_err::read_to_string(file).map_err(|e| bad(e.to_string()))?;
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .ok_or_else(|| bad(format!("`{}` holds no key", file.display())))?;
    PublicKey::from_openssh(line)
        .map(|(key, _)| key)
        .map_err(|e| bad(format!("`{}`: {e}", file.display())))
}

/// The host keys to pin and where they came from: `--host-key`s, else the user's
/// `~/.ssh/known_hosts` (what the user already trusts), else the published keys moat
/// knows.
fn pinned_host_keys(
    ctx: &Context,
    host: &str,
    port: u16,
    given: &[String],
) -> Result<(Vec<PublicKey>, String), SshError> {
    if !given.is_empty() {
        let keys = given
            .iter()
            .map(|text| {
                PublicKey::from_openssh(text)
                    .map(|(k, _)| k)
                    .map_err(|e| SshError::BadHostKey {
                        reason: format!("`{}`: {e}", text.chars().take(40).collect::<String>()),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        return Ok((keys, "--host-key".into()));
    }
    let known_hosts = ctx
        .env
        .home
        .as_ref()
        .map(|home| home.join(".ssh/known_hosts"));
    if let Some(path) = &known_hosts
        && let Ok(text) = fs_err::read_to_string(path)
    {
        let keys = moat_ssh::host_keys(&text, host, port);
        if !keys.is_empty() {
            return Ok((keys, "~/.ssh/known_hosts".into()));
        }
    }
    let builtin = if port == 22 {
        moat_ssh::builtin_host_keys(host)
    } else {
        Vec::new()
    };
    if !builtin.is_empty() {
        return Ok((
            builtin,
            "moat's built-in table (the keys the host publishes)".into(),
        ));
    }
    Err(SshError::HostKeyUnknown {
        host: host.to_owned(),
        port,
        known_hosts: "~/.ssh/known_hosts".into(),
    })
}

/// `moat revoke ssh:HOST[:PORT]`.
pub fn revoke(ctx: &Context, grant: &str) -> Result<i32> {
    let (host, port) = moat_ssh::parse_grant(grant).ok_or_else(|| {
        UserError::new(format!("`{grant}` is not an SSH grant"))
            .hint("write `moat revoke ssh:HOST`, e.g. `moat revoke ssh:github.com`")
    })?;
    let name = moat_ssh::grant_name(&host, port);
    let removed = SshGrantStore::in_home(ctx.home())
        .remove(&host, port)
        .map_err(super::credential_error)?;
    if !removed {
        return Err(UserError::new(format!("`{name}` is not granted"))
            .hint("`moat grant list` shows the granted credentials")
            .into());
    }
    outln!("Revoked `{name}`")?;
    Ok(0)
}

/// The SSH grants, for `moat grant list`.
pub fn list(ctx: &Context) -> Result<Vec<SshGrant>> {
    SshGrantStore::in_home(ctx.home())
        .list()
        .map_err(super::credential_error)
}

/// Host-key fingerprints of a grant, for listings.
pub fn host_key_fingerprints(grant: &SshGrant) -> Vec<String> {
    grant
        .host_keys
        .iter()
        .filter_map(|k| PublicKey::from_openssh(k).ok())
        .map(|(k, _)| k.fingerprint())
        .collect()
}
