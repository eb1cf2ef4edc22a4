//! [`KeyringMode`]: where the key that encrypts stored credentials is kept — one value for
//! the global configuration, a run's saved settings and the credential store.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Whether moat may use the OS keyring for the credential key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyringMode {
    /// The OS keychain when it works, else a `0600` key file in `$MOAT_HOME`.
    #[default]
    Auto,
    /// Always the key file, never the keyring: servers, CI, tests.
    File,
}

impl KeyringMode {
    /// The words, as written in `keyring:` and `MOAT_KEYRING`.
    pub const WORDS: &[&str] = &["auto", "file"];

    pub fn parse(word: &str) -> Option<Self> {
        match word {
            "auto" => Some(KeyringMode::Auto),
            "file" => Some(KeyringMode::File),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            KeyringMode::Auto => "auto",
            KeyringMode::File => "file",
        }
    }
}

impl fmt::Display for KeyringMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
