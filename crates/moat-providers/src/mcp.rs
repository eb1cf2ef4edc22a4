//! Remote MCP servers (the workspace file's top-level `mcp`): the credential a server's
//! `auth` names goes into the header it names, on requests to that server's host and
//! nowhere else. The container's MCP client is given a placeholder in that header instead
//! (it must send *something* there for some clients to consider the server configured);
//! the proxy replaces it, or sets the header when the client sent none.
//!
//! The credential is stored like any other (`moat grant mcp NAME` saves `mcp-NAME.enc`),
//! and resolved twice, like a run's grants: by the CLI (to fail before anything starts
//! and to learn the placeholder) and by the supervisor (for the proxy rule).

use jiff::Timestamp;
use moat_credentials::{CredentialStore, ExpiryStatus, ProviderName};
use moat_proxy::{GrantRule, HostPattern};

use crate::error::ProviderError;

/// The prefix `moat grant mcp NAME` gives its credentials: `mcp-NAME`.
pub const MCP_GRANT_PREFIX: &str = "mcp-";

/// The grant name `moat grant mcp NAME` stores the credential under.
pub fn mcp_grant_name(server: &str) -> String {
    format!("{MCP_GRANT_PREFIX}{server}")
}

/// What the proxy needs of one remote server that has `auth`.
#[derive(Debug, Clone, Copy)]
pub struct McpServerAuth<'a> {
    /// The server's name (`mcp[].name`), for messages.
    pub server: &'a str,
    /// Where the credential may go: the host (and port) of the server's URL.
    pub host: &'a HostPattern,
    /// The stored credential (`auth.grant`), usually `mcp-<server>`.
    pub grant: &'a str,
    /// The request header it goes into (`auth.header`).
    pub header: &'a str,
}

/// The header value the container's client holds for one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpPlaceholder {
    pub server: String,
    pub header: String,
    pub placeholder: String,
}

/// Everything a run's remote MCP servers need.
#[derive(Debug, Default)]
pub struct RunMcp {
    /// For `ProxyConfig::rules`, one per server with `auth`. `Debug` redacts the secrets.
    pub rules: Vec<GrantRule>,
    /// For the container's MCP configuration: placeholders only.
    pub placeholders: Vec<McpPlaceholder>,
    /// Credentials about to expire.
    pub warnings: Vec<String>,
}

/// The rules and placeholders of `servers`. Fails on the first server whose credential is
/// not granted, cannot be decrypted or has expired; the error names the server and the
/// command that grants it.
pub fn mcp_for_run(
    store: &CredentialStore,
    servers: &[McpServerAuth<'_>],
    run_token: &str,
    now: Timestamp,
) -> Result<RunMcp, ProviderError> {
    let mut out = RunMcp::default();
    for server in servers {
        let not_granted = || ProviderError::McpNotGranted {
            server: server.server.to_owned(),
            grant: server.grant.to_owned(),
        };
        // A name no credential can have (`_`, say) is simply not granted.
        let name = ProviderName::parse(server.grant).map_err(|_| not_granted())?;
        let credential = store.load(&name)?.ok_or_else(not_granted)?;
        if let ExpiryStatus::ExpiresSoon(_) = credential.check_expiry(now)? {
            out.warnings.push(format!(
                "the `{}` credential of MCP server `{}` expires soon; run `{}` again soon",
                server.grant,
                server.server,
                grant_command(server.server, server.grant)
            ));
        }
        let placeholder = credential.placeholder(run_token);
        let secret = moat_proxy::Secret::new(credential.secret().expose());
        let rule = GrantRule::new(server.grant, vec![server.host.clone()])
            .replace_placeholder(server.header, &placeholder, &secret)
            .and_then(|r| r.set_header(server.header, &secret))
            .map_err(|source| ProviderError::Rule {
                grant: server.grant.to_owned(),
                source,
            })?;
        out.rules.push(rule);
        out.placeholders.push(McpPlaceholder {
            server: server.server.to_owned(),
            header: server.header.to_owned(),
            placeholder,
        });
    }
    Ok(out)
}

/// The command that stores `grant` for `server`: `moat grant mcp NAME` for `mcp-NAME`,
/// `moat grant GRANT` for any other provider.
pub fn grant_command(server: &str, grant: &str) -> String {
    match grant.strip_prefix(MCP_GRANT_PREFIX) {
        Some(name) if !name.is_empty() => format!("moat grant mcp {name}"),
        _ if grant.is_empty() => format!("moat grant mcp {server}"),
        _ => format!("moat grant {grant}"),
    }
}

/// The host pattern of an `http(s)://` URL: its host, with its port unless that is the
/// scheme's default (a pattern without a port matches 80 and 443).
pub fn url_host(url: &str) -> Option<HostPattern> {
    let url = moat_hosts::HttpUrl::parse(url)?;
    HostPattern::parse(&url.host_and_port()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use moat_credentials::{Credential, CredentialKind, CredentialSource, EncryptionKey, Secret};

    fn store() -> (tempfile::TempDir, CredentialStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::new(
            dir.path().join("credentials"),
            EncryptionKey::from_bytes([3; 32]),
        );
        (dir, store)
    }

    fn save(store: &CredentialStore, name: &str, secret: &str) {
        let credential = Credential::new(
            ProviderName::parse(name).unwrap(),
            CredentialKind::Token,
            Secret::new(secret),
            CredentialSource::Pasted,
            "2026-01-01T00:00:00Z".parse().unwrap(),
        )
        .unwrap();
        store.save(&credential).unwrap();
    }

    #[test]
    fn hosts_of_urls() {
        let host = |u: &str| url_host(u).map(|h| h.to_string());
        assert_eq!(
            host("https://mcp.example.com/mcp").as_deref(),
            Some("mcp.example.com")
        );
        assert_eq!(
            host("https://mcp.example.com:443/x").as_deref(),
            Some("mcp.example.com")
        );
        assert_eq!(
            host("https://mcp.example.com:8443").as_deref(),
            Some("mcp.example.com:8443")
        );
        assert_eq!(
            host("http://localhost:8080/mcp").as_deref(),
            Some("localhost:8080")
        );
        assert_eq!(host("https://u:p@h.test/").as_deref(), Some("h.test"));
        assert_eq!(host("https://[::1]:9000/").as_deref(), Some("[::1]:9000"));
        assert_eq!(host("ftp://x"), None);
        assert_eq!(host("https://h.test:notaport/"), None);
    }

    #[test]
    fn a_granted_server_gets_a_rule_for_its_host_and_a_placeholder() {
        let (_dir, store) = store();
        save(&store, "mcp-notes", "notes-REAL-token");
        let host = url_host("https://notes.example.test/mcp").unwrap();
        let servers = [McpServerAuth {
            server: "notes",
            host: &host,
            grant: "mcp-notes",
            header: "X-Notes-Key",
        }];
        let a = mcp_for_run(&store, &servers, "run-a", Timestamp::now()).unwrap();
        let b = mcp_for_run(&store, &servers, "run-b", Timestamp::now()).unwrap();
        assert_eq!(a.rules.len(), 1);
        assert_eq!(a.rules[0].grant(), "mcp-notes");
        assert_eq!(a.rules[0].hosts(), [host]);
        let p = &a.placeholders[0];
        assert_eq!(
            (p.server.as_str(), p.header.as_str()),
            ("notes", "X-Notes-Key")
        );
        assert!(p.placeholder.starts_with("moat-mcp-notes-"), "{p:?}");
        assert!(!p.placeholder.contains("REAL"));
        assert_ne!(p.placeholder, b.placeholders[0].placeholder, "per run");
        assert!(!format!("{:?}", a.rules).contains("REAL"));
    }

    #[test]
    fn a_missing_credential_names_the_server_and_the_command() {
        let (_dir, store) = store();
        let host = url_host("https://notes.example.test/mcp").unwrap();
        let servers = [McpServerAuth {
            server: "notes",
            host: &host,
            grant: "mcp-notes",
            header: "Authorization",
        }];
        let err = mcp_for_run(&store, &servers, "run", Timestamp::now()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "MCP server `notes` needs the `mcp-notes` credential, which is not granted"
        );
        assert_eq!(err.hint().unwrap(), "run `moat grant mcp notes`");
        assert_eq!(grant_command("gh", "github"), "moat grant github");
    }
}
