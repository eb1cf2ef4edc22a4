//! moat's credential store: the credentials a user grants, encrypted at rest with a key
//! kept in the OS keyring or a private file, their expiry, Claude Code credential import,
//! and the placeholders containers see instead of them.
//!
//! A library: it takes values and returns values. It never prints, prompts, reads the
//! environment, talks HTTP or Docker; the CLI does the menus and validation requests.
//! Secrets only leave through `Secret::expose`; `Debug`, `Display` and errors redact them.

mod claude_import;
mod credential;
mod error;
mod key;
mod placeholder;
mod provider;
mod secret;
mod ssh;
mod store;

pub use claude_import::{CLAUDE_CODE_CREDENTIALS_PATH, import_claude_code_credentials};
pub use credential::{
    Credential, CredentialKind, CredentialSource, CredentialSummary, EXPIRES_SOON_WITHIN,
    ExpiryStatus, KindLabel, classify_expiry,
};
pub use error::{CredentialError, DecryptFailure, KeyError, MissingKey};
pub use key::{
    ChainKeySource, EncryptionKey, FileKeySource, KEY_FILE_NAME, KEYRING_ACCOUNT, KEYRING_SERVICE,
    KEYRING_TIMEOUT, KeyOrigin, KeySource, KeyringBackend, KeyringKeySource, KeyringMode,
    MemoryKeySource, OsKeyring,
};
pub use placeholder::placeholder;
pub use provider::{MAX_PROVIDER_NAME_LEN, ProviderName};
pub use secret::{REDACTED, Secret};
pub use ssh::{SshGrant, SshGrantStore};
pub use store::{CREDENTIALS_DIR_NAME, CredentialStore, ListedCredential, stored_providers};
