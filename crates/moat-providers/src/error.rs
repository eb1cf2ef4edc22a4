//! What can go wrong with providers, grants and validation requests, with the hint a
//! user needs to fix it.
//!
//! No variant carries a secret: HTTP failures name the URL and status, never a header or
//! a body that could echo the token back.

use std::fmt;
use std::path::PathBuf;

use moat_credentials::CredentialError;

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("unknown provider `{name}`")]
    UnknownProvider { name: String },

    #[error("`{provider}` is not granted")]
    NotGranted { provider: String },

    #[error("MCP server `{server}` needs the `{grant}` credential, which is not granted")]
    McpNotGranted { server: String, grant: String },

    #[error("`{grant}` is not granted")]
    SshNotGranted {
        grant: String,
        host: String,
        port: u16,
    },

    #[error("`{grant}` is not an SSH grant moat understands")]
    BadSshGrant { grant: String },

    #[error(transparent)]
    Credential(#[from] CredentialError),

    #[error("the `{grant}` credential cannot be injected: {source}")]
    Rule {
        grant: String,
        source: moat_proxy::ConfigError,
    },

    #[error("grants `{first}` and `{second}` both set `{var}` in the container")]
    EnvConflict {
        var: String,
        first: String,
        second: String,
    },

    #[error(transparent)]
    Definition(#[from] DefinitionError),

    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },

    /// A provider file that is not a regular file of sane size (`moat_home::read_bounded`).
    #[error(transparent)]
    File(#[from] moat_home::ReadError),

    #[error("cannot set up HTTPS for the validation request: {0}")]
    HttpSetup(String),

    #[error("the {what} was rejected by `{host}` (HTTP {status})")]
    Rejected {
        provider: String,
        what: String,
        host: String,
        status: u16,
    },

    #[error("`{url}` answered HTTP {status}, not 200")]
    UnexpectedStatus { url: String, status: u16 },

    #[error("the validation request to `{url}` failed: {reason}")]
    Request { url: String, reason: String },
}

impl ProviderError {
    /// A suggestion for the user, when there is an obvious one.
    pub fn hint(&self) -> Option<String> {
        match self {
            ProviderError::UnknownProvider { name } => Some(format!(
                "`moat grant providers` lists the providers moat knows; define your own in \
                 `$MOAT_HOME/providers/{}.yaml`",
                file_stem_for(name)
            )),
            ProviderError::NotGranted { provider } => Some(format!("run `moat grant {provider}`")),
            ProviderError::McpNotGranted { server, grant } => Some(format!(
                "run `{}`",
                crate::mcp::grant_command(server, grant)
            )),
            ProviderError::SshNotGranted { host, port, .. } => Some(if *port == 22 {
                format!("run `moat grant ssh --host {host}`")
            } else {
                format!("run `moat grant ssh --host {host}:{port}`")
            }),
            ProviderError::BadSshGrant { .. } => {
                Some("write `ssh:HOST` or `ssh:HOST:PORT`, e.g. `ssh:github.com`".into())
            }
            ProviderError::Credential(e) => e.hint(),
            ProviderError::Rule { grant, .. } => Some(format!(
                "check the value and run `moat grant {grant}` again"
            )),
            ProviderError::EnvConflict { .. } => Some("grant only one of them to this run".into()),
            ProviderError::Definition(e) => e.hint.clone(),
            ProviderError::Read { .. } => None,
            ProviderError::File(e) => e.hint(),
            ProviderError::HttpSetup(_) => Some(
                "check `MOAT_EXTRA_CA_CERTS` (a PEM file of CA certificates) and \
                 `MOAT_CONNECT_TO` (`HOST1:PORT1:HOST2:PORT2`)"
                    .into(),
            ),
            ProviderError::Rejected { provider, .. } => Some(format!(
                "check the value (is it complete, not revoked or expired?) and run \
                 `moat grant {provider}` again"
            )),
            ProviderError::UnexpectedStatus { .. } => Some(
                "the service may be having trouble; try again later, or skip the check with \
                 `--no-validate`"
                    .into(),
            ),
            ProviderError::Request { .. } => Some(
                "check the network; behind a TLS-intercepting proxy set `MOAT_EXTRA_CA_CERTS` \
                 to its CA certificate; or skip the check with `--no-validate`"
                    .into(),
            ),
        }
    }
}

/// A name made safe to suggest as a file name.
fn file_stem_for(name: &str) -> String {
    let stem: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(64)
        .collect::<String>()
        .to_ascii_lowercase();
    if stem.is_empty() { "NAME".into() } else { stem }
}

/// A provider definition file that cannot be used: where, what, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionError {
    pub path: PathBuf,
    /// 1-based line and column, when known.
    pub position: Option<(u64, u64)>,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for DefinitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some((line, column)) = self.position {
            write!(f, ":{line}:{column}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for DefinitionError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_granted_says_what_to_run() {
        let err = ProviderError::NotGranted {
            provider: "github".into(),
        };
        assert_eq!(err.to_string(), "`github` is not granted");
        assert_eq!(err.hint().unwrap(), "run `moat grant github`");
    }

    #[test]
    fn unknown_provider_suggests_a_safe_file_name() {
        let err = ProviderError::UnknownProvider {
            name: "../Evil".into(),
        };
        assert_eq!(err.to_string(), "unknown provider `../Evil`");
        assert!(
            err.hint()
                .unwrap()
                .ends_with("`$MOAT_HOME/providers/evil.yaml`"),
            "{}",
            err.hint().unwrap()
        );
    }

    #[test]
    fn definition_errors_read_like_compiler_errors() {
        let err = DefinitionError {
            path: "/h/.moat/providers/acme.yaml".into(),
            position: Some((3, 5)),
            message: "`hosts` must not be empty".into(),
            hint: None,
        };
        assert_eq!(
            err.to_string(),
            "/h/.moat/providers/acme.yaml:3:5: `hosts` must not be empty"
        );
    }
}
