//! What can go wrong with credentials and their key, with the hint a user needs to fix it.
//!
//! No variant carries a secret: reasons are fixed texts or positions, never a quote of
//! the data that failed (serde's messages can quote values, so they are not passed on).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use jiff::Timestamp;

use crate::ProviderName;

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("invalid provider name `{name}`: {reason}")]
    InvalidProvider { name: String, reason: &'static str },

    #[error("the `{provider}` credential is not usable: {reason}")]
    InvalidSecret {
        provider: ProviderName,
        reason: &'static str,
    },

    #[error("no `{provider}` credential is granted")]
    NotFound { provider: ProviderName },

    #[error("cannot decrypt the `{provider}` credential in `{}`: {reason}", path.display())]
    Undecryptable {
        path: PathBuf,
        provider: ProviderName,
        reason: DecryptFailure,
    },

    /// The credential file is not a regular file of sane size, or cannot be read.
    #[error("{source}")]
    Unusable {
        provider: ProviderName,
        source: moat_home::ReadError,
    },

    #[error("credential expired: the `{provider}` credential expired at {expired_at}")]
    Expired {
        provider: ProviderName,
        expired_at: Timestamp,
    },

    #[error("no Claude Code credentials found in `{origin}`: {reason}")]
    NoClaudeCodeCredentials { origin: String, reason: String },

    #[error("the Claude Code credentials in `{origin}` expired at {expired_at}")]
    ClaudeCodeCredentialsExpired {
        origin: String,
        expired_at: Timestamp,
    },

    #[error("the SSH grants in `{}` are damaged ({reason})", path.display())]
    SshGrantsDamaged { path: PathBuf, reason: String },

    #[error("`{}`: {source}", path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("cannot get random bytes from the operating system: {0}")]
    Random(getrandom::Error),

    #[error(transparent)]
    Key(#[from] KeyError),
}

impl CredentialError {
    pub(crate) fn file(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CredentialError::File {
            path: path.into(),
            source,
        }
    }

    /// A suggestion for the user, when there is an obvious one.
    pub fn hint(&self) -> Option<String> {
        match self {
            CredentialError::InvalidProvider { .. } => Some(
                "provider names are lowercase letters, digits and `-`, as in `moat grant github`"
                    .into(),
            ),
            CredentialError::InvalidSecret { provider, .. } => Some(format!(
                "check the value and run `moat grant {provider}` again"
            )),
            CredentialError::NotFound { provider } => {
                Some(format!("grant it with `moat grant {provider}`"))
            }
            CredentialError::Undecryptable { provider, .. } => Some(format!(
                "run `moat grant {provider}` again (the file may have been changed, or the \
                 encryption key in the keyring or `encryption.key` replaced)"
            )),
            CredentialError::Unusable { provider, source } => Some(match source.hint() {
                Some(hint) => format!(
                    "{hint}; or remove it with `moat revoke {provider}` and run \
                     `moat grant {provider}` again"
                ),
                None => format!(
                    "remove it with `moat revoke {provider}` and run `moat grant {provider}` again"
                ),
            }),
            CredentialError::Expired { provider, .. } => {
                Some(format!("run `moat grant {provider}` again"))
            }
            CredentialError::NoClaudeCodeCredentials { .. } => Some(
                "install Claude Code and log in, then run `moat grant anthropic` again, or use \
                 an API key: `export ANTHROPIC_API_KEY=\"sk-ant-...\" && moat grant anthropic`"
                    .into(),
            ),
            CredentialError::ClaudeCodeCredentialsExpired { .. } => Some(
                "imported tokens do not auto-refresh: run a Claude Code session on your host to \
                 refresh it, then run `moat grant anthropic` again"
                    .into(),
            ),
            CredentialError::SshGrantsDamaged { path, .. } => Some(format!(
                "fix or delete `{}`, then grant again with `moat grant ssh --host HOST`",
                path.display()
            )),
            CredentialError::Key(e) => e.hint(),
            CredentialError::File { .. } | CredentialError::Random(_) => None,
        }
    }
}

/// Why a credential file could not be turned back into a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecryptFailure {
    /// Shorter than a nonce and a tag: cut off, or not a credential file at all.
    TooShort { len: usize },
    /// AES-GCM authentication failed: changed bytes, another key, or a file renamed from
    /// another provider (the provider name is the associated data).
    AuthenticationFailed,
    /// It decrypted, but the content is not a credential this version understands.
    BadContent(String),
}

impl fmt::Display for DecryptFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecryptFailure::TooShort { len } => write!(
                f,
                "the file is truncated ({len} bytes, shorter than any credential file)"
            ),
            DecryptFailure::AuthenticationFailed => f.write_str(
                "authentication failed: the file was modified, the encryption key changed, or \
                 the file belongs to another provider",
            ),
            DecryptFailure::BadContent(why) => write!(f, "its content is damaged: {why}"),
        }
    }
}

/// What can go wrong while finding or creating the key that encrypts the store.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("`{}`: {source}", path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("the encryption key file `{}` can be read by other users (mode {mode:03o})", path.display())]
    KeyFilePermissions { path: PathBuf, mode: u32 },

    #[error("the encryption key file `{}` does not hold a base64 32-byte key", path.display())]
    KeyFileInvalid { path: PathBuf },

    /// The key file is not a regular file of a few KiB, or cannot be read.
    #[error(transparent)]
    Unreadable(moat_home::ReadError),

    #[error("the OS keyring failed: {reason}")]
    Keyring { reason: String },

    #[error("the OS keyring did not answer within {} s", timeout.as_secs_f32())]
    KeyringTimeout { timeout: Duration },

    #[error("the OS keyring entry {entry} does not hold a base64 32-byte key")]
    KeyringEntryInvalid { entry: String },

    #[error("the encryption key is in the OS keyring, which cannot be reached: {reason}")]
    KeyringUnreachable { reason: String },

    #[error("cannot get random bytes from the operating system: {0}")]
    Random(getrandom::Error),

    /// Credentials are stored but no key is found: the key file or keyring entry is gone.
    /// Never met by making a new key, which would leave every credential unreadable.
    #[error("{0}")]
    KeyMissing(Box<MissingKey>),
}

/// What [`KeyError::KeyMissing`] knows: where the key was looked for and what needs it.
#[derive(Debug)]
pub struct MissingKey {
    pub looked_in: String,
    pub key_file: PathBuf,
    /// The keyring entry the key may have been in (`None`: file only).
    pub keyring_entry: Option<String>,
    /// Why the keyring could not be asked, when it could not.
    pub keyring_problem: Option<String>,
    pub store: PathBuf,
    /// The providers whose credentials are stored.
    pub stored: Vec<String>,
}

impl fmt::Display for MissingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the encryption key of the stored credentials is missing (looked in {}",
            self.looked_in
        )?;
        if let Some(problem) = &self.keyring_problem {
            write!(f, "; the OS keyring could not be asked: {problem}")?;
        }
        write!(
            f,
            "); {} in `{}` cannot be read without it",
            stored_text(&self.stored),
            self.store.display()
        )
    }
}

impl MissingKey {
    /// Restore the key, or start over by revoking what needs it.
    fn fix(&self) -> String {
        let restore = match &self.keyring_entry {
            Some(entry) => format!(
                "restore the key file `{}` or the OS keyring entry {entry} from a backup",
                self.key_file.display()
            ),
            None => format!(
                "restore the key file `{}` from a backup",
                self.key_file.display()
            ),
        };
        let reach = if self.keyring_problem.is_some() {
            " (or make the OS keyring reachable, if the key is there)"
        } else {
            ""
        };
        let revoke = self
            .stored
            .iter()
            .map(|p| format!("`moat revoke {p}`"))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "{restore}{reach} and retry; or start over: {revoke}, then grant again with \
             `moat grant <provider>`"
        )
    }
}

/// `the github credential`, `3 credentials (anthropic, github, openai)`.
fn stored_text(stored: &[String]) -> String {
    match stored {
        [one] => format!("the `{one}` credential"),
        many => format!(
            "{} credentials ({})",
            many.len(),
            many.iter()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

impl KeyError {
    pub(crate) fn file(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        KeyError::File {
            path: path.into(),
            source,
        }
    }

    /// Whether the keyring could not be used at all (as opposed to holding bad data), so
    /// that the key file can take its place.
    pub fn is_keyring_unavailable(&self) -> bool {
        matches!(
            self,
            KeyError::Keyring { .. } | KeyError::KeyringTimeout { .. }
        )
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            KeyError::KeyFilePermissions { path, .. } => {
                Some(format!("run `chmod 600 {}`", path.display()))
            }
            KeyError::KeyFileInvalid { path } => Some(format!(
                "restore `{}` from a backup; if it is lost, delete it and grant every \
                 credential again with `moat grant <provider>`",
                path.display()
            )),
            KeyError::Keyring { .. } | KeyError::KeyringTimeout { .. } => Some(
                "unlock the OS keyring, or set `MOAT_KEYRING=file` to keep the key in a file"
                    .into(),
            ),
            KeyError::KeyringEntryInvalid { entry } => Some(format!(
                "delete the keyring entry {entry} and grant every credential again with \
                 `moat grant <provider>`"
            )),
            KeyError::KeyringUnreachable { .. } => Some(
                "unlock the OS keyring (or start its D-Bus session) and retry; with \
                 `MOAT_KEYRING=file` moat uses a key file instead, and every credential must \
                 be granted again"
                    .into(),
            ),
            KeyError::Unreadable(e) => e.hint(),
            KeyError::KeyMissing(missing) => Some(missing.fix()),
            KeyError::File { .. } | KeyError::Random(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undecryptable_says_what_to_run() {
        let err = CredentialError::Undecryptable {
            path: PathBuf::from("/h/.moat/credentials/github.enc"),
            provider: ProviderName::parse("github").unwrap(),
            reason: DecryptFailure::AuthenticationFailed,
        };
        assert_eq!(
            err.to_string(),
            "cannot decrypt the `github` credential in `/h/.moat/credentials/github.enc`: \
             authentication failed: the file was modified, the encryption key changed, or the \
             file belongs to another provider"
        );
        assert!(
            err.hint()
                .unwrap()
                .starts_with("run `moat grant github` again")
        );
    }

    #[test]
    fn expired_says_credential_expired_and_what_to_run() {
        let err = CredentialError::Expired {
            provider: ProviderName::anthropic(),
            expired_at: "2026-02-15T10:30:00Z".parse().unwrap(),
        };
        assert_eq!(
            err.to_string(),
            "credential expired: the `anthropic` credential expired at 2026-02-15T10:30:00Z"
        );
        assert_eq!(err.hint().unwrap(), "run `moat grant anthropic` again");
    }

    #[test]
    fn key_errors_reach_the_hint() {
        let err = CredentialError::from(KeyError::KeyFilePermissions {
            path: PathBuf::from("/h/.moat/encryption.key"),
            mode: 0o644,
        });
        assert_eq!(
            err.to_string(),
            "the encryption key file `/h/.moat/encryption.key` can be read by other users (mode 644)"
        );
        assert_eq!(
            err.hint().unwrap(),
            "run `chmod 600 /h/.moat/encryption.key`"
        );
    }

    #[test]
    fn keyring_timeout_message() {
        let err = KeyError::KeyringTimeout {
            timeout: Duration::from_secs(3),
        };
        assert_eq!(err.to_string(), "the OS keyring did not answer within 3 s");
        assert!(err.is_keyring_unavailable());
        assert!(err.hint().unwrap().contains("MOAT_KEYRING=file"));
    }
}
